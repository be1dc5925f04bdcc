//! One trace across the sidecar and both engines: `llm_d.pd_proxy.request` under the
//! client's span, `.prefill` and `.decode` under it, and each engine's `llm_request` under
//! the leg that called it.

use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    trace::v1::Span,
};
use serde_json::json;

use crate::support::{CONSUMER, PRODUCER, post, sidecar_with_env, sim};

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
async fn one_trace_holds_the_sidecar_and_both_engines() {
    let sink = Sink::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = format!("http://{}", listener.local_addr().unwrap());
    let server_sink = sink.clone();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(server_sink))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
    });
    let prefill = sim(Some(PRODUCER), &["--otlp-traces-endpoint", &collector]).await;
    let decode = sim(Some(CONSUMER), &["--otlp-traces-endpoint", &collector]).await;
    let proxy = sidecar_with_env(
        decode.addr().port(),
        &["--tracing", "--allowed-prefill-hosts", "127.0.0.1"],
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &collector)],
    )
    .await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    let (status, body) = post(
        &format!("{}/v1/completions", proxy.url()),
        &json!({"prompt": "Trace the legs.", "max_tokens": 2}),
        &[
            ("traceparent", format!("00-{trace_id}-{client_span}-01")),
            ("x-prefiller-host-port", prefill.addr().to_string()),
            ("x-request-id", "traced-1".to_owned()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    proxy.shutdown().await;
    prefill.shutdown().await.unwrap();
    decode.shutdown().await.unwrap();
    let spans = sink.0.lock().unwrap().clone();
    let find = |name: &str| -> Vec<&Span> { spans.iter().filter(|s| s.name == name).collect() };
    let request = find("llm_d.pd_proxy.request");
    let [request] = request.as_slice() else {
        panic!("one request span: {spans:#?}")
    };
    assert_eq!(hex::encode(&request.parent_span_id), client_span);
    let prefill_leg = find("llm_d.pd_proxy.prefill")[0];
    let decode_leg = find("llm_d.pd_proxy.decode")[0];
    for leg in [prefill_leg, decode_leg] {
        assert_eq!(
            leg.parent_span_id, request.span_id,
            "{} under the request",
            leg.name
        );
    }
    let engine_spans = find("llm_request");
    assert_eq!(engine_spans.len(), 2, "{engine_spans:#?}");
    let parents: Vec<&[u8]> = engine_spans
        .iter()
        .map(|s| s.parent_span_id.as_slice())
        .collect();
    assert!(
        parents.contains(&prefill_leg.span_id.as_slice()),
        "prefill engine under the prefill leg"
    );
    assert!(
        parents.contains(&decode_leg.span_id.as_slice()),
        "decode engine under the decode leg"
    );
    for span in [request, prefill_leg, decode_leg]
        .into_iter()
        .chain(engine_spans)
    {
        assert_eq!(hex::encode(&span.trace_id), trace_id, "{}", span.name);
    }
    let attribute = |span: &Span, key: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.clone())
            .and_then(|v| v.value)
    };
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    assert_eq!(
        attribute(request, "llm_d.pd_proxy.outcome"),
        Some(Value::StringValue("success".into()))
    );
    assert!(
        matches!(attribute(request, "llm_d.pd_proxy.true_ttft_ms"), Some(Value::DoubleValue(ms)) if ms > 0.0)
    );
    assert_eq!(
        attribute(prefill_leg, "llm_d.pd_proxy.request_id"),
        Some(Value::StringValue("traced-1".into()))
    );
    assert_eq!(
        attribute(prefill_leg, "llm_d.pd_proxy.prefill.status_code"),
        Some(Value::IntValue(200))
    );
}
