//! InferencePool discovery: the EPP follows a pool and its pods through a Kubernetes API
//! server on loopback (`test_support::kube_api`) and routes only to ready pods of the pool.
//! The two simulated pods share the pool's target port on two loopback addresses, as two pods
//! share it on two pod IPs.

#[path = "support/topology.rs"]
mod topology;

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use test_support::kube_api::{KubeApi, inference_pools, pods};
use topology::{
    LOOPBACK_PORTS, MODEL, PATIENCE, Routed, completion, free_port, metric_sum, route, scrape,
};

const NS: &str = "llm-d";

fn pool_object(port: u16) -> Value {
    json!({
        "apiVersion": "inference.networking.k8s.io/v1",
        "kind": "InferencePool",
        "metadata": {"name": "sim-pool", "namespace": NS},
        "spec": {
            "selector": {"matchLabels": {"app": "sim"}},
            "targetPorts": [{"number": port}],
            "endpointPickerRef": {"name": "epp", "port": {"number": 9002}},
        },
    })
}

fn pod_object(name: &str, ip: &str, ready: bool) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": "sim", "llm-d.ai/role": "decode"}},
        "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
    })
}

async fn sim(host: &str, port: u16) -> vllm_sim::Server {
    let args = [
        "vllm-sim",
        "--model",
        MODEL,
        "--host",
        host,
        "--port",
        &port.to_string(),
    ];
    vllm_sim::spawn(vllm_sim::Config::from_args(args).expect("simulator flags"))
        .await
        .expect("the simulator starts")
}

async fn routed_set(epp: &epp::Server, n: usize) -> BTreeSet<String> {
    let mut went = BTreeSet::new();
    for question in 0..n {
        match route(
            epp.addr(),
            "/v1/completions",
            &completion(&format!("q{question}")),
            None,
        )
        .await
        {
            Routed::To(destination) => {
                went.insert(destination);
            }
            refused => panic!("request {question} was refused: {refused:?}"),
        }
    }
    went
}

async fn wait_candidates(epp: &epp::Server, expected: &[&str]) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut now: Vec<String> = epp
            .datastore()
            .candidates()
            .iter()
            .map(|e| e.address.clone())
            .collect();
        now.sort();
        if now == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "candidates {now:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_epp_routes_to_the_ready_pods_of_its_pool() {
    let port = free_port();
    let (a, b) = (format!("127.0.0.1:{port}"), format!("127.0.0.2:{port}"));
    let sims = [sim("127.0.0.1", port).await, sim("127.0.0.2", port).await];

    let api = KubeApi::start().await;
    api.apply(
        &inference_pools(NS, "inference.networking.k8s.io", "v1"),
        pool_object(port),
    );
    api.apply(&pods(NS), pod_object("decode-a", "127.0.0.1", true));
    api.apply(&pods(NS), pod_object("decode-b", "127.0.0.2", true));
    api.apply(&pods(NS), pod_object("decode-c", "127.0.0.3", false));

    let args = [
        "--refresh-metrics-interval",
        "50ms",
        "--secure-serving=false",
        // Scraped below without a token; the auth test covers the guard.
        "--metrics-endpoint-auth=false",
        "--pool-name",
        "sim-pool",
        "--pool-namespace",
        NS,
        "--config-text",
        "plugins:\n- type: random-picker\n",
    ];
    let args = ["epp"].iter().chain(LOOPBACK_PORTS).chain(&args);
    let mut config = epp::Config::parse(args, &epp::env::TestEnv(HashMap::new())).expect("flags");
    config.kube_client = Some(epp::env::KubeClient(api.client()));
    let epp = epp::spawn(config).await.expect("the EPP starts");

    wait_candidates(&epp, &[&a, &b]).await;
    let went = routed_set(&epp, 24).await;
    assert_eq!(
        went,
        [a.clone(), b.clone()].into(),
        "both ready pods get traffic"
    );
    let metrics = scrape(&format!("http://{}/metrics", epp.metrics_addr())).await;
    assert_eq!(metric_sum(&metrics, "llm_d_pool_selected_endpoints"), 2.0);
    assert!(metric_sum(&metrics, "llm_d_pool_watch_events_total") >= 6.0);

    // decode-b stops being ready: it leaves the candidates and gets nothing more.
    api.apply(&pods(NS), pod_object("decode-b", "127.0.0.2", false));
    wait_candidates(&epp, &[&a]).await;
    assert_eq!(routed_set(&epp, 8).await, [a.clone()].into());

    // The pool disappears: nothing fits, so the gateway gets the EPP's 503.
    api.delete(
        &inference_pools(NS, "inference.networking.k8s.io", "v1"),
        "sim-pool",
    );
    wait_candidates(&epp, &[]).await;
    match route(epp.addr(), "/v1/completions", &completion("q"), None).await {
        Routed::Refused { status, .. } => assert_eq!(status, 503),
        routed => panic!("expected a 503, got {routed:?}"),
    }
    epp.shutdown().await;
    for sim in sims {
        let _ = sim.shutdown().await;
    }
}

