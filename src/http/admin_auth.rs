//! Admin authentication at the edge: login and logout under /admin, session cookies, CSRF, and
//! the `AdminSession` extractor that the admin UI and API use.
//!
//! Every admin write (any method but GET/HEAD/OPTIONS) must carry the session's CSRF token, in
//! the `X-CSRF-Token` header or, for plain HTML forms, a `csrf_token` form field.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use secrecy::{ExposeSecret, SecretString};

use super::AppState;
use crate::auth::AuthError;
use crate::auth::admin::{self, Role};
use crate::auth::session::{self, AdminIdentity};
use crate::auth::settings::AdminConfig;

pub const CSRF_HEADER: &str = "x-csrf-token";
pub const CSRF_FIELD: &str = "csrf_token";
const MAX_FORM_BYTES: usize = 64 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/login", get(login_form).post(login))
        .route("/admin/logout", post(logout))
        .route("/admin/api/session", get(whoami))
        .route("/admin/api/tokens", get(list_tokens))
        .route("/admin/api/tokens/{id}/revoke", post(revoke_token))
}

/// The session cookie's name: `__Host-` makes browsers insist on Secure, Path=/ and no Domain.
pub fn cookie_name(config: &AdminConfig) -> &'static str {
    if config.cookie_secure {
        "__Host-c4csb_admin"
    } else {
        "c4csb_admin"
    }
}

pub(super) fn session_cookie(config: &AdminConfig, value: &str, max_age_secs: u64) -> String {
    let secure = if config.cookie_secure { "; Secure" } else { "" };
    format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}",
        cookie_name(config)
    )
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<SecretString> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| SecretString::from(value.to_owned()))
}

/// Why an admin request is refused.
#[derive(Debug)]
pub enum AdminRejection {
    /// No live session: 401 (a browser asking for HTML is sent to the login form).
    LoginRequired {
        wants_html: bool,
    },
    /// Missing or wrong CSRF token on a write.
    Csrf,
    /// The role does not allow this.
    Forbidden,
    Unavailable,
}

impl IntoResponse for AdminRejection {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            AdminRejection::LoginRequired { wants_html: true } => {
                return Redirect::to("/admin/login").into_response();
            }
            AdminRejection::LoginRequired { wants_html: false } => {
                (StatusCode::UNAUTHORIZED, "login required")
            }
            AdminRejection::Csrf => (
                StatusCode::FORBIDDEN,
                "missing or wrong CSRF token (send the X-CSRF-Token header or a csrf_token field)",
            ),
            AdminRejection::Forbidden => (StatusCode::FORBIDDEN, "the operator role is required"),
            AdminRejection::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "the bridge cannot check the session right now; retry later",
            ),
        };
        let mut response =
            (status, axum::Json(serde_json::json!({ "error": message }))).into_response();
        harden(response.headers_mut());
        response
    }
}

/// A logged-in admin. Extracting it on a write also checks the CSRF token.
#[derive(Debug, Clone)]
pub struct AdminSession {
    pub user: String,
    pub role: Role,
    pub csrf_token: String,
    identity: AdminIdentity,
}

impl AdminSession {
    /// Refuses viewers: use at the top of every handler that changes something.
    pub fn require_operator(&self) -> Result<(), AdminRejection> {
        if self.role >= Role::Operator {
            Ok(())
        } else {
            Err(AdminRejection::Forbidden)
        }
    }
}

/// The `csrf_token` field of a form body, put aside by `read_form_csrf`.
#[derive(Debug, Clone)]
struct FormCsrf(String);

fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

