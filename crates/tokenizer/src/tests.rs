//! Tokenizer tests: round trips, counts and chat rendering.

use expect_test::expect;

use super::*;

#[test]
fn embedded_round_trips_text() {
    let tokenizer = Tokenizer::embedded();
    let text = "The quick brown fox jumps over the lazy dog. Ünïcödé and 数字 123456.";
    let ids = tokenizer.encode(text);
    assert!(ids.len() < text.len(), "BPE merges bytes into fewer tokens");
    assert_eq!(tokenizer.decode(&ids).unwrap(), text);
    assert_eq!(tokenizer.count(text), ids.len());
}

#[test]
fn embedded_ids_are_cl100k() {
    // Known cl100k_base ids: "hello world" -> [15339, 1917].
    assert_eq!(
        Tokenizer::embedded().encode("hello world"),
        vec![15339, 1917]
    );
}

#[test]
fn unknown_token_is_an_error_not_a_panic() {
    let err = Tokenizer::embedded().decode(&[u32::MAX]).unwrap_err();
    expect![[r#"token id 4294967295 is not in the vocabulary"#]].assert_eq(&err.to_string());
}

#[test]
fn chat_renders_chatml_with_generation_prompt() {
    let messages = vec![
        ChatMessage {
            role: "system".into(),
            content: "You are terse.".into(),
        },
        ChatMessage {
            role: "user".into(),
            content: "Hi".into(),
        },
    ];
    let rendered = Tokenizer::embedded().render_chat(&messages, true).unwrap();
    expect![[r#"
        <|im_start|>system
        You are terse.<|im_end|>
        <|im_start|>user
        Hi<|im_end|>
        <|im_start|>assistant
    "#]]
    .assert_eq(&rendered);
}

#[test]
fn shared_chat_prefix_gives_shared_token_prefix() {
    let tokenizer = Tokenizer::embedded();
    let system = ChatMessage {
        role: "system".into(),
        content: "Long shared policy. ".repeat(50),
    };
    let first = tokenizer
        .encode_chat(&[
            system.clone(),
            ChatMessage {
                role: "user".into(),
                content: "A?".into(),
            },
        ])
        .unwrap();
    let second = tokenizer
        .encode_chat(&[
            system,
            ChatMessage {
                role: "user".into(),
                content: "B?".into(),
            },
        ])
        .unwrap();
    let common = first
        .iter()
        .zip(&second)
        .take_while(|(a, b)| a == b)
        .count();
    assert!(
        common > 100,
        "the system prompt's tokens are shared, got {common}"
    );
}

#[test]
fn missing_tokenizer_file_is_a_clear_error() {
    let err = Tokenizer::from_path(Path::new("/nonexistent/tokenizer.json")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("tokenizer file /nonexistent/tokenizer.json"),
        "{err}"
    );
}

#[test]
fn hugging_face_tokenizer_and_template_load_from_a_directory() {
    let dir = std::env::temp_dir().join(format!("tok-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A tiny word-level tokenizer.json, the format `tokenizers` saves.
    let tokenizer_json = r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],
      "normalizer":null,"pre_tokenizer":{"type":"Whitespace"},"post_processor":null,"decoder":null,
      "model":{"type":"WordLevel","vocab":{"[UNK]":0,"hello":1,"world":2,"user":3,":":4},"unk_token":"[UNK]"}}"#;
    std::fs::write(dir.join("tokenizer.json"), tokenizer_json).unwrap();
    std::fs::write(
        dir.join("tokenizer_config.json"),
        r#"{"chat_template":"{% for m in messages %}{{ m.role }} : {{ m.content }} {% endfor %}","eos_token":{"content":"[UNK]"}}"#,
    )
    .unwrap();
    let tokenizer = Tokenizer::from_path(&dir).unwrap();
    assert_eq!(tokenizer.encode("hello world"), vec![1, 2]);
    let ids = tokenizer
        .encode_chat(&[ChatMessage {
            role: "user".into(),
            content: "hello".into(),
        }])
        .unwrap();
    assert_eq!(ids, vec![3, 4, 1]);
    std::fs::remove_dir_all(&dir).unwrap();
}
