//! Follows one `InferencePool` and the pods of its namespace through the Kubernetes API and
//! publishes the endpoints it selects, as a [`tokio::sync::watch`] value.
//!
//! Two `kube` watchers (the pool by name, the namespace's pods) run with the default backoff,
//! so a dead API server or a failed watch is retried, counted, and never ends the stream. A
//! list in progress is buffered and swapped in whole at its end, so a re-list never shows a
//! half-empty pool. Needs `get`, `list` and `watch` on `pods` and `inferencepools`.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject};
use kube::runtime::{WatchStreamExt as _, watcher};
use prometheus::{CounterVec, Gauge, Registry};

use crate::endpoints::{PoolEndpoint, PoolPod, select};
use crate::spec::{PoolRef, PoolSpec, SpecError};

/// What the pool selects now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolState {
    /// The pool's spec, when it exists and is readable.
    pub spec: Option<PoolSpec>,
    /// Sorted by address.
    pub endpoints: Vec<PoolEndpoint>,
    /// The pool and the pods have each been listed once.
    pub synced: bool,
    /// Why the pool selects nothing: it does not exist, or its spec is unreadable.
    pub problem: Option<String>,
}

/// The watcher's metrics, from `metrics_schema::pool`.
#[derive(Debug, Clone)]
pub struct WatchMetrics {
    events: CounterVec,
    errors: CounterVec,
    endpoints: Gauge,
}

impl WatchMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<WatchMetrics> {
        use metrics_schema::pool;
        let events = pool::WATCH_EVENTS_TOTAL.register_counter(registry)?;
        let errors = pool::WATCH_ERRORS_TOTAL.register_counter(registry)?;
        for resource in [POOLS, PODS] {
            events.with_label_values(&[resource]);
            errors.with_label_values(&[resource]);
        }
        let endpoints = pool::ENDPOINTS
            .register_gauge(registry)?
            .with_label_values(&[] as &[&str]);
        Ok(WatchMetrics {
            events,
            errors,
            endpoints,
        })
    }
}

const POOLS: &str = "inferencepools";
const PODS: &str = "pods";

/// A running watch; dropping it stops the watchers.
#[derive(Debug)]
pub struct PoolWatch {
    receiver: tokio::sync::watch::Receiver<Arc<PoolState>>,
    task: tokio::task::JoinHandle<()>,
}

impl PoolWatch {
    /// A receiver that sees every change.
    pub fn receiver(&self) -> tokio::sync::watch::Receiver<Arc<PoolState>> {
        self.receiver.clone()
    }

    /// The state now.
    pub fn current(&self) -> Arc<PoolState> {
        Arc::clone(&self.receiver.borrow())
    }
}

impl PoolWatch {
    /// Calls `apply` with the current state, then again after every change, until the
    /// watch ends; the loop both the EPP and the sidecar run.
    pub async fn follow(self, mut apply: impl FnMut(&PoolState)) {
        let mut states = self.receiver();
        loop {
            let state = Arc::clone(&states.borrow_and_update());
            apply(&state);
            if states.changed().await.is_err() {
                return;
            }
        }
    }
}

/// A Kubernetes client handed in by the caller (tests, embedding programs) instead of the one
/// built the standard way.
#[derive(Clone)]
pub struct KubeClient(pub kube::Client);

impl std::fmt::Debug for KubeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KubeClient")
    }
}

impl KubeClient {
    /// `given`, or the in-cluster service account, or `KUBECONFIG`.
    pub async fn or_default(given: Option<&KubeClient>) -> Result<kube::Client, kube::Error> {
        match given {
            Some(client) => Ok(client.0.clone()),
            None => kube::Client::try_default().await,
        }
    }
}

impl Drop for PoolWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts following `pool` with `client`.
pub fn watch(client: kube::Client, pool: PoolRef, metrics: Option<WatchMetrics>) -> PoolWatch {
    let (sender, receiver) = tokio::sync::watch::channel(Arc::new(PoolState::default()));
    let task = tokio::spawn(run(client, pool, metrics, sender));
    PoolWatch { receiver, task }
}

enum Change {
    Pool(Box<Result<watcher::Event<DynamicObject>, watcher::Error>>),
    Pod(Box<Result<watcher::Event<Pod>, watcher::Error>>),
}

