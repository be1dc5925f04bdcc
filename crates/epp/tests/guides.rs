//! The guides' EPP values (`guides/*/gaie-*/values*.yaml`, rendered by `cargo xtask codegen
//! guides`) as the inferencepool chart passes them: the flags parse, every plugin config
//! starts a real EPP, and the simulator variant of the precise guide routes a repeated prompt
//! back to the pod that cached it.

#[path = "support/topology.rs"]
mod topology;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_norway::Value;

const GUIDES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../guides");

/// A tokenizer.json small enough to write in a test, standing in for the model's.
const WORD_LEVEL_TOKENIZER: &str = r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],"normalizer":null,"pre_tokenizer":{"type":"Whitespace"},"post_processor":null,"decoder":null,"model":{"type":"WordLevel","vocab":{"[UNK]":0,"hello":1},"unk_token":"[UNK]"}}"#;

struct GaieValues {
    path: PathBuf,
    values: Value,
}

impl GaieValues {
    fn config_text(&self) -> String {
        let extension = &self.values["inferenceExtension"];
        let file = extension["pluginsConfigFile"].as_str().expect("file name");
        extension["pluginsCustomConfig"][file]
            .as_str()
            .expect("plugin config")
            .to_owned()
    }

    /// `inferenceExtension.flags` as the chart renders a map: `--name value`.
    fn flags(&self) -> Vec<String> {
        let flags: BTreeMap<String, Value> =
            serde_norway::from_value(self.values["inferenceExtension"]["flags"].clone())
                .expect("flags map");
        flags
            .into_iter()
            .flat_map(|(name, value)| {
                let value = match value {
                    Value::String(text) => text,
                    other => serde_norway::to_string(&other)
                        .expect("scalar")
                        .trim()
                        .to_owned(),
                };
                [format!("--{name}"), value]
            })
            .collect()
    }

    fn is_sim(&self) -> bool {
        self.path.ends_with("values_sim.yaml")
    }
}

