//! Aggregation of request records into the [`Report`]: HDR histograms (microsecond
//! resolution, 3 significant digits) per pattern and overall, failures by status, a
//! per-second timeline, the slowest requests and a seeded sample for the scatter plot.

#[cfg(test)]
pub(crate) mod tests;

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::{
    record::RequestRecord,
    report::{
        LatencyStats, PatternReport, Report, SamplePoint, SlowRequest, TimelineBucket, WorkerReport,
    },
};

/// How many slowest requests the report keeps.
const SLOWEST: usize = 10;
/// How many requests the scatter plot sample keeps.
const SAMPLES: usize = 2000;

/// A latency histogram in microseconds.
#[derive(Debug, Clone)]
pub(crate) struct LatencyHistogram {
    histogram: Histogram<u64>,
}

impl Default for LatencyHistogram {
    fn default() -> LatencyHistogram {
        LatencyHistogram {
            // Auto-resizing, so no value is ever rejected as out of range; `new` only fails
            // for more than 5 significant figures.
            histogram: Histogram::new(3).expect("3 significant figures are valid"),
        }
    }
}

impl LatencyHistogram {
    pub(crate) fn record_ms(&mut self, value_ms: f64) {
        let micros = (value_ms * 1000.0).round().max(0.0) as u64;
        // Auto-resize makes this infallible.
        let _ = self.histogram.record(micros);
    }

    pub(crate) fn stats(&self) -> Option<LatencyStats> {
        let h = &self.histogram;
        if h.is_empty() {
            return None;
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        Some(LatencyStats {
            count: h.len(),
            min: ms(h.min()),
            mean: h.mean().round() / 1000.0,
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        })
    }
}

#[derive(Debug, Default)]
struct Group {
    total: u64,
    successful: u64,
    failed: u64,
    streamed: u64,
    e2e: LatencyHistogram,
    headers: LatencyHistogram,
    ttft: LatencyHistogram,
    itl: LatencyHistogram,
    prompt_tokens_sent: u64,
    usage_prompt_tokens: u64,
    usage_completion_tokens: u64,
}

impl Group {
    fn add(&mut self, record: &RequestRecord) {
        self.total += 1;
        self.streamed += u64::from(record.stream);
        self.prompt_tokens_sent += record.prompt_tokens as u64;
        if !record.is_success() {
            self.failed += 1;
            return;
        }
        self.successful += 1;
        self.e2e.record_ms(record.e2e_ms);
        if let Some(headers) = record.headers_ms {
            self.headers.record_ms(headers);
        }
        if let Some(ttft) = record.ttft_ms {
            self.ttft.record_ms(ttft);
        }
        for gap in &record.itl_ms {
            self.itl.record_ms(*gap);
        }
        self.usage_prompt_tokens += record.usage_prompt_tokens.unwrap_or(0);
        self.usage_completion_tokens += record.usage_completion_tokens.unwrap_or(0);
    }

