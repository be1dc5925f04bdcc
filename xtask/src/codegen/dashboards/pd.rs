//! "P/D Coordinator Metrics": llm-d's P/D dashboard (reference §2.4) with the coordinator rows
//! read from our real `llm_d_inference_scheduler_pd_proxy_*` histograms (seconds, not the
//! demo's never-merged `_milliseconds` names), True TTFT measured by the proxy instead of
//! summed from two averages, and the upstream defects fixed: unique panel ids, no panel on top
//! of a row, a `DS_PROMETHEUS` variable so sidecar provisioning works, pod patterns as
//! variables instead of hard-coded regexes, and the failed-transfer counter by its real name.

use metrics_schema::{MetricDef, labels, pd_proxy, vllm};

use super::{
    auto,
    model::{Dashboard, Panel, Row, Target, Variable},
    promql::{
        QUANTILES, RANGE, RATE, STAT, Scope, count_increase, legend, mean, quantile, sum_increase,
        sum_rate,
    },
};

const SCOPE: Scope = Scope {
    model_name: true,
    namespace: true,
};

const PREFILL_POD: &str = "prefill_pod";
const DECODE_POD: &str = "decode_pod";
const ON_PREFILL: &[(&str, &str, &str)] = &[("pod", "=~", "$prefill_pod")];
const ON_DECODE: &[(&str, &str, &str)] = &[("pod", "=~", "$decode_pod")];

pub(super) fn dashboard() -> Dashboard {
    let mut variables = super::vllm::variables();
    variables.push(Variable::Regex {
        name: PREFILL_POD,
        label: "Prefill pods (regex)",
        default: ".*prefill.*",
    });
    variables.push(Variable::Regex {
        name: DECODE_POD,
        label: "Decode pods (regex)",
        default: ".*decode.*",
    });
    Dashboard {
        uid: "pd-coordinator-metrics",
        title: "P/D Coordinator Metrics",
        summary: "Prefill/decode disaggregation: the P/D proxy's own phase timings (True TTFT, \
                  prefill, coordinator overhead, decode) beside what the prefill and decode \
                  vLLM pods report, and NIXL KV-transfer metrics.",
        tags: &["p/d", "tracing"],
        variables,
        rows: vec![
            overview_row(),
            breakdown_row(),
            comparison_row(),
            nixl_row(),
            auto::component_row("pd_proxy", pd_proxy::ALL, SCOPE, true),
        ],
    }
}

fn percentiles(metric: &'static MetricDef, extra: &'static [(&str, &str, &str)]) -> Vec<Target> {
    QUANTILES
        .iter()
        .map(|(q, legend)| Target::new(quantile(*q, metric, &[], SCOPE, extra, RATE), *legend))
        .collect()
}

fn p50(metric: &'static MetricDef, extra: &'static [(&str, &str, &str)], legend: &str) -> Target {
    Target::new(quantile(0.5, metric, &[], SCOPE, extra, RATE), legend)
}

