//! Exact tokenization with a cache of text chunks, so a prompt whose prefix was seen before
//! is tokenized only where it is new.
//!
//! `cl100k_base` (the embedded tokenizer the simulator uses) splits text into pieces with a
//! regex before BPE, and no piece spans a space that follows a non-whitespace character:
//! every alternative of the pattern either stops at whitespace (`\p{L}+`, `\p{N}{1,3}`,
//! `' ?[^\s\p{L}\p{N}]+[\r\n]*'`, the contractions) or consists of whitespace only. Cutting
//! the text there and encoding the chunks separately therefore yields exactly the tokens of
//! encoding it whole (tested against whole-text encoding on random text). Other tokenizers
//! (Hugging Face pre-tokenizers vary) are encoded whole, uncached.

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;
use tokenizer::Tokenizer;
use xxhash_rust::xxh3::xxh3_128;

use crate::framework::scheduling::{Prompt, TokenizeError};

/// Chunks are cut at the first safe point after this many bytes.
pub const CHUNK_BYTES: usize = 256;
/// Default number of chunks kept (about 64 tokens each).
pub const DEFAULT_CAPACITY: usize = 65_536;

/// A tokenizer with a chunk cache.
pub struct TokenCache {
    tokenizer: Tokenizer,
    splittable: bool,
    capacity: usize,
    lru: Mutex<Lru>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("tokenizer", &self.tokenizer)
            .field("capacity", &self.capacity)
            .finish()
    }
}

#[derive(Default)]
struct Lru {
    chunks: HashMap<u128, (Arc<[u32]>, u64)>,
    by_tick: BTreeMap<u64, u128>,
    tick: u64,
}

impl TokenCache {
    /// `capacity` chunks are kept (0 turns the cache off).
    pub fn new(tokenizer: Tokenizer, capacity: usize) -> TokenCache {
        TokenCache {
            splittable: tokenizer.name() == "cl100k_base",
            tokenizer,
            capacity,
            lru: Mutex::new(Lru::default()),
        }
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The prompt's tokens: the completion text, or the chat messages through the template.
    pub fn encode_prompt(&self, prompt: &Prompt) -> Result<Arc<[u32]>, TokenizeError> {
        match prompt {
            Prompt::Text(text) => Ok(self.encode(text).into()),
            Prompt::Tokens(tokens) => Ok(tokens.as_slice().into()),
            Prompt::Chat(messages) => self
                .tokenizer
                .render_chat(messages, true)
                .map(|text| self.encode(&text).into())
                .map_err(|error| TokenizeError(error.to_string())),
            Prompt::None => Ok(Arc::from(Vec::new())),
        }
    }

    /// Exactly `tokenizer.encode(text)`.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        if !self.splittable || self.capacity == 0 {
            return self.tokenizer.encode(text);
        }
        let mut tokens = Vec::with_capacity(text.len() / 3);
        for chunk in chunks(text) {
            let key = xxh3_128(chunk.as_bytes());
            if let Some(hit) = self.lookup(key) {
                tokens.extend_from_slice(&hit);
                continue;
            }
            let encoded: Arc<[u32]> = self.tokenizer.encode(chunk).into();
            tokens.extend_from_slice(&encoded);
            self.insert(key, encoded);
        }
        tokens
    }

    fn lookup(&self, key: u128) -> Option<Arc<[u32]>> {
        let mut lru = self.lru.lock();
        lru.tick += 1;
        let tick = lru.tick;
        let (tokens, old) = {
            let entry = lru.chunks.get_mut(&key)?;
            let old = std::mem::replace(&mut entry.1, tick);
            (Arc::clone(&entry.0), old)
        };
        lru.by_tick.remove(&old);
        lru.by_tick.insert(tick, key);
        Some(tokens)
    }

    fn insert(&self, key: u128, tokens: Arc<[u32]>) {
        let mut lru = self.lru.lock();
        lru.tick += 1;
        let tick = lru.tick;
        if let Some((_, old)) = lru.chunks.insert(key, (tokens, tick)) {
            lru.by_tick.remove(&old);
        }
        lru.by_tick.insert(tick, key);
        while lru.chunks.len() > self.capacity {
            let Some((_, oldest)) = lru.by_tick.pop_first() else {
                break;
            };
            lru.chunks.remove(&oldest);
        }
    }
}

/// Splits `text` into chunks of at least [`CHUNK_BYTES`] bytes, each cut just before a space
/// that follows a non-whitespace character.
pub fn chunks(text: &str) -> impl Iterator<Item = &str> {
    let bytes = text.as_bytes();
    let mut start = 0;
    std::iter::from_fn(move || {
        if start >= bytes.len() {
            return None;
        }
        let mut cut = bytes.len();
        let mut at = start + CHUNK_BYTES;
        while at < bytes.len() {
            // ASCII space; the byte before it is a whole character's last byte, and
            // non-whitespace unless it is an ASCII whitespace or the tail of a multi-byte
            // whitespace character (checked on the decoded char).
            if bytes[at] == b' ' && text.is_char_boundary(at) {
                let previous = text[..at].chars().next_back();
                if previous.is_some_and(|c| !c.is_whitespace()) {
                    cut = at;
                    break;
                }
            }
            at += 1;
        }
        let chunk = &text[start..cut];
        start = cut;
        Some(chunk)
    })
}
