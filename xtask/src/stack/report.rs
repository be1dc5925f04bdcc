//! The stack's report: where requests went and why (the EPP's decisions, each pod's own
//! metrics), what the P/D sidecars measured, and where the time of each request went, joined
//! from the client's records and the spans every hop exported.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use metrics_schema::spans::{self, attrs};
use metrics_schema::{epp, pd_proxy, vllm};

use super::otlp::SpanRecord;
use super::topology::{GATEWAY_SERVICE, Stack, http_get};

/// A parsed Prometheus text exposition.
#[derive(Debug, Default)]
pub(crate) struct Exposition {
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Exposition {
    pub(crate) fn parse(text: &str) -> Exposition {
        let mut samples = Vec::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest.trim_end_matches('}'))),
                None => (series, BTreeMap::new()),
            };
            samples.push((name.to_owned(), labels, value));
        }
        Exposition { samples }
    }

    /// Scrapes `GET /metrics` at `addr`; an unreachable endpoint reads as empty.
    fn scrape(addr: std::net::SocketAddr) -> Exposition {
        match http_get(addr, "/metrics") {
            Ok((200, body)) => Exposition::parse(&body),
            _ => Exposition::default(),
        }
    }

    fn matching<'a>(
        &'a self,
        name: &'a str,
        filters: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a (String, BTreeMap<String, String>, f64)> + 'a {
        self.samples.iter().filter(move |(n, labels, _)| {
            n == name
                && filters
                    .iter()
                    .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
        })
    }

    /// The sum over every series of `name` whose labels include `filters`.
    pub(crate) fn sum(&self, name: &str, filters: &[(&str, &str)]) -> f64 {
        // `+ 0.0`: an empty f64 sum is -0.0, which would print as "-0".
        self.matching(name, filters).map(|(_, _, v)| v).sum::<f64>() + 0.0
    }

    /// `sum / count` of a histogram family, `None` without observations.
    pub(crate) fn mean(&self, family: &str) -> Option<f64> {
        let count = self.sum(&format!("{family}_count"), &[]);
        (count > 0.0).then(|| self.sum(&format!("{family}_sum"), &[]) / count)
    }

    /// The `q` quantile of a histogram family, interpolated in its buckets as Prometheus's
    /// `histogram_quantile` does.
    pub(crate) fn quantile(&self, family: &str, q: f64) -> Option<f64> {
        let mut buckets: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
        for (_, labels, value) in self.matching(&format!("{family}_bucket"), &[]) {
            let le = match labels.get("le").map(String::as_str) {
                Some("+Inf") => f64::INFINITY,
                Some(le) => le.parse().ok()?,
                None => continue,
            };
            buckets.entry(le.to_bits()).or_insert((le, 0.0)).1 += value;
        }
        let mut buckets: Vec<(f64, f64)> = buckets.into_values().collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total = buckets.last()?.1;
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let mut previous = (0.0, 0.0);
        for (le, count) in buckets {
            if count >= rank {
                if le.is_infinite() {
                    return Some(previous.0);
                }
                let fraction = if count > previous.1 {
                    (rank - previous.1) / (count - previous.1)
                } else {
                    0.0
                };
                return Some(previous.0 + (le - previous.0) * fraction);
            }
            previous = (le, count);
        }
        Some(previous.0)
    }
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((index, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(if escaped == 'n' { '\n' } else { escaped });
                    }
                }
                '"' => {
                    end = index + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        labels.insert(key.trim_start_matches(',').trim().to_owned(), value);
        rest = &after[end..];
    }
    labels
}

fn ms(seconds: Option<f64>) -> String {
    seconds.map_or("-".to_owned(), |s| format!("{:.1}ms", s * 1000.0))
}

fn ratio(num: f64, den: f64) -> f64 {
    if den > 0.0 { num / den } else { 0.0 }
}

