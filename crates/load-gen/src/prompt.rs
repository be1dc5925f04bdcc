//! Prompts sized exactly in tokens with the stack's tokenizer, prompt families that share long
//! prefixes (for prefix-cache routing), and prompt datasets read from a file.
//!
//! Text comes from a seeded sentence generator about LLM serving, so a prompt of N tokens is a
//! readable English text of exactly N tokens (content only; the chat template adds its own).
//! The four classes of the upstream script hold fixed pools (3, 3, 3 and 1 items) that are the
//! same in every run, as the script's are.

#[cfg(test)]
mod tests;

use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use parking_lot::Mutex;
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};
use serde::{Deserialize, Serialize};
use tokenizer::Tokenizer;

use crate::{Error, config::Distribution};

/// Token counts of the four prompt classes, as their names say (the upstream script's prompts
/// were far shorter than its comments claimed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct PromptSizes {
    /// Short prompts (script comment: ~10–50 tokens).
    pub short: u32,
    /// Medium prompts (script comment: ~200–500 tokens).
    pub medium: u32,
    /// Long prompts (script comment: ~1000–2000 tokens).
    pub long: u32,
    /// Very long prompts (script comment: ~3000–5000 tokens).
    pub very_long: u32,
}

/// Default short prompt size in tokens.
pub const DEFAULT_SHORT_TOKENS: u32 = 25;
/// Default medium prompt size in tokens.
pub const DEFAULT_MEDIUM_TOKENS: u32 = 300;
/// Default long prompt size in tokens.
pub const DEFAULT_LONG_TOKENS: u32 = 1500;
/// Default very long prompt size in tokens.
pub const DEFAULT_VERY_LONG_TOKENS: u32 = 3000;

impl Default for PromptSizes {
    fn default() -> PromptSizes {
        PromptSizes {
            short: DEFAULT_SHORT_TOKENS,
            medium: DEFAULT_MEDIUM_TOKENS,
            long: DEFAULT_LONG_TOKENS,
            very_long: DEFAULT_VERY_LONG_TOKENS,
        }
    }
}

impl PromptSizes {
    /// The token count of a class.
    pub fn tokens(&self, class: PromptClass) -> u32 {
        match class {
            PromptClass::Short => self.short,
            PromptClass::Medium => self.medium,
            PromptClass::Long => self.long,
            PromptClass::VeryLong => self.very_long,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        for class in PromptClass::ALL {
            if self.tokens(class) == 0 {
                return Err(Error::Config(format!(
                    "prompt size {} must be at least 1 token",
                    class.name()
                )));
            }
        }
        Ok(())
    }
}

/// The upstream script's prompt classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptClass {
    Short,
    Medium,
    Long,
    VeryLong,
}

impl PromptClass {
    /// All classes, shortest first.
    pub const ALL: [PromptClass; 4] = [
        PromptClass::Short,
        PromptClass::Medium,
        PromptClass::Long,
        PromptClass::VeryLong,
    ];

    /// The snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            PromptClass::Short => "short",
            PromptClass::Medium => "medium",
            PromptClass::Long => "long",
            PromptClass::VeryLong => "very_long",
        }
    }

    /// How many distinct prompts the class's pool holds (as in the script).
    pub fn pool_len(self) -> usize {
        match self {
            PromptClass::VeryLong => 1,
            _ => 3,
        }
    }
}

/// Where a scenario's prompts come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum PromptSource {
    /// A fresh text of a sampled number of tokens, starting at a random sentence of a large
    /// generated corpus, so prompts rarely share a prefix.
    Tokens(Distribution),
    /// The four fixed class pools mixed with these weights.
    Classes(BTreeMap<PromptClass, f64>),
    /// Prompts that share long prefixes.
    Family(PromptFamily),
    /// Prompts read from a file: JSON lines (`"text"`, `{"prompt": …}`, `{"messages": […]}`,
    /// optionally with `"max_tokens"`), or plain text with one prompt per line.
    Dataset {
        path: PathBuf,
        #[serde(default)]
        order: DatasetOrder,
    },
}

