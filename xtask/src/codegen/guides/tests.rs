//! The rendered guides read back as YAML, with the cross-file names upstream keeps in sync by
//! hand checked here. The binaries' own tests load the same files (the EPP its plugin
//! configs, the sidecar and the simulator the arguments the charts render).

use std::collections::BTreeMap;

use serde::Deserialize as _;
use serde_norway::Value;

use super::monitoring::DASHBOARD_LABEL;
use super::{DIR, Guide, KV_EVENTS_PORT, SERVICE_PORT, files, guides, render};

fn rendered() -> BTreeMap<String, String> {
    render().into_iter().collect()
}

fn yaml_documents(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|document| Value::deserialize(document).expect("valid YAML"))
        .filter(|value| !value.is_null())
        .collect()
}

fn file<'a>(files: &'a BTreeMap<String, String>, guide: &Guide, name: &str) -> &'a str {
    let path = format!("{DIR}/{}/{name}", guide.name);
    files
        .get(&path)
        .unwrap_or_else(|| panic!("{path} not rendered"))
}

fn get<'a>(value: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(value, |value, key| {
        value
            .get(key)
            .unwrap_or_else(|| panic!("no {key} in {path}"))
    })
}

fn string_map(value: &Value) -> BTreeMap<String, String> {
    serde_norway::from_value(value.clone()).expect("string map")
}

#[test]
fn every_yaml_file_parses() {
    for (path, text) in rendered() {
        if path.ends_with(".yaml") {
            assert!(!yaml_documents(&text).is_empty(), "{path} is empty");
        }
    }
}

#[test]
fn helmfiles_name_only_files_that_exist() {
    let files = rendered();
    for guide in guides() {
        let helmfile = file(&files, &guide, "helmfile.yaml.gotmpl");
        // Document 1 (environments) is plain YAML; every values file it names exists.
        let environments = helmfile.split("\n---\n").next().expect("two documents");
        let environments = yaml_documents(environments);
        let referenced = serde_norway::to_string(&environments).expect("serialize");
        for line in referenced.lines() {
            if let Some(relative) = line.trim().strip_prefix("- ../") {
                let path = format!("{DIR}/{relative}");
                assert!(files.contains_key(&path), "{path} is not rendered");
            }
        }
        for line in helmfile.lines() {
            let line = line.trim();
            if let Some(values) = line.strip_prefix("- ")
                && values.ends_with(".yaml")
                && !values.starts_with("../")
            {
                let path = format!("{DIR}/{}/{values}", guide.name);
                assert!(files.contains_key(&path), "{path} is not rendered");
            }
        }
        let opens = helmfile.matches("{{- if").count();
        let ends = helmfile.matches("{{- end }}").count();
        assert_eq!(opens, ends, "unbalanced if/end in {}", guide.name);
        assert!(
            helmfile.contains(&format!("default \"{}\"", guide.namespace)),
            "{}",
            guide.name
        );
    }
}

#[test]
fn pool_selects_the_model_server_pods() {
    let files = rendered();
    for guide in guides() {
        for sim in ["", "_sim"] {
            let gaie = yaml_documents(file(
                &files,
                &guide,
                &format!("{}/values{sim}.yaml", guide.gaie_dir()),
            ))
            .remove(0);
            let ms = yaml_documents(file(
                &files,
                &guide,
                &format!("{}/values{sim}.yaml", guide.ms_dir()),
            ))
            .remove(0);
            let selector = string_map(get(&gaie, "inferencePool.modelServers.matchLabels"));
            let labels = string_map(get(&ms, "modelArtifacts.labels"));
            for (key, value) in &selector {
                assert_eq!(labels.get(key), Some(value), "{}: {key}", guide.name);
            }
            let port = get(&gaie, "inferencePool.targetPorts")[0]["number"].as_u64();
            assert_eq!(port, Some(u64::from(SERVICE_PORT)));
            assert_eq!(
                get(&ms, "routing.servicePort").as_u64(),
                Some(u64::from(SERVICE_PORT))
            );
        }
    }
}

/// The `--<flag>=<value>` arguments of the first container of `role`.
fn container_args(ms: &Value, role: &str) -> Vec<String> {
    get(ms, role)["containers"][0]["args"]
        .as_sequence()
        .expect("args")
        .iter()
        .map(|arg| arg.as_str().expect("string arg").to_owned())
        .collect()
}

fn flag<'a>(args: &'a [String], name: &str) -> &'a str {
    let prefix = format!("--{name}=");
    args.iter()
        .find_map(|arg| arg.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no --{name}"))
}

