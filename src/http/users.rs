//! `/Users`: thin handlers over `provisioning::users::UserService`.

use axum::Router;
use axum::extract::{FromRequestParts, OriginalUri, Path, RawQuery};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use super::discovery::base_url;
use super::error::{ApiError, scim_json};
use super::extract::ScimJson;
use crate::auth::ClientIdentity;
use crate::provisioning::ProvisioningError;
use crate::provisioning::users::{RequestContext, UserResult, UserService};
use crate::scim::error::ScimError;
use crate::scim::list::ListQuery;

pub fn router() -> Router<AppState> {
    Router::new().route("/Users", get(list).post(create)).route(
        "/Users/{id}",
        get(read).put(replace).patch(patch).delete(delete),
    )
}

/// 503 for /Users when no C4C tenant is configured.
fn not_configured() -> Response {
    let mut response = ApiError(ScimError::plain(
        503,
        "no C4C tenant is configured ([c4c] section missing): /Users cannot be served",
    ))
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("300"));
    response
}

pub(crate) fn render(result: UserResult) -> Response {
    match result {
        Ok(answer) => {
            let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
            let mut response = match &answer.resource {
                Some(resource) => scim_json(status, resource),
                None => status.into_response(),
            };
            if let Some(version) = answer
                .version
                .as_deref()
                .and_then(|version| HeaderValue::from_str(version).ok())
            {
                response.headers_mut().insert(header::ETAG, version);
            }
            if status == StatusCode::CREATED
                && let Some(location) = answer
                    .resource
                    .as_ref()
                    .and_then(|resource| resource["meta"]["location"].as_str())
                    .and_then(|location| HeaderValue::from_str(location).ok())
            {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
        Err(ProvisioningError { error, retry_after }) => {
            let mut response = ApiError(error).into_response();
            if let Some(wait) = retry_after {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(wait.as_secs().max(1)),
                );
            }
            response
        }
    }
}

/// What every /Users handler needs: the service (503 without a tenant), the request context
/// for the mapping log, and the If-Match header.
struct UsersCall {
    service: std::sync::Arc<UserService>,
    ctx: RequestContext,
    if_match: Option<String>,
}

impl FromRequestParts<AppState> for UsersCall {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(service) = state.users.clone() else {
            return Err(not_configured());
        };
        let identity = parts.extensions.get::<ClientIdentity>();
        let path = parts
            .extensions
            .get::<OriginalUri>()
            .map(|uri| uri.path().to_owned())
            .unwrap_or_else(|| parts.uri.path().to_owned());
        let ctx = RequestContext {
            request_id: parts
                .headers
                .get(super::REQUEST_ID_HEADER)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("-")
                .to_owned(),
            client: identity.map(|identity| identity.name.clone()),
            method: parts.method.to_string(),
            path,
            base_url: base_url(state, &parts.headers),
        };
        let if_match = parts
            .headers
            .get(header::IF_MATCH)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        Ok(Self {
            service,
            ctx,
            if_match,
        })
    }
}

async fn list(call: UsersCall, RawQuery(raw): RawQuery) -> Response {
    // form_urlencoded decodes `+` and `%20` alike, as Entra and Okta encode spaces both ways.
    let pairs = url::form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes());
    match ListQuery::from_query_pairs(pairs) {
        Ok(query) => render(call.service.list(&call.ctx, &query).await),
        Err(error) => ApiError(error).into_response(),
    }
}

async fn create(call: UsersCall, ScimJson(body): ScimJson) -> Response {
    render(call.service.create(&call.ctx, &body).await)
}

async fn read(call: UsersCall, Path(id): Path<String>) -> Response {
    render(call.service.get(&call.ctx, &id).await)
}

async fn replace(call: UsersCall, Path(id): Path<String>, ScimJson(body): ScimJson) -> Response {
    let if_match = call.if_match.as_deref();
    render(call.service.replace(&call.ctx, &id, &body, if_match).await)
}

async fn patch(call: UsersCall, Path(id): Path<String>, ScimJson(body): ScimJson) -> Response {
    let if_match = call.if_match.as_deref();
    render(call.service.patch(&call.ctx, &id, &body, if_match).await)
}

async fn delete(call: UsersCall, Path(id): Path<String>) -> Response {
    let if_match = call.if_match.as_deref();
    render(call.service.delete(&call.ctx, &id, if_match).await)
}
