//! The plugin vocabulary: traits and value types, no implementations.
//!
//! A plugin is one `Arc<dyn Plugin>` that may fill several roles; the role accessors
//! (`as_filter`, `as_scorer`, ...) return `Some` for the roles it implements, the way GIE's
//! loader discovers roles by interface assertion. Scheduling roles live in [`scheduling`],
//! request-control roles (admission, pre-request) in [`request_control`], and the factory
//! table in [`registry`].

pub mod plugin;
pub mod registry;
pub mod request_control;
pub mod scheduling;

pub use plugin::{Plugin, Stability, TypedName};
pub use registry::{Factory, Handle, PluginError, Registry};
pub use request_control::{Admitter, PreRequest};
pub use scheduling::{
    CycleState, Endpoint, EndpointMetrics, Filter, InferenceRequest, PdDecider, PdDecision, Picker,
    PrefixCacheMatchInfo, ProfileHandler, ProfileResult, Prompt, SchedulingError, SchedulingResult,
    ScoredEndpoint, Scorer, ScorerCategory,
};
