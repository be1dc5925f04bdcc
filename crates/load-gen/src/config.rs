//! What a run does: the endpoint, the workload (the upstream P/D script's worker patterns or
//! a scenario mix), when it stops, and where results go.

#[cfg(test)]
mod tests;

use std::{path::PathBuf, time::Duration};

use rand::{Rng, rngs::StdRng};
use rand_distr::{Distribution as _, LogNormal, Normal};
use serde::{Deserialize, Serialize};

use crate::{
    Error,
    prompt::{PromptSizes, PromptSource},
    schedule::Arrival,
};

/// The upstream script's default endpoint; `ENDPOINT` includes the `/v1` prefix.
pub const DEFAULT_ENDPOINT: &str = "http://localhost:8000/v1";
/// The upstream script's default model.
pub const DEFAULT_MODEL: &str = "meta-llama/Llama-3.1-8B-Instruct";
/// The upstream script's default number of workers.
pub const DEFAULT_WORKERS: u32 = 6;
/// The upstream script's default duration in minutes.
pub const DEFAULT_MINUTES: f64 = 5.0;
/// The upstream script's progress interval.
pub const DEFAULT_PROGRESS_INTERVAL: Duration = Duration::from_secs(10);
/// The upstream script's delay between worker starts.
pub const DEFAULT_WORKER_STAGGER: Duration = Duration::from_millis(200);
/// The per-request timeout when none is given (curl in the script has none; a stuck request
/// must not hold a closed-loop worker forever).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
/// The upstream script's sampling temperature.
pub const DEFAULT_TEMPERATURE: f64 = 0.7;

/// A whole run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Base URL including the API prefix, e.g. `http://localhost:8000/v1`; requests go to
    /// `<endpoint>/chat/completions`, `<endpoint>/completions`, `<endpoint>/models`.
    pub endpoint: String,
    /// The `model` field of every request.
    pub model: String,
    /// What each request sends and how requests are paced.
    pub workload: Workload,
    /// When the run stops (whichever comes first); Ctrl-C or the shutdown future also stop it.
    pub limit: Limit,
    /// Token counts of the short/medium/long/very long prompt classes.
    pub prompt_sizes: PromptSizes,
    /// Seed of every random choice, so a run is reproducible.
    pub seed: u64,
    /// Timeout of one request, from send to the last byte of the body.
    pub request_timeout: Duration,
    /// Interval of the progress line (and of the bar's refresh of its rates).
    pub progress_interval: Duration,
    /// How the run talks to the terminal.
    pub console: ConsoleMode,
    /// Print the upstream per-request line for every request.
    pub per_request_lines: bool,
    /// Files written at the end (summary, HTML) and during the run (JSON lines).
    pub outputs: Outputs,
    /// Extra request headers (e.g. `Authorization`, `X-Return-Error` for the simulator).
    pub headers: Vec<(String, String)>,
    /// Check `GET <endpoint>/models` before starting, failing clearly when unreachable.
    pub preflight: bool,
}

/// When a run stops; at least one should be set, or only a shutdown stops it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limit {
    /// Stop starting requests after this long.
    pub duration: Option<Duration>,
    /// Stop after this many requests were started.
    pub requests: Option<u64>,
}

/// Terminal behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleMode {
    /// Print nothing (tests, embedding).
    Quiet,
    /// Plain lines: banner, progress line every interval, summary.
    Lines,
    /// A progress bar with live rates when stdout is a terminal, plain lines otherwise.
    Auto,
}

/// Result files.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    /// One JSON object per request, written as requests finish.
    pub jsonl: Option<PathBuf>,
    /// The [`crate::Report`] as pretty JSON.
    pub summary_json: Option<PathBuf>,
    /// A self-contained HTML report with inline SVG charts.
    pub html: Option<PathBuf>,
}

/// What requests are sent and how they are paced.
#[derive(Debug, Clone)]
pub enum Workload {
    /// The upstream `generate-traffic-pd.sh` script: closed-loop workers with the six
    /// patterns in rotation, chat completions.
    PdConcurrent(PdConcurrent),
    /// A scenario mix: closed-loop workers or open-loop arrivals sending one request shape.
    Mix(Mix),
}

/// The upstream script's knobs; defaults are the script's values.
#[derive(Debug, Clone, PartialEq)]
pub struct PdConcurrent {
    /// Number of workers; worker `i` (1-based) runs pattern `(i - 1) % 6` of the rotation.
    pub workers: u32,
    /// Delay between worker starts (0.2 s in the script).
    pub stagger: Duration,
    /// Multiplier on every pattern pause (1.0 = the script's pauses), so tests run fast.
    pub pause_scale: f64,
}

