//! The simulator's command line: `vllm serve` flag names where vLLM has them, plus the
//! simulator's own timing and failure-injection flags.

use std::{net::IpAddr, path::PathBuf, str::FromStr, time::Duration};

use clap::Parser;
use kv_index::hash::HashAlgo;

use crate::env::{EnvValues, Strings};

/// Simulator defaults, shared by parsing and docs.
pub const DEFAULT_PORT: u16 = 8000;
pub const DEFAULT_MAX_NUM_SEQS: usize = 256;
pub const DEFAULT_MAX_MODEL_LEN: u32 = 4096;
pub const DEFAULT_BLOCK_SIZE: u32 = 16;
pub const DEFAULT_NUM_GPU_BLOCKS: u32 = 8192;
pub const DEFAULT_MAX_REQUEST_BODY_MB: usize = 32;

/// Errors in the command line or the JSON flag values.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Cli(#[from] clap::Error),
    #[error("--{flag}: {reason}")]
    Invalid { flag: &'static str, reason: String },
    #[error("environment: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Env(Vec<telemetry::ConfigError>),
}

/// `vllm serve`-compatible flags.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "vllm-sim",
    version,
    about = "A vLLM 0.33 simulator, faithful at the wire.",
    // As argparse: a repeated flag's last value wins (the image's entrypoint sets --host).
    args_override_self = true
)]
pub struct Args {
    /// Model name or path (also accepted as the first positional argument, as `vllm serve`).
    #[arg(long, default_value = "sim-model")]
    pub model: String,
    /// `vllm serve MODEL` form.
    #[arg(hide = true)]
    pub model_positional: Option<String>,
    /// Names the API accepts for the model; the first is reported (default: --model).
    #[arg(long, num_args = 1..)]
    pub served_model_name: Vec<String>,
    /// LoRA adapters as `name=path` (or vLLM's JSON form `{"name":..,"path":..}`); a request
    /// selects one by sending its name as `model`.
    #[arg(long, num_args = 1..)]
    pub lora_modules: Vec<String>,
    /// Listen address (loopback by default; the container image passes 0.0.0.0, as vLLM
    /// binds all interfaces).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// Maximum number of sequences running at once (the continuous batch).
    #[arg(long, default_value_t = DEFAULT_MAX_NUM_SEQS)]
    pub max_num_seqs: usize,
    /// Context length: prompt plus output tokens.
    #[arg(long, default_value_t = DEFAULT_MAX_MODEL_LEN)]
    pub max_model_len: u32,
    /// Tokens per KV block.
    #[arg(long, default_value_t = DEFAULT_BLOCK_SIZE)]
    pub block_size: u32,
    /// Number of KV blocks in the GPU pool.
    #[arg(long, default_value_t = DEFAULT_NUM_GPU_BLOCKS)]
    pub num_gpu_blocks_override: u32,
    /// Prefix caching (on by default in vLLM 0.33).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub enable_prefix_caching: bool,
    #[arg(long)]
    pub no_enable_prefix_caching: bool,
    /// sha256 (default), sha256_cbor, xxhash or xxhash_cbor.
    #[arg(long, default_value = "sha256")]
    pub prefix_caching_hash_algo: String,
    /// KVEventsConfig as JSON.
    #[arg(long)]
    pub kv_events_config: Option<String>,
    /// KVTransferConfig as JSON.
    #[arg(long)]
    pub kv_transfer_config: Option<String>,
    /// OTLP traces endpoint; turns tracing on.
    #[arg(long)]
    pub otlp_traces_endpoint: Option<String>,
    /// `model`, `worker` and/or `all` (comma-separated); needs --otlp-traces-endpoint. As in
    /// vLLM 0.33, no request-span attribute depends on it (the modelservice chart passes it).
    #[arg(long, value_delimiter = ',', value_parser = ["model", "worker", "all"])]
    pub collect_detailed_traces: Vec<String>,
    /// Report `usage.prompt_tokens_details.cached_tokens`.
    #[arg(long)]
    pub enable_prompt_tokens_details: bool,
    /// Echo `X-Request-Id` in responses.
    #[arg(long)]
    pub enable_request_id_headers: bool,
    /// Always include usage in streams.
    #[arg(long)]
    pub enable_force_include_usage: bool,
    /// A tokenizer.json file or a model directory; default: the embedded BPE.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Require `Authorization: Bearer <key>`.
    #[arg(long)]
    pub api_key: Option<String>,
    /// Request bodies larger than this are refused with 413.
    #[arg(long, default_value_t = DEFAULT_MAX_REQUEST_BODY_MB)]
    pub max_request_body_mb: usize,
    /// Random seed for generated text, jitter and failure injection.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    // Timing model (simulator-only flags, named as llm-d-inference-sim names them).
    /// A fixed time to first token in ms; replaces the prefill model when set.
    #[arg(long)]
    pub time_to_first_token: Option<f64>,
    /// Fixed prefill cost in ms.
    #[arg(long, default_value_t = 0.0)]
    pub prefill_overhead: f64,
    /// Prefill cost per uncached prompt token in ms.
    #[arg(long, default_value_t = 0.0)]
    pub prefill_time_per_token: f64,
    /// Standard deviation of the prefill time in ms.
    #[arg(long, default_value_t = 0.0)]
    pub prefill_time_std_dev: f64,
    /// Time between output tokens in ms.
    #[arg(long, default_value_t = 0.0)]
    pub inter_token_latency: f64,
    /// Standard deviation of the inter-token latency in ms.
    #[arg(long, default_value_t = 0.0)]
    pub inter_token_latency_std_dev: f64,
    /// Slowdown at a full batch: times scale by 1 + (f-1)(running-1)/(max_num_seqs-1).
    #[arg(long, default_value_t = 1.0)]
    pub time_factor_under_load: f64,
    /// KV transfer time per prompt token in ms (decode side of P/D, when not measured).
    #[arg(long, default_value_t = 0.0)]
    pub kv_cache_transfer_time_per_token: f64,

