//! The guides' simulator values (`guides/*/ms-*/values_sim.yaml`, rendered by `cargo xtask
//! codegen guides`) as the modelservice chart runs them: `modelCommand: imageDefault` passes
//! `--model`, `--port` and `--served-model-name` (and, with tracing on,
//! `--otlp-traces-endpoint` and `--collect-detailed-traces`) before the guide's arguments,
//! and Kubernetes expands `$(VAR)` from the container's env.

use std::collections::HashMap;

use serde_norway::Value;

const GUIDES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../guides");

fn sim_values() -> Vec<(String, Value)> {
    let mut found = Vec::new();
    for guide in std::fs::read_dir(GUIDES).expect("guides/") {
        let guide = guide.expect("entry").path();
        let Ok(entries) = std::fs::read_dir(&guide) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("entry").path().join("values_sim.yaml");
            let is_ms = path
                .parent()
                .and_then(|dir| dir.file_name())
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("ms-"));
            if is_ms {
                let text = std::fs::read_to_string(&path).expect("values");
                found.push((
                    path.display().to_string(),
                    serde_norway::from_str(&text).expect("YAML"),
                ));
            }
        }
    }
    assert!(found.len() >= 2, "both guides");
    found
}

/// Kubernetes' `$(VAR)` expansion with the values a pod would see.
fn expand(arg: &str, env: &HashMap<&str, &str>) -> String {
    let mut out = arg.to_owned();
    for (name, value) in env {
        out = out.replace(&format!("$({name})"), value);
    }
    assert!(!out.contains("$("), "unexpanded variable in {out}");
    out
}

#[test]
fn every_simulated_pod_starts_from_the_charts_arguments() {
    let env = HashMap::from([
        ("GAIE_RELEASE_NAME_POSTFIX", "guide"),
        ("NAMESPACE", "llm-d"),
        ("POD_IP", "10.0.0.7"),
    ]);
    for (path, values) in sim_values() {
        let model = values["modelArtifacts"]["name"].as_str().expect("model");
        for role in ["decode", "prefill"] {
            if values[role]["create"].as_bool() != Some(true) {
                continue;
            }
            let container = &values[role]["containers"][0];
            assert_eq!(container["modelCommand"], "imageDefault", "{path}");
            let port = container["ports"]
                .as_sequence()
                .expect("ports")
                .iter()
                .find(|port| port["name"] == "vllm")
                .and_then(|port| port["containerPort"].as_u64())
                .expect("the port named vllm");
            // The image's entrypoint, then what the chart appends.
            let mut args = vec![
                "vllm-sim".to_owned(),
                "--host".to_owned(),
                "0.0.0.0".to_owned(),
                "--model".to_owned(),
                model.to_owned(),
                "--port".to_owned(),
                port.to_string(),
                "--served-model-name".to_owned(),
                model.to_owned(),
                "--otlp-traces-endpoint".to_owned(),
                values["tracing"]["otlpEndpoint"]
                    .as_str()
                    .expect("endpoint")
                    .to_owned(),
                "--collect-detailed-traces".to_owned(),
                "all".to_owned(),
            ];
            for arg in container["args"].as_sequence().expect("args") {
                args.push(expand(arg.as_str().expect("string"), &env));
            }
            let config = vllm_sim::Config::parse(args, &vllm_sim::env::TestEnv(HashMap::new()))
                .unwrap_or_else(|error| panic!("{path} {role}: {error}"));
            assert_eq!(u64::from(config.port), port);
            assert!(config.host.is_unspecified(), "all interfaces in a pod");
            assert_eq!(config.served_model_names, [model]);
            let events: serde_json::Value =
                serde_json::from_str(config.kv_events_config.as_deref().expect("KV events"))
                    .expect("JSON");
            assert_eq!(
                events["endpoint"],
                "tcp://gaie-guide-epp.llm-d.svc.cluster.local:5557"
            );
            assert_eq!(events["topic"], format!("kv@10.0.0.7:8000@{model}"));
        }
    }
}

#[test]
fn a_repeated_flag_takes_its_last_value_as_argparse_does() {
    let config = vllm_sim::Config::parse(
        [
            "vllm-sim",
            "--host",
            "0.0.0.0",
            "--port",
            "9",
            "--host",
            "127.0.0.1",
        ],
        &vllm_sim::env::TestEnv(HashMap::new()),
    )
    .expect("valid");
    assert_eq!(config.host.to_string(), "127.0.0.1");
}

#[test]
fn detailed_traces_need_an_endpoint_as_in_vllm() {
    let error = vllm_sim::Config::parse(
        ["vllm-sim", "--collect-detailed-traces", "all"],
        &vllm_sim::env::TestEnv(HashMap::new()),
    )
    .unwrap_err();
    assert!(
        error.to_string().contains("collect-detailed-traces"),
        "{error}"
    );
}
