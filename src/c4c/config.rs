//! `[c4c]` configuration section: service root, auth mode, limits, tenant profile.
//!
//! Every secret is a [`SecretString`] settable inline or through a `*_file` key;
//! [`C4cConfig::resolve`] reads the files and checks the combination, naming the key at fault.

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use super::error::C4cError;

/// The C4C tenant the bridge provisions into; absent, the bridge serves SCIM but answers
/// provisioning requests with 503. Example (TOML):
///
/// ```toml
/// [c4c]
/// base_url = "https://my000000.crm.ondemand.com/sap/c4c/odata/v1/c4codataapi/"
/// max_in_flight = 8
/// [c4c.auth]
/// mode = "basic"
/// user = "_TECHUSER"
/// password_file = "/run/secrets/c4c_password"
/// ```
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct C4cConfig {
    /// Service root, e.g. `https://myNNNNNN.crm.ondemand.com/sap/c4c/odata/v1/c4codataapi/`.
    #[serde(deserialize_with = "de_url")]
    #[schemars(with = "String")]
    pub base_url: Url,
    pub auth: AuthConfig,
    /// PEM file of extra CA certificates to trust (besides the built-in web roots).
    #[serde(default)]
    pub ca_cert_file: Option<PathBuf>,
    /// Time limits of calls to the tenant.
    #[serde(default)]
    pub timeouts: TimeoutConfig,
    /// Upper bound of concurrent HTTP calls to the tenant (C4C publishes no rate limits).
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Retries of failed idempotent calls.
    #[serde(default)]
    pub retry: RetryConfig,
    #[serde(default)]
    pub tenant: TenantProfile,
    #[serde(default)]
    pub csrf: CsrfMode,
    /// Optional `$filter` for `$metadata` (e.g. `"Employee,BusinessUser"`) to keep it small.
    #[serde(default)]
    pub metadata_filter: Option<String>,
}

/// `url` is built without its serde feature here; parse the string ourselves.
fn de_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Url, D::Error> {
    let text = String::deserialize(d)?;
    Url::parse(&text).map_err(|e| serde::de::Error::custom(format!("invalid URL {text:?}: {e}")))
}

fn default_max_in_flight() -> usize {
    8
}

