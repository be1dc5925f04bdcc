//! "llm-d EPP Routing": the endpoint picker's requests and errors, prefix-cache routing
//! (hits, matched blocks, routing decision time), scheduler and plugin latency, pool gauges
//! and P/D decisions, all from `metrics_schema::epp`; the successor of GAIE's "Inference
//! Gateway" dashboard on the `llm_d_epp_*` names only (never the deprecated aliases, which
//! the EPP dual-emits and which would double-count).

use metrics_schema::{MetricDef, epp, labels};

use super::{
    auto,
    model::{Dashboard, Panel, Row, Target, Variable},
    promql::{QUANTILES, RATE, STAT, Scope, gauge, legend, quantile, sum_increase, sum_rate},
};

const SCOPE: Scope = Scope {
    model_name: true,
    namespace: true,
};

pub(super) fn dashboard() -> Dashboard {
    Dashboard {
        uid: "llm-d-epp-routing",
        title: "llm-d EPP Routing",
        summary: "The endpoint picker: request rates and errors, prefix-cache routing, \
                  scheduler and plugin latency, inference-pool state and P/D decisions.",
        tags: &["epp", "routing"],
        variables: vec![
            Variable::LabelValues {
                name: labels::NAMESPACE.name,
                label: "Namespace",
                metric: epp::REQUEST_TOTAL.name,
            },
            Variable::LabelValues {
                name: labels::MODEL_NAME.name,
                label: "Model",
                metric: epp::REQUEST_TOTAL.name,
            },
        ],
        rows: vec![
            requests_row(),
            prefix_cache_row(),
            scheduling_row(),
            pool_row(),
            pd_row(),
            auto::component_row("epp", epp::ALL, SCOPE, true),
        ],
    }
}

fn percentiles(metric: &'static MetricDef, by: &[&str]) -> Vec<Target> {
    QUANTILES
        .iter()
        .map(|(q, name)| {
            let legend_text = if by.is_empty() {
                (*name).to_owned()
            } else {
                format!("{name} {}", legend(by))
            };
            Target::new(quantile(*q, metric, by, SCOPE, &[], RATE), legend_text)
        })
        .collect()
}

fn requests_row() -> Row {
    let model_labels = [labels::MODEL_NAME.name, labels::TARGET_MODEL_NAME.name];
    let error_ratio = format!(
        "{} / {}",
        sum_rate(&epp::REQUEST_ERROR_TOTAL, &[], SCOPE, &[], STAT),
        sum_rate(&epp::REQUEST_TOTAL, &[], SCOPE, &[], STAT)
    );
    Row::new(
        "Requests",
        vec![
            Panel::stat(
                "Request Rate (5m)",
                "reqps",
                Target::new(
                    sum_rate(&epp::REQUEST_TOTAL, &[], SCOPE, &[], STAT),
                    "requests/s",
                ),
            ),
            Panel::stat(
                "Error Ratio (5m)",
                "percentunit",
                Target::new(error_ratio, "errors"),
            )
            .describe("Failed requests over received requests."),
            Panel::stat(
                "Ready Endpoints",
                "short",
                Target::new(
                    gauge("sum", &epp::READY_ENDPOINTS, &[], SCOPE, &[]),
                    "ready",
                ),
            )
            .describe(epp::READY_ENDPOINTS.help),
            Panel::stat(
                "Prefix Cache Hit Ratio (5m)",
                "percentunit",
                Target::new(prefix_hit_ratio(STAT), "hit ratio"),
            )
            .describe(
                "Requests with at least one cached block on some candidate, over all requests.",
            ),
            Panel::timeseries(
                "Request Rate",
                "reqps",
                vec![Target::new(
                    sum_rate(&epp::REQUEST_TOTAL, &model_labels, SCOPE, &[], RATE),
                    legend(&model_labels),
                )],
            )
            .describe(epp::REQUEST_TOTAL.help),
            Panel::timeseries(
                "Request Errors by Code",
                "reqps",
                vec![Target::new(
                    sum_rate(
                        &epp::REQUEST_ERROR_TOTAL,
                        &[labels::ERROR_CODE.name],
                        SCOPE,
                        &[],
                        RATE,
                    ),
                    legend(&[labels::ERROR_CODE.name]),
                )],
            )
            .describe(epp::REQUEST_ERROR_TOTAL.help),
            Panel::timeseries(
                "E2E Request Latency",
                "s",
                percentiles(&epp::REQUEST_DURATION_SECONDS, &[]),
            )
            .describe(epp::REQUEST_DURATION_SECONDS.help),
            Panel::timeseries(
                "Request and Response Size (p50)",
                "bytes",
                vec![
                    Target::new(
                        quantile(0.5, &epp::REQUEST_SIZE_BYTES, &[], SCOPE, &[], RATE),
                        "request",
                    ),
                    Target::new(
                        quantile(0.5, &epp::RESPONSE_SIZE_BYTES, &[], SCOPE, &[], RATE),
                        "response",
                    ),
                ],
            ),
            Panel::timeseries(
                "Input and Output Tokens (p50)",
                "short",
                vec![
                    Target::new(
                        quantile(0.5, &epp::REQUEST_INPUT_TOKENS, &[], SCOPE, &[], RATE),
                        "input",
                    ),
                    Target::new(
                        quantile(0.5, &epp::REQUEST_OUTPUT_TOKENS, &[], SCOPE, &[], RATE),
                        "output",
                    ),
                ],
            )
            .size(24, 8),
        ],
    )
}

