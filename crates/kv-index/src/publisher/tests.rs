//! Publisher tests: config parsing against vLLM's resolved defaults, endpoint offsets, and
//! the golden frames and replay exchange over real loopback sockets.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::*;
use crate::events::decode_batch;

const GOLDEN: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/golden/vllm_kv_events.json"
));

fn golden() -> Value {
    serde_json::from_str(GOLDEN).expect("golden file is JSON")
}

fn golden_batches(golden: &Value) -> Vec<(KvEventBatch, Vec<u8>)> {
    golden["publisher_run"]["batches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            let payload = hex::decode(entry["payload_hex"].as_str().unwrap()).unwrap();
            let mut batch = decode_batch(&payload).unwrap().batch;
            // The publisher stamps its own rank into rank-less batches, as vLLM does.
            batch.data_parallel_rank = None;
            (batch, payload)
        })
        .collect()
}

fn loopback_config(topic: &str, replay: bool) -> PublisherConfig {
    PublisherConfig {
        endpoint: "tcp://127.0.0.1:*".to_owned(),
        replay_endpoint: replay.then(|| "tcp://127.0.0.1:*".to_owned()),
        topic: topic.to_owned(),
        buffer_steps: 100,
        hwm: 1000,
        max_queue_size: 100,
        data_parallel_rank: 0,
        encoding: EventEncoding::Map,
    }
}

fn wait_for(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::yield_now();
    }
}

