//! SCIM client authentication at the edge: a bearer token on every SCIM request, 401 with
//! `WWW-Authenticate` without a valid one, and 429 for an address that keeps failing.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;

use super::AppState;
use super::error::scim_error;
use crate::auth::AuthError;

/// Counts failed authentications per client address within a fixed window.
#[derive(Debug)]
pub struct FailureLimiter {
    max_failures: u32,
    window: Duration,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl FailureLimiter {
    pub fn new(max_failures: u32, window: Duration) -> Arc<Self> {
        Arc::new(Self {
            max_failures,
            window,
            failures: Mutex::new(HashMap::new()),
        })
    }

    /// Seconds until the address may try again, when it is over the limit.
    pub(crate) fn blocked_for(&self, ip: IpAddr) -> Option<u64> {
        let failures = self.failures.lock().ok()?;
        let (count, since) = failures.get(&ip)?;
        let elapsed = since.elapsed();
        (*count >= self.max_failures && elapsed < self.window)
            .then(|| (self.window - elapsed).as_secs().max(1))
    }

    pub(crate) fn record_failure(&self, ip: IpAddr) {
        if let Ok(mut failures) = self.failures.lock() {
            // Bound the map: forget windows that are over before adding one.
            if failures.len() > 10_000 {
                let window = self.window;
                failures.retain(|_, (_, since)| since.elapsed() < window);
            }
            let entry = failures.entry(ip).or_insert((0, Instant::now()));
            if entry.1.elapsed() >= self.window {
                *entry = (0, Instant::now());
            }
            entry.0 = entry.0.saturating_add(1);
        }
    }
}

fn bearer(request: &Request) -> Option<SecretString> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| SecretString::from(token.trim().to_owned()))
}

fn unauthorized(detail: &str) -> Response {
    let mut response = scim_error(StatusCode::UNAUTHORIZED, detail);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"c4c-scim-bridge\""),
    );
    response
}

/// Middleware for the SCIM routes: puts the caller's `ClientIdentity` into the request.
pub async fn require_scim_token(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    // Absent when the router is served without connect info (unit tests): no limiting then.
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    if let Some(retry_after) = ip.and_then(|ip| state.auth_failures.blocked_for(ip)) {
        let mut response = scim_error(
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed authentications from this address; retry later",
        );
        if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let Some(token) = bearer(&request) else {
        return unauthorized("a bearer token is required (Authorization: Bearer <token>)");
    };
    match state.security.authenticate(&state.store, &token).await {
        Ok(identity) => {
            tracing::Span::current().record("client", identity.name.as_str());
            if let Err(wait) = state.security.check_client_rate(&identity) {
                let mut response = scim_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "this client is over its request rate; retry later",
                );
                let seconds = wait
                    .as_secs()
                    .saturating_add(u64::from(wait.subsec_nanos() > 0))
                    .max(1);
                if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
                return response;
            }
            if let Some(response) = filter_too_long(&request) {
                return response;
            }
            request.extensions_mut().insert(identity);
            next.run(request).await
        }
        // A server-side problem (e.g. signing keys that cannot be read): not the client's fault,
        // so no failure is counted and the reason stays in the log.
        Err(AuthError::BadRequest(reason)) => {
            tracing::error!(%reason, "token check: the bridge cannot verify JWTs");
            scim_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the bridge cannot check credentials right now; retry later",
            )
        }
        Err(AuthError::Store(error)) => {
            tracing::error!(%error, "token check: store unavailable");
            scim_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the bridge cannot check credentials right now; retry later",
            )
        }
        Err(error) => {
            if let Some(ip) = ip {
                state.auth_failures.record_failure(ip);
            }
            tracing::info!(%error, "authentication failed");
            unauthorized(&error.to_string())
        }
    }
}

/// Longest `filter` query parameter accepted. The filter parser also caps depth and terms; this
/// bounds the work before parsing starts (real IdP filters are under 200 characters).
pub const MAX_FILTER_CHARS: usize = 4096;

fn filter_too_long(request: &Request) -> Option<Response> {
    let query = request.uri().query()?;
    let too_long = url::form_urlencoded::parse(query.as_bytes())
        .any(|(key, value)| key == "filter" && value.chars().count() > MAX_FILTER_CHARS);
    too_long.then(|| {
        super::error::ApiError(crate::scim::error::ScimError::invalid_filter(format!(
            "the filter is longer than {MAX_FILTER_CHARS} characters"
        )))
        .into_response()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_blocks_after_max_failures_and_forgets_other_addresses() {
        let limiter = FailureLimiter::new(3, Duration::from_secs(60));
        let ip: IpAddr = [10, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 2].into();
        for _ in 0..2 {
            limiter.record_failure(ip);
        }
        assert_eq!(limiter.blocked_for(ip), None);
        limiter.record_failure(ip);
        assert!(limiter.blocked_for(ip).is_some_and(|secs| secs <= 60));
        assert_eq!(limiter.blocked_for(other), None);
    }

    #[test]
    fn window_end_lifts_the_block() {
        let limiter = FailureLimiter::new(1, Duration::ZERO);
        let ip: IpAddr = [10, 0, 0, 3].into();
        limiter.record_failure(ip);
        assert_eq!(limiter.blocked_for(ip), None);
    }
}
