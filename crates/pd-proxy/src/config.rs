//! The sidecar's command line, compatible with both generations of the upstream sidecar, and
//! the typed [`Config`] it becomes.
//!
//! * 2025 `llm-d-routing-sidecar` (Go `flag`, so `-port 8000` works as well as `--port`):
//!   `--port`, `--vllm-port`, `--connector`, `--prefiller-use-tls`, `--decoder-use-tls`,
//!   `--prefiller-tls-insecure-skip-verify`, `--decoder-tls-insecure-skip-verify`,
//!   `--secure-proxy`, `--cert-path`, `--enable-ssrf-protection`,
//!   `--inference-pool-namespace`, `--inference-pool-name`, `-v`.
//! * 2026 `pd-sidecar` (pflag): `--model-server-port` (`--vllm-port` deprecated),
//!   `--kv-connector`, `--enable-tls`, `--tls-insecure-skip-verify`, `--inference-pool`,
//!   `--pool-group`, `--enable-prefiller-sampling`, `--max-idle-conns-per-host`,
//!   `--prefill-max-retries`, `--prefill-retry-backoff`, `--tracing`, `--metrics-port`,
//!   `--data-parallel-size`, `--decode-chunk-size`, the `--zap-*` logging flags.
//!
//! Ours: `--host`, `--model-server-host`, `--allowed-prefill-hosts`, `--pool-file`,
//! `--pool-refresh-interval`, `--prefill-timeout`, `--decode-timeout`, `--prefill-fallback`,
//! `--metrics-addr`, `--max-request-body-mb`.
//!
//! Differences, on purpose: SSRF protection is **on** by default (upstream: off), so a sidecar
//! with no allow-list refuses every prefill target until it is given one; `--secure-proxy`
//! defaults to false (the modelservice chart renders `--secure-proxy=false`), and TLS is not
//! built in: asking for it fails at start-up instead of silently serving plaintext.

#[cfg(test)]
mod tests;

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    time::Duration,
};

use clap::{ArgAction, Parser};

use crate::env::{EnvError, EnvValues, Strings, parse_bool, split_list};

pub const DEFAULT_PORT: u16 = 8000;
pub const DEFAULT_MODEL_SERVER_PORT: u16 = 8200;
pub const DEFAULT_MODEL_SERVER_HOST: &str = "127.0.0.1";
pub const DEFAULT_HOST: &str = "0.0.0.0";
pub const DEFAULT_MAX_IDLE_CONNS_PER_HOST: usize = 1024;
pub const DEFAULT_PREFILL_TIMEOUT: &str = "60s";
pub const DEFAULT_DECODE_TIMEOUT: &str = "300s";
pub const DEFAULT_PREFILL_RETRY_BACKOFF: &str = "200ms";
pub const DEFAULT_CERT_RELOAD_INTERVAL: &str = "10s";
pub const DEFAULT_POOL_REFRESH_INTERVAL: &str = "5s";
pub const DEFAULT_MAX_REQUEST_BODY_MB: usize = 32;

/// Errors in the command line or the environment.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Cli(#[from] clap::Error),
    #[error("--{flag}: {reason}")]
    Invalid { flag: &'static str, reason: String },
    #[error("environment: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Env(Vec<EnvError>),
}

