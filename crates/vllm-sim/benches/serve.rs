//! Simulator benchmark, reported as ratios against baselines measured in the same run:
//!
//! 1. Non-streaming requests/s with zero configured latency, against a bare axum server that
//!    returns a same-sized completion body (the HTTP stack's ceiling on this machine).
//! 2. Timing error of TTFT and ITL at 1,000 concurrent streams: how far the client-observed
//!    first token and gaps land from the configured model. Each simulator first serves one
//!    discarded round of the same shape (the process's first 1,000 streams touch fresh memory
//!    and are reported separately as the cold round). Five measured rounds follow, and the
//!    median round's p99 is the headline. A plain OS thread sleeping 1 ms beside each round
//!    reports its worst oversleep (the host's own stalls, which no server can beat), and the
//!    process's CPU time tells how much of the two cores client and server took.
//!
//! Run: `cargo bench -p vllm-sim --bench serve` (add `-- --quick` for a short run). Under
//! `cargo test --all-targets` (no `--bench` argument) it is a short smoke run.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};

// The allocator the `vllm-sim` binary runs with, so the in-process server measures the same.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

const BODY: &str = r#"{"model":"bench","prompt":"Benchmark the simulator please.","max_tokens":8}"#;

fn http_client() -> HttpClient {
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(4096)
        .build_http()
}

async fn post(client: &HttpClient, url: &str, body: &'static str) -> (u16, Bytes) {
    let request = hyper::Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("request");
    let response = client.request(request).await.expect("response");
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, body)
}

/// Closed-loop load with `concurrency` workers for `duration`; returns requests/s.
async fn closed_loop(url: String, concurrency: usize, duration: Duration) -> f64 {
    let client = http_client();
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, url, done, stop) =
                (client.clone(), url.clone(), done.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let (status, _) = post(&client, &url, BODY).await;
                    assert_eq!(status, 200);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.expect("worker");
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

async fn baseline_server(body: Bytes) -> std::net::SocketAddr {
    let router = axum::Router::new().route(
        "/v1/completions",
        axum::routing::post(move |_: Bytes| {
            let body = body.clone();
            async move { ([("content-type", "application/json")], body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

async fn sim(extra: &[&str]) -> vllm_sim::Server {
    let mut args = vec![
        "vllm-sim",
        "--model",
        "bench",
        "--port",
        "0",
        "--max-num-seqs",
        "2048",
    ];
    args.extend_from_slice(extra);
    vllm_sim::spawn(vllm_sim::Config::from_args(args).expect("flags"))
        .await
        .expect("sim")
}

/// The `q` quantile of a histogram family from a scrape, as Prometheus's
/// `histogram_quantile` would interpolate it.
async fn scraped_quantile(base: &str, family: &str, q: f64) -> f64 {
    let client = http_client();
    let request = hyper::Request::get(format!("{base}/metrics"))
        .body(Full::new(Bytes::new()))
        .expect("request");
    let body = client
        .request(request)
        .await
        .expect("scrape")
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let text = String::from_utf8_lossy(&body);
    let prefix = format!("{family}_bucket{{");
    let mut buckets: Vec<(f64, f64)> = text
        .lines()
        .filter(|line| line.starts_with(&prefix))
        .filter_map(|line| {
            let le = line.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            let count = line.rsplit(' ').next()?.parse().ok()?;
            Some((le, count))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last().map_or(0.0, |b| b.1);
    let rank = q * total;
    let mut previous = (0.0, 0.0);
    for &(le, count) in &buckets {
        if count >= rank {
            if le.is_infinite() {
                return previous.0;
            }
            let span = count - previous.1;
            let fraction = if span > 0.0 {
                (rank - previous.1) / span
            } else {
                0.0
            };
            return previous.0 + (le - previous.0) * fraction;
        }
        previous = (le, count);
    }
    previous.0
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Streams `n` requests at once; returns per-stream TTFT and all ITLs in ms.
async fn streams(url: String, n: usize, tokens: usize) -> (Vec<f64>, Vec<f64>) {
    let client = http_client();
    let body: &'static str = Box::leak(
        format!(r#"{{"model":"bench","prompt":"Time me.","max_tokens":{tokens},"stream":true}}"#)
            .into_boxed_str(),
    );
    // Open every connection first, so TCP set-up is not counted as model time.
    let warm: Vec<_> = (0..n)
        .map(|_| {
            let (client, url) = (client.clone(), url.replace("/v1/completions", "/v1/models"));
            tokio::spawn(async move {
                let request = hyper::Request::get(url)
                    .body(Full::new(Bytes::new()))
                    .expect("request");
                let response = client.request(request).await.expect("warm-up");
                response.into_body().collect().await.expect("body");
            })
        })
        .collect();
    for task in warm {
        task.await.expect("warm-up");
    }
    // Streams start 1 ms apart, as independent clients do, rather than in one lockstep burst.
    let ramp = Duration::from_millis(1);
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                tokio::time::sleep(ramp * i as u32).await;
                let request = hyper::Request::post(url)
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from_static(body.as_bytes())))
                    .expect("request");
                let start = Instant::now();
                let response = client.request(request).await.expect("response");
                let mut body = response.into_body();
                let mut times = Vec::with_capacity(tokens);
                let mut pending = Vec::new();
                while let Some(frame) = body.frame().await {
                    let Ok(data) = frame.expect("frame").into_data() else {
                        continue;
                    };
                    pending.extend_from_slice(&data);
                    while let Some(end) = pending.windows(2).position(|w| w == b"\n\n") {
                        let event: Vec<u8> = pending.drain(..end + 2).collect();
                        if event.windows(7).any(|w| w == b"\"text\":") {
                            times.push(start.elapsed().as_secs_f64() * 1000.0);
                        }
                    }
                }
                times
            })
        })
        .collect();
    let (mut ttfts, mut itls) = (Vec::new(), Vec::new());
    for task in tasks {
        let times = task.await.expect("stream");
        ttfts.push(times[0]);
        itls.extend(times.windows(2).map(|w| w[1] - w[0]));
    }
    (ttfts, itls)
}

/// A thread that sleeps 1 ms at a time and keeps its worst oversleep, in ms: how long the host
/// kept a runnable thread waiting while the benchmark ran.
struct HostStallProbe {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<f64>,
}

impl HostStallProbe {
    fn start() -> HostStallProbe {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let stop = Arc::clone(&stop);
            move || {
                let mut worst = 0.0f64;
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    std::thread::sleep(Duration::from_millis(1));
                    worst = worst.max(started.elapsed().as_secs_f64() * 1000.0 - 1.0);
                }
                worst
            }
        });
        HostStallProbe { stop, thread }
    }

    fn worst_ms(self) -> f64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or(f64::NAN)
    }
}

