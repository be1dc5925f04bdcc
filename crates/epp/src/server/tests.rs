//! The ext_proc exchange, message by message, without a network.

use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::{HeaderMap, HeaderValue};
use envoy_types::pb::envoy::service::ext_proc::v3::{
    HttpBody, HttpHeaders, ProcessingRequest, ProcessingResponse, body_mutation::Mutation,
    processing_request::Request, processing_response::Response,
};
use envoy_types::pb::google::protobuf::value::Kind;
use opentelemetry::Context;
use parking_lot::Mutex;
use rand::SeedableRng;

use crate::config;
use crate::datastore::{Datastore, EndpointSpec};
use crate::framework::Handle;
use crate::plugins;
use crate::server::{Epp, Stream};
use crate::telemetry::Metrics;

fn epp(endpoints: &[&str], config_yaml: &str, max_body: usize) -> Arc<Epp> {
    let metrics = Arc::new(Metrics::unregistered());
    let handle = Handle {
        tokenizer: tokenizer::Tokenizer::embedded(),
        metrics: Arc::clone(&metrics),
        registry: prometheus::Registry::new(),
    };
    let loaded = config::load(
        &config::parse(config_yaml).unwrap(),
        &plugins::in_tree(),
        &handle,
    )
    .unwrap();
    let datastore = Arc::new(Datastore::new("pool", None));
    datastore.set_endpoints(endpoints.iter().map(|a| EndpointSpec::new(a)).collect());
    Arc::new(Epp {
        datastore,
        loaded,
        metrics,
        tracing: Arc::new(telemetry::Tracing::disabled()),
        max_request_body_bytes: max_body,
        rng: Mutex::new(rand::rngs::SmallRng::seed_from_u64(1)),
    })
}

