//! Configuration: defaults, then a TOML file (`--config PATH`), then environment variables
//! `C4C_SCIM_BRIDGE__SECTION__KEY`. Every section denies unknown keys so that a typo is an error
//! naming the key and the file, not a silently ignored setting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Environment variables with this prefix override the file; `__` separates section and key.
pub const ENV_PREFIX: &str = "C4C_SCIM_BRIDGE__";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Figment's message already names the key and the file (or env variable) it came from.
    #[error("configuration error: {0}")]
    Invalid(String),
    #[error("configuration error: cannot read {key} from {path}: {reason}")]
    SecretFile {
        key: String,
        path: PathBuf,
        reason: String,
    },
    #[error("configuration error: set either {key} or {key}_file, not both")]
    SecretTwice { key: String },
    #[error("configuration error: {key} = {value:?}: {reason}")]
    BadValue {
        key: String,
        value: String,
        reason: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One readable line per event, for terminals.
    #[default]
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address the SCIM API listens on.
    pub listen: SocketAddr,
    /// Base path of the SCIM API.
    pub base_path: String,
    /// The SCIM base URL as clients reach it (behind a proxy), e.g.
    /// `https://scim.example.com/scim/v2`; used in `meta.location`. Default: from the Host header.
    pub public_url: Option<String>,
    /// Time limit for one request, in seconds.
    pub request_timeout_secs: u64,
    /// Largest accepted request body, in bytes (SCIM maxPayloadSize).
    pub body_limit_bytes: usize,
    /// How long shutdown waits for in-flight requests, in seconds.
    pub shutdown_grace_secs: u64,
    /// Serve HTTPS with this PEM certificate chain (with `tls_key_file`); plain HTTP without.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of `tls_cert_file` (a secret file).
    pub tls_key_file: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            base_path: "/scim/v2".to_owned(),
            public_url: None,
            request_timeout_secs: 30,
            body_limit_bytes: 1024 * 1024,
            shutdown_grace_secs: 30,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Log line format: `human` for terminals or `json` for collectors.
    pub format: LogFormat,
    /// A tracing filter directive, e.g. `info` or `c4c_scim_bridge=debug,info`.
    pub level: String,
    /// OTLP/HTTP traces endpoint, e.g. `http://otel-collector:4318/v1/traces`: when set, request
    /// and C4C call spans are exported there too (builds with the default `otlp` feature).
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported traces.
    pub otlp_service_name: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Human,
            level: "info".to_owned(),
            otlp_endpoint: None,
            otlp_service_name: "c4c-scim-bridge".to_owned(),
        }
    }
}

#[derive(Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite://PATH` (created on first use) or `postgres://user:pw@host/db`. A URL may carry a
    /// password, so it is kept as a secret and can come from `url_file`.
    #[serde(serialize_with = "serialize_optional_secret")]
    #[schemars(with = "Option<String>")]
    pub url: Option<SecretString>,
    /// File holding the store URL (a mounted secret), instead of `url`.
    pub url_file: Option<PathBuf>,
    /// Largest number of pooled database connections.
    pub max_connections: u32,
    /// Apply pending migrations when `serve` or `demo` starts.
    pub migrate_on_start: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: None,
            url_file: None,
            max_connections: 10,
            migrate_on_start: true,
        }
    }
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &self.url.as_ref().map(|_| "[redacted]"))
            .field("url_file", &self.url_file)
            .field("max_connections", &self.max_connections)
            .field("migrate_on_start", &self.migrate_on_start)
            .finish()
    }
}

/// The default embedded store: a SQLite file under `./data/`.
pub const DEFAULT_STORE_URL: &str = "sqlite://data/c4c-scim-bridge.db";

