//! Unit tests of `schedule`.
