//! One request's clock, outcome and spans: recorded exactly once, when the response ends or
//! is dropped (a client that goes away is `client_cancelled`).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use metrics_schema::spans::{self, attrs};
use opentelemetry::{
    Context, KeyValue,
    trace::{SpanKind, Status, TraceContextExt, Tracer},
};

use opentelemetry_sdk::trace::SdkTracer;

use crate::telemetry::{Metrics, Outcome};

/// Milliseconds as the span attributes carry them.
fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The spans of one request, when tracing is on.
struct Trace {
    tracer: SdkTracer,
    request: Context,
    decode: Option<Context>,
}

/// The clock and outcome of one request through the sidecar.
pub(crate) struct Tracker {
    metrics: Arc<Metrics>,
    pub(crate) arrival: Instant,
    /// When the client body had arrived.
    body_ready: Instant,
    /// The sidecar's own work so far, waits excluded.
    overhead: Duration,
    prefill_sent: Option<Instant>,
    prefill: Option<Duration>,
    decode_sent: Option<Instant>,
    first_token: Option<Instant>,
    fallback: bool,
    disaggregated: bool,
    finished: bool,
    trace: Option<Trace>,
}

impl Tracker {
    /// Starts the clock at `arrival`; opens `llm_d.pd_proxy.request` under `parent` when
    /// tracing is on.
    pub(crate) fn new(
        metrics: Arc<Metrics>,
        tracer: Option<&SdkTracer>,
        parent: &Context,
        arrival: Instant,
        method: &str,
        path: &str,
        connector: &'static str,
    ) -> Tracker {
        let trace = tracer.map(|tracer| {
            let span = tracer
                .span_builder(spans::PD_PROXY_REQUEST.name)
                .with_kind(SpanKind::Server)
                .with_attributes([
                    KeyValue::new(attrs::HTTP_REQUEST_METHOD.key, method.to_owned()),
                    KeyValue::new(attrs::PD_PROXY_CONNECTOR.key, connector),
                    KeyValue::new(attrs::PD_PROXY_REQUEST_PATH.key, path.to_owned()),
                ])
                .start_with_context(tracer, parent);
            Trace {
                tracer: tracer.clone(),
                request: parent.with_span(span),
                decode: None,
            }
        });
        Tracker {
            metrics,
            arrival,
            body_ready: arrival,
            overhead: Duration::ZERO,
            prefill_sent: None,
            prefill: None,
            decode_sent: None,
            first_token: None,
            fallback: false,
            disaggregated: false,
            finished: false,
            trace,
        }
    }

    /// The client body has arrived: the sidecar's own work starts.
    pub(crate) fn body_ready(&mut self) {
        self.body_ready = Instant::now();
    }

    /// The request takes the P/D path to `target`.
    pub(crate) fn disaggregate(&mut self, target: &str) {
        self.disaggregated = true;
        if let Some(trace) = &self.trace {
            let span = trace.request.span();
            span.set_attribute(KeyValue::new(attrs::PD_PROXY_DISAGGREGATION_USED.key, true));
            span.set_attribute(KeyValue::new(
                attrs::PD_PROXY_PREFILL_TARGET.key,
                target.to_owned(),
            ));
        }
    }

    /// The request goes to decode only.
    pub(crate) fn decode_only(&mut self) {
        if let Some(trace) = &self.trace {
            trace.request.span().set_attribute(KeyValue::new(
                attrs::PD_PROXY_DISAGGREGATION_USED.key,
                false,
            ));
        }
    }

    /// Records why the request was refused or failed on the request span.
    pub(crate) fn error(&mut self, reason: &'static str, detail: &str) {
        if let Some(trace) = &self.trace {
            let span = trace.request.span();
            span.set_attribute(KeyValue::new(attrs::PD_PROXY_ERROR.key, reason));
            span.set_status(Status::error(detail.to_owned()));
        }
    }

    /// The prefill leg is about to be sent; returns the context to inject into it.
    pub(crate) fn prefill_start(
        &mut self,
        target: &str,
        request_id: &str,
        connector: &'static str,
    ) -> Option<Context> {
        let now = Instant::now();
        self.overhead += now.saturating_duration_since(self.body_ready);
        self.prefill_sent = Some(now);
        let trace = self.trace.as_ref()?;
        let span = trace
            .tracer
            .span_builder(spans::PD_PROXY_PREFILL.name)
            .with_kind(SpanKind::Client)
            .with_attributes([
                KeyValue::new(attrs::SERVER_ADDRESS.key, target.to_owned()),
                KeyValue::new(attrs::PD_PROXY_REQUEST_ID.key, request_id.to_owned()),
                KeyValue::new(attrs::PD_PROXY_CONNECTOR.key, connector),
            ])
            .start_with_context(&trace.tracer, &trace.request);
        Some(trace.request.with_span(span))
    }