    // Failure injection.
    /// Percentage (0-100) of requests that fail.
    #[arg(long, default_value_t = 0.0)]
    pub failure_injection_rate: f64,
    /// Failure types to draw from (default: all): rate_limit, invalid_api_key,
    /// context_length, server_error, invalid_request, model_not_found.
    #[arg(long, num_args = 1..)]
    pub failure_types: Vec<String>,

    /// Model shape and link of P/D KV transfers.
    #[command(flatten)]
    pub pd: crate::pd::PdArgs,
}

/// The timing model.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    pub time_to_first_token: Option<Duration>,
    pub prefill_overhead: Duration,
    pub prefill_time_per_token: Duration,
    pub prefill_std_dev: Duration,
    pub inter_token_latency: Duration,
    pub inter_token_latency_std_dev: Duration,
    pub time_factor_under_load: f64,
    pub kv_transfer_time_per_token: Duration,
}

/// Kinds of injected failure and the status each answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureType {
    RateLimit,
    InvalidApiKey,
    ContextLength,
    ServerError,
    InvalidRequest,
    ModelNotFound,
}

impl FailureType {
    pub const ALL: [FailureType; 6] = [
        FailureType::RateLimit,
        FailureType::InvalidApiKey,
        FailureType::ContextLength,
        FailureType::ServerError,
        FailureType::InvalidRequest,
        FailureType::ModelNotFound,
    ];

    pub fn status(self) -> u16 {
        match self {
            FailureType::RateLimit => 429,
            FailureType::InvalidApiKey => 401,
            FailureType::ContextLength | FailureType::InvalidRequest => 400,
            FailureType::ServerError => 503,
            FailureType::ModelNotFound => 404,
        }
    }
}

impl FromStr for FailureType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "rate_limit" => FailureType::RateLimit,
            "invalid_api_key" => FailureType::InvalidApiKey,
            "context_length" => FailureType::ContextLength,
            "server_error" => FailureType::ServerError,
            "invalid_request" => FailureType::InvalidRequest,
            "model_not_found" => FailureType::ModelNotFound,
            other => return Err(format!("unknown failure type {other:?}")),
        })
    }
}

/// A LoRA adapter from `--lora-modules`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoraModule {
    /// The name requests use as `model`; hashed and published in KV events.
    pub name: String,
    /// The adapter path, hashed (not published).
    pub path: String,
    /// vLLM's `lora_int_id`: 1, 2, ... in flag order.
    pub id: i64,
}

