//! The HTTP core: auth, CSRF session, in-flight cap, retries, timeouts and metrics over the
//! pooled transport (src/c4c/transport.rs); plus the typed C4C operations built on it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use secrecy::ExposeSecret;
use serde_json::{Map, Value};
use tokio::sync::{OnceCell, Semaphore};
use url::Url;

use super::auth::RequestAuth;
use super::batch::{self, BatchPart, BatchPartResult};
use super::config::{C4cConfig, CsrfMode, ResolvedAuth, TenantProfile, TimeoutConfig};
use super::error::{C4cError, error_from_response};
use super::filter::{self, Filter};
use super::metadata::{EntityTypeModel, Metadata};
use super::model::*;
use super::observer::{C4cObserver, CallKind, NoopObserver};
use super::odata::{self, ETag, Page, key_path};
use super::retry::{RetryPolicy, parse_retry_after};
use super::transport::{Exchange, Transport, TransportConfig};

/// Characters escaped in query values: everything that could end or split the value
/// (`&`, `#`, `+`, `=`), spaces and quotes-like delimiters; `'`, `(`, `)`, `,`, `*`, `$`
/// and `:` stay readable as OData expects them.
const QUERY_VALUE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'+')
    .add(b'<')
    .add(b'=')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

const CSRF_HEADER: HeaderName = HeaderName::from_static("x-csrf-token");

/// GET parts per `$batch` when looking many keys up.
const LOOKUP_PARTS_PER_BATCH: usize = 100;

/// Result of one HTTP exchange that succeeded (2xx).
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// How a request may be retried after a failure whose outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Replay {
    /// Reads: retry any transient failure.
    Safe,
    /// Writes with the same effect when repeated (PATCH without If-Match, DELETE).
    Idempotent,
    /// POST and conditional writes: retry only when the server surely did nothing.
    Never,
}

struct Request {
    method: Method,
    url: Url,
    kind: CallKind,
    body: Option<(Bytes, String)>,
    if_match: Option<ETag>,
    replay: Replay,
    accept: &'static str,
}

impl Request {
    fn get(url: Url) -> Self {
        Self {
            method: Method::GET,
            url,
            kind: CallKind::Read,
            body: None,
            if_match: None,
            replay: Replay::Safe,
            accept: "application/json",
        }
    }
    fn is_write(&self) -> bool {
        self.method != Method::GET && self.method != Method::HEAD
    }
}

/// CSRF token shared by all tasks of one client, with its generation.
#[derive(Default)]
struct CsrfState {
    token: RwLock<Option<(String, u64)>>,
    generation: AtomicU64,
    refresh: tokio::sync::Mutex<()>,
}

impl CsrfState {
    fn current(&self) -> Option<(String, u64)> {
        self.token.read().ok().and_then(|t| t.clone())
    }
    fn store(&self, token: String) {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        if let Ok(mut t) = self.token.write() {
            *t = Some((token, generation));
        }
    }
}

struct Inner {
    transport: Transport,
    /// Token endpoint calls only.
    http: reqwest::Client,
    root: Url,
    auth: RequestAuth,
    csrf_mode: CsrfMode,
    csrf: CsrfState,
    limiter: Semaphore,
    retry: RetryPolicy,
    timeouts: TimeoutConfig,
    profile: TenantProfile,
    metadata: OnceCell<Arc<Metadata>>,
    metadata_filter: Option<String>,
    observer: Arc<dyn C4cObserver>,
}

/// Client of one C4C tenant's `c4codataapi`. Cheap to clone; clones share the connection
/// pool, the CSRF session, the token cache, the in-flight cap and the metadata cache.
#[derive(Clone)]
pub struct C4cClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for C4cClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("C4cClient")
            .field("root", &self.inner.root.as_str())
            .finish_non_exhaustive()
    }
}

/// Maps a reqwest failure. `outcome_unknown` here means "the request may have been sent":
/// only a failed connect proves it was not. Callers narrow it to writes.
pub(crate) fn transport_error(e: &reqwest::Error) -> C4cError {
    let sent = !e.is_connect();
    if e.is_timeout() {
        return C4cError::Timeout {
            outcome_unknown: sent,
        };
    }
    C4cError::Transport {
        message: super::transport::with_sources(e),
        outcome_unknown: sent,
    }
}

/// A request for the transport. The URL is ours (built under the service root or checked to be
/// a next link of the tenant), so a failure here is a bug or a broken configuration.
fn http_request(
    method: Method,
    url: &Url,
    headers: HeaderMap,
    body: Bytes,
) -> Result<http::Request<Bytes>, C4cError> {
    let uri = http::Uri::try_from(url.as_str())
        .map_err(|e| C4cError::InvalidInput(format!("URL not sendable ({e}): {url}")))?;
    let mut request = http::Request::new(body);
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    Ok(request)
}

/// Appends `$name=value` pairs, values percent-encoded for OData.
fn push_query(url: &mut String, pairs: &[(&str, String)]) {
    for (name, value) in pairs {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(name);
        url.push('=');
        url.push_str(&utf8_percent_encode(value, QUERY_VALUE).to_string());
    }
}

impl C4cClient {
    /// Builds the client from configuration (reads secret files, no network call).
    pub fn new(config: C4cConfig) -> Result<Self, C4cError> {
        Self::with_observer(config, Arc::new(NoopObserver))
    }

    /// Same as [`C4cClient::new`], reporting every HTTP call to `observer`.
    pub fn with_observer(
        config: C4cConfig,
        observer: Arc<dyn C4cObserver>,
    ) -> Result<Self, C4cError> {
        config.validate()?;
        let resolved = config.resolve_auth()?;
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(config.timeouts.connect())
            .timeout(config.timeouts.request())
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("c4c-scim-bridge/", env!("CARGO_PKG_VERSION")));
        let extra_roots = match &config.ca_cert_file {
            Some(ca) => super::tls::read_ca_certs(ca)?,
            None => Vec::new(),
        };
        for cert in &extra_roots {
            let cert = reqwest::Certificate::from_der(cert).map_err(|e| {
                C4cError::config("ca_cert_file", format!("unusable CA certificate: {e}"))
            })?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder
            .build()
            .map_err(|e| C4cError::config("auth", format!("cannot build HTTP client: {e}")))?;
        let identity = match &resolved {
            ResolvedAuth::X509 { identity_pem } => Some(identity_pem),
            _ => None,
        };
        // An OData service does not redirect; a tenant that does sends the technical user to a
        // logon page (a wrong base URL or an SSO-only user). The transport follows nothing: that
        // is reported as such (a followed POST would become a GET; an HTML page is no OData answer).
        let transport = Transport::new(TransportConfig {
            tls: super::tls::client_config(&extra_roots, identity)?,
            connect_timeout: config.timeouts.connect(),
            request_timeout: config.timeouts.request(),
            max_idle_per_host: config.max_in_flight,
            proxies: hyper_util::client::proxy::matcher::Matcher::from_env(),
        });
        Ok(Self {
            inner: Arc::new(Inner {
                transport,
                http,
                root: config.service_root(),
                auth: RequestAuth::from_resolved(resolved)?,
                csrf_mode: config.csrf,
                csrf: CsrfState::default(),
                limiter: Semaphore::new(config.max_in_flight),
                retry: RetryPolicy::from_config(&config.retry),
                timeouts: config.timeouts.clone(),
                profile: config.tenant.clone(),
                metadata: OnceCell::new(),
                metadata_filter: config.metadata_filter.clone(),
                observer,
            }),
        })
    }

