//! The P/D sidecar that sits in front of a decode vLLM: it runs the prefill leg on the pod named
//! by `x-prefiller-host-port`, then the decode leg with the returned `kv_transfer_params`.
//!
//! Empty until the P/D issue fills it; nothing here pretends to proxy yet.
