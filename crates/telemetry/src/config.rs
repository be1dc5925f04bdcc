//! Telemetry configuration from the standard `OTEL_*` and logging variables.

#[cfg(test)]
mod tests;

/// `OTEL_EXPORTER_OTLP_ENDPOINT`: base endpoint for all signals.
pub const ENV_OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`: the traces endpoint; wins over the base endpoint.
pub const ENV_OTLP_TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
/// `OTEL_EXPORTER_OTLP_PROTOCOL`: `grpc` or `http/protobuf`.
pub const ENV_OTLP_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
/// `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`: wins over `OTEL_EXPORTER_OTLP_PROTOCOL`.
pub const ENV_OTLP_TRACES_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";
/// `OTEL_SERVICE_NAME`.
pub const ENV_SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
/// `OTEL_TRACES_EXPORTER`: `otlp` (default when an endpoint is set) or `none`.
pub const ENV_TRACES_EXPORTER: &str = "OTEL_TRACES_EXPORTER";
/// `OTEL_TRACES_SAMPLER`: `always_on`, `always_off`, `traceidratio`, and the `parentbased_*`
/// forms.
pub const ENV_TRACES_SAMPLER: &str = "OTEL_TRACES_SAMPLER";
/// `OTEL_TRACES_SAMPLER_ARG`: the ratio for the ratio samplers.
pub const ENV_TRACES_SAMPLER_ARG: &str = "OTEL_TRACES_SAMPLER_ARG";
/// `RUST_LOG`: log filter directives.
pub const ENV_LOG: &str = "RUST_LOG";
/// `LOG_FORMAT`: `text` (default) or `json`.
pub const ENV_LOG_FORMAT: &str = "LOG_FORMAT";

/// Default log filter when `RUST_LOG` is unset.
pub const DEFAULT_LOG_FILTER: &str = "info";

/// Every variable this module reads, for documentation and tests.
pub const ALL_ENV: &[&str] = &[
    ENV_OTLP_ENDPOINT,
    ENV_OTLP_TRACES_ENDPOINT,
    ENV_OTLP_PROTOCOL,
    ENV_OTLP_TRACES_PROTOCOL,
    ENV_SERVICE_NAME,
    ENV_TRACES_EXPORTER,
    ENV_TRACES_SAMPLER,
    ENV_TRACES_SAMPLER_ARG,
    ENV_LOG,
    ENV_LOG_FORMAT,
];

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    Grpc,
    HttpProtobuf,
}

/// Which traces are kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampling {
    AlwaysOn,
    AlwaysOff,
    Ratio(f64),
    /// Follow the parent's decision; roots use the inner sampling.
    ParentBased(ParentRoot),
}

/// The root sampler of [`Sampling::ParentBased`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParentRoot {
    AlwaysOn,
    AlwaysOff,
    Ratio(f64),
}

/// Telemetry settings of one binary.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryConfig {
    /// `service.name` of every span.
    pub service_name: String,
    /// Where traces go; `None` disables tracing entirely.
    pub otlp_endpoint: Option<String>,
    pub otlp_protocol: OtlpProtocol,
    pub sampling: Sampling,
    pub log_filter: String,
    pub log_format: LogFormat,
}

/// One bad variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}={value:?}: {reason}")]
pub struct ConfigError {
    pub name: &'static str,
    pub value: String,
    pub reason: &'static str,
}

impl TelemetryConfig {
    /// A config with tracing off, for tests and for binaries that have not read the
    /// environment.
    pub fn disabled(service_name: &str) -> TelemetryConfig {
        TelemetryConfig {
            service_name: service_name.to_owned(),
            otlp_endpoint: None,
            otlp_protocol: OtlpProtocol::Grpc,
            sampling: Sampling::ParentBased(ParentRoot::AlwaysOn),
            log_filter: DEFAULT_LOG_FILTER.to_owned(),
            log_format: LogFormat::Text,
        }
    }

    /// Parses every variable through `lookup` and reports every bad one at once.
    /// `default_service_name` is used when `OTEL_SERVICE_NAME` is unset.
    pub fn parse(
        lookup: impl Fn(&str) -> Option<String>,
        default_service_name: &str,
    ) -> Result<TelemetryConfig, Vec<ConfigError>> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let mut errors = Vec::new();
        let mut config = TelemetryConfig::disabled(default_service_name);
        if let Some(name) = get(ENV_SERVICE_NAME) {
            config.service_name = name;
        }
        let protocol_var = if get(ENV_OTLP_TRACES_PROTOCOL).is_some() {
            ENV_OTLP_TRACES_PROTOCOL
        } else {
            ENV_OTLP_PROTOCOL
        };
        if let Some(protocol) = get(protocol_var) {
            match protocol.as_str() {
                "grpc" => config.otlp_protocol = OtlpProtocol::Grpc,
                "http/protobuf" => config.otlp_protocol = OtlpProtocol::HttpProtobuf,
                _ => errors.push(ConfigError {
                    name: if protocol_var == ENV_OTLP_TRACES_PROTOCOL {
                        ENV_OTLP_TRACES_PROTOCOL
                    } else {
                        ENV_OTLP_PROTOCOL
                    },
                    value: protocol,
                    reason: "expected grpc or http/protobuf",
                }),
            }
        }
        let endpoint = match (get(ENV_OTLP_TRACES_ENDPOINT), get(ENV_OTLP_ENDPOINT)) {
            (Some(traces), _) => Some(traces),
            // The base endpoint gets the signal path appended for HTTP, per the OTLP spec.
            (None, Some(base)) if config.otlp_protocol == OtlpProtocol::HttpProtobuf => {
                Some(format!("{}/v1/traces", base.trim_end_matches('/')))
            }
            (None, base) => base,
        };
        if let Some(endpoint) = &endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            errors.push(ConfigError {
                name: ENV_OTLP_TRACES_ENDPOINT,
                value: endpoint.clone(),
                reason: "expected an http:// or https:// URL",
            });
        }
        config.otlp_endpoint = endpoint;
        match get(ENV_TRACES_EXPORTER).as_deref() {
            None | Some("otlp") => {}
            Some("none") => config.otlp_endpoint = None,
            Some(other) => errors.push(ConfigError {
                name: ENV_TRACES_EXPORTER,
                value: other.to_owned(),
                reason: "expected otlp or none",
            }),
        }
        let ratio = match get(ENV_TRACES_SAMPLER_ARG) {
            None => 1.0,
            Some(arg) => match arg.parse::<f64>() {
                Ok(ratio) if (0.0..=1.0).contains(&ratio) => ratio,
                _ => {
                    errors.push(ConfigError {
                        name: ENV_TRACES_SAMPLER_ARG,
                        value: arg,
                        reason: "expected a number between 0 and 1",
                    });
                    1.0
                }
            },
        };
        if let Some(sampler) = get(ENV_TRACES_SAMPLER) {
            config.sampling = match sampler.as_str() {
                "always_on" => Sampling::AlwaysOn,
                "always_off" => Sampling::AlwaysOff,
                "traceidratio" => Sampling::Ratio(ratio),
                "parentbased_always_on" => Sampling::ParentBased(ParentRoot::AlwaysOn),
                "parentbased_always_off" => Sampling::ParentBased(ParentRoot::AlwaysOff),
                "parentbased_traceidratio" => Sampling::ParentBased(ParentRoot::Ratio(ratio)),
                _ => {
                    errors.push(ConfigError {
                        name: ENV_TRACES_SAMPLER,
                        value: sampler,
                        reason: "expected always_on, always_off, traceidratio or a parentbased_ form",
                    });
                    config.sampling
                }
            };
        }
        if let Some(filter) = get(ENV_LOG) {
            config.log_filter = filter;
        }
        match get(ENV_LOG_FORMAT).as_deref() {
            None | Some("text") => {}
            Some("json") => config.log_format = LogFormat::Json,
            Some(other) => errors.push(ConfigError {
                name: ENV_LOG_FORMAT,
                value: other.to_owned(),
                reason: "expected text or json",
            }),
        }
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(errors)
        }
    }
}
