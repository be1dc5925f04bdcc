//! Admitters: refuse requests before scheduling (a 429 to the client).

pub mod saturation_admitter;

pub use saturation_admitter::SaturationAdmitter;
