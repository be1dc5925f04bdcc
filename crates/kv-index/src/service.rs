//! The `indexer.v1.IndexerService` gRPC API (`proto/indexer.proto`): pod scores for a prompt,
//! wire-compatible with llm-d-kv-cache's `kv_cache_index_service`.
//!
//! A call tokenizes the prompt with its model's tokenizer, turns the tokens into block keys
//! the way the index is keyed ([`PromptKeys`]), and scores them. Every call is counted by
//! status code in `llm_d_kv_index_grpc_requests_total`.

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use tokenizer::Tokenizer;
use tonic::{Request, Response, Status};

use crate::hash::{BlockHasher, RequestExtras, external_u64s};
use crate::index::{KeyMode, KvIndex, TokenChain};
use crate::metrics::Metrics;

/// The generated messages, client and server.
#[allow(clippy::all, missing_docs, unreachable_pub)]
pub mod proto {
    tonic::include_proto!("indexer.v1");
}

pub use proto::indexer_service_client::IndexerServiceClient;
pub use proto::indexer_service_server::IndexerServiceServer;
use proto::{GetPodScoresRequest, GetPodScoresResponse, PodScore};

/// Prompts longer than this many bytes are refused (the gRPC default message limit is 4 MiB).
pub const MAX_PROMPT_BYTES: usize = 4 * 1024 * 1024;

/// How a prompt becomes the index's keys.
#[derive(Clone)]
pub struct PromptKeys {
    pub key_mode: KeyMode,
    pub block_size: usize,
    /// Engine keys: vLLM's hash algorithm and seed.
    pub hasher: BlockHasher,
    /// Token-chain keys: the chain seed.
    pub chain: TokenChain,
    /// Per-model tokenizers; other models use `default_tokenizer`.
    pub tokenizers: HashMap<String, Arc<Tokenizer>>,
    pub default_tokenizer: Arc<Tokenizer>,
}

impl std::fmt::Debug for PromptKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PromptKeys")
            .field("key_mode", &self.key_mode)
            .field("block_size", &self.block_size)
            .field("models", &self.tokenizers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl PromptKeys {
    /// The keys of `tokens`' full blocks for `model`.
    pub fn keys(&self, model: &str, tokens: &[u32]) -> Result<Vec<u64>, crate::hash::Error> {
        match self.key_mode {
            KeyMode::Engine => {
                let mut hasher = self.hasher.clone();
                let hashes =
                    hasher.hash_request(tokens, self.block_size, &RequestExtras::default())?;
                Ok(external_u64s(&hashes))
            }
            KeyMode::TokenChain => Ok(self.chain.keys(model, tokens, self.block_size, &[])),
        }
    }

    fn tokenizer(&self, model: &str) -> &Tokenizer {
        self.tokenizers
            .get(model)
            .unwrap_or(&self.default_tokenizer)
    }
}

/// The service over a shared index.
#[derive(Debug, Clone)]
pub struct IndexerService {
    index: Arc<KvIndex>,
    keys: PromptKeys,
    metrics: Option<Metrics>,
}

impl IndexerService {
    pub fn new(index: Arc<KvIndex>, keys: PromptKeys, metrics: Option<Metrics>) -> Self {
        IndexerService {
            index,
            keys,
            metrics,
        }
    }

    /// The tonic server for this service.
    pub fn into_server(self) -> IndexerServiceServer<IndexerService> {
        IndexerServiceServer::new(self)
    }

    fn score(&self, request: &GetPodScoresRequest) -> Result<GetPodScoresResponse, Status> {
        if request.prompt.is_empty() {
            return Err(Status::invalid_argument("prompt is empty"));
        }
        if request.prompt.len() > MAX_PROMPT_BYTES {
            return Err(Status::invalid_argument(format!(
                "prompt is {} bytes, over the limit of {MAX_PROMPT_BYTES}",
                request.prompt.len()
            )));
        }
        if let Some(empty) = request.pod_identifiers.iter().position(String::is_empty) {
            return Err(Status::invalid_argument(format!(
                "pod_identifiers[{empty}] is empty"
            )));
        }
        let tokens = self
            .keys
            .tokenizer(&request.model_name)
            .encode(&request.prompt);
        let keys = self
            .keys
            .keys(&request.model_name, &tokens)
            .map_err(|error| Status::internal(format!("hashing the prompt: {error}")))?;
        let started = Instant::now();
        let scored = self.index.score(&keys);
        if let Some(metrics) = &self.metrics {
            metrics.lookups.inc();
            metrics
                .lookup_duration
                .observe(started.elapsed().as_secs_f64());
        }
        let scores = if request.pod_identifiers.is_empty() {
            scored
                .iter()
                .filter(|score| score.matched_blocks > 0)
                .map(|score| PodScore {
                    pod: score.pod.to_owned(),
                    score: score.score,
                })
                .collect()
        } else {
            // Asked-for pods in the index's order (best first), then the rest at 0.
            let by_pod: HashMap<&str, f64> = scored
                .iter()
                .map(|score| (score.pod, score.score))
                .collect();
            let mut scores: Vec<PodScore> = request
                .pod_identifiers
                .iter()
                .map(|pod| PodScore {
                    pod: pod.clone(),
                    score: by_pod.get(pod.as_str()).copied().unwrap_or(0.0),
                })
                .collect();
            scores.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.pod.cmp(&b.pod)));
            scores.dedup_by(|a, b| a.pod == b.pod);
            scores
        };
        Ok(GetPodScoresResponse { scores })
    }
}

#[tonic::async_trait]
impl proto::indexer_service_server::IndexerService for IndexerService {
    async fn get_pod_scores(
        &self,
        request: Request<GetPodScoresRequest>,
    ) -> Result<Response<GetPodScoresResponse>, Status> {
        let result = self.score(request.get_ref());
        if let Some(metrics) = &self.metrics {
            let code = match &result {
                Ok(_) => tonic::Code::Ok,
                Err(status) => status.code(),
            };
            metrics
                .grpc_requests
                .with_label_values(&[code_name(code)])
                .inc();
        }
        if let Err(status) = &result {
            tracing::debug!(code = ?status.code(), message = status.message(), "GetPodScores refused.");
        }
        result.map(Response::new)
    }
}

/// go-grpc-prometheus's spelling of a status code.
fn code_name(code: tonic::Code) -> &'static str {
    match code {
        tonic::Code::Ok => "OK",
        tonic::Code::Cancelled => "Canceled",
        tonic::Code::Unknown => "Unknown",
        tonic::Code::InvalidArgument => "InvalidArgument",
        tonic::Code::DeadlineExceeded => "DeadlineExceeded",
        tonic::Code::NotFound => "NotFound",
        tonic::Code::AlreadyExists => "AlreadyExists",
        tonic::Code::PermissionDenied => "PermissionDenied",
        tonic::Code::ResourceExhausted => "ResourceExhausted",
        tonic::Code::FailedPrecondition => "FailedPrecondition",
        tonic::Code::Aborted => "Aborted",
        tonic::Code::OutOfRange => "OutOfRange",
        tonic::Code::Unimplemented => "Unimplemented",
        tonic::Code::Internal => "Internal",
        tonic::Code::Unavailable => "Unavailable",
        tonic::Code::DataLoss => "DataLoss",
        tonic::Code::Unauthenticated => "Unauthenticated",
    }
}
