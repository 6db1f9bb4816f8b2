//! SCIM error responses (RFC 7644 §3.12): the one table of HTTP status and `scimType`.

use serde_json::{Value, json};
use std::fmt;

/// Schema URN of a SCIM error body.
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// RFC 7644 Table 9 `scimType` keywords.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScimType {
    InvalidFilter,
    TooMany,
    Uniqueness,
    Mutability,
    InvalidSyntax,
    InvalidPath,
    NoTarget,
    InvalidValue,
    InvalidVers,
    Sensitive,
}

impl ScimType {
    /// Every keyword, in RFC order (for docs and tests).
    pub const ALL: [ScimType; 10] = [
        ScimType::InvalidFilter,
        ScimType::TooMany,
        ScimType::Uniqueness,
        ScimType::Mutability,
        ScimType::InvalidSyntax,
        ScimType::InvalidPath,
        ScimType::NoTarget,
        ScimType::InvalidValue,
        ScimType::InvalidVers,
        ScimType::Sensitive,
    ];

    /// The keyword as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidVers => "invalidVers",
            ScimType::Sensitive => "sensitive",
        }
    }

    /// The HTTP status that goes with the keyword (RFC 7644 Table 9).
    pub fn status(self) -> u16 {
        match self {
            ScimType::Uniqueness => 409,
            ScimType::Sensitive => 403,
            _ => 400,
        }
    }
}

impl fmt::Display for ScimType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A protocol error, ready to be rendered as an RFC 7644 §3.12 body by the HTTP edge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}{}: {detail}", scim_type.map(|t| format!(" {t}")).unwrap_or_default())]
pub struct ScimError {
    /// HTTP status code.
    pub status: u16,
    /// `scimType` keyword, for 400/403/409 errors that have one.
    pub scim_type: Option<ScimType>,
    /// Human-readable, actionable detail (IdPs show it in their provisioning logs).
    pub detail: String,
}

impl ScimError {
    /// An error with a `scimType`; the status comes from the code table.
    pub fn typed(scim_type: ScimType, detail: impl Into<String>) -> Self {
        Self {
            status: scim_type.status(),
            scim_type: Some(scim_type),
            detail: detail.into(),
        }
    }

    /// An error without a `scimType`.
    pub fn plain(status: u16, detail: impl Into<String>) -> Self {
        Self {
            status,
            scim_type: None,
            detail: detail.into(),
        }
    }

    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::typed(ScimType::InvalidFilter, detail)
    }
    pub fn too_many(detail: impl Into<String>) -> Self {
        Self::typed(ScimType::TooMany, detail)
    }
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        Self::typed(ScimType::Uniqueness, detail)
    }
    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::typed(ScimType::Mutability, detail)
    }
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::typed(ScimType::InvalidSyntax, detail)
    }
    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::typed(ScimType::InvalidPath, detail)
    }
    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::typed(ScimType::NoTarget, detail)
    }
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::typed(ScimType::InvalidValue, detail)
    }
    pub fn invalid_vers(detail: impl Into<String>) -> Self {
        Self::typed(ScimType::InvalidVers, detail)
    }
    pub fn sensitive(detail: impl Into<String>) -> Self {
        Self::typed(ScimType::Sensitive, detail)
    }
    /// 401: missing or bad credentials.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::plain(401, detail)
    }
    /// 403: authenticated but not allowed.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::plain(403, detail)
    }
    /// 404: unknown resource or endpoint.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::plain(404, detail)
    }
    /// 409 without `scimType` (e.g. unresolvable bulk cross-references).
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::plain(409, detail)
    }
    /// 412: `If-Match` did not match the current version.
    pub fn precondition_failed(detail: impl Into<String>) -> Self {
        Self::plain(412, detail)
    }
    /// 413: bulk request over `maxOperations` or `maxPayloadSize`.
    pub fn payload_too_large(detail: impl Into<String>) -> Self {
        Self::plain(413, detail)
    }
    /// 500: an internal failure (detail must not leak internals).
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::plain(500, detail)
    }
    /// 501: operation not supported.
    pub fn not_implemented(detail: impl Into<String>) -> Self {
        Self::plain(501, detail)
    }

    /// The RFC 7644 §3.12 JSON body: status as a string, `scimType` only when set.
    pub fn to_body(&self) -> Value {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let (Some(t), Some(obj)) = (self.scim_type, body.as_object_mut()) {
            obj.insert("scimType".into(), Value::String(t.as_str().into()));
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_status_as_string_and_scim_type() {
        let body = ScimError::invalid_filter("bad").to_body();
        assert_eq!(
            body,
            json!({"schemas": [ERROR_SCHEMA], "status": "400", "scimType": "invalidFilter", "detail": "bad"})
        );
    }

    #[test]
    fn body_omits_scim_type_when_absent() {
        let body = ScimError::not_found("User x not found").to_body();
        assert_eq!(body["status"], "404");
        assert!(body.get("scimType").is_none());
    }

    #[test]
    fn code_table_matches_rfc_7644_table_9() {
        for t in ScimType::ALL {
            let expected = match t {
                ScimType::Uniqueness => 409,
                ScimType::Sensitive => 403,
                _ => 400,
            };
            assert_eq!(ScimError::typed(t, "x").status, expected, "{t}");
        }
        assert_eq!(ScimError::uniqueness("dup").to_body()["status"], "409");
        assert_eq!(ScimError::precondition_failed("etag").status, 412);
    }

    #[test]
    fn display_names_status_type_and_detail() {
        assert_eq!(
            ScimError::no_target("nothing").to_string(),
            "400 noTarget: nothing"
        );
        assert_eq!(ScimError::not_found("gone").to_string(), "404: gone");
    }
}
