//! The block index: which pods hold which blocks, on which device tier.
//!
//! Storage is laid out for the read path. A `HashMap<u64, Slot>` maps a block key to its
//! holders: one holder inline in the 8-byte slot (the common case), or an index into
//! `lists`, a slab of small vectors, when several (pod, tier) pairs hold the key. Scoring a
//! prompt therefore costs one map probe per block plus a walk over one contiguous array.
//!
//! Each (block, pod, tier) entry also owns a 24-byte node in a chunked slab (4096 nodes per
//! chunk, so growth never doubles the footprint); nodes carry the key, tier, ref count and
//! the links of their pod's LRU list, which bounds a pod's entries
//! (`capacity_per_pod`) and serves pod removal and `AllBlocksCleared`. Pods are interned to
//! dense `u32` ids. One `RwLock` guards everything: a batch is applied under one write lock,
//! and scoring only reads, so readers run between batches.
//!
//! Two ways to key blocks ([`KeyMode`]):
//! * **Engine keys**: the 64-bit hashes in the events are the keys. The request side
//!   computes the same chain with [`crate::hash::BlockHasher`] (same algorithm and seed).
//! * **Token-chain keys**: the index recomputes its own chain from each event's `token_ids`
//!   ([`TokenChain`]) and keeps an engine→own key map, so it works with any hash algorithm
//!   or an unknown seed.

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

use parking_lot::RwLock;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::events::{BlockRemoved, BlockStored, DropReason, EventExtraKey, KvEvent, KvEventBatch};

const NIL: u32 = u32::MAX;

/// Block keys are already hashes: one folded multiply mixes them well enough, several times
/// faster than SipHash.
#[derive(Debug, Default, Clone, Copy)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    #[inline]
    fn write_u64(&mut self, value: u64) {
        let product = u128::from(self.0 ^ value) * 0x9e37_79b9_7f4a_7c15_u128;
        self.0 = (product >> 64) as u64 ^ product as u64;
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

type KeyMap<V> = HashMap<u64, V, BuildHasherDefault<KeyHasher>>;

/// How blocks are keyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyMode {
    /// The events' 64-bit hashes.
    #[default]
    Engine,
    /// Keys recomputed from `token_ids` with [`TokenChain`].
    TokenChain,
}

/// Device tier of a cached block, from the event's `medium`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    Gpu,
    Cpu,
    /// `STORAGE` or any other medium.
    Storage,
}

impl Tier {
    /// `None` or empty is GPU (the GPU pool); matching is case-insensitive.
    pub fn from_medium(medium: Option<&str>) -> Tier {
        match medium {
            None | Some("") => Tier::Gpu,
            Some(m) if m.eq_ignore_ascii_case("gpu") => Tier::Gpu,
            Some(m) if m.eq_ignore_ascii_case("cpu") => Tier::Cpu,
            Some(_) => Tier::Storage,
        }
    }

    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Gpu => "gpu",
            Tier::Cpu => "cpu",
            Tier::Storage => "storage",
        }
    }

    fn from_u8(value: u8) -> Tier {
        match value {
            0 => Tier::Gpu,
            1 => Tier::Cpu,
            _ => Tier::Storage,
        }
    }
}

/// Score weight per tier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TierWeights {
    pub gpu: f64,
    pub cpu: f64,
    pub storage: f64,
}

impl Default for TierWeights {
    /// llm-d's defaults: gpu 1.0, cpu 0.8; storage (no llm-d default) 0.5.
    fn default() -> Self {
        TierWeights {
            gpu: 1.0,
            cpu: 0.8,
            storage: 0.5,
        }
    }
}

impl TierWeights {
    /// The weight of `tier`.
    pub fn of(&self, tier: Tier) -> f64 {
        match tier {
            Tier::Gpu => self.gpu,
            Tier::Cpu => self.cpu,
            Tier::Storage => self.storage,
        }
    }
}

/// Index configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexConfig {
    pub key_mode: KeyMode,
    /// Entries kept per pod; the least recently stored are evicted beyond it.
    pub capacity_per_pod: usize,
    pub weights: TierWeights,
    /// Count duplicate stores of one (block, pod, tier) so that a block is dropped only when
    /// as many removes arrived (llm-d's dedup filter). Off: a store is idempotent and one
    /// remove drops the block, which suits `kv_cache_report_mode=full` re-reports.
    pub ref_count_duplicates: bool,
    /// Seed of the token-chain keys.
    pub token_chain_seed: u64,
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            key_mode: KeyMode::Engine,
            capacity_per_pod: 1 << 20,
            weights: TierWeights::default(),
            ref_count_duplicates: true,
            token_chain_seed: 0,
        }
    }
}

