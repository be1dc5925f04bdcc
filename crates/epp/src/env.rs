//! Every flag and environment variable the EPP reads, parsed once into a typed [`Config`].
//!
//! Flags and defaults match the upstream EPP (`--pool-name`, `--grpc-port` 9002,
//! `--grpc-health-port` 9003, `--metrics-port` 9090, `--config-file`/`--config-text`,
//! `--refresh-metrics-interval` 50ms, ...) so the image drops into the inferencepool chart;
//! ours are `--endpoint` (a static pool for local runs), `--host`, `--tokenizer` and
//! `--max-request-body-bytes`. Telemetry comes from the standard `OTEL_*` variables.

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use telemetry::TelemetryConfig;

use crate::config::{ConfigError as PluginConfigError, EndpointPickerConfig};
use crate::datastore::EndpointSpec;
use crate::datastore::scrape::MetricNames;

/// The namespace of the pool when `--pool-namespace` is not given (the chart's Downward API).
pub const ENV_POD_NAMESPACE: &str = "POD_NAMESPACE";

pub const DEFAULT_HOST: &str = "0.0.0.0";
pub const DEFAULT_GRPC_PORT: u16 = 9002;
pub const DEFAULT_GRPC_HEALTH_PORT: u16 = 9003;
pub const DEFAULT_METRICS_PORT: u16 = 9090;
pub const DEFAULT_POOL_NAMESPACE: &str = "default";
pub const DEFAULT_POOL_GROUP: &str = "inference.networking.k8s.io";
pub const DEFAULT_REFRESH_METRICS_INTERVAL: &str = "50ms";
pub const DEFAULT_METRICS_STALENESS_THRESHOLD: &str = "2s";
/// Bodies above this are refused with 413 (upstream's gRPC receive limit is 4 MiB by default;
/// #1155 raised it for multimodal bodies).
pub const DEFAULT_MAX_REQUEST_BODY_BYTES: usize = 32 * 1024 * 1024;
/// The OTel service name when `OTEL_SERVICE_NAME` is unset (llm-d-router's).
pub const DEFAULT_SERVICE_NAME: &str = metrics_schema::spans::services::EPP;

