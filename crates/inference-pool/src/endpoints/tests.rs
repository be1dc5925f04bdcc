//! Which pods become endpoints, data-driven.

use serde_json::json;

use super::*;

fn pod(
    name: &str,
    labels: &[(&str, &str)],
    ip: Option<&str>,
    ready: bool,
    deleting: bool,
) -> PoolPod {
    PoolPod {
        name: name.to_owned(),
        namespace: "ns".to_owned(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ip: ip.map(str::to_owned),
        ready,
        deleting,
    }
}

#[test]
fn only_ready_matching_pods_with_an_ip_become_one_endpoint_per_port() {
    let spec = PoolSpec {
        selector: [("app".to_owned(), "vllm".to_owned())].into(),
        target_ports: vec![8000, 8001],
    };
    let app = [("app", "vllm"), ("llm-d.ai/role", "decode")];
    let pods = [
        pod("a", &app, Some("10.0.0.1"), true, false),
        pod("not-ready", &app, Some("10.0.0.2"), false, false),
        pod("deleting", &app, Some("10.0.0.3"), true, true),
        pod("no-ip", &app, None, true, false),
        pod(
            "other-app",
            &[("app", "sglang")],
            Some("10.0.0.4"),
            true,
            false,
        ),
        pod("unlabelled", &[], Some("10.0.0.5"), true, false),
        pod("v6", &app, Some("fd00::7"), true, false),
    ];
    let endpoints = select(&spec, &pods);
    let summary: Vec<(String, usize, String)> = endpoints
        .iter()
        .map(|e| (e.address.clone(), e.rank, e.pod.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            ("10.0.0.1:8000".to_owned(), 0, "a".to_owned()),
            ("10.0.0.1:8001".to_owned(), 1, "a".to_owned()),
            ("[fd00::7]:8000".to_owned(), 0, "v6".to_owned()),
            ("[fd00::7]:8001".to_owned(), 1, "v6".to_owned()),
        ]
    );
    assert_eq!(endpoints[0].labels["llm-d.ai/role"], "decode");
}

#[test]
fn readiness_comes_from_the_pod_ready_condition() {
    let pod_json = |ready: &str| {
        json!({
            "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "vllm"}},
            "status": {"podIP": "10.1.2.3", "conditions": [
                {"type": "ContainersReady", "status": "True"},
                {"type": "Ready", "status": ready},
            ]},
        })
    };
    let ready: Pod = serde_json::from_value(pod_json("True")).unwrap();
    let not_ready: Pod = serde_json::from_value(pod_json("False")).unwrap();
    assert!(PoolPod::from(&ready).ready);
    assert!(!PoolPod::from(&not_ready).ready);
    assert_eq!(PoolPod::from(&ready).ip.as_deref(), Some("10.1.2.3"));
    let pending: Pod = serde_json::from_value(json!({"metadata": {"name": "q"}})).unwrap();
    let pending = PoolPod::from(&pending);
    assert!(!pending.ready && pending.ip.is_none());
}