/// llm-d-style own block keys: `root = xxh3_64(model, seed)`, then
/// `key_i = xxh3_64(tokens_i as u32 LE ‖ extra_i, key_{i-1})`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenChain {
    pub seed: u64,
}

impl TokenChain {
    /// The chain root for a model (or LoRA adapter name, which takes precedence in events).
    pub fn root(&self, model: &str) -> u64 {
        xxh3_64_with_seed(model.as_bytes(), self.seed)
    }

    /// One link; `buf` is scratch space.
    pub fn next(
        &self,
        parent: u64,
        tokens: &[u32],
        extra: Option<&[EventExtraKey]>,
        buf: &mut Vec<u8>,
    ) -> u64 {
        buf.clear();
        for token in tokens {
            buf.extend_from_slice(&token.to_le_bytes());
        }
        if let Some(keys) = extra {
            for key in keys {
                match key {
                    EventExtraKey::Str(text) => {
                        buf.push(1);
                        buf.extend_from_slice(&(text.len() as u64).to_le_bytes());
                        buf.extend_from_slice(text.as_bytes());
                    }
                    EventExtraKey::Mm { identifier, offset } => {
                        buf.push(2);
                        buf.extend_from_slice(&(identifier.len() as u64).to_le_bytes());
                        buf.extend_from_slice(identifier.as_bytes());
                        buf.extend_from_slice(&offset.to_le_bytes());
                    }
                    EventExtraKey::Bytes(bytes) => {
                        buf.push(3);
                        buf.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
                        buf.extend_from_slice(bytes);
                    }
                    EventExtraKey::Int(value) => {
                        buf.push(4);
                        buf.extend_from_slice(&value.to_le_bytes());
                    }
                }
            }
        }
        xxh3_64_with_seed(buf, parent)
    }

    /// The keys of a request's full blocks; `extra_keys[i]` are block `i`'s event-form extra
    /// keys (see [`crate::hash::ExtraKey::to_event_value`]), missing entries meaning none.
    pub fn keys(
        &self,
        model: &str,
        tokens: &[u32],
        block_size: usize,
        extra_keys: &[Option<Vec<EventExtraKey>>],
    ) -> Vec<u64> {
        if block_size == 0 {
            return Vec::new();
        }
        let mut buf = Vec::with_capacity(block_size * 4);
        let mut parent = self.root(model);
        tokens
            .chunks_exact(block_size)
            .enumerate()
            .map(|(block_idx, block)| {
                let extra = extra_keys.get(block_idx).and_then(Option::as_deref);
                parent = self.next(parent, block, extra, &mut buf);
                parent
            })
            .collect()
    }
}

/// What applying a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// Events applied.
    pub applied: u64,
    /// Events skipped, with why.
    pub dropped: Vec<DropReason>,
    /// (block, pod) entries added.
    pub stored_blocks: u64,
    /// (block, pod) entries removed by `BlockRemoved`.
    pub removed_blocks: u64,
    /// Entries evicted by the capacity bound.
    pub evicted_blocks: u64,
    /// Entries dropped by `AllBlocksCleared`.
    pub cleared_blocks: u64,
}

/// Per-pod entry counts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PodSummary {
    pub pod: String,
    pub gpu_blocks: u64,
    pub cpu_blocks: u64,
    pub storage_blocks: u64,
}

/// One pod's result for a prompt: its longest consecutive prefix.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PodScore {
    /// The pod's name, interned for the process (see [`intern_pod_name`]), so scoring
    /// neither allocates nor touches reference counts per pod.
    pub pod: &'static str,
    /// Consecutive blocks from the start held on any tier.
    pub matched_blocks: u64,
    /// Sum over the matched blocks of the best tier weight.
    pub score: f64,
    /// `matched_blocks / prompt blocks`.
    pub ratio: f64,
}

/// The process-wide copy of a pod name. Each distinct name is allocated once and kept for
/// the life of the process, so memory grows only with the number of distinct pod names
/// ever seen (a few tens of bytes each), never with traffic or with pods coming back.
pub fn intern_pod_name(name: &str) -> &'static str {
    static NAMES: OnceLock<parking_lot::Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES.get_or_init(Default::default).lock();
    if let Some(&interned) = names.get(name) {
        return interned;
    }
    let interned: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(interned);
    interned
}

