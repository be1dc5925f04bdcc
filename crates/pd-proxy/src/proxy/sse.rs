//! Finding the first token in a relayed SSE stream, so true TTFT ends at the first token
//! byte sent to the client, not at a role-only chunk that precedes it.
//!
//! Only the events up to the first token are parsed; after that the stream passes through
//! untouched.

use serde_json::Value;

/// Events bigger than this without a token stop the search (the chunk counts as the token).
const MAX_PENDING: usize = 1 << 20;

/// Scans SSE bytes for the first event that carries generated text.
#[derive(Debug, Default)]
pub(crate) struct FirstToken {
    pending: Vec<u8>,
    found: bool,
}

impl FirstToken {
    /// Whether the first token has been seen.
    pub(crate) fn found(&self) -> bool {
        self.found
    }

    /// Feeds the next chunk; true when this chunk completes the first event with a token (or
    /// an error, or `[DONE]`: the first byte the client can act on).
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> bool {
        if self.found {
            return false;
        }
        self.pending.extend_from_slice(chunk);
        while let Some(end) = find_event_end(&self.pending) {
            let event: Vec<u8> = self.pending.drain(..end).collect();
            if event_has_token(&event) {
                self.found = true;
                self.pending = Vec::new();
                return true;
            }
        }
        if self.pending.len() > MAX_PENDING {
            self.found = true;
            self.pending = Vec::new();
            return true;
        }
        false
    }
}

/// End (exclusive, separator included) of the first complete event.
fn find_event_end(buffer: &[u8]) -> Option<usize> {
    let lf = buffer.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    let crlf = buffer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn event_has_token(event: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(event) else {
        return true;
    };
    for line in text.lines() {
        let Some(data) = line.strip_prefix("data:") else {
            continue;
        };
        let data = data.trim();
        if data == "[DONE]" {
            return true;
        }
        let Ok(value) = serde_json::from_str::<Value>(data) else {
            return true;
        };
        if value.get("error").is_some() {
            return true;
        }
        let Some(choices) = value.get("choices").and_then(Value::as_array) else {
            continue;
        };
        for choice in choices {
            let nonempty =
                |v: Option<&Value>| v.and_then(Value::as_str).is_some_and(|s| !s.is_empty());
            let delta = choice.get("delta");
            if nonempty(choice.get("text"))
                || nonempty(delta.and_then(|d| d.get("content")))
                || nonempty(delta.and_then(|d| d.get("reasoning_content")))
                || nonempty(delta.and_then(|d| d.get("reasoning")))
                || delta
                    .and_then(|d| d.get("tool_calls"))
                    .and_then(Value::as_array)
                    .is_some_and(|calls| !calls.is_empty())
                || choice.get("finish_reason").is_some_and(|r| !r.is_null())
            {
                return true;
            }
        }
    }
    false
}
