//! The Envoy `ext_proc` service: request headers and body in, the routing decision out as
//! the `x-gateway-destination-endpoint` header plus `envoy.lb` dynamic metadata, the body
//! streamed back (`FULL_DUPLEX_STREAMED`), and the response observed for usage and outcome.
//!
//! Replies follow the full-duplex ordering rule: the request-headers reply is held until the
//! body has been scheduled, then headers, then body chunks of at most 62,000 bytes.

mod reply;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use envoy_types::pb::envoy::config::core::v3::Metadata;
use envoy_types::pb::envoy::service::ext_proc::v3::{
    HttpHeaders, ProcessingRequest, ProcessingResponse,
    external_processor_server::ExternalProcessor, processing_request::Request,
};
use envoy_types::pb::google::protobuf::value::Kind;
use opentelemetry::trace::{SpanKind, Status as SpanStatus, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue};
use parking_lot::Mutex;
use rand::{rngs::SmallRng, seq::IndexedRandom};
use tokio_stream::wrappers::ReceiverStream;

use metrics_schema::spans::{GATEWAY_REQUEST, attrs};

use crate::config::Loaded;
use crate::datastore::Datastore;
use crate::framework::{CycleState, Endpoint, InferenceRequest, Prompt};
use crate::plugins::pre_request::PREFILL_HEADER;
use crate::request;
use crate::telemetry::{ErrorKind, Metrics, extension_point};

pub use reply::{BODY_CHUNK_LIMIT, DESTINATION_HEADER, DROPPED_REASON_HEADER, ENVOY_LB_NAMESPACE};

/// The upstream subset hint: namespace and key in the request's filter metadata.
pub const SUBSET_HINT_NAMESPACE: &str = "envoy.lb.subset_hint";
pub const SUBSET_HINT_KEY: &str = "x-gateway-destination-endpoint-subset";

/// Response bytes kept to read `usage` from a non-streamed body.
const RESPONSE_KEEP_LIMIT: usize = 4 * 1024 * 1024;

/// State shared by every stream.
pub(crate) struct Epp {
    pub(crate) datastore: Arc<Datastore>,
    pub(crate) loaded: Loaded,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) tracing: Arc<telemetry::Tracing>,
    pub(crate) max_request_body_bytes: usize,
    pub(crate) rng: Mutex<SmallRng>,
}

/// The tonic service (a newtype: the orphan rule forbids implementing on `Arc<Epp>`).
#[derive(Clone)]
pub(crate) struct ExtProc(pub(crate) Arc<Epp>);

#[tonic::async_trait]
impl ExternalProcessor for ExtProc {
    type ProcessStream = ReceiverStream<Result<ProcessingResponse, tonic::Status>>;

    async fn process(
        &self,
        request: tonic::Request<tonic::Streaming<ProcessingRequest>>,
    ) -> Result<tonic::Response<Self::ProcessStream>, tonic::Status> {
        // Envoy sends its trace context in the stream's gRPC metadata, not in the HTTP
        // headers it forwards (tooling P8).
        let parent = telemetry::extract_context(&request.metadata().clone().into_headers());
        let mut inbound = request.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let epp = Arc::clone(&self.0);
        tokio::spawn(async move {
            let mut stream = Stream::new(epp, parent);
            loop {
                let message = match inbound.message().await {
                    Ok(Some(message)) => message,
                    Ok(None) => break,
                    Err(status) => {
                        tracing::debug!(%status, "The ext_proc stream ended with an error.");
                        break;
                    }
                };
                let (replies, done) = stream.on_message(message);
                for reply in replies {
                    if tx.send(Ok(reply)).await.is_err() {
                        return;
                    }
                }
                if done {
                    break;
                }
            }
        });
        Ok(tonic::Response::new(ReceiverStream::new(rx)))
    }
}

/// One HTTP request's ext_proc exchange.
pub(crate) struct Stream {
    epp: Arc<Epp>,
    started: Instant,
    parent: Context,
    gateway: Option<Context>,
    headers: BTreeMap<String, String>,
    generated_request_id: bool,
    request_id: String,
    method: String,
    path: String,
    subset: Option<Vec<String>>,
    body: Vec<u8>,
    model: String,
    target_model: String,
    scheduled: bool,
    response_status: u16,
    streaming: bool,
    response_bytes: usize,
    response_kept: Vec<u8>,
    usage: Option<(u64, u64)>,
}

impl Stream {
    pub(crate) fn new(epp: Arc<Epp>, parent: Context) -> Stream {
        Stream {
            epp,
            started: Instant::now(),
            parent,
            gateway: None,
            headers: BTreeMap::new(),
            generated_request_id: false,
            request_id: String::new(),
            method: String::new(),
            path: String::new(),
            subset: None,
            body: Vec::new(),
            model: String::new(),
            target_model: String::new(),
            scheduled: false,
            response_status: 0,
            streaming: false,
            response_bytes: 0,
            response_kept: Vec::new(),
            usage: None,
        }
    }

