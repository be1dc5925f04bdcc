//! The simulator's `/metrics`: vLLM's families from `metrics_schema::vllm`, registered per
//! server and bound once to this engine's `model_name`/`engine` labels.

use metrics_schema::{MetricDef, sim, vllm};
use prometheus::{Counter, CounterVec, Gauge, Histogram, HistogramVec, Registry};

use crate::config::Config;

/// Label values in the schema's declared order; `pairs` name the values.
fn values<'a>(def: &MetricDef, pairs: &[(&str, &'a str)]) -> Vec<&'a str> {
    def.labels
        .iter()
        .map(|label| {
            pairs
                .iter()
                .find(|(name, _)| *name == label.name)
                .map(|(_, value)| *value)
                .unwrap_or_default()
        })
        .collect()
}

/// Metric handles used by the engine thread and the HTTP layer.
#[derive(Clone)]
pub(crate) struct Metrics {
    pub(crate) registry: Registry,
    pub(crate) num_requests_running: Gauge,
    pub(crate) num_requests_waiting: Gauge,
    pub(crate) waiting_capacity: Gauge,
    pub(crate) waiting_deferred: Gauge,
    pub(crate) kv_cache_usage_perc: Gauge,
    pub(crate) prefix_cache_queries: Counter,
    pub(crate) prefix_cache_hits: Counter,
    pub(crate) num_preemptions: Counter,
    pub(crate) prompt_tokens: Counter,
    pub(crate) prompt_tokens_local_compute: Counter,
    pub(crate) prompt_tokens_local_cache_hit: Counter,
    pub(crate) prompt_tokens_external: Counter,
    pub(crate) prompt_tokens_cached: Counter,
    pub(crate) prompt_tokens_cached_device: Counter,
    pub(crate) generation_tokens: Counter,
    request_success: CounterVec,
    engine_labels: [String; 2],
    pub(crate) request_prompt_tokens: Histogram,
    pub(crate) request_generation_tokens: Histogram,
    pub(crate) request_max_num_generation_tokens: Histogram,
    pub(crate) request_params_n: Histogram,
    pub(crate) request_params_max_tokens: Histogram,
    pub(crate) request_prefill_kv_computed_tokens: Histogram,
    pub(crate) iteration_tokens: Histogram,
    pub(crate) time_to_first_token: Histogram,
    pub(crate) inter_token_latency: Histogram,
    pub(crate) request_time_per_output_token: Histogram,
    pub(crate) e2e_request_latency: Histogram,
    pub(crate) request_queue_time: Histogram,
    pub(crate) request_inference_time: Histogram,
    pub(crate) request_prefill_time: Histogram,
    pub(crate) request_decode_time: Histogram,
    pub(crate) request_num_preemptions: Histogram,
    pub(crate) engine_timer_lateness: Histogram,
    pub(crate) http_requests: CounterVec,
    pub(crate) http_request_duration: HistogramVec,
}

