//! Local admin accounts: Argon2id password hashes, roles viewer and operator.
//! Separate from SCIM client auth: a SCIM token never opens the admin UI, nor the reverse.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use secrecy::{ExposeSecret, SecretString};

use super::AuthError;
use crate::store::{AdminUserRow, Store, StoreError, now_millis};

/// What an admin may do: viewers read; operators also change things (retry, revoke...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = AuthError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            other => Err(AuthError::BadRequest(format!(
                "role {other:?} is not one of viewer, operator"
            ))),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

const MIN_PASSWORD_CHARS: usize = 12;
const MAX_PASSWORD_BYTES: usize = 1024;

fn check_username(username: &str) -> Result<(), AuthError> {
    let fine = !username.is_empty()
        && username.len() <= 100
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if fine {
        Ok(())
    } else {
        Err(AuthError::BadRequest(
            "a user name has 1 to 100 of the characters A-Z a-z 0-9 . _ - @".to_owned(),
        ))
    }
}

/// Argon2id with the crate's defaults (19 MiB, 2 passes), run off the async threads.
pub async fn hash_password(password: &SecretString) -> Result<String, AuthError> {
    let length = password.expose_secret().chars().count();
    if length < MIN_PASSWORD_CHARS || password.expose_secret().len() > MAX_PASSWORD_BYTES {
        return Err(AuthError::BadRequest(format!(
            "a password needs at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    let password = password.clone();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.expose_secret().as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|error| AuthError::BadRequest(format!("cannot hash the password: {error}")))
    })
    .await
    .map_err(|error| AuthError::BadRequest(error.to_string()))?
}

/// A valid Argon2id hash of a random password: unknown users cost the same time as known ones.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$9Q4TOjX8j0pTLAs9yYhBmCX0Yr2uWkoLo8Dn7oXKJ9M";

fn verify_hash(hash: &str, password: &SecretString) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.expose_secret().as_bytes(), &parsed)
            .is_ok()
    })
}

/// Checks a login; the same work is done whether or not the user exists.
pub async fn verify_login(
    store: &Store,
    username: &str,
    password: &SecretString,
) -> Result<(String, Role), AuthError> {
    if username.len() > 100 || password.expose_secret().len() > MAX_PASSWORD_BYTES {
        return Err(AuthError::Invalid);
    }
    let user = store.get_admin_user(username).await?;
    let hash = user
        .as_ref()
        .map(|user| user.password_hash.clone())
        .unwrap_or_else(|| DUMMY_HASH.to_owned());
    let password = password.clone();
    let matches = tokio::task::spawn_blocking(move || verify_hash(&hash, &password))
        .await
        .unwrap_or(false);
    match user {
        Some(user) if matches => Ok((user.username, user.role.parse()?)),
        _ => Err(AuthError::Invalid),
    }
}

pub async fn add_user(
    store: &Store,
    username: &str,
    role: Role,
    password: &SecretString,
) -> Result<(), AuthError> {
    check_username(username)?;
    let hash = hash_password(password).await?;
    let now = now_millis();
    store
        .insert_admin_user(&AdminUserRow {
            username: username.to_owned(),
            password_hash: hash,
            role: role.as_str().to_owned(),
            created_at: now,
            updated_at: now,
        })
        .await
        .map_err(|error| match error {
            StoreError::Conflict(_) => AuthError::NameTaken(username.to_owned()),
            other => AuthError::Store(other),
        })
}

/// Sets a new password; the account's sessions end.
pub async fn set_password(
    store: &Store,
    username: &str,
    password: &SecretString,
) -> Result<(), AuthError> {
    let hash = hash_password(password).await?;
    match store
        .set_admin_password(username, &hash, now_millis())
        .await?
    {
        0 => Err(AuthError::BadRequest(format!("no admin user {username:?}"))),
        _ => Ok(()),
    }
}

pub async fn remove_user(store: &Store, username: &str) -> Result<(), AuthError> {
    match store.delete_admin_user(username).await? {
        0 => Err(AuthError::BadRequest(format!("no admin user {username:?}"))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dummy_hash_parses_and_matches_nothing_likely() {
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
        assert!(!verify_hash(
            DUMMY_HASH,
            &SecretString::from("correct horse battery")
        ));
    }

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        let password = SecretString::from("correct horse battery");
        let hash = hash_password(&password).await.unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(!hash.contains("correct horse"));
        assert!(verify_hash(&hash, &password));
        assert!(!verify_hash(
            &hash,
            &SecretString::from("correct horse batterY")
        ));
        assert!(hash_password(&SecretString::from("short")).await.is_err());
    }

    #[test]
    fn roles_parse_and_order() {
        assert_eq!("operator".parse::<Role>().unwrap(), Role::Operator);
        assert!("admin".parse::<Role>().is_err());
        assert!(Role::Operator > Role::Viewer);
    }
}
