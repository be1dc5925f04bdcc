//! Request bodies: the shapes vLLM accepts, and clear errors for the rest.

use expect_test::{Expect, expect};

use crate::request::parse;

fn check(path: &str, body: &str, expect: Expect) {
    let out = match parse(path, body.as_bytes(), "id") {
        Ok(request) => format!("model={} prompt={:?}", request.model, request.prompt),
        Err(error) => format!("error: {error}"),
    };
    expect.assert_eq(&out);
}

#[test]
fn completions_and_chat_prompts() {
    check(
        "/v1/completions",
        r#"{"model":"m","prompt":"hi"}"#,
        expect![[r#"model=m prompt=Text("hi")"#]],
    );
    check(
        "/v1/completions?x=1",
        r#"{"model":"m","prompt":[1,2,3]}"#,
        expect![[r#"model=m prompt=Tokens([1, 2, 3])"#]],
    );
    check(
        "/v1/completions",
        r#"{"model":"m","prompt":["a","b"]}"#,
        expect![[r#"model=m prompt=Text("a")"#]],
    );
    check(
        "/v1/chat/completions",
        r#"{"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]}"#,
        expect![[
            r#"model=m prompt=Chat([ChatMessage { role: "system", content: "s" }, ChatMessage { role: "user", content: "a\nb" }])"#
        ]],
    );
    check(
        "/v1/embeddings",
        r#"{"model":"m","input":"x"}"#,
        expect![[r#"model=m prompt=None"#]],
    );
}

#[test]
fn bad_bodies_get_clear_errors() {
    check(
        "/v1/completions",
        "not json",
        expect![[r#"error: body is not valid JSON: expected ident at line 1 column 2"#]],
    );
    check(
        "/v1/completions",
        "[1]",
        expect![[r#"error: body is not a JSON object"#]],
    );
    check(
        "/v1/completions",
        r#"{"prompt":"x"}"#,
        expect![[r#"error: model is required"#]],
    );
    check(
        "/v1/completions",
        r#"{"model":7,"prompt":"x"}"#,
        expect![[r#"error: model must be a string"#]],
    );
    check(
        "/v1/completions",
        r#"{"model":"m"}"#,
        expect![[r#"error: prompt is required for /v1/completions"#]],
    );
    check(
        "/v1/completions",
        r#"{"model":"m","prompt":{}}"#,
        expect![[r#"error: prompt must be a string, a list of token ids, or a list of strings"#]],
    );
    check(
        "/v1/completions",
        r#"{"model":"m","prompt":[99999999999]}"#,
        expect![[r#"error: prompt must be a string, a list of token ids, or a list of strings"#]],
    );
    check(
        "/v1/chat/completions",
        r#"{"model":"m","messages":[]}"#,
        expect![[r#"error: messages: must not be empty"#]],
    );
    check(
        "/v1/chat/completions",
        r#"{"model":"m","messages":[{"content":"x"}]}"#,
        expect![[r#"error: messages: [0].role is required"#]],
    );
    check(
        "/v1/chat/completions",
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url"}]}]}"#,
        expect![[r#"error: messages: [0].content: part type image_url is not supported"#]],
    );
}

#[test]
fn chat_tokens_equal_the_simulators() {
    // The simulator tokenizes chat requests with encode_chat over the same flattening.
    let tokenizer = tokenizer::Tokenizer::embedded();
    let request = parse(
        "/v1/chat/completions",
        br#"{"model":"m","messages":[{"role":"user","content":"Hello there"}]}"#,
        "id",
    )
    .unwrap();
    let expected = tokenizer
        .encode_chat(&[tokenizer::ChatMessage {
            role: "user".to_owned(),
            content: "Hello there".to_owned(),
        }])
        .unwrap();
    assert_eq!(&*request.tokens(&tokenizer).unwrap(), expected.as_slice());
}
