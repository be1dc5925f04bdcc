//! KV events end to end: a simulator's publisher feeding a `kv_index` subscriber over
//! loopback ZMQ, and the simulator replaying vLLM's golden `publisher_run` byte for byte.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng, rngs::SmallRng};
use serde_json::{Value, json};

use kv_index::events::decode_batch;
use kv_index::index::{IndexConfig, KvIndex};
use kv_index::subscriber::{
    ReplayedMessage, ResumePoint, Source, Subscriber, SubscriberConfig, SubscriberHandle,
    fetch_replay,
};

use crate::support::{client, post};

const POD: &str = "pod-a";
const TOPIC: &str = "kv@pod-a@test-model";
const PATIENCE: Duration = Duration::from_secs(20);

const GOLDEN: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/golden/vllm_kv_events.json"
));

/// A simulator publishing KV events on ephemeral loopback ports, with `env` as its
/// environment.
async fn sim_with_events(extra: &[&str], env: &[(&str, &str)]) -> vllm_sim::Server {
    let events = json!({
        "enable_kv_cache_events": true,
        "publisher": "zmq",
        "endpoint": "tcp://127.0.0.1:*",
        "replay_endpoint": "tcp://127.0.0.1:*",
        "topic": TOPIC,
    })
    .to_string();
    let mut args = vec![
        "vllm-sim",
        "--model",
        "test-model",
        "--port",
        "0",
        "--prefix-caching-hash-algo",
        "sha256_cbor",
        "--kv-events-config",
        &events,
    ];
    args.extend_from_slice(extra);
    let env = vllm_sim::env::TestEnv(
        env.iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect(),
    );
    let config = vllm_sim::Config::parse(args, &env).expect("valid flags");
    vllm_sim::spawn(config).await.expect("simulator starts")
}

/// `GET /kv_event_sources`: the resolved (bound) PUB and replay endpoints of rank 0.
async fn event_sources(server: &vllm_sim::Server) -> (String, String) {
    let sources: Value = client()
        .get(format!("{}/kv_event_sources", server.url()))
        .send()
        .await
        .expect("kv_event_sources")
        .json()
        .await
        .expect("kv_event_sources body");
    let rank0 = &sources["0"];
    let endpoint = rank0["endpoint"].as_str().expect("endpoint").to_owned();
    let replay = rank0["replay_endpoint"]
        .as_str()
        .expect("replay")
        .to_owned();
    assert!(
        !endpoint.ends_with(":*") && !replay.ends_with(":*"),
        "{sources}"
    );
    (endpoint, replay)
}

async fn complete(server: &vllm_sim::Server, body: Value) {
    let (status, response) = post(&format!("{}/v1/completions", server.url()), &body).await;
    assert_eq!(status, 200, "{response}");
}

fn subscriber_config(endpoint: &str, replay: &str) -> SubscriberConfig {
    let mut config = SubscriberConfig::new(Source::Connect(vec![endpoint.to_owned()]));
    config
        .replay_endpoints
        .insert(POD.to_owned(), replay.to_owned());
    // Catch up on whatever was published before the SUB connection took effect.
    config.replay_on_start.push(POD.to_owned());
    config
}

