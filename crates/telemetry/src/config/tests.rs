//! Table-driven tests of the `OTEL_*` parsing.

use std::collections::HashMap;

use super::*;

fn parse(vars: &[(&str, &str)]) -> Result<TelemetryConfig, Vec<ConfigError>> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    TelemetryConfig::parse(|name| map.get(name).cloned(), "svc")
}

#[test]
fn nothing_set_means_no_tracing() {
    assert_eq!(parse(&[]).unwrap(), TelemetryConfig::disabled("svc"));
}

/// Variables set, then the endpoint, protocol and sampling they must give.
type Case<'a> = (
    &'a [(&'a str, &'a str)],
    Option<&'a str>,
    OtlpProtocol,
    Sampling,
);

#[test]
fn endpoints_protocols_and_samplers() {
    let cases: &[Case] = &[
        (
            &[(ENV_OTLP_ENDPOINT, "http://collector:4317")],
            Some("http://collector:4317"),
            OtlpProtocol::Grpc,
            Sampling::ParentBased(ParentRoot::AlwaysOn),
        ),
        (
            &[
                (ENV_OTLP_ENDPOINT, "http://c:4318/"),
                (ENV_OTLP_PROTOCOL, "http/protobuf"),
            ],
            Some("http://c:4318/v1/traces"),
            OtlpProtocol::HttpProtobuf,
            Sampling::ParentBased(ParentRoot::AlwaysOn),
        ),
        (
            &[
                (ENV_OTLP_ENDPOINT, "http://base:4317"),
                (ENV_OTLP_TRACES_ENDPOINT, "http://traces:4317"),
                (ENV_TRACES_SAMPLER, "parentbased_traceidratio"),
                (ENV_TRACES_SAMPLER_ARG, "0.1"),
            ],
            Some("http://traces:4317"),
            OtlpProtocol::Grpc,
            Sampling::ParentBased(ParentRoot::Ratio(0.1)),
        ),
        (
            &[
                (ENV_OTLP_ENDPOINT, "http://c:4317"),
                (ENV_TRACES_EXPORTER, "none"),
            ],
            None,
            OtlpProtocol::Grpc,
            Sampling::ParentBased(ParentRoot::AlwaysOn),
        ),
    ];
    for (vars, endpoint, protocol, sampling) in cases {
        let config = parse(vars).unwrap();
        assert_eq!(config.otlp_endpoint.as_deref(), *endpoint, "{vars:?}");
        assert_eq!(config.otlp_protocol, *protocol, "{vars:?}");
        assert_eq!(config.sampling, *sampling, "{vars:?}");
    }
}

#[test]
fn every_bad_variable_is_reported_at_once() {
    let errors = parse(&[
        (ENV_OTLP_PROTOCOL, "udp"),
        (ENV_TRACES_SAMPLER_ARG, "2"),
        (ENV_LOG_FORMAT, "xml"),
        (ENV_OTLP_ENDPOINT, "collector:4317"),
    ])
    .unwrap_err();
    let names: Vec<&str> = errors.iter().map(|e| e.name).collect();
    assert_eq!(
        names,
        [
            ENV_OTLP_PROTOCOL,
            ENV_OTLP_TRACES_ENDPOINT,
            ENV_TRACES_SAMPLER_ARG,
            ENV_LOG_FORMAT
        ]
    );
}
