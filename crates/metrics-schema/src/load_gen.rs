//! Metrics of the load generator: what the client saw, per arrival pattern.
//!
//! Ours. Latencies are measured at the client, so comparing them with the engine's
//! `vllm:time_to_first_token_seconds` and the proxy's true TTFT shows where time goes.
//! [`SCHEDULE_LATENESS_SECONDS`] tells whether the generator itself kept up with its plan: a
//! run whose lateness grows is measuring the generator, not the stack.

use crate::{Buckets, Kind, MetricDef, Origin, Stability, Unit, labels};

/// Client-side latency buckets, 1 ms to 2 min.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// Every family in this module.
pub const ALL: &[&MetricDef] = &[
    &REQUESTS_TOTAL,
    &TIME_TO_FIRST_TOKEN_SECONDS,
    &INTER_TOKEN_LATENCY_SECONDS,
    &REQUEST_DURATION_SECONDS,
    &INPUT_TOKENS_TOTAL,
    &OUTPUT_TOKENS_TOTAL,
    &SCHEDULE_LATENESS_SECONDS,
];

/// Values of the `outcome` label of [`REQUESTS_TOTAL`].
pub mod outcome {
    /// A 2xx response read to the end.
    pub const SUCCESS: &str = "success";
    /// A non-2xx HTTP status.
    pub const HTTP_ERROR: &str = "http_error";
    /// No complete response within the request timeout.
    pub const TIMEOUT: &str = "timeout";
    /// Connect, TLS or stream error before a complete response.
    pub const TRANSPORT_ERROR: &str = "transport_error";
    /// Not sent because the concurrency limit was reached at its scheduled time.
    pub const DROPPED: &str = "dropped";
    /// Every value, for tests and dashboards.
    pub const ALL: &[&str] = &[SUCCESS, HTTP_ERROR, TIMEOUT, TRANSPORT_ERROR, DROPPED];
}

pub const REQUESTS_TOTAL: MetricDef = MetricDef {
    name: "llm_d_load_gen_requests_total",
    kind: Kind::Counter,
    unit: Unit::Requests,
    help: "Requests the load generator scheduled, by arrival pattern and outcome (success, http_error, timeout, transport_error or dropped).",
    labels: &[labels::PATTERN, labels::OUTCOME],
    buckets: Buckets::None,
    origin: Origin::Ours,
    stability: Stability::Beta,
    deprecated_alias: None,
};

pub const TIME_TO_FIRST_TOKEN_SECONDS: MetricDef = MetricDef {
    name: "llm_d_load_gen_time_to_first_token_seconds",
    kind: Kind::Histogram,
    unit: Unit::Seconds,
    help: "Time in seconds from sending a streaming request to receiving its first token.",
    labels: &[labels::PATTERN],
    buckets: Buckets::Explicit(LATENCY_BUCKETS),
    origin: Origin::Ours,
    stability: Stability::Beta,
    deprecated_alias: None,
};

pub const INTER_TOKEN_LATENCY_SECONDS: MetricDef = MetricDef {
    name: "llm_d_load_gen_inter_token_latency_seconds",
    kind: Kind::Histogram,
    unit: Unit::Seconds,
    help: "Time in seconds between consecutive streamed tokens of one response.",
    labels: &[labels::PATTERN],
    buckets: Buckets::Explicit(&[
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5,
    ]),
    origin: Origin::Ours,
    stability: Stability::Beta,
    deprecated_alias: None,
};

pub const REQUEST_DURATION_SECONDS: MetricDef = MetricDef {
    name: "llm_d_load_gen_request_duration_seconds",
    kind: Kind::Histogram,
    unit: Unit::Seconds,
    help: "End-to-end time in seconds from sending a request to reading the last response byte.",
    labels: &[labels::PATTERN, labels::OUTCOME],
    buckets: Buckets::Explicit(LATENCY_BUCKETS),
    origin: Origin::Ours,
    stability: Stability::Beta,
    deprecated_alias: None,
};

pub const INPUT_TOKENS_TOTAL: MetricDef = MetricDef {
    name: "llm_d_load_gen_input_tokens_total",
    kind: Kind::Counter,
    unit: Unit::Tokens,
    help: "Prompt tokens sent, as reported by the server's usage block.",
    labels: &[labels::PATTERN],
    buckets: Buckets::None,
    origin: Origin::Ours,
    stability: Stability::Beta,
    deprecated_alias: None,
};

pub const OUTPUT_TOKENS_TOTAL: MetricDef = MetricDef {
    name: "llm_d_load_gen_output_tokens_total",
    kind: Kind::Counter,
    unit: Unit::Tokens,
    help: "Completion tokens received, as reported by the server's usage block.",
    labels: &[labels::PATTERN],
    buckets: Buckets::None,
    origin: Origin::Ours,
    stability: Stability::Beta,
    deprecated_alias: None,
};

pub const SCHEDULE_LATENESS_SECONDS: MetricDef = MetricDef {
    name: "llm_d_load_gen_schedule_lateness_seconds",
    kind: Kind::Histogram,
    unit: Unit::Seconds,
    help: "Delay in seconds between a request's planned send time and when it was actually sent.",
    labels: &[labels::PATTERN],
    buckets: Buckets::Explicit(&[
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    ]),
    origin: Origin::Ours,
    stability: Stability::Beta,
    deprecated_alias: None,
};
