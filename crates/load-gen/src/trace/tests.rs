//! Unit tests of `trace`.
