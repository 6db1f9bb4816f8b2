//! The SCIM API under `server.base_path`. Every request, known endpoint or not, needs a valid
//! bearer token, so that the API's shape is not visible to strangers.

use axum::Router;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::Response;

use super::AppState;
use super::auth::require_scim_token;
use super::error::scim_error;

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .merge(super::discovery::router())
        .merge(super::users::router())
        .merge(super::groups::router())
        .merge(super::bulk::router())
        .fallback(no_such_endpoint)
        .layer(from_fn_with_state(state, require_scim_token))
}

async fn no_such_endpoint() -> Response {
    scim_error(StatusCode::NOT_FOUND, "no such SCIM endpoint")
}
