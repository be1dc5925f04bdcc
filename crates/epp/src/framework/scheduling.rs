//! Scheduling roles (filter, scorer, picker, profile handler) and the values they pass.

use std::any::Any;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use opentelemetry::Context;
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, SpanKind, Tracer as _};
use opentelemetry_sdk::trace::{SdkTracer, Span as SdkSpan};
use tokenizer::{ChatMessage, Tokenizer};

/// A model server endpoint (one pod and target port) with its last scraped metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// Pod name, or the address for static endpoints.
    pub name: String,
    pub namespace: String,
    /// `ip:port`, what the gateway is told and what KV-event topics name.
    pub address: String,
    pub labels: BTreeMap<String, String>,
    pub metrics: EndpointMetrics,
}

impl Endpoint {
    /// An endpoint with no labels and empty metrics; for static lists and tests.
    pub fn new(address: &str) -> Endpoint {
        Endpoint {
            name: address.to_owned(),
            namespace: String::new(),
            address: address.to_owned(),
            labels: BTreeMap::new(),
            metrics: EndpointMetrics::default(),
        }
    }

    /// The port part of the address, as text.
    pub fn port(&self) -> &str {
        self.address.rsplit_once(':').map_or("", |(_, port)| port)
    }
}

/// Engine metrics scraped from an endpoint's `/metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EndpointMetrics {
    /// `vllm:num_requests_waiting`.
    pub waiting_queue_size: u64,
    /// `vllm:num_requests_running`.
    pub running_requests: u64,
    /// `vllm:kv_cache_usage_perc`, 0 to 1.
    pub kv_cache_usage: f64,
    /// `vllm:lora_requests_info` `running_lora_adapters`.
    pub active_loras: Vec<String>,
    /// `vllm:lora_requests_info` `waiting_lora_adapters`.
    pub waiting_loras: Vec<String>,
    /// `vllm:lora_requests_info` `max_lora`.
    pub max_loras: u32,
    /// `vllm:cache_config_info` `block_size`.
    pub block_size: u32,
    /// `vllm:cache_config_info` `num_gpu_blocks`.
    pub num_gpu_blocks: u64,
    /// When the last successful scrape finished; `None` before the first.
    pub updated: Option<Instant>,
}

/// The prompt of a request, as the model server will tokenize it.
#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    /// `/v1/completions` text prompt.
    Text(String),
    /// `/v1/completions` token-id prompt.
    Tokens(Vec<u32>),
    /// `/v1/chat/completions` messages, content flattened to text as vLLM does.
    Chat(Vec<ChatMessage>),
    /// A request without a prompt (bodiless or unknown path).
    None,
}

/// Why a request's tokens could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tokenizing the prompt: {0}")]
pub struct TokenizeError(pub String);

/// The prompt text and its token ids (or why it could not be tokenized), computed once.
type TokenizedPrompt = (String, Result<Arc<[u32]>, TokenizeError>);
/// One request as the scheduler sees it.
#[derive(Debug)]
pub struct InferenceRequest {
    pub request_id: String,
    /// The `model` of the body.
    pub model: String,
    /// The model the endpoint serves (equal to `model` unless rewritten).
    pub target_model: String,
    pub prompt: Prompt,
    /// Request headers, keys lower-cased; PreRequest plugins add headers here.
    pub headers: BTreeMap<String, String>,
    /// Body size in bytes.
    pub body_bytes: usize,
    tokens: OnceLock<TokenizedPrompt>,
}

impl InferenceRequest {
    pub fn new(request_id: &str, model: &str, prompt: Prompt) -> InferenceRequest {
        InferenceRequest {
            request_id: request_id.to_owned(),
            model: model.to_owned(),
            target_model: model.to_owned(),
            prompt,
            headers: BTreeMap::new(),
            body_bytes: 0,
            tokens: OnceLock::new(),
        }
    }

    /// The prompt as text: the completion prompt, or the JSON of the chat messages (the
    /// upstream `userInput` the byte-based plugins work on).
    pub fn user_input(&self) -> Cow<'_, str> {
        match &self.prompt {
            Prompt::Text(text) => Cow::Borrowed(text),
            Prompt::Chat(messages) => {
                Cow::Owned(serde_json::to_string(messages).unwrap_or_default())
            }
            Prompt::Tokens(tokens) => Cow::Owned(
                tokens
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            Prompt::None => Cow::Borrowed(""),
        }
    }

