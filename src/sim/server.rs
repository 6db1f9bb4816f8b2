//! The HTTP side: accept loop (plain or TLS, with per-connection abort for reset faults), auth,
//! CSRF, fault injection, counters, the token endpoint, and hand-off to the OData core.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use secrecy::ExposeSecret;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use super::auth::{
    AuthError, AuthState, Caller, SESSION_COOKIE, cookie_value, parse_assertion, parse_basic,
};
use super::batch;
use super::config::{Access, SimConfig};
use super::control;
use super::error::{ODataError, SimError};
use super::faults::{AtomicCounters, Fault, FaultState, bump};
use super::odata::{self, Env, ODataRequest, SimResponse};
use super::store::{Actor, Db};

pub(crate) const SERVICE_PATH: &str = "/sap/c4c/odata/v1/c4codataapi";
pub(crate) const TOKEN_PATH: &str = "/sap/bc/sec/oauth2/token";
const MAX_BODY: usize = 64 * 1024 * 1024;

pub(crate) struct Shared {
    pub db: RwLock<Db>,
    pub env: Env,
    pub auth: AuthState,
    pub faults: Arc<FaultState>,
    pub counters: AtomicCounters,
    pub in_flight: AtomicUsize,
    pub config: SimConfig,
    pub actors: HashMap<String, Actor>,
}

impl Shared {
    pub(crate) fn actor(&self, user: &str) -> Actor {
        self.actors.get(user).cloned().unwrap_or_else(|| Actor {
            formatted_name: user.to_owned(),
            identity_uuid: "00000000-0000-0000-0000-000000000000".into(),
        })
    }
}

/// Per-connection context given to every request on it.
#[derive(Clone)]
pub(crate) struct ConnCtx {
    abort: Arc<Notify>,
    client_cn: Option<String>,
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(entry).with_state(shared)
}

/// Serves until `stop` turns true; then every open connection is dropped.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
) {
    let app = router(shared);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
        };
        let Ok((tcp, _peer)) = accepted else {
            // E.g. out of file descriptors: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = tcp.set_nodelay(true);
        // A duplicate of the socket lets a fault set SO_LINGER=0 so that closing sends RST.
        let dup = socket2::SockRef::from(&tcp).try_clone().ok();
        let app = app.clone();
        let tls = tls.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let abort = Arc::new(Notify::new());
            let run = async {
                match tls {
                    Some(acceptor) => {
                        let Ok(stream) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let client_cn = stream
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|c| c.first())
                            .and_then(|c| super::tls::common_name(c.as_ref()));
                        serve_conn(
                            stream,
                            app,
                            ConnCtx {
                                abort: abort.clone(),
                                client_cn,
                            },
                        )
                        .await;
                    }
                    None => {
                        serve_conn(
                            tcp,
                            app,
                            ConnCtx {
                                abort: abort.clone(),
                                client_cn: None,
                            },
                        )
                        .await
                    }
                }
            };
            tokio::select! {
                _ = run => {}
                _ = abort.notified() => {
                    if let Some(s) = &dup {
                        let _ = s.set_linger(Some(Duration::ZERO));
                    }
                }
                _ = stop.changed() => {}
            }
        });
    }
}

async fn serve_conn<S>(stream: S, app: Router, ctx: ConnCtx)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ctx.clone());
        let app = app.clone();
        async move {
            use tower::ServiceExt;
            app.oneshot(req.map(Body::new)).await
        }
    });
    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(stream), svc)
        .await;
}

