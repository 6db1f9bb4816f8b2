//! Provisioning use cases: users, groups, bulk; owns idempotency and the outbox.
//! Nothing here knows axum: the HTTP edge turns [`ProvisioningError`] into a SCIM error body.

pub mod bulk;
pub mod groups;
pub mod outbox;
pub mod reconcile;
pub mod safety;
pub mod users;

use std::time::Duration;

use crate::c4c::{C4cError, ErrorKind};
use crate::scim::error::ScimError;
use crate::store::StoreError;

/// A failed use case: the SCIM error to answer with, and how long the client should wait before
/// retrying when the failure is temporary (503 + Retry-After).
#[derive(Debug, Clone, PartialEq)]
pub struct ProvisioningError {
    pub error: ScimError,
    pub retry_after: Option<Duration>,
}

/// Default wait suggested to identity providers when C4C gives none.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(30);

impl From<ScimError> for ProvisioningError {
    fn from(error: ScimError) -> Self {
        Self {
            error,
            retry_after: None,
        }
    }
}

impl From<crate::mapping::MappingError> for ProvisioningError {
    fn from(error: crate::mapping::MappingError) -> Self {
        ScimError::from(error).into()
    }
}

impl From<StoreError> for ProvisioningError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "store unavailable; answering 503");
                Self {
                    error: ScimError::plain(503, "the bridge's store is unavailable; retry later"),
                    retry_after: Some(DEFAULT_RETRY_AFTER),
                }
            }
            StoreError::Full(detail) => {
                tracing::error!(error = %detail, "store full; answering 503");
                Self {
                    error: ScimError::plain(
                        503,
                        "the bridge's store has no space left (database or disk full); nothing \
                         was recorded: retry after an operator frees space",
                    ),
                    retry_after: Some(DEFAULT_RETRY_AFTER),
                }
            }
            StoreError::Conflict(detail) => ScimError::uniqueness(detail).into(),
            StoreError::NotFound(id) => ScimError::not_found(format!("no resource {id}")).into(),
            StoreError::VersionMismatch => ScimError::precondition_failed(
                "the resource changed while this request ran; read it again and retry",
            )
            .into(),
            other => ScimError::internal(other.to_string()).into(),
        }
    }
}

impl From<C4cError> for ProvisioningError {
    fn from(error: C4cError) -> Self {
        let detail = format!("C4C: {error}");
        match &error {
            C4cError::Throttled { retry_after } | C4cError::Unavailable { retry_after, .. } => {
                Self {
                    error: ScimError::plain(503, detail),
                    retry_after: Some(retry_after.unwrap_or(DEFAULT_RETRY_AFTER)),
                }
            }
            _ => match error.kind() {
                ErrorKind::Timeout | ErrorKind::Transport | ErrorKind::Server => Self {
                    error: ScimError::plain(503, detail),
                    retry_after: Some(DEFAULT_RETRY_AFTER),
                },
                ErrorKind::Validation => match &error {
                    C4cError::Validation { status: 409, .. } => {
                        ScimError::uniqueness(detail).into()
                    }
                    _ => ScimError::invalid_value(detail).into(),
                },
                ErrorKind::NotFound => ScimError::not_found(detail).into(),
                ErrorKind::PreconditionFailed => ScimError::precondition_failed(detail).into(),
                // Credentials, CSRF, configuration: the operator must act; the client cannot.
                _ => ScimError::plain(502, detail).into(),
            },
        }
    }
}

/// Whether C4C holds every value of `fields` (dates compared as dates).
pub(crate) fn holds_fields(employee: &crate::c4c::Employee, fields: &crate::c4c::Fields) -> bool {
    use crate::c4c::odata::value_as_date;
    use serde_json::Value;
    fields.0.iter().all(|(name, wanted)| {
        let held = employee.property(name).unwrap_or(Value::Null);
        held == *wanted
            || matches!(
                (value_as_date(wanted), value_as_date(&held)),
                (Some(a), Some(b)) if a == b
            )
    })
}

/// One async mutex per key (a folded userName, a resource id), created on demand and dropped
/// when nobody holds or waits for it. Serialises the writes of one replica; written here
/// because tokio offers no keyed lock and the map is a few lines.
#[derive(Debug, Default)]
pub(crate) struct KeyedLocks {
    locks:
        std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
}

impl KeyedLocks {
    pub(crate) async fn lock(&self, key: String) -> KeyGuard<'_> {
        let mutex = {
            let mut locks = self
                .locks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            locks.entry(key.clone()).or_default().clone()
        };
        let guard = mutex.clone().lock_owned().await;
        KeyGuard {
            owner: self,
            key,
            mutex,
            guard: Some(guard),
        }
    }
}

pub(crate) struct KeyGuard<'a> {
    owner: &'a KeyedLocks,
    key: String,
    mutex: std::sync::Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut locks = self
            .owner
            .locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Two references left (the map's and ours): nobody else holds or waits; forget the key.
        if std::sync::Arc::strong_count(&self.mutex) == 2 {
            locks.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keyed_locks_serialise_one_key_and_forget_it_afterwards() {
        let locks = std::sync::Arc::new(KeyedLocks::default());
        let held = locks.lock("a".into()).await;
        // Another key is free while "a" is held.
        drop(locks.lock("b".into()).await);
        let waiter = {
            let locks = locks.clone();
            tokio::spawn(async move {
                let _guard = locks.lock("a".into()).await;
            })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(held);
        waiter.await.unwrap();
        assert!(locks.locks.lock().unwrap().is_empty());
    }
}
