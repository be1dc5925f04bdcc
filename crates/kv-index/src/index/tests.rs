//! Index tests: golden scenario replay, a reference model under random operations, scoring
//! tables, token-chain keys, capacity, ref counts, pod removal and concurrent readers.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::*;
use crate::events::{BlockHashValue, decode_batch};
use crate::hash::{BlockHasher, DEFAULT_NONE_HASH_SEED, HashAlgo, RequestExtras};

const GOLDEN: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/golden/vllm_kv_events.json"
));

fn golden_batches() -> Vec<(String, KvEventBatch)> {
    let golden: Value = serde_json::from_str(GOLDEN).unwrap();
    golden["publisher_run"]["batches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            let payload = hex::decode(entry["payload_hex"].as_str().unwrap()).unwrap();
            (
                entry["name"].as_str().unwrap().to_owned(),
                decode_batch(&payload).unwrap().batch,
            )
        })
        .collect()
}

fn stored(hashes: &[u64], parent: Option<u64>, tokens: Vec<u32>, medium: &str) -> KvEvent {
    KvEvent::BlockStored(BlockStored {
        block_hashes: hashes.iter().map(|&h| BlockHashValue::U64(h)).collect(),
        parent_block_hash: parent.map(BlockHashValue::U64),
        block_size: if hashes.is_empty() {
            0
        } else {
            (tokens.len() / hashes.len()) as u32
        },
        token_ids: tokens,
        medium: Some(medium.to_owned()),
        ..BlockStored::default()
    })
}

fn removed(hashes: &[u64], medium: &str) -> KvEvent {
    KvEvent::BlockRemoved(BlockRemoved {
        block_hashes: hashes.iter().map(|&h| BlockHashValue::U64(h)).collect(),
        medium: Some(medium.to_owned()),
        ..BlockRemoved::default()
    })
}

fn batch(events: Vec<KvEvent>) -> KvEventBatch {
    KvEventBatch {
        ts: 0.0,
        events,
        data_parallel_rank: Some(0),
    }
}

/// The golden scenario, after every batch, equals what vLLM's BlockPool holds: the set of
/// hashes stored and not yet removed.
#[test]
fn golden_scenario_tracks_the_block_pool() {
    let index = KvIndex::new(IndexConfig {
        ref_count_duplicates: false,
        ..IndexConfig::default()
    });
    let mut model: BTreeMap<u64, ()> = BTreeMap::new();
    for (name, batch) in golden_batches() {
        let outcome = index.apply_batch("pod-a", "test-model", &batch);
        assert!(outcome.dropped.is_empty(), "{name}");
        for event in &batch.events {
            match event {
                KvEvent::BlockStored(s) => s.block_hashes.iter().for_each(|h| {
                    model.insert(h.as_u64(), ());
                }),
                KvEvent::BlockRemoved(r) => r.block_hashes.iter().for_each(|h| {
                    model.remove(&h.as_u64());
                }),
                KvEvent::AllBlocksCleared => model.clear(),
            }
        }
        let keys: Vec<u64> = index.pod_entries("pod-a").iter().map(|e| e.0).collect();
        assert_eq!(
            keys,
            model.keys().copied().collect::<Vec<_>>(),
            "after {name}"
        );
        if name == "mixed_removed_stored" {
            // Five evictions left only req-C's 8 new blocks.
            assert_eq!(keys.len(), 8, "{name}");
        }
    }
    assert!(index.is_empty());
}

/// Scoring a request computed with vLLM's own hashing (engine keys) finds the stored prefix.
#[test]
fn engine_keys_from_the_request_side_score_the_published_blocks() {
    let index = KvIndex::new(IndexConfig::default());
    let batches = golden_batches();
    index.apply_batch("pod-a", "test-model", &batches[0].1); // req-A blocks 0..2
    index.apply_batch("pod-a", "test-model", &batches[1].1); // req-A blocks 2..4
    let mut hasher = BlockHasher::new(HashAlgo::Sha256Cbor, DEFAULT_NONE_HASH_SEED);
    let tokens: Vec<u32> = (0..128).collect();
    let keys: Vec<u64> = hasher
        .hash_request(&tokens, 16, &RequestExtras::default())
        .unwrap()
        .iter()
        .map(|h| h.external_u64())
        .collect();
    let scores = index.score(&keys);
    assert_eq!(
        scores,
        vec![PodScore {
            pod: "pod-a",
            matched_blocks: 4,
            score: 4.0,
            ratio: 0.5
        }]
    );
}

