//! The canonical CBOR pre-image (`cbor2.dumps(obj, canonical=True)`) of a block tuple.
//!
//! Only what vLLM's keys contain: arrays, byte and text strings, integers and null, all with
//! definite lengths and the shortest heads.

use super::ExtraKey;

const MAJOR_UINT: u8 = 0;
const MAJOR_NEGINT: u8 = 1;
const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const NULL: u8 = 0xf6;

/// `[parent, [tokens...], extra_keys | null]`.
pub(super) fn write_block(
    buf: &mut Vec<u8>,
    parent: &[u8],
    tokens: &[u32],
    extra_keys: Option<&[ExtraKey]>,
) {
    buf.reserve(parent.len() + tokens.len() * 5 + 16);
    buf.push(0x83);
    write_bytes(buf, parent);
    write_head(buf, MAJOR_ARRAY, tokens.len() as u64);
    write_tokens(buf, tokens);
    match extra_keys {
        None => buf.push(NULL),
        Some(keys) => {
            write_head(buf, MAJOR_ARRAY, keys.len() as u64);
            for key in keys {
                write_extra_key(buf, key);
            }
        }
    }
}

/// Token ids as shortest-form unsigned integers. Each token is composed as one
/// little-endian word (head byte first) and stored through an 8-byte window into space
/// reserved up front, so the loop has one bounds check and no capacity checks per token.
fn write_tokens(buf: &mut Vec<u8>, tokens: &[u32]) {
    let start = buf.len();
    // The last window starts at most 5 bytes per token in and is 8 bytes wide.
    buf.resize(start + tokens.len() * 5 + 3, 0);
    let out = &mut buf[start..];
    let mut pos = 0;
    for &token in tokens {
        let (word, len) = uint_word(token);
        if let Some(window) = out.get_mut(pos..pos + 8) {
            window.copy_from_slice(&word.to_le_bytes());
        }
        pos += len;
    }
    buf.truncate(start + pos);
}

/// The CBOR head and argument of `value` as the low bytes of a little-endian word, and
/// their length.
#[inline(always)]
fn uint_word(value: u32) -> (u64, usize) {
    let major = u64::from(MAJOR_UINT << 5);
    if value < 24 {
        (major | u64::from(value), 1)
    } else if value <= 0xff {
        (major | 24 | u64::from(value) << 8, 2)
    } else if value <= 0xffff {
        (major | 25 | u64::from((value as u16).swap_bytes()) << 8, 3)
    } else {
        (major | 26 | u64::from(value.swap_bytes()) << 8, 5)
    }
}

/// Most tokens [`write_plain_block`] takes.
const PLAIN_BLOCK_MAX_TOKENS: usize = 64;
/// Stack space [`write_plain_block`] needs: array and bytes heads, a 32-byte parent, the
/// token array head, 5 bytes per token plus the last 8-byte window's slack, and `null`.
pub(super) const PLAIN_BLOCK_MAX: usize = 1 + 2 + 32 + 3 + PLAIN_BLOCK_MAX_TOKENS * 5 + 3 + 1;

/// `[parent, [tokens...], null]` into `out`, for a parent of at most 32 bytes and at most
/// 64 tokens (every real block size); `None` otherwise. Returns the pre-image length.
pub(super) fn write_plain_block(
    out: &mut [u8; PLAIN_BLOCK_MAX],
    parent: &[u8],
    tokens: &[u32],
) -> Option<usize> {
    if parent.len() > 32 || tokens.len() > PLAIN_BLOCK_MAX_TOKENS {
        return None;
    }
    out[0] = 0x83;
    let mut pos = 1;
    let (head, head_len) = uint_word(parent.len() as u32);
    let bytes_head = (head & !0xe0) | u64::from(MAJOR_BYTES << 5);
    out.get_mut(pos..pos + 8)?
        .copy_from_slice(&bytes_head.to_le_bytes());
    pos += head_len;
    out.get_mut(pos..pos + parent.len())?
        .copy_from_slice(parent);
    pos += parent.len();
    let (head, head_len) = uint_word(tokens.len() as u32);
    let array_head = (head & !0xe0) | u64::from(MAJOR_ARRAY << 5);
    out.get_mut(pos..pos + 8)?
        .copy_from_slice(&array_head.to_le_bytes());
    pos += head_len;
    for &token in tokens {
        let (word, len) = uint_word(token);
        out.get_mut(pos..pos + 8)?
            .copy_from_slice(&word.to_le_bytes());
        pos += len;
    }
    *out.get_mut(pos)? = NULL;
    Some(pos + 1)
}

/// A text string (the NONE_HASH seed).
pub(super) fn write_text(buf: &mut Vec<u8>, text: &str) {
    write_head(buf, MAJOR_TEXT, text.len() as u64);
    buf.extend_from_slice(text.as_bytes());
}

fn write_extra_key(buf: &mut Vec<u8>, key: &ExtraKey) {
    match key {
        ExtraKey::Lora { name, path } => {
            buf.push(0x83);
            write_text(buf, "lora");
            write_text(buf, name);
            write_text(buf, path);
        }
        ExtraKey::Mm { identifier, offset } => {
            buf.push(0x83);
            write_text(buf, "mm");
            write_text(buf, identifier);
            write_int(buf, *offset);
        }
        ExtraKey::CacheSalt(salt) => {
            buf.push(0x82);
            write_text(buf, "cache_salt");
            write_text(buf, salt);
        }
        ExtraKey::PromptEmbeds(digest) => {
            buf.push(0x82);
            write_text(buf, "prompt_embeds");
            write_bytes(buf, digest);
        }
    }
}

fn write_bytes(buf: &mut Vec<u8>, bytes: &[u8]) {
    write_head(buf, MAJOR_BYTES, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

fn write_int(buf: &mut Vec<u8>, value: i64) {
    if value >= 0 {
        write_head(buf, MAJOR_UINT, value as u64);
    } else {
        // -1 - n, computed without overflow for i64::MIN.
        write_head(buf, MAJOR_NEGINT, !(value as u64));
    }
}

#[inline]
fn write_head(buf: &mut Vec<u8>, major: u8, value: u64) {
    let major = major << 5;
    if value < 24 {
        buf.push(major | value as u8);
    } else if value <= 0xff {
        buf.extend_from_slice(&[major | 24, value as u8]);
    } else if value <= 0xffff {
        buf.push(major | 25);
        buf.extend_from_slice(&(value as u16).to_be_bytes());
    } else if value <= 0xffff_ffff {
        buf.push(major | 26);
        buf.extend_from_slice(&(value as u32).to_be_bytes());
    } else {
        buf.push(major | 27);
        buf.extend_from_slice(&value.to_be_bytes());
    }
}