/// `/metrics` of an EPP that follows a pool answers only tokens the API server authenticates
/// and authorizes for `get /metrics`, as upstream's; refusals are counted by reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_answer_only_tokens_allowed_to_read_them() {
    let api = KubeApi::start().await;
    api.apply(
        &inference_pools(NS, "inference.networking.k8s.io", "v1"),
        pool_object(8000),
    );
    let reader = "system:serviceaccount:llm-d-monitoring:prometheus";
    api.add_token("reader-token", reader);
    api.allow_metrics(reader);
    api.add_token("other-token", "system:serviceaccount:llm-d:default");
    let args = [
        "--secure-serving=false",
        "--pool-name",
        "sim-pool",
        "--pool-namespace",
        NS,
    ];
    let args = ["epp"].iter().chain(LOOPBACK_PORTS).chain(&args);
    let mut config = epp::Config::parse(args, &epp::env::TestEnv(HashMap::new())).expect("flags");
    assert!(
        config.metrics_auth,
        "on by default with a pool, as upstream"
    );
    config.kube_client = Some(epp::env::KubeClient(api.client()));
    let epp = epp::spawn(config).await.expect("the EPP starts");
    let url = format!("http://{}/metrics", epp.metrics_addr());
    let client = topology::client();
    let get = |token: Option<&'static str>| {
        let mut request = client.get(&url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let response = request.send().await.expect("metrics answers");
            let status = response.status().as_u16();
            (status, response.text().await.expect("body"))
        }
    };
    assert_eq!(get(None).await.0, 401);
    assert_eq!(get(Some("guessed")).await.0, 401);
    assert_eq!(get(Some("other-token")).await.0, 403);
    let (status, body) = get(Some("reader-token")).await;
    assert_eq!(status, 200, "{body}");
    let denied = metrics_schema::epp::METRICS_AUTH_DENIED_TOTAL.name;
    for (reason, count) in [
        ("missing_token", 1.0),
        ("unauthenticated", 1.0),
        ("forbidden", 1.0),
    ] {
        let line = format!("{denied}{{reason=\"{reason}\"}} ");
        let value = body
            .lines()
            .find_map(|l| l.strip_prefix(&line))
            .and_then(|v| v.parse::<f64>().ok());
        assert_eq!(value, Some(count), "{reason}");
    }
    // The verdict is cached: a second scrape asks the API server nothing.
    let before = api.requests();
    assert_eq!(get(Some("reader-token")).await.0, 200);
    assert_eq!(api.requests(), before);
    // A review that cannot be made refuses with 500 and is not cached.
    api.set_failing(true);
    assert_eq!(get(Some("other-token-2")).await.0, 500);
    api.set_failing(false);
    api.add_token("other-token-2", reader);
    assert_eq!(get(Some("other-token-2")).await.0, 200);
    epp.shutdown().await;
}
