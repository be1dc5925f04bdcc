//! Checks on the rendered dashboards: the reverse test of rule 20 (every metric a PromQL
//! expression names exists in `metrics_schema::all()`), Grafana's import conventions, and the
//! upstream P/D defects (duplicate ids, overlapping panels) that must not come back.

use std::collections::{BTreeMap, BTreeSet};

use metrics_schema::Kind;
use serde_json::Value;

use super::{DIR, model::SCHEMA_VERSION, render, reverse::metric_names};
use crate::project_root;

fn rendered() -> Vec<(String, Value)> {
    render()
        .into_iter()
        .map(|(path, text)| {
            let value =
                serde_json::from_str(&text).unwrap_or_else(|error| panic!("{path}: {error}"));
            (path, value)
        })
        .collect()
}

/// Top-level panels and the panels inside collapsed rows.
fn all_panels(dashboard: &Value) -> Vec<&Value> {
    let mut panels = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        panels.push(panel);
        if let Some(inner) = panel["panels"].as_array() {
            panels.extend(inner);
        }
    }
    panels
}

/// Every PromQL expression: panel targets and `label_values(metric, label)` variables.
fn expressions(dashboard: &Value) -> Vec<String> {
    let mut exprs: Vec<String> = all_panels(dashboard)
        .into_iter()
        .flat_map(|panel| panel["targets"].as_array().cloned().unwrap_or_default())
        .map(|target| target["expr"].as_str().expect("expr").to_owned())
        .collect();
    for variable in dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
    {
        if variable["type"] == "query" {
            let definition = variable["query"]["query"].as_str().expect("query variable");
            let inner = definition
                .strip_prefix("label_values(")
                .and_then(|rest| rest.strip_suffix(')'))
                .unwrap_or_else(|| panic!("unexpected variable query `{definition}`"));
            let (metric, _label) = inner.split_once(',').expect("label_values(metric,label)");
            exprs.push(metric.to_owned());
        }
    }
    exprs
}

/// The schema family a series name belongs to: the name itself, or a histogram's
/// `_bucket`/`_sum`/`_count`, or a counter's or histogram's `_created`.
fn resolve(series: &str) -> Result<&'static metrics_schema::MetricDef, String> {
    let all = metrics_schema::all();
    let find = |name: &str| all.iter().copied().find(|metric| metric.name == name);
    if let Some(metric) = find(series) {
        return Ok(metric);
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = series.strip_suffix(suffix)
            && let Some(metric) = find(base)
        {
            return if metric.kind == Kind::Histogram {
                Ok(metric)
            } else {
                Err(format!("`{series}`: {base} is not a histogram"))
            };
        }
    }
    if let Some(base) = series.strip_suffix("_created") {
        if let Some(metric) = find(&format!("{base}_total")).filter(|m| m.kind == Kind::Counter) {
            return Ok(metric);
        }
        if let Some(metric) = find(base).filter(|m| m.kind == Kind::Histogram) {
            return Ok(metric);
        }
    }
    Err(format!("`{series}` is not in metrics_schema::all()"))
}