fn overview_row() -> Row {
    let failed = [
        pd_proxy::outcome::PREFILL_ERROR,
        pd_proxy::outcome::DECODE_ERROR,
        pd_proxy::outcome::REJECTED,
    ]
    .join("|");
    let failed_matcher = [(labels::OUTCOME.name, "=~", failed.as_str())];
    let error_ratio = format!(
        "{} / {}",
        sum_rate(&pd_proxy::REQUESTS_TOTAL, &[], SCOPE, &failed_matcher, STAT),
        sum_rate(&pd_proxy::REQUESTS_TOTAL, &[], SCOPE, &[], STAT)
    );
    Row::new(
        "P/D Coordinator Overview",
        vec![
            Panel::stat(
                "Avg vLLM TTFT (Prefill)",
                "s",
                Target::new(mean(&vllm::TIME_TO_FIRST_TOKEN_SECONDS, &[], SCOPE, ON_PREFILL, STAT), "prefill TTFT"),
            )
            .size(4, 4),
            Panel::stat(
                "Avg True TTFT (Coordinator)",
                "s",
                Target::new(mean(&pd_proxy::TRUE_TTFT_SECONDS, &[], SCOPE, &[], STAT), "true TTFT"),
            )
            .describe(pd_proxy::TRUE_TTFT_SECONDS.help)
            .size(4, 4),
            Panel::stat(
                "Avg vLLM TTFT (Decode)",
                "s",
                Target::new(mean(&vllm::TIME_TO_FIRST_TOKEN_SECONDS, &[], SCOPE, ON_DECODE, STAT), "decode TTFT"),
            )
            .size(4, 4),
            Panel::stat(
                "Avg Coordinator Overhead",
                "s",
                Target::new(mean(&pd_proxy::COORDINATOR_OVERHEAD_SECONDS, &[], SCOPE, &[], STAT), "overhead"),
            )
            .describe(pd_proxy::COORDINATOR_OVERHEAD_SECONDS.help)
            .size(4, 4),
            Panel::stat(
                "Total P/D Requests",
                "short",
                Target::new(sum_increase(&pd_proxy::REQUESTS_TOTAL, &[], SCOPE, &[], RANGE), "requests"),
            )
            .describe("Requests the P/D proxy handled over the selected time range.")
            .size(4, 4),
            Panel::stat(
                "P/D Error Ratio (5m)",
                "percentunit",
                Target::new(error_ratio, "errors"),
            )
            .describe("Share of P/D proxy requests that failed in the prefill or decode leg or were rejected.")
            .size(4, 4),
            Panel::timeseries(
                "True TTFT (Coordinator)",
                "s",
                percentiles(&pd_proxy::TRUE_TTFT_SECONDS, &[]),
            )
            .describe(pd_proxy::TRUE_TTFT_SECONDS.help),
            Panel::timeseries(
                "P/D E2E Latency (Coordinator)",
                "s",
                percentiles(&pd_proxy::TOTAL_DURATION_SECONDS, &[]),
            )
            .describe(pd_proxy::TOTAL_DURATION_SECONDS.help),
            Panel::timeseries(
                "Total Request Duration (vLLM E2E)",
                "s",
                percentiles(&vllm::E2E_REQUEST_LATENCY_SECONDS, &[]),
            )
            .describe(vllm::E2E_REQUEST_LATENCY_SECONDS.help),
            Panel::timeseries(
                "P/D Requests by Outcome",
                "reqps",
                vec![Target::new(
                    sum_rate(&pd_proxy::REQUESTS_TOTAL, &[labels::OUTCOME.name], SCOPE, &[], RATE),
                    legend(&[labels::OUTCOME.name]),
                )],
            )
            .describe(pd_proxy::REQUESTS_TOTAL.help),
        ],
    )
}

fn breakdown_row() -> Row {
    Row::new(
        "P/D Component Breakdown",
        vec![
            Panel::timeseries(
                "Prefill Duration (Coordinator)",
                "s",
                percentiles(&pd_proxy::PREFILL_DURATION_SECONDS, &[]),
            )
            .describe(pd_proxy::PREFILL_DURATION_SECONDS.help),
            Panel::timeseries(
                "Decode Duration (Coordinator)",
                "s",
                percentiles(&pd_proxy::DECODE_DURATION_SECONDS, &[]),
            )
            .describe(pd_proxy::DECODE_DURATION_SECONDS.help),
            Panel::timeseries(
                "Coordinator Overhead",
                "s",
                percentiles(&pd_proxy::COORDINATOR_OVERHEAD_SECONDS, &[]),
            )
            .describe(pd_proxy::COORDINATOR_OVERHEAD_SECONDS.help),
            Panel::timeseries(
                "vLLM Prefill Duration (Prefill Pods)",
                "s",
                percentiles(&vllm::REQUEST_PREFILL_TIME_SECONDS, ON_PREFILL),
            )
            .describe(vllm::REQUEST_PREFILL_TIME_SECONDS.help),
            Panel::timeseries(
                "vLLM Decode Duration (Decode Pods)",
                "s",
                percentiles(&vllm::REQUEST_DECODE_TIME_SECONDS, ON_DECODE),
            )
            .describe(vllm::REQUEST_DECODE_TIME_SECONDS.help),
            Panel::timeseries(
                "vLLM TTFT (Decode Pods)",
                "s",
                percentiles(&vllm::TIME_TO_FIRST_TOKEN_SECONDS, ON_DECODE),
            )
            .describe("Decode pods' own TTFT: KV transfer plus the first decode step."),
        ],
    )
}