    fn report(&self) -> PatternReport {
        PatternReport {
            total: self.total,
            successful: self.successful,
            failed: self.failed,
            streamed: self.streamed,
            e2e_ms: self.e2e.stats(),
            headers_ms: self.headers.stats(),
            ttft_ms: self.ttft.stats(),
            itl_ms: self.itl.stats(),
            prompt_tokens_sent: self.prompt_tokens_sent,
            usage_prompt_tokens: self.usage_prompt_tokens,
            usage_completion_tokens: self.usage_completion_tokens,
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Second {
    completed: u64,
    failed: u64,
    e2e_sum_ms: f64,
    e2e_max_ms: f64,
}

/// Everything needed to build the report, fed one record at a time.
#[derive(Debug)]
pub(crate) struct Stats {
    overall: Group,
    patterns: BTreeMap<String, Group>,
    failures: BTreeMap<String, u64>,
    lateness: LatencyHistogram,
    seconds: Vec<Second>,
    slowest: Vec<SlowRequest>,
    samples: Vec<SamplePoint>,
    seen: u64,
    sample_rng: StdRng,
    workers: BTreeMap<u32, (String, u64)>,
    cancelled: u64,
}

/// Run facts the records do not carry.
#[derive(Debug, Clone)]
pub(crate) struct RunInfo {
    pub(crate) workload: String,
    pub(crate) endpoint: String,
    pub(crate) model: String,
    pub(crate) seed: u64,
    pub(crate) planned_duration_s: Option<f64>,
    pub(crate) duration_s: f64,
    pub(crate) interrupted: bool,
}

impl Stats {
    pub(crate) fn new(seed: u64) -> Stats {
        Stats {
            overall: Group::default(),
            patterns: BTreeMap::new(),
            failures: BTreeMap::new(),
            lateness: LatencyHistogram::default(),
            seconds: Vec::new(),
            slowest: Vec::new(),
            samples: Vec::new(),
            seen: 0,
            sample_rng: StdRng::seed_from_u64(seed ^ 0x5a3b_1e00),
            workers: BTreeMap::new(),
            cancelled: 0,
        }
    }

    /// Registers a closed-loop worker so it appears even with zero requests.
    pub(crate) fn add_worker(&mut self, worker: u32, pattern: &str) {
        self.workers.insert(worker, (pattern.to_owned(), 0));
    }

    pub(crate) fn add_cancelled(&mut self) {
        self.cancelled += 1;
    }

    pub(crate) fn add(&mut self, record: &RequestRecord) {
        self.overall.add(record);
        match self.patterns.get_mut(&record.pattern) {
            Some(group) => group.add(record),
            None => {
                let mut group = Group::default();
                group.add(record);
                self.patterns.insert(record.pattern.clone(), group);
            }
        }
        if let Some(key) = record.failure_key() {
            *self.failures.entry(key).or_default() += 1;
        }
        if let Some(lateness) = record.lateness_ms {
            self.lateness.record_ms(lateness);
        }
        if let Some(worker) = record.worker {
            self.workers
                .entry(worker)
                .or_insert_with(|| (record.pattern.clone(), 0))
                .1 += 1;
        }
        let second = ((record.start_ms + record.e2e_ms) / 1000.0).max(0.0) as usize;
        if self.seconds.len() <= second {
            self.seconds.resize(second + 1, Second::default());
        }
        let bucket = &mut self.seconds[second];
        if record.is_success() {
            bucket.completed += 1;
            bucket.e2e_sum_ms += record.e2e_ms;
            bucket.e2e_max_ms = bucket.e2e_max_ms.max(record.e2e_ms);
        } else {
            bucket.failed += 1;
        }
        self.track_slowest(record);
        self.sample(record);
    }

    fn track_slowest(&mut self, record: &RequestRecord) {
        let slower_than_kept = self.slowest.len() < SLOWEST
            || self
                .slowest
                .last()
                .is_some_and(|fastest| record.e2e_ms > fastest.e2e_ms);
        if !slower_than_kept {
            return;
        }
        let entry = SlowRequest {
            trace_id: record.trace_id.clone(),
            request_id: record.request_id.clone(),
            pattern: record.pattern.clone(),
            start_ms: record.start_ms,
            e2e_ms: record.e2e_ms,
            status: record.status,
            failure: record.failure_key(),
        };
        let at = self
            .slowest
            .partition_point(|kept| kept.e2e_ms >= record.e2e_ms);
        self.slowest.insert(at, entry);
        self.slowest.truncate(SLOWEST);
    }

    /// Reservoir sampling (algorithm R), seeded, so the sample is uniform over all requests.
    fn sample(&mut self, record: &RequestRecord) {
        self.seen += 1;
        let point = || SamplePoint {
            start_ms: record.start_ms,
            e2e_ms: record.e2e_ms,
            ok: record.is_success(),
            trace_id: record.trace_id.clone(),
            pattern: record.pattern.clone(),
        };
        if self.samples.len() < SAMPLES {
            self.samples.push(point());
        } else {
            let slot = self.sample_rng.random_range(0..self.seen) as usize;
            if slot < SAMPLES {
                self.samples[slot] = point();
            }
        }
    }

    pub(crate) fn report(&self, info: RunInfo) -> Report {
        let overall = self.overall.report();
        let duration_s = info.duration_s.max(f64::EPSILON);
        let success_rate_pct = if overall.total == 0 {
            0.0
        } else {
            overall.successful as f64 * 100.0 / overall.total as f64
        };
        let mut samples = self.samples.clone();
        samples.sort_by(|a, b| a.start_ms.total_cmp(&b.start_ms));
        Report {
            workload: info.workload,
            endpoint: info.endpoint,
            model: info.model,
            seed: info.seed,
            planned_duration_s: info.planned_duration_s,
            duration_s: info.duration_s,
            interrupted: info.interrupted,
            total: overall.total,
            successful: overall.successful,
            failed: overall.failed,
            cancelled: self.cancelled,
            success_rate_pct,
            requests_per_s: overall.total as f64 / duration_s,
            output_tokens_per_s: overall.usage_completion_tokens as f64 / duration_s,
            failures: self.failures.clone(),
            patterns: self
                .patterns
                .iter()
                .map(|(name, group)| (name.clone(), group.report()))
                .collect(),
            overall,
            schedule_lateness_ms: self.lateness.stats(),
            workers: self
                .workers
                .iter()
                .map(|(worker, (pattern, requests))| WorkerReport {
                    worker: *worker,
                    pattern: pattern.clone(),
                    requests: *requests,
                })
                .collect(),
            timeline: self
                .seconds
                .iter()
                .enumerate()
                .map(|(second, bucket)| TimelineBucket {
                    second: second as u64,
                    completed: bucket.completed,
                    failed: bucket.failed,
                    e2e_mean_ms: if bucket.completed == 0 {
                        0.0
                    } else {
                        bucket.e2e_sum_ms / bucket.completed as f64
                    },
                    e2e_max_ms: bucket.e2e_max_ms,
                })
                .collect(),
            slowest: self.slowest.clone(),
            samples,
        }
    }
}