    /// The service root this client talks to.
    pub fn service_root(&self) -> &Url {
        &self.inner.root
    }

    /// The tenant profile from configuration.
    pub fn profile(&self) -> &TenantProfile {
        &self.inner.profile
    }

    fn url(&self, relative: &str) -> Result<Url, C4cError> {
        self.inner
            .root
            .join(relative)
            .map_err(|e| C4cError::InvalidInput(format!("bad path {relative:?}: {e}")))
    }

    fn service_host(&self) -> &str {
        self.inner.root.host_str().unwrap_or_default()
    }

    // ---------------------------------------------------------------- HTTP core

    /// Runs a request with auth, CSRF, retries and the overall timeout.
    async fn execute(&self, req: Request) -> Result<Response, C4cError> {
        let overall = self.inner.timeouts.overall();
        let write = req.is_write();
        match tokio::time::timeout(overall, self.execute_inner(&req)).await {
            Ok(result) => result,
            Err(_) => Err(C4cError::Timeout {
                outcome_unknown: write && req.replay != Replay::Safe,
            }),
        }
    }

    async fn execute_inner(&self, req: &Request) -> Result<Response, C4cError> {
        let write = req.is_write();
        let mut attempt = 0u32;
        let mut csrf_refreshed = false;
        let mut token_refreshed = false;
        // True once an attempt of this write may have reached the server.
        let mut maybe_applied = false;
        loop {
            attempt += 1;
            let csrf = if write {
                self.csrf_for_write().await?
            } else {
                None
            };
            let csrf_generation = csrf.as_ref().map(|(_, g)| *g).unwrap_or(0);
            let (result, bearer_generation) = self
                .attempt(req, csrf.as_ref().map(|(t, _)| t.as_str()))
                .await;
            let err = match result {
                Ok(r) => return Ok(r),
                // A DELETE replayed after a lost answer finds the entity already gone.
                Err(C4cError::NotFound { .. }) if maybe_applied && req.method == Method::DELETE => {
                    return Ok(Response {
                        status: 204,
                        headers: HeaderMap::new(),
                        body: Bytes::new(),
                    });
                }
                Err(e) => e,
            };
            match &err {
                C4cError::CsrfRequired
                    if write && self.inner.csrf_mode != CsrfMode::Disabled && !csrf_refreshed =>
                {
                    // The tenant refused before doing anything: refresh once (one task for all) and replay.
                    csrf_refreshed = true;
                    attempt -= 1;
                    self.refresh_csrf(csrf_generation).await?;
                    continue;
                }
                C4cError::Unauthorized { .. } if !token_refreshed => {
                    if let (RequestAuth::Bearer(source), Some(generation)) =
                        (&self.inner.auth, bearer_generation)
                    {
                        token_refreshed = true;
                        attempt -= 1;
                        source.invalidate(generation).await;
                        continue;
                    }
                }
                _ => {}
            }
            // A refused connection never carried the request; anything later may have.
            let unknown = match &err {
                C4cError::Timeout { outcome_unknown }
                | C4cError::Transport {
                    outcome_unknown, ..
                } => *outcome_unknown,
                _ => false,
            };
            maybe_applied |= write && unknown;
            let retryable = match &err {
                C4cError::Throttled { .. } => true,
                // The token endpoint failed before the API call was made.
                C4cError::TokenRequest { status, .. } => *status == 429 || *status >= 500,
                C4cError::Unavailable { status, .. } => {
                    *status == 503 || req.replay != Replay::Never
                }
                C4cError::Timeout { .. } | C4cError::Transport { .. } => {
                    !unknown || req.replay != Replay::Never
                }
                _ => false,
            };
            match self.inner.retry.next_delay(attempt, &err, retryable) {
                Some(delay) => {
                    tracing::debug!(attempt, ?delay, error = %err, "retrying C4C call");
                    self.inner.observer.on_retry(req.kind, err.kind());
                    tokio::time::sleep(delay).await;
                }
                None => {
                    let err = match err {
                        e @ (C4cError::Timeout { .. } | C4cError::Transport { .. }) => {
                            e.with_outcome_unknown(maybe_applied)
                        }
                        e => e,
                    };
                    return Err(err);
                }
            }
        }
    }

    /// `Authorization` for one call, with the bearer token's generation.
    async fn authorization(&self) -> Result<(Option<HeaderValue>, Option<u64>), C4cError> {
        let inner = &self.inner;
        match &inner.auth {
            RequestAuth::Basic(authorization) => Ok((Some(authorization.clone()), None)),
            RequestAuth::Certificate => Ok((None, None)),
            RequestAuth::Bearer(source) => {
                let (token, generation) = source
                    .token(&inner.http, self.service_host(), &inner.observer)
                    .await?;
                let mut value = HeaderValue::try_from(format!("Bearer {}", token.expose_secret()))
                    .map_err(|_| {
                        C4cError::UnexpectedResponse(
                            "the token endpoint issued a token that cannot be sent in a header"
                                .into(),
                        )
                    })?;
                value.set_sensitive(true);
                Ok((Some(value), Some(generation)))
            }
        }
    }

