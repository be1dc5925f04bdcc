//! The HTTP surface of `vllm serve`: OpenAI routes, health, metrics and vLLM's extras.

mod error;
mod protocol;
mod stream;

use std::{
    convert::Infallible,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use axum::{
    Json, Router,
    body::Body,
    extract::{MatchedPath, Request, State},
    http::{HeaderMap, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use bytes::Bytes;
use kv_index::hash::RequestExtras;
use opentelemetry::{
    KeyValue,
    trace::{Span, SpanKind, Tracer},
};
use parking_lot::Mutex;
use rand::{Rng, rngs::SmallRng};
use serde_json::{Value, json};
use tokenizer::Tokenizer;

pub(crate) use error::ApiError;
use protocol::{
    ChatChoice, ChatMessageOut, ChatRequest, ChatResponse, CommonParams, CompletionChoice,
    CompletionRequest, CompletionResponse, Content, Prompt, PromptTokensDetails, Usage,
};
use stream::{ChunkWriter, Endpoint};

use crate::{
    config::{Config, FailureType},
    engine::{EngineEvent, EngineHandle, FinishReason, Finished, Submission},
    metrics::Metrics,
};

/// What every handler shares.
pub(crate) struct AppState {
    pub(crate) config: Arc<Config>,
    pub(crate) engine: EngineHandle,
    pub(crate) metrics: Metrics,
    pub(crate) tokenizer: Tokenizer,
    pub(crate) tracing: Arc<telemetry::Tracing>,
    pub(crate) rng: Mutex<SmallRng>,
    pub(crate) started: u64,
    pub(crate) in_flight: std::sync::atomic::AtomicI64,
    pub(crate) kv_event_sources: Value,
    pub(crate) dev_mode: bool,
    /// The P/D roles, when a NIXL connector is configured.
    pub(crate) pd: Option<crate::pd::Pd>,
}

type Shared = Arc<AppState>;

/// The router of one simulated vLLM server.
pub(crate) fn router(state: Shared) -> Router {
    let mut router = Router::new()
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/models", get(models))
        .route("/tokenize", post(tokenize))
        .route("/detokenize", post(detokenize))
        .route("/health", get(|| async { StatusCode::OK }))
        .route(
            "/ping",
            get(|| async { StatusCode::OK }).post(|| async { StatusCode::OK }),
        )
        .route(
            "/version",
            get(|| async { Json(json!({"version": crate::VLLM_VERSION})) }),
        )
        .route("/load", get(load))
        .route("/kv_event_sources", get(kv_event_sources))
        .route("/metrics", get(metrics));
    if state.dev_mode {
        router = router.route("/reset_prefix_cache", post(reset_prefix_cache));
    }
    router
        .layer(middleware::from_fn_with_state(state.clone(), count_http))
        .with_state(state)
}

/// `http_requests_total` and `http_request_duration_seconds` as the instrumentator records
/// them: every route except the operational ones.
async fn count_http(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let handler = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "none".to_owned());
    let method = request.method().as_str().to_owned();
    let start = Instant::now();
    let response = next.run(request).await;
    if !matches!(
        handler.as_str(),
        "/metrics" | "/health" | "/load" | "/ping" | "/version"
    ) {
        let status = format!("{}xx", response.status().as_u16() / 100);
        state
            .metrics
            .http_requests
            .with_label_values(&[&handler, &method, &status])
            .inc();
        state
            .metrics
            .http_request_duration
            .with_label_values(&[&handler, &method])
            .observe(start.elapsed().as_secs_f64());
    }
    response
}

async fn metrics(State(state): State<Shared>) -> Response {
    (
        [(header::CONTENT_TYPE, telemetry::PROMETHEUS_CONTENT_TYPE)],
        telemetry::encode_metrics(&state.metrics.registry),
    )
        .into_response()
}

async fn load(State(state): State<Shared>) -> Json<Value> {
    Json(json!({"server_load": state.in_flight.load(std::sync::atomic::Ordering::Relaxed)}))
}

async fn kv_event_sources(State(state): State<Shared>) -> Json<Value> {
    Json(state.kv_event_sources.clone())
}

async fn reset_prefix_cache(State(state): State<Shared>) -> Json<Value> {
    let engine = state.engine.clone();
    let success = tokio::task::spawn_blocking(move || engine.reset_prefix_cache())
        .await
        .unwrap_or(false);
    Json(json!({"success": success}))
}

async fn models(State(state): State<Shared>) -> Json<Value> {
    let config = &state.config;
    let data: Vec<Value> = config
        .served_model_names
        .iter()
        .map(|name| {
            json!({
                "id": name, "object": "model", "created": state.started, "owned_by": "vllm",
                "root": config.model, "parent": null, "max_model_len": config.max_model_len,
                "permission": [{
                    "id": format!("modelperm-{}", uuid::Uuid::new_v4().simple()),
                    "object": "model_permission", "created": state.started,
                    "allow_create_engine": false, "allow_sampling": true, "allow_logprobs": true,
                    "allow_search_indices": false, "allow_view": true, "allow_fine_tuning": false,
                    "organization": "*", "group": null, "is_blocking": false
                }]
            })
        })
        .collect();
    Json(json!({"object": "list", "data": data}))
}

async fn tokenize(State(state): State<Shared>, body: Body) -> Response {
    let result = async {
        let value = read_json(&state, body).await?;
        let tokens = if let Some(prompt) = value.get("prompt").and_then(Value::as_str) {
            state.tokenizer.encode(prompt)
        } else if let Some(messages) = value.get("messages") {
            let messages: Vec<protocol::Message> = serde_json::from_value(messages.clone())
                .map_err(|err| {
                    ApiError::validation("body.messages", "value_error", &err.to_string())
                })?;
            state
                .tokenizer
                .encode_chat(&flatten_messages(&messages)?)
                .map_err(|err| ApiError::bad_request(err.to_string(), Some("messages")))?
        } else {
            return Err(ApiError::validation(
                "body.prompt",
                "missing",
                "Field required",
            ));
        };
        Ok::<_, ApiError>(Json(json!({
            "count": tokens.len(), "max_model_len": state.config.max_model_len,
            "tokens": tokens, "token_strs": null
        })))
    }
    .await;
    result.map_or_else(IntoResponse::into_response, IntoResponse::into_response)
}

async fn detokenize(State(state): State<Shared>, body: Body) -> Response {
    let result = async {
        let value = read_json(&state, body).await?;
        let tokens: Vec<u32> = serde_json::from_value(
            value.get("tokens").cloned().unwrap_or(Value::Null),
        )
        .map_err(|err| ApiError::validation("body.tokens", "list_type", &err.to_string()))?;
        let prompt = state
            .tokenizer
            .decode(&tokens)
            .map_err(|err| ApiError::bad_request(err.to_string(), Some("tokens")))?;
        Ok::<_, ApiError>(Json(json!({"prompt": prompt})))
    }
    .await;
    result.map_or_else(IntoResponse::into_response, IntoResponse::into_response)
}

async fn completions(State(state): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    generate(state, Endpoint::Completions, headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn chat_completions(State(state): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    generate(state, Endpoint::Chat, headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn read_json(state: &AppState, body: Body) -> Result<Value, ApiError> {
    let bytes = axum::body::to_bytes(body, state.config.max_request_body_bytes)
        .await
        .map_err(|_| {
            ApiError::http(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "Request body exceeds the limit of {} bytes.",
                    state.config.max_request_body_bytes
                ),
            )
        })?;
    serde_json::from_slice(&bytes).map_err(|err| {
        ApiError::validation("body", "json_invalid", &format!("JSON decode error: {err}"))
    })
}

fn flatten_messages(
    messages: &[protocol::Message],
) -> Result<Vec<tokenizer::ChatMessage>, ApiError> {
    messages
        .iter()
        .map(|message| {
            let content = match &message.content {
                None => String::new(),
                Some(Content::Text(text)) => text.clone(),
                Some(Content::Parts(parts)) => {
                    let mut text = String::new();
                    for part in parts {
                        match (part.kind.as_str(), &part.text) {
                            ("text", Some(part_text)) => {
                                if !text.is_empty() {
                                    text.push('\n');
                                }
                                text.push_str(part_text);
                            }
                            (kind, _) => {
                                return Err(ApiError::bad_request(
                                    format!(
                                        "content part type {kind:?} is not supported by this model"
                                    ),
                                    Some("messages"),
                                ));
                            }
                        }
                    }
                    text
                }
            };
            Ok(tokenizer::ChatMessage {
                role: message.role.clone(),
                content,
            })
        })
        .collect()
}

/// A status forced by `X-Return-Error` or drawn by failure injection, as the vLLM error
/// that status stands for.
fn injected_failure(state: &AppState, headers: &HeaderMap) -> Option<ApiError> {
    let forced = headers
        .get("x-return-error")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u16>().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .filter(|status| status.is_client_error() || status.is_server_error());
    let status = match forced {
        Some(status) => status,
        None if state.config.failure_rate > 0.0 => {
            let mut rng = state.rng.lock();
            if !rng.random_bool(state.config.failure_rate) {
                return None;
            }
            let types = &state.config.failure_types;
            let failure = types[rng.random_range(0..types.len())];
            StatusCode::from_u16(failure.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        }
        None => return None,
    };
    let failure = FailureType::ALL
        .into_iter()
        .find(|f| f.status() == status.as_u16());
    Some(match failure {
        Some(FailureType::RateLimit) => ApiError {
            status,
            kind: "RateLimitError",
            message: "Rate limit reached, please retry later.".into(),
            param: None,
        },
        Some(FailureType::InvalidApiKey) => ApiError {
            status,
            kind: "AuthenticationError",
            message: "Incorrect API key provided.".into(),
            param: None,
        },
        Some(FailureType::ModelNotFound) => ApiError::model_not_found("injected-failure"),
        Some(FailureType::ContextLength | FailureType::InvalidRequest) => {
            ApiError::bad_request("Injected invalid request.", None)
        }
        Some(FailureType::ServerError) => ApiError {
            status,
            kind: "ServiceUnavailableError",
            message: "The server is temporarily unavailable.".into(),
            param: None,
        },
        None => ApiError::http(status, "Injected failure."),
    })
}

/// vLLM's `--api-key` check: true when the request may proceed.
fn authorized(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(key) = &state.config.api_key else {
        return true;
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    presented == Some(key.as_str())
}

struct Prepared {
    request_id: String,
    model: String,
    prompt_tokens: Vec<u32>,
    common: CommonParams,
    /// The `--lora-modules` adapter named by `model`, if any.
    lora: Option<crate::config::LoraModule>,
    /// The body's `session_id`.
    session_id: Option<String>,
    /// `vllm_xargs.kv_cache_report_mode == "full"`.
    report_cached_blocks: bool,
}

fn prepare(
    state: &AppState,
    endpoint: Endpoint,
    headers: &HeaderMap,
    value: Value,
) -> Result<Prepared, ApiError> {
    let session_id = value
        .get("session_id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let report_cached_blocks = value
        .get("vllm_xargs")
        .and_then(|xargs| xargs.get("kv_cache_report_mode"))
        .and_then(Value::as_str)
        == Some("full");
    let (prompt_tokens, common) = match endpoint {
        Endpoint::Completions => {
            let request: CompletionRequest = serde_json::from_value(value).map_err(|err| {
                ApiError::validation("body", "model_attributes_type", &err.to_string())
            })?;
            let tokens = match request.prompt {
                None => {
                    return Err(ApiError::validation(
                        "body.prompt",
                        "missing",
                        "Field required",
                    ));
                }
                Some(Prompt::Text(text)) => state.tokenizer.encode(&text),
                Some(Prompt::Tokens(tokens)) => tokens,
                Some(Prompt::Texts(texts)) if texts.len() == 1 => state.tokenizer.encode(&texts[0]),
                Some(Prompt::TokenLists(lists)) if lists.len() == 1 => lists[0].clone(),
                Some(_) => {
                    return Err(ApiError::bad_request(
                        "Batched prompts are not supported by the simulator; send one prompt per request.",
                        Some("prompt"),
                    ));
                }
            };
            (tokens, request.common)
        }
        Endpoint::Chat => {
            let request: ChatRequest = serde_json::from_value(value).map_err(|err| {
                ApiError::validation("body", "model_attributes_type", &err.to_string())
            })?;
            let messages = flatten_messages(&request.messages)?;
            let tokens = state
                .tokenizer
                .encode_chat(&messages)
                .map_err(|err| ApiError::bad_request(err.to_string(), Some("messages")))?;
            (tokens, request.common)
        }
    };
    let config = &state.config;
    let lora = common
        .model
        .as_ref()
        .and_then(|model| config.lora_modules.iter().find(|lora| &lora.name == model))
        .cloned();
    let model = match &common.model {
        None => config.served_name().to_owned(),
        Some(model) if config.served_model_names.iter().any(|name| name == model) => model.clone(),
        Some(model) if lora.is_some() => model.clone(),
        Some(model) => return Err(ApiError::model_not_found(model)),
    };
    if prompt_tokens.is_empty() {
        return Err(ApiError::bad_request(
            "The prompt cannot be empty.",
            Some("prompt"),
        ));
    }
    let input_len = prompt_tokens.len() as u64;
    let max_model_len = u64::from(config.max_model_len);
    if input_len > max_model_len {
        return Err(ApiError::bad_request(
            format!(
                "This model's maximum context length is {max_model_len} tokens. However, your request has {input_len} input tokens. Please reduce the length of the input messages."
            ),
            Some("input_tokens"),
        ));
    }
    if let Some(max_tokens) = common.max_completion_tokens.or(common.max_tokens) {
        if max_tokens < 1 {
            return Err(ApiError::bad_request(
                format!("max_tokens must be at least 1, got {max_tokens}."),
                Some("max_tokens"),
            ));
        }
        if max_tokens as u64 > max_model_len - input_len {
            return Err(ApiError::bad_request(
                format!(
                    "'max_tokens' or 'max_completion_tokens' is too large: {max_tokens}. This model's maximum context length is {max_model_len} tokens and your request has {input_len} input tokens ({max_tokens} > {max_model_len} - {input_len})."
                ),
                Some("max_tokens"),
            ));
        }
    }
    if let Some(n) = common.n.filter(|&n| n != 1) {
        return Err(ApiError::bad_request(
            format!("n={n} is not supported by the simulator; only n=1."),
            Some("n"),
        ));
    }
    // Block 0 is vLLM's null block; the others hold KV.
    let needed_blocks = input_len.div_ceil(u64::from(config.block_size));
    let usable_blocks = u64::from(config.num_gpu_blocks.saturating_sub(1).max(1));
    if needed_blocks > usable_blocks {
        return Err(ApiError::bad_request(
            format!(
                "The prompt needs {needed_blocks} KV cache blocks but the cache holds {usable_blocks}."
            ),
            Some("prompt"),
        ));
    }
    let base = headers
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .or_else(|| common.request_id.clone())
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let request_id = match endpoint {
        Endpoint::Completions => format!("cmpl-{base}"),
        Endpoint::Chat => format!("chatcmpl-{base}"),
    };
    Ok(Prepared {
        request_id,
        model,
        prompt_tokens,
        common,
        lora,
        session_id,
        report_cached_blocks,
    })
}

async fn generate(
    state: Shared,
    endpoint: Endpoint,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Response> {
    let arrival = Instant::now();
    let arrival_wall = SystemTime::now();
    if !authorized(&state, &headers) {
        return Err((
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "Unauthorized"})),
        )
            .into_response());
    }
    let value = read_json(&state, body)
        .await
        .map_err(IntoResponse::into_response)?;
    let transfer = state
        .pd
        .as_ref()
        .map_or(crate::pd::Transfer::None, |pd| pd.classify(&value));
    let prepared =
        prepare(&state, endpoint, &headers, value).map_err(IntoResponse::into_response)?;
    if let Some(failure) = injected_failure(&state, &headers) {
        return Err(failure.into_response());
    }
    let Prepared {
        request_id,
        model,
        prompt_tokens,
        common,
        lora,
        session_id,
        report_cached_blocks,
    } = prepared;
    let parent_cx = state
        .tracing
        .tracer()
        .map(|_| telemetry::extract_context(&headers));
    let input_len = prompt_tokens.len() as u32;
    let max_tokens = common
        .max_completion_tokens
        .or(common.max_tokens)
        .map(|v| v as u32);
    let output_seed = {
        let mut rng = state.rng.lock();
        rng.random::<u64>()
    };
    let (output_len, finish_reason) = match max_tokens {
        Some(max_tokens) => (max_tokens, FinishReason::Length),
        None => {
            // vLLM would generate up to the context length; a model stops much earlier, so the
            // simulator stops at a seeded length and reports `stop`.
            let remaining = state.config.max_model_len - input_len;
            let cap = remaining.clamp(1, 128);
            (
                (output_seed % u64::from(cap)) as u32 + 1,
                FinishReason::Stop,
            )
        }
    };
    let stream = common.stream.unwrap_or(false);
    let force_usage = state.config.enable_force_include_usage;
    let include_usage = force_usage
        || common
            .stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false);
    let continuous_usage = force_usage
        || common
            .stream_options
            .as_ref()
            .and_then(|o| o.continuous_usage_stats)
            .unwrap_or(false);
    // A P/D consumer pulls the prompt's KV before the engine sees the request, so the pull
    // is inside TTFT as in vLLM.
    let kv = match &state.pd {
        Some(pd) => pd.prepare(&transfer, input_len).await.map_err(|message| {
            ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                kind: "ServiceUnavailableError",
                message,
                param: None,
            }
            .into_response()
        })?,
        None => crate::pd::Prepared::default(),
    };
    let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let submission = Submission {
        extras: RequestExtras {
            cache_salt: common.cache_salt.clone().filter(|salt| !salt.is_empty()),
            lora: lora.as_ref().map(|lora| kv_index::hash::LoraRef {
                name: lora.name.clone(),
                path: lora.path.clone(),
            }),
            ..RequestExtras::default()
        },
        lora_id: lora.as_ref().map(|lora| lora.id),
        session_id,
        report_cached_blocks,
        prompt_tokens,
        output_len,
        finish_reason,
        max_tokens_param: max_tokens,
        output_seed,
        arrival,
        stream_tokens: stream,
        external_tokens: kv.external_tokens,
        hold_blocks: kv.hold_blocks,
        events: events_tx,
    };
    if !state.engine.submit(submission) {
        return Err(ApiError::internal("The engine is not running.").into_response());
    }
    let created = arrival_wall
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let in_flight = InFlight::new(state.clone());
    let request_id_header = state
        .config
        .enable_request_id_headers
        .then(|| headers.get("x-request-id").cloned())
        .flatten();
    let span = SpanInfo {
        parent_cx,
        arrival_wall,
        request_id: match endpoint {
            Endpoint::Completions => format!("{request_id}-0"),
            Endpoint::Chat => request_id.clone(),
        },
        max_tokens,
        temperature: common.temperature,
        top_p: common.top_p,
    };
    let mut response = if stream {
        let writer = ChunkWriter::new(endpoint, &request_id, created, &model);
        let stream_state = StreamState {
            state: state.clone(),
            writer,
            events,
            include_usage,
            continuous_usage,
            prompt_tokens: input_len,
            emitted: 0,
            role_sent: false,
            finished: false,
            span: Some(span),
            transfer,
            _in_flight: in_flight,
        };
        let body = futures::stream::unfold(stream_state, next_chunk);
        Response::builder()
            .header(header::CONTENT_TYPE, "text/event-stream; charset=utf-8")
            .body(Body::from_stream(body))
            .map_err(|err| ApiError::internal(err.to_string()).into_response())?
    } else {
        let finished = loop {
            match events.recv().await {
                Some(EngineEvent::Finished(finished)) => break finished,
                Some(EngineEvent::Token { .. }) => continue,
                None => return Err(ApiError::internal("The engine stopped.").into_response()),
            }
        };
        drop(in_flight);
        let kv_transfer_params = state
            .pd
            .as_ref()
            .and_then(|pd| pd.finish(&transfer, &span.request_id, &finished));
        record_span(&state, span, &finished);
        let text = state
            .tokenizer
            .decode(&finished.output_tokens)
            .unwrap_or_default();
        let usage = usage(&state, &finished);
        let reason = finished.reason.as_str();
        let body = match endpoint {
            Endpoint::Completions => serde_json::to_vec(&CompletionResponse {
                id: &request_id,
                object: "text_completion",
                created,
                model: &model,
                choices: vec![CompletionChoice {
                    index: 0,
                    text: &text,
                    logprobs: None,
                    finish_reason: Some(reason),
                    stop_reason: None,
                    token_ids: None,
                    prompt_logprobs: None,
                    prompt_token_ids: None,
                    routed_experts: None,
                    weight_versions: None,
                }],
                service_tier: None,
                system_fingerprint: None,
                usage,
                kv_transfer_params: kv_transfer_params.as_ref(),
                ec_transfer_params: None,
                metrics: None,
            }),
            Endpoint::Chat => serde_json::to_vec(&ChatResponse {
                id: &request_id,
                object: "chat.completion",
                created,
                model: &model,
                choices: vec![ChatChoice {
                    index: 0,
                    message: ChatMessageOut {
                        role: "assistant",
                        content: &text,
                        refusal: None,
                        annotations: None,
                        audio: None,
                        function_call: None,
                        reasoning: None,
                    },
                    logprobs: None,
                    finish_reason: Some(reason),
                    stop_reason: None,
                    token_ids: None,
                    routed_experts: None,
                    weight_versions: None,
                }],
                service_tier: None,
                system_fingerprint: None,
                usage,
                prompt_logprobs: None,
                prompt_token_ids: None,
                prompt_text: None,
                kv_transfer_params: kv_transfer_params.as_ref(),
                ec_transfer_params: None,
                metrics: None,
            }),
        }
        .map_err(|err| ApiError::internal(err.to_string()).into_response())?;
        Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .map_err(|err| ApiError::internal(err.to_string()).into_response())?
    };
    if let Some(value) = request_id_header {
        response.headers_mut().insert("x-request-id", value);
    }
    Ok(response)
}

fn usage(state: &AppState, finished: &Finished) -> Usage {
    let completion = finished.output_tokens.len() as u32;
    Usage {
        prompt_tokens: finished.prompt_tokens,
        total_tokens: finished.prompt_tokens + completion,
        completion_tokens: completion,
        prompt_tokens_details: state.config.enable_prompt_tokens_details.then_some(
            PromptTokensDetails {
                cached_tokens: finished.cached_tokens,
            },
        ),
    }
}

/// Keeps `/load`'s in-flight count right however the response ends.
struct InFlight(Shared);

impl InFlight {
    fn new(state: Shared) -> InFlight {
        state
            .in_flight
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        InFlight(state)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0
            .in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

struct SpanInfo {
    parent_cx: Option<opentelemetry::Context>,
    arrival_wall: SystemTime,
    request_id: String,
    max_tokens: Option<u32>,
    temperature: Option<f64>,
    top_p: Option<f64>,
}

/// vLLM's one `llm_request` SERVER span per finished request.
fn record_span(state: &AppState, info: SpanInfo, finished: &Finished) {
    use metrics_schema::spans::attrs;
    let (Some(tracer), Some(parent_cx)) = (state.tracing.tracer(), info.parent_cx) else {
        return;
    };
    let secs = |d: Duration| d.as_secs_f64();
    let mut attributes = vec![
        KeyValue::new(attrs::GEN_AI_REQUEST_ID.key, info.request_id),
        KeyValue::new(
            attrs::GEN_AI_USAGE_PROMPT_TOKENS.key,
            i64::from(finished.prompt_tokens),
        ),
        KeyValue::new(
            attrs::GEN_AI_USAGE_COMPLETION_TOKENS.key,
            finished.output_tokens.len() as i64,
        ),
        KeyValue::new(
            attrs::GEN_AI_LATENCY_TIME_TO_FIRST_TOKEN.key,
            secs(finished.first_token - finished.arrival),
        ),
        KeyValue::new(
            attrs::GEN_AI_LATENCY_E2E.key,
            secs(finished.last_token - finished.arrival),
        ),
        KeyValue::new(
            attrs::GEN_AI_LATENCY_TIME_IN_QUEUE.key,
            secs(finished.scheduled - finished.arrival),
        ),
        KeyValue::new(
            attrs::GEN_AI_LATENCY_TIME_IN_MODEL_PREFILL.key,
            secs(finished.first_token - finished.scheduled),
        ),
        KeyValue::new(
            attrs::GEN_AI_LATENCY_TIME_IN_MODEL_DECODE.key,
            secs(finished.last_token - finished.first_token),
        ),
        KeyValue::new(
            attrs::GEN_AI_LATENCY_TIME_IN_MODEL_INFERENCE.key,
            secs(finished.last_token - finished.scheduled),
        ),
    ];
    // vLLM sets these only when truthy (a temperature of 0 is left out).
    if let Some(top_p) = info.top_p.filter(|v| *v != 0.0) {
        attributes.push(KeyValue::new(attrs::GEN_AI_REQUEST_TOP_P.key, top_p));
    }
    if let Some(max_tokens) = info.max_tokens {
        attributes.push(KeyValue::new(
            attrs::GEN_AI_REQUEST_MAX_TOKENS.key,
            i64::from(max_tokens),
        ));
    }
    if let Some(temperature) = info.temperature.filter(|v| *v != 0.0) {
        attributes.push(KeyValue::new(
            attrs::GEN_AI_REQUEST_TEMPERATURE.key,
            temperature,
        ));
    }
    let end = info.arrival_wall + (finished.last_token - finished.arrival);
    let mut span = tracer
        .span_builder(metrics_schema::spans::VLLM_LLM_REQUEST.name)
        .with_kind(SpanKind::Server)
        .with_start_time(info.arrival_wall)
        .with_attributes(attributes)
        .start_with_context(tracer, &parent_cx);
    span.end_with_timestamp(end);
}

struct StreamState {
    state: Shared,
    writer: ChunkWriter,
    events: tokio::sync::mpsc::UnboundedReceiver<EngineEvent>,
    include_usage: bool,
    /// `continuous_usage_stats`: every chunk carries the running usage.
    continuous_usage: bool,
    prompt_tokens: u32,
    emitted: u32,
    role_sent: bool,
    finished: bool,
    span: Option<SpanInfo>,
    transfer: crate::pd::Transfer,
    _in_flight: InFlight,
}

async fn next_chunk(mut st: StreamState) -> Option<(Result<Bytes, Infallible>, StreamState)> {
    if st.finished {
        return None;
    }
    if !st.role_sent {
        st.role_sent = true;
        if let Some(role) = st.writer.role() {
            return Some((Ok(role), st));
        }
    }
    // Wait for one event, then take every event already queued: under load several tokens
    // leave in one write instead of one write each, and none waits for a later one.
    let mut out: Vec<u8> = Vec::new();
    let mut event = st.events.recv().await;
    loop {
        match event {
            Some(EngineEvent::Token { token_id }) => {
                let text = st.state.tokenizer.token_text(token_id).unwrap_or_default();
                st.emitted += 1;
                let running = st.continuous_usage.then(|| Usage {
                    prompt_tokens: st.prompt_tokens,
                    total_tokens: st.prompt_tokens + st.emitted,
                    completion_tokens: st.emitted,
                    prompt_tokens_details: None,
                });
                out.extend_from_slice(&st.writer.content(&text, None, None, running.as_ref()));
            }
            Some(EngineEvent::Finished(finished)) => {
                st.finished = true;
                let kv_transfer_params = match (&st.state.pd, &st.span) {
                    (Some(pd), Some(span)) => pd.finish(&st.transfer, &span.request_id, &finished),
                    _ => None,
                };
                if let Some(span) = st.span.take() {
                    record_span(&st.state, span, &finished);
                }
                let text = finished
                    .output_tokens
                    .last()
                    .map(|&id| st.state.tokenizer.token_text(id).unwrap_or_default())
                    .unwrap_or_default();
                let final_usage = usage(&st.state, &finished);
                let running = st.continuous_usage.then_some(&final_usage);
                out.extend_from_slice(&st.writer.content(
                    &text,
                    Some(finished.reason.as_str()),
                    kv_transfer_params.as_ref(),
                    running,
                ));
                if st.include_usage {
                    out.extend_from_slice(&st.writer.usage(&final_usage));
                }
                out.extend_from_slice(&ChunkWriter::done());
                return Some((Ok(Bytes::from(out)), st));
            }
            None => {
                st.finished = true;
                let error = ApiError::internal("The engine stopped.");
                out.extend_from_slice(
                    format!("data: {}\n\ndata: [DONE]\n\n", error.body()).as_bytes(),
                );
                return Some((Ok(Bytes::from(out)), st));
            }
        }
        match st.events.try_recv() {
            Ok(next) => event = Some(next),
            Err(tokio::sync::mpsc::error::TryRecvError::Empty) if !out.is_empty() => {
                return Some((Ok(Bytes::from(out)), st));
            }
            Err(tokio::sync::mpsc::error::TryRecvError::Empty) => event = st.events.recv().await,
            Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => event = None,
        }
    }
}