/// Prompt families sharing long prefixes, to exercise prefix-cache aware routing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum PromptFamily {
    /// `families` system prompts of `prefix_tokens` each; every request is one of them plus a
    /// fresh user question.
    SystemPrompt {
        families: u32,
        prefix_tokens: u32,
        question_tokens: Distribution,
    },
    /// `conversations` multi-turn chats; each request continues one conversation with its whole
    /// history (user and assistant turns), so turn `t` extends turn `t - 1`'s prompt.
    MultiTurn {
        conversations: u32,
        turns: u32,
        user_tokens: u32,
        assistant_tokens: u32,
    },
    /// `documents` documents of `document_tokens` each; every request asks a fresh question
    /// about one of them.
    Document {
        documents: u32,
        document_tokens: u32,
        question_tokens: Distribution,
    },
}

/// Order in which dataset prompts are used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetOrder {
    /// In file order, wrapping around.
    #[default]
    Sequential,
    /// Uniformly at random (seeded).
    Random,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Message {
    pub(crate) role: Arc<str>,
    pub(crate) content: Arc<str>,
}

/// What a request carries.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Prompt {
    /// One user message (chat) or the `prompt` (completions).
    Text(Arc<str>),
    /// A whole conversation (chat) or its contents joined by blank lines (completions).
    Messages(Arc<[Message]>),
}

/// A prompt with its measured size.
#[derive(Debug, Clone)]
pub(crate) struct BuiltPrompt {
    pub(crate) prompt: Prompt,
    /// Characters of the content, as the script's per-request line shows them.
    pub(crate) chars: usize,
    /// Content tokens with the stack's tokenizer (no chat template).
    pub(crate) tokens: usize,
    /// A dataset entry's own `max_tokens`.
    pub(crate) max_tokens: Option<u32>,
    /// The class, for class pool prompts.
    pub(crate) class: Option<PromptClass>,
}

impl BuiltPrompt {
    fn text(text: Arc<str>, tokens: usize) -> BuiltPrompt {
        BuiltPrompt {
            chars: text.chars().count(),
            prompt: Prompt::Text(text),
            tokens,
            max_tokens: None,
            class: None,
        }
    }
}

/// Generates exact-length texts.
#[derive(Debug, Clone)]
pub(crate) struct TextGen {
    tokenizer: Tokenizer,
}

/// A generated corpus: its tokens, where each sentence starts, and the exact texts already
/// cut from it (so a hot loop does not tokenize the same text twice).
#[derive(Debug)]
pub(crate) struct Corpus {
    tokens: Vec<u32>,
    sentence_starts: Vec<usize>,
    cut: Mutex<HashMap<(usize, usize), Arc<str>>>,
}

/// Most texts a corpus remembers; beyond this, texts are cut anew each time.
const CUT_CACHE: usize = 65_536;

const SUBJECTS: &[&str] = &[
    "The scheduler",
    "A decode pod",
    "The prefill worker",
    "Each replica",
    "The gateway",
    "The KV cache manager",
    "A tracing span",
    "The load balancer",
    "The inference pool",
    "An operator",
    "The endpoint picker",
    "Every request",
    "The sidecar",
    "A tokenizer",
    "The autoscaler",
    "The metrics pipeline",
];
const VERBS: &[&str] = &[
    "routes",
    "measures",
    "stores",
    "transfers",
    "schedules",
    "records",
    "batches",
    "evicts",
    "scores",
    "streams",
    "reports",
    "caches",
    "compares",
    "forwards",
];
const OBJECTS: &[&str] = &[
    "prompt tokens",
    "the attention blocks",
    "long shared prefixes",
    "request metrics",
    "cached blocks",
    "the first token",
    "the decode queue",
    "latency histograms",
    "trace context",
    "model weights",
    "the prefix hash",
    "output tokens",
    "queue depth samples",
    "the transfer parameters",
];
const TAILS: &[&str] = &[
    "before the next batch starts",
    "across every node in the cluster",
    "when the waiting queue grows",
    "to keep time to first token low",
    "for the observability dashboards",
    "under sustained concurrent load",
    "with a fixed block size",
    "while prefill runs on another pod",
    "so that operators can compare runs",
    "at the end of each engine step",
    "without blocking the event loop",
    "as soon as the response headers arrive",
];

