//! Integration tests: a real sidecar in front of real simulators on 127.0.0.1:0.

mod guides;
mod pd;
mod support;
mod tls;
mod traces;
