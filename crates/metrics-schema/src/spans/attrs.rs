//! Span attribute keys.
//!
//! Keys we share with other projects are copied as string values with a comment on where each
//! came from; we do not depend on `opentelemetry-semantic-conventions`' `semconv_experimental`
//! feature, where the `gen_ai.*` keys are now deprecated. Our own keys start with `llm_d.` and
//! the component, e.g. `llm_d.epp.profile_handler.decision`, never a bare `decision`.

use crate::{AttrDef, AttrType, Origin};

const SEMCONV: Origin = Origin::Upstream {
    source: "OpenTelemetry semantic conventions (opentelemetry-semantic-conventions attribute.rs)",
};
const VLLM: Origin = Origin::Upstream {
    source: "vllm 0.33 vllm/tracing (SpanAttributes)",
};
const LLM_D_V0_6: Origin = Origin::Upstream {
    source: "llm-d-inference-scheduler v0.6.0-v0.8.0 (PR #506) tracing",
};

/// Every attribute key.
pub const ALL: &[&AttrDef] = &[
    &HTTP_REQUEST_METHOD,
    &SERVER_ADDRESS,
    &GEN_AI_REQUEST_MODEL,
    &GEN_AI_REQUEST_ID,
    &GEN_AI_USAGE_PROMPT_TOKENS,
    &GEN_AI_USAGE_COMPLETION_TOKENS,
    &GEN_AI_LATENCY_TIME_TO_FIRST_TOKEN,
    &GEN_AI_LATENCY_E2E,
    &GEN_AI_LATENCY_TIME_IN_QUEUE,
    &GEN_AI_LATENCY_TIME_IN_MODEL_PREFILL,
    &GEN_AI_LATENCY_TIME_IN_MODEL_DECODE,
    &GEN_AI_LATENCY_TIME_IN_MODEL_INFERENCE,
    &GEN_AI_REQUEST_TOP_P,
    &GEN_AI_REQUEST_MAX_TOKENS,
    &GEN_AI_REQUEST_TEMPERATURE,
    &GEN_AI_REQUEST_N,
    &EPP_PICKED_ENDPOINT,
    &SCORER_CANDIDATE_ENDPOINTS,
    &SCORER_ENDPOINTS_SCORED,
    &SCORER_SCORE_MAX,
    &SCORER_SCORE_AVG,
    &SCORER_RESULT,
    &SCORER_MATCHED_BLOCKS,
    &SCORER_TOTAL_BLOCKS,
    &PROFILE_HANDLER_DECISION,
    &PROFILE_HANDLER_CACHE_HIT_RATIO,
    &PROFILE_HANDLER_PD_THRESHOLD,
    &PROFILE_HANDLER_USER_INPUT_BYTES,
    &PD_PROXY_CONNECTOR,
    &PD_PROXY_REQUEST_PATH,
    &PD_PROXY_DISAGGREGATION_USED,
    &PD_PROXY_PREFILL_TARGET,
    &PD_PROXY_REQUEST_ID,
    &PD_PROXY_PREFILL_STATUS_CODE,
    &PD_PROXY_PREFILL_DURATION_MS,
    &PD_PROXY_DECODE_STREAMING,
    &PD_PROXY_DECODE_DURATION_MS,
    &PD_PROXY_TRUE_TTFT_MS,
    &PD_PROXY_COORDINATOR_OVERHEAD_MS,
    &PD_PROXY_TOTAL_DURATION_MS,
    &PD_PROXY_ERROR,
    &PD_PROXY_OUTCOME,
];

// OpenTelemetry semantic conventions.

/// Stable semconv `http.request.method` (HTTP spans).
pub const HTTP_REQUEST_METHOD: AttrDef = AttrDef {
    key: "http.request.method",
    ty: AttrType::String,
    help: "HTTP request method, such as POST.",
    origin: SEMCONV,
};
/// Stable semconv `server.address`; on CLIENT spans, the peer the request went to.
pub const SERVER_ADDRESS: AttrDef = AttrDef {
    key: "server.address",
    ty: AttrType::String,
    help: "Host of the server the request was sent to.",
    origin: SEMCONV,
};
/// Incubating semconv `gen_ai.request.model` (the GenAI conventions).
pub const GEN_AI_REQUEST_MODEL: AttrDef = AttrDef {
    key: "gen_ai.request.model",
    ty: AttrType::String,
    help: "Model name the client requested.",
    origin: SEMCONV,
};

// vLLM 0.33 `llm_request` attributes (vllm-wire.md §5).