/// Timing errors of one round against the configured prefill and ITL: the report line and
/// the (TTFT, ITL) error p99s.
fn timing_line(
    label: &str,
    prefill_ms: f64,
    itl_ms: f64,
    mut ttfts: Vec<f64>,
    mut itls: Vec<f64>,
) -> (String, f64, f64) {
    let mut ttft_err: Vec<f64> = ttfts.iter().map(|t| (t - prefill_ms).abs()).collect();
    let mut itl_err: Vec<f64> = itls.iter().map(|t| (t - itl_ms).abs()).collect();
    for v in [&mut ttfts, &mut itls, &mut ttft_err, &mut itl_err] {
        v.sort_by(f64::total_cmp);
    }
    let (ttft_p99, itl_p99) = (percentile(&ttft_err, 0.99), percentile(&itl_err, 0.99));
    let line = format!(
        "    {label}: TTFT p50 {:.2} p99 {:.2} ms (error p50 {:.2} p99 {ttft_p99:.2} ms); ITL p50 {:.2} p99 {:.2} ms (error p50 {:.2} p99 {itl_p99:.2} ms)",
        percentile(&ttfts, 0.5),
        percentile(&ttfts, 0.99),
        percentile(&ttft_err, 0.5),
        percentile(&itls, 0.5),
        percentile(&itls, 0.99),
        percentile(&itl_err, 0.5),
    );
    (line, ttft_p99, itl_p99)
}