#[test]
fn config_defaults_match_vllm() {
    let golden = golden();
    let defaults = KvEventsConfig::from_json("{}").unwrap().resolved();
    assert_eq!(
        serde_json::to_value(&defaults).unwrap(),
        golden["kv_events_config_defaults"]
    );
    let enabled = KvEventsConfig::from_json(r#"{"enable_kv_cache_events": true}"#)
        .unwrap()
        .resolved();
    assert_eq!(
        serde_json::to_value(&enabled).unwrap(),
        golden["kv_events_config_enabled_only"]
    );
    assert!(matches!(
        KvEventsConfig::from_json(r#"{"enable_kv_cache_events": true, "bogus": 1}"#),
        Err(Error::Config(_))
    ));
    let typical = KvEventsConfig::from_json(
        r#"{"enable_kv_cache_events":true,"publisher":"zmq","endpoint":"tcp://*:5557","topic":"kv@pod@m"}"#,
    )
    .unwrap();
    let publisher = PublisherConfig::from_kv_events_config(&typical, 1)
        .unwrap()
        .unwrap();
    assert_eq!(publisher.endpoint, "tcp://*:5558");
    assert_eq!(publisher.topic, "kv@pod@m");
    assert_eq!(
        PublisherConfig::from_kv_events_config(&KvEventsConfig::default(), 0).unwrap(),
        None
    );
}

#[test]
fn endpoint_offsets_match_vllm() {
    let golden = golden();
    for case in golden["endpoint_offsets"].as_array().unwrap() {
        let endpoint = case["endpoint"].as_str().unwrap();
        let rank = case["data_parallel_rank"].as_i64().unwrap();
        let expected = case["result"].as_str().unwrap();
        match offset_endpoint_port(endpoint, rank) {
            Ok(result) => assert_eq!(result, expected, "{endpoint} rank {rank}"),
            Err(error) => {
                assert!(expected.starts_with("ValueError"), "{endpoint}: {error}");
                assert!(matches!(error, Error::IpcWithDataParallel(_)));
            }
        }
    }
}

#[test]
fn bind_or_connect_follows_vllm() {
    assert!(pub_should_bind("tcp://*:5557"));
    assert!(pub_should_bind("tcp://[::]:5557"));
    assert!(pub_should_bind("ipc:///tmp/kv"));
    assert!(pub_should_bind("inproc://kv"));
    assert!(!pub_should_bind("tcp://10.0.0.5:5557"));
    assert!(!pub_should_bind("tcp://127.0.0.1:5557"));
}

#[test]
fn replay_returns_the_golden_frames_and_end_marker() {
    let golden = golden();
    let batches = golden_batches(&golden);
    let topic = golden["publisher_run"]["topic"].as_str().unwrap();
    let handle = Publisher::start(loopback_config(topic, true)).unwrap();
    for (batch, _) in &batches {
        assert!(handle.publish(batch.clone()));
    }
    wait_for("7 published batches", Duration::from_secs(10), || {
        handle.stats().published.load(Ordering::Relaxed) == 7
    });

    let replay = &golden["publisher_run"]["replay"];
    let dealer = shared_context().socket(zmq::DEALER).unwrap();
    dealer.set_rcvtimeo(10_000).unwrap();
    dealer.set_linger(0).unwrap();
    dealer.connect(handle.replay_endpoint().unwrap()).unwrap();
    let request: Vec<Vec<u8>> = replay["dealer_sent_frames_hex"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| hex::decode(f.as_str().unwrap()).unwrap())
        .collect();
    dealer.send_multipart(&request, 0).unwrap();
    let mut expected: Vec<Value> = replay["dealer_received_frames_hex"]
        .as_array()
        .unwrap()
        .clone();
    if expected.last() != Some(&replay["end_marker_frames_hex"]) {
        expected.push(replay["end_marker_frames_hex"].clone());
    }
    for expected_frames in expected {
        let frames = dealer
            .recv_multipart(0)
            .expect("replay reply before the timeout");
        let frames: Vec<String> = frames.iter().map(hex::encode).collect();
        let expected_frames: Vec<String> = expected_frames
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(frames, expected_frames);
    }
    // A request for a future seq gets only the end marker; a malformed one is ignored.
    dealer.send_multipart([&b""[..], b"x", b"y"], 0).unwrap();
    dealer
        .send_multipart([&b""[..], &100u64.to_be_bytes()], 0)
        .unwrap();
    let frames = dealer.recv_multipart(0).unwrap();
    assert_eq!(
        frames,
        vec![vec![], vec![], END_SEQ.to_be_bytes().to_vec(), vec![]]
    );
    assert_eq!(handle.stats().replays.load(Ordering::Relaxed), 2);
}

#[test]
fn live_frames_are_the_golden_bytes() {
    let golden = golden();
    let batches = golden_batches(&golden);
    let topic = golden["publisher_run"]["topic"].as_str().unwrap();
    let handle = Publisher::start(loopback_config(topic, false)).unwrap();
    let sub = shared_context().socket(zmq::SUB).unwrap();
    sub.set_linger(0).unwrap();
    sub.connect(handle.endpoint()).unwrap();
    sub.set_subscribe(b"kv@").unwrap();
    // Slow joiner: publish batch 0 until one arrives; its seq fixes the offset.
    sub.set_rcvtimeo(20).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let first = loop {
        assert!(Instant::now() < deadline, "subscription never took effect");
        assert!(handle.publish(batches[0].0.clone()));
        if let Ok(frames) = sub.recv_multipart(0) {
            break frames;
        }
    };
    assert_eq!(first[0], topic.as_bytes());
    assert_eq!(first[2], batches[0].1);
    let first_seq = u64::from_be_bytes(first[1].as_slice().try_into().unwrap());
    sub.set_rcvtimeo(10_000).unwrap();
    for (batch, _) in &batches[1..] {
        assert!(handle.publish(batch.clone()));
    }
    let mut n_seen = 0;
    let mut last_seq = first_seq;
    while n_seen < batches.len() - 1 {
        let frames = sub.recv_multipart(0).expect("frame before the timeout");
        assert_eq!(frames.len(), 3);
        let seq = u64::from_be_bytes(frames[1].as_slice().try_into().unwrap());
        assert_eq!(seq, last_seq + 1, "seqs are consecutive");
        last_seq = seq;
        if frames[2] == batches[0].1 {
            continue; // a late warm-up copy
        }
        n_seen += 1;
        assert_eq!(frames[2], batches[n_seen].1, "batch {n_seen}");
    }
}

#[test]
fn a_full_queue_drops_and_counts() {
    let mut config = loopback_config("kv@p@m", false);
    config.max_queue_size = 1;
    let handle = Publisher::start(config).unwrap();
    let batch = KvEventBatch {
        ts: 0.0,
        events: vec![crate::events::KvEvent::AllBlocksCleared],
        data_parallel_rank: None,
    };
    let accepted = (0..10_000)
        .filter(|_| handle.publish(batch.clone()))
        .count();
    let dropped = handle.stats().dropped.load(Ordering::Relaxed);
    assert_eq!(accepted as u64 + dropped, 10_000);
    assert!(
        dropped > 0,
        "a queue of one cannot take 10000 batches at once"
    );
    handle.shutdown();
}
