//! Generator benchmark, in one run against one in-process simulator:
//!
//! 1. maximum sustained requests/s of `load-gen` (closed loop, C connections) versus `oha`
//!    with the same concurrency, duration, endpoint and body; prints the ratio;
//! 2. open-loop arrival accuracy: schedule lateness (actual send start minus scheduled time)
//!    at 2,000 requests/s, p50/p99/max.
//!
//! Setup: `cargo install oha` (the `oha` binary must be on PATH or in ~/.cargo/bin; without it
//! part 1 prints our rate only). Run: `cargo bench -p load-gen --bench throughput`, optionally
//! `-- --seconds 10 --concurrency 64 --rate 2000 --rounds 3`.

use std::{
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use load_gen::{
    Api, Arrival, ClosedLoop, Config, ConsoleMode, Distribution, Limit, Load, Mix, OpenLoop,
    PromptSource, Report, Workload,
};

const MODEL: &str = "bench-model";
/// The fixed body oha sends; our generator sends the same shape (8-token prompt, 1 token out).
const PROMPT_TOKENS: u32 = 8;

struct Options {
    seconds: u64,
    concurrency: u32,
    rate: f64,
    /// Alternating rounds of load-gen and oha; the best round of each counts, which damps
    /// noise from other work on the machine.
    rounds: u32,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<f64>().ok())
    };
    // `cargo bench` passes --bench; under `cargo test --all-targets` this is a smoke run.
    let smoke = !args.iter().any(|a| a == "--bench");
    let (seconds, rounds) = if smoke { (1.0, 1.0) } else { (10.0, 3.0) };
    Options {
        seconds: value("--seconds").unwrap_or(seconds) as u64,
        concurrency: value("--concurrency").unwrap_or(64.0) as u32,
        rate: value("--rate").unwrap_or(2000.0),
        rounds: value("--rounds").unwrap_or(rounds).max(1.0) as u32,
    }
}

#[allow(clippy::print_stdout)] // the benchmark's printed numbers are its result
fn main() {
    let options = options();
    // The simulator gets its own runtime and threads, shared by both generators.
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let sim_thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("simulator runtime");
        runtime.block_on(async move {
            let config = vllm_sim::Config::from_args([
                "vllm-sim",
                "--model",
                MODEL,
                "--port",
                "0",
                "--max-num-seqs",
                "1024",
            ])
            .expect("simulator flags");
            let server = vllm_sim::spawn(config).await.expect("simulator starts");
            addr_tx.send(server.addr()).expect("send addr");
            let _ = stop_rx.await;
            server.shutdown().await.expect("simulator shutdown");
        });
    });
    let addr = addr_rx.recv().expect("simulator address");
    let endpoint = format!("http://{addr}/v1");
    println!(
        "simulator at {addr}; {}s per run, {} connections",
        options.seconds, options.concurrency
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("generator runtime");

    // Warm-up (pool, simulator caches).
    runtime.block_on(closed_loop(&endpoint, options.concurrency, 2));
    let (mut best_ours, mut best_oha) = (0.0f64, None::<f64>);
    for round in 1..=options.rounds {
        let ours = runtime.block_on(closed_loop(&endpoint, options.concurrency, options.seconds));
        let ours_rate = ours.successful as f64 / ours.duration_s;
        best_ours = best_ours.max(ours_rate);
        println!(
            "round {round}: load-gen {:.0} req/s ({} ok, {} failed, p50 {:.2} ms, p99 {:.2} ms)",
            ours_rate,
            ours.successful,
            ours.failed,
            ours.overall.e2e_ms.map_or(0.0, |s| s.p50),
            ours.overall.e2e_ms.map_or(0.0, |s| s.p99)
        );
        match oha_rate(&endpoint, options.concurrency, options.seconds) {
            Ok(oha) => {
                println!("round {round}: oha      {oha:.0} req/s");
                best_oha = Some(best_oha.map_or(oha, |best: f64| best.max(oha)));
            }
            Err(reason) => {
                println!("oha not run ({reason}); install with `cargo install oha`");
            }
        }
    }
    match best_oha {
        Some(oha) => println!(
            "best of {}: load-gen {best_ours:.0} req/s, oha {oha:.0} req/s, ratio load-gen / oha = {:.2}",
            options.rounds,
            best_ours / oha
        ),
        None => println!("best of {}: load-gen {best_ours:.0} req/s", options.rounds),
    }

    let open = runtime.block_on(open_loop(&endpoint, options.rate, options.seconds));
    let lateness = open
        .schedule_lateness_ms
        .expect("open loop measures lateness");
    println!(
        "open loop at {:.0} req/s: sent {:.0} req/s, {} ok, {} failed; schedule lateness p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms (goal p99 < 1 ms: {})",
        options.rate,
        open.total as f64 / open.duration_s,
        open.successful,
        open.failed,
        lateness.p50,
        lateness.p99,
        lateness.max,
        if lateness.p99 < 1.0 { "met" } else { "missed" }
    );

    let _ = stop_tx.send(());
    sim_thread.join().expect("simulator thread");
}

