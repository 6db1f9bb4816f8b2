//! Rows of OAuth clients, JWT signing keys, admin accounts and admin sessions (issue 11).
//! Secrets are stored hashed (client secrets, session ids) or as Argon2id hashes (passwords);
//! signing keys are stored as PKCS#8 so that every replica signs and verifies alike.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};

#[derive(Debug, Clone, PartialEq)]
pub struct OAuthClientRow {
    pub client_id: String,
    pub name: String,
    pub secret_hash: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

#[derive(Clone)]
pub struct SigningKeyRow {
    pub kid: String,
    /// Base64 of the PKCS#8 DER private key.
    pub private_pkcs8: String,
    pub created_at: i64,
    pub verify_until: Option<i64>,
}

impl std::fmt::Debug for SigningKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRow")
            .field("kid", &self.kid)
            .field("private_pkcs8", &"[redacted]")
            .field("created_at", &self.created_at)
            .field("verify_until", &self.verify_until)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AdminUserRow {
    pub username: String,
    pub password_hash: String,
    pub role: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A live session joined with its account (the role is read from the account, so a changed
/// role applies at once).
#[derive(Debug, Clone, PartialEq)]
pub struct AdminSessionRow {
    pub id_hash: String,
    pub username: String,
    /// `local` or `oidc`.
    pub source: String,
    pub role: String,
    pub csrf_token: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

fn client_from_row(row: &AnyRow) -> Result<OAuthClientRow, StoreError> {
    Ok(OAuthClientRow {
        client_id: row.try_get("client_id")?,
        name: row.try_get("name")?,
        secret_hash: row.try_get("secret_hash")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

fn admin_from_row(row: &AnyRow) -> Result<AdminUserRow, StoreError> {
    Ok(AdminUserRow {
        username: row.try_get("username")?,
        password_hash: row.try_get("password_hash")?,
        role: row.try_get("role")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const CLIENT_COLUMNS: &str = "client_id, name, secret_hash, created_at, last_used_at, revoked_at";

impl Store {
    /// Stores a new OAuth client; a live client with the same name is a `Conflict`.
    pub async fn insert_oauth_client(&self, client: &OAuthClientRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oauth_clients (client_id, name, secret_hash, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(client.client_id.clone())
        .bind(client.name.clone())
        .bind(client.secret_hash.clone())
        .bind(client.created_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn get_oauth_client(
        &self,
        client_id: &str,
    ) -> Result<Option<OAuthClientRow>, StoreError> {
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM oauth_clients WHERE client_id = $1");
        let row = sqlx::query(&sql)
            .bind(client_id.to_owned())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(client_from_row).transpose()
    }

    pub async fn list_oauth_clients(&self) -> Result<Vec<OAuthClientRow>, StoreError> {
        let sql = format!(
            "SELECT {CLIENT_COLUMNS} FROM oauth_clients ORDER BY created_at DESC, client_id"
        );
        let rows = sqlx::query(&sql).fetch_all(self.pool()).await?;
        rows.iter().map(client_from_row).collect()
    }

    pub async fn revoke_oauth_client(&self, id_or_name: &str, at: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE oauth_clients SET revoked_at = $1 \
             WHERE revoked_at IS NULL AND (client_id = $2 OR name = $2)",
        )
        .bind(at)
        .bind(id_or_name.to_owned())
        .execute(self.pool())
        .await?
        .rows_affected())
    }

    pub async fn touch_oauth_client(&self, client_id: &str, at: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE oauth_clients SET last_used_at = $1 WHERE client_id = $2")
            .bind(at)
            .bind(client_id.to_owned())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn insert_signing_key(&self, key: &SigningKeyRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, private_pkcs8, created_at, verify_until) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(key.kid.clone())
        .bind(key.private_pkcs8.clone())
        .bind(key.created_at)
        .bind(key.verify_until)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Keys that still verify at `now`, newest first.
    pub async fn live_signing_keys(&self, now: i64) -> Result<Vec<SigningKeyRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT kid, private_pkcs8, created_at, verify_until FROM signing_keys \
             WHERE verify_until IS NULL OR verify_until > $1 ORDER BY created_at DESC, kid",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(SigningKeyRow {
                    kid: row.try_get("kid")?,
                    private_pkcs8: row.try_get("private_pkcs8")?,
                    created_at: row.try_get("created_at")?,
                    verify_until: row.try_get("verify_until")?,
                })
            })
            .collect()
    }

    /// Stops the signing keys from signing; they keep verifying until `verify_until` at most
    /// (a rotation never extends an older key's life, and a zero grace ends them all).
    pub async fn retire_signing_keys(&self, verify_until: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE signing_keys SET verify_until = $1 \
             WHERE verify_until IS NULL OR verify_until > $1",
        )
        .bind(verify_until)
        .execute(self.pool())
        .await?
        .rows_affected())
    }

    pub async fn insert_admin_user(&self, user: &AdminUserRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO admin_users (username, password_hash, role, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(user.username.clone())
        .bind(user.password_hash.clone())
        .bind(user.role.clone())
        .bind(user.created_at)
        .bind(user.updated_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn get_admin_user(&self, username: &str) -> Result<Option<AdminUserRow>, StoreError> {
        let row = sqlx::query(
            "SELECT username, password_hash, role, created_at, updated_at FROM admin_users \
             WHERE username = $1",
        )
        .bind(username.to_owned())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(admin_from_row).transpose()
    }

    pub async fn list_admin_users(&self) -> Result<Vec<AdminUserRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT username, password_hash, role, created_at, updated_at FROM admin_users \
             ORDER BY username",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(admin_from_row).collect()
    }

    /// Sets a new password hash and ends the account's sessions.
    pub async fn set_admin_password(
        &self,
        username: &str,
        password_hash: &str,
        at: i64,
    ) -> Result<u64, StoreError> {
        let changed = sqlx::query(
            "UPDATE admin_users SET password_hash = $1, updated_at = $2 WHERE username = $3",
        )
        .bind(password_hash.to_owned())
        .bind(at)
        .bind(username.to_owned())
        .execute(self.pool())
        .await?
        .rows_affected();
        self.delete_admin_sessions_of(username).await?;
        Ok(changed)
    }

    /// Removes the account and its sessions.
    pub async fn delete_admin_user(&self, username: &str) -> Result<u64, StoreError> {
        self.delete_admin_sessions_of(username).await?;
        Ok(sqlx::query("DELETE FROM admin_users WHERE username = $1")
            .bind(username.to_owned())
            .execute(self.pool())
            .await?
            .rows_affected())
    }

    async fn delete_admin_sessions_of(&self, username: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM admin_sessions WHERE username = $1 AND source = 'local'")
            .bind(username.to_owned())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn insert_admin_session(&self, session: &AdminSessionRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO admin_sessions \
             (id_hash, username, source, role, csrf_token, created_at, last_seen_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(session.id_hash.clone())
        .bind(session.username.clone())
        .bind(session.source.clone())
        .bind(session.role.clone())
        .bind(session.csrf_token.clone())
        .bind(session.created_at)
        .bind(session.last_seen_at)
        .bind(session.expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The session with this id hash; a local account's session carries the account's current
    /// role. `None` when the session, or the local account behind it, is gone.
    pub async fn get_admin_session(
        &self,
        id_hash: &str,
    ) -> Result<Option<AdminSessionRow>, StoreError> {
        let row = sqlx::query(
            "SELECT s.id_hash, s.username, s.source, \
             CASE WHEN s.source = 'local' THEN u.role ELSE s.role END AS role, \
             s.csrf_token, s.created_at, s.last_seen_at, s.expires_at \
             FROM admin_sessions s LEFT JOIN admin_users u \
             ON u.username = s.username AND s.source = 'local' \
             WHERE s.id_hash = $1 AND (s.source <> 'local' OR u.username IS NOT NULL)",
        )
        .bind(id_hash.to_owned())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref()
            .map(|row| {
                Ok(AdminSessionRow {
                    id_hash: row.try_get("id_hash")?,
                    username: row.try_get("username")?,
                    source: row.try_get("source")?,
                    role: row.try_get("role")?,
                    csrf_token: row.try_get("csrf_token")?,
                    created_at: row.try_get("created_at")?,
                    last_seen_at: row.try_get("last_seen_at")?,
                    expires_at: row.try_get("expires_at")?,
                })
            })
            .transpose()
    }

    pub async fn touch_admin_session(&self, id_hash: &str, at: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE admin_sessions SET last_seen_at = $1 WHERE id_hash = $2")
            .bind(at)
            .bind(id_hash.to_owned())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Ends one session; also sweeps sessions that expired before `now`.
    pub async fn delete_admin_session(&self, id_hash: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM admin_sessions WHERE id_hash = $1 OR expires_at <= $2")
            .bind(id_hash.to_owned())
            .bind(now)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