/// What each pod and the EPP measured themselves.
pub(crate) fn metrics_section(stack: &Stack) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n===== where requests went: each pod's own /metrics ====="
    );
    let _ = writeln!(
        out,
        "{:<10} {:>8} {:>11} {:>11} {:>9} {:>9} {:>9}",
        "pod", "requests", "prompt tok", "output tok", "hit rate", "TTFT avg", "queue avg"
    );
    let engines = stack
        .decode
        .iter()
        .map(|pod| &pod.engine)
        .chain(&stack.prefill);
    for engine in engines {
        let metrics = Exposition::scrape(engine.addr);
        let requests = metrics.sum(
            &format!("{}_count", vllm::E2E_REQUEST_LATENCY_SECONDS.name),
            &[],
        );
        let _ = writeln!(
            out,
            "{:<10} {:>8.0} {:>11.0} {:>11.0} {:>8.1}% {:>9} {:>9}",
            engine.process.name,
            requests,
            metrics.sum(vllm::PROMPT_TOKENS_TOTAL.name, &[]),
            metrics.sum(vllm::GENERATION_TOKENS_TOTAL.name, &[]),
            100.0
                * ratio(
                    metrics.sum(vllm::PREFIX_CACHE_HITS_TOTAL.name, &[]),
                    metrics.sum(vllm::PREFIX_CACHE_QUERIES_TOTAL.name, &[])
                ),
            ms(metrics.mean(vllm::TIME_TO_FIRST_TOKEN_SECONDS.name)),
            ms(metrics.mean(vllm::REQUEST_QUEUE_TIME_SECONDS.name)),
        );
    }

    let epp_metrics = Exposition::scrape(stack.epp_metrics);
    let decision =
        |kind: &str| epp_metrics.sum(epp::PD_DECISION_TOTAL.name, &[("decision_type", kind)]);
    let routing = epp::ROUTING_DECISION_DURATION_SECONDS.name;
    let _ = writeln!(
        out,
        "\nEPP: {:.0} requests; P/D decisions: {:.0} prefill-decode, {:.0} decode-only (too few uncached tokens on the decode pod to move); routing decision p50 {}, p99 {}",
        epp_metrics.sum(epp::REQUEST_TOTAL.name, &[]),
        decision("prefill-decode"),
        decision("decode-only"),
        ms(epp_metrics.quantile(routing, 0.5)),
        ms(epp_metrics.quantile(routing, 0.99)),
    );

    let _ = writeln!(out, "\n===== the P/D sidecars =====");
    let _ = writeln!(
        out,
        "{:<11} {:>6} {:>11} {:>7} {:>10} {:>12} {:>17} {:>9} {:>8}",
        "sidecar",
        "P/D",
        "decode-only",
        "failed",
        "true TTFT",
        "prefill leg",
        "own work p50/p99",
        "KV pulls",
        "KV MiB"
    );
    for pod in &stack.decode {
        let sidecar = Exposition::scrape(pod.sidecar_metrics);
        let engine = Exposition::scrape(pod.engine.addr);
        let outcome = |o: &str| sidecar.sum(pd_proxy::REQUESTS_TOTAL.name, &[("outcome", o)]);
        let failed = sidecar.sum(pd_proxy::REQUESTS_TOTAL.name, &[])
            - outcome("success")
            - outcome("decode_only");
        let _ = writeln!(
            out,
            "{:<11} {:>6.0} {:>11.0} {:>7.0} {:>10} {:>12} {:>17} {:>9.0} {:>8.1}",
            pod.sidecar.name,
            outcome("success"),
            outcome("decode_only"),
            failed,
            ms(sidecar.mean(pd_proxy::TRUE_TTFT_SECONDS.name)),
            ms(sidecar.mean(pd_proxy::PREFILL_DURATION_SECONDS.name)),
            format!(
                "{}/{}",
                ms(sidecar.quantile(pd_proxy::COORDINATOR_OVERHEAD_SECONDS.name, 0.5)),
                ms(sidecar.quantile(pd_proxy::COORDINATOR_OVERHEAD_SECONDS.name, 0.99))
            ),
            engine.sum(&format!("{}_count", vllm::NIXL_XFER_TIME_SECONDS.name), &[]),
            engine.sum(&format!("{}_sum", vllm::NIXL_BYTES_TRANSFERRED.name), &[])
                / (1 << 20) as f64,
        );
    }
    out
}

/// One client request as load-gen recorded it.
struct ClientRecord {
    trace_id: String,
    ok: bool,
    ttft_ms: Option<f64>,
    e2e_ms: f64,
    pattern: String,
}

fn client_records(path: &Path) -> Vec<ClientRecord> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .map(|record| ClientRecord {
            trace_id: record["trace_id"].as_str().unwrap_or_default().to_owned(),
            ok: record["failure"].is_null(),
            ttft_ms: record["ttft_ms"].as_f64(),
            e2e_ms: record["e2e_ms"].as_f64().unwrap_or_default(),
            pattern: record["pattern"].as_str().unwrap_or_default().to_owned(),
        })
        .collect()
}