/// A source of environment strings: the process environment or a test map.
pub trait Strings {
    fn get(&self, name: &str) -> Option<String>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Strings for ProcessEnv {
    #[allow(clippy::disallowed_methods)] // the one place the EPP reads its environment
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// A fixed map, for tests.
#[derive(Debug, Clone, Default)]
pub struct TestEnv(pub HashMap<String, String>);

impl Strings for TestEnv {
    fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

/// Command-line flags, named as the upstream EPP names them.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "epp",
    version,
    about = "The llm-d Endpoint Picker: an Envoy ext_proc server."
)]
pub struct Args {
    /// Name of the InferencePool whose pods are the endpoints.
    #[arg(long)]
    pub pool_name: Option<String>,
    /// Namespace of the InferencePool (default: $POD_NAMESPACE, else `default`).
    #[arg(long)]
    pub pool_namespace: Option<String>,
    /// API group of the InferencePool.
    #[arg(long, default_value = DEFAULT_POOL_GROUP)]
    pub pool_group: String,
    /// Ours: a static endpoint `ip:port[;label=value...]` instead of an InferencePool;
    /// repeatable.
    #[arg(long = "endpoint", value_name = "ADDR[;LABEL=VALUE...]")]
    pub endpoints: Vec<String>,
    /// Ours: the address every listener binds.
    #[arg(long, default_value = DEFAULT_HOST)]
    pub host: IpAddr,
    /// ext_proc gRPC port (0 picks a free one).
    #[arg(long, default_value_t = DEFAULT_GRPC_PORT)]
    pub grpc_port: u16,
    /// gRPC health port.
    #[arg(long, default_value_t = DEFAULT_GRPC_HEALTH_PORT)]
    pub grpc_health_port: u16,
    /// Prometheus `/metrics` port.
    #[arg(long, default_value_t = DEFAULT_METRICS_PORT)]
    pub metrics_port: u16,
    /// EndpointPickerConfig YAML file.
    #[arg(long, conflicts_with = "config_text")]
    pub config_file: Option<PathBuf>,
    /// EndpointPickerConfig YAML text.
    #[arg(long)]
    pub config_text: Option<String>,
    /// How often each endpoint's `/metrics` is scraped (Go duration; 0 turns scraping off).
    #[arg(long, default_value = DEFAULT_REFRESH_METRICS_INTERVAL)]
    pub refresh_metrics_interval: String,
    /// Endpoints whose last scrape is older than this are not scheduled on.
    #[arg(long, default_value = DEFAULT_METRICS_STALENESS_THRESHOLD)]
    pub metrics_staleness_threshold: String,
    /// TLS on the ext_proc port (on by default, as upstream): `--cert-path`'s `tls.crt` and
    /// `tls.key`, or a self-signed certificate generated at start-up.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub secure_serving: bool,
    /// A directory holding `tls.crt` and `tls.key` (a mounted `kubernetes.io/tls` Secret).
    #[arg(long)]
    pub cert_path: Option<PathBuf>,
    /// Re-read `--cert-path`'s pair when it changes (a renewed Secret), without a restart.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub enable_cert_reload: bool,
    /// Export traces (with `OTEL_EXPORTER_OTLP_ENDPOINT`).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub tracing: bool,
    /// Accepted for compatibility; every in-tree plugin is available.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub allow_experimental_plugins: bool,
    /// Deprecated upstream flag: the waiting-queue metric name.
    #[arg(long)]
    pub total_queued_requests_metric: Option<String>,
    /// Deprecated upstream flag: the running-requests metric name.
    #[arg(long)]
    pub total_running_requests_metric: Option<String>,
    /// Deprecated upstream flag: the KV-cache usage metric name.
    #[arg(long)]
    pub kv_cache_usage_percentage_metric: Option<String>,
    /// Deprecated upstream flag: the LoRA info metric name.
    #[arg(long)]
    pub lora_info_metric: Option<String>,
    /// Deprecated upstream flag: the cache-config info metric name.
    #[arg(long)]
    pub cache_info_metric: Option<String>,
    /// Ours: the default tokenizer (a `tokenizer.json` or model directory); default: the
    /// simulator's embedded one.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Ours: bodies larger than this are refused with 413.
    #[arg(long, default_value_t = DEFAULT_MAX_REQUEST_BODY_BYTES)]
    pub max_request_body_bytes: usize,
    /// Guard `/metrics` with TokenReview and SubjectAccessReview, as upstream (default: on
    /// when following an InferencePool, off with static `--endpoint`s, which have no API
    /// server to ask).
    #[arg(long, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub metrics_endpoint_auth: Option<bool>,
    /// Leader election between EPP replicas (the chart passes it when `replicas > 1`); not
    /// supported: run one replica.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub ha_enable_leader_election: bool,
    /// zap and klog logging flags, as the inferencepool chart renders them.
    #[command(flatten)]
    pub log: telemetry::LogFlags,
}

/// Where endpoints come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovery {
    /// A fixed list.
    Static(Vec<EndpointSpec>),
    /// The pods of an `InferencePool`, watched through the Kubernetes API.
    InferencePool {
        name: String,
        namespace: String,
        group: String,
    },
}

/// TLS on the ext_proc port: off, self-signed (upstream's default), or a mounted pair.
pub use server_tls::ServeTls;

