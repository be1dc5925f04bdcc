//! Loopback tests: a real publisher into the subscriber over 127.0.0.1, checked against an
//! index fed the same batches directly.

use std::time::{Duration, Instant};

use super::*;
use crate::events::{
    BlockHashValue, BlockRemoved, BlockStored, EventEncoding, KvEvent, KvEventBatch, decode_batch,
};
use crate::index::IndexConfig;
use crate::publisher::{Publisher, PublisherConfig, PublisherHandle};

const POD: &str = "pod-a";
const TOPIC: &str = "kv@pod-a@test-model";

fn start_publisher(topic: &str, endpoint: &str, replay: bool) -> PublisherHandle {
    Publisher::start(PublisherConfig {
        endpoint: endpoint.to_owned(),
        replay_endpoint: replay.then(|| "tcp://127.0.0.1:*".to_owned()),
        topic: topic.to_owned(),
        buffer_steps: 10_000,
        hwm: 100_000,
        max_queue_size: 10_000,
        data_parallel_rank: 0,
        encoding: EventEncoding::Map,
    })
    .unwrap()
}

/// A deterministic stream of BlockPool-like batches: stores of new blocks (with tokens),
/// LRU-style removals of stored ones, and a rare reset.
struct Workload {
    state: u64,
    next_hash: u64,
    live: Vec<u64>,
}

impl Workload {
    fn new(seed: u64) -> Self {
        Workload {
            state: seed | 1,
            next_hash: 1,
            live: Vec::new(),
        }
    }

    fn rand(&mut self, n: u64) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state % n
    }

    fn batch(&mut self) -> KvEventBatch {
        let mut events = Vec::new();
        let n_removed = self.rand(3).min(self.live.len() as u64);
        for _ in 0..n_removed {
            let victim = self.live.remove(0);
            events.push(KvEvent::BlockRemoved(BlockRemoved {
                block_hashes: vec![BlockHashValue::U64(victim)],
                medium: Some("GPU".into()),
                group_idx: Some(0),
                ..BlockRemoved::default()
            }));
        }
        let n_blocks = 1 + self.rand(4);
        let hashes: Vec<u64> = (0..n_blocks)
            .map(|_| {
                self.next_hash += 1;
                self.next_hash.wrapping_mul(0x9e37_79b9_7f4a_7c15)
            })
            .collect();
        self.live.extend(&hashes);
        events.push(KvEvent::BlockStored(BlockStored {
            block_hashes: hashes.iter().map(|&h| BlockHashValue::U64(h)).collect(),
            parent_block_hash: None,
            token_ids: (0..n_blocks as u32 * 4).collect(),
            block_size: 4,
            medium: Some("GPU".into()),
            group_idx: Some(0),
            ..BlockStored::default()
        }));
        if self.rand(50) == 0 {
            events.push(KvEvent::AllBlocksCleared);
            self.live.clear();
        }
        KvEventBatch {
            ts: next_ts(),
            events,
            data_parallel_rank: None,
        }
    }
}

fn config() -> IndexConfig {
    IndexConfig {
        capacity_per_pod: 64,
        ..IndexConfig::default()
    }
}

/// Batch timestamps that only grow, as an engine's clock does: the subscriber tells a restarted
/// engine from a duplicate by a newer timestamp behind the expected sequence number.
fn next_ts() -> f64 {
    static CLOCK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    1_700_000_000.0 + CLOCK.fetch_add(1, Ordering::Relaxed) as f64 / 1000.0
}

/// Waits until the publisher thread has sent every batch handed to it.
fn drained(publisher: &PublisherHandle) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let stats = publisher.stats();
    while stats.published.load(Ordering::Relaxed) < stats.accepted.load(Ordering::Relaxed) {
        assert!(
            Instant::now() < deadline,
            "publisher never drained its queue"
        );
        std::thread::yield_now();
    }
}

