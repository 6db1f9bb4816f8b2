//! Integration tests of the C4C OData client against the simulator (one test binary).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "c4c_client/support.rs"]
mod support;

#[path = "c4c_client/auth.rs"]
mod auth;
#[path = "c4c_client/batch.rs"]
mod batch;
#[path = "c4c_client/csrf.rs"]
mod csrf;
#[path = "c4c_client/errors.rs"]
mod errors;
#[path = "c4c_client/reads.rs"]
mod reads;
#[path = "c4c_client/writes.rs"]
mod writes;