/// The concurrent block index.
#[derive(Debug)]
pub struct KvIndex {
    config: IndexConfig,
    pub(crate) inner: RwLock<Inner>,
}

/// Nodes per slab chunk.
const CHUNK_BITS: u32 = 12;
const CHUNK_LEN: usize = 1 << CHUNK_BITS;
const CHUNK_MASK: u32 = (1 << CHUNK_BITS) - 1;

/// One (block, pod, tier) entry: its key and the links of its pod's LRU list. A free node
/// keeps the free list in `lru_next`.
#[derive(Debug, Clone, Copy)]
struct Node {
    key: u64,
    lru_prev: u32,
    lru_next: u32,
    pod: u32,
    refs: u16,
    tier: u8,
}

const EMPTY_NODE: Node = Node {
    key: 0,
    lru_prev: NIL,
    lru_next: NIL,
    pod: NIL,
    refs: 0,
    tier: 0,
};

/// A holder of a key: its node and `pod << 2 | tier`. As a map value, `node == NIL`
/// means "several holders" and `word` is then an index into `Inner::lists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    node: u32,
    word: u32,
}

impl Slot {
    fn holder(node: u32, pod: u32, tier: u8) -> Slot {
        Slot {
            node,
            word: pod << 2 | u32::from(tier),
        }
    }

    fn list(list: u32) -> Slot {
        Slot {
            node: NIL,
            word: list,
        }
    }

    fn is_list(self) -> bool {
        self.node == NIL
    }

    #[inline]
    pub(crate) fn pod(self) -> u32 {
        self.word >> 2
    }

    /// The tier as an index 0..=3 (3 never occurs; it reads as storage).
    #[inline]
    pub(crate) fn tier_idx(self) -> usize {
        (self.word & 3) as usize
    }

    fn matches(self, pod: u32, tier: u8) -> bool {
        self.word == pod << 2 | u32::from(tier)
    }
}

#[derive(Debug)]
struct PodState {
    name: &'static str,
    /// Most recently stored.
    head: u32,
    tail: u32,
    len: usize,
    counts: [u64; 3],
    removed: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Inner {
    /// The node slab, in fixed-size chunks.
    chunks: Vec<Box<[Node]>>,
    /// Nodes ever handed out (the slab's high-water mark).
    n_nodes: u32,
    free: u32,
    /// Engine key of each node (token-chain mode only).
    node_engine: Vec<u64>,
    keys: KeyMap<Slot>,
    /// Holder lists of keys with several holders; `free_lists` are reusable slots.
    lists: Vec<Vec<Slot>>,
    free_lists: Vec<u32>,
    pods: Vec<PodState>,
    pod_ids: HashMap<&'static str, u32>,
    /// Live pod ids sorted by name.
    by_name: Vec<u32>,
    /// Token-chain mode: engine key → (own key, nodes created through it).
    engine_map: KeyMap<(u64, u32)>,
    entries: u64,
    scratch: Vec<u8>,
}

impl KvIndex {
    pub fn new(config: IndexConfig) -> Self {
        KvIndex {
            config,
            inner: RwLock::new(Inner {
                free: NIL,
                ..Inner::default()
            }),
        }
    }

    pub fn config(&self) -> &IndexConfig {
        &self.config
    }

    /// Applies one batch from `pod`; `model` roots token-chain keys when the store names no
    /// LoRA. Bad events are skipped and reported; the rest apply in order.
    pub fn apply_batch(&self, pod: &str, model: &str, batch: &KvEventBatch) -> ApplyOutcome {
        let mut outcome = ApplyOutcome::default();
        let mut inner = self.inner.write();
        let pod_id = inner.pod_id(pod);
        for event in &batch.events {
            let result = match event {
                KvEvent::BlockStored(stored) => {
                    self.apply_stored(&mut inner, pod_id, model, stored, &mut outcome)
                }
                KvEvent::BlockRemoved(removed) => {
                    self.apply_removed(&mut inner, pod_id, removed, &mut outcome);
                    Ok(())
                }
                KvEvent::AllBlocksCleared => {
                    outcome.cleared_blocks += inner.clear_pod(pod_id);
                    Ok(())
                }
            };
            match result {
                Ok(()) => outcome.applied += 1,
                Err(reason) => outcome.dropped.push(reason),
            }
        }
        outcome
    }

