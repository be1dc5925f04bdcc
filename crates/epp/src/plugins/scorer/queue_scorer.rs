//! `queue-scorer`: shorter waiting queues score higher.

use std::sync::Arc;

use crate::framework::{
    CycleState, Endpoint, Handle, InferenceRequest, Plugin, PluginError, Scorer, ScorerCategory,
    TypedName, registry::parameters,
};

/// `(maxQ − q) / (maxQ − minQ)` over the candidates' waiting queues; all equal → 1. No
/// parameters:
///
/// ```yaml
/// - type: queue-scorer
/// ```
#[derive(Debug)]
pub struct QueueScorer {
    typed_name: TypedName,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Parameters {}

impl QueueScorer {
    pub const TYPE: &'static str = "queue-scorer";

    pub fn factory(
        name: &str,
        value: serde_norway::Value,
        _handle: &Handle,
    ) -> Result<Arc<dyn Plugin>, PluginError> {
        let Parameters {} = parameters(value)?;
        Ok(Arc::new(QueueScorer {
            typed_name: TypedName::new(Self::TYPE, name),
        }))
    }
}

impl Plugin for QueueScorer {
    fn typed_name(&self) -> &TypedName {
        &self.typed_name
    }
    fn as_scorer(&self) -> Option<&dyn Scorer> {
        Some(self)
    }
}

impl Scorer for QueueScorer {
    fn category(&self) -> ScorerCategory {
        ScorerCategory::Distribution
    }

    fn score(
        &self,
        _cycle: &mut CycleState,
        _request: &InferenceRequest,
        endpoints: &[Arc<Endpoint>],
    ) -> Vec<f64> {
        let queues = endpoints.iter().map(|e| e.metrics.waiting_queue_size);
        let (min, max) = queues.fold((u64::MAX, 0), |(min, max), q| (min.min(q), max.max(q)));
        endpoints
            .iter()
            .map(|endpoint| {
                if max <= min {
                    1.0
                } else {
                    (max - endpoint.metrics.waiting_queue_size) as f64 / (max - min) as f64
                }
            })
            .collect()
    }
}
