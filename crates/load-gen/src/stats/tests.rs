//! Unit tests of `stats`: percentiles, failure keys, the slowest list and the timeline.

use super::*;
use crate::record::FailureKind;

pub(crate) fn record(
    seq: u64,
    pattern: &str,
    e2e_ms: f64,
    failure: Option<(Option<u16>, FailureKind)>,
) -> RequestRecord {
    RequestRecord {
        seq,
        worker: Some(1 + (seq % 2) as u32),
        worker_request: Some(seq / 2 + 1),
        pattern: pattern.to_owned(),
        request_id: format!("req-{seq}"),
        trace_id: format!("{seq:032x}"),
        stream: pattern == "streaming_focused",
        prompt_chars: 100,
        prompt_tokens: 25,
        max_tokens: 50,
        scheduled_ms: None,
        lateness_ms: None,
        start_ms: seq as f64 * 100.0,
        status: match failure {
            None => Some(200),
            Some((status, _)) => status,
        },
        failure: failure.map(|(_, kind)| kind),
        error: None,
        headers_ms: Some(e2e_ms / 2.0),
        ttft_ms: (pattern == "streaming_focused").then_some(e2e_ms / 4.0),
        itl_ms: if pattern == "streaming_focused" {
            vec![1.0, 2.0, 3.0]
        } else {
            Vec::new()
        },
        e2e_ms,
        usage_prompt_tokens: Some(30),
        usage_completion_tokens: Some(50),
    }
}

fn info() -> RunInfo {
    RunInfo {
        workload: "pd-concurrent".to_owned(),
        endpoint: "http://127.0.0.1:1/v1".to_owned(),
        model: "m".to_owned(),
        seed: 0,
        planned_duration_s: Some(10.0),
        duration_s: 10.0,
        interrupted: false,
    }
}

#[test]
fn counts_and_percentiles() {
    let mut stats = Stats::new(0);
    for seq in 0..100 {
        stats.add(&record(seq, "long_isl_long_osl", (seq + 1) as f64, None));
    }
    stats.add(&record(
        100,
        "long_isl_long_osl",
        5.0,
        Some((Some(503), FailureKind::Http)),
    ));
    stats.add(&record(
        101,
        "streaming_focused",
        40.0,
        Some((Some(200), FailureKind::StreamIncomplete)),
    ));
    stats.add(&record(
        102,
        "streaming_focused",
        40.0,
        Some((None, FailureKind::Connect)),
    ));
    let report = stats.report(info());
    assert_eq!(
        (report.total, report.successful, report.failed),
        (103, 100, 3)
    );
    let e2e = report.overall.e2e_ms.unwrap();
    assert_eq!(
        e2e.count, 100,
        "failures are not in the latency percentiles"
    );
    // HDR buckets at 3 significant digits report each value's bucket top (< 0.1 % above).
    let close = |got: f64, want: f64| (got - want).abs() <= want * 0.001;
    assert!(close(e2e.min, 1.0) && close(e2e.p50, 50.0), "{e2e:?}");
    assert!(close(e2e.p99, 99.0) && close(e2e.max, 100.0), "{e2e:?}");
    assert!((e2e.mean - 50.5).abs() < 0.01);
    assert_eq!(
        report
            .failures
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect::<Vec<_>>(),
        [
            ("HTTP 200 stream_incomplete", 1),
            ("HTTP 503", 1),
            ("connect", 1)
        ]
    );
    assert_eq!(report.patterns["streaming_focused"].failed, 2);
    assert_eq!(report.patterns["long_isl_long_osl"].successful, 100);
    assert!((report.requests_per_s - 10.3).abs() < 1e-9);
    assert_eq!(report.overall.usage_completion_tokens, 5000);
    assert_eq!(report.overall.prompt_tokens_sent, 103 * 25);
}

#[test]
fn slowest_requests_are_kept_in_order_with_trace_ids() {
    let mut stats = Stats::new(0);
    for seq in 0..50 {
        stats.add(&record(seq, "p", ((seq * 37) % 50) as f64, None));
    }
    let report = stats.report(info());
    let slowest: Vec<f64> = report.slowest.iter().map(|s| s.e2e_ms).collect();
    assert_eq!(
        slowest,
        [49.0, 48.0, 47.0, 46.0, 45.0, 44.0, 43.0, 42.0, 41.0, 40.0]
    );
    let first = &report.slowest[0];
    let seq = (0..50).find(|s| (s * 37) % 50 == 49).unwrap();
    assert_eq!(first.trace_id, format!("{seq:032x}"));
}

#[test]
fn timeline_buckets_by_completion_second() {
    let mut stats = Stats::new(0);
    // start_ms = seq * 100; completions at 100*seq + 50.
    for seq in 0..25 {
        stats.add(&record(seq, "p", 50.0, None));
    }
    let report = stats.report(info());
    let completed: Vec<u64> = report.timeline.iter().map(|b| b.completed).collect();
    assert_eq!(completed, [10, 10, 5]);
}

#[test]
fn workers_are_counted_and_listed_even_when_idle() {
    let mut stats = Stats::new(0);
    stats.add_worker(1, "a");
    stats.add_worker(2, "b");
    stats.add_worker(3, "c");
    for seq in 0..5 {
        stats.add(&record(seq, "a", 1.0, None));
    }
    let report = stats.report(info());
    let workers: Vec<(u32, u64)> = report
        .workers
        .iter()
        .map(|w| (w.worker, w.requests))
        .collect();
    assert_eq!(workers, [(1, 3), (2, 2), (3, 0)]);
}

#[test]
fn the_scatter_sample_is_bounded() {
    let mut stats = Stats::new(0);
    for seq in 0..5000 {
        stats.add(&record(seq, "p", 1.0, None));
    }
    let report = stats.report(info());
    assert_eq!(report.samples.len(), 2000);
    assert!(
        report
            .samples
            .windows(2)
            .all(|w| w[0].start_ms <= w[1].start_ms)
    );
    assert!(
        report.samples.iter().any(|s| s.start_ms > 250_000.0),
        "late requests are sampled too"
    );
}
