//! The bridge's own JWTs: ES256 access tokens issued by the client-credentials endpoint,
//! signed with keys from a file or generated and kept in the store, published as a JWKS.
//!
//! Rotation: `signing-key rotate` makes a new key that signs from then on; older keys keep
//! verifying (and stay in the JWKS) until every token they signed has expired.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::RwLock;

use super::AuthError;
use super::settings::OAuthConfig;
use crate::store::{SigningKeyRow, Store, now_millis};

pub const ALGORITHM: Algorithm = Algorithm::ES256;
/// Stored keys are read again this often, so a rotation made by one replica (or the CLI)
/// reaches the others.
const RELOAD_EVERY: Duration = Duration::from_secs(30);
/// An unknown `kid` triggers a reload at most this often (a stream of forged kids cannot
/// turn into a stream of database reads).
const UNKNOWN_KID_RELOAD_AFTER: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the signing key {path}: {reason}")]
    File { path: String, reason: String },
    #[error("the signing key is not a PKCS#8 P-256 (ES256) private key: {0}")]
    Format(String),
}

/// One ES256 key pair.
pub struct SigningKey {
    pub kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    x: String,
    y: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish()
    }
}

impl SigningKey {
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &SystemRandom::new())
                .map_err(|error| KeyError::Format(error.to_string()))?;
        // Uncompressed point: 0x04 || x (32 bytes) || y (32 bytes).
        let point = pair.public_key().as_ref();
        if point.len() != 65 {
            return Err(KeyError::Format("unexpected public key length".to_owned()));
        }
        let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
        let y = URL_SAFE_NO_PAD.encode(&point[33..65]);
        let decoding = DecodingKey::from_ec_components(&x, &y)
            .map_err(|error| KeyError::Format(error.to_string()))?;
        Ok(Self {
            kid: thumbprint(&x, &y),
            encoding: EncodingKey::from_ec_der(der),
            decoding,
            x,
            y,
        })
    }

    pub fn from_pem_file(path: &Path) -> Result<Self, KeyError> {
        let file_error = |reason: String| KeyError::File {
            path: path.display().to_string(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|error| file_error(error.to_string()))?;
        let der = rustls_pemfile::private_key(&mut pem.as_slice())
            .map_err(|error| file_error(error.to_string()))?
            .ok_or_else(|| file_error("no PEM private key in the file".to_owned()))?;
        match der {
            rustls_pki_types_der::Pkcs8(der) => Self::from_pkcs8_der(der.secret_pkcs8_der()),
            _ => Err(KeyError::Format(
                "expected a PKCS#8 key (BEGIN PRIVATE KEY); convert with `openssl pkcs8 -topk8 -nocrypt`"
                    .to_owned(),
            )),
        }
    }

    /// A new random key, with its PKCS#8 DER for storing.
    pub fn generate() -> Result<(Self, Vec<u8>), KeyError> {
        let document =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|error| KeyError::Format(error.to_string()))?;
        let der = document.as_ref().to_vec();
        Ok((Self::from_pkcs8_der(&der)?, der))
    }

    fn jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "EC",
            "crv": "P-256",
            "x": self.x,
            "y": self.y,
            "kid": self.kid,
            "use": "sig",
            "alg": "ES256",
        })
    }
}

mod rustls_pki_types_der {
    pub use rustls::pki_types::PrivateKeyDer::Pkcs8;
}

