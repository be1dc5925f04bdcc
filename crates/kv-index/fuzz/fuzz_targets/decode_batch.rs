//! Fuzz target: any bytes into the `KVEventBatch` decoder must not panic, and whatever
//! decodes must survive an encode/decode round trip.
#![no_main]

use kv_index::events::{decode_batch, encode_batch};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(decoded) = decode_batch(data) {
        let mut bytes = Vec::new();
        encode_batch(&decoded.batch, &mut bytes);
        let again = decode_batch(&bytes).expect("own encoding decodes");
        assert_eq!(again.batch.events, decoded.batch.events);
    }
});
