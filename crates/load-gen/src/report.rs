//! The result of a run: counts, rates, failures by status, latency percentiles per pattern and
//! overall, schedule lateness, a per-second timeline and the slowest requests with their trace
//! ids; rendered as the upstream summary text or as JSON.

#[cfg(test)]
mod tests;

use std::{collections::BTreeMap, fmt::Write as _};

use serde::{Deserialize, Serialize};

use crate::pattern::Pattern;

/// Summary of one latency distribution, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencyStats {
    pub count: u64,
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

/// Counts and latencies of one pattern (or of all requests).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PatternReport {
    pub total: u64,
    pub successful: u64,
    pub failed: u64,
    /// Streaming requests among `total`.
    pub streamed: u64,
    /// End-to-end latency of successful requests.
    pub e2e_ms: Option<LatencyStats>,
    /// Time to response headers of successful requests.
    pub headers_ms: Option<LatencyStats>,
    /// Time to first token of successful streaming requests.
    pub ttft_ms: Option<LatencyStats>,
    /// Inter-token gaps of successful streaming requests.
    pub itl_ms: Option<LatencyStats>,
    /// Prompt content tokens sent (stack tokenizer, no template), all requests.
    pub prompt_tokens_sent: u64,
    /// `usage.prompt_tokens` summed over successful requests.
    pub usage_prompt_tokens: u64,
    /// `usage.completion_tokens` summed over successful requests.
    pub usage_completion_tokens: u64,
}

/// One second of the run.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct TimelineBucket {
    /// Seconds since the start (requests are bucketed by completion time).
    pub second: u64,
    pub completed: u64,
    pub failed: u64,
    /// Mean and max end-to-end latency of the successful requests completed in this second.
    pub e2e_mean_ms: f64,
    pub e2e_max_ms: f64,
}

/// A request worth looking up in the tracing backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlowRequest {
    pub trace_id: String,
    pub request_id: String,
    pub pattern: String,
    pub start_ms: f64,
    pub e2e_ms: f64,
    pub status: Option<u16>,
    pub failure: Option<String>,
}

/// One point of the latency scatter plot (a seeded sample of requests).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplePoint {
    pub start_ms: f64,
    pub e2e_ms: f64,
    pub ok: bool,
    pub trace_id: String,
    pub pattern: String,
}

/// A closed-loop worker's share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerReport {
    pub worker: u32,
    pub pattern: String,
    pub requests: u64,
}

/// The result of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// `pd-concurrent` or the scenario's name.
    pub workload: String,
    pub endpoint: String,
    pub model: String,
    pub seed: u64,
    /// Configured duration in seconds, if any.
    pub planned_duration_s: Option<f64>,
    /// Wall time from the first request start to the last response, in seconds.
    pub duration_s: f64,
    /// Stopped by Ctrl-C or the shutdown future.
    pub interrupted: bool,
    pub total: u64,
    pub successful: u64,
    pub failed: u64,
    /// Requests in flight when the run was interrupted; not counted in `total`.
    pub cancelled: u64,
    pub success_rate_pct: f64,
    pub requests_per_s: f64,
    /// `usage.completion_tokens` per second over the run.
    pub output_tokens_per_s: f64,
    /// Failures by `HTTP <status>[ <kind>]` or kind when no status arrived.
    pub failures: BTreeMap<String, u64>,
    pub overall: PatternReport,
    pub patterns: BTreeMap<String, PatternReport>,
    /// Open loop: actual send start minus scheduled start.
    pub schedule_lateness_ms: Option<LatencyStats>,
    pub workers: Vec<WorkerReport>,
    pub timeline: Vec<TimelineBucket>,
    /// The slowest requests, slowest first.
    pub slowest: Vec<SlowRequest>,
    /// A seeded sample of requests for the HTML scatter plot.
    pub samples: Vec<SamplePoint>,
}

const RULE: &str = "============================================================";

impl Report {
    /// The final summary block: the upstream script's lines with correct counts, followed by
    /// failures by status, latency percentiles per pattern and the slowest trace ids.
    pub fn summary_text(&self) -> String {
        let mut out = String::new();
        let _ = self.write_summary(&mut out);
        out
    }

