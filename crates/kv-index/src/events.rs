//! vLLM 0.33 KV-cache events: typed values, a decoder that never panics, and a byte-exact
//! encoder.
//!
//! The payload of every message is a `KVEventBatch`: the array `[ts, events, dp_rank]`.
//! Events are `type`-tagged maps in 0.33 and positional tagged arrays in older vLLM; the
//! decoder takes both, a 2- or 3-element batch, and hashes as unsigned or signed integers or
//! as `bin`. One bad event is skipped with a [`DropReason`]; the rest of the batch stands.
//! The encoder writes what vLLM's msgspec writes (map16 for `BlockStored`, fixmap for the
//! others, optional fields omitted when unset), so golden payloads re-encode identically.

#[cfg(test)]
mod tests;
mod wire;

use std::fmt;

use wire::{Int, Kind, ReadError, Reader, write};

pub use crate::hash::EventExtraKey;

/// A batch whose outer structure cannot be read at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("bad batch: {reason}")]
pub struct Error {
    pub reason: DropReason,
}

/// Why an event (or a whole batch) was dropped; a closed set usable as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The payload ended inside a value.
    Truncated,
    /// The payload is not a `[ts, events, dp_rank]` array.
    NotABatch,
    /// Bytes follow the batch array.
    TrailingBytes,
    /// Nesting deeper than any vLLM payload.
    TooDeep,
    /// An event with a tag this decoder does not know.
    UnknownEventType,
    /// An event that is neither a map nor an array, or has no tag.
    MalformedEvent,
    /// A required field is absent.
    MissingField,
    /// A field holds a value of the wrong type.
    WrongType,
    /// A number out of its field's range (negative token id, block size or group index).
    OutOfRange,
    /// A string that is not UTF-8.
    BadUtf8,
    /// Decoded, but not applicable (the index decides, e.g. a token count that is not a
    /// multiple of the block size).
    Inconsistent,
    /// Token-chain keys: the store's parent hash is not in the engine→own key map.
    UnknownParent,
    /// A store for a KV-cache group whose hashes do not describe prefixes (sliding window,
    /// Mamba, ...).
    UnsupportedGroup,
}

impl DropReason {
    /// Every reason, for pre-registering metric series.
    pub const ALL: [DropReason; 13] = [
        DropReason::Truncated,
        DropReason::NotABatch,
        DropReason::TrailingBytes,
        DropReason::TooDeep,
        DropReason::UnknownEventType,
        DropReason::MalformedEvent,
        DropReason::MissingField,
        DropReason::WrongType,
        DropReason::OutOfRange,
        DropReason::BadUtf8,
        DropReason::Inconsistent,
        DropReason::UnknownParent,
        DropReason::UnsupportedGroup,
    ];

    /// The `reason` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::NotABatch => "not_a_batch",
            DropReason::TrailingBytes => "trailing_bytes",
            DropReason::TooDeep => "too_deep",
            DropReason::UnknownEventType => "unknown_event_type",
            DropReason::MalformedEvent => "malformed_event",
            DropReason::MissingField => "missing_field",
            DropReason::WrongType => "wrong_type",
            DropReason::OutOfRange => "out_of_range",
            DropReason::BadUtf8 => "bad_utf8",
            DropReason::Inconsistent => "inconsistent",
            DropReason::UnknownParent => "unknown_parent",
            DropReason::UnsupportedGroup => "unsupported_group",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str().replace('_', " ").as_str())
    }
}

impl From<ReadError> for DropReason {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::Truncated => DropReason::Truncated,
            ReadError::WrongType => DropReason::WrongType,
            ReadError::TooDeep => DropReason::TooDeep,
            ReadError::BadUtf8 => DropReason::BadUtf8,
        }
    }
}

/// One skipped event: its position in the batch, why, and the field at fault if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("event {event_index}: {reason}{}", field.map(|f| format!(" in field {f}")).unwrap_or_default())]
pub struct DecodeError {
    pub event_index: usize,
    pub reason: DropReason,
    pub field: Option<&'static str>,
}

