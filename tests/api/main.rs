//! The bridge's integration tests: ONE test binary (each file under tests/ links separately).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin_api;
mod admin_auth;
mod admin_oidc;
mod admin_ui_browser;
mod auth;
mod bulk;
mod cli;
mod crash;
mod deploy;
mod discovery;
mod docs;
mod groups;
mod harness;
mod jwt;
mod mapping_cli;
mod metrics;
mod otlp;
mod reconcile;
mod replicas;
mod safety;
mod secrets;
mod server;
mod store;
mod tls;
mod users;
mod users_faults;
mod users_filter;
