//! Unit tests of `prompt`.
