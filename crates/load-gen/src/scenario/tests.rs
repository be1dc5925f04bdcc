//! Unit tests of `scenario`.
