//! Prefill/decode disaggregation the way vLLM's NixlConnector (pull mode) does it, with real
//! bytes on a real socket instead of RDMA.
//!
//! * `--kv-transfer-config` is parsed as vLLM's `KVTransferConfig` (unknown keys refused).
//! * The producer role (`kv_producer`, or `kv_both`) answers a request carrying
//!   `kv_transfer_params.do_remote_decode=true` with vLLM's `kv_transfer_params` object, keeps
//!   the prompt's KV blocks allocated in the engine under a lease of `kv_lease_duration`
//!   seconds, and serves those blocks on its side channel (`VLLM_NIXL_SIDE_CHANNEL_HOST`/
//!   `_PORT`, a TCP listener; see [`side_channel`] for the framing).
//! * The consumer role (`kv_consumer`, or `kv_both`), given `do_remote_prefill=true`, pulls the
//!   prompt's blocks from that side channel *before* the request reaches the engine, then
//!   notifies the producer, which frees the blocks. The bytes per token come from the model
//!   shape (layers × KV heads per TP rank × head size × 2 × dtype bytes), so a transfer moves as
//!   many bytes as one vLLM worker would read. An optional shaper (latency, bandwidth) models
//!   the link (TCP versus RDMA). The engine then treats the pulled tokens as external (no
//!   prefill compute), and the request's TTFT, measured from arrival, includes the pull.
//! * `vllm:nixl_*` families are registered when a NIXL connector is configured and observed
//!   from those transfers: transfer and post time, bytes and descriptors per transfer on the
//!   consumer; failed transfers and notifications on the consumer; expired leases and
//!   notifications after expiry on the producer.
//!
//! Not modelled: lease heartbeats (the pull happens right away, well inside a lease), partial
//! pulls after a local prefix hit on the decode side (the consumer always pulls every remote
//! block), push mode, and vLLM's ZMQ handshake bytes (our side channel has its own handshake
//! that checks the same compatibility facts).

pub(crate) mod side_channel;
#[cfg(test)]
mod tests;

use std::{collections::HashMap, net::SocketAddr, sync::Arc, time::Duration};

use clap::Args;
use metrics_schema::{MetricDef, vllm};
use parking_lot::Mutex;
use prometheus::{Counter, Gauge, Histogram, Registry};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    config::Config,
    engine::{BlockId, EngineHandle, FinishReason, Finished},
};

/// Defaults of the model shape: Qwen2.5-0.5B's (24 layers, 2 KV heads, head size 64), so the
/// default transfer is 12 KiB per token, small enough for laptops and CI.
pub const DEFAULT_NUM_LAYERS: u32 = 24;
pub const DEFAULT_NUM_KV_HEADS: u32 = 2;
pub const DEFAULT_HEAD_SIZE: u32 = 64;
/// vLLM's default `VLLM_NIXL_SIDE_CHANNEL_HOST` and `VLLM_NIXL_SIDE_CHANNEL_PORT`.
pub const DEFAULT_SIDE_CHANNEL_HOST: &str = "localhost";
pub const DEFAULT_SIDE_CHANNEL_PORT: u16 = 5600;
/// NIXL's `kv_lease_duration` default, in seconds.
pub const DEFAULT_KV_LEASE_SECONDS: f64 = 30.0;

/// Model-shape and link flags of the P/D roles (simulator-only; vLLM reads the shape from the
/// model's config).
#[derive(Debug, Clone, Args)]
pub struct PdArgs {
    /// Transformer layers of the simulated model (bytes per token of a KV transfer).
    #[arg(long, default_value_t = DEFAULT_NUM_LAYERS)]
    pub model_num_layers: u32,
    /// KV heads of the simulated model.
    #[arg(long, default_value_t = DEFAULT_NUM_KV_HEADS)]
    pub model_num_kv_heads: u32,
    /// Head size of the simulated model.
    #[arg(long, default_value_t = DEFAULT_HEAD_SIZE)]
    pub model_head_size: u32,
    /// vLLM's `--kv-cache-dtype`: auto (2 bytes), bfloat16, float16, fp8, fp8_e4m3, fp8_e5m2,
    /// float32.
    #[arg(long, default_value = "auto")]
    pub kv_cache_dtype: String,
    /// vLLM's `--tensor-parallel-size`: one worker's share of the KV heads is transferred.
    #[arg(long, default_value_t = 1)]
    pub tensor_parallel_size: u32,
    /// Link bandwidth of KV pulls in Gbit/s (unset: as fast as loopback TCP goes).
    #[arg(long)]
    pub kv_transfer_bandwidth_gbps: Option<f64>,
    /// One-way link latency in ms added to every KV pull.
    #[arg(long, default_value_t = 0.0)]
    pub kv_transfer_latency: f64,
}

