//! `kv-cache-utilization-scorer`: emptier KV caches score higher.

use std::sync::Arc;

use crate::framework::{
    CycleState, Endpoint, Handle, InferenceRequest, Plugin, PluginError, Scorer, ScorerCategory,
    TypedName, registry::parameters,
};

/// `1 − kv_cache_usage_perc`. No parameters:
///
/// ```yaml
/// - type: kv-cache-utilization-scorer
/// ```
#[derive(Debug)]
pub struct KvCacheUtilizationScorer {
    typed_name: TypedName,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Parameters {}

impl KvCacheUtilizationScorer {
    pub const TYPE: &'static str = "kv-cache-utilization-scorer";

    pub fn factory(
        name: &str,
        value: serde_norway::Value,
        _handle: &Handle,
    ) -> Result<Arc<dyn Plugin>, PluginError> {
        let Parameters {} = parameters(value)?;
        Ok(Arc::new(KvCacheUtilizationScorer {
            typed_name: TypedName::new(Self::TYPE, name),
        }))
    }
}

impl Plugin for KvCacheUtilizationScorer {
    fn typed_name(&self) -> &TypedName {
        &self.typed_name
    }
    fn as_scorer(&self) -> Option<&dyn Scorer> {
        Some(self)
    }
}

impl Scorer for KvCacheUtilizationScorer {
    fn category(&self) -> ScorerCategory {
        ScorerCategory::Distribution
    }

    fn score(
        &self,
        _cycle: &mut CycleState,
        _request: &InferenceRequest,
        endpoints: &[Arc<Endpoint>],
    ) -> Vec<f64> {
        endpoints
            .iter()
            .map(|endpoint| (1.0 - endpoint.metrics.kv_cache_usage).clamp(0.0, 1.0))
            .collect()
    }
}
