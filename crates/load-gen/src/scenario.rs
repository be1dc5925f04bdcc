//! Scenario files: YAML describing a run (load, prompts, outputs lengths, streaming share,
//! API, limits, seed), parsed strictly so a misspelt key is an error that names it.
//!
//! ```yaml
//! name: prefix-heavy
//! api: chat                 # chat | completions
//! seed: 7
//! duration_s: 60            # and/or `requests: 5000`
//! timeout_s: 30
//! load:
//!   open_loop:              # or `closed_loop: {workers: 16, pause_ms: 0}`
//!     arrival: poisson      #    or `pd_concurrent: {workers: 6}` (the upstream patterns)
//!     stages:
//!       - {duration_s: 10, rate: 10, to_rate: 200}
//!       - {rate: 200}
//! prompt:
//!   family:
//!     system_prompt: {families: 4, prefix_tokens: 2000, question_tokens: {uniform: {min: 20, max: 80}}}
//! output_tokens: {log_normal: {mean: 200, std_dev: 80, max: 1024}}
//! stream_ratio: 0.5
//! ```

#[cfg(test)]
mod tests;

use std::{collections::BTreeMap, path::Path, time::Duration};

use serde::Deserialize;

use crate::{
    Error,
    config::{
        Api, ClosedLoop, Config, ConsoleMode, DEFAULT_PROGRESS_INTERVAL, DEFAULT_REQUEST_TIMEOUT,
        DEFAULT_TEMPERATURE, DEFAULT_WORKER_STAGGER, Distribution, Limit, Load, Mix, OpenLoop,
        Outputs, PdConcurrent, Stage, Workload,
    },
    prompt::{PromptSizes, PromptSource},
    schedule::Arrival,
};

/// Default `max_tokens` of a scenario without `output_tokens`.
pub const DEFAULT_OUTPUT_TOKENS: u32 = 128;

/// A scenario file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct Scenario {
    /// Shown in the banner and as the report's `workload`.
    #[serde(default = "default_name")]
    pub name: String,
    /// Base URL with the `/v1` prefix; `ENDPOINT`/`--endpoint` override it.
    pub endpoint: Option<String>,
    /// Model name; `MODEL_NAME`/`--model` override it.
    pub model: Option<String>,
    /// `chat` (default) or `completions`.
    #[serde(default = "default_api")]
    pub api: Api,
    /// Seed of every random choice.
    #[serde(default)]
    pub seed: u64,
    /// Stop starting requests after this many seconds.
    pub duration_s: Option<f64>,
    /// Stop after this many requests.
    pub requests: Option<u64>,
    /// Per-request timeout in seconds.
    pub timeout_s: Option<f64>,
    /// Progress line interval in seconds (default 10).
    pub progress_interval_s: Option<f64>,
    /// Request pacing.
    pub load: LoadSpec,
    /// Where prompts come from (ignored by `pd_concurrent`, which uses the class pools).
    pub prompt: Option<PromptSource>,
    /// `max_tokens` distribution.
    pub output_tokens: Option<Distribution>,
    /// Share of streaming requests in `[0, 1]`.
    #[serde(default)]
    pub stream_ratio: f64,
    /// Sampling temperature (default 0.7).
    pub temperature: Option<f64>,
    /// Token counts of the prompt classes.
    pub prompt_sizes: Option<PromptSizes>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// The `load:` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum LoadSpec {
    /// Fixed number of workers, one request in flight each.
    ClosedLoop {
        workers: u32,
        #[serde(default)]
        pause_ms: f64,
    },
    /// Arrivals on a schedule: `rate` alone, or `stages`.
    OpenLoop {
        #[serde(default)]
        arrival: Arrival,
        rate: Option<f64>,
        #[serde(default)]
        stages: Vec<Stage>,
    },
    /// The upstream script's six worker patterns.
    PdConcurrent {
        #[serde(default = "default_workers")]
        workers: u32,
        #[serde(default = "default_pause_scale")]
        pause_scale: f64,
    },
}

fn default_name() -> String {
    "scenario".to_owned()
}

fn default_api() -> Api {
    Api::Chat
}

fn default_workers() -> u32 {
    crate::config::DEFAULT_WORKERS
}

fn default_pause_scale() -> f64 {
    1.0
}