impl Metrics {
    pub(crate) fn new(config: &Config) -> prometheus::Result<Metrics> {
        let registry = Registry::new();
        let model = config.served_name();
        let engine = "0";
        let bound = [("model_name", model), ("engine", engine)];
        let gauge = |def: &MetricDef, extra: &[(&str, &str)]| -> prometheus::Result<Gauge> {
            let pairs: Vec<_> = bound.iter().chain(extra).copied().collect();
            let family = def.register_gauge(&registry)?;
            Ok(family.with_label_values(&values(def, &pairs)))
        };
        let counter_family = |def: &MetricDef| def.register_counter(&registry);
        let histogram = |def: &MetricDef| -> prometheus::Result<Histogram> {
            let family = def.register_histogram(&registry, u64::from(config.max_model_len))?;
            Ok(family.with_label_values(&values(def, &bound)))
        };
        let bind = |family: &CounterVec, def: &MetricDef, extra: &[(&str, &str)]| {
            let pairs: Vec<_> = bound.iter().chain(extra).copied().collect();
            family.with_label_values(&values(def, &pairs))
        };

        // Gauges whose families carry more label values than we bind are registered once.
        let waiting_by_reason = vllm::NUM_REQUESTS_WAITING_BY_REASON.register_gauge(&registry)?;
        let by_reason = |reason| {
            let pairs = [bound[0], bound[1], ("reason", reason)];
            waiting_by_reason
                .with_label_values(&values(&vllm::NUM_REQUESTS_WAITING_BY_REASON, &pairs))
        };
        let prompt_by_source = counter_family(&vllm::PROMPT_TOKENS_BY_SOURCE_TOTAL)?;
        let cached_by_source = counter_family(&vllm::PROMPT_TOKENS_CACHED_BY_SOURCE_TOTAL)?;
        let request_success = counter_family(&vllm::REQUEST_SUCCESS_TOTAL)?;
        let single = |def: &MetricDef| -> prometheus::Result<Counter> {
            let family = counter_family(def)?;
            Ok(bind(&family, def, &[]))
        };

        let metrics = Metrics {
            num_requests_running: gauge(&vllm::NUM_REQUESTS_RUNNING, &[])?,
            num_requests_waiting: gauge(&vllm::NUM_REQUESTS_WAITING, &[])?,
            waiting_capacity: by_reason("capacity"),
            waiting_deferred: by_reason("deferred"),
            kv_cache_usage_perc: gauge(&vllm::KV_CACHE_USAGE_PERC, &[])?,
            prefix_cache_queries: single(&vllm::PREFIX_CACHE_QUERIES_TOTAL)?,
            prefix_cache_hits: single(&vllm::PREFIX_CACHE_HITS_TOTAL)?,
            num_preemptions: single(&vllm::NUM_PREEMPTIONS_TOTAL)?,
            prompt_tokens: single(&vllm::PROMPT_TOKENS_TOTAL)?,
            prompt_tokens_local_compute: bind(
                &prompt_by_source,
                &vllm::PROMPT_TOKENS_BY_SOURCE_TOTAL,
                &[("source", "local_compute")],
            ),
            prompt_tokens_local_cache_hit: bind(
                &prompt_by_source,
                &vllm::PROMPT_TOKENS_BY_SOURCE_TOTAL,
                &[("source", "local_cache_hit")],
            ),
            prompt_tokens_external: bind(
                &prompt_by_source,
                &vllm::PROMPT_TOKENS_BY_SOURCE_TOTAL,
                &[("source", "external_kv_transfer")],
            ),
            prompt_tokens_cached: single(&vllm::PROMPT_TOKENS_CACHED_TOTAL)?,
            prompt_tokens_cached_device: bind(
                &cached_by_source,
                &vllm::PROMPT_TOKENS_CACHED_BY_SOURCE_TOTAL,
                &[("source", "device")],
            ),
            generation_tokens: single(&vllm::GENERATION_TOKENS_TOTAL)?,
            request_success,
            engine_labels: [model.to_owned(), engine.to_owned()],
            request_prompt_tokens: histogram(&vllm::REQUEST_PROMPT_TOKENS)?,
            request_generation_tokens: histogram(&vllm::REQUEST_GENERATION_TOKENS)?,
            request_max_num_generation_tokens: histogram(&vllm::REQUEST_MAX_NUM_GENERATION_TOKENS)?,
            request_params_n: histogram(&vllm::REQUEST_PARAMS_N)?,
            request_params_max_tokens: histogram(&vllm::REQUEST_PARAMS_MAX_TOKENS)?,
            request_prefill_kv_computed_tokens: histogram(
                &vllm::REQUEST_PREFILL_KV_COMPUTED_TOKENS,
            )?,
            iteration_tokens: histogram(&vllm::ITERATION_TOKENS_TOTAL)?,
            time_to_first_token: histogram(&vllm::TIME_TO_FIRST_TOKEN_SECONDS)?,
            inter_token_latency: histogram(&vllm::INTER_TOKEN_LATENCY_SECONDS)?,
            request_time_per_output_token: histogram(&vllm::REQUEST_TIME_PER_OUTPUT_TOKEN_SECONDS)?,
            e2e_request_latency: histogram(&vllm::E2E_REQUEST_LATENCY_SECONDS)?,
            request_queue_time: histogram(&vllm::REQUEST_QUEUE_TIME_SECONDS)?,
            request_inference_time: histogram(&vllm::REQUEST_INFERENCE_TIME_SECONDS)?,
            request_prefill_time: histogram(&vllm::REQUEST_PREFILL_TIME_SECONDS)?,
            request_decode_time: histogram(&vllm::REQUEST_DECODE_TIME_SECONDS)?,
            request_num_preemptions: histogram(&vllm::REQUEST_NUM_PREEMPTIONS)?,
            engine_timer_lateness: sim::ENGINE_TIMER_LATENESS_SECONDS
                .register_histogram(&registry, 0)?
                .with_label_values(&[model]),
            http_requests: vllm::HTTP_REQUESTS_TOTAL.register_counter(&registry)?,
            http_request_duration: vllm::HTTP_REQUEST_DURATION_SECONDS
                .register_histogram(&registry, 0)?,
            registry,
        };
        // Families vLLM always registers, present from start-up with zero values.
        for def in [
            &vllm::EXTERNAL_PREFIX_CACHE_QUERIES_TOTAL,
            &vllm::EXTERNAL_PREFIX_CACHE_HITS_TOTAL,
            &vllm::MM_CACHE_QUERIES_TOTAL,
            &vllm::MM_CACHE_HITS_TOTAL,
            &vllm::ESTIMATED_FLOPS_PER_GPU_TOTAL,
            &vllm::ESTIMATED_READ_BYTES_PER_GPU_TOTAL,
            &vllm::ESTIMATED_WRITE_BYTES_PER_GPU_TOTAL,
        ] {
            let family = def.register_counter(&metrics.registry)?;
            bind(&family, def, &[]);
        }
        for reason in ["stop", "length", "abort", "error", "repetition"] {
            metrics.request_success(reason);
        }
        // The simulator queues without bound, so admission never rejects; both reasons exist.
        let rejections = vllm::ADMISSION_REJECTIONS_TOTAL.register_counter(&metrics.registry)?;
        for reason in ["max_num_queued_reqs", "max_num_queued_tokens"] {
            let pairs = [bound[0], ("reason", reason)];
            rejections.with_label_values(&values(&vllm::ADMISSION_REJECTIONS_TOTAL, &pairs));
        }
        let sleep_state = vllm::ENGINE_SLEEP_STATE.register_gauge(&metrics.registry)?;
        for (state, value) in [
            ("awake", 1.0),
            ("weights_offloaded", 0.0),
            ("discard_all", 0.0),
        ] {
            let pairs = [bound[0], bound[1], ("sleep_state", state)];
            sleep_state
                .with_label_values(&values(&vllm::ENGINE_SLEEP_STATE, &pairs))
                .set(value);
        }
        let cache_config = vllm::CACHE_CONFIG_INFO.register_gauge(&metrics.registry)?;
        let block_size = config.block_size.to_string();
        let num_gpu_blocks = config.num_gpu_blocks.to_string();
        let prefix_caching = if config.enable_prefix_caching {
            "True"
        } else {
            "False"
        };
        let pairs = [
            ("block_size", block_size.as_str()),
            ("cache_dtype", "auto"),
            ("enable_prefix_caching", prefix_caching),
            ("gpu_memory_utilization", "0.9"),
            ("num_cpu_blocks", "None"),
            ("num_gpu_blocks", num_gpu_blocks.as_str()),
            ("prefix_caching_hash_algo", config.hash_algo.as_str()),
            ("engine", engine),
        ];
        cache_config
            .with_label_values(&values(&vllm::CACHE_CONFIG_INFO, &pairs))
            .set(1.0);
        Ok(metrics)
    }

    /// `vllm:request_success_total` for one finish reason.
    pub(crate) fn request_success(&self, finished_reason: &str) -> Counter {
        let pairs = [
            ("model_name", self.engine_labels[0].as_str()),
            ("engine", self.engine_labels[1].as_str()),
            ("finished_reason", finished_reason),
        ];
        self.request_success
            .with_label_values(&values(&vllm::REQUEST_SUCCESS_TOTAL, &pairs))
    }
}