impl StoreConfig {
    /// The effective store URL, read from `url_file` when given.
    pub fn resolved_url(&self) -> Result<SecretString, ConfigError> {
        Ok(resolve_secret("store.url", &self.url, &self.url_file)?
            .unwrap_or_else(|| SecretString::from(DEFAULT_STORE_URL)))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Failed authentications one address may make within the window before it gets 429.
    pub failure_limit: u32,
    /// Length of the failure-counting window, in seconds.
    pub failure_window_secs: u64,
    pub oauth: crate::auth::settings::OAuthConfig,
    /// Identity providers whose JWTs are accepted (`[[auth.external]]`).
    pub external: Vec<crate::auth::settings::ExternalIssuerConfig>,
    pub admin: crate::auth::settings::AdminConfig,
    pub client_rate: crate::auth::settings::ClientRateConfig,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            failure_limit: 20,
            failure_window_secs: 60,
            oauth: crate::auth::settings::OAuthConfig::default(),
            external: Vec::new(),
            admin: crate::auth::settings::AdminConfig::default(),
            client_rate: crate::auth::settings::ClientRateConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub log: LogConfig,
    pub store: StoreConfig,
    pub auth: AuthConfig,
    /// The worker that applies queued C4C writes (operator releases and retries).
    pub outbox: crate::provisioning::outbox::OutboxConfig,
    /// The C4C tenant. Absent in the demo, which provisions into its built-in simulator.
    #[serde(skip_serializing)]
    pub c4c: Option<crate::c4c::config::C4cConfig>,
    /// Rules between SCIM attributes and C4C properties (default: the built-in rule set).
    #[serde(skip_serializing)]
    pub mapping: crate::mapping::MappingConfig,
    /// The deprovisioning circuit breaker (docs/safety.md).
    pub safety: crate::provisioning::safety::SafetyConfig,
    /// Drift reconciliation between C4C and what the bridge wrote (docs/safety.md).
    pub reconcile: crate::provisioning::reconcile::ReconcileConfig,
    /// SCIM groups onto C4C business roles or org units.
    pub groups: crate::provisioning::groups::GroupsConfig,
    /// `/Bulk` limits and how it is sent to C4C.
    pub bulk: crate::provisioning::bulk::BulkConfig,
}

fn serialize_optional_secret<S: serde::Serializer>(
    value: &Option<SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    // Defaults are serialised into figment's first layer; a secret never has a default.
    match value {
        Some(_) => serializer.serialize_str("[redacted]"),
        None => serializer.serialize_none(),
    }
}

/// Picks a secret from its inline value or from the file named by `KEY_file`.
pub fn resolve_secret(
    key: &str,
    inline: &Option<SecretString>,
    file: &Option<PathBuf>,
) -> Result<Option<SecretString>, ConfigError> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(ConfigError::SecretTwice {
            key: key.to_owned(),
        }),
        (Some(value), None) => Ok(Some(value.clone())),
        (None, Some(path)) => read_secret_file(key, path).map(Some),
        (None, None) => Ok(None),
    }
}

fn read_secret_file(key: &str, path: &Path) -> Result<SecretString, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::SecretFile {
        key: format!("{key}_file"),
        path: path.to_owned(),
        reason: error.to_string(),
    })?;
    // Mounted secrets usually end with a newline that is not part of the secret.
    let trimmed = text.trim_end_matches(['\r', '\n']);
    if trimmed.is_empty() {
        return Err(ConfigError::SecretFile {
            key: format!("{key}_file"),
            path: path.to_owned(),
            reason: "the file is empty".to_owned(),
        });
    }
    Ok(SecretString::from(trimmed.to_owned()))
}

impl Config {
    /// Loads defaults, then the file (if any), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, Env::prefixed(ENV_PREFIX).split("__"))
    }

    fn load_from(file: Option<&Path>, env: Env) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::Invalid(format!(
                    "config file {} does not exist or is not a file; pass an existing TOML file to --config",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        let config: Config = figment
            .merge(env)
            .extract()
            .map_err(|error| ConfigError::Invalid(one_line(&error)))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that types alone cannot, and that every secret file is readable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.server.base_path.starts_with('/') || self.server.base_path.ends_with('/') {
            return Err(ConfigError::BadValue {
                key: "server.base_path".to_owned(),
                value: self.server.base_path.clone(),
                reason: "must start with '/' and not end with '/', e.g. \"/scim/v2\"".to_owned(),
            });
        }
        if let Some(endpoint) = &self.log.otlp_endpoint {
            if !cfg!(feature = "otlp") {
                return Err(ConfigError::BadValue {
                    key: "log.otlp_endpoint".to_owned(),
                    value: endpoint.clone(),
                    reason: "this build has no OTLP support (built without the `otlp` feature)"
                        .to_owned(),
                });
            }
            if url::Url::parse(endpoint).map_or(true, |u| !matches!(u.scheme(), "http" | "https")) {
                return Err(ConfigError::BadValue {
                    key: "log.otlp_endpoint".to_owned(),
                    value: endpoint.clone(),
                    reason: "must be an http(s) URL, e.g. \"http://otel-collector:4318/v1/traces\""
                        .to_owned(),
                });
            }
        }
        if self.server.body_limit_bytes < 1024 {
            return Err(ConfigError::BadValue {
                key: "server.body_limit_bytes".to_owned(),
                value: self.server.body_limit_bytes.to_string(),
                reason: "must be at least 1024".to_owned(),
            });
        }
        if self.server.request_timeout_secs == 0 {
            return Err(ConfigError::BadValue {
                key: "server.request_timeout_secs".to_owned(),
                value: "0".to_owned(),
                reason: "must be at least 1".to_owned(),
            });
        }
        if self.auth.failure_limit == 0 {
            return Err(ConfigError::BadValue {
                key: "auth.failure_limit".to_owned(),
                value: "0".to_owned(),
                reason: "must be at least 1".to_owned(),
            });
        }
        match (&self.server.tls_cert_file, &self.server.tls_key_file) {
            (Some(cert), Some(key)) => {
                crate::http::tls::server_config(cert, key).map_err(|reason| {
                    ConfigError::Invalid(format!("server.tls_cert_file/tls_key_file: {reason}"))
                })?;
            }
            (None, None) => {}
            _ => {
                return Err(ConfigError::Invalid(
                    "set both server.tls_cert_file and server.tls_key_file, or neither".to_owned(),
                ));
            }
        }
        crate::auth::settings::validate(&self.auth).map_err(ConfigError::Invalid)?;
        if self.store.max_connections == 0 {
            return Err(ConfigError::BadValue {
                key: "store.max_connections".to_owned(),
                value: "0".to_owned(),
                reason: "must be at least 1".to_owned(),
            });
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level).map_err(|error| {
            ConfigError::BadValue {
                key: "log.level".to_owned(),
                value: self.log.level.clone(),
                reason: error.to_string(),
            }
        })?;
        if let Some(c4c) = &self.c4c {
            c4c.validate()
                .map_err(|error| ConfigError::Invalid(error.to_string()))?;
        }
        self.safety.validate().map_err(ConfigError::Invalid)?;
        self.reconcile.validate().map_err(ConfigError::Invalid)?;
        self.resolved_mapping()?;
        let url = self.store.resolved_url()?;
        crate::store::StoreKind::from_url(url.expose_secret()).map_err(|reason| {
            ConfigError::BadValue {
                key: "store.url".to_owned(),
                value: crate::store::redact_url(url.expose_secret()),
                reason,
            }
        })?;
        Ok(())
    }
}

