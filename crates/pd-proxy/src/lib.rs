//! The P/D sidecar that sits in front of a decode vLLM: it runs the prefill leg on the pod named
//! by `x-prefiller-host-port`, then the decode leg with the returned `kv_transfer_params`, and
//! measures what the client sees: true TTFT = prefill + the sidecar's own work + decode TTFT.
//!
//! * [`spawn`] starts a sidecar in-process (tests bind `127.0.0.1:0`); [`run`] is the binary's
//!   entry point. Both take a [`Config`] built by [`Config::parse`] from flags compatible with
//!   both generations of the upstream sidecar and the environment ([`env`]).
//! * Requests without the header go to the local vLLM unchanged; other routes (`/metrics`,
//!   `/v1/models`, …) are forwarded as they are; `/health` is answered here.
//! * The prefill target must be in the allow-list ([`allowlist`]): secure by default.
//! * Metrics (`llm_d_inference_scheduler_pd_proxy_*`) are served on `--metrics-port`/
//!   `--metrics-addr`; spans `llm_d.pd_proxy.request` → `.prefill`, `.decode` carry
//!   `traceparent` to both vLLMs.

pub mod allowlist;
pub mod config;
pub mod connector;
pub mod env;
mod proxy;
mod telemetry;
pub mod tls;

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use hyper::{Request, Response, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;

pub use config::Config;
pub use proxy::{PREFILL_HEADER, prefill_targets};

/// How long shutdown waits for in-flight responses.
const GRACEFUL_SHUTDOWN: Duration = Duration::from_secs(10);

/// Errors that stop a sidecar from starting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("binding {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("metrics registration")]
    Metrics(#[from] prometheus::Error),
    #[error("tracing")]
    Tracing(#[from] ::telemetry::Error),
    #[error("server")]
    Serve(#[source] std::io::Error),
    #[error("TLS")]
    Tls(#[from] tls::TlsError),
    #[error("Kubernetes client for watching InferencePool {pool} (in-cluster or KUBECONFIG)")]
    Kube {
        pool: String,
        #[source]
        source: kube::Error,
    },
}

/// A running sidecar.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    /// The listen port serves TLS.
    tls: bool,
    metrics_addr: Option<SocketAddr>,
    shutdown: Option<tokio::sync::watch::Sender<bool>>,
    /// Listeners: they end on `shutdown`.
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Background loops (the pool file watch): aborted on shutdown.
    background: Vec<tokio::task::JoinHandle<()>>,
    tracing: Arc<::telemetry::Tracing>,
}

impl Server {
    /// The address the sidecar listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://addr`, or `https://addr` with `--secure-proxy`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Where the sidecar's own `/metrics` is served, when it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Stops accepting, lets in-flight responses finish (10 s at most), flushes spans.
    pub async fn shutdown(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(true);
        }
        for task in self.background.drain(..) {
            task.abort();
        }
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
        let tracing = self.tracing.clone();
        let _ = tokio::task::spawn_blocking(move || tracing.flush()).await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        for task in self.tasks.iter().chain(&self.background) {
            task.abort();
        }
    }
}

/// Starts a sidecar on `config.listen` (port 0 picks a free one).
pub async fn spawn(config: Config) -> Result<Server, Error> {
    let metrics = Arc::new(telemetry::Metrics::new(config.connector.as_str())?);
    let tracing = if config.tracing {
        ::telemetry::Tracing::new(&config.telemetry, "llm-d-pd-proxy")?
    } else {
        if config.telemetry.otlp_endpoint.is_some() {
            tracing::info!("An OTLP endpoint is set but --tracing is off; no spans are exported.");
        }
        ::telemetry::Tracing::disabled()
    };
    let tracing = Arc::new(tracing);
    let allowlist = Arc::new(allowlist::AllowList::new(&config.ssrf));
    let mut tasks = Vec::new();
    let mut background = Vec::new();
    log_allowlist(&config, &allowlist);
    if let Some(path) = &config.ssrf.pool_file {
        background.push(allowlist.watch(path.clone(), config.ssrf.pool_refresh));
    }
    if let (true, Some(pool)) = (config.ssrf.enabled, &config.ssrf.inference_pool) {
        let client = inference_pool::KubeClient::or_default(config.kube_client.as_ref())
            .await
            .map_err(|source| Error::Kube {
                pool: pool.to_string(),
                source,
            })?;
        let watch_metrics = inference_pool::WatchMetrics::register(&metrics.registry)?;
        let watch = inference_pool::watch(client, pool.clone(), Some(watch_metrics));
        background.push(tokio::spawn(follow_pool(watch, Arc::clone(&allowlist))));
    }
    let serving_tls = server_tls::ServerTls::new(&config.tls.serve, &[b"http/1.1"])
        .map_err(tls::TlsError::from)?;
    // A mounted pair is re-read as cert-manager renews it, as upstream's sidecar does.
    if let Some(task) = serving_tls
        .as_ref()
        .and_then(|tls| tls.watch(config.cert_reload_interval))
    {
        background.push(task);
    }
    let server_tls = serving_tls.map(|tls| tls.acceptor());
    let proxy = Arc::new(proxy::Proxy {
        prefiller: proxy::Upstream::new(config.tls.prefiller, config.max_idle_conns_per_host)?,
        decoder_upstream: proxy::Upstream::new(config.tls.decoder, config.max_idle_conns_per_host)?,
        allowlist,
        metrics: metrics.clone(),
        tracing: tracing.clone(),
        connector: config.connector,
        decoder: config.decoder.clone(),
        prefiller_sampling: config.prefiller_sampling,
        prefill_timeout: config.prefill_timeout,
        decode_timeout: config.decode_timeout,
        prefill_max_retries: config.prefill_max_retries,
        prefill_retry_backoff: config.prefill_retry_backoff,
        prefill_fallback: config.prefill_fallback,
        max_request_body_bytes: config.max_request_body_bytes,
    });
    let listener = bind(config.listen).await?;
    let addr = local_addr(&listener, config.listen)?;
    let (shutdown, stop) = tokio::sync::watch::channel(false);
    let metrics_addr = match config.metrics_addr {
        Some(requested) => {
            let metrics_listener = bind(requested).await?;
            let bound = local_addr(&metrics_listener, requested)?;
            let metrics = metrics.clone();
            let service = move |request: Request<Incoming>| {
                let metrics = metrics.clone();
                async move { Ok::<_, Infallible>(serve_metrics(&metrics, &request)) }
            };
            tasks.push(tokio::spawn(serve(
                metrics_listener,
                service,
                None,
                stop.clone(),
            )));
            tracing::info!(addr = %bound, "Sidecar metrics listening.");
            Some(bound)
        }
        None => None,
    };
    let service = move |request: Request<Incoming>| proxy.clone().handle(request);
    let handshake_failures = metrics.tls_handshake_failures.clone();
    let listen_tls = server_tls.map(|acceptor| (acceptor, handshake_failures));
    tasks.push(tokio::spawn(serve(listener, service, listen_tls, stop)));
    tracing::info!(
        %addr,
        decoder = %config.decoder,
        connector = config.connector.as_str(),
        tls = ?config.tls,
        "P/D sidecar listening."
    );
    Ok(Server {
        addr,
        tls: config.tls.serve != config::ServeTls::Off,
        metrics_addr,
        shutdown: Some(shutdown),
        tasks,
        background,
        tracing,
    })
}

/// The binary's entry: serve until SIGINT or SIGTERM.
pub async fn run(config: Config) -> Result<(), Error> {
    let server = spawn(config).await?;
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(Error::Serve)?;
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("Shutting down.");
    server.shutdown().await;
    Ok(())
}

/// Keeps the allow-list's pool part equal to the IPs of the pool's ready pods.
async fn follow_pool(watch: inference_pool::PoolWatch, allowlist: Arc<allowlist::AllowList>) {
    watch
        .follow(|state| {
            let mut hosts: Vec<String> = state.endpoints.iter().map(|e| e.ip.clone()).collect();
            hosts.dedup();
            let entries = allowlist.set_pool_hosts(hosts);
            tracing::debug!(
                entries,
                pods = state.endpoints.len(),
                "Prefill allow-list follows the InferencePool."
            );
        })
        .await;
}

fn log_allowlist(config: &Config, allowlist: &allowlist::AllowList) {
    if !allowlist.enabled() {
        tracing::warn!(
            "SSRF protection is off (--enable-ssrf-protection=false): any client can make this sidecar call any host:port as a prefill target."
        );
    } else if allowlist.is_empty()
        && config.ssrf.pool_file.is_none()
        && config.ssrf.inference_pool.is_none()
    {
        tracing::error!(
            "No prefill target is allowed: SSRF protection is on but there is no allow-list (--allowed-prefill-hosts) and no pool to learn it from (--inference-pool, --pool-file); every request naming a prefill pod is refused with 403."
        );
    } else if let Some(pool) = &config.ssrf.inference_pool {
        tracing::info!(pool = %pool, static_entries = allowlist.len(), "Prefill allow-list follows the InferencePool's ready pods.");
    } else {
        tracing::info!(entries = allowlist.len(), "Prefill allow-list loaded.");
    }
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, Error> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}

fn local_addr(listener: &tokio::net::TcpListener, addr: SocketAddr) -> Result<SocketAddr, Error> {
    listener
        .local_addr()
        .map_err(|source| Error::Bind { addr, source })
}

fn serve_metrics(
    metrics: &telemetry::Metrics,
    request: &Request<Incoming>,
) -> Response<proxy::ProxyBody> {
    if request.uri().path() != "/metrics" {
        let mut response = Response::new(proxy::ProxyBody::full("not found\n"));
        *response.status_mut() = http::StatusCode::NOT_FOUND;
        return response;
    }
    let mut response = Response::new(proxy::ProxyBody::full(::telemetry::encode_metrics(
        &metrics.registry,
    )));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(::telemetry::PROMETHEUS_CONTENT_TYPE),
    );
    response
}

/// Accepts HTTP/1.1 connections (over TLS when `tls` is set) until `stop` turns true, then
/// drains them. A failed handshake is counted and closes only that connection.
async fn serve<S, F>(
    listener: tokio::net::TcpListener,
    service: S,
    tls: Option<(
        tokio_rustls::TlsAcceptor,
        prometheus::core::GenericCounter<prometheus::core::AtomicF64>,
    )>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    S: Fn(Request<Incoming>) -> F + Clone + Send + 'static,
    F: std::future::Future<Output = Result<Response<proxy::ProxyBody>, Infallible>>
        + Send
        + 'static,
{
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.keep_alive(true);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        tracing::warn!(%error, "Accepting a connection failed.");
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let (builder, service, watcher) = (builder.clone(), service.clone(), graceful.watcher());
                let tls = tls.clone();
                tokio::spawn(async move {
                    let served = match tls {
                        None => {
                            let connection = builder.serve_connection(TokioIo::new(stream), service_fn(service));
                            watcher.watch(connection).await
                        }
                        Some((acceptor, failures)) => {
                            let stream = match server_tls::handshake(&acceptor, stream).await {
                                Ok(stream) => stream,
                                Err(error) => {
                                    failures.inc();
                                    tracing::debug!(%error, "Connection refused.");
                                    return;
                                }
                            };
                            let connection = builder.serve_connection(TokioIo::new(stream), service_fn(service));
                            watcher.watch(connection).await
                        }
                    };
                    if let Err(error) = served {
                        tracing::debug!(%error, "Connection ended with an error.");
                    }
                });
            }
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(GRACEFUL_SHUTDOWN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("In-flight responses did not finish in time; closing them.");
    }
}
