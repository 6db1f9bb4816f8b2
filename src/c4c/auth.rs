//! Request authentication: Basic, client certificate (in the TLS layer), and OAuth bearer
//! tokens (client credentials, SAML 2.0 bearer) cached and refreshed one at a time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use super::config::{ResolvedAuth, ResolvedSaml, SamlAssertionSource};
use super::error::{C4cError, parse_error_body};
use super::observer::{C4cObserver, CallKind};
use super::saml;

/// How each API request is authenticated.
pub(crate) enum RequestAuth {
    /// The `Authorization` header, encoded once and marked sensitive.
    Basic(http::HeaderValue),
    /// The client certificate is presented by the TLS layer; no header.
    Certificate,
    Bearer(TokenSource),
}

impl RequestAuth {
    pub fn from_resolved(auth: ResolvedAuth) -> Result<Self, C4cError> {
        Ok(match auth {
            ResolvedAuth::Basic { user, password } => {
                Self::Basic(basic_authorization(&user, &password)?)
            }
            ResolvedAuth::X509 { .. } => Self::Certificate,
            ResolvedAuth::ClientCredentials {
                token_url,
                client_id,
                client_secret,
                scope,
            } => Self::Bearer(TokenSource::new(Grant::ClientCredentials {
                token_url,
                client_id,
                client_secret,
                scope,
            })),
            ResolvedAuth::SamlBearer(saml) => Self::Bearer(TokenSource::new(Grant::Saml(saml))),
        })
    }
}

fn basic_authorization(user: &str, password: &SecretString) -> Result<http::HeaderValue, C4cError> {
    use base64::Engine;
    let credentials = format!("{user}:{}", password.expose_secret());
    let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
    let mut value = http::HeaderValue::try_from(format!("Basic {encoded}"))
        .map_err(|_| C4cError::config("auth.user", "not sendable in an HTTP header"))?;
    value.set_sensitive(true);
    Ok(value)
}

pub(crate) enum Grant {
    ClientCredentials {
        token_url: Url,
        client_id: String,
        client_secret: SecretString,
        scope: Option<String>,
    },
    Saml(Box<ResolvedSaml>),
}

struct CachedToken {
    token: SecretString,
    refresh_at: Instant,
    generation: u64,
}

/// A cached bearer token; the mutex is held during a refresh so only one runs at a time.
pub(crate) struct TokenSource {
    grant: Grant,
    cached: tokio::sync::Mutex<Option<CachedToken>>,
    generation: std::sync::atomic::AtomicU64,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

impl TokenSource {
    fn new(grant: Grant) -> Self {
        Self {
            grant,
            cached: tokio::sync::Mutex::new(None),
            generation: 0.into(),
        }
    }

    /// A valid token and its generation (to invalidate exactly this one after a 401).
    pub async fn token(
        &self,
        http: &reqwest::Client,
        service_host: &str,
        observer: &Arc<dyn C4cObserver>,
    ) -> Result<(SecretString, u64), C4cError> {
        let mut guard = self.cached.lock().await;
        if let Some(c) = guard.as_ref()
            && Instant::now() < c.refresh_at
        {
            return Ok((c.token.clone(), c.generation));
        }
        let (token, lifetime) = self.request(http, service_host, observer).await?;
        // Refresh ahead of expiry: a tenth of the lifetime, at least 5 s, at most 60 s.
        let margin = (lifetime / 10).clamp(Duration::from_secs(5), Duration::from_secs(60));
        let generation = self
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        *guard = Some(CachedToken {
            token: token.clone(),
            refresh_at: Instant::now() + lifetime.saturating_sub(margin),
            generation,
        });
        Ok((token, generation))
    }

    /// Drops the cached token if it is still the one that was refused.
    pub async fn invalidate(&self, generation: u64) {
        let mut guard = self.cached.lock().await;
        if guard.as_ref().is_some_and(|c| c.generation == generation) {
            *guard = None;
        }
    }

