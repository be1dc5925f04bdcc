//! Prefix scoring: for each pod, the longest run of consecutive prompt blocks from block 0
//! that it holds, weighted by the best tier of each matched block.

use crate::index::{KvIndex, PodScore, Slot};

/// Keys whose holders are looked up before any of them is walked. The lookups are
/// independent, so their cache misses overlap instead of queueing one after another.
const PROBE_GROUP: usize = 8;

/// Per-pod running state of one scoring pass.
#[derive(Debug, Clone, Copy, Default)]
struct Acc {
    /// Blocks matched so far.
    matched: u32,
    /// Weighted score so far.
    score: f64,
    /// The weight counted for the current block (a pod may hold a block on several tiers;
    /// the best one counts).
    current_weight: f64,
}

/// Walks the prompt's keys in order and stops as soon as no pod is still matching, so the
/// cost is one hash lookup per matched block (plus at most one probe group past the end)
/// and one visit per (block, holder); the holders of a block are contiguous.
pub(crate) fn score(index: &KvIndex, keys: &[u64]) -> Vec<PodScore> {
    let weights = index.config().weights;
    let tier_weight = [weights.gpu, weights.cpu, weights.storage, weights.storage];
    let inner = index.inner.read();
    let mut acc = vec![Acc::default(); inner.pod_count()];
    let mut block_idx = 0u32;
    'groups: for group in keys.chunks(PROBE_GROUP) {
        let mut holders: [&[Slot]; PROBE_GROUP] = [&[]; PROBE_GROUP];
        for (slot, &key) in holders.iter_mut().zip(group) {
            *slot = inner.holders(key);
        }
        for block_holders in &holders[..group.len()] {
            let mut live = 0usize;
            for holder in *block_holders {
                let Some(pod) = acc.get_mut(holder.pod() as usize) else {
                    continue;
                };
                let weight = tier_weight[holder.tier_idx()];
                if pod.matched == block_idx {
                    pod.matched = block_idx + 1;
                    pod.current_weight = weight;
                    pod.score += weight;
                    live += 1;
                } else if pod.matched == block_idx + 1 && weight > pod.current_weight {
                    pod.score += weight - pod.current_weight;
                    pod.current_weight = weight;
                }
            }
            if live == 0 {
                break 'groups;
            }
            block_idx += 1;
        }
    }
    // Best score first, ties by pod name: walk the pods in name order and sort stably by
    // an integer form of the score, so no strings and no floats are compared (and the
    // common long runs of equal scores sort in linear time).
    let mut ranked: Vec<(u64, u32)> = inner
        .pods_by_name()
        .iter()
        .filter_map(|&pod_id| {
            let pod = acc.get(pod_id as usize)?;
            (pod.matched > 0).then(|| (!ordered_bits(pod.score), pod_id))
        })
        .collect();
    ranked.sort_by_key(|&(key, _)| key);
    let n_keys = keys.len().max(1) as f64;
    ranked
        .into_iter()
        .filter_map(|(_, pod_id)| {
            let pod = acc.get(pod_id as usize)?;
            Some(PodScore {
                pod: inner.pod_name(pod_id),
                matched_blocks: u64::from(pod.matched),
                score: pod.score,
                ratio: f64::from(pod.matched) / n_keys,
            })
        })
        .collect()
}

/// The bits of `value` as an integer with the order of [`f64::total_cmp`].
fn ordered_bits(value: f64) -> u64 {
    let bits = value.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}