/// vLLM `SpanAttributes.GEN_AI_REQUEST_ID`.
pub const GEN_AI_REQUEST_ID: AttrDef = AttrDef {
    key: "gen_ai.request.id",
    ty: AttrType::String,
    help: "External request id, such as chatcmpl-... or cmpl-...-0.",
    origin: VLLM,
};
/// vLLM `SpanAttributes.GEN_AI_USAGE_PROMPT_TOKENS`.
pub const GEN_AI_USAGE_PROMPT_TOKENS: AttrDef = AttrDef {
    key: "gen_ai.usage.prompt_tokens",
    ty: AttrType::Int,
    help: "Prompt tokens of the request.",
    origin: VLLM,
};
/// vLLM `SpanAttributes.GEN_AI_USAGE_COMPLETION_TOKENS`.
pub const GEN_AI_USAGE_COMPLETION_TOKENS: AttrDef = AttrDef {
    key: "gen_ai.usage.completion_tokens",
    ty: AttrType::Int,
    help: "Generated tokens of the request.",
    origin: VLLM,
};
/// vLLM `SpanAttributes.GEN_AI_LATENCY_TIME_TO_FIRST_TOKEN`.
pub const GEN_AI_LATENCY_TIME_TO_FIRST_TOKEN: AttrDef = AttrDef {
    key: "gen_ai.latency.time_to_first_token",
    ty: AttrType::Float,
    help: "Time to first token in seconds.",
    origin: VLLM,
};
/// vLLM `SpanAttributes.GEN_AI_LATENCY_E2E`.
pub const GEN_AI_LATENCY_E2E: AttrDef = AttrDef {
    key: "gen_ai.latency.e2e",
    ty: AttrType::Float,
    help: "End-to-end request latency in seconds.",
    origin: VLLM,
};
/// vLLM `SpanAttributes.GEN_AI_LATENCY_TIME_IN_QUEUE`.
pub const GEN_AI_LATENCY_TIME_IN_QUEUE: AttrDef = AttrDef {
    key: "gen_ai.latency.time_in_queue",
    ty: AttrType::Float,
    help: "Seconds from being queued to being scheduled.",
    origin: VLLM,
};
/// vLLM `SpanAttributes.GEN_AI_LATENCY_TIME_IN_MODEL_PREFILL`.
pub const GEN_AI_LATENCY_TIME_IN_MODEL_PREFILL: AttrDef = AttrDef {
    key: "gen_ai.latency.time_in_model_prefill",
    ty: AttrType::Float,
    help: "Seconds from being scheduled to the first token.",
    origin: VLLM,
};
/// vLLM `SpanAttributes.GEN_AI_LATENCY_TIME_IN_MODEL_DECODE`.
pub const GEN_AI_LATENCY_TIME_IN_MODEL_DECODE: AttrDef = AttrDef {
    key: "gen_ai.latency.time_in_model_decode",
    ty: AttrType::Float,
    help: "Seconds from the first token to the last token.",
    origin: VLLM,
};
/// vLLM `SpanAttributes.GEN_AI_LATENCY_TIME_IN_MODEL_INFERENCE`.
pub const GEN_AI_LATENCY_TIME_IN_MODEL_INFERENCE: AttrDef = AttrDef {
    key: "gen_ai.latency.time_in_model_inference",
    ty: AttrType::Float,
    help: "Seconds from being scheduled to the last token.",
    origin: VLLM,
};
/// vLLM `SpanAttributes.GEN_AI_REQUEST_TOP_P`; set only when truthy.
pub const GEN_AI_REQUEST_TOP_P: AttrDef = AttrDef {
    key: "gen_ai.request.top_p",
    ty: AttrType::Float,
    help: "The top_p sampling parameter, set only when non-zero.",
    origin: VLLM,
};
/// vLLM `SpanAttributes.GEN_AI_REQUEST_MAX_TOKENS`; set only when truthy.
pub const GEN_AI_REQUEST_MAX_TOKENS: AttrDef = AttrDef {
    key: "gen_ai.request.max_tokens",
    ty: AttrType::Int,
    help: "The max_tokens request parameter, set only when non-zero.",
    origin: VLLM,
};
/// vLLM `SpanAttributes.GEN_AI_REQUEST_TEMPERATURE`; a temperature of 0 is left out.
pub const GEN_AI_REQUEST_TEMPERATURE: AttrDef = AttrDef {
    key: "gen_ai.request.temperature",
    ty: AttrType::Float,
    help: "The temperature sampling parameter, set only when non-zero.",
    origin: VLLM,
};
/// vLLM `SpanAttributes.GEN_AI_REQUEST_N`; set only when truthy.
pub const GEN_AI_REQUEST_N: AttrDef = AttrDef {
    key: "gen_ai.request.n",
    ty: AttrType::Int,
    help: "The n request parameter, set only when non-zero.",
    origin: VLLM,
};

// EPP.

