//! Metrics hook: one callback per HTTP call to the tenant, no metrics crate needed.

use std::time::Duration;

use super::error::ErrorKind;

/// What an HTTP call was for (low cardinality, for labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallKind {
    Read,
    Create,
    Update,
    Delete,
    Batch,
    Metadata,
    CsrfFetch,
    Token,
}

impl CallKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Batch => "batch",
            Self::Metadata => "metadata",
            Self::CsrfFetch => "csrf_fetch",
            Self::Token => "token",
        }
    }
}

/// Receives one event per HTTP attempt (retries are separate attempts).
/// `status` is `None` when no response arrived.
pub trait C4cObserver: Send + Sync {
    fn on_call(
        &self,
        kind: CallKind,
        status: Option<u16>,
        duration: Duration,
        error: Option<ErrorKind>,
    );

    /// A failed attempt of `kind` is about to be retried after a backoff.
    fn on_retry(&self, _kind: CallKind, _error: ErrorKind) {}

    /// A CSRF token was obtained: `piggyback` on a GET made anyway, or by a dedicated fetch.
    fn on_csrf_token(&self, _piggyback: bool) {}
}

/// The default: observes nothing.
#[derive(Debug, Default)]
pub struct NoopObserver;

impl C4cObserver for NoopObserver {
    fn on_call(&self, _: CallKind, _: Option<u16>, _: Duration, _: Option<ErrorKind>) {}
}
