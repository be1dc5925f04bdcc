//! `cargo xtask stack`: the main job. Builds the release binaries, starts the P/D stack on
//! free loopback ports (Envoy → EPP → pd-proxy → prefill and decode simulators, every hop
//! tracing to an OTLP receiver here), drives it through the gateway with
//! `load-gen pd-concurrent`, and prints the client's summary beside what every component
//! measured: where requests went and why, and where their time went.

mod otlp;
mod report;
mod topology;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::project_root;

const USAGE: &str = "usage: cargo xtask stack [--decode N] [--prefill N] [--workers N] [--minutes M] [--pause-scale F] [--pd-threshold TOKENS]";

/// Knobs of the local stack.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StackConfig {
    /// Decode pods, each behind a sidecar.
    pub(crate) decode: usize,
    /// Prefill pods.
    pub(crate) prefill: usize,
    workers: u32,
    minutes: f64,
    pause_scale: f64,
    /// The P/D decision's threshold: prompts with fewer tokens not cached on the chosen decode
    /// pod are prefilled there, without a prefill leg. 0 always disaggregates, as the
    /// upstream guide's "ALWAYS DO PD".
    pub(crate) pd_threshold: u64,
}

impl StackConfig {
    fn parse(args: &[String]) -> anyhow::Result<StackConfig> {
        let mut config = StackConfig {
            decode: 2,
            prefill: 2,
            workers: 6,
            minutes: 0.5,
            pause_scale: 0.25,
            pd_threshold: 128,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let value = it
                .next()
                .with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
            match flag.as_str() {
                "--decode" => config.decode = value.parse().context("--decode")?,
                "--prefill" => config.prefill = value.parse().context("--prefill")?,
                "--workers" => config.workers = value.parse().context("--workers")?,
                "--minutes" => config.minutes = value.parse().context("--minutes")?,
                "--pause-scale" => config.pause_scale = value.parse().context("--pause-scale")?,
                "--pd-threshold" => {
                    config.pd_threshold = value.parse().context("--pd-threshold")?
                }
                other => bail!("unknown flag {other}\n{USAGE}"),
            }
        }
        if config.decode == 0 || config.prefill == 0 || config.workers == 0 || config.minutes <= 0.0
        {
            bail!("--decode, --prefill, --workers and --minutes must be positive\n{USAGE}");
        }
        Ok(config)
    }
}

#[allow(clippy::print_stdout)] // the report is this command's output
pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let config = StackConfig::parse(args)?;
    let root = project_root();
    let out_dir = root.join("target").join("stack");
    std::fs::create_dir_all(&out_dir)?;

    eprintln!("==> building release binaries (vllm-sim, load-gen, epp, pd-proxy)");
    // Cargo sets CARGO for the commands it runs, so the same toolchain builds the stack.
    #[allow(clippy::disallowed_methods)]
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&root)
        .args(["build", "--release", "--quiet"])
        .args([
            "-p", "vllm-sim", "-p", "load-gen", "-p", "epp", "-p", "pd-proxy",
        ])
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build failed");
    }
    let bin = |name: &str| root.join("target").join("release").join(name);
    let bins = topology::Binaries {
        vllm_sim: bin("vllm-sim"),
        load_gen: bin("load-gen"),
        epp: bin("epp"),
        pd_proxy: bin("pd-proxy"),
        envoy: envoy_binary(&root)?,
    };

    let sink = otlp::Sink::start()?;
    eprintln!(
        "==> starting {} prefill and {} decode pods (each behind pd-proxy), the EPP and Envoy; traces to {}",
        config.prefill,
        config.decode,
        sink.addr()
    );
    let mut stack = topology::Stack::start(&config, &bins, &out_dir, &sink.base_url())?;
    for pod in &stack.prefill {
        eprintln!("    {:<10} vLLM {}", pod.process.name, pod.addr);
    }
    for pod in &stack.decode {
        eprintln!(
            "    {:<10} vLLM {}, sidecar {} (metrics {})",
            pod.engine.process.name, pod.engine.addr, pod.sidecar_addr, pod.sidecar_metrics
        );
    }
    eprintln!(
        "    EPP metrics http://{}/metrics, Envoy admin http://{}",
        stack.epp_metrics, stack.envoy_admin
    );
    eprintln!("==> gateway http://{}/v1", stack.gateway);

    eprintln!(
        "==> driving the gateway with load-gen pd-concurrent {} {} (pause scale {})",
        config.workers, config.minutes, config.pause_scale
    );
    let summary = out_dir.join("summary.json");
    let html = out_dir.join("report.html");
    let records = out_dir.join("requests.jsonl");
    let output = Command::new(&bins.load_gen)
        .args([
            "pd-concurrent",
            &config.workers.to_string(),
            &config.minutes.to_string(),
        ])
        .args([
            "--pause-scale",
            &config.pause_scale.to_string(),
            "--no-request-lines",
        ])
        .args(["--endpoint", &format!("http://{}/v1", stack.gateway)])
        .args(["--model", topology::MODEL, "--plain"])
        .arg("--summary-json")
        .arg(&summary)
        .arg("--html")
        .arg(&html)
        .arg("--json-lines")
        .arg(&records)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .context("running load-gen")?;
    println!(
        "\n===== what the client saw through the gateway (load-gen) =====\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    if !output.status.success() {
        bail!("load-gen failed ({})", output.status);
    }
    for process in stack.processes() {
        if let Some(status) = process.exited() {
            bail!(
                "{} exited during the run with {status}; see target/stack/{}.log",
                process.name,
                process.name
            );
        }
    }
    print!("{}", report::metrics_section(&stack));
    // Exporters batch spans (every 5 s by default): wait for the traces before joining.
    let spans = settle(&sink, &records, Duration::from_secs(30));
    print!(
        "{}",
        report::trace_section(&spans, &records, sink.rejected())
    );
    println!(
        "\nreports and logs: {} (summary.json, report.html, requests.jsonl, one log per process)",
        out_dir.display()
    );
    Ok(())
}

