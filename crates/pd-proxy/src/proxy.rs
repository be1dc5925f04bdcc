//! The request path: health, pass-through to the local vLLM, and the P/D flow (prefill leg,
//! then decode leg) for the inference APIs.
//!
//! Every inference request gets a [`Tracker`] at arrival; it records the outcome once, when
//! the response ends or is dropped. Failures become vLLM-shaped errors
//! (`{"error":{"message","type","param","code"}}`), never a hung connection: the prefill leg
//! has a deadline, the decode leg an idle deadline, and a decode stream that breaks ends
//! with an SSE error event.

mod body;
mod sse;
#[cfg(test)]
mod tests;
mod tracker;

use std::{
    convert::Infallible,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header, request::Parts};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use rand::Rng;
use serde_json::{Map, Value};

pub(crate) use body::ProxyBody;
use tracker::Tracker;

use crate::{
    allowlist::{AllowList, Verdict},
    config::{Connector, PrefillFallback},
    connector::{self, Api},
    telemetry::{Metrics, Outcome},
};

/// The header the EPP sets to name the prefill pod.
pub const PREFILL_HEADER: &str = "x-prefiller-host-port";
/// The 2025 sidecar's older name for it.
pub(crate) const LEGACY_PREFILL_HEADER: &str = "x-prefiller-url";

/// The HTTP client of both legs (keep-alive pools per upstream host).
pub(crate) type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// One upstream stage: its client (with that stage's TLS settings) and URL scheme.
pub(crate) struct Upstream {
    pub(crate) client: HttpClient,
    pub(crate) scheme: &'static str,
}

impl Upstream {
    /// A pooled HTTP/1.1 client for a stage; `tls` decides the scheme and the certificate
    /// checks.
    pub(crate) fn new(
        tls: crate::config::UpstreamTls,
        max_idle_per_host: usize,
    ) -> Result<Upstream, crate::tls::TlsError> {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(5)));
        http.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(crate::tls::client_config(tls)?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_max_idle_per_host(max_idle_per_host)
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        let scheme = if tls == crate::config::UpstreamTls::Off {
            "http"
        } else {
            "https"
        };
        Ok(Upstream { client, scheme })
    }
}

/// What every request shares.
pub(crate) struct Proxy {
    pub(crate) prefiller: Upstream,
    pub(crate) decoder_upstream: Upstream,
    pub(crate) allowlist: Arc<AllowList>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) tracing: Arc<telemetry::Tracing>,
    pub(crate) connector: Connector,
    pub(crate) decoder: String,
    pub(crate) prefiller_sampling: bool,
    pub(crate) prefill_timeout: Duration,
    pub(crate) decode_timeout: Duration,
    pub(crate) prefill_max_retries: u32,
    pub(crate) prefill_retry_backoff: Duration,
    pub(crate) prefill_fallback: PrefillFallback,
    pub(crate) max_request_body_bytes: usize,
}

/// Why the prefill leg failed; each maps to the client's status and the span's `error`.
#[derive(Debug)]
enum PrefillFailure {
    Connect(String),
    Timeout(Duration),
    /// A non-2xx answer, relayed as it came for 4xx.
    Status(StatusCode, HeaderMap, Bytes),
    Body(String),
    MissingParams,
}

impl PrefillFailure {
    fn reason(&self) -> &'static str {
        match self {
            PrefillFailure::Connect(_) => "prefill_unreachable",
            PrefillFailure::Timeout(_) => "prefill_timeout",
            PrefillFailure::Status(..) => "prefill_status",
            PrefillFailure::Body(_) => "prefill_body",
            PrefillFailure::MissingParams => "prefill_missing_kv_transfer_params",
        }
    }
}

/// A vLLM error body.
pub(crate) fn error_json(code: u16, kind: &str, message: &str) -> String {
    serde_json::json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
        .to_string()
}

/// A vLLM-shaped error response.
fn error_response(status: StatusCode, kind: &str, message: &str) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::full(error_json(status.as_u16(), kind, message)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Headers that describe one hop, never forwarded.
fn is_hop_header(name: &header::HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
    )
}

