//! The self-contained HTML report: summary and per-pattern tables, throughput and latency
//! over time, end-to-end percentiles per pattern, and a latency scatter whose points carry
//! their trace id as a tooltip. Inline SVG and CSS only; no script, no external asset.

#[cfg(test)]
mod tests;

use std::fmt::Write as _;

use crate::report::{LatencyStats, Report};

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 260.0;
const MARGIN_LEFT: f64 = 60.0;
const MARGIN_BOTTOM: f64 = 30.0;
const MARGIN_TOP: f64 = 10.0;
const COLORS: &[&str] = &[
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
];

impl Report {
    /// The self-contained HTML report (inline SVG charts, no external assets).
    pub fn html(&self) -> String {
        render(self)
    }
}

/// Renders the report as one HTML document.
pub(crate) fn render(report: &Report) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let _ = write_document(&mut out, report);
    out
}

fn write_document(out: &mut String, report: &Report) -> std::fmt::Result {
    writeln!(out, "<!DOCTYPE html>")?;
    writeln!(out, "<html lang=\"en\"><head><meta charset=\"utf-8\">")?;
    writeln!(
        out,
        "<title>load-gen report: {}</title>",
        escape(&report.workload)
    )?;
    writeln!(
        out,
        "<style>body{{font-family:sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}th{{background:#f3f3f3}}td:first-child,th:first-child{{text-align:left}}svg{{background:#fafafa;border:1px solid #ddd}}.axis{{font-size:11px;fill:#555}}code{{font-size:12px}}</style>"
    )?;
    writeln!(out, "</head><body>")?;
    writeln!(out, "<h1>load-gen: {}</h1>", escape(&report.workload))?;
    writeln!(
        out,
        "<p>Endpoint <code>{}</code>, model <code>{}</code>, seed {}{}.</p>",
        escape(&report.endpoint),
        escape(&report.model),
        report.seed,
        if report.interrupted {
            ", interrupted"
        } else {
            ""
        }
    )?;

    writeln!(out, "<h2>Summary</h2><table>")?;
    let rows: [(&str, String); 8] = [
        ("Duration", format!("{:.1} s", report.duration_s)),
        ("Total requests", report.total.to_string()),
        ("Successful", report.successful.to_string()),
        ("Failed", report.failed.to_string()),
        ("Cancelled at shutdown", report.cancelled.to_string()),
        ("Success rate", format!("{:.1} %", report.success_rate_pct)),
        ("Throughput", format!("{:.2} req/s", report.requests_per_s)),
        (
            "Output tokens",
            format!("{:.1} tok/s", report.output_tokens_per_s),
        ),
    ];
    for (name, value) in rows {
        writeln!(out, "<tr><td>{name}</td><td>{}</td></tr>", escape(&value))?;
    }
    writeln!(out, "</table>")?;

    if !report.failures.is_empty() {
        writeln!(
            out,
            "<h2>Failures by status</h2><table><tr><th>status</th><th>count</th></tr>"
        )?;
        for (key, count) in &report.failures {
            writeln!(out, "<tr><td>{}</td><td>{count}</td></tr>", escape(key))?;
        }
        writeln!(out, "</table>")?;
    }

    writeln!(out, "<h2>Latency by pattern (ms, successful requests)</h2>")?;
    writeln!(
        out,
        "<table><tr><th>pattern</th><th>metric</th><th>count</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>max</th></tr>"
    )?;
    let mut groups: Vec<(&str, &crate::report::PatternReport)> = report
        .patterns
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    groups.push(("overall", &report.overall));
    for (name, group) in &groups {
        let metrics = [
            ("e2e", &group.e2e_ms),
            ("ttft", &group.ttft_ms),
            ("itl", &group.itl_ms),
        ];
        for (metric, stats) in metrics {
            if let Some(stats) = stats {
                writeln!(
                    out,
                    "<tr><td>{}</td><td>{metric}</td><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td></tr>",
                    escape(name),
                    stats.count,
                    stats.p50,
                    stats.p90,
                    stats.p95,
                    stats.p99,
                    stats.max
                )?;
            }
        }
    }
    if let Some(late) = &report.schedule_lateness_ms {
        writeln!(
            out,
            "<tr><td>schedule</td><td>lateness</td><td>{}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td></tr>",
            late.count, late.p50, late.p90, late.p95, late.p99, late.max
        )?;
    }
    writeln!(out, "</table>")?;

    writeln!(out, "<h2>End-to-end percentiles by pattern</h2>")?;
    percentile_chart(out, &groups)?;
    writeln!(
        out,
        "<h2>Throughput over time (completed per second; failures in red)</h2>"
    )?;
    throughput_chart(out, report)?;
    writeln!(
        out,
        "<h2>Latency over time (sampled requests; hover for the trace id)</h2>"
    )?;
    scatter_chart(out, report)?;

    if !report.slowest.is_empty() {
        writeln!(
            out,
            "<h2>Slowest requests</h2><table><tr><th>trace id</th><th>request id</th><th>pattern</th><th>start (s)</th><th>e2e (ms)</th><th>status</th></tr>"
        )?;
        for slow in &report.slowest {
            writeln!(
                out,
                "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td>{:.3}</td><td>{:.1}</td><td>{}</td></tr>",
                escape(&slow.trace_id),
                escape(&slow.request_id),
                escape(&slow.pattern),
                slow.start_ms / 1000.0,
                slow.e2e_ms,
                escape(&slow.failure.clone().unwrap_or_else(|| {
                    slow.status
                        .map_or_else(|| "-".to_owned(), |s| s.to_string())
                }))
            )?;
        }
        writeln!(out, "</table>")?;
    }
    writeln!(out, "</body></html>")
}

