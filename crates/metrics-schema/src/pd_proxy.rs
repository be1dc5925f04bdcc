//! Metrics of the P/D proxy sidecar, which sends each request first to a prefill engine and
//! then to a decode engine.
//!
//! Ours. The names follow llm-d's unmerged PR #567 (`llm_d_inference_scheduler_pd_proxy_*`,
//! label `connector`) so the demo P/D coordinator dashboard's panels have a source, but in base
//! unit seconds rather than that PR's `_milliseconds`, and with a true-TTFT histogram and an
//! outcome counter the PR lacked. The millisecond names are not emitted.
//!
//! Phases of one request, all measured from when the proxy's handler starts:
//! * prefill: the prefill leg's round trip ([`PREFILL_DURATION_SECONDS`]);
//! * coordinator overhead: the proxy's own work for the request (parsing, building both legs),
//!   i.e. decode start minus arrival with the waits on the client body and the prefill leg
//!   taken out ([`COORDINATOR_OVERHEAD_SECONDS`], tens of µs);
//! * true TTFT: until the first token byte of the decode response reaches the proxy
//!   ([`TRUE_TTFT_SECONDS`]);
//! * decode: the decode leg's full round trip, KV transfer and generation included
//!   ([`DECODE_DURATION_SECONDS`]);
//! * total: until the last response byte ([`TOTAL_DURATION_SECONDS`]).

use crate::{Buckets, Kind, MetricDef, Origin, Stability, Unit, labels};

/// Every family in this module.
pub const ALL: &[&MetricDef] = &[
    &REQUESTS_TOTAL,
    &TRUE_TTFT_SECONDS,
    &COORDINATOR_OVERHEAD_SECONDS,
    &PREFILL_DURATION_SECONDS,
    &DECODE_DURATION_SECONDS,
    &TOTAL_DURATION_SECONDS,
    &TLS_HANDSHAKE_FAILURES_TOTAL,
];

/// Values of the `outcome` label of [`REQUESTS_TOTAL`].
pub mod outcome {
    /// Both legs (or the decode-only leg) finished and the response was relayed.
    pub const SUCCESS: &str = "success";
    /// The request needed no prefill leg (no prefill header) and went to decode only.
    pub const DECODE_ONLY: &str = "decode_only";
    /// The prefill leg failed: connect error, timeout or non-2xx status.
    pub const PREFILL_ERROR: &str = "prefill_error";
    /// The prefill leg failed and the decode engine prefilled the request itself
    /// (`--prefill-fallback=local`).
    pub const PREFILL_FALLBACK: &str = "prefill_fallback";
    /// The decode leg failed: connect error, timeout or non-2xx status.
    pub const DECODE_ERROR: &str = "decode_error";
    /// The proxy refused the request: bad body, or a prefill target outside the allow-list.
    pub const REJECTED: &str = "rejected";
    /// The client went away before the response was complete.
    pub const CLIENT_CANCELLED: &str = "client_cancelled";
    /// Every value, for tests and dashboards.
    pub const ALL: &[&str] = &[
        SUCCESS,
        DECODE_ONLY,
        PREFILL_ERROR,
        PREFILL_FALLBACK,
        DECODE_ERROR,
        REJECTED,
        CLIENT_CANCELLED,
    ];
}

pub const REQUESTS_TOTAL: MetricDef = MetricDef {
    name: "llm_d_inference_scheduler_pd_proxy_requests_total",
    kind: Kind::Counter,
    unit: Unit::Requests,
    help: "Requests handled by the P/D proxy, by connector and outcome (success, decode_only, prefill_error, prefill_fallback, decode_error, rejected or client_cancelled).",
    labels: &[labels::CONNECTOR, labels::OUTCOME],
    buckets: Buckets::None,
    origin: Origin::Ours,
    stability: Stability::Beta,
    deprecated_alias: None,
};

pub const TRUE_TTFT_SECONDS: MetricDef = MetricDef {
    name: "llm_d_inference_scheduler_pd_proxy_true_ttft_seconds",
    kind: Kind::Histogram,
    unit: Unit::Seconds,
    help: "Time in seconds from the proxy receiving a request to the first decode response byte, prefill included.",
    labels: &[labels::CONNECTOR],
    buckets: Buckets::Explicit(&[
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    ]),
    origin: Origin::Ours,
    stability: Stability::Beta,
    deprecated_alias: None,
};

pub const COORDINATOR_OVERHEAD_SECONDS: MetricDef = MetricDef {
    name: "llm_d_inference_scheduler_pd_proxy_coordinator_overhead_seconds",
    kind: Kind::Histogram,
    unit: Unit::Seconds,
    help: "Time in seconds the proxy spends on its own work for a request, waits on the client and the prefill leg excluded.",
    labels: &[labels::CONNECTOR],
    buckets: Buckets::Explicit(&[
        0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
        0.05, 0.1,
    ]),
    origin: Origin::Ours,
    stability: Stability::Beta,
    deprecated_alias: None,
};

pub const PREFILL_DURATION_SECONDS: MetricDef = MetricDef {
    name: "llm_d_inference_scheduler_pd_proxy_prefill_duration_seconds",
    kind: Kind::Histogram,
    unit: Unit::Seconds,
    help: "Round trip of the prefill request in seconds.",
    labels: &[labels::CONNECTOR],
    buckets: Buckets::Explicit(&[
        0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0,
    ]),
    origin: Origin::Ours,
    stability: Stability::Beta,
    deprecated_alias: None,
};

pub const DECODE_DURATION_SECONDS: MetricDef = MetricDef {
    name: "llm_d_inference_scheduler_pd_proxy_decode_duration_seconds",
    kind: Kind::Histogram,
    unit: Unit::Seconds,
    help: "Round trip of the decode request in seconds, KV transfer and generation included.",
    labels: &[labels::CONNECTOR],
    buckets: Buckets::Explicit(&[
        0.01, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 60.0, 120.0, 300.0,
    ]),
    origin: Origin::Ours,
    stability: Stability::Beta,
    deprecated_alias: None,
};

pub const TOTAL_DURATION_SECONDS: MetricDef = MetricDef {
    name: "llm_d_inference_scheduler_pd_proxy_total_duration_seconds",
    kind: Kind::Histogram,
    unit: Unit::Seconds,
    help: "Time in seconds from the proxy receiving a request to the last response byte.",
    labels: &[labels::CONNECTOR],
    buckets: Buckets::Explicit(&[
        0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 60.0, 120.0, 300.0,
    ]),
    origin: Origin::Ours,
    stability: Stability::Beta,
    deprecated_alias: None,
};

/// Client connections whose TLS handshake failed (`--secure-proxy`): a plain-HTTP client, an
/// untrusted certificate, a scanner.
pub const TLS_HANDSHAKE_FAILURES_TOTAL: MetricDef = MetricDef {
    name: "llm_d_inference_scheduler_pd_proxy_tls_handshake_failures_total",
    kind: Kind::Counter,
    unit: Unit::Count,
    help: "Client connections to the P/D proxy whose TLS handshake failed or timed out.",
    labels: &[labels::CONNECTOR],
    buckets: Buckets::None,
    origin: Origin::Ours,
    stability: Stability::Beta,
    deprecated_alias: None,
};
