//! Metrics of the vLLM simulator itself, beside the `vllm:*` families it reproduces.
//!
//! Ours. They tell whether the simulator kept up with its own timing model: a simulator that
//! fires its timers late reports latencies of the machine it runs on, not of the model.

use crate::{Buckets, Kind, MetricDef, Origin, Stability, Unit, labels};

/// Every family in this module.
pub const ALL: &[&MetricDef] = &[&ENGINE_TIMER_LATENESS_SECONDS];

pub const ENGINE_TIMER_LATENESS_SECONDS: MetricDef = MetricDef {
    name: "llm_d_sim_engine_timer_lateness_seconds",
    kind: Kind::Histogram,
    unit: Unit::Seconds,
    help: "Delay in seconds between a token's scheduled time in the timing model and the moment the engine emitted it.",
    labels: &[labels::MODEL_NAME],
    buckets: Buckets::Explicit(&[
        0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025,
        0.05, 0.1,
    ]),
    origin: Origin::Ours,
    stability: Stability::Alpha,
    deprecated_alias: None,
};
