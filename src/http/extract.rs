//! Request extractors of the SCIM API. A bad body becomes a SCIM error, never axum's plain text.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde_json::Value;

use super::error::ApiError;
use crate::scim::error::ScimError;
use crate::scim::is_json_media_type;

/// Deepest JSON nesting accepted. SCIM resources need about 5 levels (a PATCH of a value path
/// inside an extension); the limit keeps hostile bodies from costing stack or time.
pub const MAX_JSON_DEPTH: usize = 32;

/// A JSON body sent as `application/scim+json` or `application/json`.
#[derive(Debug)]
pub struct ScimJson(pub Value);

impl<S: Send + Sync> FromRequest<S> for ScimJson {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("");
        // Some clients omit the header on small bodies; anything named must be JSON.
        if !content_type.is_empty() && !is_json_media_type(content_type) {
            return Err(ApiError(ScimError::plain(
                415,
                format!(
                    "content type {content_type:?} is not accepted; send application/scim+json"
                ),
            )));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                ApiError(ScimError::plain(
                    rejection.status().as_u16(),
                    rejection.body_text(),
                ))
            })?;
        parse_body(&bytes).map(ScimJson).map_err(ApiError)
    }
}

/// Parses a SCIM body: depth first (cheap, and before serde recurses), then JSON.
pub fn parse_body(bytes: &[u8]) -> Result<Value, ScimError> {
    let depth = json_depth(bytes);
    if depth > MAX_JSON_DEPTH {
        return Err(ScimError::invalid_syntax(format!(
            "the JSON body is nested {depth} levels deep; at most {MAX_JSON_DEPTH} are accepted"
        )));
    }
    serde_json::from_slice(bytes)
        .map_err(|error| ScimError::invalid_syntax(format!("the body is not valid JSON: {error}")))
}

/// The deepest nesting of arrays and objects, ignoring brackets inside strings. Malformed JSON
/// is not judged here: serde reports it.
fn json_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0_usize, 0_usize);
    let (mut in_string, mut escaped) = (false, false);
    for &byte in bytes {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::post;
    use tower::ServiceExt;

    #[test]
    fn depth_ignores_brackets_in_strings() {
        assert_eq!(json_depth(br#"{"a":"[[[{{{","b":[1,{"c":"\"]"}]}"#), 3);
        assert_eq!(json_depth(b"[]"), 1);
        assert_eq!(json_depth(b"3"), 0);
    }

    #[test]
    fn deep_bodies_and_bad_json_are_invalid_syntax() {
        let deep = format!("{}{}", "[".repeat(33), "]".repeat(33));
        let error = parse_body(deep.as_bytes()).unwrap_err();
        assert_eq!(error.status, 400);
        assert!(error.detail.contains("33 levels"));
        let ok = format!("{}{}", "[".repeat(32), "]".repeat(32));
        assert!(parse_body(ok.as_bytes()).is_ok());
        // A million brackets: refused without recursion.
        let bomb = "[".repeat(1_000_000);
        assert_eq!(parse_body(bomb.as_bytes()).unwrap_err().status, 400);
        let error = parse_body(b"{\"userName\": }").unwrap_err();
        assert_eq!(error.to_body()["scimType"], "invalidSyntax");
    }

    async fn send(content_type: Option<&str>, body: &'static str) -> (u16, Value) {
        let app = Router::new().route(
            "/",
            post(|ScimJson(value): ScimJson| async move { value.to_string() }),
        );
        let mut request = axum::http::Request::post("/");
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let response = app
            .oneshot(request.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn accepts_scim_and_plain_json_and_refuses_other_types() {
        let (status, echoed) =
            send(Some("application/scim+json; charset=utf-8"), r#"{"a":1}"#).await;
        assert_eq!((status, echoed["a"].as_i64()), (200, Some(1)));
        assert_eq!(send(Some("application/json"), "[]").await.0, 200);
        assert_eq!(send(None, "{}").await.0, 200);
        let (status, body) = send(Some("text/xml"), "<a/>").await;
        assert_eq!(status, 415);
        assert_eq!(body["status"], "415");
        let (status, body) = send(Some("application/json"), "{").await;
        assert_eq!(status, 400);
        assert_eq!(body["scimType"], "invalidSyntax");
    }
}