/// A scenario's request shape and pacing.
#[derive(Debug, Clone)]
pub struct Mix {
    /// The scenario's name (the report's `workload`).
    pub name: String,
    /// Closed-loop workers or open-loop arrivals.
    pub load: Load,
    /// Chat or legacy completions.
    pub api: Api,
    /// Where prompts come from.
    pub prompt: PromptSource,
    /// `max_tokens` of each request (dataset entries may override it).
    pub output_tokens: Distribution,
    /// Share of requests sent with `"stream": true`, in `[0, 1]`.
    pub stream_ratio: f64,
    /// Sampling temperature.
    pub temperature: f64,
}

/// Request pacing.
#[derive(Debug, Clone, PartialEq)]
pub enum Load {
    /// Fixed number of workers, one request in flight each.
    Closed(ClosedLoop),
    /// Requests start at scheduled times regardless of responses.
    Open(OpenLoop),
}

/// Closed-loop pacing.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosedLoop {
    /// Number of concurrent workers.
    pub workers: u32,
    /// Pause after each request.
    pub pause: Duration,
}

/// Open-loop pacing: an arrival process whose rate follows `stages`.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenLoop {
    /// Evenly spaced or Poisson arrivals.
    pub arrival: Arrival,
    /// Rate stages in order; the last stage's final rate holds afterwards.
    pub stages: Vec<Stage>,
}

/// One stage of an open-loop rate profile; the rate goes linearly from `rate` to `to_rate`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct Stage {
    /// Stage length in seconds; only the last stage may omit it (it then lasts forever).
    pub duration_s: Option<f64>,
    /// Requests per second at the start of the stage.
    pub rate: f64,
    /// Requests per second at the end of the stage (default: `rate`, a constant stage).
    pub to_rate: Option<f64>,
}

/// Which OpenAI endpoint requests go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    /// `POST <endpoint>/chat/completions` with `messages`.
    Chat,
    /// `POST <endpoint>/completions` with `prompt`.
    Completions,
}

/// A distribution of positive integers (token counts).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Distribution {
    /// Always this value.
    Fixed(u32),
    /// Uniform over `[min, max]` inclusive.
    Uniform { min: u32, max: u32 },
    /// Normal with this mean and standard deviation, clamped to `[1, max]` (default max:
    /// mean + 6 standard deviations).
    Normal {
        mean: f64,
        std_dev: f64,
        max: Option<u32>,
    },
    /// Log-normal whose values have this mean and standard deviation, clamped to `[1, max]`
    /// (default max: mean + 10 standard deviations).
    LogNormal {
        mean: f64,
        std_dev: f64,
        max: Option<u32>,
    },
}

impl Config {
    /// The upstream script's run: `workers` closed-loop workers for `minutes`, with the
    /// script's pauses, stagger and progress interval, printing per-request lines.
    pub fn pd_concurrent(endpoint: &str, model: &str, workers: u32, minutes: f64) -> Config {
        Config {
            endpoint: endpoint.to_owned(),
            model: model.to_owned(),
            workload: Workload::PdConcurrent(PdConcurrent {
                workers,
                stagger: DEFAULT_WORKER_STAGGER,
                pause_scale: 1.0,
            }),
            limit: Limit {
                duration: Some(Duration::from_secs_f64((minutes * 60.0).max(0.0))),
                requests: None,
            },
            prompt_sizes: PromptSizes::default(),
            seed: 0,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            progress_interval: DEFAULT_PROGRESS_INTERVAL,
            console: ConsoleMode::Auto,
            per_request_lines: true,
            outputs: Outputs::default(),
            headers: Vec::new(),
            preflight: true,
        }
    }

    /// Checks what the types cannot: positive counts, rates and ratios in range.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |reason: String| Err(Error::Config(reason));
        if self.model.is_empty() {
            return bad("model name is empty".to_owned());
        }
        if self.request_timeout.is_zero() {
            return bad("request timeout must be positive".to_owned());
        }
        if self.progress_interval.is_zero() {
            return bad("progress interval must be positive".to_owned());
        }
        self.prompt_sizes.validate()?;
        match &self.workload {
            Workload::PdConcurrent(pd) => {
                if pd.workers == 0 {
                    return bad("workers must be at least 1".to_owned());
                }
                if !(pd.pause_scale >= 0.0 && pd.pause_scale.is_finite()) {
                    return bad(format!("pause scale {} must be >= 0", pd.pause_scale));
                }
            }
            Workload::Mix(mix) => {
                if !(0.0..=1.0).contains(&mix.stream_ratio) {
                    return bad(format!(
                        "stream_ratio {} is not in [0, 1]",
                        mix.stream_ratio
                    ));
                }
                mix.output_tokens.validate("output_tokens")?;
                mix.prompt.validate()?;
                match &mix.load {
                    Load::Closed(closed) if closed.workers == 0 => {
                        return bad("workers must be at least 1".to_owned());
                    }
                    Load::Closed(_) => {}
                    Load::Open(open) => open.validate()?,
                }
                if self.limit.duration.is_none() && self.limit.requests.is_none() {
                    return bad("a scenario needs duration_s or requests".to_owned());
                }
            }
        }
        Ok(())
    }
}