fn plain(status: StatusCode, text: &str) -> Response {
    let mut r = Response::new(Body::from(text.to_owned()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

pub(crate) fn to_response(sr: SimResponse) -> Response {
    let mut r = Response::new(Body::from(sr.body));
    *r.status_mut() = sr.status;
    for (k, v) in sr.headers {
        if let Ok(v) = HeaderValue::from_str(&v) {
            r.headers_mut().append(k, v);
        }
    }
    r
}

/// Never returns: tells the connection task to reset the connection.
async fn drop_connection(conn: Option<&ConnCtx>) -> Response {
    if let Some(c) = conn {
        c.abort.notify_one();
        std::future::pending::<()>().await;
    }
    plain(
        StatusCode::INTERNAL_SERVER_ERROR,
        "connection abort unavailable",
    )
}

struct InFlight<'a>(&'a AtomicUsize);
impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn effective_method(req: &Request) -> String {
    let m = req.method().as_str().to_ascii_uppercase();
    if m == "POST"
        && let Some(t) = req
            .headers()
            .get("x-http-method")
            .and_then(|v| v.to_str().ok())
    {
        return t.to_ascii_uppercase();
    }
    m
}

async fn entry(State(sh): State<Arc<Shared>>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    if let Some(rest) = path.strip_prefix("/__sim/")
        && sh.config.control_api
    {
        return control::handle(&sh, rest, req).await;
    }
    let is_token = path == TOKEN_PATH;
    let odata_rest = path.strip_prefix(SERVICE_PATH).map(str::to_owned);
    if !is_token && odata_rest.is_none() {
        return plain(StatusCode::NOT_FOUND, "Not found");
    }
    let started = Instant::now();
    bump(&sh.counters.total);
    let conn = req.extensions().get::<ConnCtx>().cloned();
    let method = effective_method(&req);
    let is_write = !is_token && !matches!(method.as_str(), "GET" | "HEAD");

    count_kind(&sh, &method, odata_rest.as_deref(), req.headers());

    sh.in_flight.fetch_add(1, Ordering::SeqCst);
    let _guard = InFlight(&sh.in_flight);
    let settings = sh.faults.settings();
    let json_errors = wants_json_error(&req);
    if let Some(cap) = settings.max_in_flight
        && sh.in_flight.load(Ordering::SeqCst) > cap
    {
        bump(&sh.counters.faults_injected);
        return finish(
            &sh,
            fault_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service temporarily unavailable: too many parallel requests",
                json_errors,
                None,
            ),
            started,
        );
    }
    let latency = sh.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if settings.maintenance {
        bump(&sh.counters.faults_injected);
        return finish(
            &sh,
            fault_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "The system is currently undergoing maintenance. Please try again later.",
                json_errors,
                None,
            ),
            started,
        );
    }
    let mut commit_then_drop = false;
    let mut commit_then_hang = false;
    if let Some(fault) = sh.faults.pick(is_write, is_token) {
        bump(&sh.counters.faults_injected);
        match fault {
            Fault::Status500 => {
                return finish(
                    &sh,
                    fault_response(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "Internal Server Error",
                        json_errors,
                        None,
                    ),
                    started,
                );
            }
            Fault::Status503 => {
                return finish(
                    &sh,
                    fault_response(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Service Unavailable",
                        json_errors,
                        None,
                    ),
                    started,
                );
            }
            Fault::Status429 { retry_after_secs } => {
                return finish(
                    &sh,
                    fault_response(
                        StatusCode::TOO_MANY_REQUESTS,
                        "Too Many Requests",
                        json_errors,
                        retry_after_secs,
                    ),
                    started,
                );
            }
            Fault::Reset => return drop_connection(conn.as_ref()).await,
            Fault::Hang => {
                tokio::time::sleep(Duration::from_millis(settings.hang_ms.unwrap_or(60_000))).await;
                return drop_connection(conn.as_ref()).await;
            }
            Fault::CommitThenDrop => commit_then_drop = true,
            Fault::CommitThenHang => commit_then_hang = true,
        }
    }
    let resp = if is_token {
        token_endpoint(&sh, req).await
    } else {
        odata_request(
            &sh,
            conn.as_ref(),
            req,
            method,
            odata_rest.unwrap_or_default(),
        )
        .await
    };
    if commit_then_hang {
        tokio::time::sleep(Duration::from_millis(settings.hang_ms.unwrap_or(60_000))).await;
    }
    if commit_then_drop || commit_then_hang {
        return drop_connection(conn.as_ref()).await;
    }
    finish(&sh, resp, started)
}

/// Counts a request by kind before anything can fail it, so that tests see every upstream call.
fn count_kind(sh: &Shared, method: &str, odata_rest: Option<&str>, headers: &HeaderMap) {
    let c = &sh.counters;
    let Some(rest) = odata_rest else {
        bump(&c.token_requests);
        return;
    };
    let path = rest.strip_prefix('/').unwrap_or(rest);
    match method {
        "GET" | "HEAD" => {
            if header(headers, "x-csrf-token").is_some_and(|v| v.eq_ignore_ascii_case("fetch")) {
                bump(&c.csrf_fetches);
            }
            match path {
                "$metadata" => bump(&c.metadata),
                "" => bump(&c.service_document),
                _ => bump(&c.reads),
            }
        }
        _ if path == "$batch" => bump(&c.batches),
        "POST" => bump(&c.posts),
        "PATCH" => bump(&c.patches),
        "PUT" => bump(&c.puts),
        "MERGE" => bump(&c.merges),
        "DELETE" => bump(&c.deletes),
        _ => {}
    }
}

