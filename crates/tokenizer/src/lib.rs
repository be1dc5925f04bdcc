//! The tokenizer every component of the stack shares, so that the simulator, the EPP and the
//! load generator count the same tokens and therefore compute the same KV block hashes.
//!
//! By default it is an embedded byte-level BPE (OpenAI's `cl100k_base` ranks, compiled into the
//! binary by `tiktoken-rs`), which works offline. A model directory with a Hugging Face
//! `tokenizer.json` (and optionally `tokenizer_config.json` holding the chat template) can be
//! loaded instead. Chat requests are rendered through the model's Jinja chat template.

mod cl100k;
#[cfg(test)]
mod tests;

use std::{path::Path, sync::Arc};

use serde::Serialize;

/// The chat template used with the embedded tokenizer: ChatML, as many open models use.
pub const DEFAULT_CHAT_TEMPLATE: &str = "{% for message in messages %}<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

/// Errors from loading a tokenizer or rendering a chat.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("tokenizer file {path}: cannot be loaded")]
    Load {
        path: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("tokenizer config {path}: {reason}")]
    Config { path: String, reason: String },
    #[error("chat template: {0}")]
    Template(#[from] minijinja::Error),
    #[error("token id {0} is not in the vocabulary")]
    UnknownToken(u32),
    #[error("decoding failed: {0}")]
    Decode(String),
}

/// One chat message, its content already flattened to text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

/// A cheap-to-clone tokenizer with its chat template.
#[derive(Clone)]
pub struct Tokenizer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("name", &self.inner.name)
            .finish()
    }
}

struct Inner {
    name: String,
    vocab: Vocab,
    chat: minijinja::Environment<'static>,
    bos_token: String,
    eos_token: String,
}

enum Vocab {
    Embedded {
        fast: Box<cl100k::FastCl100k>,
        reference: &'static tiktoken_rs::CoreBPE,
    },
    HuggingFace(Box<tokenizers::Tokenizer>),
}

const CHAT_TEMPLATE_NAME: &str = "chat";

impl Tokenizer {
    /// The embedded offline BPE (`cl100k_base`) with the ChatML template. The vocabulary is
    /// parsed once per process.
    pub fn embedded() -> Tokenizer {
        static EMBEDDED: std::sync::OnceLock<Tokenizer> = std::sync::OnceLock::new();
        EMBEDDED
            .get_or_init(|| {
                let chat = chat_environment(DEFAULT_CHAT_TEMPLATE.to_owned())
                    .expect("the built-in chat template compiles");
                let reference = tiktoken_rs::cl100k_base_singleton();
                Tokenizer {
                    inner: Arc::new(Inner {
                        name: "cl100k_base".to_owned(),
                        vocab: Vocab::Embedded {
                            fast: Box::new(cl100k::FastCl100k::new(reference)),
                            reference,
                        },
                        chat,
                        bos_token: String::new(),
                        eos_token: "<|endoftext|>".to_owned(),
                    }),
                }
            })
            .clone()
    }

    /// Loads a Hugging Face tokenizer: `path` is a `tokenizer.json` file, or a model directory
    /// holding `tokenizer.json` and optionally `tokenizer_config.json` (for `chat_template`,
    /// `bos_token`, `eos_token`).
    pub fn from_path(path: &Path) -> Result<Tokenizer, Error> {
        let (json_path, config_path) = if path.is_dir() {
            (
                path.join("tokenizer.json"),
                Some(path.join("tokenizer_config.json")),
            )
        } else {
            (
                path.to_path_buf(),
                path.parent().map(|dir| dir.join("tokenizer_config.json")),
            )
        };
        let vocab = tokenizers::Tokenizer::from_file(&json_path).map_err(|source| Error::Load {
            path: json_path.display().to_string(),
            source,
        })?;
        let mut template = DEFAULT_CHAT_TEMPLATE.to_owned();
        let mut bos_token = String::new();
        let mut eos_token = String::new();
        if let Some(config_path) = config_path.filter(|p| p.is_file()) {
            let config = read_tokenizer_config(&config_path)?;
            if let Some(found) = config.chat_template {
                template = found;
            }
            bos_token = config.bos_token.unwrap_or_default();
            eos_token = config.eos_token.unwrap_or_default();
        }
        Ok(Tokenizer {
            inner: Arc::new(Inner {
                name: json_path.display().to_string(),
                vocab: Vocab::HuggingFace(Box::new(vocab)),
                chat: chat_environment(template)?,
                bos_token,
                eos_token,
            }),
        })
    }

