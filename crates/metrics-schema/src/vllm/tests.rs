//! Checks every family of vLLM 0.33's real exposition (`shared/golden/`) against [`super`].

use std::collections::BTreeSet;

use serde_json::Value;

use crate::{Kind, MetricDef};

const GOLDEN_FAMILIES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/golden/vllm_metrics_families.json"
);

/// The `max_model_len` the golden engine ran with.
const GOLDEN_MAX_MODEL_LEN: u64 = 4096;

fn golden_families() -> Vec<Value> {
    let text = std::fs::read_to_string(GOLDEN_FAMILIES)
        .unwrap_or_else(|error| panic!("cannot read {GOLDEN_FAMILIES}: {error}"));
    let golden: Value = serde_json::from_str(&text).expect("golden file is JSON");
    golden["families"]
        .as_array()
        .expect("`families` is an array")
        .clone()
}

/// The exposed name of a golden family: prometheus_client adds `_total` to counters.
fn exposed_name(family: &Value) -> String {
    let base = family["name"].as_str().expect("family name");
    match family["type"].as_str() {
        Some("counter") => format!("{base}_total"),
        _ => base.to_owned(),
    }
}

fn find(name: &str) -> Option<&'static MetricDef> {
    super::ALL
        .iter()
        .copied()
        .find(|metric| metric.name == name)
}

#[test]
fn every_golden_family_matches_its_definition() {
    let families = golden_families();
    assert!(
        families.len() >= 50,
        "golden file lists only {} families",
        families.len()
    );
    let mut mismatches = Vec::new();
    for family in &families {
        let name = exposed_name(family);
        let Some(metric) = find(&name) else {
            mismatches.push(format!("{name}: missing from metrics_schema::vllm::ALL"));
            continue;
        };
        let kind = match family["type"].as_str() {
            Some("counter") => Kind::Counter,
            Some("gauge") => Kind::Gauge,
            Some("histogram") => Kind::Histogram,
            other => panic!("{name}: unexpected type {other:?}"),
        };
        if metric.kind != kind {
            mismatches.push(format!("{name}: kind {:?}, golden {kind:?}", metric.kind));
        }
        let help = family["help"].as_str().expect("help");
        if metric.help != help {
            mismatches.push(format!("{name}: help {:?}, golden {help:?}", metric.help));
        }
        let label_sets = family["label_sets"].as_array().expect("label_sets");
        let ours: BTreeSet<&str> = metric.label_names().into_iter().collect();
        for label_set in label_sets {
            let golden: BTreeSet<&str> = label_set
                .as_array()
                .expect("label set")
                .iter()
                .map(|label| label.as_str().expect("label name"))
                .collect();
            if ours != golden {
                mismatches.push(format!("{name}: labels {ours:?}, golden {golden:?}"));
            }
        }
        let golden_buckets: Vec<f64> = match family.get("buckets") {
            Some(Value::Array(bounds)) => bounds
                .iter()
                .map(|bound| bound.as_f64().expect("bucket bound"))
                .collect(),
            _ => Vec::new(),
        };
        let our_buckets = metric.bucket_bounds(GOLDEN_MAX_MODEL_LEN);
        if our_buckets != golden_buckets {
            mismatches.push(format!(
                "{name}: buckets {our_buckets:?}, golden {golden_buckets:?}"
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "vLLM families differ from the golden:\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn every_vllm_prefixed_definition_is_in_the_golden_or_documented() {
    // Families we reproduce that the golden run could not produce; see the module doc.
    const NOT_IN_GOLDEN: &[&str] = &["vllm:cache_config_info"];
    let golden: BTreeSet<String> = golden_families().iter().map(exposed_name).collect();
    let extra: Vec<&str> = super::ALL
        .iter()
        .map(|metric| metric.name)
        .filter(|name| name.starts_with("vllm:"))
        .filter(|name| !golden.contains(*name) && !NOT_IN_GOLDEN.contains(name))
        .collect();
    assert!(
        extra.is_empty(),
        "vllm definitions not in the golden file: {extra:?}"
    );
}

#[test]
fn request_token_buckets_follow_max_model_len() {
    assert_eq!(
        super::REQUEST_PROMPT_TOKENS.bucket_bounds(100),
        vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]
    );
    assert_eq!(
        super::REQUEST_GENERATION_TOKENS.bucket_bounds(4).last(),
        Some(&2.0)
    );
}