    /// The prefill leg answered (`status`, 0 when there was no answer).
    pub(crate) fn prefill_done(&mut self, prefill_cx: Option<Context>, status: u16) {
        let now = Instant::now();
        let prefill = now.saturating_duration_since(self.prefill_sent.unwrap_or(now));
        self.prefill = Some(prefill);
        // The decode leg's own work is counted from here.
        self.body_ready = now;
        if let Some(cx) = prefill_cx {
            let span = cx.span();
            span.set_attribute(KeyValue::new(
                attrs::PD_PROXY_PREFILL_STATUS_CODE.key,
                i64::from(status),
            ));
            span.set_attribute(KeyValue::new(
                attrs::PD_PROXY_PREFILL_DURATION_MS.key,
                ms(prefill),
            ));
            if !(200..300).contains(&status) {
                span.set_status(Status::error(format!("prefill status {status}")));
            }
            span.end();
        }
    }

    /// The prefill failed and the decode engine will prefill locally.
    pub(crate) fn fall_back(&mut self) {
        self.fallback = true;
    }

    /// The decode leg is about to be sent; returns the context to inject into it.
    pub(crate) fn decode_start(
        &mut self,
        target: &str,
        request_id: Option<&str>,
        streaming: bool,
    ) -> Option<Context> {
        let now = Instant::now();
        self.overhead += now.saturating_duration_since(self.body_ready);
        self.decode_sent = Some(now);
        let trace = self.trace.as_mut()?;
        let mut attributes = vec![
            KeyValue::new(attrs::SERVER_ADDRESS.key, target.to_owned()),
            KeyValue::new(attrs::PD_PROXY_DECODE_STREAMING.key, streaming),
        ];
        if let Some(request_id) = request_id {
            attributes.push(KeyValue::new(
                attrs::PD_PROXY_REQUEST_ID.key,
                request_id.to_owned(),
            ));
        }
        let span = trace
            .tracer
            .span_builder(spans::PD_PROXY_DECODE.name)
            .with_kind(SpanKind::Client)
            .with_attributes(attributes)
            .start_with_context(&trace.tracer, &trace.request);
        let cx = trace.request.with_span(span);
        trace.decode = Some(cx.clone());
        Some(cx)
    }

    /// The first token byte is being handed to the client.
    pub(crate) fn first_token(&mut self) {
        if self.first_token.is_none() {
            self.first_token = Some(Instant::now());
        }
    }

    /// Whether the first token has been recorded.
    pub(crate) fn has_first_token(&self) -> bool {
        self.first_token.is_some()
    }

    /// Records the outcome, the histograms of a completed P/D request and the spans; once.
    pub(crate) fn finish(&mut self, outcome: Outcome) {
        if self.finished {
            return;
        }
        self.finished = true;
        let now = Instant::now();
        let outcome = match outcome {
            Outcome::Success if self.fallback => Outcome::PrefillFallback,
            Outcome::Success if !self.disaggregated => Outcome::DecodeOnly,
            other => other,
        };
        let metrics = &self.metrics;
        metrics.request(outcome).inc();
        if let Some(prefill) = self.prefill {
            metrics.prefill_duration.observe(prefill.as_secs_f64());
        }
        let first_token = self.first_token.unwrap_or(now);
        let true_ttft = first_token.saturating_duration_since(self.arrival);
        let total = now.saturating_duration_since(self.arrival);
        let decode = self
            .decode_sent
            .map(|sent| now.saturating_duration_since(sent));
        // Timing histograms describe completed P/D requests; decode-only and failed requests
        // are counted by outcome only.
        if outcome == Outcome::Success {
            metrics.true_ttft.observe(true_ttft.as_secs_f64());
            metrics.total_duration.observe(total.as_secs_f64());
            metrics
                .coordinator_overhead
                .observe(self.overhead.as_secs_f64());
            if let Some(decode) = decode {
                metrics.decode_duration.observe(decode.as_secs_f64());
            }
        }
        if let Some(trace) = self.trace.take() {
            if let Some(decode_cx) = trace.decode {
                let span = decode_cx.span();
                if let Some(decode) = decode {
                    span.set_attribute(KeyValue::new(
                        attrs::PD_PROXY_DECODE_DURATION_MS.key,
                        ms(decode),
                    ));
                }
                if matches!(outcome, Outcome::DecodeError) {
                    span.set_status(Status::error("decode failed"));
                }
                span.end();
            }
            let span = trace.request.span();
            span.set_attribute(KeyValue::new(attrs::PD_PROXY_OUTCOME.key, outcome.as_str()));
            span.set_attribute(KeyValue::new(
                attrs::PD_PROXY_TOTAL_DURATION_MS.key,
                ms(total),
            ));
            span.set_attribute(KeyValue::new(
                attrs::PD_PROXY_COORDINATOR_OVERHEAD_MS.key,
                ms(self.overhead),
            ));
            if self.first_token.is_some() {
                span.set_attribute(KeyValue::new(
                    attrs::PD_PROXY_TRUE_TTFT_MS.key,
                    ms(true_ttft),
                ));
            }
            span.end();
        }
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        // Dropped unfinished: hyper dropped the response (or the handler) because the client
        // went away.
        self.finish(Outcome::ClientCancelled);
    }
}
