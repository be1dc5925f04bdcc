//! `saturation-admitter`: refuses requests while every candidate is saturated.

use std::sync::Arc;

use crate::framework::{
    Admitter, Endpoint, Handle, InferenceRequest, Plugin, PluginError, TypedName,
    registry::parameters,
};

/// GIE's saturation detector defaults.
pub const DEFAULT_QUEUE_DEPTH_THRESHOLD: u64 = 5;
pub const DEFAULT_KV_CACHE_UTIL_THRESHOLD: f64 = 0.8;

/// An endpoint has capacity while its waiting queue is below `queueDepthThreshold` and its KV
/// cache usage below `kvCacheUtilThreshold` (GIE's utilization detector); with no candidate
/// having capacity the request is refused with 429. Active as soon as it is declared:
///
/// ```yaml
/// - type: saturation-admitter
///   parameters: { queueDepthThreshold: 5, kvCacheUtilThreshold: 0.8 }
/// ```
#[derive(Debug)]
pub struct SaturationAdmitter {
    typed_name: TypedName,
    parameters: Parameters,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Parameters {
    #[serde(default = "default_queue")]
    queue_depth_threshold: u64,
    #[serde(default = "default_kv")]
    kv_cache_util_threshold: f64,
}

fn default_queue() -> u64 {
    DEFAULT_QUEUE_DEPTH_THRESHOLD
}
fn default_kv() -> f64 {
    DEFAULT_KV_CACHE_UTIL_THRESHOLD
}

impl Default for Parameters {
    fn default() -> Self {
        Parameters {
            queue_depth_threshold: DEFAULT_QUEUE_DEPTH_THRESHOLD,
            kv_cache_util_threshold: DEFAULT_KV_CACHE_UTIL_THRESHOLD,
        }
    }
}

impl SaturationAdmitter {
    pub const TYPE: &'static str = "saturation-admitter";

    pub fn factory(
        name: &str,
        value: serde_norway::Value,
        _handle: &Handle,
    ) -> Result<Arc<dyn Plugin>, PluginError> {
        let parameters: Parameters = parameters(value)?;
        if !(0.0..=1.0).contains(&parameters.kv_cache_util_threshold) {
            return Err(PluginError::Invalid {
                parameter: "kvCacheUtilThreshold",
                reason: "must be between 0 and 1".to_owned(),
            });
        }
        Ok(Arc::new(SaturationAdmitter {
            typed_name: TypedName::new(Self::TYPE, name),
            parameters,
        }))
    }
}

impl Plugin for SaturationAdmitter {
    fn typed_name(&self) -> &TypedName {
        &self.typed_name
    }
    fn as_admitter(&self) -> Option<&dyn Admitter> {
        Some(self)
    }
}

impl Admitter for SaturationAdmitter {
    fn admit(
        &self,
        _request: &InferenceRequest,
        candidates: &[Arc<Endpoint>],
    ) -> Result<(), String> {
        let has_capacity = candidates.iter().any(|endpoint| {
            endpoint.metrics.waiting_queue_size < self.parameters.queue_depth_threshold
                && endpoint.metrics.kv_cache_usage < self.parameters.kv_cache_util_threshold
        });
        if has_capacity {
            Ok(())
        } else {
            Err(format!(
                "all {} candidate endpoints are saturated",
                candidates.len()
            ))
        }
    }
}
