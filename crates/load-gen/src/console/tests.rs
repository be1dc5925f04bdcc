//! Unit tests of `console`.