    /// One HTTP exchange. Returns the bearer generation used, if any.
    async fn attempt(
        &self,
        req: &Request,
        csrf: Option<&str>,
    ) -> (Result<Response, C4cError>, Option<u64>) {
        let inner = &self.inner;
        let (authorization, bearer_generation) = match self.authorization().await {
            Ok(auth) => auth,
            Err(e) => return (Err(e), None),
        };
        // Every GET made while no token is held fetches one, so the first write needs no extra call.
        let fetching =
            !req.is_write() && inner.csrf_mode == CsrfMode::Auto && inner.csrf.current().is_none();
        let mut headers = HeaderMap::with_capacity(6);
        headers.insert(header::ACCEPT, HeaderValue::from_static(req.accept));
        if let Some(authorization) = authorization {
            headers.insert(header::AUTHORIZATION, authorization);
        }
        if fetching {
            headers.insert(CSRF_HEADER, HeaderValue::from_static("Fetch"));
        }
        // An empty token stands for a tenant that handed none out: send nothing.
        if let Some(token) = csrf.filter(|t| !t.is_empty()) {
            match HeaderValue::from_str(token) {
                Ok(v) => headers.insert(CSRF_HEADER, v),
                Err(_) => {
                    return (
                        Err(C4cError::UnexpectedResponse(
                            "the tenant's CSRF token cannot be sent in a header".into(),
                        )),
                        bearer_generation,
                    );
                }
            };
        }
        if let Some(etag) = &req.if_match {
            match HeaderValue::from_str(etag.as_str()) {
                Ok(v) => headers.insert(header::IF_MATCH, v),
                Err(_) => {
                    return (
                        Err(C4cError::InvalidInput(format!("ETag not sendable: {etag}"))),
                        None,
                    );
                }
            };
        }
        let body = match &req.body {
            Some((body, content_type)) => {
                match HeaderValue::from_str(content_type) {
                    Ok(v) => headers.insert(header::CONTENT_TYPE, v),
                    Err(_) => {
                        return (
                            Err(C4cError::InvalidInput(format!(
                                "content type not sendable: {content_type}"
                            ))),
                            None,
                        );
                    }
                };
                body.clone()
            }
            None => Bytes::new(),
        };
        let request = match http_request(req.method.clone(), &req.url, headers, body) {
            Ok(request) => request,
            Err(e) => return (Err(e), bearer_generation),
        };
        let _permit = match inner.limiter.acquire().await {
            Ok(p) => p,
            Err(_) => {
                return (
                    Err(C4cError::UnexpectedResponse(
                        "client is shutting down".into(),
                    )),
                    None,
                );
            }
        };
        let started = Instant::now();
        let result = inner.transport.send(request).await;
        let elapsed = started.elapsed();
        let Exchange {
            status,
            headers,
            body,
        } = match result {
            Ok(exchange) => exchange,
            Err(e) => {
                inner
                    .observer
                    .on_call(req.kind, None, elapsed, Some(e.kind()));
                return (Err(e), bearer_generation);
            }
        };
        let csrf_header = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        let csrf_required = csrf_header.is_some_and(|v| v.eq_ignore_ascii_case("required"));
        if status.is_success() {
            if fetching && let Some(token) = csrf_header.filter(|_| !csrf_required) {
                inner.csrf.store(token.to_string());
                inner.observer.on_csrf_token(true);
            }
            inner
                .observer
                .on_call(req.kind, Some(status.as_u16()), elapsed, None);
            return (
                Ok(Response {
                    status: status.as_u16(),
                    headers,
                    body,
                }),
                bearer_generation,
            );
        }
        let retry_after = headers
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let err = if status.is_redirection() {
            redirect_error(status.as_u16(), &headers)
        } else {
            error_from_response(status.as_u16(), csrf_required, retry_after, &body)
        };
        inner
            .observer
            .on_call(req.kind, Some(status.as_u16()), elapsed, Some(err.kind()));
        (Err(err), bearer_generation)
    }

    /// The token to send with a write, fetching one first in `auto` mode.
    async fn csrf_for_write(&self) -> Result<Option<(String, u64)>, C4cError> {
        if self.inner.csrf_mode == CsrfMode::Disabled {
            return Ok(None);
        }
        if let Some(current) = self.inner.csrf.current() {
            return Ok(Some(current));
        }
        if self.inner.csrf_mode == CsrfMode::Auto {
            self.refresh_csrf(0).await?;
        }
        Ok(self.inner.csrf.current())
    }

