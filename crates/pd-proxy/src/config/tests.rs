//! Flag compatibility with both upstream sidecar generations, and the typed result.

use std::time::Duration;

use super::*;
use crate::env::TestEnv;

fn parse(args: &[&str], env: &[(&str, &str)]) -> Result<Config, String> {
    let args = std::iter::once("pd-proxy").chain(args.iter().copied());
    Config::parse(args, &TestEnv::from_pairs(env)).map_err(|error| match error {
        ConfigError::Invalid { flag, .. } => flag.to_owned(),
        ConfigError::Cli(error) => format!("cli: {}", error.kind()),
        ConfigError::Env(errors) => format!("env: {}", errors[0].name),
    })
}

#[test]
fn both_generations_of_flags_parse() {
    // The modelservice chart (2025 names, Go single dash) and the 2026 names.
    let chart = parse(
        &[
            "-port=8000",
            "-vllm-port=8200",
            "-connector=nixlv2",
            "-secure-proxy=false",
            "-v",
            "1",
        ],
        &[],
    )
    .unwrap();
    let current = parse(
        &[
            "--port",
            "8000",
            "--model-server-port",
            "8200",
            "--kv-connector",
            "nixlv2",
            "--secure-proxy=false",
            "--zap-log-level=1",
        ],
        &[],
    )
    .unwrap();
    for config in [&chart, &current] {
        assert_eq!(config.listen.port(), 8000);
        assert_eq!(config.decoder, "127.0.0.1:8200");
        assert_eq!(config.connector, Connector::NixlV2);
        assert_eq!(config.telemetry.log_filter, "debug");
    }
    let defaults = parse(&[], &[]).unwrap();
    assert_eq!(defaults.listen.to_string(), "0.0.0.0:8000");
    assert_eq!(defaults.decoder, "127.0.0.1:8200");
    assert!(
        !defaults.ssrf.enabled,
        "off by default, as upstream and the chart need"
    );
    assert!(defaults.ssrf.allowed_hosts.is_empty());
    assert_eq!(defaults.metrics_addr, None, "--metrics-port 0 is off");
    assert!(!defaults.tracing);
    assert_eq!(defaults.prefill_fallback, PrefillFallback::Error);
    assert_eq!(defaults.max_idle_conns_per_host, 1024);
}

#[test]
fn topology_comes_from_flags_and_environment() {
    let config = parse(
        &[
            "--allowed-prefill-hosts",
            "10.0.0.1,10.0.0.2:8000",
            "--metrics-port",
            "9090",
            "--enable-prefiller-sampling",
            "--prefill-timeout",
            "1.5s",
            "--prefill-retry-backoff",
            "250ms",
            "--inference-pool-namespace",
            "llm-d",
            "--inference-pool-name",
            "pool",
        ],
        &[
            ("PD_PROXY_ALLOWED_PREFILL_HOSTS", "10.0.0.3"),
            ("PD_PROXY_POOL_FILE", "/etc/pool"),
        ],
    )
    .unwrap();
    assert_eq!(
        config.ssrf.allowed_hosts,
        ["10.0.0.3", "10.0.0.1", "10.0.0.2:8000"]
    );
    assert_eq!(
        config.ssrf.pool_file.as_deref(),
        Some(std::path::Path::new("/etc/pool"))
    );
    assert_eq!(
        config
            .ssrf
            .inference_pool
            .map(|pool| pool.to_string())
            .as_deref(),
        Some("llm-d/pool")
    );
    assert_eq!(config.metrics_addr.unwrap().to_string(), "0.0.0.0:9090");
    assert!(config.prefiller_sampling);
    assert_eq!(config.prefill_timeout, Duration::from_millis(1500));
    assert_eq!(config.prefill_retry_backoff, Duration::from_millis(250));
    let from_env = parse(
        &[],
        &[
            ("INFERENCE_POOL", "ns/p"),
            ("ENABLE_PREFILLER_SAMPLING", "true"),
        ],
    )
    .unwrap();
    assert_eq!(
        from_env
            .ssrf
            .inference_pool
            .map(|pool| pool.to_string())
            .as_deref(),
        Some("ns/p")
    );
    assert!(from_env.prefiller_sampling);
}

