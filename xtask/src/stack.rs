//! `cargo xtask stack`: the main job. Builds the release binaries, starts simulated vLLM pods
//! on free loopback ports, drives each with `load-gen pd-concurrent`, and prints the client's
//! summary beside what each pod measured itself (from its `/metrics`).

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use crate::project_root;

const USAGE: &str =
    "usage: cargo xtask stack [--pods N] [--workers N] [--minutes M] [--pause-scale F]";

/// Knobs of the local stack.
#[derive(Debug, Clone, PartialEq)]
struct StackConfig {
    pods: usize,
    workers: u32,
    minutes: f64,
    pause_scale: f64,
}

impl StackConfig {
    fn parse(args: &[String]) -> anyhow::Result<StackConfig> {
        let mut config = StackConfig {
            pods: 2,
            workers: 6,
            minutes: 0.5,
            pause_scale: 0.25,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let value = it
                .next()
                .with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
            match flag.as_str() {
                "--pods" => config.pods = value.parse().context("--pods")?,
                "--workers" => config.workers = value.parse().context("--workers")?,
                "--minutes" => config.minutes = value.parse().context("--minutes")?,
                "--pause-scale" => config.pause_scale = value.parse().context("--pause-scale")?,
                other => bail!("unknown flag {other}\n{USAGE}"),
            }
        }
        if config.pods == 0 || config.workers == 0 || config.minutes <= 0.0 {
            bail!("--pods, --workers and --minutes must be positive\n{USAGE}");
        }
        Ok(config)
    }
}

/// A child process killed when dropped, so an early error leaves nothing running.
struct Process {
    name: String,
    child: Child,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[allow(clippy::print_stdout)] // the report is this command's output
pub(crate) fn run(args: &[String]) -> anyhow::Result<()> {
    let config = StackConfig::parse(args)?;
    let root = project_root();
    let out_dir = root.join("target").join("stack");
    std::fs::create_dir_all(&out_dir)?;

    eprintln!("==> building release binaries (vllm-sim, load-gen)");
    // Cargo sets CARGO for the commands it runs, so the same toolchain builds the stack.
    #[allow(clippy::disallowed_methods)]
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "vllm-sim",
            "-p",
            "load-gen",
        ])
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build failed");
    }
    let bin = |name: &str| root.join("target").join("release").join(name);

    let mut pods = Vec::new();
    for index in 0..config.pods {
        let port = free_port()?;
        let name = format!("decode-{index}");
        let log = std::fs::File::create(out_dir.join(format!("{name}.log")))?;
        let child = Command::new(bin("vllm-sim"))
            .args(["--model", "sim-model", "--port", &port.to_string()])
            .args(["--max-num-seqs", "32", "--enable-prompt-tokens-details"])
            .args([
                "--prefill-overhead",
                "15",
                "--prefill-time-per-token",
                "0.02",
            ])
            .args([
                "--inter-token-latency",
                "8",
                "--inter-token-latency-std-dev",
                "1",
            ])
            .env("POD_NAME", &name)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        pods.push((Process { name, child }, addr));
    }
    for (process, addr) in &mut pods {
        wait_healthy(process, *addr)?;
        eprintln!("==> {} serving on http://{addr}", process.name);
    }

    eprintln!(
        "==> driving each pod with load-gen pd-concurrent {} {} (pause scale {})",
        config.workers, config.minutes, config.pause_scale
    );
    let mut generators = Vec::new();
    for (process, addr) in &pods {
        let summary = out_dir.join(format!("{}-summary.json", process.name));
        let html = out_dir.join(format!("{}-report.html", process.name));
        let child = Command::new(bin("load-gen"))
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
            .args([
                "--endpoint",
                &format!("http://{addr}/v1"),
                "--model",
                "sim-model",
                "--plain",
            ])
            .arg("--summary-json")
            .arg(&summary)
            .arg("--html")
            .arg(&html)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting load-gen")?;
        generators.push((process.name.clone(), child, summary, html));
    }
    for (name, child, _summary, _html) in generators {
        let output = child.wait_with_output().context("waiting for load-gen")?;
        let text = String::from_utf8_lossy(&output.stdout);
        println!("\n===== {name}: what the client saw (load-gen) =====\n{text}");
        if !output.status.success() {
            bail!("load-gen against {name} failed");
        }
    }

    println!("\n===== what each pod measured itself (/metrics) =====");
    println!(
        "{:<10} {:>8} {:>12} {:>12} {:>10} {:>10} {:>11}",
        "pod", "requests", "prompt tok", "output tok", "hit rate", "TTFT avg", "queue avg"
    );
    for (process, addr) in &pods {
        let metrics = scrape(*addr)?;
        let get = |name: &str| metrics.get(name).copied().unwrap_or(0.0);
        let requests = get("vllm:e2e_request_latency_seconds_count");
        let ratio = |num: f64, den: f64| if den > 0.0 { num / den } else { 0.0 };
        println!(
            "{:<10} {:>8.0} {:>12.0} {:>12.0} {:>9.1}% {:>8.1}ms {:>9.1}ms",
            process.name,
            requests,
            get("vllm:prompt_tokens_total"),
            get("vllm:generation_tokens_total"),
            100.0
                * ratio(
                    get("vllm:prefix_cache_hits_total"),
                    get("vllm:prefix_cache_queries_total")
                ),
            1000.0
                * ratio(
                    get("vllm:time_to_first_token_seconds_sum"),
                    get("vllm:time_to_first_token_seconds_count")
                ),
            1000.0
                * ratio(
                    get("vllm:request_queue_time_seconds_sum"),
                    get("vllm:request_queue_time_seconds_count")
                ),
        );
    }
    println!("\nlogs: {}", out_dir.display());
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_healthy(process: &mut Process, addr: SocketAddr) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(status) = process.child.try_wait()? {
            bail!(
                "{} exited with {status} before becoming healthy",
                process.name
            );
        }
        if http_get(addr, "/health").is_ok_and(|(status, _)| status == 200) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("{} did not become healthy within 30 s", process.name)
}

/// A minimal HTTP/1.1 GET; the stack's own endpoints answer plain bodies.
fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .context("malformed status line")?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Sums every sample of each metric name (across label sets) from `/metrics`.
fn scrape(addr: SocketAddr) -> anyhow::Result<BTreeMap<String, f64>> {
    let (_, body) = http_get(addr, "/metrics")?;
    Ok(sum_samples(&body))
}

fn sum_samples(exposition: &str) -> BTreeMap<String, f64> {
    let mut sums = BTreeMap::new();
    for line in exposition.lines().filter(|line| !line.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let name = series.split('{').next().unwrap_or(series);
        if let Ok(value) = value.parse::<f64>() {
            *sums.entry(name.to_owned()).or_insert(0.0) += value;
        }
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_and_bad_ones_are_named() {
        let args = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        let config = StackConfig::parse(&args("--pods 3 --minutes 0.1")).unwrap();
        assert_eq!((config.pods, config.minutes, config.workers), (3, 0.1, 6));
        let err = StackConfig::parse(&args("--pod 3"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("unknown flag --pod"), "{err}");
        assert!(StackConfig::parse(&args("--pods 0")).is_err());
    }

    #[test]
    fn samples_are_summed_across_label_sets() {
        let sums =
            sum_samples("# TYPE x counter\nx{a=\"1\"} 2\nx{a=\"2\"} 3.5\ny 1\nbad line here x\n");
        assert_eq!(sums["x"], 5.5);
        assert_eq!(sums["y"], 1.0);
    }
}