async fn run(
    client: kube::Client,
    pool: PoolRef,
    metrics: Option<WatchMetrics>,
    sender: tokio::sync::watch::Sender<Arc<PoolState>>,
) {
    let pools: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &pool.namespace, &pool.api_resource());
    let pods: Api<Pod> = Api::namespaced(client, &pool.namespace);
    let by_name = watcher::Config::default().fields(&format!("metadata.name={}", pool.name));
    let pool_changes = watcher(pools, by_name)
        .default_backoff()
        .map(|change| Change::Pool(Box::new(change)));
    let pod_changes = watcher(pods, watcher::Config::default())
        .default_backoff()
        .map(|change| Change::Pod(Box::new(change)));
    let mut changes = std::pin::pin!(futures::stream::select(pool_changes, pod_changes));
    let mut state = State::default();
    tracing::info!(pool = %pool, group = %pool.group, "Watching the InferencePool and its pods.");
    while let Some(change) = changes.next().await {
        let (resource, result) = match change {
            Change::Pool(result) => (POOLS, result.map(|event| state.on_pool(&pool, event))),
            Change::Pod(result) => (PODS, result.map(|event| state.on_pod(event))),
        };
        match result {
            Ok(()) => {
                if let Some(metrics) = &metrics {
                    metrics.events.with_label_values(&[resource]).inc();
                }
            }
            Err(error) => {
                if let Some(metrics) = &metrics {
                    metrics.errors.with_label_values(&[resource]).inc();
                }
                tracing::warn!(pool = %pool, resource, %error, "Watching the Kubernetes API failed; retrying.");
                continue;
            }
        }
        let next = state.snapshot(&pool);
        if let Some(metrics) = &metrics {
            metrics.endpoints.set(next.endpoints.len() as f64);
        }
        sender.send_if_modified(|current| {
            if **current == next {
                return false;
            }
            if current.problem != next.problem
                && let Some(problem) = &next.problem
            {
                tracing::warn!(pool = %pool, %problem, "The InferencePool selects no endpoints.");
            }
            if current.endpoints.len() != next.endpoints.len() || current.synced != next.synced {
                tracing::info!(pool = %pool, endpoints = next.endpoints.len(), synced = next.synced, "The InferencePool's endpoints changed.");
            }
            *current = Arc::new(next);
            true
        });
    }
}

/// `None`: absent; `Some(Err)`: present but unreadable.
type PoolEntry = Option<Result<PoolSpec, SpecError>>;

#[derive(Default)]
struct State {
    pool: PoolEntry,
    /// A re-list of the pool in progress.
    pool_listing: Option<PoolEntry>,
    pool_synced: bool,
    pods: BTreeMap<String, PoolPod>,
    /// A re-list of the pods in progress.
    pods_listing: Option<BTreeMap<String, PoolPod>>,
    pods_synced: bool,
}

impl State {
    fn on_pool(&mut self, pool: &PoolRef, event: watcher::Event<DynamicObject>) {
        let read = |object: &DynamicObject| -> PoolEntry {
            // The field selector names the pool; a server that ignores it still cannot
            // make another pool count.
            (object.metadata.name.as_deref() == Some(pool.name.as_str()))
                .then(|| PoolSpec::from_object(&object.data, pool.version()))
        };
        match event {
            watcher::Event::Init => self.pool_listing = Some(None),
            watcher::Event::InitApply(object) => {
                if let entry @ Some(_) = read(&object) {
                    self.pool_listing = Some(entry);
                }
            }
            watcher::Event::InitDone => {
                self.pool = self.pool_listing.take().flatten();
                self.pool_synced = true;
            }
            watcher::Event::Apply(object) => {
                if let entry @ Some(_) = read(&object) {
                    self.pool = entry;
                }
            }
            watcher::Event::Delete(object) => {
                if read(&object).is_some() {
                    self.pool = None;
                }
            }
        }
    }

    fn on_pod(&mut self, event: watcher::Event<Pod>) {
        match event {
            watcher::Event::Init => self.pods_listing = Some(BTreeMap::new()),
            watcher::Event::InitApply(pod) => {
                let pod = PoolPod::from(&pod);
                self.pods_listing
                    .get_or_insert_with(BTreeMap::new)
                    .insert(pod.name.clone(), pod);
            }
            watcher::Event::InitDone => {
                self.pods = self.pods_listing.take().unwrap_or_default();
                self.pods_synced = true;
            }
            watcher::Event::Apply(pod) => {
                let pod = PoolPod::from(&pod);
                self.pods.insert(pod.name.clone(), pod);
            }
            watcher::Event::Delete(pod) => {
                if let Some(name) = &pod.metadata.name {
                    self.pods.remove(name);
                }
            }
        }
    }

    fn snapshot(&self, pool: &PoolRef) -> PoolState {
        let (spec, problem) = match &self.pool {
            Some(Ok(spec)) => (Some(spec.clone()), None),
            Some(Err(error)) => (None, Some(format!("InferencePool {pool}: {error}"))),
            None if self.pool_synced => (None, Some(format!("InferencePool {pool} not found"))),
            None => (None, None),
        };
        PoolState {
            endpoints: spec
                .as_ref()
                .map(|spec| select(spec, self.pods.values()))
                .unwrap_or_default(),
            spec,
            synced: self.pool_synced && self.pods_synced,
            problem,
        }
    }
}