/// Scoring table: each case lists pods with their (key, medium) entries and the prompt.
#[test]
fn score_table() {
    type Case = (
        &'static str,
        &'static [(&'static str, &'static [(u64, &'static str)])],
        &'static [u64],
        &'static [(&'static str, u64, f64)],
    );
    let cases: &[Case] = &[
        ("empty index", &[], &[1, 2, 3], &[]),
        (
            "full gpu match",
            &[("a", &[(1, "GPU"), (2, "GPU")])],
            &[1, 2],
            &[("a", 2, 2.0)],
        ),
        (
            "gap stops the prefix",
            &[("a", &[(1, "GPU"), (3, "GPU")])],
            &[1, 2, 3],
            &[("a", 1, 1.0)],
        ),
        (
            "missing first block scores nothing",
            &[("a", &[(2, "GPU")])],
            &[1, 2],
            &[],
        ),
        (
            "cpu weight",
            &[("a", &[(1, "CPU"), (2, "CPU")])],
            &[1, 2],
            &[("a", 2, 1.6)],
        ),
        (
            "best tier counts once",
            &[("a", &[(1, "CPU"), (1, "GPU")])],
            &[1],
            &[("a", 1, 1.0)],
        ),
        (
            "mixed tiers chain",
            &[("a", &[(1, "GPU"), (2, "CPU")])],
            &[1, 2, 9],
            &[("a", 2, 1.8)],
        ),
        (
            "ranked by score then name",
            &[
                ("b", &[(1, "GPU")]),
                ("a", &[(1, "GPU")]),
                ("c", &[(1, "GPU"), (2, "GPU")]),
            ],
            &[1, 2],
            &[("c", 2, 2.0), ("a", 1, 1.0), ("b", 1, 1.0)],
        ),
    ];
    for (label, pods, prompt, expected) in cases {
        let index = KvIndex::new(IndexConfig::default());
        for (pod, entries) in *pods {
            for (key, medium) in *entries {
                index.apply_batch(
                    pod,
                    "m",
                    &batch(vec![stored(&[*key], None, vec![], medium)]),
                );
            }
        }
        let got: Vec<(String, u64, f64)> = index
            .score(prompt)
            .into_iter()
            .map(|s| {
                assert!((s.ratio - s.matched_blocks as f64 / prompt.len() as f64).abs() < 1e-12);
                (
                    s.pod.to_string(),
                    s.matched_blocks,
                    (s.score * 1e9).round() / 1e9,
                )
            })
            .collect();
        let expected: Vec<(String, u64, f64)> = expected
            .iter()
            .map(|(p, n, s)| (p.to_string(), *n, *s))
            .collect();
        assert_eq!(got, expected, "{label}");
    }
}

#[test]
fn token_chain_keys_are_recomputed_from_tokens() {
    let index = KvIndex::new(IndexConfig {
        key_mode: KeyMode::TokenChain,
        ..IndexConfig::default()
    });
    let batches = golden_batches();
    for (name, batch) in &batches[..4] {
        let outcome = index.apply_batch("pod-a", "test-model", batch);
        assert!(outcome.dropped.is_empty(), "{name}: {:?}", outcome.dropped);
    }
    let chain = TokenChain { seed: 0 };
    let tokens: Vec<u32> = (0..64).collect();
    let keys = chain.keys("test-model", &tokens, 16, &[]);
    let scores = index.score(&keys);
    assert_eq!(scores[0].matched_blocks, 4);
    // req-B (LoRA + salt): rooted at the LoRA name, extra keys folded in.
    let tokens_b: Vec<u32> = (1000..1032).collect();
    let extra = vec![
        Some(vec![
            EventExtraKey::Str("sql-lora".into()),
            EventExtraKey::Str("tenant-a".into()),
        ]),
        Some(vec![EventExtraKey::Str("sql-lora".into())]),
    ];
    let keys_b = chain.keys("sql-lora", &tokens_b, 16, &extra);
    assert_eq!(index.score(&keys_b)[0].matched_blocks, 2);
    assert!(
        index
            .score(&chain.keys("sql-lora", &tokens_b, 16, &[]))
            .is_empty()
    );
    // Engine keys map to own keys.
    let engine = 2233398808101521225; // req-A block 0
    assert_eq!(index.own_key(engine), Some(keys[0]));

    // A child whose parent is unknown is dropped; a token-less CPU store maps known blocks.
    let orphan = stored(&[77], Some(12345), (0..16).collect(), "GPU");
    let cpu = stored(&[engine, 999], None, vec![], "CPU");
    let outcome = index.apply_batch("pod-a", "test-model", &batch(vec![orphan, cpu]));
    assert_eq!(outcome.dropped, vec![DropReason::UnknownParent]);
    assert_eq!(outcome.stored_blocks, 1);
    assert!(
        index
            .pod_entries("pod-a")
            .contains(&(keys[0], Tier::Cpu, 1))
    );
    // Inconsistent token count.
    let bad = stored(&[1, 2], None, (0..17).collect(), "GPU");
    assert_eq!(
        index.apply_batch("pod-a", "m", &batch(vec![bad])).dropped,
        vec![DropReason::Inconsistent]
    );
}