/// A hash as events carry it: an integer (the default `VLLM_KV_EVENTS_USE_INT_BLOCK_HASHES=1`)
/// or the raw digest bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BlockHashValue {
    U64(u64),
    /// A negative integer (other producers send int64).
    I64(i64),
    Bytes(Vec<u8>),
}

impl BlockHashValue {
    /// The 64-bit key: the integer itself (two's complement for negatives), or the last 8
    /// bytes big-endian of a digest (left-padded when shorter), as vLLM's
    /// `maybe_convert_block_hash` computes it.
    pub fn as_u64(&self) -> u64 {
        match self {
            BlockHashValue::U64(v) => *v,
            BlockHashValue::I64(v) => *v as u64,
            BlockHashValue::Bytes(bytes) => {
                let tail = &bytes[bytes.len().saturating_sub(8)..];
                let mut be = [0u8; 8];
                be[8 - tail.len()..].copy_from_slice(tail);
                u64::from_be_bytes(be)
            }
        }
    }
}

impl From<u64> for BlockHashValue {
    fn from(value: u64) -> Self {
        BlockHashValue::U64(value)
    }
}

/// `BlockStored`: blocks that became full (or were re-reported) on one pod.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BlockStored {
    pub block_hashes: Vec<BlockHashValue>,
    /// The block before `block_hashes[0]`; `None` starts a sequence.
    pub parent_block_hash: Option<BlockHashValue>,
    /// All tokens of all blocks, concatenated.
    pub token_ids: Vec<u32>,
    pub block_size: u32,
    pub lora_id: Option<i64>,
    /// `"GPU"`, `"CPU"`, `"STORAGE"`...
    pub medium: Option<String>,
    pub lora_name: Option<String>,
    /// One entry per block: `None` or the block's untagged extra keys.
    pub extra_keys: Option<Vec<Option<Vec<EventExtraKey>>>>,
    pub group_idx: Option<u32>,
    pub kv_cache_spec_kind: Option<String>,
    pub kv_cache_spec_sliding_window: Option<i64>,
    pub locality: Option<String>,
    pub ownership: Option<String>,
    pub session_id: Option<String>,
    pub lookahead_token_ids: Option<Vec<Vec<u32>>>,
}

/// `BlockRemoved`: one evicted hash per event in practice.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BlockRemoved {
    pub block_hashes: Vec<BlockHashValue>,
    pub medium: Option<String>,
    pub group_idx: Option<u32>,
    pub locality: Option<String>,
    pub ownership: Option<String>,
}

/// One KV-cache event.
// Stores are the common case; boxing them would cost an allocation per event.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum KvEvent {
    BlockStored(BlockStored),
    BlockRemoved(BlockRemoved),
    /// The whole prefix cache of the pod was reset.
    AllBlocksCleared,
}

impl KvEvent {
    /// The `type` tag.
    pub fn type_name(&self) -> &'static str {
        match self {
            KvEvent::BlockStored(_) => "BlockStored",
            KvEvent::BlockRemoved(_) => "BlockRemoved",
            KvEvent::AllBlocksCleared => "AllBlocksCleared",
        }
    }
}

/// `KVEventBatch`: the events of one scheduler step.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KvEventBatch {
    /// Wall-clock seconds.
    pub ts: f64,
    pub events: Vec<KvEvent>,
    pub data_parallel_rank: Option<i64>,
}

/// A decoded batch with the events that were skipped.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DecodedBatch {
    pub batch: KvEventBatch,
    pub dropped: Vec<DecodeError>,
}

/// How events are encoded inside a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EventEncoding {
    /// `type`-tagged maps, vLLM 0.33 (default).
    #[default]
    Map,
    /// Positional tagged arrays with every declared field, as vLLM before the map switch.
    Array,
}