    /// Handles one message; returns the replies and whether the stream is finished.
    pub(crate) fn on_message(
        &mut self,
        message: ProcessingRequest,
    ) -> (Vec<ProcessingResponse>, bool) {
        if self.subset.is_none() {
            self.subset = subset_hint(message.metadata_context.as_ref());
        }
        match message.request {
            Some(Request::RequestHeaders(headers)) => self.on_request_headers(&headers),
            Some(Request::RequestBody(body)) => {
                if self.body.len() + body.body.len() > self.epp.max_request_body_bytes {
                    let size = self.body.len() + body.body.len();
                    return (
                        vec![self.fail(
                            ErrorKind::PayloadTooLarge,
                            &format!(
                                "request body of at least {size} bytes exceeds the limit of {} bytes",
                                self.epp.max_request_body_bytes
                            ),
                            None,
                        )],
                        true,
                    );
                }
                self.body.extend_from_slice(&body.body);
                if body.end_of_stream {
                    self.on_request_complete()
                } else {
                    (Vec::new(), false)
                }
            }
            Some(Request::RequestTrailers(_)) => (vec![reply::request_trailers()], false),
            Some(Request::ResponseHeaders(headers)) => {
                let map = header_map(&headers);
                self.response_status = map.get(":status").and_then(|s| s.parse().ok()).unwrap_or(0);
                self.streaming = map
                    .get("content-type")
                    .is_some_and(|c| c.starts_with("text/event-stream"));
                let done = headers.end_of_stream;
                if done {
                    self.on_response_complete();
                }
                (vec![reply::response_headers()], done)
            }
            Some(Request::ResponseBody(body)) => {
                self.response_bytes += body.body.len();
                if self.response_kept.len() < RESPONSE_KEEP_LIMIT {
                    self.response_kept.extend_from_slice(&body.body);
                }
                if self.streaming {
                    self.scan_stream_usage();
                }
                let done = body.end_of_stream;
                let reply = reply::response_body(body.body, body.end_of_stream);
                if done {
                    self.on_response_complete();
                }
                (vec![reply], done)
            }
            Some(Request::ResponseTrailers(_)) => {
                self.on_response_complete();
                (vec![reply::response_trailers()], true)
            }
            None => (Vec::new(), false),
        }
    }

    fn on_request_headers(&mut self, headers: &HttpHeaders) -> (Vec<ProcessingResponse>, bool) {
        self.headers = header_map(headers);
        self.method = self.headers.get(":method").cloned().unwrap_or_default();
        self.path = self.headers.get(":path").cloned().unwrap_or_default();
        self.request_id = match self.headers.get("x-request-id").filter(|id| !id.is_empty()) {
            Some(id) => id.clone(),
            None => {
                self.generated_request_id = true;
                uuid::Uuid::new_v4().to_string()
            }
        };
        if let Some(tracer) = self.epp.tracing.tracer() {
            let span = tracer
                .span_builder(GATEWAY_REQUEST.name)
                .with_kind(SpanKind::Server)
                .with_attributes([KeyValue::new(
                    attrs::HTTP_REQUEST_METHOD.key,
                    self.method.clone(),
                )])
                .start_with_context(tracer, &self.parent);
            self.gateway = Some(self.parent.with_span(span));
        }
        if headers.end_of_stream {
            // No body (a GET): any endpoint will do.
            let mut request = InferenceRequest::new(&self.request_id, "", Prompt::None);
            request.headers = self.headers.clone();
            request.headers.remove(PREFILL_HEADER);
            let candidates = self.candidates();
            let picked = {
                let mut rng = self.epp.rng.lock();
                candidates.choose(&mut *rng).cloned()
            };
            return match picked {
                Some(endpoint) => (vec![self.route(&request, &[endpoint])], false),
                None => (
                    vec![self.fail(
                        ErrorKind::ServiceUnavailable,
                        "no ready endpoints",
                        Some("rejected-no-endpoints"),
                    )],
                    true,
                ),
            };
        }
        (Vec::new(), false)
    }

