//! The sidecar in front of a decode simulator, with prefill simulators named by the header:
//! KV really moves, true TTFT is what the client sees, failures are clear and counted.

use std::time::Duration;

use serde_json::json;

use crate::support::{
    CONSUMER, PRODUCER, eventually, post, requests, scrape_sidecar, scrape_sim, sidecar,
    sidecar_config, sidecar_with_env, sim, stream,
};

const TTFT_SUM: &str = "llm_d_inference_scheduler_pd_proxy_true_ttft_seconds_sum";
const PREFILL_SUM: &str = "llm_d_inference_scheduler_pd_proxy_prefill_duration_seconds_sum";
const OVERHEAD_SUM: &str = "llm_d_inference_scheduler_pd_proxy_coordinator_overhead_seconds_sum";

fn chat(content: &str, stream: bool) -> serde_json::Value {
    json!({"model": "test-model", "messages": [{"role": "user", "content": content}],
           "max_tokens": 6, "stream": stream})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disaggregated_requests_move_kv_and_true_ttft_matches_the_client() {
    // Two prefill pods with a 30 ms prefill; a decode pod whose role chunk precedes its first
    // token by 20 ms, so a sidecar that took the role chunk for a token would be caught.
    let prefill = [
        sim(Some(PRODUCER), &["--prefill-overhead", "30"]).await,
        sim(Some(PRODUCER), &["--prefill-overhead", "30"]).await,
    ];
    let decode = sim(
        Some(CONSUMER),
        &["--prefill-overhead", "20", "--inter-token-latency", "3"],
    )
    .await;
    let proxy = sidecar(&decode, &["--allowed-prefill-hosts", "127.0.0.1"]).await;
    let url = format!("{}/v1/chat/completions", proxy.url());
    const N: usize = 6;
    let mut client_ttft = 0.0;
    for i in 0..N {
        let target = prefill[i % 2].addr().to_string();
        let prompt = format!(
            "Request {i}: tell me about prefill and decode in {} words.",
            10 + i
        );
        let seen = stream(
            &url,
            &chat(&prompt, true),
            &[("x-prefiller-host-port", target)],
        )
        .await;
        assert_eq!(seen.status, 200, "{:?}", seen.events);
        assert!(!seen.text.is_empty());
        client_ttft += seen.ttft.as_secs_f64();
    }
    // Non-streaming works too; its first token reaches the client with the whole body.
    let started = std::time::Instant::now();
    let (status, body) = post(
        &format!("{}/v1/completions", proxy.url()),
        &json!({"prompt": "One more, not streamed.", "max_tokens": 3}),
        &[(
            "x-prefiller-host-port",
            format!("http://{}", prefill[0].addr()),
        )],
    )
    .await;
    client_ttft += started.elapsed().as_secs_f64();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["usage"]["completion_tokens"], 3);
    assert!(body["kv_transfer_params"].is_null());

    // Every disaggregated request moved its KV, none failed.
    let decode_metrics = scrape_sim(&decode).await;
    assert_eq!(
        decode_metrics.sum("vllm:nixl_xfer_time_seconds_count", &[]),
        (N + 1) as f64
    );
    assert!(decode_metrics.sum("vllm:nixl_bytes_transferred_sum", &[]) > 0.0);
    assert_eq!(
        decode_metrics.sum("vllm:nixl_num_failed_transfers_total", &[]),
        0.0
    );
    // Both prefill pods served and released their leases.
    for pod in &prefill {
        let metrics = scrape_sim(pod).await;
        assert!(metrics.sum("vllm:request_success_total", &[]) >= 3.0);
        assert_eq!(metrics.sum("vllm:nixl_num_kv_expired_reqs_total", &[]), 0.0);
    }
    let sidecar_metrics = scrape_sidecar(&proxy).await;
    assert_eq!(requests(&sidecar_metrics, "success"), (N + 1) as f64);
    assert_eq!(
        sidecar_metrics.sum(
            "llm_d_inference_scheduler_pd_proxy_requests_total",
            &[("connector", "nixlv2")]
        ),
        (N + 1) as f64
    );
    // The sidecar's true TTFT is the client's, within a few ms each (the client's clock also
    // covers its own connect and send).
    let proxy_ttft = sidecar_metrics.sum(TTFT_SUM, &[]);
    let per_request_gap = (client_ttft - proxy_ttft) / (N + 1) as f64;
    assert!(
        (-0.001..0.010).contains(&per_request_gap),
        "client TTFT {client_ttft:.4} s vs sidecar {proxy_ttft:.4} s over {} requests",
        N + 1
    );
    // True TTFT exceeds the decode pod's own TTFT by the prefill leg (and the sidecar's work).
    let decode_ttft = decode_metrics.sum("vllm:time_to_first_token_seconds_sum", &[]);
    let prefill_legs = sidecar_metrics.sum(PREFILL_SUM, &[]);
    let overhead = sidecar_metrics.sum(OVERHEAD_SUM, &[]);
    let true_ttft = sidecar_metrics.sum(TTFT_SUM, &[]);
    let unexplained = (true_ttft - decode_ttft - prefill_legs - overhead) / (N + 1) as f64;
    assert!(
        (0.0..0.010).contains(&unexplained),
        "true {true_ttft:.4} s = decode {decode_ttft:.4} + prefill {prefill_legs:.4} + overhead {overhead:.6} + {unexplained:.4} per request"
    );
    assert!(prefill_legs >= 0.030 * (N + 1) as f64);
    proxy.shutdown().await;
    decode.shutdown().await.unwrap();
    for pod in prefill {
        pod.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_the_header_reach_decode_unchanged() {
    let decode = sim(Some(CONSUMER), &[]).await;
    let proxy = sidecar(&decode, &[]).await;
    let (status, body) = post(
        &format!("{}/v1/completions", proxy.url()),
        &json!({"prompt": "No prefill pod named.", "max_tokens": 2}),
        &[("x-request-id", "plain-1".to_owned())],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["id"], "cmpl-plain-1");
    let streamed = stream(
        &format!("{}/v1/chat/completions", proxy.url()),
        &chat("Stream me.", true),
        &[],
    )
    .await;
    assert_eq!(streamed.status, 200);
    // Health is the sidecar's; other routes are the engine's.
    let health = crate::support::client()
        .get(format!("{}/health", proxy.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let models: serde_json::Value = crate::support::client()
        .get(format!("{}/v1/models", proxy.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["data"][0]["id"], "test-model");
    let metrics = scrape_sidecar(&proxy).await;
    assert_eq!(requests(&metrics, "decode_only"), 2.0);
    assert_eq!(requests(&metrics, "success"), 0.0);
    assert_eq!(
        scrape_sim(&decode)
            .await
            .sum("vllm:nixl_xfer_time_seconds_count", &[]),
        0.0
    );
    proxy.shutdown().await;
    decode.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefill_targets_outside_the_allow_list_are_refused() {
    let prefill = sim(Some(PRODUCER), &[]).await;
    let decode = sim(Some(CONSUMER), &[]).await;
    let target = prefill.addr().to_string();
    let header = [("x-prefiller-host-port", target.clone())];
    let body = json!({"prompt": "Call somewhere else.", "max_tokens": 2});
    // Protection on with nothing allowed refuses every target.
    let closed = sidecar(&decode, &["--enable-ssrf-protection"]).await;
    let (status, error) = post(&format!("{}/v1/completions", closed.url()), &body, &header).await;
    assert_eq!(status, 403, "{error}");
    assert_eq!(
        error["error"]["message"],
        "Forbidden: prefill target not allowed by SSRF protection"
    );
    assert_eq!(requests(&scrape_sidecar(&closed).await, "rejected"), 1.0);
    // Host allowed on another port only; a different host; a malformed target.
    let other_port = format!("127.0.0.1:{}", decode.addr().port());
    let narrow = sidecar(
        &decode,
        &[
            "--enable-ssrf-protection",
            "--allowed-prefill-hosts",
            &other_port,
        ],
    )
    .await;
    for (target, expected) in [
        (target.clone(), 403),
        ("169.254.169.254:80".to_owned(), 403),
        ("not a host".to_owned(), 400),
    ] {
        let (status, _) = post(
            &format!("{}/v1/completions", narrow.url()),
            &body,
            &[("x-prefiller-host-port", target.clone())],
        )
        .await;
        assert_eq!(status, expected, "{target}");
    }
    assert_eq!(requests(&scrape_sidecar(&narrow).await, "rejected"), 3.0);
    // The refused requests never reached the prefill pod.
    assert_eq!(
        scrape_sim(&prefill)
            .await
            .sum("vllm:request_success_total", &[]),
        0.0
    );
    // Off by default, as upstream: the target is called.
    let open = sidecar(&decode, &[]).await;
    let (status, answer) = post(&format!("{}/v1/completions", open.url()), &body, &header).await;
    assert_eq!(status, 200, "{answer}");
    open.shutdown().await;
    // The pool file is the allow-list, and it is re-read when it changes.
    let pool_file = std::env::temp_dir().join(format!("pd-proxy-pool-{}", uuid::Uuid::new_v4()));
    std::fs::write(&pool_file, format!("# prefill pods\n{target}\n")).unwrap();
    let pooled = sidecar_with_env(
        decode.addr().port(),
        &[
            "--enable-ssrf-protection",
            "--pool-refresh-interval",
            "20ms",
        ],
        &[("PD_PROXY_POOL_FILE", pool_file.to_str().unwrap())],
    )
    .await;
    let url = format!("{}/v1/completions", pooled.url());
    let (status, answer) = post(&url, &body, &header).await;
    assert_eq!(status, 200, "{answer}");
    std::fs::write(&pool_file, "10.1.2.3\n").unwrap();
    eventually("the pool file change to deny the target", || async {
        post(&url, &body, &header).await.0 == 403
    })
    .await;
    std::fs::remove_file(&pool_file).unwrap();
    for proxy in [closed, narrow, pooled] {
        proxy.shutdown().await;
    }
    prefill.shutdown().await.unwrap();
    decode.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefill_failures_give_clear_errors_and_are_counted() {
    let prefill = sim(Some(PRODUCER), &[]).await;
    let slow_prefill = sim(Some(PRODUCER), &["--prefill-overhead", "3000"]).await;
    let no_connector = sim(None, &[]).await;
    let decode = sim(Some(CONSUMER), &[]).await;
    let proxy = sidecar(
        &decode,
        &[
            "--allowed-prefill-hosts",
            "127.0.0.1",
            "--prefill-timeout",
            "150ms",
        ],
    )
    .await;
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("{}/v1/completions", proxy.url());
    let body = json!({"prompt": "Fail the prefill.", "max_tokens": 2});
    // (target, injected status, expected status, words in the message)
    let cases = [
        (
            prefill.addr().to_string(),
            Some("503"),
            502,
            "failed with status 503",
        ),
        (format!("127.0.0.1:{closed_port}"), None, 502, "unreachable"),
        (
            slow_prefill.addr().to_string(),
            None,
            504,
            "did not answer within",
        ),
        (
            no_connector.addr().to_string(),
            None,
            502,
            "no kv_transfer_params",
        ),
        (
            prefill.addr().to_string(),
            Some("400"),
            400,
            "Injected invalid request",
        ),
    ];
    for (target, inject, expected, words) in &cases {
        let mut headers = vec![("x-prefiller-host-port", target.clone())];
        if let Some(status) = inject {
            headers.push(("x-return-error", (*status).to_owned()));
        }
        let started = std::time::Instant::now();
        let (status, error) = post(&url, &body, &headers).await;
        assert_eq!(status, *expected, "{target}: {error}");
        let message = error["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(words), "{target}: {message}");
        assert_eq!(error["error"]["code"], *expected);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "never a hung request"
        );
    }
    let metrics = scrape_sidecar(&proxy).await;
    assert_eq!(requests(&metrics, "prefill_error"), cases.len() as f64);
    assert_eq!(requests(&metrics, "success"), 0.0);
    assert_eq!(
        scrape_sim(&decode)
            .await
            .sum("vllm:request_success_total", &[]),
        0.0,
        "nothing reached decode"
    );
    // With the local fallback, the decode pod prefills the request itself.
    let fallback = sidecar(
        &decode,
        &[
            "--allowed-prefill-hosts",
            "127.0.0.1",
            "--prefill-fallback",
            "local",
        ],
    )
    .await;
    let (status, answer) = post(
        &format!("{}/v1/completions", fallback.url()),
        &body,
        &[("x-prefiller-host-port", no_connector.addr().to_string())],
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        requests(&scrape_sidecar(&fallback).await, "prefill_fallback"),
        1.0
    );
    assert_eq!(
        scrape_sim(&decode)
            .await
            .sum("vllm:nixl_xfer_time_seconds_count", &[]),
        0.0
    );
    proxy.shutdown().await;
    fallback.shutdown().await;
    for server in [prefill, slow_prefill, no_connector, decode] {
        server.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decode_engine_that_dies_mid_stream_ends_with_an_error_event() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A decode engine that sends one token event, then dies.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = vec![0u8; 64 * 1024];
                let _ = socket.read(&mut request).await;
                let event = "data: {\"choices\":[{\"index\":0,\"text\":\"Hi\",\"finish_reason\":null}]}\n\n";
                let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
                let chunk = format!("{:x}\r\n{event}\r\n", event.len());
                let _ = socket.write_all(format!("{head}{chunk}").as_bytes()).await;
                // Dropping the socket mid-body is the engine dying.
            });
        }
    });
    let proxy = sidecar_with_env(port, &[], &[]).await;
    let seen = stream(
        &format!("{}/v1/completions", proxy.url()),
        &json!({"prompt": "Die on me.", "max_tokens": 5, "stream": true}),
        &[],
    )
    .await;
    assert_eq!(seen.status, 200);
    assert_eq!(seen.text, "Hi");
    let last = seen.events.last().unwrap();
    assert_eq!(last["error"]["code"], 502, "{last}");
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("stream broke")
    );
    eventually("the decode error to be counted", || async {
        requests(&scrape_sidecar(&proxy).await, "decode_error") == 1.0
    })
    .await;
    proxy.shutdown().await;
}

/// With `--inference-pool`, the allow-list is the pool's ready pods, followed through the
/// Kubernetes API (`test_support::kube_api` on loopback): a pod that stops being ready stops
/// being a prefill target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_allow_list_follows_the_inference_pool() {
    use test_support::kube_api::{KubeApi, inference_pools, pods};
    let prefill = sim(Some(PRODUCER), &[]).await;
    let decode = sim(Some(CONSUMER), &[]).await;
    let api = KubeApi::start().await;
    let pod = |ready: bool| {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "prefill-0", "namespace": "llm-d", "labels": {"llm-d.ai/role": "prefill"}},
            "status": {"podIP": "127.0.0.1", "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
        })
    };
    api.apply(
        &inference_pools("llm-d", "inference.networking.k8s.io", "v1"),
        json!({
            "apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
            "metadata": {"name": "pool", "namespace": "llm-d"},
            "spec": {"selector": {"matchLabels": {"llm-d.ai/role": "prefill"}}, "targetPorts": [{"number": 8000}]},
        }),
    );
    api.apply(&pods("llm-d"), pod(true));
    let mut config = sidecar_config(
        decode.addr().port(),
        &["--enable-ssrf-protection", "--inference-pool", "llm-d/pool"],
        &[],
    );
    config.kube_client = Some(pd_proxy::config::KubeClient(api.client()));
    let proxy = pd_proxy::spawn(config).await.expect("sidecar starts");

    let url = format!("{}/v1/completions", proxy.url());
    let body = json!({"prompt": "Prefill where the pool says.", "max_tokens": 2});
    // Any port of a pool pod's IP is allowed, as upstream.
    let header = [("x-prefiller-host-port", prefill.addr().to_string())];
    eventually("the pool's pod to be allowed", || async {
        post(&url, &body, &header).await.0 == 200
    })
    .await;
    api.apply(&pods("llm-d"), pod(false));
    eventually("the unready pod to be refused", || async {
        post(&url, &body, &header).await.0 == 403
    })
    .await;
    let metrics = scrape_sidecar(&proxy).await;
    assert!(metrics.sum("llm_d_pool_watch_events_total", &[]) >= 4.0);
    assert_eq!(metrics.sum("llm_d_pool_selected_endpoints", &[]), 0.0);
    proxy.shutdown().await;
    prefill.shutdown().await.unwrap();
    decode.shutdown().await.unwrap();
}
