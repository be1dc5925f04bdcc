//! "llm-d vLLM Overview": what llm-d's `llm-d-vllm-overview.json` shows (latency, throughput,
//! scheduler state, cache, request shapes), filtered by `model_name` and `namespace`, plus the
//! derived row of every `vllm:*` family.

use metrics_schema::{labels, vllm};

use super::{
    auto,
    model::{Dashboard, Panel, Row, Target, Variable},
    promql::{QUANTILES, RATE, STAT, Scope, bucket_increase, gauge, mean, quantile, sum_rate},
};

const SCOPE: Scope = Scope {
    model_name: true,
    namespace: true,
};

/// The dashboard's variables, shared with the P/D dashboard's vLLM rows.
pub(super) fn variables() -> Vec<Variable> {
    vec![
        Variable::LabelValues {
            name: labels::NAMESPACE.name,
            label: "Namespace",
            metric: vllm::NUM_REQUESTS_RUNNING.name,
        },
        Variable::LabelValues {
            name: labels::MODEL_NAME.name,
            label: "Model",
            metric: vllm::GENERATION_TOKENS_TOTAL.name,
        },
    ]
}

pub(super) fn dashboard() -> Dashboard {
    Dashboard {
        uid: "llm-d-vllm-overview",
        title: "llm-d vLLM Overview",
        summary: "Per-model vLLM latency, throughput, scheduler state and cache use, from the \
                  vllm:* families every model server (and vllm-sim) exports.",
        tags: &["vllm"],
        variables: variables(),
        rows: vec![
            overview_row(),
            latency_row(),
            throughput_row(),
            request_shape_row(),
            auto::component_row("vllm", vllm::ALL, SCOPE, true),
        ],
    }
}

fn overview_row() -> Row {
    Row::new(
        "Overview",
        vec![
            Panel::stat(
                "Requests Running",
                "short",
                Target::new(
                    gauge("sum", &vllm::NUM_REQUESTS_RUNNING, &[], SCOPE, &[]),
                    "running",
                ),
            ),
            Panel::stat(
                "Requests Waiting",
                "short",
                Target::new(
                    gauge("sum", &vllm::NUM_REQUESTS_WAITING, &[], SCOPE, &[]),
                    "waiting",
                ),
            ),
            Panel::stat(
                "KV Cache Usage (avg)",
                "percentunit",
                Target::new(
                    gauge("avg", &vllm::KV_CACHE_USAGE_PERC, &[], SCOPE, &[]),
                    "usage",
                ),
            ),
            Panel::stat(
                "Prefix Cache Hit Rate (5m)",
                "percentunit",
                Target::new(hit_ratio(STAT), "hit rate"),
            )
            .describe("Prefix-cache hits over queries, in tokens, over the last 5 minutes."),
        ],
    )
}

/// `hits / queries` of vLLM's prefix cache, in tokens.
fn hit_ratio(window: &str) -> String {
    format!(
        "{} / {}",
        sum_rate(&vllm::PREFIX_CACHE_HITS_TOTAL, &[], SCOPE, &[], window),
        sum_rate(&vllm::PREFIX_CACHE_QUERIES_TOTAL, &[], SCOPE, &[], window)
    )
}

fn latency_targets(
    metric: &'static metrics_schema::MetricDef,
    extra: &[(f64, &str)],
) -> Vec<Target> {
    let mut quantiles: Vec<(f64, &str)> = QUANTILES.iter().rev().copied().collect();
    quantiles.extend_from_slice(extra);
    quantiles.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut targets: Vec<Target> = quantiles
        .into_iter()
        .map(|(q, legend)| Target::new(quantile(q, metric, &[], SCOPE, &[], RATE), legend))
        .collect();
    targets.push(Target::new(mean(metric, &[], SCOPE, &[], RATE), "avg"));
    targets
}