impl TextGen {
    pub(crate) fn new(tokenizer: Tokenizer) -> TextGen {
        TextGen { tokenizer }
    }

    pub(crate) fn count(&self, text: &str) -> usize {
        self.tokenizer.count(text)
    }

    /// A corpus of at least `min_tokens` tokens from the sentence generator seeded by `seed`.
    pub(crate) fn corpus(&self, seed: u64, min_tokens: usize) -> Corpus {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut tokens = Vec::with_capacity(min_tokens + 32);
        let mut sentence_starts = Vec::new();
        while tokens.len() < min_tokens {
            let sentence = format!(
                "{} {} {} {}.",
                pick(SUBJECTS, &mut rng),
                pick(VERBS, &mut rng),
                pick(OBJECTS, &mut rng),
                pick(TAILS, &mut rng)
            );
            let sentence = if tokens.is_empty() {
                sentence
            } else {
                format!(" {sentence}")
            };
            sentence_starts.push(tokens.len());
            tokens.extend(self.tokenizer.encode(&sentence));
        }
        Corpus {
            tokens,
            sentence_starts,
            cut: Mutex::new(HashMap::new()),
        }
    }

    /// A text of exactly `n` tokens starting at sentence `sentence` of `corpus`: decode a token
    /// slice, re-count the trimmed text, and adjust the slice until the count is exact.
    pub(crate) fn exact(&self, corpus: &Corpus, sentence: usize, n: usize) -> Arc<str> {
        let sentence = sentence % corpus.sentence_starts.len();
        if let Some(text) = corpus.cut.lock().get(&(sentence, n)) {
            return text.clone();
        }
        let text = self.cut(corpus, sentence, n);
        let mut cut = corpus.cut.lock();
        if cut.len() < CUT_CACHE {
            cut.insert((sentence, n), text.clone());
        }
        text
    }

    fn cut(&self, corpus: &Corpus, sentence: usize, n: usize) -> Arc<str> {
        let start = corpus.sentence_starts[sentence];
        let mut len = n;
        let mut best: Option<(usize, String)> = None;
        for _ in 0..16 {
            let end = (start + len).min(corpus.tokens.len());
            let text = match self.tokenizer.decode(&corpus.tokens[start..end]) {
                Ok(text) => text,
                // A slice ending inside a multi-byte character: step back one token.
                Err(_) => {
                    len = len.saturating_sub(1);
                    continue;
                }
            };
            let text = text.trim_start().to_owned();
            let count = self.count(&text);
            if count == n {
                return text.into();
            }
            let distance = count.abs_diff(n);
            if best.as_ref().is_none_or(|(d, _)| distance < *d) {
                best = Some((distance, text));
            }
            if count < n && end == corpus.tokens.len() {
                break;
            }
            len = if count < n {
                len + (n - count)
            } else {
                len.saturating_sub(count - n)
            };
        }
        // Not reachable with the generated corpus (word tokens re-encode identically); keep
        // the closest text rather than failing a run.
        debug_assert!(false, "no exact {n}-token text at sentence {sentence}");
        best.map(|(_, text)| text).unwrap_or_default().into()
    }
}

fn pick<'a>(words: &[&'a str], rng: &mut StdRng) -> &'a str {
    words.choose(rng).copied().unwrap_or("The scheduler")
}

/// The fixed class pools of the upstream patterns, sized by [`PromptSizes`].
#[derive(Debug)]
pub(crate) struct ClassPools {
    pools: BTreeMap<PromptClass, Vec<BuiltPrompt>>,
}

