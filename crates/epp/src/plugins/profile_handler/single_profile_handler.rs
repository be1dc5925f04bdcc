//! `single-profile-handler`: run the one profile once.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::framework::{
    CycleState, Handle, InferenceRequest, Plugin, PluginError, ProfileHandler, ProfileResult,
    SchedulingError, SchedulingResult, TypedName, registry::parameters,
};

/// Runs the single configured profile; its result is primary. No parameters:
///
/// ```yaml
/// - type: single-profile-handler
/// ```
#[derive(Debug)]
pub struct SingleProfileHandler {
    typed_name: TypedName,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Parameters {}

impl SingleProfileHandler {
    pub const TYPE: &'static str = "single-profile-handler";

    pub fn factory(
        name: &str,
        value: serde_norway::Value,
        _handle: &Handle,
    ) -> Result<Arc<dyn Plugin>, PluginError> {
        let Parameters {} = parameters(value)?;
        Ok(Arc::new(SingleProfileHandler {
            typed_name: TypedName::new(Self::TYPE, name),
        }))
    }
}

impl Plugin for SingleProfileHandler {
    fn typed_name(&self) -> &TypedName {
        &self.typed_name
    }
    fn as_profile_handler(&self) -> Option<&dyn ProfileHandler> {
        Some(self)
    }
}

impl ProfileHandler for SingleProfileHandler {
    fn pick(
        &self,
        _cycle: &mut CycleState,
        _request: &InferenceRequest,
        profiles: &[String],
        results: &BTreeMap<String, Option<ProfileResult>>,
    ) -> Vec<String> {
        if results.is_empty() {
            profiles.first().cloned().into_iter().collect()
        } else {
            Vec::new()
        }
    }

    fn process_results(
        &self,
        _cycle: &mut CycleState,
        _request: &InferenceRequest,
        results: BTreeMap<String, Option<ProfileResult>>,
    ) -> Result<SchedulingResult, SchedulingError> {
        let Some((name, result)) = results.iter().next() else {
            return Err(SchedulingError::Handler {
                handler: self.typed_name.to_string(),
                reason: "no profile ran".to_owned(),
            });
        };
        if result.as_ref().is_none_or(|r| r.targets.is_empty()) {
            return Err(SchedulingError::NoEndpointFits {
                profile: name.clone(),
            });
        }
        Ok(SchedulingResult {
            primary_profile: name.clone(),
            profile_results: results,
        })
    }
}
