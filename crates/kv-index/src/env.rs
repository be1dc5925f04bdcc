//! Every environment variable the `kv-index` binary reads, in one place.
//!
//! Each variable has its `ENV_*` name and, where it has one, its `DEFAULT_*` value beside
//! it. [`EnvConfig::parse`] reads them through [`Strings`] (the process environment or a
//! test map), parses every one, logs each bad value and then fails once, listing them all.
//! Command-line flags, when given, override these values.

#[cfg(test)]
mod tests;

#[cfg(test)]
use std::collections::HashMap;

use kv_index::hash::HashAlgo;

/// vLLM's `PYTHONHASHSEED`: the NONE_HASH seed of engine keys, when the engines set it.
pub(crate) const ENV_PYTHONHASHSEED: &str = "PYTHONHASHSEED";
/// vLLM's `--prefix-caching-hash-algo` of the followed engines (engine keys).
pub(crate) const ENV_HASH_ALGO: &str = "KV_INDEX_HASH_ALGO";
pub(crate) const DEFAULT_HASH_ALGO: HashAlgo = HashAlgo::Sha256;
/// vLLM's `--block-size` of the followed engines.
pub(crate) const ENV_BLOCK_SIZE: &str = "KV_INDEX_BLOCK_SIZE";
pub(crate) const DEFAULT_BLOCK_SIZE: usize = 16;
/// Block entries kept per pod.
pub(crate) const ENV_CAPACITY_PER_POD: &str = "KV_INDEX_CAPACITY_PER_POD";
pub(crate) const DEFAULT_CAPACITY_PER_POD: usize = 1 << 20;
/// SUB topic prefix.
pub(crate) const ENV_TOPIC_FILTER: &str = "KV_INDEX_TOPIC_FILTER";
pub(crate) const DEFAULT_TOPIC_FILTER: &str = kv_index::subscriber::DEFAULT_TOPIC_FILTER;

/// A source of environment strings: the process environment or a test map.
pub(crate) trait Strings {
    fn get(&self, name: &str) -> Option<String>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ProcessEnv;

impl Strings for ProcessEnv {
    #[allow(clippy::disallowed_methods)] // the one place the binary reads its environment
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// A fixed map, for tests.
#[cfg(test)]
#[derive(Debug, Clone, Default)]
pub(crate) struct TestEnv(pub(crate) HashMap<String, String>);

#[cfg(test)]
impl Strings for TestEnv {
    fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

/// One unusable variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}={value:?}: {reason}")]
pub(crate) struct BadVar {
    pub(crate) name: &'static str,
    pub(crate) value: String,
    pub(crate) reason: String,
}

/// Every unusable variable of one parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid environment: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub(crate) struct EnvError(pub(crate) Vec<BadVar>);

/// What the binary takes from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EnvConfig {
    /// `PYTHONHASHSEED` when set and non-empty; `None` means vLLM's default seed.
    pub(crate) python_hash_seed: Option<String>,
    /// Hash algorithm of engine keys.
    pub(crate) hash_algo: HashAlgo,
    /// Tokens per block.
    pub(crate) block_size: usize,
    /// Entries kept per pod.
    pub(crate) capacity_per_pod: usize,
    /// SUB topic prefix.
    pub(crate) topic_filter: String,
}

impl EnvConfig {
    /// Reads and parses every variable; all bad ones are logged and returned together.
    pub(crate) fn parse(strings: &dyn Strings) -> Result<EnvConfig, EnvError> {
        let mut bad = Vec::new();
        let nonempty = |name: &str| strings.get(name).filter(|value| !value.is_empty());
        let mut parse = |name: &'static str, check: &dyn Fn(&str) -> Result<(), String>| {
            let value = nonempty(name)?;
            match check(&value) {
                Ok(()) => Some(value),
                Err(reason) => {
                    tracing::error!(
                        variable = name,
                        value,
                        reason,
                        "Invalid environment variable."
                    );
                    bad.push(BadVar {
                        name,
                        value,
                        reason,
                    });
                    None
                }
            }
        };
        let positive = |value: &str| match value.parse::<usize>() {
            Ok(0) => Err("must be at least 1".to_owned()),
            Ok(_) => Ok(()),
            Err(error) => Err(error.to_string()),
        };
        let hash_algo = parse(ENV_HASH_ALGO, &|value| {
            value
                .parse::<HashAlgo>()
                .map(|_| ())
                .map_err(|error| error.to_string())
        })
        .and_then(|value| value.parse().ok())
        .unwrap_or(DEFAULT_HASH_ALGO);
        let block_size = parse(ENV_BLOCK_SIZE, &positive)
            .and_then(|value| value.parse().ok())
            .unwrap_or(DEFAULT_BLOCK_SIZE);
        let capacity_per_pod = parse(ENV_CAPACITY_PER_POD, &positive)
            .and_then(|value| value.parse().ok())
            .unwrap_or(DEFAULT_CAPACITY_PER_POD);
        let topic_filter = strings
            .get(ENV_TOPIC_FILTER)
            .unwrap_or_else(|| DEFAULT_TOPIC_FILTER.to_owned());
        let python_hash_seed = nonempty(ENV_PYTHONHASHSEED);
        if !bad.is_empty() {
            return Err(EnvError(bad));
        }
        Ok(EnvConfig {
            python_hash_seed,
            hash_algo,
            block_size,
            capacity_per_pod,
            topic_filter,
        })
    }
}