#[test]
fn block_size_and_kv_events_agree_between_vllm_and_the_epp() {
    let files = rendered();
    for guide in guides() {
        for sim in [false, true] {
            let suffix = if sim { "_sim" } else { "" };
            let ms = yaml_documents(file(
                &files,
                &guide,
                &format!("{}/values{suffix}.yaml", guide.ms_dir()),
            ))
            .remove(0);
            let gaie = yaml_documents(file(
                &files,
                &guide,
                &format!("{}/values{suffix}.yaml", guide.gaie_dir()),
            ))
            .remove(0);
            let config_file = get(&gaie, "inferenceExtension.pluginsConfigFile")
                .as_str()
                .expect("file name");
            let config_text = get(&gaie, "inferenceExtension.pluginsCustomConfig")[config_file]
                .as_str()
                .expect("config text");
            assert_eq!(config_text, files::plugins_config(&guide, sim));
            let config = yaml_documents(config_text).remove(0);
            let scorer = config["plugins"]
                .as_sequence()
                .expect("plugins")
                .iter()
                .find(|plugin| plugin["type"] == "precise-prefix-cache-scorer")
                .expect("precise scorer");
            let block_size = scorer["parameters"]["tokenProcessorConfig"]["blockSize"].as_u64();
            let zmq = scorer["parameters"]["kvEventsConfig"]["zmqEndpoint"]
                .as_str()
                .expect("zmq endpoint");
            assert_eq!(zmq, format!("tcp://*:{KV_EVENTS_PORT}"));
            let roles: &[&str] = if guide.prefill.is_some() {
                &["decode", "prefill"]
            } else {
                &["decode"]
            };
            for role in roles {
                let args = container_args(&ms, role);
                assert_eq!(
                    flag(&args, "block-size").parse::<u64>().ok(),
                    block_size,
                    "{} {role}",
                    guide.name
                );
                let events: serde_json::Value =
                    serde_json::from_str(flag(&args, "kv-events-config")).expect("JSON");
                let endpoint = events["endpoint"].as_str().expect("endpoint");
                assert_eq!(
                    endpoint,
                    format!(
                        "tcp://gaie-$(GAIE_RELEASE_NAME_POSTFIX)-epp.$(NAMESPACE).svc.cluster.local:{KV_EVENTS_PORT}"
                    )
                );
                assert_eq!(
                    events["topic"],
                    format!("kv@$(POD_IP):{SERVICE_PORT}@{}", guide.model.id)
                );
                // Kubernetes expands $(VAR) only from env declared in the same container,
                // and the helmfile fills env[0] with the release postfix.
                let env = get(&ms, role)["containers"][0]["env"]
                    .as_sequence()
                    .expect("env");
                assert_eq!(env[0]["name"], "GAIE_RELEASE_NAME_POSTFIX");
                for var in ["NAMESPACE", "POD_IP"] {
                    assert!(env.iter().any(|e| e["name"] == var), "{role}: {var}");
                }
            }
        }
    }
}

#[test]
fn httproute_targets_the_pool_behind_the_gateway() {
    let files = rendered();
    for guide in guides() {
        let route = yaml_documents(file(&files, &guide, "httproute.yaml")).remove(0);
        assert_eq!(route["spec"]["parentRefs"][0]["name"], guide.gateway());
        let backend = &route["spec"]["rules"][0]["backendRefs"][0];
        assert_eq!(backend["kind"], "InferencePool");
        assert_eq!(backend["name"], guide.pool());
        assert_eq!(backend["port"].as_u64(), Some(u64::from(SERVICE_PORT)));
    }
}

#[test]
fn dashboard_configmaps_hold_the_dashboards() {
    let files = rendered();
    let text = &files[&format!("{DIR}/monitoring/dashboards.yaml")];
    let maps = yaml_documents(text);
    let dashboards = crate::codegen::dashboards::render();
    assert_eq!(maps.len(), dashboards.len());
    for (map, (path, json)) in maps.iter().zip(&dashboards) {
        assert_eq!(map["kind"], "ConfigMap");
        assert_eq!(
            map["metadata"]["labels"][DASHBOARD_LABEL.0],
            DASHBOARD_LABEL.1
        );
        let key = path.rsplit('/').next().expect("file name");
        let data = map["data"][key].as_str().expect("dashboard JSON");
        let back: serde_json::Value = serde_json::from_str(data).expect("JSON");
        let original: serde_json::Value = serde_json::from_str(json).expect("JSON");
        assert_eq!(back, original, "{key}");
        let object = serde_norway::to_string(map).expect("serialize");
        assert!(
            object.len() < 256 * 1024,
            "{key}: {} bytes is over kubectl's last-applied limit",
            object.len()
        );
    }
}
