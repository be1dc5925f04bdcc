//! Metrics of the KV-cache index (`kv-index` crate): event ingestion from vLLM's ZMQ publisher
//! and prefix lookups. Owned by the kv-index engineer.
//!
//! `reason` values of the drop counters are `kv_index::events::DropReason::as_str()`.

use crate::{Buckets, Kind, MetricDef, Origin, Stability, Unit, labels};

/// Lookups take microseconds; the buckets reach 100 ms for a pathological index.
const LOOKUP_BUCKETS: &[f64] = &[
    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005,
    0.01, 0.025, 0.1,
];

/// Every family in this module.
pub const ALL: &[&MetricDef] = &[
    &BATCHES_RECEIVED_TOTAL,
    &BATCHES_DROPPED_TOTAL,
    &EVENTS_RECEIVED_TOTAL,
    &EVENTS_APPLIED_TOTAL,
    &EVENTS_DROPPED_TOTAL,
    &SEQUENCE_GAPS_TOTAL,
    &REPLAYS_TOTAL,
    &ENGINE_RESTARTS_TOTAL,
    &INDEX_SIZE_BLOCKS,
    &LOOKUPS_TOTAL,
    &LOOKUP_DURATION_SECONDS,
    &GRPC_REQUESTS_TOTAL,
];

const fn counter(name: &'static str, unit: Unit, help: &'static str) -> MetricDef {
    MetricDef {
        name,
        kind: Kind::Counter,
        unit,
        help,
        labels: &[],
        buckets: Buckets::None,
        origin: Origin::Ours,
        stability: Stability::Beta,
        deprecated_alias: None,
    }
}

/// Batches received from publishers (live and replayed).
pub const BATCHES_RECEIVED_TOTAL: MetricDef = counter(
    "llm_d_kv_index_batches_received_total",
    Unit::Count,
    "KV-event batches received from publishers, live or replayed.",
);

/// Batches that could not be read at all.
pub const BATCHES_DROPPED_TOTAL: MetricDef = MetricDef {
    labels: &[labels::REASON],
    ..counter(
        "llm_d_kv_index_batches_dropped_total",
        Unit::Count,
        "KV-event batches dropped whole because the frame or payload was unreadable, by reason.",
    )
};

/// Events decoded from received batches.
pub const EVENTS_RECEIVED_TOTAL: MetricDef = counter(
    "llm_d_kv_index_events_received_total",
    Unit::Events,
    "KV events found in received batches.",
);

/// Events applied to the index.
pub const EVENTS_APPLIED_TOTAL: MetricDef = counter(
    "llm_d_kv_index_events_applied_total",
    Unit::Events,
    "KV events applied to the block index.",
);

/// Events skipped, by reason.
pub const EVENTS_DROPPED_TOTAL: MetricDef = MetricDef {
    labels: &[labels::REASON],
    ..counter(
        "llm_d_kv_index_events_dropped_total",
        Unit::Events,
        "KV events skipped because they could not be decoded or applied, by reason.",
    )
};

/// Sequence gaps seen on the live stream.
pub const SEQUENCE_GAPS_TOTAL: MetricDef = counter(
    "llm_d_kv_index_sequence_gaps_total",
    Unit::Count,
    "Gaps in a publisher's sequence numbers seen on the live stream.",
);

/// Replay requests sent to publishers' ROUTER sockets.
pub const REPLAYS_TOTAL: MetricDef = counter(
    "llm_d_kv_index_replays_total",
    Unit::Count,
    "Replay requests sent to publishers on start, on a gap or after an engine restart.",
);

/// Sequence numbers that went backwards (engine restarts); the pod's entries were cleared.
pub const ENGINE_RESTARTS_TOTAL: MetricDef = counter(
    "llm_d_kv_index_engine_restarts_total",
    Unit::Count,
    "Publisher sequence resets seen as engine restarts, each clearing that pod's entries.",
);

/// Entries in the index.
pub const INDEX_SIZE_BLOCKS: MetricDef = MetricDef {
    kind: Kind::Gauge,
    unit: Unit::Blocks,
    ..counter(
        "llm_d_kv_index_size_blocks",
        Unit::Blocks,
        "Block entries held in the index, one per block, pod and tier.",
    )
};

/// Prefix lookups served.
pub const LOOKUPS_TOTAL: MetricDef = counter(
    "llm_d_kv_index_lookups_total",
    Unit::Count,
    "Prefix lookups scored against the index.",
);

/// Time to score one prompt.
pub const LOOKUP_DURATION_SECONDS: MetricDef = MetricDef {
    kind: Kind::Histogram,
    buckets: Buckets::Explicit(LOOKUP_BUCKETS),
    ..counter(
        "llm_d_kv_index_lookup_duration_seconds",
        Unit::Seconds,
        "Time to score one prompt's block keys against the index.",
    )
};

/// Calls of the `indexer.v1.IndexerService` scoring API (`kv-index --grpc-addr`).
pub const GRPC_REQUESTS_TOTAL: MetricDef = MetricDef {
    labels: &[labels::GRPC_CODE],
    ..counter(
        "llm_d_kv_index_grpc_requests_total",
        Unit::Count,
        "GetPodScores calls served, by gRPC status code.",
    )
};
