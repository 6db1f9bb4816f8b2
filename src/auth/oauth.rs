//! OAuth 2.0 clients of the client-credentials grant (RFC 6749 §4.4), registered with
//! `oauth-client create`. A client secret is 256 random bits, shown once and stored as a
//! SHA-256 hash, like bearer tokens.

use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use super::{AuthError, hash_secret, random_part};
use crate::store::{OAuthClientRow, Store, StoreError, now_millis};

pub struct RegisteredClient {
    pub row: OAuthClientRow,
    pub secret: SecretString,
}

/// Registers a client named `name`.
pub async fn create_client(store: &Store, name: &str) -> Result<RegisteredClient, AuthError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 100 {
        return Err(AuthError::BadRequest(
            "a client name must have 1 to 100 characters".to_owned(),
        ));
    }
    let client_id = {
        let mut bytes = [0_u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        format!("c4csb-client-{}", hex::encode(bytes))
    };
    let secret = random_part(32);
    let row = OAuthClientRow {
        client_id,
        name: name.to_owned(),
        secret_hash: hash_secret(&secret),
        created_at: now_millis(),
        last_used_at: None,
        revoked_at: None,
    };
    store
        .insert_oauth_client(&row)
        .await
        .map_err(|error| match error {
            StoreError::Conflict(_) => AuthError::NameTaken(name.to_owned()),
            other => AuthError::Store(other),
        })?;
    Ok(RegisteredClient {
        row,
        secret: SecretString::from(secret),
    })
}

/// Checks a client's credentials in constant time (an unknown client id is compared against a
/// dummy hash). Returns the live client.
pub async fn authenticate_client(
    store: &Store,
    client_id: &str,
    secret: &SecretString,
) -> Result<OAuthClientRow, AuthError> {
    if client_id.is_empty() || client_id.len() > 200 {
        return Err(AuthError::Invalid);
    }
    let row = store.get_oauth_client(client_id).await?;
    let presented = hash_secret(secret.expose_secret());
    let stored = row
        .as_ref()
        .map(|row| row.secret_hash.clone())
        .unwrap_or_else(|| "0".repeat(64));
    let matches: bool = presented.as_bytes().ct_eq(stored.as_bytes()).into();
    match row {
        Some(row) if matches && row.revoked_at.is_none() => {
            store
                .touch_oauth_client(&row.client_id, now_millis())
                .await?;
            Ok(row)
        }
        Some(_) if matches => Err(AuthError::Revoked),
        _ => Err(AuthError::Invalid),
    }
}

/// The live client behind a verified JWT's `sub`; a revoked client's tokens stop at once.
pub async fn live_client(store: &Store, client_id: &str) -> Result<OAuthClientRow, AuthError> {
    match store.get_oauth_client(client_id).await? {
        Some(row) if row.revoked_at.is_none() => Ok(row),
        Some(_) => Err(AuthError::Revoked),
        None => Err(AuthError::Invalid),
    }
}
