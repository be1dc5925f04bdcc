//! Profile handlers: which profiles run, and which result the gateway gets.

pub mod pd_profile_handler;
pub mod single_profile_handler;

pub use pd_profile_handler::PdProfileHandler;
pub use single_profile_handler::SingleProfileHandler;
