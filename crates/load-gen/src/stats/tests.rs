//! Unit tests of `stats`.