/// Authentication, tagged by `mode`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthConfig {
    /// Communication-arrangement technical user with a password.
    Basic {
        /// The communication arrangement's technical user (for `basic`).
        user: String,
        /// Its password (secret; prefer `password_file`).
        #[serde(default)]
        #[schemars(with = "Option<String>")]
        password: Option<SecretString>,
        /// File holding the password.
        #[serde(default)]
        password_file: Option<PathBuf>,
    },
    /// X.509 client certificate: PEM cert + key, or a PKCS#12 file with its password.
    X509 {
        /// PEM client certificate (with `key_file`).
        #[serde(default)]
        cert_file: Option<PathBuf>,
        /// PEM private key of the client certificate (secret file).
        #[serde(default)]
        key_file: Option<PathBuf>,
        /// PKCS#12 file with certificate and key, as downloaded from the communication system.
        #[serde(default)]
        p12_file: Option<PathBuf>,
        /// Password of the PKCS#12 file (secret; prefer `p12_password_file`).
        #[serde(default)]
        #[schemars(with = "Option<String>")]
        p12_password: Option<SecretString>,
        /// File holding the PKCS#12 password.
        #[serde(default)]
        p12_password_file: Option<PathBuf>,
    },
    /// OAuth 2.0 client credentials grant.
    OauthClientCredentials {
        /// The tenant's OAuth token endpoint, e.g. `https://myNNNNNN.crm.ondemand.com/sap/bc/sec/oauth2/token`.
        #[serde(deserialize_with = "de_url")]
        #[schemars(with = "String")]
        token_url: Url,
        /// OAuth client id registered in the tenant.
        client_id: String,
        /// OAuth client secret (secret; prefer `client_secret_file`).
        #[serde(default)]
        #[schemars(with = "Option<String>")]
        client_secret: Option<SecretString>,
        /// File holding the OAuth client secret.
        #[serde(default)]
        client_secret_file: Option<PathBuf>,
        /// OAuth scope to request, if the tenant needs one.
        #[serde(default)]
        scope: Option<String>,
    },
    /// OAuth 2.0 SAML 2.0 bearer assertion grant: the bridge signs an assertion for
    /// `user` with `signing_key_file`/`signing_cert_file`, or sends the operator's
    /// `assertion`/`assertion_file` (base64 or raw XML).
    SamlBearer {
        /// The tenant's OAuth token endpoint, e.g. `https://myNNNNNN.crm.ondemand.com/sap/bc/sec/oauth2/token`.
        #[serde(deserialize_with = "de_url")]
        #[schemars(with = "String")]
        token_url: Url,
        /// OAuth client id registered in the tenant.
        client_id: String,
        /// OAuth client secret (secret; prefer `client_secret_file`).
        #[serde(default)]
        #[schemars(with = "Option<String>")]
        client_secret: Option<SecretString>,
        /// File holding the OAuth client secret.
        #[serde(default)]
        client_secret_file: Option<PathBuf>,
        /// Defaults to `UIWC:CC_HOME`, the only scope C4C names.
        #[serde(default)]
        scope: Option<String>,
        /// C4C user the assertion's NameID names.
        #[serde(default)]
        user: Option<String>,
        /// Issuer registered as OAuth identity provider in the tenant.
        #[serde(default)]
        issuer: Option<String>,
        /// Defaults to the tenant host of `base_url`, without scheme.
        #[serde(default)]
        audience: Option<String>,
        /// PEM private key that signs the assertion (secret file).
        #[serde(default)]
        signing_key_file: Option<PathBuf>,
        /// PEM certificate of the signing key, as registered in the tenant.
        #[serde(default)]
        signing_cert_file: Option<PathBuf>,
        /// A ready-made assertion (base64 or XML) instead of signing one.
        #[serde(default)]
        #[schemars(with = "Option<String>")]
        assertion: Option<SecretString>,
        /// File holding a ready-made assertion; re-read before each token request.
        #[serde(default)]
        assertion_file: Option<PathBuf>,
        /// Validity of a built assertion, seconds (default 300).
        #[serde(default)]
        assertion_lifetime_secs: Option<u64>,
    },
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeoutConfig {
    /// TCP + TLS connect, milliseconds.
    #[serde(default = "default_connect_ms")]
    pub connect_ms: u64,
    /// One HTTP exchange, milliseconds.
    #[serde(default = "default_request_ms")]
    pub request_ms: u64,
    /// One HTTP call including its retries and backoff waits, milliseconds.
    #[serde(default = "default_overall_ms")]
    pub overall_ms: u64,
}

fn default_connect_ms() -> u64 {
    10_000
}
fn default_request_ms() -> u64 {
    60_000
}
fn default_overall_ms() -> u64 {
    300_000
}

impl Default for TimeoutConfig {
    fn default() -> Self {
        Self {
            connect_ms: default_connect_ms(),
            request_ms: default_request_ms(),
            overall_ms: default_overall_ms(),
        }
    }
}

impl TimeoutConfig {
    pub fn connect(&self) -> Duration {
        Duration::from_millis(self.connect_ms)
    }
    pub fn request(&self) -> Duration {
        Duration::from_millis(self.request_ms)
    }
    pub fn overall(&self) -> Duration {
        Duration::from_millis(self.overall_ms)
    }
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts per HTTP call including the first (1 = no retry).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// First backoff between attempts, milliseconds (doubled each time, with jitter).
    #[serde(default = "default_base_backoff_ms")]
    pub base_backoff_ms: u64,
    /// Longest backoff between attempts, milliseconds.
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
}

fn default_max_attempts() -> u32 {
    4
}
fn default_base_backoff_ms() -> u64 {
    200
}
fn default_max_backoff_ms() -> u64 {
    10_000
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: default_max_attempts(),
            base_backoff_ms: default_base_backoff_ms(),
            max_backoff_ms: default_max_backoff_ms(),
        }
    }
}

/// What the tenant's `$filter` accepts beyond the documented core, and its paging.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantProfile {
    /// The tenant accepts `ne` in `$filter` (C4C documents it does not).
    #[serde(default)]
    pub allow_ne: bool,
    /// The tenant accepts `substringof` in `$filter` (C4C documents it does not).
    #[serde(default)]
    pub allow_substringof: bool,
    /// `$top` we send for full reads; `None` lets the server pick its page size
    /// (1000, or 100 with `$expand`). Next links are followed either way.
    #[serde(default)]
    pub page_size: Option<u32>,
    /// Values per `or`-chain in one GET when looking many keys up (longer lists are split).
    #[serde(default = "default_or_chunk")]
    pub max_or_values: usize,
}

fn default_or_chunk() -> usize {
    50
}