/// Decodes a `KVEventBatch` payload. A structurally broken payload is an [`Error`]; a bad
/// event is skipped and listed in [`DecodedBatch::dropped`]. Never panics.
pub fn decode_batch(payload: &[u8]) -> Result<DecodedBatch, Error> {
    let fail = |reason: DropReason| Error { reason };
    let mut reader = Reader::new(payload);
    let outer_len = match reader.read_array_len() {
        Ok(len @ 2..) => len,
        Ok(_) => return Err(fail(DropReason::NotABatch)),
        Err(ReadError::WrongType) => return Err(fail(DropReason::NotABatch)),
        Err(error) => return Err(fail(error.into())),
    };
    let ts = reader.read_f64().map_err(|e| match e {
        ReadError::WrongType => fail(DropReason::NotABatch),
        other => fail(other.into()),
    })?;
    let n_events = match reader.read_array_len() {
        Ok(n) => n,
        Err(ReadError::WrongType) => return Err(fail(DropReason::NotABatch)),
        Err(error) => return Err(fail(error.into())),
    };
    let mut batch = KvEventBatch {
        ts,
        events: Vec::with_capacity(n_events.min(reader.remaining())),
        data_parallel_rank: None,
    };
    let mut dropped = Vec::new();
    for event_index in 0..n_events {
        let start = reader.pos();
        // Find the event's extent first, so a bad event can be skipped exactly.
        reader.skip().map_err(|e| fail(e.into()))?;
        let end = reader.pos();
        let mut event_reader = Reader::new(reader.slice(start, end));
        match decode_event(&mut event_reader) {
            Ok(event) => batch.events.push(event),
            Err((reason, field)) => dropped.push(DecodeError {
                event_index,
                reason,
                field,
            }),
        }
    }
    if outer_len >= 3 {
        if !reader.try_nil() {
            match reader.read_int().map(Int::to_i64) {
                Ok(Some(rank)) => batch.data_parallel_rank = Some(rank),
                Ok(None) => return Err(fail(DropReason::OutOfRange)),
                Err(ReadError::WrongType) => return Err(fail(DropReason::NotABatch)),
                Err(error) => return Err(fail(error.into())),
            }
        }
        for _ in 3..outer_len {
            reader.skip().map_err(|e| fail(e.into()))?;
        }
    }
    if reader.remaining() != 0 {
        return Err(fail(DropReason::TrailingBytes));
    }
    Ok(DecodedBatch { batch, dropped })
}

/// Decodes one event (map or tagged array) on its own.
pub fn decode_event_bytes(bytes: &[u8]) -> Result<KvEvent, DecodeError> {
    let mut reader = Reader::new(bytes);
    let to_error = |(reason, field)| DecodeError {
        event_index: 0,
        reason,
        field,
    };
    let event = decode_event(&mut reader).map_err(to_error)?;
    if reader.remaining() != 0 {
        return Err(to_error((DropReason::TrailingBytes, None)));
    }
    Ok(event)
}

/// Encodes a batch as vLLM 0.33 does (map events), appending to `buf`.
pub fn encode_batch(batch: &KvEventBatch, buf: &mut Vec<u8>) {
    encode_batch_with(batch, EventEncoding::Map, buf);
}

/// Encodes a batch with the chosen event encoding, appending to `buf`.
pub fn encode_batch_with(batch: &KvEventBatch, encoding: EventEncoding, buf: &mut Vec<u8>) {
    buf.push(0x93);
    write::f64(buf, batch.ts);
    write::array_len(buf, batch.events.len());
    for event in &batch.events {
        encode_event_with(event, encoding, buf);
    }
    match batch.data_parallel_rank {
        Some(rank) => write::int(buf, rank),
        None => write::nil(buf),
    }
}

/// Encodes one event, appending to `buf`.
pub fn encode_event_with(event: &KvEvent, encoding: EventEncoding, buf: &mut Vec<u8>) {
    match (event, encoding) {
        (KvEvent::BlockStored(stored), EventEncoding::Map) => encode_stored_map(stored, buf),
        (KvEvent::BlockStored(stored), EventEncoding::Array) => encode_stored_array(stored, buf),
        (KvEvent::BlockRemoved(removed), EventEncoding::Map) => encode_removed_map(removed, buf),
        (KvEvent::BlockRemoved(removed), EventEncoding::Array) => {
            encode_removed_array(removed, buf)
        }
        (KvEvent::AllBlocksCleared, EventEncoding::Map) => {
            write::fixmap_len(buf, 1);
            write::str(buf, "type");
            write::str(buf, "AllBlocksCleared");
        }
        (KvEvent::AllBlocksCleared, EventEncoding::Array) => {
            write::array_len(buf, 1);
            write::str(buf, "AllBlocksCleared");
        }
    }
}

