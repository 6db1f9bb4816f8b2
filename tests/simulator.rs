#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The C4C simulator over real HTTP on an ephemeral port.

mod simulator {
    mod auth_csrf;
    mod batch;
    mod faults;
    pub mod helpers;
    mod pyodata;
    mod reads;
    mod tls_oauth;
    mod writes;
}