/// Flags, environment, and the flag (or error kind) at fault.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

#[test]
fn unsupported_or_bad_settings_fail_naming_the_flag() {
    let cases: &[Case] = &[
        (&["--kv-connector", "sglang"], &[], "kv-connector"),
        (&["--data-parallel-size", "2"], &[], "data-parallel-size"),
        (&["--decode-chunk-size", "64"], &[], "decode-chunk-size"),
        (&["--enable-tls", "encoder"], &[], "enable-tls"),
        (
            &["--tls-insecure-skip-verify", "x"],
            &[],
            "tls-insecure-skip-verify",
        ),
        (&["--prefill-fallback", "maybe"], &[], "prefill-fallback"),
        (&["--inference-pool", "Not/A Pool"], &[], "inference-pool"),
        (
            &["--inference-pool", "p", "--pool-group", "example.com"],
            &[],
            "inference-pool",
        ),
        (
            &["--prefill-timeout", "soon"],
            &[],
            "cli: invalid value for one of the arguments",
        ),
        (
            &["--secure-proxy=maybe"],
            &[],
            "cli: invalid value for one of the arguments",
        ),
        (
            &[],
            &[("ENABLE_PREFILLER_SAMPLING", "often")],
            "env: ENABLE_PREFILLER_SAMPLING",
        ),
        (
            &[],
            &[("OTEL_TRACES_SAMPLER", "sometimes")],
            "env: OTEL_TRACES_SAMPLER",
        ),
    ];
    for (args, env, flag) in cases {
        assert_eq!(parse(args, env).unwrap_err(), *flag, "{args:?} {env:?}");
    }
}

#[test]
fn go_durations_parse() {
    for (text, expected) in [
        ("200ms", Duration::from_millis(200)),
        ("1.5s", Duration::from_millis(1500)),
        ("2m", Duration::from_secs(120)),
        ("250us", Duration::from_micros(250)),
        ("3", Duration::from_secs(3)),
    ] {
        assert_eq!(go_duration(text).unwrap(), expected, "{text}");
    }
    assert!(go_duration("1d").is_err());
    assert!(go_duration("-1s").is_err());
}

#[test]
fn tls_flags_of_both_generations_set_each_stage() {
    use crate::config::{ServeTls, UpstreamTls};
    let env = crate::env::TestEnv::from_pairs(&[]);
    let tls = |args: &[&str]| {
        let mut all = vec!["pd-proxy"];
        all.extend_from_slice(args);
        Config::parse(all, &env).unwrap().tls
    };
    let plain = tls(&[]);
    assert_eq!(
        (plain.serve, plain.prefiller, plain.decoder),
        (ServeTls::Off, UpstreamTls::Off, UpstreamTls::Off)
    );
    let current = tls(&[
        "--enable-tls",
        "prefiller,decoder",
        "--tls-insecure-skip-verify",
        "decoder",
    ]);
    assert_eq!(
        (current.prefiller, current.decoder),
        (UpstreamTls::Verified, UpstreamTls::Unverified)
    );
    let legacy = tls(&[
        "--prefiller-use-tls",
        "--prefiller-tls-insecure-skip-verify",
        "--secure-proxy",
        "--cert-path",
        "/etc/certs",
    ]);
    assert_eq!(
        (legacy.serve, legacy.prefiller, legacy.decoder),
        (
            ServeTls::Files("/etc/certs".into()),
            UpstreamTls::Unverified,
            UpstreamTls::Off
        )
    );
    assert_eq!(tls(&["--secure-proxy=true"]).serve, ServeTls::SelfSigned);
}
