//! Unit tests of `prompt`: exact token counts, fixed pools, shared prefixes, datasets.

use std::{collections::BTreeMap, io::Write as _};

use rand::{SeedableRng, rngs::StdRng};
use tokenizer::Tokenizer;

use super::*;

fn text_gen() -> TextGen {
    TextGen::new(Tokenizer::embedded())
}

#[test]
fn texts_have_exactly_the_requested_token_count() {
    let text_gen = text_gen();
    let corpus = text_gen.corpus(5, 10_000);
    for n in [1, 2, 3, 7, 16, 25, 64, 100, 300, 1000, 1500, 3000, 4000] {
        for sentence in [0, 1, 17, 200] {
            let text = text_gen.exact(&corpus, sentence, n);
            assert_eq!(
                text_gen.count(&text),
                n,
                "n = {n} at sentence {sentence}: {text:?}"
            );
            assert!(!text.starts_with(' '));
        }
    }
}

#[test]
fn class_pools_are_sized_and_the_same_every_run() {
    let sizes = PromptSizes {
        short: 12,
        medium: 90,
        long: 400,
        very_long: 900,
    };
    let a = ClassPools::build(&text_gen(), &sizes);
    let b = ClassPools::build(&text_gen(), &sizes);
    for class in PromptClass::ALL {
        let mut texts = Vec::new();
        for idx in 0..class.pool_len() {
            let prompt = a.get(class, idx);
            let Prompt::Text(text) = &prompt.prompt else {
                panic!("class prompts are single texts");
            };
            assert_eq!(text_gen().count(text), sizes.tokens(class) as usize);
            assert_eq!(prompt.tokens, sizes.tokens(class) as usize);
            assert_eq!(prompt.chars, text.chars().count());
            assert_eq!(prompt.class, Some(class));
            assert_eq!(&b.get(class, idx).prompt, &prompt.prompt, "deterministic");
            texts.push(text.clone());
        }
        texts.dedup();
        assert_eq!(texts.len(), class.pool_len(), "pool items differ");
    }
}

fn messages(prompt: &BuiltPrompt) -> Vec<(String, String)> {
    match &prompt.prompt {
        Prompt::Messages(messages) => messages
            .iter()
            .map(|m| (m.role.to_string(), m.content.to_string()))
            .collect(),
        Prompt::Text(text) => vec![("user".to_owned(), text.to_string())],
    }
}

#[test]
fn system_prompt_family_shares_the_prefix() {
    let source = PromptSource::Family(PromptFamily::SystemPrompt {
        families: 2,
        prefix_tokens: 500,
        question_tokens: Distribution::Uniform { min: 10, max: 30 },
    });
    let plan = PromptPlan::build(&text_gen(), &source, &PromptSizes::default()).unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    let prompts: Vec<_> = (0..40).map(|_| plan.next(&mut rng)).collect();
    let systems: std::collections::BTreeSet<String> =
        prompts.iter().map(|p| messages(p)[0].1.clone()).collect();
    assert_eq!(systems.len(), 2, "two families");
    for prompt in &prompts {
        let msgs = messages(prompt);
        assert_eq!(msgs[0].0, "system");
        assert_eq!(text_gen().count(&msgs[0].1), 500);
        let question = text_gen().count(&msgs[1].1);
        assert!((10..=30).contains(&question));
        assert_eq!(prompt.tokens, 500 + question);
    }
}

#[test]
fn multi_turn_conversations_grow_turn_by_turn() {
    let source = PromptSource::Family(PromptFamily::MultiTurn {
        conversations: 1,
        turns: 3,
        user_tokens: 20,
        assistant_tokens: 40,
    });
    let plan = PromptPlan::build(&text_gen(), &source, &PromptSizes::default()).unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    let turns: Vec<_> = (0..4).map(|_| plan.next(&mut rng)).collect();
    let lens: Vec<usize> = turns.iter().map(|p| messages(p).len()).collect();
    assert_eq!(
        lens,
        [1, 3, 5, 1],
        "history grows, then the conversation restarts"
    );
    let tokens: Vec<usize> = turns.iter().map(|p| p.tokens).collect();
    assert_eq!(tokens, [20, 80, 140, 20]);
    let second = messages(&turns[1]);
    let third = messages(&turns[2]);
    assert_eq!(&third[..3], &second[..], "turn 3 extends turn 2's prompt");
    assert_eq!(third[1].0, "assistant");
}

