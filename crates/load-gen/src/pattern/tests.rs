//! Unit tests of `pattern`.