fn finish(sh: &Shared, mut resp: Response, started: Instant) -> Response {
    if resp.status().as_u16() >= 400 {
        bump(&sh.counters.errors);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("{} ms", started.elapsed().as_millis())) {
        resp.headers_mut().insert("c4c-odata-response-time", v);
    }
    resp
}

fn wants_json_error(req: &Request) -> bool {
    req.uri()
        .query()
        .is_some_and(|q| q.contains("$format=json"))
        || req
            .headers()
            .get("accept")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("application/json"))
}

fn fault_response(
    status: StatusCode,
    message: &str,
    json: bool,
    retry_after: Option<u64>,
) -> Response {
    let e = ODataError::new(status, message);
    let mut r = to_response(SimResponse::error(&e, json));
    if let Some(s) = retry_after
        && let Ok(v) = HeaderValue::from_str(&s.to_string())
    {
        r.headers_mut().insert("retry-after", v);
    }
    r
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

async fn odata_request(
    sh: &Arc<Shared>,
    conn: Option<&ConnCtx>,
    req: Request,
    method: String,
    rest: String,
) -> Response {
    let (parts, body) = req.into_parts();
    let json = {
        let probe = ODataRequest {
            method: &method,
            path: "",
            query: parts.uri.query(),
            headers: &parts.headers,
            body: &[],
            in_batch: false,
        };
        probe.wants_json()
    };
    // The service document needs the trailing slash.
    let Some(sub) = rest.strip_prefix('/') else {
        return to_response(SimResponse::error(
            &ODataError::not_found("Resource not found for segment 'c4codataapi'"),
            json,
        ));
    };
    let Ok(path) = percent_encoding::percent_decode_str(sub).decode_utf8() else {
        return to_response(SimResponse::error(
            &ODataError::bad_request("Invalid URL encoding"),
            json,
        ));
    };
    let path = path.into_owned();

    let caller = match sh.auth.authenticate(
        header(&parts.headers, "authorization"),
        conn.and_then(|c| c.client_cn.as_deref()),
    ) {
        Ok(c) => c,
        Err(e) => {
            bump(&sh.counters.unauthorized);
            let msg = match e {
                AuthError::Expired => "Access token expired",
                AuthError::Unauthorized => "Logon failed",
            };
            let mut r = plain(StatusCode::UNAUTHORIZED, msg);
            r.headers_mut().insert(
                "www-authenticate",
                HeaderValue::from_static(
                    "Basic realm=\"SAP NetWeaver Application Server [C4C/100]\"",
                ),
            );
            return r;
        }
    };
    if caller.access == Access::NoWorkCenterView {
        let e = ODataError::new(
            StatusCode::FORBIDDEN,
            "Inconsistent Authorization: Re-activate Communication Arrangement.",
        );
        return to_response(SimResponse::error(&e, json));
    }
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return to_response(SimResponse::error(
                &ODataError::bad_request("Request body too large or unreadable"),
                json,
            ));
        }
    };
    let session_id = header(&parts.headers, "cookie")
        .and_then(|c| cookie_value(c, SESSION_COOKIE))
        .map(str::to_owned);
    let req = ODataRequest {
        method: &method,
        path: &path,
        query: parts.uri.query(),
        headers: &parts.headers,
        body: &body,
        in_batch: false,
    };
    let is_read = matches!(method.as_str(), "GET" | "HEAD");
    if is_read {
        let fetch =
            header(&parts.headers, "x-csrf-token").is_some_and(|v| v.eq_ignore_ascii_case("fetch"));
        let sr = {
            let db = sh.db.read().unwrap_or_else(|p| p.into_inner());
            odata::read(&db, &sh.env, &req)
        };
        let mut resp = to_response(sr);
        if fetch {
            let (token, new_sid) = sh.auth.fetch_csrf(&caller.user, session_id.as_deref());
            if let Ok(v) = HeaderValue::from_str(&token) {
                resp.headers_mut().insert("x-csrf-token", v);
            }
            if let Some(sid) = new_sid {
                for c in [
                    format!("{SESSION_COOKIE}={sid}; path=/; secure; HttpOnly"),
                    "sap-usercontext=sap-client=100; path=/".to_owned(),
                ] {
                    let c = if sh.config.tls.is_some() {
                        c
                    } else {
                        c.replace("; secure", "")
                    };
                    if let Ok(v) = HeaderValue::from_str(&c) {
                        resp.headers_mut().append("set-cookie", v);
                    }
                }
            }
        }
        if method == "HEAD" {
            *resp.body_mut() = Body::empty();
        }
        return resp;
    }
    let is_batch = path == "$batch";
    if csrf_required(sh, &caller)
        && !sh.auth.check_csrf(
            &caller.user,
            session_id.as_deref(),
            header(&parts.headers, "x-csrf-token"),
        )
    {
        bump(&sh.counters.csrf_rejections);
        let e = ODataError::new(StatusCode::FORBIDDEN, "CSRF token validation failed");
        let mut r = to_response(SimResponse::error(&e, json));
        r.headers_mut()
            .insert("x-csrf-token", HeaderValue::from_static("Required"));
        return r;
    }
    if caller.access == Access::ReadOnly {
        let e = ODataError::new(
            StatusCode::FORBIDDEN,
            "No authorization to perform this change. Please contact your administrator.",
        );
        return to_response(SimResponse::error(&e, json));
    }
    let actor = sh.actor(&caller.user);
    if is_batch {
        if method != "POST" {
            return to_response(SimResponse::error(
                &ODataError::new(StatusCode::METHOD_NOT_ALLOWED, "$batch requires POST"),
                json,
            ));
        }
        return to_response(batch::handle(sh, &req, &actor));
    }
    let sr = {
        let mut db = sh.db.write().unwrap_or_else(|p| p.into_inner());
        odata::write(&mut db, &sh.env, &req, &actor)
    };
    to_response(sr)
}

