//! Pickers: choose the targets among scored endpoints.

pub mod max_score_picker;
pub mod random_picker;

pub use max_score_picker::MaxScorePicker;
pub use random_picker::RandomPicker;

/// Upstream's default number of endpoints a picker returns.
pub const DEFAULT_MAX_NUM_OF_ENDPOINTS: usize = 1;

fn default_max_num_of_endpoints() -> usize {
    DEFAULT_MAX_NUM_OF_ENDPOINTS
}