/// The spans once every successful request's trace holds every hop (the report's
/// completeness test), or once nothing new has arrived for longer than an exporter's batch
/// interval (5 s by default), or at `patience`.
fn settle(sink: &otlp::Sink, records: &Path, patience: Duration) -> Vec<otlp::SpanRecord> {
    let wanted: std::collections::HashSet<String> = std::fs::read_to_string(records)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|record| record["failure"].is_null())
        .filter_map(|record| record["trace_id"].as_str().map(str::to_owned))
        .collect();
    let deadline = Instant::now() + patience;
    let quiet = Duration::from_secs(6);
    let (mut seen, mut last_change) = (0, Instant::now());
    loop {
        let spans = sink.spans();
        let mut by_trace: std::collections::HashMap<&str, Vec<&otlp::SpanRecord>> =
            std::collections::HashMap::new();
        for span in &spans {
            by_trace
                .entry(span.trace_id.as_str())
                .or_default()
                .push(span);
        }
        if spans.len() != seen {
            (seen, last_change) = (spans.len(), Instant::now());
        }
        let done = wanted.iter().all(|trace| {
            by_trace
                .get(trace.as_str())
                .is_some_and(|trace| report::is_complete(trace))
        });
        if done || last_change.elapsed() > quiet || Instant::now() >= deadline {
            return spans;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Envoy from `ENVOY_BIN` or the project's tools folder, installed there when missing.
fn envoy_binary(root: &Path) -> anyhow::Result<PathBuf> {
    #[allow(clippy::disallowed_methods)] // xtask reads its one override directly
    if let Ok(path) = std::env::var("ENVOY_BIN") {
        return Ok(PathBuf::from(path));
    }
    let find = || {
        let lib = root.join(".tools/envoy-venv/lib");
        std::fs::read_dir(lib).ok()?.flatten().find_map(|python| {
            let binary = python.path().join("site-packages/envoy/_bin/envoy");
            binary.is_file().then_some(binary)
        })
    };
    if let Some(binary) = find() {
        return Ok(binary);
    }
    eprintln!("==> Envoy not found; installing it into .tools/ (scripts/install-tools.sh envoy)");
    let status = Command::new(root.join("scripts/install-tools.sh"))
        .arg("envoy")
        .status()
        .context("running scripts/install-tools.sh")?;
    if !status.success() {
        bail!("installing Envoy failed; set ENVOY_BIN to an Envoy binary");
    }
    find().context("Envoy is still missing after scripts/install-tools.sh envoy")
}

#[cfg(test)]
mod tests;
