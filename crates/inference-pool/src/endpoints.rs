//! From a pool and its namespace's pods to endpoints: a pure function, so the rules are tested
//! without a cluster.
//!
//! A pod is in the pool when its labels include the selector, it is Ready (`PodReady=True`),
//! it is not being deleted and it has an IP, as upstream's reconciler decides. Each such pod is
//! one endpoint per target port, the port's position being its data-parallel rank.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;

use crate::spec::PoolSpec;

/// What the pool needs to know about a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolPod {
    pub name: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub ip: Option<String>,
    pub ready: bool,
    pub deleting: bool,
}

impl From<&Pod> for PoolPod {
    fn from(pod: &Pod) -> PoolPod {
        let status = pod.status.as_ref();
        let ready = status
            .and_then(|status| status.conditions.as_ref())
            .is_some_and(|conditions| {
                conditions
                    .iter()
                    .any(|condition| condition.type_ == "Ready" && condition.status == "True")
            });
        PoolPod {
            name: pod.metadata.name.clone().unwrap_or_default(),
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            labels: pod.metadata.labels.clone().unwrap_or_default(),
            ip: status
                .and_then(|status| status.pod_ip.clone())
                .filter(|ip| !ip.is_empty()),
            ready,
            deleting: pod.metadata.deletion_timestamp.is_some(),
        }
    }
}

/// One `(pod, target port)` of the pool.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PoolEndpoint {
    /// `ip:port`, or `[ip]:port` for IPv6.
    pub address: String,
    pub ip: String,
    pub port: u16,
    /// The port's position in `targetPorts`.
    pub rank: usize,
    pub pod: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
}

/// The pool's endpoints among `pods`, sorted by address.
pub fn select<'a>(
    spec: &PoolSpec,
    pods: impl IntoIterator<Item = &'a PoolPod>,
) -> Vec<PoolEndpoint> {
    let mut endpoints = Vec::new();
    for pod in pods {
        let Some(ip) = pod.ip.as_deref() else {
            continue;
        };
        if !pod.ready || pod.deleting || !spec.selects(&pod.labels) {
            continue;
        }
        for (rank, &port) in spec.target_ports.iter().enumerate() {
            let address = if ip.contains(':') {
                format!("[{ip}]:{port}")
            } else {
                format!("{ip}:{port}")
            };
            endpoints.push(PoolEndpoint {
                address,
                ip: ip.to_owned(),
                port,
                rank,
                pod: pod.name.clone(),
                namespace: pod.namespace.clone(),
                labels: pod.labels.clone(),
            });
        }
    }
    endpoints.sort();
    endpoints.dedup_by(|a, b| a.address == b.address);
    endpoints
}
