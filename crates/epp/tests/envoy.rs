//! End to end through a real Envoy: ext_proc to the EPP, ORIGINAL_DST to four simulated
//! decode pods that publish KV events. Requests sharing a long prefix land on the pod that
//! cached it, the pods' prefix-cache hit rate beats random routing on the same traffic, and
//! Envoy's spans, the EPP's and the simulators' form one trace.
//!
//! Needs Envoy: `ENVOY_BIN`, or `scripts/install-tools.sh` (fails, not skips, without it).

#[path = "support/topology.rs"]
mod topology;

use std::time::{Duration, Instant};

use test_support::envoy::Envoy;
use topology::{
    PATIENCE, Routed, Sink, Topology, client, completion, prefix_cache_totals, route, shared_prefix,
};

const GROUPS: usize = 4;
const QUESTIONS: usize = 6;

struct Sent {
    upstream: String,
    status: u16,
}

async fn post(envoy: &Envoy, prompt: &str, traceparent: Option<&str>) -> Sent {
    let mut request = client()
        .post(format!("{}/v1/completions", envoy.gateway_url()))
        .header("content-type", "application/json")
        .body(completion(prompt));
    if let Some(traceparent) = traceparent {
        request = request.header("traceparent", traceparent);
    }
    let response = request.send().await.expect("Envoy answers");
    let upstream = response
        .headers()
        .get("x-upstream-host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let status = response.status().as_u16();
    let _ = response.bytes().await;
    Sent { upstream, status }
}

/// The same traffic for both policies: question-major, so groups interleave; returns where
/// each (group, question) went.
async fn drive(topology: &Topology, envoy: &Envoy, wait_for_index: bool) -> Vec<Vec<String>> {
    let mut homes = vec![Vec::new(); GROUPS];
    for question in 0..QUESTIONS {
        let applied_before = if question == 0 && wait_for_index {
            topology::events_applied(topology).await
        } else {
            0.0
        };
        for (group, home) in homes.iter_mut().enumerate() {
            let prompt = format!("{} Question {question}?", shared_prefix(group, 300));
            let sent = post(envoy, &prompt, None).await;
            assert_eq!(sent.status, 200, "group {group} question {question}");
            home.push(sent.upstream);
        }
        if question == 0 && wait_for_index {
            // KV events arrive asynchronously: wait until the EPP has applied events for every
            // first prompt (a route that lands home before them is a tie broken by chance),
            // then until each first prompt routes home.
            let deadline = Instant::now() + PATIENCE;
            while topology::events_applied(topology).await < applied_before + GROUPS as f64 {
                assert!(
                    Instant::now() < deadline,
                    "every first prompt's KV events arrive"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            for (group, home) in homes.iter().enumerate() {
                let prompt = format!("{} Question 0?", shared_prefix(group, 300));
                let deadline = Instant::now() + PATIENCE;
                while route(
                    topology.grpc(),
                    "/v1/completions",
                    &completion(&prompt),
                    None,
                )
                .await
                    != Routed::To(home[0].clone())
                {
                    assert!(Instant::now() < deadline, "the EPP indexes group {group}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
    homes
}

fn hit_rate((hits, queries): (f64, f64)) -> f64 {
    if queries == 0.0 { 0.0 } else { hits / queries }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_routing_through_envoy_beats_random_and_forms_one_trace() {
    let (sink, otlp) = Sink::start().await;
    let otlp_addr = otlp
        .trim_start_matches("http://")
        .parse()
        .expect("sink address");

    let precise = Topology::start_tls(4, &topology::precise_config(), Some(&otlp)).await;
    let envoy = Envoy::start(precise.epp.addr(), precise.sims[0].addr(), Some(otlp_addr)).await;
    let homes = drive(&precise, &envoy, true).await;
    for (group, went) in homes.iter().enumerate() {
        assert!(
            precise.sim_addresses().contains(&went[0]),
            "group {group} went to a simulator: {went:?}"
        );
        if !went.iter().all(|pod| pod == &went[0]) {
            precise.epp.flush_spans().await;
            let decisions: Vec<String> = sink
                .spans()
                .iter()
                .filter(|(_, span)| span.name == "llm_d.epp.scorer.prefix_cache")
                .map(|(_, span)| {
                    format!(
                        "{:?} -> {:?}",
                        topology::attr(span, "llm_d.scorer.matched_blocks"),
                        topology::attr(span, "llm_d.epp.picked_endpoint")
                    )
                })
                .collect();
            panic!(
                "group {group} stays on its pod: {went:?}; decisions:\n{}",
                decisions.join("\n")
            );
        }
    }
    let precise_rate = hit_rate(prefix_cache_totals(&precise.sims).await);

    // Bad input through Envoy: clear statuses, no panics.
    let response = client()
        .post(format!("{}/v1/completions", envoy.gateway_url()))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("Envoy answers");
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("BadRequest"));

    // One traced request: client → Envoy → EPP → simulator.
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let traced = post(
        &envoy,
        &format!("{} Traced?", shared_prefix(1, 300)),
        Some(&format!("00-{trace_id}-b7ad6b7169203331-01")),
    )
    .await;
    assert_eq!(traced.status, 200);
    assert_eq!(traced.upstream, homes[1][0]);
    assert_eq!(
        envoy
            .stat("http.inference_gateway.ext_proc.streams_failed")
            .await,
        Some(0)
    );
    precise.epp.flush_spans().await;

    let deadline = Instant::now() + PATIENCE;
    loop {
        let spans: Vec<_> = sink
            .spans()
            .into_iter()
            .filter(|(_, span)| hex::encode(&span.trace_id) == trace_id)
            .collect();
        let named = |name: &str| spans.iter().find(|(_, span)| span.name == name).cloned();
        let envoy_spans: Vec<_> = spans
            .iter()
            .filter(|(service, _)| service == "inference-gateway")
            .collect();
        if let (Some((_, gateway)), Some((_, scorer)), Some((_, engine))) = (
            named("gateway.request"),
            named("llm_d.epp.scorer.prefix_cache"),
            named("llm_request"),
        ) && !envoy_spans.is_empty()
        {
            assert!(
                envoy_spans
                    .iter()
                    .any(|(_, span)| span.span_id == gateway.parent_span_id),
                "gateway.request is a child of an Envoy span"
            );
            assert_eq!(scorer.parent_span_id, gateway.span_id);
            assert!(
                spans
                    .iter()
                    .any(|(_, span)| span.span_id == engine.parent_span_id),
                "llm_request's parent is in the same trace"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Envoy, EPP and simulator spans share trace {trace_id}: {:?}",
            spans
                .iter()
                .map(|(service, span)| format!("{service}/{}", span.name))
                .collect::<Vec<_>>()
        );
        // Envoy and the simulators export on their batch schedules (seconds).
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(envoy);
    precise.shutdown().await;

    // The same traffic, routed at random over fresh pods.
    let random = Topology::start_tls(4, &topology::random_config(), None).await;
    let envoy = Envoy::start(random.epp.addr(), random.sims[0].addr(), None).await;
    let spread = drive(&random, &envoy, false).await;
    let random_rate = hit_rate(prefix_cache_totals(&random.sims).await);
    drop(envoy);
    random.shutdown().await;
    let pods_per_group: Vec<usize> = spread
        .iter()
        .map(|went| went.iter().collect::<std::collections::BTreeSet<_>>().len())
        .collect();
    eprintln!(
        "prefix-cache hit rate: precise {precise_rate:.3}, random {random_rate:.3} (ratio {:.2}); random spread groups over {pods_per_group:?} pods",
        precise_rate / random_rate.max(f64::EPSILON)
    );
    assert!(
        precise_rate > random_rate,
        "precise {precise_rate} beats random {random_rate}"
    );
}