/// Everything the EPP needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    pub host: IpAddr,
    pub grpc_port: u16,
    pub grpc_health_port: u16,
    pub metrics_port: u16,
    pub discovery: Discovery,
    /// Pool name for metric labels (the InferencePool's, or `static`).
    pub pool_name: String,
    pub plugins: EndpointPickerConfig,
    /// `None`: metrics are not scraped, every endpoint is always a candidate.
    pub refresh_metrics_interval: Option<Duration>,
    pub metrics_staleness_threshold: Duration,
    pub metric_names: MetricNames,
    pub tokenizer: Option<PathBuf>,
    pub max_request_body_bytes: usize,
    pub telemetry: TelemetryConfig,
    /// TLS on the ext_proc port.
    pub tls: ServeTls,
    /// Re-read a mounted certificate when it changes.
    pub cert_reload: bool,
    /// `/metrics` answers only tokens the API server authorizes for it.
    pub metrics_auth: bool,
    /// The Kubernetes client for InferencePool discovery; `None` builds one the standard way
    /// (in-cluster service account, or `KUBECONFIG`) when the pool is watched.
    pub kube_client: Option<KubeClient>,
}

pub use inference_pool::KubeClient;

/// Errors of the flags and environment, all reported together.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error(transparent)]
    Cli(#[from] clap::Error),
    #[error("invalid configuration:\n  {}", .0.join("\n  "))]
    Invalid(Vec<String>),
}

impl Config {
    /// Parses `args` (with the program name first) and `env`, reporting every bad value.
    pub fn parse<I, T>(args: I, env: &dyn Strings) -> Result<Config, EnvError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let args = Args::try_parse_from(args)?;
        let mut errors = Vec::new();
        let telemetry = match TelemetryConfig::parse(|name| env.get(name), DEFAULT_SERVICE_NAME) {
            Ok(mut telemetry) => {
                if !args.tracing {
                    telemetry.otlp_endpoint = None;
                }
                args.log.apply(&mut telemetry);
                telemetry
            }
            Err(bad) => {
                errors.extend(bad.iter().map(ToString::to_string));
                TelemetryConfig::disabled(DEFAULT_SERVICE_NAME)
            }
        };
        let tls = match (args.secure_serving, &args.cert_path) {
            (false, None) => ServeTls::Off,
            (false, Some(_)) => {
                errors.push("--cert-path needs --secure-serving=true".to_owned());
                ServeTls::Off
            }
            (true, None) => ServeTls::SelfSigned,
            (true, Some(dir)) => ServeTls::Files(dir.clone()),
        };
        if args.enable_cert_reload && !matches!(tls, ServeTls::Files(_)) {
            errors.push("--enable-cert-reload needs --cert-path".to_owned());
        }
        if args.ha_enable_leader_election {
            errors.push("--ha-enable-leader-election: leader election is not supported; run one EPP replica".to_owned());
        }
        let mut duration = |flag: &str, text: &str| match parse_duration(text) {
            Ok(duration) => duration,
            Err(reason) => {
                errors.push(format!("{flag}={text:?}: {reason}"));
                Duration::ZERO
            }
        };
        let refresh = duration("--refresh-metrics-interval", &args.refresh_metrics_interval);
        let staleness = duration(
            "--metrics-staleness-threshold",
            &args.metrics_staleness_threshold,
        );
        let discovery = match (&args.pool_name, args.endpoints.is_empty()) {
            (Some(_), false) => {
                errors.push("--pool-name and --endpoint are mutually exclusive".to_owned());
                Discovery::Static(Vec::new())
            }
            (None, true) => {
                errors.push("either --pool-name (an InferencePool) or --endpoint (a static list) is required".to_owned());
                Discovery::Static(Vec::new())
            }
            (Some(name), true) => Discovery::InferencePool {
                name: name.clone(),
                namespace: args
                    .pool_namespace
                    .clone()
                    .or_else(|| env.get(ENV_POD_NAMESPACE).filter(|ns| !ns.is_empty()))
                    .unwrap_or_else(|| DEFAULT_POOL_NAMESPACE.to_owned()),
                group: args.pool_group.clone(),
            },
            (None, false) => {
                let mut specs = Vec::new();
                for text in &args.endpoints {
                    match parse_endpoint(text) {
                        Ok(spec) => specs.push(spec),
                        Err(reason) => errors.push(format!("--endpoint={text:?}: {reason}")),
                    }
                }
                Discovery::Static(specs)
            }
        };
        let metrics_auth = args
            .metrics_endpoint_auth
            .unwrap_or(matches!(discovery, Discovery::InferencePool { .. }));
        let config_text = match (&args.config_file, &args.config_text) {
            (Some(path), _) => match std::fs::read_to_string(path) {
                Ok(text) => text,
                Err(error) => {
                    errors.push(format!("--config-file={}: {error}", path.display()));
                    String::new()
                }
            },
            (None, Some(text)) => text.clone(),
            (None, None) => String::new(),
        };
        let plugins = match crate::config::parse(&config_text) {
            Ok(config) => config,
            Err(error) => {
                errors.push(config_error_text(&error));
                EndpointPickerConfig::default()
            }
        };
        if args.max_request_body_bytes == 0 {
            errors.push("--max-request-body-bytes must be at least 1".to_owned());
        }
        if !errors.is_empty() {
            return Err(EnvError::Invalid(errors));
        }
        let mut names = MetricNames::default();
        for (flag, target) in [
            (&args.total_queued_requests_metric, &mut names.waiting),
            (&args.total_running_requests_metric, &mut names.running),
            (
                &args.kv_cache_usage_percentage_metric,
                &mut names.kv_cache_usage,
            ),
            (&args.lora_info_metric, &mut names.lora_info),
            (&args.cache_info_metric, &mut names.cache_info),
        ] {
            if let Some(name) = flag {
                *target = name.clone();
            }
        }
        Ok(Config {
            host: args.host,
            grpc_port: args.grpc_port,
            grpc_health_port: args.grpc_health_port,
            metrics_port: args.metrics_port,
            pool_name: match &discovery {
                Discovery::InferencePool { name, .. } => name.clone(),
                Discovery::Static(_) => "static".to_owned(),
            },
            discovery,
            plugins,
            refresh_metrics_interval: (!refresh.is_zero()).then_some(refresh),
            metrics_staleness_threshold: staleness,
            metric_names: names,
            tokenizer: args.tokenizer,
            max_request_body_bytes: args.max_request_body_bytes,
            telemetry,
            tls,
            cert_reload: args.enable_cert_reload,
            metrics_auth,
            kube_client: None,
        })
    }
}

