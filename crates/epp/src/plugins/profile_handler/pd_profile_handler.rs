//! `pd-profile-handler`: llm-d v0.4's prefill/decode decision, by uncached prompt bytes, or
//! v0.6's, by whatever P/D decider `deciderPluginName` names.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use opentelemetry::KeyValue;
use opentelemetry::trace::Span as _;

use metrics_schema::spans::{EPP_PROFILE_HANDLER_PICK, attrs};

use crate::framework::{
    CycleState, Handle, InferenceRequest, PdDecision, Plugin, PluginError, PrefixCacheMatchInfo,
    ProfileHandler, ProfileResult, SchedulingError, SchedulingResult, TypedName,
    registry::parameters,
};
use crate::plugins::scorer::{PREFIX_MATCH_INFO_KEY, prefix_match_info_key};
use crate::telemetry::Metrics;

const DECISION_KEY: &str = "pd-profile-handler/decision";

/// Runs the decode profile first; then, unless the part of the prompt not already cached on
/// the chosen decode endpoint is shorter than `threshold` bytes, the prefill profile.
/// `threshold: 0` always disaggregates. The cached part comes from the prefix scorer named
/// by `prefixPluginName` (approximate or precise). With `deciderPluginName` the named P/D
/// decider (`prefix-based-pd-decider`, `always-disagg-pd-decider`) decides instead, as in
/// llm-d v0.6. Decode is primary; the prefill pick goes to `prefill-header-handler`. Each
/// decision is counted in `llm_d_epp_pd_decision_total` and traced as
/// `llm_d.epp.profile_handler.pick`.
///
/// ```yaml
/// - type: pd-profile-handler
///   parameters: { threshold: 100, decodeProfile: decode, prefillProfile: prefill,
///                 prefixPluginName: prefix-cache-scorer }
/// # or, by tokens:
/// - type: prefix-based-pd-decider
///   parameters: { nonCachedTokens: 256 }
/// - type: pd-profile-handler
///   parameters: { deciderPluginName: prefix-based-pd-decider }
/// ```
pub struct PdProfileHandler {
    typed_name: TypedName,
    parameters: Parameters,
    metrics: Arc<Metrics>,
    /// The instance `deciderPluginName` names, resolved by [`Plugin::bind`].
    decider: OnceLock<Arc<dyn Plugin>>,
}

impl std::fmt::Debug for PdProfileHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PdProfileHandler")
            .field("typed_name", &self.typed_name)
            .field("parameters", &self.parameters)
            .finish()
    }
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Parameters {
    /// Uncached prompt bytes at or above which prefill is disaggregated.
    #[serde(default)]
    threshold: u64,
    #[serde(default = "default_decode")]
    decode_profile: String,
    #[serde(default = "default_prefill")]
    prefill_profile: String,
    /// The prefix scorer instance whose matches count as cached.
    #[serde(default = "default_prefix_plugin")]
    prefix_plugin_name: String,
    /// v0.4's block size of the approximate scorer; accepted, the scorer's own is used.
    #[serde(default)]
    #[allow(dead_code)]
    hash_block_size: Option<u64>,
    /// v0.6: the P/D decider instance that decides instead of `threshold`.
    #[serde(default)]
    decider_plugin_name: Option<String>,
}

fn default_decode() -> String {
    "decode".to_owned()
}
fn default_prefill() -> String {
    "prefill".to_owned()
}
fn default_prefix_plugin() -> String {
    "prefix-cache-scorer".to_owned()
}

impl Default for Parameters {
    fn default() -> Self {
        Parameters {
            threshold: 0,
            decode_profile: default_decode(),
            prefill_profile: default_prefill(),
            prefix_plugin_name: default_prefix_plugin(),
            hash_block_size: None,
            decider_plugin_name: None,
        }
    }
}

impl PdProfileHandler {
    pub const TYPE: &'static str = "pd-profile-handler";

    pub fn factory(
        name: &str,
        value: serde_norway::Value,
        handle: &Handle,
    ) -> Result<Arc<dyn Plugin>, PluginError> {
        let parameters: Parameters = parameters(value)?;
        if parameters.decode_profile == parameters.prefill_profile {
            return Err(PluginError::Invalid {
                parameter: "prefillProfile",
                reason: "must differ from decodeProfile".to_owned(),
            });
        }
        if parameters.decider_plugin_name.is_some() && parameters.threshold != 0 {
            return Err(PluginError::Invalid {
                parameter: "threshold",
                reason: "a deciderPluginName decides instead; set one of the two".to_owned(),
            });
        }
        Ok(Arc::new(PdProfileHandler {
            typed_name: TypedName::new(Self::TYPE, name),
            parameters,
            metrics: Arc::clone(&handle.metrics),
            decider: OnceLock::new(),
        }))
    }