    /// The prompt's token ids under `tokenizer`, computed once per request (the chat template
    /// rendered first, as vLLM does).
    pub fn tokens(&self, tokenizer: &Tokenizer) -> Result<Arc<[u32]>, TokenizeError> {
        self.tokens_with(tokenizer.name(), |prompt| tokenize(prompt, tokenizer))
    }

    /// The prompt's tokens under the tokenizer called `name`, computed once by `encode`.
    pub fn tokens_with(
        &self,
        name: &str,
        encode: impl Fn(&Prompt) -> Result<Arc<[u32]>, TokenizeError>,
    ) -> Result<Arc<[u32]>, TokenizeError> {
        let (cached_name, tokens) = self
            .tokens
            .get_or_init(|| (name.to_owned(), encode(&self.prompt)));
        if cached_name == name {
            tokens.clone()
        } else {
            encode(&self.prompt)
        }
    }
}

fn tokenize(prompt: &Prompt, tokenizer: &Tokenizer) -> Result<Arc<[u32]>, TokenizeError> {
    match prompt {
        Prompt::Text(text) => Ok(tokenizer.encode(text).into()),
        Prompt::Tokens(tokens) => Ok(tokens.as_slice().into()),
        Prompt::Chat(messages) => tokenizer
            .encode_chat(messages)
            .map(Into::into)
            .map_err(|error| TokenizeError(error.to_string())),
        Prompt::None => Ok(Arc::from(Vec::new())),
    }
}

/// An endpoint with its weighted total score.
#[derive(Debug, Clone)]
pub struct ScoredEndpoint {
    pub endpoint: Arc<Endpoint>,
    pub score: f64,
}

/// What one profile picked.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileResult {
    pub targets: Vec<Arc<Endpoint>>,
}

/// The outcome of all profiles of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct SchedulingResult {
    /// Every profile that ran, `None` when it found no endpoint.
    pub profile_results: BTreeMap<String, Option<ProfileResult>>,
    /// The profile whose targets the gateway is sent to.
    pub primary_profile: String,
}

impl SchedulingResult {
    /// The primary profile's targets (empty when it found none).
    pub fn primary_targets(&self) -> &[Arc<Endpoint>] {
        self.profile_results
            .get(&self.primary_profile)
            .and_then(Option::as_ref)
            .map_or(&[], |result| result.targets.as_slice())
    }
}

/// Why scheduling produced no endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchedulingError {
    #[error("no candidate endpoints")]
    NoCandidates,
    #[error("no endpoint fits the request in profile {profile}")]
    NoEndpointFits { profile: String },
    #[error("profile handler {handler} failed: {reason}")]
    Handler { handler: String, reason: String },
}

/// Prefix-cache matches of one request per endpoint address, written by the prefix scorers
/// for the P/D profile handler (llm-d's `PrefixCacheMatchInfo`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrefixCacheMatchInfo {
    /// Consecutive matched blocks from the start, per endpoint address.
    pub matched_blocks: HashMap<String, u64>,
    /// Blocks in the request.
    pub total_blocks: u64,
    /// Size of one block in the unit the scorer works in (tokens or characters).
    pub block_size: u64,
    /// Whether `block_size` counts tokens (the precise scorer) or characters (the
    /// approximate one).
    pub in_tokens: bool,
}

impl PrefixCacheMatchInfo {
    /// The tokens cached on `address`: its matched blocks, in tokens (characters over the
    /// 4 characters per token upstream estimates with).
    pub fn cached_tokens(&self, address: &str) -> u64 {
        let units = self.matched_blocks.get(address).copied().unwrap_or(0) * self.block_size;
        if self.in_tokens { units } else { units / 4 }
    }
}

/// Per-request scratch space shared by the plugins of one scheduling cycle, and the trace
/// context their spans are children of.
pub struct CycleState {
    data: HashMap<String, Box<dyn Any + Send + Sync>>,
    tracer: Option<SdkTracer>,
    parent: Context,
    deferred: Vec<SdkSpan>,
}

impl std::fmt::Debug for CycleState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CycleState")
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Default for CycleState {
    fn default() -> Self {
        CycleState::new(None, Context::new())
    }
}

