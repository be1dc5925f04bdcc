//! Unit tests of `console`: the upstream line formats.

use std::time::{Duration, UNIX_EPOCH};

use super::*;
use crate::record::{FailureKind, RequestRecord};

fn record(status: Option<u16>, failure: Option<FailureKind>) -> RequestRecord {
    RequestRecord {
        seq: 6,
        worker: Some(3),
        worker_request: Some(7),
        pattern: "mixed_balanced".to_owned(),
        request_id: "worker3-req7-1234567".to_owned(),
        trace_id: "0af7651916cd43dd8448eb211c80319c".to_owned(),
        stream: false,
        prompt_chars: 1228,
        prompt_tokens: 300,
        max_tokens: 75,
        scheduled_ms: None,
        lateness_ms: None,
        start_ms: 10.0,
        status,
        failure,
        error: None,
        headers_ms: Some(5.0),
        ttft_ms: None,
        itl_ms: Vec::new(),
        e2e_ms: 1234.9,
        usage_prompt_tokens: Some(310),
        usage_completion_tokens: Some(75),
    }
}

#[test]
fn clock_is_utc_hh_mm_ss() {
    let at = UNIX_EPOCH + Duration::from_secs(86_400 * 3 + 13 * 3600 + 4 * 60 + 5);
    assert_eq!(clock(at), "13:04:05");
}

#[test]
fn request_lines_match_the_script() {
    assert_eq!(
        request_line("13:04:05", &record(Some(200), None)),
        "[13:04:05] W3-7 | 1228ch/75t | 1234ms | ✓"
    );
    assert_eq!(
        request_line("13:04:05", &record(Some(503), Some(FailureKind::Http))),
        "[13:04:05] W3-7 | 1228ch/75t | 1234ms | ✗ HTTP503"
    );
    assert_eq!(
        request_line(
            "13:04:05",
            &record(Some(200), Some(FailureKind::StreamIncomplete))
        ),
        "[13:04:05] W3-7 | 1228ch/75t | 1234ms | ✗ HTTP200 stream_incomplete"
    );
    let mut open_loop = record(None, Some(FailureKind::Connect));
    open_loop.worker = None;
    open_loop.worker_request = None;
    assert_eq!(
        request_line("13:04:05", &open_loop),
        "[13:04:05] R7 | 1228ch/75t | 1234ms | ✗ connect"
    );
}

#[test]
fn progress_line_matches_the_script() {
    let snapshot = Snapshot {
        total: 31,
        successful: 30,
        failed: 1,
        in_flight: 6,
    };
    assert_eq!(
        progress_line(
            "10:00:10",
            snapshot,
            Duration::from_secs(10),
            Remaining::Seconds(290)
        ),
        "[10:00:10] Progress: 31 total | 30 success | 1 failed | 96% success | 3.1 req/s | Remaining: 290s"
    );
    assert_eq!(
        progress_line(
            "10:00:10",
            Snapshot::default(),
            Duration::from_secs(10),
            Remaining::Requests(5)
        ),
        "[10:00:10] Progress: 0 total | 0 success | 0 failed | 0% success | 0.0 req/s | Remaining: 5 requests"
    );
}