fn svg_open(out: &mut String) -> std::fmt::Result {
    writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\">"
    )
}

/// Axes with `ticks` labels on y from 0 to `y_max`, and x labels from 0 to `x_max`.
fn axes(out: &mut String, x_max: f64, x_unit: &str, y_max: f64, y_unit: &str) -> std::fmt::Result {
    let bottom = HEIGHT - MARGIN_BOTTOM;
    writeln!(
        out,
        "<line x1=\"{MARGIN_LEFT}\" y1=\"{bottom}\" x2=\"{WIDTH}\" y2=\"{bottom}\" stroke=\"#888\"/><line x1=\"{MARGIN_LEFT}\" y1=\"{MARGIN_TOP}\" x2=\"{MARGIN_LEFT}\" y2=\"{bottom}\" stroke=\"#888\"/>"
    )?;
    for tick in 0..=4 {
        let frac = f64::from(tick) / 4.0;
        let y = bottom - frac * (bottom - MARGIN_TOP);
        writeln!(
            out,
            "<text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            MARGIN_LEFT - 4.0,
            y + 4.0,
            short_number(frac * y_max)
        )?;
        let x = MARGIN_LEFT + frac * (WIDTH - MARGIN_LEFT - 10.0);
        writeln!(
            out,
            "<text class=\"axis\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}{x_unit}</text>",
            HEIGHT - 10.0,
            short_number(frac * x_max)
        )?;
    }
    writeln!(
        out,
        "<text class=\"axis\" x=\"4\" y=\"{:.1}\">{y_unit}</text>",
        MARGIN_TOP + 4.0
    )
}

fn x_pos(value: f64, max: f64) -> f64 {
    MARGIN_LEFT + value / max.max(f64::EPSILON) * (WIDTH - MARGIN_LEFT - 10.0)
}

fn y_pos(value: f64, max: f64) -> f64 {
    let bottom = HEIGHT - MARGIN_BOTTOM;
    bottom - value / max.max(f64::EPSILON) * (bottom - MARGIN_TOP)
}