fn gaie_values() -> Vec<GaieValues> {
    let mut found = Vec::new();
    for guide in std::fs::read_dir(GUIDES).expect("guides/") {
        let guide = guide.expect("entry").path();
        let Ok(entries) = std::fs::read_dir(&guide) else {
            continue;
        };
        for entry in entries {
            let dir = entry.expect("entry").path();
            let is_gaie = dir
                .file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("gaie-"));
            if !is_gaie {
                continue;
            }
            for file in ["values.yaml", "values_sim.yaml"] {
                let path = dir.join(file);
                let text = std::fs::read_to_string(&path).expect("values file");
                let values = serde_norway::from_str(&text).expect("YAML");
                found.push(GaieValues { path, values });
            }
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    assert!(
        found.len() >= 4,
        "both guides, both variants: {}",
        found.len()
    );
    found
}

/// The istio provider's `inferenceExtension.flags`, which the helmfile adds.
fn provider_flags() -> Vec<String> {
    let path = Path::new(GUIDES).join("prereq/gateway-provider/common-configurations/istio.yaml");
    let text = std::fs::read_to_string(path).expect("istio.yaml");
    let values: Value = serde_norway::from_str(&text).expect("YAML");
    let verbosity = values["inferenceExtension"]["flags"]["v"]
        .as_u64()
        .expect("v");
    vec!["--v".to_owned(), verbosity.to_string()]
}

/// The config made runnable here: the KV-events socket on an ephemeral loopback port and the
/// model's tokenizer (a mounted volume in the cluster) written under `dir`.
fn localized(config: &str, dir: &Path) -> String {
    let mut config = config.replace("tcp://*:5557", "tcp://127.0.0.1:*");
    for line in config.clone().lines() {
        if let Some((_, path)) = line.split_once(": /tokenizers/") {
            let file = dir.join(path);
            std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
            std::fs::write(&file, WORD_LEVEL_TOKENIZER).expect("tokenizer.json");
        }
    }
    config = config.replace(": /tokenizers/", &format!(": {}/", dir.display()));
    config
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("epp-guides-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn parse(args: Vec<String>) -> Result<epp::Config, epp::env::EnvError> {
    epp::Config::parse(args, &epp::env::TestEnv(HashMap::new()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_guide_config_starts_the_epp_with_the_charts_arguments() {
    for (index, values) in gaie_values().iter().enumerate() {
        let dir = temp_dir(&index.to_string());
        let config_file = dir.join("config.yaml");
        std::fs::write(&config_file, localized(&values.config_text(), &dir)).expect("write");
        // The inferencepool chart's fixed arguments, its flags map, the provider's flags.
        let mut chart_args: Vec<String> = [
            "epp",
            "--pool-name",
            "gaie-guide",
            "--pool-namespace",
            "llm-d",
            "--zap-encoder",
            "json",
            "--config-file",
        ]
        .map(str::to_owned)
        .to_vec();
        chart_args.push(config_file.display().to_string());
        chart_args.extend(values.flags());
        chart_args.extend(provider_flags());
        // monitoring.prometheus.auth.enabled keeps the chart from passing
        // --metrics-endpoint-auth=false.
        let auth =
            values.values["inferenceExtension"]["monitoring"]["prometheus"]["auth"]["enabled"]
                .as_bool()
                .expect("auth.enabled");
        chart_args.push("--tracing=false".to_owned());
        if !auth {
            chart_args.push("--metrics-endpoint-auth=false".to_owned());
        }
        let parsed = parse(chart_args.clone())
            .unwrap_or_else(|error| panic!("{}: {error}", values.path.display()));
        assert_eq!(parsed.telemetry.log_format, telemetry::LogFormat::Json);
        assert_eq!(parsed.metrics_auth, auth, "{}", values.path.display());

        // Started for real, with static endpoints in place of the pool (no API server here).
        let mut local = chart_args;
        let pool_at = local
            .iter()
            .position(|arg| arg == "--pool-name")
            .expect("pool");
        local.drain(pool_at..pool_at + 4);
        local.extend(topology::LOOPBACK_PORTS.iter().map(|arg| (*arg).to_owned()));
        local.extend(
            [
                "--endpoint",
                "127.0.0.1:1;llm-d.ai/role=decode",
                "--endpoint",
                "127.0.0.1:2;llm-d.ai/role=prefill",
            ]
            .map(str::to_owned),
        );
        let server = epp::spawn(parse(local).expect("local flags"))
            .await
            .unwrap_or_else(|error| panic!("{}: {error:#}", values.path.display()));
        assert_eq!(
            server.kv_events_endpoints().len(),
            1,
            "{}: one KV-events socket",
            values.path.display()
        );
        server.shutdown().await;
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_precise_guide_routes_a_repeated_prompt_to_the_pod_that_cached_it() {
    let values = gaie_values()
        .into_iter()
        .find(|values| {
            values.is_sim()
                && values
                    .path
                    .to_string_lossy()
                    .contains("precise-prefix-cache-aware")
        })
        .expect("the precise guide's simulator values");
    let dir = temp_dir("precise");
    let config = localized(&values.config_text(), &dir);
    // The guide's block size (64), but the simulators' default of 16 would never fill a
    // block with this prompt: start them with the guide's size.
    let block_size = config
        .lines()
        .find_map(|line| line.trim().strip_prefix("blockSize: "))
        .expect("blockSize")
        .to_owned();
    let topology =
        topology::Topology::start_with_sim_args(3, &config, &["--block-size", &block_size]).await;
    let prompt = topology::shared_prefix(0, 600);
    let first = topology::send_until_indexed(&topology, &prompt).await;
    // Once the blocks are indexed the pick is the cache, not a tie broken at random.
    for _ in 0..10 {
        let routed = topology::route(
            topology.grpc(),
            "/v1/completions",
            &topology::completion(&prompt),
            None,
        )
        .await;
        assert_eq!(routed, topology::Routed::To(first.clone()));
    }
    topology.shutdown().await;
    std::fs::remove_dir_all(&dir).expect("clean up");
}