/// CPU seconds this process has used (user + system), from `/proc/self/stat`; `None` off
/// Linux. Over a round it tells how much of the 2 cores client and server took.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on every Linux this runs on.
    Some(ticks / 100.0)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[allow(clippy::print_stdout)] // a benchmark reports on stdout
fn main() {
    // `cargo bench` passes --bench; under `cargo test --all-targets` this is a smoke run.
    let smoke = !std::env::args().any(|arg| arg == "--bench");
    let quick = smoke || std::env::args().any(|arg| arg == "--quick");
    let duration = Duration::from_millis(match (smoke, quick) {
        (true, _) => 300,
        (false, true) => 2000,
        (false, false) => 5000,
    });
    let n_streams = if smoke { 50 } else { 1000 };
    let rounds = if smoke { 1 } else { 5 };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let server = sim(&[]).await;
        let url = format!("{}/v1/completions", server.url());
        let (_, sample) = post(&http_client(), &url, BODY).await;
        let baseline = baseline_server(sample).await;
        let baseline_url = format!("http://{baseline}/v1/completions");
        for concurrency in [64usize] {
            let base_rps = closed_loop(baseline_url.clone(), concurrency, duration).await;
            let sim_rps = closed_loop(url.clone(), concurrency, duration).await;
            println!(
                "non-streaming, zero latency, {concurrency} clients: sim {sim_rps:.0} req/s, bare HTTP baseline {base_rps:.0} req/s, ratio {:.2}",
                sim_rps / base_rps
            );
        }
        server.shutdown().await.expect("shutdown");

        // Token rate = streams / ITL: 10k, 20k and 50k tokens/s through one 2-core machine
        // that also runs the client.
        for itl_ms in [100.0, 50.0, 20.0] {
            let (prefill_ms, tokens, n) = (50.0, (2000.0 / itl_ms) as usize + 10, n_streams);
            let server = sim(&[
                "--prefill-overhead",
                &prefill_ms.to_string(),
                "--inter-token-latency",
                &itl_ms.to_string(),
            ])
            .await;
            let url = format!("{}/v1/completions", server.url());
            println!("{n} streams, prefill {prefill_ms} ms, ITL {itl_ms} ms:");
            let (ttfts, itls) = streams(url.clone(), n, tokens).await;
            let label = if itl_ms == 100.0 { "cold round (discarded)" } else { "warm-up round (discarded)" };
            println!("{}", timing_line(label, prefill_ms, itl_ms, ttfts, itls).0);
            // Several measured rounds: one host stall (the probe below) spoils one round's
            // p99, so the median round is the simulator's error and every round is shown.
            let (mut ttft_p99s, mut itl_p99s) = (Vec::new(), Vec::new());
            for round in 1..=rounds {
                let probe = HostStallProbe::start();
                let (cpu_before, wall) = (process_cpu_seconds(), Instant::now());
                let (ttfts, itls) = streams(url.clone(), n, tokens).await;
                let elapsed = wall.elapsed().as_secs_f64();
                let per_second = |before: Option<f64>, after: Option<f64>| match (before, after) {
                    (Some(before), Some(after)) => format!("{:.2}", (after - before) / elapsed),
                    _ => "n/a".to_owned(),
                };
                let cores = per_second(cpu_before, process_cpu_seconds());
                let host_stall_ms = probe.worst_ms();
                let (line, ttft_p99, itl_p99) =
                    timing_line(&format!("measured round {round}"), prefill_ms, itl_ms, ttfts, itls);
                println!("{line}");
                println!(
                    "      client + server used {cores} of 2 cores; host stall: worst 1 ms sleep overslept by {host_stall_ms:.2} ms"
                );
                ttft_p99s.push(ttft_p99);
                itl_p99s.push(itl_p99);
            }
            let lateness_p99 =
                scraped_quantile(&server.url(), "llm_d_sim_engine_timer_lateness_seconds", 0.99)
                    .await;
            println!(
                "    median of {rounds} rounds: TTFT error p99 {:.2} ms, ITL error p99 {:.2} ms; engine timer lateness p99 {:.3} ms (the simulator's own clock)",
                median(ttft_p99s),
                median(itl_p99s),
                lateness_p99 * 1000.0
            );
            server.shutdown().await.expect("shutdown");
        }
    });
}
