//! The endpoint set and each endpoint's scraped engine metrics.
//!
//! Readers take an `Arc` snapshot (one lock acquisition per request); writers (discovery and
//! the scraper) publish a new snapshot. When scraping is on, an endpoint is a scheduling
//! candidate only while its last successful scrape is younger than the staleness threshold.

pub mod scrape;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use crate::framework::{Endpoint, EndpointMetrics};

type RemovalListener = Box<dyn Fn(&str) + Send + Sync>;

/// What discovery knows about an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSpec {
    pub name: String,
    pub namespace: String,
    /// `ip:port`.
    pub address: String,
    pub labels: BTreeMap<String, String>,
}

impl EndpointSpec {
    pub fn new(address: &str) -> EndpointSpec {
        EndpointSpec {
            name: address.to_owned(),
            namespace: String::new(),
            address: address.to_owned(),
            labels: BTreeMap::new(),
        }
    }
}

/// The endpoints of one pool.
pub struct Datastore {
    pool_name: String,
    /// `None`: metrics are not scraped and every endpoint is a candidate.
    staleness: Option<Duration>,
    snapshot: RwLock<Arc<[Arc<Endpoint>]>>,
    listeners: Mutex<Vec<RemovalListener>>,
    synced: std::sync::atomic::AtomicBool,
    /// Discovery has delivered its first endpoint set (always, for a static list).
    discovered: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Datastore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Datastore")
            .field("pool_name", &self.pool_name)
            .field("endpoints", &self.snapshot.read().len())
            .finish()
    }
}

impl Datastore {
    /// `staleness` is `None` when metrics are not scraped.
    pub fn new(pool_name: &str, staleness: Option<Duration>) -> Datastore {
        Datastore {
            pool_name: pool_name.to_owned(),
            staleness,
            snapshot: RwLock::new(Arc::from(Vec::new())),
            listeners: Mutex::new(Vec::new()),
            synced: std::sync::atomic::AtomicBool::new(false),
            discovered: std::sync::atomic::AtomicBool::new(true),
        }
    }

    pub fn pool_name(&self) -> &str {
        &self.pool_name
    }

    /// Calls `listener(address)` for every endpoint that leaves the pool.
    pub fn on_removed(&self, listener: impl Fn(&str) + Send + Sync + 'static) {
        self.listeners.lock().push(Box::new(listener));
    }

    /// Every endpoint, fresh or not.
    pub fn all(&self) -> Arc<[Arc<Endpoint>]> {
        Arc::clone(&self.snapshot.read())
    }

    /// The endpoints a request may be scheduled on now.
    pub fn candidates(&self) -> Vec<Arc<Endpoint>> {
        let all = self.all();
        match self.staleness {
            None => all.to_vec(),
            Some(staleness) => {
                let now = Instant::now();
                all.iter()
                    .filter(|e| {
                        e.metrics
                            .updated
                            .is_some_and(|t| now.duration_since(t) <= staleness)
                    })
                    .cloned()
                    .collect()
            }
        }
    }

    /// True once discovery has delivered the endpoint set and (with scraping) the first
    /// scrape round has run: the `readiness` health service.
    pub fn is_synced(&self) -> bool {
        self.discovered.load(std::sync::atomic::Ordering::Acquire)
            && self.synced.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Whether discovery has listed the pool once (a watcher sets it).
    pub fn set_discovered(&self, discovered: bool) {
        self.discovered
            .store(discovered, std::sync::atomic::Ordering::Release);
    }

    pub fn mark_synced(&self) {
        self.synced
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Replaces the endpoint set: new ones are added with empty metrics, changed ones keep
    /// their metrics, missing ones are removed (and listeners told).
    pub fn set_endpoints(&self, specs: Vec<EndpointSpec>) {
        let removed: Vec<String> = {
            let mut snapshot = self.snapshot.write();
            let mut old: HashMap<String, Arc<Endpoint>> = snapshot
                .iter()
                .map(|e| (e.address.clone(), Arc::clone(e)))
                .collect();
            let mut next: Vec<Arc<Endpoint>> = specs
                .into_iter()
                .map(|spec| {
                    let metrics = old
                        .remove(&spec.address)
                        .map(|e| e.metrics.clone())
                        .unwrap_or_default();
                    Arc::new(Endpoint {
                        name: spec.name,
                        namespace: spec.namespace,
                        address: spec.address,
                        labels: spec.labels,
                        metrics,
                    })
                })
                .collect();
            next.sort_by(|a, b| a.address.cmp(&b.address));
            next.dedup_by(|a, b| a.address == b.address);
            *snapshot = Arc::from(next);
            old.into_keys().collect()
        };
        for address in &removed {
            tracing::info!(endpoint = %address, pool = %self.pool_name, "Endpoint left the pool.");
            for listener in self.listeners.lock().iter() {
                listener(address);
            }
        }
    }

    /// Records scraped metrics (by address); unknown addresses are ignored.
    pub fn update_metrics(&self, updates: &HashMap<String, EndpointMetrics>) {
        let mut snapshot = self.snapshot.write();
        let next: Vec<Arc<Endpoint>> = snapshot
            .iter()
            .map(|endpoint| match updates.get(&endpoint.address) {
                Some(metrics) => Arc::new(Endpoint {
                    metrics: metrics.clone(),
                    ..Endpoint::clone(endpoint)
                }),
                None => Arc::clone(endpoint),
            })
            .collect();
        *snapshot = Arc::from(next);
    }
}
