//! Configuration of SCIM client JWTs, external issuers and admin sessions (`[auth.*]`).

use std::path::PathBuf;

use jsonwebtoken::Algorithm;
use serde::{Deserialize, Serialize};

/// The bridge's own OAuth 2.0 client-credentials token endpoint (`POST /oauth/token`).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OAuthConfig {
    /// Serve `/oauth/token` and `/.well-known/jwks.json`, and accept the bridge's JWTs.
    pub enabled: bool,
    /// `iss` of issued tokens; use the bridge's public URL in production.
    pub issuer: String,
    /// `aud` of issued tokens.
    pub audience: String,
    /// Lifetime of an issued access token.
    pub token_ttl_secs: u64,
    /// Tolerance for clocks that differ between the bridge's replicas.
    pub clock_skew_secs: u64,
    /// An ES256 (P-256) private key in PKCS#8 PEM to sign with. Without it the bridge generates
    /// keys and keeps them in the store (`signing-key rotate` makes a new one).
    pub signing_key_file: Option<PathBuf>,
    /// Base64 of 32 random bytes (`openssl rand -base64 32`) that encrypts the signing keys the
    /// bridge stores, so that a copy of the database alone cannot mint tokens. Keys stored
    /// before it was set are still read.
    pub key_encryption_key_file: Option<PathBuf>,
}

impl Default for OAuthConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            issuer: "c4c-scim-bridge".to_owned(),
            audience: "c4c-scim-bridge".to_owned(),
            token_ttl_secs: 900,
            clock_skew_secs: 30,
            signing_key_file: None,
            key_encryption_key_file: None,
        }
    }
}

/// An identity provider whose own JWTs the SCIM API accepts (Entra ID, Okta...).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExternalIssuerConfig {
    /// The client name used in logs and the mapping log, e.g. `entra-prod`.
    pub name: String,
    /// Exact `iss` value expected.
    pub issuer: String,
    /// `aud` value expected (the application id URI or client id registered for the bridge).
    pub audience: String,
    /// Where the issuer publishes its signing keys.
    pub jwks_url: String,
    /// Signature algorithms accepted; asymmetric only.
    #[serde(default = "default_external_algorithms")]
    #[schemars(with = "Vec<String>")]
    pub algorithms: Vec<Algorithm>,
    /// Tolerance for clocks that differ between the issuer and the bridge, in seconds.
    #[serde(default = "default_external_skew")]
    pub clock_skew_secs: u64,
    /// How long a fetched JWKS is trusted before it is fetched again.
    #[serde(default = "default_jwks_refresh")]
    pub jwks_refresh_secs: u64,
    /// A token with an unknown `kid` makes the bridge fetch the JWKS again, at most this often.
    #[serde(default = "default_unknown_kid_refetch")]
    pub unknown_kid_refetch_secs: u64,
}

fn default_unknown_kid_refetch() -> u64 {
    5
}

fn default_external_algorithms() -> Vec<Algorithm> {
    vec![Algorithm::RS256]
}

fn default_external_skew() -> u64 {
    60
}

fn default_jwks_refresh() -> u64 {
    3600
}

impl ExternalIssuerConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.algorithms.is_empty() {
            return Err(format!(
                "auth.external {:?}: algorithms must name at least one, e.g. [\"RS256\"]",
                self.name
            ));
        }
        if let Some(symmetric) = self.algorithms.iter().find(|algorithm| {
            matches!(
                algorithm,
                Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
            )
        }) {
            return Err(format!(
                "auth.external {:?}: {symmetric:?} is symmetric and cannot be checked against a JWKS; use RS256, PS256 or ES256",
                self.name
            ));
        }
        let url = url::Url::parse(&self.jwks_url)
            .map_err(|error| format!("auth.external {:?}: jwks_url: {error}", self.name))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(format!(
                "auth.external {:?}: jwks_url must be an https URL",
                self.name
            ));
        }
        if self.issuer.is_empty() || self.audience.is_empty() {
            return Err(format!(
                "auth.external {:?}: issuer and audience must not be empty",
                self.name
            ));
        }
        Ok(())
    }
}

/// Admin sessions (the admin UI and API under /admin).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Mark the session cookie `Secure` (and name it `__Host-...`). Turn off only for plain-http
    /// development: browsers then send the cookie over unencrypted connections.
    pub cookie_secure: bool,
    /// A session ends after this long without a request.
    pub session_idle_secs: u64,
    /// A session ends this long after login, whatever its use.
    pub session_max_secs: u64,
    /// Sign-in through an OpenID Connect provider (`[auth.admin.oidc]`), beside local accounts.
    #[serde(skip_serializing)]
    pub oidc: Option<OidcConfig>,
}

/// An OpenID Connect provider for admin sign-in; only members of the configured groups or
/// roles get in.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The provider's issuer URL; discovery reads `/.well-known/openid-configuration` under it.
    pub issuer_url: String,
    /// The bridge's client id at the provider.
    pub client_id: String,
    /// Its client secret (secret; prefer `client_secret_file`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub client_secret: Option<secrecy::SecretString>,
    /// File holding the client secret.
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// This bridge's callback as registered at the provider: `https://HOST/admin/oidc/callback`.
    pub redirect_url: String,
    /// Scopes asked for besides `openid`.
    #[serde(default = "default_oidc_scopes")]
    pub scopes: Vec<String>,
    /// The ID-token claim holding the user's groups or roles (a string or a list of strings).
    #[serde(default = "default_role_claim")]
    pub role_claim: String,
    /// Claim values that make a user an operator.
    #[serde(default)]
    pub operator_values: Vec<String>,
    /// Claim values that make a user a viewer. A user with neither is refused.
    #[serde(default)]
    pub viewer_values: Vec<String>,
    /// The claim shown as the user's name (falls back to `sub`).
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
}

