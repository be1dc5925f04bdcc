//! vLLM 0.33 prefix-cache block hashing, byte for byte.
//!
//! `hash_i = H((parent_i, tuple(tokens_i), extra_keys_i))` with `parent_0 = NONE_HASH =
//! H(seed)`. `H` is one of the four `--prefix-caching-hash-algo` values: SHA-256 or XXH3-128
//! over either a pickle (protocol 5) or a canonical CBOR pre-image. Only full blocks are
//! hashed. Events carry [`BlockHash::external_u64`], the last 8 digest bytes big-endian.
//!
//! The encoders write into one reused buffer, so hashing a block allocates nothing.

mod cbor;
mod pickle;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// The fixed NONE_HASH seed vLLM uses for the SHA-256 algorithms when `PYTHONHASHSEED` is unset.
pub const DEFAULT_NONE_HASH_SEED: &str = "vllm-none-hash";

/// Errors of the hashing module.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error(
        "unknown prefix caching hash algorithm {0:?}: expected sha256, sha256_cbor, xxhash or xxhash_cbor"
    )]
    UnknownAlgo(String),
    #[error("block size must be at least 1")]
    ZeroBlockSize,
    #[error("digest must be 16 or 32 bytes, got {0}")]
    DigestLength(usize),
}

/// The `--prefix-caching-hash-algo` values of vLLM 0.33.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HashAlgo {
    /// `sha256(pickle.dumps(obj, protocol=5))`, vLLM's default.
    #[default]
    Sha256,
    /// `sha256(cbor2.dumps(obj, canonical=True))`.
    Sha256Cbor,
    /// `xxh3_128_digest(pickle...)`.
    Xxhash,
    /// `xxh3_128_digest(cbor...)`.
    XxhashCbor,
}

impl HashAlgo {
    /// Every algorithm, in flag order.
    pub const ALL: [HashAlgo; 4] = [
        HashAlgo::Sha256,
        HashAlgo::Sha256Cbor,
        HashAlgo::Xxhash,
        HashAlgo::XxhashCbor,
    ];

    /// The flag value.
    pub fn as_str(self) -> &'static str {
        match self {
            HashAlgo::Sha256 => "sha256",
            HashAlgo::Sha256Cbor => "sha256_cbor",
            HashAlgo::Xxhash => "xxhash",
            HashAlgo::XxhashCbor => "xxhash_cbor",
        }
    }

    /// Whether the pre-image is CBOR (otherwise pickle).
    pub fn is_cbor(self) -> bool {
        matches!(self, HashAlgo::Sha256Cbor | HashAlgo::XxhashCbor)
    }

    /// Whether the digest is XXH3-128 (16 bytes; otherwise SHA-256, 32 bytes).
    pub fn is_xxhash(self) -> bool {
        matches!(self, HashAlgo::Xxhash | HashAlgo::XxhashCbor)
    }

    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        if self.is_xxhash() { 16 } else { 32 }
    }
}

impl fmt::Display for HashAlgo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HashAlgo {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        HashAlgo::ALL
            .into_iter()
            .find(|algo| algo.as_str() == s)
            .ok_or_else(|| Error::UnknownAlgo(s.to_owned()))
    }
}

/// A full block digest: 32 bytes (SHA-256) or 16 bytes (XXH3-128).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockHash {
    bytes: [u8; 32],
    len: u8,
}

impl BlockHash {
    /// Wraps a digest of 16 or 32 bytes.
    pub fn from_bytes(digest: &[u8]) -> Result<Self, Error> {
        match digest.len() {
            16 | 32 => {
                let mut bytes = [0u8; 32];
                bytes[..digest.len()].copy_from_slice(digest);
                Ok(BlockHash {
                    bytes,
                    len: digest.len() as u8,
                })
            }
            other => Err(Error::DigestLength(other)),
        }
    }

    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// What KV events carry by default: the last 8 digest bytes as a big-endian u64
    /// (`int.from_bytes(digest, "big") & (2**64 - 1)`).
    pub fn external_u64(&self) -> u64 {
        let end = usize::from(self.len);
        let mut last = [0u8; 8];
        last.copy_from_slice(&self.bytes[end - 8..end]);
        u64::from_be_bytes(last)
    }

