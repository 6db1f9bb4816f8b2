//! Rows of SCIM client bearer tokens (only hashes are stored).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};

/// How long a token row read from the store answers for it. Every SCIM request checks its token;
/// without this, each one is a store read. A revocation made through this process (admin API or
/// UI) empties the cache at once; one made by another process (the `token revoke` command, another
/// replica) takes effect within this time.
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(1);

/// Bounds the cache: only tokens that exist are cached, and a deployment has a handful.
const TOKEN_CACHE_MAX: usize = 1024;

#[derive(Default)]
pub(super) struct TokenCache {
    rows: Mutex<HashMap<String, (Instant, TokenRow)>>,
}

impl TokenCache {
    fn get(&self, id: &str) -> Option<TokenRow> {
        let rows = self.rows.lock().ok()?;
        rows.get(id)
            .filter(|(read_at, _)| read_at.elapsed() < TOKEN_CACHE_TTL)
            .map(|(_, row)| row.clone())
    }

    fn put(&self, row: &TokenRow) {
        if let Ok(mut rows) = self.rows.lock() {
            if rows.len() >= TOKEN_CACHE_MAX {
                rows.clear();
            }
            rows.insert(row.id.clone(), (Instant::now(), row.clone()));
        }
    }

    fn touched(&self, id: &str, at: i64) {
        if let Ok(mut rows) = self.rows.lock()
            && let Some((_, row)) = rows.get_mut(id)
        {
            row.last_used_at = Some(at);
        }
    }

    fn clear(&self) {
        if let Ok(mut rows) = self.rows.lock() {
            rows.clear();
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub secret_hash: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

const COLUMNS: &str = "id, name, secret_hash, created_at, expires_at, last_used_at, revoked_at";

fn from_row(row: &AnyRow) -> Result<TokenRow, StoreError> {
    Ok(TokenRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        secret_hash: row.try_get("secret_hash")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

impl Store {
    /// Stores a new token; a live token with the same name is a `Conflict`.
    pub async fn insert_token(&self, token: &TokenRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_tokens (id, name, secret_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token.id.clone())
        .bind(token.name.clone())
        .bind(token.secret_hash.clone())
        .bind(token.created_at)
        .bind(token.expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The token row, from the cache when read less than [`TOKEN_CACHE_TTL`] ago.
    pub async fn get_token(&self, id: &str) -> Result<Option<TokenRow>, StoreError> {
        if let Some(row) = self.token_cache.get(id) {
            return Ok(Some(row));
        }
        let row = self.read_token(id).await?;
        if let Some(row) = &row {
            self.token_cache.put(row);
        }
        Ok(row)
    }

    async fn read_token(&self, id: &str) -> Result<Option<TokenRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM api_tokens WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id.to_owned())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Every token, revoked ones included, newest first.
    pub async fn list_tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM api_tokens ORDER BY created_at DESC, id");
        let rows = sqlx::query(&sql).fetch_all(self.pool()).await?;
        rows.iter().map(from_row).collect()
    }

    /// Revokes the live token with this id or name; returns how many were revoked (0 or 1).
    pub async fn revoke_token(&self, id_or_name: &str, at: i64) -> Result<u64, StoreError> {
        let revoked = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 \
             WHERE revoked_at IS NULL AND (id = $2 OR name = $2)",
        )
        .bind(at)
        .bind(id_or_name.to_owned())
        .execute(self.pool())
        .await?
        .rows_affected();
        // After the commit: a request that read the row before it cannot cache it past this.
        self.token_cache.clear();
        Ok(revoked)
    }

    pub async fn touch_token(&self, id: &str, at: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(at)
            .bind(id.to_owned())
            .execute(self.pool())
            .await?;
        self.token_cache.touched(id, at);
        Ok(())
    }
}
