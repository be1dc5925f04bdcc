//! `random-picker`: uniformly random endpoints, ignoring scores.

use std::sync::Arc;

use parking_lot::Mutex;
use rand::{SeedableRng, rngs::SmallRng, seq::SliceRandom};

use crate::framework::{
    CycleState, Handle, InferenceRequest, Picker, Plugin, PluginError, ProfileResult,
    ScoredEndpoint, TypedName, registry::parameters,
};

/// Picks `maxNumOfEndpoints` endpoints uniformly at random; the baseline that prefix-aware
/// routing is measured against:
///
/// ```yaml
/// - type: random-picker
///   parameters: { maxNumOfEndpoints: 1 }
/// ```
#[derive(Debug)]
pub struct RandomPicker {
    typed_name: TypedName,
    max_num_of_endpoints: usize,
    rng: Mutex<SmallRng>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Parameters {
    #[serde(default = "super::default_max_num_of_endpoints")]
    max_num_of_endpoints: usize,
}

impl Default for Parameters {
    fn default() -> Self {
        Parameters {
            max_num_of_endpoints: super::DEFAULT_MAX_NUM_OF_ENDPOINTS,
        }
    }
}

impl RandomPicker {
    pub const TYPE: &'static str = "random-picker";

    pub fn factory(
        name: &str,
        value: serde_norway::Value,
        _handle: &Handle,
    ) -> Result<Arc<dyn Plugin>, PluginError> {
        let parameters: Parameters = parameters(value)?;
        if parameters.max_num_of_endpoints == 0 {
            return Err(PluginError::Invalid {
                parameter: "maxNumOfEndpoints",
                reason: "must be at least 1".to_owned(),
            });
        }
        Ok(Arc::new(RandomPicker {
            typed_name: TypedName::new(Self::TYPE, name),
            max_num_of_endpoints: parameters.max_num_of_endpoints,
            rng: Mutex::new(SmallRng::from_os_rng()),
        }))
    }
}

impl Plugin for RandomPicker {
    fn typed_name(&self) -> &TypedName {
        &self.typed_name
    }
    fn as_picker(&self) -> Option<&dyn Picker> {
        Some(self)
    }
}

impl Picker for RandomPicker {
    fn pick(
        &self,
        _cycle: &mut CycleState,
        _request: &InferenceRequest,
        mut scored: Vec<ScoredEndpoint>,
    ) -> ProfileResult {
        scored.shuffle(&mut *self.rng.lock());
        ProfileResult {
            targets: scored
                .into_iter()
                .take(self.max_num_of_endpoints)
                .map(|scored| scored.endpoint)
                .collect(),
        }
    }
}
