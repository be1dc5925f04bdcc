//! The `load-gen` binary: command line and environment to a [`load_gen::Config`], then
//! [`load_gen::run`]. All output (banner, lines, progress, summary) comes from the library.
//!
//! ```text
//! load-gen pd-concurrent [WORKERS=6] [MINUTES=5]     # the upstream generate-traffic-pd.sh
//! load-gen run --scenario scenario.yaml              # a YAML scenario
//! ```

mod env;

use std::{path::PathBuf, time::Duration};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use load_gen::{Config, ConsoleMode, Outputs, PromptSizes, Scenario, Workload};

// The allocator every binary of the stack runs with: glibc's malloc trims and re-faults
// memory as thousands of connections come and go, which shows up in tail latency.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Traffic generator for OpenAI-compatible servers (vLLM, the simulator, an llm-d gateway).
#[derive(Debug, Parser)]
#[command(name = "load-gen", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Reproduce the upstream generate-traffic-pd.sh: six worker patterns, closed loop.
    PdConcurrent(PdConcurrentArgs),
    /// Run a YAML scenario.
    Run(RunArgs),
}

#[derive(Debug, Args)]
struct PdConcurrentArgs {
    /// Concurrent workers; worker i runs pattern (i - 1) % 6.
    #[arg(default_value_t = load_gen::DEFAULT_WORKERS)]
    workers: u32,
    /// Duration in minutes (fractions allowed).
    #[arg(default_value_t = load_gen::DEFAULT_MINUTES)]
    minutes: f64,
    /// Multiply every pattern pause by this (1 = the script's pauses).
    #[arg(long, default_value_t = 1.0)]
    pause_scale: f64,
    /// Delay between worker starts in milliseconds (script: 200).
    #[arg(long, default_value_t = 200)]
    stagger_ms: u64,
    /// Also stop after this many requests.
    #[arg(long)]
    requests: Option<u64>,
    /// Do not print the per-request line.
    #[arg(long)]
    no_request_lines: bool,
    /// Short prompt size in tokens.
    #[arg(long, default_value_t = load_gen::DEFAULT_SHORT_TOKENS)]
    short_tokens: u32,
    /// Medium prompt size in tokens.
    #[arg(long, default_value_t = load_gen::DEFAULT_MEDIUM_TOKENS)]
    medium_tokens: u32,
    /// Long prompt size in tokens.
    #[arg(long, default_value_t = load_gen::DEFAULT_LONG_TOKENS)]
    long_tokens: u32,
    /// Very long prompt size in tokens.
    #[arg(long, default_value_t = load_gen::DEFAULT_VERY_LONG_TOKENS)]
    very_long_tokens: u32,
    /// Seed of the random choices.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Scenario file (YAML).
    #[arg(long)]
    scenario: PathBuf,
    /// Print the per-request line for every request.
    #[arg(long)]
    request_lines: bool,
    /// Override the scenario's seed.
    #[arg(long)]
    seed: Option<u64>,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Args)]
struct CommonArgs {
    /// Base URL including /v1 [env: ENDPOINT] [default: http://localhost:8000/v1].
    #[arg(long)]
    endpoint: Option<String>,
    /// Model name [env: MODEL_NAME] [default: meta-llama/Llama-3.1-8B-Instruct].
    #[arg(long)]
    model: Option<String>,
    /// Per-request timeout in seconds.
    #[arg(long)]
    timeout_s: Option<f64>,
    /// Progress line interval in seconds (script: 10).
    #[arg(long)]
    progress_interval_s: Option<f64>,
    /// Extra request header `Name: value` (repeatable).
    #[arg(long = "header", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// Write every request as a JSON line to this file.
    #[arg(long)]
    json_lines: Option<PathBuf>,
    /// Write the summary JSON to this file.
    #[arg(long)]
    summary_json: Option<PathBuf>,
    /// Write the self-contained HTML report to this file.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Plain lines even on a terminal (no progress bar).
    #[arg(long)]
    plain: bool,
    /// Print nothing.
    #[arg(long, conflicts_with = "plain")]
    quiet: bool,
    /// Skip the pre-flight GET /models.
    #[arg(long)]
    no_preflight: bool,
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("expected `Name: value`, got {text:?}"))?;
    Ok((name.trim().to_owned(), value.trim().to_owned()))
}

fn seconds(what: &str, value: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("{what} must be a positive number of seconds"))
}

impl CommonArgs {
    fn apply(&self, config: &mut Config) -> anyhow::Result<()> {
        if let Some(timeout) = self.timeout_s {
            config.request_timeout = seconds("--timeout-s", timeout)?;
        }
        if let Some(interval) = self.progress_interval_s {
            config.progress_interval = seconds("--progress-interval-s", interval)?;
        }
        config.headers.extend(self.headers.iter().cloned());
        config.outputs = Outputs {
            jsonl: self.json_lines.clone(),
            summary_json: self.summary_json.clone(),
            html: self.html.clone(),
        };
        config.console = match (self.quiet, self.plain) {
            (true, _) => ConsoleMode::Quiet,
            (false, true) => ConsoleMode::Lines,
            (false, false) => ConsoleMode::Auto,
        };
        config.preflight = !self.no_preflight;
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let env = env::parse(&env::Env).context("bad environment")?;
    let config = match cli.command {
        Command::PdConcurrent(args) => {
            let endpoint = args
                .common
                .endpoint
                .clone()
                .or(env.endpoint)
                .unwrap_or_else(|| env::DEFAULT_ENDPOINT.to_owned());
            let model = args
                .common
                .model
                .clone()
                .or(env.model)
                .unwrap_or_else(|| env::DEFAULT_MODEL_NAME.to_owned());
            let mut config = Config::pd_concurrent(&endpoint, &model, args.workers, args.minutes);
            if let Workload::PdConcurrent(pd) = &mut config.workload {
                pd.pause_scale = args.pause_scale;
                pd.stagger = Duration::from_millis(args.stagger_ms);
            }
            config.limit.requests = args.requests;
            config.per_request_lines = !args.no_request_lines;
            config.prompt_sizes = PromptSizes {
                short: args.short_tokens,
                medium: args.medium_tokens,
                long: args.long_tokens,
                very_long: args.very_long_tokens,
            };
            config.seed = args.seed;
            args.common.apply(&mut config)?;
            config
        }
        Command::Run(args) => {
            let scenario = Scenario::load(&args.scenario)?;
            let mut config = scenario.into_config(
                args.common.endpoint.clone().or(env.endpoint),
                args.common.model.clone().or(env.model),
            )?;
            if let Some(seed) = args.seed {
                config.seed = seed;
            }
            config.per_request_lines = args.request_lines;
            args.common.apply(&mut config)?;
            config
        }
    };
    load_gen::run(config).await?;
    Ok(())
}
