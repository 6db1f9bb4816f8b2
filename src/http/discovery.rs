//! Discovery endpoints (RFC 7644 §4): generated from the same schema definitions that drive
//! validation, so what we advertise is what we enforce.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use serde_json::Value;

use super::AppState;
use super::error::{ApiError, scim_json};
use crate::scim::error::ScimError;
use crate::scim::schema::{
    AuthScheme, Capabilities, resource_types_list, schemas_list, service_provider_config,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ServiceProviderConfig", get(provider_config))
        .route("/Schemas", get(schemas))
        .route("/Schemas/{id}", get(schema_by_id))
        .route("/ResourceTypes", get(resource_types))
        .route("/ResourceTypes/{id}", get(resource_type_by_id))
}

/// The absolute SCIM base URL: `server.public_url` when set, else from the request's Host.
pub fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(public) = &state.config.server.public_url {
        return public.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}{}", state.config.server.base_path)
}

/// What this build really supports. Flags turn on as the endpoints behind them land.
pub fn capabilities() -> Capabilities {
    Capabilities {
        documentation_uri: None,
        patch: true,
        bulk: None,
        filter_max_results: Some(crate::provisioning::users::MAX_PAGE_SIZE),
        change_password: false,
        sort: false,
        etag: true,
        auth_schemes: vec![AuthScheme::bearer_token(true)],
    }
}

async fn provider_config(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let mut capabilities = capabilities();
    capabilities.bulk = state.bulk.as_ref().map(|bulk| bulk.limits());
    scim_json(
        StatusCode::OK,
        &service_provider_config(&capabilities, &base_url(&state, &headers)),
    )
}

async fn schemas(State(state): State<AppState>, headers: HeaderMap) -> Response {
    scim_json(StatusCode::OK, &schemas_list(&base_url(&state, &headers)))
}

async fn resource_types(State(state): State<AppState>, headers: HeaderMap) -> Response {
    scim_json(
        StatusCode::OK,
        &resource_types_list(&base_url(&state, &headers)),
    )
}

fn find_by_id(list: &Value, id: &str) -> Option<Value> {
    list["Resources"]
        .as_array()?
        .iter()
        .find(|item| {
            item["id"]
                .as_str()
                .is_some_and(|item_id| item_id.eq_ignore_ascii_case(id))
        })
        .cloned()
}

async fn schema_by_id(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let list = schemas_list(&base_url(&state, &headers));
    find_by_id(&list, &id)
        .map(|schema| scim_json(StatusCode::OK, &schema))
        .ok_or_else(|| ApiError(ScimError::not_found(format!("no schema {id:?}"))))
}

async fn resource_type_by_id(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let list = resource_types_list(&base_url(&state, &headers));
    find_by_id(&list, &id)
        .map(|resource_type| scim_json(StatusCode::OK, &resource_type))
        .ok_or_else(|| ApiError(ScimError::not_found(format!("no resource type {id:?}"))))
}