/// vLLM's `kv_role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KvRole {
    KvProducer,
    KvConsumer,
    KvBoth,
}

impl KvRole {
    fn produces(self) -> bool {
        matches!(self, KvRole::KvProducer | KvRole::KvBoth)
    }

    fn consumes(self) -> bool {
        matches!(self, KvRole::KvConsumer | KvRole::KvBoth)
    }
}

/// vLLM's `kv_load_failure_policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadFailurePolicy {
    /// The request fails (503 `ServiceUnavailableError`, as vLLM's retryable KV-load failure).
    #[default]
    Fail,
    /// The decode engine computes the prompt itself.
    Recompute,
}

/// vLLM's `KVTransferConfig` (`vllm/config/kv_transfer.py`); extra keys are refused as vLLM
/// refuses them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KvTransferConfig {
    pub kv_connector: Option<String>,
    pub kv_role: Option<KvRole>,
    pub engine_id: Option<String>,
    #[serde(default)]
    pub kv_buffer_device: Option<String>,
    #[serde(default)]
    pub kv_buffer_size: Option<f64>,
    #[serde(default)]
    pub kv_rank: Option<u32>,
    #[serde(default)]
    pub kv_parallel_size: Option<u32>,
    #[serde(default)]
    pub kv_ip: Option<String>,
    #[serde(default)]
    pub kv_port: Option<u16>,
    /// Connector-specific keys; vLLM passes the dict through, so unknown keys are kept.
    #[serde(default)]
    pub kv_connector_extra_config: serde_json::Map<String, Value>,
    #[serde(default)]
    pub kv_connector_module_path: Option<String>,
    #[serde(default)]
    pub enable_permute_local_kv: bool,
    #[serde(default)]
    pub kv_load_failure_policy: LoadFailurePolicy,
}

/// The connectors that behave as NIXL pull mode.
const NIXL_CONNECTORS: &[&str] = &["NixlConnector", "NixlPullConnector"];

/// Bytes per element of `--kv-cache-dtype`.
pub fn dtype_bytes(kv_cache_dtype: &str) -> Option<u32> {
    Some(match kv_cache_dtype {
        "auto" | "bfloat16" | "float16" | "half" => 2,
        "fp8" | "fp8_e4m3" | "fp8_e5m2" | "fp8_inc" | "fp8_ds_mla" => 1,
        "float32" | "float" => 4,
        _ => return None,
    })
}

/// The model shape that decides how many KV bytes one token costs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelShape {
    pub num_layers: u32,
    pub num_kv_heads: u32,
    pub head_size: u32,
    pub dtype_bytes: u32,
    pub tensor_parallel_size: u32,
}

impl ModelShape {
    /// KV bytes of one token on one TP worker: layers × KV heads per rank × head size × 2 (K
    /// and V) × dtype bytes. With fewer KV heads than ranks, each rank holds one replicated
    /// head, as vLLM does.
    pub fn bytes_per_token(&self) -> u64 {
        let heads_per_rank = (self.num_kv_heads / self.tensor_parallel_size.max(1)).max(1);
        u64::from(self.num_layers)
            * u64::from(heads_per_rank)
            * u64::from(self.head_size)
            * 2
            * u64::from(self.dtype_bytes)
    }

    /// What both sides of a transfer must agree on (vLLM hashes the same facts into its
    /// `compatibility_hash`; TP may differ).
    fn compatibility(&self, model: &str, block_size: u32) -> String {
        format!(
            "model={model};layers={};kv_heads={};head_size={};dtype_bytes={};block_size={block_size}",
            self.num_layers, self.num_kv_heads, self.head_size, self.dtype_bytes
        )
    }
}

/// The link model of KV pulls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shaper {
    /// Added once per transfer, before the first byte.
    pub latency: Duration,
    /// Bytes per second; `None` is unshaped.
    pub bytes_per_second: Option<f64>,
}