/// Seed base of the class pools' corpora; fixed so the pools are the same in every run.
const CLASS_POOL_SEED: u64 = 0x11d_0001;

impl ClassPools {
    pub(crate) fn build(text_gen: &TextGen, sizes: &PromptSizes) -> ClassPools {
        let mut pools = BTreeMap::new();
        for (class_idx, class) in PromptClass::ALL.into_iter().enumerate() {
            let n = sizes.tokens(class) as usize;
            let mut items = Vec::with_capacity(class.pool_len());
            for item in 0..class.pool_len() {
                let seed = CLASS_POOL_SEED + (class_idx * 8 + item) as u64;
                let corpus = text_gen.corpus(seed, n + 64);
                let text = text_gen.exact(&corpus, 0, n);
                items.push(BuiltPrompt {
                    class: Some(class),
                    ..BuiltPrompt::text(text, n)
                });
            }
            pools.insert(class, items);
        }
        ClassPools { pools }
    }

    pub(crate) fn get(&self, class: PromptClass, idx: usize) -> &BuiltPrompt {
        let pool = &self.pools[&class];
        &pool[idx % pool.len()]
    }
}

/// Produces a scenario's prompts.
#[derive(Debug)]
pub(crate) enum PromptPlan {
    Tokens {
        text_gen: TextGen,
        distribution: Distribution,
        corpus: Corpus,
        /// Sentences a prompt may start at (so that the longest prompt still fits).
        starts: usize,
    },
    Classes {
        pools: ClassPools,
        weights: Vec<(PromptClass, f64)>,
        total_weight: f64,
    },
    SystemPrompt {
        text_gen: TextGen,
        systems: Vec<(Arc<str>, usize)>,
        questions: Corpus,
        question_tokens: Distribution,
        starts: usize,
    },
    Document {
        text_gen: TextGen,
        documents: Vec<(Arc<str>, usize)>,
        questions: Corpus,
        question_tokens: Distribution,
        starts: usize,
    },
    MultiTurn {
        /// `conversations[c][i]` is turn `i` of conversation `c`.
        conversations: Vec<Vec<Turn>>,
        next_turn: Mutex<Vec<u32>>,
    },
    Dataset {
        entries: Vec<BuiltPrompt>,
        order: DatasetOrder,
        next: AtomicU64,
    },
}

/// One turn of a multi-turn conversation.
#[derive(Debug)]
pub(crate) struct Turn {
    user: Message,
    assistant: Message,
    user_tokens: usize,
    assistant_tokens: usize,
}

/// How many distinct sentence starts the random-offset sources pick from.
const RANDOM_STARTS: usize = 2048;
/// Seed bases for the families' corpora (fixed: the shared prefixes are the same every run).
const FAMILY_SEED: u64 = 0x11d_1000;
const QUESTION_SEED: u64 = 0x11d_2000;
const CONVERSATION_SEED: u64 = 0x11d_3000;
const TOKENS_SEED: u64 = 0x11d_4000;

