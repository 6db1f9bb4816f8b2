//! The client's one error type, parsed from C4C statuses and OData error bodies.

use std::time::Duration;

use serde::Deserialize;

/// Every failure the C4C client reports. Variants follow what C4C answers, not HTTP codes.
#[derive(Debug, Clone, thiserror::Error)]
pub enum C4cError {
    /// 401: wrong credentials, expired or refused bearer token, SAML trust problems.
    #[error("C4C refused the credentials (401): {message}")]
    Unauthorized { message: String },
    /// 403 without a CSRF cause: the user lacks an authorization. `inconsistent_authorization`
    /// names C4C's "Inconsistent Authorization" case (a technical user on a service without
    /// a work-centre view, often triggered by a CSRF fetch or a metadata read).
    #[error("C4C forbade the call (403{}): {message}", if *.inconsistent_authorization { ", inconsistent authorization: re-activate the communication arrangement or set csrf = \"disabled\"" } else { "" })]
    Forbidden {
        message: String,
        inconsistent_authorization: bool,
    },
    /// 403 with `x-csrf-token: Required` that survived one token refresh.
    #[error("C4C still asks for a CSRF token after a refresh")]
    CsrfRequired,
    /// 404, or C4C's "object does not exist".
    #[error("not found in C4C: {message}")]
    NotFound { message: String },
    /// 412: the If-Match ETag is stale.
    #[error("C4C refused the change: the entity changed since it was read (412)")]
    PreconditionFailed { message: String },
    /// 400 (or another 4xx) that C4C raised while checking the request's content.
    #[error("C4C rejected the request ({status}, {code}){}: {message}", .property.as_deref().map(|p| format!(" on property {p}")).unwrap_or_default())]
    Validation {
        status: u16,
        code: String,
        message: String,
        property: Option<String>,
    },
    /// A `$filter` on a property C4C cannot filter by (found by the server or by our metadata).
    #[error("property {property} cannot be used in $filter: {message}")]
    PropertyNotFilterable { property: String, message: String },
    /// A filter that C4C's narrow `$filter` cannot express and that the client refuses to send.
    #[error("filter not supported by this tenant: {0}")]
    UnsupportedFilter(String),
    /// 429.
    #[error("C4C throttled the call (429){}", .retry_after.map(|d| format!(", retry after {}s", d.as_secs())).unwrap_or_default())]
    Throttled { retry_after: Option<Duration> },
    /// 502/503/504: maintenance window, upgrade, overloaded front end.
    #[error("C4C is unavailable ({status}){}", .retry_after.map(|d| format!(", retry after {}s", d.as_secs())).unwrap_or_default())]
    Unavailable {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    /// 500 and other server-side failures.
    #[error("C4C failed ({status}, {code}): {message}")]
    Server {
        status: u16,
        code: String,
        message: String,
    },
    /// No answer within the request or overall timeout. `outcome_unknown` is true for a
    /// write that may have been applied.
    #[error("C4C call timed out{}", if *.outcome_unknown { " (the write may have been applied)" } else { "" })]
    Timeout { outcome_unknown: bool },
    /// Connection failures. `outcome_unknown` is true for a write whose request may have
    /// reached the server (reset or drop after sending).
    #[error("connection to C4C failed{}: {message}", if *.outcome_unknown { " (the write may have been applied)" } else { "" })]
    Transport {
        message: String,
        outcome_unknown: bool,
    },
    /// The token endpoint refused to issue a token.
    #[error("token endpoint refused ({status}): {message}")]
    TokenRequest { status: u16, message: String },
    /// A response we could not understand (not OData JSON, broken multipart, ...).
    #[error("unexpected response from C4C: {0}")]
    UnexpectedResponse(String),
    /// Configuration or credential files that cannot be used; `key` names the config key.
    #[error("c4c.{key}: {message}")]
    Config { key: String, message: String },
    /// Caller input the client refuses before any call (bad key, unknown property, ...).
    #[error("invalid request: {0}")]
    InvalidInput(String),
}

/// Stable, low-cardinality names of the error variants, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    Unauthorized,
    Forbidden,
    InconsistentAuthorization,
    CsrfRequired,
    NotFound,
    PreconditionFailed,
    Validation,
    PropertyNotFilterable,
    UnsupportedFilter,
    Throttled,
    Unavailable,
    Server,
    Timeout,
    Transport,
    TokenRequest,
    UnexpectedResponse,
    Config,
    InvalidInput,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::InconsistentAuthorization => "inconsistent_authorization",
            Self::CsrfRequired => "csrf_required",
            Self::NotFound => "not_found",
            Self::PreconditionFailed => "precondition_failed",
            Self::Validation => "validation",
            Self::PropertyNotFilterable => "property_not_filterable",
            Self::UnsupportedFilter => "unsupported_filter",
            Self::Throttled => "throttled",
            Self::Unavailable => "unavailable",
            Self::Server => "server",
            Self::Timeout => "timeout",
            Self::Transport => "transport",
            Self::TokenRequest => "token_request",
            Self::UnexpectedResponse => "unexpected_response",
            Self::Config => "config",
            Self::InvalidInput => "invalid_input",
        }
    }
}