/// The P/D part of the simulator's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct PdConfig {
    /// The parsed `--kv-transfer-config`, when one is given.
    pub transfer: Option<KvTransferConfig>,
    pub shape: ModelShape,
    pub shaper: Shaper,
    /// `VLLM_NIXL_SIDE_CHANNEL_HOST`: bound by the producer and advertised as `remote_host`.
    pub side_channel_host: String,
    /// `VLLM_NIXL_SIDE_CHANNEL_PORT`; 0 binds an ephemeral port (tests).
    pub side_channel_port: u16,
    /// `kv_connector_extra_config.kv_lease_duration`.
    pub lease: Duration,
}

impl PdConfig {
    /// Builds the P/D configuration; errors name the flag at fault.
    pub fn from_args(
        args: &PdArgs,
        kv_transfer_config: Option<&str>,
        side_channel_host: Option<&str>,
        side_channel_port: Option<&str>,
    ) -> Result<PdConfig, (&'static str, String)> {
        let transfer = kv_transfer_config
            .map(|json| {
                serde_json::from_str::<KvTransferConfig>(json)
                    .map_err(|err| ("kv-transfer-config", err.to_string()))
            })
            .transpose()?;
        if let Some(transfer) = &transfer
            && transfer.kv_connector.is_some()
            && transfer.kv_role.is_none()
        {
            return Err((
                "kv-transfer-config",
                "kv_role is required when kv_connector is set".into(),
            ));
        }
        let lease = match transfer
            .as_ref()
            .and_then(|t| t.kv_connector_extra_config.get("kv_lease_duration"))
        {
            None => DEFAULT_KV_LEASE_SECONDS,
            Some(value) => value
                .as_f64()
                .filter(|secs| secs.is_finite() && *secs > 0.0)
                .ok_or((
                    "kv-transfer-config",
                    format!("kv_lease_duration {value} is not a positive number of seconds"),
                ))?,
        };
        let dtype_bytes = dtype_bytes(&args.kv_cache_dtype).ok_or((
            "kv-cache-dtype",
            format!("unknown dtype {:?}", args.kv_cache_dtype),
        ))?;
        for (flag, value) in [
            ("model-num-layers", args.model_num_layers),
            ("model-num-kv-heads", args.model_num_kv_heads),
            ("model-head-size", args.model_head_size),
            ("tensor-parallel-size", args.tensor_parallel_size),
        ] {
            if value == 0 {
                return Err((flag, "must be at least 1".into()));
            }
        }
        let bytes_per_second = match args.kv_transfer_bandwidth_gbps {
            None => None,
            Some(gbps) if gbps.is_finite() && gbps > 0.0 => Some(gbps * 1e9 / 8.0),
            Some(gbps) => {
                return Err((
                    "kv-transfer-bandwidth-gbps",
                    format!("{gbps} is not a positive bandwidth"),
                ));
            }
        };
        if !(args.kv_transfer_latency.is_finite() && args.kv_transfer_latency >= 0.0) {
            return Err((
                "kv-transfer-latency",
                format!(
                    "{} is not a non-negative number of ms",
                    args.kv_transfer_latency
                ),
            ));
        }
        let side_channel_port = match side_channel_port {
            None => DEFAULT_SIDE_CHANNEL_PORT,
            Some(port) => port.trim().parse().map_err(|_| {
                (
                    "kv-transfer-config",
                    format!("VLLM_NIXL_SIDE_CHANNEL_PORT={port:?} is not a port"),
                )
            })?,
        };
        Ok(PdConfig {
            transfer,
            shape: ModelShape {
                num_layers: args.model_num_layers,
                num_kv_heads: args.model_num_kv_heads,
                head_size: args.model_head_size,
                dtype_bytes,
                tensor_parallel_size: args.tensor_parallel_size,
            },
            shaper: Shaper {
                latency: Duration::from_secs_f64(args.kv_transfer_latency / 1000.0),
                bytes_per_second,
            },
            side_channel_host: side_channel_host
                .unwrap_or(DEFAULT_SIDE_CHANNEL_HOST)
                .to_owned(),
            side_channel_port,
            lease: Duration::from_secs_f64(lease),
        })
    }

    /// The role when a NIXL connector is configured.
    fn nixl_role(&self) -> Option<KvRole> {
        let transfer = self.transfer.as_ref()?;
        let connector = transfer.kv_connector.as_deref()?;
        if !NIXL_CONNECTORS.contains(&connector) {
            return None;
        }
        transfer.kv_role
    }
}

