//! Unit tests of `sse`.