#[test]
fn unsupported_groups_are_skipped() {
    let index = KvIndex::new(IndexConfig::default());
    let KvEvent::BlockStored(mut swa) = stored(&[5], None, vec![], "GPU") else {
        unreachable!()
    };
    swa.kv_cache_spec_kind = Some("sliding_window".into());
    let outcome = index.apply_batch(
        "p",
        "m",
        &batch(vec![
            KvEvent::BlockStored(swa),
            stored(&[6], None, vec![], "GPU"),
        ]),
    );
    assert_eq!(outcome.dropped, vec![DropReason::UnsupportedGroup]);
    assert_eq!(outcome.applied, 1);
    assert_eq!(index.len(), 1);
}

#[test]
fn duplicate_stores_are_reference_counted() {
    for (ref_count, survives_one_remove) in [(true, true), (false, false)] {
        let index = KvIndex::new(IndexConfig {
            ref_count_duplicates: ref_count,
            ..IndexConfig::default()
        });
        let store = stored(&[1], None, vec![], "GPU");
        index.apply_batch("p", "m", &batch(vec![store.clone(), store]));
        assert_eq!(index.len(), 1);
        index.apply_batch("p", "m", &batch(vec![removed(&[1], "GPU")]));
        assert_eq!(
            index.len() == 1,
            survives_one_remove,
            "ref_count {ref_count}"
        );
        index.apply_batch("p", "m", &batch(vec![removed(&[1], "GPU")]));
        assert!(index.is_empty());
        // Removing an unknown hash or a tier not held is a no-op.
        index.apply_batch(
            "p",
            "m",
            &batch(vec![
                stored(&[2], None, vec![], "CPU"),
                removed(&[2], "GPU"),
                removed(&[42], "GPU"),
            ]),
        );
        assert_eq!(index.len(), 1);
    }
}

#[test]
fn capacity_evicts_least_recently_stored() {
    let index = KvIndex::new(IndexConfig {
        capacity_per_pod: 3,
        ..IndexConfig::default()
    });
    let outcome = index.apply_batch(
        "p",
        "m",
        &batch(vec![stored(&[1, 2, 3], None, vec![], "GPU")]),
    );
    assert_eq!(outcome.evicted_blocks, 0);
    // Touch 1, then store 4 and 5: 2 and 3 are the least recent.
    index.apply_batch("p", "m", &batch(vec![stored(&[1], None, vec![], "GPU")]));
    let outcome = index.apply_batch("p", "m", &batch(vec![stored(&[4, 5], None, vec![], "GPU")]));
    assert_eq!(outcome.evicted_blocks, 2);
    let keys: Vec<u64> = index.pod_entries("p").iter().map(|e| e.0).collect();
    assert_eq!(keys, vec![1, 4, 5]);
    // Another pod has its own budget.
    index.apply_batch(
        "q",
        "m",
        &batch(vec![stored(&[1, 2, 3], None, vec![], "GPU")]),
    );
    assert_eq!(index.len(), 6);
}