fn config_error_text(error: &PluginConfigError) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// `ip:port[;label=value...]`.
pub fn parse_endpoint(text: &str) -> Result<EndpointSpec, String> {
    let mut parts = text.split(';');
    let address = parts.next().unwrap_or_default().trim();
    if address.parse::<std::net::SocketAddr>().is_err() {
        return Err(format!("{address:?} is not ip:port"));
    }
    let mut labels = BTreeMap::new();
    for part in parts.filter(|p| !p.is_empty()) {
        let Some((key, value)) = part.split_once('=') else {
            return Err(format!("label {part:?} is not key=value"));
        };
        labels.insert(key.trim().to_owned(), value.trim().to_owned());
    }
    Ok(EndpointSpec {
        labels,
        ..EndpointSpec::new(address)
    })
}

/// A Go duration: `50ms`, `2s`, `1m30s`, `1.5h`, `100us`, `0`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err("empty duration".to_owned());
    }
    let mut total = 0.0_f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("missing unit in {text:?}"))?;
        let number: f64 = rest[..number_end]
            .parse()
            .map_err(|_| format!("bad number in {text:?}"))?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            unit => return Err(format!("unknown unit {unit:?} (ns, us, ms, s, m, h)")),
        };
        total += number * seconds;
        rest = &rest[unit_end..];
    }
    Ok(Duration::from_secs_f64(total))
}
