//! `/Bulk`: the raw body goes to `provisioning::bulk::BulkService` (it checks the size first).

use axum::Router;
use axum::body::Body;
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
    body: Body,
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
    // axum's own 2 MB default does not apply here: maxPayloadSize is the limit, and one byte
    // more is read so that an oversized body gets the SCIM 413 from the bulk parser.
    let limit = service.limits().max_payload_size;
    let body = match axum::body::to_bytes(body, limit.saturating_add(1)).await {
        Ok(body) => body,
        Err(_) => {
            return ApiError(ScimError::payload_too_large(format!(
                "The size of the bulk operation exceeds the maxPayloadSize ({limit})."
            )))
            .into_response();
        }
    };
    if body.len() <= limit
        && let Err(error) = super::extract::parse_body(&body)
    {
        // Depth and syntax errors as the other endpoints report them.
        return ApiError(error).into_response();
    }
    match service.execute(&ctx, &body).await {
        Ok(response) => scim_json(StatusCode::OK, &response),
        Err(error) => ApiError(error).into_response(),
    }
}
