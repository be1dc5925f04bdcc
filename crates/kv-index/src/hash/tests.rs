//! Golden tests against `shared/golden/vllm_block_hashes.json` (vLLM 0.33.0's own output).

use serde_json::Value;

use super::*;

const GOLDEN: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/golden/vllm_block_hashes.json"
));

fn golden() -> Value {
    serde_json::from_str(GOLDEN).expect("golden file is JSON")
}

fn tokens_of(value: &Value) -> Vec<u32> {
    value
        .as_array()
        .expect("token array")
        .iter()
        .map(|t| u32::try_from(t.as_u64().expect("token id")).expect("u32 token"))
        .collect()
}

fn bytes_of(value: &Value) -> Vec<u8> {
    hex::decode(value["$bytes"].as_str().expect("$bytes")).expect("hex")
}

/// A golden tagged extra-keys tuple (`null` or a list of tagged lists) as typed keys.
fn extra_keys_of(value: &Value) -> Option<Vec<ExtraKey>> {
    let keys = value.as_array()?;
    Some(
        keys.iter()
            .map(|key| {
                let key = key.as_array().expect("tagged key");
                match key[0].as_str().expect("tag") {
                    "lora" => ExtraKey::Lora {
                        name: key[1].as_str().expect("name").to_owned(),
                        path: key[2].as_str().expect("path").to_owned(),
                    },
                    "mm" => ExtraKey::Mm {
                        identifier: key[1].as_str().expect("identifier").to_owned(),
                        offset: key[2].as_i64().expect("offset"),
                    },
                    "cache_salt" => ExtraKey::CacheSalt(key[1].as_str().expect("salt").to_owned()),
                    "prompt_embeds" => {
                        ExtraKey::PromptEmbeds(bytes_of(&key[1]).try_into().expect("32 bytes"))
                    }
                    other => panic!("unknown golden tag {other}"),
                }
            })
            .collect(),
    )
}

