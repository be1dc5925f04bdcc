//! Flags and environment.

use std::collections::HashMap;
use std::time::Duration;

use crate::env::{Config, Discovery, EnvError, TestEnv, parse_duration};

fn parse(args: &[&str]) -> Result<Config, EnvError> {
    let mut all = vec!["epp"];
    all.extend_from_slice(args);
    Config::parse(all, &TestEnv(HashMap::new()))
}

#[test]
fn upstream_defaults() {
    let config = parse(&["--pool-name", "p"]).unwrap();
    assert_eq!(
        (
            config.grpc_port,
            config.grpc_health_port,
            config.metrics_port
        ),
        (9002, 9003, 9090)
    );
    assert_eq!(
        config.refresh_metrics_interval,
        Some(Duration::from_millis(50))
    );
    assert_eq!(config.metrics_staleness_threshold, Duration::from_secs(2));
    assert_eq!(
        config.discovery,
        Discovery::InferencePool {
            name: "p".to_owned(),
            namespace: "default".to_owned(),
            group: "inference.networking.k8s.io".to_owned()
        }
    );
    let env = TestEnv(HashMap::from([(
        "POD_NAMESPACE".to_owned(),
        "llm-d".to_owned(),
    )]));
    let config = Config::parse(["epp", "--pool-name", "p"], &env).unwrap();
    assert!(
        matches!(config.discovery, Discovery::InferencePool { namespace, .. } if namespace == "llm-d")
    );
}

#[test]
fn static_endpoints_with_labels() {
    let config = parse(&[
        "--endpoint",
        "127.0.0.1:8000;llm-d.ai/role=decode",
        "--endpoint",
        "127.0.0.1:8001",
    ])
    .unwrap();
    let Discovery::Static(specs) = config.discovery else {
        panic!("static discovery");
    };
    assert_eq!(specs.len(), 2);
    assert_eq!(specs[0].labels["llm-d.ai/role"], "decode");
}

#[test]
fn every_bad_value_is_reported_at_once() {
    let Err(EnvError::Invalid(errors)) = parse(&[
        "--endpoint",
        "nowhere",
        "--refresh-metrics-interval",
        "5 parsecs",
        "--config-text",
        "plugins: 3",
        "--enable-cert-reload",
    ]) else {
        panic!("invalid");
    };
    let text = errors.join("\n");
    assert!(text.contains("--enable-cert-reload"), "{text}");
    assert!(
        text.contains("--refresh-metrics-interval=\"5 parsecs\""),
        "{text}"
    );
    assert!(text.contains("--endpoint=\"nowhere\""), "{text}");
    assert!(text.contains("plugins: invalid type"), "{text}");
    assert!(matches!(parse(&[]), Err(EnvError::Invalid(_))));
}

#[test]
fn go_durations() {
    assert_eq!(parse_duration("50ms"), Ok(Duration::from_millis(50)));
    assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
    assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    assert!(parse_duration("10").is_err());
    assert!(parse_duration("3d").is_err());
}

/// The arguments the inferencepool chart (v1.4) renders for the EPP container.
#[test]
fn inferencepool_chart_arguments_are_accepted() {
    let config = parse(&[
        "--pool-name",
        "gaie-pd",
        "--pool-namespace",
        "llm-d-pd",
        "--zap-encoder",
        "json",
        "--v",
        "1",
        "--kv-cache-usage-percentage-metric",
        "vllm:kv_cache_usage_perc",
        "--tracing=false",
        "--metrics-endpoint-auth=false",
    ]);
    let config = config.unwrap();
    assert_eq!(config.telemetry.log_format, telemetry::LogFormat::Json);
    assert_eq!(config.telemetry.log_filter, "debug");
    assert_eq!(config.telemetry.otlp_endpoint, None);
}

#[test]
fn unsupported_chart_options_fail_with_a_reason() {
    for (flag, reason) in [
        ("--ha-enable-leader-election", "run one EPP replica"),
        (
            "--enable-cert-reload",
            "--enable-cert-reload needs --cert-path",
        ),
    ] {
        let Err(EnvError::Invalid(errors)) = parse(&["--pool-name", "p", flag]) else {
            panic!("{flag} accepted");
        };
        assert!(
            errors.iter().any(|error| error.contains(reason)),
            "{errors:?}"
        );
    }
}

#[test]
fn ext_proc_tls_is_on_by_default_as_upstream() {
    use crate::env::ServeTls;
    assert_eq!(
        parse(&["--pool-name", "p"]).unwrap().tls,
        ServeTls::SelfSigned
    );
    assert_eq!(
        parse(&["--pool-name", "p", "--cert-path", "/etc/epp/tls"])
            .unwrap()
            .tls,
        ServeTls::Files("/etc/epp/tls".into())
    );
    assert_eq!(
        parse(&["--pool-name", "p", "--secure-serving=false"])
            .unwrap()
            .tls,
        ServeTls::Off
    );
    let Err(EnvError::Invalid(errors)) = parse(&[
        "--pool-name",
        "p",
        "--secure-serving=false",
        "--cert-path",
        "/etc/epp/tls",
    ]) else {
        panic!("a certificate without TLS accepted");
    };
    assert!(
        errors.iter().any(|error| error.contains("--cert-path")),
        "{errors:?}"
    );
}

#[test]
fn metrics_auth_is_on_with_a_pool_and_off_with_static_endpoints() {
    assert!(parse(&["--pool-name", "p"]).unwrap().metrics_auth);
    assert!(
        !parse(&["--pool-name", "p", "--metrics-endpoint-auth=false"])
            .unwrap()
            .metrics_auth
    );
    assert!(
        !parse(&["--endpoint", "127.0.0.1:8000"])
            .unwrap()
            .metrics_auth
    );
    assert!(
        parse(&["--endpoint", "127.0.0.1:8000", "--metrics-endpoint-auth"])
            .unwrap()
            .metrics_auth
    );
}