/// The upstream sidecars' flags, plus ours.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "pd-proxy",
    version,
    about = "P/D sidecar: runs the prefill leg on the pod named by x-prefiller-host-port, then the decode leg on the local vLLM."
)]
pub struct Args {
    /// Port the sidecar listens on (where vLLM would).
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// Address the sidecar listens on.
    #[arg(long, default_value = DEFAULT_HOST)]
    pub host: IpAddr,
    /// Port of the local decode vLLM.
    #[arg(long = "model-server-port", alias = "vllm-port", default_value_t = DEFAULT_MODEL_SERVER_PORT)]
    pub model_server_port: u16,
    /// Host of the local decode vLLM.
    #[arg(long, default_value = DEFAULT_MODEL_SERVER_HOST)]
    pub model_server_host: String,
    /// KV connector protocol: nixlv2 (the only one implemented; `nixl` is accepted as its alias).
    #[arg(long = "kv-connector", alias = "connector", default_value = "nixlv2")]
    pub kv_connector: String,
    /// Data-parallel ranks; only 1 is supported.
    #[arg(long, default_value_t = 1)]
    pub data_parallel_size: u32,
    /// Chunked decode; only 0 (off) is supported.
    #[arg(long, default_value_t = 0)]
    pub decode_chunk_size: u32,
    /// Serve TLS on the listen port (self-signed unless --cert-path). Upstream defaults to
    /// true; the modelservice chart renders it explicitly, and ours defaults to false.
    #[arg(long, default_value_t = false, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_parser = bool_flag)]
    pub secure_proxy: bool,
    /// Directory with tls.crt/tls.key for --secure-proxy; re-read when it changes.
    #[arg(long)]
    pub cert_path: Option<PathBuf>,
    /// Ours: how often the --cert-path pair is checked for a renewal.
    #[arg(long, default_value = DEFAULT_CERT_RELOAD_INTERVAL, value_parser = go_duration)]
    pub cert_reload_interval: Duration,
    /// 2025: TLS to the prefill pods.
    #[arg(long, default_value_t = false, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_parser = bool_flag)]
    pub prefiller_use_tls: bool,
    /// 2025: TLS to the local vLLM.
    #[arg(long, default_value_t = false, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_parser = bool_flag)]
    pub decoder_use_tls: bool,
    #[arg(long, default_value_t = false, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_parser = bool_flag)]
    pub prefiller_tls_insecure_skip_verify: bool,
    #[arg(long, default_value_t = false, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_parser = bool_flag)]
    pub decoder_tls_insecure_skip_verify: bool,
    /// 2026: stages that use TLS (prefiller, decoder, encoder), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub enable_tls: Vec<String>,
    /// 2026: stages whose TLS certificate is not verified.
    #[arg(long, value_delimiter = ',')]
    pub tls_insecure_skip_verify: Vec<String>,
    /// Check the prefill target against the allow-list. Off by default as upstream: the
    /// modelservice chart renders the sidecar's flags itself and cannot turn it off, nor
    /// name the pool to allow.
    #[arg(long, default_value_t = false, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_parser = bool_flag)]
    pub enable_ssrf_protection: bool,
    /// The InferencePool (`ns/name` or `name`); env INFERENCE_POOL.
    #[arg(long)]
    pub inference_pool: Option<String>,
    /// 2025: the pool's namespace; env INFERENCE_POOL_NAMESPACE.
    #[arg(long)]
    pub inference_pool_namespace: Option<String>,
    /// 2025: the pool's name; env INFERENCE_POOL_NAME.
    #[arg(long)]
    pub inference_pool_name: Option<String>,
    /// The pool's API group.
    #[arg(long, default_value = "inference.networking.k8s.io")]
    pub pool_group: String,
    /// Prefill hosts (`host` or `host:port`) the sidecar may call, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub allowed_prefill_hosts: Vec<String>,
    /// A file listing the pool's endpoints (`host[:port]` per line), re-read when it changes.
    #[arg(long)]
    pub pool_file: Option<PathBuf>,
    /// How often the pool file is checked for changes.
    #[arg(long, default_value = DEFAULT_POOL_REFRESH_INTERVAL, value_parser = go_duration)]
    pub pool_refresh_interval: Duration,
    /// Pick a random prefill host when the header names several.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_parser = bool_flag)]
    pub enable_prefiller_sampling: Option<bool>,
    /// Idle keep-alive connections kept per upstream host.
    #[arg(long, default_value_t = DEFAULT_MAX_IDLE_CONNS_PER_HOST)]
    pub max_idle_conns_per_host: usize,
    /// Retries of a prefill answered 502, 503 or 504 (or not connected).
    #[arg(long, default_value_t = 0)]
    pub prefill_max_retries: u32,
    /// Pause between prefill retries.
    #[arg(long, default_value = DEFAULT_PREFILL_RETRY_BACKOFF, value_parser = go_duration)]
    pub prefill_retry_backoff: Duration,
    /// Limit of one prefill attempt.
    #[arg(long, default_value = DEFAULT_PREFILL_TIMEOUT, value_parser = go_duration)]
    pub prefill_timeout: Duration,
    /// Longest silence of the decode leg (before headers or between chunks).
    #[arg(long, default_value = DEFAULT_DECODE_TIMEOUT, value_parser = go_duration)]
    pub decode_timeout: Duration,
    /// On a failed prefill: `error` (answer the client with the error, as upstream) or
    /// `local` (let the decode vLLM prefill the request itself).
    #[arg(long, default_value = "error")]
    pub prefill_fallback: String,
    /// OpenTelemetry tracing (also needs OTEL_EXPORTER_OTLP_ENDPOINT).
    #[arg(long, default_value_t = false, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_parser = bool_flag)]
    pub tracing: bool,
    /// Port of the sidecar's own /metrics (0: off).
    #[arg(long, default_value_t = 0)]
    pub metrics_port: u16,
    /// Address of the sidecar's own /metrics; wins over --metrics-port (port 0: ephemeral).
    #[arg(long)]
    pub metrics_addr: Option<SocketAddr>,
    /// Request bodies larger than this are refused with 413.
    #[arg(long, default_value_t = DEFAULT_MAX_REQUEST_BODY_MB)]
    pub max_request_body_mb: usize,
    /// zap and klog logging flags, as the modelservice chart renders them.
    #[command(flatten)]
    pub log: telemetry::LogFlags,
}

