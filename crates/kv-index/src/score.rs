//! Prefix scoring: for each pod, the longest run of consecutive prompt blocks from block 0
//! that it holds, weighted by the best tier of each matched block.

use crate::index::{KvIndex, PodScore};

/// Walks the prompt's keys in order and stops as soon as no pod is still matching, so the
/// cost is one hash lookup per matched block plus one visit per (block, holder).
pub(crate) fn score(index: &KvIndex, keys: &[u64]) -> Vec<PodScore> {
    let weights = index.config().weights;
    let inner = index.inner.read();
    // Per pod: blocks matched so far, weighted score, and the weight counted for the
    // current block (a pod may hold a block on several tiers; the best one counts).
    let mut matched = vec![0u32; inner.pod_count()];
    let mut score = vec![0f64; inner.pod_count()];
    let mut current_weight = vec![0f64; inner.pod_count()];
    for (block_idx, &key) in keys.iter().enumerate() {
        let block_idx = block_idx as u32;
        let mut any = false;
        inner.for_each_holder(key, |pod, tier| {
            let pod = pod as usize;
            let weight = weights.of(tier);
            if matched[pod] == block_idx {
                matched[pod] = block_idx + 1;
                current_weight[pod] = weight;
                score[pod] += weight;
                any = true;
            } else if matched[pod] == block_idx + 1 && weight > current_weight[pod] {
                score[pod] += weight - current_weight[pod];
                current_weight[pod] = weight;
            }
        });
        if !any {
            break;
        }
    }
    let n_keys = keys.len().max(1) as f64;
    let mut scores: Vec<PodScore> = matched
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(pod, &n)| PodScore {
            pod: inner.pod_name(pod as u32).to_owned(),
            matched_blocks: u64::from(n),
            score: score[pod],
            ratio: f64::from(n) / n_keys,
        })
        .collect();
    drop(inner);
    scores.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.pod.cmp(&b.pod)));
    scores
}
