//! SCIM 2.0 protocol (RFC 7643/7644): schemas, filters, PATCH, lists, errors. Knows nothing of C4C or HTTP frameworks.
//!
//! - [`error`]: `ScimError` and the status/`scimType` table.
//! - [`schema`]: attribute definitions (one source for validation and discovery documents).
//! - [`resource`]: create/replace validation and `attributes`/`excludedAttributes` projection.
//! - [`filter`]: filter and PATCH-path AST, parsing, printing; [`eval`]: filter evaluation.
//! - [`patch`]: the atomic PATCH engine with Entra/Okta quirks.
//! - [`list`]: list/search queries and ListResponse; [`etag`]: versions; [`bulk`]: bulk model.

pub mod bulk;
pub mod error;
pub mod etag;
pub mod eval;
pub mod filter;
pub mod list;
pub mod patch;
pub mod resource;
pub mod schema;

/// Media type of SCIM bodies.
pub const SCIM_MEDIA_TYPE: &str = "application/scim+json";

/// Is a request `Content-Type` acceptable as JSON? (`application/scim+json`, `application/json`,
/// `text/json`, with or without parameters such as `charset`.)
pub fn is_json_media_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    matches!(
        essence.as_str(),
        "application/scim+json" | "application/json" | "text/json"
    )
}

pub use error::{ScimError, ScimType};

#[cfg(test)]
mod tests {
    #[test]
    fn json_media_types_are_accepted_with_parameters() {
        for ok in [
            "application/scim+json",
            "application/json; charset=utf-8",
            "text/json",
            "Application/SCIM+JSON;charset=UTF-8",
        ] {
            assert!(super::is_json_media_type(ok), "{ok}");
        }
        for bad in ["text/plain", "application/xml", ""] {
            assert!(!super::is_json_media_type(bad), "{bad}");
        }
    }
}