/// The connectors the sidecar speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connector {
    /// vLLM NixlConnector, READ mode: prefill with `do_remote_decode`, then decode with the
    /// prefill's `kv_transfer_params`.
    NixlV2,
}

impl Connector {
    /// The `connector` label and span attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            Connector::NixlV2 => "nixlv2",
        }
    }
}

/// What happens when the prefill leg fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefillFallback {
    /// The client gets a clear error (upstream's behaviour).
    Error,
    /// The request goes to the local vLLM without `kv_transfer_params`; it prefills itself.
    Local,
}

/// TLS on the listen port and to each upstream stage.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsConfig {
    /// `--secure-proxy`: TLS on the listen port.
    pub serve: ServeTls,
    /// TLS to the prefill pods named by the header.
    pub prefiller: UpstreamTls,
    /// TLS to the local decode vLLM.
    pub decoder: UpstreamTls,
}

/// How the listen port serves: plain HTTP, a certificate generated at start-up (upstream's
/// default without `--cert-path`), or a mounted `tls.crt`/`tls.key`, re-read when it changes.
pub use server_tls::ServeTls;

/// How one upstream stage is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamTls {
    /// Plain HTTP.
    Off,
    /// HTTPS, the certificate checked against the system's roots.
    Verified,
    /// HTTPS without checking the certificate (`--tls-insecure-skip-verify`), as clusters
    /// with self-signed engine certificates run it.
    Unverified,
}

/// The stage names upstream's `--enable-tls` takes.
pub const PREFILLER: &str = "prefiller";
pub const DECODER: &str = "decoder";

fn tls_stage(stage: &str) -> Result<&'static str, String> {
    match stage.trim() {
        PREFILLER => Ok(PREFILLER),
        DECODER => Ok(DECODER),
        "encoder" => Err("the encoder stage is not supported (no encode connector)".to_owned()),
        other => Err(format!("{other:?} is not a stage (prefiller, decoder)")),
    }
}

/// Where prefill targets may point.
#[derive(Debug, Clone, PartialEq)]
pub struct SsrfConfig {
    /// Check prefill targets at all.
    pub enabled: bool,
    /// Static entries: `host` (any port) or `host:port`.
    pub allowed_hosts: Vec<String>,
    /// The pool's endpoints, re-read every `pool_refresh`.
    pub pool_file: Option<PathBuf>,
    pub pool_refresh: Duration,
    /// The InferencePool named by flags or environment: with protection on, its ready pods'
    /// IPs join the allow-list as they change.
    pub inference_pool: Option<inference_pool::PoolRef>,
}

