//! `precise-prefix-cache-scorer`: scores endpoints by the KV blocks their engines report
//! holding, from an in-process kv-index fed by the engines' ZMQ KV events.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use opentelemetry::KeyValue;
use opentelemetry::trace::Span as _;
use parking_lot::Mutex;
use tokenizer::Tokenizer;

use kv_index::hash::{BlockHasher, HashAlgo, RequestExtras, external_u64s};
use kv_index::index::{IndexConfig, KeyMode, KvIndex, TierWeights, TokenChain};
use kv_index::subscriber::{Source, Subscriber, SubscriberConfig, SubscriberHandle};
use metrics_schema::spans::{EPP_SCORER_PREFIX_CACHE, attrs};

use crate::framework::{
    CycleState, Endpoint, Handle, InferenceRequest, Plugin, PluginError, PrefixCacheMatchInfo,
    Scorer, ScorerCategory, TypedName, registry::parameters,
};
use crate::telemetry::Metrics;
use crate::token_cache::{self, TokenCache};

/// llm-d's defaults.
pub const DEFAULT_BLOCK_SIZE: usize = 16;
pub const DEFAULT_ZMQ_ENDPOINT: &str = "tcp://*:5557";
pub const DEFAULT_TOPIC_FILTER: &str = "kv@";
/// Entries kept per pod when `inMemoryConfig.size` is not set.
pub const DEFAULT_INDEX_SIZE: usize = 1 << 20;

const METRICS_RECORDED_KEY: &str = "precise-prefix-cache-scorer/metrics-recorded";

/// Tokenizes the prompt (completion text, or chat messages through the chat template) with
/// the simulator's tokenizer (or the model's `tokenizer.json`), cuts it into engine blocks,
/// and asks the kv-index how many leading blocks each endpoint holds. Score =
/// tier-weighted matched blocks / prompt blocks (llm-d's `PrefixCacheMatchInfo` scoring).
///
/// Parameters are llm-d's (`tokenProcessorConfig`, `indexerConfig`, `kvEventsConfig`); the
/// EPP binds a SUB socket on `zmqEndpoint` and the engines' PUBs connect to it (central mode).
/// Keys are llm-d's own chain over the events' `token_ids` (so `hashSeed` seeds our keys and
/// need not match vLLM); set `hashAlgo` to key by vLLM's own block hashes instead (then
/// `hashSeed` is vLLM's `PYTHONHASHSEED`).
///
/// ```yaml
/// - type: precise-prefix-cache-scorer
///   parameters:
///     tokenProcessorConfig: { blockSize: 16, hashSeed: "42" }   # blockSize = vLLM --block-size
///     indexerConfig:
///       kvBlockIndexConfig: { inMemoryConfig: { size: 1048576 }, enableMetrics: true }
///       tokenizersPoolConfig: { local: { modelTokenizerMap: { my-model: /models/tokenizer.json } } }
///       kvCacheBackendConfigs: [ { name: gpu, weight: 1.0 }, { name: cpu, weight: 0.8 } ]
///     kvEventsConfig: { zmqEndpoint: "tcp://*:5557", topicFilter: "kv@" }
/// ```
pub struct PrecisePrefixCacheScorer {
    typed_name: TypedName,
    block_size: usize,
    keys: Keys,
    index: Arc<KvIndex>,
    tokenizers: Tokenizers,
    metrics: Arc<Metrics>,
    subscriber: Mutex<Option<SubscriberHandle>>,
    bound_endpoint: Option<String>,
}

impl std::fmt::Debug for PrecisePrefixCacheScorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrecisePrefixCacheScorer")
            .field("typed_name", &self.typed_name)
            .field("block_size", &self.block_size)
            .field("bound_endpoint", &self.bound_endpoint)
            .finish()
    }
}

enum Keys {
    TokenChain(TokenChain),
    Engine(BlockHasher),
}

struct Tokenizers {
    default: TokenCache,
    by_model: BTreeMap<String, TokenCache>,
}

