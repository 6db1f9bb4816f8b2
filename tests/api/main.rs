//! The bridge's integration tests: ONE test binary (each file under tests/ links separately).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod auth;
mod cli;
mod deploy;
mod discovery;
mod docs;
mod harness;
mod mapping_cli;
mod metrics;
mod otlp;
mod replicas;
mod safety;
mod server;
mod store;
mod users;
mod users_faults;
mod users_filter;