    async fn request(
        &self,
        http: &reqwest::Client,
        service_host: &str,
        observer: &Arc<dyn C4cObserver>,
    ) -> Result<(SecretString, Duration), C4cError> {
        let (token_url, client_id, client_secret, form) = match &self.grant {
            Grant::ClientCredentials {
                token_url,
                client_id,
                client_secret,
                scope,
            } => {
                let mut form = vec![
                    ("grant_type", "client_credentials".to_string()),
                    ("client_id", client_id.clone()),
                ];
                if let Some(scope) = scope {
                    form.push(("scope", scope.clone()));
                }
                (token_url, client_id, client_secret, form)
            }
            Grant::Saml(s) => {
                let assertion = assertion(s, service_host)?;
                let form = vec![
                    (
                        "grant_type",
                        "urn:ietf:params:oauth:grant-type:saml2-bearer".to_string(),
                    ),
                    ("client_id", s.client_id.clone()),
                    ("scope", s.scope.clone()),
                    ("assertion", assertion),
                ];
                (&s.token_url, &s.client_id, &s.client_secret, form)
            }
        };
        let started = Instant::now();
        let result = http
            .post(token_url.clone())
            .basic_auth(client_id, Some(client_secret.expose_secret()))
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await;
        let response = match result {
            Ok(r) => r,
            Err(e) => {
                let err = super::client::transport_error(&e).with_outcome_unknown(false);
                observer.on_call(CallKind::Token, None, started.elapsed(), Some(err.kind()));
                return Err(err);
            }
        };
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| super::client::transport_error(&e).with_outcome_unknown(false))?;
        if !(200..300).contains(&status) {
            // OAuth errors are {"error":…,"error_description":…}; fall back to OData/plain text.
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| {
                    let e = v.get("error").and_then(|e| e.as_str()).map(str::to_string);
                    let d = v
                        .get("error_description")
                        .and_then(|d| d.as_str())
                        .map(str::to_string);
                    match (e, d) {
                        (Some(e), Some(d)) => Some(format!("{e}: {d}")),
                        (Some(e), None) => Some(e),
                        (None, d) => d,
                    }
                })
                .unwrap_or_else(|| parse_error_body(&body).message);
            let err = C4cError::TokenRequest { status, message };
            observer.on_call(
                CallKind::Token,
                Some(status),
                started.elapsed(),
                Some(err.kind()),
            );
            return Err(err);
        }
        observer.on_call(CallKind::Token, Some(status), started.elapsed(), None);
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| C4cError::UnexpectedResponse(format!("token response: {e}")))?;
        let lifetime = match parsed.expires_in {
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => s.parse().ok(),
            _ => None,
        }
        .map(Duration::from_secs)
        // Without expires_in, assume a short life and let a 401 refresh it sooner.
        .unwrap_or(Duration::from_secs(300));
        Ok((SecretString::from(parsed.access_token), lifetime))
    }
}

fn assertion(s: &ResolvedSaml, service_host: &str) -> Result<String, C4cError> {
    use base64::Engine;
    match &s.source {
        SamlAssertionSource::Signed {
            user,
            issuer,
            audience,
            key_pem,
            cert_pem,
            lifetime,
        } => {
            let audience = if audience.is_empty() {
                service_host
            } else {
                audience.as_str()
            };
            let xml = saml::signed_assertion(
                &saml::AssertionInput {
                    issuer,
                    user,
                    audience,
                    recipient: s.token_url.as_str(),
                    client_id: &s.client_id,
                    now: chrono::Utc::now(),
                    lifetime: *lifetime,
                },
                key_pem,
                cert_pem,
            )?;
            Ok(base64::engine::general_purpose::STANDARD.encode(xml.as_bytes()))
        }
        SamlAssertionSource::Inline(a) => Ok(saml::encode_supplied(a.expose_secret())),
        SamlAssertionSource::File(path) => Ok(saml::encode_supplied(&super::config::read_text(
            "auth.assertion_file",
            path,
        )?)),
    }
}
