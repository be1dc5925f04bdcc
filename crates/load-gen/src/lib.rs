//! `load-gen`: the stack's traffic generator for OpenAI-compatible servers (vLLM, the
//! simulator, a gateway).
//!
//! It reproduces the upstream `generate-traffic-pd.sh` script (six closed-loop worker
//! patterns, the per-request line, a progress line every 10 s and the final summary, without
//! the script's off-by-one counts) and runs YAML scenarios with closed-loop workers or an
//! open-loop arrival process. Every request is measured as the client experienced it
//! (status, TTFT, inter-token latencies, end-to-end latency, `usage` tokens) and carries a
//! W3C `traceparent` whose trace id is recorded, so a slow request can be found in the
//! tracing backend.
//!
//! Entry points: build a [`Config`] (by hand, with [`Config::pd_concurrent`], or from a
//! [`Scenario`] file) and call [`run`] (Ctrl-C stops it cleanly) or [`run_until`] (any
//! shutdown future). Both return the [`Report`], which renders the summary text, the summary
//! JSON and the HTML report.
//!
//! Reading order: `config` (what to run), `pattern` and `prompt` (what each request
//! sends), `scenario` (the YAML form), `schedule` (open-loop arrival times), `client` and
//! `sse` (one request on the wire), `record` and `stats` (what was measured), `report` and
//! `html` (how it is shown), `console` (terminal output), `runner` (how it all runs).

mod client;
mod config;
mod console;
mod html;
mod pattern;
mod prompt;
mod record;
mod report;
mod runner;
mod scenario;
mod schedule;
mod sse;
mod stats;
mod trace;

pub use config::{
    Api, ClosedLoop, Config, ConsoleMode, DEFAULT_ENDPOINT, DEFAULT_MINUTES, DEFAULT_MODEL,
    DEFAULT_PROGRESS_INTERVAL, DEFAULT_REQUEST_TIMEOUT, DEFAULT_TEMPERATURE,
    DEFAULT_WORKER_STAGGER, DEFAULT_WORKERS, Distribution, Limit, Load, Mix, OpenLoop, Outputs,
    PdConcurrent, Stage, Workload,
};
pub use pattern::{Pattern, PatternStep};
pub use prompt::{
    DEFAULT_LONG_TOKENS, DEFAULT_MEDIUM_TOKENS, DEFAULT_SHORT_TOKENS, DEFAULT_VERY_LONG_TOKENS,
    DatasetOrder, PromptClass, PromptFamily, PromptSizes, PromptSource,
};
pub use record::{FailureKind, RequestRecord};
pub use report::{
    LatencyStats, PatternReport, Report, SamplePoint, SlowRequest, TimelineBucket, WorkerReport,
};
pub use runner::{run, run_until};
pub use scenario::{DEFAULT_OUTPUT_TOKENS, LoadSpec, Scenario};
pub use schedule::{Arrival, ArrivalSchedule};
pub use sse::SseParser;
pub use trace::TraceContext;

/// Errors that stop a run before or while it starts; per-request failures are not errors,
/// they are counted in the [`Report`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("endpoint {endpoint}: {reason}")]
    InvalidEndpoint { endpoint: String, reason: String },
    #[error("cannot reach endpoint {endpoint}: {reason}")]
    Unreachable { endpoint: String, reason: String },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("scenario {path}: {reason}")]
    Scenario { path: String, reason: String },
    #[error("prompt dataset {path}: {reason}")]
    Dataset { path: String, reason: String },
    #[error("output file {path}: cannot be written")]
    Output {
        path: String,
        #[source]
        source: std::io::Error,
    },
}