fn percentile_chart(
    out: &mut String,
    groups: &[(&str, &crate::report::PatternReport)],
) -> std::fmt::Result {
    let points = |s: &LatencyStats| [s.p50, s.p90, s.p95, s.p99, s.p999, s.max];
    let y_max = groups
        .iter()
        .filter_map(|(_, g)| g.e2e_ms.as_ref())
        .map(|s| s.max)
        .fold(0.0, f64::max);
    svg_open(out)?;
    axes(out, 5.0, "", y_max, "ms")?;
    let labels = ["p50", "p90", "p95", "p99", "p99.9", "max"];
    for (idx, label) in labels.iter().enumerate() {
        let x = x_pos(idx as f64, 5.0);
        writeln!(
            out,
            "<text class=\"axis\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>",
            HEIGHT - MARGIN_BOTTOM + 12.0
        )?;
    }
    for (idx, (name, group)) in groups.iter().enumerate() {
        let Some(stats) = &group.e2e_ms else {
            continue;
        };
        let color = COLORS[idx % COLORS.len()];
        let path: Vec<String> = points(stats)
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x_pos(i as f64, 5.0), y_pos(*v, y_max)))
            .collect();
        writeln!(
            out,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"><title>{}</title></polyline>",
            path.join(" "),
            escape(name)
        )?;
        writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{color}\" font-size=\"12\">{}</text>",
            MARGIN_LEFT + 10.0,
            MARGIN_TOP + 14.0 * (idx as f64 + 1.0),
            escape(name)
        )?;
    }
    writeln!(out, "</svg>")
}

fn throughput_chart(out: &mut String, report: &Report) -> std::fmt::Result {
    let seconds = report.timeline.len().max(1) as f64;
    let y_max = report
        .timeline
        .iter()
        .map(|b| (b.completed + b.failed) as f64)
        .fold(1.0, f64::max);
    svg_open(out)?;
    axes(out, seconds, "s", y_max, "req/s")?;
    let bar_width = ((WIDTH - MARGIN_LEFT - 10.0) / seconds).max(1.0);
    for bucket in &report.timeline {
        let x = x_pos(bucket.second as f64, seconds);
        let ok_top = y_pos(bucket.completed as f64, y_max);
        let all_top = y_pos((bucket.completed + bucket.failed) as f64, y_max);
        let bottom = HEIGHT - MARGIN_BOTTOM;
        writeln!(
            out,
            "<rect x=\"{x:.1}\" y=\"{ok_top:.1}\" width=\"{bar_width:.1}\" height=\"{:.1}\" fill=\"#2ca02c\"><title>{}s: {} ok, {} failed, mean {:.1} ms, max {:.1} ms</title></rect>",
            bottom - ok_top,
            bucket.second,
            bucket.completed,
            bucket.failed,
            bucket.e2e_mean_ms,
            bucket.e2e_max_ms
        )?;
        if bucket.failed > 0 {
            writeln!(
                out,
                "<rect x=\"{x:.1}\" y=\"{all_top:.1}\" width=\"{bar_width:.1}\" height=\"{:.1}\" fill=\"#d62728\"/>",
                ok_top - all_top
            )?;
        }
    }
    writeln!(out, "</svg>")
}

fn scatter_chart(out: &mut String, report: &Report) -> std::fmt::Result {
    let x_max = report
        .samples
        .iter()
        .map(|s| s.start_ms / 1000.0)
        .fold(1.0, f64::max);
    let y_max = report.samples.iter().map(|s| s.e2e_ms).fold(1.0, f64::max);
    svg_open(out)?;
    axes(out, x_max, "s", y_max, "ms")?;
    let mut patterns: Vec<&str> = report.patterns.keys().map(String::as_str).collect();
    patterns.sort_unstable();
    for sample in &report.samples {
        let color = if sample.ok {
            let idx = patterns
                .iter()
                .position(|p| *p == sample.pattern)
                .unwrap_or(0);
            COLORS[idx % COLORS.len()]
        } else {
            "#d62728"
        };
        writeln!(
            out,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{color}\"><title>trace_id {} | {} | {:.1} ms</title></circle>",
            x_pos(sample.start_ms / 1000.0, x_max),
            y_pos(sample.e2e_ms, y_max),
            escape(&sample.trace_id),
            escape(&sample.pattern),
            sample.e2e_ms
        )?;
    }
    writeln!(out, "</svg>")
}

fn short_number(value: f64) -> String {
    if value >= 10_000.0 {
        format!("{:.0}k", value / 1000.0)
    } else if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// Escapes text for HTML content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}
