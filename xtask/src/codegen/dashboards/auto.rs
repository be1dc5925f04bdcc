//! Rows derived from the schema alone (STYLE rule 20): one panel per metric family, so a
//! family added to `metrics-schema` appears on a dashboard without anyone writing a panel.
//!
//! * counter → `sum by (labels) (rate(x[$__rate_interval]))` time series;
//! * histogram → p50/p95/p99 from `x_bucket`;
//! * gauge → time series of `sum`/`max by (labels)`; `_info` gauges → a stat of their series.

use metrics_schema::{Kind, MetricDef, Unit, labels};

use super::{
    model::{Panel, Row, Target},
    promql::{QUANTILES, RATE, Scope, gauge, legend, quantile, sum_rate},
};

/// The collapsed-or-not row of every family of one `metrics_schema::MODULES` entry, sorted by
/// name.
pub(super) fn component_row(
    module: &str,
    metrics: &[&'static MetricDef],
    scope: Scope,
    collapsed: bool,
) -> Row {
    let mut metrics = metrics.to_vec();
    metrics.sort_by_key(|metric| metric.name);
    let panels = metrics
        .into_iter()
        .map(|metric| metric_panel(metric, scope))
        .collect();
    let title = format!("All metrics: metrics_schema::{module}");
    if collapsed {
        Row::collapsed(title, panels)
    } else {
        Row::new(title, panels)
    }
}

/// Labels worth splitting a derived panel by: all of the family's, except the data-parallel
/// engine index.
fn split_labels(metric: &MetricDef) -> Vec<&'static str> {
    metric
        .labels
        .iter()
        .filter(|label| **label != labels::ENGINE)
        .map(|label| label.name)
        .collect()
}

fn metric_panel(metric: &'static MetricDef, scope: Scope) -> Panel {
    let description = format!("{} ({:?}, `{}`)", metric.help, metric.kind, metric.name);
    let by = split_labels(metric);
    let legend_all = if by.is_empty() {
        metric.name.to_owned()
    } else {
        legend(&by)
    };
    let panel = match (metric.kind, metric.unit) {
        (Kind::Counter, unit) => Panel::timeseries(
            metric.name,
            match unit {
                Unit::Requests => "reqps",
                Unit::Bytes => "Bps",
                _ => "short",
            },
            vec![Target::new(
                sum_rate(metric, &by, scope, &[], RATE),
                legend_all,
            )],
        ),
        (Kind::Histogram, unit) => Panel::timeseries(
            metric.name,
            value_unit(unit),
            QUANTILES
                .iter()
                .map(|(q, legend)| {
                    Target::new(quantile(*q, metric, &[], scope, &[], RATE), *legend)
                })
                .collect(),
        ),
        (Kind::Gauge, Unit::Info) => Panel::stat(
            metric.name,
            "short",
            Target::new(gauge("count", metric, &[], scope, &[]), "series"),
        ),
        (Kind::Gauge, unit) => {
            let op = if unit == Unit::Ratio { "max" } else { "sum" };
            Panel::timeseries(
                metric.name,
                value_unit(unit),
                vec![Target::new(gauge(op, metric, &by, scope, &[]), legend_all)],
            )
        }
    };
    panel.describe(description).size(8, 7)
}

fn value_unit(unit: Unit) -> &'static str {
    match unit {
        Unit::Seconds => "s",
        Unit::Bytes => "bytes",
        Unit::Ratio => "percentunit",
        Unit::Tokens | Unit::Requests | Unit::Blocks | Unit::Events | Unit::Info | Unit::Count => {
            "short"
        }
    }
}
