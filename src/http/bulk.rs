//! `/Bulk`: the raw body goes to `provisioning::bulk::BulkService` (it checks the size first).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::AppState;
use super::error::{ApiError, scim_json};
use super::groups::{not_configured, request_context};
use crate::scim::error::ScimError;
use crate::scim::is_json_media_type;

pub fn router() -> Router<AppState> {
    Router::new().route("/Bulk", post(bulk))
}

struct Context(crate::provisioning::users::RequestContext);

impl FromRequestParts<AppState> for Context {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        Ok(Self(request_context(parts, state)))
    }
}

async fn bulk(
    State(state): State<AppState>,
    Context(ctx): Context,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(service) = state.bulk.clone() else {
        return not_configured("/Bulk");
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if !content_type.is_empty() && !is_json_media_type(content_type) {
        return ApiError(ScimError::plain(
            415,
            format!("content type {content_type:?} is not accepted; send application/scim+json"),
        ))
        .into_response();
    }
    if super::extract::parse_body(&body).is_err() && body.len() <= service.limits().max_payload_size
    {
        // Depth and syntax errors as the other endpoints report them.
        if let Err(error) = super::extract::parse_body(&body) {
            return ApiError(error).into_response();
        }
    }
    match service.execute(&ctx, &body).await {
        Ok(response) => scim_json(StatusCode::OK, &response),
        Err(error) => ApiError(error).into_response(),
    }
}
