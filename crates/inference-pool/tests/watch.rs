//! The watcher against a Kubernetes API server on loopback (`test_support::kube_api`): pods
//! and the pool change, the pool disappears and comes back broken, the server goes down and
//! comes back with changes made meanwhile.

use std::sync::Arc;
use std::time::Duration;

use inference_pool::spec::GROUP_V1;
use inference_pool::{PoolRef, PoolState, WatchMetrics, watch};
use serde_json::{Value, json};
use test_support::kube_api::{KubeApi, inference_pools, pods};

const NS: &str = "llm-d";

fn pool(selector: Value, ports: &[u16]) -> Value {
    json!({
        "apiVersion": "inference.networking.k8s.io/v1",
        "kind": "InferencePool",
        "metadata": {"name": "pool", "namespace": NS},
        "spec": {
            "selector": {"matchLabels": selector},
            "targetPorts": ports.iter().map(|p| json!({"number": p})).collect::<Vec<_>>(),
            "endpointPickerRef": {"name": "epp", "port": {"number": 9002}},
        },
    })
}

fn pod(name: &str, ip: &str, role: &str, ready: bool) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": "vllm", "llm-d.ai/role": role}},
        "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
    })
}

fn addresses(state: &PoolState) -> Vec<&str> {
    state.endpoints.iter().map(|e| e.address.as_str()).collect()
}

/// Waits (bounded) until the published state satisfies `done`.
async fn until(
    receiver: &mut tokio::sync::watch::Receiver<Arc<PoolState>>,
    what: &str,
    done: impl Fn(&PoolState) -> bool,
) -> Arc<PoolState> {
    let waited = tokio::time::timeout(
        Duration::from_secs(30),
        receiver.wait_for(|state| done(state)),
    )
    .await
    .map(|state| state.map(|state| Arc::clone(&state)));
    match waited {
        Ok(Ok(state)) => state,
        _ => panic!(
            "timed out waiting for {what}; last state {:?}",
            receiver.borrow()
        ),
    }
}

fn scrape(registry: &prometheus::Registry, name: &str, resource: &str) -> f64 {
    registry
        .gather()
        .iter()
        .filter(|family| family.name() == name)
        .flat_map(|family| family.get_metric().to_vec())
        .filter(|metric| metric.get_label().iter().any(|l| l.value() == resource))
        .map(|metric| metric.get_counter().get_value())
        .sum()
}

