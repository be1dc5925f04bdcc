//! Every environment variable the simulator reads, in one place.
//!
//! vLLM itself reads `PYTHONHASHSEED` (the NONE_HASH seed), the `OTEL_*` variables and
//! `VLLM_NIXL_SIDE_CHANNEL_*`; the pod identity comes from the Downward API as in llm-d's charts.

use std::collections::HashMap;

/// The NONE_HASH seed of the prefix-cache hash chain, as vLLM reads it.
pub const ENV_PYTHONHASHSEED: &str = "PYTHONHASHSEED";
/// The pod's name, for logs and the KV-events topic.
pub const ENV_POD_NAME: &str = "POD_NAME";
/// The pod's IP, for the KV-events topic and the NIXL side channel.
pub const ENV_POD_IP: &str = "POD_IP";
/// The NIXL side channel's host: bound by a KV producer and sent as `remote_host`.
pub const ENV_VLLM_NIXL_SIDE_CHANNEL_HOST: &str = "VLLM_NIXL_SIDE_CHANNEL_HOST";
/// The NIXL side channel's port (vLLM's default 5600; 0 binds an ephemeral port).
pub const ENV_VLLM_NIXL_SIDE_CHANNEL_PORT: &str = "VLLM_NIXL_SIDE_CHANNEL_PORT";
/// `1` enables vLLM's dev-mode routes such as `POST /reset_prefix_cache`.
pub const ENV_VLLM_SERVER_DEV_MODE: &str = "VLLM_SERVER_DEV_MODE";

/// A source of environment strings: the process environment or a test map.
pub trait Strings {
    fn get(&self, name: &str) -> Option<String>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Strings for ProcessEnv {
    #[allow(clippy::disallowed_methods)] // the one place the simulator reads its environment
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// A fixed map, for tests.
#[derive(Debug, Clone, Default)]
pub struct TestEnv(pub HashMap<String, String>);

impl Strings for TestEnv {
    fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

/// Values the simulator takes from its environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvValues {
    pub hash_seed: Option<String>,
    pub pod_name: Option<String>,
    pub pod_ip: Option<String>,
    pub dev_mode: bool,
    pub nixl_side_channel_host: Option<String>,
    pub nixl_side_channel_port: Option<String>,
}

impl EnvValues {
    pub fn read(strings: &dyn Strings) -> EnvValues {
        let nonempty = |name| strings.get(name).filter(|value: &String| !value.is_empty());
        EnvValues {
            hash_seed: nonempty(ENV_PYTHONHASHSEED),
            pod_name: nonempty(ENV_POD_NAME),
            pod_ip: nonempty(ENV_POD_IP),
            dev_mode: nonempty(ENV_VLLM_SERVER_DEV_MODE).is_some_and(|v| v == "1"),
            nixl_side_channel_host: nonempty(ENV_VLLM_NIXL_SIDE_CHANNEL_HOST),
            nixl_side_channel_port: nonempty(ENV_VLLM_NIXL_SIDE_CHANNEL_PORT),
        }
    }
}
