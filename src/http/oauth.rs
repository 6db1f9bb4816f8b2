//! `POST /oauth/token` (RFC 6749 client-credentials grant, client_secret_basic or
//! client_secret_post) and `GET /.well-known/jwks.json` (the keys that verify the tokens).

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::SecretString;

use super::AppState;
use crate::auth::{AuthError, jwt, oauth};

const MAX_FORM_BYTES: usize = 16 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/oauth/token", post(token))
        .route("/.well-known/jwks.json", get(jwks))
}

/// An RFC 6749 §5.2 error answer.
fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    let mut response = (
        status,
        axum::Json(serde_json::json!({ "error": code, "error_description": description })),
    )
        .into_response();
    no_store(response.headers_mut());
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"c4c-scim-bridge\""),
        );
    }
    response
}

fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// Client id and secret from `Authorization: Basic` (each form-urlencoded, RFC 6749 §2.3.1).
fn basic_credentials(headers: &HeaderMap) -> Option<Result<(String, SecretString), ()>> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let parsed = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| {
            let (id, secret) = text.split_once(':')?;
            let decode = |part: &str| {
                url::form_urlencoded::parse(format!("x={part}").as_bytes())
                    .next()
                    .map(|(_, value)| value.into_owned())
            };
            Some((decode(id)?, SecretString::from(decode(secret)?)))
        });
    Some(parsed.ok_or(()))
}

async fn token(State(state): State<AppState>, request: Request) -> Response {
    if !state.security.oauth.enabled {
        return StatusCode::NOT_FOUND.into_response();
    }
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    if let Some(retry_after) = ip.and_then(|ip| state.auth_failures.blocked_for(ip)) {
        let mut response = oauth_error(
            StatusCode::TOO_MANY_REQUESTS,
            "slow_down",
            "too many failed authentications from this address; retry later",
        );
        if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let (parts, body) = request.into_parts();
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value.split(';').next().is_some_and(|mime| {
                mime.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    if !is_form {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        );
    }
    let Ok(body) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body is too large",
        );
    };
    let mut grant_type = None;
    let mut form_id = None;
    let mut form_secret = None;
    let mut scope = None;
    for (key, value) in url::form_urlencoded::parse(&body) {
        let slot = match key.as_ref() {
            "grant_type" => &mut grant_type,
            "client_id" => &mut form_id,
            "client_secret" => &mut form_secret,
            "scope" => &mut scope,
            _ => continue,
        };
        if slot.is_some() {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("parameter {key} appears more than once"),
            );
        }
        *slot = Some(value.into_owned());
    }
    let credentials = match (basic_credentials(&parts.headers), form_id, form_secret) {
        (Some(Ok(basic)), None, None) => basic,
        (Some(Err(())), None, None) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the Basic credentials are not base64 of client_id:client_secret",
            );
        }
        (None, Some(id), Some(secret)) => (id, SecretString::from(secret)),
        (Some(_), _, _) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "use one client authentication method: Basic or client_id/client_secret",
            );
        }
        _ => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client authentication is required",
            );
        }
    };
    match grant_type.as_deref() {
        Some("client_credentials") => {}
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is missing",
            );
        }
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "only grant_type=client_credentials is supported",
            );
        }
    }
    if let Some(scope) = &scope
        && scope
            .split(' ')
            .any(|part| !part.is_empty() && part != jwt::SCOPE)
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "the only scope is \"scim\"",
        );
    }
    let client =
        match oauth::authenticate_client(&state.store, &credentials.0, &credentials.1).await {
            Ok(client) => client,
            Err(AuthError::Store(error)) => {
                tracing::error!(%error, "client check: store unavailable");
                return oauth_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "the bridge cannot check credentials right now; retry later",
                );
            }
            Err(error) => {
                if let Some(ip) = ip {
                    state.auth_failures.record_failure(ip);
                }
                tracing::info!(%error, "token endpoint: client authentication failed");
                return oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "client authentication failed",
                );
            }
        };
    match jwt::issue(
        &state.security.keys,
        &state.security.oauth,
        &client.client_id,
    )
    .await
    {
        Ok(access_token) => {
            tracing::info!(client = %client.name, "access token issued");
            let mut response = axum::Json(serde_json::json!({
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": state.security.oauth.token_ttl_secs,
                "scope": jwt::SCOPE,
            }))
            .into_response();
            no_store(response.headers_mut());
            response
        }
        Err(error) => {
            tracing::error!(%error, "cannot issue an access token");
            oauth_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the bridge cannot issue tokens right now; retry later",
            )
        }
    }
}

async fn jwks(State(state): State<AppState>) -> Response {
    if !state.security.oauth.enabled {
        return StatusCode::NOT_FOUND.into_response();
    }
    match state.security.keys.jwks().await {
        Ok(document) => {
            let mut response = axum::Json(document).into_response();
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=60"),
            );
            response
        }
        Err(error) => {
            tracing::error!(%error, "cannot load the signing keys");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}