    /// Fetches a new token unless another task already replaced generation `stale`.
    async fn refresh_csrf(&self, stale: u64) -> Result<(), C4cError> {
        let _single = self.inner.csrf.refresh.lock().await;
        let current = self.inner.csrf.current().map(|(_, g)| g).unwrap_or(0);
        if current != stale {
            return Ok(());
        }
        let mut url = self.inner.root.to_string();
        push_query(&mut url, &[("$format", "json".into())]);
        let url = Url::parse(&url).map_err(|e| C4cError::InvalidInput(e.to_string()))?;
        let mut req = Request::get(url);
        req.kind = CallKind::CsrfFetch;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (authorization, _) = self.authorization().await?;
            let mut headers = HeaderMap::with_capacity(3);
            headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
            headers.insert(CSRF_HEADER, HeaderValue::from_static("Fetch"));
            if let Some(authorization) = authorization {
                headers.insert(header::AUTHORIZATION, authorization);
            }
            let request = http_request(Method::GET, &req.url, headers, Bytes::new())?;
            let permit = self.inner.limiter.acquire().await;
            let started = Instant::now();
            let result = self.inner.transport.send(request).await;
            drop(permit);
            let err = match result {
                Ok(Exchange {
                    status,
                    headers,
                    body,
                }) => {
                    let token = headers
                        .get(CSRF_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    let retry_after = headers
                        .get(header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(parse_retry_after);
                    if status.is_success() {
                        self.inner.observer.on_call(
                            CallKind::CsrfFetch,
                            Some(status.as_u16()),
                            started.elapsed(),
                            None,
                        );
                        self.inner.observer.on_csrf_token(false);
                        match token.filter(|t| !t.eq_ignore_ascii_case("required")) {
                            Some(t) => self.inner.csrf.store(t),
                            // A tenant that hands out no token does not check one either.
                            None => self.inner.csrf.store(String::new()),
                        }
                        return Ok(());
                    }
                    let err = error_from_response(status.as_u16(), false, retry_after, &body);
                    self.inner.observer.on_call(
                        CallKind::CsrfFetch,
                        Some(status.as_u16()),
                        started.elapsed(),
                        Some(err.kind()),
                    );
                    err
                }
                Err(e) => {
                    let err = e.with_outcome_unknown(false);
                    self.inner.observer.on_call(
                        CallKind::CsrfFetch,
                        None,
                        started.elapsed(),
                        Some(err.kind()),
                    );
                    err
                }
            };
            match self
                .inner
                .retry
                .next_delay(attempt, &err, err.is_transient())
            {
                Some(delay) => {
                    self.inner.observer.on_retry(req.kind, err.kind());
                    tokio::time::sleep(delay).await;
                }
                None => return Err(err),
            }
        }
    }

    async fn get_json(&self, url: Url) -> Result<Response, C4cError> {
        self.execute(Request::get(url)).await
    }

    async fn send_json(
        &self,
        method: Method,
        relative: &str,
        body: Option<&Value>,
        if_match: Option<&ETag>,
        kind: CallKind,
        replay: Replay,
    ) -> Result<Response, C4cError> {
        let body = match body {
            Some(v) => Some((
                Bytes::from(
                    serde_json::to_vec(v).map_err(|e| C4cError::InvalidInput(e.to_string()))?,
                ),
                "application/json".to_string(),
            )),
            None => None,
        };
        self.execute(Request {
            method,
            url: self.url(relative)?,
            kind,
            body,
            if_match: if_match.cloned(),
            replay,
            accept: "application/json",
        })
        .await
    }

    // ---------------------------------------------------------------- metadata

    /// The service's `$metadata`, fetched once and cached.
    pub async fn metadata(&self) -> Result<Arc<Metadata>, C4cError> {
        self.inner
            .metadata
            .get_or_try_init(|| async {
                let mut url = self.url("$metadata")?.to_string();
                if let Some(f) = &self.inner.metadata_filter {
                    push_query(&mut url, &[("$filter", f.clone())]);
                }
                let mut req = Request::get(
                    Url::parse(&url).map_err(|e| C4cError::InvalidInput(e.to_string()))?,
                );
                req.kind = CallKind::Metadata;
                req.accept = "application/xml";
                let resp = self.execute(req).await?;
                Ok(Arc::new(Metadata::parse(&resp.body)?))
            })
            .await
            .cloned()
    }

    /// Checks an employee write body against the tenant's `$metadata` without sending it
    /// (for dry runs; the tenant checks again on the real write).
    pub async fn check_employee_write(
        &self,
        fields: &Fields,
        kind: super::metadata::WriteKind,
    ) -> Result<(), C4cError> {
        self.metadata()
            .await?
            .check_write(EMPLOYEE_SET, &fields.0, kind)
    }

    async fn entity_type_of(&self, set: &str) -> Result<EntityTypeModel, C4cError> {
        let md = self.metadata().await?;
        md.entity_type_of_set(set).cloned().ok_or_else(|| {
            C4cError::UnexpectedResponse(format!("$metadata has no entity set {set}"))
        })
    }

    // ---------------------------------------------------------------- reads

    /// Renders a query on `set` into request URLs (several when the filter must be split).
    async fn query_paths(&self, set: &str, q: &EmployeeQuery) -> Result<Vec<String>, C4cError> {
        let filters = match &q.filter {
            Some(f) => {
                let entity = self.entity_type_of(set).await?;
                filter::plan(f)?
                    .iter()
                    .map(|f| f.render(&entity, &self.inner.profile).map(Some))
                    .collect::<Result<Vec<_>, _>>()?
            }
            None => vec![None],
        };
        let mut out = Vec::with_capacity(filters.len());
        for f in filters {
            let mut path = set.to_string();
            let mut pairs: Vec<(&str, String)> = Vec::new();
            if let Some(f) = f {
                pairs.push(("$filter", f));
            }
            if !q.select.is_empty() {
                pairs.push(("$select", q.select.join(",")));
            }
            if !q.expand.is_empty() {
                pairs.push(("$expand", q.expand.join(",")));
            }
            if !q.order_by.is_empty() {
                let order = q
                    .order_by
                    .iter()
                    .map(|(p, o)| format!("{p} {}", if *o == Order::Desc { "desc" } else { "asc" }))
                    .collect::<Vec<_>>()
                    .join(",");
                pairs.push(("$orderby", order));
            }
            match (q.top, self.inner.profile.page_size) {
                (Some(top), _) => pairs.push(("$top", top.to_string())),
                (None, Some(page)) => pairs.push(("$top", page.to_string())),
                _ => {}
            }
            if let Some(skip) = q.skip {
                pairs.push(("$skip", skip.to_string()));
            }
            pairs.push(("$format", "json".into()));
            push_query(&mut path, &pairs);
            out.push(path);
        }
        Ok(out)
    }

    /// Checks a server next link stays on the tenant (credentials go with it).
    fn next_url(&self, next: &str) -> Result<Url, C4cError> {
        let url =
            self.inner.root.join(next).map_err(|e| {
                C4cError::UnexpectedResponse(format!("bad __next link {next:?}: {e}"))
            })?;
        if url.origin() != self.inner.root.origin() {
            return Err(C4cError::UnexpectedResponse(format!(
                "__next link leaves the tenant: {next}"
            )));
        }
        let mut url = url;
        if !url.query_pairs().any(|(k, _)| k == "$format") {
            url.query_pairs_mut().append_pair("$format", "json");
        }
        Ok(url)
    }

    async fn fetch_page(&self, url: Url) -> Result<Page, C4cError> {
        let resp = self.get_json(url).await?;
        odata::parse_collection(&resp.body)
    }

    /// All entities of one path, following `__next` links whatever page size the tenant picks.
    async fn read_all(&self, path: &str) -> Result<Vec<Map<String, Value>>, C4cError> {
        let mut out = Vec::new();
        let mut url = self.url(path)?;
        loop {
            let page = self.fetch_page(url).await?;
            out.extend(page.results);
            match page.next {
                Some(next) => url = self.next_url(&next)?,
                None => return Ok(out),
            }
        }
    }

    /// One employee by ObjectID.
    pub async fn get_employee(&self, object_id: &str) -> Result<Employee, C4cError> {
        self.get_employee_selecting(object_id, None).await
    }

    /// One employee with only the properties in `select` (a `$select` value; all when `None`).
    pub async fn get_employee_selecting(
        &self,
        object_id: &str,
        select: Option<&str>,
    ) -> Result<Employee, C4cError> {
        let mut path = key_path(EMPLOYEE_SET, object_id)?;
        push_query(&mut path, &[("$format", "json".into())]);
        if let Some(select) = select {
            push_query(&mut path, &[("$select", select.to_owned())]);
        }
        let resp = self.get_json(self.url(&path)?).await?;
        let mut employee = Employee::from_entity(odata::parse_entity(&resp.body)?)?;
        if employee.etag.is_none() {
            employee.etag = resp.header("etag").map(ETag::new);
        }
        Ok(employee)
    }

    /// Every employee matching the query (all pages; split filters merged, de-duplicated by ObjectID).
    pub async fn query_employees(&self, q: &EmployeeQuery) -> Result<Vec<Employee>, C4cError> {
        let paths = self.query_paths(EMPLOYEE_SET, q).await?;
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for path in &paths {
            for entity in self.read_all(path).await? {
                let e = Employee::from_entity(entity)?;
                if seen.insert(e.object_id.clone()) {
                    out.push(e);
                }
            }
        }
        if let (Some(top), true) = (q.top, paths.len() > 1) {
            out.truncate(top as usize);
        }
        Ok(out)
    }

    /// Page-by-page reading for large results; memory stays at one page.
    pub async fn employee_pages(&self, q: &EmployeeQuery) -> Result<EmployeePages, C4cError> {
        let paths = self.query_paths(EMPLOYEE_SET, q).await?;
        let mut pending = Vec::with_capacity(paths.len());
        for p in paths.iter().rev() {
            pending.push(self.url(p)?);
        }
        Ok(EmployeePages {
            client: self.clone(),
            pending,
            seen: HashSet::new(),
            dedupe: paths.len() > 1,
        })
    }

    /// Employees whose `property` equals one of `values`: `or`-chains of at most
    /// `tenant.max_or_values`, sent as GETs inside `$batch` when more than one is needed.
    /// Values containing `*` (a wildcard for C4C) are checked exactly on the results.
    pub async fn find_employees_by(
        &self,
        property: &str,
        values: &[String],
    ) -> Result<Vec<Employee>, C4cError> {
        if values.is_empty() {
            return Ok(Vec::new());
        }
        let entity = self.entity_type_of(EMPLOYEE_SET).await?;
        let mut paths = Vec::new();
        for chunk in values.chunks(self.inner.profile.max_or_values) {
            let f = Filter::any_of(property, chunk.iter());
            let mut path = EMPLOYEE_SET.to_string();
            push_query(
                &mut path,
                &[
                    ("$filter", f.render(&entity, &self.inner.profile)?),
                    ("$format", "json".into()),
                ],
            );
            paths.push(path);
        }
        let mut entities = Vec::new();
        if paths.len() == 1 {
            entities = self.read_all(&paths[0]).await?;
        } else {
            for group in paths.chunks(LOOKUP_PARTS_PER_BATCH) {
                let parts: Vec<BatchPart> = group.iter().cloned().map(BatchPart::Get).collect();
                for result in self.batch(parts).await? {
                    let BatchPartResult::Get(r) = result else {
                        return Err(C4cError::UnexpectedResponse(
                            "changeset result for a GET".into(),
                        ));
                    };
                    let page = odata::parse_collection(&r?.body)?;
                    entities.extend(page.results);
                    let mut next = page.next;
                    while let Some(link) = next {
                        let page = self.fetch_page(self.next_url(&link)?).await?;
                        entities.extend(page.results);
                        next = page.next;
                    }
                }
            }
        }
        let wanted: HashSet<&str> = values.iter().map(String::as_str).collect();
        let exact = values.iter().any(|v| v.contains('*'));
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for entity in entities {
            let e = Employee::from_entity(entity)?;
            if exact
                && !e
                    .property(property)
                    .as_ref()
                    .and_then(Value::as_str)
                    .is_some_and(|v| wanted.contains(v))
            {
                continue;
            }
            if seen.insert(e.object_id.clone()) {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// Employees changed since `cursor`'s position (minus its overlap), oldest first, each
    /// (ObjectID, ETag) reported once. Advances the cursor.
    pub async fn delta(&self, cursor: &mut DeltaCursor) -> Result<Vec<Employee>, C4cError> {
        let from = cursor.since - cursor.overlap;
        let q = EmployeeQuery::new()
            .filter(Filter::ge("EntityLastChangedOn", from))
            .order_by("EntityLastChangedOn", Order::Asc);
        let all = self.query_employees(&q).await?;
        Ok(cursor.absorb(all))
    }

    /// One-shot delta read: employees with `EntityLastChangedOn >= since - overlap`.
    pub async fn delta_since(
        &self,
        since: DateTime<Utc>,
        overlap: Duration,
    ) -> Result<Vec<Employee>, C4cError> {
        let mut cursor = DeltaCursor::new(since, overlap);
        self.delta(&mut cursor).await
    }

    // ---------------------------------------------------------------- writes

    /// Creates an employee. One POST, no read-back: the 201 body carries ObjectID, EmployeeID
    /// and ETag. Not retried once the request may have reached C4C; see
    /// [`C4cClient::create_employee_once`] for recovery.
    pub async fn create_employee(&self, fields: &Fields) -> Result<Employee, C4cError> {
        let resp = self
            .send_json(
                Method::POST,
                EMPLOYEE_SET,
                Some(&Value::Object(fields.0.clone())),
                None,
                CallKind::Create,
                Replay::Never,
            )
            .await?;
        created_employee(&resp)
    }

    /// Creates an employee without ever making two: after an ambiguous failure it looks the
    /// employee up by `key` and only POSTs again when C4C surely has none.
    pub async fn create_employee_once(
        &self,
        fields: &Fields,
        key: &BusinessKey,
    ) -> Result<Employee, C4cError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let err = match self.create_employee(fields).await {
                Ok(e) => return Ok(e),
                Err(e) => e,
            };
            let ambiguous = err.is_ambiguous()
                || matches!(
                    err,
                    C4cError::Unavailable {
                        status: 502 | 504,
                        ..
                    }
                );
            if !ambiguous {
                return Err(err);
            }
            tracing::warn!(error = %err, "create outcome unknown; looking the employee up by business key");
            // Give a write the server may still be committing a moment to land before looking.
            tokio::time::sleep(self.inner.retry.ceiling(attempt)).await;
            if let Some(found) = self.lookup_by_key(key).await? {
                return Ok(found);
            }
            if attempt >= self.inner.retry.max_attempts {
                return Err(err);
            }
        }
    }

    /// The employee with this business key, if exactly one exists.
    pub async fn lookup_by_key(&self, key: &BusinessKey) -> Result<Option<Employee>, C4cError> {
        let found: Vec<Employee> = self
            .query_employees(&EmployeeQuery::new().filter(key.filter()))
            .await?
            .into_iter()
            .filter(|e| key.matches(e))
            .collect();
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.into_iter().next()),
            n => Err(C4cError::Validation {
                status: 409,
                code: "DUPLICATE".into(),
                message: format!("{n} employees share the business key {key:?}"),
                property: None,
            }),
        }
    }

