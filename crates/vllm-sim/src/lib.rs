//! A vLLM 0.33 simulator, faithful at the wire: the OpenAI API with vLLM's response and error
//! shapes, vLLM's `/metrics` families, `llm_request` spans, and KV-cache events, driven by a
//! continuous-batching engine model instead of a GPU.
//!
//! [`spawn`] starts a server in-process (tests bind `127.0.0.1:0`); [`run`] is the binary's
//! entry point.

mod api;
pub mod config;
mod engine;
pub mod env;
mod kv_events;
mod metrics;
pub mod pd;

use std::{net::SocketAddr, sync::Arc, time::SystemTime};

use rand::SeedableRng;
use tokenizer::Tokenizer;

pub use config::Config;

/// The vLLM release whose wire formats the simulator reproduces.
pub const VLLM_VERSION: &str = "0.33.0";

/// Text the simulator's outputs are drawn from, token by token.
const OUTPUT_TEXT: &str = "The quick brown fox jumps over the lazy dog while the model streams \
    tokens to a patient client. Prefill reads the whole prompt once and writes the key value \
    cache; decode then produces one token per step for every running sequence in the batch. \
    Routing a request to the pod that already holds its prefix saves that work entirely.";

/// Errors that stop a server from starting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("binding {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("tokenizer")]
    Tokenizer(#[from] tokenizer::Error),
    #[error("metrics registration")]
    Metrics(#[from] prometheus::Error),
    #[error("tracing")]
    Tracing(#[from] telemetry::Error),
    #[error("kv events")]
    KvEvents(#[from] kv_events::Error),
    #[error("p/d roles")]
    Pd(#[from] pd::Error),
    #[error("engine thread")]
    Engine(#[source] std::io::Error),
    #[error("server")]
    Serve(#[source] std::io::Error),
}

/// A running simulator.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), std::io::Error>>,
    engine: EngineStop,
    tracing: Arc<telemetry::Tracing>,
    side_channel: Option<SocketAddr>,
}

struct EngineStop(engine::EngineHandle);

impl std::fmt::Debug for EngineStop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EngineStop")
    }
}

impl Server {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The NIXL side channel a KV producer listens on (`remote_host`/`remote_port`).
    pub fn nixl_side_channel(&self) -> Option<SocketAddr> {
        self.side_channel
    }

    /// The external (u64) hashes of every block the prefix cache holds, sorted; for tests
    /// that compare an index with the engine.
    pub async fn cached_block_hashes(&self) -> Vec<u64> {
        let engine = self.engine.0.clone();
        tokio::task::spawn_blocking(move || engine.snapshot())
            .await
            .ok()
            .flatten()
            .map(|snapshot| snapshot.cached_hashes)
            .unwrap_or_default()
    }

    /// Stops accepting, finishes in-flight responses, stops the engine.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let result = (&mut self.task).await;
        self.engine.0.shutdown();
        self.flush_spans().await;
        match result {
            Ok(result) => result.map_err(Error::Serve),
            Err(join) => Err(Error::Serve(std::io::Error::other(join))),
        }
    }

    /// Exports finished spans from a blocking thread, so the runtime stays free to drive the
    /// exporter's connection.
    async fn flush_spans(&self) {
        let tracing = self.tracing.clone();
        let _ = tokio::task::spawn_blocking(move || tracing.flush()).await;
    }

    /// Serves until the process is told to stop (SIGINT or SIGTERM).
    pub async fn wait(mut self) -> Result<(), Error> {
        let result = (&mut self.task).await;
        self.engine.0.shutdown();
        self.flush_spans().await;
        match result {
            Ok(result) => result.map_err(Error::Serve),
            Err(join) => Err(Error::Serve(std::io::Error::other(join))),
        }
    }
}

/// Starts a simulator on `config.host:config.port` (port 0 picks a free one).
pub async fn spawn(config: Config) -> Result<Server, Error> {
    spawn_with(config, None).await
}

/// Like [`spawn`], but the task also ends when `stop` resolves (the binary passes a signal).
pub async fn spawn_with(
    config: Config,
    stop: Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>,
) -> Result<Server, Error> {
    let config = Arc::new(config);
    let tokenizer = match &config.tokenizer {
        Some(path) => Tokenizer::from_path(path)?,
        None => Tokenizer::embedded(),
    };
    let output_vocabulary = {
        let mut ids = tokenizer.encode(OUTPUT_TEXT);
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    let metrics = metrics::Metrics::new(&config)?;
    let tracing = Arc::new(telemetry::Tracing::new(
        &config.telemetry,
        "vllm.tracing.otel",
    )?);
    let publisher = kv_events::KvEvents::start(&config)?;
    let kv_event_sources = publisher
        .as_ref()
        .map_or(serde_json::json!({}), |p| p.sources());
    let sink = publisher.map(kv_events::KvEvents::into_sink);
    let (engine, _engine_thread) =
        engine::EngineHandle::start(&config, metrics.clone(), output_vocabulary, sink)
            .map_err(Error::Engine)?;
    let pd = pd::Pd::start(&config, engine.clone(), &metrics.registry).await?;
    let side_channel = pd.as_ref().and_then(pd::Pd::side_channel_addr);
    let addr = SocketAddr::new(config.host, config.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| Error::Bind { addr, source })?;
    let state = Arc::new(api::AppState {
        engine: engine.clone(),
        metrics,
        tokenizer,
        tracing: tracing.clone(),
        rng: parking_lot::Mutex::new(rand::rngs::SmallRng::seed_from_u64(config.seed)),
        started: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs(),
        in_flight: std::sync::atomic::AtomicI64::new(0),
        kv_event_sources,
        dev_mode: config.dev_mode,
        pd,
        config,
    });
    let router = api::router(state);
    let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let stop_signal = async move {
            match stop {
                Some(stop) => tokio::select! { _ = stop => {}, _ = shutdown_rx => {} },
                None => {
                    let _ = shutdown_rx.await;
                }
            }
        };
        // Without TCP_NODELAY, a streamed response's small writes wait for the client's
        // delayed ACK (40 ms per request at low concurrency), as uvicorn's do not.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, router)
            .with_graceful_shutdown(stop_signal)
            .await
    });
    tracing::info!(%addr, "vLLM simulator listening.");
    Ok(Server {
        addr,
        shutdown: Some(shutdown_tx),
        task,
        engine: EngineStop(engine),
        tracing,
        side_channel,
    })
}

/// The binary's entry: serve until SIGINT/SIGTERM.
pub async fn run(config: Config) -> Result<(), Error> {
    let stop = Box::pin(async {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            let term = async move {
                match term.as_mut() {
                    Some(term) => {
                        term.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! { _ = ctrl_c => {}, _ = term => {} }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
        }
    });
    spawn_with(config, Some(stop)).await?.wait().await
}
