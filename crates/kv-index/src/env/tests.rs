//! Environment parsing: defaults, every value, and one error listing every bad variable.

use super::*;

fn env(pairs: &[(&str, &str)]) -> TestEnv {
    TestEnv(
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect(),
    )
}

#[test]
fn empty_environment_gives_the_defaults() {
    let config = EnvConfig::parse(&env(&[])).unwrap();
    assert_eq!(
        config,
        EnvConfig {
            python_hash_seed: None,
            hash_algo: DEFAULT_HASH_ALGO,
            block_size: DEFAULT_BLOCK_SIZE,
            capacity_per_pod: DEFAULT_CAPACITY_PER_POD,
            topic_filter: DEFAULT_TOPIC_FILTER.to_owned(),
        }
    );
    // An empty PYTHONHASHSEED is unset, as in vLLM.
    let config = EnvConfig::parse(&env(&[(ENV_PYTHONHASHSEED, "")])).unwrap();
    assert_eq!(config.python_hash_seed, None);
}

#[test]
fn every_variable_is_read() {
    let config = EnvConfig::parse(&env(&[
        (ENV_PYTHONHASHSEED, "42"),
        (ENV_HASH_ALGO, "sha256_cbor"),
        (ENV_BLOCK_SIZE, "64"),
        (ENV_CAPACITY_PER_POD, "1000"),
        (ENV_TOPIC_FILTER, ""),
    ]))
    .unwrap();
    assert_eq!(
        config,
        EnvConfig {
            python_hash_seed: Some("42".into()),
            hash_algo: HashAlgo::Sha256Cbor,
            block_size: 64,
            capacity_per_pod: 1000,
            topic_filter: String::new(),
        }
    );
}

#[test]
fn every_bad_variable_is_reported_at_once() {
    let error = EnvConfig::parse(&env(&[
        (ENV_HASH_ALGO, "md5"),
        (ENV_BLOCK_SIZE, "0"),
        (ENV_CAPACITY_PER_POD, "lots"),
    ]))
    .unwrap_err();
    let names: Vec<&str> = error.0.iter().map(|bad| bad.name).collect();
    assert_eq!(names, [ENV_HASH_ALGO, ENV_BLOCK_SIZE, ENV_CAPACITY_PER_POD]);
    let text = error.to_string();
    assert!(
        text.starts_with("invalid environment: KV_INDEX_HASH_ALGO=\"md5\""),
        "{text}"
    );
    assert!(
        text.contains("KV_INDEX_BLOCK_SIZE=\"0\": must be at least 1"),
        "{text}"
    );
}
