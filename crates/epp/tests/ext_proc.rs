//! The EPP in-process against simulated vLLM pods that publish real KV events: the test
//! plays the gateway over gRPC and forwards each request where the EPP says.

#[path = "support/topology.rs"]
mod topology;

use std::time::{Duration, Instant};

use topology::{
    PATIENCE, Routed, Sink, Topology, attr, completion, metric_sum, route, scrape, send_traced,
    send_until_indexed, shared_prefix,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_prefixes_land_where_their_blocks_are_cached() {
    let (sink, otlp) = Sink::start().await;
    let topology = Topology::start(4, &topology::precise_config(), Some(&otlp)).await;
    let mut homes = Vec::new();
    for group in 0..4 {
        let prefix = shared_prefix(group, 300);
        let first = format!("{prefix} Question 0?");
        let home = send_until_indexed(&topology, &first).await;
        for question in 1..5 {
            let prompt = format!("{prefix} Question {question}?");
            let went = send_traced(&topology, &prompt, None).await;
            assert_eq!(
                went, home,
                "group {group} question {question} follows its prefix"
            );
        }
        homes.push(home);
    }
    // One more, traced from a known parent, to read the decision back from the spans.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    let prompt = format!("{} Traced?", shared_prefix(2, 300));
    let went = send_traced(
        &topology,
        &prompt,
        Some(&format!("00-{trace_id}-{parent}-01")),
    )
    .await;
    assert_eq!(went, homes[2]);

    let metrics = scrape(&format!("http://{}/metrics", topology.epp.metrics_addr())).await;
    assert!(
        metric_sum(&metrics, "llm_d_epp_prefix_cache_hits_total") >= 16.0,
        "{metrics}"
    );
    assert!(
        metric_sum(
            &metrics,
            "llm_d_epp_prefix_cache_scorer_matched_blocks_count"
        ) >= 20.0
    );
    assert!(
        metric_sum(
            &metrics,
            "llm_d_epp_routing_decision_duration_seconds_count"
        ) >= 21.0
    );
    assert!(metric_sum(&metrics, "llm_d_epp_request_total") >= 21.0);
    assert_eq!(metric_sum(&metrics, "llm_d_epp_ready_endpoints"), 4.0);
    assert!(
        metric_sum(
            &metrics,
            metrics_schema::kv_index::EVENTS_APPLIED_TOTAL.name
        ) > 0.0,
        "kv-index metrics exported"
    );

    topology.epp.flush_spans().await;
    let deadline = Instant::now() + PATIENCE;
    let (gateway, scorer) = loop {
        let spans = sink.spans();
        let find = |name: &str| {
            spans
                .iter()
                .find(|(_, s)| s.name == name && hex::encode(&s.trace_id) == trace_id)
                .map(|(_, s)| s.clone())
        };
        if let (Some(gateway), Some(scorer)) = (
            find("gateway.request"),
            find("llm_d.epp.scorer.prefix_cache"),
        ) {
            break (gateway, scorer);
        }
        assert!(Instant::now() < deadline, "the EPP spans are exported");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        hex::encode(&gateway.parent_span_id),
        parent,
        "gateway.request continues the gateway's trace"
    );
    assert_eq!(gateway.kind, 2, "SERVER");
    assert_eq!(
        scorer.parent_span_id, gateway.span_id,
        "the scorer span is a child of gateway.request"
    );
    assert_eq!(
        attr(&gateway, "llm_d.epp.picked_endpoint").as_deref(),
        Some(homes[2].as_str())
    );
    assert_eq!(
        attr(&scorer, "llm_d.epp.picked_endpoint").as_deref(),
        Some(homes[2].as_str())
    );
    let matched = attr(&scorer, "llm_d.scorer.matched_blocks").expect("per-pod matched blocks");
    assert!(
        matched.starts_with(&format!("{}=", homes[2])),
        "the winner holds the most blocks: {matched}"
    );
    assert_eq!(
        attr(&scorer, "llm_d.scorer.result").as_deref(),
        Some("success")
    );
    topology.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_pod_leaves_the_candidates_and_bad_input_gets_clear_errors() {
    let topology = Topology::start(2, &topology::precise_config(), None).await;
    let addr = topology.epp.addr();
    for (body, status, text) in [
        (&b"{not json"[..], 400, "body is not valid JSON"),
        (br#"{"prompt":"x"}"#, 400, "model is required"),
    ] {
        match route(addr, "/v1/completions", body, None).await {
            Routed::Refused { status: got, body } => {
                assert_eq!(got, status);
                assert!(body.contains(text), "{body}");
            }
            other => panic!("refused, got {other:?}"),
        }
    }
    // A stopped pod stops answering /metrics and ages out of the candidates.
    let Topology { epp, mut sims, .. } = topology;
    let gone = sims.pop().expect("two sims");
    let gone_addr = gone.addr().to_string();
    gone.shutdown().await.expect("clean shutdown");
    let deadline = Instant::now() + PATIENCE;
    while epp
        .datastore()
        .candidates()
        .iter()
        .any(|e| e.address == gone_addr)
    {
        assert!(Instant::now() < deadline, "the stopped pod ages out");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..10 {
        assert_eq!(
            route(epp.addr(), "/v1/completions", &completion("hi"), None).await,
            Routed::To(sims[0].addr().to_string())
        );
    }
    for sim in sims {
        let _ = sim.shutdown().await;
    }
    epp.shutdown().await;
}

/// The ext_proc port serves TLS by default, as upstream; a client that does not speak TLS is
/// dropped and counted, and a TLS client that trusts the certificate is routed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tls_port_counts_failed_handshakes_and_routes_tls_clients() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let topology = Topology::start_tls(1, &topology::random_config(), None).await;
    let mut plain = tokio::net::TcpStream::connect(topology.epp.addr())
        .await
        .expect("TCP connects");
    plain
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .expect("write");
    let mut rest = Vec::new();
    let _ = plain.read_to_end(&mut rest).await;
    let url = format!("http://{}/metrics", topology.epp.metrics_addr());
    let failures = metrics_schema::epp::TLS_HANDSHAKE_FAILURES_TOTAL.name;
    let deadline = Instant::now() + PATIENCE;
    while metric_sum(&scrape(&url).await, failures) < 1.0 {
        assert!(Instant::now() < deadline, "the failed handshake is counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let routed = route(
        topology.grpc(),
        "/v1/completions",
        &completion("Over TLS."),
        None,
    )
    .await;
    assert!(matches!(routed, Routed::To(_)), "{routed:?}");
    topology.shutdown().await;
}