/// The sidecar's typed configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the sidecar listens.
    pub listen: SocketAddr,
    /// The local decode vLLM, `host:port`.
    pub decoder: String,
    pub connector: Connector,
    pub ssrf: SsrfConfig,
    pub tls: TlsConfig,
    /// How often a mounted certificate is checked for a renewal.
    pub cert_reload_interval: Duration,
    /// Random choice among several prefill hosts.
    pub prefiller_sampling: bool,
    pub prefill_timeout: Duration,
    pub decode_timeout: Duration,
    pub prefill_max_retries: u32,
    pub prefill_retry_backoff: Duration,
    pub prefill_fallback: PrefillFallback,
    pub max_idle_conns_per_host: usize,
    pub max_request_body_bytes: usize,
    /// The sidecar's own `/metrics`; `None` is off.
    pub metrics_addr: Option<SocketAddr>,
    /// `--tracing`: spans are exported only with this and an OTLP endpoint.
    pub tracing: bool,
    pub telemetry: telemetry::TelemetryConfig,
    /// The Kubernetes client for watching the pool; `None` builds one the standard way
    /// (in-cluster service account, or `KUBECONFIG`).
    pub kube_client: Option<KubeClient>,
}

pub use inference_pool::KubeClient;

impl Config {
    /// Parses a command line (program name first) and the environment.
    pub fn parse<I, T>(args: I, env: &dyn Strings) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let args = Args::try_parse_from(normalize_go_flags(args))?;
        let env = EnvValues::read(env).map_err(ConfigError::Env)?;
        Config::from_parsed(args, env)
    }

    /// Parses a command line with an empty environment (tests and embedding).
    pub fn from_args<I, T>(args: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Config::parse(args, &crate::env::TestEnv::default())
    }

    fn from_parsed(args: Args, env: EnvValues) -> Result<Config, ConfigError> {
        let invalid = |flag, reason: &str| ConfigError::Invalid {
            flag,
            reason: reason.to_owned(),
        };
        let connector = match args.kv_connector.as_str() {
            "nixlv2" | "nixl" => Connector::NixlV2,
            other => {
                return Err(invalid(
                    "kv-connector",
                    &format!("{other:?} is not supported (nixlv2 is)"),
                ));
            }
        };
        if args.data_parallel_size != 1 {
            return Err(invalid("data-parallel-size", "only 1 is supported"));
        }
        if args.decode_chunk_size != 0 {
            return Err(invalid(
                "decode-chunk-size",
                "chunked decode is not supported",
            ));
        }
        // The 2026 stage list plus the 2025 per-stage booleans, each checked by name.
        let stages = |flag, list: &[String], prefiller: bool, decoder: bool| {
            list.iter()
                .map(String::as_str)
                .chain(prefiller.then_some(PREFILLER))
                .chain(decoder.then_some(DECODER))
                .map(|stage| tls_stage(stage).map_err(|reason| invalid(flag, &reason)))
                .collect::<Result<std::collections::BTreeSet<_>, _>>()
        };
        let enabled = stages(
            "enable-tls",
            &args.enable_tls,
            args.prefiller_use_tls,
            args.decoder_use_tls,
        )?;
        let unverified = stages(
            "tls-insecure-skip-verify",
            &args.tls_insecure_skip_verify,
            args.prefiller_tls_insecure_skip_verify,
            args.decoder_tls_insecure_skip_verify,
        )?;
        let upstream_tls =
            |stage: &'static str| match (enabled.contains(stage), unverified.contains(stage)) {
                (false, _) => UpstreamTls::Off,
                (true, false) => UpstreamTls::Verified,
                (true, true) => UpstreamTls::Unverified,
            };
        let tls = TlsConfig {
            serve: match (args.secure_proxy, &args.cert_path) {
                (false, _) => ServeTls::Off,
                (true, None) => ServeTls::SelfSigned,
                (true, Some(dir)) => ServeTls::Files(dir.clone()),
            },
            prefiller: upstream_tls(PREFILLER),
            decoder: upstream_tls(DECODER),
        };
        let prefill_fallback = match args.prefill_fallback.as_str() {
            "error" => PrefillFallback::Error,
            "local" => PrefillFallback::Local,
            _ => return Err(invalid("prefill-fallback", "must be error or local")),
        };
        if args.max_idle_conns_per_host == 0 {
            return Err(invalid("max-idle-conns-per-host", "must be at least 1"));
        }
        let mut allowed_hosts = env.allowed_prefill_hosts;
        allowed_hosts.extend(
            args.allowed_prefill_hosts
                .iter()
                .flat_map(|h| split_list(h)),
        );
        let inference_pool = args
            .inference_pool
            .or_else(|| {
                let name = args.inference_pool_name?;
                Some(match args.inference_pool_namespace {
                    Some(namespace) => format!("{namespace}/{name}"),
                    None => name,
                })
            })
            .or(env.inference_pool)
            .map(|text| {
                inference_pool::PoolRef::parse(
                    &text,
                    inference_pool::spec::DEFAULT_NAMESPACE,
                    &args.pool_group,
                )
                .map_err(|error| invalid("inference-pool", &error.to_string()))
            })
            .transpose()?;
        let metrics_addr = args.metrics_addr.or_else(|| {
            (args.metrics_port != 0).then(|| SocketAddr::new(args.host, args.metrics_port))
        });
        let mut telemetry = env.telemetry;
        args.log.apply(&mut telemetry);
        Ok(Config {
            listen: SocketAddr::new(args.host, args.port),
            decoder: format!("{}:{}", args.model_server_host, args.model_server_port),
            connector,
            ssrf: SsrfConfig {
                enabled: args.enable_ssrf_protection,
                allowed_hosts,
                pool_file: args.pool_file.or(env.pool_file.map(PathBuf::from)),
                pool_refresh: args.pool_refresh_interval,
                inference_pool,
            },
            tls,
            cert_reload_interval: args.cert_reload_interval,
            prefiller_sampling: args
                .enable_prefiller_sampling
                .or(env.prefiller_sampling)
                .unwrap_or(false),
            prefill_timeout: args.prefill_timeout,
            decode_timeout: args.decode_timeout,
            prefill_max_retries: args.prefill_max_retries,
            prefill_retry_backoff: args.prefill_retry_backoff,
            prefill_fallback,
            max_idle_conns_per_host: args.max_idle_conns_per_host,
            max_request_body_bytes: args.max_request_body_mb.saturating_mul(1024 * 1024),
            metrics_addr,
            tracing: args.tracing,
            telemetry,
            kube_client: None,
        })
    }
}

