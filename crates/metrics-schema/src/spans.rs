//! Span names with their kind and attributes; the attribute keys live in [`attrs`].
//!
//! Names reproduce what users already search for in Jaeger: GAIE's `gateway.request`, the
//! llm-d v0.6–v0.8 names `llm_d.epp.scorer.prefix_cache`, `llm_d.pd_proxy.request`,
//! `llm_d.pd_proxy.prefill` and `llm_d.pd_proxy.decode`, and vLLM's `llm_request`.
//! `llm_d.epp.profile_handler.pick` is the tracing demo script's name; upstream's real span was
//! `llm_d.epp.pd.profile_handler.pick`, so it is ours. Unlike upstream, which set the P/D
//! summary attributes on whatever span was current at the end (the decode span), our proxy sets
//! them on `llm_d.pd_proxy.request`, and its decode span is a sibling of prefill, not a child.

pub mod attrs;

/// `service.name` of each component's spans: the binaries' defaults when `OTEL_SERVICE_NAME`
/// is unset, and what the guides set through the charts.
pub mod services {
    /// The EPP (llm-d-router's default).
    pub const EPP: &str = "llm-d-epp";
    /// The P/D sidecar (the name the upstream tracing demo queries; the modelservice chart's
    /// own default is `routing-proxy`).
    pub const PD_PROXY: &str = "llm-d-pd-proxy";
    /// vLLM and the simulator (vLLM's default).
    pub const VLLM: &str = "vllm";
    /// Decode and prefill vLLM pods in the guides (the modelservice chart's names).
    pub const VLLM_DECODE: &str = "vllm-decode";
    pub const VLLM_PREFILL: &str = "vllm-prefill";
}

use crate::{Origin, SpanDef, SpanKind};

const GAIE: Origin = Origin::Upstream {
    source: "GAIE PR #2057, llm-d-router pkg/epp/handlers/server.go",
};
const LLM_D_V0_6: Origin = Origin::Upstream {
    source: "llm-d-inference-scheduler v0.6.0-v0.8.0 (PR #506) tracing",
};
const VLLM: Origin = Origin::Upstream {
    source: "vllm 0.33 vllm/v1/engine/output_processor.py",
};

/// Every span.
pub const ALL_SPANS: &[&SpanDef] = &[
    &GATEWAY_REQUEST,
    &EPP_SCORER_PREFIX_CACHE,
    &EPP_PROFILE_HANDLER_PICK,
    &PD_PROXY_REQUEST,
    &PD_PROXY_PREFILL,
    &PD_PROXY_DECODE,
    &VLLM_LLM_REQUEST,
];

/// The EPP's root span for one request, parented to the gateway's `traceparent`.
pub const GATEWAY_REQUEST: SpanDef = SpanDef {
    name: "gateway.request",
    kind: SpanKind::Server,
    help: "One request through the endpoint picker, from the first ext_proc message to the routing reply.",
    attributes: &[
        &attrs::GEN_AI_REQUEST_MODEL,
        &attrs::HTTP_REQUEST_METHOD,
        &attrs::EPP_PICKED_ENDPOINT,
    ],
    origin: GAIE,
};

/// The precise prefix-cache scorer scoring the candidates of one request.
pub const EPP_SCORER_PREFIX_CACHE: SpanDef = SpanDef {
    name: "llm_d.epp.scorer.prefix_cache",
    kind: SpanKind::Internal,
    help: "The prefix-cache scorer looking up the request's block hashes and scoring the candidates.",
    attributes: &[
        &attrs::SCORER_CANDIDATE_ENDPOINTS,
        &attrs::SCORER_ENDPOINTS_SCORED,
        &attrs::SCORER_SCORE_MAX,
        &attrs::SCORER_SCORE_AVG,
        &attrs::SCORER_RESULT,
        &attrs::SCORER_MATCHED_BLOCKS,
        &attrs::SCORER_TOTAL_BLOCKS,
        &attrs::EPP_PICKED_ENDPOINT,
        &attrs::GEN_AI_REQUEST_MODEL,
        &attrs::GEN_AI_REQUEST_ID,
    ],
    origin: LLM_D_V0_6,
};

