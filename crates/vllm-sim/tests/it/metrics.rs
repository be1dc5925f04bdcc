//! `/metrics` after traffic carries vLLM 0.33's core families with the same names, types,
//! label names and buckets as the golden exposition.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::support::{post, scrape, sim};

/// Families that exist only with a NIXL connector, a KV-consumer role, LoRA or
/// `--kv-cache-metrics`; not part of a plain engine's exposition.
fn is_core(name: &str) -> bool {
    !(name.starts_with("vllm:nixl_")
        || name.starts_with("vllm:kv_block_")
        || name == "vllm:num_requests_kv_fetch_by_stage"
        || name == "vllm:lora_requests_info")
}

#[tokio::test]
async fn core_families_match_the_golden_exposition() {
    let golden: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/golden/vllm_metrics_families.json"
        ))
        .expect("golden families file"),
    )
    .unwrap();
    // The golden engine ran with max_model_len 4096, which fixes the token buckets.
    let server = sim(&["--max-model-len", "4096"]).await;
    let url = format!("{}/v1/completions", server.url());
    for _ in 0..3 {
        let (status, _) = post(
            &url,
            &json!({"prompt": "Count the families.", "max_tokens": 3}),
        )
        .await;
        assert_eq!(status, 200);
    }
    let exposition = scrape(&server).await;
    let mut checked = 0;
    for family in golden["families"].as_array().unwrap() {
        let name = family["name"].as_str().unwrap();
        if !is_core(name) {
            continue;
        }
        let kind = family["type"].as_str().unwrap();
        // prometheus_client names counter families without `_total`; samples carry it.
        let exposed = if kind == "counter" {
            format!("{name}_total")
        } else {
            name.to_owned()
        };
        assert_eq!(
            exposition.types.get(&exposed).map(String::as_str),
            Some(kind),
            "{exposed}"
        );
        let sample_name = match kind {
            "histogram" => format!("{exposed}_bucket"),
            _ => exposed.clone(),
        };
        let samples: Vec<_> = exposition
            .samples
            .iter()
            .filter(|s| s.name == sample_name)
            .collect();
        assert!(!samples.is_empty(), "{sample_name} has no samples");
        let golden_labels: BTreeSet<&str> = family["label_sets"][0]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        for sample in &samples {
            let labels: BTreeSet<&str> = sample
                .labels
                .keys()
                .map(String::as_str)
                .filter(|l| *l != "le")
                .collect();
            assert_eq!(labels, golden_labels, "{sample_name}");
        }
        if kind == "histogram" {
            let golden_buckets: Vec<f64> = family["buckets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b.as_f64().unwrap())
                .collect();
            let first = &samples[0].labels;
            let mut buckets: Vec<f64> = samples
                .iter()
                .filter(|s| {
                    first
                        .iter()
                        .all(|(k, v)| k == "le" || s.labels.get(k) == Some(v))
                })
                .map(|s| s.labels["le"].parse::<f64>().unwrap())
                .filter(|b| b.is_finite())
                .collect();
            buckets.sort_by(f64::total_cmp);
            assert_eq!(buckets, golden_buckets, "{name} buckets");
        }
        checked += 1;
    }
    // 51 golden families less 8 NIXL, 3 block-residency, LoRA info and KV-fetch stages.
    assert_eq!(checked, 38);
    // Values come from what the engine did.
    assert_eq!(
        exposition.value(
            "vllm:request_success_total",
            &[("finished_reason", "length")]
        ),
        Some(3.0)
    );
    assert_eq!(
        exposition.value("vllm:generation_tokens_total", &[]),
        Some(9.0)
    );
    assert_eq!(
        exposition.value("vllm:time_to_first_token_seconds_count", &[]),
        Some(3.0)
    );
    assert_eq!(
        exposition.value("vllm:inter_token_latency_seconds_count", &[]),
        Some(6.0)
    );
    assert_eq!(
        exposition.value("vllm:num_requests_running", &[]),
        Some(0.0)
    );
    server.shutdown().await.unwrap();
}
