//! `prefill-filter`: endpoints that may prefill.

use std::sync::Arc;

use crate::framework::{
    CycleState, Endpoint, Filter, Handle, InferenceRequest, Plugin, PluginError, TypedName,
    registry::parameters,
};
use crate::plugins::filter::ROLE_LABEL;

/// Keeps endpoints whose `llm-d.ai/role` is `prefill`, `encode-prefill`, `prefill-decode`,
/// `both` or `encode-prefill-decode`; endpoints without the label are dropped. No parameters:
///
/// ```yaml
/// - type: prefill-filter
/// ```
#[derive(Debug)]
pub struct PrefillFilter {
    typed_name: TypedName,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Parameters {}

impl PrefillFilter {
    pub const TYPE: &'static str = "prefill-filter";
    const ROLES: &'static [&'static str] = &[
        "prefill",
        "encode-prefill",
        "prefill-decode",
        "both",
        "encode-prefill-decode",
    ];

    pub fn factory(
        name: &str,
        value: serde_norway::Value,
        _handle: &Handle,
    ) -> Result<Arc<dyn Plugin>, PluginError> {
        let Parameters {} = parameters(value)?;
        Ok(Arc::new(PrefillFilter {
            typed_name: TypedName::new(Self::TYPE, name),
        }))
    }
}

impl Plugin for PrefillFilter {
    fn typed_name(&self) -> &TypedName {
        &self.typed_name
    }
    fn as_filter(&self) -> Option<&dyn Filter> {
        Some(self)
    }
}

impl Filter for PrefillFilter {
    fn filter(
        &self,
        _cycle: &mut CycleState,
        _request: &InferenceRequest,
        endpoints: Vec<Arc<Endpoint>>,
    ) -> Vec<Arc<Endpoint>> {
        endpoints
            .into_iter()
            .filter(|endpoint| {
                endpoint
                    .labels
                    .get(ROLE_LABEL)
                    .is_some_and(|role| Self::ROLES.contains(&role.as_str()))
            })
            .collect()
    }
}
