//! The sidecar's cost, in one run (`cargo bench -p pd-proxy --bench overhead`):
//!
//! 1. Coordinator overhead p50/p99 of P/D requests (prefill simulator + decode simulator with
//!    real KV pulls), read per request from the `coordinator_overhead_ms` attribute of the
//!    exported `llm_d.pd_proxy.request` spans (so span work is included: conservative), at 1
//!    and 256 concurrent clients. Floor: p99 under 200 µs.
//! 2. The latency the sidecar adds to a decode-only request versus calling the decode
//!    simulator directly, non-streaming (total) and streaming (TTFT and total), at 1 and 256
//!    concurrent clients, tracing off.
//!
//! The simulators run with zero model time, so every microsecond measured is HTTP, JSON and
//! scheduling on this machine. `PD_BENCH_SCALE` (default 1.0) scales the request counts;
//! under `cargo test` the bench runs as a smoke test at 1 % scale.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::StreamExt;
use hdrhistogram::Histogram;
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::any_value::Value as AnyValue,
};
use serde_json::json;

const PRODUCER: &str = r#"{"kv_connector":"NixlConnector","kv_role":"kv_producer"}"#;
const CONSUMER: &str = r#"{"kv_connector":"NixlConnector","kv_role":"kv_consumer"}"#;

