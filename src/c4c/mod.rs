//! C4C OData v2 client. Knows nothing of SCIM.
//!
//! [`C4cClient`] talks to one tenant's `c4codataapi` service: every auth mode, a CSRF session
//! shared by all tasks, paging over `__next`, `$batch`, `$metadata`, typed errors, retries that
//! never duplicate a create. See docs/c4c-client.md.

mod auth;
pub mod batch;
mod client;
pub mod config;
pub mod error;
pub mod filter;
#[cfg(test)]
mod fuzz_seeds;
pub mod metadata;
pub mod model;
pub mod observer;
pub mod odata;
mod retry;
mod saml;
mod tls;
mod transport;

pub use batch::{BatchChange, BatchPart, BatchPartResult, BatchResponse, ChangeMethod};
pub use client::{C4cClient, DeltaCursor, EmployeePages};
pub use config::{AuthConfig, C4cConfig, CsrfMode, RetryConfig, TenantProfile, TimeoutConfig};
pub use error::{C4cError, ErrorKind};
pub use filter::{Filter, Literal};
pub use metadata::{Metadata, WriteKind};
pub use model::{
    BusinessKey, Employee, EmployeeQuery, Fields, NewOrgUnitAssignment, Order, OrgUnitAssignment,
    RoleAssignment,
};
pub use observer::{C4cObserver, CallKind, NoopObserver};
pub use odata::ETag;