/// The prefill targets named by the request, first one first (several header lines or one
/// comma-separated line; a leading scheme is dropped).
pub fn prefill_targets(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(PREFILL_HEADER)
        .iter()
        .chain(headers.get_all(LEGACY_PREFILL_HEADER).iter())
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|target| crate::allowlist::strip_scheme(target.trim()).to_owned())
        .filter(|target| !target.is_empty())
        .collect()
}

impl Proxy {
    /// Serves one request.
    pub(crate) async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
    ) -> Result<Response<ProxyBody>, Infallible> {
        let arrival = Instant::now();
        let (parts, body) = request.into_parts();
        if parts.method == Method::GET && parts.uri.path() == "/health" {
            return Ok(Response::new(ProxyBody::Full(None)));
        }
        let api = (parts.method == Method::POST)
            .then(|| Api::from_path(parts.uri.path()))
            .flatten();
        Ok(match api {
            Some(api) => self.inference(arrival, api, parts, body).await,
            None => self.pass_through(parts, body).await,
        })
    }

    fn upstream_request(
        &self,
        upstream: &Upstream,
        authority: &str,
        parts: &Parts,
        body: Bytes,
        request_id: Option<&str>,
        trace_cx: Option<&opentelemetry::Context>,
    ) -> Result<Request<Full<Bytes>>, http::Error> {
        let path = parts.uri.path_and_query().map_or("/", |path| path.as_str());
        let mut builder = Request::builder()
            .method(parts.method.clone())
            .uri(format!("{}://{authority}{path}", upstream.scheme));
        if let Some(headers) = builder.headers_mut() {
            for (name, value) in &parts.headers {
                let skip = is_hop_header(name)
                    || name == PREFILL_HEADER
                    || name == LEGACY_PREFILL_HEADER
                    || (request_id.is_some() && name == "x-request-id")
                    || (trace_cx.is_some() && (name == "traceparent" || name == "tracestate"));
                if !skip {
                    headers.append(name, value.clone());
                }
            }
            if let Some(request_id) = request_id
                && let Ok(value) = HeaderValue::from_str(request_id)
            {
                headers.insert("x-request-id", value);
            }
            if let Some(cx) = trace_cx {
                telemetry::inject_context(cx, headers);
            }
        }
        builder.body(Full::new(body))
    }

    /// Routes the sidecar does not disaggregate go to the local vLLM as they are.
    async fn pass_through(&self, parts: Parts, body: Incoming) -> Response<ProxyBody> {
        let body = match Limited::new(body, self.max_request_body_bytes)
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(error) => return body_error(error),
        };
        let request = match self.upstream_request(
            &self.decoder_upstream,
            &self.decoder,
            &parts,
            body,
            None,
            None,
        ) {
            Ok(request) => request,
            Err(error) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    "BadRequestError",
                    &error.to_string(),
                );
            }
        };
        match self.decoder_upstream.client.request(request).await {
            Ok(response) => relay_head(response, ProxyBody::Plain),
            Err(error) => decoder_unreachable(&self.decoder, &error),
        }
    }

    async fn inference(
        self: Arc<Self>,
        arrival: Instant,
        api: Api,
        parts: Parts,
        body: Incoming,
    ) -> Response<ProxyBody> {
        let tracer = self.tracing.tracer();
        let parent = tracer
            .map(|_| telemetry::extract_context(&parts.headers))
            .unwrap_or_default();
        let mut tracker = Tracker::new(
            self.metrics.clone(),
            tracer,
            &parent,
            arrival,
            parts.method.as_str(),
            parts.uri.path(),
            self.connector.as_str(),
        );
        let body = match Limited::new(body, self.max_request_body_bytes)
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(error) => {
                tracker.error("bad_body", &error.to_string());
                tracker.finish(Outcome::Rejected);
                return body_error(error);
            }
        };
        tracker.body_ready();
        let targets = prefill_targets(&parts.headers);
        if targets.is_empty() {
            tracker.decode_only();
            let streaming = looks_streaming(&body);
            let trace_cx = tracker.decode_start(&self.decoder, None, streaming);
            return self.decode(tracker, &parts, body, None, trace_cx).await;
        }
        let target = if self.prefiller_sampling && targets.len() > 1 {
            let pick = rand::rng().random_range(0..targets.len());
            targets[pick].clone()
        } else {
            targets[0].clone()
        };
        tracker.disaggregate(&target);
        match self.allowlist.check(&target) {
            Verdict::Allowed => {}
            Verdict::Denied => {
                tracing::warn!(%target, "Prefill target refused by SSRF protection.");
                tracker.error("ssrf_protection_denied", &target);
                tracker.finish(Outcome::Rejected);
                return error_response(
                    StatusCode::FORBIDDEN,
                    "Forbidden",
                    "Forbidden: prefill target not allowed by SSRF protection",
                );
            }
            Verdict::Malformed => {
                tracker.error("malformed_prefill_target", &target);
                tracker.finish(Outcome::Rejected);
                return error_response(
                    StatusCode::BAD_REQUEST,
                    "BadRequestError",
                    &format!("{PREFILL_HEADER} {target:?} is not host:port"),
                );
            }
        }
        let mut request: Map<String, Value> = match serde_json::from_slice(&body) {
            Ok(request) => request,
            Err(error) => {
                tracker.error("bad_json", &error.to_string());
                tracker.finish(Outcome::Rejected);
                return error_response(
                    StatusCode::BAD_REQUEST,
                    "BadRequestError",
                    &format!("JSON decode error: {error}"),
                );
            }
        };
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|value| value.to_str().ok())
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let prefill_body = match connector::prefill_body(api, &mut request) {
            Ok(bytes) => Bytes::from(bytes),
            Err(error) => {
                tracker.finish(Outcome::Rejected);
                return error_response(
                    StatusCode::BAD_REQUEST,
                    "BadRequestError",
                    &error.to_string(),
                );
            }
        };
        let prefill_cx = tracker.prefill_start(&target, &request_id, self.connector.as_str());
        let prefilled = self
            .prefill(
                &target,
                &parts,
                prefill_body,
                &request_id,
                prefill_cx.as_ref(),
            )
            .await;
        let status = match &prefilled {
            Ok(_) => 200,
            Err(PrefillFailure::Status(status, ..)) => status.as_u16(),
            Err(_) => 0,
        };
        tracker.prefill_done(prefill_cx, status);
        let streaming = connector::is_streaming(&request);
        let kv_transfer_params = match prefilled {
            Ok(params) => params,
            Err(failure) => {
                tracing::warn!(%target, reason = failure.reason(), ?failure, "Prefill failed.");
                tracker.error(failure.reason(), &format!("{failure:?}"));
                if self.prefill_fallback == PrefillFallback::Local {
                    tracker.fall_back();
                    let trace_cx =
                        tracker.decode_start(&self.decoder, Some(&request_id), streaming);
                    return self
                        .decode(tracker, &parts, body, Some(&request_id), trace_cx)
                        .await;
                }
                tracker.finish(Outcome::PrefillError);
                return prefill_error_response(&target, failure);
            }
        };
        let decode_body = match connector::decode_body(&mut request, kv_transfer_params) {
            Ok(bytes) => Bytes::from(bytes),
            Err(error) => {
                tracker.finish(Outcome::Rejected);
                return error_response(
                    StatusCode::BAD_REQUEST,
                    "BadRequestError",
                    &error.to_string(),
                );
            }
        };
        let trace_cx = tracker.decode_start(&self.decoder, Some(&request_id), streaming);
        self.decode(tracker, &parts, decode_body, Some(&request_id), trace_cx)
            .await
    }

    /// The prefill leg, with retries on 502/503/504 and unreachable targets; returns the
    /// prefill's `kv_transfer_params`.
    async fn prefill(
        &self,
        target: &str,
        parts: &Parts,
        body: Bytes,
        request_id: &str,
        trace_cx: Option<&opentelemetry::Context>,
    ) -> Result<Value, PrefillFailure> {
        let mut attempt = 0;
        loop {
            let result = self
                .prefill_once(target, parts, body.clone(), request_id, trace_cx)
                .await;
            let retryable = match &result {
                Err(PrefillFailure::Connect(_)) => true,
                Err(PrefillFailure::Status(status, ..)) => matches!(status.as_u16(), 502..=504),
                _ => false,
            };
            if !retryable || attempt >= self.prefill_max_retries {
                return result;
            }
            attempt += 1;
            tokio::time::sleep(self.prefill_retry_backoff).await;
        }
    }

    async fn prefill_once(
        &self,
        target: &str,
        parts: &Parts,
        body: Bytes,
        request_id: &str,
        trace_cx: Option<&opentelemetry::Context>,
    ) -> Result<Value, PrefillFailure> {
        let request = self
            .upstream_request(
                &self.prefiller,
                target,
                parts,
                body,
                Some(request_id),
                trace_cx,
            )
            .map_err(|error| PrefillFailure::Connect(error.to_string()))?;
        let exchange = async {
            let response = self
                .prefiller
                .client
                .request(request)
                .await
                .map_err(|error| PrefillFailure::Connect(error_chain(&error)))?;
            let (head, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|error| PrefillFailure::Body(error.to_string()))?
                .to_bytes();
            Ok::<_, PrefillFailure>((head, body))
        };
        let (head, body) = tokio::time::timeout(self.prefill_timeout, exchange)
            .await
            .map_err(|_| PrefillFailure::Timeout(self.prefill_timeout))??;
        if !head.status.is_success() {
            return Err(PrefillFailure::Status(head.status, head.headers, body));
        }
        connector::kv_transfer_params_of(&body).ok_or(PrefillFailure::MissingParams)
    }

    /// The decode leg on the local vLLM; its response goes to the client.
    async fn decode(
        &self,
        mut tracker: Tracker,
        parts: &Parts,
        body: Bytes,
        request_id: Option<&str>,
        trace_cx: Option<opentelemetry::Context>,
    ) -> Response<ProxyBody> {
        let request = match self.upstream_request(
            &self.decoder_upstream,
            &self.decoder,
            parts,
            body,
            request_id,
            trace_cx.as_ref(),
        ) {
            Ok(request) => request,
            Err(error) => {
                tracker.finish(Outcome::Rejected);
                return error_response(
                    StatusCode::BAD_REQUEST,
                    "BadRequestError",
                    &error.to_string(),
                );
            }
        };
        let response = match tokio::time::timeout(
            self.decode_timeout,
            self.decoder_upstream.client.request(request),
        )
        .await
        {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => {
                tracing::warn!(decoder = %self.decoder, error = %error_chain(&error), "Decode engine unreachable.");
                tracker.error("decode_unreachable", &error_chain(&error));
                tracker.finish(Outcome::DecodeError);
                return decoder_unreachable(&self.decoder, &error);
            }
            Err(_) => {
                tracker.error("decode_timeout", "no response headers");
                tracker.finish(Outcome::DecodeError);
                return error_response(
                    StatusCode::GATEWAY_TIMEOUT,
                    "Gateway Timeout",
                    &format!(
                        "the decode engine did not answer within {:?}",
                        self.decode_timeout
                    ),
                );
            }
        };
        let is_sse = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("text/event-stream"));
        let success = response.status().is_success();
        if is_sse && success {
            let timeout = self.decode_timeout;
            return relay_head(response, move |incoming| {
                ProxyBody::Stream(Box::new(body::SseRelay::new(incoming, tracker, timeout)))
            });
        }
        // A whole JSON answer: buffered, so a decode engine dying mid-body becomes a clean error.
        let (head, incoming) = response.into_parts();
        let collected = tokio::time::timeout(self.decode_timeout, incoming.collect()).await;
        let bytes = match collected {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(error)) => {
                tracker.error("decode_body", &error.to_string());
                tracker.finish(Outcome::DecodeError);
                return error_response(
                    StatusCode::BAD_GATEWAY,
                    "BadGatewayError",
                    &format!("the decode engine's response broke: {error}"),
                );
            }
            Err(_) => {
                tracker.error("decode_timeout", "body");
                tracker.finish(Outcome::DecodeError);
                return error_response(
                    StatusCode::GATEWAY_TIMEOUT,
                    "Gateway Timeout",
                    &format!(
                        "the decode engine's response stalled for {:?}",
                        self.decode_timeout
                    ),
                );
            }
        };
        tracker.first_token();
        tracker.finish(if success {
            Outcome::Success
        } else {
            Outcome::DecodeError
        });
        let mut response = Response::from_parts(head, ProxyBody::full(bytes));
        strip_hop_headers(response.headers_mut());
        response
    }
}