/// Ours: the endpoint the EPP routed to, `host:port`.
pub const EPP_PICKED_ENDPOINT: AttrDef = AttrDef {
    key: "llm_d.epp.picked_endpoint",
    ty: AttrType::String,
    help: "Endpoint the request was routed to, as host:port.",
    origin: Origin::Ours,
};
/// llm-d v0.6 `llm_d.scorer.candidate_endpoints`.
pub const SCORER_CANDIDATE_ENDPOINTS: AttrDef = AttrDef {
    key: "llm_d.scorer.candidate_endpoints",
    ty: AttrType::Int,
    help: "Number of endpoints offered to the scorer.",
    origin: LLM_D_V0_6,
};
/// llm-d v0.6 `llm_d.scorer.endpoints_scored`.
pub const SCORER_ENDPOINTS_SCORED: AttrDef = AttrDef {
    key: "llm_d.scorer.endpoints_scored",
    ty: AttrType::Int,
    help: "Number of endpoints that got a non-zero score.",
    origin: LLM_D_V0_6,
};
/// llm-d v0.6 `llm_d.scorer.score.max`.
pub const SCORER_SCORE_MAX: AttrDef = AttrDef {
    key: "llm_d.scorer.score.max",
    ty: AttrType::Float,
    help: "Highest score given, between 0 and 1.",
    origin: LLM_D_V0_6,
};
/// llm-d v0.6 `llm_d.scorer.score.avg`.
pub const SCORER_SCORE_AVG: AttrDef = AttrDef {
    key: "llm_d.scorer.score.avg",
    ty: AttrType::Float,
    help: "Mean score over the candidates, between 0 and 1.",
    origin: LLM_D_V0_6,
};
/// llm-d v0.6 `llm_d.scorer.result`.
pub const SCORER_RESULT: AttrDef = AttrDef {
    key: "llm_d.scorer.result",
    ty: AttrType::String,
    help: "How scoring ended, such as success or no_cache_hits.",
    origin: LLM_D_V0_6,
};
/// Ours: the per-endpoint result behind `llm_d.scorer.score.max`, so a trace shows why the
/// request went where it went.
pub const SCORER_MATCHED_BLOCKS: AttrDef = AttrDef {
    key: "llm_d.scorer.matched_blocks",
    ty: AttrType::String,
    help: "Cached prefix blocks per candidate endpoint, as comma-separated host:port=blocks pairs, most blocks first.",
    origin: Origin::Ours,
};
/// Ours: the request's block count, the denominator of the prefix scores.
pub const SCORER_TOTAL_BLOCKS: AttrDef = AttrDef {
    key: "llm_d.scorer.total_blocks",
    ty: AttrType::Int,
    help: "Number of full blocks in the request's prompt.",
    origin: Origin::Ours,
};
/// Ours (upstream's was `llm_d.profile_handler.decision`, now
/// `llm_d.epp.profile_handler.decision`): `decode_only` or `prefill_decode`.
pub const PROFILE_HANDLER_DECISION: AttrDef = AttrDef {
    key: "llm_d.epp.profile_handler.decision",
    ty: AttrType::String,
    help: "P/D decision: decode_only or prefill_decode.",
    origin: Origin::Ours,
};
/// Ours: the v0.4 algorithm's `hitPercentagePrefix`.
pub const PROFILE_HANDLER_CACHE_HIT_RATIO: AttrDef = AttrDef {
    key: "llm_d.epp.profile_handler.cache_hit_ratio",
    ty: AttrType::Float,
    help: "Fraction of the prompt already cached on the decode endpoint, between 0 and 1.",
    origin: Origin::Ours,
};
/// Ours: the v0.4 algorithm's `pdThreshold`.
pub const PROFILE_HANDLER_PD_THRESHOLD: AttrDef = AttrDef {
    key: "llm_d.epp.profile_handler.pd_threshold",
    ty: AttrType::Int,
    help: "Uncached prompt length at or above which prefill is disaggregated.",
    origin: Origin::Ours,
};
/// Ours: the v0.4 algorithm's `userInput` length.
pub const PROFILE_HANDLER_USER_INPUT_BYTES: AttrDef = AttrDef {
    key: "llm_d.epp.profile_handler.user_input_bytes",
    ty: AttrType::Int,
    help: "Length of the prompt text in bytes.",
    origin: Origin::Ours,
};

// P/D proxy (llm-d v0.6 keys).

