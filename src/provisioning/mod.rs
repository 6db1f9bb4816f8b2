//! Provisioning use cases: users, groups, bulk; owns idempotency and the outbox.
//! Nothing here knows axum: the HTTP edge turns [`ProvisioningError`] into a SCIM error body.

pub mod bulk;
pub mod groups;
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
            StoreError::Unavailable(_) => Self {
                error: ScimError::plain(503, "the bridge's store is unavailable; retry later"),
                retry_after: Some(DEFAULT_RETRY_AFTER),
            },
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

/// A lock shared by every replica on one PostgreSQL store: a transaction-scoped advisory lock,
/// released by commit, rollback or a dropped connection, so a cancelled request cannot leave
/// it held. SQLite is one process's embedded store: the in-process [`KeyedLocks`] suffice.
/// (Belongs in `store` once that module grows a locking API.)
pub(crate) struct ReplicaLock {
    transaction: Option<sqlx::Transaction<'static, sqlx::Any>>,
}

impl ReplicaLock {
    pub(crate) async fn acquire(
        store: &crate::store::Store,
        key: &str,
    ) -> Result<Self, crate::store::StoreError> {
        if store.kind() != crate::store::StoreKind::Postgres {
            return Ok(Self { transaction: None });
        }
        let mut transaction = store.pool().begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(lock_id(key))
            .execute(&mut *transaction)
            .await?;
        Ok(Self {
            transaction: Some(transaction),
        })
    }

    /// Ends the transaction now (dropping the lock does the same, by rollback).
    pub(crate) async fn release(mut self) {
        if let Some(transaction) = self.transaction.take()
            && let Err(error) = transaction.commit().await
        {
            tracing::warn!(%error, "releasing an advisory lock failed; the connection drops it");
        }
    }
}

/// A stable 64-bit lock id for a key (the first 8 bytes of its SHA-256).
fn lock_id(key: &str) -> i64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    let mut bytes = [0_u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
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
