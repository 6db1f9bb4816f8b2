//! The C4C client's response parsers, the only part of it that reads untrusted bytes, compiled
//! from the bridge's own sources like `scim`.
#![allow(dead_code, unused_imports)]

#[path = "../../../src/c4c/batch.rs"]
pub mod batch;
#[path = "../../../src/c4c/error.rs"]
pub mod error;
#[path = "../../../src/c4c/odata.rs"]
pub mod odata;
