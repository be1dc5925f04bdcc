//! Unit tests of `html`.
