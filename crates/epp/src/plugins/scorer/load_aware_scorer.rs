//! `load-aware-scorer`: llm-d's queue-threshold score, at most 0.5.

use std::sync::Arc;

use crate::framework::{
    CycleState, Endpoint, Handle, InferenceRequest, Plugin, PluginError, Scorer, ScorerCategory,
    TypedName, registry::parameters,
};

/// Upstream's default queue threshold.
pub const DEFAULT_THRESHOLD: u64 = 128;

/// Empty queue → 0.5; queue ≥ `threshold` → 0; otherwise `0.5 · (1 − q / threshold)`:
///
/// ```yaml
/// - type: load-aware-scorer
///   parameters: { threshold: 128 }
/// ```
#[derive(Debug)]
pub struct LoadAwareScorer {
    typed_name: TypedName,
    threshold: u64,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Parameters {
    /// Waiting requests at which the score reaches 0.
    #[serde(default = "default_threshold")]
    threshold: u64,
}

fn default_threshold() -> u64 {
    DEFAULT_THRESHOLD
}

impl Default for Parameters {
    fn default() -> Self {
        Parameters {
            threshold: DEFAULT_THRESHOLD,
        }
    }
}

impl LoadAwareScorer {
    pub const TYPE: &'static str = "load-aware-scorer";

    pub fn factory(
        name: &str,
        value: serde_norway::Value,
        _handle: &Handle,
    ) -> Result<Arc<dyn Plugin>, PluginError> {
        let parameters: Parameters = parameters(value)?;
        if parameters.threshold == 0 {
            return Err(PluginError::Invalid {
                parameter: "threshold",
                reason: "must be at least 1".to_owned(),
            });
        }
        Ok(Arc::new(LoadAwareScorer {
            typed_name: TypedName::new(Self::TYPE, name),
            threshold: parameters.threshold,
        }))
    }
}

impl Plugin for LoadAwareScorer {
    fn typed_name(&self) -> &TypedName {
        &self.typed_name
    }
    fn as_scorer(&self) -> Option<&dyn Scorer> {
        Some(self)
    }
}

impl Scorer for LoadAwareScorer {
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
            .map(|endpoint| {
                let queue = endpoint.metrics.waiting_queue_size;
                if queue == 0 {
                    0.5
                } else if queue >= self.threshold {
                    0.0
                } else {
                    0.5 * (1.0 - queue as f64 / self.threshold as f64)
                }
            })
            .collect()
    }
}