    /// Drops every entry of `pod` (endpoint removed, engine restarted); returns how many.
    pub fn clear_pod(&self, pod: &str) -> u64 {
        let mut inner = self.inner.write();
        match inner.pod_ids.get(pod).copied() {
            Some(pod_id) => inner.clear_pod(pod_id),
            None => 0,
        }
    }

    /// Removes `pod` entirely (its entries and its name).
    pub fn remove_pod(&self, pod: &str) -> u64 {
        let mut inner = self.inner.write();
        let Some(pod_id) = inner.pod_ids.remove(pod) else {
            return 0;
        };
        let n = inner.clear_pod(pod_id);
        // The id stays allocated, ready for reuse.
        let state = &mut inner.pods[pod_id as usize];
        state.name = "";
        state.removed = true;
        inner.rerank_pods();
        n
    }

    /// Total (block, pod, tier) entries.
    pub fn len(&self) -> u64 {
        self.inner.read().entries
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Per-pod entry counts, sorted by pod.
    pub fn pods(&self) -> Vec<PodSummary> {
        let inner = self.inner.read();
        let mut pods: Vec<PodSummary> = inner
            .pod_ids
            .iter()
            .map(|(name, &pod_id)| {
                let counts = inner.pods[pod_id as usize].counts;
                PodSummary {
                    pod: name.to_string(),
                    gpu_blocks: counts[0],
                    cpu_blocks: counts[1],
                    storage_blocks: counts[2],
                }
            })
            .collect();
        pods.sort_by(|a, b| a.pod.cmp(&b.pod));
        pods
    }

    /// The entries of one pod as `(key, tier, refs)`, sorted.
    pub fn pod_entries(&self, pod: &str) -> Vec<(u64, Tier, u16)> {
        let inner = self.inner.read();
        let Some(&pod_id) = inner.pod_ids.get(pod) else {
            return Vec::new();
        };
        let mut entries = Vec::with_capacity(inner.pods[pod_id as usize].len);
        let mut idx = inner.pods[pod_id as usize].head;
        while idx != NIL {
            let node = inner.node(idx);
            entries.push((node.key, Tier::from_u8(node.tier), node.refs));
            idx = node.lru_next;
        }
        entries.sort_unstable();
        entries
    }

    /// The keys `pod` holds on any tier, sorted and deduplicated.
    pub fn pod_keys(&self, pod: &str) -> Vec<u64> {
        let mut keys: Vec<u64> = self.pod_entries(pod).iter().map(|entry| entry.0).collect();
        keys.dedup();
        keys
    }

    /// Own key of an engine key (token-chain mode).
    pub fn own_key(&self, engine_key: u64) -> Option<u64> {
        self.inner
            .read()
            .engine_map
            .get(&engine_key)
            .map(|&(own, _)| own)
    }

    /// Heap bytes held by the index structures, counting allocated capacity: hash tables by
    /// their bucket arrays (slot plus control byte per bucket), vectors by capacity.
    pub fn memory_bytes(&self) -> usize {
        let inner = self.inner.read();
        let lists: usize = inner
            .lists
            .iter()
            .map(|list| list.capacity() * std::mem::size_of::<Slot>())
            .sum();
        inner.chunks.len() * CHUNK_LEN * std::mem::size_of::<Node>()
            + inner.chunks.capacity() * std::mem::size_of::<Box<[Node]>>()
            + inner.node_engine.capacity() * 8
            + table_bytes(inner.keys.capacity(), std::mem::size_of::<(u64, Slot)>())
            + table_bytes(
                inner.engine_map.capacity(),
                std::mem::size_of::<(u64, (u64, u32))>(),
            )
            + inner.lists.capacity() * std::mem::size_of::<Vec<Slot>>()
            + lists
            + inner.free_lists.capacity() * 4
            + inner.pods.capacity() * std::mem::size_of::<PodState>()
            + inner.by_name.capacity() * 4
            + table_bytes(inner.pod_ids.capacity(), std::mem::size_of::<(&str, u32)>())
    }

    /// Longest consecutive prefix per pod for a prompt's block keys, best first; pods with no
    /// matched block are left out.
    pub fn score(&self, keys: &[u64]) -> Vec<PodScore> {
        crate::score::score(self, keys)
    }

    fn apply_stored(
        &self,
        inner: &mut Inner,
        pod_id: u32,
        model: &str,
        stored: &BlockStored,
        outcome: &mut ApplyOutcome,
    ) -> Result<(), DropReason> {
        if let Some(kind) = stored.kv_cache_spec_kind.as_deref()
            && !matches!(
                kind,
                "full_attention" | "mla_attention" | "sink_full_attention"
            )
        {
            return Err(DropReason::UnsupportedGroup);
        }
        let tier = Tier::from_medium(stored.medium.as_deref());
        match self.config.key_mode {
            KeyMode::Engine => {
                for hash in &stored.block_hashes {
                    self.add(inner, pod_id, hash.as_u64(), None, tier, outcome);
                }
                Ok(())
            }
            KeyMode::TokenChain => {
                self.store_token_chain(inner, pod_id, model, stored, tier, outcome)
            }
        }
    }

    fn store_token_chain(
        &self,
        inner: &mut Inner,
        pod_id: u32,
        model: &str,
        stored: &BlockStored,
        tier: Tier,
        outcome: &mut ApplyOutcome,
    ) -> Result<(), DropReason> {
        let n_blocks = stored.block_hashes.len();
        let block_size = stored.block_size as usize;
        if stored.token_ids.is_empty() {
            // Offload tiers store known blocks without tokens: map through engine keys.
            for hash in &stored.block_hashes {
                let engine = hash.as_u64();
                let Some(&(own, _)) = inner.engine_map.get(&engine) else {
                    continue;
                };
                self.add(inner, pod_id, own, Some(engine), tier, outcome);
            }
            return Ok(());
        }
        if block_size == 0 || stored.token_ids.len() != n_blocks * block_size {
            return Err(DropReason::Inconsistent);
        }
        let chain = TokenChain {
            seed: self.config.token_chain_seed,
        };
        let mut parent = match &stored.parent_block_hash {
            None => chain.root(stored.lora_name.as_deref().unwrap_or(model)),
            Some(hash) if hash.as_u64() == 0 => {
                chain.root(stored.lora_name.as_deref().unwrap_or(model))
            }
            Some(hash) => match inner.engine_map.get(&hash.as_u64()) {
                Some(&(own, _)) => own,
                None => return Err(DropReason::UnknownParent),
            },
        };
        let mut scratch = std::mem::take(&mut inner.scratch);
        for (block_idx, (hash, tokens)) in stored
            .block_hashes
            .iter()
            .zip(stored.token_ids.chunks_exact(block_size))
            .enumerate()
        {
            let extra = stored
                .extra_keys
                .as_ref()
                .and_then(|per_block| per_block.get(block_idx))
                .and_then(Option::as_deref);
            parent = chain.next(parent, tokens, extra, &mut scratch);
            self.add(inner, pod_id, parent, Some(hash.as_u64()), tier, outcome);
        }
        inner.scratch = scratch;
        Ok(())
    }

    fn apply_removed(
        &self,
        inner: &mut Inner,
        pod_id: u32,
        removed: &BlockRemoved,
        outcome: &mut ApplyOutcome,
    ) {
        let tier = Tier::from_medium(removed.medium.as_deref()) as u8;
        for hash in &removed.block_hashes {
            let engine = hash.as_u64();
            let key = match self.config.key_mode {
                KeyMode::Engine => engine,
                KeyMode::TokenChain => match inner.engine_map.get(&engine) {
                    Some(&(own, _)) => own,
                    None => continue, // unknown hashes are no-ops
                },
            };
            let Some(idx) = inner.find(key, pod_id, tier) else {
                continue;
            };
            let node = inner.node_mut(idx);
            if self.config.ref_count_duplicates && node.refs > 1 {
                node.refs -= 1;
            } else {
                inner.free_node(idx);
                outcome.removed_blocks += 1;
            }
        }
    }

    fn add(
        &self,
        inner: &mut Inner,
        pod_id: u32,
        key: u64,
        engine: Option<u64>,
        tier: Tier,
        outcome: &mut ApplyOutcome,
    ) {
        let tier = tier as u8;
        if let Some(idx) = inner.find(key, pod_id, tier) {
            if self.config.ref_count_duplicates {
                let node = inner.node_mut(idx);
                node.refs = node.refs.saturating_add(1);
            }
            inner.lru_unlink(idx);
            inner.lru_push_front(idx);
            return;
        }
        let idx = inner.alloc_node(Node {
            key,
            lru_prev: NIL,
            lru_next: NIL,
            pod: pod_id,
            refs: 1,
            tier,
        });
        if let Some(engine) = engine {
            if inner.node_engine.len() <= idx as usize {
                inner.node_engine.resize(idx as usize + 1, 0);
            }
            inner.node_engine[idx as usize] = engine;
            inner.engine_map.entry(engine).or_insert((key, 0)).1 += 1;
        }
        inner.add_holder(key, Slot::holder(idx, pod_id, tier));
        inner.lru_push_front(idx);
        inner.pods[pod_id as usize].counts[usize::from(tier)] += 1;
        inner.entries += 1;
        outcome.stored_blocks += 1;
        while inner.pods[pod_id as usize].len > self.config.capacity_per_pod {
            let tail = inner.pods[pod_id as usize].tail;
            inner.free_node(tail);
            outcome.evicted_blocks += 1;
        }
    }
}

/// Bytes of a hashbrown table holding `capacity` items of `slot` bytes: a power-of-two
/// bucket array at most 7/8 full, one control byte per bucket plus one group.
fn table_bytes(capacity: usize, slot: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    let buckets = if capacity < 8 {
        (capacity + 1).next_power_of_two()
    } else {
        (capacity * 8 / 7).next_power_of_two()
    };
    buckets * (slot + 1) + 16
}

/// Read access for the scorer.
impl Inner {
    /// The holders of `key`: the inline one or the list.
    #[inline]
    pub(crate) fn holders(&self, key: u64) -> &[Slot] {
        match self.keys.get(&key) {
            None => &[],
            Some(slot) if slot.is_list() => self
                .lists
                .get(slot.word as usize)
                .map_or(&[][..], Vec::as_slice),
            Some(slot) => std::slice::from_ref(slot),
        }
    }

