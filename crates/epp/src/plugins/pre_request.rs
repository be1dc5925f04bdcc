//! PreRequest plugins: header work after scheduling.

pub mod prefill_header_handler;

pub use prefill_header_handler::{PREFILL_HEADER, PrefillHeaderHandler};
