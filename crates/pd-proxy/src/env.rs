//! Every environment variable the sidecar reads, in one place (STYLE rule 8).
//!
//! The upstream sidecar takes `INFERENCE_POOL` (2026) or `INFERENCE_POOL_NAMESPACE`/
//! `INFERENCE_POOL_NAME` (2025) and `ENABLE_PREFILLER_SAMPLING`; the allow-list variables are
//! ours, so a deployment without flags can still name the prefill pods. Telemetry comes from
//! the standard `OTEL_*` variables through [`telemetry::TelemetryConfig::parse`].

use std::collections::HashMap;

/// `ns/name` or `name` of the InferencePool (2026 sidecar).
pub const ENV_INFERENCE_POOL: &str = "INFERENCE_POOL";
/// The pool's namespace (2025 sidecar).
pub const ENV_INFERENCE_POOL_NAMESPACE: &str = "INFERENCE_POOL_NAMESPACE";
/// The pool's name (2025 sidecar).
pub const ENV_INFERENCE_POOL_NAME: &str = "INFERENCE_POOL_NAME";
/// `true` picks a random prefill host when the header names several.
pub const ENV_ENABLE_PREFILLER_SAMPLING: &str = "ENABLE_PREFILLER_SAMPLING";
/// Comma-separated prefill hosts (`host` or `host:port`) the sidecar may call.
pub const ENV_ALLOWED_PREFILL_HOSTS: &str = "PD_PROXY_ALLOWED_PREFILL_HOSTS";
/// A file listing the pool's endpoints, one `host[:port]` per line, re-read when it changes.
pub const ENV_POOL_FILE: &str = "PD_PROXY_POOL_FILE";

/// The default `OTEL_SERVICE_NAME`.
pub const DEFAULT_SERVICE_NAME: &str = metrics_schema::spans::services::PD_PROXY;

/// Every variable this module reads (besides the telemetry ones).
pub const ALL_ENV: &[&str] = &[
    ENV_INFERENCE_POOL,
    ENV_INFERENCE_POOL_NAMESPACE,
    ENV_INFERENCE_POOL_NAME,
    ENV_ENABLE_PREFILLER_SAMPLING,
    ENV_ALLOWED_PREFILL_HOSTS,
    ENV_POOL_FILE,
];

/// A source of environment strings: the process environment or a test map.
pub trait Strings {
    fn get(&self, name: &str) -> Option<String>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Strings for ProcessEnv {
    #[allow(clippy::disallowed_methods)] // the one place the sidecar reads its environment
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// A fixed map, for tests.
#[derive(Debug, Clone, Default)]
pub struct TestEnv(pub HashMap<String, String>);

impl TestEnv {
    /// A map from `(name, value)` pairs.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> TestEnv {
        TestEnv(
            pairs
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
        )
    }
}

impl Strings for TestEnv {
    fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

/// One bad variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}={value:?}: {reason}")]
pub struct EnvError {
    pub name: &'static str,
    pub value: String,
    pub reason: String,
}

/// What the sidecar takes from its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvValues {
    pub inference_pool: Option<String>,
    pub prefiller_sampling: Option<bool>,
    pub allowed_prefill_hosts: Vec<String>,
    pub pool_file: Option<String>,
    pub telemetry: telemetry::TelemetryConfig,
}

impl EnvValues {
    /// Parses every variable and reports every bad one at once.
    pub fn read(strings: &dyn Strings) -> Result<EnvValues, Vec<EnvError>> {
        let nonempty = |name| {
            strings
                .get(name)
                .map(|value: String| value.trim().to_owned())
                .filter(|value| !value.is_empty())
        };
        let mut errors = Vec::new();
        let inference_pool = nonempty(ENV_INFERENCE_POOL).or_else(|| {
            let name = nonempty(ENV_INFERENCE_POOL_NAME)?;
            Some(match nonempty(ENV_INFERENCE_POOL_NAMESPACE) {
                Some(namespace) => format!("{namespace}/{name}"),
                None => name,
            })
        });
        let prefiller_sampling = match nonempty(ENV_ENABLE_PREFILLER_SAMPLING) {
            None => None,
            Some(value) => match parse_bool(&value) {
                Some(flag) => Some(flag),
                None => {
                    errors.push(EnvError {
                        name: ENV_ENABLE_PREFILLER_SAMPLING,
                        value,
                        reason: "not a boolean".into(),
                    });
                    None
                }
            },
        };
        let allowed_prefill_hosts = nonempty(ENV_ALLOWED_PREFILL_HOSTS)
            .map(|list| split_list(&list))
            .unwrap_or_default();
        let telemetry =
            telemetry::TelemetryConfig::parse(|name| strings.get(name), DEFAULT_SERVICE_NAME)
                .unwrap_or_else(|telemetry_errors| {
                    errors.extend(telemetry_errors.into_iter().map(|error| EnvError {
                        name: error.name,
                        value: error.value,
                        reason: error.reason.to_owned(),
                    }));
                    telemetry::TelemetryConfig::disabled(DEFAULT_SERVICE_NAME)
                });
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(EnvValues {
            inference_pool,
            prefiller_sampling,
            allowed_prefill_hosts,
            pool_file: nonempty(ENV_POOL_FILE),
            telemetry,
        })
    }
}

/// Go's `strconv.ParseBool` spellings.
pub(crate) fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// A comma- or whitespace-separated list, empty items dropped.
pub(crate) fn split_list(list: &str) -> Vec<String> {
    list.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}
