//! Shared by the integration layers: simulated vLLM pods publishing KV events to an
//! in-process EPP, an ext_proc client that plays the gateway, an in-process OTLP sink, and
//! exposition scraping. Everything binds 127.0.0.1 on ephemeral ports.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::config::core::v3::{HeaderMap, HeaderValue};
use envoy_types::pb::envoy::service::ext_proc::v3::{
    HttpBody, HttpHeaders, ProcessingRequest, external_processor_client::ExternalProcessorClient,
    processing_request::Request, processing_response::Response,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};
use opentelemetry_proto::tonic::trace::v1::Span;

pub const MODEL: &str = "sim-model";
/// How long any eventual condition may take.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The EPP's listeners on ephemeral loopback ports (ext_proc, gRPC health, metrics).
pub const LOOPBACK_PORTS: &[&str] = &[
    "--host",
    "127.0.0.1",
    "--grpc-port",
    "0",
    "--grpc-health-port",
    "0",
    "--metrics-port",
    "0",
];

/// A port that was free a moment ago (bind 127.0.0.1:0 and release).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("an ephemeral port")
}

/// The precise-prefix config the stack runs: precise affinity first, load second.
pub fn precise_config() -> String {
    "
apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: precise-prefix-cache-scorer
  parameters:
    tokenProcessorConfig: { blockSize: 16 }
    indexerConfig: { kvBlockIndexConfig: { enableMetrics: true } }
    kvEventsConfig: { zmqEndpoint: 'tcp://127.0.0.1:*', topicFilter: 'kv@' }
- type: queue-scorer
- type: kv-cache-utilization-scorer
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: precise-prefix-cache-scorer
    weight: 3
  - pluginRef: queue-scorer
  - pluginRef: kv-cache-utilization-scorer
"
    .to_owned()
}

/// The baseline: the same pods, uniformly random.
pub fn random_config() -> String {
    "plugins:\n- type: random-picker\n".to_owned()
}

/// Simulated pods and the EPP that routes to them.
pub struct Topology {
    pub epp: epp::Server,
    pub sims: Vec<vllm_sim::Server>,
    /// The EPP's certificate when it serves TLS (as upstream does by default).
    tls: Option<(test_support::tls::SelfSigned, std::path::PathBuf)>,
}

/// Where the gateway's ext_proc stream goes: plain HTTP/2, or TLS checked against a CA.
#[derive(Debug, Clone)]
pub struct GrpcTarget {
    pub addr: SocketAddr,
    pub ca_pem: Option<String>,
}

impl From<SocketAddr> for GrpcTarget {
    fn from(addr: SocketAddr) -> GrpcTarget {
        GrpcTarget { addr, ca_pem: None }
    }
}

impl Topology {
    /// Starts `n_sims` simulators on pre-picked ports and an EPP configured with them as
    /// static endpoints; waits until every pod is a scheduling candidate.
    pub async fn start(n_sims: usize, config_yaml: &str, otlp: Option<&str>) -> Topology {
        Topology::start_with(n_sims, config_yaml, otlp, &[], false).await
    }

    /// [`Topology::start`] with the EPP serving TLS on its ext_proc port, as the gateway
    /// meets it in a cluster.
    pub async fn start_tls(n_sims: usize, config_yaml: &str, otlp: Option<&str>) -> Topology {
        Topology::start_with(n_sims, config_yaml, otlp, &[], true).await
    }

    /// [`Topology::start`] with extra simulator flags.
    pub async fn start_with_sim_args(
        n_sims: usize,
        config_yaml: &str,
        sim_args: &[&str],
    ) -> Topology {
        Topology::start_with(n_sims, config_yaml, None, sim_args, false).await
    }

