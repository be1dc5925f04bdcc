//! Prometheus handles for the index and subscriber, registered only through
//! `metrics_schema::kv_index` definitions.

use prometheus::{Counter, CounterVec, Gauge, Histogram, Registry};

use metrics_schema::kv_index as defs;

use crate::events::DropReason;

/// Errors of the metrics module.
#[derive(Debug, thiserror::Error)]
#[error("registering kv-index metric {name}")]
pub struct Error {
    name: &'static str,
    #[source]
    source: prometheus::Error,
}

/// The kv-index metric handles.
#[derive(Debug, Clone)]
pub struct Metrics {
    pub batches_received: Counter,
    pub batches_dropped: CounterVec,
    pub events_received: Counter,
    pub events_applied: Counter,
    pub events_dropped: CounterVec,
    pub sequence_gaps: Counter,
    pub replays: Counter,
    pub engine_restarts: Counter,
    pub index_size: Gauge,
    pub lookups: Counter,
    pub lookup_duration: Histogram,
    /// `GetPodScores` calls by status code.
    pub grpc_requests: CounterVec,
}

impl Metrics {
    /// Registers every kv-index family in `registry`; drop reasons start at zero.
    pub fn register(registry: &Registry) -> Result<Self, Error> {
        let wrap = |def: &'static metrics_schema::MetricDef| {
            move |source| Error {
                name: def.name,
                source,
            }
        };
        let counter = |def: &'static metrics_schema::MetricDef| {
            def.register_counter(registry)
                .map(|family| family.with_label_values::<&str>(&[]))
                .map_err(wrap(def))
        };
        let metrics = Metrics {
            batches_received: counter(&defs::BATCHES_RECEIVED_TOTAL)?,
            batches_dropped: defs::BATCHES_DROPPED_TOTAL
                .register_counter(registry)
                .map_err(wrap(&defs::BATCHES_DROPPED_TOTAL))?,
            events_received: counter(&defs::EVENTS_RECEIVED_TOTAL)?,
            events_applied: counter(&defs::EVENTS_APPLIED_TOTAL)?,
            events_dropped: defs::EVENTS_DROPPED_TOTAL
                .register_counter(registry)
                .map_err(wrap(&defs::EVENTS_DROPPED_TOTAL))?,
            sequence_gaps: counter(&defs::SEQUENCE_GAPS_TOTAL)?,
            replays: counter(&defs::REPLAYS_TOTAL)?,
            engine_restarts: counter(&defs::ENGINE_RESTARTS_TOTAL)?,
            index_size: defs::INDEX_SIZE_BLOCKS
                .register_gauge(registry)
                .map(|family| family.with_label_values::<&str>(&[]))
                .map_err(wrap(&defs::INDEX_SIZE_BLOCKS))?,
            lookups: counter(&defs::LOOKUPS_TOTAL)?,
            lookup_duration: defs::LOOKUP_DURATION_SECONDS
                .register_histogram(registry, 0)
                .map(|family| family.with_label_values::<&str>(&[]))
                .map_err(wrap(&defs::LOOKUP_DURATION_SECONDS))?,
            grpc_requests: defs::GRPC_REQUESTS_TOTAL
                .register_counter(registry)
                .map_err(wrap(&defs::GRPC_REQUESTS_TOTAL))?,
        };
        for reason in DropReason::ALL {
            metrics.events_dropped.with_label_values(&[reason.as_str()]);
        }
        for code in ["OK", "InvalidArgument", "Internal"] {
            metrics.grpc_requests.with_label_values(&[code]);
        }
        Ok(metrics)
    }

    /// Counts one dropped event.
    pub fn event_dropped(&self, reason: DropReason) {
        self.events_dropped
            .with_label_values(&[reason.as_str()])
            .inc();
    }

    /// Counts one dropped batch.
    pub fn batch_dropped(&self, reason: DropReason) {
        self.batches_dropped
            .with_label_values(&[reason.as_str()])
            .inc();
    }
}