fn comparison_row() -> Row {
    Row::new(
        "Coordinator vs vLLM Metrics Comparison",
        vec![
            Panel::timeseries(
                "P/D Phase Breakdown (Coordinator View)",
                "s",
                vec![
                    p50(
                        &pd_proxy::PREFILL_DURATION_SECONDS,
                        &[],
                        "prefill HTTP (p50)",
                    ),
                    p50(
                        &pd_proxy::COORDINATOR_OVERHEAD_SECONDS,
                        &[],
                        "coordinator overhead (p50)",
                    ),
                    p50(&pd_proxy::DECODE_DURATION_SECONDS, &[], "decode HTTP (p50)"),
                ],
            ),
            Panel::timeseries(
                "P/D Phase Breakdown (vLLM View)",
                "s",
                vec![
                    p50(
                        &vllm::REQUEST_PREFILL_TIME_SECONDS,
                        ON_PREFILL,
                        "vLLM prefill (p50)",
                    ),
                    p50(
                        &vllm::REQUEST_DECODE_TIME_SECONDS,
                        ON_DECODE,
                        "vLLM decode (p50)",
                    ),
                ],
            ),
            Panel::timeseries(
                "True TTFT vs vLLM TTFT (p50)",
                "s",
                vec![
                    p50(&pd_proxy::TRUE_TTFT_SECONDS, &[], "true TTFT (coordinator)"),
                    p50(
                        &vllm::TIME_TO_FIRST_TOKEN_SECONDS,
                        ON_PREFILL,
                        "vLLM TTFT (prefill pods)",
                    ),
                    p50(
                        &vllm::TIME_TO_FIRST_TOKEN_SECONDS,
                        ON_DECODE,
                        "vLLM TTFT (decode pods)",
                    ),
                ],
            )
            .describe(
                "What the client waits for the first token (measured by the proxy) next to \
                 what each vLLM role reports; the gap is the coordination and transfer cost.",
            )
            .size(24, 8),
        ],
    )
}

fn nixl_row() -> Row {
    let failed = format!(
        "{} or vector(0)",
        sum_increase(
            &vllm::NIXL_NUM_FAILED_TRANSFERS_TOTAL,
            &[],
            SCOPE,
            &[],
            RANGE
        )
    );
    Row::new(
        "KV Cache Transfer Metrics (NIXL Connector)",
        vec![
            Panel::stat(
                "Avg KV Transfer Time",
                "s",
                Target::new(
                    mean(&vllm::NIXL_XFER_TIME_SECONDS, &[], SCOPE, &[], STAT),
                    "transfer",
                ),
            )
            .describe(vllm::NIXL_XFER_TIME_SECONDS.help),
            Panel::stat(
                "Avg Bytes per Transfer",
                "bytes",
                Target::new(
                    mean(&vllm::NIXL_BYTES_TRANSFERRED, &[], SCOPE, &[], STAT),
                    "bytes",
                ),
            )
            .describe(vllm::NIXL_BYTES_TRANSFERRED.help),
            Panel::stat(
                "Total KV Transfers",
                "short",
                Target::new(
                    count_increase(&vllm::NIXL_XFER_TIME_SECONDS, SCOPE, RANGE),
                    "transfers",
                ),
            ),
            Panel::stat(
                "Failed KV Transfers",
                "short",
                Target::new(failed, "failed"),
            )
            .describe(vllm::NIXL_NUM_FAILED_TRANSFERS_TOTAL.help),
            Panel::timeseries(
                "KV Transfer Time Percentiles",
                "s",
                percentiles(&vllm::NIXL_XFER_TIME_SECONDS, &[]),
            ),
            Panel::timeseries(
                "KV Transfer Post Time Percentiles",
                "s",
                percentiles(&vllm::NIXL_POST_TIME_SECONDS, &[]),
            ),
            Panel::timeseries(
                "Bytes Transferred per Transfer",
                "bytes",
                percentiles(&vllm::NIXL_BYTES_TRANSFERRED, &[]),
            ),
            Panel::timeseries(
                "NIXL Descriptors per Transfer",
                "short",
                percentiles(&vllm::NIXL_NUM_DESCRIPTORS, &[]),
            ),
        ],
    )
}