impl PromptPlan {
    pub(crate) fn build(
        text_gen: &TextGen,
        source: &PromptSource,
        sizes: &PromptSizes,
    ) -> Result<PromptPlan, Error> {
        let random_corpus = |seed: u64, max: u32| -> (Corpus, usize) {
            // About 12 tokens per sentence: RANDOM_STARTS sentences, then room for the longest.
            let corpus = text_gen.corpus(seed, RANDOM_STARTS * 12 + max as usize + 64);
            let starts = corpus
                .sentence_starts
                .iter()
                .take_while(|&&s| s + max as usize + 32 <= corpus.tokens.len())
                .count()
                .max(1);
            (corpus, starts)
        };
        Ok(match source {
            PromptSource::Tokens(distribution) => {
                let (corpus, starts) = random_corpus(TOKENS_SEED, distribution.upper_bound());
                PromptPlan::Tokens {
                    text_gen: text_gen.clone(),
                    distribution: *distribution,
                    corpus,
                    starts,
                }
            }
            PromptSource::Classes(weights) => {
                let weights: Vec<_> = weights
                    .iter()
                    .filter(|(_, w)| **w > 0.0)
                    .map(|(c, w)| (*c, *w))
                    .collect();
                PromptPlan::Classes {
                    pools: ClassPools::build(text_gen, sizes),
                    total_weight: weights.iter().map(|(_, w)| w).sum(),
                    weights,
                }
            }
            PromptSource::Family(PromptFamily::SystemPrompt {
                families,
                prefix_tokens,
                question_tokens,
            }) => {
                let systems = fixed_texts(text_gen, FAMILY_SEED, *families, *prefix_tokens);
                let (questions, starts) =
                    random_corpus(QUESTION_SEED, question_tokens.upper_bound());
                PromptPlan::SystemPrompt {
                    text_gen: text_gen.clone(),
                    systems,
                    questions,
                    question_tokens: *question_tokens,
                    starts,
                }
            }
            PromptSource::Family(PromptFamily::Document {
                documents,
                document_tokens,
                question_tokens,
            }) => {
                let documents =
                    fixed_texts(text_gen, FAMILY_SEED + 500, *documents, *document_tokens);
                let (questions, starts) =
                    random_corpus(QUESTION_SEED + 1, question_tokens.upper_bound());
                PromptPlan::Document {
                    text_gen: text_gen.clone(),
                    documents,
                    questions,
                    question_tokens: *question_tokens,
                    starts,
                }
            }
            PromptSource::Family(PromptFamily::MultiTurn {
                conversations,
                turns,
                user_tokens,
                assistant_tokens,
            }) => {
                let mut all = Vec::with_capacity(*conversations as usize);
                for conversation in 0..*conversations {
                    let seed = CONVERSATION_SEED + u64::from(conversation) * 2;
                    let user = fixed_texts(text_gen, seed << 16, *turns, *user_tokens);
                    let assistant =
                        fixed_texts(text_gen, (seed + 1) << 16, *turns, *assistant_tokens);
                    let turns = user
                        .into_iter()
                        .zip(assistant)
                        .map(
                            |((user, user_tokens), (assistant, assistant_tokens))| Turn {
                                user: Message {
                                    role: "user".into(),
                                    content: user,
                                },
                                assistant: Message {
                                    role: "assistant".into(),
                                    content: assistant,
                                },
                                user_tokens,
                                assistant_tokens,
                            },
                        )
                        .collect();
                    all.push(turns);
                }
                PromptPlan::MultiTurn {
                    next_turn: Mutex::new(vec![0; all.len()]),
                    conversations: all,
                }
            }
            PromptSource::Dataset { path, order } => PromptPlan::Dataset {
                entries: read_dataset(text_gen, path)?,
                order: *order,
                next: AtomicU64::new(0),
            },
        })
    }

