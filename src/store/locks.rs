//! A lock shared by every replica on one store, for serialising writes to one key.

use super::{Store, StoreError, StoreKind};

/// On PostgreSQL a transaction-scoped advisory lock, released by commit, rollback or a dropped
/// connection, so a cancelled request cannot leave it held. SQLite is one process's embedded
/// store: callers' in-process locks suffice and this holds nothing.
pub struct ReplicaLock {
    transaction: Option<sqlx::Transaction<'static, sqlx::Any>>,
}

impl Store {
    /// Waits for the lock on `key` across replicas.
    pub async fn lock_across_replicas(&self, key: &str) -> Result<ReplicaLock, StoreError> {
        self.lock_on(self.lock_pool(), key).await
    }

    /// The same, for a lock taken while holding one of [`Store::lock_across_replicas`] (the
    /// circuit breaker's admission, inside a user's lock). Its transaction is on the main pool:
    /// every connection of the lock pool may be held by requests that wait for this very lock.
    /// Callers queue in memory first, so that at most one of them per process waits here and
    /// holds a connection of the main pool.
    pub async fn lock_across_replicas_inside_another(
        &self,
        key: &str,
    ) -> Result<ReplicaLock, StoreError> {
        self.lock_on(self.pool(), key).await
    }

    async fn lock_on(&self, pool: &sqlx::AnyPool, key: &str) -> Result<ReplicaLock, StoreError> {
        if self.kind() != StoreKind::Postgres {
            return Ok(ReplicaLock { transaction: None });
        }
        let mut transaction = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(lock_id(key))
            .execute(&mut *transaction)
            .await?;
        Ok(ReplicaLock {
            transaction: Some(transaction),
        })
    }

    /// Waits for the locks on every key of `keys` across replicas, held together until release.
    /// They are taken in one fixed order (by lock id), so two callers that want overlapping sets
    /// cannot deadlock.
    pub async fn lock_many_across_replicas(
        &self,
        keys: &[String],
    ) -> Result<ReplicaLock, StoreError> {
        if self.kind() != StoreKind::Postgres || keys.is_empty() {
            return Ok(ReplicaLock { transaction: None });
        }
        let mut ids: Vec<i64> = keys.iter().map(|key| lock_id(key)).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut transaction = self.lock_pool().begin().await?;
        for id in ids {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(id)
                .execute(&mut *transaction)
                .await?;
        }
        Ok(ReplicaLock {
            transaction: Some(transaction),
        })
    }

    /// Takes the lock on `key` if no replica holds it; `None` when one does (on SQLite always
    /// taken: one process owns the file). For jobs that one replica at a time should run.
    pub async fn try_lock_across_replicas(
        &self,
        key: &str,
    ) -> Result<Option<ReplicaLock>, StoreError> {
        if self.kind() != StoreKind::Postgres {
            return Ok(Some(ReplicaLock { transaction: None }));
        }
        let mut transaction = self.lock_pool().begin().await?;
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(lock_id(key))
            .fetch_one(&mut *transaction)
            .await?;
        Ok(taken.then_some(ReplicaLock {
            transaction: Some(transaction),
        }))
    }
}

impl ReplicaLock {
    /// Ends the transaction now (dropping the lock does the same, by rollback).
    pub async fn release(mut self) {
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

    #[test]
    fn lock_ids_are_stable_and_distinct() {
        assert_eq!(lock_id("User:a"), lock_id("User:a"));
        assert_ne!(lock_id("User:a"), lock_id("User:b"));
    }
}
