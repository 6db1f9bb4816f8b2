//! Admin sign-in through OpenID Connect: `GET /admin/oidc/login` sends the browser to the
//! provider; `GET /admin/oidc/callback` checks the answer and starts a session.
//!
//! Between the two, the state, PKCE verifier and nonce live in a short-lived HttpOnly cookie
//! scoped to /admin/oidc (SameSite=Lax, since the provider's redirect back is a cross-site
//! navigation), so any replica can finish the sign-in.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use super::AppState;
use super::admin_auth::session_cookie;
use crate::auth::oidc::OidcError;
use crate::auth::session;

const PENDING_COOKIE: &str = "c4csb_oidc";
const PENDING_MAX_AGE_SECS: u64 = 600;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/oidc/login", get(begin))
        .route("/admin/oidc/callback", get(callback))
}

fn pending_cookie(secure: bool, value: &str, max_age: u64) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{PENDING_COOKIE}={value}; Path=/admin/oidc; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    )
}

fn message(status: StatusCode, text: &str) -> Response {
    let mut response = (
        status,
        Html(format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>c4c-scim-bridge admin</title></head>\
             <body><main><h1>c4c-scim-bridge admin</h1><p role=\"alert\">{text}</p>\
             <p><a href=\"/admin/login\">Back to sign-in</a></p></main></body></html>"
        )),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn begin(State(state): State<AppState>) -> Response {
    let Some(oidc) = &state.security.oidc else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match oidc.begin().await {
        Ok(pending) => {
            let value = format!(
                "{}.{}.{}",
                pending.state,
                pending.verifier.expose_secret(),
                pending.nonce.expose_secret()
            );
            let mut response = Redirect::to(pending.redirect_to.as_str()).into_response();
            if let Ok(cookie) = HeaderValue::from_str(&pending_cookie(
                state.config.auth.admin.cookie_secure,
                &value,
                PENDING_MAX_AGE_SECS,
            )) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(error) => {
            tracing::error!(%error, "admin OIDC sign-in cannot start");
            message(
                StatusCode::SERVICE_UNAVAILABLE,
                "The identity provider cannot be reached. Try again later.",
            )
        }
    }
}

#[derive(serde::Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

fn pending_from(headers: &HeaderMap) -> Option<(String, SecretString, SecretString)> {
    let value = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == PENDING_COOKIE)
        .map(|(_, value)| value.to_owned())?;
    let mut parts = value.split('.');
    let (state, verifier, nonce) = (parts.next()?, parts.next()?, parts.next()?);
    Some((
        state.to_owned(),
        SecretString::from(verifier.to_owned()),
        SecretString::from(nonce.to_owned()),
    ))
}

async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let Some(oidc) = &state.security.oidc else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let config = &state.config.auth.admin;
    if query.error.is_some() {
        return message(
            StatusCode::UNAUTHORIZED,
            "The identity provider refused the sign-in.",
        );
    }
    let (Some(code), Some(returned_state)) = (query.code, query.state) else {
        return message(StatusCode::BAD_REQUEST, "The sign-in answer is incomplete.");
    };
    let Some((expected_state, verifier, nonce)) = pending_from(&headers) else {
        return message(
            StatusCode::BAD_REQUEST,
            "The sign-in took too long or was not started here. Start again.",
        );
    };
    if !bool::from(returned_state.as_bytes().ct_eq(expected_state.as_bytes())) {
        tracing::warn!("admin OIDC callback with a wrong state refused");
        return message(
            StatusCode::BAD_REQUEST,
            "The sign-in answer does not match. Start again.",
        );
    }
    let (user, role) = match oidc.finish(&code, &verifier, &nonce).await {
        Ok(found) => found,
        Err(OidcError::NotAllowed) => {
            tracing::info!("admin OIDC sign-in refused: no allowed group or role");
            return message(
                StatusCode::FORBIDDEN,
                "Your account is not in a group or role allowed into this admin.",
            );
        }
        Err(error) => {
            tracing::warn!(%error, "admin OIDC sign-in failed");
            return message(
                StatusCode::UNAUTHORIZED,
                "The sign-in could not be verified.",
            );
        }
    };
    match session::start(&state.store, config, &user, role, session::Source::Oidc).await {
        Ok(started) => {
            tracing::info!(user = %user, role = %role, "admin signed in through OIDC");
            let mut response = Redirect::to("/admin").into_response();
            let cookies = [
                session_cookie(
                    config,
                    started.cookie_value.expose_secret(),
                    config.session_max_secs,
                ),
                pending_cookie(config.cookie_secure, "", 0),
            ];
            for cookie in cookies {
                if let Ok(value) = HeaderValue::from_str(&cookie) {
                    response.headers_mut().append(header::SET_COOKIE, value);
                }
            }
            response
        }
        Err(error) => {
            tracing::error!(%error, "admin OIDC sign-in: cannot store the session");
            message(
                StatusCode::SERVICE_UNAVAILABLE,
                "The bridge cannot sign you in right now.",
            )
        }
    }
}
