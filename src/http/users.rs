//! `/Users`: thin handlers over `provisioning::users::UserService`.

use axum::Extension;
use axum::Router;
use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use super::discovery::base_url;
use super::error::{ApiError, scim_json};
use super::extract::ScimJson;
use crate::auth::ClientIdentity;
use crate::provisioning::ProvisioningError;
use crate::provisioning::users::{RequestContext, UserResult};
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

fn context(
    state: &AppState,
    headers: &HeaderMap,
    method: &Method,
    uri: &OriginalUri,
    identity: Option<&ClientIdentity>,
) -> RequestContext {
    RequestContext {
        request_id: headers
            .get(super::REQUEST_ID_HEADER)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("-")
            .to_owned(),
        client: identity.map(|identity| identity.name.clone()),
        method: method.to_string(),
        path: uri.path().to_owned(),
        base_url: base_url(state, headers),
    }
}

fn if_match(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::IF_MATCH)
        .and_then(|value| value.to_str().ok())
}

fn render(result: UserResult) -> Response {
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

async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    method: Method,
    uri: OriginalUri,
    identity: Option<Extension<ClientIdentity>>,
    RawQuery(raw): RawQuery,
) -> Response {
    let Some(service) = state.users.clone() else {
        return not_configured();
    };
    let ctx = context(&state, &headers, &method, &uri, identity.as_deref());
    // form_urlencoded decodes `+` and `%20` alike, as Entra and Okta encode spaces both ways.
    let pairs = url::form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes());
    match ListQuery::from_query_pairs(pairs) {
        Ok(query) => render(service.list(&ctx, &query).await),
        Err(error) => ApiError(error).into_response(),
    }
}

async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    method: Method,
    uri: OriginalUri,
    identity: Option<Extension<ClientIdentity>>,
    ScimJson(body): ScimJson,
) -> Response {
    let Some(service) = state.users.clone() else {
        return not_configured();
    };
    let ctx = context(&state, &headers, &method, &uri, identity.as_deref());
    render(service.create(&ctx, &body).await)
}

async fn read(
    State(state): State<AppState>,
    headers: HeaderMap,
    method: Method,
    uri: OriginalUri,
    identity: Option<Extension<ClientIdentity>>,
    Path(id): Path<String>,
) -> Response {
    let Some(service) = state.users.clone() else {
        return not_configured();
    };
    let ctx = context(&state, &headers, &method, &uri, identity.as_deref());
    render(service.get(&ctx, &id).await)
}

async fn replace(
    State(state): State<AppState>,
    headers: HeaderMap,
    method: Method,
    uri: OriginalUri,
    identity: Option<Extension<ClientIdentity>>,
    Path(id): Path<String>,
    ScimJson(body): ScimJson,
) -> Response {
    let Some(service) = state.users.clone() else {
        return not_configured();
    };
    let ctx = context(&state, &headers, &method, &uri, identity.as_deref());
    render(service.replace(&ctx, &id, &body, if_match(&headers)).await)
}

async fn patch(
    State(state): State<AppState>,
    headers: HeaderMap,
    method: Method,
    uri: OriginalUri,
    identity: Option<Extension<ClientIdentity>>,
    Path(id): Path<String>,
    ScimJson(body): ScimJson,
) -> Response {
    let Some(service) = state.users.clone() else {
        return not_configured();
    };
    let ctx = context(&state, &headers, &method, &uri, identity.as_deref());
    render(service.patch(&ctx, &id, &body, if_match(&headers)).await)
}

async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    method: Method,
    uri: OriginalUri,
    identity: Option<Extension<ClientIdentity>>,
    Path(id): Path<String>,
) -> Response {
    let Some(service) = state.users.clone() else {
        return not_configured();
    };
    let ctx = context(&state, &headers, &method, &uri, identity.as_deref());
    render(service.delete(&ctx, &id, if_match(&headers)).await)
}