/// The phases of one request, in ms, from its trace.
#[derive(Default, Clone)]
struct Phases {
    gateway: f64,
    true_ttft: f64,
    prefill: f64,
    overhead: f64,
    decode_ttft: f64,
    /// The sidecar's decode leg, start to last byte.
    decode: f64,
    pd: bool,
}

fn phases(trace: &[&SpanRecord]) -> Option<Phases> {
    let find = |name: &str| trace.iter().find(|span| span.name == name);
    let ingress = trace
        .iter()
        .filter(|span| span.service == GATEWAY_SERVICE)
        .min_by_key(|span| span.start_ns)?;
    let request = find(spans::PD_PROXY_REQUEST.name)?;
    let true_ttft = request.attr_f64(attrs::PD_PROXY_TRUE_TTFT_MS.key)?;
    let overhead = request
        .attr_f64(attrs::PD_PROXY_COORDINATOR_OVERHEAD_MS.key)
        .unwrap_or_default();
    let prefill = find(spans::PD_PROXY_PREFILL.name).map_or(0.0, |span| span.duration_ms());
    Some(Phases {
        gateway: request.start_ns.saturating_sub(ingress.start_ns) as f64 / 1e6,
        true_ttft,
        prefill,
        overhead,
        decode_ttft: (true_ttft - prefill - overhead).max(0.0),
        decode: find(spans::PD_PROXY_DECODE.name).map_or(0.0, |span| span.duration_ms()),
        pd: find(spans::PD_PROXY_PREFILL.name).is_some(),
    })
}

/// Where the time of each request went, from the client's records joined with the spans.
pub(crate) fn trace_section(spans: &[SpanRecord], client_jsonl: &Path, rejected: u64) -> String {
    let mut out = String::new();
    let records = client_records(client_jsonl);
    let mut by_trace: HashMap<&str, Vec<&SpanRecord>> = HashMap::new();
    for span in spans {
        by_trace
            .entry(span.trace_id.as_str())
            .or_default()
            .push(span);
    }
    let _ = writeln!(
        out,
        "\n===== where the time went: client records joined with the traces ====="
    );
    let services: std::collections::BTreeSet<&str> =
        spans.iter().map(|s| s.service.as_str()).collect();
    let _ = writeln!(
        out,
        "{} spans from {} services ({}){}",
        spans.len(),
        services.len(),
        services.iter().copied().collect::<Vec<_>>().join(", "),
        if rejected > 0 {
            format!("; {rejected} unreadable exports")
        } else {
            String::new()
        }
    );
    let joined: Vec<(&ClientRecord, Phases)> = records
        .iter()
        .filter(|record| record.ok)
        .filter_map(|record| {
            let trace = by_trace.get(record.trace_id.as_str())?;
            Some((record, phases(trace)?))
        })
        .collect();
    let streamed: Vec<(&ClientRecord, Phases)> = joined
        .iter()
        .filter(|(record, _)| record.ttft_ms.is_some())
        .cloned()
        .collect();
    let successes = records.iter().filter(|r| r.ok).count();
    let complete = records
        .iter()
        .filter(|r| r.ok)
        .filter(|r| {
            by_trace
                .get(r.trace_id.as_str())
                .is_some_and(|trace| is_complete(trace))
        })
        .count();
    let _ = writeln!(
        out,
        "{complete} of {successes} successful requests have one trace holding the gateway, the EPP, the sidecar and the engine spans"
    );
    type Row<'a> = (&'a str, &'a dyn Fn(&ClientRecord, &Phases) -> f64);
    let table = |out: &mut String, title: &str, set: &[(&ClientRecord, Phases)], rows: &[Row]| {
        let _ = writeln!(out, "\n{title:<29} {:>12} {:>12}", "P/D", "decode-only");
        let cell = |pd: bool, value: &dyn Fn(&ClientRecord, &Phases) -> f64| {
            let values: Vec<f64> = set
                .iter()
                .filter(|(_, p)| p.pd == pd)
                .map(|(r, p)| value(r, p))
                .collect();
            if values.is_empty() {
                "-".to_owned()
            } else {
                format!("{:.2}", values.iter().sum::<f64>() / values.len() as f64)
            }
        };
        let count = |pd: bool| set.iter().filter(|(_, p)| p.pd == pd).count();
        let _ = writeln!(
            out,
            "{:<29} {:>12} {:>12}",
            "requests",
            count(true),
            count(false)
        );
        for (label, value) in rows {
            let _ = writeln!(
                out,
                "{label:<29} {:>12} {:>12}",
                cell(true, *value),
                cell(false, *value)
            );
        }
    };
    table(
        &mut out,
        "every request, mean ms",
        &joined,
        &[
            ("client end to end", &|r, _| r.e2e_ms),
            ("  gateway + EPP", &|_, p| p.gateway),
            ("  prefill leg", &|_, p| p.prefill),
            ("  decode leg", &|_, p| p.decode),
        ],
    );
    if streamed.is_empty() {
        let _ = writeln!(out, "no streamed request could be joined with its trace");
        return out;
    }
    table(
        &mut out,
        "streamed requests, mean ms",
        &streamed,
        &[
            ("client TTFT", &|r, _| r.ttft_ms.unwrap_or_default()),
            ("  gateway + EPP", &|_, p| p.gateway),
            ("  sidecar true TTFT", &|_, p| p.true_ttft),
            ("    prefill leg", &|_, p| p.prefill),
            ("    sidecar's own work", &|_, p| p.overhead),
            ("    decode TTFT (KV pull)", &|_, p| p.decode_ttft),
        ],
    );
    // The request whose client TTFT was worst, hop by hop.
    if let Some((record, _)) = streamed.iter().max_by(|a, b| {
        a.0.ttft_ms
            .unwrap_or(0.0)
            .total_cmp(&b.0.ttft_ms.unwrap_or(0.0))
    }) && let Some(trace) = by_trace.get(record.trace_id.as_str())
    {
        let _ = writeln!(
            out,
            "\nslowest first token: {} ({}), client TTFT {:.1} ms, e2e {:.1} ms",
            record.trace_id,
            record.pattern,
            record.ttft_ms.unwrap_or_default(),
            record.e2e_ms
        );
        out.push_str(&timeline(trace));
    }
    out
}