impl LoraModule {
    /// Parses `name=path` or `{"name": .., "path": ..}`.
    fn parse(spec: &str, id: i64) -> Result<LoraModule, String> {
        let (name, path) = if spec.trim_start().starts_with('{') {
            let value: serde_json::Value =
                serde_json::from_str(spec).map_err(|err| format!("not valid JSON: {err}"))?;
            let field = |key: &str| value.get(key).and_then(|v| v.as_str()).map(str::to_owned);
            match (field("name"), field("path")) {
                (Some(name), Some(path)) => (name, path),
                _ => return Err(format!("{spec:?} needs string fields name and path")),
            }
        } else {
            match spec.split_once('=') {
                Some((name, path)) => (name.to_owned(), path.to_owned()),
                None => return Err(format!("expected name=path, got {spec:?}")),
            }
        };
        if name.is_empty() {
            return Err(format!("{spec:?} has an empty name"));
        }
        Ok(LoraModule { name, path, id })
    }
}

/// The simulator's typed configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub model: String,
    /// Accepted model names; `served_model_names[0]` is the reported name and the
    /// `model_name` label.
    pub served_model_names: Vec<String>,
    /// `--lora-modules`, in flag order.
    pub lora_modules: Vec<LoraModule>,
    pub host: IpAddr,
    pub port: u16,
    pub max_num_seqs: usize,
    pub max_model_len: u32,
    pub block_size: u32,
    pub num_gpu_blocks: u32,
    pub enable_prefix_caching: bool,
    pub hash_algo: HashAlgo,
    /// `PYTHONHASHSEED`, when set.
    pub hash_seed: Option<String>,
    /// The raw `--kv-events-config` JSON.
    pub kv_events_config: Option<String>,
    /// The raw `--kv-transfer-config` JSON.
    pub kv_transfer_config: Option<String>,
    pub otlp_traces_endpoint: Option<String>,
    /// Logging and tracing from the `OTEL_*`/`RUST_LOG` variables; `--otlp-traces-endpoint`
    /// wins over `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, as in vLLM.
    pub telemetry: telemetry::TelemetryConfig,
    pub enable_prompt_tokens_details: bool,
    pub enable_request_id_headers: bool,
    pub enable_force_include_usage: bool,
    pub tokenizer: Option<PathBuf>,
    pub api_key: Option<String>,
    pub max_request_body_bytes: usize,
    pub seed: u64,
    pub timing: Timing,
    /// Fraction 0..=1 of requests that fail.
    pub failure_rate: f64,
    pub failure_types: Vec<FailureType>,
    pub pod_name: Option<String>,
    pub pod_ip: Option<String>,
    /// `VLLM_SERVER_DEV_MODE=1`: dev-only routes are served.
    pub dev_mode: bool,
    /// P/D roles (`--kv-transfer-config`), model shape and KV link.
    pub pd: crate::pd::PdConfig,
}

