//! Request-control roles: admission before scheduling, header work after it.

use std::sync::Arc;

use crate::framework::scheduling::{Endpoint, InferenceRequest, SchedulingResult};

/// Decides whether a request may be scheduled at all; a refusal becomes a 429.
pub trait Admitter {
    /// `Err(reason)` refuses the request.
    fn admit(&self, request: &InferenceRequest, candidates: &[Arc<Endpoint>])
    -> Result<(), String>;
}

/// Runs after scheduling, before the reply to the gateway: sets headers, records state.
pub trait PreRequest {
    fn pre_request(&self, request: &mut InferenceRequest, result: &SchedulingResult);
}