impl OpenLoop {
    /// A constant-rate open loop.
    pub fn constant_rate(arrival: Arrival, rate: f64) -> OpenLoop {
        OpenLoop {
            arrival,
            stages: vec![Stage {
                duration_s: None,
                rate,
                to_rate: None,
            }],
        }
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.stages.is_empty() {
            return Err(Error::Config("open loop needs a rate or stages".to_owned()));
        }
        for (idx, stage) in self.stages.iter().enumerate() {
            let to_rate = stage.to_rate.unwrap_or(stage.rate);
            if !(stage.rate >= 0.0
                && to_rate >= 0.0
                && stage.rate.is_finite()
                && to_rate.is_finite())
            {
                return Err(Error::Config(format!("stage {idx}: rates must be >= 0")));
            }
            match stage.duration_s {
                Some(d) if !(d > 0.0 && d.is_finite()) => {
                    return Err(Error::Config(format!(
                        "stage {idx}: duration_s must be positive"
                    )));
                }
                None if idx + 1 != self.stages.len() => {
                    return Err(Error::Config(format!(
                        "stage {idx}: only the last stage may omit duration_s"
                    )));
                }
                _ => {}
            }
        }
        let last = self.stages[self.stages.len() - 1];
        let any_positive = self
            .stages
            .iter()
            .any(|s| s.rate > 0.0 || s.to_rate.unwrap_or(s.rate) > 0.0);
        if !any_positive || (last.duration_s.is_none() && last.rate == 0.0) {
            return Err(Error::Config("open loop rate is never positive".to_owned()));
        }
        Ok(())
    }
}

impl Distribution {
    /// Draws one value, at least 1.
    pub fn sample(&self, rng: &mut StdRng) -> u32 {
        let upper = f64::from(self.upper_bound());
        let clamp =
            |value: f64, _max: Option<u32>| -> u32 { value.round().clamp(1.0, upper) as u32 };
        match *self {
            Distribution::Fixed(value) => value.max(1),
            Distribution::Uniform { min, max } => {
                rng.random_range(min.max(1)..=max.max(min.max(1)))
            }
            Distribution::Normal { mean, std_dev, max } => match Normal::new(mean, std_dev) {
                Ok(normal) => clamp(normal.sample(rng), max),
                Err(_) => clamp(mean, max),
            },
            Distribution::LogNormal { mean, std_dev, max } => {
                // Parameters of the underlying normal from the mean and deviation of values.
                let sigma2 = (1.0 + (std_dev * std_dev) / (mean * mean)).ln();
                let mu = mean.ln() - sigma2 / 2.0;
                match LogNormal::new(mu, sigma2.sqrt()) {
                    Ok(log_normal) => clamp(log_normal.sample(rng), max),
                    Err(_) => clamp(mean, max),
                }
            }
        }
    }

    /// The largest value this distribution produces (for pre-sizing prompt text): `max` when
    /// given, else six standard deviations above the mean (normal) or ten (log-normal).
    pub fn upper_bound(&self) -> u32 {
        let tail = |mean: f64, std_dev: f64, sigmas: f64, max: Option<u32>| -> u32 {
            let practical = (mean + sigmas * std_dev)
                .ceil()
                .clamp(1.0, f64::from(u32::MAX)) as u32;
            max.map_or(practical, |max| max.max(1))
        };
        match *self {
            Distribution::Fixed(value) => value.max(1),
            Distribution::Uniform { min, max } => max.max(min).max(1),
            Distribution::Normal { mean, std_dev, max } => tail(mean, std_dev, 6.0, max),
            Distribution::LogNormal { mean, std_dev, max } => tail(mean, std_dev, 10.0, max),
        }
    }

    pub(crate) fn validate(&self, what: &str) -> Result<(), Error> {
        let bad = |reason: &str| Err(Error::Config(format!("{what}: {reason}")));
        match *self {
            Distribution::Fixed(0) => bad("fixed value must be at least 1"),
            Distribution::Fixed(_) => Ok(()),
            Distribution::Uniform { min, max } if min > max => bad("uniform min exceeds max"),
            Distribution::Uniform { max: 0, .. } => bad("uniform max must be at least 1"),
            Distribution::Uniform { .. } => Ok(()),
            Distribution::Normal { mean, std_dev, .. }
            | Distribution::LogNormal { mean, std_dev, .. } => {
                if !(mean > 0.0 && mean.is_finite()) {
                    bad("mean must be positive")
                } else if !(std_dev >= 0.0 && std_dev.is_finite()) {
                    bad("std_dev must be >= 0")
                } else {
                    Ok(())
                }
            }
        }
    }
}
