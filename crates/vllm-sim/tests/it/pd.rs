//! P/D roles: a producer leases the prompt's blocks and answers with vLLM's
//! `kv_transfer_params`; a consumer pulls the bytes over the side channel before its first
//! token, frees the lease, and `vllm:nixl_*` report the real transfers.

use std::{
    collections::{BTreeSet, HashMap},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::support::{Exposition, client, post, scrape};

const PRODUCER: &str =
    r#"{"kv_connector":"NixlConnector","kv_role":"kv_producer","engine_id":"prefill-0"}"#;
const CONSUMER: &str = r#"{"kv_connector":"NixlConnector","kv_role":"kv_consumer"}"#;
/// The default model shape: 24 layers × 2 KV heads × 64 × 2 (K, V) × 2 bytes.
const BYTES_PER_TOKEN: f64 = 12_288.0;
const BLOCK_SIZE: f64 = 16.0;

/// A simulator whose side channel binds an ephemeral loopback port.
async fn pd_sim(kv_transfer_config: &str, extra: &[&str]) -> vllm_sim::Server {
    let mut args = vec![
        "vllm-sim",
        "--model",
        "test-model",
        "--port",
        "0",
        "--kv-transfer-config",
        kv_transfer_config,
    ];
    args.extend_from_slice(extra);
    let env = vllm_sim::env::TestEnv(HashMap::from([
        (
            "VLLM_NIXL_SIDE_CHANNEL_HOST".to_owned(),
            "127.0.0.1".to_owned(),
        ),
        ("VLLM_NIXL_SIDE_CHANNEL_PORT".to_owned(), "0".to_owned()),
    ]));
    let config = vllm_sim::Config::parse(args, &env).expect("valid flags");
    vllm_sim::spawn(config).await.expect("simulator starts")
}

fn prompt(words: usize) -> String {
    (0..words)
        .map(|i| format!("word{i}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The prefill leg as the sidecar sends it.
async fn prefill(server: &vllm_sim::Server, prompt: &str, request_id: &str) -> Value {
    let response = client()
        .post(format!("{}/v1/completions", server.url()))
        .header("X-Request-Id", request_id)
        .json(&json!({
            "prompt": prompt, "max_tokens": 1, "stream": false,
            "kv_transfer_params": {"do_remote_decode": true, "do_remote_prefill": false,
                "remote_engine_id": null, "remote_block_ids": null, "remote_host": null,
                "remote_port": null},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn value(exposition: &Exposition, name: &str) -> f64 {
    exposition.value(name, &[]).unwrap_or(f64::NAN)
}

/// Polls `check` on fresh scrapes of `server` until it holds or 5 s pass.
async fn eventually(server: &vllm_sim::Server, what: &str, check: impl Fn(&Exposition) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let exposition = scrape(server).await;
        if check(&exposition) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decode_pulls_the_prompt_kv_from_the_prefill_pod() {
    let producer = pd_sim(PRODUCER, &[]).await;
    let consumer = pd_sim(CONSUMER, &[]).await;
    let text = prompt(60);
    let prefilled = prefill(&producer, &text, "pd-1").await;
    let params = &prefilled["kv_transfer_params"];
    let prompt_tokens = prefilled["usage"]["prompt_tokens"].as_u64().unwrap();
    let n_blocks = prompt_tokens.div_ceil(16);
    // vLLM's shape: nested block lists, the producer's identity and side channel.
    assert_eq!(params["do_remote_prefill"], true);
    assert_eq!(params["do_remote_decode"], false);
    let groups = params["remote_block_ids"].as_array().unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].as_array().unwrap().len() as u64, n_blocks);
    assert_eq!(params["remote_engine_id"], "prefill-0");
    let remote_request_id = params["remote_request_id"].as_str().unwrap();
    let suffix = remote_request_id.strip_prefix("cmpl-pd-1-0-").unwrap();
    assert!(suffix.len() == 8 && suffix.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(params["remote_host"], "127.0.0.1");
    let side_channel = producer.nixl_side_channel().unwrap();
    assert_eq!(params["remote_port"], side_channel.port());
    assert_eq!(params["remote_num_tokens"], prompt_tokens);
    assert_eq!(params["tp_size"], 1);
    assert_eq!(params["transfer_mode"], "pull");
    // The producer holds the blocks under the lease.
    let held = value(&scrape(&producer).await, "vllm:kv_cache_usage_perc");
    assert!(held > 0.0, "blocks are held: {held}");

    let (status, decoded) = post(
        &format!("{}/v1/completions", consumer.url()),
        &json!({"prompt": text, "max_tokens": 5, "kv_transfer_params": params}),
    )
    .await;
    assert_eq!(status, 200, "{decoded}");
    assert!(decoded["kv_transfer_params"].is_null());
    assert_eq!(decoded["usage"]["completion_tokens"], 5);

    let metrics = scrape(&consumer).await;
    assert_eq!(value(&metrics, "vllm:nixl_xfer_time_seconds_count"), 1.0);
    assert_eq!(value(&metrics, "vllm:nixl_post_time_seconds_count"), 1.0);
    assert_eq!(
        value(&metrics, "vllm:nixl_bytes_transferred_sum"),
        n_blocks as f64 * BLOCK_SIZE * BYTES_PER_TOKEN
    );
    assert_eq!(
        value(&metrics, "vllm:nixl_num_descriptors_sum"),
        n_blocks as f64 * 24.0 * 2.0
    );
    assert_eq!(value(&metrics, "vllm:nixl_num_failed_transfers_total"), 0.0);
    assert_eq!(
        metrics.value(
            "vllm:prompt_tokens_by_source_total",
            &[("source", "external_kv_transfer")]
        ),
        Some(prompt_tokens as f64)
    );
    assert_eq!(
        metrics.value(
            "vllm:num_requests_kv_fetch_by_stage",
            &[("stage", "in_progress")]
        ),
        Some(0.0)
    );
    // The notification freed the producer's blocks; nothing expired.
    eventually(&producer, "the lease to be released", |m| {
        value(m, "vllm:kv_cache_usage_perc") == 0.0
    })
    .await;
    let producer_metrics = scrape(&producer).await;
    assert_eq!(
        value(&producer_metrics, "vllm:nixl_num_kv_expired_reqs_total"),
        0.0
    );
    assert_eq!(
        value(
            &producer_metrics,
            "vllm:nixl_num_notifications_after_expiry_total"
        ),
        0.0
    );

    // A second request reuses the pooled, handshaken connection.
    let again = prefill(&producer, &text, "pd-2").await;
    let (status, _) = post(
        &format!("{}/v1/completions", consumer.url()),
        &json!({"prompt": text, "max_tokens": 2, "stream": true,
                "kv_transfer_params": again["kv_transfer_params"]}),
    )
    .await;
    assert_eq!(status, 200);
    let metrics = scrape(&consumer).await;
    assert_eq!(value(&metrics, "vllm:nixl_xfer_time_seconds_count"), 2.0);
    producer.shutdown().await.unwrap();
    consumer.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pull_is_shaped_and_inside_the_decode_ttft() {
    let producer = pd_sim(PRODUCER, &[]).await;
    // 0.2 Gbit/s = 25 MB/s and 40 ms of latency: a TCP-class link.
    let consumer = pd_sim(
        CONSUMER,
        &[
            "--kv-transfer-bandwidth-gbps",
            "0.2",
            "--kv-transfer-latency",
            "40",
        ],
    )
    .await;
    let text = prompt(60);
    let prefilled = prefill(&producer, &text, "shaped").await;
    let n_blocks = prefilled["kv_transfer_params"]["remote_block_ids"][0]
        .as_array()
        .unwrap()
        .len() as f64;
    let bytes = n_blocks * BLOCK_SIZE * BYTES_PER_TOKEN;
    let floor = 0.040 + bytes / 25e6;
    let (status, _) = post(
        &format!("{}/v1/completions", consumer.url()),
        &json!({"prompt": text, "max_tokens": 1,
                "kv_transfer_params": prefilled["kv_transfer_params"]}),
    )
    .await;
    assert_eq!(status, 200);
    let metrics = scrape(&consumer).await;
    let xfer = value(&metrics, "vllm:nixl_xfer_time_seconds_sum");
    assert!(
        xfer >= floor,
        "transfer took {xfer} s, the link allows no less than {floor} s"
    );
    let ttft = value(&metrics, "vllm:time_to_first_token_seconds_sum");
    assert!(ttft >= xfer, "TTFT {ttft} s includes the {xfer} s pull");
    producer.shutdown().await.unwrap();
    consumer.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_is_counted_and_the_late_pull_fails() {
    let producer = pd_sim(
        r#"{"kv_connector":"NixlConnector","kv_role":"kv_producer","kv_connector_extra_config":{"kv_lease_duration":0.2}}"#,
        &[],
    )
    .await;
    let failing = pd_sim(CONSUMER, &[]).await;
    let recomputing = pd_sim(
        r#"{"kv_connector":"NixlConnector","kv_role":"kv_consumer","kv_load_failure_policy":"recompute"}"#,
        &[],
    )
    .await;
    let text = prompt(30);
    let prefilled = prefill(&producer, &text, "late").await;
    eventually(&producer, "the lease to expire", |m| {
        value(m, "vllm:nixl_num_kv_expired_reqs_total") == 1.0
            && value(m, "vllm:kv_cache_usage_perc") == 0.0
    })
    .await;
    let body = json!({"prompt": text, "max_tokens": 2,
                      "kv_transfer_params": prefilled["kv_transfer_params"]});
    let (status, error) = post(&format!("{}/v1/completions", failing.url()), &body).await;
    assert_eq!(status, 503, "{error}");
    assert_eq!(error["error"]["type"], "ServiceUnavailableError");
    assert_eq!(error["error"]["code"], 503);
    assert_eq!(
        value(
            &scrape(&failing).await,
            "vllm:nixl_num_failed_transfers_total"
        ),
        1.0
    );
    let (status, _) = post(&format!("{}/v1/completions", recomputing.url()), &body).await;
    assert_eq!(status, 200, "recompute policy prefills locally");
    let metrics = scrape(&recomputing).await;
    assert_eq!(value(&metrics, "vllm:nixl_num_failed_transfers_total"), 1.0);
    assert_eq!(
        metrics.value(
            "vllm:prompt_tokens_by_source_total",
            &[("source", "external_kv_transfer")]
        ),
        Some(0.0)
    );
    for server in [producer, failing, recomputing] {
        server.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_of_another_model_shape_fails_the_handshake() {
    let producer = pd_sim(PRODUCER, &[]).await;
    let consumer = pd_sim(CONSUMER, &["--model-num-layers", "32"]).await;
    let text = prompt(20);
    let prefilled = prefill(&producer, &text, "mismatch").await;
    let (status, error) = post(
        &format!("{}/v1/completions", consumer.url()),
        &json!({"prompt": text, "max_tokens": 2,
                "kv_transfer_params": prefilled["kv_transfer_params"]}),
    )
    .await;
    assert_eq!(status, 503);
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("handshake"), "{message}");
    assert_eq!(
        value(
            &scrape(&consumer).await,
            "vllm:nixl_num_failed_transfers_total"
        ),
        1.0
    );
    producer.shutdown().await.unwrap();
    consumer.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_prefill_carries_the_params_on_its_finish_chunk() {
    let producer = pd_sim(PRODUCER, &[]).await;
    let text = client()
        .post(format!("{}/v1/chat/completions", producer.url()))
        .json(
            &json!({"messages": [{"role": "user", "content": "Hello there."}],
                      "max_tokens": 1, "stream": true,
                      "kv_transfer_params": {"do_remote_decode": true}}),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let chunks: Vec<Value> = text
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter(|data| *data != "[DONE]")
        .map(|data| serde_json::from_str(data).unwrap())
        .collect();
    let finish = chunks
        .iter()
        .find(|chunk| !chunk["choices"][0]["finish_reason"].is_null())
        .expect("finish chunk");
    assert_eq!(finish["kv_transfer_params"]["do_remote_prefill"], true);
    assert!(
        chunks
            .iter()
            .filter(|chunk| chunk["choices"][0]["finish_reason"].is_null())
            .all(|chunk| chunk["kv_transfer_params"].is_null())
    );
    producer.shutdown().await.unwrap();
}

#[tokio::test]
async fn nixl_families_match_the_golden_exposition() {
    let golden: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/golden/vllm_metrics_families.json"
        ))
        .expect("golden families file"),
    )
    .unwrap();
    let consumer = pd_sim(CONSUMER, &[]).await;
    let exposition = scrape(&consumer).await;
    let mut checked = 0;
    for family in golden["families"].as_array().unwrap() {
        let name = family["name"].as_str().unwrap();
        if !(name.starts_with("vllm:nixl_") || name == "vllm:num_requests_kv_fetch_by_stage") {
            continue;
        }
        let kind = family["type"].as_str().unwrap();
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
        let golden_labels: BTreeSet<&str> = family["label_sets"][0]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        let sample_name = if kind == "histogram" {
            format!("{exposed}_bucket")
        } else {
            exposed.clone()
        };
        let samples: Vec<_> = exposition
            .samples
            .iter()
            .filter(|s| s.name == sample_name)
            .collect();
        assert!(!samples.is_empty(), "{sample_name}");
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
            let buckets: Vec<f64> = samples
                .iter()
                .map(|s| s.labels["le"].parse::<f64>().unwrap())
                .filter(|b| b.is_finite())
                .collect();
            assert_eq!(buckets, golden_buckets, "{name} buckets");
        }
        checked += 1;
    }
    // 8 NIXL families and the consumer's fetch-stage gauge.
    assert_eq!(checked, 9);
    consumer.shutdown().await.unwrap();
}