impl C4cError {
    /// The HTTP status C4C answered with, when one arrived (for traces in the mapping log).
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::Unauthorized { .. } => Some(401),
            Self::Forbidden { .. } | Self::CsrfRequired => Some(403),
            Self::NotFound { .. } => Some(404),
            Self::PreconditionFailed { .. } => Some(412),
            Self::Throttled { .. } => Some(429),
            Self::Validation { status, .. }
            | Self::Unavailable { status, .. }
            | Self::Server { status, .. }
            | Self::TokenRequest { status, .. } => Some(*status),
            Self::PropertyNotFilterable { .. }
            | Self::UnsupportedFilter(_)
            | Self::Timeout { .. }
            | Self::Transport { .. }
            | Self::UnexpectedResponse(_)
            | Self::Config { .. }
            | Self::InvalidInput(_) => None,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Unauthorized { .. } => ErrorKind::Unauthorized,
            Self::Forbidden {
                inconsistent_authorization: true,
                ..
            } => ErrorKind::InconsistentAuthorization,
            Self::Forbidden { .. } => ErrorKind::Forbidden,
            Self::CsrfRequired => ErrorKind::CsrfRequired,
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::PreconditionFailed { .. } => ErrorKind::PreconditionFailed,
            Self::Validation { .. } => ErrorKind::Validation,
            Self::PropertyNotFilterable { .. } => ErrorKind::PropertyNotFilterable,
            Self::UnsupportedFilter(_) => ErrorKind::UnsupportedFilter,
            Self::Throttled { .. } => ErrorKind::Throttled,
            Self::Unavailable { .. } => ErrorKind::Unavailable,
            Self::Server { .. } => ErrorKind::Server,
            Self::Timeout { .. } => ErrorKind::Timeout,
            Self::Transport { .. } => ErrorKind::Transport,
            Self::TokenRequest { .. } => ErrorKind::TokenRequest,
            Self::UnexpectedResponse(_) => ErrorKind::UnexpectedResponse,
            Self::Config { .. } => ErrorKind::Config,
            Self::InvalidInput(_) => ErrorKind::InvalidInput,
        }
    }

    /// True when a write may or may not have been applied: the caller must look before
    /// writing again (never re-POST blindly).
    pub fn is_ambiguous(&self) -> bool {
        matches!(
            self,
            Self::Timeout {
                outcome_unknown: true
            } | Self::Transport {
                outcome_unknown: true,
                ..
            }
        )
    }

    /// True for failures worth retrying later (the request was refused or never answered).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Throttled { .. }
                | Self::Unavailable { .. }
                | Self::Timeout { .. }
                | Self::Transport { .. }
        )
    }

    pub(crate) fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Config {
            key: key.into(),
            message: message.into(),
        }
    }

    /// Marks a timeout or transport failure of a write as ambiguous.
    pub(crate) fn with_outcome_unknown(self, unknown: bool) -> Self {
        match self {
            Self::Timeout { .. } => Self::Timeout {
                outcome_unknown: unknown,
            },
            Self::Transport { message, .. } => Self::Transport {
                message,
                outcome_unknown: unknown,
            },
            other => other,
        }
    }
}

/// OData v2 error body, JSON form: `{"error":{"code":…,"message":{"lang":…,"value":…}}}`.
#[derive(Debug, Deserialize)]
struct JsonErrorBody {
    error: JsonError,
}

