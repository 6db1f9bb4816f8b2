//! The bridge's integration tests: ONE test binary (each file under tests/ links separately).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod auth;
mod bulk;
mod cli;
mod deploy;
mod discovery;
mod groups;
mod harness;
mod mapping_cli;
mod metrics;
mod server;
mod store;
mod users;
