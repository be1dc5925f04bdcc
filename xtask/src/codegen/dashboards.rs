//! `dashboards/*.json`: Grafana dashboards rendered from `metrics-schema` (STYLE rule 20).
//!
//! Curated dashboards (vLLM overview, P/D coordinator, EPP routing, KV-index ingestion) build
//! every query from `MetricDef` constants through [`promql`]; each ends with a collapsed row
//! derived from its component's families ([`auto`]), and "llm-d All Metrics" has one such row
//! per `metrics_schema::MODULES` entry, so no family is left off a dashboard. [`model`]
//! renders Grafana's JSON model; `tests` read every PromQL expression back and check its
//! metric names against the schema.

mod auto;
mod epp;
mod json;
mod kv_index;
mod model;
mod pd;
mod promql;
#[cfg(test)]
mod reverse;
#[cfg(test)]
mod tests;
mod vllm;

use model::{Dashboard, Variable};
use promql::Scope;

/// Where the dashboards live, relative to the workspace root.
pub(super) const DIR: &str = "dashboards";

/// Every dashboard as (path relative to the root, JSON text), sorted by path.
pub(super) fn render() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = dashboards()
        .iter()
        .map(|dashboard| {
            (
                format!("{DIR}/{}", dashboard.file_name()),
                dashboard.render(),
            )
        })
        .collect();
    files.sort();
    files
}

fn dashboards() -> Vec<Dashboard> {
    vec![
        vllm::dashboard(),
        pd::dashboard(),
        epp::dashboard(),
        kv_index::dashboard(),
        all_metrics(),
    ]
}

/// One derived row per component, every family of the schema.
fn all_metrics() -> Dashboard {
    let scope = Scope {
        model_name: true,
        namespace: true,
    };
    Dashboard {
        uid: "llm-d-all-metrics",
        title: "llm-d All Metrics",
        summary: "One row per component with a panel for every metric family in \
                  metrics-schema: counters as rates, histograms as p50/p95/p99, gauges as \
                  time series (info gauges as stats).",
        tags: &["all-metrics"],
        variables: vec![
            Variable::LabelValues {
                name: metrics_schema::labels::NAMESPACE.name,
                label: "Namespace",
                metric: metrics_schema::vllm::NUM_REQUESTS_RUNNING.name,
            },
            Variable::LabelValues {
                name: metrics_schema::labels::MODEL_NAME.name,
                label: "Model",
                metric: metrics_schema::vllm::GENERATION_TOKENS_TOTAL.name,
            },
        ],
        rows: metrics_schema::MODULES
            .iter()
            .map(|(module, metrics)| auto::component_row(module, metrics, scope, true))
            .collect(),
    }
}