    /// PATCHes an employee; with `if_match`, C4C refuses (412) when it changed meanwhile.
    /// Returns the new ETag when C4C sends one.
    pub async fn update_employee(
        &self,
        object_id: &str,
        fields: &Fields,
        if_match: Option<&ETag>,
    ) -> Result<Option<ETag>, C4cError> {
        if fields.is_empty() {
            return Err(C4cError::InvalidInput("empty update".into()));
        }
        let path = key_path(EMPLOYEE_SET, object_id)?;
        let replay = if if_match.is_some() {
            Replay::Never
        } else {
            Replay::Idempotent
        };
        let resp = self
            .send_json(
                Method::PATCH,
                &path,
                Some(&Value::Object(fields.0.clone())),
                if_match,
                CallKind::Update,
                replay,
            )
            .await?;
        Ok(resp.header("etag").map(ETag::new))
    }

    /// Business-role assignments of an employee.
    pub async fn list_role_assignments(
        &self,
        employee_object_id: &str,
    ) -> Result<Vec<RoleAssignment>, C4cError> {
        self.list_children(employee_object_id, ROLE_NAV, RoleAssignment::from_entity)
            .await
    }

    /// Assigns a business role. After an ambiguous failure, the employee's assignments are
    /// read and the role is only POSTed again when absent.
    pub async fn create_role_assignment(
        &self,
        employee_object_id: &str,
        business_role_id: &str,
        user_id: Option<&str>,
    ) -> Result<RoleAssignment, C4cError> {
        key_path(EMPLOYEE_SET, employee_object_id)?;
        let mut body = Map::new();
        body.insert(
            "ParentObjectID".into(),
            Value::String(employee_object_id.into()),
        );
        body.insert(
            "BusinessRoleID".into(),
            Value::String(business_role_id.into()),
        );
        if let Some(u) = user_id {
            body.insert("UserID".into(), Value::String(u.into()));
        }
        let body = Value::Object(body);
        self.create_child_once(
            ROLE_ASSIGNMENT_SET,
            &body,
            RoleAssignment::from_entity,
            || async {
                let existing = self.list_role_assignments(employee_object_id).await?;
                Ok(existing
                    .into_iter()
                    .find(|r| r.business_role_id == business_role_id))
            },
        )
        .await
    }

