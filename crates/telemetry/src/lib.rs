//! The telemetry runtime shared by every binary of the stack.
//!
//! * Logs: `tracing-subscriber`, text or JSON, filtered by `RUST_LOG`-style directives.
//! * Traces: OpenTelemetry spans exported by OTLP over gRPC or HTTP/protobuf, configured by the
//!   standard `OTEL_*` variables. With no endpoint configured there is no exporter and no
//!   tracer: span-building code checks [`Tracing::tracer`] and does nothing.
//! * Context: W3C `traceparent`/`tracestate` extraction from and injection into HTTP headers.
//! * Metrics: Prometheus text exposition of a per-server `prometheus::Registry` (per server,
//!   not global, so several servers can run in one test process).
//!
//! Library code never reads the environment: each binary's `env.rs` passes a lookup function
//! to [`TelemetryConfig::parse`].

pub mod config;
mod context;
mod log_flags;
mod metrics;
mod tracing_setup;

pub use config::{ConfigError, LogFormat, OtlpProtocol, ParentRoot, Sampling, TelemetryConfig};
pub use context::{extract_context, inject_context, trace_id_hex};
pub use log_flags::{LogFlags, ZapLevel};
pub use metrics::{PROMETHEUS_CONTENT_TYPE, encode_metrics};
pub use tracing_setup::{Error, Tracing, init_logging};