#[derive(Debug, Deserialize)]
struct JsonError {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<JsonMessage>,
    #[serde(default)]
    target: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum JsonMessage {
    Localised { value: String },
    Plain(String),
}

/// Code and message found in an error body (JSON or XML); the raw text when neither parses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ODataErrorBody {
    pub code: String,
    pub message: String,
    pub target: Option<String>,
}

pub(crate) fn parse_error_body(body: &[u8]) -> ODataErrorBody {
    if let Ok(parsed) = serde_json::from_slice::<JsonErrorBody>(body) {
        let message = match parsed.error.message {
            Some(JsonMessage::Localised { value }) | Some(JsonMessage::Plain(value)) => value,
            None => String::new(),
        };
        return ODataErrorBody {
            code: parsed.error.code.unwrap_or_else(|| "ERROR".into()),
            message,
            target: parsed.error.target,
        };
    }
    if let Some(parsed) = parse_xml_error(body) {
        return parsed;
    }
    let text = String::from_utf8_lossy(body);
    let text: String = text.trim().chars().take(500).collect();
    ODataErrorBody {
        code: "ERROR".into(),
        message: text,
        target: None,
    }
}

fn parse_xml_error(body: &[u8]) -> Option<ODataErrorBody> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut current: Option<&'static str> = None;
    let mut code = None;
    let mut message = None;
    let mut seen_error = false;
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) => {
                let name = e.local_name();
                current = match name.as_ref() {
                    b"error" => {
                        seen_error = true;
                        None
                    }
                    b"code" if code.is_none() => Some("code"),
                    b"message" if message.is_none() => Some("message"),
                    _ => None,
                };
            }
            Event::Text(t) => {
                let text = t.unescape().ok()?.into_owned();
                match current {
                    Some("code") => code = Some(text),
                    Some("message") => message = Some(text),
                    _ => {}
                }
            }
            Event::End(_) => current = None,
            Event::Eof => break,
            _ => {}
        }
    }
    if !seen_error {
        return None;
    }
    Some(ODataErrorBody {
        code: code.unwrap_or_else(|| "ERROR".into()),
        message: message.unwrap_or_default(),
        target: None,
    })
}

/// Maps a non-success status, its headers and body to the typed error.
pub(crate) fn error_from_response(
    status: u16,
    csrf_required: bool,
    retry_after: Option<Duration>,
    body: &[u8],
) -> C4cError {
    let parsed = parse_error_body(body);
    let lower = parsed.message.to_ascii_lowercase();
    match status {
        401 => C4cError::Unauthorized {
            message: parsed.message,
        },
        403 if csrf_required || lower.contains("csrf") => C4cError::CsrfRequired,
        403 => C4cError::Forbidden {
            inconsistent_authorization: lower.contains("inconsistent authorization"),
            message: parsed.message,
        },
        404 => C4cError::NotFound {
            message: parsed.message,
        },
        412 => C4cError::PreconditionFailed {
            message: parsed.message,
        },
        429 => C4cError::Throttled { retry_after },
        502..=504 => C4cError::Unavailable {
            status,
            message: parsed.message,
            retry_after,
        },
        400..=499 => client_error(status, parsed),
        _ => C4cError::Server {
            status,
            code: parsed.code,
            message: parsed.message,
        },
    }
}

fn client_error(status: u16, parsed: ODataErrorBody) -> C4cError {
    let lower = parsed.message.to_ascii_lowercase();
    if lower.contains("does not exist") || lower.contains("not found") {
        return C4cError::NotFound {
            message: parsed.message,
        };
    }
    let property = parsed
        .target
        .clone()
        .or_else(|| quoted_property(&parsed.message));
    if lower.contains("filterable") || lower.contains("not filterable") {
        return C4cError::PropertyNotFilterable {
            property: property.unwrap_or_default(),
            message: parsed.message,
        };
    }
    C4cError::Validation {
        status,
        code: parsed.code,
        message: parsed.message,
        property,
    }
}

