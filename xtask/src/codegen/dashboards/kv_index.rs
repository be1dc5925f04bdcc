//! "llm-d KV Index Ingestion": the KV-block index's event ingestion from vLLM publishers
//! (batches, events applied and dropped by reason, sequence gaps, replays, engine restarts),
//! its size and its prefix lookups, from `metrics_schema::kv_index`.

use metrics_schema::{MetricDef, kv_index, labels};

use super::{
    auto,
    model::{Dashboard, Panel, Row, Target, Variable},
    promql::{
        QUANTILES, RANGE, RATE, STAT, Scope, gauge, legend, quantile, sum_increase, sum_rate,
    },
};

const SCOPE: Scope = Scope {
    model_name: false,
    namespace: true,
};

pub(super) fn dashboard() -> Dashboard {
    Dashboard {
        uid: "llm-d-kv-index",
        title: "llm-d KV Index Ingestion",
        summary: "Health of the KV-block index: KV events received, applied and dropped, \
                  sequence gaps and replays, index size and prefix-lookup latency.",
        tags: &["kv-index", "kv-events"],
        variables: vec![Variable::LabelValues {
            name: labels::NAMESPACE.name,
            label: "Namespace",
            metric: kv_index::EVENTS_RECEIVED_TOTAL.name,
        }],
        rows: vec![
            overview_row(),
            ingestion_row(),
            lookups_row(),
            auto::component_row("kv_index", kv_index::ALL, SCOPE, true),
        ],
    }
}

fn rate_target(metric: &'static MetricDef, legend_text: &str) -> Target {
    Target::new(sum_rate(metric, &[], SCOPE, &[], RATE), legend_text)
}

fn overview_row() -> Row {
    let applied_ratio = format!(
        "{} / {}",
        sum_rate(&kv_index::EVENTS_APPLIED_TOTAL, &[], SCOPE, &[], STAT),
        sum_rate(&kv_index::EVENTS_RECEIVED_TOTAL, &[], SCOPE, &[], STAT)
    );
    Row::new(
        "Overview",
        vec![
            Panel::stat(
                "Index Size",
                "short",
                Target::new(
                    gauge("sum", &kv_index::INDEX_SIZE_BLOCKS, &[], SCOPE, &[]),
                    "blocks",
                ),
            )
            .describe(kv_index::INDEX_SIZE_BLOCKS.help),
            Panel::stat(
                "Events Applied (5m)",
                "percentunit",
                Target::new(applied_ratio, "applied"),
            )
            .describe("KV events applied over KV events received in the last 5 minutes."),
            Panel::stat(
                "Sequence Gaps (range)",
                "short",
                Target::new(
                    sum_increase(&kv_index::SEQUENCE_GAPS_TOTAL, &[], SCOPE, &[], RANGE),
                    "gaps",
                ),
            )
            .describe(kv_index::SEQUENCE_GAPS_TOTAL.help),
            Panel::stat(
                "Engine Restarts (range)",
                "short",
                Target::new(
                    sum_increase(&kv_index::ENGINE_RESTARTS_TOTAL, &[], SCOPE, &[], RANGE),
                    "restarts",
                ),
            )
            .describe(kv_index::ENGINE_RESTARTS_TOTAL.help),
        ],
    )
}

fn ingestion_row() -> Row {
    let reason = [labels::REASON.name];
    Row::new(
        "Ingestion",
        vec![
            Panel::timeseries(
                "KV Events",
                "short",
                vec![
                    rate_target(&kv_index::EVENTS_RECEIVED_TOTAL, "received/s"),
                    rate_target(&kv_index::EVENTS_APPLIED_TOTAL, "applied/s"),
                    rate_target(&kv_index::EVENTS_DROPPED_TOTAL, "dropped/s"),
                ],
            ),
            Panel::timeseries(
                "Batches",
                "short",
                vec![
                    rate_target(&kv_index::BATCHES_RECEIVED_TOTAL, "received/s"),
                    rate_target(&kv_index::BATCHES_DROPPED_TOTAL, "dropped/s"),
                ],
            ),
            Panel::timeseries(
                "Dropped Events by Reason",
                "short",
                vec![Target::new(
                    sum_rate(&kv_index::EVENTS_DROPPED_TOTAL, &reason, SCOPE, &[], RATE),
                    legend(&reason),
                )],
            )
            .describe(kv_index::EVENTS_DROPPED_TOTAL.help),
            Panel::timeseries(
                "Dropped Batches by Reason",
                "short",
                vec![Target::new(
                    sum_rate(&kv_index::BATCHES_DROPPED_TOTAL, &reason, SCOPE, &[], RATE),
                    legend(&reason),
                )],
            )
            .describe(kv_index::BATCHES_DROPPED_TOTAL.help),
            Panel::timeseries(
                "Gaps, Replays and Restarts",
                "short",
                vec![
                    rate_target(&kv_index::SEQUENCE_GAPS_TOTAL, "gaps/s"),
                    rate_target(&kv_index::REPLAYS_TOTAL, "replays/s"),
                    rate_target(&kv_index::ENGINE_RESTARTS_TOTAL, "restarts/s"),
                ],
            ),
            Panel::timeseries(
                "Index Size",
                "short",
                vec![Target::new(
                    gauge("sum", &kv_index::INDEX_SIZE_BLOCKS, &[], SCOPE, &[]),
                    "blocks",
                )],
            )
            .describe(kv_index::INDEX_SIZE_BLOCKS.help),
        ],
    )
}

fn lookups_row() -> Row {
    Row::new(
        "Lookups",
        vec![
            Panel::timeseries(
                "Lookup Rate",
                "short",
                vec![rate_target(&kv_index::LOOKUPS_TOTAL, "lookups/s")],
            )
            .describe(kv_index::LOOKUPS_TOTAL.help),
            Panel::timeseries(
                "Lookup Duration",
                "s",
                QUANTILES
                    .iter()
                    .map(|(q, legend_text)| {
                        Target::new(
                            quantile(
                                *q,
                                &kv_index::LOOKUP_DURATION_SECONDS,
                                &[],
                                SCOPE,
                                &[],
                                RATE,
                            ),
                            *legend_text,
                        )
                    })
                    .collect(),
            )
            .describe(kv_index::LOOKUP_DURATION_SECONDS.help),
        ],
    )
}