    /// Removes a business-role assignment (roles are never updated: delete and create).
    /// Deleting one that a lost earlier attempt already removed counts as done.
    pub async fn delete_role_assignment(&self, object_id: &str) -> Result<(), C4cError> {
        self.delete_idempotent(ROLE_ASSIGNMENT_SET, object_id).await
    }

    /// Org-unit assignments of an employee.
    pub async fn list_org_assignments(
        &self,
        employee_object_id: &str,
    ) -> Result<Vec<OrgUnitAssignment>, C4cError> {
        self.list_children(employee_object_id, ORG_NAV, OrgUnitAssignment::from_entity)
            .await
    }

    /// Assigns an employee to an org unit (recovers like [`Self::create_role_assignment`]).
    pub async fn create_org_assignment(
        &self,
        employee_object_id: &str,
        assignment: &NewOrgUnitAssignment,
    ) -> Result<OrgUnitAssignment, C4cError> {
        key_path(EMPLOYEE_SET, employee_object_id)?;
        let body = assignment.to_body(employee_object_id);
        self.create_child_once(
            ORG_ASSIGNMENT_SET,
            &body,
            OrgUnitAssignment::from_entity,
            || async {
                let existing = self.list_org_assignments(employee_object_id).await?;
                Ok(existing
                    .into_iter()
                    .find(|o| o.org_unit_id.as_deref() == Some(assignment.org_unit_id.as_str())))
            },
        )
        .await
    }

    /// Every entity behind one navigation of an employee, all pages.
    async fn list_children<T>(
        &self,
        employee_object_id: &str,
        navigation: &str,
        parse: fn(Map<String, Value>) -> Result<T, C4cError>,
    ) -> Result<Vec<T>, C4cError> {
        let mut path = format!(
            "{}/{navigation}",
            key_path(EMPLOYEE_SET, employee_object_id)?
        );
        push_query(&mut path, &[("$format", "json".into())]);
        self.read_all(&path).await?.into_iter().map(parse).collect()
    }

    /// POSTs a child entity at most once in effect: after an ambiguous failure, `existing`
    /// looks for it, and only when it is absent is the POST sent again.
    async fn create_child_once<T, Lookup, Found>(
        &self,
        set: &str,
        body: &Value,
        parse: fn(Map<String, Value>) -> Result<T, C4cError>,
        existing: Lookup,
    ) -> Result<T, C4cError>
    where
        Lookup: Fn() -> Found,
        Found: std::future::Future<Output = Result<Option<T>, C4cError>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let err = match self
                .send_json(
                    Method::POST,
                    set,
                    Some(body),
                    None,
                    CallKind::Create,
                    Replay::Never,
                )
                .await
            {
                Ok(resp) => return parse(created_entity(&resp)?),
                Err(e) => e,
            };
            if !err.is_ambiguous() {
                return Err(err);
            }
            if let Some(found) = existing().await? {
                return Ok(found);
            }
            if attempt >= self.inner.retry.max_attempts {
                return Err(err);
            }
        }
    }

    pub async fn delete_org_assignment(&self, object_id: &str) -> Result<(), C4cError> {
        self.delete_idempotent(ORG_ASSIGNMENT_SET, object_id).await
    }

    async fn delete_idempotent(&self, set: &str, object_id: &str) -> Result<(), C4cError> {
        let path = key_path(set, object_id)?;
        self.send_json(
            Method::DELETE,
            &path,
            None,
            None,
            CallKind::Delete,
            Replay::Idempotent,
        )
        .await?;
        Ok(())
    }

    /// Sends a `$batch` (one HTTP call); results are aligned with `parts`. Changesets are
    /// atomic on the server. Not retried once it may have reached C4C.
    pub async fn batch(&self, parts: Vec<BatchPart>) -> Result<Vec<BatchPartResult>, C4cError> {
        if parts.is_empty() {
            return Ok(Vec::new());
        }
        let built = batch::build(&parts)?;
        let has_changes = parts.iter().any(|p| matches!(p, BatchPart::Changeset(_)));
        let resp = self
            .execute(Request {
                method: Method::POST,
                url: self.url("$batch")?,
                kind: CallKind::Batch,
                body: Some((Bytes::from(built.body), built.content_type)),
                if_match: None,
                replay: if has_changes {
                    Replay::Never
                } else {
                    Replay::Idempotent
                },
                accept: "multipart/mixed",
            })
            .await?;
        let ctype = resp.header("content-type").unwrap_or_default().to_string();
        batch::parse(&ctype, &resp.body, &parts)
    }

    /// [`Self::batch_create_employees`] without duplicates: when the batch's outcome is
    /// unknown (connection lost after sending), the business keys are looked up (in one
    /// `$batch` when they are all EmployeeIDs) and only the missing employees are sent again.
    pub async fn batch_create_employees_once(
        &self,
        items: &[(Fields, BusinessKey)],
    ) -> Result<Vec<Result<Employee, C4cError>>, C4cError> {
        let mut results: Vec<Option<Result<Employee, C4cError>>> = vec![None; items.len()];
        let mut attempt = 0;
        loop {
            attempt += 1;
            let pending: Vec<usize> = (0..items.len()).filter(|i| results[*i].is_none()).collect();
            if pending.is_empty() {
                break;
            }
            let fields: Vec<Fields> = pending.iter().map(|i| items[*i].0.clone()).collect();
            let err = match self.batch_create_employees(&fields).await {
                Ok(done) => {
                    for (i, r) in pending.into_iter().zip(done) {
                        results[i] = Some(r);
                    }
                    break;
                }
                Err(e) => e,
            };
            let ambiguous = err.is_ambiguous()
                || matches!(
                    err,
                    C4cError::Unavailable {
                        status: 502 | 504,
                        ..
                    }
                );
            if !ambiguous {
                return Err(err);
            }
            tracing::warn!(error = %err, "batch outcome unknown; looking the employees up by business key");
            let keys: Vec<&BusinessKey> = pending.iter().map(|i| &items[*i].1).collect();
            let found = self.lookup_many(&keys).await?;
            for (i, hit) in pending.into_iter().zip(found) {
                if let Some(e) = hit {
                    results[i] = Some(Ok(e));
                }
            }
            if attempt >= self.inner.retry.max_attempts && results.iter().any(Option::is_none) {
                return Err(err);
            }
        }
        Ok(results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(C4cError::UnexpectedResponse(
                        "employee left unresolved".into(),
                    ))
                })
            })
            .collect())
    }

    /// Looks several business keys up: one `find_employees_by` when all are EmployeeIDs.
    async fn lookup_many(&self, keys: &[&BusinessKey]) -> Result<Vec<Option<Employee>>, C4cError> {
        let ids: Option<Vec<String>> = keys
            .iter()
            .map(|k| match k {
                BusinessKey::EmployeeId(id) => Some(id.clone()),
                _ => None,
            })
            .collect();
        match ids {
            Some(ids) => {
                let found = self.find_employees_by("EmployeeID", &ids).await?;
                Ok(keys
                    .iter()
                    .map(|k| found.iter().find(|e| k.matches(e)).cloned())
                    .collect())
            }
            None => {
                let mut out = Vec::with_capacity(keys.len());
                for key in keys {
                    out.push(self.lookup_by_key(key).await?);
                }
                Ok(out)
            }
        }
    }

    /// Creates many employees in one `$batch`, each in its own changeset (one failure does
    /// not undo the others). Results are in input order.
    pub async fn batch_create_employees(
        &self,
        employees: &[Fields],
    ) -> Result<Vec<Result<Employee, C4cError>>, C4cError> {
        let parts = employees
            .iter()
            .map(|f| {
                BatchPart::Changeset(vec![batch::BatchChange::post(
                    EMPLOYEE_SET,
                    Value::Object(f.0.clone()),
                )])
            })
            .collect();
        let results = self.batch(parts).await?;
        Ok(results
            .into_iter()
            .map(|r| match r {
                BatchPartResult::Changeset(mut changes) if changes.len() == 1 => {
                    match changes.remove(0) {
                        Ok(resp) => {
                            let entity = odata::parse_entity(&resp.body)?;
                            let mut e = Employee::from_entity(entity)?;
                            if e.etag.is_none() {
                                e.etag = resp.header("etag").map(ETag::new);
                            }
                            Ok(e)
                        }
                        Err(err) => Err(err),
                    }
                }
                _ => Err(C4cError::UnexpectedResponse(
                    "batch result does not match its request".into(),
                )),
            })
            .collect())
    }
}

