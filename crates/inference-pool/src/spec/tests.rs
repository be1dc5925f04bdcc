//! Pool specs of both versions, and the ways a spec or reference can be wrong.

use serde_json::json;

use super::*;

#[test]
fn v1_and_v1alpha2_specs_read_alike() {
    let v1 = json!({"spec": {
        "selector": {"matchLabels": {"app": "vllm", "llm-d.ai/role": "decode"}},
        "targetPorts": [{"number": 8000}, {"number": 8001}],
        "endpointPickerRef": {"name": "epp", "port": {"number": 9002}},
    }});
    let spec = PoolSpec::from_object(&v1, "v1").unwrap();
    assert_eq!(spec.target_ports, [8000, 8001]);
    assert_eq!(spec.selector["llm-d.ai/role"], "decode");

    let v1alpha2 = json!({"spec": {"selector": {"app": "vllm"}, "targetPortNumber": 8000,
        "extensionRef": {"name": "epp"}}});
    let spec = PoolSpec::from_object(&v1alpha2, "v1alpha2").unwrap();
    assert_eq!(spec.target_ports, [8000]);
    assert_eq!(spec.selector["app"], "vllm");
}

#[test]
fn bad_specs_name_the_field() {
    let cases = [
        (json!({}), "spec is missing"),
        (
            json!({"spec": {"targetPorts": [{"number": 8000}]}}),
            "spec.selector: missing or empty; it must name labels",
        ),
        (
            json!({"spec": {"selector": {"matchLabels": {}}, "targetPorts": [{"number": 1}]}}),
            "spec.selector: missing or empty; it must name labels",
        ),
        (
            json!({"spec": {"selector": {"matchExpressions": []}, "targetPorts": []}}),
            "spec.selector: matchExpressions is not supported by InferencePool; use matchLabels",
        ),
        (
            json!({"spec": {"selector": {"matchLabels": {"a": 1}}, "targetPorts": [{"number": 1}]}}),
            "spec.selector: label \"a\" is not a string",
        ),
        (
            json!({"spec": {"selector": {"matchLabels": {"a": "b"}}}}),
            "spec.targetPorts: missing or not a list",
        ),
        (
            json!({"spec": {"selector": {"matchLabels": {"a": "b"}}, "targetPorts": []}}),
            "spec.targetPorts: must list 1 to 8 ports",
        ),
        (
            json!({"spec": {"selector": {"matchLabels": {"a": "b"}},
                "targetPorts": [{"number": 8000}, {"number": 8000}]}}),
            "spec.targetPorts: 8000 is listed twice",
        ),
        (
            json!({"spec": {"selector": {"matchLabels": {"a": "b"}},
                "targetPorts": [{"number": 70000}]}}),
            "spec.targetPorts: 70000 is not a port number",
        ),
        (
            json!({"spec": {"selector": {"matchLabels": {"a": "b"}}, "targetPorts": [{}]}}),
            "spec.targetPorts: null is not a port number",
        ),
    ];
    for (object, expected) in cases {
        let error = PoolSpec::from_object(&object, "v1").unwrap_err();
        assert_eq!(error.to_string(), expected, "{object}");
    }
}

#[test]
fn references_parse_like_the_sidecar_flag() {
    let pool = PoolRef::parse("llm-d/my-pool", "default", GROUP_V1).unwrap();
    assert_eq!(
        (pool.namespace.as_str(), pool.name.as_str()),
        ("llm-d", "my-pool")
    );
    assert_eq!(pool.to_string(), "llm-d/my-pool");
    let pool = PoolRef::parse("my-pool", DEFAULT_NAMESPACE, GROUP_V1ALPHA2).unwrap();
    assert_eq!(pool.namespace, "default");
    assert_eq!(
        pool.api_resource().api_version,
        "inference.networking.x-k8s.io/v1alpha2"
    );
    for bad in ["", "/x", "a/", "Upper", "a b", "a/b/c"] {
        assert!(PoolRef::parse(bad, "default", GROUP_V1).is_err(), "{bad:?}");
    }
    let error = PoolRef::parse("p", "default", "example.com").unwrap_err();
    assert_eq!(
        error.to_string(),
        "API group \"example.com\" is neither inference.networking.k8s.io nor inference.networking.x-k8s.io"
    );
}