    /// The next prompt.
    pub(crate) fn next(&self, rng: &mut StdRng) -> BuiltPrompt {
        match self {
            PromptPlan::Tokens {
                text_gen,
                distribution,
                corpus,
                starts,
            } => {
                let n = distribution.sample(rng) as usize;
                let text = text_gen.exact(corpus, rng.random_range(0..*starts), n);
                BuiltPrompt::text(text, n)
            }
            PromptPlan::Classes {
                pools,
                weights,
                total_weight,
            } => {
                let mut draw = rng.random_range(0.0..*total_weight);
                let mut class = weights[weights.len() - 1].0;
                for (c, w) in weights {
                    if draw < *w {
                        class = *c;
                        break;
                    }
                    draw -= w;
                }
                let idx = rng.random_range(0..class.pool_len());
                pools.get(class, idx).clone()
            }
            PromptPlan::SystemPrompt {
                text_gen,
                systems,
                questions,
                question_tokens,
                starts,
            } => {
                let (system, system_tokens) = &systems[rng.random_range(0..systems.len())];
                let n = question_tokens.sample(rng) as usize;
                let question = text_gen.exact(questions, rng.random_range(0..*starts), n);
                let chars = system.chars().count() + question.chars().count();
                BuiltPrompt {
                    prompt: Prompt::Messages(Arc::from(vec![
                        Message {
                            role: "system".into(),
                            content: system.clone(),
                        },
                        Message {
                            role: "user".into(),
                            content: question,
                        },
                    ])),
                    chars,
                    tokens: system_tokens + n,
                    max_tokens: None,
                    class: None,
                }
            }
            PromptPlan::Document {
                text_gen,
                documents,
                questions,
                question_tokens,
                starts,
            } => {
                let (document, _) = &documents[rng.random_range(0..documents.len())];
                let n = question_tokens.sample(rng) as usize;
                let question = text_gen.exact(questions, rng.random_range(0..*starts), n);
                let text: Arc<str> = format!("{document}\n\nQuestion: {question}").into();
                let tokens = text_gen.count(&text);
                BuiltPrompt::text(text, tokens)
            }
            PromptPlan::MultiTurn {
                conversations,
                next_turn,
            } => {
                let conversation = rng.random_range(0..conversations.len());
                let turn = {
                    let mut next_turn = next_turn.lock();
                    let turn = next_turn[conversation] as usize;
                    next_turn[conversation] =
                        ((turn + 1) % conversations[conversation].len()) as u32;
                    turn
                };
                let history = &conversations[conversation];
                let mut messages = Vec::with_capacity(turn * 2 + 1);
                let mut tokens = 0;
                for done in &history[..turn] {
                    messages.push(done.user.clone());
                    messages.push(done.assistant.clone());
                    tokens += done.user_tokens + done.assistant_tokens;
                }
                messages.push(history[turn].user.clone());
                tokens += history[turn].user_tokens;
                let chars = messages.iter().map(|m| m.content.chars().count()).sum();
                BuiltPrompt {
                    prompt: Prompt::Messages(messages.into()),
                    chars,
                    tokens,
                    max_tokens: None,
                    class: None,
                }
            }
            PromptPlan::Dataset {
                entries,
                order,
                next,
            } => {
                let idx = match order {
                    DatasetOrder::Sequential => {
                        (next.fetch_add(1, Ordering::Relaxed) % entries.len() as u64) as usize
                    }
                    DatasetOrder::Random => rng.random_range(0..entries.len()),
                };
                entries[idx].clone()
            }
        }
    }
}

