//! The logging flags the Go components take (controller-runtime's zap flags and klog's `-v`),
//! so our binaries start under the charts that render them: the inferencepool chart passes
//! `--zap-encoder json` and `--v <n>` to the EPP, the modelservice chart passes
//! `--zap-log-level=<level>` (and the other `zap*` values it is given) to the sidecar.
//!
//! `RUST_LOG` and `LOG_FORMAT=json` win; the flags fill what the environment left at its default.

#[cfg(test)]
mod tests;

use clap::Args;

use crate::config::{DEFAULT_LOG_FILTER, LogFormat, TelemetryConfig};

/// Flatten into a binary's clap `Args` with `#[command(flatten)]`.
#[derive(Debug, Clone, Default, Args)]
pub struct LogFlags {
    /// zap level: debug, info, warn, error, or a verbosity number (1 = debug, 2+ = trace).
    #[arg(long, value_parser = zap_level)]
    pub zap_log_level: Option<ZapLevel>,
    /// zap encoder: `json` or `console` (text).
    #[arg(long, value_parser = ["json", "console"])]
    pub zap_encoder: Option<String>,
    /// zap development mode: console encoder and debug level unless set otherwise.
    #[arg(long, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub zap_devel: Option<bool>,
    /// Accepted for the charts; Rust errors carry no Go stack traces, so it has no effect.
    #[arg(long, value_parser = zap_level)]
    pub zap_stacktrace_level: Option<ZapLevel>,
    /// Accepted for the charts; timestamps are always RFC 3339, so it has no effect.
    #[arg(long, value_parser = ["epoch", "millis", "nano", "iso8601", "rfc3339", "rfc3339nano"])]
    pub zap_time_encoding: Option<String>,
    /// klog verbosity: 0 logs info, 1-3 debug, 4 and more trace.
    #[arg(short = 'v', long = "v")]
    pub verbosity: Option<u8>,
}

/// A zap level, named or numeric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZapLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl ZapLevel {
    fn directive(self) -> &'static str {
        match self {
            ZapLevel::Trace => "trace",
            ZapLevel::Debug => "debug",
            ZapLevel::Info => "info",
            ZapLevel::Warn => "warn",
            ZapLevel::Error => "error",
        }
    }
}

fn zap_level(text: &str) -> Result<ZapLevel, String> {
    Ok(match text {
        "debug" => ZapLevel::Debug,
        "info" => ZapLevel::Info,
        "warn" => ZapLevel::Warn,
        "error" | "dpanic" | "panic" | "fatal" => ZapLevel::Error,
        number => match number.parse::<i32>() {
            // zap's numeric levels are negated verbosities: 1 is V(1), debug.
            Ok(n) if n >= 2 => ZapLevel::Trace,
            Ok(1) => ZapLevel::Debug,
            Ok(_) => ZapLevel::Info,
            Err(_) => {
                return Err(format!(
                    "{text:?} is not a zap level (debug, info, warn, error or a number)"
                ));
            }
        },
    })
}

impl LogFlags {
    /// The level the flags ask for, if any: `--zap-log-level`, else `--v`, else `--zap-devel`.
    pub fn level(&self) -> Option<ZapLevel> {
        if let Some(level) = self.zap_log_level {
            return Some(level);
        }
        if let Some(verbosity) = self.verbosity {
            return Some(match verbosity {
                0 => ZapLevel::Info,
                1..=3 => ZapLevel::Debug,
                _ => ZapLevel::Trace,
            });
        }
        (self.zap_devel == Some(true)).then_some(ZapLevel::Debug)
    }

    /// The format the flags ask for, if any.
    pub fn format(&self) -> Option<LogFormat> {
        match self.zap_encoder.as_deref() {
            Some("json") => Some(LogFormat::Json),
            Some(_) => Some(LogFormat::Text),
            None => (self.zap_devel == Some(true)).then_some(LogFormat::Text),
        }
    }

    /// Fills `telemetry`'s filter and format from the flags where the environment left the
    /// defaults (`RUST_LOG` unset, `LOG_FORMAT` unset or `text`).
    pub fn apply(&self, telemetry: &mut TelemetryConfig) {
        if let Some(level) = self.level()
            && telemetry.log_filter == DEFAULT_LOG_FILTER
        {
            telemetry.log_filter = level.directive().to_owned();
        }
        if let Some(format) = self.format()
            && telemetry.log_format == LogFormat::Text
        {
            telemetry.log_format = format;
        }
    }
}
