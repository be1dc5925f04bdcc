//! Unit tests of `report`.