/// `count` fixed texts of `n` tokens each, from distinct corpora seeded from `seed`.
fn fixed_texts(text_gen: &TextGen, seed: u64, count: u32, n: u32) -> Vec<(Arc<str>, usize)> {
    (0..count)
        .map(|idx| {
            let corpus = text_gen.corpus(seed + u64::from(idx), n as usize + 64);
            (text_gen.exact(&corpus, 0, n as usize), n as usize)
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(untagged)]
enum DatasetLine {
    Text(String),
    Prompt {
        prompt: String,
        max_tokens: Option<u32>,
    },
    Messages {
        messages: Vec<DatasetMessage>,
        max_tokens: Option<u32>,
    },
}

#[derive(Deserialize)]
struct DatasetMessage {
    role: String,
    content: String,
}

fn read_dataset(text_gen: &TextGen, path: &PathBuf) -> Result<Vec<BuiltPrompt>, Error> {
    let bad = |reason: String| Error::Dataset {
        path: path.display().to_string(),
        reason,
    };
    let content = std::fs::read_to_string(path).map_err(|error| bad(error.to_string()))?;
    let json_lines = path
        .extension()
        .is_some_and(|ext| ext == "jsonl" || ext == "json");
    let mut entries = Vec::new();
    for (line_idx, line) in content.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let entry = if json_lines {
            let parsed: DatasetLine = serde_json::from_str(line).map_err(|error| {
                bad(format!(
                    "line {}: expected a string, {{\"prompt\": …}} or {{\"messages\": […]}}: {error}",
                    line_idx + 1
                ))
            })?;
            match parsed {
                DatasetLine::Text(text) => dataset_text(text_gen, text, None),
                DatasetLine::Prompt { prompt, max_tokens } => {
                    dataset_text(text_gen, prompt, max_tokens)
                }
                DatasetLine::Messages {
                    messages,
                    max_tokens,
                } => {
                    if messages.is_empty() {
                        return Err(bad(format!("line {}: messages is empty", line_idx + 1)));
                    }
                    BuiltPrompt {
                        chars: messages.iter().map(|m| m.content.chars().count()).sum(),
                        tokens: messages.iter().map(|m| text_gen.count(&m.content)).sum(),
                        class: None,
                        prompt: Prompt::Messages(
                            messages
                                .into_iter()
                                .map(|m| Message {
                                    role: m.role.into(),
                                    content: m.content.into(),
                                })
                                .collect(),
                        ),
                        max_tokens,
                    }
                }
            }
        } else {
            dataset_text(text_gen, line.to_owned(), None)
        };
        entries.push(entry);
    }
    if entries.is_empty() {
        return Err(bad("no prompts in the file".to_owned()));
    }
    Ok(entries)
}

fn dataset_text(text_gen: &TextGen, text: String, max_tokens: Option<u32>) -> BuiltPrompt {
    let tokens = text_gen.count(&text);
    BuiltPrompt {
        max_tokens,
        ..BuiltPrompt::text(text.into(), tokens)
    }
}

impl PromptSource {
    /// The pattern name requests of this source are reported under (class pools report each
    /// class separately).
    pub fn label(&self) -> &'static str {
        match self {
            PromptSource::Tokens(_) => "tokens",
            PromptSource::Classes(_) => "classes",
            PromptSource::Family(PromptFamily::SystemPrompt { .. }) => "system_prompt",
            PromptSource::Family(PromptFamily::MultiTurn { .. }) => "multi_turn",
            PromptSource::Family(PromptFamily::Document { .. }) => "document",
            PromptSource::Dataset { .. } => "dataset",
        }
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        let bad = |reason: &str| Err(Error::Config(format!("prompt: {reason}")));
        match self {
            PromptSource::Tokens(distribution) => distribution.validate("prompt tokens"),
            PromptSource::Classes(weights) => {
                if weights.values().any(|w| !(*w >= 0.0 && w.is_finite())) {
                    bad("class weights must be >= 0")
                } else if !weights.values().any(|w| *w > 0.0) {
                    bad("at least one class weight must be positive")
                } else {
                    Ok(())
                }
            }
            PromptSource::Family(PromptFamily::SystemPrompt {
                families,
                prefix_tokens,
                question_tokens,
            }) => {
                if *families == 0 || *prefix_tokens == 0 {
                    return bad("system_prompt needs families >= 1 and prefix_tokens >= 1");
                }
                question_tokens.validate("question_tokens")
            }
            PromptSource::Family(PromptFamily::Document {
                documents,
                document_tokens,
                question_tokens,
            }) => {
                if *documents == 0 || *document_tokens == 0 {
                    return bad("document needs documents >= 1 and document_tokens >= 1");
                }
                question_tokens.validate("question_tokens")
            }
            PromptSource::Family(PromptFamily::MultiTurn {
                conversations,
                turns,
                user_tokens,
                assistant_tokens,
            }) => {
                if *conversations == 0 || *turns == 0 || *user_tokens == 0 || *assistant_tokens == 0
                {
                    bad("multi_turn needs conversations, turns, user_tokens, assistant_tokens >= 1")
                } else {
                    Ok(())
                }
            }
            PromptSource::Dataset { .. } => Ok(()),
        }
    }
}
