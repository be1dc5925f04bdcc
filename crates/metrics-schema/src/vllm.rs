//! The `vllm:*` families vLLM 0.33 serves on `GET /metrics`, reproduced exactly: the simulator
//! emits them and the EPP scrapes them.
//!
//! Names are the exposed family names, so counters carry `_total` (`vllm:prompt_tokens_total`)
//! and the histogram `vllm:iteration_tokens_total` keeps the `_total` vLLM gave it. Help texts
//! are copied verbatim, typos included. Label lists follow the order of
//! `shared/golden/vllm_metrics_families.json` (prometheus_client sorts labels by name).
//! The `vllm:request_*_tokens` histograms use [`Buckets::OneTwoFiveUpTo`], resolved with the
//! engine's `max_model_len`.
//!
//! Beyond the golden file this module also holds `vllm:cache_config_info` (made at engine
//! start) and the `http_*` families of prometheus-fastapi-instrumentator that vLLM's API server
//! exposes on the same endpoint. The instrumentator's `http_request_size_bytes` and
//! `http_response_size_bytes` are summaries, which [`Kind`] does not model, so they are left out.
//! Spec-decode families (only with speculative decoding) are not reproduced.

#[cfg(test)]
mod tests;

use crate::{Buckets, Kind, MetricDef, Origin, Stability, Unit, labels};

const LOGGERS: Origin = Origin::Upstream {
    source: "vllm 0.33 vllm/v1/metrics/loggers.py",
};
const PERF: Origin = Origin::Upstream {
    source: "vllm 0.33 vllm/v1/metrics/loggers.py, vllm/v1/metrics/perf.py",
};
const NIXL: Origin = Origin::Upstream {
    source: "vllm 0.33 vllm/distributed/kv_transfer/kv_connector/v1/nixl/stats.py",
};
const INSTRUMENTATOR: Origin = Origin::Upstream {
    source: "prometheus-fastapi-instrumentator metrics.default(), served by vllm 0.33 vllm/entrypoints/openai/api_server.py",
};

/// Every family in this module.
pub const ALL: &[&MetricDef] = &[
    &ESTIMATED_FLOPS_PER_GPU_TOTAL,
    &ESTIMATED_READ_BYTES_PER_GPU_TOTAL,
    &ESTIMATED_WRITE_BYTES_PER_GPU_TOTAL,
    &NUM_REQUESTS_RUNNING,
    &NUM_REQUESTS_WAITING,
    &NUM_REQUESTS_WAITING_BY_REASON,
    &NUM_REQUESTS_KV_FETCH_BY_STAGE,
    &ENGINE_SLEEP_STATE,
    &KV_CACHE_USAGE_PERC,
    &PREFIX_CACHE_QUERIES_TOTAL,
    &PREFIX_CACHE_HITS_TOTAL,
    &EXTERNAL_PREFIX_CACHE_QUERIES_TOTAL,
    &EXTERNAL_PREFIX_CACHE_HITS_TOTAL,
    &MM_CACHE_QUERIES_TOTAL,
    &MM_CACHE_HITS_TOTAL,
    &NUM_PREEMPTIONS_TOTAL,
    &PROMPT_TOKENS_TOTAL,
    &PROMPT_TOKENS_BY_SOURCE_TOTAL,
    &PROMPT_TOKENS_CACHED_TOTAL,
    &PROMPT_TOKENS_CACHED_BY_SOURCE_TOTAL,
    &GENERATION_TOKENS_TOTAL,
    &REQUEST_SUCCESS_TOTAL,
    &ADMISSION_REJECTIONS_TOTAL,
    &REQUEST_PROMPT_TOKENS,
    &REQUEST_GENERATION_TOKENS,
    &ITERATION_TOKENS_TOTAL,
    &REQUEST_MAX_NUM_GENERATION_TOKENS,
    &REQUEST_PARAMS_N,
    &REQUEST_PARAMS_MAX_TOKENS,
    &TIME_TO_FIRST_TOKEN_SECONDS,
    &INTER_TOKEN_LATENCY_SECONDS,
    &REQUEST_TIME_PER_OUTPUT_TOKEN_SECONDS,
    &E2E_REQUEST_LATENCY_SECONDS,
    &REQUEST_QUEUE_TIME_SECONDS,
    &REQUEST_INFERENCE_TIME_SECONDS,
    &REQUEST_PREFILL_TIME_SECONDS,
    &REQUEST_DECODE_TIME_SECONDS,
    &REQUEST_NUM_PREEMPTIONS,
    &REQUEST_PREFILL_KV_COMPUTED_TOKENS,
    &KV_BLOCK_LIFETIME_SECONDS,
    &KV_BLOCK_IDLE_BEFORE_EVICT_SECONDS,
    &KV_BLOCK_REUSE_GAP_SECONDS,
    &LORA_REQUESTS_INFO,
    &CACHE_CONFIG_INFO,
    &NIXL_XFER_TIME_SECONDS,
    &NIXL_POST_TIME_SECONDS,
    &NIXL_BYTES_TRANSFERRED,
    &NIXL_NUM_DESCRIPTORS,
    &NIXL_NUM_FAILED_TRANSFERS_TOTAL,
    &NIXL_NUM_FAILED_NOTIFICATIONS_TOTAL,
    &NIXL_NUM_KV_EXPIRED_REQS_TOTAL,
    &NIXL_NUM_NOTIFICATIONS_AFTER_EXPIRY_TOTAL,
    &HTTP_REQUESTS_TOTAL,
    &HTTP_REQUEST_DURATION_SECONDS,
    &HTTP_REQUEST_DURATION_HIGHR_SECONDS,
];