fn created_entity(resp: &Response) -> Result<Map<String, Value>, C4cError> {
    if resp.status == StatusCode::NO_CONTENT.as_u16() || resp.body.is_empty() {
        // `odata-no-response-payload`: only the location header names what was made.
        let location = resp
            .header("location")
            .ok_or_else(|| C4cError::UnexpectedResponse("201 without body or location".into()))?;
        let id = odata::object_id_from_uri(location).ok_or_else(|| {
            C4cError::UnexpectedResponse(format!("location without key: {location}"))
        })?;
        let mut m = Map::new();
        m.insert("ObjectID".into(), Value::String(id));
        return Ok(m);
    }
    odata::parse_entity(&resp.body)
}

fn created_employee(resp: &Response) -> Result<Employee, C4cError> {
    let mut e = Employee::from_entity(created_entity(resp)?)?;
    if e.etag.is_none() {
        e.etag = resp.header("etag").map(ETag::new);
    }
    Ok(e)
}

/// Pages of an employee query, fetched on demand.
pub struct EmployeePages {
    client: C4cClient,
    pending: Vec<Url>,
    seen: HashSet<String>,
    dedupe: bool,
}

impl EmployeePages {
    /// The next page, or `None` when done.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Employee>>, C4cError> {
        let Some(url) = self.pending.pop() else {
            return Ok(None);
        };
        let page = self.client.fetch_page(url).await?;
        if let Some(next) = page.next {
            self.pending.push(self.client.next_url(&next)?);
        }
        let mut out = Vec::with_capacity(page.results.len());
        for entity in page.results {
            let e = Employee::from_entity(entity)?;
            if !self.dedupe || self.seen.insert(e.object_id.clone()) {
                out.push(e);
            }
        }
        Ok(Some(out))
    }

    /// The employees as a stream.
    pub fn into_stream(self) -> impl futures::Stream<Item = Result<Employee, C4cError>> {
        use futures::StreamExt;
        futures::stream::try_unfold(self, |mut pages| async move {
            Ok(pages
                .next_page()
                .await?
                .map(|page| (futures::stream::iter(page.into_iter().map(Ok)), pages)))
        })
        .try_flatten()
        .boxed()
    }
}

use futures::TryStreamExt;

/// Position of a delta poll: changes from `since - overlap` on, each (ObjectID, ETag) once.
#[derive(Debug, Clone)]
pub struct DeltaCursor {
    pub since: DateTime<Utc>,
    pub overlap: Duration,
    seen: HashMap<String, (Option<ETag>, DateTime<Utc>)>,
}

impl DeltaCursor {
    pub fn new(since: DateTime<Utc>, overlap: Duration) -> Self {
        Self {
            since,
            overlap,
            seen: HashMap::new(),
        }
    }

    /// Keeps unseen changes, moves `since` to the newest change and forgets entries older
    /// than the overlap window.
    fn absorb(&mut self, employees: Vec<Employee>) -> Vec<Employee> {
        let mut fresh = Vec::new();
        for e in employees {
            let changed = e.entity_last_changed_on.unwrap_or(self.since);
            let known = self
                .seen
                .get(&e.object_id)
                .is_some_and(|(etag, at)| *etag == e.etag && *at == changed);
            if known {
                continue;
            }
            self.seen
                .insert(e.object_id.clone(), (e.etag.clone(), changed));
            if changed > self.since {
                self.since = changed;
            }
            fresh.push(e);
        }
        let horizon = self.since - self.overlap;
        self.seen.retain(|_, (_, at)| *at >= horizon);
        fresh
    }
}

impl C4cClient {
    /// Every assignment of one business role in the tenant (all pages), with the assignments'
    /// ObjectIDs: one paged read instead of one read per employee when many members change.
    pub async fn role_holders(
        &self,
        business_role_id: &str,
    ) -> Result<Vec<RoleAssignment>, C4cError> {
        let mut path = ROLE_ASSIGNMENT_SET.to_string();
        push_query(
            &mut path,
            &[
                (
                    "$filter",
                    format!(
                        "BusinessRoleID eq {}",
                        odata::string_literal(business_role_id)
                    ),
                ),
                ("$format", "json".into()),
            ],
        );
        self.read_all(&path)
            .await?
            .into_iter()
            .map(RoleAssignment::from_entity)
            .collect()
    }

    /// The path of one employee's business-role or org-unit assignments, for a GET part of a
    /// `$batch` (parse its body with [`odata::parse_collection`]).
    pub fn assignments_path(employee_object_id: &str, org_units: bool) -> Result<String, C4cError> {
        let navigation = if org_units { ORG_NAV } else { ROLE_NAV };
        let mut path = format!(
            "{}/{navigation}",
            key_path(EMPLOYEE_SET, employee_object_id)?
        );
        push_query(&mut path, &[("$format", "json".into())]);
        Ok(path)
    }
}