/// Errors starting the P/D roles.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kv connector {0:?} is not simulated (NixlConnector and NixlPullConnector are)")]
    UnsupportedConnector(String),
    #[error("nixl side channel on {host}:{port}: cannot bind")]
    Bind {
        host: String,
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("nixl metrics registration")]
    Metrics(#[from] prometheus::Error),
}

/// Why a pull failed; each is one `vllm:nixl_num_failed_transfers`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PullError {
    #[error("kv_transfer_params: {0}")]
    Params(String),
    #[error("side channel {addr}: {source}")]
    SideChannel {
        addr: String,
        #[source]
        source: side_channel::Error,
    },
}

/// The `vllm:nixl_*` handles, bound to this engine's labels.
#[derive(Clone)]
pub(crate) struct NixlMetrics {
    xfer_time: Histogram,
    post_time: Histogram,
    bytes_transferred: Histogram,
    num_descriptors: Histogram,
    failed_transfers: Counter,
    failed_notifications: Counter,
    pub(crate) kv_expired_reqs: Counter,
    pub(crate) notifications_after_expiry: Counter,
    fetch_in_progress: Option<Gauge>,
}

/// Label values of `def` in its declared order, from `pairs`.
fn label_values<'a>(def: &MetricDef, pairs: &[(&str, &'a str)]) -> Vec<&'a str> {
    def.labels
        .iter()
        .map(|label| {
            pairs
                .iter()
                .find(|(name, _)| *name == label.name)
                .map_or("", |(_, value)| *value)
        })
        .collect()
}

impl NixlMetrics {
    fn register(registry: &Registry, model: &str, consumer: bool) -> prometheus::Result<Self> {
        let bound = [("model_name", model), ("engine", "0")];
        let histogram = |def: &MetricDef| -> prometheus::Result<Histogram> {
            Ok(def
                .register_histogram(registry, 0)?
                .with_label_values(&label_values(def, &bound)))
        };
        let counter = |def: &MetricDef| -> prometheus::Result<Counter> {
            Ok(def
                .register_counter(registry)?
                .with_label_values(&label_values(def, &bound)))
        };
        // vLLM registers the fetch-stage gauge only on a kv_consumer.
        let fetch_in_progress = if consumer {
            let def = &vllm::NUM_REQUESTS_KV_FETCH_BY_STAGE;
            let family = def.register_gauge(registry)?;
            let mut in_progress = None;
            for stage in ["waiting_to_start", "in_progress", "completed_waiting"] {
                let pairs = [bound[0], bound[1], ("stage", stage)];
                let gauge = family.with_label_values(&label_values(def, &pairs));
                if stage == "in_progress" {
                    in_progress = Some(gauge);
                }
            }
            in_progress
        } else {
            None
        };
        Ok(NixlMetrics {
            xfer_time: histogram(&vllm::NIXL_XFER_TIME_SECONDS)?,
            post_time: histogram(&vllm::NIXL_POST_TIME_SECONDS)?,
            bytes_transferred: histogram(&vllm::NIXL_BYTES_TRANSFERRED)?,
            num_descriptors: histogram(&vllm::NIXL_NUM_DESCRIPTORS)?,
            failed_transfers: counter(&vllm::NIXL_NUM_FAILED_TRANSFERS_TOTAL)?,
            failed_notifications: counter(&vllm::NIXL_NUM_FAILED_NOTIFICATIONS_TOTAL)?,
            kv_expired_reqs: counter(&vllm::NIXL_NUM_KV_EXPIRED_REQS_TOTAL)?,
            notifications_after_expiry: counter(&vllm::NIXL_NUM_NOTIFICATIONS_AFTER_EXPIRY_TOTAL)?,
            fetch_in_progress,
        })
    }
}

/// Blocks a producer holds for a consumer.
#[derive(Debug, Clone)]
pub(crate) struct Lease {
    pub(crate) blocks: Vec<BlockId>,
    pub(crate) expires: tokio::time::Instant,
}

/// What both roles share with the side channel's tasks.
pub(crate) struct Shared {
    pub(crate) engine: EngineHandle,
    pub(crate) metrics: NixlMetrics,
    pub(crate) engine_id: String,
    pub(crate) compatibility: String,
    pub(crate) leases: Mutex<HashMap<String, Lease>>,
    pub(crate) lease_added: tokio::sync::Notify,
}

