//! OpenAI request and response shapes as vLLM 0.33 reads and writes them (field order
//! matters: vLLM dumps pydantic models in declaration order).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `prompt` of a completions request.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum Prompt {
    Text(String),
    Texts(Vec<String>),
    Tokens(Vec<u32>),
    TokenLists(Vec<Vec<u32>>),
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct StreamOptions {
    #[serde(default)]
    pub(crate) include_usage: Option<bool>,
    #[serde(default)]
    pub(crate) continuous_usage_stats: Option<bool>,
}

/// Fields shared by both endpoints. Unknown fields are accepted, as vLLM accepts them.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CommonParams {
    pub(crate) model: Option<String>,
    #[serde(default)]
    pub(crate) stream: Option<bool>,
    #[serde(default)]
    pub(crate) stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub(crate) max_tokens: Option<i64>,
    #[serde(default)]
    pub(crate) max_completion_tokens: Option<i64>,
    #[serde(default)]
    pub(crate) temperature: Option<f64>,
    #[serde(default)]
    pub(crate) top_p: Option<f64>,
    #[serde(default)]
    pub(crate) n: Option<i64>,
    #[serde(default)]
    pub(crate) request_id: Option<String>,
    #[serde(default)]
    pub(crate) cache_salt: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CompletionRequest {
    pub(crate) prompt: Option<Prompt>,
    #[serde(flatten)]
    pub(crate) common: CommonParams,
}

/// A chat message's content: a string or a list of parts.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ContentPart {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) text: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Message {
    pub(crate) role: String,
    #[serde(default)]
    pub(crate) content: Option<Content>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ChatRequest {
    pub(crate) messages: Vec<Message>,
    #[serde(flatten)]
    pub(crate) common: CommonParams,
}

/// `usage`, keys in vLLM's order.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Usage {
    pub(crate) prompt_tokens: u32,
    pub(crate) total_tokens: u32,
    pub(crate) completion_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) prompt_tokens_details: Option<PromptTokensDetails>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct PromptTokensDetails {
    pub(crate) cached_tokens: u32,
}

#[derive(Debug, Serialize)]
pub(crate) struct CompletionChoice<'a> {
    pub(crate) index: u32,
    pub(crate) text: &'a str,
    pub(crate) logprobs: Option<()>,
    pub(crate) finish_reason: Option<&'a str>,
    pub(crate) stop_reason: Option<()>,
    pub(crate) token_ids: Option<&'a [u32]>,
    pub(crate) prompt_logprobs: Option<()>,
    pub(crate) prompt_token_ids: Option<&'a [u32]>,
    pub(crate) routed_experts: Option<()>,
    pub(crate) weight_versions: Option<()>,
}

#[derive(Debug, Serialize)]
pub(crate) struct CompletionResponse<'a> {
    pub(crate) id: &'a str,
    pub(crate) object: &'static str,
    pub(crate) created: u64,
    pub(crate) model: &'a str,
    pub(crate) choices: Vec<CompletionChoice<'a>>,
    pub(crate) service_tier: Option<()>,
    pub(crate) system_fingerprint: Option<()>,
    pub(crate) usage: Usage,
    pub(crate) kv_transfer_params: Option<&'a Value>,
    pub(crate) ec_transfer_params: Option<()>,
    pub(crate) metrics: Option<()>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ChatMessageOut<'a> {
    pub(crate) role: &'static str,
    pub(crate) content: &'a str,
    pub(crate) refusal: Option<()>,
    pub(crate) annotations: Option<()>,
    pub(crate) audio: Option<()>,
    pub(crate) function_call: Option<()>,
    pub(crate) reasoning: Option<()>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ChatChoice<'a> {
    pub(crate) index: u32,
    pub(crate) message: ChatMessageOut<'a>,
    pub(crate) logprobs: Option<()>,
    pub(crate) finish_reason: Option<&'a str>,
    pub(crate) stop_reason: Option<()>,
    pub(crate) token_ids: Option<&'a [u32]>,
    pub(crate) routed_experts: Option<()>,
    pub(crate) weight_versions: Option<()>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ChatResponse<'a> {
    pub(crate) id: &'a str,
    pub(crate) object: &'static str,
    pub(crate) created: u64,
    pub(crate) model: &'a str,
    pub(crate) choices: Vec<ChatChoice<'a>>,
    pub(crate) service_tier: Option<()>,
    pub(crate) system_fingerprint: Option<()>,
    pub(crate) usage: Usage,
    pub(crate) prompt_logprobs: Option<()>,
    pub(crate) prompt_token_ids: Option<&'a [u32]>,
    pub(crate) prompt_text: Option<()>,
    pub(crate) kv_transfer_params: Option<&'a Value>,
    pub(crate) ec_transfer_params: Option<()>,
    pub(crate) metrics: Option<()>,
}
