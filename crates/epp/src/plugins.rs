//! The in-tree plugins and [`register_in_tree`], the single list of their types.

pub mod admitter;
pub mod decider;
pub mod filter;
pub mod picker;
pub mod pre_request;
pub mod profile_handler;
pub mod scorer;

#[cfg(test)]
mod tests;

use crate::framework::{Registry, Stability};

/// Registers every in-tree plugin type with its stability.
pub fn register_in_tree(registry: &mut Registry) {
    use Stability::{Alpha, Beta, Stable};
    registry.register(
        profile_handler::SingleProfileHandler::TYPE,
        Stable,
        profile_handler::SingleProfileHandler::factory,
    );
    registry.register(
        profile_handler::PdProfileHandler::TYPE,
        Beta,
        profile_handler::PdProfileHandler::factory,
    );
    registry.register(
        decider::PrefixBasedPdDecider::TYPE,
        Beta,
        decider::PrefixBasedPdDecider::factory,
    );
    registry.register(
        decider::AlwaysDisaggPdDecider::TYPE,
        Beta,
        decider::AlwaysDisaggPdDecider::factory,
    );
    registry.register(
        filter::DecodeFilter::TYPE,
        Stable,
        filter::DecodeFilter::factory,
    );
    registry.register(
        filter::PrefillFilter::TYPE,
        Stable,
        filter::PrefillFilter::factory,
    );
    registry.register(
        filter::LabelSelectorFilter::TYPE,
        Stable,
        filter::LabelSelectorFilter::factory,
    );
    registry.register(
        filter::LabelSelectorFilter::ALIAS,
        Stable,
        filter::LabelSelectorFilter::factory,
    );
    registry.register(
        scorer::PrecisePrefixCacheScorer::TYPE,
        Beta,
        scorer::PrecisePrefixCacheScorer::factory,
    );
    registry.register(
        scorer::PrefixCacheScorer::TYPE,
        Stable,
        scorer::PrefixCacheScorer::factory,
    );
    registry.register(
        scorer::QueueScorer::TYPE,
        Stable,
        scorer::QueueScorer::factory,
    );
    registry.register(
        scorer::KvCacheUtilizationScorer::TYPE,
        Stable,
        scorer::KvCacheUtilizationScorer::factory,
    );
    registry.register(
        scorer::LoadAwareScorer::TYPE,
        Stable,
        scorer::LoadAwareScorer::factory,
    );
    registry.register(
        picker::MaxScorePicker::TYPE,
        Stable,
        picker::MaxScorePicker::factory,
    );
    registry.register(
        picker::RandomPicker::TYPE,
        Stable,
        picker::RandomPicker::factory,
    );
    registry.register(
        pre_request::PrefillHeaderHandler::TYPE,
        Beta,
        pre_request::PrefillHeaderHandler::factory,
    );
    registry.register(
        admitter::SaturationAdmitter::TYPE,
        Alpha,
        admitter::SaturationAdmitter::factory,
    );
}

/// A registry holding the in-tree types.
pub fn in_tree() -> Registry {
    let mut registry = Registry::default();
    register_in_tree(&mut registry);
    registry
}
