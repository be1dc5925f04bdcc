//! The zap and klog flags as the charts render them, and how they fill the telemetry config.

use clap::Parser;

use super::*;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    log: LogFlags,
}

fn parse(args: &[&str]) -> Result<LogFlags, clap::Error> {
    Cli::try_parse_from(std::iter::once("bin").chain(args.iter().copied())).map(|cli| cli.log)
}

fn applied(args: &[&str]) -> (String, LogFormat) {
    let mut telemetry = TelemetryConfig::disabled("test");
    parse(args).unwrap().apply(&mut telemetry);
    (telemetry.log_filter, telemetry.log_format)
}

#[test]
fn chart_rendered_flags_set_level_and_format() {
    let cases: &[(&[&str], &str, LogFormat)] = &[
        // inferencepool chart: `--zap-encoder json` plus `flags: {v: 1}`.
        (
            &["--zap-encoder", "json", "--v", "1"],
            "debug",
            LogFormat::Json,
        ),
        (
            &["--zap-encoder", "json", "--v", "4"],
            "trace",
            LogFormat::Json,
        ),
        (&["--v=0"], "info", LogFormat::Text),
        (&["-v", "2"], "debug", LogFormat::Text),
        // modelservice chart's sidecar values.
        (&["--zap-log-level=error"], "error", LogFormat::Text),
        (&["--zap-log-level=1"], "debug", LogFormat::Text),
        (&["--zap-log-level=3"], "trace", LogFormat::Text),
        (&["--zap-devel"], "debug", LogFormat::Text),
        (
            &["--zap-devel=true", "--zap-encoder=json"],
            "debug",
            LogFormat::Json,
        ),
        (&["--zap-devel=false"], "info", LogFormat::Text),
        // --zap-log-level wins over -v.
        (&["--zap-log-level=warn", "--v=4"], "warn", LogFormat::Text),
        (
            &[
                "--zap-stacktrace-level=error",
                "--zap-time-encoding=iso8601",
            ],
            "info",
            LogFormat::Text,
        ),
        (&[], "info", LogFormat::Text),
    ];
    for (args, filter, format) in cases {
        assert_eq!(applied(args), ((*filter).to_owned(), *format), "{args:?}");
    }
}

#[test]
fn environment_wins_over_flags() {
    let mut telemetry = TelemetryConfig::disabled("test");
    telemetry.log_filter = "epp=trace".to_owned();
    telemetry.log_format = LogFormat::Json;
    parse(&["--zap-encoder=console", "--v=1"])
        .unwrap()
        .apply(&mut telemetry);
    assert_eq!(telemetry.log_filter, "epp=trace");
    assert_eq!(telemetry.log_format, LogFormat::Json);
}

#[test]
fn bad_values_are_refused_with_the_flag_named() {
    for args in [
        &["--zap-log-level=loud"][..],
        &["--zap-encoder=xml"],
        &["--zap-time-encoding=ancient"],
        &["--v=many"],
        &["--zap-devel=maybe"],
    ] {
        let error = parse(args).unwrap_err().to_string();
        let flag = args[0].split('=').next().unwrap();
        assert!(error.contains(flag), "{args:?}: {error}");
    }
}