/// Publishes empty batches until the subscriber has applied everything handed to the
/// publisher (each one reveals any gap, which triggers a replay), or fails at the deadline.
/// Caught up means the publisher thread has sent every accepted batch and the subscriber has
/// applied the last of them: the thread's own `published` count alone can lag behind what
/// the test queued, which once let this return with hundreds of batches still in flight.
fn sync(publisher: &PublisherHandle, subscriber: &SubscriberHandle, pod: &str) {
    let caught_up = || {
        let stats = publisher.stats();
        let accepted = stats.accepted.load(Ordering::Relaxed);
        let sent = stats.published.load(Ordering::Relaxed);
        accepted > 0 && sent == accepted && subscriber.applied_seq(pod) == Some(sent - 1)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "subscriber never caught up");
        if caught_up() {
            return;
        }
        assert!(publisher.publish(KvEventBatch {
            ts: next_ts(),
            ..KvEventBatch::default()
        }));
        let poll_until = Instant::now() + Duration::from_millis(50);
        while Instant::now() < poll_until {
            if caught_up() {
                return;
            }
            std::thread::yield_now();
        }
    }
}

fn describe(stats: &SubscriberStats) -> String {
    let get = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
    format!(
        "batches {} gaps {} stale {} restarts {} replays {} (failed {}, skipped {}) replayed batches {}",
        get(&stats.batches),
        get(&stats.gaps),
        get(&stats.stale),
        get(&stats.restarts),
        get(&stats.replays),
        get(&stats.replays_failed),
        get(&stats.replays_skipped),
        get(&stats.replayed_batches),
    )
}

#[test]
fn loopback_index_equals_what_was_published_and_survives_a_dropped_subscriber() {
    let publisher = start_publisher(TOPIC, "tcp://127.0.0.1:*", true);
    let reference = KvIndex::new(config());
    let index = Arc::new(KvIndex::new(config()));
    let mut subscriber_config =
        SubscriberConfig::new(Source::Connect(vec![publisher.endpoint().to_owned()]));
    subscriber_config.replay_endpoints.insert(
        POD.to_owned(),
        publisher.replay_endpoint().unwrap().to_owned(),
    );
    subscriber_config.replay_on_start.push(POD.to_owned());
    // A replay that misses its deadline accepts the gap by design; on a loaded machine (other
    // tests replaying in this process, a build alongside) 2 s is not enough, and a correct
    // replay ends in milliseconds anyway.
    subscriber_config.replay_timeout = Duration::from_secs(60);
    let mut workload = Workload::new(7);

    // Phase 1: some batches before the subscriber exists (recovered by the start replay),
    // then more while it runs.
    for _ in 0..50 {
        let batch = workload.batch();
        reference.apply_batch(POD, "test-model", &batch);
        assert!(publisher.publish(batch));
    }
    drained(&publisher);
    let subscriber =
        Subscriber::start(subscriber_config.clone(), Arc::clone(&index), None).unwrap();
    for _ in 0..300 {
        let batch = workload.batch();
        reference.apply_batch(POD, "test-model", &batch);
        assert!(publisher.publish(batch));
    }
    sync(&publisher, &subscriber, POD);
    assert!(!reference.is_empty());
    let stats = subscriber.stats();
    assert_eq!(
        index.pod_entries(POD),
        reference.pod_entries(POD),
        "{}",
        describe(stats)
    );
    assert!(subscriber.stats().replays.load(Ordering::Relaxed) >= 1);
    assert_eq!(subscriber.stats().events_dropped.load(Ordering::Relaxed), 0);

    // Phase 2: the subscriber goes away, the stream goes on, a new one resumes and replays.
    let resume = subscriber.shutdown();
    assert!(resume.contains_key(POD));
    for _ in 0..200 {
        let batch = workload.batch();
        reference.apply_batch(POD, "test-model", &batch);
        assert!(publisher.publish(batch));
    }
    // Sent while no subscriber listens: only a replay can recover them.
    drained(&publisher);
    assert_ne!(index.pod_entries(POD), reference.pod_entries(POD));
    subscriber_config.resume = resume;
    let subscriber = Subscriber::start(subscriber_config, Arc::clone(&index), None).unwrap();
    sync(&publisher, &subscriber, POD);
    let stats = subscriber.stats();
    assert_eq!(
        index.pod_entries(POD),
        reference.pod_entries(POD),
        "{}",
        describe(stats)
    );
    assert!(
        stats.replayed_batches.load(Ordering::Relaxed) >= 200,
        "{}",
        describe(stats)
    );
}

