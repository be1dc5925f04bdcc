//! End to end as in the demo topology: a real Envoy asks the EPP (ext_proc) where to send
//! each request; the EPP's `pd-profile-handler` picks a prefill pod (two simulators) and the
//! decode pod, whose port is the sidecar in front of a decode simulator. Every request moves
//! its KV, true TTFT is what the client saw, one trace holds every hop, and an injected
//! prefill failure reaches the client as a clear, counted error.
//!
//! Needs Envoy: `ENVOY_BIN`, or `scripts/install-tools.sh` (fails, not skips, without it).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::StreamExt;
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    trace::v1::Span,
};
use serde_json::json;
use test_support::envoy::Envoy;

const PATIENCE: Duration = Duration::from_secs(20);
const PRODUCER: &str = r#"{"kv_connector":"NixlConnector","kv_role":"kv_producer"}"#;
const CONSUMER: &str = r#"{"kv_connector":"NixlConnector","kv_role":"kv_consumer"}"#;
/// The guide's P/D config with threshold 0: every request is disaggregated.
const EPP_CONFIG: &str = "
plugins:
- type: prefill-header-handler
- type: prefill-filter
- type: decode-filter
- type: queue-scorer
- type: pd-profile-handler
  parameters: { threshold: 0 }
schedulingProfiles:
- name: prefill
  plugins: [{pluginRef: prefill-filter}, {pluginRef: queue-scorer}]
- name: decode
  plugins: [{pluginRef: decode-filter}, {pluginRef: queue-scorer}]
