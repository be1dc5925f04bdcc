//! The Endpoint Picker (EPP): an Envoy `ext_proc` gRPC server that scores vLLM pods and names
//! the one each request goes to, configured with llm-d's `EndpointPickerConfig`.
//!
//! [`spawn`] starts a server in-process (tests and `cargo xtask stack` bind port 0); [`run`]
//! is the binary's entry point. Reading order: [`env`] (flags → [`Config`]), [`config`] (the
//! plugin YAML), [`framework`] (plugin traits), [`plugins`] (in-tree types), [`scheduler`],
//! [`datastore`] (endpoints and scraped metrics), [`request`] (OpenAI bodies), `server`
//! (ext_proc), [`telemetry`] (metric handles).

pub mod config;
pub mod datastore;
pub mod env;
pub mod framework;
mod metrics_auth;
pub mod plugins;
pub mod request;
pub mod scheduler;
mod server;
pub mod telemetry;
pub mod token_cache;

use std::net::SocketAddr;
use std::sync::Arc;

use envoy_types::pb::envoy::service::ext_proc::v3::external_processor_server::ExternalProcessorServer;
use rand::SeedableRng;
use tokenizer::Tokenizer;
use tokio_stream::wrappers::TcpListenerStream;

pub use env::Config;
pub use server::{
    BODY_CHUNK_LIMIT, DESTINATION_HEADER, DROPPED_REASON_HEADER, ENVOY_LB_NAMESPACE,
    SUBSET_HINT_KEY, SUBSET_HINT_NAMESPACE,
};

use crate::datastore::Datastore;
use crate::env::Discovery;
use crate::framework::Handle;

/// gRPC health service names upstream registers besides the ext_proc service.
pub const HEALTH_LIVENESS: &str = "liveness";
pub const HEALTH_READINESS: &str = "readiness";

/// Errors that stop the EPP from starting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("metrics registration")]
    Metrics(#[from] telemetry::Error),
    #[error("loading tokenizer {path}")]
    Tokenizer {
        path: String,
        #[source]
        source: tokenizer::Error,
    },
    #[error("plugin configuration")]
    Config(#[from] config::ConfigError),
    #[error("tracing")]
    Tracing(#[from] ::telemetry::Error),
    #[error("binding {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("InferencePool {pool}")]
    Pool {
        pool: String,
        #[source]
        source: inference_pool::SpecError,
    },
    #[error(
        "Kubernetes client for InferencePool discovery or metrics auth (in-cluster or KUBECONFIG)"
    )]
    Kube(#[source] kube::Error),
    #[error("pool watch metrics")]
    PoolMetrics(#[source] prometheus::Error),
    #[error("TLS of the ext_proc port")]
    Tls(#[from] server_tls::Error),
}

/// A running EPP.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    health_addr: SocketAddr,
    metrics_addr: SocketAddr,
    kv_events_endpoints: Vec<String>,
    datastore: Arc<Datastore>,
    shutdown: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    tracing: Arc<::telemetry::Tracing>,
}

impl Server {
    /// The ext_proc gRPC address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The gRPC health address.
    pub fn health_addr(&self) -> SocketAddr {
        self.health_addr
    }

    /// The Prometheus `/metrics` address.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
    }

    /// The bound KV-events endpoints of the precise prefix scorers (real ports), for the
    /// engines' `--kv-events-config` `endpoint`.
    pub fn kv_events_endpoints(&self) -> &[String] {
        &self.kv_events_endpoints
    }

    /// The endpoint set, for tests and the stack's report.
    pub fn datastore(&self) -> &Arc<Datastore> {
        &self.datastore
    }

    /// Stops serving, then exports finished spans.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
        let tracing = Arc::clone(&self.tracing);
        let _ = tokio::task::spawn_blocking(move || tracing.flush()).await;
    }

    /// Exports finished spans now (from a blocking thread).
    pub async fn flush_spans(&self) {
        let tracing = Arc::clone(&self.tracing);
        let _ = tokio::task::spawn_blocking(move || tracing.flush()).await;
    }
}

async fn bind(host: std::net::IpAddr, port: u16) -> Result<tokio::net::TcpListener, Error> {
    let addr = SocketAddr::new(host, port);
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}

fn local_addr(listener: &tokio::net::TcpListener) -> Result<SocketAddr, Error> {
    listener.local_addr().map_err(|source| Error::Bind {
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        source,
    })
}

/// Accepted connections with Nagle off: ext_proc exchanges many small frames per request,
/// and Nagle plus delayed ACKs would add ~40 ms to each (tonic sets `TCP_NODELAY` only on
/// listeners it binds itself).
fn nodelay(
    listener: tokio::net::TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use futures::StreamExt as _;
    TcpListenerStream::new(listener).map(|accepted| {
        if let Ok(stream) = &accepted
            && let Err(error) = stream.set_nodelay(true)
        {
            tracing::warn!(%error, "Setting TCP_NODELAY failed.");
        }
        accepted
    })
}