impl Shared {
    /// Frees a lease's blocks in the engine; false when the id is not (or no longer) held.
    pub(crate) fn release(&self, remote_request_id: &str) -> bool {
        let lease = self.leases.lock().remove(remote_request_id);
        match lease {
            Some(lease) => {
                self.engine.release_blocks(lease.blocks);
                true
            }
            None => false,
        }
    }
}

/// The P/D roles of one simulator.
pub(crate) struct Pd {
    role: KvRole,
    shared: Arc<Shared>,
    shape: ModelShape,
    shaper: Shaper,
    policy: LoadFailurePolicy,
    lease: Duration,
    block_size: u32,
    tp_size: u32,
    advertised_host: String,
    side_channel: Option<SocketAddr>,
    pool: side_channel::Pool,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Pd {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// How one request takes part in P/D, read from its `kv_transfer_params`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Transfer {
    /// No P/D (no params, no NIXL connector, or a role that does not apply).
    None,
    /// Prefill for a remote decode: hold the blocks and answer with `kv_transfer_params`.
    RemoteDecode,
    /// Decode of a remote prefill: pull the blocks first.
    RemotePrefill(RemoteParams),
}

/// What the consumer reads from the producer's `kv_transfer_params`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RemoteParams {
    pub(crate) block_ids: Vec<BlockId>,
    pub(crate) engine_id: String,
    pub(crate) request_id: String,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) num_tokens: Option<u32>,
}

impl RemoteParams {
    /// Reads the required keys; `Err` names what is missing (vLLM then skips the transfer).
    pub(crate) fn parse(params: &Value) -> Result<RemoteParams, String> {
        let field = |key: &str| params.get(key).filter(|v| !v.is_null());
        let required = |key: &'static str| field(key).ok_or_else(|| format!("{key} is missing"));
        // One list per KV-cache group (vLLM 0.33), or a flat list (older releases).
        let block_ids = match required("remote_block_ids")? {
            Value::Array(items) => {
                let mut ids = Vec::new();
                for item in items {
                    match item {
                        Value::Array(group) => {
                            for id in group {
                                ids.push(block_id(id)?);
                            }
                        }
                        id => ids.push(block_id(id)?),
                    }
                }
                ids
            }
            other => return Err(format!("remote_block_ids {other} is not a list")),
        };
        let string = |key: &'static str| -> Result<String, String> {
            required(key)?
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("{key} is not a string"))
        };
        let port = required("remote_port")?
            .as_u64()
            .and_then(|port| u16::try_from(port).ok())
            .ok_or_else(|| "remote_port is not a port".to_owned())?;
        Ok(RemoteParams {
            block_ids,
            engine_id: string("remote_engine_id")?,
            request_id: string("remote_request_id")?,
            host: string("remote_host")?,
            port,
            num_tokens: field("remote_num_tokens")
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok()),
        })
    }
}

fn block_id(value: &Value) -> Result<BlockId, String> {
    value
        .as_u64()
        .and_then(|id| BlockId::try_from(id).ok())
        .ok_or_else(|| format!("block id {value} is not a block id"))
}

/// What a request's P/D part tells the engine submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Prepared {
    /// Prompt tokens whose KV was pulled (no prefill compute).
    pub(crate) external_tokens: u32,
    /// Keep the prompt's blocks after finishing (the producer's lease).
    pub(crate) hold_blocks: bool,
}

impl Pd {
    /// Starts the roles `config` asks for; `None` without a NIXL connector.
    pub(crate) async fn start(
        config: &Config,
        engine: EngineHandle,
        registry: &Registry,
    ) -> Result<Option<Pd>, Error> {
        let pd = &config.pd;
        let Some(transfer) = &pd.transfer else {
            return Ok(None);
        };
        let Some(connector) = transfer.kv_connector.as_deref() else {
            return Ok(None);
        };
        let Some(role) = pd.nixl_role() else {
            return Err(Error::UnsupportedConnector(connector.to_owned()));
        };
        let metrics = NixlMetrics::register(registry, config.served_name(), role.consumes())?;
        let engine_id = transfer
            .engine_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let shared = Arc::new(Shared {
            engine,
            metrics,
            engine_id,
            compatibility: pd.shape.compatibility(&config.model, config.block_size),
            leases: Mutex::new(HashMap::new()),
            lease_added: tokio::sync::Notify::new(),
        });
        let mut tasks = Vec::new();
        let mut side_channel = None;
        if role.produces() {
            let listener = tokio::net::TcpListener::bind((
                pd.side_channel_host.as_str(),
                pd.side_channel_port,
            ))
            .await
            .map_err(|source| Error::Bind {
                host: pd.side_channel_host.clone(),
                port: pd.side_channel_port,
                source,
            })?;
            let addr = listener.local_addr().map_err(|source| Error::Bind {
                host: pd.side_channel_host.clone(),
                port: pd.side_channel_port,
                source,
            })?;
            tracing::info!(%addr, engine_id = %shared.engine_id, "NIXL side channel listening.");
            side_channel = Some(addr);
            tasks.push(tokio::spawn(side_channel::serve(listener, shared.clone())));
            tasks.push(tokio::spawn(expire_leases(shared.clone())));
        }
        Ok(Some(Pd {
            role,
            shared,
            shape: pd.shape.clone(),
            shaper: pd.shaper,
            policy: transfer.kv_load_failure_policy,
            lease: pd.lease,
            block_size: config.block_size,
            tp_size: pd.shape.tensor_parallel_size,
            advertised_host: pd.side_channel_host.clone(),
            side_channel,
            pool: side_channel::Pool::default(),
            tasks,
        }))
    }

