//! The KV-cache block index of the llm-d stack, wire-compatible with vLLM 0.33.
//!
//! * [`events`]: the `KVEventBatch` wire format: decoder and byte-exact encoder.
//! * [`hash`]: vLLM's prefix-cache block hashes, all four algorithms, byte for byte.
//! * [`index`]: blocks per pod and tier, engine-key or token-chain keys, prefix scoring.
//! * [`publisher`]: the vLLM-compatible ZMQ PUB + replay ROUTER, for the simulator.
//! * [`subscriber`]: the ZMQ SUB with sequence tracking and replay, feeding an index.
//! * [`metrics`]: Prometheus handles from `metrics_schema::kv_index`.
//! * [`service`]: the `indexer.v1.IndexerService` gRPC scoring API (`proto/indexer.proto`).
//!
//! Only the `publisher`, `subscriber` and `service` modules do IO.

pub mod events;
pub mod hash;
pub mod index;
pub mod metrics;
pub mod publisher;
mod score;
pub mod service;
pub mod subscriber;
