//! `/Groups`: thin handlers over `provisioning::groups::GroupService`.

use axum::Router;
use axum::extract::{FromRequestParts, OriginalUri, Path, RawQuery};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use super::discovery::base_url;
use super::error::ApiError;
use super::extract::ScimJson;
use super::users::render;
use crate::auth::ClientIdentity;
use crate::provisioning::groups::GroupService;
use crate::provisioning::users::RequestContext;
use crate::scim::error::ScimError;
use crate::scim::list::ListQuery;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/Groups", get(list).post(create))
        .route(
            "/Groups/{id}",
            get(read).put(replace).patch(patch).delete(delete),
        )
}

/// The request context the mapping log records, built from the request's parts.
pub(crate) fn request_context(parts: &Parts, state: &AppState) -> RequestContext {
    let path = parts
        .extensions
        .get::<OriginalUri>()
        .map(|uri| uri.path().to_owned())
        .unwrap_or_else(|| parts.uri.path().to_owned());
    RequestContext {
        request_id: parts
            .headers
            .get(super::REQUEST_ID_HEADER)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("-")
            .to_owned(),
        client: parts
            .extensions
            .get::<ClientIdentity>()
            .map(|identity| identity.name.clone()),
        method: parts.method.to_string(),
        path,
        base_url: base_url(state, &parts.headers),
    }
}

/// 503 + Retry-After when the feature has no C4C tenant to work with.
pub(crate) fn not_configured(what: &str) -> Response {
    let mut response = ApiError(ScimError::plain(
        503,
        format!("no C4C tenant is configured ([c4c] section missing): {what} cannot be served"),
    ))
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("300"));
    response
}

struct GroupsCall {
    service: std::sync::Arc<GroupService>,
    ctx: RequestContext,
    if_match: Option<String>,
}

impl FromRequestParts<AppState> for GroupsCall {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(service) = state.groups.clone() else {
            return Err(not_configured("/Groups"));
        };
        let if_match = parts
            .headers
            .get(header::IF_MATCH)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        Ok(Self {
            service,
            ctx: request_context(parts, state),
            if_match,
        })
    }
}

fn query_of(raw: Option<&str>) -> Result<ListQuery, ApiError> {
    // form_urlencoded decodes `+` and `%20` alike, as Entra and Okta encode spaces both ways.
    let pairs = url::form_urlencoded::parse(raw.unwrap_or("").as_bytes());
    ListQuery::from_query_pairs(pairs).map_err(ApiError)
}

async fn list(call: GroupsCall, RawQuery(raw): RawQuery) -> Response {
    match query_of(raw.as_deref()) {
        Ok(query) => render(call.service.list(&call.ctx, &query).await),
        Err(error) => error.into_response(),
    }
}

async fn create(call: GroupsCall, ScimJson(body): ScimJson) -> Response {
    render(call.service.create(&call.ctx, &body).await)
}

async fn read(call: GroupsCall, Path(id): Path<String>, RawQuery(raw): RawQuery) -> Response {
    match query_of(raw.as_deref()) {
        Ok(query) => render(call.service.get(&call.ctx, &id, &query).await),
        Err(error) => error.into_response(),
    }
}

async fn replace(call: GroupsCall, Path(id): Path<String>, ScimJson(body): ScimJson) -> Response {
    let if_match = call.if_match.as_deref();
    render(call.service.replace(&call.ctx, &id, &body, if_match).await)
}

async fn patch(call: GroupsCall, Path(id): Path<String>, ScimJson(body): ScimJson) -> Response {
    let if_match = call.if_match.as_deref();
    render(call.service.patch(&call.ctx, &id, &body, if_match).await)
}

async fn delete(call: GroupsCall, Path(id): Path<String>) -> Response {
    let if_match = call.if_match.as_deref();
    render(call.service.delete(&call.ctx, &id, if_match).await)
}
