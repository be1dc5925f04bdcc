//! `max-score-picker`: the highest total score, ties broken at random.

use std::sync::Arc;

use parking_lot::Mutex;
use rand::{SeedableRng, rngs::SmallRng, seq::SliceRandom};

use crate::framework::{
    CycleState, Handle, InferenceRequest, Picker, Plugin, PluginError, ProfileResult,
    ScoredEndpoint, TypedName, registry::parameters,
};

/// Shuffles (random tie-break), sorts by score descending and returns the top
/// `maxNumOfEndpoints`:
///
/// ```yaml
/// - type: max-score-picker
///   parameters: { maxNumOfEndpoints: 1 }
/// ```
#[derive(Debug)]
pub struct MaxScorePicker {
    typed_name: TypedName,
    max_num_of_endpoints: usize,
    rng: Mutex<SmallRng>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Parameters {
    /// How many endpoints to return (the gateway tries them in order).
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

impl MaxScorePicker {
    pub const TYPE: &'static str = "max-score-picker";

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
        Ok(Arc::new(MaxScorePicker {
            typed_name: TypedName::new(Self::TYPE, name),
            max_num_of_endpoints: parameters.max_num_of_endpoints,
            rng: Mutex::new(SmallRng::from_os_rng()),
        }))
    }
}

impl Plugin for MaxScorePicker {
    fn typed_name(&self) -> &TypedName {
        &self.typed_name
    }
    fn as_picker(&self) -> Option<&dyn Picker> {
        Some(self)
    }
}

impl Picker for MaxScorePicker {
    fn pick(
        &self,
        _cycle: &mut CycleState,
        _request: &InferenceRequest,
        mut scored: Vec<ScoredEndpoint>,
    ) -> ProfileResult {
        scored.shuffle(&mut *self.rng.lock());
        scored.sort_by(|a, b| b.score.total_cmp(&a.score));
        ProfileResult {
            targets: scored
                .into_iter()
                .take(self.max_num_of_endpoints)
                .map(|scored| scored.endpoint)
                .collect(),
        }
    }
}