/// A bool flag value in Go's spellings.
fn bool_flag(value: &str) -> Result<bool, String> {
    parse_bool(value).ok_or_else(|| format!("{value:?} is not a boolean"))
}

/// A Go duration: `300ms`, `1.5s`, `2m`, `1h`, `250us`; a bare number is seconds.
pub fn go_duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{value:?} is not a duration"))?;
    let seconds = match unit {
        "" | "s" => number,
        "ms" => number / 1e3,
        "us" | "µs" => number / 1e6,
        "ns" => number / 1e9,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return Err(format!("{value:?} has an unknown unit")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("{value:?} is out of range"))
}

/// Go's `flag` accepts `-name value`; clap wants `--name`. Single-dash words become long
/// flags; `-v` stays the short flag.
fn normalize_go_flags<I, T>(args: I) -> Vec<std::ffi::OsString>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    args.into_iter()
        .map(|arg| {
            let arg: std::ffi::OsString = arg.into();
            let Some(text) = arg.to_str() else {
                return arg;
            };
            let name = text.split('=').next().unwrap_or_default();
            let is_go_long = name.len() > 2
                && name.starts_with('-')
                && !name.starts_with("--")
                && name[1..].starts_with(|c: char| c.is_ascii_alphabetic());
            if is_go_long {
                format!("-{text}").into()
            } else {
                arg
            }
        })
        .collect()
}