fn csrf_required(sh: &Shared, caller: &Caller) -> bool {
    use super::auth::AuthMode;
    match caller.mode {
        AuthMode::Basic => sh.config.csrf.basic,
        AuthMode::Bearer => sh.config.csrf.bearer,
        AuthMode::Certificate => sh.config.csrf.certificate,
    }
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut r = Response::new(Body::from(
        json!({"error": error, "error_description": description}).to_string(),
    ));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    r
}

/// `POST /sap/bc/sec/oauth2/token`: client credentials and SAML 2.0 bearer grants.
async fn token_endpoint(sh: &Shared, req: Request) -> Response {
    if req.method() != Method::POST {
        return oauth_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            "POST required",
        );
    }
    let basic = header(req.headers(), "authorization").and_then(parse_basic);
    let body: Bytes = match axum::body::to_bytes(req.into_body(), 1024 * 1024).await {
        Ok(b) => b,
        Err(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "unreadable body",
            );
        }
    };
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let (client_id, secret) = match basic {
        Some((id, secret)) => (id, Some(secret)),
        None => match form.get("client_id") {
            Some(id) => (id.clone(), form.get("client_secret").cloned()),
            None => {
                return oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "client authentication required",
                );
            }
        },
    };
    let client = sh
        .config
        .oauth_clients
        .iter()
        .find(|c| c.client_id == client_id);
    let Some(client) = client.filter(|c| secret.as_deref() == Some(c.secret.expose_secret()))
    else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
    };
    let user = match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") if sh.config.allow_client_credentials => client.user.clone(),
        Some("urn:ietf:params:oauth:grant-type:saml2-bearer") => {
            let Some(a) = form.get("assertion").and_then(|a| parse_assertion(a)) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "assertion is not a SAML 2.0 assertion",
                );
            };
            if !a
                .issuer
                .as_ref()
                .is_some_and(|i| sh.config.saml_issuers.contains(i))
            {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "unknown assertion issuer",
                );
            }
            let expired = a
                .not_on_or_after
                .as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .is_some_and(|t| t < chrono::Utc::now());
            if expired {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "assertion expired",
                );
            }
            match a.name_id {
                Some(n) if sh.auth.user(&n).is_some() => n,
                _ => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "unknown subject",
                    );
                }
            }
        }
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant type not supported",
            );
        }
    };
    let lifetime = sh.config.token_lifetime;
    let token = sh.auth.issue_token(&user, lifetime);
    let body = json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": lifetime.as_secs(),
        "scope": form.get("scope").cloned().unwrap_or_else(|| "UIWC:CC_HOME".to_owned()),
    });
    let mut r = Response::new(Body::from(body.to_string()));
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    r.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    r
}

pub(crate) async fn bind(config: &SimConfig) -> Result<(TcpListener, SocketAddr), SimError> {
    let addr = config
        .listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| SimError::Bind { addr, source })?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}
