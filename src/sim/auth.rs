//! Authentication (Basic, Bearer tokens from the OAuth endpoint, client certificates) and the
//! session-bound CSRF tokens.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use rand::Rng;
use secrecy::ExposeSecret;

use super::config::{Access, SimConfig, TechnicalUser};

/// How the caller authenticated (CSRF enforcement is set per mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AuthMode {
    Basic,
    Bearer,
    Certificate,
}

#[derive(Clone, Debug)]
pub(crate) struct Caller {
    pub user: String,
    pub access: Access,
    pub mode: AuthMode,
}

#[derive(Debug)]
pub(crate) enum AuthError {
    /// No or wrong credentials.
    Unauthorized,
    /// A bearer token that has expired.
    Expired,
}

struct Session {
    user: String,
    token: String,
    expires: Instant,
}

struct IssuedToken {
    user: String,
    expires: Instant,
}

pub(crate) const SESSION_COOKIE: &str = "SAP_SESSIONID_SIM_100";

pub(crate) struct AuthState {
    users: Vec<TechnicalUser>,
    sessions: Mutex<HashMap<String, Session>>,
    tokens: Mutex<HashMap<String, IssuedToken>>,
    csrf_lifetime: Duration,
}

fn random_token(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::thread_rng().fill(&mut b[..]);
    URL_SAFE.encode(b)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Compares secrets without an early exit on the first differing byte.
fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) fn parse_basic(header: &str) -> Option<(String, String)> {
    let encoded = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))?;
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

impl AuthState {
    pub(crate) fn new(config: &SimConfig) -> Self {
        AuthState {
            users: config.users.clone(),
            sessions: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            csrf_lifetime: config.csrf_token_lifetime,
        }
    }

    pub(crate) fn user(&self, name: &str) -> Option<&TechnicalUser> {
        self.users.iter().find(|u| u.name == name)
    }

    /// Resolves the caller from the Authorization header, or from the TLS client certificate.
    pub(crate) fn authenticate(
        &self,
        authorization: Option<&str>,
        client_cert_cn: Option<&str>,
    ) -> Result<Caller, AuthError> {
        match authorization {
            Some(h) if h.len() > 7 && h[..7].eq_ignore_ascii_case("bearer ") => {
                let token = h[7..].trim();
                let tokens = lock(&self.tokens);
                let issued = tokens.get(token).ok_or(AuthError::Unauthorized)?;
                if issued.expires <= Instant::now() {
                    return Err(AuthError::Expired);
                }
                let u = self.user(&issued.user).ok_or(AuthError::Unauthorized)?;
                Ok(Caller {
                    user: u.name.clone(),
                    access: u.access,
                    mode: AuthMode::Bearer,
                })
            }
            Some(h) => {
                let (name, password) = parse_basic(h).ok_or(AuthError::Unauthorized)?;
                let u = self.user(&name).ok_or(AuthError::Unauthorized)?;
                if !same_secret(u.password.expose_secret(), &password) {
                    return Err(AuthError::Unauthorized);
                }
                Ok(Caller {
                    user: u.name.clone(),
                    access: u.access,
                    mode: AuthMode::Basic,
                })
            }
            None => {
                let cn = client_cert_cn.ok_or(AuthError::Unauthorized)?;
                let u = self.user(cn).ok_or(AuthError::Unauthorized)?;
                Ok(Caller {
                    user: u.name.clone(),
                    access: u.access,
                    mode: AuthMode::Certificate,
                })
            }
        }
    }

    pub(crate) fn issue_token(&self, user: &str, lifetime: Duration) -> String {
        let token = random_token(32);
        let mut tokens = lock(&self.tokens);
        // Long load tests issue many tokens: forget the expired ones.
        let now = Instant::now();
        tokens.retain(|_, t| t.expires > now);
        tokens.insert(
            token.clone(),
            IssuedToken {
                user: user.to_owned(),
                expires: Instant::now() + lifetime,
            },
        );
        token
    }

    /// CSRF fetch: reuses the caller's live session (same token) or opens a new one.
    /// Returns (token, new session id if one was opened).
    pub(crate) fn fetch_csrf(
        &self,
        user: &str,
        session_id: Option<&str>,
    ) -> (String, Option<String>) {
        let now = Instant::now();
        let mut sessions = lock(&self.sessions);
        sessions.retain(|_, s| s.expires > now);
        if let Some(sid) = session_id
            && let Some(s) = sessions.get(sid)
            && s.user == user
        {
            return (s.token.clone(), None);
        }
        let sid = random_token(24);
        let token = random_token(16);
        sessions.insert(
            sid.clone(),
            Session {
                user: user.to_owned(),
                token: token.clone(),
                expires: now + self.csrf_lifetime,
            },
        );
        (token, Some(sid))
    }

    /// A write passes when its header token matches the live session of its session cookie.
    pub(crate) fn check_csrf(
        &self,
        user: &str,
        session_id: Option<&str>,
        header_token: Option<&str>,
    ) -> bool {
        let (Some(sid), Some(token)) = (session_id, header_token) else {
            return false;
        };
        let sessions = lock(&self.sessions);
        sessions.get(sid).is_some_and(|s| {
            s.user == user && s.expires > Instant::now() && same_secret(&s.token, token)
        })
    }

