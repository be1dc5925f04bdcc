//! `--kv-events-config`: vLLM's `KVEventsConfig`, strict (unknown keys are errors) and with
//! vLLM's defaults, plus `offset_endpoint_port` for data-parallel ranks.

use serde::{Deserialize, Serialize};

use super::Error;

/// Default PUB endpoint.
pub const DEFAULT_ENDPOINT: &str = "tcp://*:5557";
/// Default number of batches kept for replay.
pub const DEFAULT_BUFFER_STEPS: usize = 10_000;
/// Default PUB high-water mark.
pub const DEFAULT_HWM: i32 = 100_000;
/// Default queue bound between the scheduler and the publisher thread.
pub const DEFAULT_MAX_QUEUE_SIZE: usize = 100_000;

/// Which publisher vLLM creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PublisherKind {
    Null,
    Zmq,
}

/// vLLM's `KVEventsConfig`, field for field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KvEventsConfig {
    /// Master switch.
    pub enable_kv_cache_events: bool,
    /// `null` resolves to `zmq` when enabled and `null` otherwise.
    pub publisher: Option<PublisherKind>,
    /// PUB endpoint.
    pub endpoint: String,
    /// ROUTER endpoint for replay; replay is off when `None`.
    pub replay_endpoint: Option<String>,
    /// Number of past batches kept for replay.
    pub buffer_steps: usize,
    /// PUB high-water mark.
    pub hwm: i32,
    /// Queue bound between the scheduler and the publisher thread.
    pub max_queue_size: usize,
    /// First frame of every message.
    pub topic: String,
}

impl Default for KvEventsConfig {
    /// vLLM's defaults (the config of `--kv-events-config '{}'`).
    fn default() -> Self {
        KvEventsConfig {
            enable_kv_cache_events: false,
            publisher: None,
            endpoint: DEFAULT_ENDPOINT.to_owned(),
            replay_endpoint: None,
            buffer_steps: DEFAULT_BUFFER_STEPS,
            hwm: DEFAULT_HWM,
            max_queue_size: DEFAULT_MAX_QUEUE_SIZE,
            topic: String::new(),
        }
    }
}

impl KvEventsConfig {
    /// Parses the flag's JSON; unknown keys are errors, as in vLLM.
    pub fn from_json(json: &str) -> Result<Self, Error> {
        serde_json::from_str(json).map_err(Error::Config)
    }

    /// The publisher after vLLM's resolution of `null`.
    pub fn resolved_publisher(&self) -> PublisherKind {
        match self.publisher {
            Some(kind) => kind,
            None if self.enable_kv_cache_events => PublisherKind::Zmq,
            None => PublisherKind::Null,
        }
    }

    /// The config as vLLM reports it (publisher resolved).
    pub fn resolved(&self) -> Self {
        KvEventsConfig {
            publisher: Some(self.resolved_publisher()),
            ..self.clone()
        }
    }
}

/// `ZmqEventPublisher.offset_endpoint_port`: rank 0 and `tcp://…:0` are unchanged, other
/// TCP ports grow by the rank, `inproc://x` becomes `inproc://x_dpN`, anything else fails.
pub fn offset_endpoint_port(endpoint: &str, data_parallel_rank: i64) -> Result<String, Error> {
    if data_parallel_rank == 0 {
        return Ok(endpoint.to_owned());
    }
    if endpoint.contains("inproc") {
        return Ok(format!("{endpoint}_dp{data_parallel_rank}"));
    }
    if endpoint.contains("tcp") {
        let Some((base, port)) = endpoint.rsplit_once(':') else {
            return Ok(endpoint.to_owned());
        };
        let port: i64 = port
            .parse()
            .map_err(|_| Error::NoPort(endpoint.to_owned()))?;
        if port == 0 {
            return Ok(endpoint.to_owned());
        }
        return Ok(format!("{base}:{}", port + data_parallel_rank));
    }
    Err(Error::IpcWithDataParallel(endpoint.to_owned()))
}
