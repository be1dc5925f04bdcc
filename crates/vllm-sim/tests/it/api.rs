//! The OpenAI surface: shapes, request ids, and every kind of bad input answered as vLLM
//! answers it, and counted.

use serde_json::{Value, json};

use crate::support::{client, post, scrape, sim};

#[tokio::test]
async fn bad_input_gets_vllms_status_and_error_shape() {
    let server = sim(&["--max-model-len", "64", "--max-request-body-mb", "1"]).await;
    let completions = format!("{}/v1/completions", server.url());
    let long_prompt = "word ".repeat(200);
    // (body, status, error type, param)
    let cases: Vec<(Value, u16, &str, Option<&str>)> = vec![
        (
            json!({"model": "other", "prompt": "x"}),
            404,
            "NotFoundError",
            Some("model"),
        ),
        (
            json!({"prompt": long_prompt}),
            400,
            "BadRequestError",
            Some("input_tokens"),
        ),
        (
            json!({"prompt": "x", "max_tokens": -1}),
            400,
            "BadRequestError",
            Some("max_tokens"),
        ),
        (
            json!({"prompt": "x", "max_tokens": 1_000_000}),
            400,
            "BadRequestError",
            Some("max_tokens"),
        ),
        (
            json!({"max_tokens": 3}),
            400,
            "Bad Request",
            Some("body.prompt"),
        ),
        (json!({"prompt": 42}), 400, "Bad Request", Some("body")),
        (
            json!({"prompt": "x", "max_tokens": "many"}),
            400,
            "Bad Request",
            Some("body"),
        ),
        (
            json!({"prompt": ""}),
            400,
            "BadRequestError",
            Some("prompt"),
        ),
    ];
    for (body, status, kind, param) in &cases {
        let (got_status, got) = post(&completions, body).await;
        assert_eq!(got_status, *status, "{body}: {got}");
        assert_eq!(got["error"]["type"], *kind, "{body}: {got}");
        assert_eq!(got["error"]["code"], *status, "{body}: {got}");
        assert_eq!(got["error"]["param"].as_str(), *param, "{body}: {got}");
        assert!(
            got["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    let http = client();
    let malformed = http
        .post(&completions)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let body: Value = malformed.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("json_invalid"),
        "{body}"
    );
    let huge = http
        .post(&completions)
        .body(vec![b' '; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), 413);
    let forced = http
        .post(&completions)
        .header("X-Return-Error", "503")
        .json(&json!({"prompt": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(forced.status(), 503);
    // Every refusal is counted, none is lost.
    let metrics = scrape(&server).await;
    let errors = metrics
        .value(
            "http_requests_total",
            &[("handler", "/v1/completions"), ("status", "4xx")],
        )
        .unwrap();
    assert_eq!(errors, (cases.len() + 2) as f64);
    let server_errors = metrics
        .value(
            "http_requests_total",
            &[("handler", "/v1/completions"), ("status", "5xx")],
        )
        .unwrap();
    assert_eq!(server_errors, 1.0);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn responses_have_vllms_shape_and_request_ids() {
    let server = sim(&[
        "--enable-prompt-tokens-details",
        "--enable-request-id-headers",
    ])
    .await;
    let http = client();
    let response = http
        .post(format!("{}/v1/chat/completions", server.url()))
        .header("X-Request-Id", "abc-123")
        .json(&json!({"messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 4}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "abc-123");
    let text = response.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["id"], "chatcmpl-abc-123");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    assert_eq!(body["usage"]["completion_tokens"], 4);
    assert_eq!(body["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
    // vLLM's key order: prompt_tokens, total_tokens, completion_tokens.
    let usage_at = |key: &str| text.find(&format!("\"{key}\"")).unwrap();
    assert!(usage_at("prompt_tokens") < usage_at("total_tokens"));
    assert!(usage_at("total_tokens") < usage_at("completion_tokens"));

    let models: Value = http
        .get(format!("{}/v1/models", server.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["data"][0]["id"], "test-model");
    assert_eq!(models["data"][0]["owned_by"], "vllm");
    let health = http
        .get(format!("{}/health", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(health.bytes().await.unwrap().is_empty());
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_repeated_prompt_hits_the_prefix_cache() {
    let server = sim(&["--enable-prompt-tokens-details"]).await;
    let url = format!("{}/v1/completions", server.url());
    let prompt = "A long shared system prompt about routing and caches. ".repeat(20);
    let (_, first) = post(&url, &json!({"prompt": prompt, "max_tokens": 2})).await;
    let (_, second) = post(&url, &json!({"prompt": prompt, "max_tokens": 2})).await;
    let prompt_tokens = first["usage"]["prompt_tokens"].as_u64().unwrap();
    assert_eq!(first["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
    // All full blocks but the one holding the last prompt token come from the cache.
    let expected = (prompt_tokens - 1) / 16 * 16;
    assert_eq!(
        second["usage"]["prompt_tokens_details"]["cached_tokens"],
        expected
    );
    let metrics = scrape(&server).await;
    assert_eq!(
        metrics.value("vllm:prefix_cache_hits_total", &[]),
        Some(expected as f64)
    );
    assert_eq!(
        metrics.value("vllm:prefix_cache_queries_total", &[]),
        Some(2.0 * prompt_tokens as f64)
    );
    server.shutdown().await.unwrap();
}