    pub(crate) fn pod_count(&self) -> usize {
        self.pods.len()
    }

    pub(crate) fn pod_name(&self, pod_id: u32) -> &'static str {
        self.pods[pod_id as usize].name
    }

    /// Order of `pod_id`'s name among the pods' names.
    /// Live pod ids in name order, so scoring orders ties without comparing strings.
    pub(crate) fn pods_by_name(&self) -> &[u32] {
        &self.by_name
    }
}

impl Inner {
    fn pod_id(&mut self, pod: &str) -> u32 {
        if let Some(&pod_id) = self.pod_ids.get(pod) {
            return pod_id;
        }
        // Reuse a removed pod's slot if there is one.
        let pod_id = match self.pods.iter().position(|p| p.removed) {
            Some(free) => free as u32,
            None => {
                self.pods.push(PodState {
                    name: "",
                    head: NIL,
                    tail: NIL,
                    len: 0,
                    counts: [0; 3],
                    removed: false,
                });
                (self.pods.len() - 1) as u32
            }
        };
        let name = intern_pod_name(pod);
        self.pods[pod_id as usize].name = name;
        self.pods[pod_id as usize].removed = false;
        self.pod_ids.insert(name, pod_id);
        self.rerank_pods();
        pod_id
    }

    /// Recomputes the name order of the live pods (pods come and go rarely; scoring is hot).
    fn rerank_pods(&mut self) {
        let mut order: Vec<u32> = (0..self.pods.len() as u32)
            .filter(|&pod_id| !self.pods[pod_id as usize].removed)
            .collect();
        order.sort_by(|&a, &b| self.pods[a as usize].name.cmp(self.pods[b as usize].name));
        self.by_name = order;
    }