#[test]
fn document_family_reuses_documents() {
    let source = PromptSource::Family(PromptFamily::Document {
        documents: 1,
        document_tokens: 300,
        question_tokens: Distribution::Fixed(12),
    });
    let plan = PromptPlan::build(&text_gen(), &source, &PromptSizes::default()).unwrap();
    let mut rng = StdRng::seed_from_u64(3);
    let a = messages(&plan.next(&mut rng))[0].1.clone();
    let b = messages(&plan.next(&mut rng))[0].1.clone();
    let prefix = a.split("\n\nQuestion: ").next().unwrap();
    assert!(b.starts_with(prefix));
    assert_eq!(text_gen().count(prefix), 300);
    assert_ne!(a, b, "questions differ");
}

#[test]
fn token_prompts_vary_and_are_exact() {
    let source = PromptSource::Tokens(Distribution::Uniform { min: 50, max: 60 });
    let plan = PromptPlan::build(&text_gen(), &source, &PromptSizes::default()).unwrap();
    let mut rng = StdRng::seed_from_u64(4);
    let prompts: Vec<_> = (0..20).map(|_| plan.next(&mut rng)).collect();
    for prompt in &prompts {
        assert_eq!(text_gen().count(&messages(prompt)[0].1), prompt.tokens);
    }
    let distinct: std::collections::BTreeSet<_> =
        prompts.iter().map(|p| messages(p)[0].1.clone()).collect();
    assert!(distinct.len() >= 18, "random starts give distinct prompts");
}

#[test]
fn class_weights_pick_only_weighted_classes() {
    let source = PromptSource::Classes(BTreeMap::from([
        (PromptClass::Short, 1.0),
        (PromptClass::Medium, 0.0),
    ]));
    let sizes = PromptSizes {
        short: 5,
        medium: 6,
        long: 7,
        very_long: 8,
    };
    let plan = PromptPlan::build(&text_gen(), &source, &sizes).unwrap();
    let mut rng = StdRng::seed_from_u64(5);
    assert!((0..50).all(|_| plan.next(&mut rng).class == Some(PromptClass::Short)));
}

fn temp_file(name: &str, content: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("load-gen-{}-{name}", std::process::id()));
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(content.as_bytes()).unwrap();
    path
}

#[test]
fn datasets_read_json_lines_and_text() {
    let jsonl = temp_file(
        "d.jsonl",
        "\"plain string\"\n{\"prompt\": \"with max\", \"max_tokens\": 9}\n\n{\"messages\": [{\"role\": \"user\", \"content\": \"hi there\"}]}\n",
    );
    let source = PromptSource::Dataset {
        path: jsonl.clone(),
        order: DatasetOrder::Sequential,
    };
    let plan = PromptPlan::build(&text_gen(), &source, &PromptSizes::default()).unwrap();
    let mut rng = StdRng::seed_from_u64(0);
    let got: Vec<_> = (0..4).map(|_| plan.next(&mut rng)).collect();
    assert_eq!(messages(&got[0])[0].1, "plain string");
    assert_eq!(got[1].max_tokens, Some(9));
    assert_eq!(
        messages(&got[2]),
        [("user".to_owned(), "hi there".to_owned())]
    );
    assert_eq!(messages(&got[3])[0].1, "plain string", "wraps around");
    assert_eq!(got[0].tokens, text_gen().count("plain string"));

    let text = temp_file("d.txt", "first prompt\nsecond prompt\n");
    let source = PromptSource::Dataset {
        path: text,
        order: DatasetOrder::Sequential,
    };
    let plan = PromptPlan::build(&text_gen(), &source, &PromptSizes::default()).unwrap();
    assert_eq!(messages(&plan.next(&mut rng))[0].1, "first prompt");
    assert_eq!(messages(&plan.next(&mut rng))[0].1, "second prompt");
}

#[test]
fn a_bad_dataset_line_is_named() {
    let path = temp_file("bad.jsonl", "\"ok\"\n{\"nope\": 1}\n");
    let source = PromptSource::Dataset {
        path,
        order: DatasetOrder::Random,
    };
    let error = PromptPlan::build(&text_gen(), &source, &PromptSizes::default())
        .unwrap_err()
        .to_string();
    assert!(error.contains("line 2"), "{error}");
}
