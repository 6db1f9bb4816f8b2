//! `/metrics` and the middleware that counts every request.

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use crate::metrics;

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(render))
}

/// Counts the request under its route template (`/scim/v2/Users/{id}`), so that ids never
/// become label values.
pub async fn count_requests(request: Request, next: Next) -> Response {
    let endpoint = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics::record_scim_request(
        &endpoint,
        &method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

async fn render(State(state): State<AppState>) -> Response {
    let Some(handle) = metrics::handle() else {
        return (StatusCode::NOT_FOUND, "metrics recorder not installed").into_response();
    };
    // Gauges that live in the store are read at scrape time.
    if let Ok((depth, oldest)) = state.store.outbox_depth().await {
        let age = oldest.map(|created| {
            let millis = crate::store::now_millis().saturating_sub(created).max(0);
            std::time::Duration::from_millis(u64::try_from(millis).unwrap_or(0))
        });
        metrics::record_outbox(depth, age);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}
