//! The pickle (protocol 5) pre-image CPython's `pickle.dumps(obj, protocol=5)` writes for a
//! block tuple, including framing and memo back-references.
//!
//! Object identity is emulated: every tuple, bytes and str object is memoized when first
//! written. A later occurrence of the *same object* is a `BINGET`. In vLLM's keys the only
//! shared objects are the interned tag literals (`"lora"`, `"mm"`, `"cache_salt"`,
//! `"prompt_embeds"`) and CPython's one-character and empty string singletons; names, paths,
//! salts and MM identifiers are distinct objects even when equal, so they are never
//! back-referenced.

use super::ExtraKey;

const PROTO: u8 = 0x80;
const FRAME: u8 = 0x95;
const STOP: u8 = 0x2e;
const MARK: u8 = 0x28;
const TUPLE: u8 = 0x74;
const EMPTY_TUPLE: u8 = 0x29;
const TUPLE1: u8 = 0x85;
const TUPLE2: u8 = 0x86;
const TUPLE3: u8 = 0x87;
const NONE: u8 = 0x4e;
const MEMOIZE: u8 = 0x94;
const BINGET: u8 = 0x68;
const LONG_BINGET: u8 = 0x6a;
const BININT: u8 = 0x4a;
const BININT1: u8 = 0x4b;
const BININT2: u8 = 0x4d;
const LONG1: u8 = 0x8a;
const SHORT_BINUNICODE: u8 = 0x8c;
const BINUNICODE: u8 = 0x58;
const BINUNICODE8: u8 = 0x8d;
const SHORT_BINBYTES: u8 = 0x43;
const BINBYTES: u8 = 0x42;
const BINBYTES8: u8 = 0x8e;

/// CPython's `FRAME_SIZE_TARGET`: a frame is committed at the first opcode boundary at or
/// past this size, and a bytes or str payload this large is written outside any frame.
const FRAME_SIZE_TARGET: usize = 64 * 1024;
const FRAME_HEADER_SIZE: usize = 9;

/// Identity of a string object that can occur more than once in one pickle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shared {
    Literal(&'static str),
    Singleton(Option<char>),
}

/// The memo of shared objects, reused between pickles to avoid allocation.
#[derive(Debug, Clone, Default)]
pub(super) struct Memo {
    shared: Vec<(Shared, u32)>,
}

struct Pickler<'a> {
    buf: &'a mut Vec<u8>,
    memo: &'a mut Memo,
    next_memo: u32,
    /// Offset of the open frame's header, if a frame is open.
    frame_start: Option<usize>,
}

/// `pickle.dumps((parent, tuple(tokens), extra_keys), protocol=5)`.
pub(super) fn write_block(
    buf: &mut Vec<u8>,
    memo: &mut Memo,
    parent: &[u8],
    tokens: &[u32],
    extra_keys: Option<&[ExtraKey]>,
) {
    buf.reserve(parent.len() + tokens.len() * 5 + 24);
    let mut pickler = Pickler::start(buf, memo);
    pickler.bytes(parent);
    pickler.tuple_of(tokens.len(), |pickler| pickler.tokens(tokens));
    match extra_keys {
        None => pickler.none(),
        Some(keys) => pickler.tuple_of(keys.len(), |pickler| {
            for key in keys {
                pickler.extra_key(key);
            }
        }),
    }
    pickler.end_tuple(3);
    pickler.finish();
}

/// Most tokens [`write_plain_block`] takes.
const PLAIN_BLOCK_MAX_TOKENS: usize = 64;
/// Stack space [`write_plain_block`] needs (with slack for the last 8-byte window).
pub(super) const PLAIN_BLOCK_MAX: usize =
    2 + FRAME_HEADER_SIZE + 2 + 32 + 2 + PLAIN_BLOCK_MAX_TOKENS * 5 + 8 + 6;