/// Central mode: the subscriber binds, publishers connect. A second publisher for the same
/// pod starts its seq at 0 again (an engine restart): the pod is cleared first.
#[test]
fn central_mode_treats_a_backwards_sequence_as_a_restart() {
    let index = Arc::new(KvIndex::new(config()));
    let subscriber = Subscriber::start(
        SubscriberConfig::new(Source::Bind("tcp://127.0.0.1:*".to_owned())),
        Arc::clone(&index),
        None,
    )
    .unwrap();
    let endpoint = subscriber.bound_endpoint().unwrap().to_owned();
    let mut workload = Workload::new(11);
    let first = start_publisher(TOPIC, &endpoint, false);
    for _ in 0..20 {
        assert!(first.publish(workload.batch()));
    }
    // Without replay the subscriber cannot recover what it missed before connecting, so
    // only wait until it follows the stream.
    sync(&first, &subscriber, POD);
    assert!(subscriber.stats().batches.load(Ordering::Relaxed) > 0);
    first.shutdown();

    let second = start_publisher(TOPIC, &endpoint, false);
    let reference = KvIndex::new(config());
    let restarted = workload.batch();
    reference.apply_batch(POD, "test-model", &restarted);
    // Repeat the restart's first batch content until it lands, as a fresh engine would
    // keep publishing; every copy stores the same blocks.
    let deadline = Instant::now() + Duration::from_secs(20);
    while subscriber.stats().restarts.load(Ordering::Relaxed) == 0 {
        assert!(Instant::now() < deadline, "restart never seen");
        assert!(second.publish(restarted.clone()));
        std::thread::sleep(Duration::from_millis(5));
    }
    sync(&second, &subscriber, POD);
    let keys = |index: &KvIndex| {
        index
            .pod_entries(POD)
            .into_iter()
            .map(|e| e.0)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        keys(&index),
        keys(&reference),
        "only the restarted engine's blocks remain"
    );
}