/// A redirect from the tenant, with where it pointed (without its query, which may carry a
/// logon request).
fn redirect_error(status: u16, headers: &HeaderMap) -> C4cError {
    let target = headers
        .get(header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .map(|location| location.split(['?', '#']).next().unwrap_or_default())
        .unwrap_or("nowhere");
    C4cError::UnexpectedResponse(format!(
        "C4C answered {status}, a redirect to {target}, which is not followed: check the base \
         URL, and that the technical user may call the API without a logon page"
    ))
}

#[cfg(test)]
mod tests {
    //! HTTP behaviour the simulator cannot produce, against a small local axum server.
    use std::sync::atomic::AtomicUsize;

    use axum::Router;
    use axum::http::{HeaderMap as AxHeaders, StatusCode as AxStatus};
    use axum::routing::{get, post};

    use super::*;

    async fn serve(app: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    }

    fn client(base: &str, auth: &str) -> C4cClient {
        let text = format!(
            "base_url = \"{base}/svc/\"\ncsrf = \"on_demand\"\n[retry]\nmax_attempts = 2\nbase_backoff_ms = 1\nmax_backoff_ms = 2\n[auth]\n{auth}\n"
        );
        C4cClient::new(toml::from_str(&text).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn a_refused_bearer_token_is_replaced_once() {
        let issued = Arc::new(AtomicUsize::new(0));
        let counter = issued.clone();
        let app = Router::new()
            .route(
                "/token",
                post(move || {
                    let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                    async move { axum::Json(serde_json::json!({"access_token": format!("tok{n}"), "expires_in": 3600})) }
                }),
            )
            .route(
                "/svc/EmployeeCollection",
                get(|headers: AxHeaders| async move {
                    match headers.get("authorization").and_then(|v| v.to_str().ok()) {
                        Some("Bearer tok2") => (AxStatus::OK, r#"{"d":{"results":[]}}"#.to_string()),
                        _ => (AxStatus::UNAUTHORIZED, "Access token expired".to_string()),
                    }
                }),
            );
        let base = serve(app).await;
        let auth = format!(
            "mode = \"oauth_client_credentials\"\ntoken_url = \"{base}/token\"\nclient_id = \"c\"\nclient_secret = \"s\""
        );
        let c = client(&base, &auth);
        assert!(
            c.query_employees(&EmployeeQuery::new())
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            issued.load(Ordering::SeqCst),
            2,
            "one refresh after the 401"
        );
        // A token that keeps being refused is reported, not refreshed in a loop.
        issued.store(5, Ordering::SeqCst);
        let c = client(&base, &auth);
        let err = c.query_employees(&EmployeeQuery::new()).await.unwrap_err();
        assert_eq!(err.kind(), super::super::error::ErrorKind::Unauthorized);
        assert_eq!(issued.load(Ordering::SeqCst), 7);
    }

    #[tokio::test]
    async fn a_redirect_is_reported_not_followed() {
        let followed = Arc::new(AtomicUsize::new(0));
        let counter = followed.clone();
        let app = Router::new()
            .route(
                "/svc/EmployeeCollection",
                get(|| async {
                    (
                        AxStatus::FOUND,
                        [("location", "/logon?SAMLRequest=secret-ish")],
                        "",
                    )
                }),
            )
            .route(
                "/logon",
                get(move || {
                    counter.fetch_add(1, Ordering::SeqCst);
                    async { "<html>logon</html>" }
                }),
            );
        let base = serve(app).await;
        let c = client(&base, "mode = \"basic\"\nuser = \"u\"\npassword = \"p\"");
        let err = c.query_employees(&EmployeeQuery::new()).await.unwrap_err();
        let C4cError::UnexpectedResponse(message) = &err else {
            panic!("{err:?}");
        };
        assert!(
            message.contains("302") && message.contains("/logon"),
            "{message}"
        );
        assert!(!message.contains("SAMLRequest"), "{message}");
        assert_eq!(followed.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn next_links_may_not_leave_the_tenant() {
        let app = Router::new().route(
            "/svc/EmployeeCollection",
            get(|| async {
                r#"{"d":{"results":[{"ObjectID":"A"}],"__next":"http://elsewhere.invalid/svc/EmployeeCollection?$skiptoken=2"}}"#
            }),
        );
        let base = serve(app).await;
        let c = client(&base, "mode = \"basic\"\nuser = \"u\"\npassword = \"p\"");
        let err = c.query_employees(&EmployeeQuery::new()).await.unwrap_err();
        assert!(
            matches!(err, C4cError::UnexpectedResponse(ref m) if m.contains("leaves the tenant")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn relative_next_links_and_missing_format_are_handled() {
        let app = Router::new().route(
            "/svc/EmployeeCollection",
            get(|uri: axum::http::Uri| async move {
                let q = uri.query().unwrap_or_default().to_string();
                if q.contains("skiptoken=2") {
                    assert!(q.contains("format=json"), "{q}");
                    r#"{"d":{"results":[{"ObjectID":"B"}]}}"#.to_string()
                } else {
                    r#"{"d":{"results":[{"ObjectID":"A"}],"__next":"EmployeeCollection?$skiptoken=2"}}"#.to_string()
                }
            }),
        );
        let base = serve(app).await;
        let c = client(&base, "mode = \"basic\"\nuser = \"u\"\npassword = \"p\"");
        let all = c.query_employees(&EmployeeQuery::new()).await.unwrap();
        let ids: Vec<_> = all.iter().map(|e| e.object_id.as_str()).collect();
        assert_eq!(ids, vec!["A", "B"]);
    }

    #[test]
    fn query_values_are_percent_encoded() {
        let mut url = "EmployeeCollection".to_string();
        push_query(
            &mut url,
            &[
                ("$filter", "Email eq 'a+b&c=d#e f'".into()),
                ("$format", "json".into()),
            ],
        );
        assert_eq!(
            url,
            "EmployeeCollection?$filter=Email%20eq%20'a%2Bb%26c%3Dd%23e%20f'&$format=json"
        );
    }

    #[test]
    fn delta_cursor_deduplicates_and_advances() {
        let at = |ms: i64| DateTime::from_timestamp_millis(ms).unwrap();
        let employee = |id: &str, ms: i64, etag: &str| {
            let mut e = Employee::from_entity(
                serde_json::json!({"ObjectID": id})
                    .as_object()
                    .cloned()
                    .unwrap(),
            )
            .unwrap();
            e.entity_last_changed_on = Some(at(ms));
            e.etag = Some(ETag::new(etag));
            e
        };
        let mut cursor = DeltaCursor::new(at(0), Duration::from_millis(100));
        let fresh = cursor.absorb(vec![employee("A", 1000, "1"), employee("B", 1050, "1")]);
        assert_eq!(fresh.len(), 2);
        assert_eq!(cursor.since, at(1050));
        let fresh = cursor.absorb(vec![
            employee("A", 1000, "1"),
            employee("B", 1050, "1"),
            employee("A", 1100, "2"),
        ]);
        assert_eq!(fresh.len(), 1, "only A's new version");
        assert_eq!(cursor.since, at(1100));
    }
}