    /// Lowercase hex of the digest.
    pub fn to_hex(&self) -> String {
        hex::encode(self.as_bytes())
    }
}

impl fmt::Debug for BlockHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlockHash({})", self.to_hex())
    }
}

/// The seed string NONE_HASH is derived from, as vLLM's `resolve_none_hash_seed` picks it.
///
/// `python_hash_seed` is the value of `PYTHONHASHSEED` if the caller's environment has it;
/// library code never reads the environment itself. Without it the SHA-256 algorithms use
/// [`DEFAULT_NONE_HASH_SEED`] and the xxhash algorithms use 32 random bytes as hex, so
/// their hashes are not reproducible across processes (as in vLLM).
pub fn resolve_none_hash_seed(algo: HashAlgo, python_hash_seed: Option<&str>) -> String {
    match python_hash_seed {
        Some(seed) => seed.to_owned(),
        None if algo.is_xxhash() => hex::encode(rand::random::<[u8; 32]>()),
        None => DEFAULT_NONE_HASH_SEED.to_owned(),
    }
}

/// One tagged extra key of a block, as vLLM puts it in the hash pre-image.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ExtraKey {
    /// `("lora", name, path)`, on every block of a LoRA request.
    Lora { name: String, path: String },
    /// `("mm", identifier, offset - block_start)`; the offset may be negative.
    Mm { identifier: String, offset: i64 },
    /// `("cache_salt", salt)`, first block only.
    CacheSalt(String),
    /// `("prompt_embeds", sha256(block's embedding bytes))`.
    PromptEmbeds([u8; 32]),
}

impl ExtraKey {
    /// The untagged form events publish (`to_event_extra_keys`): the LoRA name, the salt,
    /// `[identifier, offset]` or the digest bytes.
    pub fn to_event_value(&self) -> EventExtraKey {
        match self {
            ExtraKey::Lora { name, .. } => EventExtraKey::Str(name.clone()),
            ExtraKey::Mm { identifier, offset } => EventExtraKey::Mm {
                identifier: identifier.clone(),
                offset: *offset,
            },
            ExtraKey::CacheSalt(salt) => EventExtraKey::Str(salt.clone()),
            ExtraKey::PromptEmbeds(digest) => EventExtraKey::Bytes(digest.to_vec()),
        }
    }
}

/// One untagged extra key as carried in a `BlockStored` event's `extra_keys`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventExtraKey {
    /// A LoRA name or a cache salt (or, from other producers, a bare MM identifier).
    Str(String),
    /// `[identifier, offset]`.
    Mm { identifier: String, offset: i64 },
    /// A prompt-embeds digest.
    Bytes(Vec<u8>),
    /// An integer (accepted from other producers).
    Int(i64),
}

/// The LoRA adapter of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoraRef {
    pub name: String,
    pub path: String,
}

/// A multimodal item's placeholder range and identifier (its mm hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MmItem {
    pub identifier: String,
    pub offset: u64,
    pub length: u64,
}

/// The request options that change block hashes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestExtras {
    pub lora: Option<LoraRef>,
    pub cache_salt: Option<String>,
    /// Multimodal items, sorted by offset.
    pub mm_items: Vec<MmItem>,
    /// One SHA-256 digest of the embedding bytes per full block, when the prompt is embeddings.
    pub prompt_embeds: Vec<[u8; 32]>,
}

impl RequestExtras {
    /// Whether no option that changes hashes is set.
    pub fn is_empty(&self) -> bool {
        self.lora.is_none()
            && self.cache_salt.as_deref().is_none_or(str::is_empty)
            && self.mm_items.is_empty()
            && self.prompt_embeds.is_empty()
    }