/// llm-d v0.6 `llm_d.pd_proxy.connector`.
pub const PD_PROXY_CONNECTOR: AttrDef = AttrDef {
    key: "llm_d.pd_proxy.connector",
    ty: AttrType::String,
    help: "KV connector protocol, such as nixlv2.",
    origin: LLM_D_V0_6,
};
/// llm-d v0.6 `llm_d.pd_proxy.request_path`.
pub const PD_PROXY_REQUEST_PATH: AttrDef = AttrDef {
    key: "llm_d.pd_proxy.request_path",
    ty: AttrType::String,
    help: "Request path, such as /v1/completions.",
    origin: LLM_D_V0_6,
};
/// llm-d v0.6 `llm_d.pd_proxy.disaggregation_used`.
pub const PD_PROXY_DISAGGREGATION_USED: AttrDef = AttrDef {
    key: "llm_d.pd_proxy.disaggregation_used",
    ty: AttrType::Bool,
    help: "Whether the request had a prefill leg.",
    origin: LLM_D_V0_6,
};
/// llm-d v0.6 `llm_d.pd_proxy.prefill_target`.
pub const PD_PROXY_PREFILL_TARGET: AttrDef = AttrDef {
    key: "llm_d.pd_proxy.prefill_target",
    ty: AttrType::String,
    help: "Prefill endpoint from the x-prefiller-host-port header, as host:port.",
    origin: LLM_D_V0_6,
};
/// llm-d v0.6 `llm_d.pd_proxy.request_id`.
pub const PD_PROXY_REQUEST_ID: AttrDef = AttrDef {
    key: "llm_d.pd_proxy.request_id",
    ty: AttrType::String,
    help: "Request id the proxy sent to both engines.",
    origin: LLM_D_V0_6,
};
/// llm-d v0.6 `llm_d.pd_proxy.prefill.status_code`.
pub const PD_PROXY_PREFILL_STATUS_CODE: AttrDef = AttrDef {
    key: "llm_d.pd_proxy.prefill.status_code",
    ty: AttrType::Int,
    help: "HTTP status of the prefill response.",
    origin: LLM_D_V0_6,
};
/// llm-d v0.6 `llm_d.pd_proxy.prefill.duration_ms`.
pub const PD_PROXY_PREFILL_DURATION_MS: AttrDef = AttrDef {
    key: "llm_d.pd_proxy.prefill.duration_ms",
    ty: AttrType::Float,
    help: "Round trip of the prefill leg in milliseconds.",
    origin: LLM_D_V0_6,
};
/// llm-d v0.6 `llm_d.pd_proxy.decode.streaming`.
pub const PD_PROXY_DECODE_STREAMING: AttrDef = AttrDef {
    key: "llm_d.pd_proxy.decode.streaming",
    ty: AttrType::Bool,
    help: "Whether the decode response is streamed.",
    origin: LLM_D_V0_6,
};
/// llm-d v0.6 `llm_d.pd_proxy.decode.duration_ms`.
pub const PD_PROXY_DECODE_DURATION_MS: AttrDef = AttrDef {
    key: "llm_d.pd_proxy.decode.duration_ms",
    ty: AttrType::Float,
    help: "Round trip of the decode leg in milliseconds, generation included.",
    origin: LLM_D_V0_6,
};
/// llm-d v0.6 `llm_d.pd_proxy.true_ttft_ms`; ours ends at the first decode byte, not at
/// decode dispatch as upstream's did.
pub const PD_PROXY_TRUE_TTFT_MS: AttrDef = AttrDef {
    key: "llm_d.pd_proxy.true_ttft_ms",
    ty: AttrType::Float,
    help: "Milliseconds from the proxy receiving the request to the first decode response byte.",
    origin: LLM_D_V0_6,
};
/// llm-d v0.6 `llm_d.pd_proxy.coordinator_overhead_ms`.
pub const PD_PROXY_COORDINATOR_OVERHEAD_MS: AttrDef = AttrDef {
    key: "llm_d.pd_proxy.coordinator_overhead_ms",
    ty: AttrType::Float,
    help: "Milliseconds of the proxy's own work before decode starts, waits on the client and the prefill leg excluded.",
    origin: LLM_D_V0_6,
};
/// llm-d v0.6 `llm_d.pd_proxy.total_duration_ms`.
pub const PD_PROXY_TOTAL_DURATION_MS: AttrDef = AttrDef {
    key: "llm_d.pd_proxy.total_duration_ms",
    ty: AttrType::Float,
    help: "Milliseconds from the proxy receiving the request to the last response byte.",
    origin: LLM_D_V0_6,
};
/// llm-d v0.6 `llm_d.pd_proxy.error` (upstream set only `ssrf_protection_denied`).
pub const PD_PROXY_ERROR: AttrDef = AttrDef {
    key: "llm_d.pd_proxy.error",
    ty: AttrType::String,
    help: "Why the proxy refused or failed the request, such as ssrf_protection_denied or prefill_timeout.",
    origin: LLM_D_V0_6,
};
/// Ours: the `outcome` label value of the request, on its root span.
pub const PD_PROXY_OUTCOME: AttrDef = AttrDef {
    key: "llm_d.pd_proxy.outcome",
    ty: AttrType::String,
    help: "How the request ended, as the outcome label of the requests counter.",
    origin: Origin::Ours,
};