impl Config {
    /// Parses a command line (with the program name first) and the environment.
    pub fn parse<I, T>(args: I, env: &dyn Strings) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let args = Args::try_parse_from(args)?;
        let telemetry = telemetry::TelemetryConfig::parse(
            |name| env.get(name),
            metrics_schema::spans::services::VLLM,
        )
        .map_err(ConfigError::Env)?;
        let mut config = Config::from_parsed(args, EnvValues::read(env), telemetry)?;
        if let Some(endpoint) = &config.otlp_traces_endpoint {
            config.telemetry.otlp_endpoint = Some(endpoint.clone());
        }
        Ok(config)
    }

    /// Parses a command line with an empty environment (tests and embedding).
    pub fn from_args<I, T>(args: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Config::parse(args, &crate::env::TestEnv::default())
    }

    fn from_parsed(
        args: Args,
        env: EnvValues,
        telemetry: telemetry::TelemetryConfig,
    ) -> Result<Config, ConfigError> {
        let invalid = |flag, reason: String| ConfigError::Invalid { flag, reason };
        let model = args.model_positional.clone().unwrap_or(args.model.clone());
        let served_model_names = if args.served_model_name.is_empty() {
            vec![model.clone()]
        } else {
            args.served_model_name.clone()
        };
        let lora_modules = args
            .lora_modules
            .iter()
            .enumerate()
            .map(|(i, spec)| LoraModule::parse(spec, i as i64 + 1))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|reason| invalid("lora-modules", reason))?;
        if !args.collect_detailed_traces.is_empty() && args.otlp_traces_endpoint.is_none() {
            return Err(invalid(
                "collect-detailed-traces",
                "needs --otlp-traces-endpoint".into(),
            ));
        }
        if args.max_num_seqs == 0 {
            return Err(invalid("max-num-seqs", "must be at least 1".into()));
        }
        if args.block_size == 0 {
            return Err(invalid("block-size", "must be at least 1".into()));
        }
        if args.num_gpu_blocks_override == 0 {
            return Err(invalid(
                "num-gpu-blocks-override",
                "must be at least 1".into(),
            ));
        }
        if args.max_model_len == 0 {
            return Err(invalid("max-model-len", "must be at least 1".into()));
        }
        let hash_algo = args
            .prefix_caching_hash_algo
            .parse::<HashAlgo>()
            .map_err(|err| invalid("prefix-caching-hash-algo", err.to_string()))?;
        let ms = |flag: &'static str, value: f64| -> Result<Duration, ConfigError> {
            if value.is_finite() && value >= 0.0 {
                Ok(Duration::from_secs_f64(value / 1000.0))
            } else {
                Err(invalid(
                    flag,
                    format!("{value} is not a non-negative number of ms"),
                ))
            }
        };
        if !(args.time_factor_under_load.is_finite() && args.time_factor_under_load >= 1.0) {
            return Err(invalid(
                "time-factor-under-load",
                "must be at least 1.0".into(),
            ));
        }
        let timing = Timing {
            time_to_first_token: args
                .time_to_first_token
                .map(|v| ms("time-to-first-token", v))
                .transpose()?,
            prefill_overhead: ms("prefill-overhead", args.prefill_overhead)?,
            prefill_time_per_token: ms("prefill-time-per-token", args.prefill_time_per_token)?,
            prefill_std_dev: ms("prefill-time-std-dev", args.prefill_time_std_dev)?,
            inter_token_latency: ms("inter-token-latency", args.inter_token_latency)?,
            inter_token_latency_std_dev: ms(
                "inter-token-latency-std-dev",
                args.inter_token_latency_std_dev,
            )?,
            time_factor_under_load: args.time_factor_under_load,
            kv_transfer_time_per_token: ms(
                "kv-cache-transfer-time-per-token",
                args.kv_cache_transfer_time_per_token,
            )?,
        };
        if !(0.0..=100.0).contains(&args.failure_injection_rate) {
            return Err(invalid(
                "failure-injection-rate",
                "must be between 0 and 100".into(),
            ));
        }
        let failure_types = if args.failure_types.is_empty() {
            FailureType::ALL.to_vec()
        } else {
            args.failure_types
                .iter()
                .map(|s| s.parse::<FailureType>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|reason| invalid("failure-types", reason))?
        };
        for (flag, json) in [
            ("kv-events-config", &args.kv_events_config),
            ("kv-transfer-config", &args.kv_transfer_config),
        ] {
            if let Some(json) = json {
                serde_json::from_str::<serde_json::Value>(json)
                    .map_err(|err| invalid(flag, format!("not valid JSON: {err}")))?;
            }
        }
        let pd = crate::pd::PdConfig::from_args(
            &args.pd,
            args.kv_transfer_config.as_deref(),
            env.nixl_side_channel_host.as_deref(),
            env.nixl_side_channel_port.as_deref(),
        )
        .map_err(|(flag, reason)| invalid(flag, reason))?;
        Ok(Config {
            model,
            served_model_names,
            lora_modules,
            host: args.host,
            port: args.port,
            max_num_seqs: args.max_num_seqs,
            max_model_len: args.max_model_len,
            block_size: args.block_size,
            num_gpu_blocks: args.num_gpu_blocks_override,
            enable_prefix_caching: args.enable_prefix_caching && !args.no_enable_prefix_caching,
            hash_algo,
            hash_seed: env.hash_seed,
            kv_events_config: args.kv_events_config,
            kv_transfer_config: args.kv_transfer_config,
            otlp_traces_endpoint: args.otlp_traces_endpoint,
            telemetry,
            enable_prompt_tokens_details: args.enable_prompt_tokens_details,
            enable_request_id_headers: args.enable_request_id_headers,
            enable_force_include_usage: args.enable_force_include_usage,
            tokenizer: args.tokenizer,
            api_key: args.api_key,
            max_request_body_bytes: args.max_request_body_mb.saturating_mul(1024 * 1024),
            seed: args.seed,
            timing,
            failure_rate: args.failure_injection_rate / 100.0,
            failure_types,
            pod_name: env.pod_name,
            pod_ip: env.pod_ip,
            dev_mode: env.dev_mode,
            pd,
        })
    }

    /// The reported model name (the `model_name` label).
    pub fn served_name(&self) -> &str {
        &self.served_model_names[0]
    }
}