    fn on_request_complete(&mut self) -> (Vec<ProcessingResponse>, bool) {
        let decision_started = Instant::now();
        let mut request = match request::parse(&self.path, &self.body, &self.request_id) {
            Ok(request) => request,
            Err(error) => {
                return (
                    vec![self.fail(ErrorKind::BadRequest, &error.to_string(), None)],
                    true,
                );
            }
        };
        request.headers = self.headers.clone();
        // Only the EPP says where to prefill: a client-supplied value never reaches the
        // sidecar (upstream leaves it in place; reference §1.3).
        request.headers.remove(PREFILL_HEADER);
        self.model = request.model.clone();
        self.target_model = request.target_model.clone();
        let model_labels = [self.model.as_str(), self.target_model.as_str()];
        let metrics = Arc::clone(&self.epp.metrics);
        metrics
            .request_total
            .inc(&[self.model.as_str(), self.target_model.as_str(), ""]);
        metrics
            .request_size
            .observe(&model_labels, self.body.len() as f64);
        if let Some(gateway) = &self.gateway {
            gateway.span().set_attribute(KeyValue::new(
                attrs::GEN_AI_REQUEST_MODEL.key,
                self.model.clone(),
            ));
        }
        let candidates = self.candidates();
        if candidates.is_empty() {
            return (
                vec![self.fail(
                    ErrorKind::ServiceUnavailable,
                    "no ready endpoints",
                    Some("rejected-no-endpoints"),
                )],
                true,
            );
        }
        let admitters: Vec<_> = self.epp.loaded.admitters().cloned().collect();
        for plugin in &admitters {
            let Some(admitter) = plugin.as_admitter() else {
                continue;
            };
            let started = Instant::now();
            let verdict = admitter.admit(&request, &candidates);
            self.observe_plugin(extension_point::ADMITTER, plugin, started);
            if let Err(reason) = verdict {
                return (
                    vec![self.fail(
                        ErrorKind::ResourceExhausted,
                        &reason,
                        Some("rejected-saturated"),
                    )],
                    true,
                );
            }
        }
        let tracer = self.epp.tracing.tracer().cloned();
        let parent = self.gateway.clone().unwrap_or_else(|| self.parent.clone());
        let mut cycle = CycleState::new(tracer, parent);
        let result = match self
            .epp
            .loaded
            .scheduler
            .schedule(&mut cycle, &request, &candidates)
        {
            Ok(result) => result,
            Err(error) => {
                metrics.scheduler_attempts.inc(&[
                    "failure",
                    self.target_model.as_str(),
                    "",
                    "",
                    "",
                ]);
                return (
                    vec![self.fail(
                        ErrorKind::ServiceUnavailable,
                        &error.to_string(),
                        Some("rejected-no-endpoints"),
                    )],
                    true,
                );
            }
        };
        let pre_requests: Vec<_> = self.epp.loaded.pre_requests().cloned().collect();
        for plugin in &pre_requests {
            let Some(pre_request) = plugin.as_pre_request() else {
                continue;
            };
            let started = Instant::now();
            pre_request.pre_request(&mut request, &result);
            self.observe_plugin(extension_point::PRE_REQUEST, plugin, started);
        }
        let targets = result.primary_targets().to_vec();
        if let Some(target) = targets.first() {
            metrics.scheduler_attempts.inc(&[
                "success",
                self.target_model.as_str(),
                target.name.as_str(),
                target.namespace.as_str(),
                target.port(),
            ]);
        }
        let headers_reply = self.route(&request, &targets);
        metrics
            .routing_decision_duration
            .observe(&[], decision_started.elapsed().as_secs_f64());
        let mut replies = vec![headers_reply];
        replies.extend(reply::request_body_chunks(std::mem::take(&mut self.body)));
        (replies, false)
    }

