//! What is measured for one request, as written to the JSON lines file.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a request failed. A response with a non-success status is `Http`; the other kinds
/// keep the status when one was received (a stream cut after `200 OK` has status 200).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The server answered with a non-2xx status.
    Http,
    /// No connection could be made.
    Connect,
    /// The connection closed or failed before a response head arrived.
    ConnectionClosed,
    /// The request did not complete within the per-request timeout.
    Timeout,
    /// The body ended or broke before `data: [DONE]` (streaming).
    StreamIncomplete,
    /// The stream carried an `{"error": …}` event.
    StreamError,
    /// The non-streaming body ended or broke before its declared end.
    BodyIncomplete,
    /// The body was not the expected JSON.
    InvalidResponse,
}

impl FailureKind {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Http => "http",
            FailureKind::Connect => "connect",
            FailureKind::ConnectionClosed => "connection_closed",
            FailureKind::Timeout => "timeout",
            FailureKind::StreamIncomplete => "stream_incomplete",
            FailureKind::StreamError => "stream_error",
            FailureKind::BodyIncomplete => "body_incomplete",
            FailureKind::InvalidResponse => "invalid_response",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finished request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Run-wide sequence number in start order (0-based).
    pub seq: u64,
    /// Closed-loop worker (1-based), `None` in open loop.
    pub worker: Option<u32>,
    /// The worker's request number (1-based), as in the script's `W<id>-<n>`.
    pub worker_request: Option<u64>,
    /// Pattern name (upstream pattern, or the scenario's name).
    pub pattern: String,
    /// The `X-Request-ID` sent.
    pub request_id: String,
    /// The trace id of the `traceparent` sent (32 hex digits).
    pub trace_id: String,
    /// Whether the request asked for streaming.
    pub stream: bool,
    /// Prompt content characters.
    pub prompt_chars: usize,
    /// Prompt content tokens with the stack's tokenizer (no chat template).
    pub prompt_tokens: usize,
    /// `max_tokens` sent.
    pub max_tokens: u32,
    /// Open loop: scheduled start, ms since the run started.
    pub scheduled_ms: Option<f64>,
    /// Open loop: actual send start minus scheduled start, in ms.
    pub lateness_ms: Option<f64>,
    /// Send start, ms since the run started.
    pub start_ms: f64,
    /// HTTP status, when a response head arrived.
    pub status: Option<u16>,
    /// `None` on success.
    pub failure: Option<FailureKind>,
    /// Error detail for failures (not a label; free text).
    pub error: Option<String>,
    /// Time to response headers, ms.
    pub headers_ms: Option<f64>,
    /// Time to the first content token, ms (streaming only).
    pub ttft_ms: Option<f64>,
    /// Gaps between consecutive content chunks, ms (streaming only).
    pub itl_ms: Vec<f64>,
    /// Send start to the last byte, ms.
    pub e2e_ms: f64,
    /// `usage.prompt_tokens` as the server counted them (template included).
    pub usage_prompt_tokens: Option<u64>,
    /// `usage.completion_tokens`.
    pub usage_completion_tokens: Option<u64>,
}

impl RequestRecord {
    /// Whether the request succeeded (2xx and a complete, well-formed body).
    pub fn is_success(&self) -> bool {
        self.failure.is_none()
    }

    /// The summary's "failures by status" key: `HTTP 503`, `HTTP 200 stream_incomplete`,
    /// `connect`, `timeout`, …
    pub fn failure_key(&self) -> Option<String> {
        let kind = self.failure?;
        Some(match (self.status, kind) {
            (Some(status), FailureKind::Http) => format!("HTTP {status}"),
            (Some(status), kind) => format!("HTTP {status} {kind}"),
            (None, kind) => kind.to_string(),
        })
    }
}