impl Tokenizers {
    fn for_model(&self, model: &str) -> &TokenCache {
        self.by_model.get(model).unwrap_or(&self.default)
    }
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Parameters {
    /// Block size and key seed (current position).
    token_processor_config: Option<TokenProcessorConfig>,
    indexer_config: Option<IndexerConfig>,
    kv_events_config: Option<KvEventsParameters>,
    /// Ours: key by vLLM's own block hashes computed with this algorithm (`sha256`,
    /// `sha256_cbor`, `xxhash`, `xxhash_cbor`); absent: llm-d's token-chain keys.
    hash_algo: Option<String>,
    /// Ours: a `tokenizer.json` (or model directory) for every model.
    tokenizer: Option<String>,
    /// Ours: text chunks whose tokens are cached (0 turns the cache off).
    token_cache_chunks: Option<usize>,
}

#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TokenProcessorConfig {
    /// Tokens per KV block; must equal the engines' `--block-size`.
    block_size: Option<usize>,
    /// Seed of the block keys.
    hash_seed: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct IndexerConfig {
    /// The 2025 position of `tokenProcessorConfig`.
    token_processor_config: Option<TokenProcessorConfig>,
    kv_block_index_config: Option<KvBlockIndexConfig>,
    tokenizers_pool_config: Option<TokenizersPoolConfig>,
    kv_cache_backend_configs: Option<Vec<BackendConfig>>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct KvBlockIndexConfig {
    in_memory_config: Option<InMemoryConfig>,
    /// Export kv-index ingestion metrics on the EPP's `/metrics`.
    #[serde(default)]
    enable_metrics: bool,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct InMemoryConfig {
    /// Entries kept per pod (least recently stored evicted first).
    size: Option<usize>,
    /// Accepted for compatibility with llm-d configs; this index bounds entries per pod, not
    /// pods per key.
    #[allow(dead_code)]
    pod_cache_size: Option<usize>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TokenizersPoolConfig {
    /// The model whose tokenizer `local.modelTokenizerMap` would name; informational.
    #[allow(dead_code)]
    model_name: Option<String>,
    /// Accepted for compatibility: tokenization runs on the request task, not a pool.
    #[allow(dead_code)]
    workers_count: Option<usize>,
    local: Option<LocalTokenizers>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LocalTokenizers {
    /// Model name → `tokenizer.json` path.
    #[serde(default)]
    model_tokenizer_map: BTreeMap<String, String>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct BackendConfig {
    name: String,
    weight: f64,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct KvEventsParameters {
    /// Where the SUB socket binds; `tcp://127.0.0.1:*` picks a free port.
    zmq_endpoint: Option<String>,
    /// SUB prefix filter.
    topic_filter: Option<String>,
    /// Accepted for compatibility: events are applied in order on one thread.
    #[allow(dead_code)]
    concurrency: Option<usize>,
    /// Per-pod connections are not supported; must be false when set.
    discover_pods: Option<bool>,
    /// Only `vllm`.
    engine_type: Option<String>,
}

fn load_tokenizer(path: &str) -> Result<Tokenizer, PluginError> {
    Tokenizer::from_path(Path::new(path)).map_err(|source| PluginError::Tokenizer {
        path: path.to_owned(),
        source,
    })
}

impl PrecisePrefixCacheScorer {
    pub const TYPE: &'static str = "precise-prefix-cache-scorer";

    pub fn factory(
        name: &str,
        value: serde_norway::Value,
        handle: &Handle,
    ) -> Result<Arc<dyn Plugin>, PluginError> {
        Ok(Self::build(name, value, handle)?)
    }

    /// The factory with the concrete type, for callers that feed its index directly
    /// (benchmarks, tools).
    pub fn build(
        name: &str,
        value: serde_norway::Value,
        handle: &Handle,
    ) -> Result<Arc<PrecisePrefixCacheScorer>, PluginError> {
        let parameters: Parameters = parameters(value)?;
        let indexer = parameters.indexer_config.unwrap_or_default();
        let token_processor = parameters
            .token_processor_config
            .or(indexer.token_processor_config)
            .unwrap_or_default();
        let block_size = token_processor.block_size.unwrap_or(DEFAULT_BLOCK_SIZE);
        if block_size == 0 {
            return Err(PluginError::Invalid {
                parameter: "tokenProcessorConfig.blockSize",
                reason: "must be at least 1".to_owned(),
            });
        }
        let hash_seed = token_processor.hash_seed.filter(|seed| !seed.is_empty());
        let (key_mode, keys, token_chain_seed) = match parameters.hash_algo.as_deref() {
            None => {
                let seed = hash_seed
                    .as_deref()
                    .map_or(0, |seed| xxhash_rust::xxh3::xxh3_64(seed.as_bytes()));
                (
                    KeyMode::TokenChain,
                    Keys::TokenChain(TokenChain { seed }),
                    seed,
                )
            }
            Some(algo) => {
                let algo: HashAlgo = algo.parse().map_err(|_| PluginError::Invalid {
                    parameter: "hashAlgo",
                    reason: format!(
                        "{algo:?} is not one of sha256, sha256_cbor, xxhash, xxhash_cbor"
                    ),
                })?;
                let hasher = BlockHasher::from_python_hash_seed(algo, hash_seed.as_deref());
                (KeyMode::Engine, Keys::Engine(hasher), 0)
            }
        };
        let block_index = indexer.kv_block_index_config.unwrap_or_default();
        let mut weights = TierWeights::default();
        for backend in indexer.kv_cache_backend_configs.unwrap_or_default() {
            match backend.name.to_ascii_lowercase().as_str() {
                "gpu" => weights.gpu = backend.weight,
                "cpu" => weights.cpu = backend.weight,
                "storage" | "disk" => weights.storage = backend.weight,
                other => {
                    return Err(PluginError::Invalid {
                        parameter: "indexerConfig.kvCacheBackendConfigs",
                        reason: format!("unknown tier {other:?} (gpu, cpu or storage)"),
                    });
                }
            }
        }
        let index = Arc::new(KvIndex::new(IndexConfig {
            key_mode,
            capacity_per_pod: block_index
                .in_memory_config
                .and_then(|config| config.size)
                .unwrap_or(DEFAULT_INDEX_SIZE),
            weights,
            ref_count_duplicates: true,
            token_chain_seed,
        }));
        let cache_chunks = parameters
            .token_cache_chunks
            .unwrap_or(token_cache::DEFAULT_CAPACITY);
        let mut tokenizers = Tokenizers {
            default: TokenCache::new(
                match &parameters.tokenizer {
                    Some(path) => load_tokenizer(path)?,
                    None => handle.tokenizer.clone(),
                },
                cache_chunks,
            ),
            by_model: BTreeMap::new(),
        };
        if let Some(local) = indexer.tokenizers_pool_config.and_then(|pool| pool.local) {
            for (model, path) in local.model_tokenizer_map {
                tokenizers
                    .by_model
                    .insert(model, TokenCache::new(load_tokenizer(&path)?, cache_chunks));
            }
        }
        let events = parameters.kv_events_config.unwrap_or_default();
        if events.discover_pods == Some(true) {
            return Err(PluginError::Invalid {
                parameter: "kvEventsConfig.discoverPods",
                reason: "per-pod subscriptions are not supported; engines connect to zmqEndpoint"
                    .to_owned(),
            });
        }
        if let Some(engine) = events.engine_type.as_deref().filter(|e| *e != "vllm") {
            return Err(PluginError::Invalid {
                parameter: "kvEventsConfig.engineType",
                reason: format!("{engine:?} is not supported (vllm)"),
            });
        }
        let kv_metrics = if block_index.enable_metrics {
            Some(
                kv_index::metrics::Metrics::register(&handle.registry).map_err(|error| {
                    PluginError::Invalid {
                        parameter: "indexerConfig.kvBlockIndexConfig.enableMetrics",
                        reason: format!("{error} (only one scorer instance may export metrics)"),
                    }
                })?,
            )
        } else {
            None
        };
        let mut subscriber_config = SubscriberConfig::new(Source::Bind(
            events
                .zmq_endpoint
                .unwrap_or_else(|| DEFAULT_ZMQ_ENDPOINT.to_owned()),
        ));
        subscriber_config.topic_filter = events
            .topic_filter
            .unwrap_or_else(|| DEFAULT_TOPIC_FILTER.to_owned());
        let subscriber = Subscriber::start(subscriber_config, Arc::clone(&index), kv_metrics)
            .map_err(PluginError::Subscriber)?;
        let bound_endpoint = subscriber.bound_endpoint().map(str::to_owned);
        tracing::info!(plugin = name, endpoint = ?bound_endpoint, block_size, "Receiving KV events.");
        Ok(Arc::new(PrecisePrefixCacheScorer {
            typed_name: TypedName::new(Self::TYPE, name),
            block_size,
            keys,
            index,
            tokenizers,
            metrics: Arc::clone(&handle.metrics),
            subscriber: Mutex::new(Some(subscriber)),
            bound_endpoint,
        }))
    }

    /// The index this scorer reads (for tests and the CLI's summaries).
    pub fn index(&self) -> &Arc<KvIndex> {
        &self.index
    }

    fn block_keys(&self, model: &str, tokens: &[u32]) -> Vec<u64> {
        match &self.keys {
            Keys::TokenChain(chain) => chain.keys(model, tokens, self.block_size, &[]),
            Keys::Engine(hasher) => hasher
                .clone()
                .hash_request(tokens, self.block_size, &RequestExtras::default())
                .map(|hashes| external_u64s(&hashes))
                .unwrap_or_default(),
        }
    }
}

impl Drop for PrecisePrefixCacheScorer {
    fn drop(&mut self) {
        if let Some(subscriber) = self.subscriber.lock().take() {
            subscriber.shutdown();
        }
    }
}

impl Plugin for PrecisePrefixCacheScorer {
    fn typed_name(&self) -> &TypedName {
        &self.typed_name
    }
    fn as_scorer(&self) -> Option<&dyn Scorer> {
        Some(self)
    }
    fn endpoint_removed(&self, address: &str) {
        let dropped = self.index.remove_pod(address);
        tracing::info!(
            endpoint = address,
            dropped,
            "Dropped a removed endpoint from the KV index."
        );
    }
    fn kv_events_endpoint(&self) -> Option<String> {
        self.bound_endpoint.clone()
    }
}

impl Scorer for PrecisePrefixCacheScorer {
    fn category(&self) -> ScorerCategory {
        ScorerCategory::Affinity
    }

    fn score(
        &self,
        cycle: &mut CycleState,
        request: &InferenceRequest,
        endpoints: &[Arc<Endpoint>],
    ) -> Vec<f64> {
        let mut span = cycle.start_span(&EPP_SCORER_PREFIX_CACHE);
        let tokenizer = self.tokenizers.for_model(&request.target_model);
        let tokens = request.tokens_with(tokenizer.tokenizer().name(), |prompt| {
            tokenizer.encode_prompt(prompt)
        });
        let (keys, result) = match tokens {
            Ok(tokens) => (self.block_keys(&request.target_model, &tokens), None),
            Err(error) => {
                tracing::warn!(request_id = %request.request_id, %error, "Tokenizing the prompt failed; prefix scores are zero.");
                (Vec::new(), Some("tokenize_error"))
            }
        };
        let total = keys.len() as u64;
        let pod_scores = if keys.is_empty() {
            Vec::new()
        } else {
            self.index.score(&keys)
        };
        let by_pod: HashMap<&str, &kv_index::index::PodScore> =
            pod_scores.iter().map(|pod| (pod.pod, pod)).collect();
        let mut matched = Vec::with_capacity(endpoints.len());
        let mut scores = Vec::with_capacity(endpoints.len());
        for endpoint in endpoints {
            let found = by_pod.get(endpoint.address.as_str());
            matched.push(found.map_or(0, |pod| pod.matched_blocks));
            scores.push(found.map_or(0.0, |pod| {
                if total == 0 {
                    0.0
                } else {
                    (pod.score / total as f64).clamp(0.0, 1.0)
                }
            }));
        }
        let max_matched = matched.iter().copied().max().unwrap_or(0);
        if cycle.read::<bool>(METRICS_RECORDED_KEY).is_none() {
            cycle.write(METRICS_RECORDED_KEY, true);
            let model = [request.model.as_str()];
            self.metrics
                .prefix_cache_matched_blocks
                .observe(&model, max_matched as f64);
            if max_matched > 0 {
                self.metrics.prefix_cache_hits.inc(&model);
            }
        }
        if let Some(span) = span.as_mut() {
            let mut pairs: Vec<(&str, u64)> = endpoints
                .iter()
                .zip(&matched)
                .map(|(endpoint, &n)| (endpoint.address.as_str(), n))
                .collect();
            pairs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            let pairs = pairs
                .iter()
                .map(|(address, n)| format!("{address}={n}"))
                .collect::<Vec<_>>()
                .join(",");
            let scored = scores.iter().filter(|&&s| s > 0.0).count();
            let max = scores.iter().copied().fold(0.0, f64::max);
            let avg = if scores.is_empty() {
                0.0
            } else {
                scores.iter().sum::<f64>() / scores.len() as f64
            };
            let result = result.unwrap_or(if max_matched > 0 {
                "success"
            } else {
                "no_cache_hits"
            });
            span.set_attributes([
                KeyValue::new(
                    attrs::SCORER_CANDIDATE_ENDPOINTS.key,
                    endpoints.len() as i64,
                ),
                KeyValue::new(attrs::SCORER_ENDPOINTS_SCORED.key, scored as i64),
                KeyValue::new(attrs::SCORER_SCORE_MAX.key, max),
                KeyValue::new(attrs::SCORER_SCORE_AVG.key, avg),
                KeyValue::new(attrs::SCORER_RESULT.key, result),
                KeyValue::new(attrs::SCORER_MATCHED_BLOCKS.key, pairs),
                KeyValue::new(attrs::SCORER_TOTAL_BLOCKS.key, total as i64),
                KeyValue::new(attrs::GEN_AI_REQUEST_MODEL.key, request.model.clone()),
                KeyValue::new(attrs::GEN_AI_REQUEST_ID.key, request.request_id.clone()),
            ]);
        }
        if let Some(span) = span {
            cycle.defer_span(span);
        }
        super::write_match_info(
            cycle,
            &self.typed_name.name,
            PrefixCacheMatchInfo {
                matched_blocks: endpoints
                    .iter()
                    .zip(&matched)
                    .map(|(endpoint, &n)| (endpoint.address.clone(), n))
                    .collect(),
                total_blocks: total,
                in_tokens: true,
                block_size: self.block_size as u64,
            },
        );
        scores
    }
}