/// Whether a raw body asks for streaming, without parsing it (decode-only path).
fn looks_streaming(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Stream {
        #[serde(default)]
        stream: Option<bool>,
    }
    serde_json::from_slice::<Stream>(body)
        .ok()
        .and_then(|s| s.stream)
        .unwrap_or(false)
}

fn strip_hop_headers(headers: &mut HeaderMap) {
    let names: Vec<_> = headers
        .keys()
        .filter(|name| is_hop_header(name) && *name != header::HOST)
        .cloned()
        .collect();
    for name in names {
        headers.remove(name);
    }
}

fn relay_head(
    response: Response<Incoming>,
    body: impl FnOnce(Incoming) -> ProxyBody,
) -> Response<ProxyBody> {
    let (mut head, incoming) = response.into_parts();
    strip_hop_headers(&mut head.headers);
    Response::from_parts(head, body(incoming))
}

fn body_error(error: body::BoxError) -> Response<ProxyBody> {
    if error.is::<http_body_util::LengthLimitError>() {
        error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Payload Too Large",
            "Request body exceeds the limit.",
        )
    } else {
        error_response(
            StatusCode::BAD_REQUEST,
            "BadRequestError",
            &format!("reading the request body failed: {error}"),
        )
    }
}

/// Upstream's 2026 answer: 503 when the connection is refused, else 502.
fn decoder_unreachable(
    decoder: &str,
    error: &hyper_util::client::legacy::Error,
) -> Response<ProxyBody> {
    let (status, kind) = if error.is_connect() {
        (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailableError")
    } else {
        (StatusCode::BAD_GATEWAY, "BadGatewayError")
    };
    error_response(
        status,
        kind,
        &format!(
            "the decode engine at {decoder} is unreachable: {}",
            error_chain(error)
        ),
    )
}

fn prefill_error_response(target: &str, failure: PrefillFailure) -> Response<ProxyBody> {
    match failure {
        // The client's request is at fault: vLLM's own answer says why.
        PrefillFailure::Status(status, headers, body) if status.is_client_error() => {
            let mut response = Response::new(ProxyBody::full(body));
            *response.status_mut() = status;
            if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, content_type.clone());
            }
            response
        }
        PrefillFailure::Status(status, _, body) => error_response(
            StatusCode::BAD_GATEWAY,
            "BadGatewayError",
            &format!(
                "prefill on {target} failed with status {}: {}",
                status.as_u16(),
                upstream_message(&body)
            ),
        ),
        PrefillFailure::Connect(error) => error_response(
            StatusCode::BAD_GATEWAY,
            "BadGatewayError",
            &format!("prefill on {target} is unreachable: {error}"),
        ),
        PrefillFailure::Timeout(timeout) => error_response(
            StatusCode::GATEWAY_TIMEOUT,
            "Gateway Timeout",
            &format!("prefill on {target} did not answer within {timeout:?}"),
        ),
        PrefillFailure::Body(error) => error_response(
            StatusCode::BAD_GATEWAY,
            "BadGatewayError",
            &format!("prefill on {target} sent a broken response: {error}"),
        ),
        PrefillFailure::MissingParams => error_response(
            StatusCode::BAD_GATEWAY,
            "BadGatewayError",
            &format!(
                "prefill on {target} returned no kv_transfer_params; is it a vLLM with a NIXL kv_producer connector?"
            ),
        ),
    }
}

/// The message of a vLLM error body, or the body's start.
fn upstream_message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|value| value["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned())
}

/// An error with its sources, for messages and logs.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
