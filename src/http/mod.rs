//! HTTP edge (axum): routers, middleware, error rendering. Handlers stay thin and call into
//! `provisioning`; nothing below this module knows axum.

pub mod admin_api;
pub mod admin_auth;
mod admin_oidc;
mod admin_ui;
pub mod auth;
mod bulk;
mod discovery;
pub mod error;
pub mod extract;
mod groups;
mod health;
mod oauth;
mod observability;
mod scim;
pub mod tls;
mod users;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, Request, StatusCode};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::c4c::C4cClient;
use crate::config::Config;
use crate::store::Store;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// What handlers share: one pointer, since axum clones the state for every extractor and
/// middleware that asks for it (a clone of the fields themselves was ~2 % of a GET's CPU).
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

impl std::ops::DerefMut for AppState {
    /// Only while the application is assembled, before any handler holds a clone (then this
    /// borrows in place; afterwards it would copy).
    fn deref_mut(&mut self) -> &mut Services {
        Arc::make_mut(&mut self.0)
    }
}

/// The services behind [`AppState`].
#[derive(Clone)]
pub struct Services {
    pub config: Arc<Config>,
    pub store: Store,
    /// The tenant's client; `None` when no `[c4c]` section is configured.
    pub c4c: Option<C4cClient>,
    /// The /Users use cases; `None` when no `[c4c]` section is configured (/Users answers 503).
    pub users: Option<Arc<crate::provisioning::users::UserService>>,
    /// /Groups and /Bulk; `None` without a `[c4c]` section (they answer 503).
    pub groups: Option<Arc<crate::provisioning::groups::GroupService>>,
    pub bulk: Option<Arc<crate::provisioning::bulk::BulkService>>,
    pub auth_failures: Arc<auth::FailureLimiter>,
    pub c4c_health: Arc<health::C4cHealth>,
    /// JWT keys and issuers, and the per-client rate limit (issue 11).
    pub security: crate::auth::SharedSecurity,
    /// What the C4C client's calls showed, for the admin health view (issue 12).
    pub c4c_status: Arc<admin_api::C4cStatus>,
}

impl AppState {
    pub fn new(config: Config, store: Store, c4c: Option<C4cClient>) -> Self {
        let auth_failures = auth::FailureLimiter::new(
            config.auth.failure_limit,
            Duration::from_secs(config.auth.failure_window_secs),
        );
        let security = Arc::new(crate::auth::Security::new(store.clone(), &config.auth));
        Self(Arc::new(Services {
            security,
            config: Arc::new(config),
            store,
            c4c,
            users: None,
            groups: None,
            bulk: None,
            auth_failures,
            c4c_health: Arc::new(health::C4cHealth::default()),
            c4c_status: Arc::new(admin_api::C4cStatus::default()),
        }))
    }
}

/// The whole HTTP application with its middleware stack.
pub fn router(state: AppState) -> Router {
    // Installed here so every application (serve, demo, tests) exposes /metrics.
    let _ = crate::metrics::handle();
    let request_id = HeaderName::from_static(REQUEST_ID_HEADER);
    let timeout = Duration::from_secs(state.config.server.request_timeout_secs);
    let body_limit = state.config.server.body_limit_bytes;
    let middleware = ServiceBuilder::new()
        // Authorization headers are never recorded by the trace layer.
        .layer(SetSensitiveRequestHeadersLayer::new([
            axum::http::header::AUTHORIZATION,
            axum::http::header::COOKIE,
        ]))
        .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let id = request
                    .headers()
                    .get(REQUEST_ID_HEADER)
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!(
                    "request",
                    request_id = %id,
                    method = %request.method(),
                    path = %request.uri().path(),
                    client = tracing::field::Empty,
                )
            }),
        )
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(CatchPanicLayer::new())
        .layer(RequestBodyLimitLayer::new(body_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ));
    let base_path = state.config.server.base_path.clone();
    Router::new()
        .merge(health::router())
        .merge(observability::router())
        .nest(&base_path, scim::router(state.clone()))
        .merge(oauth::router())
        .merge(admin_auth::router())
        .merge(admin_oidc::router())
        .merge(admin_api::router())
        .merge(admin_ui::router())
        .layer(axum::middleware::from_fn(admin_auth::read_form_csrf))
        .layer(axum::middleware::from_fn(observability::count_requests))
        .with_state(state)
        .layer(middleware)
}