fn prefix_hit_ratio(window: &str) -> String {
    format!(
        "{} / {}",
        sum_rate(&epp::PREFIX_CACHE_HITS_TOTAL, &[], SCOPE, &[], window),
        sum_rate(&epp::REQUEST_TOTAL, &[], SCOPE, &[], window)
    )
}

fn prefix_cache_row() -> Row {
    Row::new(
        "Prefix-Cache Routing",
        vec![
            Panel::timeseries(
                "Prefix Cache Hits",
                "short",
                vec![
                    Target::new(
                        sum_rate(
                            &epp::PREFIX_CACHE_HITS_TOTAL,
                            &[labels::MODEL_NAME.name],
                            SCOPE,
                            &[],
                            RATE,
                        ),
                        format!("hits/s {}", legend(&[labels::MODEL_NAME.name])),
                    ),
                    Target::new(prefix_hit_ratio(RATE), "hit ratio"),
                ],
            )
            .describe(epp::PREFIX_CACHE_HITS_TOTAL.help),
            Panel::timeseries(
                "Matched Blocks per Request",
                "short",
                percentiles(&epp::PREFIX_CACHE_SCORER_MATCHED_BLOCKS, &[]),
            )
            .describe(epp::PREFIX_CACHE_SCORER_MATCHED_BLOCKS.help),
            Panel::heatmap(
                "Matched Blocks Distribution",
                "short",
                Target::new(
                    super::promql::bucket_increase(
                        &epp::PREFIX_CACHE_SCORER_MATCHED_BLOCKS,
                        SCOPE,
                        RATE,
                    ),
                    "{{le}}",
                ),
            ),
            Panel::timeseries(
                "Routing Decision Duration",
                "s",
                percentiles(&epp::ROUTING_DECISION_DURATION_SECONDS, &[]),
            )
            .describe(epp::ROUTING_DECISION_DURATION_SECONDS.help),
        ],
    )
}

