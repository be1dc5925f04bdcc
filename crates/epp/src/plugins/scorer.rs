//! Scorers: each endpoint gets a score in `[0, 1]`; the profile sums them by weight.

pub mod kv_cache_utilization_scorer;
pub mod load_aware_scorer;
pub mod precise_prefix_cache_scorer;
pub mod prefix_cache_scorer;
pub mod queue_scorer;

pub use kv_cache_utilization_scorer::KvCacheUtilizationScorer;
pub use load_aware_scorer::LoadAwareScorer;
pub use precise_prefix_cache_scorer::PrecisePrefixCacheScorer;
pub use prefix_cache_scorer::PrefixCacheScorer;
pub use queue_scorer::QueueScorer;

use crate::framework::PrefixCacheMatchInfo;

/// Cycle-state key of the latest [`PrefixCacheMatchInfo`].
pub const PREFIX_MATCH_INFO_KEY: &str = "prefix-cache-match-info";

/// The cycle-state key of one prefix plugin's [`PrefixCacheMatchInfo`].
pub fn prefix_match_info_key(plugin_name: &str) -> String {
    format!("{PREFIX_MATCH_INFO_KEY}/{plugin_name}")
}

/// Writes `info` under the plugin's key and the generic key.
fn write_match_info(
    cycle: &mut crate::framework::CycleState,
    plugin_name: &str,
    info: PrefixCacheMatchInfo,
) {
    cycle.write(&prefix_match_info_key(plugin_name), info.clone());
    cycle.write(PREFIX_MATCH_INFO_KEY, info);
}
