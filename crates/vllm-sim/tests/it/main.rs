//! Integration tests: real simulators on 127.0.0.1:0, driven over HTTP.

mod api;
mod guides;
mod kv_events;
mod metrics;
mod pd;
mod support;
mod timing;
mod traces;