fn headers(path: &str, end_of_stream: bool, extra: &[(&str, &str)]) -> ProcessingRequest {
    let mut list = vec![
        (":method", "POST"),
        (":path", path),
        ("x-request-id", "req-1"),
    ];
    list.extend_from_slice(extra);
    ProcessingRequest {
        request: Some(Request::RequestHeaders(HttpHeaders {
            headers: Some(HeaderMap {
                headers: list
                    .iter()
                    .map(|(k, v)| HeaderValue {
                        key: (*k).to_owned(),
                        raw_value: v.as_bytes().to_vec(),
                        ..Default::default()
                    })
                    .collect(),
            }),
            end_of_stream,
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn body(bytes: &[u8], end_of_stream: bool) -> ProcessingRequest {
    ProcessingRequest {
        request: Some(Request::RequestBody(HttpBody {
            body: bytes.to_vec(),
            end_of_stream,
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// One line per reply: its kind and what matters in it.
fn render(replies: &[ProcessingResponse]) -> String {
    replies
        .iter()
        .map(|reply| match reply.response.as_ref().unwrap() {
            Response::RequestHeaders(headers) => {
                let common = headers.response.as_ref().unwrap();
                let mutation = common.header_mutation.as_ref().unwrap();
                let set: Vec<String> = mutation
                    .set_headers
                    .iter()
                    .map(|h| {
                        let h = h.header.as_ref().unwrap();
                        format!("{}={}", h.key, String::from_utf8_lossy(&h.raw_value))
                    })
                    .collect();
                let lb = reply.dynamic_metadata.as_ref().unwrap().fields["envoy.lb"]
                    .kind
                    .clone();
                let Some(Kind::StructValue(lb)) = lb else {
                    panic!("envoy.lb struct")
                };
                let Some(Kind::StringValue(dest)) =
                    lb.fields["x-gateway-destination-endpoint"].kind.clone()
                else {
                    panic!("destination string")
                };
                format!(
                    "headers clear_route_cache={} set=[{}] remove={:?} envoy.lb={dest}",
                    common.clear_route_cache,
                    set.join(" "),
                    mutation.remove_headers
                )
            }
            Response::RequestBody(body) => {
                let Some(Mutation::StreamedResponse(streamed)) = body
                    .response
                    .as_ref()
                    .unwrap()
                    .body_mutation
                    .as_ref()
                    .unwrap()
                    .mutation
                    .as_ref()
                else {
                    panic!("streamed body")
                };
                format!(
                    "body {} bytes eos={}",
                    streamed.body.len(),
                    streamed.end_of_stream
                )
            }
            Response::ImmediateResponse(immediate) => format!(
                "immediate {} {:?} {}",
                immediate.status.as_ref().unwrap().code,
                String::from_utf8_lossy(&immediate.body),
                immediate
                    .headers
                    .as_ref()
                    .unwrap()
                    .set_headers
                    .iter()
                    .map(|h| {
                        let h = h.header.as_ref().unwrap();
                        format!("{}={}", h.key, String::from_utf8_lossy(&h.raw_value))
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            other => format!("{other:?}"),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn exchange(epp: &Arc<Epp>, messages: Vec<ProcessingRequest>) -> (String, bool) {
    let mut stream = Stream::new(Arc::clone(epp), Context::new());
    let mut replies = Vec::new();
    let mut done = false;
    for message in messages {
        let (out, finished) = stream.on_message(message);
        replies.extend(out);
        done = finished;
        if finished {
            break;
        }
    }
    (render(&replies), done)
}

const ONE: &str = "plugins:\n- type: queue-scorer\n";

#[test]
fn routes_after_the_body_and_streams_it_back_in_chunks() {
    let epp = epp(&["10.0.0.1:8000"], ONE, 1 << 20);
    let prompt = "x".repeat(100_000);
    let request = format!(r#"{{"model":"m","prompt":"{prompt}"}}"#);
    let (half, rest) = request.as_bytes().split_at(500);
    let (out, done) = exchange(
        &epp,
        vec![
            headers(
                "/v1/completions",
                false,
                &[("x-prefiller-host-port", "evil:1")],
            ),
            body(half, false),
            body(rest, true),
        ],
    );
    expect_test::expect![[r#"
        headers clear_route_cache=true set=[x-gateway-destination-endpoint=10.0.0.1:8000] remove=["x-prefiller-host-port"] envoy.lb=10.0.0.1:8000
        body 62000 bytes eos=false
        body 38025 bytes eos=true"#]]
    .assert_eq(&out);
    assert!(!done, "the response phases follow");
}

#[test]
fn bad_bodies_are_400_not_panics() {
    let epp = epp(&["10.0.0.1:8000"], ONE, 1 << 20);
    for (payload, expected) in [
        ("{not json", "body is not valid JSON"),
        (r#"{"prompt":"x"}"#, "model is required"),
        (r#"{"model":"m"}"#, "prompt is required"),
    ] {
        let (out, done) = exchange(
            &epp,
            vec![
                headers("/v1/completions", false, &[]),
                body(payload.as_bytes(), true),
            ],
        );
        assert!(
            out.starts_with("immediate 400 \"inference error: BadRequest - "),
            "{out}"
        );
        assert!(out.contains(expected), "{out}");
        assert!(done);
    }
    assert_eq!(
        epp.metrics.request_error_total.get(&["", "", "BadRequest"]),
        3.0
    );
}

#[test]
fn oversized_bodies_are_413() {
    let epp = epp(&["10.0.0.1:8000"], ONE, 1000);
    let (out, done) = exchange(
        &epp,
        vec![
            headers("/v1/completions", false, &[]),
            body(&[b'x'; 600], false),
            body(&[b'x'; 600], true),
        ],
    );
    expect_test::expect![[r#"immediate 413 "inference error: PayloadTooLarge - request body of at least 1200 bytes exceeds the limit of 1000 bytes" content-type=text/plain"#]]
        .assert_eq(&out);
    assert!(done);
}

#[test]
fn no_endpoint_is_503_and_a_refused_admission_429() {
    let empty = epp(&[], ONE, 1 << 20);
    let request = br#"{"model":"m","prompt":"x"}"#;
    let (out, _) = exchange(
        &empty,
        vec![headers("/v1/completions", false, &[]), body(request, true)],
    );
    expect_test::expect![[r#"immediate 503 "inference error: ServiceUnavailable - no ready endpoints" content-type=text/plain x-llm-d-request-dropped-reason=rejected-no-endpoints"#]]
        .assert_eq(&out);
    let filtered = epp(
        &["10.0.0.1:8000"],
        "plugins:\n- type: prefill-filter\n",
        1 << 20,
    );
    let (out, _) = exchange(
        &filtered,
        vec![headers("/v1/completions", false, &[]), body(request, true)],
    );
    assert!(out.starts_with("immediate 503"), "{out}");
    // Unscraped endpoints report a zero queue; a threshold of 0 makes every one saturated.
    let saturated = epp(
        &["10.0.0.1:8000"],
        "plugins:\n- type: queue-scorer\n- type: saturation-admitter\n  parameters: {queueDepthThreshold: 0}\n",
        1 << 20,
    );
    let (out, _) = exchange(
        &saturated,
        vec![headers("/v1/completions", false, &[]), body(request, true)],
    );
    expect_test::expect![[r#"immediate 429 "inference error: ResourceExhausted - all 1 candidate endpoints are saturated" content-type=text/plain x-llm-d-request-dropped-reason=rejected-saturated"#]]
        .assert_eq(&out);
}

#[test]
fn bodiless_requests_go_to_any_endpoint_and_a_subset_hint_narrows_the_choice() {
    let epp = epp(&["10.0.0.1:8000", "10.0.0.2:8000"], ONE, 1 << 20);
    let (out, _) = exchange(&epp, vec![headers("/v1/models", true, &[])]);
    assert!(
        out.starts_with(
            "headers clear_route_cache=true set=[x-gateway-destination-endpoint=10.0.0."
        ),
        "{out}"
    );
    let mut hinted = headers("/v1/completions", false, &[]);
    let mut hint = envoy_types::pb::google::protobuf::Struct::default();
    hint.fields.insert(
        crate::server::SUBSET_HINT_KEY.to_owned(),
        envoy_types::pb::google::protobuf::Value {
            kind: Some(Kind::StringValue("10.0.0.2".to_owned())),
        },
    );
    let mut metadata = envoy_types::pb::envoy::config::core::v3::Metadata::default();
    metadata
        .filter_metadata
        .insert(crate::server::SUBSET_HINT_NAMESPACE.to_owned(), hint);
    hinted.metadata_context = Some(metadata);
    for _ in 0..10 {
        let (out, _) = exchange(
            &epp,
            vec![hinted.clone(), body(br#"{"model":"m","prompt":"x"}"#, true)],
        );
        assert!(out.contains("envoy.lb=10.0.0.2:8000"), "{out}");
    }
}

#[test]
fn pd_sets_the_prefill_header_and_removes_a_client_supplied_one() {
    let config = "
plugins:
- type: prefill-header-handler
- type: prefill-filter
- type: decode-filter
- type: queue-scorer
- type: pd-profile-handler
schedulingProfiles:
- name: prefill
  plugins: [{pluginRef: prefill-filter}, {pluginRef: queue-scorer}]
- name: decode
  plugins: [{pluginRef: decode-filter}, {pluginRef: queue-scorer}]
";
    let metrics = Arc::new(Metrics::unregistered());
    let handle = Handle {
        tokenizer: tokenizer::Tokenizer::embedded(),
        metrics: Arc::clone(&metrics),
        registry: prometheus::Registry::new(),
    };
    let loaded = config::load(
        &config::parse(config).unwrap(),
        &plugins::in_tree(),
        &handle,
    )
    .unwrap();
    let datastore = Arc::new(Datastore::new("pool", None));
    let labelled = |address: &str, role: &str| EndpointSpec {
        labels: [("llm-d.ai/role".to_owned(), role.to_owned())].into(),
        ..EndpointSpec::new(address)
    };
    datastore.set_endpoints(vec![
        labelled("10.0.0.1:8000", "prefill"),
        labelled("10.0.0.2:8000", "decode"),
    ]);
    let epp = Arc::new(Epp {
        datastore,
        loaded,
        metrics,
        tracing: Arc::new(telemetry::Tracing::disabled()),
        max_request_body_bytes: 1 << 20,
        rng: Mutex::new(rand::rngs::SmallRng::seed_from_u64(1)),
    });
    let (out, _) = exchange(
        &epp,
        vec![
            headers(
                "/v1/completions",
                false,
                &[("x-prefiller-host-port", "evil:1")],
            ),
            body(br#"{"model":"m","prompt":"hello"}"#, true),
        ],
    );
    expect_test::expect![[r#"
        headers clear_route_cache=true set=[x-gateway-destination-endpoint=10.0.0.2:8000 x-prefiller-host-port=10.0.0.1:8000] remove=[] envoy.lb=10.0.0.2:8000
        body 30 bytes eos=true"#]]
    .assert_eq(&out);
    assert_eq!(epp.metrics.pd_decision.get(&["m", "prefill-decode"]), 1.0);
}