/// One trace's spans in start order, with the EPP's reasons.
fn timeline(trace: &[&SpanRecord]) -> String {
    let mut out = String::new();
    let mut sorted: Vec<&&SpanRecord> = trace.iter().collect();
    sorted.sort_by_key(|span| span.start_ns);
    let Some(first) = sorted.first().map(|s| s.start_ns) else {
        return out;
    };
    let parents: HashMap<&str, &str> = trace
        .iter()
        .map(|span| (span.span_id.as_str(), span.parent_id.as_str()))
        .collect();
    let depth = |span: &SpanRecord| {
        let mut depth = 0;
        let mut parent = span.parent_id.as_str();
        while let Some(next) = parents.get(parent) {
            depth += 1;
            parent = next;
            if depth > 32 {
                break;
            }
        }
        depth
    };
    for span in sorted {
        let why = match span.name.as_str() {
            name if name == spans::EPP_SCORER_PREFIX_CACHE.name => format!(
                "  matched blocks {} of {}",
                span.attr(attrs::SCORER_MATCHED_BLOCKS.key).unwrap_or("-"),
                span.attr(attrs::SCORER_TOTAL_BLOCKS.key).unwrap_or("-")
            ),
            name if name == spans::EPP_PROFILE_HANDLER_PICK.name => format!(
                "  {} (cached {})",
                span.attr(attrs::PROFILE_HANDLER_DECISION.key)
                    .unwrap_or("-"),
                span.attr(attrs::PROFILE_HANDLER_CACHE_HIT_RATIO.key)
                    .unwrap_or("-")
            ),
            name if name == spans::PD_PROXY_REQUEST.name => format!(
                "  true TTFT {} ms",
                span.attr(attrs::PD_PROXY_TRUE_TTFT_MS.key).unwrap_or("-")
            ),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "  +{:>7.2} ms {:>8.2} ms  {}{:<18} {}{why}",
            span.start_ns.saturating_sub(first) as f64 / 1e6,
            span.duration_ms(),
            "  ".repeat(depth(span)),
            span.service,
            span.name
        );
    }
    out
}

/// Whether one trace holds every hop: Envoy's spans, the EPP's, the sidecar's and the engine's.
pub(crate) fn is_complete(trace: &[&SpanRecord]) -> bool {
    let has = |name: &str| trace.iter().any(|s| s.name == name);
    has(spans::GATEWAY_REQUEST.name)
        && has(spans::PD_PROXY_REQUEST.name)
        && has(spans::VLLM_LLM_REQUEST.name)
        && trace.iter().any(|s| s.service == GATEWAY_SERVICE)
}
