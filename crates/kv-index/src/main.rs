//! `kv-index`: follow one or more vLLM KV-event publishers, print what is indexed per pod,
//! and score a prompt's token ids against it (text or `--json`).
//!
//! ```text
//! kv-index --connect tcp://10.0.0.5:5557 --replay pod-a=tcp://10.0.0.5:5558 \
//!     --tokens '[1,2,3,...]' --hash-algo sha256_cbor --json --duration-secs 10
//! ```
//!
//! With `--grpc-addr` it is a service instead: the `indexer.v1.IndexerService` scoring API
//! (`proto/indexer.proto`, llm-d-kv-cache's), gRPC health, and `/metrics` on `--metrics-addr`.
//!
//! The environment is read only in [`env`]; flags given on the command line win over it.

mod env;

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;

use kv_index::hash::{BlockHasher, HashAlgo};
use kv_index::index::{IndexConfig, KeyMode, KvIndex, TokenChain};
use kv_index::metrics::Metrics;
use kv_index::service::{IndexerService, PromptKeys};
use kv_index::subscriber::{Source, Subscriber, SubscriberConfig};
use tokenizer::Tokenizer;

/// Follow vLLM KV-event publishers and show the block index.
#[derive(Debug, Parser)]
#[command(name = "kv-index", version)]
struct Args {
    /// PUB endpoints to connect to (per-pod mode); repeatable.
    #[arg(long)]
    connect: Vec<String>,
    /// Endpoint to bind the SUB socket to (central mode: publishers connect here).
    #[arg(long, conflicts_with = "connect")]
    bind: Option<String>,
    /// Replay ROUTER of a pod, as `<pod>=<endpoint>`; repeatable. Replays from 0 at start.
    #[arg(long)]
    replay: Vec<String>,
    /// SUB topic prefix [env: KV_INDEX_TOPIC_FILTER; default: kv@].
    #[arg(long)]
    topic_filter: Option<String>,
    /// `engine` (event hashes are keys) or `token-chain` (keys recomputed from tokens).
    #[arg(long, default_value = "engine")]
    key_mode: String,
    /// Block entries kept per pod [env: KV_INDEX_CAPACITY_PER_POD; default: 1048576].
    #[arg(long)]
    capacity_per_pod: Option<usize>,
    /// A prompt's token ids as a JSON array, scored at every report.
    #[arg(long)]
    tokens: Option<String>,
    /// Tokens per block (vLLM `--block-size`) [env: KV_INDEX_BLOCK_SIZE; default: 16].
    #[arg(long)]
    block_size: Option<usize>,
    /// vLLM `--prefix-caching-hash-algo`, for engine keys [env: KV_INDEX_HASH_ALGO;
    /// default: sha256].
    #[arg(long)]
    hash_algo: Option<String>,
    /// vLLM's PYTHONHASHSEED, if it was set (engine keys) [env: PYTHONHASHSEED].
    #[arg(long)]
    python_hash_seed: Option<String>,
    /// Model (or LoRA name) rooting token-chain keys.
    #[arg(long, default_value = "")]
    model: String,
    /// Seconds between reports.
    #[arg(long, default_value_t = 2.0)]
    interval_secs: f64,
    /// Stop after this many seconds (runs until killed otherwise).
    #[arg(long)]
    duration_secs: Option<f64>,
    /// Print JSON lines instead of text.
    #[arg(long)]
    json: bool,
    /// Serve `indexer.v1.IndexerService` (and gRPC health) here instead of printing reports.
    #[arg(long)]
    grpc_addr: Option<SocketAddr>,
    /// Serve Prometheus `/metrics` here (with --grpc-addr).
    #[arg(long, requires = "grpc_addr")]
    metrics_addr: Option<SocketAddr>,
    /// A model's tokenizer for scored prompts, `<model>=<tokenizer.json or directory>`;
    /// repeatable. Other models use the embedded one.
    #[arg(long = "tokenizer", value_name = "MODEL=PATH")]
    tokenizers: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();
    let env = env::EnvConfig::parse(&env::ProcessEnv)?;
    let hash_algo: HashAlgo = match &args.hash_algo {
        Some(flag) => flag.parse()?,
        None => env.hash_algo,
    };
    let block_size = args.block_size.unwrap_or(env.block_size);
    let capacity_per_pod = args.capacity_per_pod.unwrap_or(env.capacity_per_pod);
    let topic_filter = args.topic_filter.clone().unwrap_or(env.topic_filter);
    let python_hash_seed = args.python_hash_seed.clone().or(env.python_hash_seed);
    let key_mode = match args.key_mode.as_str() {
        "engine" => KeyMode::Engine,
        "token-chain" => KeyMode::TokenChain,
        other => bail!("unknown key mode {other:?}: expected engine or token-chain"),
    };
    let source = match (&args.bind, args.connect.is_empty()) {
        (Some(endpoint), _) => Source::Bind(endpoint.clone()),
        (None, false) => Source::Connect(args.connect.clone()),
        (None, true) => bail!("give --connect (repeatable) or --bind"),
    };
    let mut tokenizers = HashMap::new();
    for spec in &args.tokenizers {
        let Some((model, path)) = spec.split_once('=') else {
            bail!("--tokenizer takes <model>=<path>, got {spec:?}");
        };
        let tokenizer = Tokenizer::from_path(Path::new(path))
            .with_context(|| format!("loading the tokenizer of {model} from {path}"))?;
        tokenizers.insert(model.to_owned(), Arc::new(tokenizer));
    }
    let prompt_keys = PromptKeys {
        key_mode,
        block_size,
        hasher: BlockHasher::from_python_hash_seed(hash_algo, python_hash_seed.as_deref()),
        chain: TokenChain { seed: 0 },
        tokenizers,
        default_tokenizer: Arc::new(Tokenizer::embedded()),
    };
    let tokens: Option<Vec<u32>> = args
        .tokens
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .context("--tokens must be a JSON array of token ids")?;
    let prompt_keys_of_tokens = match &tokens {
        None => Vec::new(),
        Some(tokens) => prompt_keys.keys(&args.model, tokens)?,
    };

