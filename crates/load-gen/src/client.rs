//! One request on the wire: a hyper 1 HTTP/1.1 client with a keep-alive pool, the OpenAI
//! request bodies, and the client-side measurements (time to headers, TTFT, inter-token
//! gaps, end-to-end) with the failure classification.

use std::{borrow::Cow, str::FromStr, time::Duration};

use bytes::Bytes;
use http::{
    HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri, header,
};
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, client::conn::http1::SendRequest};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioIo},
};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::{
    Error,
    config::{Api, Config},
    prompt::{Message, Prompt},
    record::FailureKind,
    sse::SseParser,
};

/// Connect timeout of pooled connections.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Timeout of the pre-flight `GET /models`.
const PREFLIGHT_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of an error body is kept as the failure's detail.
const ERROR_DETAIL_CHARS: usize = 200;

/// The shared HTTP client and the request URIs.
#[derive(Debug, Clone)]
pub(crate) struct HttpClient {
    client: Client<HttpConnector, Full<Bytes>>,
    endpoint: String,
    chat_uri: Uri,
    completions_uri: Uri,
    models_uri: Uri,
    extra_headers: HeaderMap,
    timeout: Duration,
    model: String,
    temperature: f64,
    /// `host:port` for dedicated connections, and the `Host` header they send.
    authority: String,
    host_header: HeaderValue,
}

/// A closed-loop worker's own keep-alive connection (as `oha` keeps one per worker), so the
/// hot path skips the shared pool's lock; reconnected after any failure.
#[derive(Debug, Default)]
pub(crate) struct WorkerConnection {
    sender: Option<SendRequest<Full<Bytes>>>,
}

/// A request ready to send.
#[derive(Debug)]
pub(crate) struct Outgoing<'a> {
    pub(crate) api: Api,
    pub(crate) prompt: &'a Prompt,
    pub(crate) max_tokens: u32,
    pub(crate) stream: bool,
    pub(crate) request_id: &'a str,
    pub(crate) traceparent: &'a str,
}

/// What the client saw.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Outcome {
    pub(crate) status: Option<u16>,
    pub(crate) failure: Option<FailureKind>,
    pub(crate) error: Option<String>,
    pub(crate) headers_ms: Option<f64>,
    pub(crate) ttft_ms: Option<f64>,
    pub(crate) itl_ms: Vec<f64>,
    pub(crate) e2e_ms: f64,
    pub(crate) usage_prompt_tokens: Option<u64>,
    pub(crate) usage_completion_tokens: Option<u64>,
}

impl Outcome {
    fn fail(&mut self, kind: FailureKind, detail: impl Into<String>) {
        if self.failure.is_none() {
            self.failure = Some(kind);
            self.error = Some(detail.into());
        }
    }
}

#[derive(Serialize)]
struct ChatBody<'a> {
    model: &'a str,
    messages: Vec<MessageRef<'a>>,
    max_tokens: u32,
    temperature: f64,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
}

#[derive(Serialize)]
struct CompletionsBody<'a> {
    model: &'a str,
    prompt: Cow<'a, str>,
    max_tokens: u32,
    temperature: f64,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
}

#[derive(Serialize)]
struct MessageRef<'a> {
    role: &'a str,
    content: &'a str,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Deserialize)]
struct Usage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct ResponseBody {
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(default, borrow)]
    choices: Vec<ChunkChoice<'a>>,
    usage: Option<Usage>,
    error: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct ChunkChoice<'a> {
    #[serde(borrow)]
    delta: Option<Delta<'a>>,
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow)]
    reasoning_content: Option<Cow<'a, str>>,
}

