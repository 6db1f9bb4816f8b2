//! Simulator configuration. `SimConfig::default()` behaves like a strict tenant.

use std::net::SocketAddr;
use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::faults::FaultSettings;

/// What an explicit `$top` above the page size does (SAP's own examples disagree).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum TopPolicy {
    /// Serve at most one page and add a `__next` link for the rest (default: the harder case).
    #[default]
    CapAndPage,
    /// Return all `$top` entries in one response.
    Honour,
}

/// What a technical user may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Access {
    #[default]
    ReadWrite,
    /// Reads work; writes get 403 "No authorization".
    ReadOnly,
    /// Every OData call gets 403 "Inconsistent Authorization: Re-activate Communication
    /// Arrangement." (communication user without a work-centre view).
    NoWorkCenterView,
}

/// A user that may call the API (Basic, or as the subject of a client certificate or token).
#[derive(Clone, Debug)]
pub struct TechnicalUser {
    pub name: String,
    /// Debug output of `SecretString` is redacted.
    pub password: SecretString,
    pub access: Access,
}

impl TechnicalUser {
    pub fn new(name: impl Into<String>, password: impl Into<String>) -> Self {
        TechnicalUser {
            name: name.into(),
            password: SecretString::from(password.into()),
            access: Access::ReadWrite,
        }
    }
}

/// A registered OAuth 2.0 client.
#[derive(Clone, Debug)]
pub struct OAuthClient {
    pub client_id: String,
    pub secret: SecretString,
    /// The user a `client_credentials` token acts as.
    pub user: String,
}

impl OAuthClient {
    pub fn new(
        client_id: impl Into<String>,
        secret: impl Into<String>,
        user: impl Into<String>,
    ) -> Self {
        OAuthClient {
            client_id: client_id.into(),
            secret: SecretString::from(secret.into()),
            user: user.into(),
        }
    }
}

/// Whether writes need a CSRF token, per way of authenticating (SAP's guides disagree).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CsrfPolicy {
    pub basic: bool,
    pub bearer: bool,
    pub certificate: bool,
}

impl Default for CsrfPolicy {
    fn default() -> Self {
        CsrfPolicy {
            basic: true,
            bearer: true,
            certificate: true,
        }
    }
}

/// PEM material for serving HTTPS; with `client_ca_pem`, client certificates signed by that CA
/// authenticate as the user named by their subject CN (X.509 auth). A connection without a
/// client certificate may still use Basic or Bearer.
#[derive(Clone)]
pub struct TlsSettings {
    pub cert_pem: String,
    pub key_pem: SecretString,
    pub client_ca_pem: Option<String>,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("client_auth", &self.client_ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug)]
pub struct SimConfig {
    /// `None` binds 127.0.0.1 on an ephemeral port.
    pub listen: Option<SocketAddr>,
    pub users: Vec<TechnicalUser>,
    pub oauth_clients: Vec<OAuthClient>,
    /// Issuers (OAuth identity providers) whose SAML assertions the token endpoint accepts.
    /// Assertion signatures are not verified.
    pub saml_issuers: Vec<String>,
    /// Seed 002 says the token endpoint accepts `client_credentials`; no SAP document confirms it.
    pub allow_client_credentials: bool,
    pub token_lifetime: Duration,
    pub csrf: CsrfPolicy,
    /// How long a CSRF token (and its session) lives.
    pub csrf_token_lifetime: Duration,
    /// Employees to create at start, as POST bodies (deep insert allowed).
    pub seed_employees: Vec<serde_json::Value>,
    /// Generated employees added after the seed ones (see `generate_employees`).
    pub generated_employees: usize,
    pub generator_seed: u64,
    pub page_size: usize,
    pub expand_page_size: usize,
    pub top_policy: TopPolicy,
    /// Accept `ne` in `$filter` (refused by default: C4C does not document it).
    pub allow_ne: bool,
    /// Business role IDs the tenant knows (BusinessRoleID code list).
    pub business_roles: Vec<String>,
    /// Organisational unit IDs the tenant knows.
    pub org_units: Vec<String>,
    /// Faults active from the start (latency, error rates, …); changeable at runtime.
    pub faults: FaultSettings,
    pub tls: Option<TlsSettings>,
    /// Serve the `/__sim/` control API (on by default; it has no authentication).
    pub control_api: bool,
}

pub const DEFAULT_USER: &str = "SCIM_TECH_USER";
pub const DEFAULT_PASSWORD: &str = "Welcome1!Sim";

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: None,
            users: vec![TechnicalUser::new(DEFAULT_USER, DEFAULT_PASSWORD)],
            oauth_clients: vec![OAuthClient::new(
                "SCIM_BRIDGE_CLIENT",
                "Client-Secret-1",
                DEFAULT_USER,
            )],
            saml_issuers: vec!["SIM_IDP".to_owned()],
            allow_client_credentials: true,
            token_lifetime: Duration::from_secs(3600),
            csrf: CsrfPolicy::default(),
            csrf_token_lifetime: Duration::from_secs(30 * 60),
            seed_employees: Vec::new(),
            generated_employees: 0,
            generator_seed: 42,
            page_size: 1000,
            expand_page_size: 100,
            top_policy: TopPolicy::default(),
            allow_ne: false,
            business_roles: [
                "SALES_REP",
                "SALES_MANAGER",
                "SERVICE_AGENT",
                "SERVICE_MANAGER",
                "MARKETING",
                "ADMINISTRATOR",
                "Z_READ_ONLY",
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
            org_units: ["S1000", "S3110", "S3120", "S4000", "SVC100", "MKT200"]
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            faults: FaultSettings::default(),
            tls: None,
            control_api: true,
        }
    }
}