    let index = Arc::new(KvIndex::new(IndexConfig {
        key_mode,
        capacity_per_pod,
        ..IndexConfig::default()
    }));
    let mut config = SubscriberConfig::new(source);
    config.topic_filter = topic_filter;
    config.default_model = args.model.clone();
    let mut replay_endpoints = HashMap::new();
    for spec in &args.replay {
        let Some((pod, endpoint)) = spec.split_once('=') else {
            bail!("--replay takes <pod>=<endpoint>, got {spec:?}");
        };
        replay_endpoints.insert(pod.to_owned(), endpoint.to_owned());
        config.replay_on_start.push(pod.to_owned());
    }
    config.replay_endpoints = replay_endpoints;
    let registry = prometheus::Registry::new();
    let metrics = args
        .grpc_addr
        .map(|_| Metrics::register(&registry))
        .transpose()?;
    let subscriber = Subscriber::start(config, Arc::clone(&index), metrics.clone())?;
    if let Some(endpoint) = subscriber.bound_endpoint() {
        tracing::info!(endpoint, "Listening for publishers.");
    }
    if let Some(grpc_addr) = args.grpc_addr {
        let service = IndexerService::new(Arc::clone(&index), prompt_keys, metrics);
        let served = serve(service, grpc_addr, args.metrics_addr, registry);
        subscriber.shutdown();
        return served;
    }
    let prompt_keys = prompt_keys_of_tokens;

    let started = Instant::now();
    let interval = Duration::from_secs_f64(args.interval_secs.max(0.05));
    let mut stdout = std::io::stdout().lock();
    loop {
        std::thread::sleep(interval);
        let pods = index.pods();
        let scores = (!prompt_keys.is_empty()).then(|| index.score(&prompt_keys));
        if args.json {
            let report = serde_json::json!({
                "elapsed_secs": started.elapsed().as_secs_f64(),
                "entries": index.len(),
                "pods": pods,
                "prompt_blocks": prompt_keys.len(),
                "scores": scores,
            });
            writeln!(stdout, "{report}")?;
        } else {
            writeln!(stdout, "{} entries", index.len())?;
            for pod in &pods {
                writeln!(
                    stdout,
                    "  {:<24} gpu {:>8}  cpu {:>8}  storage {:>8}",
                    pod.pod, pod.gpu_blocks, pod.cpu_blocks, pod.storage_blocks
                )?;
            }
            for score in scores.iter().flatten() {
                writeln!(
                    stdout,
                    "  score {:<18} matched {:>5}/{} ({:.0}%) weighted {:.1}",
                    score.pod,
                    score.matched_blocks,
                    prompt_keys.len(),
                    score.ratio * 100.0,
                    score.score
                )?;
            }
        }
        stdout.flush()?;
        if args
            .duration_secs
            .is_some_and(|limit| started.elapsed().as_secs_f64() >= limit)
        {
            break;
        }
    }
    subscriber.shutdown();
    Ok(())
}

/// Serves the scoring API, gRPC health and `/metrics` until interrupted.
fn serve(
    service: IndexerService,
    grpc_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    registry: prometheus::Registry,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        if let Some(addr) = metrics_addr {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding --metrics-addr {addr}"))?;
            let app = axum::Router::new().route(
                "/metrics",
                axum::routing::get(move || {
                    let registry = registry.clone();
                    async move {
                        (
                            [(
                                axum::http::header::CONTENT_TYPE,
                                telemetry::PROMETHEUS_CONTENT_TYPE,
                            )],
                            telemetry::encode_metrics(&registry),
                        )
                    }
                }),
            );
            tracing::info!(%addr, "Serving /metrics.");
            tokio::spawn(async move {
                if let Err(error) = axum::serve(listener, app).await {
                    tracing::error!(%error, "The metrics server stopped.");
                }
            });
        }
        let (health_reporter, health) = tonic_health::server::health_reporter();
        health_reporter
            .set_serving::<kv_index::service::IndexerServiceServer<IndexerService>>()
            .await;
        tracing::info!(addr = %grpc_addr, "Serving indexer.v1.IndexerService.");
        tonic::transport::Server::builder()
            .add_service(health)
            .add_service(service.into_server())
            .serve_with_shutdown(grpc_addr, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .with_context(|| format!("serving gRPC on {grpc_addr}"))
    })
}
