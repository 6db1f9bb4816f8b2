//! The edge where errors become SCIM error bodies (RFC 7644 §3.12), once. The body itself comes
//! from `scim::error::ScimError::to_body`, the one table of statuses and scimTypes.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::scim::SCIM_MEDIA_TYPE;
use crate::scim::error::ScimError;

/// A response error of the SCIM API.
#[derive(Debug)]
pub struct ApiError(pub ScimError);

impl From<ScimError> for ApiError {
    fn from(error: ScimError) -> Self {
        Self(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        scim_json(status, &self.0.to_body())
    }
}

/// A SCIM error without `scimType` (401, 404, 429, 503…).
pub fn scim_error(status: StatusCode, detail: &str) -> Response {
    ApiError(ScimError::plain(status.as_u16(), detail)).into_response()
}

/// A JSON body served as `application/scim+json`.
pub fn scim_json(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(SCIM_MEDIA_TYPE),
    );
    response
}