/// The P/D profile handler deciding between decode-only and prefill-then-decode.
pub const EPP_PROFILE_HANDLER_PICK: SpanDef = SpanDef {
    name: "llm_d.epp.profile_handler.pick",
    kind: SpanKind::Internal,
    help: "The P/D profile handler choosing decode-only or prefill-then-decode for one request.",
    attributes: &[
        &attrs::PROFILE_HANDLER_DECISION,
        &attrs::PROFILE_HANDLER_CACHE_HIT_RATIO,
        &attrs::PROFILE_HANDLER_PD_THRESHOLD,
        &attrs::PROFILE_HANDLER_USER_INPUT_BYTES,
    ],
    origin: Origin::Ours,
};

/// The P/D proxy's root span for one request, carrying the phase summary.
pub const PD_PROXY_REQUEST: SpanDef = SpanDef {
    name: "llm_d.pd_proxy.request",
    kind: SpanKind::Server,
    help: "One request through the P/D proxy, with the prefill and decode legs as children.",
    attributes: &[
        &attrs::HTTP_REQUEST_METHOD,
        &attrs::PD_PROXY_CONNECTOR,
        &attrs::PD_PROXY_REQUEST_PATH,
        &attrs::PD_PROXY_DISAGGREGATION_USED,
        &attrs::PD_PROXY_PREFILL_TARGET,
        &attrs::PD_PROXY_TRUE_TTFT_MS,
        &attrs::PD_PROXY_COORDINATOR_OVERHEAD_MS,
        &attrs::PD_PROXY_TOTAL_DURATION_MS,
        &attrs::PD_PROXY_ERROR,
        &attrs::PD_PROXY_OUTCOME,
    ],
    origin: LLM_D_V0_6,
};

/// The prefill leg: the request sent to the prefill engine with `max_tokens` 1.
pub const PD_PROXY_PREFILL: SpanDef = SpanDef {
    name: "llm_d.pd_proxy.prefill",
    kind: SpanKind::Client,
    help: "The prefill leg of a P/D request, sent to the prefill engine.",
    attributes: &[
        &attrs::SERVER_ADDRESS,
        &attrs::PD_PROXY_REQUEST_ID,
        &attrs::PD_PROXY_CONNECTOR,
        &attrs::PD_PROXY_PREFILL_STATUS_CODE,
        &attrs::PD_PROXY_PREFILL_DURATION_MS,
    ],
    origin: LLM_D_V0_6,
};

/// The decode leg: the original request with the prefill's `kv_transfer_params`.
pub const PD_PROXY_DECODE: SpanDef = SpanDef {
    name: "llm_d.pd_proxy.decode",
    kind: SpanKind::Client,
    help: "The decode leg of a P/D request, sent to the decode engine with the prefill's KV transfer parameters.",
    attributes: &[
        &attrs::SERVER_ADDRESS,
        &attrs::PD_PROXY_REQUEST_ID,
        &attrs::PD_PROXY_DECODE_STREAMING,
        &attrs::PD_PROXY_DECODE_DURATION_MS,
    ],
    origin: LLM_D_V0_6,
};

/// vLLM's per-request span, emitted when the request finishes; the simulator reproduces it.
pub const VLLM_LLM_REQUEST: SpanDef = SpanDef {
    name: "llm_request",
    kind: SpanKind::Server,
    help: "One finished request in the engine, from arrival to the last output.",
    attributes: &[
        &attrs::GEN_AI_REQUEST_ID,
        &attrs::GEN_AI_USAGE_PROMPT_TOKENS,
        &attrs::GEN_AI_USAGE_COMPLETION_TOKENS,
        &attrs::GEN_AI_LATENCY_TIME_TO_FIRST_TOKEN,
        &attrs::GEN_AI_LATENCY_E2E,
        &attrs::GEN_AI_LATENCY_TIME_IN_QUEUE,
        &attrs::GEN_AI_LATENCY_TIME_IN_MODEL_PREFILL,
        &attrs::GEN_AI_LATENCY_TIME_IN_MODEL_DECODE,
        &attrs::GEN_AI_LATENCY_TIME_IN_MODEL_INFERENCE,
        &attrs::GEN_AI_REQUEST_TOP_P,
        &attrs::GEN_AI_REQUEST_MAX_TOKENS,
        &attrs::GEN_AI_REQUEST_TEMPERATURE,
        &attrs::GEN_AI_REQUEST_N,
    ],
    origin: VLLM,
};
