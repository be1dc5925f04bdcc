//! Integration tests against the in-process vLLM simulator (and, for dying peers, a raw TCP
//! server on 127.0.0.1:0): every pattern sends what it should, counts match what the server
//! saw, and errors or cut streams are reported by status.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use load_gen::{
    Api, Arrival, ClosedLoop, Config, ConsoleMode, Distribution, FailureKind, Limit, Load, Mix,
    OpenLoop, Outputs, Pattern, PromptClass, PromptFamily, PromptSizes, PromptSource,
    RequestRecord, Workload,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

const MODEL: &str = "test-model";

async fn simulator(extra: &[&str]) -> vllm_sim::Server {
    let mut args = vec![
        "vllm-sim",
        "--model",
        MODEL,
        "--port",
        "0",
        "--max-num-seqs",
        "64",
    ];
    args.extend_from_slice(extra);
    let config = vllm_sim::Config::from_args(args).expect("simulator flags");
    vllm_sim::spawn(config).await.expect("simulator starts")
}

/// A scratch directory for one test's output files.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("load-gen-it-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn base_config(endpoint: String, dir: &Path) -> Config {
    let mut config = Config::pd_concurrent(&endpoint, MODEL, 6, 1.0);
    config.console = ConsoleMode::Quiet;
    config.per_request_lines = false;
    config.prompt_sizes = PromptSizes {
        short: 8,
        medium: 40,
        long: 120,
        very_long: 300,
    };
    config.request_timeout = Duration::from_secs(30);
    config.outputs = Outputs {
        jsonl: Some(dir.join("requests.jsonl")),
        summary_json: Some(dir.join("summary.json")),
        html: Some(dir.join("report.html")),
    };
    config
}

fn mix(load: Load, prompt: PromptSource, stream_ratio: f64, api: Api) -> Workload {
    Workload::Mix(Mix {
        name: "test".to_owned(),
        load,
        api,
        prompt,
        output_tokens: Distribution::Uniform { min: 3, max: 9 },
        stream_ratio,
        temperature: 0.0,
    })
}

fn records(dir: &Path) -> Vec<RequestRecord> {
    let text = std::fs::read_to_string(dir.join("requests.jsonl")).expect("jsonl written");
    text.lines()
        .map(|line| serde_json::from_str(line).expect("a record per line"))
        .collect()
}

/// `GET /metrics` over a fresh connection.
async fn scrape(server: &vllm_sim::Server) -> String {
    let mut stream = TcpStream::connect(server.addr()).await.expect("connect");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: sim\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    response
}