#[tokio::test]
async fn endpoints_follow_the_pool_and_its_pods() {
    let api = KubeApi::start().await;
    let pools = inference_pools(NS, GROUP_V1, "v1");
    api.apply(&pools, pool(json!({"app": "vllm"}), &[8000]));
    api.apply(&pods(NS), pod("decode-0", "10.0.0.1", "decode", true));
    api.apply(&pods(NS), pod("decode-1", "10.0.0.2", "decode", false));
    // Another namespace's pod and another pool never count.
    api.apply(&pods("other"), pod("stranger", "10.9.9.9", "decode", true));
    let mut other_pool = pool(json!({"app": "vllm"}), &[9999]);
    other_pool["metadata"]["name"] = json!("other-pool");
    api.apply(&pools, other_pool);

    let registry = prometheus::Registry::new();
    let metrics = WatchMetrics::register(&registry).unwrap();
    let pool_ref = PoolRef::new(NS, "pool", GROUP_V1).unwrap();
    let watch = watch(api.client(), pool_ref, Some(metrics));
    let mut states = watch.receiver();

    let state = until(&mut states, "the first sync", |s| s.synced).await;
    assert_eq!(addresses(&state), ["10.0.0.1:8000"]);
    assert_eq!(state.problem, None);

    api.apply(&pods(NS), pod("decode-1", "10.0.0.2", "decode", true));
    until(&mut states, "decode-1 ready", |s| {
        addresses(s) == ["10.0.0.1:8000", "10.0.0.2:8000"]
    })
    .await;

    // Two target ports: one endpoint per pod and port, ranked by position.
    api.apply(
        &pools,
        pool(json!({"llm-d.ai/role": "decode"}), &[8000, 8001]),
    );
    let state = until(&mut states, "two ports", |s| s.endpoints.len() == 4).await;
    assert_eq!(
        state.endpoints.iter().map(|e| e.rank).collect::<Vec<_>>(),
        [0, 1, 0, 1]
    );

    api.delete(&pods(NS), "decode-0");
    until(&mut states, "decode-0 gone", |s| {
        addresses(s) == ["10.0.0.2:8000", "10.0.0.2:8001"]
    })
    .await;

    api.delete(&pools, "pool");
    let state = until(&mut states, "pool deleted", |s| s.spec.is_none()).await;
    assert!(state.endpoints.is_empty());
    assert_eq!(
        state.problem.as_deref(),
        Some("InferencePool llm-d/pool not found")
    );

    let mut broken = pool(json!({"app": "vllm"}), &[8000]);
    broken["spec"]["targetPorts"] = json!([]);
    api.apply(&pools, broken);
    let state = until(&mut states, "a broken pool", |s| {
        s.problem.as_deref() != Some("InferencePool llm-d/pool not found")
    })
    .await;
    assert_eq!(
        state.problem.as_deref(),
        Some("InferencePool llm-d/pool: spec.targetPorts: must list 1 to 8 ports")
    );
    assert!(scrape(&registry, "llm_d_pool_watch_events_total", "pods") >= 4.0);
    assert_eq!(
        scrape(&registry, "llm_d_pool_watch_errors_total", "pods"),
        0.0
    );
}

#[tokio::test]
async fn an_outage_is_counted_and_changes_made_during_it_arrive_after() {
    let api = KubeApi::start().await;
    let pools = inference_pools(NS, GROUP_V1, "v1");
    api.apply(&pools, pool(json!({"app": "vllm"}), &[8000]));
    api.apply(&pods(NS), pod("decode-0", "10.0.0.1", "decode", true));
    let registry = prometheus::Registry::new();
    let metrics = WatchMetrics::register(&registry).unwrap();
    let watch = watch(
        api.client(),
        PoolRef::new(NS, "pool", GROUP_V1).unwrap(),
        Some(metrics),
    );
    let mut states = watch.receiver();
    until(&mut states, "the first sync", |s| {
        addresses(s) == ["10.0.0.1:8000"]
    })
    .await;

    api.set_failing(true);
    api.apply(&pods(NS), pod("decode-1", "10.0.0.2", "decode", true));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while scrape(&registry, "llm_d_pool_watch_errors_total", "pods") < 1.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no watch error was counted; {} requests",
            api.requests()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // During the outage the last known endpoints stay.
    assert_eq!(addresses(&watch.current()), ["10.0.0.1:8000"]);
    api.set_failing(false);
    until(&mut states, "recovery", |s| {
        addresses(s) == ["10.0.0.1:8000", "10.0.0.2:8000"]
    })
    .await;
}

#[tokio::test]
async fn v1alpha2_pools_are_read_from_their_own_group() {
    let api = KubeApi::start().await;
    let group = inference_pool::spec::GROUP_V1ALPHA2;
    api.apply(
        &inference_pools(NS, group, "v1alpha2"),
        json!({
            "apiVersion": "inference.networking.x-k8s.io/v1alpha2",
            "kind": "InferencePool",
            "metadata": {"name": "pool", "namespace": NS},
            "spec": {"selector": {"app": "vllm"}, "targetPortNumber": 8200, "extensionRef": {"name": "epp"}},
        }),
    );
    api.apply(&pods(NS), pod("decode-0", "10.0.0.1", "decode", true));
    let watch = watch(api.client(), PoolRef::new(NS, "pool", group).unwrap(), None);
    let mut states = watch.receiver();
    let state = until(&mut states, "the first sync", |s| s.synced).await;
    assert_eq!(addresses(&state), ["10.0.0.1:8200"]);
}