fn scheduling_row() -> Row {
    let plugin_labels = [
        labels::EXTENSION_POINT.name,
        labels::PLUGIN_TYPE.name,
        labels::PLUGIN_NAME.name,
    ];
    Row::new(
        "Scheduling",
        vec![
            Panel::timeseries(
                "Scheduler E2E Duration",
                "s",
                percentiles(&epp::SCHEDULER_E2E_DURATION_SECONDS, &[]),
            )
            .describe(epp::SCHEDULER_E2E_DURATION_SECONDS.help),
            Panel::timeseries(
                "Scheduling Attempts by Status",
                "short",
                vec![Target::new(
                    sum_rate(&epp::SCHEDULER_ATTEMPTS_TOTAL, &[labels::STATUS.name], SCOPE, &[], RATE),
                    legend(&[labels::STATUS.name]),
                )],
            )
            .describe(epp::SCHEDULER_ATTEMPTS_TOTAL.help),
            Panel::timeseries(
                "Plugin Duration (p95)",
                "s",
                vec![Target::new(
                    quantile(0.95, &epp::PLUGIN_DURATION_SECONDS, &plugin_labels, SCOPE, &[], RATE),
                    legend(&plugin_labels),
                )],
            )
            .describe(epp::PLUGIN_DURATION_SECONDS.help),
            Panel::bargauge(
                "Picks per Endpoint (range)",
                "short",
                Target::new(
                    sum_increase(
                        &epp::SCHEDULER_ATTEMPTS_TOTAL,
                        &[labels::POD_NAME.name],
                        SCOPE,
                        &[],
                        super::promql::RANGE,
                    ),
                    legend(&[labels::POD_NAME.name]),
                ),
            )
            .describe("Scheduling attempts over the selected range, by picked pod: how evenly the EPP spreads load."),
        ],
    )
}

fn pool_row() -> Row {
    let pool = [labels::NAME.name];
    Row::new(
        "Inference Pool",
        vec![
            Panel::timeseries(
                "Average KV Cache Utilization",
                "percentunit",
                vec![Target::new(
                    gauge("max", &epp::AVERAGE_KV_CACHE_UTILIZATION, &pool, SCOPE, &[]),
                    legend(&pool),
                )],
            )
            .describe(epp::AVERAGE_KV_CACHE_UTILIZATION.help),
            Panel::timeseries(
                "Average Queue Size",
                "short",
                vec![Target::new(
                    gauge("max", &epp::AVERAGE_QUEUE_SIZE, &pool, SCOPE, &[]),
                    legend(&pool),
                )],
            )
            .describe(epp::AVERAGE_QUEUE_SIZE.help),
            Panel::bargauge(
                "Queue Size per Endpoint",
                "short",
                Target::new(
                    gauge(
                        "max",
                        &epp::PER_ENDPOINT_QUEUE_SIZE,
                        &[labels::MODEL_SERVER_ENDPOINT.name],
                        SCOPE,
                        &[],
                    ),
                    legend(&[labels::MODEL_SERVER_ENDPOINT.name]),
                ),
            )
            .describe(epp::PER_ENDPOINT_QUEUE_SIZE.help),
            Panel::timeseries(
                "Ready Endpoints",
                "short",
                vec![Target::new(
                    gauge("max", &epp::READY_ENDPOINTS, &pool, SCOPE, &[]),
                    legend(&pool),
                )],
            )
            .describe(epp::READY_ENDPOINTS.help),
        ],
    )
}

fn pd_row() -> Row {
    let decision = [labels::DECISION_TYPE.name];
    Row::new(
        "P/D Decisions",
        vec![
            Panel::timeseries(
                "P/D Decisions by Type",
                "reqps",
                vec![Target::new(
                    sum_rate(&epp::PD_DECISION_TOTAL, &decision, SCOPE, &[], RATE),
                    legend(&decision),
                )],
            )
            .describe(epp::PD_DECISION_TOTAL.help),
            Panel::bargauge(
                "P/D Decision Share (range)",
                "percentunit",
                Target::new(
                    format!(
                        "{} / ignoring({}) group_left {}",
                        sum_increase(
                            &epp::PD_DECISION_TOTAL,
                            &decision,
                            SCOPE,
                            &[],
                            super::promql::RANGE
                        ),
                        labels::DECISION_TYPE.name,
                        sum_increase(
                            &epp::PD_DECISION_TOTAL,
                            &[],
                            SCOPE,
                            &[],
                            super::promql::RANGE
                        ),
                    ),
                    legend(&decision),
                ),
            )
            .describe("Share of each disaggregation decision over the selected range."),
        ],
    )
}
