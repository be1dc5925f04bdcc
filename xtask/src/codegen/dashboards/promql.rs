//! PromQL for the dashboards, built from `MetricDef` constants so a name is never retyped.
//! Each builder asserts the family's kind (no `rate()` of a gauge, no quantile of a counter).
//!
//! Windows follow llm-d's conventions: `$__rate_interval` in time series, `5m` in stats,
//! `$__range` for totals over the dashboard's time range.

use metrics_schema::{Kind, MetricDef, labels};

/// Rate window of time-series panels.
pub(super) const RATE: &str = "$__rate_interval";
/// Rate window of stat panels.
pub(super) const STAT: &str = "5m";
/// Window of "total over the selected range" stats.
pub(super) const RANGE: &str = "$__range";

/// Which template variables filter a dashboard's selectors.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Scope {
    /// `model_name=~"$model_name"` on families that carry `model_name`.
    pub(super) model_name: bool,
    /// `namespace=~"$namespace"` on every selector (a target label set by the PodMonitor).
    pub(super) namespace: bool,
}

/// Extra label matchers of one selector: `(label, op, value)`.
pub(super) type Matchers<'a> = &'a [(&'a str, &'a str, &'a str)];

/// `metric<suffix>{matchers}` with the scope's variables applied.
pub(super) fn selector(metric: &MetricDef, suffix: &str, scope: Scope, extra: Matchers) -> String {
    let mut matchers: Vec<String> = Vec::new();
    if scope.model_name && metric.labels.contains(&labels::MODEL_NAME) {
        matchers.push(format!("{}=~\"$model_name\"", labels::MODEL_NAME.name));
    }
    if scope.namespace {
        matchers.push("namespace=~\"$namespace\"".to_owned());
    }
    for (label, op, value) in extra {
        matchers.push(format!("{label}{op}\"{value}\""));
    }
    if matchers.is_empty() {
        format!("{}{suffix}", metric.name)
    } else {
        format!("{}{suffix}{{{}}}", metric.name, matchers.join(", "))
    }
}

fn aggregate(op: &str, by: &[&str], inner: &str) -> String {
    if by.is_empty() {
        format!("{op}({inner})")
    } else {
        format!("{op} by ({}) ({inner})", by.join(", "))
    }
}

/// `sum [by (..)] (rate(counter[window]))`.
pub(super) fn sum_rate(
    metric: &MetricDef,
    by: &[&str],
    scope: Scope,
    extra: Matchers,
    window: &str,
) -> String {
    assert_eq!(
        metric.kind,
        Kind::Counter,
        "{} is not a counter",
        metric.name
    );
    let selector = selector(metric, "", scope, extra);
    aggregate("sum", by, &format!("rate({selector}[{window}])"))
}

/// `sum [by (..)] (increase(counter[window]))`.
pub(super) fn sum_increase(
    metric: &MetricDef,
    by: &[&str],
    scope: Scope,
    extra: Matchers,
    window: &str,
) -> String {
    assert_eq!(
        metric.kind,
        Kind::Counter,
        "{} is not a counter",
        metric.name
    );
    let selector = selector(metric, "", scope, extra);
    aggregate("sum", by, &format!("increase({selector}[{window}])"))
}

/// `histogram_quantile(q, sum by (le[, ..]) (rate(histogram_bucket[window])))`.
pub(super) fn quantile(
    q: f64,
    metric: &MetricDef,
    by: &[&str],
    scope: Scope,
    extra: Matchers,
    window: &str,
) -> String {
    assert_eq!(
        metric.kind,
        Kind::Histogram,
        "{} is not a histogram",
        metric.name
    );
    let selector = selector(metric, "_bucket", scope, extra);
    let mut by_le = vec!["le"];
    by_le.extend_from_slice(by);
    format!(
        "histogram_quantile({q}, {})",
        aggregate("sum", &by_le, &format!("rate({selector}[{window}])"))
    )
}

/// The mean of a histogram over `window`: `sum(rate(_sum)) / sum(rate(_count))`.
pub(super) fn mean(
    metric: &MetricDef,
    by: &[&str],
    scope: Scope,
    extra: Matchers,
    window: &str,
) -> String {
    assert_eq!(
        metric.kind,
        Kind::Histogram,
        "{} is not a histogram",
        metric.name
    );
    let sum = selector(metric, "_sum", scope, extra);
    let count = selector(metric, "_count", scope, extra);
    format!(
        "{} / {}",
        aggregate("sum", by, &format!("rate({sum}[{window}])")),
        aggregate("sum", by, &format!("rate({count}[{window}])"))
    )
}

/// Observations of a histogram over `window`: `sum(increase(_count))`.
pub(super) fn count_increase(metric: &MetricDef, scope: Scope, window: &str) -> String {
    assert_eq!(
        metric.kind,
        Kind::Histogram,
        "{} is not a histogram",
        metric.name
    );
    let count = selector(metric, "_count", scope, &[]);
    format!("sum(increase({count}[{window}]))")
}

/// Bucket increases for a heatmap: `sum by (le) (increase(_bucket[window]))`.
pub(super) fn bucket_increase(metric: &MetricDef, scope: Scope, window: &str) -> String {
    assert_eq!(
        metric.kind,
        Kind::Histogram,
        "{} is not a histogram",
        metric.name
    );
    let selector = selector(metric, "_bucket", scope, &[]);
    format!("sum by (le) (increase({selector}[{window}]))")
}

/// `op [by (..)] (gauge{..})`.
pub(super) fn gauge(
    op: &str,
    metric: &MetricDef,
    by: &[&str],
    scope: Scope,
    extra: Matchers,
) -> String {
    assert_eq!(metric.kind, Kind::Gauge, "{} is not a gauge", metric.name);
    aggregate(op, by, &selector(metric, "", scope, extra))
}

/// The three quantiles every latency panel shows, as `(q, legend)`.
pub(super) const QUANTILES: &[(f64, &str)] = &[(0.5, "p50"), (0.95, "p95"), (0.99, "p99")];

/// A legend showing the given labels: `{{a}} {{b}}`.
pub(super) fn legend(labels: &[&str]) -> String {
    labels
        .iter()
        .map(|label| format!("{{{{{label}}}}}"))
        .collect::<Vec<_>>()
        .join(" ")
}