    /// `generate_block_hash_extra_keys` for the block `[start, end)`: LoRA, then every MM item
    /// that overlaps the block, then the cache salt (block 0 only), then prompt embeds.
    /// `None` when the block has no extra keys.
    pub fn block_extra_keys(&self, start: u64, end: u64) -> Option<Vec<ExtraKey>> {
        let mut keys = Vec::new();
        if let Some(lora) = &self.lora {
            keys.push(ExtraKey::Lora {
                name: lora.name.clone(),
                path: lora.path.clone(),
            });
        }
        for item in &self.mm_items {
            let item_end = item.offset.saturating_add(item.length);
            if item.offset < end && item_end > start {
                keys.push(ExtraKey::Mm {
                    identifier: item.identifier.clone(),
                    offset: item.offset as i64 - start as i64,
                });
            }
        }
        if start == 0
            && let Some(salt) = self.cache_salt.as_deref().filter(|salt| !salt.is_empty())
        {
            keys.push(ExtraKey::CacheSalt(salt.to_owned()));
        }
        if !self.prompt_embeds.is_empty() && end > start {
            let block_size = end - start;
            if let Some(digest) = usize::try_from(start / block_size)
                .ok()
                .and_then(|block_idx| self.prompt_embeds.get(block_idx))
            {
                keys.push(ExtraKey::PromptEmbeds(*digest));
            }
        }
        if keys.is_empty() { None } else { Some(keys) }
    }
}

/// Computes vLLM block hashes with a reused pre-image buffer.
#[derive(Clone)]
pub struct BlockHasher {
    algo: HashAlgo,
    none_hash: BlockHash,
    buf: Vec<u8>,
    pickle_memo: pickle::Memo,
}

impl fmt::Debug for BlockHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockHasher")
            .field("algo", &self.algo)
            .field("none_hash", &self.none_hash)
            .finish()
    }
}

impl BlockHasher {
    /// A hasher whose NONE_HASH is `H(seed)`; `seed` is the resolved seed string
    /// (see [`resolve_none_hash_seed`]).
    pub fn new(algo: HashAlgo, seed: &str) -> Self {
        let mut hasher = BlockHasher {
            algo,
            none_hash: BlockHash {
                bytes: [0; 32],
                len: algo.digest_len() as u8,
            },
            buf: Vec::with_capacity(256),
            pickle_memo: pickle::Memo::default(),
        };
        hasher.seed_preimage(seed);
        hasher.none_hash = hasher.digest_buf();
        hasher
    }

    /// A hasher seeded as vLLM seeds it, given the value of `PYTHONHASHSEED` if set.
    pub fn from_python_hash_seed(algo: HashAlgo, python_hash_seed: Option<&str>) -> Self {
        BlockHasher::new(algo, &resolve_none_hash_seed(algo, python_hash_seed))
    }

    /// The algorithm.
    pub fn algo(&self) -> HashAlgo {
        self.algo
    }

    /// NONE_HASH, the parent of block 0.
    pub fn none_hash(&self) -> BlockHash {
        self.none_hash
    }

    /// The bytes hashed to make NONE_HASH from `seed` (a CBOR text string or a pickled str).
    pub fn seed_preimage(&mut self, seed: &str) -> &[u8] {
        self.buf.clear();
        if self.algo.is_cbor() {
            cbor::write_text(&mut self.buf, seed);
        } else {
            pickle::write_str_object(&mut self.buf, &mut self.pickle_memo, seed);
        }
        &self.buf
    }

    /// The exact pre-image of one block: `(parent or NONE_HASH, tuple(tokens), extra_keys)`.
    pub fn block_preimage(
        &mut self,
        parent: Option<&BlockHash>,
        tokens: &[u32],
        extra_keys: Option<&[ExtraKey]>,
    ) -> &[u8] {
        let parent = parent.copied().unwrap_or(self.none_hash);
        self.buf.clear();
        if self.algo.is_cbor() {
            cbor::write_block(&mut self.buf, parent.as_bytes(), tokens, extra_keys);
        } else {
            pickle::write_block(
                &mut self.buf,
                &mut self.pickle_memo,
                parent.as_bytes(),
                tokens,
                extra_keys,
            );
        }
        &self.buf
    }