fn request_extras_of(case: &Value) -> RequestExtras {
    RequestExtras {
        lora: case["lora"].as_object().map(|lora| LoraRef {
            name: lora["name"].as_str().expect("name").to_owned(),
            path: lora["path"].as_str().expect("path").to_owned(),
        }),
        cache_salt: case["cache_salt"].as_str().map(str::to_owned),
        mm_items: case["mm_features"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|item| MmItem {
                        identifier: item["identifier"].as_str().expect("id").to_owned(),
                        offset: item["offset"].as_u64().expect("offset"),
                        length: item["length"].as_u64().expect("length"),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        prompt_embeds: Vec::new(),
    }
}

#[test]
fn every_golden_case_matches_byte_for_byte() {
    let golden = golden();
    let cases = golden["cases"].as_array().expect("cases");
    assert!(cases.len() >= 21, "expected the 21 golden cases");
    let mut n_blocks_checked = 0;
    for case in cases {
        let id = case["id"].as_str().expect("id");
        let algo: HashAlgo = case["algo"].as_str().expect("algo").parse().expect(id);
        let python_hash_seed = match case["seed_source"].as_str().expect("seed_source") {
            "PYTHONHASHSEED" => Some(case["seed"].as_str().expect("seed")),
            _ => None,
        };
        let seed = resolve_none_hash_seed(algo, python_hash_seed);
        assert_eq!(seed, case["seed"].as_str().expect("seed"), "{id}: seed");
        let mut hasher = BlockHasher::new(algo, &seed);
        assert_eq!(
            hex::encode(hasher.seed_preimage(&seed)),
            case["none_hash_input_hex"].as_str().expect("none input"),
            "{id}: NONE_HASH pre-image"
        );
        assert_eq!(
            hasher.none_hash().to_hex(),
            case["none_hash_hex"].as_str().expect("none hash"),
            "{id}: NONE_HASH"
        );

        let sequence = case["tokens"].as_str().expect("token sequence name");
        let tokens = tokens_of(&golden["token_sequences"][sequence]);
        let block_size = case["block_size"].as_u64().expect("block size") as usize;
        let extras = request_extras_of(case);
        let chain = hasher
            .hash_request(&tokens, block_size, &extras)
            .expect("chain");
        let blocks = case["blocks"].as_array().expect("blocks");
        assert_eq!(
            chain.len() as u64,
            case["num_full_blocks"].as_u64().unwrap(),
            "{id}"
        );
        assert_eq!(chain.len(), blocks.len(), "{id}: block count");
        assert_eq!(
            tokens.len() - chain.len() * block_size,
            case["unhashed_tail_tokens"].as_u64().unwrap() as usize,
            "{id}: tail"
        );

        let mut parent: Option<BlockHash> = None;
        for (block, hash) in blocks.iter().zip(&chain) {
            let block_idx = block["index"].as_u64().unwrap();
            let start = block["token_start"].as_u64().unwrap();
            let end = block["token_end"].as_u64().unwrap();
            let expected_keys = extra_keys_of(&block["extra_keys"]);
            let keys = extras.block_extra_keys(start, end);
            assert_eq!(keys, expected_keys, "{id} block {block_idx}: extra keys");
            assert_eq!(
                parent.unwrap_or(hasher.none_hash()).to_hex(),
                block["parent_hex"].as_str().unwrap(),
                "{id} block {block_idx}: parent"
            );
            let preimage = hex::encode(hasher.block_preimage(
                parent.as_ref(),
                &tokens[start as usize..end as usize],
                keys.as_deref(),
            ));
            assert_eq!(
                preimage,
                block["hash_input_hex"].as_str().unwrap(),
                "{id} block {block_idx}: pre-image"
            );
            assert_eq!(
                hash.to_hex(),
                block["hash_hex"].as_str().unwrap(),
                "{id} block {block_idx}"
            );
            assert_eq!(
                hash.external_u64(),
                block["external_u64"].as_u64().unwrap(),
                "{id} block {block_idx}: external u64"
            );
            assert_eq!(
                format!("{:016x}", hash.external_u64()),
                block["external_u64_hex"].as_str().unwrap()
            );
            parent = Some(*hash);
            n_blocks_checked += 1;
        }
    }
    assert!(n_blocks_checked > 150, "checked {n_blocks_checked} blocks");
}

#[test]
fn direct_hash_block_tokens_match() {
    let golden = golden();
    for call in golden["direct_hash_block_tokens"]
        .as_array()
        .expect("calls")
    {
        let label = call["label"].as_str().unwrap();
        let algo: HashAlgo = call["algo"].as_str().unwrap().parse().unwrap();
        let mut hasher = BlockHasher::new(algo, call["seed"].as_str().unwrap());
        let parent = call["parent_hex"]
            .as_str()
            .map(|h| BlockHash::from_bytes(&hex::decode(h).unwrap()).unwrap());
        let tokens = tokens_of(&call["tokens"]);
        let keys = extra_keys_of(&call["extra_keys"]);
        let preimage =
            hex::encode(hasher.block_preimage(parent.as_ref(), &tokens, keys.as_deref()));
        assert_eq!(
            preimage,
            call["hash_input_hex"].as_str().unwrap(),
            "{label}"
        );
        let hash = hasher.hash_block(parent.as_ref(), &tokens, keys.as_deref());
        assert_eq!(hash.to_hex(), call["hash_hex"].as_str().unwrap(), "{label}");
        assert_eq!(
            hash.external_u64(),
            call["external_u64"].as_u64().unwrap(),
            "{label}"
        );
    }
}

#[test]
fn hybrid_view_takes_every_kth_fine_hash() {
    let golden = golden();
    let view = &golden["hybrid_view"];
    let fine_size = view["hash_block_size"].as_u64().unwrap() as usize;
    let group_size = view["group_block_size"].as_u64().unwrap() as usize;
    let tokens: Vec<u32> = (0..128).collect();
    let mut hasher = BlockHasher::new(HashAlgo::Sha256Cbor, DEFAULT_NONE_HASH_SEED);
    let fine = hasher
        .hash_request(&tokens, fine_size, &RequestExtras::default())
        .unwrap();
    let coarse = group_view(&fine, fine_size, group_size).expect("multiple");
    let expected: Vec<&str> = view["view_hex"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    assert_eq!(
        coarse.iter().map(BlockHash::to_hex).collect::<Vec<_>>(),
        expected
    );
    for (hash, idx) in coarse
        .iter()
        .zip(view["source_indices"].as_array().unwrap())
    {
        assert_eq!(*hash, fine[idx.as_u64().unwrap() as usize]);
    }
    assert_eq!(group_view(&fine, 16, 24), None);
    assert_eq!(group_view(&fine, 0, 16), None);
}

#[test]
fn algo_flag_strings_round_trip() {
    for algo in HashAlgo::ALL {
        assert_eq!(algo.as_str().parse::<HashAlgo>(), Ok(algo));
    }
    assert_eq!(
        "builtin".parse::<HashAlgo>(),
        Err(Error::UnknownAlgo("builtin".to_owned()))
    );
    assert_eq!(HashAlgo::default(), HashAlgo::Sha256);
}

#[test]
fn xxhash_without_seed_is_random_per_hasher() {
    let a = resolve_none_hash_seed(HashAlgo::Xxhash, None);
    let b = resolve_none_hash_seed(HashAlgo::XxhashCbor, None);
    assert_eq!(a.len(), 64);
    assert_ne!(a, b);
    assert_eq!(
        resolve_none_hash_seed(HashAlgo::Sha256, None),
        DEFAULT_NONE_HASH_SEED
    );
}

#[test]
fn zero_block_size_is_an_error_and_partial_blocks_are_not_hashed() {
    let mut hasher = BlockHasher::new(HashAlgo::Sha256Cbor, DEFAULT_NONE_HASH_SEED);
    assert_eq!(
        hasher.hash_request(&[1, 2, 3], 0, &RequestExtras::default()),
        Err(Error::ZeroBlockSize)
    );
    assert!(
        hasher
            .hash_request(&[1, 2, 3], 4, &RequestExtras::default())
            .unwrap()
            .is_empty()
    );
    // Extending a chain hashes only the newly full blocks and equals hashing at once.
    let tokens: Vec<u32> = (0..40).collect();
    let mut chain = Vec::new();
    hasher
        .extend_chain(&mut chain, &tokens[..20], 16, &RequestExtras::default())
        .unwrap();
    assert_eq!(chain.len(), 1);
    hasher
        .extend_chain(&mut chain, &tokens, 16, &RequestExtras::default())
        .unwrap();
    assert_eq!(
        chain,
        hasher
            .hash_request(&tokens, 16, &RequestExtras::default())
            .unwrap()
    );
}

/// Pickle memo: a second MM item in one block writes `"mm"` as a BINGET of the first.
#[test]
fn pickle_back_references_the_interned_tag() {
    let mut hasher = BlockHasher::new(HashAlgo::Sha256, DEFAULT_NONE_HASH_SEED);
    let keys = [
        ExtraKey::Mm {
            identifier: "img-a".into(),
            offset: 2,
        },
        ExtraKey::Mm {
            identifier: "img-b".into(),
            offset: -70000,
        },
    ];
    let preimage = hex::encode(hasher.block_preimage(None, &[0, 1, 2, 3], Some(&keys)));
    // parent memo 0, tokens tuple memo 1, "mm" memo 2, "img-a" 3, first tuple 4, then BINGET 2.
    let expected_tail = concat!(
        "8c026d6d94",
        "8c05696d672d6194",
        "4b02",
        "8794",
        "6802",
        "8c05696d672d6294",
        "4a90eefeff",
        "8794",
        "8694",
        "8794",
        "2e"
    );
    assert!(preimage.ends_with(expected_tail), "{preimage}");
}

/// Values CPython 3.11 printed for `pickle.dumps` of large or unusual blocks (frame
/// splitting past 64 KiB, LONG1 tokens, LONG1 negative offsets), as lengths and digests of
/// the pre-image, so the expectations stay small.
#[test]
fn pickle_framing_and_long_ints_match_cpython() {
    let mut hasher = BlockHasher::new(HashAlgo::Sha256, DEFAULT_NONE_HASH_SEED);
    let parent = BlockHash::from_bytes(&[0u8; 32]).unwrap();
    let tokens: Vec<u32> = (70_000..90_000).collect();
    let preimage = hasher.block_preimage(Some(&parent), &tokens, None).to_vec();
    assert_eq!(preimage.len(), 100_062);
    assert_eq!(
        hex::encode(Sha256::digest(&preimage)),
        CPYTHON_BIG_FRAME_SHA256
    );

    let tokens = [0u32, 2_147_483_648, u32::MAX];
    let keys = [
        ExtraKey::Mm {
            identifier: "x".into(),
            offset: -5_000_000_000,
        },
        ExtraKey::CacheSalt("x".into()),
    ];
    let preimage = hex::encode(hasher.block_preimage(Some(&parent), &tokens, Some(&keys)));
    assert_eq!(preimage, CPYTHON_LONG_INTS_HEX);
}

const CPYTHON_BIG_FRAME_SHA256: &str =
    "fc2d7ec700ef6c586ed8123cf4cbf7829ebdaf4b13baf883d0b0adf90d5d8706";
const CPYTHON_LONG_INTS_HEX: &str = concat!(
    "8005955d00000000000000432000000000000000000000000000000000000000000000000000000000000000",
    "00944b008a0500000080008a05ffffffff0087948c026d6d948c0178948a05000efad5fe87948c0a63616368",
    "655f73616c749468038694869487942e"
);

/// The stack fast path for blocks without extra keys writes the same pre-image as the
/// general encoders, for every algorithm, tuple-size opcode, integer width and a block
/// too large for it.
#[test]
fn plain_block_fast_path_matches_the_general_encoders() {
    let widths = [
        0u32,
        23,
        24,
        255,
        256,
        65_535,
        65_536,
        128_255,
        i32::MAX as u32,
    ];
    for algo in HashAlgo::ALL {
        let mut hasher = BlockHasher::new(algo, DEFAULT_NONE_HASH_SEED);
        let parent = hasher.hash_block(None, &[1, 2, 3], None);
        for n_tokens in [0usize, 1, 2, 3, 4, 16, 64, 65] {
            for parent in [None, Some(&parent)] {
                let tokens: Vec<u32> = (0..n_tokens).map(|i| widths[i % widths.len()]).collect();
                let fast = hasher.hash_block(parent, &tokens, None);
                let preimage = hasher.block_preimage(parent, &tokens, None).to_vec();
                let general = hasher.digest(&preimage);
                assert_eq!(fast, general, "{algo} {n_tokens} tokens");
            }
        }
        // A token past i32::MAX is a LONG1 in pickle: the general path takes it.
        let big = [u32::MAX, 5];
        let fast = hasher.hash_block(None, &big, None);
        let preimage = hasher.block_preimage(None, &big, None).to_vec();
        assert_eq!(fast, hasher.digest(&preimage), "{algo} big token");
    }
}