    /// The request-headers reply that sends the request to `targets`.
    fn route(
        &mut self,
        request: &InferenceRequest,
        targets: &[Arc<Endpoint>],
    ) -> ProcessingResponse {
        self.scheduled = true;
        let destination = targets
            .iter()
            .map(|t| t.address.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let mut set = vec![(DESTINATION_HEADER.to_owned(), destination.clone())];
        if self.generated_request_id {
            set.push(("x-request-id".to_owned(), self.request_id.clone()));
        }
        let mut remove = Vec::new();
        for (key, value) in &request.headers {
            if self.headers.get(key) != Some(value) {
                set.push((key.clone(), value.clone()));
            }
        }
        for key in self.headers.keys() {
            if !key.starts_with(':') && !request.headers.contains_key(key) {
                remove.push(key.clone());
            }
        }
        if let Some(gateway) = &self.gateway {
            let mut trace_headers = http::HeaderMap::new();
            telemetry::inject_context(gateway, &mut trace_headers);
            for (key, value) in &trace_headers {
                if let Ok(value) = value.to_str() {
                    set.push((key.as_str().to_owned(), value.to_owned()));
                }
            }
            let span = gateway.span();
            span.set_attribute(KeyValue::new(
                attrs::EPP_PICKED_ENDPOINT.key,
                destination.clone(),
            ));
            span.end();
        }
        tracing::debug!(request_id = %self.request_id, endpoint = %destination, "Routed a request.");
        reply::route(&destination, set, remove)
    }

    /// An immediate response for `kind`, counted and traced.
    fn fail(
        &mut self,
        kind: ErrorKind,
        message: &str,
        dropped_reason: Option<&str>,
    ) -> ProcessingResponse {
        self.epp.metrics.request_error_total.inc(&[
            self.model.as_str(),
            self.target_model.as_str(),
            kind.as_str(),
        ]);
        tracing::info!(request_id = %self.request_id, error_kind = kind.as_str(), %message, "Refused a request.");
        if let Some(gateway) = self.gateway.take() {
            let span = gateway.span();
            span.set_status(SpanStatus::error(format!("{}: {message}", kind.as_str())));
            span.end();
        }
        reply::immediate(kind, message, dropped_reason)
    }

    fn candidates(&self) -> Vec<Arc<Endpoint>> {
        let candidates = self.epp.datastore.candidates();
        match &self.subset {
            None => candidates,
            Some(subset) => candidates
                .into_iter()
                .filter(|endpoint| {
                    subset.iter().any(|allowed| {
                        allowed == &endpoint.address
                            || (!allowed.contains(':')
                                && endpoint
                                    .address
                                    .rsplit_once(':')
                                    .is_some_and(|(ip, _)| ip == allowed))
                    })
                })
                .collect(),
        }
    }

    fn observe_plugin(
        &self,
        point: &str,
        plugin: &Arc<dyn crate::framework::Plugin>,
        started: Instant,
    ) {
        let name = plugin.typed_name();
        self.epp.metrics.plugin_duration.observe(
            &[point, name.plugin_type, &name.name],
            started.elapsed().as_secs_f64(),
        );
    }

    fn scan_stream_usage(&mut self) {
        // Only the tail can hold the final usage chunk; keep the buffer bounded.
        if let Some(usage) = usage_in_sse(&self.response_kept) {
            self.usage = Some(usage);
        }
        if let Some(last) = self.response_kept.iter().rposition(|&b| b == b'\n') {
            self.response_kept.drain(..=last);
        }
    }

    fn on_response_complete(&mut self) {
        if !self.scheduled || self.model.is_empty() {
            return;
        }
        self.scheduled = false;
        let labels = [self.model.as_str(), self.target_model.as_str()];
        let metrics = &self.epp.metrics;
        if !(200..300).contains(&self.response_status) {
            metrics.request_error_total.inc(&[
                self.model.as_str(),
                self.target_model.as_str(),
                ErrorKind::ModelServerError.as_str(),
            ]);
        }
        metrics
            .response_size
            .observe(&labels, self.response_bytes as f64);
        metrics
            .request_duration
            .observe(&labels, self.started.elapsed().as_secs_f64());
        let usage = if self.streaming {
            self.usage
        } else {
            usage_in_json(&self.response_kept)
        };
        if let Some((prompt, completion)) = usage {
            metrics.input_tokens.observe(&labels, prompt as f64);
            metrics.output_tokens.observe(&labels, completion as f64);
        }
    }
}

/// Header keys lower-cased; Envoy fills `raw_value`, older senders `value`.
fn header_map(headers: &HttpHeaders) -> BTreeMap<String, String> {
    headers
        .headers
        .as_ref()
        .map(|map| {
            map.headers
                .iter()
                .map(|header| {
                    let value = if header.raw_value.is_empty() {
                        header.value.clone()
                    } else {
                        String::from_utf8_lossy(&header.raw_value).into_owned()
                    };
                    (header.key.to_ascii_lowercase(), value)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The endpoints named by the subset hint: a list of strings or one comma-separated string.
fn subset_hint(metadata: Option<&Metadata>) -> Option<Vec<String>> {
    let value = metadata?
        .filter_metadata
        .get(SUBSET_HINT_NAMESPACE)?
        .fields
        .get(SUBSET_HINT_KEY)?;
    match value.kind.as_ref()? {
        Kind::StringValue(text) => Some(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        Kind::ListValue(list) => Some(
            list.values
                .iter()
                .filter_map(|v| match &v.kind {
                    Some(Kind::StringValue(s)) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
        ),
        _ => None,
    }
}

fn usage_of(value: &serde_json::Value) -> Option<(u64, u64)> {
    let usage = value.get("usage")?;
    Some((
        usage.get("prompt_tokens")?.as_u64()?,
        usage
            .get("completion_tokens")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0),
    ))
}

fn usage_in_json(body: &[u8]) -> Option<(u64, u64)> {
    usage_of(&serde_json::from_slice(body).ok()?)
}

fn usage_in_sse(buffer: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(buffer).ok()?;
    // The usage chunk comes last, so search from the end.
    text.lines()
        .rev()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter(|data| data.contains("\"usage\""))
        .filter_map(|data| serde_json::from_str::<serde_json::Value>(data).ok())
        .find_map(|value| usage_of(&value))
}
