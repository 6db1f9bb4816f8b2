//! Liveness and readiness probes.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;

use super::AppState;
use crate::c4c::EmployeeQuery;

/// Probes come every few seconds from every replica; the tenant is asked at most this often.
const C4C_CHECK_TTL: Duration = Duration::from_secs(2);
/// A probe must answer quickly even when the tenant hangs.
const C4C_CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// The last answer of the tenant to a readiness check.
#[derive(Debug, Default)]
pub struct C4cHealth {
    last: Mutex<Option<(Instant, Result<(), String>)>>,
}

impl C4cHealth {
    fn cached(&self) -> Option<Result<(), String>> {
        let last = self.last.lock().ok()?;
        let (at, result) = last.as_ref()?;
        (at.elapsed() < C4C_CHECK_TTL).then(|| result.clone())
    }

    fn remember(&self, result: &Result<(), String>) {
        if let Ok(mut last) = self.last.lock() {
            *last = Some((Instant::now(), result.clone()));
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// The process is alive and serving HTTP.
async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, axum::Json(json!({"status": "ok"})))
}

/// One cheap read: the smallest page of employees with one property.
async fn check_c4c(state: &AppState) -> Option<Result<(), String>> {
    let client = state.c4c.as_ref()?;
    if let Some(cached) = state.c4c_health.cached() {
        return Some(cached);
    }
    let query = EmployeeQuery::new().select(["ObjectID"]).top(1);
    let result = match tokio::time::timeout(C4C_CHECK_TIMEOUT, client.query_employees(&query)).await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(error.kind().as_str().to_owned()),
        Err(_) => Err("timeout".to_owned()),
    };
    state.c4c_health.remember(&result);
    Some(result)
}

/// Ready to take traffic: the store answers, and so does C4C when one is configured.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let store = match state.store.ping().await {
        Ok(()) => Ok(()),
        Err(error) => {
            tracing::warn!(%error, "readiness: store unreachable");
            Err("unreachable".to_owned())
        }
    };
    let c4c = check_c4c(&state).await;
    if let Some(Err(error)) = &c4c {
        tracing::warn!(%error, "readiness: C4C unreachable");
    }
    let ready = store.is_ok() && !matches!(c4c, Some(Err(_)));
    let status_of = |result: &Result<(), String>| match result {
        Ok(()) => "ok".to_owned(),
        Err(error) => error.clone(),
    };
    let mut checks = json!({"store": status_of(&store)});
    if let Some(c4c) = &c4c {
        checks["c4c"] = json!(status_of(c4c));
    }
    let (status, word) = if ready {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    };
    (
        status,
        axum::Json(json!({"status": word, "checks": checks})),
    )
}
