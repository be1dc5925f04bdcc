//! Routing-decision latency and the latency Envoy adds with the EPP in the path, reported as
//! p50/p99 and ratios from one run. A plain harness (not criterion) because the targets are
//! tail percentiles, which criterion does not report.
//!
//! * Decision: parse the OpenAI body, tokenize the prompt (embedded BPE), hash its blocks,
//!   look them up in the kv-index, score and pick, for 1k/8k/32k-token prompts over 8/64/256
//!   endpoints (one endpoint holds 90% of the prompt, the others a short prefix).
//! * Throughput: decisions per second on 2 threads (the machine's 2 cores), 8k tokens × 64.
//! * Envoy: p50/p99 of a completion sent straight to a simulator, through Envoy straight to
//!   it, and through Envoy with the EPP choosing it; needs Envoy (`ENVOY_BIN` or
//!   `scripts/install-tools.sh`), skipped with a message otherwise.
//!
//! `cargo bench -p epp --bench decision` (add `-- --quick` for fewer samples). Under
//! `cargo test` (no `--bench` argument) it is a smoke test: a few samples of each case.

#![allow(clippy::print_stdout, unreachable_pub)]

#[path = "../tests/support/topology.rs"]
mod topology;

use std::sync::Arc;
use std::time::{Duration, Instant};

use epp::framework::{CycleState, Endpoint, Handle, Plugin};
use epp::plugins::picker::MaxScorePicker;
use epp::plugins::profile_handler::SingleProfileHandler;
use epp::plugins::scorer::{KvCacheUtilizationScorer, PrecisePrefixCacheScorer, QueueScorer};
use epp::scheduler::{Profile, Scheduler};
use kv_index::events::{BlockHashValue, BlockStored, KvEvent, KvEventBatch};