    /// The producer's side-channel address, when it listens.
    pub(crate) fn side_channel_addr(&self) -> Option<SocketAddr> {
        self.side_channel
    }

    /// Reads the request's `kv_transfer_params` against this server's role.
    pub(crate) fn classify(&self, body: &Value) -> Transfer {
        let Some(params) = body.get("kv_transfer_params").filter(|v| v.is_object()) else {
            return Transfer::None;
        };
        let flag = |key: &str| params.get(key).and_then(Value::as_bool).unwrap_or(false);
        if flag("do_remote_decode") && self.role.produces() {
            return Transfer::RemoteDecode;
        }
        if flag("do_remote_prefill") && self.role.consumes() {
            return match RemoteParams::parse(params) {
                Ok(remote) => Transfer::RemotePrefill(remote),
                Err(reason) => {
                    // vLLM skips the transfer with a warning and prefills locally.
                    tracing::warn!(%reason, "Incomplete kv_transfer_params; prefilling locally.");
                    Transfer::None
                }
            };
        }
        Transfer::None
    }

    /// Runs the consumer's pull (if any) before the request reaches the engine.
    /// `Err` carries the message of the 503 vLLM answers under the `fail` policy.
    pub(crate) async fn prepare(
        &self,
        transfer: &Transfer,
        prompt_len: u32,
    ) -> Result<Prepared, String> {
        match transfer {
            Transfer::None => Ok(Prepared::default()),
            Transfer::RemoteDecode => Ok(Prepared {
                external_tokens: 0,
                hold_blocks: true,
            }),
            Transfer::RemotePrefill(remote) => match self.pull(remote).await {
                Ok(tokens) => Ok(Prepared {
                    external_tokens: tokens.min(prompt_len),
                    hold_blocks: false,
                }),
                Err(error) => {
                    self.shared.metrics.failed_transfers.inc();
                    tracing::warn!(%error, "KV transfer failed.");
                    match self.policy {
                        LoadFailurePolicy::Recompute => Ok(Prepared::default()),
                        LoadFailurePolicy::Fail => Err(format!(
                            "Failed to load KV cache from the prefill engine: {error}"
                        )),
                    }
                }
            },
        }
    }

    /// The producer's answer for a finished `do_remote_decode` request: its
    /// `kv_transfer_params`, with the held blocks leased. An aborted request frees its blocks
    /// at once and answers `null`, as vLLM does.
    pub(crate) fn finish(
        &self,
        transfer: &Transfer,
        internal_request_id: &str,
        finished: &Finished,
    ) -> Option<Value> {
        if *transfer != Transfer::RemoteDecode {
            return None;
        }
        if finished.reason == FinishReason::Abort || finished.held_blocks.is_empty() {
            if !finished.held_blocks.is_empty() {
                self.shared
                    .engine
                    .release_blocks(finished.held_blocks.clone());
            }
            return None;
        }
        // vLLM's internal id: the external id plus "-<8 hex>".
        let remote_request_id = format!("{internal_request_id}-{:08x}", rand::random::<u32>());
        self.shared.leases.lock().insert(
            remote_request_id.clone(),
            Lease {
                blocks: finished.held_blocks.clone(),
                expires: tokio::time::Instant::now() + self.lease,
            },
        );
        self.shared.lease_added.notify_one();
        let port = self.side_channel.map_or(0, |addr| addr.port());
        Some(json!({
            "do_remote_prefill": true,
            "do_remote_decode": false,
            "remote_block_ids": [finished.held_blocks],
            "remote_engine_id": self.shared.engine_id,
            "remote_request_id": remote_request_id,
            "remote_host": self.advertised_host,
            "remote_port": port,
            "tp_size": self.tp_size,
            "dcp_size": 1,
            "pp_size": 1,
            "remote_num_tokens": finished.prompt_tokens,
            "remote_blocks_expiry_time": null,
            "remote_registration_generation": 1,
            "transfer_mode": "pull",
            "remote_prefill_cached_tokens": finished.cached_tokens,
        }))
    }

