//! The KV block pool with prefix caching, as vLLM's `BlockPool` behaves: blocks are
//! reference-counted, full blocks are cached by hash, freed blocks join an LRU free queue
//! (in reverse order, so a sequence's tail is evicted first), and reusing a cached free block
//! evicts its hash.

use std::collections::HashMap;

use kv_index::hash::{BlockHash, EventExtraKey};

/// A block's index in the pool.
pub(crate) type BlockId = u32;

const NIL: u32 = u32::MAX;

/// What happened to the cache, in order, for KV events.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CacheEvent {
    Stored {
        hashes: Vec<BlockHash>,
        parent: Option<BlockHash>,
        token_ids: Vec<u32>,
        /// Per block, the untagged extra keys events carry (`None` for a plain block).
        extra_keys: Vec<Option<Vec<EventExtraKey>>>,
        /// The request's LoRA adapter as (int id, name): the event's `lora_id`/`lora_name`.
        lora: Option<(i64, String)>,
        /// The request's `session_id`.
        session_id: Option<String>,
    },
    Removed {
        hash: BlockHash,
    },
    Cleared,
}

#[derive(Debug)]
pub(crate) struct BlockPool {
    ref_count: Vec<u32>,
    hash: Vec<Option<BlockHash>>,
    // Doubly linked LRU free queue over block ids: evict from the head, free to the tail.
    prev: Vec<u32>,
    next: Vec<u32>,
    head: u32,
    tail: u32,
    free: u32,
    cached: HashMap<BlockHash, BlockId>,
    pub(crate) events: Vec<CacheEvent>,
    pub(crate) evictions: u64,
}

impl BlockPool {
    pub(crate) fn new(num_blocks: u32) -> BlockPool {
        let n = num_blocks as usize;
        let mut pool = BlockPool {
            ref_count: vec![0; n],
            hash: vec![None; n],
            prev: vec![NIL; n],
            next: vec![NIL; n],
            head: NIL,
            tail: NIL,
            free: 0,
            cached: HashMap::with_capacity(n),
            events: Vec::new(),
            evictions: 0,
        };
        for block in 0..num_blocks {
            pool.push_tail(block);
        }
        pool
    }

    pub(crate) fn num_blocks(&self) -> u32 {
        self.ref_count.len() as u32
    }

    /// Blocks that can be allocated (free, cached or not).
    pub(crate) fn num_free(&self) -> u32 {
        self.free
    }

    /// vLLM's `kv_cache_usage_perc`: the share of blocks not in the free queue.
    pub(crate) fn usage(&self) -> f64 {
        1.0 - f64::from(self.free) / f64::from(self.num_blocks().max(1))
    }

    /// The cached blocks matching the longest prefix of `hashes`.
    pub(crate) fn lookup_prefix(&self, hashes: &[BlockHash]) -> Vec<BlockId> {
        hashes
            .iter()
            .map_while(|hash| self.cached.get(hash).copied())
            .collect()
    }

    /// How many of `blocks` sit in the free queue (and would leave it when touched).
    pub(crate) fn count_free(&self, blocks: &[BlockId]) -> u32 {
        blocks
            .iter()
            .filter(|&&block| self.ref_count[block as usize] == 0)
            .count() as u32
    }

    /// Takes a reference on cached blocks (a prefix-cache hit).
    pub(crate) fn touch(&mut self, blocks: &[BlockId]) {
        for &block in blocks {
            if self.ref_count[block as usize] == 0 {
                self.unlink(block);
            }
            self.ref_count[block as usize] += 1;
        }
    }

    /// Allocates one block from the head of the free queue, evicting its cached hash.
    pub(crate) fn allocate(&mut self) -> Option<BlockId> {
        let block = self.head;
        if block == NIL {
            return None;
        }
        self.unlink(block);
        self.ref_count[block as usize] = 1;
        if let Some(hash) = self.hash[block as usize].take()
            && self.cached.get(&hash) == Some(&block)
        {
            self.cached.remove(&hash);
            self.evictions += 1;
            self.events.push(CacheEvent::Removed { hash });
        }
        Some(block)
    }

    /// Marks `block` (now full) as holding `hash`. Returns false when another block already
    /// caches that hash; the block then stays uncached, as in vLLM.
    pub(crate) fn cache(&mut self, block: BlockId, hash: BlockHash) -> bool {
        if self.cached.contains_key(&hash) || self.hash[block as usize].is_some() {
            return false;
        }
        self.hash[block as usize] = Some(hash);
        self.cached.insert(hash, block);
        true
    }

