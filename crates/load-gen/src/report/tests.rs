//! Unit tests of `report`: the summary text, checked against a snapshot.

use expect_test::expect;

use crate::{
    record::FailureKind,
    stats::{RunInfo, Stats},
};

fn report() -> crate::Report {
    let mut stats = Stats::new(0);
    stats.add_worker(1, "long_isl_short_osl");
    stats.add_worker(2, "long_isl_long_osl");
    for seq in 0..9u64 {
        let mut record = crate::stats::tests::record(
            seq,
            if seq % 2 == 0 {
                "long_isl_short_osl"
            } else {
                "long_isl_long_osl"
            },
            100.0 + seq as f64 * 10.0,
            None,
        );
        if seq == 8 {
            record.failure = Some(FailureKind::Http);
            record.status = Some(500);
        }
        stats.add(&record);
    }
    stats.report(RunInfo {
        workload: "pd-concurrent".to_owned(),
        endpoint: "http://127.0.0.1:8000/v1".to_owned(),
        model: "test-model".to_owned(),
        seed: 0,
        planned_duration_s: Some(30.0),
        duration_s: 30.4,
        interrupted: false,
    })
}

#[test]
fn summary_counts_exactly_and_keeps_the_script_layout() {
    let text = report().summary_text();
    expect![[r#"

        ============================================================
           Traffic Generation Complete
        ============================================================
        Duration:        30s (0.5 minutes)
        Total Requests:  9
        Successful:      8
        Failed:          1
        Success Rate:    88.9%
        Avg Throughput:  0.30 req/s

        Failures by status:
          HTTP 500: 1

        Latency (ms, successful requests)       p50      p90      p99      max
          long_isl_long_osl      e2e     130.0    170.1    170.1    170.1
          long_isl_short_osl     e2e     120.1    160.1    160.1    160.1
          overall                e2e     130.0    170.1    170.1    170.1
        Tokens: 240 prompt (usage) | 400 completion (usage) | 13.2 output tok/s

        Slowest requests (look up the trace id in Tempo/Jaeger):
               180.0ms  trace_id=00000000000000000000000000000008  req-8  long_isl_short_osl  ✗ HTTP 500
               170.0ms  trace_id=00000000000000000000000000000007  req-7  long_isl_long_osl
               160.0ms  trace_id=00000000000000000000000000000006  req-6  long_isl_short_osl
               150.0ms  trace_id=00000000000000000000000000000005  req-5  long_isl_long_osl
               140.0ms  trace_id=00000000000000000000000000000004  req-4  long_isl_short_osl

        Worker Distribution:
          - long_isl_short_osl     Shows maximum True TTFT vs vLLM TTFT gap + large NIXL transfers
          - long_isl_long_osl      Shows prefill vs decode duration breakdown + NIXL metrics
          [Worker 1] long_isl_short_osl completed with 5 requests
          [Worker 2] long_isl_long_osl completed with 4 requests

        Expected Trace Spans:
          - llm_d.pd_proxy.decode: ~9 spans with True TTFT metrics
          - llm_d.pd_proxy.prefill: ~9 spans (when P/D disaggregation active)
          - vllm.llm_request (prefill): ~9 spans on prefill instances
          - vllm.llm_request (decode): ~9 spans on decode instances

        Next Steps:
        ============================================================
        1. Open Grafana P/D Coordinator Dashboard:
           http://localhost:3000/d/pd-coordinator-metrics

        2. Check key metrics in dashboard:
           • True TTFT (Coordinator) - should be higher than vLLM TTFT (Decode)
           • Prefill vs Decode Duration - shows stage separation
           • NIXL KV Transfer Metrics: Avg KV Transfer Time ~50-100ms

        3. Query traces in Tempo:
           {resource.service.name="llm-d-pd-proxy" && name="llm_d.pd_proxy.decode"}
           or the slowest request directly: trace id 00000000000000000000000000000008
    "#]].assert_eq(&text);
}

#[test]
fn report_round_trips_through_json() {
    let report = report();
    let json = serde_json::to_string(&report).unwrap();
    let back: crate::Report = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
}
