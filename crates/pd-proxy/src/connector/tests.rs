//! The two legs' bodies, per API.

use expect_test::expect;
use serde_json::{Map, Value, json};

use super::*;

fn object(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

fn legs(api: Api, client: Value) -> (Value, Value) {
    let mut request = object(client.clone());
    let prefill: Value = serde_json::from_slice(&prefill_body(api, &mut request).unwrap()).unwrap();
    assert_eq!(
        Value::Object(request.clone()),
        client,
        "restored for the decode leg"
    );
    let params = json!({"do_remote_prefill": true, "remote_block_ids": [[1, 2]]});
    let decode: Value =
        serde_json::from_slice(&decode_body(&mut request, params).unwrap()).unwrap();
    (prefill, decode)
}

#[test]
fn chat_prefill_caps_tokens_and_drops_streaming() {
    let (prefill, decode) = legs(
        Api::ChatCompletions,
        json!({"model": "m", "messages": [], "stream": true, "stream_options": {"include_usage": true},
               "max_completion_tokens": 50, "min_tokens": 5, "temperature": 0.5}),
    );
    expect![[r#"{"kv_transfer_params":{"do_remote_decode":true,"do_remote_prefill":false,"remote_block_ids":null,"remote_engine_id":null,"remote_host":null,"remote_port":null},"max_completion_tokens":1,"max_tokens":1,"messages":[],"model":"m","stream":false,"temperature":0.5}"#]]
        .assert_eq(&prefill.to_string());
    expect![[r#"{"kv_transfer_params":{"do_remote_prefill":true,"remote_block_ids":[[1,2]]},"max_completion_tokens":50,"messages":[],"min_tokens":5,"model":"m","stream":true,"stream_options":{"include_usage":true},"temperature":0.5}"#]]
        .assert_eq(&decode.to_string());
}

#[test]
fn each_api_caps_its_own_token_field() {
    let cases = [
        (
            Api::Completions,
            json!({"prompt": "p", "max_tokens": 9}),
            "/max_tokens",
        ),
        (
            Api::Messages,
            json!({"messages": [], "max_tokens": 9}),
            "/max_tokens",
        ),
        (
            Api::Responses,
            json!({"input": "p", "max_output_tokens": 9}),
            "/max_output_tokens",
        ),
        (
            Api::Generate,
            json!({"token_ids": [1], "sampling_params": {"max_tokens": 9, "min_tokens": 2}}),
            "/sampling_params/max_tokens",
        ),
        (
            Api::Generate,
            json!({"token_ids": [1]}),
            "/sampling_params/max_tokens",
        ),
    ];
    for (api, client, pointer) in cases {
        let (prefill, decode) = legs(api, client.clone());
        assert_eq!(prefill.pointer(pointer), Some(&json!(1)), "{api:?}");
        assert_eq!(prefill["stream"], false);
        assert!(prefill.pointer("/sampling_params/min_tokens").is_none());
        assert_eq!(
            decode.pointer(pointer),
            client.pointer(pointer),
            "{api:?} decode keeps the client's cap"
        );
    }
}

#[test]
fn kv_transfer_params_are_taken_verbatim_or_not_at_all() {
    let body = br#"{"id":"cmpl-1","choices":[{"text":"x"}],"kv_transfer_params":{"remote_engine_id":"e","tp_size":1}}"#;
    assert_eq!(
        kv_transfer_params_of(body),
        Some(json!({"remote_engine_id": "e", "tp_size": 1}))
    );
    for body in [
        &br#"{"id":"x"}"#[..],
        br#"{"kv_transfer_params":null}"#,
        br#"{"kv_transfer_params":[1]}"#,
        b"not json",
    ] {
        assert_eq!(kv_transfer_params_of(body), None);
    }
    assert_eq!(
        Api::from_path("/v1/chat/completions"),
        Some(Api::ChatCompletions)
    );
    assert_eq!(Api::from_path("/v1/models"), None);
}
