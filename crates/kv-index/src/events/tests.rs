//! Golden tests against `shared/golden/vllm_kv_events.json` plus decoder robustness.

use serde_json::Value;

use super::*;

const GOLDEN: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/golden/vllm_kv_events.json"
));

fn golden() -> Value {
    serde_json::from_str(GOLDEN).expect("golden file is JSON")
}

fn hash_of(value: &Value) -> BlockHashValue {
    if let Some(v) = value.as_u64() {
        BlockHashValue::U64(v)
    } else if let Some(v) = value.as_i64() {
        BlockHashValue::I64(v)
    } else {
        BlockHashValue::Bytes(hex::decode(value["$bytes"].as_str().expect("$bytes")).unwrap())
    }
}

fn tokens_of(value: &Value) -> Vec<u32> {
    value
        .as_array()
        .expect("tokens")
        .iter()
        .map(|t| u32::try_from(t.as_u64().unwrap()).unwrap())
        .collect()
}

fn opt_str(map: &serde_json::Map<String, Value>, key: &str) -> Option<String> {
    map.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn extra_key_of(value: &Value) -> EventExtraKey {
    match value {
        Value::String(text) => EventExtraKey::Str(text.clone()),
        Value::Array(pair) => EventExtraKey::Mm {
            identifier: pair[0].as_str().unwrap().to_owned(),
            offset: pair[1].as_i64().unwrap(),
        },
        Value::Number(n) => EventExtraKey::Int(n.as_i64().unwrap()),
        Value::Object(_) => {
            EventExtraKey::Bytes(hex::decode(value["$bytes"].as_str().unwrap()).unwrap())
        }
        other => panic!("unexpected golden extra key {other}"),
    }
}

/// The golden generic decode of one event, as the typed value.
fn event_of(value: &Value) -> KvEvent {
    let map = value.as_object().expect("event map");
    let hashes = || {
        map["block_hashes"]
            .as_array()
            .unwrap()
            .iter()
            .map(hash_of)
            .collect()
    };
    match map["type"].as_str().unwrap() {
        "BlockStored" => KvEvent::BlockStored(BlockStored {
            block_hashes: hashes(),
            parent_block_hash: map
                .get("parent_block_hash")
                .filter(|v| !v.is_null())
                .map(hash_of),
            token_ids: tokens_of(&map["token_ids"]),
            block_size: map["block_size"].as_u64().unwrap() as u32,
            lora_id: map.get("lora_id").and_then(Value::as_i64),
            medium: opt_str(map, "medium"),
            lora_name: opt_str(map, "lora_name"),
            extra_keys: map
                .get("extra_keys")
                .and_then(Value::as_array)
                .map(|blocks| {
                    blocks
                        .iter()
                        .map(|block| {
                            block
                                .as_array()
                                .map(|keys| keys.iter().map(extra_key_of).collect())
                        })
                        .collect()
                }),
            group_idx: map
                .get("group_idx")
                .and_then(Value::as_u64)
                .map(|v| v as u32),
            kv_cache_spec_kind: opt_str(map, "kv_cache_spec_kind"),
            kv_cache_spec_sliding_window: map
                .get("kv_cache_spec_sliding_window")
                .and_then(Value::as_i64),
            locality: opt_str(map, "locality"),
            ownership: opt_str(map, "ownership"),
            session_id: opt_str(map, "session_id"),
            lookahead_token_ids: map
                .get("lookahead_token_ids")
                .and_then(Value::as_array)
                .map(|rows| rows.iter().map(tokens_of).collect()),
        }),
        "BlockRemoved" => KvEvent::BlockRemoved(BlockRemoved {
            block_hashes: hashes(),
            medium: opt_str(map, "medium"),
            group_idx: map
                .get("group_idx")
                .and_then(Value::as_u64)
                .map(|v| v as u32),
            locality: opt_str(map, "locality"),
            ownership: opt_str(map, "ownership"),
        }),
        "AllBlocksCleared" => KvEvent::AllBlocksCleared,
        other => panic!("unknown golden type {other}"),
    }
}

fn batch_of(value: &Value) -> KvEventBatch {
    let parts = value.as_array().expect("batch array");
    KvEventBatch {
        ts: parts[0].as_f64().unwrap(),
        events: parts[1].as_array().unwrap().iter().map(event_of).collect(),
        data_parallel_rank: parts.get(2).and_then(Value::as_i64),
    }
}

/// Every published batch: decodes to the golden decode, re-encodes to the same bytes.
fn check_run(run: &Value) -> usize {
    let mut n = 0;
    for entry in run["batches"].as_array().expect("batches") {
        let name = entry["name"].as_str().unwrap();
        let payload = hex::decode(entry["payload_hex"].as_str().unwrap()).unwrap();
        assert_eq!(entry["frames_hex"][2], entry["payload_hex"], "{name}");
        let decoded = decode_batch(&payload).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(decoded.dropped.is_empty(), "{name}: {:?}", decoded.dropped);
        let expected = batch_of(&entry["decoded"]);
        assert_eq!(decoded.batch, expected, "{name}");
        assert_eq!(decoded.batch.ts, entry["ts"].as_f64().unwrap(), "{name}");
        let mut bytes = Vec::new();
        encode_batch(&expected, &mut bytes);
        assert_eq!(
            hex::encode(&bytes),
            entry["payload_hex"].as_str().unwrap(),
            "{name}"
        );
        n += 1;
    }
    n
}

#[test]
fn publisher_run_decodes_and_reencodes_byte_for_byte() {
    let golden = golden();
    assert_eq!(check_run(&golden["publisher_run"]), 7);
}

#[test]
fn dp_rank_run_carries_the_rank() {
    let golden = golden();
    assert!(check_run(&golden["dp_rank_run"]) >= 1);
    let payload = hex::decode(
        golden["dp_rank_run"]["batches"][0]["payload_hex"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        decode_batch(&payload).unwrap().batch.data_parallel_rank,
        Some(1)
    );
}

#[test]
fn bytes_hash_run_keeps_digests_and_their_u64_form() {
    let golden = golden();
    assert_eq!(check_run(&golden["bytes_hash_run"]), 3);
    let first = hex::decode(
        golden["bytes_hash_run"]["batches"][0]["payload_hex"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let batch = decode_batch(&first).unwrap().batch;
    let KvEvent::BlockStored(stored) = &batch.events[0] else {
        panic!("expected a store");
    };
    // The same blocks as the int-hash run: last 8 bytes big-endian.
    assert_eq!(stored.block_hashes[0].as_u64(), 2233398808101521225);
    assert!(matches!(&stored.block_hashes[0], BlockHashValue::Bytes(b) if b.len() == 32));
}

#[test]
fn replay_frames_carry_the_published_payloads() {
    let golden = golden();
    let published = golden["publisher_run"]["batches"].as_array().unwrap();
    for frames in golden["publisher_run"]["replay"]["dealer_received_frames_hex"]
        .as_array()
        .unwrap()
    {
        let seq = u64::from_str_radix(frames[2].as_str().unwrap(), 16).unwrap();
        if seq == u64::MAX {
            // The end marker: empty topic and payload.
            assert_eq!(frames[1], "");
            assert_eq!(frames[3], "");
            continue;
        }
        assert_eq!(frames[3], published[seq as usize]["payload_hex"]);
        let payload = hex::decode(frames[3].as_str().unwrap()).unwrap();
        assert!(decode_batch(&payload).unwrap().dropped.is_empty());
    }
}

#[test]
fn synthetic_encodings_decode_and_reencode() {
    let golden = golden();
    let mut n = 0;
    for entry in golden["synthetic_encodings"].as_array().unwrap() {
        let name = entry["name"].as_str().unwrap();
        let payload = hex::decode(entry["payload_hex"].as_str().unwrap()).unwrap();
        let mut bytes = Vec::new();
        if entry["decoded"].is_array() {
            let decoded = decode_batch(&payload).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(decoded.dropped.is_empty(), "{name}");
            let expected = batch_of(&entry["decoded"]);
            assert_eq!(decoded.batch, expected, "{name}");
            encode_batch(&expected, &mut bytes);
        } else {
            let event = decode_event_bytes(&payload).unwrap_or_else(|e| panic!("{name}: {e}"));
            let expected = event_of(&entry["decoded"]);
            assert_eq!(event, expected, "{name}");
            encode_event_with(&expected, EventEncoding::Map, &mut bytes);
        }
        assert_eq!(
            hex::encode(&bytes),
            entry["payload_hex"].as_str().unwrap(),
            "{name}"
        );
        n += 1;
    }
    assert_eq!(n, 8);
}

fn every_golden_batch() -> Vec<KvEventBatch> {
    let golden = golden();
    let mut batches = Vec::new();
    for run in ["publisher_run", "dp_rank_run", "bytes_hash_run"] {
        for entry in golden[run]["batches"].as_array().unwrap() {
            batches.push(batch_of(&entry["decoded"]));
        }
    }
    batches
}

#[test]
fn legacy_array_events_decode_to_the_same_values() {
    for batch in every_golden_batch() {
        let mut bytes = Vec::new();
        encode_batch_with(&batch, EventEncoding::Array, &mut bytes);
        let decoded = decode_batch(&bytes).unwrap();
        assert!(decoded.dropped.is_empty());
        assert_eq!(decoded.batch, batch);
    }
}

/// Legacy arrays with trailing fields left out, and a 2-element batch.
#[test]
fn short_legacy_forms_are_accepted() {
    // [ts, [["BlockStored", [7], nil, [1, 2], 2], ["BlockRemoved", [7]], ["AllBlocksCleared"]]]
    let payload = hex::decode(concat!(
        "92",
        "cb41d954fc40000000",
        "93",
        "95",
        "ab426c6f636b53746f726564",
        "9107",
        "c0",
        "920102",
        "02",
        "92",
        "ac426c6f636b52656d6f766564",
        "9107",
        "91",
        "b0416c6c426c6f636b73436c6561726564",
    ))
    .unwrap();
    let decoded = decode_batch(&payload).unwrap();
    assert!(decoded.dropped.is_empty(), "{:?}", decoded.dropped);
    assert_eq!(decoded.batch.data_parallel_rank, None);
    assert_eq!(
        decoded.batch.events,
        vec![
            KvEvent::BlockStored(BlockStored {
                block_hashes: vec![BlockHashValue::U64(7)],
                token_ids: vec![1, 2],
                block_size: 2,
                ..BlockStored::default()
            }),
            KvEvent::BlockRemoved(BlockRemoved {
                block_hashes: vec![BlockHashValue::U64(7)],
                ..BlockRemoved::default()
            }),
            KvEvent::AllBlocksCleared,
        ]
    );
}

/// A bad event in the middle is dropped with its reason; its neighbours survive.
#[test]
fn bad_events_are_skipped_with_a_reason() {
    let cases: &[(&str, &str, DropReason, Option<&str>)] = &[
        // {"type": "Bogus"}
        (
            "unknown tag",
            "81a474797065a5426f677573",
            DropReason::UnknownEventType,
            Some("type"),
        ),
        // {"type": "BlockRemoved"}
        (
            "missing hashes",
            "81a474797065ac426c6f636b52656d6f766564",
            DropReason::MissingField,
            Some("block_hashes"),
        ),
        // {"type": "BlockRemoved", "block_hashes": ["x"]}
        (
            "string hash",
            "82a474797065ac426c6f636b52656d6f766564ac626c6f636b5f686173686573",
            DropReason::Truncated,
            None,
        ),
        // 42
        ("not a map", "2a", DropReason::MalformedEvent, None),
        // {"block_hashes": [1]} (no tag)
        (
            "no tag",
            "81ac626c6f636b5f6861736865739101",
            DropReason::MalformedEvent,
            Some("type"),
        ),
        // ["BlockStored", [1], nil, [-1], 1]
        (
            "negative token",
            "95ab426c6f636b53746f7265649101c091ff01",
            DropReason::OutOfRange,
            Some("token_ids"),
        ),
    ];
    for (label, event_hex, reason, field) in cases {
        // [0.0, [AllBlocksCleared, <bad>, AllBlocksCleared], 0]
        let cleared = "81a474797065b0416c6c426c6f636b73436c6561726564";
        let payload_hex = format!("93cb000000000000000093{cleared}{event_hex}{cleared}00");
        let payload = hex::decode(&payload_hex).unwrap();
        match decode_batch(&payload) {
            Ok(decoded) => {
                assert_eq!(decoded.batch.events.len(), 2, "{label}");
                assert_eq!(
                    decoded.dropped,
                    vec![DecodeError {
                        event_index: 1,
                        reason: *reason,
                        field: *field
                    }],
                    "{label}"
                );
            }
            // A structurally incomplete event cannot be delimited: the batch is refused.
            Err(error) => assert_eq!(error.reason, *reason, "{label}"),
        }
    }
}

#[test]
fn broken_batches_are_errors() {
    let cases: &[(&str, DropReason)] = &[
        ("", DropReason::Truncated),
        ("c0", DropReason::NotABatch),
        ("91cb0000000000000000", DropReason::NotABatch),
        ("93a1789000", DropReason::NotABatch),
        ("93cb000000000000000090", DropReason::Truncated),
        ("93cb00000000000000009000ff", DropReason::TrailingBytes),
        ("93cb0000000000000000dd7fffffff", DropReason::Truncated),
    ];
    for (payload_hex, reason) in cases {
        let payload = hex::decode(payload_hex).unwrap();
        assert_eq!(
            decode_batch(&payload),
            Err(Error { reason: *reason }),
            "{payload_hex}"
        );
    }
    // Deep nesting is refused, not recursed into without bound.
    let mut deep = hex::decode("93cb000000000000000091").unwrap();
    deep.extend(std::iter::repeat_n(0x91u8, 100_000));
    deep.push(0xc0);
    assert_eq!(
        decode_batch(&deep),
        Err(Error {
            reason: DropReason::TooDeep
        })
    );
}

#[test]
fn hash_values_convert_like_vllm() {
    assert_eq!(BlockHashValue::U64(5).as_u64(), 5);
    assert_eq!(BlockHashValue::I64(-1).as_u64(), u64::MAX);
    assert_eq!(BlockHashValue::Bytes(vec![1, 2]).as_u64(), 0x0102);
    let mut digest = vec![0xaa; 24];
    digest.extend_from_slice(&0x1122_3344_5566_7788u64.to_be_bytes());
    assert_eq!(
        BlockHashValue::Bytes(digest).as_u64(),
        0x1122_3344_5566_7788
    );
}

/// Random and mutated payloads never panic; whatever decodes re-encodes and decodes again to
/// the same value. A deterministic xorshift keeps the test reproducible.
#[test]
fn random_and_mutated_frames_never_panic() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut seeds = Vec::new();
    for batch in every_golden_batch() {
        let mut bytes = Vec::new();
        encode_batch(&batch, &mut bytes);
        seeds.push(bytes.clone());
        bytes.clear();
        encode_batch_with(&batch, EventEncoding::Array, &mut bytes);
        seeds.push(bytes);
    }
    let mut n_ok = 0;
    for round in 0..20_000 {
        let mut bytes = if round % 10 == 0 {
            (0..next() % 64).map(|_| next() as u8).collect::<Vec<u8>>()
        } else {
            seeds[(next() % seeds.len() as u64) as usize].clone()
        };
        for _ in 0..1 + next() % 4 {
            if bytes.is_empty() {
                break;
            }
            let at = (next() % bytes.len() as u64) as usize;
            match next() % 3 {
                0 => bytes[at] = next() as u8,
                1 => bytes.truncate(at),
                _ => bytes.insert(at, next() as u8),
            }
        }
        if let Ok(decoded) = decode_batch(&bytes) {
            n_ok += 1;
            let mut again = Vec::new();
            encode_batch(&decoded.batch, &mut again);
            let redecoded = decode_batch(&again).expect("our own encoding decodes");
            assert!(redecoded.dropped.is_empty());
            // NaN timestamps compare unequal; compare the rest.
            assert_eq!(redecoded.batch.events, decoded.batch.events);
        }
    }
    assert!(
        n_ok > 100,
        "mutations should often leave a decodable batch ({n_ok})"
    );
}