/// RFC 7638 JWK thumbprint: a kid that names the key itself.
fn thumbprint(x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// Encrypts stored signing keys (AES-256-GCM, the key's kid as associated data), so that a copy
/// of the database alone cannot mint tokens. Read from `auth.oauth.key_encryption_key_file`:
/// base64 of 32 random bytes (`openssl rand -base64 32`).
pub struct KeyEncryptionKey(ring::aead::LessSafeKey);

const SEALED_PREFIX: &str = "enc:v1:";

impl KeyEncryptionKey {
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let file_error = |reason: String| KeyError::File {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|error| file_error(error.to_string()))?;
        let bytes = STANDARD.decode(text.trim()).map_err(|_| {
            file_error("not base64 (make one with `openssl rand -base64 32`)".to_owned())
        })?;
        let key = ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, &bytes)
            .map_err(|_| file_error(format!("must hold 32 bytes, found {}", bytes.len())))?;
        Ok(Self(ring::aead::LessSafeKey::new(key)))
    }

    fn seal(&self, kid: &str, der: &[u8]) -> Result<String, KeyError> {
        use ring::rand::SecureRandom;
        let mut nonce = [0_u8; ring::aead::NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| KeyError::Format("no randomness".to_owned()))?;
        let mut sealed = der.to_vec();
        self.0
            .seal_in_place_append_tag(
                ring::aead::Nonce::assume_unique_for_key(nonce),
                ring::aead::Aad::from(kid.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| KeyError::Format("cannot encrypt the signing key".to_owned()))?;
        Ok(format!(
            "{SEALED_PREFIX}{}:{}",
            STANDARD.encode(nonce),
            STANDARD.encode(sealed)
        ))
    }

    fn open(&self, kid: &str, sealed: &str) -> Result<Vec<u8>, KeyError> {
        let corrupt = || {
            KeyError::Format(format!(
                "stored signing key {kid} cannot be decrypted with this key-encryption key"
            ))
        };
        let (nonce, data) = sealed.split_once(':').ok_or_else(corrupt)?;
        let nonce: [u8; ring::aead::NONCE_LEN] = STANDARD
            .decode(nonce)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(corrupt)?;
        let mut data = STANDARD.decode(data).map_err(|_| corrupt())?;
        let plain = self
            .0
            .open_in_place(
                ring::aead::Nonce::assume_unique_for_key(nonce),
                ring::aead::Aad::from(kid.as_bytes()),
                &mut data,
            )
            .map_err(|_| corrupt())?;
        Ok(plain.to_vec())
    }
}

fn key_encryption_key(config: &OAuthConfig) -> Result<Option<KeyEncryptionKey>, AuthError> {
    config
        .key_encryption_key_file
        .as_deref()
        .map(KeyEncryptionKey::from_file)
        .transpose()
        .map_err(|error| AuthError::BadRequest(error.to_string()))
}

/// The PKCS#8 DER of a stored key, decrypting it when it was stored encrypted.
fn stored_der(kek: Option<&KeyEncryptionKey>, row: &SigningKeyRow) -> Result<Vec<u8>, AuthError> {
    match row.private_pkcs8.strip_prefix(SEALED_PREFIX) {
        Some(sealed) => kek
            .ok_or_else(|| {
                AuthError::BadRequest(format!(
                    "stored signing key {} is encrypted: set auth.oauth.key_encryption_key_file",
                    row.kid
                ))
            })?
            .open(&row.kid, sealed)
            .map_err(|error| AuthError::BadRequest(error.to_string())),
        None => STANDARD.decode(row.private_pkcs8.as_bytes()).map_err(|_| {
            AuthError::BadRequest(format!("stored signing key {} is corrupt", row.kid))
        }),
    }
}

/// Makes a new stored signing key; earlier keys keep verifying for `verify_for` at most.
pub async fn rotate(
    store: &Store,
    config: &OAuthConfig,
    verify_for: Duration,
) -> Result<String, AuthError> {
    let kek = key_encryption_key(config)?;
    let now = now_millis();
    store
        .retire_signing_keys(
            now.saturating_add(i64::try_from(verify_for.as_millis()).unwrap_or(i64::MAX)),
        )
        .await?;
    insert_new_key(store, kek.as_ref()).await
}

/// Stores a new key that signs from now on (encrypted when a key-encryption key is set).
async fn insert_new_key(
    store: &Store,
    kek: Option<&KeyEncryptionKey>,
) -> Result<String, AuthError> {
    let (key, der) =
        SigningKey::generate().map_err(|error| AuthError::BadRequest(error.to_string()))?;
    let private_pkcs8 = match kek {
        Some(kek) => kek
            .seal(&key.kid, &der)
            .map_err(|error| AuthError::BadRequest(error.to_string()))?,
        None => STANDARD.encode(&der),
    };
    store
        .insert_signing_key(&SigningKeyRow {
            kid: key.kid.clone(),
            private_pkcs8,
            created_at: now_millis(),
            verify_until: None,
        })
        .await?;
    Ok(key.kid)
}