/// Coordinator overheads (µs) of exported request spans.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<f64>>>);

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut overheads = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for resource in &request.get_ref().resource_spans {
            for scope in &resource.scope_spans {
                for span in scope
                    .spans
                    .iter()
                    .filter(|s| s.name == "llm_d.pd_proxy.request")
                {
                    let overhead = span
                        .attributes
                        .iter()
                        .find(|kv| kv.key == "llm_d.pd_proxy.coordinator_overhead_ms")
                        .and_then(|kv| kv.value.as_ref()?.value.clone());
                    if let Some(AnyValue::DoubleValue(ms)) = overhead {
                        overheads.push(ms * 1000.0);
                    }
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

async fn sim(kv: &str) -> vllm_sim::Server {
    let env = vllm_sim::env::TestEnv(HashMap::from([
        (
            "VLLM_NIXL_SIDE_CHANNEL_HOST".to_owned(),
            "127.0.0.1".to_owned(),
        ),
        ("VLLM_NIXL_SIDE_CHANNEL_PORT".to_owned(), "0".to_owned()),
    ]));
    let args = [
        "vllm-sim",
        "--model",
        "m",
        "--port",
        "0",
        "--kv-transfer-config",
        kv,
    ];
    vllm_sim::spawn(vllm_sim::Config::parse(args, &env).expect("flags"))
        .await
        .expect("simulator")
}

async fn sidecar(
    decode: &vllm_sim::Server,
    extra: &[&str],
    env: &[(&str, &str)],
) -> pd_proxy::Server {
    let port = decode.addr().port().to_string();
    let mut args = vec![
        "pd-proxy",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--vllm-port",
        &port,
        "--allowed-prefill-hosts",
        "127.0.0.1",
    ];
    args.extend_from_slice(extra);
    let config =
        pd_proxy::Config::parse(args, &pd_proxy::env::TestEnv::from_pairs(env)).expect("flags");
    pd_proxy::spawn(config).await.expect("sidecar")
}

/// Per-request client measurements in µs.
#[derive(Default)]
struct Measured {
    ttft: Vec<u64>,
    total: Vec<u64>,
}

/// Runs `count` requests over `concurrency` workers.
async fn load(
    client: &reqwest::Client,
    url: &str,
    prefill: Option<String>,
    stream: bool,
    concurrency: usize,
    count: usize,
) -> Measured {
    let results = Arc::new(Mutex::new(Measured::default()));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, url, prefill, results, next) = (
            client.clone(),
            url.to_owned(),
            prefill.clone(),
            results.clone(),
            next.clone(),
        );
        workers.push(tokio::spawn(async move {
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < count {
                let body = json!({"prompt": "Measure the sidecar, not the model.", "max_tokens": 4, "stream": stream});
                let mut request = client.post(&url).json(&body);
                if let Some(target) = &prefill {
                    request = request.header("x-prefiller-host-port", target);
                }
                let start = Instant::now();
                let response = request.send().await.expect("request");
                assert!(response.status().is_success(), "{}", response.status());
                let mut chunks = response.bytes_stream();
                let mut ttft = None;
                while let Some(chunk) = chunks.next().await {
                    chunk.expect("chunk");
                    ttft.get_or_insert_with(|| start.elapsed());
                }
                let total = start.elapsed();
                let mut results = results.lock().unwrap_or_else(|e| e.into_inner());
                results.ttft.push(ttft.unwrap_or(total).as_micros() as u64);
                results.total.push(total.as_micros() as u64);
            }
        }));
    }
    for worker in workers {
        worker.await.expect("worker");
    }
    Arc::try_unwrap(results)
        .ok()
        .expect("workers done")
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
}

fn percentiles(values: &[u64]) -> (u64, u64) {
    let mut histogram = Histogram::<u64>::new(3).expect("histogram");
    for &value in values {
        histogram.record(value.max(1)).expect("record");
    }
    (
        histogram.value_at_quantile(0.5),
        histogram.value_at_quantile(0.99),
    )
}

#[allow(clippy::print_stdout)] // a benchmark reports on stdout
fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` does not: a smoke run then.
    let full = std::env::args().any(|arg| arg == "--bench");
    #[allow(clippy::disallowed_methods)] // a bench binary has no env.rs; one knob
    let scale: f64 = std::env::var("PD_BENCH_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 1.0 } else { 0.01 });
    let n = |base: usize| ((base as f64 * scale) as usize).max(10);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .build()
            .expect("client");
        let prefill = sim(PRODUCER).await;
        let decode = sim(CONSUMER).await;
        let target = prefill.addr().to_string();

        // 1. Coordinator overhead of P/D requests, per request from the spans.
        let sink = Sink::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let collector = format!("http://{}", listener.local_addr().expect("addr"));
        let service_sink = sink.clone();
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(service_sink))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await
        });
        println!("coordinator overhead of P/D requests (real KV pulls), per request:");
        println!("| clients | requests | p50 µs | p99 µs | p99 < 200 µs |");
        println!("|---|---|---|---|---|");
        for (concurrency, count) in [(1, n(1000)), (256, n(2560))] {
            sink.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
            let traced = sidecar(
                &decode,
                &["--tracing"],
                &[("OTEL_EXPORTER_OTLP_ENDPOINT", &collector), ("OTEL_TRACES_SAMPLER", "always_on")],
            )
            .await;
            let url = format!("{}/v1/completions", traced.url());
            load(&client, &url, Some(target.clone()), false, concurrency, count / 10).await;
            load(&client, &url, Some(target.clone()), false, concurrency, count).await;
            traced.shutdown().await;
            let overheads: Vec<u64> = sink
                .0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|us| us.round() as u64)
                .collect();
            let (p50, p99) = percentiles(&overheads);
            println!(
                "| {concurrency} | {} | {p50} | {p99} | {} |",
                overheads.len(),
                if p99 < 200 { "yes" } else { "NO" }
            );
        }

        // 2. Added latency of decode-only requests versus the decode simulator directly.
        let proxy = sidecar(&decode, &[], &[]).await;
        let via = format!("{}/v1/completions", proxy.url());
        let direct = format!("{}/v1/completions", decode.url());
        println!();
        println!("added latency, decode-only request through the sidecar vs the decode simulator directly:");
        println!("| mode | clients | metric | direct p50/p99 µs | sidecar p50/p99 µs | added p50/p99 µs | ratio p50 |");
        println!("|---|---|---|---|---|---|---|");
        for stream in [false, true] {
            for (concurrency, count) in [(1, n(2000)), (256, n(5120))] {
                // Warm both paths, then measure them interleaved in halves.
                load(&client, &direct, None, stream, concurrency, count / 10).await;
                load(&client, &via, None, stream, concurrency, count / 10).await;
                let mut direct_runs = Measured::default();
                let mut via_runs = Measured::default();
                for _ in 0..2 {
                    let d = load(&client, &direct, None, stream, concurrency, count / 2).await;
                    let v = load(&client, &via, None, stream, concurrency, count / 2).await;
                    direct_runs.ttft.extend(d.ttft);
                    direct_runs.total.extend(d.total);
                    via_runs.ttft.extend(v.ttft);
                    via_runs.total.extend(v.total);
                }
                let metrics: &[(&str, &Vec<u64>, &Vec<u64>)] = if stream {
                    &[("ttft", &direct_runs.ttft, &via_runs.ttft), ("total", &direct_runs.total, &via_runs.total)]
                } else {
                    &[("total", &direct_runs.total, &via_runs.total)]
                };
                for (metric, direct_values, via_values) in metrics {
                    let (d50, d99) = percentiles(direct_values);
                    let (v50, v99) = percentiles(via_values);
                    println!(
                        "| {} | {concurrency} | {metric} | {d50}/{d99} | {v50}/{v99} | {}/{} | {:.2} |",
                        if stream { "stream" } else { "non-stream" },
                        v50 as i64 - d50 as i64,
                        v99 as i64 - d99 as i64,
                        v50 as f64 / d50.max(1) as f64
                    );
                }
            }
        }
        proxy.shutdown().await;
        let _ = tokio::time::timeout(Duration::from_secs(10), async {
            let _ = prefill.shutdown().await;
            let _ = decode.shutdown().await;
        })
        .await;
    });
}
