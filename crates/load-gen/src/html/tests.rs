//! Unit tests of `html`: self-contained, escaped, with the charts and trace ids.

use super::*;
use crate::stats::{RunInfo, Stats, tests::record};

fn report() -> Report {
    let mut stats = Stats::new(0);
    for seq in 0..30 {
        stats.add(&record(
            seq,
            if seq % 3 == 0 {
                "streaming_focused"
            } else {
                "<b>pattern</b>"
            },
            10.0 + seq as f64,
            None,
        ));
    }
    stats.report(RunInfo {
        workload: "demo & test".to_owned(),
        endpoint: "http://127.0.0.1:1/v1".to_owned(),
        model: "m".to_owned(),
        seed: 1,
        planned_duration_s: None,
        duration_s: 3.0,
        interrupted: true,
    })
}

#[test]
fn html_is_self_contained() {
    let html = report().html();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    assert_eq!(
        html.matches("<svg").count(),
        3,
        "percentiles, throughput, scatter"
    );
    for external in ["src=", "href=", "<script", "<link", "@import", "url("] {
        assert!(
            !html.contains(external),
            "no external assets: found {external}"
        );
    }
}

#[test]
fn html_escapes_text_and_shows_trace_ids() {
    let report = report();
    let html = report.html();
    assert!(html.contains("demo &amp; test"));
    assert!(html.contains("&lt;b&gt;pattern&lt;/b&gt;"));
    assert!(!html.contains("<b>pattern</b>"));
    let slowest = &report.slowest[0].trace_id;
    assert!(
        html.contains(&format!("trace_id {slowest}")),
        "scatter tooltip"
    );
    assert!(
        html.contains(&format!("<code>{slowest}</code>")),
        "slowest table"
    );
}
