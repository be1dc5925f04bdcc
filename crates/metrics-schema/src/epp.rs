//! Metrics of the endpoint picker (EPP).
//!
//! Most names reproduce llm-d-router's canonical `llm_d_epp_*` families (llm-d-router
//! `docs/metrics.md`, `pkg/epp/metrics/`) with GAIE v1.5's label sets and buckets, so the
//! upstream dashboards and the guides' PromQL work unchanged; those are `Origin::Upstream`.
//! Where llm-d renamed a GAIE or `llm_d_inference_scheduler_*` family, the old name is the
//! `deprecated_alias`: the EPP emits both for two minor releases after 0.1 (through 0.3), as
//! llm-d-router dual-emits them, and dashboards must read the new name only, since summing
//! both would double-count. `llm_d_epp_per_endpoint_queue_size` has no alias because GAIE's
//! `inference_pool_per_pod_queue_size` used a different label set.
//!
//! Three families are ours: [`PREFIX_CACHE_HITS_TOTAL`], [`PREFIX_CACHE_SCORER_MATCHED_BLOCKS`]
//! and [`ROUTING_DECISION_DURATION_SECONDS`]. Their names come from the llm-d tracing demo
//! script, which upstream never implemented (reference `llm-d-epp-and-sidecar.md` §4.3).

use crate::{Buckets, Kind, MetricDef, Origin, Stability, Unit, labels};

const LLM_D_ROUTER: Origin = Origin::Upstream {
    source: "llm-d-router docs/metrics.md, pkg/epp/metrics (GAIE v1.5 pkg/epp/metrics/metrics.go)",
};
const LLM_D_SCHEDULER: Origin = Origin::Upstream {
    source: "llm-d-router pkg/metrics/metrics.go (pd_decision_total)",
};

/// GAIE's general latency buckets, 5 ms to 1 h.
const GENERAL_LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 120.0, 180.0, 240.0, 300.0, 360.0, 480.0, 600.0, 900.0,
    1200.0, 1800.0, 2700.0, 3600.0,
];
/// GAIE's scheduler and plugin buckets, 100 µs to 100 ms.
const SCHEDULER_BUCKETS: &[f64] = &[
    0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1,
];
/// GAIE's request-size buckets: powers of two from 64 B to 1 GiB.
const REQUEST_SIZE_BUCKETS: &[f64] = &[
    64.0,
    128.0,
    256.0,
    512.0,
    1024.0,
    2048.0,
    4096.0,
    8192.0,
    16384.0,
    32768.0,
    65536.0,
    131072.0,
    262144.0,
    524288.0,
    1048576.0,
    2097152.0,
    4194304.0,
    8388608.0,
    16777216.0,
    33554432.0,
    67108864.0,
    134217728.0,
    268435456.0,
    536870912.0,
    1073741824.0,
];
/// GAIE's response-size buckets, 32778 (sic) included as upstream has it.
const RESPONSE_SIZE_BUCKETS: &[f64] = &[
    1.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0,
    32778.0, 65536.0,
];
/// GAIE's input-token buckets, 1 to 1 Mi tokens, 32778 (sic) included as upstream has it.
const INPUT_TOKEN_BUCKETS: &[f64] = &[
    1.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0,
    32778.0, 65536.0, 131072.0, 262144.0, 524288.0, 1048576.0,
];
/// GAIE's output-token buckets, 1 to 8192 tokens.
const OUTPUT_TOKEN_BUCKETS: &[f64] = &[
    1.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0,
];

const MODEL: &[crate::Label] = &[labels::MODEL_NAME, labels::TARGET_MODEL_NAME];

/// Every family in this module.
pub const ALL: &[&MetricDef] = &[
    &REQUEST_TOTAL,
    &REQUEST_ERROR_TOTAL,
    &REQUEST_DURATION_SECONDS,
    &REQUEST_SIZE_BYTES,
    &RESPONSE_SIZE_BYTES,
    &REQUEST_INPUT_TOKENS,
    &REQUEST_OUTPUT_TOKENS,
    &SCHEDULER_E2E_DURATION_SECONDS,
    &SCHEDULER_ATTEMPTS_TOTAL,
    &PLUGIN_DURATION_SECONDS,
    &AVERAGE_KV_CACHE_UTILIZATION,
    &AVERAGE_QUEUE_SIZE,
    &READY_ENDPOINTS,
    &PER_ENDPOINT_QUEUE_SIZE,
    &PD_DECISION_TOTAL,
    &INFO,
    &PREFIX_CACHE_HITS_TOTAL,
    &PREFIX_CACHE_SCORER_MATCHED_BLOCKS,
    &ROUTING_DECISION_DURATION_SECONDS,
    &METRICS_AUTH_DENIED_TOTAL,
    &TLS_HANDSHAKE_FAILURES_TOTAL,
];

