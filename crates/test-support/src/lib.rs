//! Test harness shared by the stack's crates, used as a dev-dependency only.
//!
//! * [`kube_api`]: an in-process Kubernetes API server for list and watch. No kube-apiserver
//!   binary ships in any package registry this project can install from, so the watchers are
//!   tested against this server speaking the same HTTP protocol (lists with a
//!   `resourceVersion`, newline-delimited watch events, field selectors), and against its
//!   outages.
//! * [`tls`]: a self-signed certificate and a TLS front for plain-HTTP servers.
//! * [`envoy`]: a real Envoy in the GAIE shape (ext_proc to the EPP, original-destination
//!   routing, optional OTLP tracing), for the EPP's and the sidecar's end-to-end tests.

pub mod envoy;
pub mod kube_api;
pub mod tls;