    #[inline]
    fn node(&self, idx: u32) -> &Node {
        &self.chunks[(idx >> CHUNK_BITS) as usize][(idx & CHUNK_MASK) as usize]
    }

    #[inline]
    fn node_mut(&mut self, idx: u32) -> &mut Node {
        &mut self.chunks[(idx >> CHUNK_BITS) as usize][(idx & CHUNK_MASK) as usize]
    }

    fn find(&self, key: u64, pod_id: u32, tier: u8) -> Option<u32> {
        self.holders(key)
            .iter()
            .find(|slot| slot.matches(pod_id, tier))
            .map(|slot| slot.node)
    }

    fn add_holder(&mut self, key: u64, holder: Slot) {
        use std::collections::hash_map::Entry;
        match self.keys.entry(key) {
            Entry::Vacant(vacant) => {
                vacant.insert(holder);
            }
            Entry::Occupied(mut occupied) => {
                let slot = *occupied.get();
                if slot.is_list() {
                    if let Some(list) = self.lists.get_mut(slot.word as usize) {
                        list.push(holder);
                    }
                    return;
                }
                let list = match self.free_lists.pop() {
                    Some(free) => {
                        if let Some(list) = self.lists.get_mut(free as usize) {
                            list.extend_from_slice(&[slot, holder]);
                        }
                        free
                    }
                    None => {
                        self.lists.push(vec![slot, holder]);
                        (self.lists.len() - 1) as u32
                    }
                };
                occupied.insert(Slot::list(list));
            }
        }
    }