impl Default for TenantProfile {
    fn default() -> Self {
        Self {
            allow_ne: false,
            allow_substringof: false,
            page_size: None,
            max_or_values: default_or_chunk(),
        }
    }
}

/// CSRF handling. `auto`: fetch a token before the first write (on a GET the client makes
/// anyway when possible), keep it and the session cookies, refresh once on 403 `Required`.
/// `on_demand`: write without a token until the tenant asks for one. `disabled`: never fetch
/// (for technical users hitting "Inconsistent Authorization" on fetches).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CsrfMode {
    #[default]
    Auto,
    OnDemand,
    Disabled,
}

/// Credentials read from inline values or files, checked.
#[derive(Debug, Clone)]
pub(crate) enum ResolvedAuth {
    Basic {
        /// The communication arrangement's technical user (for `basic`).
        user: String,
        password: SecretString,
    },
    X509 {
        identity_pem: SecretString,
    },
    ClientCredentials {
        /// The tenant's OAuth token endpoint, e.g. `https://myNNNNNN.crm.ondemand.com/sap/bc/sec/oauth2/token`.
        token_url: Url,
        /// OAuth client id registered in the tenant.
        client_id: String,
        client_secret: SecretString,
        scope: Option<String>,
    },
    SamlBearer(Box<ResolvedSaml>),
}

#[derive(Debug, Clone)]
pub(crate) struct ResolvedSaml {
    pub token_url: Url,
    pub client_id: String,
    pub client_secret: SecretString,
    pub scope: String,
    pub source: SamlAssertionSource,
}

#[derive(Debug, Clone)]
pub(crate) enum SamlAssertionSource {
    /// Built and signed by us for every token request.
    Signed {
        /// The communication arrangement's technical user (for `basic`).
        user: String,
        issuer: String,
        audience: String,
        key_pem: SecretString,
        cert_pem: String,
        lifetime: Duration,
    },
    Inline(SecretString),
    /// Re-read before every token request so the operator can rotate it.
    File(PathBuf),
}

