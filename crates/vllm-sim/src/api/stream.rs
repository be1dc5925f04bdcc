//! SSE chunks exactly as vLLM 0.33 writes them (`exclude_unset` dumps, declaration order).

use bytes::Bytes;

use super::protocol::Usage;

/// Which endpoint a stream belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Completions,
    Chat,
}

/// Builds the `data:` lines of one response.
pub(crate) struct ChunkWriter {
    endpoint: Endpoint,
    /// `{"id":…,"object":…,"created":…,"model":…` shared by every chunk.
    head: String,
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

impl ChunkWriter {
    pub(crate) fn new(endpoint: Endpoint, id: &str, created: u64, model: &str) -> ChunkWriter {
        let object = match endpoint {
            Endpoint::Completions => "text_completion",
            Endpoint::Chat => "chat.completion.chunk",
        };
        let head = format!(
            r#"{{"id":{},"object":"{object}","created":{created},"model":{}"#,
            json_str(id),
            json_str(model)
        );
        ChunkWriter { endpoint, head }
    }

    /// The chat role chunk (none for completions).
    pub(crate) fn role(&self) -> Option<Bytes> {
        (self.endpoint == Endpoint::Chat).then(|| {
            Bytes::from(format!(
                "data: {},\"choices\":[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":\"\"}},\"logprobs\":null,\"finish_reason\":null}}],\"prompt_token_ids\":null,\"prompt_text\":null}}\n\n",
                self.head
            ))
        })
    }

    /// A content chunk; `finish` makes it the finish chunk carrying `kv_transfer_params`.
    pub(crate) fn content(
        &self,
        text: &str,
        finish: Option<&str>,
        kv_transfer_params: Option<&serde_json::Value>,
        usage: Option<&Usage>,
    ) -> Bytes {
        let text = json_str(text);
        let kv = kv_transfer_params.map_or("null".to_owned(), |v| v.to_string());
        let usage = usage
            .map(|usage| {
                format!(
                    ",\"usage\":{}",
                    serde_json::to_string(usage).unwrap_or_default()
                )
            })
            .unwrap_or_default();
        let line = match (self.endpoint, finish) {
            (Endpoint::Chat, None) => format!(
                "data: {},\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{text}}},\"logprobs\":null,\"finish_reason\":null,\"token_ids\":null}}]{usage},\"kv_transfer_params\":null}}\n\n",
                self.head
            ),
            (Endpoint::Chat, Some(reason)) => format!(
                "data: {},\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{text}}},\"logprobs\":null,\"finish_reason\":\"{reason}\",\"stop_reason\":null,\"token_ids\":null,\"weight_versions\":null}}]{usage},\"kv_transfer_params\":{kv}}}\n\n",
                self.head
            ),
            (Endpoint::Completions, reason) => format!(
                "data: {},\"choices\":[{{\"index\":0,\"text\":{text},\"logprobs\":null,\"finish_reason\":{},\"stop_reason\":null,\"prompt_token_ids\":null,\"token_ids\":null,\"weight_versions\":null}}]{usage},\"kv_transfer_params\":{}}}\n\n",
                self.head,
                reason.map_or("null".to_owned(), |r| format!("\"{r}\"")),
                if reason.is_some() {
                    kv
                } else {
                    "null".to_owned()
                },
            ),
        };
        Bytes::from(line)
    }

    /// The usage-only chunk sent after the finish chunk when `include_usage` is on.
    pub(crate) fn usage(&self, usage: &Usage) -> Bytes {
        Bytes::from(format!(
            "data: {},\"choices\":[],\"usage\":{}}}\n\n",
            self.head,
            serde_json::to_string(usage).unwrap_or_default()
        ))
    }

    pub(crate) fn done() -> Bytes {
        Bytes::from_static(b"data: [DONE]\n\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_chunks_have_vllm_field_order() {
        let writer = ChunkWriter::new(Endpoint::Chat, "chatcmpl-1", 7, "m");
        let role = writer.role().unwrap();
        assert_eq!(
            std::str::from_utf8(&role).unwrap(),
            "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}],\"prompt_token_ids\":null,\"prompt_text\":null}\n\n"
        );
        let last = writer.content("\"hi\"", Some("length"), None, None);
        let json: serde_json::Value =
            serde_json::from_slice(&last["data: ".len()..last.len() - 2]).unwrap();
        assert_eq!(json["choices"][0]["delta"]["content"], "\"hi\"");
        assert_eq!(json["choices"][0]["finish_reason"], "length");
        assert!(json["kv_transfer_params"].is_null());
    }

    #[test]
    fn completion_usage_chunk_has_empty_choices() {
        let writer = ChunkWriter::new(Endpoint::Completions, "cmpl-1", 7, "m");
        let usage = Usage {
            prompt_tokens: 3,
            total_tokens: 5,
            completion_tokens: 2,
            prompt_tokens_details: None,
        };
        assert_eq!(
            std::str::from_utf8(&writer.usage(&usage)).unwrap(),
            "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"created\":7,\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"total_tokens\":5,\"completion_tokens\":2}}\n\n"
        );
    }
}