struct Loaded {
    at: Instant,
    /// Newest first; the first one whose row had no `verify_until` signs.
    keys: Vec<Arc<SigningKey>>,
    signer: Option<Arc<SigningKey>>,
}

/// The keys in force, cached from the store.
pub struct KeyRing {
    store: Store,
    file_key: Option<Arc<SigningKey>>,
    kek: Option<KeyEncryptionKey>,
    loaded: RwLock<Option<Loaded>>,
}

impl KeyRing {
    /// A file key that cannot be read is reported by `Config::validate`; here it is logged and
    /// the ring falls back to stored keys.
    pub fn new(store: Store, config: &OAuthConfig) -> Self {
        let file_key = config.signing_key_file.as_deref().and_then(|path| {
            SigningKey::from_pem_file(path)
                .map_err(|error| tracing::error!(%error, "signing key file unusable"))
                .ok()
                .map(Arc::new)
        });
        let kek = key_encryption_key(config)
            .map_err(|error| tracing::error!(%error, "key-encryption key unusable"))
            .ok()
            .flatten();
        Self {
            store,
            file_key,
            kek,
            loaded: RwLock::new(None),
        }
    }

    async fn load(&self, force_after: Duration) -> Result<(), AuthError> {
        if let Some(loaded) = self.loaded.read().await.as_ref()
            && loaded.at.elapsed() < force_after
        {
            return Ok(());
        }
        let mut rows = self.store.live_signing_keys(now_millis()).await?;
        if self.file_key.is_none() && !rows.iter().any(|row| row.verify_until.is_none()) {
            // First start: make the key this bridge signs with (no other key is retired).
            insert_new_key(&self.store, self.kek.as_ref()).await?;
            rows = self.store.live_signing_keys(now_millis()).await?;
        }
        let mut keys = Vec::new();
        let mut signer = self.file_key.clone();
        for row in rows {
            let der = stored_der(self.kek.as_ref(), &row)?;
            let key = Arc::new(
                SigningKey::from_pkcs8_der(&der)
                    .map_err(|error| AuthError::BadRequest(error.to_string()))?,
            );
            if signer.is_none() && row.verify_until.is_none() {
                signer = Some(key.clone());
            }
            keys.push(key);
        }
        if let Some(file_key) = &self.file_key {
            keys.insert(0, file_key.clone());
        }
        *self.loaded.write().await = Some(Loaded {
            at: Instant::now(),
            keys,
            signer,
        });
        Ok(())
    }

    async fn signer(&self) -> Result<Arc<SigningKey>, AuthError> {
        self.load(RELOAD_EVERY).await?;
        self.loaded
            .read()
            .await
            .as_ref()
            .and_then(|loaded| loaded.signer.clone())
            .ok_or_else(|| AuthError::BadRequest("no signing key is available".to_owned()))
    }

    async fn find(&self, kid: &str) -> Result<Option<Arc<SigningKey>>, AuthError> {
        self.load(RELOAD_EVERY).await?;
        let lookup = |loaded: &Option<Loaded>| {
            loaded
                .as_ref()
                .and_then(|loaded| loaded.keys.iter().find(|key| key.kid == kid).cloned())
        };
        if let Some(key) = lookup(&*self.loaded.read().await) {
            return Ok(Some(key));
        }
        self.load(UNKNOWN_KID_RELOAD_AFTER).await?;
        Ok(lookup(&*self.loaded.read().await))
    }