    fn write_summary(&self, out: &mut String) -> std::fmt::Result {
        writeln!(out)?;
        writeln!(out, "{RULE}")?;
        if self.interrupted {
            writeln!(out, "   Traffic Generation Interrupted")?;
        } else {
            writeln!(out, "   Traffic Generation Complete")?;
        }
        writeln!(out, "{RULE}")?;
        let minutes = self
            .planned_duration_s
            .map(|s| format_minutes(s / 60.0))
            .unwrap_or_else(|| format_minutes(self.duration_s / 60.0));
        writeln!(
            out,
            "Duration:        {}s ({minutes} minutes)",
            self.duration_s.round() as u64
        )?;
        writeln!(out, "Total Requests:  {}", self.total)?;
        writeln!(out, "Successful:      {}", self.successful)?;
        writeln!(out, "Failed:          {}", self.failed)?;
        writeln!(out, "Success Rate:    {:.1}%", self.success_rate_pct)?;
        writeln!(out, "Avg Throughput:  {:.2} req/s", self.requests_per_s)?;
        if self.cancelled > 0 {
            writeln!(
                out,
                "Cancelled:       {} (in flight at shutdown, not counted)",
                self.cancelled
            )?;
        }
        if !self.failures.is_empty() {
            writeln!(out)?;
            writeln!(out, "Failures by status:")?;
            for (key, count) in &self.failures {
                writeln!(out, "  {key}: {count}")?;
            }
        }
        writeln!(out)?;
        writeln!(
            out,
            "Latency (ms, successful requests)       p50      p90      p99      max"
        )?;
        let mut rows: Vec<(&str, &PatternReport)> =
            self.patterns.iter().map(|(k, v)| (k.as_str(), v)).collect();
        rows.push(("overall", &self.overall));
        for (name, pattern) in rows {
            if let Some(e2e) = &pattern.e2e_ms {
                writeln!(out, "  {:<22} e2e  {}", name, quantiles(e2e))?;
            }
            if let Some(ttft) = &pattern.ttft_ms {
                writeln!(out, "  {:<22} ttft {}", name, quantiles(ttft))?;
            }
            if let Some(itl) = &pattern.itl_ms {
                writeln!(out, "  {:<22} itl  {}", name, quantiles(itl))?;
            }
        }
        if let Some(lateness) = &self.schedule_lateness_ms {
            writeln!(out, "  {:<22} late {}", "schedule", quantiles(lateness))?;
        }
        writeln!(
            out,
            "Tokens: {} prompt (usage) | {} completion (usage) | {:.1} output tok/s",
            self.overall.usage_prompt_tokens,
            self.overall.usage_completion_tokens,
            self.output_tokens_per_s
        )?;
        if !self.slowest.is_empty() {
            writeln!(out)?;
            writeln!(
                out,
                "Slowest requests (look up the trace id in Tempo/Jaeger):"
            )?;
            for slow in self.slowest.iter().take(5) {
                writeln!(
                    out,
                    "  {:>10.1}ms  trace_id={}  {}  {}{}",
                    slow.e2e_ms,
                    slow.trace_id,
                    slow.request_id,
                    slow.pattern,
                    slow.failure
                        .as_deref()
                        .map(|failure| format!("  ✗ {failure}"))
                        .unwrap_or_default()
                )?;
            }
        }
        if self.workload == "pd-concurrent" {
            self.write_pd_trailer(out)?;
        }
        Ok(())
    }

    fn write_pd_trailer(&self, out: &mut String) -> std::fmt::Result {
        writeln!(out)?;
        writeln!(out, "Worker Distribution:")?;
        let mut seen = Vec::new();
        for worker in &self.workers {
            if !seen.contains(&worker.pattern) {
                seen.push(worker.pattern.clone());
            }
        }
        for pattern in Pattern::ROTATION {
            if seen.iter().any(|p| p == pattern.name()) && !seen.is_empty() {
                writeln!(out, "  - {:<22} {}", pattern.name(), pattern.description())?;
                seen.retain(|p| p != pattern.name());
            }
        }
        for worker in &self.workers {
            writeln!(
                out,
                "  [Worker {}] {} completed with {} requests",
                worker.worker, worker.pattern, worker.requests
            )?;
        }
        let total = self.total;
        writeln!(out)?;
        writeln!(out, "Expected Trace Spans:")?;
        writeln!(
            out,
            "  - llm_d.pd_proxy.decode: ~{total} spans with True TTFT metrics"
        )?;
        writeln!(
            out,
            "  - llm_d.pd_proxy.prefill: ~{total} spans (when P/D disaggregation active)"
        )?;
        writeln!(
            out,
            "  - vllm.llm_request (prefill): ~{total} spans on prefill instances"
        )?;
        writeln!(
            out,
            "  - vllm.llm_request (decode): ~{total} spans on decode instances"
        )?;
        writeln!(out)?;
        writeln!(out, "Next Steps:")?;
        writeln!(out, "{RULE}")?;
        writeln!(out, "1. Open Grafana P/D Coordinator Dashboard:")?;
        writeln!(out, "   http://localhost:3000/d/pd-coordinator-metrics")?;
        writeln!(out)?;
        writeln!(out, "2. Check key metrics in dashboard:")?;
        writeln!(
            out,
            "   • True TTFT (Coordinator) - should be higher than vLLM TTFT (Decode)"
        )?;
        writeln!(
            out,
            "   • Prefill vs Decode Duration - shows stage separation"
        )?;
        writeln!(
            out,
            "   • NIXL KV Transfer Metrics: Avg KV Transfer Time ~50-100ms"
        )?;
        writeln!(out)?;
        writeln!(out, "3. Query traces in Tempo:")?;
        writeln!(
            out,
            "   {{resource.service.name=\"llm-d-pd-proxy\" && name=\"llm_d.pd_proxy.decode\"}}"
        )?;
        if let Some(slow) = self.slowest.first() {
            writeln!(
                out,
                "   or the slowest request directly: trace id {}",
                slow.trace_id
            )?;
        }
        Ok(())
    }
}

/// `p50 p90 p99 max` right-aligned in 8-character columns.
fn quantiles(stats: &LatencyStats) -> String {
    format!(
        "{:>8.1} {:>8.1} {:>8.1} {:>8.1}",
        stats.p50, stats.p90, stats.p99, stats.max
    )
}

/// Whole minutes without a decimal point, fractions with up to two decimals.
fn format_minutes(minutes: f64) -> String {
    if (minutes - minutes.round()).abs() < 1e-9 {
        format!("{}", minutes.round() as u64)
    } else {
        let text = format!("{minutes:.2}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}