impl C4cConfig {
    /// Reads secret files and checks the auth combination. Errors name the config key.
    pub(crate) fn resolve_auth(&self) -> Result<ResolvedAuth, C4cError> {
        match &self.auth {
            AuthConfig::Basic {
                user,
                password,
                password_file,
            } => {
                if user.is_empty() {
                    return Err(C4cError::config("auth.user", "must not be empty"));
                }
                let password = one_secret("auth.password", password, password_file)?;
                Ok(ResolvedAuth::Basic {
                    user: user.clone(),
                    password,
                })
            }
            AuthConfig::X509 {
                cert_file,
                key_file,
                p12_file,
                p12_password,
                p12_password_file,
            } => {
                let identity_pem = match (cert_file, key_file, p12_file) {
                    (Some(cert), Some(key), None) => {
                        let mut pem = read_text("auth.cert_file", cert)?;
                        pem.push('\n');
                        pem.push_str(&read_text("auth.key_file", key)?);
                        SecretString::from(pem)
                    }
                    (None, None, Some(p12)) => {
                        let password =
                            one_secret("auth.p12_password", p12_password, p12_password_file)?;
                        super::tls::p12_to_pem(p12, &password)?
                    }
                    (_, _, Some(_)) => {
                        return Err(C4cError::config(
                            "auth.p12_file",
                            "set either p12_file or cert_file + key_file, not both",
                        ));
                    }
                    (None, _, None) => {
                        return Err(C4cError::config(
                            "auth.cert_file",
                            "missing (or set p12_file)",
                        ));
                    }
                    (Some(_), None, None) => {
                        return Err(C4cError::config("auth.key_file", "missing"));
                    }
                };
                super::tls::check_identity_pem(&identity_pem)?;
                Ok(ResolvedAuth::X509 { identity_pem })
            }
            AuthConfig::OauthClientCredentials {
                token_url,
                client_id,
                client_secret,
                client_secret_file,
                scope,
            } => Ok(ResolvedAuth::ClientCredentials {
                token_url: token_url.clone(),
                client_id: non_empty("auth.client_id", client_id)?,
                client_secret: one_secret("auth.client_secret", client_secret, client_secret_file)?,
                scope: scope.clone(),
            }),
            AuthConfig::SamlBearer {
                token_url,
                client_id,
                client_secret,
                client_secret_file,
                scope,
                user,
                issuer,
                audience,
                signing_key_file,
                signing_cert_file,
                assertion,
                assertion_file,
                assertion_lifetime_secs,
            } => {
                let client_secret =
                    one_secret("auth.client_secret", client_secret, client_secret_file)?;
                let supplied = assertion.is_some() || assertion_file.is_some();
                if assertion.is_some() && assertion_file.is_some() {
                    return Err(C4cError::config(
                        "auth.assertion",
                        "set either assertion or assertion_file, not both",
                    ));
                }
                if supplied && signing_key_file.is_some() {
                    return Err(C4cError::config(
                        "auth.signing_key_file",
                        "set either a supplied assertion or a signing key, not both",
                    ));
                }
                let source = if let Some(inline) = assertion {
                    SamlAssertionSource::Inline(inline.clone())
                } else if let Some(path) = assertion_file {
                    read_text("auth.assertion_file", path)?;
                    SamlAssertionSource::File(path.clone())
                } else if let Some(key_file) = signing_key_file {
                    let cert_file = signing_cert_file.as_ref().ok_or_else(|| {
                        C4cError::config(
                            "auth.signing_cert_file",
                            "missing (needed with signing_key_file)",
                        )
                    })?;
                    let user = user.clone().ok_or_else(|| {
                        C4cError::config("auth.user", "missing: the C4C user the assertion names")
                    })?;
                    let issuer = issuer.clone().ok_or_else(|| {
                        C4cError::config(
                            "auth.issuer",
                            "missing: the OAuth IdP name registered in C4C",
                        )
                    })?;
                    let audience = match audience {
                        Some(a) => a.clone(),
                        None => self
                            .base_url
                            .host_str()
                            .map(str::to_string)
                            .ok_or_else(|| C4cError::config("base_url", "has no host"))?,
                    };
                    let key_pem = SecretString::from(read_text("auth.signing_key_file", key_file)?);
                    let cert_pem = read_text("auth.signing_cert_file", cert_file)?;
                    super::saml::check_signing_material(&key_pem, &cert_pem)?;
                    SamlAssertionSource::Signed {
                        user,
                        issuer,
                        audience,
                        key_pem,
                        cert_pem,
                        lifetime: Duration::from_secs(assertion_lifetime_secs.unwrap_or(300)),
                    }
                } else {
                    return Err(C4cError::config(
                        "auth.signing_key_file",
                        "missing: set signing_key_file + signing_cert_file, or assertion / assertion_file",
                    ));
                };
                Ok(ResolvedAuth::SamlBearer(Box::new(ResolvedSaml {
                    token_url: token_url.clone(),
                    client_id: non_empty("auth.client_id", client_id)?,
                    client_secret,
                    scope: scope.clone().unwrap_or_else(|| "UIWC:CC_HOME".into()),
                    source,
                })))
            }
        }
    }

    /// Checks everything that can be checked without a network call.
    pub fn validate(&self) -> Result<(), C4cError> {
        if !matches!(self.base_url.scheme(), "https" | "http") {
            return Err(C4cError::config("base_url", "must be an http(s) URL"));
        }
        if self.max_in_flight == 0 {
            return Err(C4cError::config("max_in_flight", "must be at least 1"));
        }
        if self.retry.max_attempts == 0 {
            return Err(C4cError::config("retry.max_attempts", "must be at least 1"));
        }
        if self.tenant.max_or_values == 0 {
            return Err(C4cError::config(
                "tenant.max_or_values",
                "must be at least 1",
            ));
        }
        if self.timeouts.request_ms == 0
            || self.timeouts.overall_ms == 0
            || self.timeouts.connect_ms == 0
        {
            return Err(C4cError::config("timeouts", "timeouts must be above 0 ms"));
        }
        if let Some(ca) = &self.ca_cert_file {
            read_text("ca_cert_file", ca)?;
        }
        self.resolve_auth().map(|_| ())
    }

    /// Service root with a trailing slash, so relative joins stay under it.
    pub(crate) fn service_root(&self) -> Url {
        let mut url = self.base_url.clone();
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        url
    }
}

fn non_empty(key: &str, value: &str) -> Result<String, C4cError> {
    if value.is_empty() {
        return Err(C4cError::config(key, "must not be empty"));
    }
    Ok(value.to_string())
}

