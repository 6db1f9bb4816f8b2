//! JWTs from an external issuer (Entra ID, Okta...), checked against the issuer's JWKS with
//! its issuer, audience, allowed algorithms, expiry and clock skew.
//!
//! The JWKS is cached; a token with an unknown `kid` (the issuer rotated) triggers one fetch,
//! at most every few seconds, so forged kids cannot make the bridge hammer the issuer.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use tokio::sync::Mutex;

use super::AuthError;
use super::jwt::jwt_error;
use super::settings::ExternalIssuerConfig;

const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_JWKS_BYTES: usize = 256 * 1024;

struct Cached {
    fetched_at: Instant,
    keys: HashMap<String, Jwk>,
}

pub struct ExternalIssuer {
    pub config: ExternalIssuerConfig,
    http: reqwest::Client,
    cache: Mutex<Option<Cached>>,
}

impl ExternalIssuer {
    pub fn new(config: ExternalIssuerConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            config,
            http,
            cache: Mutex::new(None),
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, Jwk>, String> {
        let response = self
            .http
            .get(&self.config.jwks_url)
            .send()
            .await
            .map_err(|error| error.without_url().to_string())?;
        if !response.status().is_success() {
            return Err(format!("JWKS answered {}", response.status()));
        }
        let body = response
            .bytes()
            .await
            .map_err(|error| error.without_url().to_string())?;
        if body.len() > MAX_JWKS_BYTES {
            return Err("JWKS too large".to_owned());
        }
        let set: JwkSet = serde_json::from_slice(&body).map_err(|error| error.to_string())?;
        Ok(set
            .keys
            .into_iter()
            .filter_map(|jwk| jwk.common.key_id.clone().map(|kid| (kid, jwk)))
            .collect())
    }

    /// The key with this kid, fetching the JWKS when the cache is stale or lacks the kid.
    async fn key(&self, kid: &str) -> Result<Option<Jwk>, AuthError> {
        let mut cache = self.cache.lock().await;
        let refresh = Duration::from_secs(self.config.jwks_refresh_secs);
        let fresh = cache
            .as_ref()
            .is_some_and(|cached| cached.fetched_at.elapsed() < refresh);
        if fresh && let Some(key) = cache.as_ref().and_then(|cached| cached.keys.get(kid)) {
            return Ok(Some(key.clone()));
        }
        let may_fetch = cache.as_ref().is_none_or(|cached| {
            !fresh
                || cached.fetched_at.elapsed()
                    >= Duration::from_secs(self.config.unknown_kid_refetch_secs)
        });
        if may_fetch {
            match self.fetch().await {
                Ok(keys) => {
                    *cache = Some(Cached {
                        fetched_at: Instant::now(),
                        keys,
                    });
                }
                Err(error) => {
                    tracing::warn!(issuer = %self.config.name, %error, "cannot fetch the issuer's JWKS");
                }
            }
        }
        Ok(cache
            .as_ref()
            .and_then(|cached| cached.keys.get(kid).cloned()))
    }

    /// Verifies `token`; returns the subject (`sub`) on success.
    pub async fn verify(&self, token: &str) -> Result<String, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Invalid)?;
        if !self.config.algorithms.contains(&header.alg) {
            return Err(AuthError::Invalid);
        }
        let kid = header.kid.ok_or(AuthError::Invalid)?;
        let jwk = self.key(&kid).await?.ok_or(AuthError::Invalid)?;
        // The key decides the algorithm family, never the token: a token saying HS256 over an
        // RSA or EC public key is refused before any signature check.
        if !algorithm_fits_key(header.alg, &jwk) {
            return Err(AuthError::Invalid);
        }
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| AuthError::Invalid)?;
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = self.config.clock_skew_secs;
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
            .map_err(|error| jwt_error(&error))?;
        let subject = data
            .claims
            .get("sub")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
            .to_owned();
        Ok(subject)
    }
}

fn algorithm_fits_key(algorithm: Algorithm, jwk: &Jwk) -> bool {
    if let Some(key_algorithm) = jwk.common.key_algorithm
        && key_algorithm.to_string() != format!("{algorithm:?}")
    {
        return false;
    }
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => matches!(
            algorithm,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
        ),
        AlgorithmParameters::EllipticCurve(params) => matches!(
            (algorithm, params.curve.clone()),
            (Algorithm::ES256, jsonwebtoken::jwk::EllipticCurve::P256)
                | (Algorithm::ES384, jsonwebtoken::jwk::EllipticCurve::P384)
        ),
        AlgorithmParameters::OctetKeyPair(_) => algorithm == Algorithm::EdDSA,
        AlgorithmParameters::OctetKey(_) => false,
    }
}