impl CycleState {
    /// A cycle whose plugin spans (if `tracer` is set) are children of `parent`.
    pub fn new(tracer: Option<SdkTracer>, parent: Context) -> CycleState {
        CycleState {
            data: HashMap::new(),
            tracer,
            parent,
            deferred: Vec::new(),
        }
    }

    pub fn write<T: Any + Send + Sync>(&mut self, key: &str, value: T) {
        self.data.insert(key.to_owned(), Box::new(value));
    }

    pub fn read<T: Any + Send + Sync>(&self, key: &str) -> Option<&T> {
        self.data.get(key).and_then(|value| value.downcast_ref())
    }

    /// Starts an internal span named by `span`; `None` when tracing is off.
    pub fn start_span(&self, span: &metrics_schema::SpanDef) -> Option<SdkSpan> {
        let tracer = self.tracer.as_ref()?;
        Some(
            tracer
                .span_builder(span.name)
                .with_kind(SpanKind::Internal)
                .start_with_context(tracer, &self.parent),
        )
    }

    /// Keeps `span` open until the cycle's endpoint is picked; the scheduler then records
    /// the pick on it (`llm_d.epp.picked_endpoint`) and ends it.
    pub fn defer_span(&mut self, span: SdkSpan) {
        self.deferred.push(span);
    }

    /// Ends the deferred spans with the picked endpoint.
    pub fn finish_deferred(&mut self, picked: Option<&str>) {
        for mut span in self.deferred.drain(..) {
            if let Some(picked) = picked {
                span.set_attribute(KeyValue::new(
                    metrics_schema::spans::attrs::EPP_PICKED_ENDPOINT.key,
                    picked.to_owned(),
                ));
            }
            span.end();
        }
    }
}

/// How a scorer's preference should be read (GIE's `ScorerCategory`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScorerCategory {
    /// Prefers endpoints with state the request can reuse (prefix cache, LoRA).
    Affinity,
    /// Spreads load (queue, utilization).
    Distribution,
}

/// Removes endpoints that cannot serve the request.
pub trait Filter {
    fn filter(
        &self,
        cycle: &mut CycleState,
        request: &InferenceRequest,
        endpoints: Vec<Arc<Endpoint>>,
    ) -> Vec<Arc<Endpoint>>;
}

/// Scores endpoints in `[0, 1]`, one score per endpoint in order. Never does network IO.
pub trait Scorer {
    fn category(&self) -> ScorerCategory;

    fn score(
        &self,
        cycle: &mut CycleState,
        request: &InferenceRequest,
        endpoints: &[Arc<Endpoint>],
    ) -> Vec<f64>;
}

/// Chooses the targets among scored endpoints.
pub trait Picker {
    fn pick(
        &self,
        cycle: &mut CycleState,
        request: &InferenceRequest,
        scored: Vec<ScoredEndpoint>,
    ) -> ProfileResult;
}

/// Whether a request that will decode on `decode_address` gets a prefill leg elsewhere: the
/// P/D profile handler asks the decider its `deciderPluginName` names.
pub trait PdDecider {
    fn decide(
        &self,
        cycle: &CycleState,
        request: &InferenceRequest,
        decode_address: &str,
    ) -> PdDecision;
}

/// A decider's answer and what it was based on, for the decision span.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PdDecision {
    pub disaggregate: bool,
    /// Fraction of the prompt already cached on the decode endpoint, 0 to 1.
    pub cached_fraction: f64,
    /// The decider's threshold, in its own unit (0 when it has none).
    pub threshold: u64,
}

/// Chooses which profiles run, and turns their results into one [`SchedulingResult`].
pub trait ProfileHandler {
    /// Profiles that must be declared for this handler to work.
    fn required_profiles(&self) -> Vec<String> {
        Vec::new()
    }

    /// The profiles to run next, given those that ran; empty ends the cycle.
    fn pick(
        &self,
        cycle: &mut CycleState,
        request: &InferenceRequest,
        profiles: &[String],
        results: &BTreeMap<String, Option<ProfileResult>>,
    ) -> Vec<String>;

    fn process_results(
        &self,
        cycle: &mut CycleState,
        request: &InferenceRequest,
        results: BTreeMap<String, Option<ProfileResult>>,
    ) -> Result<SchedulingResult, SchedulingError>;
}