const MODEL: &str = "bench-model";
const BLOCK_SIZE: usize = 16;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn fmt(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

/// A text of about `tokens` tokens under the embedded BPE.
fn prompt_text(tokens: usize, tokenizer: &tokenizer::Tokenizer) -> String {
    let mut text = String::new();
    let mut word_idx = 0;
    while tokenizer.count(&text) < tokens {
        for _ in 0..64 {
            text.push_str(&format!(" lorem{} ipsum dolor sit amet,", word_idx % 997));
            word_idx += 1;
        }
    }
    text
}

fn stored(tokens: &[u32], first_hash: u64) -> KvEventBatch {
    let n_blocks = tokens.len() / BLOCK_SIZE;
    KvEventBatch {
        ts: 0.0,
        events: vec![KvEvent::BlockStored(BlockStored {
            block_hashes: (0..n_blocks as u64)
                .map(|i| BlockHashValue::U64(first_hash + i))
                .collect(),
            parent_block_hash: None,
            token_ids: tokens[..n_blocks * BLOCK_SIZE].to_vec(),
            block_size: BLOCK_SIZE as u32,
            ..BlockStored::default()
        })],
        data_parallel_rank: None,
    }
}

struct Case {
    scheduler: Scheduler,
    endpoints: Vec<Arc<Endpoint>>,
    /// The same prompt with different last questions (only the tail is new to the cache).
    bodies: Vec<Vec<u8>>,
    tokens: usize,
    n_endpoints: usize,
}

fn case(tokens: usize, n_endpoints: usize, handle: &Handle, cache_chunks: usize) -> Case {
    let text = prompt_text(tokens, &handle.tokenizer);
    let ids = handle.tokenizer.encode(&text);
    let precise = PrecisePrefixCacheScorer::build(
        "precise-prefix-cache-scorer",
        serde_norway::from_str(&format!(
            "{{tokenCacheChunks: {cache_chunks}, kvEventsConfig: {{zmqEndpoint: 'tcp://127.0.0.1:*'}}}}"
        ))
        .unwrap(),
        handle,
    )
    .expect("precise scorer");
    let endpoints: Vec<Arc<Endpoint>> = (0..n_endpoints)
        .map(|i| {
            Arc::new(Endpoint::new(&format!(
                "10.0.{}.{}:8000",
                i / 250,
                i % 250 + 1
            )))
        })
        .collect();
    for (i, endpoint) in endpoints.iter().enumerate() {
        // One pod holds 90% of the prompt, every other one a 64-token prefix.
        let held = if i == n_endpoints / 2 {
            ids.len() * 9 / 10
        } else {
            64
        };
        precise.index().apply_batch(
            &endpoint.address,
            MODEL,
            &stored(&ids[..held], (i as u64) << 32),
        );
    }
    let plugin = |p: Arc<dyn Plugin>| p;
    let build = |f: epp::framework::Factory, name: &str| {
        f(name, serde_norway::Value::Null, handle).unwrap()
    };
    let profile = Profile {
        name: "default".to_owned(),
        filters: Vec::new(),
        scorers: vec![
            (plugin(precise), 3.0),
            (build(QueueScorer::factory, "queue-scorer"), 1.0),
            (
                build(
                    KvCacheUtilizationScorer::factory,
                    "kv-cache-utilization-scorer",
                ),
                1.0,
            ),
        ],
        picker: build(MaxScorePicker::factory, "max-score-picker"),
    };
    let scheduler = Scheduler::new(
        vec![profile],
        build(SingleProfileHandler::factory, "single-profile-handler"),
        Arc::clone(&handle.metrics),
    );
    let bodies = (0..64)
        .map(|question| {
            serde_json::json!({"model": MODEL, "prompt": format!("{text} Question {question}?"), "max_tokens": 1})
                .to_string()
                .into_bytes()
        })
        .collect();
    Case {
        scheduler,
        endpoints,
        bodies,
        tokens: ids.len(),
        n_endpoints,
    }
}

/// One full decision: body → request → tokens → keys → index → scores → pick.
fn decide(case: &Case, iteration: usize) -> String {
    let body = &case.bodies[iteration % case.bodies.len()];
    let request = epp::request::parse("/v1/completions", body, "bench").expect("valid body");
    let result = case
        .scheduler
        .schedule(&mut CycleState::default(), &request, &case.endpoints)
        .expect("a pick");
    result.primary_targets()[0].address.clone()
}

fn measure(case: &Case, samples: usize) -> Vec<Duration> {
    let expected = case.endpoints[case.n_endpoints / 2].address.clone();
    for iteration in 0..samples.min(20) {
        assert_eq!(
            decide(case, iteration),
            expected,
            "the pod holding the prompt wins"
        );
    }
    let mut times: Vec<Duration> = (0..samples)
        .map(|iteration| {
            let started = Instant::now();
            std::hint::black_box(decide(case, iteration));
            started.elapsed()
        })
        .collect();
    times.sort();
    times
}

async fn envoy_overhead(samples: usize) {
    if std::env::var_os("ENVOY_BIN").is_none()
        && !std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../.tools/envoy-venv")
            .is_dir()
    {
        println!(
            "\nEnvoy overhead: skipped, Envoy not found (set ENVOY_BIN or run scripts/install-tools.sh)"
        );
        return;
    }
    let topology = topology::Topology::start_tls(1, &topology::precise_config(), None).await;
    let sim = topology.sims[0].addr();
    let envoy = test_support::envoy::Envoy::start(topology.epp.addr(), sim, None).await;
    // The same pod behind a plaintext EPP, to show what TLS to the EPP costs.
    let plain = topology::Topology::start(1, &topology::precise_config(), None).await;
    let plain_envoy =
        test_support::envoy::Envoy::start_with(plain.epp.addr(), false, plain.sims[0].addr(), None)
            .await;
    let client = topology::client();
    let body = topology::completion(&topology::shared_prefix(0, 300));
    let mut run = |url: String| {
        let client = client.clone();
        let body = body.clone();
        async move {
            let mut times = Vec::with_capacity(samples);
            for sample_idx in 0..samples + 20 {
                let started = Instant::now();
                let response = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .expect("answer");
                assert_eq!(response.status(), 200);
                let _ = response.bytes().await;
                if sample_idx >= 20 {
                    times.push(started.elapsed());
                }
            }
            times.sort();
            times
        }
    };
    let direct = run(format!("http://{sim}/v1/completions")).await;
    let envoy_direct = run(format!("{}/v1/completions", envoy.direct_url())).await;
    let envoy_epp = run(format!("{}/v1/completions", envoy.gateway_url())).await;
    let envoy_plain_epp = run(format!("{}/v1/completions", plain_envoy.gateway_url())).await;
    let _ = &mut run;
    println!(
        "\nEnvoy overhead ({samples} sequential completions, 300-word prompt, 1 output token):"
    );
    println!("{:<34} {:>12} {:>12}", "path", "p50", "p99");
    for (name, times) in [
        ("client → sim", &direct),
        ("client → Envoy → sim", &envoy_direct),
        ("client → Envoy+EPP (TLS) → sim", &envoy_epp),
        ("client → Envoy+EPP (plain) → sim", &envoy_plain_epp),
    ] {
        println!(
            "{name:<34} {:>12} {:>12}",
            fmt(percentile(times, 0.5)),
            fmt(percentile(times, 0.99))
        );
    }
    let added = |p: f64| percentile(&envoy_epp, p).saturating_sub(percentile(&envoy_direct, p));
    println!(
        "EPP in the path adds p50 {} / p99 {}; Envoy+EPP ÷ Envoy alone: p50 {:.2}×, p99 {:.2}×",
        fmt(added(0.5)),
        fmt(added(0.99)),
        percentile(&envoy_epp, 0.5).as_secs_f64() / percentile(&envoy_direct, 0.5).as_secs_f64(),
        percentile(&envoy_epp, 0.99).as_secs_f64() / percentile(&envoy_direct, 0.99).as_secs_f64(),
    );
    println!(
        "TLS to the EPP: p50 {:.2}×, p99 {:.2}× the plaintext EPP path",
        percentile(&envoy_epp, 0.5).as_secs_f64() / percentile(&envoy_plain_epp, 0.5).as_secs_f64(),
        percentile(&envoy_epp, 0.99).as_secs_f64()
            / percentile(&envoy_plain_epp, 0.99).as_secs_f64(),
    );
    drop(envoy);
    drop(plain_envoy);
    topology.shutdown().await;
    plain.shutdown().await;
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this as a smoke test.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let quick = smoke || std::env::args().any(|a| a == "--quick");
    let samples = if smoke {
        4
    } else if quick {
        200
    } else {
        1000
    };
    let handle = Handle {
        tokenizer: tokenizer::Tokenizer::embedded(),
        metrics: Arc::new(epp::telemetry::Metrics::unregistered()),
        registry: prometheus::Registry::new(),
    };
    println!(
        "Routing decision with tokenization ({samples} samples each; ratio = p99 ÷ the 1 ms floor)."
    );
    println!(
        "cold: token cache off, every token encoded; warm: the prompt's prefix seen before, a new last question."
    );
    println!(
        "{:>5} {:>7} {:>9} {:>12} {:>12} {:>9}",
        "cache", "tokens", "endpoints", "p50", "p99", "p99/1ms"
    );
    let mut floor_case = None;
    for (label, cache_chunks) in [("cold", 0), ("warm", 65_536)] {
        for tokens in [1024, 8192, 32768] {
            for n_endpoints in [8, 64, 256] {
                let case = case(tokens, n_endpoints, &handle, cache_chunks);
                let times = measure(
                    &case,
                    if tokens == 32768 {
                        (samples / 4).max(1)
                    } else {
                        samples
                    },
                );
                let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
                println!(
                    "{label:>5} {:>7} {:>9} {:>12} {:>12} {:>8.2}×",
                    case.tokens,
                    case.n_endpoints,
                    fmt(p50),
                    fmt(p99),
                    p99.as_secs_f64() / 1e-3
                );
                if tokens == 8192 && n_endpoints == 64 {
                    println!(
                        "Floor ({label}): 8k tokens × 64 endpoints p99 {} — {}",
                        fmt(p99),
                        if p99 < Duration::from_millis(1) {
                            "under 1 ms"
                        } else {
                            "OVER 1 ms"
                        }
                    );
                    floor_case = Some((case, p99));
                }
            }
        }
    }
    let (case, _) = floor_case.expect("the 8k × 64 case ran");
    let case = Arc::new(case);
    let window = Duration::from_millis(match (smoke, quick) {
        (true, _) => 100,
        (false, true) => 1000,
        (false, false) => 3000,
    });
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let case = Arc::clone(&case);
            std::thread::spawn(move || {
                let started = Instant::now();
                let mut n = 0u64;
                while started.elapsed() < window {
                    std::hint::black_box(decide(&case, n as usize));
                    n += 1;
                }
                n
            })
        })
        .collect();
    let total: u64 = threads.into_iter().map(|t| t.join().unwrap_or(0)).sum();
    println!(
        "Throughput: {:.0} decisions/s on 2 threads (8k tokens × 64 endpoints, warm token cache)",
        total as f64 / window.as_secs_f64()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(envoy_overhead(if smoke {
        4
    } else if quick {
        200
    } else {
        1000
    }));
}