/// How often a mounted certificate is checked for a renewal (`--enable-cert-reload`).
const CERT_RELOAD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// TLS connections of `listener`, each handshake on its own task so a slow client delays no
/// other; failed handshakes are counted and dropped.
fn tls_incoming(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    metrics: Arc<telemetry::Metrics>,
) -> impl futures::Stream<Item = std::io::Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>>
{
    let (sender, receiver) = tokio::sync::mpsc::channel(256);
    tokio::spawn(async move {
        loop {
            // The server dropping the stream (shutdown) ends the accept loop and frees the port.
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = sender.closed() => return,
            };
            let (tcp, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "Accepting an ext_proc connection failed.");
                    continue;
                }
            };
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::warn!(%error, "Setting TCP_NODELAY failed.");
            }
            let (acceptor, handshaken, metrics) =
                (acceptor.clone(), sender.clone(), Arc::clone(&metrics));
            tokio::spawn(async move {
                match server_tls::handshake(&acceptor, tcp).await {
                    Ok(stream) => {
                        let _ = handshaken.send(Ok(stream)).await;
                    }
                    Err(error) => {
                        metrics.tls_handshake_failures.inc(&[]);
                        tracing::debug!(%peer, %error, "ext_proc connection refused.");
                    }
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(receiver)
}

/// Feeds the pool's endpoints into the datastore as they change. Ranks beyond the first
/// port are named `<pod>-rank-<n>`, so each data-parallel rank is its own endpoint.
async fn follow_pool(watch: inference_pool::PoolWatch, datastore: Arc<Datastore>) {
    watch
        .follow(|state| {
            let specs = state
                .endpoints
                .iter()
                .map(|endpoint| datastore::EndpointSpec {
                    name: if endpoint.rank == 0 {
                        endpoint.pod.clone()
                    } else {
                        format!("{}-rank-{}", endpoint.pod, endpoint.rank)
                    },
                    namespace: endpoint.namespace.clone(),
                    address: endpoint.address.clone(),
                    labels: endpoint.labels.clone(),
                })
                .collect();
            datastore.set_endpoints(specs);
            datastore.set_discovered(state.synced);
        })
        .await;
}

/// Starts the EPP: plugins, discovery, scraping, and the three listeners.
pub async fn spawn(config: Config) -> Result<Server, Error> {
    let registry = prometheus::Registry::new();
    let metrics = Arc::new(telemetry::Metrics::register(&registry)?);
    let tokenizer = match &config.tokenizer {
        Some(path) => Tokenizer::from_path(path).map_err(|source| Error::Tokenizer {
            path: path.display().to_string(),
            source,
        })?,
        None => Tokenizer::embedded(),
    };
    let handle = Handle {
        tokenizer,
        metrics: Arc::clone(&metrics),
        registry: registry.clone(),
    };
    let loaded = config::load(&config.plugins, &plugins::in_tree(), &handle)?;
    let kv_events_endpoints = loaded
        .plugins
        .iter()
        .filter_map(|p| p.kv_events_endpoint())
        .collect();
    let scraping = config.refresh_metrics_interval;
    let datastore = Arc::new(Datastore::new(
        &config.pool_name,
        scraping.map(|_| config.metrics_staleness_threshold),
    ));
    for plugin in &loaded.plugins {
        let plugin = Arc::clone(plugin);
        datastore.on_removed(move |address| plugin.endpoint_removed(address));
    }
    {
        let pool = config.pool_name.clone();
        let metrics = Arc::clone(&metrics);
        datastore
            .on_removed(move |address| metrics.per_endpoint_queue_size.remove(&[&pool, address]));
    }
    let mut tasks = Vec::new();
    match &config.discovery {
        Discovery::Static(specs) => datastore.set_endpoints(specs.clone()),
        Discovery::InferencePool {
            name,
            namespace,
            group,
        } => {
            let pool = inference_pool::PoolRef::new(namespace, name, group).map_err(|source| {
                Error::Pool {
                    pool: format!("{namespace}/{name}"),
                    source,
                }
            })?;
            let client = inference_pool::KubeClient::or_default(config.kube_client.as_ref())
                .await
                .map_err(Error::Kube)?;
            let watch_metrics =
                inference_pool::WatchMetrics::register(&registry).map_err(Error::PoolMetrics)?;
            datastore.set_discovered(false);
            let watch = inference_pool::watch(client, pool, Some(watch_metrics));
            tasks.push(tokio::spawn(follow_pool(watch, Arc::clone(&datastore))));
        }
    }
    // Without scraping, readiness waits for discovery alone.
    if scraping.is_none() {
        datastore.mark_synced();
    }
    if let Some(interval) = scraping {
        let scrape_config = datastore::scrape::ScrapeConfig {
            interval,
            timeout: config.metrics_staleness_threshold.max(interval),
            names: config.metric_names.clone(),
        };
        tasks.push(tokio::spawn(datastore::scrape::run(
            scrape_config,
            Arc::clone(&datastore),
            Arc::clone(&metrics),
        )));
    }
    let tracing = Arc::new(::telemetry::Tracing::new(&config.telemetry, "llm-d-epp")?);
    let grpc = bind(config.host, config.grpc_port).await?;
    let health = bind(config.host, config.grpc_health_port).await?;
    let metrics_listener = bind(config.host, config.metrics_port).await?;
    let (addr, health_addr, metrics_addr) = (
        local_addr(&grpc)?,
        local_addr(&health)?,
        local_addr(&metrics_listener)?,
    );
    let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let epp = Arc::new(server::Epp {
        datastore: Arc::clone(&datastore),
        loaded,
        metrics: Arc::clone(&metrics),
        tracing: Arc::clone(&tracing),
        max_request_body_bytes: config.max_request_body_bytes,
        rng: parking_lot::Mutex::new(rand::rngs::SmallRng::from_os_rng()),
    });
    let service = ExternalProcessorServer::new(server::ExtProc(epp))
        .max_decoding_message_size(config.max_request_body_bytes.saturating_add(1 << 20))
        .max_encoding_message_size(config.max_request_body_bytes.saturating_add(1 << 20));
    let (reporter, health_service) = tonic_health::server::health_reporter();
    let serving_tls = server_tls::ServerTls::new(&config.tls, &[b"h2"])?;
    if config.cert_reload
        && let Some(task) = serving_tls
            .as_ref()
            .and_then(|tls| tls.watch(CERT_RELOAD_INTERVAL))
    {
        tasks.push(task);
    }
    // Health on the ext_proc port too: upstream's Envoy config health-checks it there.
    let ext_proc_router = tonic::transport::Server::builder()
        .add_service(health_service.clone())
        .add_service(service);
    let stop = stopped(shutdown_rx.clone());
    tasks.push(match serving_tls {
        None => tokio::spawn(async move {
            if let Err(error) = ext_proc_router
                .serve_with_incoming_shutdown(nodelay(grpc), stop)
                .await
            {
                tracing::error!(%error, "The ext_proc server failed.");
            }
        }),
        Some(tls) => {
            let incoming = tls_incoming(grpc, tls.acceptor(), Arc::clone(&metrics));
            tokio::spawn(async move {
                if let Err(error) = ext_proc_router
                    .serve_with_incoming_shutdown(incoming, stop)
                    .await
                {
                    tracing::error!(%error, "The ext_proc server failed.");
                }
            })
        }
    });
    reporter
        .set_serving::<ExternalProcessorServer<server::ExtProc>>()
        .await;
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    reporter
        .set_service_status(HEALTH_LIVENESS, tonic_health::ServingStatus::Serving)
        .await;
    reporter
        .set_service_status(HEALTH_READINESS, tonic_health::ServingStatus::NotServing)
        .await;
    {
        let datastore = Arc::clone(&datastore);
        tasks.push(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(std::time::Duration::from_millis(20));
            let mut ready = false;
            loop {
                ticker.tick().await;
                let now = datastore.is_synced();
                if now != ready {
                    ready = now;
                    let status = if ready {
                        tonic_health::ServingStatus::Serving
                    } else {
                        tonic_health::ServingStatus::NotServing
                    };
                    reporter.set_service_status(HEALTH_READINESS, status).await;
                }
            }
        }));
    }
    let stop = stopped(shutdown_rx.clone());
    tasks.push(tokio::spawn(async move {
        if let Err(error) = tonic::transport::Server::builder()
            .add_service(health_service)
            .serve_with_incoming_shutdown(TcpListenerStream::new(health), stop)
            .await
        {
            tracing::error!(%error, "The gRPC health server failed.");
        }
    }));
    let auth = if config.metrics_auth {
        let client = inference_pool::KubeClient::or_default(config.kube_client.as_ref())
            .await
            .map_err(Error::Kube)?;
        Some(Arc::new(metrics_auth::MetricsAuth::new(
            client,
            Arc::clone(&metrics),
        )))
    } else {
        None
    };
    let router = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move |headers: axum::http::HeaderMap| {
            let (registry, auth) = (registry.clone(), auth.clone());
            async move {
                if let Some(auth) = &auth
                    && let Err(refused) = auth.check(&headers).await
                {
                    return axum::response::IntoResponse::into_response(refused);
                }
                axum::response::IntoResponse::into_response((
                    [("content-type", "text/plain; version=0.0.4")],
                    ::telemetry::encode_metrics(&registry),
                ))
            }
        }),
    );
    let stop = stopped(shutdown_rx);
    tasks.push(tokio::spawn(async move {
        if let Err(error) = axum::serve(metrics_listener, router)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(%error, "The metrics server failed.");
        }
    }));
    tracing::info!(%addr, %health_addr, %metrics_addr, tls = ?config.tls, pool = %config.pool_name, "Endpoint picker listening.");
    Ok(Server {
        addr,
        health_addr,
        metrics_addr,
        kv_events_endpoints,
        datastore,
        shutdown,
        tasks,
        tracing,
    })
}

/// The binary's entry: serve until SIGINT or SIGTERM.
pub async fn run(config: Config) -> Result<(), Error> {
    let server = spawn(config).await?;
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
    tracing::info!("Shutting down.");
    server.shutdown().await;
    Ok(())
}
