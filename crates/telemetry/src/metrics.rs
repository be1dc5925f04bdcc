//! Prometheus text exposition of a registry.

use prometheus::{Encoder, Registry, TextEncoder};

/// The exposition content type vLLM serves (`prometheus_client`'s classic text format).
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders every family of `registry` in the text format.
pub fn encode_metrics(registry: &Registry) -> Vec<u8> {
    let mut buffer = Vec::with_capacity(16 * 1024);
    // Encoding into a Vec fails only for malformed families, which registration rejects.
    if let Err(error) = TextEncoder::new().encode(&registry.gather(), &mut buffer) {
        tracing::error!(%error, "Encoding metrics failed.");
    }
    buffer
}
