//! c4c-scim-bridge: a SCIM 2.0 server that provisions identities into SAP Cloud for Customer.
//!
//! Layers (arrows = "may use"): `http → provisioning → {mapping, c4c, store, scim}`;
//! `mapping → scim` (types only); `c4c`, `store` and `scim` use none of the other layers;
//! `sim` is a stand-alone C4C OData v2 simulator that shares no code with `c4c`, so that its
//! strictness does not depend on our client.

pub mod app;
pub mod auth;
pub mod c4c;
pub mod cli;
pub mod config;
pub mod config_reference;
pub mod http;
pub mod mapping;
pub mod metrics;
pub mod provisioning;
pub mod scim;
pub mod sim;
pub mod store;
pub mod telemetry;