    /// The public keys that verify the bridge's tokens, as a JWKS document.
    pub async fn jwks(&self) -> Result<serde_json::Value, AuthError> {
        self.load(RELOAD_EVERY).await?;
        let keys: Vec<serde_json::Value> = self
            .loaded
            .read()
            .await
            .as_ref()
            .map(|loaded| loaded.keys.iter().map(|key| key.jwk()).collect())
            .unwrap_or_default();
        Ok(serde_json::json!({ "keys": keys }))
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub iat: u64,
    pub nbf: u64,
    pub exp: u64,
    pub jti: String,
    pub scope: String,
}

pub const SCOPE: &str = "scim";

/// Signs an access token for `client_id`.
pub async fn issue(
    ring: &KeyRing,
    config: &OAuthConfig,
    client_id: &str,
) -> Result<String, AuthError> {
    let key = ring.signer().await?;
    let now = jsonwebtoken::get_current_timestamp();
    let claims = AccessClaims {
        iss: config.issuer.clone(),
        aud: config.audience.clone(),
        sub: client_id.to_owned(),
        iat: now,
        nbf: now,
        exp: now.saturating_add(config.token_ttl_secs),
        jti: uuid::Uuid::new_v4().to_string(),
        scope: SCOPE.to_owned(),
    };
    let mut header = Header::new(ALGORITHM);
    header.kid = Some(key.kid.clone());
    header.typ = Some("at+jwt".to_owned());
    jsonwebtoken::encode(&header, &claims, &key.encoding)
        .map_err(|error| AuthError::BadRequest(format!("cannot sign a token: {error}")))
}

/// Checks a token the bridge issued; returns its client id (`sub`).
pub async fn verify(
    ring: &KeyRing,
    config: &OAuthConfig,
    token: &str,
) -> Result<String, AuthError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Invalid)?;
    if header.alg != ALGORITHM {
        return Err(AuthError::Invalid);
    }
    let kid = header.kid.ok_or(AuthError::Invalid)?;
    let key = ring.find(&kid).await?.ok_or(AuthError::Invalid)?;
    let mut validation = Validation::new(ALGORITHM);
    validation.set_issuer(&[&config.issuer]);
    validation.set_audience(&[&config.audience]);
    validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    validation.validate_nbf = true;
    validation.leeway = config.clock_skew_secs;
    let data = jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &validation)
        .map_err(|error| jwt_error(&error))?;
    if data.claims.scope.split(' ').all(|scope| scope != SCOPE) {
        return Err(AuthError::Invalid);
    }
    Ok(data.claims.sub)
}

/// Maps a validation failure: expiry is worth telling the client; everything else is "invalid".
pub(super) fn jwt_error(error: &jsonwebtoken::errors::Error) -> AuthError {
    match error.kind() {
        jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
        _ => AuthError::Invalid,
    }
}

/// The `iss` claim of a token, read without verifying anything: it only chooses which issuer's
/// keys and rules the token is then fully checked against.
pub fn unverified_issuer(token: &str) -> Option<String> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    #[derive(Deserialize)]
    struct Issuer {
        iss: String,
    }
    serde_json::from_slice::<Issuer>(&bytes)
        .ok()
        .map(|claims| claims.iss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_signs_and_its_public_half_verifies() {
        let (key, der) = SigningKey::generate().unwrap();
        let again = SigningKey::from_pkcs8_der(&der).unwrap();
        assert_eq!(key.kid, again.kid);
        let claims =
            serde_json::json!({"sub": "x", "exp": jsonwebtoken::get_current_timestamp() + 60});
        let token = jsonwebtoken::encode(&Header::new(ALGORITHM), &claims, &key.encoding).unwrap();
        let mut validation = Validation::new(ALGORITHM);
        validation.validate_aud = false;
        jsonwebtoken::decode::<serde_json::Value>(&token, &again.decoding, &validation).unwrap();
        let (other, _) = SigningKey::generate().unwrap();
        assert!(
            jsonwebtoken::decode::<serde_json::Value>(&token, &other.decoding, &validation)
                .is_err()
        );
    }

    #[test]
    fn issuer_is_read_from_the_payload_only() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"iss":"https://idp.example"}"#);
        assert_eq!(
            unverified_issuer(&format!("e30.{payload}.sig")).as_deref(),
            Some("https://idp.example")
        );
        assert_eq!(unverified_issuer("a.b"), None);
        assert_eq!(unverified_issuer("c4csb_x_y"), None);
    }
}