#[test]
fn pods_can_be_cleared_removed_and_reused() {
    let index = KvIndex::new(IndexConfig::default());
    index.apply_batch("a", "m", &batch(vec![stored(&[1, 2], None, vec![], "GPU")]));
    index.apply_batch("b", "m", &batch(vec![stored(&[1, 3], None, vec![], "CPU")]));
    assert_eq!(index.remove_pod("a"), 2);
    assert_eq!(index.remove_pod("a"), 0);
    assert_eq!(
        index.pods(),
        vec![PodSummary {
            pod: "b".into(),
            gpu_blocks: 0,
            cpu_blocks: 2,
            storage_blocks: 0
        }]
    );
    assert_eq!(index.score(&[1])[0].pod, "b");
    index.apply_batch("c", "m", &batch(vec![stored(&[1], None, vec![], "GPU")]));
    assert_eq!(
        index
            .score(&[1])
            .iter()
            .map(|s| s.pod.to_string())
            .collect::<Vec<_>>(),
        ["c", "b"]
    );
    assert_eq!(index.clear_pod("b"), 2);
    assert_eq!(index.len(), 1);
    index.apply_batch("c", "m", &batch(vec![KvEvent::AllBlocksCleared]));
    assert!(index.is_empty());
}

/// Random operations against a straightforward reference model (per pod: key+tier →
/// (refs, last-use stamp)), with a small capacity so eviction happens often.
#[test]
fn random_operations_match_a_reference_model() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let capacity = 16;
    let index = KvIndex::new(IndexConfig {
        capacity_per_pod: capacity,
        ..IndexConfig::default()
    });
    type Model = HashMap<String, HashMap<(u64, Tier), (u16, u64)>>;
    let mut model: Model = HashMap::new();
    let mut clock = 0u64;
    let pods = ["a", "b", "c"];
    let mediums = ["GPU", "CPU"];
    for _ in 0..20_000 {
        let pod = pods[next(3) as usize];
        let medium = mediums[next(2) as usize];
        let tier = Tier::from_medium(Some(medium));
        let key = next(40);
        let entries = model.entry(pod.to_owned()).or_default();
        match next(10) {
            0..=5 => {
                index.apply_batch(pod, "m", &batch(vec![stored(&[key], None, vec![], medium)]));
                clock += 1;
                let entry = entries.entry((key, tier)).or_insert((0, 0));
                entry.0 = entry.0.saturating_add(1);
                entry.1 = clock;
                if entries.len() > capacity {
                    let oldest = *entries.iter().min_by_key(|(_, v)| v.1).unwrap().0;
                    entries.remove(&oldest);
                }
            }
            6..=8 => {
                index.apply_batch(pod, "m", &batch(vec![removed(&[key], medium)]));
                if let Some(entry) = entries.get_mut(&(key, tier)) {
                    entry.0 -= 1;
                    if entry.0 == 0 {
                        entries.remove(&(key, tier));
                    }
                }
            }
            _ => {
                if next(20) == 0 {
                    index.apply_batch(pod, "m", &batch(vec![KvEvent::AllBlocksCleared]));
                    entries.clear();
                }
            }
        }
        let mut expected: Vec<(u64, Tier, u16)> = model[pod]
            .iter()
            .map(|((k, t), (r, _))| (*k, *t, *r))
            .collect();
        expected.sort_unstable();
        assert_eq!(index.pod_entries(pod), expected);
    }
    let total: usize = model.values().map(HashMap::len).sum();
    assert_eq!(index.len(), total as u64);
}

#[test]
fn readers_score_while_a_writer_applies() {
    let index = std::sync::Arc::new(KvIndex::new(IndexConfig {
        capacity_per_pod: 1000,
        ..IndexConfig::default()
    }));
    let writer = {
        let index = std::sync::Arc::clone(&index);
        std::thread::spawn(move || {
            for round in 0..2000u64 {
                let keys: Vec<u64> = (round..round + 8).collect();
                index.apply_batch("w", "m", &batch(vec![stored(&keys, None, vec![], "GPU")]));
            }
        })
    };
    let mut n_reads = 0;
    while !writer.is_finished() {
        let scores = index.score(&[0, 1, 2, 3]);
        assert!(scores.len() <= 1);
        n_reads += 1;
    }
    writer.join().unwrap();
    assert!(n_reads > 0);
    // The capacity kept the newest 1000 keys (1007..=2006 after the last round).
    assert!(index.score(&[0, 1, 2, 3]).is_empty());
    assert_eq!(index.score(&[2003, 2004, 2005, 2006])[0].matched_blocks, 4);
    assert_eq!(index.len(), 1000);
}
