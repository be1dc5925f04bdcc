//! One `llm_request` SERVER span per request, parented from the incoming `traceparent`,
//! exported by OTLP/gRPC to an in-process collector.

use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    trace::v1::Span,
};
use serde_json::json;

use crate::support::{client, sim};

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<Span>>>);

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.0.lock().unwrap();
        for resource in &request.get_ref().resource_spans {
            for scope in &resource.scope_spans {
                spans.extend(scope.spans.iter().cloned());
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_request_span_joins_the_callers_trace() {
    let sink = Sink::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = listener.local_addr().unwrap();
    let server_sink = sink.clone();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(server_sink))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
    });
    let endpoint = format!("http://{collector}");
    let server = sim(&[
        "--otlp-traces-endpoint",
        &endpoint,
        "--inter-token-latency",
        "2",
    ])
    .await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_span = "00f067aa0ba902b7";
    let response = client()
        .post(format!("{}/v1/completions", server.url()))
        .header("traceparent", format!("00-{trace_id}-{parent_span}-01"))
        .header("X-Request-Id", "traced")
        .json(&json!({"prompt": "Trace me.", "max_tokens": 3, "temperature": 0.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Shutting down flushes the batch exporter.
    server.shutdown().await.unwrap();
    let spans = sink.0.lock().unwrap().clone();
    let span = spans
        .iter()
        .find(|s| s.name == "llm_request")
        .expect("llm_request exported");
    assert_eq!(hex::encode(&span.trace_id), trace_id);
    assert_eq!(hex::encode(&span.parent_span_id), parent_span);
    assert_eq!(span.kind, 2, "SPAN_KIND_SERVER");
    let attr = |key: &str| {
        span.attributes
            .iter()
            .find(|a| a.key == key)
            .and_then(|a| a.value.clone())
    };
    assert!(attr("gen_ai.request.id").is_some());
    assert!(attr("gen_ai.latency.time_to_first_token").is_some());
    assert!(attr("gen_ai.usage.completion_tokens").is_some());
    assert!(
        attr("gen_ai.request.temperature").is_none(),
        "a zero temperature is left out"
    );
    assert!(span.end_time_unix_nano > span.start_time_unix_nano);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_also_leave_by_otlp_http_with_the_configured_service_name() {
    use prost::Message;
    let sink = Sink::default();
    let server_sink = sink.clone();
    let router = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: bytes::Bytes| {
            let sink = server_sink.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                let mut spans = sink.0.lock().unwrap();
                for resource in &request.resource_spans {
                    let service = resource
                        .resource
                        .as_ref()
                        .and_then(|r| r.attributes.iter().find(|a| a.key == "service.name"))
                        .and_then(|a| a.value.clone())
                        .map(|v| format!("{v:?}"))
                        .unwrap_or_default();
                    assert!(service.contains("decode-sim"), "service.name: {service}");
                    for scope in &resource.scope_spans {
                        spans.extend(scope.spans.iter().cloned());
                    }
                }
                let mut out = Vec::new();
                ExportTraceServiceResponse {
                    partial_success: None,
                }
                .encode(&mut out)
                .unwrap();
                ([("content-type", "application/x-protobuf")], out)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let env = vllm_sim::env::TestEnv(
        [
            (
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                "http/protobuf".to_owned(),
            ),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                format!("http://{collector}/v1/traces"),
            ),
            ("OTEL_SERVICE_NAME", "decode-sim".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
    );
    let config =
        vllm_sim::Config::parse(["vllm-sim", "--model", "test-model", "--port", "0"], &env)
            .unwrap();
    let server = vllm_sim::spawn(config).await.unwrap();
    let response = client()
        .post(format!("{}/v1/chat/completions", server.url()))
        .header(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
        .json(&json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    server.shutdown().await.unwrap();
    let spans = sink.0.lock().unwrap().clone();
    let span = spans
        .iter()
        .find(|s| s.name == "llm_request")
        .expect("exported over HTTP");
    assert_eq!(
        hex::encode(&span.trace_id),
        "0af7651916cd43dd8448eb211c80319c"
    );
}