#[test]
fn garbage_frames_are_counted_and_do_not_stall() {
    let index = Arc::new(KvIndex::new(config()));
    let subscriber = Subscriber::start(
        SubscriberConfig::new(Source::Bind("tcp://127.0.0.1:*".to_owned())),
        Arc::clone(&index),
        None,
    )
    .unwrap();
    let publisher = shared_context().socket(zmq::PUB).unwrap();
    publisher.set_linger(0).unwrap();
    publisher
        .connect(subscriber.bound_endpoint().unwrap())
        .unwrap();
    let mut good = Vec::new();
    crate::events::encode_batch(
        &KvEventBatch {
            ts: 0.0,
            events: vec![KvEvent::AllBlocksCleared],
            data_parallel_rank: None,
        },
        &mut good,
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seq = 0u64;
    while subscriber
        .applied_seq("p")
        .is_none_or(|applied| applied < 3)
    {
        assert!(
            Instant::now() < deadline,
            "good frames after garbage were not applied"
        );
        publisher
            .send_multipart([&b"kv@p@m"[..], b"short"], 0)
            .unwrap();
        publisher
            .send_multipart([&b"kv@p@m"[..], &[0xff; 3], b"x"], 0)
            .unwrap();
        publisher
            .send_multipart([&b"kv@p@m"[..], &seq.to_be_bytes(), &[0xc1, 0x93]], 0)
            .unwrap();
        seq += 1;
        publisher
            .send_multipart([&b"kv@p@m"[..], &seq.to_be_bytes(), &good], 0)
            .unwrap();
        seq += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(subscriber.stats().bad_frames.load(Ordering::Relaxed) >= 2);
}

#[test]
fn topics_parse_like_llm_d() {
    assert_eq!(
        parse_topic("kv@10.0.0.1:8000@llama"),
        ("10.0.0.1:8000", "llama")
    );
    assert_eq!(parse_topic("kv@pod@"), ("pod", ""));
    assert_eq!(parse_topic("plain"), ("plain", ""));
    assert_eq!(parse_topic("a@b@c@d"), ("a@b@c@d", ""));
}

fn worker(config: SubscriberConfig) -> Worker {
    Worker::new(
        config,
        Arc::new(KvIndex::new(IndexConfig {
            ref_count_duplicates: false,
            ..IndexConfig::default()
        })),
        None,
        Arc::default(),
        Arc::default(),
        Arc::default(),
    )
}

fn message(seq: u64, ts: f64, keys: &[u64]) -> Vec<Vec<u8>> {
    let batch = KvEventBatch {
        ts,
        events: vec![KvEvent::BlockStored(BlockStored {
            block_hashes: keys.iter().map(|&k| BlockHashValue::U64(k)).collect(),
            block_size: 16,
            ..BlockStored::default()
        })],
        data_parallel_rank: Some(0),
    };
    let mut payload = Vec::new();
    crate::events::encode_batch(&batch, &mut payload);
    vec![
        TOPIC.as_bytes().to_vec(),
        seq.to_be_bytes().to_vec(),
        payload,
    ]
}

fn keys_of(index: &KvIndex) -> Vec<u64> {
    index.pod_keys(POD)
}

/// A subscriber resumed from saved seqs sees a restarted engine (seq from 0 again): batches
/// older than the last applied one are stale, newer ones mean a restart, not staleness.
#[test]
fn a_restart_seen_while_resuming_clears_and_resyncs_instead_of_going_stale() {
    let mut config = SubscriberConfig::new(Source::Connect(Vec::new()));
    config.resume.insert(
        POD.to_owned(),
        ResumePoint {
            seq: 500,
            ts: Some(1000.0),
        },
    );
    let mut worker = worker(config);
    let index = Arc::clone(&worker.index);
    index.apply_batch(
        POD,
        "test-model",
        &decode_batch(&message(0, 999.0, &[7, 8])[2]).unwrap().batch,
    );
    // A duplicate from before the resume point: stale, nothing changes.
    worker.on_message(&message(400, 990.0, &[9]));
    assert_eq!(worker.stats.stale.load(Ordering::Relaxed), 1);
    assert_eq!(keys_of(&index), [7, 8]);
    // The restarted engine's first batches: newer timestamps, seq far below.
    worker.on_message(&message(0, 2000.0, &[1, 2]));
    worker.on_message(&message(1, 2000.5, &[3]));
    assert_eq!(worker.stats.restarts.load(Ordering::Relaxed), 1);
    assert_eq!(keys_of(&index), [1, 2, 3]);
    assert_eq!(
        worker.seqs.lock().unwrap().get(POD),
        Some(&ResumePoint {
            seq: 1,
            ts: Some(2000.5)
        })
    );
}

/// A failed replay (nothing answers) starts a cooldown: the next gaps are accepted at once
/// instead of stalling the stream for another replay timeout each.
#[test]
fn a_failed_replay_cools_down_before_the_next_one() {
    let mut config = SubscriberConfig::new(Source::Connect(Vec::new()));
    // Nothing listens there: the request is never answered.
    config
        .replay_endpoints
        .insert(POD.to_owned(), "tcp://127.0.0.1:9".to_owned());
    config.replay_timeout = Duration::from_millis(100);
    config.replay_cooldown = Duration::from_secs(600);
    let mut worker = worker(config);
    worker.on_message(&message(0, 1.0, &[1]));
    worker.on_message(&message(5, 2.0, &[2])); // gap: replay, times out
    worker.on_message(&message(9, 3.0, &[3])); // gap: cooling down
    let stats = &worker.stats;
    assert_eq!(stats.gaps.load(Ordering::Relaxed), 2);
    assert_eq!(stats.replays.load(Ordering::Relaxed), 1);
    assert_eq!(stats.replays_failed.load(Ordering::Relaxed), 1);
    assert_eq!(stats.replays_skipped.load(Ordering::Relaxed), 1);
    assert_eq!(keys_of(&worker.index), [1, 2, 3]);
}

#[test]
fn batch_timestamps_are_read_without_decoding() {
    let frames = message(3, 1_700_000_000.5, &[1]);
    assert_eq!(peek_ts(&frames[2]), Some(1_700_000_000.5));
    assert_eq!(peek_ts(&[0x92, 0x05, 0x90]), Some(5.0));
    assert_eq!(peek_ts(&[0x93, 0xcb, 0x00]), None);
    assert_eq!(peek_ts(&[0xc0]), None);
    assert_eq!(peek_ts(&[]), None);
}
