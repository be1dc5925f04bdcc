//! `prefix-cache-scorer`: GIE's approximate prefix affinity, learned from its own routing.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

use crate::framework::{
    CycleState, Endpoint, Handle, InferenceRequest, Plugin, PluginError, PreRequest,
    PrefixCacheMatchInfo, SchedulingResult, Scorer, ScorerCategory, TypedName,
    registry::parameters,
};

/// GIE v1.0 defaults.
pub const DEFAULT_HASH_BLOCK_SIZE: usize = 64;
pub const DEFAULT_MAX_PREFIX_BLOCKS_TO_MATCH: usize = 256;
pub const DEFAULT_LRU_CAPACITY_PER_SERVER: usize = 31_250;

/// Cuts the prompt text into `hashBlockSize`-character blocks chained with xxh3 (seeded by
/// the model), remembers which blocks it sent to which endpoint (an LRU per endpoint, updated
/// after each decision), and scores `longest matched prefix / prompt blocks`. It never sees
/// the engines' caches; `precise-prefix-cache-scorer` does.
///
/// ```yaml
/// - type: prefix-cache-scorer
///   parameters: { hashBlockSize: 64, maxPrefixBlocksToMatch: 256, lruCapacityPerServer: 31250 }
/// ```
#[derive(Debug)]
pub struct PrefixCacheScorer {
    typed_name: TypedName,
    parameters: Parameters,
    servers: Mutex<HashMap<String, ServerLru>>,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Parameters {
    /// Characters per block.
    #[serde(default = "default_hash_block_size")]
    hash_block_size: usize,
    /// Blocks hashed at most (the rest of a long prompt is ignored).
    #[serde(default = "default_max_blocks")]
    max_prefix_blocks_to_match: usize,
    /// Block hashes remembered per endpoint.
    #[serde(default = "default_lru_capacity")]
    lru_capacity_per_server: usize,
}

fn default_hash_block_size() -> usize {
    DEFAULT_HASH_BLOCK_SIZE
}
fn default_max_blocks() -> usize {
    DEFAULT_MAX_PREFIX_BLOCKS_TO_MATCH
}
fn default_lru_capacity() -> usize {
    DEFAULT_LRU_CAPACITY_PER_SERVER
}

impl Default for Parameters {
    fn default() -> Self {
        Parameters {
            hash_block_size: DEFAULT_HASH_BLOCK_SIZE,
            max_prefix_blocks_to_match: DEFAULT_MAX_PREFIX_BLOCKS_TO_MATCH,
            lru_capacity_per_server: DEFAULT_LRU_CAPACITY_PER_SERVER,
        }
    }
}

#[derive(Debug, Default)]
struct ServerLru {
    by_hash: HashMap<u64, u64>,
    by_tick: BTreeMap<u64, u64>,
    tick: u64,
}

impl ServerLru {
    fn touch(&mut self, hash: u64, capacity: usize) {
        self.tick += 1;
        if let Some(old) = self.by_hash.insert(hash, self.tick) {
            self.by_tick.remove(&old);
        }
        self.by_tick.insert(self.tick, hash);
        while self.by_hash.len() > capacity {
            let Some((_, oldest)) = self.by_tick.pop_first() else {
                break;
            };
            self.by_hash.remove(&oldest);
        }
    }
}

impl PrefixCacheScorer {
    pub const TYPE: &'static str = "prefix-cache-scorer";

    pub fn factory(
        name: &str,
        value: serde_norway::Value,
        _handle: &Handle,
    ) -> Result<Arc<dyn Plugin>, PluginError> {
        let parameters: Parameters = parameters(value)?;
        for (parameter, value) in [
            ("hashBlockSize", parameters.hash_block_size),
            (
                "maxPrefixBlocksToMatch",
                parameters.max_prefix_blocks_to_match,
            ),
            ("lruCapacityPerServer", parameters.lru_capacity_per_server),
        ] {
            if value == 0 {
                return Err(PluginError::Invalid {
                    parameter,
                    reason: "must be at least 1".to_owned(),
                });
            }
        }
        Ok(Arc::new(PrefixCacheScorer {
            typed_name: TypedName::new(Self::TYPE, name),
            parameters,
            servers: Mutex::new(HashMap::new()),
        }))
    }

    /// The chained block hashes of the request's prompt text.
    fn hashes(&self, request: &InferenceRequest) -> (Vec<u64>, usize) {
        let input = request.user_input();
        let bytes = input.as_bytes();
        let mut parent = xxh3_64(request.target_model.as_bytes());
        let hashes = bytes
            .chunks_exact(self.parameters.hash_block_size)
            .take(self.parameters.max_prefix_blocks_to_match)
            .map(|block| {
                parent = xxh3_64_with_seed(block, parent);
                parent
            })
            .collect();
        (hashes, bytes.len())
    }
}

impl Plugin for PrefixCacheScorer {
    fn typed_name(&self) -> &TypedName {
        &self.typed_name
    }
    fn as_scorer(&self) -> Option<&dyn Scorer> {
        Some(self)
    }
    fn as_pre_request(&self) -> Option<&dyn PreRequest> {
        Some(self)
    }
    fn endpoint_removed(&self, address: &str) {
        self.servers.lock().remove(address);
    }
}

impl Scorer for PrefixCacheScorer {
    fn category(&self) -> ScorerCategory {
        ScorerCategory::Affinity
    }

    fn score(
        &self,
        cycle: &mut CycleState,
        request: &InferenceRequest,
        endpoints: &[Arc<Endpoint>],
    ) -> Vec<f64> {
        let (hashes, _) = self.hashes(request);
        let servers = self.servers.lock();
        let matched: Vec<u64> = endpoints
            .iter()
            .map(|endpoint| {
                servers.get(&endpoint.address).map_or(0, |lru| {
                    hashes
                        .iter()
                        .take_while(|hash| lru.by_hash.contains_key(hash))
                        .count() as u64
                })
            })
            .collect();
        drop(servers);
        let total = hashes.len() as u64;
        super::write_match_info(
            cycle,
            &self.typed_name.name,
            PrefixCacheMatchInfo {
                matched_blocks: endpoints
                    .iter()
                    .zip(&matched)
                    .map(|(endpoint, &n)| (endpoint.address.clone(), n))
                    .collect(),
                total_blocks: total,
                in_tokens: false,
                block_size: self.parameters.hash_block_size as u64,
            },
        );
        matched
            .into_iter()
            .map(|n| {
                if total == 0 {
                    0.0
                } else {
                    n as f64 / total as f64
                }
            })
            .collect()
    }
}

impl PreRequest for PrefixCacheScorer {
    fn pre_request(&self, request: &mut InferenceRequest, result: &SchedulingResult) {
        let Some(target) = result.primary_targets().first() else {
            return;
        };
        let (hashes, _) = self.hashes(request);
        let capacity = self.parameters.lru_capacity_per_server;
        let mut servers = self.servers.lock();
        let lru = servers.entry(target.address.clone()).or_default();
        for hash in hashes {
            lru.touch(hash, capacity);
        }
    }
}