impl Config {
    /// The mapping rules in force (read from `mapping.rules_file` when set), checked for
    /// problems that need no tenant metadata.
    pub fn resolved_mapping(&self) -> Result<crate::mapping::MappingConfig, ConfigError> {
        let mapping = self
            .mapping
            .clone()
            .resolve()
            .map_err(|error| ConfigError::Invalid(format!("mapping: {error}")))?;
        crate::mapping::Mapper::new(mapping.clone(), None).map_err(|problems| {
            let first = problems
                .first()
                .map(ToString::to_string)
                .unwrap_or_default();
            ConfigError::Invalid(format!("mapping: {first}"))
        })?;
        Ok(mapping)
    }
}

/// Figment errors can span lines (one per nested error); an operator wants the first, whole.
fn one_line(error: &figment::Error) -> String {
    let text = error.to_string();
    text.lines().next().unwrap_or_default().to_owned()
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail closures return its large error type
mod tests {
    use super::*;
    use std::io::Write;

    fn no_env() -> Env {
        Env::prefixed("C4C_SCIM_BRIDGE_TEST_UNUSED__").split("__")
    }

    fn write_toml(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        file
    }

    #[test]
    fn defaults_are_valid() {
        let config = Config::load_from(None, no_env()).unwrap();
        assert_eq!(config.server.base_path, "/scim/v2");
        assert_eq!(
            config.store.resolved_url().unwrap().expose_secret(),
            DEFAULT_STORE_URL
        );
    }

    #[test]
    fn unknown_key_names_key_and_file() {
        let file = write_toml("[server]\nlisen = \"127.0.0.1:1\"\n");
        let error = Config::load_from(Some(file.path()), no_env())
            .unwrap_err()
            .to_string();
        assert!(error.contains("lisen"), "{error}");
        // Figment prints the path relative to the working directory, which figment::Jail tests
        // running beside this one may change: compare the file name.
        let name = file
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(error.contains(&name), "{error}");
        assert!(!error.contains('\n'));
    }

    #[test]
    fn bad_value_names_key() {
        let file = write_toml("[server]\nlisten = \"not an address\"\n");
        let error = Config::load_from(Some(file.path()), no_env())
            .unwrap_err()
            .to_string();
        assert!(error.contains("listen"), "{error}");
    }

    #[test]
    fn env_overrides_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("c.toml", "[server]\nbase_path = \"/a\"\n")?;
            jail.set_env("C4C_SCIM_BRIDGE__SERVER__BASE_PATH", "/b");
            let config = Config::load(Some(Path::new("c.toml"))).unwrap();
            assert_eq!(config.server.base_path, "/b");
            Ok(())
        });
    }

    #[test]
    fn unknown_env_key_is_an_error() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("C4C_SCIM_BRIDGE__SERVER__NOPE", "1");
            let error = Config::load(None).unwrap_err().to_string();
            assert!(error.contains("nope"), "{error}");
            Ok(())
        });
    }

    #[test]
    fn secret_from_file_and_not_both() {
        let secret = write_toml("sqlite://x.db\n");
        let store = StoreConfig {
            url_file: Some(secret.path().to_owned()),
            ..StoreConfig::default()
        };
        assert_eq!(
            store.resolved_url().unwrap().expose_secret(),
            "sqlite://x.db"
        );
        let both = StoreConfig {
            url: Some(SecretString::from("sqlite://y.db")),
            ..store
        };
        assert!(matches!(
            both.resolved_url(),
            Err(ConfigError::SecretTwice { .. })
        ));
    }

    #[test]
    fn debug_redacts_store_url() {
        let store = StoreConfig {
            url: Some(SecretString::from("postgres://u:hunter2@h/db")),
            ..StoreConfig::default()
        };
        assert!(!format!("{store:?}").contains("hunter2"));
    }
}