    /// Pulls every remote block over the side channel, then notifies the producer.
    /// Returns the tokens whose KV arrived.
    async fn pull(&self, remote: &RemoteParams) -> Result<u32, PullError> {
        let in_progress = self.shared.metrics.fetch_in_progress.clone();
        if let Some(gauge) = &in_progress {
            gauge.inc();
        }
        let _done = GaugeGuard(in_progress);
        if remote.block_ids.is_empty() && remote.num_tokens.unwrap_or(0) > 0 {
            return Err(PullError::Params("remote_block_ids is empty".into()));
        }
        let block_bytes = self.shape.bytes_per_token() * u64::from(self.block_size);
        let request = side_channel::ReadRequest {
            remote_request_id: remote.request_id.clone(),
            block_ids: remote.block_ids.clone(),
            block_bytes,
        };
        let addr = format!("{}:{}", remote.host, remote.port);
        let side_channel_error = |source| PullError::SideChannel {
            addr: addr.clone(),
            source,
        };
        let expected = side_channel::Expected {
            engine_id: &remote.engine_id,
            compatibility: &self.shared.compatibility,
        };
        let outcome = self
            .pool
            .read(&remote.host, remote.port, &expected, &request, self.shaper)
            .await;
        let metrics = &self.shared.metrics;
        let stats = match outcome {
            Ok(stats) => stats,
            Err(side_channel::Error::Notify(source)) => {
                // The bytes arrived; only the release message was lost.
                metrics.failed_notifications.inc();
                return Err(side_channel_error(side_channel::Error::Notify(source)));
            }
            Err(error) => return Err(side_channel_error(error)),
        };
        metrics.post_time.observe(stats.post.as_secs_f64());
        metrics.xfer_time.observe(stats.xfer.as_secs_f64());
        metrics.bytes_transferred.observe(stats.bytes as f64);
        // One descriptor per block, layer and K/V plane, as NIXL registers them.
        let descriptors = remote.block_ids.len() as u64 * u64::from(self.shape.num_layers) * 2;
        metrics.num_descriptors.observe(descriptors as f64);
        let pulled = remote.block_ids.len() as u64 * u64::from(self.block_size);
        let tokens = remote
            .num_tokens
            .map_or(pulled, |n| u64::from(n).min(pulled));
        Ok(u32::try_from(tokens).unwrap_or(u32::MAX))
    }
}

/// Decrements the fetch gauge however the pull ends.
struct GaugeGuard(Option<Gauge>);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        if let Some(gauge) = &self.0 {
            gauge.dec();
        }
    }
}

/// Frees leases whose consumer never came, counting `vllm:nixl_num_kv_expired_reqs`.
async fn expire_leases(shared: Arc<Shared>) {
    loop {
        let next = shared
            .leases
            .lock()
            .values()
            .map(|lease| lease.expires)
            .min();
        match next {
            None => shared.lease_added.notified().await,
            Some(deadline) => {
                tokio::select! {
                    () = tokio::time::sleep_until(deadline) => {}
                    () = shared.lease_added.notified() => continue,
                }
            }
        }
        let now = tokio::time::Instant::now();
        let expired: Vec<(String, Lease)> = {
            let mut leases = shared.leases.lock();
            let ids: Vec<String> = leases
                .iter()
                .filter(|(_, lease)| lease.expires <= now)
                .map(|(id, _)| id.clone())
                .collect();
            ids.into_iter()
                .filter_map(|id| leases.remove(&id).map(|lease| (id, lease)))
                .collect()
        };
        for (remote_request_id, lease) in expired {
            tracing::warn!(%remote_request_id, "KV lease expired before the consumer read it.");
            shared.metrics.kv_expired_reqs.inc();
            shared.engine.release_blocks(lease.blocks);
        }
    }
}
