//! Turning a request body into an [`InferenceRequest`]: the OpenAI completions and chat
//! shapes vLLM serves, flattened the way the engine flattens them before tokenizing.

#[cfg(test)]
mod tests;

use serde_json::Value;
use tokenizer::ChatMessage;

use crate::framework::{InferenceRequest, Prompt};

/// Why a body is not a request the EPP can schedule (a 400 to the client).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("body is not valid JSON: {0}")]
    NotJson(String),
    #[error("body is not a JSON object")]
    NotAnObject,
    #[error("model is required")]
    MissingModel,
    #[error("model must be a string")]
    ModelNotString,
    #[error("{field} is required for {path}")]
    MissingPrompt { field: &'static str, path: String },
    #[error("prompt must be a string, a list of token ids, or a list of strings")]
    BadPrompt,
    #[error("messages: {0}")]
    BadMessages(String),
}

/// The API a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Completions,
    ChatCompletions,
    /// Any other path with a JSON body: only `model` is read.
    Other,
}

impl Api {
    pub fn from_path(path: &str) -> Api {
        let path = path.split('?').next().unwrap_or(path);
        match path.trim_end_matches('/') {
            "/v1/completions" => Api::Completions,
            "/v1/chat/completions" => Api::ChatCompletions,
            _ => Api::Other,
        }
    }
}

/// Parses `body` (sent to `path`) into a request.
pub fn parse(path: &str, body: &[u8], request_id: &str) -> Result<InferenceRequest, RequestError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|error| RequestError::NotJson(error.to_string()))?;
    let Value::Object(object) = value else {
        return Err(RequestError::NotAnObject);
    };
    let model = match object.get("model") {
        None | Some(Value::Null) => return Err(RequestError::MissingModel),
        Some(Value::String(model)) if model.is_empty() => return Err(RequestError::MissingModel),
        Some(Value::String(model)) => model.clone(),
        Some(_) => return Err(RequestError::ModelNotString),
    };
    let api = Api::from_path(path);
    let prompt = match api {
        Api::Completions => match object.get("prompt") {
            None | Some(Value::Null) => {
                return Err(RequestError::MissingPrompt {
                    field: "prompt",
                    path: path.to_owned(),
                });
            }
            Some(prompt) => completion_prompt(prompt)?,
        },
        Api::ChatCompletions => match object.get("messages") {
            None | Some(Value::Null) => {
                return Err(RequestError::MissingPrompt {
                    field: "messages",
                    path: path.to_owned(),
                });
            }
            Some(messages) => Prompt::Chat(chat_messages(messages)?),
        },
        Api::Other => Prompt::None,
    };
    let mut request = InferenceRequest::new(request_id, &model, prompt);
    request.body_bytes = body.len();
    Ok(request)
}

fn completion_prompt(prompt: &Value) -> Result<Prompt, RequestError> {
    match prompt {
        Value::String(text) => Ok(Prompt::Text(text.clone())),
        Value::Array(items) if items.is_empty() => Err(RequestError::BadPrompt),
        Value::Array(items) if items.iter().all(Value::is_u64) => Ok(Prompt::Tokens(
            items
                .iter()
                .filter_map(Value::as_u64)
                .map(|id| u32::try_from(id).map_err(|_| RequestError::BadPrompt))
                .collect::<Result<_, _>>()?,
        )),
        // A batch: the first prompt decides where the batch goes.
        Value::Array(items) => match &items[0] {
            Value::String(text) => Ok(Prompt::Text(text.clone())),
            Value::Array(_) => completion_prompt(&items[0]),
            _ => Err(RequestError::BadPrompt),
        },
        _ => Err(RequestError::BadPrompt),
    }
}

/// vLLM's flattening: text content as is, text parts joined by newlines.
fn chat_messages(messages: &Value) -> Result<Vec<ChatMessage>, RequestError> {
    let Value::Array(messages) = messages else {
        return Err(RequestError::BadMessages("must be a list".to_owned()));
    };
    if messages.is_empty() {
        return Err(RequestError::BadMessages("must not be empty".to_owned()));
    }
    messages
        .iter()
        .enumerate()
        .map(|(index, message)| {
            let role = message
                .get("role")
                .and_then(Value::as_str)
                .ok_or_else(|| RequestError::BadMessages(format!("[{index}].role is required")))?;
            let content = match message.get("content") {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(text)) => text.clone(),
                Some(Value::Array(parts)) => {
                    let mut text = String::new();
                    for part in parts {
                        match (
                            part.get("type").and_then(Value::as_str),
                            part.get("text").and_then(Value::as_str),
                        ) {
                            (Some("text"), Some(part_text)) => {
                                if !text.is_empty() {
                                    text.push('\n');
                                }
                                text.push_str(part_text);
                            }
                            (kind, _) => {
                                return Err(RequestError::BadMessages(format!(
                                    "[{index}].content: part type {} is not supported",
                                    kind.unwrap_or("(none)")
                                )));
                            }
                        }
                    }
                    text
                }
                Some(_) => {
                    return Err(RequestError::BadMessages(format!(
                        "[{index}].content must be a string or a list of parts"
                    )));
                }
            };
            Ok(ChatMessage {
                role: role.to_owned(),
                content,
            })
        })
        .collect()
}