type EventResult<T> = Result<T, (DropReason, Option<&'static str>)>;

fn at<T>(field: &'static str, result: Result<T, ReadError>) -> EventResult<T> {
    result.map_err(|e| (DropReason::from(e), Some(field)))
}

fn decode_event(reader: &mut Reader<'_>) -> EventResult<KvEvent> {
    match reader.peek_kind().map_err(|e| (e.into(), None))? {
        Kind::Map => decode_event_map(reader),
        Kind::Array => decode_event_array(reader),
        _ => Err((DropReason::MalformedEvent, None)),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EventType {
    Stored,
    Removed,
    Cleared,
}

fn event_type(tag: &str) -> EventResult<EventType> {
    match tag {
        "BlockStored" => Ok(EventType::Stored),
        "BlockRemoved" => Ok(EventType::Removed),
        "AllBlocksCleared" => Ok(EventType::Cleared),
        _ => Err((DropReason::UnknownEventType, Some("type"))),
    }
}

/// Which fields were seen, for required-field checks.
#[derive(Default)]
struct Seen {
    block_hashes: bool,
    token_ids: bool,
    block_size: bool,
}

fn decode_event_map(reader: &mut Reader<'_>) -> EventResult<KvEvent> {
    let n_entries = at("type", reader.read_map_len())?;
    let body = reader.pos();
    // Find the tag; vLLM writes it first, but any position is accepted.
    let mut tag = None;
    for _ in 0..n_entries {
        let key = reader.read_str().map_err(|e| (e.into(), None))?;
        if key == "type" {
            tag = Some(at("type", reader.read_str())?);
            break;
        }
        at("type", reader.skip())?;
    }
    let tag = tag.ok_or((DropReason::MalformedEvent, Some("type")))?;
    let kind = event_type(tag)?;
    reader.set_pos(body);
    let mut stored = BlockStored::default();
    let mut removed = BlockRemoved::default();
    let mut seen = Seen::default();
    for _ in 0..n_entries {
        let key = reader.read_str().map_err(|e| (e.into(), None))?;
        match (kind, key) {
            (_, "type") => at("type", reader.skip())?,
            (EventType::Stored, key) => read_stored_field(reader, &mut stored, &mut seen, key)?,
            (EventType::Removed, key) => read_removed_field(reader, &mut removed, &mut seen, key)?,
            (EventType::Cleared, _) => at("unknown", reader.skip())?,
        }
    }
    finish(kind, stored, removed, &seen)
}

/// Field order of the positional (array) form, after the tag.
const STORED_FIELDS: [&str; 15] = [
    "block_hashes",
    "parent_block_hash",
    "token_ids",
    "block_size",
    "lora_id",
    "medium",
    "lora_name",
    "extra_keys",
    "group_idx",
    "kv_cache_spec_kind",
    "kv_cache_spec_sliding_window",
    "locality",
    "ownership",
    "session_id",
    "lookahead_token_ids",
];
const REMOVED_FIELDS: [&str; 5] = [
    "block_hashes",
    "medium",
    "group_idx",
    "locality",
    "ownership",
];

fn decode_event_array(reader: &mut Reader<'_>) -> EventResult<KvEvent> {
    let len = at("type", reader.read_array_len())?;
    if len == 0 {
        return Err((DropReason::MalformedEvent, Some("type")));
    }
    let kind = event_type(at("type", reader.read_str())?)?;
    let mut stored = BlockStored::default();
    let mut removed = BlockRemoved::default();
    let mut seen = Seen::default();
    for position in 0..len - 1 {
        match kind {
            EventType::Stored if position < STORED_FIELDS.len() => {
                read_stored_field(reader, &mut stored, &mut seen, STORED_FIELDS[position])?
            }
            EventType::Removed if position < REMOVED_FIELDS.len() => {
                read_removed_field(reader, &mut removed, &mut seen, REMOVED_FIELDS[position])?
            }
            _ => at("unknown", reader.skip())?,
        }
    }
    finish(kind, stored, removed, &seen)
}

fn finish(
    kind: EventType,
    stored: BlockStored,
    removed: BlockRemoved,
    seen: &Seen,
) -> EventResult<KvEvent> {
    let missing = |field| Err((DropReason::MissingField, Some(field)));
    match kind {
        EventType::Stored => {
            if !seen.block_hashes {
                return missing("block_hashes");
            }
            if !seen.token_ids {
                return missing("token_ids");
            }
            if !seen.block_size {
                return missing("block_size");
            }
            Ok(KvEvent::BlockStored(stored))
        }
        EventType::Removed => {
            if !seen.block_hashes {
                return missing("block_hashes");
            }
            Ok(KvEvent::BlockRemoved(removed))
        }
        EventType::Cleared => Ok(KvEvent::AllBlocksCleared),
    }
}

fn read_stored_field(
    reader: &mut Reader<'_>,
    stored: &mut BlockStored,
    seen: &mut Seen,
    key: &str,
) -> EventResult<()> {
    match key {
        "block_hashes" => {
            stored.block_hashes = read_hashes(reader, "block_hashes")?;
            seen.block_hashes = true;
        }
        "parent_block_hash" => {
            stored.parent_block_hash = if reader.try_nil() {
                None
            } else {
                Some(read_hash(reader, "parent_block_hash")?)
            }
        }
        "token_ids" => {
            stored.token_ids = read_tokens(reader, "token_ids")?;
            seen.token_ids = true;
        }
        "block_size" => {
            stored.block_size = read_u32(reader, "block_size")?;
            seen.block_size = true;
        }
        "lora_id" => stored.lora_id = read_opt_i64(reader, "lora_id")?,
        "medium" => stored.medium = read_opt_string(reader, "medium")?,
        "lora_name" => stored.lora_name = read_opt_string(reader, "lora_name")?,
        "extra_keys" => stored.extra_keys = read_extra_keys(reader)?,
        "group_idx" => stored.group_idx = read_opt_u32(reader, "group_idx")?,
        "kv_cache_spec_kind" => {
            stored.kv_cache_spec_kind = read_opt_string(reader, "kv_cache_spec_kind")?
        }
        "kv_cache_spec_sliding_window" => {
            stored.kv_cache_spec_sliding_window =
                read_opt_i64(reader, "kv_cache_spec_sliding_window")?
        }
        "locality" => stored.locality = read_opt_string(reader, "locality")?,
        "ownership" => stored.ownership = read_opt_string(reader, "ownership")?,
        "session_id" => stored.session_id = read_opt_string(reader, "session_id")?,
        "lookahead_token_ids" => {
            stored.lookahead_token_ids = if reader.try_nil() {
                None
            } else {
                let n = at("lookahead_token_ids", reader.read_array_len())?;
                let mut rows = Vec::with_capacity(n.min(reader.remaining()));
                for _ in 0..n {
                    rows.push(read_tokens(reader, "lookahead_token_ids")?);
                }
                Some(rows)
            }
        }
        _ => at("unknown", reader.skip())?,
    }
    Ok(())
}

fn read_removed_field(
    reader: &mut Reader<'_>,
    removed: &mut BlockRemoved,
    seen: &mut Seen,
    key: &str,
) -> EventResult<()> {
    match key {
        "block_hashes" => {
            removed.block_hashes = read_hashes(reader, "block_hashes")?;
            seen.block_hashes = true;
        }
        "medium" => removed.medium = read_opt_string(reader, "medium")?,
        "group_idx" => removed.group_idx = read_opt_u32(reader, "group_idx")?,
        "locality" => removed.locality = read_opt_string(reader, "locality")?,
        "ownership" => removed.ownership = read_opt_string(reader, "ownership")?,
        _ => at("unknown", reader.skip())?,
    }
    Ok(())
}

fn read_hash(reader: &mut Reader<'_>, field: &'static str) -> EventResult<BlockHashValue> {
    match at(field, reader.peek_kind())? {
        Kind::Int => match at(field, reader.read_int())? {
            Int::U(v) => Ok(BlockHashValue::U64(v)),
            Int::I(v) => Ok(BlockHashValue::I64(v)),
        },
        Kind::Bin => Ok(BlockHashValue::Bytes(
            at(field, reader.read_bin())?.to_vec(),
        )),
        _ => Err((DropReason::WrongType, Some(field))),
    }
}

fn read_hashes(reader: &mut Reader<'_>, field: &'static str) -> EventResult<Vec<BlockHashValue>> {
    let n = at(field, reader.read_array_len())?;
    let mut hashes = Vec::with_capacity(n.min(reader.remaining()));
    for _ in 0..n {
        hashes.push(read_hash(reader, field)?);
    }
    Ok(hashes)
}

fn read_tokens(reader: &mut Reader<'_>, field: &'static str) -> EventResult<Vec<u32>> {
    let n = at(field, reader.read_array_len())?;
    let mut tokens = Vec::with_capacity(n.min(reader.remaining()));
    for _ in 0..n {
        tokens.push(read_u32(reader, field)?);
    }
    Ok(tokens)
}

fn read_u32(reader: &mut Reader<'_>, field: &'static str) -> EventResult<u32> {
    at(field, reader.read_int())?
        .to_u64()
        .and_then(|v| u32::try_from(v).ok())
        .ok_or((DropReason::OutOfRange, Some(field)))
}

fn read_opt_u32(reader: &mut Reader<'_>, field: &'static str) -> EventResult<Option<u32>> {
    if reader.try_nil() {
        return Ok(None);
    }
    read_u32(reader, field).map(Some)
}

fn read_opt_i64(reader: &mut Reader<'_>, field: &'static str) -> EventResult<Option<i64>> {
    if reader.try_nil() {
        return Ok(None);
    }
    at(field, reader.read_int())?
        .to_i64()
        .map(Some)
        .ok_or((DropReason::OutOfRange, Some(field)))
}

fn read_opt_string(reader: &mut Reader<'_>, field: &'static str) -> EventResult<Option<String>> {
    if reader.try_nil() {
        return Ok(None);
    }
    Ok(Some(at(field, reader.read_str())?.to_owned()))
}

type ExtraKeys = Option<Vec<Option<Vec<EventExtraKey>>>>;

fn read_extra_keys(reader: &mut Reader<'_>) -> EventResult<ExtraKeys> {
    const FIELD: &str = "extra_keys";
    if reader.try_nil() {
        return Ok(None);
    }
    let n_blocks = at(FIELD, reader.read_array_len())?;
    let mut per_block = Vec::with_capacity(n_blocks.min(reader.remaining()));
    for _ in 0..n_blocks {
        if reader.try_nil() {
            per_block.push(None);
            continue;
        }
        let n_keys = at(FIELD, reader.read_array_len())?;
        let mut keys = Vec::with_capacity(n_keys.min(reader.remaining()));
        for _ in 0..n_keys {
            keys.push(read_extra_key(reader)?);
        }
        per_block.push(Some(keys));
    }
    Ok(Some(per_block))
}

fn read_extra_key(reader: &mut Reader<'_>) -> EventResult<EventExtraKey> {
    const FIELD: &str = "extra_keys";
    match at(FIELD, reader.peek_kind())? {
        Kind::Str => Ok(EventExtraKey::Str(at(FIELD, reader.read_str())?.to_owned())),
        Kind::Bin => Ok(EventExtraKey::Bytes(at(FIELD, reader.read_bin())?.to_vec())),
        Kind::Int => at(FIELD, reader.read_int())?
            .to_i64()
            .map(EventExtraKey::Int)
            .ok_or((DropReason::OutOfRange, Some(FIELD))),
        Kind::Array => {
            if at(FIELD, reader.read_array_len())? != 2 {
                return Err((DropReason::WrongType, Some(FIELD)));
            }
            let identifier = at(FIELD, reader.read_str())?.to_owned();
            let offset = at(FIELD, reader.read_int())?
                .to_i64()
                .ok_or((DropReason::OutOfRange, Some(FIELD)))?;
            Ok(EventExtraKey::Mm { identifier, offset })
        }
        _ => Err((DropReason::WrongType, Some(FIELD))),
    }
}

fn write_hash(buf: &mut Vec<u8>, hash: &BlockHashValue) {
    match hash {
        BlockHashValue::U64(v) => write::uint(buf, *v),
        BlockHashValue::I64(v) => write::int(buf, *v),
        BlockHashValue::Bytes(bytes) => write::bin(buf, bytes),
    }
}

fn write_hashes(buf: &mut Vec<u8>, hashes: &[BlockHashValue]) {
    write::array_len(buf, hashes.len());
    for hash in hashes {
        write_hash(buf, hash);
    }
}

fn write_tokens(buf: &mut Vec<u8>, tokens: &[u32]) {
    write::array_len(buf, tokens.len());
    for &token in tokens {
        write::uint(buf, u64::from(token));
    }
}

fn write_opt_str(buf: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(text) => write::str(buf, text),
        None => write::nil(buf),
    }
}

fn write_opt_int(buf: &mut Vec<u8>, value: Option<i64>) {
    match value {
        Some(v) => write::int(buf, v),
        None => write::nil(buf),
    }
}

fn write_extra_keys(buf: &mut Vec<u8>, per_block: &[Option<Vec<EventExtraKey>>]) {
    write::array_len(buf, per_block.len());
    for block in per_block {
        match block {
            None => write::nil(buf),
            Some(keys) => {
                write::array_len(buf, keys.len());
                for key in keys {
                    match key {
                        EventExtraKey::Str(text) => write::str(buf, text),
                        EventExtraKey::Bytes(bytes) => write::bin(buf, bytes),
                        EventExtraKey::Int(v) => write::int(buf, *v),
                        EventExtraKey::Mm { identifier, offset } => {
                            write::array_len(buf, 2);
                            write::str(buf, identifier);
                            write::int(buf, *offset);
                        }
                    }
                }
            }
        }
    }
}

fn write_lookahead(buf: &mut Vec<u8>, rows: &[Vec<u32>]) {
    write::array_len(buf, rows.len());
    for row in rows {
        write_tokens(buf, row);
    }
}

/// msgspec `omit_defaults`: the 7 required fields always, the others only when set.
fn encode_stored_map(stored: &BlockStored, buf: &mut Vec<u8>) {
    let optional = [
        stored.extra_keys.is_some(),
        stored.group_idx.is_some(),
        stored.kv_cache_spec_kind.is_some(),
        stored.kv_cache_spec_sliding_window.is_some(),
        stored.locality.is_some(),
        stored.ownership.is_some(),
        stored.session_id.is_some(),
        stored.lookahead_token_ids.is_some(),
    ];
    let n_entries = 1 + 7 + optional.iter().filter(|set| **set).count();
    // msgspec sizes the header by the struct's maximum entry count (16): always map16.
    write::map16_len(buf, n_entries);
    write::str(buf, "type");
    write::str(buf, "BlockStored");
    write::str(buf, "block_hashes");
    write_hashes(buf, &stored.block_hashes);
    write::str(buf, "parent_block_hash");
    match &stored.parent_block_hash {
        Some(hash) => write_hash(buf, hash),
        None => write::nil(buf),
    }
    write::str(buf, "token_ids");
    write_tokens(buf, &stored.token_ids);
    write::str(buf, "block_size");
    write::uint(buf, u64::from(stored.block_size));
    write::str(buf, "lora_id");
    write_opt_int(buf, stored.lora_id);
    write::str(buf, "medium");
    write_opt_str(buf, stored.medium.as_deref());
    write::str(buf, "lora_name");
    write_opt_str(buf, stored.lora_name.as_deref());
    if let Some(extra_keys) = &stored.extra_keys {
        write::str(buf, "extra_keys");
        write_extra_keys(buf, extra_keys);
    }
    if let Some(group_idx) = stored.group_idx {
        write::str(buf, "group_idx");
        write::uint(buf, u64::from(group_idx));
    }
    if let Some(kind) = &stored.kv_cache_spec_kind {
        write::str(buf, "kv_cache_spec_kind");
        write::str(buf, kind);
    }
    if let Some(window) = stored.kv_cache_spec_sliding_window {
        write::str(buf, "kv_cache_spec_sliding_window");
        write::int(buf, window);
    }
    if let Some(locality) = &stored.locality {
        write::str(buf, "locality");
        write::str(buf, locality);
    }
    if let Some(ownership) = &stored.ownership {
        write::str(buf, "ownership");
        write::str(buf, ownership);
    }
    if let Some(session_id) = &stored.session_id {
        write::str(buf, "session_id");
        write::str(buf, session_id);
    }
    if let Some(rows) = &stored.lookahead_token_ids {
        write::str(buf, "lookahead_token_ids");
        write_lookahead(buf, rows);
    }
}

fn encode_removed_map(removed: &BlockRemoved, buf: &mut Vec<u8>) {
    let n_optional = [
        removed.group_idx.is_some(),
        removed.locality.is_some(),
        removed.ownership.is_some(),
    ]
    .iter()
    .filter(|set| **set)
    .count();
    write::fixmap_len(buf, 3 + n_optional);
    write::str(buf, "type");
    write::str(buf, "BlockRemoved");
    write::str(buf, "block_hashes");
    write_hashes(buf, &removed.block_hashes);
    write::str(buf, "medium");
    write_opt_str(buf, removed.medium.as_deref());
    if let Some(group_idx) = removed.group_idx {
        write::str(buf, "group_idx");
        write::uint(buf, u64::from(group_idx));
    }
    if let Some(locality) = &removed.locality {
        write::str(buf, "locality");
        write::str(buf, locality);
    }
    if let Some(ownership) = &removed.ownership {
        write::str(buf, "ownership");
        write::str(buf, ownership);
    }
}

fn encode_stored_array(stored: &BlockStored, buf: &mut Vec<u8>) {
    write::array_len(buf, 1 + STORED_FIELDS.len());
    write::str(buf, "BlockStored");
    write_hashes(buf, &stored.block_hashes);
    match &stored.parent_block_hash {
        Some(hash) => write_hash(buf, hash),
        None => write::nil(buf),
    }
    write_tokens(buf, &stored.token_ids);
    write::uint(buf, u64::from(stored.block_size));
    write_opt_int(buf, stored.lora_id);
    write_opt_str(buf, stored.medium.as_deref());
    write_opt_str(buf, stored.lora_name.as_deref());
    match &stored.extra_keys {
        Some(extra_keys) => write_extra_keys(buf, extra_keys),
        None => write::nil(buf),
    }
    write_opt_int(buf, stored.group_idx.map(i64::from));
    write_opt_str(buf, stored.kv_cache_spec_kind.as_deref());
    write_opt_int(buf, stored.kv_cache_spec_sliding_window);
    write_opt_str(buf, stored.locality.as_deref());
    write_opt_str(buf, stored.ownership.as_deref());
    write_opt_str(buf, stored.session_id.as_deref());
    match &stored.lookahead_token_ids {
        Some(rows) => write_lookahead(buf, rows),
        None => write::nil(buf),
    }
}

fn encode_removed_array(removed: &BlockRemoved, buf: &mut Vec<u8>) {
    write::array_len(buf, 1 + REMOVED_FIELDS.len());
    write::str(buf, "BlockRemoved");
    write_hashes(buf, &removed.block_hashes);
    write_opt_str(buf, removed.medium.as_deref());
    write_opt_int(buf, removed.group_idx.map(i64::from));
    write_opt_str(buf, removed.locality.as_deref());
    write_opt_str(buf, removed.ownership.as_deref());
}
