//! Unit tests of the P/D configuration, the parameters' parsing and the block check.

use clap::Parser;
use serde_json::json;

use super::{side_channel, *};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    pd: PdArgs,
}

fn parse(args: &[&str], kv: Option<&str>) -> Result<PdConfig, (&'static str, String)> {
    let cli = Cli::try_parse_from(std::iter::once("t").chain(args.iter().copied())).unwrap();
    PdConfig::from_args(&cli.pd, kv, None, None)
}

/// Flags, `--kv-transfer-config`, and the role or the flag at fault.
type Case<'a> = (
    &'a [&'a str],
    Option<&'a str>,
    Result<Option<KvRole>, &'a str>,
);

#[test]
fn kv_transfer_configs_parse_as_vllm_takes_them() {
    let cases: &[Case] = &[
        (&[], None, Ok(None)),
        (
            &[],
            Some(r#"{"kv_connector":"NixlConnector","kv_role":"kv_producer"}"#),
            Ok(Some(KvRole::KvProducer)),
        ),
        (
            &[],
            Some(r#"{"kv_connector":"NixlConnector","kv_role":"kv_consumer"}"#),
            Ok(Some(KvRole::KvConsumer)),
        ),
        (
            &[],
            Some(r#"{"kv_connector":"NixlConnector", "kv_role":"kv_both"}"#),
            Ok(Some(KvRole::KvBoth)),
        ),
        (
            &[],
            Some(
                r#"{"kv_connector":"NixlConnector","kv_role":"kv_producer","kv_connector_extra_config":{"kv_lease_duration":2,"backends":["UCX"]}}"#,
            ),
            Ok(Some(KvRole::KvProducer)),
        ),
        (
            &[],
            Some(r#"{"kv_connector":"NixlConnector"}"#),
            Err("kv-transfer-config"),
        ),
        (
            &[],
            Some(r#"{"kv_role":"kv_producer","nope":1}"#),
            Err("kv-transfer-config"),
        ),
        (
            &[],
            Some(r#"{"kv_connector":"NixlConnector","kv_role":"producer"}"#),
            Err("kv-transfer-config"),
        ),
        (
            &[],
            Some(
                r#"{"kv_connector":"NixlConnector","kv_role":"kv_producer","kv_connector_extra_config":{"kv_lease_duration":-1}}"#,
            ),
            Err("kv-transfer-config"),
        ),
        (&["--kv-cache-dtype", "int3"], None, Err("kv-cache-dtype")),
        (
            &["--tensor-parallel-size", "0"],
            None,
            Err("tensor-parallel-size"),
        ),
        (
            &["--kv-transfer-bandwidth-gbps", "0"],
            None,
            Err("kv-transfer-bandwidth-gbps"),
        ),
        (
            &["--kv-transfer-latency=-1"],
            None,
            Err("kv-transfer-latency"),
        ),
    ];
    for (flags, kv, expected) in cases {
        let got = parse(flags, *kv)
            .map(|config| config.transfer.and_then(|t| t.kv_role))
            .map_err(|(flag, _)| flag);
        assert_eq!(&got, expected, "flags {flags:?}, config {kv:?}");
    }
    let leased = parse(
        &[],
        Some(r#"{"kv_connector":"NixlConnector","kv_role":"kv_producer","kv_connector_extra_config":{"kv_lease_duration":2.5}}"#),
    )
    .unwrap();
    assert_eq!(leased.lease, Duration::from_millis(2500));
    assert_eq!(parse(&[], None).unwrap().lease, Duration::from_secs(30));
}

#[test]
fn bytes_per_token_follow_the_model_shape() {
    // (layers, kv heads, head size, dtype, tp) -> bytes per token on one worker
    let cases = [
        ((24, 2, 64, "auto", 1), 24 * 2 * 64 * 2 * 2),
        ((32, 8, 128, "auto", 1), 131_072), // Llama-3-8B, bf16
        ((32, 8, 128, "fp8", 1), 65_536),
        ((32, 8, 128, "auto", 4), 32_768), // two KV heads per rank
        ((80, 8, 128, "auto", 16), 80 * 128 * 2 * 2), // one replicated head per rank
        ((2, 1, 4, "float32", 1), 2 * 4 * 2 * 4),
    ];
    for ((layers, heads, head, dtype, tp), bytes) in cases {
        let args = [
            "--model-num-layers".to_owned(),
            layers.to_string(),
            "--model-num-kv-heads".to_owned(),
            heads.to_string(),
            "--model-head-size".to_owned(),
            head.to_string(),
            "--kv-cache-dtype".to_owned(),
            dtype.to_owned(),
            "--tensor-parallel-size".to_owned(),
            tp.to_string(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let config = parse(&args, None).unwrap();
        assert_eq!(config.shape.bytes_per_token(), bytes, "{args:?}");
    }
}

#[test]
fn remote_params_take_nested_and_flat_block_lists() {
    let base = json!({
        "do_remote_prefill": true, "remote_engine_id": "e", "remote_request_id": "cmpl-x-0-abcd0123",
        "remote_host": "10.0.0.7", "remote_port": 5600, "remote_num_tokens": 40, "tp_size": 1,
    });
    let with = |blocks: Value| {
        let mut params = base.clone();
        params["remote_block_ids"] = blocks;
        RemoteParams::parse(&params)
    };
    assert_eq!(with(json!([[4, 5, 6]])).unwrap().block_ids, vec![4, 5, 6]);
    assert_eq!(with(json!([4, 5])).unwrap().block_ids, vec![4, 5]);
    assert_eq!(with(json!([[1], [2, 3]])).unwrap().block_ids, vec![1, 2, 3]);
    let parsed = with(json!([[1]])).unwrap();
    assert_eq!(
        (parsed.host.as_str(), parsed.port, parsed.num_tokens),
        ("10.0.0.7", 5600, Some(40))
    );
    assert!(with(json!("1,2")).is_err());
    assert!(with(json!([[-1]])).is_err());
    for key in [
        "remote_block_ids",
        "remote_engine_id",
        "remote_request_id",
        "remote_host",
        "remote_port",
    ] {
        let mut params = base.clone();
        params["remote_block_ids"] = json!([[1]]);
        params.as_object_mut().unwrap().remove(key);
        let error = RemoteParams::parse(&params).unwrap_err();
        assert!(error.contains(key), "{error}");
    }
}

#[test]
fn block_check_finds_a_corrupt_byte_anywhere() {
    let request = side_channel::ReadRequest {
        remote_request_id: "r".into(),
        block_ids: vec![7, 300, 9],
        block_bytes: 5,
    };
    let mut data: Vec<u8> = request
        .block_ids
        .iter()
        .flat_map(|&id| std::iter::repeat_n(side_channel::fill_byte(id), 5))
        .collect();
    // Whole, and in uneven chunks that straddle blocks.
    assert!(side_channel::verify(&data, 0, &request).is_ok());
    for split in [1, 4, 5, 6, 11, 14] {
        assert!(side_channel::verify(&data[..split], 0, &request).is_ok());
        assert!(side_channel::verify(&data[split..], split as u64, &request).is_ok());
    }
    for position in 0..data.len() {
        data[position] ^= 0xff;
        assert!(
            side_channel::verify(&data, 0, &request).is_err(),
            "byte {position} corrupt"
        );
        data[position] ^= 0xff;
    }
}