/// What [`write_block`] writes for a block without extra keys, a parent of at most 32
/// bytes and at most 64 tokens below 2^31, written in one pass into `out`: one frame
/// (`PROTO 5`, `FRAME n`, then `parent MEMOIZE`, the token tuple `MEMOIZE`, `NONE`,
/// `TUPLE3 MEMOIZE STOP`). `None` for any other block. Returns the pre-image length.
pub(super) fn write_plain_block(
    out: &mut [u8; PLAIN_BLOCK_MAX],
    parent: &[u8],
    tokens: &[u32],
) -> Option<usize> {
    if parent.len() > 32
        || tokens.len() > PLAIN_BLOCK_MAX_TOKENS
        || tokens.iter().any(|&token| token > i32::MAX as u32)
    {
        return None;
    }
    out[0] = PROTO;
    out[1] = 5;
    let frame_start = 2;
    let mut pos = frame_start + FRAME_HEADER_SIZE;
    let mut put = |pos: &mut usize, bytes: &[u8]| -> Option<()> {
        out.get_mut(*pos..*pos + bytes.len())?
            .copy_from_slice(bytes);
        *pos += bytes.len();
        Some(())
    };
    put(&mut pos, &[SHORT_BINBYTES, parent.len() as u8])?;
    put(&mut pos, parent)?;
    put(&mut pos, &[MEMOIZE])?;
    match tokens.len() {
        0 => put(&mut pos, &[EMPTY_TUPLE])?,
        n => {
            if n > 3 {
                put(&mut pos, &[MARK])?;
            }
            for &token in tokens {
                let (word, len) = if token <= 0xff {
                    (u64::from(BININT1) | u64::from(token) << 8, 2)
                } else if token <= 0xffff {
                    (u64::from(BININT2) | u64::from(token) << 8, 3)
                } else {
                    (u64::from(BININT) | u64::from(token) << 8, 5)
                };
                put(&mut pos, &word.to_le_bytes())?;
                pos -= 8 - len;
            }
            let op = match n {
                1 => TUPLE1,
                2 => TUPLE2,
                3 => TUPLE3,
                _ => TUPLE,
            };
            put(&mut pos, &[op, MEMOIZE])?;
        }
    }
    put(&mut pos, &[NONE, TUPLE3, MEMOIZE, STOP])?;
    let frame_len = (pos - frame_start - FRAME_HEADER_SIZE) as u64;
    let mut header = [FRAME, 0, 0, 0, 0, 0, 0, 0, 0];
    header[1..].copy_from_slice(&frame_len.to_le_bytes());
    out.get_mut(frame_start..frame_start + FRAME_HEADER_SIZE)?
        .copy_from_slice(&header);
    Some(pos)
}

/// `pickle.dumps(text, protocol=5)` (the NONE_HASH seed).
pub(super) fn write_str_object(buf: &mut Vec<u8>, memo: &mut Memo, text: &str) {
    let mut pickler = Pickler::start(buf, memo);
    pickler.str(text, None);
    pickler.finish();
}

impl<'a> Pickler<'a> {
    fn start(buf: &'a mut Vec<u8>, memo: &'a mut Memo) -> Self {
        memo.shared.clear();
        buf.extend_from_slice(&[PROTO, 5]);
        Pickler {
            buf,
            memo,
            next_memo: 0,
            frame_start: None,
        }
    }

    fn finish(mut self) {
        self.write(&[STOP]);
        self.commit_frame();
    }

    /// `_Pickler_Write`: opens a frame (reserving its header) if none is open.
    fn write(&mut self, data: &[u8]) {
        if self.frame_start.is_none() {
            self.frame_start = Some(self.buf.len());
            self.buf.extend_from_slice(&[0; FRAME_HEADER_SIZE]);
        }
        self.buf.extend_from_slice(data);
    }

    fn commit_frame(&mut self) {
        if let Some(start) = self.frame_start.take() {
            let frame_len = (self.buf.len() - start - FRAME_HEADER_SIZE) as u64;
            self.buf[start] = FRAME;
            self.buf[start + 1..start + FRAME_HEADER_SIZE]
                .copy_from_slice(&frame_len.to_le_bytes());
        }
    }

    /// `_Pickler_OpcodeBoundary`, called after every saved object.
    fn boundary(&mut self) {
        if let Some(start) = self.frame_start
            && self.buf.len() - start - FRAME_HEADER_SIZE >= FRAME_SIZE_TARGET
        {
            self.commit_frame();
        }
    }

    /// `_Pickler_write_bytes`: a large payload bypasses framing.
    fn write_payload(&mut self, header: &[u8], payload: &[u8]) {
        if payload.len() >= FRAME_SIZE_TARGET {
            self.commit_frame();
            self.buf.extend_from_slice(header);
            self.buf.extend_from_slice(payload);
        } else {
            self.write(header);
            self.write(payload);
        }
    }

    fn memoize(&mut self) {
        self.write(&[MEMOIZE]);
        self.next_memo += 1;
    }

    fn get(&mut self, idx: u32) {
        if idx < 256 {
            self.write(&[BINGET, idx as u8]);
        } else {
            let mut op = [LONG_BINGET, 0, 0, 0, 0];
            op[1..].copy_from_slice(&idx.to_le_bytes());
            self.write(&op);
        }
    }

    fn none(&mut self) {
        self.write(&[NONE]);
        self.boundary();
    }

    fn int(&mut self, value: i64) {
        if (0..=0xff).contains(&value) {
            self.write(&[BININT1, value as u8]);
        } else if (0..=0xffff).contains(&value) {
            let v = (value as u16).to_le_bytes();
            self.write(&[BININT2, v[0], v[1]]);
        } else if i32::try_from(value).is_ok() {
            let v = (value as i32).to_le_bytes();
            self.write(&[BININT, v[0], v[1], v[2], v[3]]);
        } else {
            // LONG1: minimal two's-complement little-endian (`encode_long`).
            let le = value.to_le_bytes();
            let mut n = 8;
            while n > 1 {
                let top = le[n - 1];
                let next_sign = le[n - 2] & 0x80;
                if (top == 0 && next_sign == 0) || (top == 0xff && next_sign != 0) {
                    n -= 1;
                } else {
                    break;
                }
            }
            self.write(&[LONG1, n as u8]);
            self.write(&le[..n]);
        }
        self.boundary();
    }