// Requests (GAIE "inference objective" families).

pub const REQUEST_TOTAL: MetricDef = MetricDef {
    name: "llm_d_epp_request_total",
    kind: Kind::Counter,
    unit: Unit::Requests,
    help: "Requests received by the endpoint picker, by model, target model and priority.",
    labels: &[
        labels::MODEL_NAME,
        labels::TARGET_MODEL_NAME,
        labels::PRIORITY,
    ],
    buckets: Buckets::None,
    origin: LLM_D_ROUTER,
    stability: Stability::Stable,
    deprecated_alias: Some("inference_objective_request_total"),
};

pub const REQUEST_ERROR_TOTAL: MetricDef = MetricDef {
    name: "llm_d_epp_request_error_total",
    kind: Kind::Counter,
    unit: Unit::Requests,
    help: "Requests the endpoint picker failed, by model, target model and error code.",
    labels: &[
        labels::MODEL_NAME,
        labels::TARGET_MODEL_NAME,
        labels::ERROR_CODE,
    ],
    buckets: Buckets::None,
    origin: LLM_D_ROUTER,
    stability: Stability::Stable,
    deprecated_alias: Some("inference_objective_request_error_total"),
};

pub const REQUEST_DURATION_SECONDS: MetricDef = MetricDef {
    name: "llm_d_epp_request_duration_seconds",
    kind: Kind::Histogram,
    unit: Unit::Seconds,
    help: "Response latency in seconds from the first request header to the end of the response.",
    labels: MODEL,
    buckets: Buckets::Explicit(GENERAL_LATENCY_BUCKETS),
    origin: LLM_D_ROUTER,
    stability: Stability::Stable,
    deprecated_alias: Some("inference_objective_request_duration_seconds"),
};

pub const REQUEST_SIZE_BYTES: MetricDef = MetricDef {
    name: "llm_d_epp_request_size_bytes",
    kind: Kind::Histogram,
    unit: Unit::Bytes,
    help: "Request body size in bytes.",
    labels: MODEL,
    buckets: Buckets::Explicit(REQUEST_SIZE_BUCKETS),
    origin: LLM_D_ROUTER,
    stability: Stability::Stable,
    deprecated_alias: Some("inference_objective_request_sizes"),
};

pub const RESPONSE_SIZE_BYTES: MetricDef = MetricDef {
    name: "llm_d_epp_response_size_bytes",
    kind: Kind::Histogram,
    unit: Unit::Bytes,
    help: "Response body size in bytes.",
    labels: MODEL,
    buckets: Buckets::Explicit(RESPONSE_SIZE_BUCKETS),
    origin: LLM_D_ROUTER,
    stability: Stability::Stable,
    deprecated_alias: Some("inference_objective_response_sizes"),
};

pub const REQUEST_INPUT_TOKENS: MetricDef = MetricDef {
    name: "llm_d_epp_request_input_tokens",
    kind: Kind::Histogram,
    unit: Unit::Tokens,
    help: "Prompt tokens per request, as reported in the response usage.",
    labels: MODEL,
    buckets: Buckets::Explicit(INPUT_TOKEN_BUCKETS),
    origin: LLM_D_ROUTER,
    stability: Stability::Stable,
    deprecated_alias: Some("inference_objective_input_tokens"),
};

pub const REQUEST_OUTPUT_TOKENS: MetricDef = MetricDef {
    name: "llm_d_epp_request_output_tokens",
    kind: Kind::Histogram,
    unit: Unit::Tokens,
    help: "Completion tokens per request, as reported in the response usage.",
    labels: MODEL,
    buckets: Buckets::Explicit(OUTPUT_TOKEN_BUCKETS),
    origin: LLM_D_ROUTER,
    stability: Stability::Stable,
    deprecated_alias: Some("inference_objective_output_tokens"),
};

