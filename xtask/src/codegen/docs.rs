//! `docs/generated/metrics.md`: every metric, label and span of `metrics-schema` as tables.

use std::fmt::Write as _;

use metrics_schema::{
    AttrType, Buckets, Kind, MetricDef, Origin, SpanKind, Stability, Unit, labels, spans,
};

use super::generated_header;

/// Where the metrics reference lives, relative to the workspace root.
pub(super) const METRICS_MD: &str = "docs/generated/metrics.md";

/// Renders the metrics reference.
pub(super) fn metrics_md() -> String {
    let mut out = generated_header("docs", ("<!-- ", " -->"));
    out.push_str(
        "\n# Metrics and spans\n\n\
         Every metric, label and span of the stack, from the `metrics-schema` crate. \
         Counters are listed with their exposed `_total` name; histograms also expose \
         `_bucket`, `_sum` and `_count`. Origin `ours` follows our naming rules; `upstream` \
         names are reproduced exactly from the source given.\n",
    );

    let metrics = metrics_schema::all();
    let _ = write!(out, "\n## Metrics ({})\n\n", metrics.len());
    out.push_str("| name | kind | unit | labels | buckets | origin | stability | help |\n");
    out.push_str("|---|---|---|---|---|---|---|---|\n");
    for metric in &metrics {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            name_cell(metric),
            kind(metric.kind),
            unit(metric.unit),
            code_list(&metric.label_names()),
            buckets(metric),
            origin(metric.origin),
            stability(metric.stability),
            cell(metric.help.trim_end()),
        );
    }

    out.push_str("\n## Metrics by component\n\n");
    for (module, module_metrics) in metrics_schema::MODULES {
        let mut names: Vec<&str> = module_metrics.iter().map(|metric| metric.name).collect();
        names.sort_unstable();
        let listed = if names.is_empty() {
            "(none yet)".to_owned()
        } else {
            code_list(&names)
        };
        let _ = writeln!(out, "* `metrics_schema::{module}`: {listed}");
    }

    let mut label_rows: Vec<(&str, &str)> = labels::ALL
        .iter()
        .map(|label| (label.name, label.help))
        .collect();
    label_rows.sort_unstable();
    let _ = write!(out, "\n## Labels ({})\n\n", label_rows.len());
    out.push_str("| label | meaning |\n|---|---|\n");
    for (name, help) in label_rows {
        let _ = writeln!(out, "| `{name}` | {} |", cell(help));
    }

    let mut span_defs: Vec<_> = spans::ALL_SPANS.to_vec();
    span_defs.sort_by_key(|span| span.name);
    let _ = write!(out, "\n## Spans ({})\n", span_defs.len());
    for span in span_defs {
        let _ = write!(
            out,
            "\n### `{}`\n\n{} Kind {}; origin {}.\n\n",
            span.name,
            span.help,
            span_kind(span.kind),
            origin(span.origin),
        );
        out.push_str("| attribute | type | origin | meaning |\n|---|---|---|---|\n");
        for attr in span.attributes {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} |",
                attr.key,
                attr_type(attr.ty),
                origin(attr.origin),
                cell(attr.help),
            );
        }
    }
    out
}

fn name_cell(metric: &MetricDef) -> String {
    match metric.deprecated_alias {
        Some(alias) => format!("`{}` (deprecated alias `{alias}`)", metric.name),
        None => format!("`{}`", metric.name),
    }
}

fn kind(kind: Kind) -> &'static str {
    match kind {
        Kind::Counter => "counter",
        Kind::Gauge => "gauge",
        Kind::Histogram => "histogram",
    }
}

fn unit(unit: Unit) -> &'static str {
    match unit {
        Unit::Seconds => "seconds",
        Unit::Bytes => "bytes",
        Unit::Tokens => "tokens",
        Unit::Requests => "requests",
        Unit::Blocks => "blocks",
        Unit::Events => "events",
        Unit::Ratio => "ratio",
        Unit::Info => "info",
        Unit::Count => "count",
    }
}

fn stability(stability: Stability) -> &'static str {
    match stability {
        Stability::Stable => "stable",
        Stability::Beta => "beta",
        Stability::Alpha => "alpha",
    }
}

fn span_kind(kind: SpanKind) -> &'static str {
    match kind {
        SpanKind::Server => "SERVER",
        SpanKind::Client => "CLIENT",
        SpanKind::Internal => "INTERNAL",
    }
}

fn attr_type(ty: AttrType) -> &'static str {
    match ty {
        AttrType::String => "string",
        AttrType::Int => "int",
        AttrType::Float => "float",
        AttrType::Bool => "bool",
    }
}

fn origin(origin: Origin) -> String {
    match origin {
        Origin::Ours => "ours".to_owned(),
        Origin::Upstream { source } => format!("upstream: {}", cell(source)),
    }
}

fn buckets(metric: &MetricDef) -> String {
    match metric.buckets {
        Buckets::None => String::new(),
        Buckets::OneTwoFiveUpTo => "1, 2, 5, 10, 20, 50, … up to `max_model_len`".to_owned(),
        Buckets::Explicit(bounds) => bounds
            .iter()
            .map(f64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn code_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Makes text safe inside a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}