fn bench_config(endpoint: &str, load: Load, limit: Limit) -> Config {
    let mut config = Config::pd_concurrent(endpoint, MODEL, 1, 1.0);
    config.console = ConsoleMode::Quiet;
    config.per_request_lines = false;
    config.request_timeout = Duration::from_secs(30);
    config.limit = limit;
    config.workload = Workload::Mix(Mix {
        name: "bench".to_owned(),
        load,
        api: Api::Completions,
        prompt: PromptSource::Tokens(Distribution::Fixed(PROMPT_TOKENS)),
        output_tokens: Distribution::Fixed(1),
        stream_ratio: 0.0,
        temperature: 0.0,
    });
    config
}

async fn closed_loop(endpoint: &str, workers: u32, seconds: u64) -> Report {
    let config = bench_config(
        endpoint,
        Load::Closed(ClosedLoop {
            workers,
            pause: Duration::ZERO,
        }),
        Limit {
            duration: Some(Duration::from_secs(seconds)),
            requests: None,
        },
    );
    load_gen::run(config).await.expect("closed-loop run")
}

async fn open_loop(endpoint: &str, rate: f64, seconds: u64) -> Report {
    let config = bench_config(
        endpoint,
        Load::Open(OpenLoop::constant_rate(Arrival::Poisson, rate)),
        Limit {
            duration: Some(Duration::from_secs(seconds)),
            requests: None,
        },
    );
    load_gen::run(config).await.expect("open-loop run")
}

fn oha_binary() -> Option<PathBuf> {
    let on_path = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("oha"))
        .find(|path| path.is_file());
    on_path.or_else(|| {
        let home = PathBuf::from(std::env::var_os("HOME")?);
        let path = home.join(".cargo/bin/oha");
        path.is_file().then_some(path)
    })
}

/// Runs oha with the same concurrency, duration and request; returns its successful req/s.
fn oha_rate(endpoint: &str, concurrency: u32, seconds: u64) -> Result<f64, String> {
    let oha = oha_binary().ok_or("oha not found")?;
    let body = format!(
        "{{\"model\":\"{MODEL}\",\"prompt\":\"The scheduler routes prompt tokens before the next\",\"max_tokens\":1,\"temperature\":0.0,\"stream\":false}}"
    );
    let started = Instant::now();
    let output = Command::new(oha)
        .args([
            "-z",
            &format!("{seconds}s"),
            "-c",
            &concurrency.to_string(),
            "--no-tui",
            "--output-format",
            "json",
            "-m",
            "POST",
            "-H",
            "content-type: application/json",
            "-d",
            &body,
            &format!("{endpoint}/completions"),
        ])
        .output()
        .map_err(|error| format!("cannot start oha: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "oha failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|error| format!("oha output is not JSON: {error}"))?;
    let ok = json["statusCodeDistribution"]["200"]
        .as_f64()
        .ok_or("no 200s in oha's status distribution")?;
    let total_s = json["summary"]["total"]
        .as_f64()
        .unwrap_or_else(|| started.elapsed().as_secs_f64());
    Ok(ok / total_s)
}