fn latency_row() -> Row {
    Row::new(
        "Latency",
        vec![
            Panel::timeseries(
                "E2E Request Latency",
                "s",
                latency_targets(&vllm::E2E_REQUEST_LATENCY_SECONDS, &[(0.9, "p90")]),
            )
            .describe(vllm::E2E_REQUEST_LATENCY_SECONDS.help),
            Panel::timeseries(
                "Time To First Token",
                "s",
                latency_targets(&vllm::TIME_TO_FIRST_TOKEN_SECONDS, &[]),
            )
            .describe(vllm::TIME_TO_FIRST_TOKEN_SECONDS.help),
            Panel::timeseries(
                "Inter-Token Latency",
                "s",
                latency_targets(&vllm::INTER_TOKEN_LATENCY_SECONDS, &[]),
            )
            .describe(vllm::INTER_TOKEN_LATENCY_SECONDS.help),
            Panel::timeseries(
                "Queue Time",
                "s",
                latency_targets(&vllm::REQUEST_QUEUE_TIME_SECONDS, &[]),
            )
            .describe(vllm::REQUEST_QUEUE_TIME_SECONDS.help),
            Panel::timeseries(
                "Requests Prefill and Decode Time (avg)",
                "s",
                vec![
                    Target::new(
                        mean(&vllm::REQUEST_PREFILL_TIME_SECONDS, &[], SCOPE, &[], RATE),
                        "prefill",
                    ),
                    Target::new(
                        mean(&vllm::REQUEST_DECODE_TIME_SECONDS, &[], SCOPE, &[], RATE),
                        "decode",
                    ),
                ],
            ),
        ],
    )
}

fn throughput_row() -> Row {
    Row::new(
        "Throughput and Scheduler",
        vec![
            Panel::timeseries(
                "Token Throughput",
                "short",
                vec![
                    Target::new(
                        sum_rate(&vllm::PROMPT_TOKENS_TOTAL, &[], SCOPE, &[], RATE),
                        "prompt tokens/s",
                    ),
                    Target::new(
                        sum_rate(&vllm::GENERATION_TOKENS_TOTAL, &[], SCOPE, &[], RATE),
                        "generation tokens/s",
                    ),
                ],
            ),
            Panel::timeseries(
                "Scheduler State",
                "short",
                vec![
                    Target::new(
                        gauge("sum", &vllm::NUM_REQUESTS_RUNNING, &[], SCOPE, &[]),
                        "running",
                    ),
                    Target::new(
                        gauge("sum", &vllm::NUM_REQUESTS_WAITING, &[], SCOPE, &[]),
                        "waiting",
                    ),
                ],
            ),
            Panel::timeseries(
                "Finish Reason",
                "reqps",
                vec![Target::new(
                    sum_rate(
                        &vllm::REQUEST_SUCCESS_TOTAL,
                        &[labels::FINISHED_REASON.name],
                        SCOPE,
                        &[],
                        RATE,
                    ),
                    format!("{{{{{}}}}}", labels::FINISHED_REASON.name),
                )],
            ),
            Panel::timeseries(
                "Cache Utilization",
                "percentunit",
                vec![
                    Target::new(
                        gauge("avg", &vllm::KV_CACHE_USAGE_PERC, &[], SCOPE, &[]),
                        "KV cache (avg)",
                    ),
                    Target::new(
                        gauge("max", &vllm::KV_CACHE_USAGE_PERC, &[], SCOPE, &[]),
                        "KV cache (max)",
                    ),
                    Target::new(hit_ratio(RATE), "prefix cache hit rate"),
                ],
            ),
            Panel::timeseries(
                "Preemptions",
                "short",
                vec![Target::new(
                    sum_rate(&vllm::NUM_PREEMPTIONS_TOTAL, &[], SCOPE, &[], RATE),
                    "preemptions/s",
                )],
            ),
            Panel::timeseries(
                "Prompt Tokens by Source",
                "short",
                vec![Target::new(
                    sum_rate(
                        &vllm::PROMPT_TOKENS_BY_SOURCE_TOTAL,
                        &[labels::SOURCE.name],
                        SCOPE,
                        &[],
                        RATE,
                    ),
                    format!("{{{{{}}}}}", labels::SOURCE.name),
                )],
            ),
        ],
    )
}

fn request_shape_row() -> Row {
    Row::new(
        "Request Shape",
        vec![
            Panel::heatmap(
                "Request Prompt Length",
                "short",
                Target::new(
                    bucket_increase(&vllm::REQUEST_PROMPT_TOKENS, SCOPE, RATE),
                    "{{le}}",
                ),
            ),
            Panel::heatmap(
                "Request Generation Length",
                "short",
                Target::new(
                    bucket_increase(&vllm::REQUEST_GENERATION_TOKENS, SCOPE, RATE),
                    "{{le}}",
                ),
            ),
            Panel::timeseries(
                "Max Generation Tokens in Sequence Group",
                "short",
                QUANTILES
                    .iter()
                    .map(|(q, legend)| {
                        Target::new(
                            quantile(
                                *q,
                                &vllm::REQUEST_MAX_NUM_GENERATION_TOKENS,
                                &[],
                                SCOPE,
                                &[],
                                RATE,
                            ),
                            *legend,
                        )
                    })
                    .collect(),
            ),
        ],
    )
}
