//! Metrics of the `InferencePool` watcher (`inference-pool` crate), which the EPP (discovery)
//! and the P/D sidecar (its SSRF allow-list) share.
//!
//! `resource` values are `inferencepools` and `pods`.

use crate::{Buckets, Kind, MetricDef, Origin, Stability, Unit, labels};

/// Every family in this module.
pub const ALL: &[&MetricDef] = &[&WATCH_EVENTS_TOTAL, &WATCH_ERRORS_TOTAL, &ENDPOINTS];

/// Watch events received from the Kubernetes API, by resource.
pub const WATCH_EVENTS_TOTAL: MetricDef = MetricDef {
    name: "llm_d_pool_watch_events_total",
    kind: Kind::Counter,
    unit: Unit::Events,
    help: "Watch events received from the Kubernetes API for the InferencePool and its pods, by resource.",
    labels: &[labels::RESOURCE],
    buckets: Buckets::None,
    origin: Origin::Ours,
    stability: Stability::Beta,
    deprecated_alias: None,
};

/// Failed list or watch calls; the watcher retries with backoff.
pub const WATCH_ERRORS_TOTAL: MetricDef = MetricDef {
    name: "llm_d_pool_watch_errors_total",
    help: "Failed list or watch calls to the Kubernetes API, retried with backoff, by resource.",
    unit: Unit::Count,
    ..WATCH_EVENTS_TOTAL
};

/// Endpoints the pool selects now.
pub const ENDPOINTS: MetricDef = MetricDef {
    name: "llm_d_pool_selected_endpoints",
    kind: Kind::Gauge,
    unit: Unit::Count,
    help: "Endpoints (ready pod and target port pairs) the watched InferencePool selects now.",
    labels: &[],
    buckets: Buckets::None,
    origin: Origin::Ours,
    stability: Stability::Beta,
    deprecated_alias: None,
};
