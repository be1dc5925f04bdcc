//! W3C trace context for each request: a fresh trace id and parent span id, sent as
//! `traceparent: 00-<trace-id>-<span-id>-01` (sampled), so the request's trace can be looked
//! up by the recorded trace id.

#[cfg(test)]
mod tests;

use std::fmt::Write as _;

use rand::Rng;

/// One request's trace context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    /// 16 random bytes, never all zero.
    pub trace_id: [u8; 16],
    /// 8 random bytes, never all zero.
    pub span_id: [u8; 8],
}

impl TraceContext {
    /// A new random, valid context.
    pub fn generate(rng: &mut impl Rng) -> TraceContext {
        let mut trace_id = [0u8; 16];
        let mut span_id = [0u8; 8];
        while trace_id == [0; 16] {
            rng.fill(&mut trace_id);
        }
        while span_id == [0; 8] {
            rng.fill(&mut span_id);
        }
        TraceContext { trace_id, span_id }
    }

    /// The trace id as 32 lowercase hex digits.
    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    /// The `traceparent` header value (version 00, sampled).
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-01", hex(&self.trace_id), hex(&self.span_id))
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}
