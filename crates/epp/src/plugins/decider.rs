//! P/D deciders: whether a request gets a prefill leg, asked by `pd-profile-handler` through
//! its `deciderPluginName`.

mod always_disagg_pd_decider;
mod prefix_based_pd_decider;

pub use always_disagg_pd_decider::AlwaysDisaggPdDecider;
pub use prefix_based_pd_decider::PrefixBasedPdDecider;