    /// Token ids as ints. When the open frame cannot reach `FRAME_SIZE_TARGET` within
    /// them (always, for real block sizes), no opcode boundary can commit a frame, so they
    /// are written in one pass through 8-byte windows, with no per-token frame checks.
    fn tokens(&mut self, tokens: &[u32]) {
        let bound = tokens.len() * 5 + 1;
        let fits = self.frame_start.is_some_and(|start| {
            self.buf.len() - start - FRAME_HEADER_SIZE + bound < FRAME_SIZE_TARGET
        });
        if !fits || tokens.iter().any(|&token| token > i32::MAX as u32) {
            for &token in tokens {
                self.int(i64::from(token));
            }
            return;
        }
        let start = self.buf.len();
        self.buf.resize(start + tokens.len() * 5 + 3, 0);
        let out = &mut self.buf[start..];
        let mut pos = 0;
        for &token in tokens {
            let (word, len) = if token <= 0xff {
                (u64::from(BININT1) | u64::from(token) << 8, 2)
            } else if token <= 0xffff {
                (u64::from(BININT2) | u64::from(token) << 8, 3)
            } else {
                (u64::from(BININT) | u64::from(token) << 8, 5)
            };
            if let Some(window) = out.get_mut(pos..pos + 8) {
                window.copy_from_slice(&word.to_le_bytes());
            }
            pos += len;
        }
        self.buf.truncate(start + pos);
    }

    fn bytes(&mut self, data: &[u8]) {
        let len = data.len();
        if len < 256 {
            self.write_payload(&[SHORT_BINBYTES, len as u8], data);
        } else if let Ok(len32) = u32::try_from(len) {
            let mut header = [BINBYTES, 0, 0, 0, 0];
            header[1..].copy_from_slice(&len32.to_le_bytes());
            self.write_payload(&header, data);
        } else {
            let mut header = [BINBYTES8, 0, 0, 0, 0, 0, 0, 0, 0];
            header[1..].copy_from_slice(&(len as u64).to_le_bytes());
            self.write_payload(&header, data);
        }
        self.memoize();
        self.boundary();
    }

    /// A str object; `literal` names an interned source literal.
    fn str(&mut self, text: &str, literal: Option<&'static str>) {
        let mut chars = text.chars();
        let shared = match (literal, chars.next(), chars.next()) {
            (Some(literal), _, _) => Some(Shared::Literal(literal)),
            (None, None, _) => Some(Shared::Singleton(None)),
            (None, Some(c), None) if u32::from(c) < 256 => Some(Shared::Singleton(Some(c))),
            _ => None,
        };
        if let Some(shared) = shared {
            if let Some(&(_, idx)) = self.memo.shared.iter().find(|(key, _)| *key == shared) {
                self.get(idx);
                self.boundary();
                return;
            }
            let idx = self.next_memo;
            self.memo.shared.push((shared, idx));
        }
        let len = text.len();
        if len < 256 {
            self.write_payload(&[SHORT_BINUNICODE, len as u8], text.as_bytes());
        } else if let Ok(len32) = u32::try_from(len) {
            let mut header = [BINUNICODE, 0, 0, 0, 0];
            header[1..].copy_from_slice(&len32.to_le_bytes());
            self.write_payload(&header, text.as_bytes());
        } else {
            let mut header = [BINUNICODE8, 0, 0, 0, 0, 0, 0, 0, 0];
            header[1..].copy_from_slice(&(len as u64).to_le_bytes());
            self.write_payload(&header, text.as_bytes());
        }
        self.memoize();
        self.boundary();
    }

    /// A fresh tuple of `len` items written by `items`.
    fn tuple_of(&mut self, len: usize, items: impl FnOnce(&mut Self)) {
        if len == 0 {
            self.write(&[EMPTY_TUPLE]);
            self.boundary();
            return;
        }
        if len > 3 {
            self.write(&[MARK]);
        }
        items(self);
        self.end_tuple(len);
    }

    fn end_tuple(&mut self, len: usize) {
        let op = match len {
            1 => TUPLE1,
            2 => TUPLE2,
            3 => TUPLE3,
            _ => TUPLE,
        };
        self.write(&[op]);
        self.memoize();
        self.boundary();
    }

    fn extra_key(&mut self, key: &ExtraKey) {
        match key {
            ExtraKey::Lora { name, path } => self.tuple_of(3, |p| {
                p.str("lora", Some("lora"));
                p.str(name, None);
                p.str(path, None);
            }),
            ExtraKey::Mm { identifier, offset } => self.tuple_of(3, |p| {
                p.str("mm", Some("mm"));
                p.str(identifier, None);
                p.int(*offset);
            }),
            ExtraKey::CacheSalt(salt) => self.tuple_of(2, |p| {
                p.str("cache_salt", Some("cache_salt"));
                p.str(salt, None);
            }),
            ExtraKey::PromptEmbeds(digest) => self.tuple_of(2, |p| {
                p.str("prompt_embeds", Some("prompt_embeds"));
                p.bytes(digest);
            }),
        }
    }
}