impl Scenario {
    /// Parses scenario YAML; `origin` names the file in errors.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Scenario, Error> {
        // Enums are written as one-key maps (`load: {closed_loop: …}`), not YAML tags.
        let deserializer = serde_norway::Deserializer::from_str(text);
        serde_norway::with::singleton_map_recursive::deserialize(deserializer).map_err(|error| {
            Error::Scenario {
                path: origin.to_owned(),
                reason: error.to_string(),
            }
        })
    }

    /// Reads and parses a scenario file; a relative dataset path is taken relative to the
    /// file's directory.
    pub fn load(path: &Path) -> Result<Scenario, Error> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| Error::Scenario {
            path: origin.clone(),
            reason: error.to_string(),
        })?;
        let mut scenario = Scenario::from_yaml(&text, &origin)?;
        if let Some(PromptSource::Dataset { path: dataset, .. }) = &mut scenario.prompt
            && dataset.is_relative()
            && let Some(dir) = path.parent()
        {
            *dataset = dir.join(&*dataset);
        }
        Ok(scenario)
    }

    /// The run this scenario describes. `endpoint` and `model` (from flags or environment)
    /// override the file's; without either, the upstream defaults apply.
    pub fn into_config(
        self,
        endpoint: Option<String>,
        model: Option<String>,
    ) -> Result<Config, Error> {
        let bad = |reason: String| Error::Config(reason);
        let seconds = |what: &str, value: f64| -> Result<Duration, Error> {
            Duration::try_from_secs_f64(value)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| bad(format!("{what} must be a positive number of seconds")))
        };
        let workload = match self.load {
            LoadSpec::PdConcurrent {
                workers,
                pause_scale,
            } => Workload::PdConcurrent(PdConcurrent {
                workers,
                stagger: DEFAULT_WORKER_STAGGER,
                pause_scale,
            }),
            LoadSpec::ClosedLoop { workers, pause_ms } => {
                let pause = Duration::try_from_secs_f64(pause_ms / 1000.0)
                    .map_err(|_| bad("pause_ms must be >= 0".to_owned()))?;
                self.mix(Load::Closed(ClosedLoop { workers, pause }))?
            }
            LoadSpec::OpenLoop {
                arrival,
                rate,
                ref stages,
            } => {
                let stages = match (rate, stages.is_empty()) {
                    (Some(rate), true) => OpenLoop::constant_rate(arrival, rate).stages,
                    (None, false) => stages.clone(),
                    (Some(_), false) => {
                        return Err(bad(
                            "open_loop takes either rate or stages, not both".to_owned()
                        ));
                    }
                    (None, true) => return Err(bad("open_loop needs rate or stages".to_owned())),
                };
                self.mix(Load::Open(OpenLoop { arrival, stages }))?
            }
        };
        Ok(Config {
            endpoint: endpoint
                .or(self.endpoint)
                .unwrap_or_else(|| crate::config::DEFAULT_ENDPOINT.to_owned()),
            model: model
                .or(self.model)
                .unwrap_or_else(|| crate::config::DEFAULT_MODEL.to_owned()),
            workload,
            limit: Limit {
                duration: self
                    .duration_s
                    .map(|s| seconds("duration_s", s))
                    .transpose()?,
                requests: self.requests,
            },
            prompt_sizes: self.prompt_sizes.unwrap_or_default(),
            seed: self.seed,
            request_timeout: match self.timeout_s {
                Some(s) => seconds("timeout_s", s)?,
                None => DEFAULT_REQUEST_TIMEOUT,
            },
            progress_interval: match self.progress_interval_s {
                Some(s) => seconds("progress_interval_s", s)?,
                None => DEFAULT_PROGRESS_INTERVAL,
            },
            console: ConsoleMode::Auto,
            per_request_lines: false,
            outputs: Outputs::default(),
            headers: self.headers.into_iter().collect(),
            preflight: true,
        })
    }

    fn mix(&self, load: Load) -> Result<Workload, Error> {
        let prompt = self
            .prompt
            .clone()
            .ok_or_else(|| Error::Config("scenario needs a prompt section".to_owned()))?;
        Ok(Workload::Mix(Mix {
            name: self.name.clone(),
            load,
            api: self.api,
            prompt,
            output_tokens: self
                .output_tokens
                .unwrap_or(Distribution::Fixed(DEFAULT_OUTPUT_TOKENS)),
            stream_ratio: self.stream_ratio,
            temperature: self.temperature.unwrap_or(DEFAULT_TEMPERATURE),
        }))
    }
}
