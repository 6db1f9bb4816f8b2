//! Authentication of SCIM clients: long-lived bearer tokens made by `token create`.
//! Pure logic over the store; the HTTP edge (src/http/auth.rs) only extracts and answers.
//!
//! A token reads `c4csb_<id>_<secret>`: the id finds the row, the secret is checked against its
//! SHA-256 hash in constant time, so neither a timing difference nor the database reveals a
//! usable token.

pub mod admin;
pub mod external;
pub mod jwt;
pub mod oauth;
pub mod oidc;
pub mod session;
pub mod settings;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::store::{Store, StoreError, TokenRow, now_millis};

const PREFIX: &str = "c4csb_";
/// `last_used_at` is written at most this often per token, so that busy clients cost no writes.
const TOUCH_EVERY_MS: i64 = 60_000;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token was presented")]
    Missing,
    #[error("the bearer token is not valid")]
    Invalid,
    #[error("the bearer token has expired")]
    Expired,
    #[error("the bearer token was revoked")]
    Revoked,
    #[error("a live token named {0:?} exists already; revoke it or choose another name")]
    NameTaken(String),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A newly made token: the plain value is shown once and never stored.
pub struct IssuedToken {
    pub row: TokenRow,
    pub token: SecretString,
}

/// Who called: the name of the token used, for logs and the mapping log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    pub token_id: String,
    pub name: String,
}

pub(crate) fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

pub(crate) fn random_part(bytes: usize) -> String {
    let mut buffer = vec![0_u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buffer);
    URL_SAFE_NO_PAD.encode(buffer)
}

/// Makes and stores a token named `name`, valid for `valid_for` when given.
pub async fn create_token(
    store: &Store,
    name: &str,
    valid_for: Option<std::time::Duration>,
) -> Result<IssuedToken, AuthError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 100 {
        return Err(AuthError::BadRequest(
            "a token name must have 1 to 100 characters".to_owned(),
        ));
    }
    // The id is hex so that it never contains the `_` that separates it from the secret.
    let id = {
        let mut bytes = [0_u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        hex::encode(bytes)
    };
    let secret = random_part(32);
    let now = now_millis();
    let expires_at = valid_for.map(|duration| {
        now.saturating_add(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX))
    });
    let row = TokenRow {
        id: id.clone(),
        name: name.to_owned(),
        secret_hash: hash_secret(&secret),
        created_at: now,
        expires_at,
        last_used_at: None,
        revoked_at: None,
    };
    store
        .insert_token(&row)
        .await
        .map_err(|error| match error {
            StoreError::Conflict(_) => AuthError::NameTaken(name.to_owned()),
            other => AuthError::Store(other),
        })?;
    Ok(IssuedToken {
        row,
        token: SecretString::from(format!("{PREFIX}{id}_{secret}")),
    })
}

/// Checks a presented bearer token. Every failure takes the same path (look-up, then a
/// constant-time comparison against some hash), so answers do not tell which part was wrong.
pub async fn verify_token(
    store: &Store,
    presented: &SecretString,
) -> Result<ClientIdentity, AuthError> {
    let presented = presented.expose_secret();
    let Some((id, secret)) = presented
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.split_once('_'))
    else {
        return Err(AuthError::Invalid);
    };
    if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AuthError::Invalid);
    }
    let row = store.get_token(id).await?;
    let presented_hash = hash_secret(secret);
    let stored_hash = row
        .as_ref()
        .map(|row| row.secret_hash.clone())
        .unwrap_or_else(|| "0".repeat(64));
    let matches: bool = presented_hash
        .as_bytes()
        .ct_eq(stored_hash.as_bytes())
        .into();
    let row = match row {
        Some(row) if matches => row,
        _ => return Err(AuthError::Invalid),
    };
    let now = now_millis();
    if row.revoked_at.is_some() {
        return Err(AuthError::Revoked);
    }
    if row.expires_at.is_some_and(|expires| expires <= now) {
        return Err(AuthError::Expired);
    }
    if row
        .last_used_at
        .is_none_or(|used| now.saturating_sub(used) >= TOUCH_EVERY_MS)
    {
        // Bookkeeping only: a store that cannot write (disk full) must not lock clients out.
        if let Err(error) = store.touch_token(&row.id, now).await {
            tracing::warn!(%error, "cannot record a token's last use");
        }
    }
    Ok(ClientIdentity {
        token_id: row.id,
        name: row.name,
    })
}