    fn cached_ratio(&self, cycle: &CycleState, decode_address: &str, input_units: u64) -> f64 {
        let info = cycle
            .read::<PrefixCacheMatchInfo>(&prefix_match_info_key(
                &self.parameters.prefix_plugin_name,
            ))
            .or_else(|| cycle.read::<PrefixCacheMatchInfo>(PREFIX_MATCH_INFO_KEY));
        let Some(info) = info else {
            return 0.0;
        };
        let matched = info
            .matched_blocks
            .get(decode_address)
            .copied()
            .unwrap_or(0);
        let units = if info.total_blocks > 0 {
            info.total_blocks * info.block_size
        } else {
            input_units
        };
        if units == 0 {
            0.0
        } else {
            ((matched * info.block_size) as f64 / units as f64).min(1.0)
        }
    }
}

impl Plugin for PdProfileHandler {
    fn typed_name(&self) -> &TypedName {
        &self.typed_name
    }
    fn as_profile_handler(&self) -> Option<&dyn ProfileHandler> {
        Some(self)
    }
    fn bind(&self, plugins: &BTreeMap<String, Arc<dyn Plugin>>) -> Result<(), String> {
        let Some(name) = &self.parameters.decider_plugin_name else {
            return Ok(());
        };
        let plugin = plugins
            .get(name)
            .ok_or_else(|| format!("deciderPluginName {name:?} is not a declared plugin"))?;
        if plugin.as_pd_decider().is_none() {
            return Err(format!(
                "deciderPluginName {name:?} is a {}, not a P/D decider",
                plugin.typed_name().plugin_type
            ));
        }
        let _ = self.decider.set(Arc::clone(plugin));
        Ok(())
    }
}

impl ProfileHandler for PdProfileHandler {
    fn required_profiles(&self) -> Vec<String> {
        vec![
            self.parameters.decode_profile.clone(),
            self.parameters.prefill_profile.clone(),
        ]
    }

    fn pick(
        &self,
        cycle: &mut CycleState,
        request: &InferenceRequest,
        _profiles: &[String],
        results: &BTreeMap<String, Option<ProfileResult>>,
    ) -> Vec<String> {
        let decode = &self.parameters.decode_profile;
        let Some(decode_result) = results.get(decode) else {
            return vec![decode.clone()];
        };
        if results.contains_key(&self.parameters.prefill_profile) {
            return Vec::new();
        }
        let Some(decode_target) = decode_result.as_ref().and_then(|r| r.targets.first()) else {
            return Vec::new();
        };
        let input_bytes = request.user_input().len() as u64;
        let decided = match self.decider.get().and_then(|plugin| plugin.as_pd_decider()) {
            Some(decider) => decider.decide(cycle, request, &decode_target.address),
            None => {
                let cached_fraction = self.cached_ratio(cycle, &decode_target.address, input_bytes);
                let uncached = ((1.0 - cached_fraction) * input_bytes as f64) as u64;
                PdDecision {
                    disaggregate: self.parameters.threshold == 0
                        || uncached >= self.parameters.threshold,
                    cached_fraction,
                    threshold: self.parameters.threshold,
                }
            }
        };
        let (prefill, cached_ratio) = (decided.disaggregate, decided.cached_fraction);
        let (decision, decision_type) = if prefill {
            ("prefill_decode", "prefill-decode")
        } else {
            ("decode_only", "decode-only")
        };
        self.metrics
            .pd_decision
            .inc(&[request.model.as_str(), decision_type]);
        cycle.write(DECISION_KEY, decision);
        if let Some(mut span) = cycle.start_span(&EPP_PROFILE_HANDLER_PICK) {
            span.set_attributes([
                KeyValue::new(attrs::PROFILE_HANDLER_DECISION.key, decision),
                KeyValue::new(attrs::PROFILE_HANDLER_CACHE_HIT_RATIO.key, cached_ratio),
                KeyValue::new(
                    attrs::PROFILE_HANDLER_PD_THRESHOLD.key,
                    decided.threshold as i64,
                ),
                KeyValue::new(
                    attrs::PROFILE_HANDLER_USER_INPUT_BYTES.key,
                    input_bytes as i64,
                ),
            ]);
            span.end();
        }
        if prefill {
            vec![self.parameters.prefill_profile.clone()]
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
        let decode = &self.parameters.decode_profile;
        if results
            .get(decode)
            .and_then(Option::as_ref)
            .is_none_or(|r| r.targets.is_empty())
        {
            return Err(SchedulingError::NoEndpointFits {
                profile: decode.clone(),
            });
        }
        Ok(SchedulingResult {
            primary_profile: decode.clone(),
            profile_results: results,
        })
    }
}
