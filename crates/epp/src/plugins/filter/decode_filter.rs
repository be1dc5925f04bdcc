//! `decode-filter`: endpoints that may decode.

use std::sync::Arc;

use crate::framework::{
    CycleState, Endpoint, Filter, Handle, InferenceRequest, Plugin, PluginError, TypedName,
    registry::parameters,
};
use crate::plugins::filter::ROLE_LABEL;

/// Keeps endpoints whose `llm-d.ai/role` is `decode`, `prefill-decode`, `both` or
/// `encode-prefill-decode`, and endpoints without the label. No parameters:
///
/// ```yaml
/// - type: decode-filter
/// ```
#[derive(Debug)]
pub struct DecodeFilter {
    typed_name: TypedName,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Parameters {}

impl DecodeFilter {
    pub const TYPE: &'static str = "decode-filter";
    const ROLES: &'static [&'static str] =
        &["decode", "prefill-decode", "both", "encode-prefill-decode"];

    pub fn factory(
        name: &str,
        value: serde_norway::Value,
        _handle: &Handle,
    ) -> Result<Arc<dyn Plugin>, PluginError> {
        let Parameters {} = parameters(value)?;
        Ok(Arc::new(DecodeFilter {
            typed_name: TypedName::new(Self::TYPE, name),
        }))
    }
}

impl Plugin for DecodeFilter {
    fn typed_name(&self) -> &TypedName {
        &self.typed_name
    }
    fn as_filter(&self) -> Option<&dyn Filter> {
        Some(self)
    }
}

impl Filter for DecodeFilter {
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
                    .is_none_or(|role| Self::ROLES.contains(&role.as_str()))
            })
            .collect()
    }
}