impl FromRequestParts<AppState> for AdminSession {
    type Rejection = AdminRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let config = &state.config.auth.admin;
        let wants_html = !is_write(&parts.method)
            && parts
                .headers
                .get(header::ACCEPT)
                .and_then(|value| value.to_str().ok())
                .is_some_and(|accept| accept.contains("text/html"));
        let Some(cookie) = cookie_value(&parts.headers, cookie_name(config)) else {
            return Err(AdminRejection::LoginRequired { wants_html });
        };
        let identity = match session::resume(&state.store, config, &cookie).await {
            Ok(Some(identity)) => identity,
            Ok(None) => return Err(AdminRejection::LoginRequired { wants_html }),
            Err(error) => {
                tracing::error!(%error, "admin session check failed");
                return Err(AdminRejection::Unavailable);
            }
        };
        if is_write(&parts.method) {
            let presented = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
                .or_else(|| {
                    parts
                        .extensions
                        .get::<FormCsrf>()
                        .map(|form| form.0.clone())
                })
                .unwrap_or_default();
            if !identity.csrf_matches(&presented) {
                tracing::warn!(user = %identity.user, "admin write refused: CSRF token missing or wrong");
                return Err(AdminRejection::Csrf);
            }
        }
        Ok(Self {
            user: identity.user.clone(),
            role: identity.role,
            csrf_token: identity.csrf_token.clone(),
            identity,
        })
    }
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| {
            mime.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// For form posts under /admin: reads the `csrf_token` field so that the `AdminSession`
/// extractor (which cannot read bodies) can check it; the body is passed on unchanged.
pub async fn read_form_csrf(request: Request, next: Next) -> Response {
    if !request.uri().path().starts_with("/admin")
        || !is_write(request.method())
        || !is_form(request.headers())
    {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response();
    };
    if let Some((_, token)) = url::form_urlencoded::parse(&bytes).find(|(key, _)| key == CSRF_FIELD)
    {
        parts.extensions.insert(FormCsrf(token.into_owned()));
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

/// Headers every admin answer carries: no caching, no framing, no referrer to other sites.
/// `same-origin`, not `no-referrer`: under `no-referrer` browsers send `Origin: null` on form
/// posts, and the login's same-origin check would refuse every real browser.
pub(crate) fn harden(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; form-action 'self'"),
    );
}

fn page(status: StatusCode, body: String) -> Response {
    let mut response = (status, Html(body)).into_response();
    harden(response.headers_mut());
    response
}

fn login_page(message: Option<&str>, oidc: bool) -> String {
    let sso = if oidc {
        "<p><a href=\"/admin/oidc/login\">Sign in with your organisation's account</a></p>"
    } else {
        ""
    };
    let message = message
        .map(|text| format!("<p role=\"alert\">{text}</p>"))
        .unwrap_or_default();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>c4c-scim-bridge admin: sign in</title></head>\
         <body><main><h1>c4c-scim-bridge admin</h1>{message}\
         <form method=\"post\" action=\"/admin/login\">\
         <p><label>User name <input name=\"username\" autocomplete=\"username\" required autofocus></label></p>\
         <p><label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label></p>\
         <p><button type=\"submit\">Sign in</button></p></form>{sso}</main></body></html>"
    )
}

async fn login_form(State(state): State<AppState>) -> Response {
    page(
        StatusCode::OK,
        login_page(None, state.security.oidc.is_some()),
    )
}

/// Cross-site login attempts are refused: a present `Origin` must be this host.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers
        .get(header::ORIGIN)
        .and_then(|value| value.to_str().ok())
    else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    url::Url::parse(origin).is_ok_and(|url| {
        let origin_host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        origin_host.eq_ignore_ascii_case(host)
    })
}

async fn login(State(state): State<AppState>, request: Request) -> Response {
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    if let Some(retry_after) = ip.and_then(|ip| state.auth_failures.blocked_for(ip)) {
        let mut response = page(
            StatusCode::TOO_MANY_REQUESTS,
            login_page(
                Some("Too many failed sign-ins from this address. Try again later."),
                state.security.oidc.is_some(),
            ),
        );
        if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    if !same_origin(request.headers()) {
        return page(
            StatusCode::FORBIDDEN,
            login_page(
                Some("Cross-site sign-in refused."),
                state.security.oidc.is_some(),
            ),
        );
    }
    let (_, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
        return page(
            StatusCode::PAYLOAD_TOO_LARGE,
            login_page(None, state.security.oidc.is_some()),
        );
    };
    let mut username = String::new();
    let mut password = SecretString::from(String::new());
    for (key, value) in url::form_urlencoded::parse(&bytes) {
        match key.as_ref() {
            "username" => username = value.into_owned(),
            "password" => password = SecretString::from(value.into_owned()),
            _ => {}
        }
    }
    let config = &state.config.auth.admin;
    let (user, role) = match admin::verify_login(&state.store, username.trim(), &password).await {
        Ok(found) => found,
        Err(AuthError::Store(error)) => {
            tracing::error!(%error, "admin login: store unavailable");
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                login_page(
                    Some("The bridge cannot check sign-ins right now."),
                    state.security.oidc.is_some(),
                ),
            );
        }
        Err(_) => {
            if let Some(ip) = ip {
                state.auth_failures.record_failure(ip);
            }
            tracing::info!("admin login failed");
            return page(
                StatusCode::UNAUTHORIZED,
                login_page(
                    Some("Wrong user name or password."),
                    state.security.oidc.is_some(),
                ),
            );
        }
    };
    match session::start(&state.store, config, &user, role, session::Source::Local).await {
        Ok(started) => {
            tracing::info!(user = %user, role = %role, "admin signed in");
            let mut response = Redirect::to("/admin").into_response();
            if let Ok(cookie) = HeaderValue::from_str(&session_cookie(
                config,
                started.cookie_value.expose_secret(),
                config.session_max_secs,
            )) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            harden(response.headers_mut());
            response
        }
        Err(error) => {
            tracing::error!(%error, "admin login: cannot store the session");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                login_page(
                    Some("The bridge cannot sign you in right now."),
                    state.security.oidc.is_some(),
                ),
            )
        }
    }
}