    /// `hash_block_tokens(hash_fn, parent, tokens, extra_keys)`; `None` parent means NONE_HASH.
    pub fn hash_block(
        &mut self,
        parent: Option<&BlockHash>,
        tokens: &[u32],
        extra_keys: Option<&[ExtraKey]>,
    ) -> BlockHash {
        let parent = parent.unwrap_or(&self.none_hash);
        // The common block (no extra keys, at most 64 tokens) is built on the stack and
        // hashed from there: no buffer bookkeeping at all.
        if extra_keys.is_none() {
            if self.algo.is_cbor() {
                let mut stack = [0u8; cbor::PLAIN_BLOCK_MAX];
                if let Some(len) = cbor::write_plain_block(&mut stack, parent.as_bytes(), tokens) {
                    return self.digest(&stack[..len]);
                }
            } else {
                let mut stack = [0u8; pickle::PLAIN_BLOCK_MAX];
                if let Some(len) = pickle::write_plain_block(&mut stack, parent.as_bytes(), tokens)
                {
                    return self.digest(&stack[..len]);
                }
            }
        }
        let parent = *parent;
        self.block_preimage(Some(&parent), tokens, extra_keys);
        self.digest_buf()
    }

    /// The hash chain of a request's full blocks (a trailing partial block gets no hash).
    pub fn hash_request(
        &mut self,
        tokens: &[u32],
        block_size: usize,
        extras: &RequestExtras,
    ) -> Result<Vec<BlockHash>, Error> {
        let mut hashes = Vec::with_capacity(tokens.len() / block_size.max(1));
        self.extend_chain(&mut hashes, tokens, block_size, extras)?;
        Ok(hashes)
    }

    /// Continues `hashes` (the request's already hashed full blocks) over the newly full
    /// blocks of `tokens`, the request's whole token list so far.
    pub fn extend_chain(
        &mut self,
        hashes: &mut Vec<BlockHash>,
        tokens: &[u32],
        block_size: usize,
        extras: &RequestExtras,
    ) -> Result<(), Error> {
        if block_size == 0 {
            return Err(Error::ZeroBlockSize);
        }
        let n_full = tokens.len() / block_size;
        let plain = extras.is_empty();
        for block_idx in hashes.len()..n_full {
            let start = block_idx * block_size;
            let end = start + block_size;
            let parent = hashes.last().copied();
            let hash = if plain {
                self.hash_block(parent.as_ref(), &tokens[start..end], None)
            } else {
                let keys = extras.block_extra_keys(start as u64, end as u64);
                self.hash_block(parent.as_ref(), &tokens[start..end], keys.as_deref())
            };
            hashes.push(hash);
        }
        Ok(())
    }

    fn digest_buf(&self) -> BlockHash {
        self.digest(&self.buf)
    }

    #[inline]
    fn digest(&self, preimage: &[u8]) -> BlockHash {
        let mut bytes = [0u8; 32];
        if self.algo.is_xxhash() {
            let digest = xxhash_rust::xxh3::xxh3_128(preimage).to_be_bytes();
            bytes[..16].copy_from_slice(&digest);
            BlockHash { bytes, len: 16 }
        } else {
            bytes.copy_from_slice(&Sha256::digest(preimage));
            BlockHash { bytes, len: 32 }
        }
    }
}

/// The 64-bit forms of a chain, as events carry them.
pub fn external_u64s(hashes: &[BlockHash]) -> Vec<u64> {
    hashes.iter().map(BlockHash::external_u64).collect()
}

/// `BlockHashListWithBlockSize`: the hashes a KV-cache group with `group_block_size` uses,
/// given hashes computed every `hash_block_size` tokens. Block `i` of the group takes the
/// fine hash at index `(i + 1) * k - 1`, `k = group_block_size / hash_block_size`.
/// Returns `None` unless `group_block_size` is a positive multiple of `hash_block_size`.
pub fn group_view(
    hashes: &[BlockHash],
    hash_block_size: usize,
    group_block_size: usize,
) -> Option<Vec<BlockHash>> {
    if hash_block_size == 0
        || group_block_size == 0
        || !group_block_size.is_multiple_of(hash_block_size)
    {
        return None;
    }
    let ratio = group_block_size / hash_block_size;
    Some(
        hashes
            .iter()
            .skip(ratio - 1)
            .step_by(ratio)
            .copied()
            .collect(),
    )
}
