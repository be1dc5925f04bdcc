//! `always-disagg-pd-decider`: every request gets a prefill leg (llm-d v0.6's default).

use std::sync::Arc;

use crate::framework::{
    CycleState, Handle, InferenceRequest, PdDecider, PdDecision, Plugin, PluginError, TypedName,
};

/// Always disaggregates; takes no parameters.
///
/// ```yaml
/// - type: always-disagg-pd-decider
/// ```
#[derive(Debug)]
pub struct AlwaysDisaggPdDecider {
    typed_name: TypedName,
}

impl AlwaysDisaggPdDecider {
    pub const TYPE: &'static str = "always-disagg-pd-decider";

    pub fn factory(
        name: &str,
        value: serde_norway::Value,
        _handle: &Handle,
    ) -> Result<Arc<dyn Plugin>, PluginError> {
        if !value.is_null() && value.as_mapping().is_none_or(|map| !map.is_empty()) {
            return Err(PluginError::Invalid {
                parameter: "parameters",
                reason: "always-disagg-pd-decider takes none".to_owned(),
            });
        }
        Ok(Arc::new(AlwaysDisaggPdDecider {
            typed_name: TypedName::new(Self::TYPE, name),
        }))
    }
}

impl Plugin for AlwaysDisaggPdDecider {
    fn typed_name(&self) -> &TypedName {
        &self.typed_name
    }
    fn as_pd_decider(&self) -> Option<&dyn PdDecider> {
        Some(self)
    }
}

impl PdDecider for AlwaysDisaggPdDecider {
    fn decide(&self, _: &CycleState, _: &InferenceRequest, _: &str) -> PdDecision {
        PdDecision {
            disaggregate: true,
            cached_fraction: 0.0,
            threshold: 0,
        }
    }
}
