//! The Endpoint Picker (EPP): an Envoy `ext_proc` gRPC server that scores vLLM pods and names
//! the one each request goes to.
//!
//! Empty until the EPP issue fills it; nothing here pretends to route yet.
