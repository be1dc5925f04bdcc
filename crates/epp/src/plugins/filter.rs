//! Filters: keep the endpoints that can serve the request.

pub mod decode_filter;
pub mod label_selector_filter;
pub mod prefill_filter;

pub use decode_filter::DecodeFilter;
pub use label_selector_filter::LabelSelectorFilter;
pub use prefill_filter::PrefillFilter;

/// llm-d's role label on model-server pods.
pub const ROLE_LABEL: &str = "llm-d.ai/role";