/// What authenticates SCIM clients besides opaque tokens, and the per-client rate limit.
pub struct Security {
    pub keys: jwt::KeyRing,
    pub oauth: settings::OAuthConfig,
    pub external: Vec<external::ExternalIssuer>,
    client_rate: governor::DefaultKeyedRateLimiter<String>,
    /// Admin sign-in through OpenID Connect, when `[auth.admin.oidc]` is configured.
    pub oidc: Option<oidc::OidcLogin>,
}

impl Security {
    pub fn new(store: Store, auth: &crate::config::AuthConfig) -> Self {
        let per_second = NonZeroU32::new(auth.client_rate.per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(auth.client_rate.burst).unwrap_or(NonZeroU32::MIN);
        Self {
            keys: jwt::KeyRing::new(store, &auth.oauth),
            oauth: auth.oauth.clone(),
            external: auth
                .external
                .iter()
                .cloned()
                .map(external::ExternalIssuer::new)
                .collect(),
            client_rate: governor::RateLimiter::keyed(
                governor::Quota::per_second(per_second).allow_burst(burst),
            ),
            // A broken configuration is reported by `Config::validate`; here it only disables OIDC.
            oidc: auth.admin.oidc.clone().and_then(|config| {
                oidc::OidcLogin::new(config)
                    .map_err(|error| tracing::error!(%error, "admin OIDC sign-in disabled"))
                    .ok()
            }),
        }
    }

    /// Checks any SCIM credential: an opaque `c4csb_` token, a JWT the bridge issued, or a
    /// JWT from a configured external issuer (chosen by its `iss`, then fully verified).
    pub async fn authenticate(
        &self,
        store: &Store,
        presented: &SecretString,
    ) -> Result<ClientIdentity, AuthError> {
        let token = presented.expose_secret();
        if token.starts_with(PREFIX) {
            return verify_token(store, presented).await;
        }
        let issuer = jwt::unverified_issuer(token).ok_or(AuthError::Invalid)?;
        if self.oauth.enabled && issuer == self.oauth.issuer {
            let client_id = jwt::verify(&self.keys, &self.oauth, token).await?;
            let client = oauth::live_client(store, &client_id).await?;
            return Ok(ClientIdentity {
                token_id: client.client_id,
                name: client.name,
            });
        }
        let external = self
            .external
            .iter()
            .find(|external| external.config.issuer == issuer)
            .ok_or(AuthError::Invalid)?;
        let subject = external.verify(token).await?;
        Ok(ClientIdentity {
            token_id: format!("{}:{subject}", external.config.name),
            name: external.config.name.clone(),
        })
    }

    /// `Err(wait)` when the client has used up its request rate.
    pub fn check_client_rate(&self, client: &ClientIdentity) -> Result<(), Duration> {
        use governor::clock::{Clock, DefaultClock};
        self.client_rate
            .check_key(&client.name)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

pub type SharedSecurity = Arc<Security>;

/// Parses `--expires` values such as `365d`, `12h` or `90days`.
pub fn parse_validity(text: &str) -> Result<std::time::Duration, AuthError> {
    humantime::parse_duration(text).map_err(|error| {
        AuthError::BadRequest(format!(
            "--expires {text:?}: {error}; use a duration such as 365d or 12h"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_hex_sha256() {
        assert_eq!(hash_secret("abc").len(), 64);
        assert_ne!(hash_secret("abc"), hash_secret("abd"));
    }

    #[test]
    fn validity_parses_days_and_rejects_nonsense() {
        assert_eq!(
            parse_validity("365d").unwrap(),
            std::time::Duration::from_secs(365 * 86_400)
        );
        assert!(parse_validity("soon").is_err());
    }
}