/// C4C names the property in its message (`Property 'Email' …`, `… property "Email" …`);
/// no structured field carries it.
fn quoted_property(message: &str) -> Option<String> {
    let lower = message.to_ascii_lowercase();
    let at = lower.find("property")?;
    let rest = message.get(at + "property".len()..)?;
    let rest = rest.trim_start_matches([' ', ':']);
    let (open, close) = match rest.chars().next()? {
        '\'' => ('\'', '\''),
        '"' => ('"', '"'),
        '`' => ('`', '`'),
        _ => {
            let word: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            return (!word.is_empty()
                && word.chars().next().is_some_and(|c| c.is_ascii_uppercase()))
            .then_some(word);
        }
    };
    let inner = rest.strip_prefix(open)?;
    let end = inner.find(close)?;
    let name = inner.get(..end)?;
    (!name.is_empty()).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_json_error_body() {
        let body = br#"{"error":{"code":"ERROR","message":{"lang":"en","value":"Delete not possible; object does not exist"}}}"#;
        let parsed = parse_error_body(body);
        assert_eq!(parsed.code, "ERROR");
        assert_eq!(parsed.message, "Delete not possible; object does not exist");
        assert!(matches!(
            error_from_response(400, false, None, body),
            C4cError::NotFound { .. }
        ));
    }

    #[test]
    fn parses_xml_error_body() {
        let body = br#"<?xml version="1.0" encoding="utf-8"?><error xmlns="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata"><code>ERROR</code><message xml:lang="en">No delete authorization. Please contact your administrator.</message></error>"#;
        let parsed = parse_error_body(body);
        assert_eq!(
            parsed.message,
            "No delete authorization. Please contact your administrator."
        );
    }

    #[test]
    fn maps_statuses_to_kinds() {
        let body = br#"{"error":{"code":"X","message":{"lang":"en","value":"m"}}}"#;
        assert_eq!(
            error_from_response(401, false, None, body).kind(),
            ErrorKind::Unauthorized
        );
        assert_eq!(
            error_from_response(403, true, None, body).kind(),
            ErrorKind::CsrfRequired
        );
        assert_eq!(
            error_from_response(403, false, None, body).kind(),
            ErrorKind::Forbidden
        );
        assert_eq!(
            error_from_response(412, false, None, body).kind(),
            ErrorKind::PreconditionFailed
        );
        assert_eq!(
            error_from_response(429, false, None, body).kind(),
            ErrorKind::Throttled
        );
        assert_eq!(
            error_from_response(503, false, None, body).kind(),
            ErrorKind::Unavailable
        );
        assert_eq!(
            error_from_response(500, false, None, body).kind(),
            ErrorKind::Server
        );
        assert_eq!(
            error_from_response(400, false, None, body).kind(),
            ErrorKind::Validation
        );
    }

    #[test]
    fn names_inconsistent_authorization() {
        let body = br#"{"error":{"code":"ERROR","message":{"lang":"en","value":"Inconsistent Authorization: Re-activate Communication Arrangement."}}}"#;
        let err = error_from_response(403, false, None, body);
        assert_eq!(err.kind(), ErrorKind::InconsistentAuthorization);
        assert!(err.to_string().contains("csrf"));
    }

    #[test]
    fn finds_property_in_messages() {
        assert_eq!(
            quoted_property("Property 'Email' is too long"),
            Some("Email".into())
        );
        assert_eq!(
            quoted_property("Value for property \"FirstName\" missing"),
            Some("FirstName".into())
        );
        assert_eq!(
            quoted_property("Property ETag is not filterable"),
            Some("ETag".into())
        );
        assert_eq!(quoted_property("no such thing"), None);
        let body = br#"{"error":{"code":"ERROR","message":{"lang":"en","value":"Property 'ETag' is not filterable"}}}"#;
        match error_from_response(400, false, None, body) {
            C4cError::PropertyNotFilterable { property, .. } => assert_eq!(property, "ETag"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn ambiguity_is_only_for_unknown_outcomes() {
        assert!(
            C4cError::Timeout {
                outcome_unknown: true
            }
            .is_ambiguous()
        );
        assert!(
            !C4cError::Timeout {
                outcome_unknown: false
            }
            .is_ambiguous()
        );
        assert!(!C4cError::Throttled { retry_after: None }.is_ambiguous());
        let t = C4cError::Transport {
            message: "x".into(),
            outcome_unknown: false,
        };
        assert!(t.with_outcome_unknown(true).is_ambiguous());
    }

    #[test]
    fn garbage_body_is_kept_as_text() {
        let parsed = parse_error_body(b"<html>Service Unavailable</html>");
        assert_eq!(parsed.code, "ERROR");
        assert!(parsed.message.contains("Service Unavailable"));
    }
}