    /// Drops one reference per block; blocks reaching zero join the free queue's tail in
    /// reverse order.
    pub(crate) fn release(&mut self, blocks: &[BlockId]) {
        for &block in blocks.iter().rev() {
            let count = &mut self.ref_count[block as usize];
            debug_assert!(*count > 0, "double free of block {block}");
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.push_tail(block);
            }
        }
    }

    /// `reset_prefix_cache`: forget every cached hash of free blocks. Fails (returns false)
    /// while any block is in use, as vLLM's does.
    pub(crate) fn reset(&mut self) -> bool {
        if self.free != self.num_blocks() {
            return false;
        }
        self.cached.clear();
        self.hash.iter_mut().for_each(|hash| *hash = None);
        self.events.push(CacheEvent::Cleared);
        true
    }

    /// Hashes currently cached, for tests that compare the index with the pool.
    pub(crate) fn cached_hashes(&self) -> impl Iterator<Item = &BlockHash> {
        self.cached.keys()
    }

    fn push_tail(&mut self, block: BlockId) {
        let i = block as usize;
        self.prev[i] = self.tail;
        self.next[i] = NIL;
        if self.tail == NIL {
            self.head = block;
        } else {
            self.next[self.tail as usize] = block;
        }
        self.tail = block;
        self.free += 1;
    }

    fn unlink(&mut self, block: BlockId) {
        let i = block as usize;
        let (prev, next) = (self.prev[i], self.next[i]);
        if prev == NIL {
            self.head = next;
        } else {
            self.next[prev as usize] = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.prev[next as usize] = prev;
        }
        self.prev[i] = NIL;
        self.next[i] = NIL;
        self.free -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(n: u8) -> BlockHash {
        BlockHash::from_bytes(&[n; 32]).unwrap()
    }

    #[test]
    fn lru_eviction_takes_the_oldest_freed_block_and_reports_it() {
        let mut pool = BlockPool::new(2);
        let a = pool.allocate().unwrap();
        let b = pool.allocate().unwrap();
        assert!(pool.allocate().is_none());
        assert!(pool.cache(a, hash(1)));
        assert!(pool.cache(b, hash(2)));
        pool.release(&[a, b]); // reverse order: b is freed first, so b is evicted first
        assert_eq!(pool.lookup_prefix(&[hash(1), hash(2)]), vec![a, b]);
        let c = pool.allocate().unwrap();
        assert_eq!(c, b);
        assert_eq!(pool.events, vec![CacheEvent::Removed { hash: hash(2) }]);
        assert_eq!(pool.lookup_prefix(&[hash(1), hash(2)]), vec![a]);
        assert_eq!(pool.evictions, 1);
    }

    #[test]
    fn touching_a_free_cached_block_takes_it_out_of_the_free_queue() {
        let mut pool = BlockPool::new(3);
        let a = pool.allocate().unwrap();
        pool.cache(a, hash(7));
        pool.release(&[a]);
        assert_eq!(pool.num_free(), 3);
        let hit = pool.lookup_prefix(&[hash(7)]);
        assert_eq!(pool.count_free(&hit), 1);
        pool.touch(&hit);
        assert_eq!(pool.num_free(), 2);
        assert!((pool.usage() - 1.0 / 3.0).abs() < 1e-9);
        // The two other blocks are allocated before the touched one could be.
        assert_ne!(pool.allocate(), Some(a));
        assert_ne!(pool.allocate(), Some(a));
        assert_eq!(pool.allocate(), None);
    }

    #[test]
    fn duplicate_hash_is_not_cached_twice_and_reset_needs_an_idle_pool() {
        let mut pool = BlockPool::new(2);
        let a = pool.allocate().unwrap();
        let b = pool.allocate().unwrap();
        assert!(pool.cache(a, hash(3)));
        assert!(!pool.cache(b, hash(3)));
        assert!(!pool.reset());
        pool.release(&[a, b]);
        assert!(pool.reset());
        assert_eq!(pool.events.last(), Some(&CacheEvent::Cleared));
        assert!(pool.lookup_prefix(&[hash(3)]).is_empty());
    }
}
