//! `prefix-based-pd-decider`: the token-based P/D decision of llm-d (2026 semantics).

use std::sync::Arc;

use crate::framework::{
    CycleState, Handle, InferenceRequest, PdDecider, PdDecision, Plugin, PluginError,
    PrefixCacheMatchInfo, TypedName, registry::parameters,
};
use crate::plugins::scorer::{PREFIX_MATCH_INFO_KEY, prefix_match_info_key};

/// Disaggregates when the prompt's tokens not already cached on the chosen decode endpoint
/// number at least `nonCachedTokens` (0 never disaggregates), and the prompt has at least
/// `promptTokens` tokens (0: no minimum). Tokens are exact, from the request's tokenization;
/// the cached ones are the decode endpoint's matched prefix blocks as the prefix scorer named
/// `prefixPluginName` saw them (no match info: nothing cached).
///
/// ```yaml
/// - type: prefix-based-pd-decider
///   parameters: { nonCachedTokens: 256, promptTokens: 0, prefixPluginName: precise-prefix-cache-scorer }
/// ```
#[derive(Debug)]
pub struct PrefixBasedPdDecider {
    typed_name: TypedName,
    parameters: Parameters,
    tokenizer: tokenizer::Tokenizer,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Parameters {
    #[serde(default)]
    non_cached_tokens: u64,
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default = "default_prefix_plugin")]
    prefix_plugin_name: String,
}

fn default_prefix_plugin() -> String {
    "precise-prefix-cache-scorer".to_owned()
}

impl Default for Parameters {
    fn default() -> Self {
        Parameters {
            non_cached_tokens: 0,
            prompt_tokens: 0,
            prefix_plugin_name: default_prefix_plugin(),
        }
    }
}

impl PrefixBasedPdDecider {
    pub const TYPE: &'static str = "prefix-based-pd-decider";

    pub fn factory(
        name: &str,
        value: serde_norway::Value,
        handle: &Handle,
    ) -> Result<Arc<dyn Plugin>, PluginError> {
        Ok(Arc::new(PrefixBasedPdDecider {
            typed_name: TypedName::new(Self::TYPE, name),
            parameters: parameters(value)?,
            tokenizer: handle.tokenizer.clone(),
        }))
    }

    /// Tokens of the prompt already cached on `decode_address`, in whole blocks.
    fn cached_tokens(&self, cycle: &CycleState, decode_address: &str) -> u64 {
        cycle
            .read::<PrefixCacheMatchInfo>(&prefix_match_info_key(
                &self.parameters.prefix_plugin_name,
            ))
            .or_else(|| cycle.read::<PrefixCacheMatchInfo>(PREFIX_MATCH_INFO_KEY))
            .map_or(0, |info| info.cached_tokens(decode_address))
    }
}

impl Plugin for PrefixBasedPdDecider {
    fn typed_name(&self) -> &TypedName {
        &self.typed_name
    }
    fn as_pd_decider(&self) -> Option<&dyn PdDecider> {
        Some(self)
    }
}

impl PdDecider for PrefixBasedPdDecider {
    fn decide(
        &self,
        cycle: &CycleState,
        request: &InferenceRequest,
        decode_address: &str,
    ) -> PdDecision {
        let threshold = self.parameters.non_cached_tokens;
        // A prompt that cannot be tokenized has no tokens to move: decode it where it is.
        let prompt = request
            .tokens(&self.tokenizer)
            .map_or(0, |tokens| tokens.len() as u64);
        let cached = self.cached_tokens(cycle, decode_address).min(prompt);
        let cached_fraction = if prompt == 0 {
            0.0
        } else {
            cached as f64 / prompt as f64
        };
        let disaggregate = threshold > 0
            && prompt >= self.parameters.prompt_tokens
            && prompt - cached >= threshold;
        PdDecision {
            disaggregate,
            cached_fraction,
            threshold,
        }
    }
}