pub const ESTIMATED_FLOPS_PER_GPU_TOTAL: MetricDef = MetricDef {
    name: "vllm:estimated_flops_per_gpu_total",
    kind: Kind::Counter,
    unit: Unit::Count,
    help: "Estimated number of floating point operations per GPU (for Model Flops Utilization calculations).",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::None,
    origin: PERF,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const ESTIMATED_READ_BYTES_PER_GPU_TOTAL: MetricDef = MetricDef {
    name: "vllm:estimated_read_bytes_per_gpu_total",
    kind: Kind::Counter,
    unit: Unit::Bytes,
    help: "Estimated number of bytes read from memory per GPU (for Model Flops Utilization calculations).",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::None,
    origin: PERF,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const ESTIMATED_WRITE_BYTES_PER_GPU_TOTAL: MetricDef = MetricDef {
    name: "vllm:estimated_write_bytes_per_gpu_total",
    kind: Kind::Counter,
    unit: Unit::Bytes,
    help: "Estimated number of bytes written to memory per GPU (for Model Flops Utilization calculations).",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::None,
    origin: PERF,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const NUM_REQUESTS_RUNNING: MetricDef = MetricDef {
    name: "vllm:num_requests_running",
    kind: Kind::Gauge,
    unit: Unit::Requests,
    help: "Number of requests in model execution batches.",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::None,
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const NUM_REQUESTS_WAITING: MetricDef = MetricDef {
    name: "vllm:num_requests_waiting",
    kind: Kind::Gauge,
    unit: Unit::Requests,
    help: "Number of requests waiting to be processed.",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::None,
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const NUM_REQUESTS_WAITING_BY_REASON: MetricDef = MetricDef {
    name: "vllm:num_requests_waiting_by_reason",
    kind: Kind::Gauge,
    unit: Unit::Requests,
    help: "Number of waiting requests by reason. Reason labels: 'capacity' = waiting for scheduling capacity; 'deferred' = deferred by transient constraints (LoRA budget, KV transfer, blocked status). Sum of all reasons equals vllm:num_requests_waiting.",
    labels: &[labels::ENGINE, labels::MODEL_NAME, labels::REASON],
    buckets: Buckets::None,
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const NUM_REQUESTS_KV_FETCH_BY_STAGE: MetricDef = MetricDef {
    name: "vllm:num_requests_kv_fetch_by_stage",
    kind: Kind::Gauge,
    unit: Unit::Requests,
    help: "Number of waiting requests by async KV load stage. Stage labels: 'waiting_to_start' = needs an async KV load that has not started; 'in_progress' = load started and not yet reported finished; 'completed_waiting' = load finished, request not running yet.",
    labels: &[labels::ENGINE, labels::MODEL_NAME, labels::STAGE],
    buckets: Buckets::None,
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const ENGINE_SLEEP_STATE: MetricDef = MetricDef {
    name: "vllm:engine_sleep_state",
    kind: Kind::Gauge,
    unit: Unit::Count,
    help: "Engine sleep state; awake = 0 means engine is sleeping; awake = 1 means engine is awake; weights_offloaded = 1 means sleep level 1; discard_all = 1 means sleep level 2.",
    labels: &[labels::ENGINE, labels::MODEL_NAME, labels::SLEEP_STATE],
    buckets: Buckets::None,
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const KV_CACHE_USAGE_PERC: MetricDef = MetricDef {
    name: "vllm:kv_cache_usage_perc",
    kind: Kind::Gauge,
    unit: Unit::Ratio,
    help: "KV-cache usage. 1 means 100 percent usage.",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::None,
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const PREFIX_CACHE_QUERIES_TOTAL: MetricDef = MetricDef {
    name: "vllm:prefix_cache_queries_total",
    kind: Kind::Counter,
    unit: Unit::Count,
    help: "Prefix cache queries, in terms of number of queried tokens.",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::None,
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const PREFIX_CACHE_HITS_TOTAL: MetricDef = MetricDef {
    name: "vllm:prefix_cache_hits_total",
    kind: Kind::Counter,
    unit: Unit::Count,
    help: "Prefix cache hits, in terms of number of cached tokens.",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::None,
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const EXTERNAL_PREFIX_CACHE_QUERIES_TOTAL: MetricDef = MetricDef {
    name: "vllm:external_prefix_cache_queries_total",
    kind: Kind::Counter,
    unit: Unit::Count,
    help: "External prefix cache queries from KV connector cross-instance cache sharing, in terms of number of queried tokens.",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::None,
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const EXTERNAL_PREFIX_CACHE_HITS_TOTAL: MetricDef = MetricDef {
    name: "vllm:external_prefix_cache_hits_total",
    kind: Kind::Counter,
    unit: Unit::Count,
    help: "External prefix cache hits from KV connector cross-instance cache sharing, in terms of number of cached tokens.",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::None,
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const MM_CACHE_QUERIES_TOTAL: MetricDef = MetricDef {
    name: "vllm:mm_cache_queries_total",
    kind: Kind::Counter,
    unit: Unit::Count,
    help: "Multi-modal cache queries, in terms of number of queried items.",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::None,
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const MM_CACHE_HITS_TOTAL: MetricDef = MetricDef {
    name: "vllm:mm_cache_hits_total",
    kind: Kind::Counter,
    unit: Unit::Count,
    help: "Multi-modal cache hits, in terms of number of cached items.",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::None,
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const NUM_PREEMPTIONS_TOTAL: MetricDef = MetricDef {
    name: "vllm:num_preemptions_total",
    kind: Kind::Counter,
    unit: Unit::Count,
    help: "Cumulative number of preemption from the engine.",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::None,
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const PROMPT_TOKENS_TOTAL: MetricDef = MetricDef {
    name: "vllm:prompt_tokens_total",
    kind: Kind::Counter,
    unit: Unit::Tokens,
    help: "Number of prefill tokens processed.",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::None,
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const PROMPT_TOKENS_BY_SOURCE_TOTAL: MetricDef = MetricDef {
    name: "vllm:prompt_tokens_by_source_total",
    kind: Kind::Counter,
    unit: Unit::Tokens,
    help: "Number of prompt tokens by source.",
    labels: &[labels::ENGINE, labels::MODEL_NAME, labels::SOURCE],
    buckets: Buckets::None,
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const PROMPT_TOKENS_CACHED_TOTAL: MetricDef = MetricDef {
    name: "vllm:prompt_tokens_cached_total",
    kind: Kind::Counter,
    unit: Unit::Tokens,
    help: "Number of cached prompt tokens (local + external).",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::None,
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const PROMPT_TOKENS_CACHED_BY_SOURCE_TOTAL: MetricDef = MetricDef {
    name: "vllm:prompt_tokens_cached_by_source_total",
    kind: Kind::Counter,
    unit: Unit::Tokens,
    help: "Prefix-cache hit tokens by the cache tier that supplied them: device (local HBM), host (offloaded to DRAM), disk, p2p (transferred from another vLLM instance) or external_unspecified. Counted at admission; sums to vllm:prefix_cache_hits + vllm:external_prefix_cache_hits.",
    labels: &[labels::ENGINE, labels::MODEL_NAME, labels::SOURCE],
    buckets: Buckets::None,
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const GENERATION_TOKENS_TOTAL: MetricDef = MetricDef {
    name: "vllm:generation_tokens_total",
    kind: Kind::Counter,
    unit: Unit::Tokens,
    help: "Number of generation tokens processed.",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::None,
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const REQUEST_SUCCESS_TOTAL: MetricDef = MetricDef {
    name: "vllm:request_success_total",
    kind: Kind::Counter,
    unit: Unit::Requests,
    help: "Count of successfully processed requests.",
    labels: &[labels::ENGINE, labels::FINISHED_REASON, labels::MODEL_NAME],
    buckets: Buckets::None,
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const ADMISSION_REJECTIONS_TOTAL: MetricDef = MetricDef {
    name: "vllm:admission_rejections_total",
    kind: Kind::Counter,
    unit: Unit::Requests,
    help: "Number of admission attempts rejected by a queue limit, by reason.",
    labels: &[labels::MODEL_NAME, labels::REASON],
    buckets: Buckets::None,
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const REQUEST_PROMPT_TOKENS: MetricDef = MetricDef {
    name: "vllm:request_prompt_tokens",
    kind: Kind::Histogram,
    unit: Unit::Tokens,
    help: "Number of prefill tokens processed.",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::OneTwoFiveUpTo,
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const REQUEST_GENERATION_TOKENS: MetricDef = MetricDef {
    name: "vllm:request_generation_tokens",
    kind: Kind::Histogram,
    unit: Unit::Tokens,
    help: "Number of generation tokens processed.",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::OneTwoFiveUpTo,
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const ITERATION_TOKENS_TOTAL: MetricDef = MetricDef {
    name: "vllm:iteration_tokens_total",
    kind: Kind::Histogram,
    unit: Unit::Tokens,
    help: "Histogram of number of tokens per engine_step.",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::Explicit(&[
        1.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0,
    ]),
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const REQUEST_MAX_NUM_GENERATION_TOKENS: MetricDef = MetricDef {
    name: "vllm:request_max_num_generation_tokens",
    kind: Kind::Histogram,
    unit: Unit::Tokens,
    help: "Histogram of maximum number of requested generation tokens.",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::OneTwoFiveUpTo,
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const REQUEST_PARAMS_N: MetricDef = MetricDef {
    name: "vllm:request_params_n",
    kind: Kind::Histogram,
    unit: Unit::Count,
    help: "Histogram of the n request parameter.",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::Explicit(&[1.0, 2.0, 5.0, 10.0, 20.0]),
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const REQUEST_PARAMS_MAX_TOKENS: MetricDef = MetricDef {
    name: "vllm:request_params_max_tokens",
    kind: Kind::Histogram,
    unit: Unit::Tokens,
    help: "Histogram of the max_tokens request parameter.",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::OneTwoFiveUpTo,
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const TIME_TO_FIRST_TOKEN_SECONDS: MetricDef = MetricDef {
    name: "vllm:time_to_first_token_seconds",
    kind: Kind::Histogram,
    unit: Unit::Seconds,
    help: "Histogram of time to first token in seconds.",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::Explicit(&[
        0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
        20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
    ]),
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const INTER_TOKEN_LATENCY_SECONDS: MetricDef = MetricDef {
    name: "vllm:inter_token_latency_seconds",
    kind: Kind::Histogram,
    unit: Unit::Seconds,
    help: "Histogram of inter-token latency in seconds.",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::Explicit(&[
        0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
        20.0, 40.0, 80.0,
    ]),
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const REQUEST_TIME_PER_OUTPUT_TOKEN_SECONDS: MetricDef = MetricDef {
    name: "vllm:request_time_per_output_token_seconds",
    kind: Kind::Histogram,
    unit: Unit::Seconds,
    help: "Histogram of time_per_output_token_seconds per request.",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::Explicit(&[
        0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
        20.0, 40.0, 80.0,
    ]),
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const E2E_REQUEST_LATENCY_SECONDS: MetricDef = MetricDef {
    name: "vllm:e2e_request_latency_seconds",
    kind: Kind::Histogram,
    unit: Unit::Seconds,
    help: "Histogram of e2e request latency in seconds.",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::Explicit(&[
        0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
        240.0, 480.0, 960.0, 1920.0, 7680.0,
    ]),
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const REQUEST_QUEUE_TIME_SECONDS: MetricDef = MetricDef {
    name: "vllm:request_queue_time_seconds",
    kind: Kind::Histogram,
    unit: Unit::Seconds,
    help: "Histogram of time spent in WAITING phase for request.",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::Explicit(&[
        0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
        240.0, 480.0, 960.0, 1920.0, 7680.0,
    ]),
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const REQUEST_INFERENCE_TIME_SECONDS: MetricDef = MetricDef {
    name: "vllm:request_inference_time_seconds",
    kind: Kind::Histogram,
    unit: Unit::Seconds,
    help: "Histogram of time spent in RUNNING phase for request.",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::Explicit(&[
        0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
        240.0, 480.0, 960.0, 1920.0, 7680.0,
    ]),
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const REQUEST_PREFILL_TIME_SECONDS: MetricDef = MetricDef {
    name: "vllm:request_prefill_time_seconds",
    kind: Kind::Histogram,
    unit: Unit::Seconds,
    help: "Histogram of time spent in PREFILL phase for request.",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::Explicit(&[
        0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
        240.0, 480.0, 960.0, 1920.0, 7680.0,
    ]),
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const REQUEST_DECODE_TIME_SECONDS: MetricDef = MetricDef {
    name: "vllm:request_decode_time_seconds",
    kind: Kind::Histogram,
    unit: Unit::Seconds,
    help: "Histogram of time spent in DECODE phase for request.",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::Explicit(&[
        0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
        240.0, 480.0, 960.0, 1920.0, 7680.0,
    ]),
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const REQUEST_NUM_PREEMPTIONS: MetricDef = MetricDef {
    name: "vllm:request_num_preemptions",
    kind: Kind::Histogram,
    unit: Unit::Count,
    help: "Histogram of the number of times a request was preempted.",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::Explicit(&[1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 20.0]),
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const REQUEST_PREFILL_KV_COMPUTED_TOKENS: MetricDef = MetricDef {
    name: "vllm:request_prefill_kv_computed_tokens",
    kind: Kind::Histogram,
    unit: Unit::Tokens,
    help: "Histogram of new KV tokens computed during prefill (excluding cached tokens).",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::OneTwoFiveUpTo,
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const KV_BLOCK_LIFETIME_SECONDS: MetricDef = MetricDef {
    name: "vllm:kv_block_lifetime_seconds",
    kind: Kind::Histogram,
    unit: Unit::Seconds,
    help: "Histogram of KV cache block lifetime from allocation to eviction. Sampled metrics (controlled by --kv-cache-metrics-sample).",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::Explicit(&[
        0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0,
        60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0,
    ]),
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const KV_BLOCK_IDLE_BEFORE_EVICT_SECONDS: MetricDef = MetricDef {
    name: "vllm:kv_block_idle_before_evict_seconds",
    kind: Kind::Histogram,
    unit: Unit::Seconds,
    help: "Histogram of idle time before KV cache block eviction. Sampled metrics (controlled by --kv-cache-metrics-sample).",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::Explicit(&[
        0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0,
        60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0,
    ]),
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const KV_BLOCK_REUSE_GAP_SECONDS: MetricDef = MetricDef {
    name: "vllm:kv_block_reuse_gap_seconds",
    kind: Kind::Histogram,
    unit: Unit::Seconds,
    help: "Histogram of time gaps between consecutive KV cache block accesses. Only the most recent accesses are recorded (ring buffer). Sampled metrics (controlled by --kv-cache-metrics-sample).",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::Explicit(&[
        0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0,
        60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0,
    ]),
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const LORA_REQUESTS_INFO: MetricDef = MetricDef {
    name: "vllm:lora_requests_info",
    kind: Kind::Gauge,
    unit: Unit::Info,
    help: "Running stats on lora requests.",
    labels: &[
        labels::MAX_LORA,
        labels::RUNNING_LORA_ADAPTERS,
        labels::WAITING_LORA_ADAPTERS,
    ],
    buckets: Buckets::None,
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

/// `vllm:cache_config_info`: value 1, one label per `CacheConfig` field (as a string) plus
/// `engine`. vLLM labels it with every field of its `CacheConfig`; we reproduce the fields a
/// router or dashboard reads (block size, block counts, dtype, prefix caching and its hash
/// algorithm, memory fraction). A scraper must not assume this is the full upstream set.
pub const CACHE_CONFIG_INFO: MetricDef = MetricDef {
    name: "vllm:cache_config_info",
    kind: Kind::Gauge,
    unit: Unit::Info,
    help: "Information of the LLMEngine CacheConfig",
    labels: &[
        labels::BLOCK_SIZE,
        labels::CACHE_DTYPE,
        labels::ENABLE_PREFIX_CACHING,
        labels::ENGINE,
        labels::GPU_MEMORY_UTILIZATION,
        labels::NUM_CPU_BLOCKS,
        labels::NUM_GPU_BLOCKS,
        labels::PREFIX_CACHING_HASH_ALGO,
    ],
    buckets: Buckets::None,
    origin: LOGGERS,
    stability: Stability::Stable,
    deprecated_alias: None,
};

/// Requests served by vLLM's API server; `status` is grouped (`2xx`, `4xx`, ...).
pub const HTTP_REQUESTS_TOTAL: MetricDef = MetricDef {
    name: "http_requests_total",
    kind: Kind::Counter,
    unit: Unit::Requests,
    help: "Total number of requests by method, status and handler.",
    labels: &[labels::HANDLER, labels::METHOD, labels::STATUS],
    buckets: Buckets::None,
    origin: INSTRUMENTATOR,
    stability: Stability::Stable,
    deprecated_alias: None,
};

/// Request latency by route. The help text keeps the instrumentator's trailing space.
pub const HTTP_REQUEST_DURATION_SECONDS: MetricDef = MetricDef {
    name: "http_request_duration_seconds",
    kind: Kind::Histogram,
    unit: Unit::Seconds,
    help: "Latency with only few buckets by handler. Made to be only used if aggregation by handler is important. ",
    labels: &[labels::HANDLER, labels::METHOD],
    buckets: Buckets::Explicit(&[0.1, 0.5, 1.0]),
    origin: INSTRUMENTATOR,
    stability: Stability::Stable,
    deprecated_alias: None,
};

/// Request latency without labels. The help text keeps the instrumentator's trailing space.
pub const HTTP_REQUEST_DURATION_HIGHR_SECONDS: MetricDef = MetricDef {
    name: "http_request_duration_highr_seconds",
    kind: Kind::Histogram,
    unit: Unit::Seconds,
    help: "Latency with many buckets but no API specific labels. Made for more accurate percentile calculations. ",
    labels: &[],
    buckets: Buckets::Explicit(&[
        0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5,
        5.0, 7.5, 10.0, 30.0, 60.0,
    ]),
    origin: INSTRUMENTATOR,
    stability: Stability::Stable,
    deprecated_alias: None,
};

// NIXL connector (present when a NIXL KV connector is configured).

pub const NIXL_XFER_TIME_SECONDS: MetricDef = MetricDef {
    name: "vllm:nixl_xfer_time_seconds",
    kind: Kind::Histogram,
    unit: Unit::Seconds,
    help: "Histogram of transfer duration for NIXL KV Cache transfers.",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::Explicit(&[
        0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 5.0,
    ]),
    origin: NIXL,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const NIXL_POST_TIME_SECONDS: MetricDef = MetricDef {
    name: "vllm:nixl_post_time_seconds",
    kind: Kind::Histogram,
    unit: Unit::Seconds,
    help: "Histogram of transfer post time for NIXL KV Cache transfers.",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::Explicit(&[
        0.001, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 5.0,
    ]),
    origin: NIXL,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const NIXL_BYTES_TRANSFERRED: MetricDef = MetricDef {
    name: "vllm:nixl_bytes_transferred",
    kind: Kind::Histogram,
    unit: Unit::Bytes,
    help: "Histogram of bytes transferred per NIXL KV Cache transfers.",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::Explicit(&[
        2048.0,
        8192.0,
        32768.0,
        131072.0,
        524288.0,
        2097152.0,
        8388608.0,
        33554432.0,
        134217728.0,
        536870912.0,
        2147483648.0,
        8589934592.0,
    ]),
    origin: NIXL,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const NIXL_NUM_DESCRIPTORS: MetricDef = MetricDef {
    name: "vllm:nixl_num_descriptors",
    kind: Kind::Histogram,
    unit: Unit::Count,
    help: "Histogram of number of descriptors per NIXL  KV Cache transfers.",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::Explicit(&[
        10.0, 20.0, 30.0, 50.0, 75.0, 100.0, 200.0, 400.0, 1000.0, 2000.0, 4000.0, 10000.0,
        20000.0, 50000.0,
    ]),
    origin: NIXL,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const NIXL_NUM_FAILED_TRANSFERS_TOTAL: MetricDef = MetricDef {
    name: "vllm:nixl_num_failed_transfers_total",
    kind: Kind::Counter,
    unit: Unit::Count,
    help: "Number of failed NIXL KV Cache transfers, including handshake and notification failures. NOTE: KV expiry is tracked separately in vllm:nixl_num_kv_expired_reqs.",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::None,
    origin: NIXL,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const NIXL_NUM_FAILED_NOTIFICATIONS_TOTAL: MetricDef = MetricDef {
    name: "vllm:nixl_num_failed_notifications_total",
    kind: Kind::Counter,
    unit: Unit::Count,
    help: "Number of failed NIXL KV Cache notifications. Retained for compatibility; these failures are also included in vllm:nixl_num_failed_transfers.",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::None,
    origin: NIXL,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const NIXL_NUM_KV_EXPIRED_REQS_TOTAL: MetricDef = MetricDef {
    name: "vllm:nixl_num_kv_expired_reqs_total",
    kind: Kind::Counter,
    unit: Unit::Count,
    help: "Number of requests that had their KV expire. NOTE: This metric is tracked on the P instance.",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::None,
    origin: NIXL,
    stability: Stability::Stable,
    deprecated_alias: None,
};

pub const NIXL_NUM_NOTIFICATIONS_AFTER_EXPIRY_TOTAL: MetricDef = MetricDef {
    name: "vllm:nixl_num_notifications_after_expiry_total",
    kind: Kind::Counter,
    unit: Unit::Count,
    help: "Number of completion notifications for requests that were no longer tracked, usually because their KV lease expired. The KV blocks may have been reused before the transfer finished. Counted per notification (one per remote rank), not per request.",
    labels: &[labels::ENGINE, labels::MODEL_NAME],
    buckets: Buckets::None,
    origin: NIXL,
    stability: Stability::Stable,
    deprecated_alias: None,
};
