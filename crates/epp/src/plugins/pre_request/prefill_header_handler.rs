//! `prefill-header-handler`: tells the P/D sidecar where to prefill.

use std::sync::Arc;

use crate::framework::{
    Handle, InferenceRequest, Plugin, PluginError, PreRequest, SchedulingResult, TypedName,
    registry::parameters,
};

/// The header the P/D sidecar reads.
pub const PREFILL_HEADER: &str = "x-prefiller-host-port";

/// Sets `x-prefiller-host-port: <ip:port>` when the prefill profile picked an endpoint, and
/// removes a client-supplied value otherwise:
///
/// ```yaml
/// - type: prefill-header-handler
///   parameters: { prefillProfile: prefill }
/// ```
#[derive(Debug)]
pub struct PrefillHeaderHandler {
    typed_name: TypedName,
    prefill_profile: String,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Parameters {
    #[serde(default = "default_prefill")]
    prefill_profile: String,
}

fn default_prefill() -> String {
    "prefill".to_owned()
}

impl Default for Parameters {
    fn default() -> Self {
        Parameters {
            prefill_profile: default_prefill(),
        }
    }
}

impl PrefillHeaderHandler {
    pub const TYPE: &'static str = "prefill-header-handler";

    pub fn factory(
        name: &str,
        value: serde_norway::Value,
        _handle: &Handle,
    ) -> Result<Arc<dyn Plugin>, PluginError> {
        let parameters: Parameters = parameters(value)?;
        Ok(Arc::new(PrefillHeaderHandler {
            typed_name: TypedName::new(Self::TYPE, name),
            prefill_profile: parameters.prefill_profile,
        }))
    }
}

impl Plugin for PrefillHeaderHandler {
    fn typed_name(&self) -> &TypedName {
        &self.typed_name
    }
    fn as_pre_request(&self) -> Option<&dyn PreRequest> {
        Some(self)
    }
}

impl PreRequest for PrefillHeaderHandler {
    fn pre_request(&self, request: &mut InferenceRequest, result: &SchedulingResult) {
        request.headers.remove(PREFILL_HEADER);
        if let Some(target) = result
            .profile_results
            .get(&self.prefill_profile)
            .and_then(Option::as_ref)
            .and_then(|r| r.targets.first())
        {
            request
                .headers
                .insert(PREFILL_HEADER.to_owned(), target.address.clone());
        }
    }
}