    pub(crate) fn invalidate_sessions(&self) {
        lock(&self.sessions).clear();
    }

    /// Revokes every OAuth access token issued so far: the next call with one gets 401.
    pub(crate) fn revoke_tokens(&self) {
        lock(&self.tokens).clear();
    }
}

/// The value of one cookie in a `Cookie` header.
pub(crate) fn cookie_value<'a>(cookie_header: &'a str, name: &str) -> Option<&'a str> {
    cookie_header.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// What the token endpoint needs from a SAML 2.0 assertion. The signature is not verified: the
/// simulator trusts the issuer name (documented as assumed).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Assertion {
    pub issuer: Option<String>,
    pub name_id: Option<String>,
    pub not_on_or_after: Option<String>,
}

pub(crate) fn parse_assertion(b64: &str) -> Option<Assertion> {
    let raw = STANDARD
        .decode(b64.trim())
        .or_else(|_| URL_SAFE.decode(b64.trim()))
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(b64.trim()))
        .ok()?;
    let xml = String::from_utf8(raw).ok()?;
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut out = Assertion::default();
    let mut current: Option<Vec<u8>> = None;
    let mut saw_assertion = false;
    loop {
        match reader.read_event().ok()? {
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e) => {
                let local = e.local_name().as_ref().to_vec();
                if local == b"Assertion" {
                    saw_assertion = true;
                }
                if local == b"Conditions" {
                    for a in e.attributes().flatten() {
                        if a.key.local_name().as_ref() == b"NotOnOrAfter" {
                            out.not_on_or_after = a.unescape_value().ok().map(|v| v.into_owned());
                        }
                    }
                }
                current = Some(local);
            }
            quick_xml::events::Event::Text(t) => {
                let text = t.unescape().ok()?.trim().to_owned();
                match current.as_deref() {
                    Some(b"Issuer") if out.issuer.is_none() => out.issuer = Some(text),
                    Some(b"NameID") => out.name_id = Some(text),
                    _ => {}
                }
            }
            quick_xml::events::Event::End(_) => current = None,
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    saw_assertion.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_and_csrf_sessions() {
        let cfg = SimConfig::default();
        let a = AuthState::new(&cfg);
        let ok = format!("Basic {}", STANDARD.encode("SCIM_TECH_USER:Welcome1!Sim"));
        let bad = format!("Basic {}", STANDARD.encode("SCIM_TECH_USER:nope"));
        assert!(a.authenticate(Some(&ok), None).is_ok());
        assert!(a.authenticate(Some(&bad), None).is_err());
        assert!(a.authenticate(None, None).is_err());
        assert!(a.authenticate(None, Some("SCIM_TECH_USER")).is_ok());
        let (token, sid) = a.fetch_csrf("SCIM_TECH_USER", None);
        let sid = sid.unwrap();
        assert_eq!(token.len(), 24);
        assert!(token.ends_with("=="));
        assert!(a.check_csrf("SCIM_TECH_USER", Some(&sid), Some(&token)));
        assert!(!a.check_csrf("OTHER", Some(&sid), Some(&token)));
        assert!(!a.check_csrf("SCIM_TECH_USER", None, Some(&token)));
        let (again, none) = a.fetch_csrf("SCIM_TECH_USER", Some(&sid));
        assert_eq!((again.as_str(), none), (token.as_str(), None));
        a.invalidate_sessions();
        assert!(!a.check_csrf("SCIM_TECH_USER", Some(&sid), Some(&token)));
    }

    #[test]
    fn bearer_tokens_expire() {
        let a = AuthState::new(&SimConfig::default());
        let t = a.issue_token("SCIM_TECH_USER", Duration::from_secs(60));
        assert!(a.authenticate(Some(&format!("Bearer {t}")), None).is_ok());
        let t = a.issue_token("SCIM_TECH_USER", Duration::ZERO);
        assert!(matches!(
            a.authenticate(Some(&format!("Bearer {t}")), None),
            Err(AuthError::Expired)
        ));
        assert!(a.authenticate(Some("Bearer nope"), None).is_err());
    }

    #[test]
    fn reads_saml_assertions() {
        let xml = r#"<saml2:Assertion xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion" ID="_1"><saml2:Issuer>SIM_IDP</saml2:Issuer><saml2:Subject><saml2:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified">SCIM_TECH_USER</saml2:NameID></saml2:Subject><saml2:Conditions NotBefore="2020-01-01T00:00:00Z" NotOnOrAfter="2999-01-01T00:00:00Z"/></saml2:Assertion>"#;
        let a = parse_assertion(&STANDARD.encode(xml)).unwrap();
        assert_eq!(a.issuer.as_deref(), Some("SIM_IDP"));
        assert_eq!(a.name_id.as_deref(), Some("SCIM_TECH_USER"));
        assert_eq!(a.not_on_or_after.as_deref(), Some("2999-01-01T00:00:00Z"));
        assert!(parse_assertion("bm90IHhtbA==").is_none());
        assert_eq!(
            cookie_value("a=1; SAP_SESSIONID_SIM_100=xyz; b=2", SESSION_COOKIE),
            Some("xyz")
        );
    }
}