    async fn start_with(
        n_sims: usize,
        config_yaml: &str,
        otlp: Option<&str>,
        sim_args: &[&str],
        serve_tls: bool,
    ) -> Topology {
        let ports: Vec<u16> = (0..n_sims).map(|_| free_port()).collect();
        let mut args = vec!["epp".to_owned()];
        args.extend(LOOPBACK_PORTS.iter().map(|arg| (*arg).to_owned()));
        args.extend([
            "--refresh-metrics-interval".to_owned(),
            "50ms".to_owned(),
            "--config-text".to_owned(),
            config_yaml.to_owned(),
        ]);
        for port in &ports {
            args.push("--endpoint".to_owned());
            args.push(format!("127.0.0.1:{port}"));
        }
        let tls = serve_tls.then(|| {
            let cert = test_support::tls::SelfSigned::generate();
            let dir = cert.write_secret_dir();
            (cert, dir)
        });
        match &tls {
            Some((_, dir)) => {
                args.push("--cert-path".to_owned());
                args.push(dir.display().to_string());
            }
            None => args.push("--secure-serving=false".to_owned()),
        }
        let mut env = HashMap::new();
        if let Some(endpoint) = otlp {
            env.insert(
                "OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(),
                endpoint.to_owned(),
            );
            env.insert("OTEL_SERVICE_NAME".to_owned(), "epp".to_owned());
        }
        let config = epp::Config::parse(args, &epp::env::TestEnv(env)).expect("valid EPP flags");
        let epp = epp::spawn(config).await.expect("the EPP starts");
        let zmq = epp.kv_events_endpoints().first().cloned();
        let mut sims = Vec::new();
        let mut moved = false;
        for &picked in &ports {
            // The pre-picked port may be taken by a parallel test meanwhile: pick another and
            // tell the EPP's datastore below.
            let mut port = picked;
            let mut attempts = 0;
            let sim = loop {
                attempts += 1;
                let mut args = vec![
                    "vllm-sim".to_owned(),
                    "--model".to_owned(),
                    MODEL.to_owned(),
                    "--port".to_owned(),
                    port.to_string(),
                    "--max-model-len".to_owned(),
                    "40000".to_owned(),
                ];
                if let Some(endpoint) = &zmq {
                    args.push("--kv-events-config".to_owned());
                    args.push(
                        serde_json::json!({
                            "enable_kv_cache_events": true,
                            "publisher": "zmq",
                            "endpoint": endpoint,
                            "topic": format!("kv@127.0.0.1:{port}@{MODEL}"),
                        })
                        .to_string(),
                    );
                }
                args.extend(sim_args.iter().map(|arg| (*arg).to_owned()));
                if let Some(endpoint) = otlp {
                    args.push("--otlp-traces-endpoint".to_owned());
                    args.push(endpoint.to_owned());
                }
                let config = vllm_sim::Config::from_args(args).expect("valid simulator flags");
                match vllm_sim::spawn(config).await {
                    Ok(sim) => break sim,
                    Err(error) if attempts >= 5 => panic!("the simulator starts: {error}"),
                    Err(error) => {
                        eprintln!("simulator on port {port} did not start ({error}); another port");
                        port = free_port();
                        moved = true;
                    }
                }
            };
            sims.push(sim);
        }
        if moved {
            epp.datastore().set_endpoints(
                sims.iter()
                    .map(|sim| epp::datastore::EndpointSpec::new(&sim.addr().to_string()))
                    .collect(),
            );
        }
        let topology = Topology { epp, sims, tls };
        let deadline = Instant::now() + PATIENCE;
        while topology.epp.datastore().candidates().len() < n_sims {
            assert!(
                Instant::now() < deadline,
                "every simulator becomes a candidate"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        topology
    }

    pub fn sim_addresses(&self) -> Vec<String> {
        self.sims.iter().map(|s| s.addr().to_string()).collect()
    }

    /// The EPP's ext_proc port as the gateway dials it.
    pub fn grpc(&self) -> GrpcTarget {
        GrpcTarget {
            addr: self.epp.addr(),
            ca_pem: self.tls.as_ref().map(|(cert, _)| cert.cert_pem.clone()),
        }
    }

    pub async fn shutdown(self) {
        for sim in self.sims {
            let _ = sim.shutdown().await;
        }
        self.epp.shutdown().await;
        if let Some((_, dir)) = &self.tls {
            test_support::tls::remove_secret_dir(dir);
        }
    }
}

/// Routes `prompt` through the EPP, then sends it to the chosen pod; returns the pod.
pub async fn send_completion(topology: &Topology, prompt: &str) -> String {
    send_traced(topology, prompt, None).await
}

/// [`send_completion`] with the gateway's `traceparent`.
pub async fn send_traced(topology: &Topology, prompt: &str, traceparent: Option<&str>) -> String {
    let body = completion(prompt);
    let Routed::To(destination) =
        route(topology.grpc(), "/v1/completions", &body, traceparent).await
    else {
        panic!("routed");
    };
    let response = client()
        .post(format!("http://{destination}/v1/completions"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("the simulator answers");
    assert_eq!(response.status(), 200);
    destination
}

/// KV events the EPP's precise scorer has applied so far (its config must enable metrics).
pub async fn events_applied(topology: &Topology) -> f64 {
    let url = format!("http://{}/metrics", topology.epp.metrics_addr());
    metric_sum(
        &scrape(&url).await,
        metrics_schema::kv_index::EVENTS_APPLIED_TOTAL.name,
    )
}

/// Polls until the EPP has applied more than `before` KV events.
pub async fn wait_events_applied(topology: &Topology, before: f64) {
    let deadline = Instant::now() + PATIENCE;
    while events_applied(topology).await <= before {
        assert!(
            Instant::now() < deadline,
            "the pod's KV events reach the EPP"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends `prompt` and waits until the EPP has indexed its blocks and routes it back to the
/// pod that served it; returns that pod. (Waiting for the route alone could end on a tie
/// broken by chance before the events arrive.)
pub async fn send_until_indexed(topology: &Topology, prompt: &str) -> String {
    let before = events_applied(topology).await;
    let home = send_traced(topology, prompt, None).await;
    wait_events_applied(topology, before).await;
    wait_routed_to(topology, prompt, &home).await;
    home
}

/// Polls until the EPP routes `prompt` to `expected` (its KV events have arrived).
pub async fn wait_routed_to(topology: &Topology, prompt: &str, expected: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if route(
            topology.grpc(),
            "/v1/completions",
            &completion(prompt),
            None,
        )
        .await
            == Routed::To(expected.to_owned())
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the EPP learns that {expected} holds the prompt"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What the EPP answered for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routed {
    To(String),
    Refused { status: i32, body: String },
}

/// Plays the gateway: one ext_proc stream per request.
pub async fn route(
    target: impl Into<GrpcTarget>,
    path: &str,
    body: &[u8],
    traceparent: Option<&str>,
) -> Routed {
    let target = target.into();
    let channel = match &target.ca_pem {
        None => tonic::transport::Endpoint::from_shared(format!("http://{}", target.addr))
            .expect("endpoint"),
        Some(ca) => tonic::transport::Endpoint::from_shared(format!("https://{}", target.addr))
            .expect("endpoint")
            .tls_config(
                tonic::transport::ClientTlsConfig::new()
                    .ca_certificate(tonic::transport::Certificate::from_pem(ca))
                    .domain_name("localhost"),
            )
            .expect("TLS config"),
    }
    .connect()
    .await
    .expect("ext_proc connects");
    let mut client = ExternalProcessorClient::new(channel);
    let headers = [
        (":method", "POST"),
        (":path", path),
        ("content-type", "application/json"),
    ];
    let messages = vec![
        ProcessingRequest {
            request: Some(Request::RequestHeaders(HttpHeaders {
                headers: Some(HeaderMap {
                    headers: headers
                        .iter()
                        .map(|(k, v)| HeaderValue {
                            key: (*k).to_owned(),
                            raw_value: v.as_bytes().to_vec(),
                            ..Default::default()
                        })
                        .collect(),
                }),
                end_of_stream: false,
                ..Default::default()
            })),
            ..Default::default()
        },
        ProcessingRequest {
            request: Some(Request::RequestBody(HttpBody {
                body: body.to_vec(),
                end_of_stream: true,
                ..Default::default()
            })),
            ..Default::default()
        },
    ];
    let mut request = tonic::Request::new(tokio_stream::iter(messages));
    if let Some(traceparent) = traceparent {
        request
            .metadata_mut()
            .insert("traceparent", traceparent.parse().expect("ascii"));
    }
    let mut responses = client.process(request).await.expect("process").into_inner();
    let first = responses
        .message()
        .await
        .expect("a reply")
        .expect("a first reply");
    match first.response.expect("a response") {
        Response::RequestHeaders(headers) => {
            let mutation = headers
                .response
                .and_then(|c| c.header_mutation)
                .expect("mutation");
            let destination = mutation
                .set_headers
                .iter()
                .filter_map(|h| h.header.as_ref())
                .find(|h| h.key == epp::DESTINATION_HEADER)
                .map(|h| String::from_utf8_lossy(&h.raw_value).into_owned())
                .expect("destination header");
            Routed::To(destination)
        }
        Response::ImmediateResponse(immediate) => Routed::Refused {
            status: immediate.status.map_or(0, |s| s.code),
            body: String::from_utf8_lossy(&immediate.body).into_owned(),
        },
        other => panic!("unexpected first reply {other:?}"),
    }
}

pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().expect("client")
}

/// A completion body with `prompt`.
pub fn completion(prompt: &str) -> Vec<u8> {
    serde_json::json!({"model": MODEL, "prompt": prompt, "max_tokens": 2, "temperature": 0.0})
        .to_string()
        .into_bytes()
}

/// A long prompt of the group `group`, different from other groups from its first token.
pub fn shared_prefix(group: usize, words: usize) -> String {
    let mut text = format!("Group {group} system prompt.");
    for word_idx in 0..words {
        text.push_str(&format!(" g{group}w{word_idx}"));
    }
    text
}

/// `sum(name)` over a Prometheus exposition.
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub async fn scrape(url: &str) -> String {
    client()
        .get(url)
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("scrape body")
}

/// `(hits, queries)` of the simulators' prefix caches, in tokens, summed over the pods.
pub async fn prefix_cache_totals(sims: &[vllm_sim::Server]) -> (f64, f64) {
    let mut totals = (0.0, 0.0);
    for sim in sims {
        let text = scrape(&format!("{}/metrics", sim.url())).await;
        totals.0 += metric_sum(&text, "vllm:prefix_cache_hits_total");
        totals.1 += metric_sum(&text, "vllm:prefix_cache_queries_total");
    }
    totals
}

/// An in-process OTLP/gRPC trace collector.
#[derive(Clone, Default)]
pub struct Sink(pub Arc<Mutex<Vec<(String, Span)>>>);

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
                .and_then(|r| r.attributes.iter().find(|a| a.key == "service.name"))
                .and_then(|a| a.value.as_ref())
                .and_then(|v| match &v.value {
                    Some(
                        opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s),
                    ) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for scope in &resource.scope_spans {
                spans.extend(
                    scope
                        .spans
                        .iter()
                        .map(|span| (service.clone(), span.clone())),
                );
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

impl Sink {
    /// Starts the collector; returns it and its `http://` endpoint.
    pub async fn start() -> (Sink, String) {
        let sink = Sink::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = sink.clone();
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(server))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await
        });
        (sink, format!("http://{addr}"))
    }

    pub fn spans(&self) -> Vec<(String, Span)> {
        self.0.lock().unwrap().clone()
    }
}

/// The string value of attribute `key` of `span`.
pub fn attr(span: &Span, key: &str) -> Option<String> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref())
        .and_then(|v| match v.value.as_ref()? {
            Value::StringValue(s) => Some(s.clone()),
            Value::IntValue(i) => Some(i.to_string()),
            Value::DoubleValue(d) => Some(d.to_string()),
            Value::BoolValue(b) => Some(b.to_string()),
            _ => None,
        })
}
