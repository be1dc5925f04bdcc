//! Metrics of the KV-cache index (`kv-index` crate): event ingestion from vLLM's ZMQ publisher
//! and prefix lookups. Owned by the kv-index engineer.

use crate::MetricDef;

/// Every family in this module.
pub const ALL: &[&MetricDef] = &[];