fn default_oidc_scopes() -> Vec<String> {
    vec!["profile".to_owned(), "email".to_owned()]
}

fn default_role_claim() -> String {
    "groups".to_owned()
}

fn default_username_claim() -> String {
    "preferred_username".to_owned()
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            cookie_secure: true,
            session_idle_secs: 30 * 60,
            session_max_secs: 12 * 3600,
            oidc: None,
        }
    }
}

/// Per-client request rate on the SCIM API (after authentication).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ClientRateConfig {
    /// Sustained requests per second one client (token name or OAuth client) may make.
    pub per_second: u32,
    /// Requests a client may make at once above the sustained rate.
    pub burst: u32,
}

impl Default for ClientRateConfig {
    fn default() -> Self {
        Self {
            per_second: 50,
            burst: 100,
        }
    }
}

/// Checks the `[auth]` settings types cannot, including that a signing key file is usable.
pub fn validate(auth: &crate::config::AuthConfig) -> Result<(), String> {
    for issuer in &auth.external {
        issuer.validate()?;
    }
    if auth.oauth.token_ttl_secs == 0 || auth.oauth.token_ttl_secs > 24 * 3600 {
        return Err("auth.oauth.token_ttl_secs must be between 1 and 86400".to_owned());
    }
    if auth.client_rate.per_second == 0 || auth.client_rate.burst == 0 {
        return Err("auth.client_rate.per_second and burst must be at least 1".to_owned());
    }
    if auth.admin.session_idle_secs == 0 || auth.admin.session_max_secs == 0 {
        return Err(
            "auth.admin.session_idle_secs and session_max_secs must be at least 1".to_owned(),
        );
    }
    if let Some(oidc) = &auth.admin.oidc {
        url::Url::parse(&oidc.issuer_url)
            .map_err(|error| format!("auth.admin.oidc.issuer_url: {error}"))?;
        url::Url::parse(&oidc.redirect_url)
            .map_err(|error| format!("auth.admin.oidc.redirect_url: {error}"))?;
        if oidc.operator_values.is_empty() && oidc.viewer_values.is_empty() {
            return Err("auth.admin.oidc: set operator_values and/or viewer_values (the groups or roles allowed in)".to_owned());
        }
        crate::config::resolve_secret(
            "auth.admin.oidc.client_secret",
            &oidc.client_secret,
            &oidc.client_secret_file,
        )
        .map_err(|error| error.to_string())?;
    }
    if let Some(path) = &auth.oauth.key_encryption_key_file {
        super::jwt::KeyEncryptionKey::from_file(path).map_err(|error| error.to_string())?;
    }
    if let Some(path) = &auth.oauth.signing_key_file {
        super::jwt::SigningKey::from_pem_file(path).map_err(|error| error.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail closures return its large error type
mod tests {
    use std::path::Path;

    use crate::config::Config;

    /// Loads inside a figment Jail, so that environment variables other tests set meanwhile
    /// cannot leak in.
    fn load(text: &str) -> Result<Config, String> {
        let mut loaded = None;
        figment::Jail::expect_with(|jail| {
            jail.create_file("c.toml", text)?;
            loaded =
                Some(Config::load(Some(Path::new("c.toml"))).map_err(|error| error.to_string()));
            Ok(())
        });
        loaded.unwrap()
    }

    #[test]
    fn external_issuers_and_oidc_parse_from_toml() {
        let config = load(
            "[[auth.external]]\nname = \"entra\"\nissuer = \"https://login.example/t/v2.0\"\n\
             audience = \"api://bridge\"\njwks_url = \"https://login.example/keys\"\n\
             algorithms = [\"RS256\", \"ES256\"]\n\
             [auth.admin.oidc]\nissuer_url = \"https://login.example/t/v2.0\"\nclient_id = \"c\"\n\
             client_secret = \"s\"\nredirect_url = \"https://bridge.example/admin/oidc/callback\"\n\
             operator_values = [\"ops\"]\n",
        )
        .unwrap();
        assert_eq!(config.auth.external[0].clock_skew_secs, 60);
        assert_eq!(config.auth.external[0].algorithms.len(), 2);
        let oidc = config.auth.admin.oidc.unwrap();
        assert_eq!(oidc.role_claim, "groups");
        assert!(
            !format!("{oidc:?}").contains("\"s\""),
            "secret redacted in Debug"
        );
    }

    #[test]
    fn unusable_settings_are_refused_with_their_key() {
        let error = load(
            "[[auth.external]]\nname = \"x\"\nissuer = \"i\"\naudience = \"a\"\n\
             jwks_url = \"https://idp.example/keys\"\nalgorithms = [\"HS256\"]\n",
        )
        .unwrap_err();
        assert!(error.contains("symmetric"), "{error}");
        let error = load(
            "[auth.admin.oidc]\nissuer_url = \"https://idp.example\"\nclient_id = \"c\"\n\
             redirect_url = \"https://b.example/admin/oidc/callback\"\n",
        )
        .unwrap_err();
        assert!(error.contains("operator_values"), "{error}");
        let error =
            load("[auth.oauth]\nsigning_key_file = \"/nonexistent/key.pem\"\n").unwrap_err();
        assert!(error.contains("/nonexistent/key.pem"), "{error}");
        let error = load("[auth.client_rate]\nper_second = 0\n").unwrap_err();
        assert!(error.contains("client_rate"), "{error}");
    }
}
