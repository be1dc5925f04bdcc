//! The Gateway API Inference Extension's `InferencePool` (`inference.networking.k8s.io/v1`,
//! and the older `inference.networking.x-k8s.io/v1alpha2`): its spec, the endpoints it
//! selects, and a Kubernetes watcher that keeps both current.
//!
//! The EPP discovers its endpoints this way, and the P/D sidecar learns its SSRF allow-list
//! the same way, so both read a pool exactly alike. Reading order: [`spec`] (the pool),
//! [`endpoints`] (pods to endpoints, a pure function), [`watch`] (the Kubernetes side).

pub mod endpoints;
pub mod spec;
pub mod watch;

pub use endpoints::{PoolEndpoint, PoolPod, select};
pub use spec::{PoolRef, PoolSpec, SpecError};
pub use watch::{KubeClient, PoolState, PoolWatch, WatchMetrics, watch};
