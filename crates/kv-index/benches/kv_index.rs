//! Benchmarks, each beside a baseline measured in the same run:
//! * `hash/*`: a 16-token `sha256_cbor` block vs raw SHA-256 over the same pre-image bytes;
//! * `ingest/*`: decode + apply of BlockStored batches vs decode alone (blocks/s);
//! * `lookup/*`: scoring a 512-block prompt over 256 pods vs 512 plain `HashMap` probes.
//!
//! Memory per entry is printed once (to stderr) from `KvIndex::memory_bytes`.

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sha2::{Digest, Sha256};

use kv_index::events::{
    BlockHashValue, BlockStored, KvEvent, KvEventBatch, decode_batch, encode_batch,
};
use kv_index::hash::{BlockHasher, DEFAULT_NONE_HASH_SEED, HashAlgo};
use kv_index::index::{IndexConfig, KvIndex};

fn hashing(c: &mut Criterion) {
    let mut group = c.benchmark_group("hash");
    for algo in [HashAlgo::Sha256Cbor, HashAlgo::Sha256] {
        let mut hasher = BlockHasher::new(algo, DEFAULT_NONE_HASH_SEED);
        let tokens: Vec<u32> = (100_000..100_016).collect();
        let parent = hasher.hash_block(None, &tokens, None);
        let preimage = hasher.block_preimage(Some(&parent), &tokens, None).to_vec();
        group.bench_function(format!("raw_sha256_same_bytes_{algo}"), |b| {
            b.iter(|| Sha256::digest(black_box(&preimage)))
        });
        group.bench_function(format!("block_hasher_{algo}"), |b| {
            b.iter(|| hasher.hash_block(Some(black_box(&parent)), black_box(&tokens), None))
        });
    }
    group.finish();
}

fn store_batch(first_hash: u64, n_blocks: u64) -> KvEventBatch {
    KvEventBatch {
        ts: 1.0,
        events: vec![KvEvent::BlockStored(BlockStored {
            block_hashes: (first_hash..first_hash + n_blocks)
                .map(|h| BlockHashValue::U64(h.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
                .collect(),
            parent_block_hash: None,
            token_ids: (0..n_blocks as u32 * 16).collect(),
            block_size: 16,
            medium: Some("GPU".into()),
            extra_keys: Some(vec![None; n_blocks as usize]),
            group_idx: Some(0),
            kv_cache_spec_kind: Some("full_attention".into()),
            ..BlockStored::default()
        })],
        data_parallel_rank: Some(0),
    }
}

fn ingestion(c: &mut Criterion) {
    const BLOCKS_PER_BATCH: u64 = 32;
    const BATCHES: u64 = 64;
    let payloads: Vec<Vec<u8>> = (0..BATCHES)
        .map(|i| {
            let mut bytes = Vec::new();
            encode_batch(
                &store_batch(i * BLOCKS_PER_BATCH, BLOCKS_PER_BATCH),
                &mut bytes,
            );
            bytes
        })
        .collect();
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(BLOCKS_PER_BATCH * BATCHES));
    group.bench_function("decode_only", |b| {
        b.iter(|| {
            for payload in &payloads {
                black_box(decode_batch(payload).unwrap());
            }
        })
    });
    let index = KvIndex::new(IndexConfig {
        capacity_per_pod: 100_000,
        ..IndexConfig::default()
    });
    let mut round = 0u64;
    group.bench_function("decode_and_apply", |b| {
        b.iter(|| {
            // A new pod each round keeps every store a fresh insert.
            round += 1;
            let pod = format!("pod-{}", round % 64);
            for payload in &payloads {
                let decoded = decode_batch(payload).unwrap();
                black_box(index.apply_batch(&pod, "m", &decoded.batch));
            }
        })
    });
    group.finish();
}

fn lookup(c: &mut Criterion) {
    const PODS: u64 = 256;
    const PROMPT_BLOCKS: u64 = 512;
    let index = KvIndex::new(IndexConfig::default());
    let prompt: Vec<u64> = (0..PROMPT_BLOCKS)
        .map(|i| i.wrapping_mul(0xff51_afd7_ed55_8ccd) | 1)
        .collect();
    for pod in 0..PODS {
        let name = format!("10.0.{}.{}:8000", pod / 256, pod % 256);
        // Every pod holds the shared 16-block system prompt and 2048 blocks of its own;
        // every 32nd pod holds a deeper prefix of this prompt.
        let mut keys: Vec<u64> = prompt[..16].to_vec();
        if pod % 32 == 0 {
            keys = prompt[..(64 + pod as usize) % PROMPT_BLOCKS as usize].to_vec();
        }
        keys.extend((0..2048).map(|i| (pod << 32 | i).wrapping_mul(0xc4ce_b9fe_1a85_ec53)));
        for chunk in keys.chunks(256) {
            let batch = KvEventBatch {
                ts: 0.0,
                events: vec![KvEvent::BlockStored(BlockStored {
                    block_hashes: chunk.iter().map(|&k| BlockHashValue::U64(k)).collect(),
                    block_size: 16,
                    ..BlockStored::default()
                })],
                data_parallel_rank: None,
            };
            index.apply_batch(&name, "m", &batch);
        }
    }
    let entries = index.len();
    eprintln!(
        "memory: {} entries, {:.1} bytes per (block, pod) entry",
        entries,
        index.memory_bytes() as f64 / entries as f64
    );
    let baseline: HashMap<u64, u32> = prompt.iter().map(|&k| (k, 1)).collect();
    let mut group = c.benchmark_group("lookup");
    group.bench_function("baseline_512_hashmap_probes", |b| {
        b.iter(|| {
            prompt
                .iter()
                .filter(|k| baseline.contains_key(black_box(k)))
                .count()
        })
    });
    group.bench_function("score_512_blocks_256_pods", |b| {
        b.iter(|| index.score(black_box(&prompt)))
    });
    group.finish();
}

criterion_group!(benches, hashing, ingestion, lookup);
criterion_main!(benches);