async fn logout(State(state): State<AppState>, admin: AdminSession) -> Response {
    if let Err(error) = session::end(&state.store, &admin.identity).await {
        tracing::error!(%error, "admin logout: cannot end the session");
        return AdminRejection::Unavailable.into_response();
    }
    tracing::info!(user = %admin.user, "admin signed out");
    let mut response = Redirect::to("/admin/login").into_response();
    if let Ok(cookie) = HeaderValue::from_str(&session_cookie(&state.config.auth.admin, "", 0)) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    harden(response.headers_mut());
    response
}

/// Escapes text for HTML content and attribute values (OIDC user names come from the IdP).
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

fn json(value: serde_json::Value) -> Response {
    let mut response = axum::Json(value).into_response();
    harden(response.headers_mut());
    response
}

/// Who is signed in, and the CSRF token their writes must carry.
async fn whoami(admin: AdminSession) -> Response {
    json(serde_json::json!({
        "user": admin.user,
        "role": admin.role,
        "csrf_token": admin.csrf_token,
    }))
}

fn time(millis: Option<i64>) -> serde_json::Value {
    millis
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|at| serde_json::Value::String(at.to_rfc3339()))
        .unwrap_or(serde_json::Value::Null)
}

/// SCIM bearer tokens (never their values or hashes).
async fn list_tokens(State(state): State<AppState>, _admin: AdminSession) -> Response {
    match state.store.list_tokens().await {
        Ok(tokens) => json(serde_json::json!({
            "tokens": tokens.iter().map(|token| serde_json::json!({
                "id": token.id,
                "name": token.name,
                "created": time(Some(token.created_at)),
                "expires": time(token.expires_at),
                "lastUsed": time(token.last_used_at),
                "revoked": time(token.revoked_at),
            })).collect::<Vec<_>>()
        })),
        Err(error) => {
            tracing::error!(%error, "admin: cannot list tokens");
            AdminRejection::Unavailable.into_response()
        }
    }
}

async fn revoke_token(
    State(state): State<AppState>,
    admin: AdminSession,
    Path(id): Path<String>,
) -> Response {
    if let Err(rejection) = admin.require_operator() {
        return rejection.into_response();
    }
    match state
        .store
        .revoke_token(&id, crate::store::now_millis())
        .await
    {
        Ok(0) => (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({ "error": "no live token with this id or name" })),
        )
            .into_response(),
        Ok(_) => {
            tracing::info!(user = %admin.user, token = %id, "admin revoked a SCIM token");
            json(serde_json::json!({ "revoked": id }))
        }
        Err(error) => {
            tracing::error!(%error, "admin: cannot revoke a token");
            AdminRejection::Unavailable.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape_html("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
    }

    #[test]
    fn cookie_value_finds_the_named_cookie_only() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; c4csb_admin=xyz; b=2"),
        );
        assert_eq!(
            cookie_value(&headers, "c4csb_admin").map(|v| v.expose_secret().to_owned()),
            Some("xyz".to_owned())
        );
        assert!(cookie_value(&headers, "__Host-c4csb_admin").is_none());
    }
}
