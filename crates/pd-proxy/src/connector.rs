//! The nixlv2 connector's request rewriting: the prefill leg and the decode leg built by
//! editing the one parsed client body, never re-parsing it.
//!
//! Prefill leg (vLLM's `toy_proxy_server.py` and the upstream sidecar's
//! `connector_nixlv2.go`): `kv_transfer_params = {do_remote_decode: true, do_remote_prefill:
//! false, remote_*: null}`, `stream: false`, no `stream_options`, the API's token cap set to 1
//! (`max_tokens`, plus `max_completion_tokens` when present; `max_output_tokens` for the
//! Responses API; `sampling_params.max_tokens` for the generate API) and the minimum-token
//! fields dropped. Decode leg: the client's body as it came, plus the prefill response's
//! `kv_transfer_params` verbatim.

#[cfg(test)]
mod tests;

use serde_json::{Map, Value, json};

/// The OpenAI-style APIs the sidecar disaggregates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    ChatCompletions,
    Completions,
    Messages,
    Responses,
    Generate,
}

impl Api {
    /// The API served at `path`, when the sidecar disaggregates it.
    pub fn from_path(path: &str) -> Option<Api> {
        Some(match path {
            "/v1/chat/completions" => Api::ChatCompletions,
            "/v1/completions" => Api::Completions,
            "/v1/messages" => Api::Messages,
            "/v1/responses" => Api::Responses,
            "/inference/v1/generate" => Api::Generate,
            _ => return None,
        })
    }
}

/// Top-level fields the prefill leg changes; restored before the decode leg.
const EDITED: &[&str] = &[
    "kv_transfer_params",
    "stream",
    "stream_options",
    "max_tokens",
    "max_completion_tokens",
    "max_output_tokens",
    "min_tokens",
    "min_completion_tokens",
    "sampling_params",
];

/// Writes the prefill leg's body. `request` is edited in place and restored before
/// returning, so it is the client's body again for [`decode_body`].
pub fn prefill_body(
    api: Api,
    request: &mut Map<String, Value>,
) -> Result<Vec<u8>, serde_json::Error> {
    let saved: Vec<(&str, Option<Value>)> = EDITED
        .iter()
        .map(|key| (*key, request.get(*key).cloned()))
        .collect();
    request.insert(
        "kv_transfer_params".into(),
        json!({
            "do_remote_decode": true, "do_remote_prefill": false, "remote_engine_id": null,
            "remote_block_ids": null, "remote_host": null, "remote_port": null,
        }),
    );
    request.insert("stream".into(), Value::Bool(false));
    request.remove("stream_options");
    request.remove("min_tokens");
    request.remove("min_completion_tokens");
    match api {
        Api::ChatCompletions | Api::Completions | Api::Messages => {
            request.insert("max_tokens".into(), Value::from(1));
            if request.contains_key("max_completion_tokens") {
                request.insert("max_completion_tokens".into(), Value::from(1));
            }
        }
        Api::Responses => {
            request.insert("max_output_tokens".into(), Value::from(1));
        }
        Api::Generate => {
            if let Some(Value::Object(params)) = request.get_mut("sampling_params") {
                params.insert("max_tokens".into(), Value::from(1));
                params.remove("min_tokens");
            } else {
                request.insert("sampling_params".into(), json!({"max_tokens": 1}));
            }
        }
    }
    let body = serde_json::to_vec(&*request);
    for (key, value) in saved {
        match value {
            Some(value) => {
                request.insert(key.to_owned(), value);
            }
            None => {
                request.remove(key);
            }
        }
    }
    body
}

/// Writes the decode leg's body: the client's request plus the prefill's
/// `kv_transfer_params`, verbatim.
pub fn decode_body(
    request: &mut Map<String, Value>,
    kv_transfer_params: Value,
) -> Result<Vec<u8>, serde_json::Error> {
    request.insert("kv_transfer_params".into(), kv_transfer_params);
    serde_json::to_vec(&*request)
}

/// The prefill response's top-level `kv_transfer_params` object, skipping the rest of the
/// body without building it; `None` when absent, null or not an object.
pub fn kv_transfer_params_of(prefill_response: &[u8]) -> Option<Value> {
    // Unknown fields are skipped by the deserializer, not built.
    #[derive(serde::Deserialize)]
    struct Reply {
        #[serde(default)]
        kv_transfer_params: Option<Value>,
    }
    let reply: Reply = serde_json::from_slice(prefill_response).ok()?;
    reply.kv_transfer_params.filter(Value::is_object)
}

/// Whether the client asked for a streamed response.
pub fn is_streaming(request: &Map<String, Value>) -> bool {
    request
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}
