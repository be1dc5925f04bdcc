//! Unit tests of `config`.
