//! Server-side admin sessions. The cookie carries 256 random bits; the store keeps only their
//! SHA-256 hash, so a copy of the database opens no session. Each session has its own CSRF
//! token that every admin write must echo.

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use super::admin::Role;
use super::settings::AdminConfig;
use super::{AuthError, hash_secret, random_part};
use crate::store::{AdminSessionRow, Store, now_millis};

/// `last_seen_at` is written at most this often per session.
const TOUCH_EVERY_MS: i64 = 60_000;

/// A logged-in admin, as handlers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminIdentity {
    pub user: String,
    pub role: Role,
    pub csrf_token: String,
    pub session_hash: String,
}

pub struct NewSession {
    pub cookie_value: SecretString,
    pub identity: AdminIdentity,
}

/// Where an admin signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Local,
    Oidc,
}

pub async fn start(
    store: &Store,
    config: &AdminConfig,
    user: &str,
    role: Role,
    source: Source,
) -> Result<NewSession, AuthError> {
    let id = random_part(32);
    let csrf_token = random_part(32);
    let now = now_millis();
    let row = AdminSessionRow {
        id_hash: hash_secret(&id),
        username: user.to_owned(),
        source: match source {
            Source::Local => "local",
            Source::Oidc => "oidc",
        }
        .to_owned(),
        role: role.as_str().to_owned(),
        csrf_token: csrf_token.clone(),
        created_at: now,
        last_seen_at: now,
        expires_at: now.saturating_add(millis(config.session_max_secs)),
    };
    store.insert_admin_session(&row).await?;
    Ok(NewSession {
        cookie_value: SecretString::from(id),
        identity: AdminIdentity {
            user: user.to_owned(),
            role,
            csrf_token,
            session_hash: row.id_hash,
        },
    })
}

fn millis(secs: u64) -> i64 {
    i64::try_from(secs)
        .unwrap_or(i64::MAX / 1000)
        .saturating_mul(1000)
}

/// The live session for a cookie value, or `None` (unknown, expired, idle too long, account gone).
pub async fn resume(
    store: &Store,
    config: &AdminConfig,
    cookie_value: &SecretString,
) -> Result<Option<AdminIdentity>, AuthError> {
    let value = cookie_value.expose_secret();
    if value.is_empty() || value.len() > 100 {
        return Ok(None);
    }
    let id_hash = hash_secret(value);
    let Some(row) = store.get_admin_session(&id_hash).await? else {
        return Ok(None);
    };
    let now = now_millis();
    let idle = now.saturating_sub(row.last_seen_at) > millis(config.session_idle_secs);
    if row.expires_at <= now || idle {
        store.delete_admin_session(&id_hash, now).await?;
        return Ok(None);
    }
    let Ok(role) = row.role.parse::<Role>() else {
        return Ok(None);
    };
    if now.saturating_sub(row.last_seen_at) >= TOUCH_EVERY_MS {
        store.touch_admin_session(&id_hash, now).await?;
    }
    Ok(Some(AdminIdentity {
        user: row.username,
        role,
        csrf_token: row.csrf_token,
        session_hash: id_hash,
    }))
}

pub async fn end(store: &Store, identity: &AdminIdentity) -> Result<(), AuthError> {
    store
        .delete_admin_session(&identity.session_hash, now_millis())
        .await?;
    Ok(())
}

impl AdminIdentity {
    /// Constant-time comparison of a presented CSRF token with the session's.
    pub fn csrf_matches(&self, presented: &str) -> bool {
        !presented.is_empty() && bool::from(presented.as_bytes().ct_eq(self.csrf_token.as_bytes()))
    }
}