// Scheduling.

pub const SCHEDULER_E2E_DURATION_SECONDS: MetricDef = MetricDef {
    name: "llm_d_epp_scheduler_e2e_duration_seconds",
    kind: Kind::Histogram,
    unit: Unit::Seconds,
    help: "End-to-end scheduling latency in seconds, over all profiles of one request.",
    labels: &[],
    buckets: Buckets::Explicit(SCHEDULER_BUCKETS),
    origin: LLM_D_ROUTER,
    stability: Stability::Stable,
    deprecated_alias: Some("inference_extension_scheduler_e2e_duration_seconds"),
};

pub const SCHEDULER_ATTEMPTS_TOTAL: MetricDef = MetricDef {
    name: "llm_d_epp_scheduler_attempts_total",
    kind: Kind::Counter,
    unit: Unit::Count,
    help: "Scheduling attempts, by status (success or failure) and picked endpoint.",
    labels: &[
        labels::STATUS,
        labels::TARGET_MODEL_NAME,
        labels::POD_NAME,
        labels::NAMESPACE,
        labels::PORT,
    ],
    buckets: Buckets::None,
    origin: LLM_D_ROUTER,
    stability: Stability::Stable,
    deprecated_alias: Some("inference_extension_scheduler_attempts_total"),
};

pub const PLUGIN_DURATION_SECONDS: MetricDef = MetricDef {
    name: "llm_d_epp_plugin_duration_seconds",
    kind: Kind::Histogram,
    unit: Unit::Seconds,
    help: "Plugin processing latency in seconds, by extension point, plugin type and plugin name.",
    labels: &[
        labels::EXTENSION_POINT,
        labels::PLUGIN_TYPE,
        labels::PLUGIN_NAME,
    ],
    buckets: Buckets::Explicit(SCHEDULER_BUCKETS),
    origin: LLM_D_ROUTER,
    stability: Stability::Stable,
    deprecated_alias: Some("inference_extension_plugin_duration_seconds"),
};

// Pool state, from the scraped engine metrics.

pub const AVERAGE_KV_CACHE_UTILIZATION: MetricDef = MetricDef {
    name: "llm_d_epp_average_kv_cache_utilization",
    kind: Kind::Gauge,
    unit: Unit::Ratio,
    help: "Average KV-cache utilization (0 to 1) over the pool's endpoints with fresh metrics.",
    labels: &[labels::NAME],
    buckets: Buckets::None,
    origin: LLM_D_ROUTER,
    stability: Stability::Stable,
    deprecated_alias: Some("inference_pool_average_kv_cache_utilization"),
};

pub const AVERAGE_QUEUE_SIZE: MetricDef = MetricDef {
    name: "llm_d_epp_average_queue_size",
    kind: Kind::Gauge,
    unit: Unit::Requests,
    help: "Average number of requests waiting in the model server queues of the pool.",
    labels: &[labels::NAME],
    buckets: Buckets::None,
    origin: LLM_D_ROUTER,
    stability: Stability::Stable,
    deprecated_alias: Some("inference_pool_average_queue_size"),
};

pub const READY_ENDPOINTS: MetricDef = MetricDef {
    name: "llm_d_epp_ready_endpoints",
    kind: Kind::Gauge,
    unit: Unit::Count,
    help: "Number of endpoints in the pool whose metrics are fresh enough to schedule on.",
    labels: &[labels::NAME],
    buckets: Buckets::None,
    origin: LLM_D_ROUTER,
    stability: Stability::Stable,
    deprecated_alias: Some("inference_pool_ready_pods"),
};

pub const PER_ENDPOINT_QUEUE_SIZE: MetricDef = MetricDef {
    name: "llm_d_epp_per_endpoint_queue_size",
    kind: Kind::Gauge,
    unit: Unit::Requests,
    help: "Requests waiting in one model server's queue, as last scraped.",
    labels: &[labels::NAME, labels::MODEL_SERVER_ENDPOINT],
    buckets: Buckets::None,
    origin: LLM_D_ROUTER,
    stability: Stability::Stable,
    deprecated_alias: None,
};

// P/D decision and build info.