/// A secret given inline (`key`) or by file (`key_file`), exactly one of them.
fn one_secret(
    key: &str,
    inline: &Option<SecretString>,
    file: &Option<PathBuf>,
) -> Result<SecretString, C4cError> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(C4cError::config(
            key,
            format!("set either {key} or {key}_file, not both"),
        )),
        (Some(value), None) => Ok(value.clone()),
        (None, Some(path)) => {
            let text = read_text(&format!("{key}_file"), path)?;
            // Files written by editors or `echo` end with a newline that is not part of the secret.
            Ok(SecretString::from(
                text.trim_end_matches(['\n', '\r']).to_string(),
            ))
        }
        (None, None) => Err(C4cError::config(
            key,
            format!("missing (set {key} or {key}_file)"),
        )),
    }
}

pub(crate) fn read_text(key: &str, path: &Path) -> Result<String, C4cError> {
    std::fs::read_to_string(path)
        .map_err(|e| C4cError::config(key, format!("cannot read {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn parse(toml_text: &str) -> Result<C4cConfig, toml::de::Error> {
        toml::from_str(toml_text)
    }

    #[test]
    fn basic_config_with_defaults() {
        let cfg = parse(
            r#"
            base_url = "https://my000000.crm.ondemand.com/sap/c4c/odata/v1/c4codataapi"
            [auth]
            mode = "basic"
            user = "_TECH"
            password = "s3cret"
            "#,
        )
        .unwrap();
        assert_eq!(cfg.max_in_flight, 8);
        assert_eq!(cfg.csrf, CsrfMode::Auto);
        assert!(cfg.service_root().as_str().ends_with("c4codataapi/"));
        match cfg.resolve_auth().unwrap() {
            ResolvedAuth::Basic { user, password } => {
                assert_eq!(user, "_TECH");
                assert_eq!(password.expose_secret(), "s3cret");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(!format!("{cfg:?}").contains("s3cret"));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = parse(
            r#"
            base_url = "https://x/"
            colour = "blue"
            [auth]
            mode = "basic"
            user = "u"
            password = "p"
            "#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
        let err = parse(
            r#"
            base_url = "https://x/"
            [auth]
            mode = "basic"
            user = "u"
            pasword = "p"
            "#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("pasword"), "{err}");
    }

    #[test]
    fn secret_from_file_is_trimmed_and_both_forms_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "from-file\n").unwrap();
        let cfg = parse(&format!(
            "base_url = \"https://x/\"\n[auth]\nmode = \"basic\"\nuser = \"u\"\npassword_file = {:?}\n",
            path.display().to_string()
        ))
        .unwrap();
        match cfg.resolve_auth().unwrap() {
            ResolvedAuth::Basic { password, .. } => {
                assert_eq!(password.expose_secret(), "from-file")
            }
            other => panic!("unexpected {other:?}"),
        }
        let cfg = parse(&format!(
            "base_url = \"https://x/\"\n[auth]\nmode = \"basic\"\nuser = \"u\"\npassword = \"a\"\npassword_file = {:?}\n",
            path.display().to_string()
        ))
        .unwrap();
        let err = cfg.resolve_auth().unwrap_err();
        assert!(err.to_string().contains("c4c.auth.password"), "{err}");
    }

    #[test]
    fn missing_secret_names_the_key() {
        let cfg = parse(
            "base_url = \"https://x/\"\n[auth]\nmode = \"oauth_client_credentials\"\ntoken_url = \"https://x/token\"\nclient_id = \"c\"\n",
        )
        .unwrap();
        let err = cfg.validate().unwrap_err();
        assert!(err.to_string().contains("c4c.auth.client_secret"), "{err}");
    }

    #[test]
    fn saml_needs_key_or_assertion() {
        let cfg = parse(
            "base_url = \"https://x/\"\n[auth]\nmode = \"saml_bearer\"\ntoken_url = \"https://x/token\"\nclient_id = \"c\"\nclient_secret = \"s\"\n",
        )
        .unwrap();
        let err = cfg.validate().unwrap_err();
        assert!(err.to_string().contains("signing_key_file"), "{err}");
        let cfg = parse(
            "base_url = \"https://x/\"\n[auth]\nmode = \"saml_bearer\"\ntoken_url = \"https://x/token\"\nclient_id = \"c\"\nclient_secret = \"s\"\nassertion = \"PHNhbWw+\"\n",
        )
        .unwrap();
        cfg.validate().unwrap();
    }

    #[test]
    fn x509_needs_a_key() {
        let cfg = parse(
            "base_url = \"https://x/\"\n[auth]\nmode = \"x509\"\ncert_file = \"/nonexistent.pem\"\n",
        )
        .unwrap();
        let err = cfg.validate().unwrap_err();
        assert!(err.to_string().contains("c4c.auth.key_file"), "{err}");
    }
}
