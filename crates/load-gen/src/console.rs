//! Terminal output: the upstream banner, per-request line and progress line as plain lines,
//! or an `indicatif` progress bar with live rates when stdout is a terminal.
//!
//! Lines go to stdout through one function, [`Console::line`], so the rest of the crate never
//! prints. Clock times are UTC `HH:MM:SS` (the script printed local time; the crate has no
//! time-zone database).

#[cfg(test)]
mod tests;

use std::{
    io::{IsTerminal, Write},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::{config::ConsoleMode, record::RequestRecord};

/// Live counters shared by the run and the progress display.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) total: AtomicU64,
    pub(crate) successful: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) in_flight: AtomicU64,
}

/// A consistent-enough read of the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Snapshot {
    pub(crate) total: u64,
    pub(crate) successful: u64,
    pub(crate) failed: u64,
    pub(crate) in_flight: u64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot {
            total: self.total.load(Ordering::Relaxed),
            successful: self.successful.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
        }
    }
}

/// What remains of the run, for the progress line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Remaining {
    Seconds(u64),
    Requests(u64),
    Unbounded,
}

#[derive(Debug)]
enum Mode {
    Quiet,
    Lines,
    Bar(ProgressBar),
}

/// The run's terminal.
#[derive(Debug)]
pub(crate) struct Console {
    mode: Mode,
}

impl Console {
    /// `length` is the bar's length and whether it counts seconds (else requests).
    pub(crate) fn new(mode: ConsoleMode, length: Option<(u64, bool)>) -> Console {
        let mode = match mode {
            ConsoleMode::Quiet => Mode::Quiet,
            ConsoleMode::Lines => Mode::Lines,
            ConsoleMode::Auto if std::io::stdout().is_terminal() => {
                let (len, seconds) = length.unwrap_or((0, false));
                let bar = if len > 0 {
                    ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stdout())
                } else {
                    ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout())
                };
                let unit = if seconds { "s" } else { "req" };
                let template = format!(
                    "{{spinner}} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}}{unit} {{msg}}"
                );
                if let Ok(style) = ProgressStyle::with_template(&template) {
                    bar.set_style(style);
                }
                Mode::Bar(bar)
            }
            ConsoleMode::Auto => Mode::Lines,
        };
        Console { mode }
    }

    pub(crate) fn is_quiet(&self) -> bool {
        matches!(self.mode, Mode::Quiet)
    }

    pub(crate) fn is_bar(&self) -> bool {
        matches!(self.mode, Mode::Bar(_))
    }

    /// Prints one line above the bar, or on stdout.
    pub(crate) fn line(&self, text: &str) {
        match &self.mode {
            Mode::Quiet => {}
            Mode::Bar(bar) => bar.println(text),
            Mode::Lines => {
                let mut stdout = std::io::stdout().lock();
                // A closed stdout must not stop the run.
                let _ = writeln!(stdout, "{text}");
            }
        }
    }

    /// Updates the bar (position and live rates); no-op without a bar.
    pub(crate) fn update_bar(&self, position: u64, message: String) {
        if let Mode::Bar(bar) = &self.mode {
            bar.set_position(position);
            bar.set_message(message);
        }
    }

    pub(crate) fn finish(&self) {
        if let Mode::Bar(bar) = &self.mode {
            bar.finish_and_clear();
        }
    }
}

/// `HH:MM:SS` (UTC) of `now`.
pub(crate) fn clock(now: SystemTime) -> String {
    let secs = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let day = secs % 86_400;
    format!("{:02}:{:02}:{:02}", day / 3600, day % 3600 / 60, day % 60)
}

/// The script's per-request line:
/// `[HH:MM:SS] W<id>-<n> | <chars>ch/<max_tokens>t | <ms>ms | ✓` or `| ✗ HTTP<code>`.
/// Open-loop requests are named `R<seq>`; failures without a status name their kind.
pub(crate) fn request_line(clock: &str, record: &RequestRecord) -> String {
    let who = match (record.worker, record.worker_request) {
        (Some(worker), Some(n)) => format!("W{worker}-{n}"),
        _ => format!("R{}", record.seq + 1),
    };
    let verdict = match (record.failure, record.status) {
        (None, _) => "✓".to_owned(),
        (Some(crate::FailureKind::Http), Some(status)) => format!("✗ HTTP{status}"),
        (Some(kind), Some(status)) => format!("✗ HTTP{status} {kind}"),
        (Some(kind), None) => format!("✗ {kind}"),
    };
    format!(
        "[{clock}] {who} | {}ch/{}t | {}ms | {verdict}",
        record.prompt_chars, record.max_tokens, record.e2e_ms as u64
    )
}

/// The script's progress line, with the success rate as an integer percentage (as `$((…))`
/// computes it) and the rate to one decimal.
pub(crate) fn progress_line(
    clock: &str,
    snapshot: Snapshot,
    elapsed: Duration,
    remaining: Remaining,
) -> String {
    let rate_pct = (snapshot.successful * 100)
        .checked_div(snapshot.total)
        .unwrap_or(0);
    let throughput = if snapshot.total > 0 {
        snapshot.total as f64 / elapsed.as_secs_f64().max(f64::EPSILON)
    } else {
        0.0
    };
    let remaining = match remaining {
        Remaining::Seconds(secs) => format!("{secs}s"),
        Remaining::Requests(n) => format!("{n} requests"),
        Remaining::Unbounded => "until Ctrl-C".to_owned(),
    };
    format!(
        "[{clock}] Progress: {} total | {} success | {} failed | {rate_pct}% success | {throughput:.1} req/s | Remaining: {remaining}",
        snapshot.total, snapshot.successful, snapshot.failed
    )
}

/// The bar's message: totals and the rate over the last refresh.
pub(crate) fn bar_message(snapshot: Snapshot, elapsed: Duration, recent_rate: f64) -> String {
    let elapsed = elapsed.as_secs_f64().max(f64::EPSILON);
    format!(
        "{} ok | {} failed | {:.1} req/s avg | {:.1} req/s now | {} in flight",
        snapshot.successful,
        snapshot.failed,
        snapshot.total as f64 / elapsed,
        recent_rate,
        snapshot.in_flight
    )
}