pub const PD_DECISION_TOTAL: MetricDef = MetricDef {
    name: "llm_d_epp_pd_decision_total",
    kind: Kind::Counter,
    unit: Unit::Requests,
    help: "Prefill/decode disaggregation decisions, by model and decision type (decode-only or prefill-decode).",
    labels: &[labels::MODEL_NAME, labels::DECISION_TYPE],
    buckets: Buckets::None,
    origin: LLM_D_SCHEDULER,
    stability: Stability::Stable,
    deprecated_alias: Some("llm_d_inference_scheduler_pd_decision_total"),
};

pub const INFO: MetricDef = MetricDef {
    name: "llm_d_epp_info",
    kind: Kind::Gauge,
    unit: Unit::Info,
    help: "Build information of the running endpoint picker; the value is always 1.",
    labels: &[labels::COMMIT, labels::BUILD_REF],
    buckets: Buckets::None,
    origin: LLM_D_ROUTER,
    stability: Stability::Stable,
    deprecated_alias: Some("inference_extension_info"),
};

// Ours: prefix-cache routing.

/// Counted once per scheduled request whose best candidate had at least one cached block.
pub const PREFIX_CACHE_HITS_TOTAL: MetricDef = MetricDef {
    name: "llm_d_epp_prefix_cache_hits_total",
    kind: Kind::Counter,
    unit: Unit::Count,
    help: "Scheduled requests for which the prefix-cache scorer found at least one cached block on some candidate endpoint.",
    labels: &[labels::MODEL_NAME],
    buckets: Buckets::None,
    origin: Origin::Ours,
    stability: Stability::Beta,
    deprecated_alias: None,
};

/// Observed once per scored request: the longest cached block prefix among the candidates.
pub const PREFIX_CACHE_SCORER_MATCHED_BLOCKS: MetricDef = MetricDef {
    name: "llm_d_epp_prefix_cache_scorer_matched_blocks",
    kind: Kind::Histogram,
    unit: Unit::Blocks,
    help: "Longest prefix of the request's KV blocks found cached on any candidate endpoint, in blocks.",
    labels: &[labels::MODEL_NAME],
    buckets: Buckets::Explicit(&[
        0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
    ]),
    origin: Origin::Ours,
    stability: Stability::Beta,
    deprecated_alias: None,
};

/// From the request body's arrival at the EPP to the routing reply sent to the gateway; this
/// adds body parsing and tokenization to `llm_d_epp_scheduler_e2e_duration_seconds`.
pub const ROUTING_DECISION_DURATION_SECONDS: MetricDef = MetricDef {
    name: "llm_d_epp_routing_decision_duration_seconds",
    kind: Kind::Histogram,
    unit: Unit::Seconds,
    help: "Time in seconds from receiving the request body to sending the routing decision to the gateway.",
    labels: &[],
    buckets: Buckets::Explicit(&[
        0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0,
    ]),
    origin: Origin::Ours,
    stability: Stability::Beta,
    deprecated_alias: None,
};

// Ours: the metrics endpoint's own guard.

/// `/metrics` scrapes refused by `--metrics-endpoint-auth` (TokenReview and
/// SubjectAccessReview, as upstream's controller-runtime filter), by reason.
pub const METRICS_AUTH_DENIED_TOTAL: MetricDef = MetricDef {
    name: "llm_d_epp_metrics_auth_denied_total",
    kind: Kind::Counter,
    unit: Unit::Count,
    help: "Scrapes of /metrics refused by the endpoint's authentication and authorization, by reason.",
    labels: &[labels::REASON],
    buckets: Buckets::None,
    origin: Origin::Ours,
    stability: Stability::Beta,
    deprecated_alias: None,
};

/// ext_proc connections whose TLS handshake failed or timed out (plain HTTP/2 to the TLS
/// port, an unknown CA on a checking client).
pub const TLS_HANDSHAKE_FAILURES_TOTAL: MetricDef = MetricDef {
    name: "llm_d_epp_tls_handshake_failures_total",
    kind: Kind::Counter,
    unit: Unit::Count,
    help: "Connections to the ext_proc port whose TLS handshake failed or timed out.",
    labels: &[],
    buckets: Buckets::None,
    origin: Origin::Ours,
    stability: Stability::Beta,
    deprecated_alias: None,
};