#[test]
fn every_promql_metric_is_in_the_schema() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for (path, dashboard) in rendered() {
        for expr in expressions(&dashboard) {
            match metric_names(&expr) {
                Ok(names) if names.is_empty() => {
                    problems.push(format!("{path}: `{expr}` names no metric"))
                }
                Ok(names) => {
                    for name in names {
                        checked += 1;
                        if let Err(problem) = resolve(&name) {
                            problems.push(format!("{path}: {problem} (in `{expr}`)"));
                        }
                    }
                }
                Err(problem) => problems.push(format!("{path}: {problem}")),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked > 200, "only {checked} metric references found");
}

#[test]
fn metric_names_reads_identifiers_and_rejects_typos() {
    let names = |expr: &str| metric_names(expr).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(
        names(
            r#"histogram_quantile(0.95, sum by (le, plugin_type) (rate(llm_d_epp_plugin_duration_seconds_bucket{model_name=~"$model_name", pod=~".*prefill.*"}[$__rate_interval])))"#
        ),
        ["llm_d_epp_plugin_duration_seconds_bucket"]
    );
    assert_eq!(
        names(
            "sum(rate(vllm:prefix_cache_hits_total[5m])) / sum(rate(vllm:prefix_cache_queries_total[5m])) * 100"
        ),
        [
            "vllm:prefix_cache_hits_total",
            "vllm:prefix_cache_queries_total"
        ]
    );
    assert_eq!(
        names(
            "sum by (decision_type) (increase(a_total[$__range])) / ignoring(decision_type) group_left sum(increase(b_total[$__range])) or vector(0)"
        ),
        ["a_total", "b_total"]
    );
    assert_eq!(names(r#"x{le="1e-3", a="}"} offset 5m > bool 1e3"#), ["x"]);
    assert!(
        metric_names("histogram_quantle(0.5, x)")
            .unwrap_err()
            .contains("unknown function")
    );
    assert!(
        metric_names("sum(rate(x[5m])")
            .unwrap_err()
            .contains("unbalanced")
    );
    assert!(metric_names(r#"{__name__="x"}"#).is_err());
    assert!(metric_names("rate(x[$__rate_interval]) * $factor").is_err());
}

#[test]
fn resolve_accepts_series_of_schema_families_only() {
    assert!(resolve("vllm:time_to_first_token_seconds_bucket").is_ok());
    assert!(resolve("vllm:time_to_first_token_seconds_count").is_ok());
    assert!(resolve("llm_d_inference_scheduler_pd_proxy_requests_total").is_ok());
    assert!(resolve("llm_d_inference_scheduler_pd_proxy_requests_created").is_ok());
    assert!(resolve("vllm:time_to_first_token").is_err());
    assert!(
        resolve("vllm:generation_tokens_total_bucket").is_err(),
        "counter has no buckets"
    );
    assert!(resolve("llm_d_inference_scheduler_pd_proxy_true_ttft_milliseconds_bucket").is_err());
}

#[test]
fn every_schema_family_is_on_a_dashboard() {
    let mut referenced = BTreeSet::new();
    for (_, dashboard) in rendered() {
        for expr in expressions(&dashboard) {
            for name in metric_names(&expr).expect("parses") {
                referenced.insert(resolve(&name).expect("known").name);
            }
        }
    }
    let missing: Vec<&str> = metrics_schema::all()
        .iter()
        .map(|metric| metric.name)
        .filter(|name| !referenced.contains(name))
        .collect();
    assert!(missing.is_empty(), "families on no dashboard: {missing:?}");
}

#[test]
fn dashboards_follow_the_import_conventions() {
    let mut uids = BTreeSet::new();
    for (path, dashboard) in rendered() {
        let uid = dashboard["uid"].as_str().expect("uid");
        assert!(uids.insert(uid.to_owned()), "{path}: uid {uid} reused");
        assert!(
            uid.len() <= 40,
            "{path}: uid longer than Grafana's 40 characters"
        );
        assert_eq!(path, format!("{DIR}/{uid}.json"));
        assert!(dashboard["schemaVersion"].as_u64().expect("schemaVersion") >= 39);
        assert_eq!(u64::from(SCHEMA_VERSION), dashboard["schemaVersion"]);
        assert!(
            dashboard["id"].is_null(),
            "{path}: id must be null for import"
        );
        let description = dashboard["description"].as_str().expect("description");
        assert!(
            description.starts_with("Generated by `cargo xtask codegen dashboards`; do not edit."),
            "{path}: {description}"
        );
        assert_eq!(dashboard["__inputs"][0]["name"], "DS_PROMETHEUS");
        let first_variable = &dashboard["templating"]["list"][0];
        assert_eq!(first_variable["name"], "DS_PROMETHEUS", "{path}");
        assert_eq!(first_variable["type"], "datasource", "{path}");

        let required: BTreeSet<&str> = dashboard["__requires"]
            .as_array()
            .expect("__requires")
            .iter()
            .filter(|entry| entry["type"] == "panel")
            .map(|entry| entry["id"].as_str().expect("id"))
            .collect();
        let mut used = BTreeSet::new();
        for panel in all_panels(&dashboard) {
            let panel_type = panel["type"].as_str().expect("type");
            assert!(
                ["row", "timeseries", "stat", "bargauge", "heatmap"].contains(&panel_type),
                "{path}: panel type {panel_type}"
            );
            if panel_type == "row" {
                continue;
            }
            used.insert(panel_type);
            let title = panel["title"].as_str().expect("title");
            assert_eq!(
                panel["datasource"]["uid"], "${DS_PROMETHEUS}",
                "{path}: {title}"
            );
            let targets = panel["targets"].as_array().expect("targets");
            assert!(!targets.is_empty(), "{path}: {title} has no query");
            let mut ref_ids = BTreeSet::new();
            for target in targets {
                assert_eq!(
                    target["datasource"]["uid"], "${DS_PROMETHEUS}",
                    "{path}: {title}"
                );
                assert!(ref_ids.insert(target["refId"].as_str().expect("refId")));
            }
        }
        assert_eq!(
            required, used,
            "{path}: __requires lists the panel types used"
        );
    }
}

/// Upstream's P/D dashboard reused panel id 20 and put a stat on top of a row.
#[test]
fn panel_ids_are_unique_and_panels_never_overlap() {
    for (path, dashboard) in rendered() {
        let mut ids = BTreeMap::new();
        for panel in all_panels(&dashboard) {
            let id = panel["id"].as_u64().expect("id");
            let title = panel["title"].as_str().expect("title");
            if let Some(other) = ids.insert(id, title) {
                panic!("{path}: id {id} on `{other}` and `{title}`");
            }
        }
        // Each layer is laid out on its own: the top level, and each collapsed row's content.
        let mut layers: Vec<Vec<&Value>> = vec![
            dashboard["panels"]
                .as_array()
                .expect("panels")
                .iter()
                .collect(),
        ];
        for panel in dashboard["panels"].as_array().expect("panels") {
            if let Some(inner) = panel["panels"].as_array().filter(|inner| !inner.is_empty()) {
                layers.push(inner.iter().collect());
            }
        }
        for layer in layers {
            let rects: Vec<(u64, u64, u64, u64, &str)> = layer
                .iter()
                .map(|panel| {
                    let grid = &panel["gridPos"];
                    let get = |key: &str| grid[key].as_u64().expect("gridPos field");
                    assert!(
                        get("x") + get("w") <= 24,
                        "{path}: {} wider than the grid",
                        panel["title"]
                    );
                    (
                        get("x"),
                        get("y"),
                        get("w"),
                        get("h"),
                        panel["title"].as_str().expect("title"),
                    )
                })
                .collect();
            for (index, a) in rects.iter().enumerate() {
                for b in &rects[index + 1..] {
                    let overlap =
                        a.0 < b.0 + b.2 && b.0 < a.0 + a.2 && a.1 < b.1 + b.3 && b.1 < a.1 + a.3;
                    assert!(!overlap, "{path}: `{}` overlaps `{}`", a.4, b.4);
                }
            }
        }
    }
}

#[test]
fn pd_dashboard_reads_the_coordinator_histograms_in_seconds() {
    let (_, pd) = rendered()
        .into_iter()
        .find(|(path, _)| path.ends_with("pd-coordinator-metrics.json"))
        .expect("P/D dashboard");
    let exprs = expressions(&pd).join("\n");
    for metric in metrics_schema::pd_proxy::ALL {
        assert!(
            exprs.contains(metric.name),
            "{} not on the P/D dashboard",
            metric.name
        );
    }
    assert!(!exprs.contains("milliseconds"));
    let titles: Vec<&str> = all_panels(&pd)
        .into_iter()
        .filter_map(|panel| panel["title"].as_str())
        .collect();
    for title in [
        "Avg vLLM TTFT (Prefill)",
        "Avg True TTFT (Coordinator)",
        "Avg vLLM TTFT (Decode)",
        "Total Request Duration (vLLM E2E)",
        "vLLM Prefill Duration (Prefill Pods)",
        "vLLM Decode Duration (Decode Pods)",
        "KV Cache Transfer Metrics (NIXL Connector)",
        "Avg KV Transfer Time",
        "NIXL Descriptors per Transfer",
    ] {
        assert!(titles.contains(&title), "P/D dashboard lacks `{title}`");
    }
}

/// A renamed dashboard must not leave its old file behind.
#[test]
fn dashboards_directory_holds_only_generated_files() {
    let expected: BTreeSet<String> = render().into_iter().map(|(path, _)| path).collect();
    let dir = project_root().join(DIR);
    let found: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("dashboards directory")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".json"))
        .map(|name| format!("{DIR}/{name}"))
        .collect();
    assert_eq!(
        found, expected,
        "delete stale files or run `cargo xtask codegen dashboards`"
    );
}