impl HttpClient {
    pub(crate) fn new(config: &Config, temperature: f64) -> Result<HttpClient, Error> {
        let endpoint = config.endpoint.trim_end_matches('/').to_owned();
        let invalid = |reason: String| Error::InvalidEndpoint {
            endpoint: endpoint.clone(),
            reason,
        };
        let base = Uri::from_str(&endpoint).map_err(|error| invalid(error.to_string()))?;
        match base.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(invalid(
                    "https is not supported; the generator speaks plain HTTP/1.1 (use a port-forward or the gateway's HTTP listener)".to_owned(),
                ));
            }
            _ => return Err(invalid("expected an http:// URL".to_owned())),
        }
        if base.host().is_none() {
            return Err(invalid("the URL has no host".to_owned()));
        }
        let uri = |path: &str| {
            Uri::from_str(&format!("{endpoint}{path}")).map_err(|error| invalid(error.to_string()))
        };
        let mut extra_headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let header_name = HeaderName::from_str(name)
                .map_err(|_| Error::Config(format!("header name {name:?} is invalid")))?;
            let header_value = HeaderValue::from_str(value)
                .map_err(|_| Error::Config(format!("header {name}: value is invalid")))?;
            extra_headers.append(header_name, header_value);
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let authority = base
            .authority()
            .map(|a| {
                if a.port().is_some() {
                    a.as_str().to_owned()
                } else {
                    format!("{}:80", a.host())
                }
            })
            .unwrap_or_default();
        let host_header = base
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            .ok_or_else(|| invalid("the URL has no host".to_owned()))?;
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(usize::MAX)
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        Ok(HttpClient {
            client,
            chat_uri: uri("/chat/completions")?,
            completions_uri: uri("/completions")?,
            models_uri: uri("/models")?,
            endpoint,
            extra_headers,
            timeout: config.request_timeout,
            model: config.model.clone(),
            temperature,
            authority,
            host_header,
        })
    }

    /// `GET <endpoint>/models` must answer 2xx.
    pub(crate) async fn preflight(&self) -> Result<(), Error> {
        let unreachable = |reason: String| Error::Unreachable {
            endpoint: self.endpoint.clone(),
            reason,
        };
        let mut request = Request::builder()
            .method(Method::GET)
            .uri(self.models_uri.clone());
        for (name, value) in &self.extra_headers {
            request = request.header(name, value);
        }
        let request = request
            .body(Full::new(Bytes::new()))
            .map_err(|error| unreachable(error.to_string()))?;
        let response = tokio::time::timeout(PREFLIGHT_TIMEOUT, async {
            let response = self.client.request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>((status, body.is_ok()))
        })
        .await;
        match response {
            Err(_) => Err(unreachable(format!(
                "GET /models timed out after {}s",
                PREFLIGHT_TIMEOUT.as_secs()
            ))),
            Ok(Err(error)) => Err(unreachable(format!(
                "GET /models failed: {}",
                error_chain(&*error)
            ))),
            Ok(Ok((status, _))) if !status.is_success() => Err(unreachable(format!(
                "GET /models returned HTTP {}",
                status.as_u16()
            ))),
            Ok(Ok((_, false))) => Err(unreachable("GET /models body was cut off".to_owned())),
            Ok(Ok(_)) => Ok(()),
        }
    }

    /// The JSON body of a request.
    pub(crate) fn body(&self, outgoing: &Outgoing<'_>) -> Bytes {
        let stream_options = outgoing.stream.then_some(StreamOptions {
            include_usage: true,
        });
        let json = match outgoing.api {
            Api::Chat => {
                let messages = match outgoing.prompt {
                    Prompt::Text(text) => vec![MessageRef {
                        role: "user",
                        content: text,
                    }],
                    Prompt::Messages(messages) => messages
                        .iter()
                        .map(|Message { role, content }| MessageRef { role, content })
                        .collect(),
                };
                serde_json::to_vec(&ChatBody {
                    model: &self.model,
                    messages,
                    max_tokens: outgoing.max_tokens,
                    temperature: self.temperature,
                    stream: outgoing.stream,
                    stream_options,
                })
            }
            Api::Completions => {
                let prompt = match outgoing.prompt {
                    Prompt::Text(text) => Cow::Borrowed(&**text),
                    Prompt::Messages(messages) => Cow::Owned(
                        messages
                            .iter()
                            .map(|m| &*m.content)
                            .collect::<Vec<_>>()
                            .join("\n\n"),
                    ),
                };
                serde_json::to_vec(&CompletionsBody {
                    model: &self.model,
                    prompt,
                    max_tokens: outgoing.max_tokens,
                    temperature: self.temperature,
                    stream: outgoing.stream,
                    stream_options,
                })
            }
        };
        // Serializing strings and numbers into a Vec cannot fail.
        Bytes::from(json.unwrap_or_default())
    }

    /// Sends one request and measures it, over `connection` when given, else the pool.
    pub(crate) async fn send(
        &self,
        outgoing: &Outgoing<'_>,
        body: Bytes,
        mut connection: Option<&mut WorkerConnection>,
    ) -> Outcome {
        let uri = match outgoing.api {
            Api::Chat => self.chat_uri.clone(),
            Api::Completions => self.completions_uri.clone(),
        };
        let mut outcome = Outcome::default();
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Ok(value) = HeaderValue::from_str(outgoing.request_id) {
            headers.insert(HeaderName::from_static("x-request-id"), value);
        }
        if let Ok(value) = HeaderValue::from_str(outgoing.traceparent) {
            headers.insert(HeaderName::from_static("traceparent"), value);
        }
        for (name, value) in &self.extra_headers {
            headers.append(name, value.clone());
        }
        if connection.is_some() {
            // Dedicated connections speak origin-form with an explicit Host.
            *request.uri_mut() = origin_form(request.uri());
            request
                .headers_mut()
                .insert(header::HOST, self.host_header.clone());
        }
        let start = Instant::now();
        let exchange = self.exchange(
            request,
            outgoing.stream,
            start,
            &mut outcome,
            connection.as_deref_mut(),
        );
        let timed_out = tokio::time::timeout(self.timeout, exchange).await.is_err();
        outcome.e2e_ms = ms(start.elapsed());
        if timed_out {
            let timeout = self.timeout;
            outcome.fail(
                FailureKind::Timeout,
                format!("no complete response within {timeout:?}"),
            );
        }
        // A connection that failed mid-exchange is in an unknown state.
        if outcome
            .failure
            .is_some_and(|kind| kind != FailureKind::Http)
            && let Some(connection) = connection
        {
            connection.sender = None;
        }
        outcome
    }

    /// The response head, over the worker's connection or the pool.
    async fn response(
        &self,
        request: Request<Full<Bytes>>,
        connection: Option<&mut WorkerConnection>,
    ) -> Result<Response<Incoming>, (FailureKind, String)> {
        let Some(connection) = connection else {
            return self.client.request(request).await.map_err(|error| {
                let kind = if error.is_connect() {
                    FailureKind::Connect
                } else {
                    FailureKind::ConnectionClosed
                };
                (kind, error_chain(&error))
            });
        };
        if connection
            .sender
            .as_ref()
            .is_none_or(SendRequest::is_closed)
        {
            connection.sender = Some(self.connect().await?);
        }
        let Some(sender) = connection.sender.as_mut() else {
            return Err((FailureKind::Connect, "no connection".to_owned()));
        };
        if let Err(error) = sender.ready().await {
            connection.sender = None;
            return Err((FailureKind::ConnectionClosed, error_chain(&error)));
        }
        sender.send_request(request).await.map_err(|error| {
            connection.sender = None;
            (FailureKind::ConnectionClosed, error_chain(&error))
        })
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, (FailureKind, String)> {
        let connect = async {
            let stream = tokio::net::TcpStream::connect(&self.authority)
                .await
                .map_err(|error| format!("tcp connect {}: {error}", self.authority))?;
            let _ = stream.set_nodelay(true);
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|error| error_chain(&error))?;
            // Ends when the sender is dropped or the peer closes.
            tokio::spawn(connection);
            Ok::<_, String>(sender)
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(sender)) => Ok(sender),
            Ok(Err(reason)) => Err((FailureKind::Connect, reason)),
            Err(_) => Err((
                FailureKind::Connect,
                format!("tcp connect {}: timed out", self.authority),
            )),
        }
    }

    async fn exchange(
        &self,
        request: Request<Full<Bytes>>,
        stream: bool,
        start: Instant,
        outcome: &mut Outcome,
        connection: Option<&mut WorkerConnection>,
    ) {
        let response = match self.response(request, connection).await {
            Ok(response) => response,
            Err((kind, detail)) => {
                outcome.fail(kind, detail);
                return;
            }
        };
        outcome.headers_ms = Some(ms(start.elapsed()));
        let status = response.status();
        outcome.status = Some(status.as_u16());
        let mut body = response.into_body();
        if !status.is_success() {
            let detail = match body.collect().await {
                Ok(collected) => error_detail(status, &collected.to_bytes()),
                Err(error) => format!("HTTP {}; body cut off: {error}", status.as_u16()),
            };
            outcome.fail(FailureKind::Http, detail);
            return;
        }
        if !stream {
            match body.collect().await {
                Ok(collected) => {
                    match serde_json::from_slice::<ResponseBody>(&collected.to_bytes()) {
                        Ok(parsed) => {
                            if let Some(usage) = parsed.usage {
                                outcome.usage_prompt_tokens = usage.prompt_tokens;
                                outcome.usage_completion_tokens = usage.completion_tokens;
                            }
                        }
                        Err(error) => outcome.fail(
                            FailureKind::InvalidResponse,
                            format!("response body is not JSON: {error}"),
                        ),
                    }
                }
                Err(error) => outcome.fail(FailureKind::BodyIncomplete, error_chain(&error)),
            }
            return;
        }
        let mut parser = SseParser::new();
        let mut done = false;
        let mut last_token: Option<Instant> = None;
        loop {
            let frame = match body.frame().await {
                None => break,
                Some(Ok(frame)) => frame,
                Some(Err(error)) => {
                    outcome.fail(FailureKind::StreamIncomplete, error_chain(&error));
                    return;
                }
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let now = Instant::now();
            parser.push(&data, |event| {
                if event == b"[DONE]" {
                    done = true;
                    return;
                }
                match serde_json::from_slice::<Chunk<'_>>(event) {
                    Ok(chunk) => {
                        if chunk.error.is_some() {
                            let detail = String::from_utf8_lossy(event);
                            outcome.fail(FailureKind::StreamError, truncate(&detail));
                        }
                        if let Some(usage) = chunk.usage {
                            outcome.usage_prompt_tokens = usage.prompt_tokens;
                            outcome.usage_completion_tokens = usage.completion_tokens;
                        }
                        if chunk.choices.iter().any(ChunkChoice::has_content) {
                            match last_token {
                                None => outcome.ttft_ms = Some(ms(now - start)),
                                Some(last) => outcome.itl_ms.push(ms(now - last)),
                            }
                            last_token = Some(now);
                        }
                    }
                    Err(error) => outcome.fail(
                        FailureKind::InvalidResponse,
                        format!("stream event is not JSON: {error}"),
                    ),
                }
            });
        }
        if !done {
            let detail = if parser.has_partial_event() {
                "stream ended inside an event, before data: [DONE]"
            } else {
                "stream ended before data: [DONE]"
            };
            outcome.fail(FailureKind::StreamIncomplete, detail);
        }
    }
}

impl ChunkChoice<'_> {
    fn has_content(&self) -> bool {
        let non_empty =
            |text: &Option<Cow<'_, str>>| text.as_deref().is_some_and(|t| !t.is_empty());
        non_empty(&self.text)
            || self
                .delta
                .as_ref()
                .is_some_and(|d| non_empty(&d.content) || non_empty(&d.reasoning_content))
    }
}

/// `/path?query` of an absolute URI.
fn origin_form(uri: &Uri) -> Uri {
    uri.path_and_query()
        .and_then(|pq| Uri::from_str(pq.as_str()).ok())
        .unwrap_or_else(|| Uri::from_static("/"))
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn truncate(text: &str) -> String {
    text.chars().take(ERROR_DETAIL_CHARS).collect()
}

fn error_detail(status: StatusCode, body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorBody {
        error: ErrorInner,
    }
    #[derive(Deserialize)]
    struct ErrorInner {
        message: String,
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(parsed) => format!(
            "HTTP {}: {}",
            status.as_u16(),
            truncate(&parsed.error.message)
        ),
        Err(_) => format!(
            "HTTP {}: {}",
            status.as_u16(),
            truncate(&String::from_utf8_lossy(body))
        ),
    }
}

/// An error and its sources, joined with `: `.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}
