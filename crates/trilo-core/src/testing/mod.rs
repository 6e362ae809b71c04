//! Test support: the store conformance suite and fixtures.
//!
//! Every backend runs [`conformance::all`] (SQLite always, PostgreSQL when configured); the
//! cases panic on failure, like tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod conformance;
pub mod fixtures;