/// Sum of the samples of `name` whose labels contain every `label="value"` in `labels`.
fn metric(exposition: &str, name: &str, labels: &[&str]) -> f64 {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|line| labels.iter().all(|label| line.contains(label)))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pd_concurrent_patterns_send_what_they_should() {
    let server = simulator(&["--inter-token-latency", "1"]).await;
    let dir = scratch("pd");
    let mut config = base_config(format!("{}/v1", server.url()), &dir);
    let Workload::PdConcurrent(pd) = &mut config.workload else {
        unreachable!("pd_concurrent config")
    };
    pd.stagger = Duration::from_millis(1);
    pd.pause_scale = 0.05;
    config.limit = Limit {
        duration: None,
        requests: Some(60),
    };
    let sizes = config.prompt_sizes;
    let report = load_gen::run(config).await.expect("run");

    // Counts: the report, the JSON lines and the server agree, with no off-by-one.
    let all = records(&dir);
    assert_eq!(report.total, 60);
    assert_eq!(all.len(), 60);
    assert_eq!(
        (report.successful, report.failed),
        (60, 0),
        "{:?}",
        report.failures
    );
    let exposition = scrape(&server).await;
    let served = metric(
        &exposition,
        "http_requests_total",
        &["handler=\"/v1/chat/completions\"", "status=\"2xx\""],
    );
    assert_eq!(served, 60.0);
    assert_eq!(metric(&exposition, "vllm:request_success_total", &[]), 60.0);
    let usage_prompt: u64 = all.iter().filter_map(|r| r.usage_prompt_tokens).sum();
    assert_eq!(
        metric(&exposition, "vllm:prompt_tokens_total", &[]),
        usage_prompt as f64
    );

    // The chat template adds about the same number of tokens to every single-message prompt
    // (one more when the content's last character merges with the template's text), so the
    // server's count minus ours stays within one token: our prompt sizes are exact. The
    // completions test checks exact equality without a template.
    let overheads: std::collections::BTreeSet<u64> = all
        .iter()
        .map(|r| r.usage_prompt_tokens.expect("usage") - r.prompt_tokens as u64)
        .collect();
    let (low, high) = (overheads.first().copied(), overheads.last().copied());
    assert!(
        high.zip(low).is_some_and(|(h, l)| h - l <= 1 && l > 0),
        "{overheads:?}"
    );
    let mut usage_by_prompt = BTreeMap::new();
    for record in &all {
        let usage = usage_by_prompt
            .entry(record.prompt_chars)
            .or_insert(record.usage_prompt_tokens);
        assert_eq!(
            *usage, record.usage_prompt_tokens,
            "the same prompt is counted the same"
        );
    }

    let mut by_worker: BTreeMap<u32, Vec<&RequestRecord>> = BTreeMap::new();
    for record in &all {
        by_worker
            .entry(record.worker.expect("closed loop"))
            .or_default()
            .push(record);
    }
    assert_eq!(by_worker.len(), 6, "every worker ran");
    for (worker, records) in &mut by_worker {
        records.sort_by_key(|r| r.worker_request);
        let pattern = Pattern::for_worker(*worker);
        for (idx, record) in records.iter().enumerate() {
            let n = idx as u64 + 1;
            assert_eq!(record.worker_request, Some(n));
            assert_eq!(record.pattern, pattern.name());
            let prefix = format!("worker{worker}-req{n}-");
            let suffix = record
                .request_id
                .strip_prefix(&prefix)
                .expect("X-Request-ID shape");
            assert!(suffix.len() == 7 && suffix.bytes().all(|b| b.is_ascii_digit()));
            assert_eq!(record.trace_id.len(), 32);
            assert_eq!(
                record.usage_completion_tokens,
                Some(u64::from(record.max_tokens))
            );
            let class_tokens = |class| sizes.tokens(class) as usize;
            match pattern {
                Pattern::LongIslShortOsl if n.is_multiple_of(3) => {
                    assert_eq!(
                        (record.prompt_tokens, record.max_tokens),
                        (class_tokens(PromptClass::VeryLong), 50)
                    );
                }
                Pattern::LongIslShortOsl => {
                    assert_eq!(
                        (record.prompt_tokens, record.max_tokens),
                        (class_tokens(PromptClass::Long), 75)
                    );
                }
                Pattern::LongIslLongOsl => {
                    assert_eq!(record.prompt_tokens, class_tokens(PromptClass::Long));
                    assert!((150..=249).contains(&record.max_tokens));
                }
                Pattern::MixedBalanced => {
                    let class = match n % 5 {
                        0 | 1 => PromptClass::Medium,
                        2 => PromptClass::Long,
                        3 => PromptClass::Short,
                        _ => PromptClass::VeryLong,
                    };
                    assert_eq!(record.prompt_tokens, class_tokens(class), "n = {n}");
                }
                Pattern::BurstyLong => {
                    assert_eq!(record.prompt_tokens, class_tokens(PromptClass::Long));
                    assert!((50..=149).contains(&record.max_tokens));
                }
                Pattern::StreamingFocused => {
                    assert_eq!(record.prompt_tokens, class_tokens(PromptClass::Medium));
                }
            }
            // Only the streaming pattern streams, and its streams are measured per token.
            assert_eq!(record.stream, pattern == Pattern::StreamingFocused);
            if record.stream {
                assert!(record.ttft_ms.is_some());
                assert_eq!(
                    record.itl_ms.len() + 1,
                    record.max_tokens as usize,
                    "one gap per token after the first"
                );
            } else {
                assert!(record.ttft_ms.is_none() && record.itl_ms.is_empty());
            }
            // The pause after the previous request (scaled by 0.05) was respected.
            if idx > 0 {
                let previous = records[idx - 1];
                let mut rng_free_pause = match pattern {
                    Pattern::LongIslShortOsl => 300.0,
                    Pattern::LongIslLongOsl | Pattern::StreamingFocused => 500.0,
                    Pattern::MixedBalanced => 400.0,
                    Pattern::BurstyLong if (n - 1) % 4 == 3 => 3000.0,
                    Pattern::BurstyLong => 100.0,
                };
                rng_free_pause *= 0.05;
                let gap = record.start_ms - (previous.start_ms + previous.e2e_ms);
                assert!(
                    gap >= rng_free_pause - 0.001,
                    "worker {worker} n {n}: gap {gap} < {rng_free_pause}"
                );
            }
        }
    }
    assert_eq!(report.workers.iter().map(|w| w.requests).sum::<u64>(), 60);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).expect("summary"))
            .expect("json");
    assert_eq!(summary["total"], 60);
    assert!(
        std::fs::read_to_string(dir.join("report.html"))
            .expect("html")
            .contains("<svg")
    );
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_errors_are_counted_by_status() {
    let server = simulator(&[]).await;
    let dir = scratch("errors");
    let mut config = base_config(format!("{}/v1", server.url()), &dir);
    config.workload = mix(
        Load::Closed(ClosedLoop {
            workers: 3,
            pause: Duration::ZERO,
        }),
        PromptSource::Tokens(Distribution::Fixed(20)),
        0.5,
        Api::Chat,
    );
    config.limit = Limit {
        duration: None,
        requests: Some(12),
    };
    config.headers = vec![("X-Return-Error".to_owned(), "503".to_owned())];
    let report = load_gen::run(config).await.expect("run");
    assert_eq!(
        (report.total, report.successful, report.failed),
        (12, 0, 12)
    );
    assert_eq!(
        report.failures,
        BTreeMap::from([("HTTP 503".to_owned(), 12)])
    );
    for record in records(&dir) {
        assert_eq!(
            (record.status, record.failure),
            (Some(503), Some(FailureKind::Http))
        );
        assert!(
            record
                .error
                .as_deref()
                .is_some_and(|e| e.starts_with("HTTP 503"))
        );
    }
    let served = metric(
        &scrape(&server).await,
        "http_requests_total",
        &["status=\"5xx\""],
    );
    assert_eq!(served, 12.0);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_failures_match_the_servers_counts() {
    let server = simulator(&["--failure-injection-rate", "40", "--seed", "3"]).await;
    let dir = scratch("inject");
    let mut config = base_config(format!("{}/v1", server.url()), &dir);
    config.workload = mix(
        Load::Closed(ClosedLoop {
            workers: 4,
            pause: Duration::ZERO,
        }),
        PromptSource::Tokens(Distribution::Uniform { min: 5, max: 50 }),
        0.5,
        Api::Chat,
    );
    config.limit = Limit {
        duration: None,
        requests: Some(80),
    };
    let report = load_gen::run(config).await.expect("run");
    let exposition = scrape(&server).await;
    let ok = metric(
        &exposition,
        "http_requests_total",
        &["handler=\"/v1/chat/completions\"", "status=\"2xx\""],
    );
    let errors = metric(
        &exposition,
        "http_requests_total",
        &["handler=\"/v1/chat/completions\"", "status=\"4xx\""],
    ) + metric(
        &exposition,
        "http_requests_total",
        &["handler=\"/v1/chat/completions\"", "status=\"5xx\""],
    );
    assert_eq!(report.total, 80);
    assert!(report.failed > 0 && report.successful > 0, "{report:?}");
    assert_eq!(report.successful as f64, ok);
    assert_eq!(report.failed as f64, errors);
    assert_eq!(report.failures.values().sum::<u64>(), report.failed);
    assert!(
        report
            .failures
            .keys()
            .all(|k| k.starts_with("HTTP 4") || k.starts_with("HTTP 5"))
    );
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_prompts_are_exactly_as_long_as_asked() {
    let server = simulator(&[]).await;
    let dir = scratch("completions");
    let mut config = base_config(format!("{}/v1", server.url()), &dir);
    config.workload = mix(
        Load::Closed(ClosedLoop {
            workers: 2,
            pause: Duration::ZERO,
        }),
        PromptSource::Family(PromptFamily::Document {
            documents: 2,
            document_tokens: 200,
            question_tokens: Distribution::Uniform { min: 5, max: 15 },
        }),
        1.0,
        Api::Completions,
    );
    config.limit = Limit {
        duration: None,
        requests: Some(10),
    };
    let report = load_gen::run(config).await.expect("run");
    assert_eq!(
        (report.total, report.successful),
        (10, 10),
        "{:?}",
        report.failures
    );
    for record in records(&dir) {
        assert!(record.stream);
        // No chat template on /v1/completions: the server counts exactly our tokens.
        assert_eq!(
            record.usage_prompt_tokens,
            Some(record.prompt_tokens as u64)
        );
        assert_eq!(
            record.usage_completion_tokens,
            Some(u64::from(record.max_tokens))
        );
        assert_eq!(record.pattern, "document");
    }
    assert_eq!(report.patterns["document"].streamed, 10);
    assert!(report.overall.ttft_ms.is_some());
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_follows_its_schedule() {
    let server = simulator(&[]).await;
    let dir = scratch("open");
    let mut config = base_config(format!("{}/v1", server.url()), &dir);
    config.workload = mix(
        Load::Open(OpenLoop::constant_rate(Arrival::Constant, 200.0)),
        PromptSource::Tokens(Distribution::Fixed(10)),
        0.0,
        Api::Chat,
    );
    config.limit = Limit {
        duration: None,
        requests: Some(100),
    };
    let report = load_gen::run(config).await.expect("run");
    assert_eq!((report.total, report.successful), (100, 100));
    let lateness = report.schedule_lateness_ms.expect("lateness measured");
    assert_eq!(lateness.count, 100);
    let mut scheduled: Vec<f64> = records(&dir)
        .iter()
        .map(|r| r.scheduled_ms.expect("scheduled"))
        .collect();
    scheduled.sort_by(f64::total_cmp);
    for (k, at) in scheduled.iter().enumerate() {
        assert!((at - 5.0 * k as f64).abs() < 0.01, "arrival {k} at {at} ms");
    }
    assert!(
        records(&dir)
            .iter()
            .all(|r| r.worker.is_none() && r.lateness_ms.is_some_and(|l| l >= 0.0))
    );
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_cancels_in_flight_and_still_writes_the_summary() {
    // Streams of 2,000 tokens at 20 ms each never finish within the test.
    let server = simulator(&["--inter-token-latency", "20", "--max-model-len", "8192"]).await;
    let dir = scratch("shutdown");
    let mut config = base_config(format!("{}/v1", server.url()), &dir);
    let mut workload = mix(
        Load::Closed(ClosedLoop {
            workers: 2,
            pause: Duration::ZERO,
        }),
        PromptSource::Tokens(Distribution::Fixed(10)),
        1.0,
        Api::Chat,
    );
    if let Workload::Mix(mix) = &mut workload {
        mix.output_tokens = Distribution::Fixed(2000);
    }
    config.workload = workload;
    config.limit = Limit {
        duration: Some(Duration::from_secs(600)),
        requests: None,
    };
    let metrics_server = &server;
    let both_running = async move {
        // Poll the server until both requests are in its running batch.
        loop {
            let running = metric(
                &scrape(metrics_server).await,
                "vllm:num_requests_running",
                &[],
            );
            if running >= 2.0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let report = tokio::time::timeout(
        Duration::from_secs(60),
        load_gen::run_until(config, both_running),
    )
    .await
    .expect("shutdown is prompt")
    .expect("run");
    assert!(report.interrupted);
    assert_eq!(report.cancelled, 2);
    assert_eq!(report.total, 0, "cancelled requests are not failures");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).expect("summary"))
            .expect("json");
    assert_eq!(summary["interrupted"], true);
    assert_eq!(summary["cancelled"], 2);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_fails_clearly_when_the_endpoint_is_down() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let dir = scratch("preflight");
    let config = base_config(format!("http://{addr}/v1"), &dir);
    let error = load_gen::run(config).await.expect_err("nothing listens");
    let text = error.to_string();
    assert!(
        text.starts_with(&format!(
            "cannot reach endpoint http://{addr}/v1: GET /models failed"
        )),
        "{text}"
    );
}

/// A peer that answers every request with `head` + `body` and closes: a dying pod.
async fn dying_peer(head_and_body: &'static [u8]) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                // Read the request head and body (the body is small; one read suffices
                // once the blank line arrived).
                let mut request = Vec::new();
                let mut buf = [0u8; 8192];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream.write_all(head_and_body).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

fn dying_config(addr: std::net::SocketAddr, dir: &Path, stream_ratio: f64) -> Config {
    let mut config = base_config(format!("http://{addr}/v1"), dir);
    config.preflight = false;
    config.workload = mix(
        Load::Closed(ClosedLoop {
            workers: 1,
            pause: Duration::ZERO,
        }),
        PromptSource::Tokens(Distribution::Fixed(5)),
        stream_ratio,
        Api::Chat,
    );
    config.limit = Limit {
        duration: None,
        requests: Some(3),
    };
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cut_mid_way_is_a_failure_with_its_status() {
    let addr = dying_peer(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n\
          30\r\ndata: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n\r\n",
    )
    .await;
    let dir = scratch("cut");
    let report = load_gen::run(dying_config(addr, &dir, 1.0))
        .await
        .expect("run");
    assert_eq!((report.total, report.failed), (3, 3));
    assert_eq!(
        report.failures,
        BTreeMap::from([("HTTP 200 stream_incomplete".to_owned(), 3)])
    );
    for record in records(&dir) {
        assert_eq!(record.status, Some(200));
        assert_eq!(record.failure, Some(FailureKind::StreamIncomplete));
        assert!(
            record.ttft_ms.is_some(),
            "the token before the cut was seen"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_closed_before_the_response_is_reported() {
    let addr = dying_peer(b"").await;
    let dir = scratch("closed");
    let report = load_gen::run(dying_config(addr, &dir, 0.0))
        .await
        .expect("run");
    assert_eq!((report.total, report.failed), (3, 3));
    assert_eq!(
        report.failures,
        BTreeMap::from([("connection_closed".to_owned(), 3)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_cut_before_its_length_is_reported() {
    let addr = dying_peer(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{\"usage\":").await;
    let dir = scratch("body");
    let report = load_gen::run(dying_config(addr, &dir, 0.0))
        .await
        .expect("run");
    assert_eq!(
        report.failures,
        BTreeMap::from([("HTTP 200 body_incomplete".to_owned(), 3)])
    );
}