    fn remove_holder(&mut self, key: u64, node: u32) {
        let Some(slot) = self.keys.get_mut(&key) else {
            return;
        };
        if !slot.is_list() {
            if slot.node == node {
                self.keys.remove(&key);
            }
            return;
        }
        let list_idx = slot.word;
        let Some(list) = self.lists.get_mut(list_idx as usize) else {
            return;
        };
        if let Some(position) = list.iter().position(|holder| holder.node == node) {
            list.swap_remove(position);
        }
        if list.len() == 1 {
            *slot = list[0];
            list.clear();
            if list.capacity() > 4 {
                list.shrink_to(4);
            }
            self.free_lists.push(list_idx);
        }
    }

    fn alloc_node(&mut self, node: Node) -> u32 {
        if self.free != NIL {
            let idx = self.free;
            self.free = self.node(idx).lru_next;
            *self.node_mut(idx) = node;
            return idx;
        }
        let idx = self.n_nodes;
        if (idx >> CHUNK_BITS) as usize == self.chunks.len() {
            self.chunks
                .push(vec![EMPTY_NODE; CHUNK_LEN].into_boxed_slice());
        }
        self.n_nodes += 1;
        *self.node_mut(idx) = node;
        idx
    }

    /// Unlinks a node from its key's holders and its pod's list and frees it.
    fn free_node(&mut self, idx: u32) {
        let node = *self.node(idx);
        self.lru_unlink(idx);
        self.remove_holder(node.key, idx);
        if let Some(&engine) = self.node_engine.get(idx as usize)
            && let Some(mapping) = self.engine_map.get_mut(&engine)
            && mapping.0 == node.key
        {
            mapping.1 = mapping.1.saturating_sub(1);
            if mapping.1 == 0 {
                self.engine_map.remove(&engine);
            }
        }
        let pod = &mut self.pods[node.pod as usize];
        pod.counts[usize::from(node.tier).min(2)] -= 1;
        self.entries -= 1;
        let free = self.free;
        let slot = self.node_mut(idx);
        *slot = EMPTY_NODE;
        slot.lru_next = free;
        self.free = idx;
    }

    fn clear_pod(&mut self, pod_id: u32) -> u64 {
        let mut n = 0;
        while self.pods[pod_id as usize].head != NIL {
            let head = self.pods[pod_id as usize].head;
            self.free_node(head);
            n += 1;
        }
        n
    }

    fn lru_unlink(&mut self, idx: u32) {
        let Node {
            pod,
            lru_prev,
            lru_next,
            ..
        } = *self.node(idx);
        if lru_prev != NIL {
            self.node_mut(lru_prev).lru_next = lru_next;
        } else {
            self.pods[pod as usize].head = lru_next;
        }
        if lru_next != NIL {
            self.node_mut(lru_next).lru_prev = lru_prev;
        } else {
            self.pods[pod as usize].tail = lru_prev;
        }
        let node = self.node_mut(idx);
        node.lru_prev = NIL;
        node.lru_next = NIL;
        self.pods[pod as usize].len -= 1;
    }

    fn lru_push_front(&mut self, idx: u32) {
        let pod = self.node(idx).pod as usize;
        let old_head = self.pods[pod].head;
        let node = self.node_mut(idx);
        node.lru_prev = NIL;
        node.lru_next = old_head;
        if old_head != NIL {
            self.node_mut(old_head).lru_prev = idx;
        } else {
            self.pods[pod].tail = idx;
        }
        self.pods[pod].head = idx;
        self.pods[pod].len += 1;
    }
}