    /// A short name for logs: `cl100k_base` or the tokenizer file.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Token ids of `text`, with no special tokens added.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        match &self.inner.vocab {
            Vocab::Embedded { fast, .. } => fast.encode(text),
            Vocab::HuggingFace(vocab) => match vocab.encode_fast(text, false) {
                Ok(encoding) => encoding.get_ids().to_vec(),
                // The HF encoder fails only on pathological input (e.g. truncation settings);
                // byte-level fallback keeps the count meaningful instead of panicking.
                Err(_) => text.bytes().map(u32::from).collect(),
            },
        }
    }

    /// The number of tokens in `text`.
    pub fn count(&self, text: &str) -> usize {
        self.encode(text).len()
    }

    /// Text for `ids`; invalid UTF-8 at token boundaries is replaced, as vLLM's detokenizer
    /// does for partial characters.
    pub fn decode(&self, ids: &[u32]) -> Result<String, Error> {
        match &self.inner.vocab {
            Vocab::Embedded { reference, .. } => {
                let bytes = reference
                    .decode_bytes(ids)
                    .map_err(|err| Error::UnknownToken(err.token))?;
                Ok(String::from_utf8_lossy(&bytes).into_owned())
            }
            Vocab::HuggingFace(vocab) => vocab
                .decode(ids, false)
                .map_err(|err| Error::Decode(err.to_string())),
        }
    }

    /// The text of one token, for streaming output.
    pub fn token_text(&self, id: u32) -> Result<String, Error> {
        self.decode(&[id])
    }

    /// The vocabulary size (ids are `0..vocab_size`, possibly with holes).
    pub fn vocab_size(&self) -> u32 {
        match &self.inner.vocab {
            // cl100k_base: 100256 ordinary ranks; the specials sit above them.
            Vocab::Embedded { .. } => 100_256,
            Vocab::HuggingFace(vocab) => vocab.get_vocab_size(false) as u32,
        }
    }

    /// Renders `messages` through the chat template, as vLLM does before tokenizing a chat
    /// request.
    pub fn render_chat(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, Error> {
        let template = self.inner.chat.get_template(CHAT_TEMPLATE_NAME)?;
        Ok(template.render(minijinja::context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => &self.inner.bos_token,
            eos_token => &self.inner.eos_token,
        })?)
    }

    /// Token ids of a chat request: the rendered template, tokenized.
    pub fn encode_chat(&self, messages: &[ChatMessage]) -> Result<Vec<u32>, Error> {
        Ok(self.encode(&self.render_chat(messages, true)?))
    }
}

fn chat_environment(template: String) -> Result<minijinja::Environment<'static>, Error> {
    let mut env = minijinja::Environment::new();
    // HF templates call raise_exception() to reject unsupported conversations.
    env.add_function(
        "raise_exception",
        |message: String| -> Result<(), minijinja::Error> {
            Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                message,
            ))
        },
    );
    env.add_template_owned(CHAT_TEMPLATE_NAME, template)?;
    Ok(env)
}

struct TokenizerConfig {
    chat_template: Option<String>,
    bos_token: Option<String>,
    eos_token: Option<String>,
}

fn read_tokenizer_config(path: &Path) -> Result<TokenizerConfig, Error> {
    let config_error = |reason: String| Error::Config {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|err| config_error(err.to_string()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|err| config_error(err.to_string()))?;
    // `chat_template` is a string, or a list of {name, template} with a "default" entry.
    let chat_template = match value.get("chat_template") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(template)) => Some(template.clone()),
        Some(serde_json::Value::Array(entries)) => entries
            .iter()
            .find(|entry| entry.get("name").and_then(|n| n.as_str()) == Some("default"))
            .or_else(|| entries.first())
            .and_then(|entry| entry.get("template"))
            .and_then(|t| t.as_str())
            .map(str::to_owned),
        Some(_) => {
            return Err(config_error(
                "chat_template is neither a string nor a list".into(),
            ));
        }
    };
    // Special tokens are strings, or AddedToken objects with a `content` field.
    let token = |key: &str| match value.get(key) {
        Some(serde_json::Value::String(token)) => Some(token.clone()),
        Some(serde_json::Value::Object(added)) => added
            .get("content")
            .and_then(|c| c.as_str())
            .map(str::to_owned),
        _ => None,
    };
    Ok(TokenizerConfig {
        chat_template,
        bos_token: token("bos_token"),
        eos_token: token("eos_token"),
    })
}