";

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<(String, Span)>>>);

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.0.lock().unwrap();
        for resource in &request.get_ref().resource_spans {
            let service = resource
                .resource
                .as_ref()
                .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
                .and_then(|kv| kv.value.as_ref()?.value.clone())
                .map(|v| format!("{v:?}"))
                .unwrap_or_default();
            for scope in &resource.scope_spans {
                spans.extend(scope.spans.iter().map(|s| (service.clone(), s.clone())));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn sim(kv: &str, otlp: &str, extra: &[&str]) -> vllm_sim::Server {
    let mut args = vec![
        "vllm-sim",
        "--model",
        "test-model",
        "--port",
        "0",
        "--kv-transfer-config",
        kv,
        "--otlp-traces-endpoint",
        otlp,
    ];
    args.extend_from_slice(extra);
    let env = vllm_sim::env::TestEnv(HashMap::from([
        (
            "VLLM_NIXL_SIDE_CHANNEL_HOST".to_owned(),
            "127.0.0.1".to_owned(),
        ),
        ("VLLM_NIXL_SIDE_CHANNEL_PORT".to_owned(), "0".to_owned()),
    ]));
    vllm_sim::spawn(vllm_sim::Config::parse(args, &env).expect("flags"))
        .await
        .expect("simulator starts")
}

async fn scrape(url: &str) -> String {
    client()
        .get(url)
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("body")
}

fn metric(text: &str, name: &str, label: Option<&str>) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.split([' ', '{']).next() == Some(name) && label.is_none_or(|l| line.contains(l))
        })
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_epp_sidecar_and_simulators_as_in_the_demo() {
    let sink = Sink::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let otlp_addr = listener.local_addr().unwrap();
    let otlp = format!("http://{otlp_addr}");
    let service_sink = sink.clone();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(service_sink))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
    });
    let prefill = [
        sim(PRODUCER, &otlp, &["--prefill-overhead", "25"]).await,
        sim(PRODUCER, &otlp, &["--prefill-overhead", "25"]).await,
    ];
    let decode = sim(
        CONSUMER,
        &otlp,
        &["--prefill-overhead", "10", "--inter-token-latency", "3"],
    )
    .await;
    let prefill_hosts: Vec<String> = prefill.iter().map(|p| p.addr().to_string()).collect();
    let decode_port = decode.addr().port().to_string();
    let sidecar_config = pd_proxy::Config::parse(
        [
            "pd-proxy",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--vllm-port",
            &decode_port,
            "--metrics-addr",
            "127.0.0.1:0",
            "--tracing",
            "--allowed-prefill-hosts",
            &prefill_hosts.join(","),
        ],
        &pd_proxy::env::TestEnv::from_pairs(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &otlp),
            ("OTEL_SERVICE_NAME", "pd-sidecar"),
        ]),
    )
    .expect("sidecar flags");
    let sidecar = pd_proxy::spawn(sidecar_config)
        .await
        .expect("sidecar starts");
    let mut epp_args = vec![
        "epp".to_owned(),
        "--host".to_owned(),
        "127.0.0.1".to_owned(),
        "--grpc-port".to_owned(),
        "0".to_owned(),
        "--grpc-health-port".to_owned(),
        "0".to_owned(),
        "--metrics-port".to_owned(),
        "0".to_owned(),
        "--refresh-metrics-interval".to_owned(),
        "50ms".to_owned(),
        "--config-text".to_owned(),
        EPP_CONFIG.to_owned(),
        "--endpoint".to_owned(),
        format!("{};llm-d.ai/role=decode", sidecar.addr()),
    ];
    for host in &prefill_hosts {
        epp_args.push("--endpoint".to_owned());
        epp_args.push(format!("{host};llm-d.ai/role=prefill"));
    }
    let epp_env = epp::env::TestEnv(HashMap::from([
        ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), otlp.clone()),
        ("OTEL_SERVICE_NAME".to_owned(), "epp".to_owned()),
    ]));
    let epp = epp::spawn(epp::Config::parse(epp_args, &epp_env).expect("EPP flags"))
        .await
        .expect("EPP starts");
    let deadline = Instant::now() + PATIENCE;
    while epp.datastore().candidates().len() < 3 {
        assert!(
            Instant::now() < deadline,
            "all three pods become candidates"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let envoy = Envoy::start(epp.addr(), sidecar.addr(), Some(otlp_addr)).await;
    let url = format!("{}/v1/completions", envoy.gateway_url());

    // Streamed requests through the whole path; the client measures TTFT. One keep-alive
    // client, as a real one; the first request only warms the path up (Envoy creates the
    // original-destination host and its connection pool on first use, ~50 ms here) and is
    // left out of the comparison by reading the sidecar's histogram after it.
    const N: usize = 6;
    let trace_id = "5bf92f3577b34da6a3ce929d0e0e4736";
    let gateway_client = client();
    let streamed = |i: usize| {
        let gateway_client = gateway_client.clone();
        let url = url.clone();
        async move {
            let traceparent = format!("00-{trace_id}-00f067aa0ba902b{i}-01");
            let start = Instant::now();
            let response = gateway_client
                .post(&url)
                .header("traceparent", traceparent)
                .json(&json!({"model": "test-model", "prompt": format!("Request {i} through the gateway, prefilled elsewhere."),
                              "max_tokens": 5, "stream": true}))
                .send()
                .await
                .expect("Envoy answers");
            assert_eq!(response.status(), 200);
            let mut chunks = response.bytes_stream();
            let mut ttft = None;
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk.expect("chunk");
                if ttft.is_none()
                    && std::str::from_utf8(&chunk)
                        .unwrap_or_default()
                        .contains("\"text\":\"")
                {
                    ttft = Some(start.elapsed());
                }
            }
            ttft.expect("a token").as_secs_f64()
        }
    };
    let sidecar_metrics_url = format!("http://{}/metrics", sidecar.metrics_addr().unwrap());
    streamed(N).await;
    let warm_true_ttft = metric(
        &scrape(&sidecar_metrics_url).await,
        "llm_d_inference_scheduler_pd_proxy_true_ttft_seconds_sum",
        None,
    );
    let mut client_ttft = 0.0;
    for i in 0..N {
        client_ttft += streamed(i).await;
    }

    let sidecar_metrics = scrape(&sidecar_metrics_url).await;
    let decode_metrics = scrape(&format!("{}/metrics", decode.url())).await;
    let successes = metric(
        &sidecar_metrics,
        "llm_d_inference_scheduler_pd_proxy_requests_total",
        Some("outcome=\"success\""),
    );
    assert_eq!(
        successes,
        (N + 1) as f64,
        "every request was disaggregated by the EPP"
    );
    assert_eq!(
        metric(&decode_metrics, "vllm:nixl_xfer_time_seconds_count", None),
        (N + 1) as f64,
        "one KV pull per P/D request"
    );
    assert_eq!(
        metric(
            &decode_metrics,
            "vllm:nixl_num_failed_transfers_total",
            None
        ),
        0.0
    );
    for pod in &prefill {
        let text = scrape(&format!("{}/metrics", pod.url())).await;
        assert_eq!(
            metric(&text, "vllm:nixl_num_kv_expired_reqs_total", None),
            0.0
        );
    }
    let all_true_ttft = metric(
        &sidecar_metrics,
        "llm_d_inference_scheduler_pd_proxy_true_ttft_seconds_sum",
        None,
    );
    let true_ttft = all_true_ttft - warm_true_ttft;
    // The client's TTFT also holds the gateway's part: Envoy and the EPP's ext_proc exchange
    // before the sidecar sees the request (4-6 ms per request in these debug builds, about
    // 1 ms in release: the EPP's decision benchmark). The sidecar's figure starts at its own
    // arrival, so it is at most what the client saw and within a few ms of it.
    let gap = (client_ttft - true_ttft) / N as f64;
    assert!(
        (0.0..0.012).contains(&gap),
        "client {client_ttft:.4} s, sidecar {true_ttft:.4} s: {gap:.4} s per request through Envoy and the EPP"
    );
    let decode_ttft = metric(
        &decode_metrics,
        "vllm:time_to_first_token_seconds_sum",
        None,
    );
    let prefill_legs = metric(
        &sidecar_metrics,
        "llm_d_inference_scheduler_pd_proxy_prefill_duration_seconds_sum",
        None,
    );
    assert!(prefill_legs >= 0.025 * (N + 1) as f64);
    let beyond = (all_true_ttft - decode_ttft - prefill_legs) / (N + 1) as f64;
    assert!(
        (0.0..0.010).contains(&beyond),
        "true TTFT {all_true_ttft:.4} s = decode TTFT {decode_ttft:.4} s + prefill {prefill_legs:.4} s + {beyond:.4} s each"
    );

    // An injected prefill failure: a clear vLLM-shaped error and a counted failure.
    let response = client()
        .post(&url)
        .header("x-return-error", "503")
        .json(&json!({"model": "test-model", "prompt": "Fail my prefill.", "max_tokens": 2}))
        .send()
        .await
        .expect("Envoy answers");
    assert_eq!(response.status(), 502);
    let error: serde_json::Value = response.json().await.unwrap();
    let message = error["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("prefill on 127.0.0.1:") && message.contains("503"),
        "{message}"
    );
    let sidecar_metrics = scrape(&format!(
        "http://{}/metrics",
        sidecar.metrics_addr().unwrap()
    ))
    .await;
    assert_eq!(
        metric(
            &sidecar_metrics,
            "llm_d_inference_scheduler_pd_proxy_requests_total",
            Some("outcome=\"prefill_error\"")
        ),
        1.0
    );

    // One trace per request holds gateway, EPP, sidecar, prefill and decode spans.
    drop(envoy);
    sidecar.shutdown().await;
    epp.shutdown().await;
    for pod in prefill {
        pod.shutdown().await.unwrap();
    }
    decode.shutdown().await.unwrap();
    let deadline = Instant::now() + PATIENCE;
    let names = |spans: &[(String, Span)]| -> Vec<String> {
        let mut names: Vec<String> = spans
            .iter()
            .filter(|(_, s)| hex::encode(&s.trace_id) == trace_id)
            .map(|(service, s)| format!("{service}:{}", s.name))
            .collect();
        names.sort();
        names.dedup();
        names
    };
    loop {
        let spans = sink.0.lock().unwrap().clone();
        let seen = names(&spans);
        let has = |needle: &str| seen.iter().any(|name| name.contains(needle));
        let engine_spans = spans
            .iter()
            .filter(|(_, s)| hex::encode(&s.trace_id) == trace_id && s.name == "llm_request")
            .count();
        if has("inference-gateway")
            && has("gateway.request")
            && has("llm_d.pd_proxy.request")
            && has("llm_d.pd_proxy.prefill")
            && has("llm_d.pd_proxy.decode")
            && engine_spans >= 2 * N
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "one trace holds every hop: {seen:?}, {engine_spans} llm_request spans"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