/// Polls until the index's keys for the pod equal the engine's cached hashes. Every second
/// without agreement it sends a one-block request: its batch reveals any gap at the
/// subscriber (a SUB connection that took effect late), which triggers a replay.
async fn assert_index_tracks_engine(
    server: &vllm_sim::Server,
    index: &KvIndex,
    nudge_token: &mut u32,
) {
    let deadline = Instant::now() + PATIENCE;
    let mut last_nudge = Instant::now();
    loop {
        let engine = server.cached_block_hashes().await;
        let indexed = index.pod_keys(POD);
        if !engine.is_empty() && indexed == engine {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the index never matched the engine: {} indexed vs {} cached",
            indexed.len(),
            engine.len()
        );
        if last_nudge.elapsed() > Duration::from_secs(1) {
            let prompt: Vec<u32> = (*nudge_token..*nudge_token + 16).collect();
            *nudge_token += 16;
            complete(
                server,
                json!({"model": "test-model", "prompt": prompt, "max_tokens": 1}),
            )
            .await;
            last_nudge = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Random traffic over a few shared prefixes, several requests in flight at once, on a
/// cache small enough that blocks are evicted all the time.
async fn drive_traffic(server: &vllm_sim::Server, rng: &mut SmallRng, n_requests: usize) {
    let prefixes: Vec<Vec<u32>> = (0..4u32)
        .map(|p| (0..48).map(|t| 10_000 * (p + 1) + t).collect())
        .collect();
    for _ in 0..n_requests / 4 {
        let bodies: Vec<Value> = (0..4)
            .map(|_| {
                let mut prompt = prefixes[rng.random_range(0..prefixes.len())]
                    [..rng.random_range(8..=48)]
                    .to_vec();
                let suffix_len = rng.random_range(0..40);
                prompt.extend((0..suffix_len).map(|_| rng.random_range(1..50_000u32)));
                json!({
                    "model": "test-model",
                    "prompt": prompt,
                    "max_tokens": rng.random_range(1..24),
                })
            })
            .collect();
        futures::future::join_all(bodies.into_iter().map(|body| complete(server, body))).await;
    }
}

fn start(config: SubscriberConfig, index: &Arc<KvIndex>) -> SubscriberHandle {
    Subscriber::start(config, Arc::clone(index), None).expect("subscriber starts")
}

/// The loopback: the index fed by the simulator's events equals the engine's prefix
/// cache, also after the subscriber was gone for a while and resumed through replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_fed_by_the_simulator_equals_its_prefix_cache() {
    let server = sim_with_events(
        &[
            "--num-gpu-blocks-override",
            "25",
            "--max-num-seqs",
            "4",
            "--block-size",
            "16",
        ],
        &[],
    )
    .await;
    let (endpoint, replay) = event_sources(&server).await;
    let index = Arc::new(KvIndex::new(IndexConfig {
        // One store per cached hash, as the engine reports them: no reference counts.
        ref_count_duplicates: false,
        ..IndexConfig::default()
    }));
    let mut rng = SmallRng::seed_from_u64(17);
    let mut nudge_token = 90_000;

    let subscriber = start(subscriber_config(&endpoint, &replay), &index);
    drive_traffic(&server, &mut rng, 120).await;
    assert_index_tracks_engine(&server, &index, &mut nudge_token).await;
    let stats = subscriber.stats();
    assert_eq!(
        stats
            .events_dropped
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );

    // The subscriber goes away; the engine keeps evicting and storing.
    let resume: HashMap<String, ResumePoint> = subscriber.shutdown();
    assert!(resume.contains_key(POD));
    drive_traffic(&server, &mut rng, 80).await;
    assert_ne!(
        index.pod_keys(POD),
        server.cached_block_hashes().await,
        "the traffic changed the cache"
    );
    let mut config = subscriber_config(&endpoint, &replay);
    config.resume = resume;
    let subscriber = start(config, &index);
    assert_index_tracks_engine(&server, &index, &mut nudge_token).await;
    assert!(
        subscriber
            .stats()
            .replayed_batches
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
    subscriber.shutdown();
    server.shutdown().await.expect("shutdown");
}

fn tokens(value: &Value) -> Vec<u32> {
    value
        .as_array()
        .expect("token array")
        .iter()
        .map(|t| t.as_u64().expect("token") as u32)
        .collect()
}

/// vLLM's golden `publisher_run` (a real BlockPool with 9 blocks, block size 16,
/// sha256_cbor, default seed), reproduced by the simulator:
/// * req-A's two-step prefill (2 blocks, then 2 more under parent block 1) is two requests,
///   tokens 0..32 then 0..72, since the simulator prefills a prompt in one step;
/// * req-E re-reports its 2 hits (`kv_cache_report_mode: full`);
/// * req-B selects the `sql-lora` adapter by `model`, with a cache salt and a session id;
/// * req-D (15 tokens, no full block) takes one block and evicts the LRU cached one;
/// * req-C (128 tokens) evicts 5 more and stores 8;
/// * `POST /reset_prefix_cache` clears everything.
///
/// Each payload equals vLLM's except for the 8-byte `ts` float (wall-clock in both).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_golden_publisher_run_is_reproduced_byte_for_byte() {
    let golden: Value = serde_json::from_str(GOLDEN).expect("golden JSON");
    let batches = golden["publisher_run"]["batches"]
        .as_array()
        .expect("batches");
    let scenario = &golden["scenario"];
    let server = sim_with_events(
        &[
            "--num-gpu-blocks-override",
            "9",
            "--block-size",
            "16",
            "--max-num-seqs",
            "1",
            "--lora-modules",
            "sql-lora=/adapters/sql-lora",
        ],
        &[("VLLM_SERVER_DEV_MODE", "1")],
    )
    .await;
    let (_, replay) = event_sources(&server).await;
    let req_a = tokens(&scenario["requests"]["req-A"]);
    let req_e = tokens(&scenario["requests"]["req-E"]);
    let req_b = &scenario["requests"]["req-B"];
    let req_c = tokens(&batches[5]["decoded"][1][5]["token_ids"]);
    let one =
        |model: &str, prompt: &[u32]| json!({"model": model, "prompt": prompt, "max_tokens": 1});

    complete(&server, one("test-model", &req_a[..32])).await;
    complete(&server, one("test-model", &req_a)).await;
    let mut e = one("test-model", &req_e);
    e["vllm_xargs"] = json!({"kv_cache_report_mode": "full"});
    complete(&server, e).await;
    let mut b = one(
        req_b["lora_name"].as_str().expect("lora"),
        &tokens(&req_b["tokens"]),
    );
    b["cache_salt"] = req_b["cache_salt"].clone();
    b["session_id"] = req_b["session_id"].clone();
    complete(&server, b).await;
    complete(
        &server,
        one("test-model", &(50_000..50_015).collect::<Vec<_>>()),
    )
    .await;
    complete(&server, one("test-model", &req_c)).await;
    let reset = client()
        .post(format!("{}/reset_prefix_cache", server.url()))
        .send()
        .await
        .expect("reset");
    assert!(reset.status().is_success());

    // The replay ROUTER returns every batch exactly as published.
    let deadline = Instant::now() + PATIENCE;
    let published: Vec<ReplayedMessage> = loop {
        let replay = replay.clone();
        let messages =
            tokio::task::spawn_blocking(move || fetch_replay(&replay, 0, Duration::from_secs(5)))
                .await
                .expect("replay task")
                .expect("replay");
        if messages.len() >= batches.len() || Instant::now() > deadline {
            break messages;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(published.len(), batches.len(), "one batch per golden batch");
    for (message, golden) in published.iter().zip(batches) {
        let name = golden["name"].as_str().expect("name");
        let expected = hex::decode(golden["payload_hex"].as_str().expect("payload")).expect("hex");
        assert_eq!(message.topic, TOPIC.as_bytes(), "{name}");
        assert_eq!(message.seq, golden["seq"].as_u64().expect("seq"), "{name}");
        // Event by event first, for a readable failure.
        let ours = decode_batch(&message.payload).expect("our payload decodes");
        let theirs = decode_batch(&expected).expect("golden payload decodes");
        assert_eq!(ours.batch.events, theirs.batch.events, "{name}");
        assert_eq!(
            ours.batch.data_parallel_rank, theirs.batch.data_parallel_rank,
            "{name}"
        );
        // Then every byte but the float64 timestamp (`93 cb <8 bytes>`).
        assert_eq!(message.payload.len(), expected.len(), "{name}");
        assert_eq!(message.payload[..2], [0x93, 0xcb], "{name}");
        assert_eq!(message.payload[..2], expected[..2], "{name}");
        assert_eq!(message.payload[10..], expected[10..], "{name}");
    }
    server.shutdown().await.expect("shutdown");
}
