//! OpenID Connect sign-in for admins (authorization code flow with PKCE, via `openidconnect`).
//! Only users whose ID token carries one of the configured group or role values get in, as
//! operator or viewer.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

use super::admin::Role;
use super::settings::OidcConfig;

/// Provider metadata (and its keys) are discovered again after this long.
const DISCOVERY_TTL: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the identity provider cannot be reached or answered wrongly: {0}")]
    Provider(String),
    #[error("the sign-in answer is not valid: {0}")]
    Invalid(String),
    #[error("your account is not in a group or role allowed into the bridge's admin")]
    NotAllowed,
    #[error("{0}")]
    Config(String),
}

/// What the browser must keep between the redirect and the callback (in a short-lived cookie).
pub struct PendingLogin {
    pub redirect_to: url::Url,
    pub state: String,
    pub verifier: SecretString,
    pub nonce: SecretString,
}

pub struct OidcLogin {
    config: OidcConfig,
    client_secret: Option<SecretString>,
    http: reqwest::Client,
    metadata: Mutex<Option<(Instant, CoreProviderMetadata)>>,
}

impl OidcLogin {
    pub fn new(config: OidcConfig) -> Result<Self, OidcError> {
        let client_secret = crate::config::resolve_secret(
            "auth.admin.oidc.client_secret",
            &config.client_secret,
            &config.client_secret_file,
        )
        .map_err(|error| OidcError::Config(error.to_string()))?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|error| OidcError::Config(error.to_string()))?;
        Ok(Self {
            config,
            client_secret,
            http,
            metadata: Mutex::new(None),
        })
    }

    async fn metadata(&self) -> Result<CoreProviderMetadata, OidcError> {
        let mut cached = self.metadata.lock().await;
        if let Some((at, metadata)) = cached.as_ref()
            && at.elapsed() < DISCOVERY_TTL
        {
            return Ok(metadata.clone());
        }
        let issuer = IssuerUrl::new(self.config.issuer_url.clone())
            .map_err(|error| OidcError::Config(error.to_string()))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|error| OidcError::Provider(error.to_string()))?;
        *cached = Some((Instant::now(), metadata.clone()));
        Ok(metadata)
    }

    async fn client(
        &self,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        OidcError,
    > {
        let redirect = RedirectUrl::new(self.config.redirect_url.clone())
            .map_err(|error| OidcError::Config(error.to_string()))?;
        Ok(CoreClient::from_provider_metadata(
            self.metadata().await?,
            ClientId::new(self.config.client_id.clone()),
            self.client_secret
                .as_ref()
                .map(|secret| ClientSecret::new(secret.expose_secret().to_owned())),
        )
        .set_redirect_uri(redirect))
    }

    /// Where to send the browser, and what to remember until it comes back.
    pub async fn begin(&self) -> Result<PendingLogin, OidcError> {
        let client = self.client().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in &self.config.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (redirect_to, state, nonce) = request.url();
        Ok(PendingLogin {
            redirect_to,
            state: state.secret().clone(),
            verifier: SecretString::from(verifier.secret().clone()),
            nonce: SecretString::from(nonce.secret().clone()),
        })
    }

    /// Exchanges the code, verifies the ID token (signature, issuer, audience, expiry, nonce)
    /// and maps its group/role claim to a role. Returns the user name and role.
    pub async fn finish(
        &self,
        code: &str,
        verifier: &SecretString,
        nonce: &SecretString,
    ) -> Result<(String, Role), OidcError> {
        let client = self.client().await?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|error| OidcError::Config(error.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.expose_secret().to_owned()))
            .request_async(&self.http)
            .await
            .map_err(|error| OidcError::Provider(error.to_string()))?;
        let id_token = response
            .id_token()
            .ok_or_else(|| OidcError::Invalid("no ID token in the answer".to_owned()))?;
        let token_verifier = client.id_token_verifier().set_allowed_algs([
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            CoreJwsSigningAlgorithm::RsaSsaPssSha256,
            CoreJwsSigningAlgorithm::EcdsaP256Sha256,
            CoreJwsSigningAlgorithm::EcdsaP384Sha384,
        ]);
        let claims = id_token
            .claims(
                &token_verifier,
                &Nonce::new(nonce.expose_secret().to_owned()),
            )
            .map_err(|error| OidcError::Invalid(error.to_string()))?;
        let subject = claims.subject().as_str().to_owned();
        // The token is verified above; its payload is read again for the configurable claims,
        // which the core claim types do not carry.
        let payload = id_token
            .to_string()
            .split('.')
            .nth(1)
            .and_then(|part| URL_SAFE_NO_PAD.decode(part).ok())
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            .ok_or_else(|| OidcError::Invalid("unreadable ID token payload".to_owned()))?;
        let values: Vec<&str> = match payload.get(&self.config.role_claim) {
            Some(serde_json::Value::String(value)) => vec![value.as_str()],
            Some(serde_json::Value::Array(items)) => {
                items.iter().filter_map(serde_json::Value::as_str).collect()
            }
            _ => Vec::new(),
        };
        let has = |allowed: &[String]| {
            values
                .iter()
                .any(|value| allowed.iter().any(|a| a == value))
        };
        let role = if has(&self.config.operator_values) {
            Role::Operator
        } else if has(&self.config.viewer_values) {
            Role::Viewer
        } else {
            return Err(OidcError::NotAllowed);
        };
        let name = payload
            .get(&self.config.username_claim)
            .and_then(serde_json::Value::as_str)
            .filter(|name| !name.is_empty() && name.len() <= 200)
            .map(str::to_owned)
            .unwrap_or(subject);
        Ok((name, role))
    }
}
