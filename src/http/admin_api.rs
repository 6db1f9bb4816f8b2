//! The admin JSON API under /admin/api (issue 12), described by the OpenAPI 3 document at
//! /admin/api/openapi.json. Viewers read; operators also write (every write carries the
//! session's CSRF token, checked by the `AdminSession` extractor).
//!
//! The views built here are also what the server-rendered UI (`admin_ui`) shows, so the two
//! cannot disagree.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::AppState;
use super::admin_auth::{AdminRejection, AdminSession};
use crate::c4c::observer::{C4cObserver, CallKind};
use crate::c4c::{EmployeeQuery, ErrorKind};
use crate::provisioning::safety::HeldFilter;
use crate::provisioning::users::RequestContext;
use crate::store::{
    AdminLogQuery, LinkQuery, LinkRow, LogRecord, MAX_ADMIN_PAGE, OutboxDecisionError, OutboxItem,
    OutboxStatus, RETRY_SEPARATOR, ResourceType, StoreError,
};

/// Page size when none is asked for.
pub const DEFAULT_PAGE: i64 = 50;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/api/openapi.json", get(openapi_json))
        .route("/admin/api/dashboard", get(dashboard))
        .route("/admin/api/logs", get(search_logs))
        .route("/admin/api/requests/{request_id}", get(request_trace))
        .route(
            "/admin/api/requests/{request_id}/retry",
            post(retry_request),
        )
        .route("/admin/api/users/{scim_id}/timeline", get(user_timeline))
        .route("/admin/api/links", get(links))
        .route("/admin/api/outbox", get(outbox))
        .route("/admin/api/outbox/{id}/retry", post(outbox_retry))
        .route("/admin/api/outbox/{id}/discard", post(outbox_discard))
        .route("/admin/api/held", get(held))
        .route("/admin/api/held/{id}/release", post(held_release))
        .route("/admin/api/held/{id}/discard", post(held_discard))
        .route("/admin/api/rules", get(rules))
        .route("/admin/api/c4c/health", get(c4c_health))
}

// ---------------------------------------------------------------------------------------------
// Errors

/// The body of every admin API error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

/// An admin API failure; rendered once, as `{"error": "…"}` with the status.
#[derive(Debug)]
pub enum ApiError {
    Rejected(AdminRejection),
    BadRequest(String),
    NotFound(String),
    Conflict(String),
    /// C4C or the provisioning services are not configured.
    NotConfigured(&'static str),
    /// The store failed; the cause is logged, not returned.
    Store(StoreError),
}

impl From<AdminRejection> for ApiError {
    fn from(rejection: AdminRejection) -> Self {
        ApiError::Rejected(rejection)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        ApiError::Store(error)
    }
}

impl From<OutboxDecisionError> for ApiError {
    fn from(error: OutboxDecisionError) -> Self {
        match error {
            OutboxDecisionError::NotFound(_) => ApiError::NotFound(error.to_string()),
            OutboxDecisionError::WrongState { .. } => ApiError::Conflict(error.to_string()),
            OutboxDecisionError::Store(error) => ApiError::Store(error),
        }
    }
}

impl ApiError {
    /// Status and message, as the UI shows them too.
    pub fn status_and_message(&self) -> (StatusCode, String) {
        match self {
            ApiError::Rejected(AdminRejection::Forbidden) => (
                StatusCode::FORBIDDEN,
                "the operator role is required".to_owned(),
            ),
            ApiError::Rejected(_) => (StatusCode::UNAUTHORIZED, "login required".to_owned()),
            ApiError::BadRequest(message) => (StatusCode::BAD_REQUEST, message.clone()),
            ApiError::NotFound(message) => (StatusCode::NOT_FOUND, message.clone()),
            ApiError::Conflict(message) => (StatusCode::CONFLICT, message.clone()),
            ApiError::NotConfigured(what) => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{what} needs a [c4c] section in the configuration"),
            ),
            ApiError::Store(StoreError::Unavailable(_)) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "the bridge's store is unavailable; retry later".to_owned(),
            ),
            ApiError::Store(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the bridge's store failed; see the service log".to_owned(),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Rejected(rejection) = self {
            return rejection.into_response();
        }
        if let ApiError::Store(error) = &self {
            tracing::error!(%error, "admin API: store error");
        }
        let (status, message) = self.status_and_message();
        let mut response = (status, Json(ErrorBody { error: message })).into_response();
        super::admin_auth::harden(response.headers_mut());
        response
    }
}

/// `Query`, with a malformed query string answered in the API's own error format.
pub struct AdminQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for AdminQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(value)| AdminQuery(value))
            .map_err(|rejection| ApiError::BadRequest(rejection.body_text()))
    }
}

/// `Path`, with a malformed segment (a non-numeric id) answered in the API's error format.
pub struct AdminPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for AdminPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| AdminPath(value))
            .map_err(|rejection| ApiError::BadRequest(rejection.body_text()))
    }
}

fn ok<T: Serialize>(value: T) -> Response {
    let mut response = Json(value).into_response();
    super::admin_auth::harden(response.headers_mut());
    response
}

fn respond<T: Serialize>(result: Result<T, ApiError>) -> Response {
    match result {
        Ok(value) => ok(value),
        Err(error) => error.into_response(),
    }
}

// ---------------------------------------------------------------------------------------------
// Times and small helpers

/// Milliseconds → RFC 3339 (UTC).
pub fn rfc3339(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// A time given as RFC 3339 or as Unix milliseconds.
pub fn parse_time(name: &str, text: &str) -> Result<i64, ApiError> {
    let text = text.trim();
    if let Ok(millis) = text.parse::<i64>() {
        return Ok(millis);
    }
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(at.timestamp_millis());
    }
    // An HTML datetime-local field: no zone, read as UTC.
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(at) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Ok(at.and_utc().timestamp_millis());
        }
    }
    Err(ApiError::BadRequest(format!(
        "{name}: {text:?} is not a time (RFC 3339 such as 2026-11-23T10:00:00Z, or Unix milliseconds)"
    )))
}

fn non_empty(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
}

fn page_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(limit) if (1..=MAX_ADMIN_PAGE).contains(&limit) => Ok(limit),
        Some(limit) => Err(ApiError::BadRequest(format!(
            "limit {limit} is out of range 1..={MAX_ADMIN_PAGE}"
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// Mapping log

/// One mapping-log record without its trace.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LogSummary {
    /// The record's id; newer records have larger ids.
    pub id: i64,
    pub request_id: String,
    /// RFC 3339.
    pub at: String,
    pub client: Option<String>,
    pub method: String,
    pub path: String,
    pub resource_type: Option<String>,
    /// The SCIM id.
    pub resource_id: Option<String>,
    pub employee_id: Option<String>,
    pub object_id: Option<String>,
    pub status: i64,
    /// ok, refused (4xx), failed (5xx), or an outbox/safety outcome.
    pub outcome: String,
    pub duration_ms: i64,
    /// The error the request ended with, if any.
    pub error: Option<String>,
}

impl From<&LogRecord> for LogSummary {
    fn from(record: &LogRecord) -> Self {
        let entry = &record.entry;
        Self {
            id: record.id,
            request_id: entry.request_id.clone(),
            at: rfc3339(entry.at),
            client: entry.client.clone(),
            method: entry.method.clone(),
            path: entry.path.clone(),
            resource_type: entry.resource_type.clone(),
            resource_id: entry.resource_id.clone(),
            employee_id: entry.employee_id.clone(),
            object_id: entry.object_id.clone(),
            status: entry.status,
            outcome: entry.outcome.clone(),
            duration_ms: entry.duration_ms,
            error: entry
                .detail
                .get("error")
                .and_then(Value::as_str)
                .map(str::to_owned),
        }
    }
}

/// Search criteria of the mapping log; every one narrows.
#[derive(Debug, Clone, Default, Deserialize, Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogSearch {
    /// A userName (case-insensitive).
    pub user: Option<String>,
    /// A SCIM id.
    pub scim_id: Option<String>,
    /// A C4C EmployeeID.
    pub employee_id: Option<String>,
    /// A C4C ObjectID.
    pub object_id: Option<String>,
    /// ok, refused, failed, applied, retrying…
    pub outcome: Option<String>,
    /// From this time (RFC 3339 or Unix ms).
    pub since: Option<String>,
    /// Until this time (RFC 3339 or Unix ms).
    pub until: Option<String>,
    /// Free text: a substring of the path, client, request id or trace.
    pub q: Option<String>,
    /// Paging: the `next_cursor` of the previous page.
    pub cursor: Option<i64>,
    /// Records per page, 1 to 200 (default 50).
    pub limit: Option<i64>,
}

/// One page of mapping-log records, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LogPage {
    pub items: Vec<LogSummary>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<i64>,
}

pub async fn search_log_view(state: &AppState, search: &LogSearch) -> Result<LogPage, ApiError> {
    let limit = page_limit(search.limit)?;
    let query = AdminLogQuery {
        user: non_empty(&search.user),
        resource_id: non_empty(&search.scim_id),
        employee_id: non_empty(&search.employee_id),
        object_id: non_empty(&search.object_id),
        outcome: non_empty(&search.outcome),
        since: non_empty(&search.since)
            .map(|text| parse_time("since", &text))
            .transpose()?,
        until: non_empty(&search.until)
            .map(|text| parse_time("until", &text))
            .transpose()?,
        text: non_empty(&search.q),
        before_id: search.cursor,
        limit: limit + 1,
    };
    let records = state.store.search_log(&query).await?;
    Ok(page_of(&records, limit))
}

/// A page from `limit + 1` records: the extra one only says that there is a next page.
fn page_of(records: &[LogRecord], limit: i64) -> LogPage {
    let limit = usize::try_from(limit).unwrap_or(0);
    let more = records.len() > limit;
    let items: Vec<LogSummary> = records.iter().take(limit).map(LogSummary::from).collect();
    LogPage {
        next_cursor: if more {
            items.last().map(|item| item.id)
        } else {
            None
        },
        items,
    }
}

#[utoipa::path(get, path = "/admin/api/logs", tag = "mapping log",
    summary = "Search the mapping log",
    params(LogSearch),
    responses(
        (status = 200, body = LogPage),
        (status = 400, body = ErrorBody, description = "a bad criterion (time, limit)"),
        (status = 401, body = ErrorBody),
    ),
    security(("session" = [])))]
async fn search_logs(
    State(state): State<AppState>,
    _admin: AdminSession,
    AdminQuery(search): AdminQuery<LogSearch>,
) -> Response {
    respond(search_log_view(&state, &search).await)
}

/// One mapping-log record with its whole trace.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TraceRecord {
    #[serde(flatten)]
    pub summary: LogSummary,
    /// action, trace (rules: before/after), odata (calls: status, timing), request and
    /// response (SCIM bodies, masked), safety, error.
    #[schema(value_type = Object)]
    pub detail: Value,
}

/// Everything the bridge recorded about one request.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RequestTrace {
    pub request_id: String,
    pub records: Vec<TraceRecord>,
    /// Whether an operator can retry it (a User write that did not succeed).
    pub retryable: bool,
    /// The request this one retried, when an operator's retry.
    pub retry_of: Option<String>,
    /// Operators' retries of this request, oldest first.
    pub retries: Vec<LogSummary>,
}

/// The record of a request that a retry would replay.
fn retry_candidate(records: &[LogRecord]) -> Option<&LogRecord> {
    records.iter().rev().find(|record| {
        let entry = &record.entry;
        entry.resource_type.as_deref() == Some(ResourceType::User.as_str())
            && matches!(entry.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
            && entry.outcome != "ok"
            && (entry.method == "DELETE"
                || entry.detail.get("request").is_some_and(Value::is_object))
    })
}

pub async fn request_trace_view(
    state: &AppState,
    request_id: &str,
) -> Result<RequestTrace, ApiError> {
    let records = state.store.log_of_request(request_id).await?;
    if records.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no mapping-log record for request {request_id}"
        )));
    }
    let retries = state.store.retries_of(request_id).await?;
    Ok(RequestTrace {
        request_id: request_id.to_owned(),
        retry_of: request_id
            .rsplit_once(RETRY_SEPARATOR)
            .map(|(original, _)| original.to_owned()),
        retries: retries.iter().map(LogSummary::from).collect(),
        retryable: retry_candidate(&records).is_some(),
        records: records
            .iter()
            .map(|record| TraceRecord {
                summary: LogSummary::from(record),
                detail: record.entry.detail.clone(),
            })
            .collect(),
    })
}

#[utoipa::path(get, path = "/admin/api/requests/{request_id}", tag = "mapping log",
    summary = "One request's full trace",
    params(("request_id" = String, Path, description = "the X-Request-Id of the SCIM request")),
    responses(
        (status = 200, body = RequestTrace),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    security(("session" = [])))]
async fn request_trace(
    State(state): State<AppState>,
    _admin: AdminSession,
    AdminPath(request_id): AdminPath<String>,
) -> Response {
    respond(request_trace_view(&state, &request_id).await)
}

/// What an operator's retry did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RetryResult {
    pub retry_of: String,
    /// The new request's id: its trace is at /admin/api/requests/{request_id}.
    pub request_id: String,
    pub status: u16,
    /// ok, refused or failed, as in the mapping log.
    pub outcome: String,
    pub error: Option<String>,
}

/// Replays a failed User write through the same use case the identity provider called, with a
/// new request id `{request_id}.retry-…`; masked attributes (`"***"`) are left out of the
/// replayed body.
pub async fn retry_request_as(
    state: &AppState,
    admin: &AdminSession,
    request_id: &str,
    base_url: String,
) -> Result<RetryResult, ApiError> {
    admin.require_operator()?;
    let users = state
        .users
        .as_ref()
        .ok_or(ApiError::NotConfigured("retry"))?;
    let records = state.store.log_of_request(request_id).await?;
    if records.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no mapping-log record for request {request_id}"
        )));
    }
    let record = retry_candidate(&records).ok_or_else(|| {
        ApiError::Conflict(format!(
            "request {request_id} is not a failed User write and cannot be retried"
        ))
    })?;
    let entry = &record.entry;
    let new_id = format!(
        "{request_id}{RETRY_SEPARATOR}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let ctx = RequestContext {
        request_id: new_id.clone(),
        client: Some(format!("admin:{}", admin.user)),
        method: entry.method.clone(),
        path: entry.path.clone(),
        base_url,
    };
    let body = entry
        .detail
        .get("request")
        .map(without_masked)
        .unwrap_or(Value::Null);
    let id = entry.resource_id.clone().unwrap_or_default();
    tracing::info!(user = %admin.user, retry_of = %request_id, request = %new_id, "admin retries a request");
    let result = match entry.method.as_str() {
        "POST" => users.create(&ctx, &body).await,
        "PUT" => users.replace(&ctx, &id, &body, None).await,
        "PATCH" => users.patch(&ctx, &id, &body, None).await,
        _ => users.delete(&ctx, &id, None).await,
    };
    let (status, outcome, error) = match &result {
        Ok(response) => (response.status, "ok", None),
        Err(failure) => (
            failure.error.status,
            if failure.error.status >= 500 {
                "failed"
            } else {
                "refused"
            },
            Some(failure.error.detail.clone()),
        ),
    };
    Ok(RetryResult {
        retry_of: request_id.to_owned(),
        request_id: new_id,
        status,
        outcome: outcome.to_owned(),
        error,
    })
}

/// Drops the values the mapping log masked: they were never kept, so they cannot be replayed.
fn without_masked(body: &Value) -> Value {
    match body {
        Value::Object(object) => Value::Object(
            object
                .iter()
                .filter(|(_, value)| value.as_str() != Some("***"))
                .map(|(key, value)| (key.clone(), without_masked(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .filter(|item| item.get("value").and_then(Value::as_str) != Some("***"))
                .map(without_masked)
                .collect(),
        ),
        other => other.clone(),
    }
}

#[utoipa::path(post, path = "/admin/api/requests/{request_id}/retry", tag = "mapping log",
    summary = "Retry a failed User write (operator)",
    description = "Replays the recorded (masked) SCIM request through the provisioning use case with a new request id.",
    params(("request_id" = String, Path, description = "the failed request's id")),
    responses(
        (status = 200, body = RetryResult, description = "the retry ran; see its outcome"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "viewer, or CSRF token missing"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "not a failed User write"),
    ),
    security(("session" = [], "csrf" = [])))]
async fn retry_request(
    State(state): State<AppState>,
    admin: AdminSession,
    headers: HeaderMap,
    AdminPath(request_id): AdminPath<String>,
) -> Response {
    let base_url = super::discovery::base_url(&state, &headers);
    respond(retry_request_as(&state, &admin, &request_id, base_url).await)
}

// ---------------------------------------------------------------------------------------------
// Users: timeline and links

/// SCIM id ↔ ObjectID ↔ EmployeeID.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Link {
    pub scim_id: String,
    pub resource_type: String,
    pub user_name: String,
    pub external_id: Option<String>,
    pub object_id: Option<String>,
    pub employee_id: Option<String>,
    pub active: bool,
    /// Deleted in SCIM (kept as a tombstone so that a returning user is reactivated).
    pub deleted: bool,
    pub updated: String,
}

impl From<&LinkRow> for Link {
    fn from(row: &LinkRow) -> Self {
        Self {
            scim_id: row.id.clone(),
            resource_type: row.resource_type.clone(),
            user_name: row.user_name.clone(),
            external_id: row.external_id.clone(),
            object_id: row.object_id.clone(),
            employee_id: row.employee_id.clone(),
            active: row.active,
            deleted: row.tombstone,
            updated: rfc3339(row.updated_at),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Paging: the `next_cursor` of the previous page.
    pub cursor: Option<i64>,
    /// Records per page, 1 to 200 (default 50).
    pub limit: Option<i64>,
}

/// A user's history: its link and its mapping-log records, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Timeline {
    pub scim_id: String,
    pub link: Option<Link>,
    pub items: Vec<LogSummary>,
    pub next_cursor: Option<i64>,
}

pub async fn timeline_view(
    state: &AppState,
    scim_id: &str,
    page: &PageParams,
) -> Result<Timeline, ApiError> {
    let limit = page_limit(page.limit)?;
    let link = state
        .store
        .link_of(ResourceType::User, scim_id)
        .await?
        .map(|row| Link::from(&row));
    let records = state
        .store
        .search_log(&AdminLogQuery {
            resource_id: Some(scim_id.to_owned()),
            before_id: page.cursor,
            limit: limit + 1,
            ..AdminLogQuery::default()
        })
        .await?;
    if link.is_none() && records.is_empty() && page.cursor.is_none() {
        return Err(ApiError::NotFound(format!("no user {scim_id}")));
    }
    let page = page_of(&records, limit);
    Ok(Timeline {
        scim_id: scim_id.to_owned(),
        link,
        items: page.items,
        next_cursor: page.next_cursor,
    })
}

#[utoipa::path(get, path = "/admin/api/users/{scim_id}/timeline", tag = "users",
    summary = "A user's timeline",
    params(("scim_id" = String, Path, description = "the user's SCIM id"), PageParams),
    responses(
        (status = 200, body = Timeline),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    security(("session" = [])))]
async fn user_timeline(
    State(state): State<AppState>,
    _admin: AdminSession,
    AdminPath(scim_id): AdminPath<String>,
    AdminQuery(page): AdminQuery<PageParams>,
) -> Response {
    respond(timeline_view(&state, &scim_id, &page).await)
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LinkSearch {
    pub scim_id: Option<String>,
    pub object_id: Option<String>,
    pub employee_id: Option<String>,
    /// A userName (case-insensitive).
    pub user: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Links {
    pub links: Vec<Link>,
}

pub async fn links_view(state: &AppState, search: &LinkSearch) -> Result<Links, ApiError> {
    let query = LinkQuery {
        scim_id: non_empty(&search.scim_id),
        object_id: non_empty(&search.object_id),
        employee_id: non_empty(&search.employee_id),
        user: non_empty(&search.user),
    };
    if query.scim_id.is_none()
        && query.object_id.is_none()
        && query.employee_id.is_none()
        && query.user.is_none()
    {
        return Err(ApiError::BadRequest(
            "give one of scim_id, object_id, employee_id or user".to_owned(),
        ));
    }
    let rows = state.store.find_links(&query).await?;
    Ok(Links {
        links: rows.iter().map(Link::from).collect(),
    })
}

#[utoipa::path(get, path = "/admin/api/links", tag = "users",
    summary = "Find the link SCIM id ↔ ObjectID ↔ EmployeeID",
    params(LinkSearch),
    responses(
        (status = 200, body = Links),
        (status = 400, body = ErrorBody, description = "no criterion"),
        (status = 401, body = ErrorBody),
    ),
    security(("session" = [])))]
async fn links(
    State(state): State<AppState>,
    _admin: AdminSession,
    AdminQuery(search): AdminQuery<LinkSearch>,
) -> Response {
    respond(links_view(&state, &search).await)
}

// ---------------------------------------------------------------------------------------------
// Outbox

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OutboxView {
    pub id: i64,
    pub kind: String,
    pub resource_id: Option<String>,
    /// pending, running, done, failed, discarded.
    pub status: String,
    pub attempts: i64,
    pub next_attempt: String,
    pub last_error: Option<String>,
    pub created: String,
    #[schema(value_type = Object)]
    pub payload: Value,
}

impl From<&OutboxItem> for OutboxView {
    fn from(item: &OutboxItem) -> Self {
        Self {
            id: item.id,
            kind: item.kind.clone(),
            resource_id: item.resource_id.clone(),
            status: item.status.as_str().to_owned(),
            attempts: item.attempts,
            next_attempt: rfc3339(item.next_attempt_at),
            last_error: item.last_error.clone(),
            created: rfc3339(item.created_at),
            payload: item.payload.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OutboxSearch {
    /// pending, running, done, failed or discarded.
    pub status: Option<String>,
    pub cursor: Option<i64>,
    /// Items per page, 1 to 200 (default 50).
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OutboxPage {
    pub items: Vec<OutboxView>,
    pub next_cursor: Option<i64>,
}

fn outbox_status(text: &str) -> Result<OutboxStatus, ApiError> {
    Ok(match text {
        "pending" => OutboxStatus::Pending,
        "running" => OutboxStatus::Running,
        "done" => OutboxStatus::Done,
        "failed" => OutboxStatus::Failed,
        "discarded" => OutboxStatus::Discarded,
        other => {
            return Err(ApiError::BadRequest(format!(
                "status {other:?}: one of pending, running, done, failed, discarded"
            )));
        }
    })
}

pub async fn outbox_view(state: &AppState, search: &OutboxSearch) -> Result<OutboxPage, ApiError> {
    let limit = page_limit(search.limit)?;
    let status = non_empty(&search.status)
        .map(|text| outbox_status(&text))
        .transpose()?;
    let items = state
        .store
        .list_outbox(status, search.cursor, limit + 1)
        .await?;
    let limit = usize::try_from(limit).unwrap_or(0);
    let more = items.len() > limit;
    let items: Vec<OutboxView> = items.iter().take(limit).map(OutboxView::from).collect();
    Ok(OutboxPage {
        next_cursor: if more {
            items.last().map(|item| item.id)
        } else {
            None
        },
        items,
    })
}

#[utoipa::path(get, path = "/admin/api/outbox", tag = "outbox",
    summary = "Outbox items, newest first",
    params(OutboxSearch),
    responses(
        (status = 200, body = OutboxPage),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
    ),
    security(("session" = [])))]
async fn outbox(
    State(state): State<AppState>,
    _admin: AdminSession,
    AdminQuery(search): AdminQuery<OutboxSearch>,
) -> Response {
    respond(outbox_view(&state, &search).await)
}

pub async fn outbox_decide(
    state: &AppState,
    admin: &AdminSession,
    id: i64,
    retry: bool,
) -> Result<OutboxView, ApiError> {
    admin.require_operator()?;
    let item = if retry {
        state.store.retry_outbox(id).await?
    } else {
        state.store.discard_outbox(id).await?
    };
    tracing::info!(user = %admin.user, item = id, retry, "admin decided an outbox item");
    Ok(OutboxView::from(&item))
}

#[utoipa::path(post, path = "/admin/api/outbox/{id}/retry", tag = "outbox",
    summary = "Retry an outbox item now, with a fresh attempt budget (operator)",
    params(("id" = i64, Path)),
    responses(
        (status = 400, body = ErrorBody, description = "the id is not a number"),
        (status = 200, body = OutboxView),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "running or done"),
    ),
    security(("session" = [], "csrf" = [])))]
async fn outbox_retry(
    State(state): State<AppState>,
    admin: AdminSession,
    AdminPath(id): AdminPath<i64>,
) -> Response {
    respond(outbox_decide(&state, &admin, id, true).await)
}

#[utoipa::path(post, path = "/admin/api/outbox/{id}/discard", tag = "outbox",
    summary = "Discard a pending or failed outbox item (operator)",
    params(("id" = i64, Path)),
    responses(
        (status = 400, body = ErrorBody, description = "the id is not a number"),
        (status = 200, body = OutboxView),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "running, done or already discarded"),
    ),
    security(("session" = [], "csrf" = [])))]
async fn outbox_discard(
    State(state): State<AppState>,
    admin: AdminSession,
    AdminPath(id): AdminPath<i64>,
) -> Response {
    respond(outbox_decide(&state, &admin, id, false).await)
}

// ---------------------------------------------------------------------------------------------
// Held safety operations

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HeldView {
    pub id: i64,
    pub client: Option<String>,
    pub request_id: String,
    pub resource_type: String,
    pub resource_id: String,
    pub object_id: Option<String>,
    /// deactivate, delete, role_removal, reconcile_lock.
    pub kind: String,
    /// held, released, discarded, superseded, failed.
    pub status: String,
    pub requested: String,
    pub decided: Option<String>,
    pub decided_by: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HeldList {
    pub items: Vec<HeldView>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HeldSearch {
    /// held (default), released, discarded, superseded, failed, or all.
    pub status: Option<String>,
}

pub async fn held_view(state: &AppState, search: &HeldSearch) -> Result<HeldList, ApiError> {
    let status = non_empty(&search.status).unwrap_or_else(|| "held".to_owned());
    let status = match status.as_str() {
        "all" => None,
        "held" | "released" | "discarded" | "superseded" | "failed" => Some(status),
        other => {
            return Err(ApiError::BadRequest(format!(
                "status {other:?}: one of held, released, discarded, superseded, failed, all"
            )));
        }
    };
    let operations = state.store.list_held(status.as_deref(), None).await?;
    Ok(HeldList {
        items: operations
            .iter()
            .map(|operation| HeldView {
                id: operation.id,
                client: operation.client.clone(),
                request_id: operation.request_id.clone(),
                resource_type: operation.resource_type.clone(),
                resource_id: operation.resource_id.clone(),
                object_id: operation.object_id.clone(),
                kind: operation.kind.clone(),
                status: operation.status.clone(),
                requested: rfc3339(operation.requested_at),
                decided: operation.decided_at.map(rfc3339),
                decided_by: operation.decided_by.clone(),
                error: operation.error.clone(),
            })
            .collect(),
    })
}

#[utoipa::path(get, path = "/admin/api/held", tag = "safety",
    summary = "Deprovisionings held by the circuit breaker",
    params(HeldSearch),
    responses(
        (status = 200, body = HeldList),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
    ),
    security(("session" = [])))]
async fn held(
    State(state): State<AppState>,
    _admin: AdminSession,
    AdminQuery(search): AdminQuery<HeldSearch>,
) -> Response {
    respond(held_view(&state, &search).await)
}

/// What a release or discard did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Decision {
    pub id: String,
    pub object_id: Option<String>,
    /// released, discarded, superseded, failed, already_decided.
    pub result: String,
    pub detail: Option<String>,
}

pub async fn held_decide(
    state: &AppState,
    admin: &AdminSession,
    id: i64,
    release: bool,
) -> Result<Decision, ApiError> {
    admin.require_operator()?;
    let users = state
        .users
        .as_ref()
        .ok_or(ApiError::NotConfigured("releasing held operations"))?;
    if state.store.get_held(id).await?.is_none() {
        return Err(ApiError::NotFound(format!("no held operation {id}")));
    }
    let by = format!("operator:{}", admin.user);
    let filter = HeldFilter {
        ids: &[id],
        ..HeldFilter::default()
    };
    let outcomes = if release {
        users.safety().release(filter, &by).await?
    } else {
        users.safety().discard(filter, &by).await?
    };
    let outcome = outcomes
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::Conflict(format!("held operation {id} was already decided")))?;
    Ok(Decision {
        id: outcome.id,
        object_id: outcome.object_id,
        result: outcome.result,
        detail: outcome.detail,
    })
}

#[utoipa::path(post, path = "/admin/api/held/{id}/release", tag = "safety",
    summary = "Apply a held deprovisioning (operator)",
    params(("id" = i64, Path)),
    responses(
        (status = 400, body = ErrorBody, description = "the id is not a number"),
        (status = 200, body = Decision),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "already decided"),
    ),
    security(("session" = [], "csrf" = [])))]
async fn held_release(
    State(state): State<AppState>,
    admin: AdminSession,
    AdminPath(id): AdminPath<i64>,
) -> Response {
    respond(held_decide(&state, &admin, id, true).await)
}

#[utoipa::path(post, path = "/admin/api/held/{id}/discard", tag = "safety",
    summary = "Drop a held deprovisioning without applying it (operator)",
    params(("id" = i64, Path)),
    responses(
        (status = 400, body = ErrorBody, description = "the id is not a number"),
        (status = 200, body = Decision),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "already decided"),
    ),
    security(("session" = [], "csrf" = [])))]
async fn held_discard(
    State(state): State<AppState>,
    admin: AdminSession,
    AdminPath(id): AdminPath<i64>,
) -> Response {
    respond(held_decide(&state, &admin, id, false).await)
}

// ---------------------------------------------------------------------------------------------
// Rules

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RuleView {
    pub name: String,
    /// The source: a SCIM path, a template or a constant.
    pub source: String,
    /// An EmployeeCollection property or a special target (`@active`, `@local`…).
    pub to: String,
    pub transforms: Vec<String>,
    pub create_only: bool,
    /// Problems $metadata validation found with this rule.
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RulesView {
    pub rules: Vec<RuleView>,
    /// SCIM paths masked in traces and the mapping log.
    pub sensitive: Vec<String>,
    /// Whether the rules were checked against the tenant's $metadata.
    pub metadata_checked: bool,
    /// Why they could not be, if they were not.
    pub metadata_error: Option<String>,
    pub errors: usize,
    pub warnings: usize,
}

pub async fn rules_view(state: &AppState) -> Result<RulesView, ApiError> {
    let mapping = state
        .config
        .resolved_mapping()
        .map_err(|error| ApiError::Conflict(error.to_string()))?;
    let (problems, metadata_error) = match &state.c4c {
        None => (None, Some("no [c4c] section is configured".to_owned())),
        Some(client) => {
            match tokio::time::timeout(Duration::from_secs(10), client.metadata()).await {
                Ok(Ok(metadata)) => (Some(crate::mapping::validate(&mapping, &metadata)), None),
                Ok(Err(error)) => (None, Some(format!("cannot read $metadata: {error}"))),
                Err(_) => (None, Some("$metadata did not arrive in 10 s".to_owned())),
            }
        }
    };
    let all = problems.clone().unwrap_or_default();
    let errors = all
        .iter()
        .filter(|problem| problem.severity == crate::mapping::Severity::Error)
        .count();
    Ok(RulesView {
        rules: mapping
            .rules
            .iter()
            .map(|rule| RuleView {
                name: rule.name.clone(),
                source: rule
                    .scim
                    .clone()
                    .or_else(|| rule.template.as_ref().map(|t| format!("template {t:?}")))
                    .or_else(|| rule.value.as_ref().map(|v| format!("constant {v}")))
                    .unwrap_or_default(),
                to: rule.to.clone(),
                transforms: rule
                    .transforms
                    .iter()
                    .map(|transform| transform.name().to_owned())
                    .collect(),
                create_only: rule.create_only,
                problems: all
                    .iter()
                    .filter(|problem| problem.rule == rule.name)
                    .map(ToString::to_string)
                    .collect(),
            })
            .collect(),
        sensitive: mapping.sensitive.clone(),
        metadata_checked: problems.is_some(),
        metadata_error,
        errors,
        warnings: all.len() - errors,
    })
}

#[utoipa::path(get, path = "/admin/api/rules", tag = "rules",
    summary = "The effective mapping rules and their $metadata validation",
    responses(
        (status = 200, body = RulesView),
        (status = 401, body = ErrorBody),
    ),
    security(("session" = [])))]
async fn rules(State(state): State<AppState>, _admin: AdminSession) -> Response {
    respond(rules_view(&state).await)
}

// ---------------------------------------------------------------------------------------------
// C4C connection health

/// What the C4C client's calls showed, kept in memory (per replica).
#[derive(Debug, Default)]
pub struct C4cStatus {
    inner: Mutex<StatusInner>,
}

#[derive(Debug, Default)]
struct StatusInner {
    last_success: Option<chrono::DateTime<chrono::Utc>>,
    last_failure: Option<(chrono::DateTime<chrono::Utc>, String)>,
    /// Durations of the latest calls, newest last.
    latencies: VecDeque<Duration>,
    csrf_fetched: u64,
    csrf_piggyback: u64,
    last_csrf: Option<chrono::DateTime<chrono::Utc>>,
    csrf_rejected: u64,
    calls: u64,
}

const LATENCY_SAMPLES: usize = 200;

impl C4cStatus {
    /// An observer that records into this status and then passes every event to `inner`.
    pub fn observer(self: &Arc<Self>, inner: Arc<dyn C4cObserver>) -> Arc<dyn C4cObserver> {
        Arc::new(StatusObserver {
            status: self.clone(),
            inner,
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut StatusInner) -> T) -> T {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut inner)
    }

    /// Latency percentiles (p50, p95) of the recent calls, in ms.
    fn percentiles(&self) -> (Option<u64>, Option<u64>, usize) {
        self.with(|inner| {
            let mut samples: Vec<u64> = inner
                .latencies
                .iter()
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                .collect();
            samples.sort_unstable();
            (
                percentile(&samples, 50),
                percentile(&samples, 95),
                samples.len(),
            )
        })
    }
}

/// The `p`th percentile (nearest rank) of sorted samples.
pub fn percentile(sorted: &[u64], p: usize) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

struct StatusObserver {
    status: Arc<C4cStatus>,
    inner: Arc<dyn C4cObserver>,
}

impl C4cObserver for StatusObserver {
    fn on_call(
        &self,
        kind: CallKind,
        status: Option<u16>,
        duration: Duration,
        error: Option<ErrorKind>,
    ) {
        self.status.with(|inner| {
            inner.calls += 1;
            if inner.latencies.len() == LATENCY_SAMPLES {
                inner.latencies.pop_front();
            }
            inner.latencies.push_back(duration);
            match error {
                None => inner.last_success = Some(chrono::Utc::now()),
                Some(error) => {
                    if error == ErrorKind::CsrfRequired {
                        inner.csrf_rejected += 1;
                    }
                    let what = match status {
                        Some(status) => format!("{} {}: {status}", kind.as_str(), error.as_str()),
                        None => format!("{} {}", kind.as_str(), error.as_str()),
                    };
                    inner.last_failure = Some((chrono::Utc::now(), what));
                }
            }
        });
        self.inner.on_call(kind, status, duration, error);
    }

    fn on_retry(&self, kind: CallKind, error: ErrorKind) {
        self.inner.on_retry(kind, error);
    }

    fn on_csrf_token(&self, piggyback: bool) {
        self.status.with(|inner| {
            if piggyback {
                inner.csrf_piggyback += 1;
            } else {
                inner.csrf_fetched += 1;
            }
            inner.last_csrf = Some(chrono::Utc::now());
        });
        self.inner.on_csrf_token(piggyback);
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CsrfState {
    /// Tokens obtained by a dedicated fetch.
    pub fetched: u64,
    /// Tokens obtained on a GET made anyway.
    pub piggyback: u64,
    /// When the last token was obtained.
    pub last_token: Option<String>,
    /// Writes C4C refused for a missing or expired token (each is retried with a new one).
    pub rejected: u64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct C4cHealthView {
    pub configured: bool,
    /// basic, x509, oauth_client_credentials, saml_bearer.
    pub auth_mode: Option<String>,
    pub service_root: Option<String>,
    pub last_success: Option<String>,
    pub last_failure: Option<String>,
    pub last_failure_at: Option<String>,
    pub calls: u64,
    pub latency_p50_ms: Option<u64>,
    pub latency_p95_ms: Option<u64>,
    pub latency_samples: usize,
    pub csrf: CsrfState,
    /// The result of a live probe (one one-row read), when asked for.
    pub probe: Option<Probe>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Probe {
    pub ok: bool,
    pub duration_ms: u64,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HealthParams {
    /// Also read one employee now and time it.
    pub probe: Option<bool>,
}

fn auth_mode(config: &crate::c4c::C4cConfig) -> &'static str {
    use crate::c4c::config::AuthConfig;
    match &config.auth {
        AuthConfig::Basic { .. } => "basic",
        AuthConfig::X509 { .. } => "x509",
        AuthConfig::OauthClientCredentials { .. } => "oauth_client_credentials",
        AuthConfig::SamlBearer { .. } => "saml_bearer",
    }
}

pub async fn c4c_health_view(state: &AppState, probe: bool) -> C4cHealthView {
    let probe = match (&state.c4c, probe) {
        (Some(client), true) => {
            let started = Instant::now();
            let query = EmployeeQuery::new().select(["ObjectID"]).top(1);
            let result =
                tokio::time::timeout(Duration::from_secs(5), client.query_employees(&query)).await;
            let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            Some(match result {
                Ok(Ok(_)) => Probe {
                    ok: true,
                    duration_ms,
                    error: None,
                },
                Ok(Err(error)) => Probe {
                    ok: false,
                    duration_ms,
                    error: Some(error.kind().as_str().to_owned()),
                },
                Err(_) => Probe {
                    ok: false,
                    duration_ms,
                    error: Some("timeout".to_owned()),
                },
            })
        }
        _ => None,
    };
    let (p50, p95, samples) = state.c4c_status.percentiles();
    let config = state.config.c4c.as_ref();
    state.c4c_status.with(|inner| C4cHealthView {
        configured: config.is_some(),
        auth_mode: config.map(|config| auth_mode(config).to_owned()),
        service_root: state
            .c4c
            .as_ref()
            .map(|client| client.service_root().to_string()),
        last_success: inner.last_success.map(|at| at.to_rfc3339()),
        last_failure: inner.last_failure.as_ref().map(|(_, what)| what.clone()),
        last_failure_at: inner.last_failure.as_ref().map(|(at, _)| at.to_rfc3339()),
        calls: inner.calls,
        latency_p50_ms: p50,
        latency_p95_ms: p95,
        latency_samples: samples,
        csrf: CsrfState {
            fetched: inner.csrf_fetched,
            piggyback: inner.csrf_piggyback,
            last_token: inner.last_csrf.map(|at| at.to_rfc3339()),
            rejected: inner.csrf_rejected,
        },
        probe,
    })
}

#[utoipa::path(get, path = "/admin/api/c4c/health", tag = "c4c",
    summary = "Health of the C4C connection: auth mode, last success, CSRF state, latency",
    params(HealthParams),
    responses(
        (status = 200, body = C4cHealthView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
    ),
    security(("session" = [])))]
async fn c4c_health(
    State(state): State<AppState>,
    _admin: AdminSession,
    AdminQuery(params): AdminQuery<HealthParams>,
) -> Response {
    ok(c4c_health_view(&state, params.probe.unwrap_or(false)).await)
}

// ---------------------------------------------------------------------------------------------
// Dashboard

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Dashboard {
    /// The window the rates are computed over, in minutes.
    pub window_minutes: i64,
    pub requests: i64,
    pub requests_per_minute: f64,
    pub failed: i64,
    pub refused: i64,
    /// Failed (5xx) requests per request in the window, 0 to 1.
    pub error_rate: f64,
    pub c4c: C4cHealthView,
    /// Time to lock (deactivation request → C4C confirmation) of the recent records, in ms.
    pub time_to_lock_p50_ms: Option<u64>,
    pub time_to_lock_p95_ms: Option<u64>,
    pub recent_failures: Vec<LogSummary>,
    pub outbox_pending: i64,
    pub held: i64,
}

const DASHBOARD_WINDOW_MINUTES: i64 = 60;

pub async fn dashboard_view(state: &AppState) -> Result<Dashboard, ApiError> {
    let since = crate::store::now_millis() - DASHBOARD_WINDOW_MINUTES * 60_000;
    let window = state.store.log_window(since).await?;
    let failures = state
        .store
        .search_log(&AdminLogQuery {
            outcome: Some("failed".to_owned()),
            limit: 10,
            ..AdminLogQuery::default()
        })
        .await?;
    let recent = state
        .store
        .search_log(&AdminLogQuery {
            since: Some(since),
            limit: MAX_ADMIN_PAGE,
            ..AdminLogQuery::default()
        })
        .await?;
    let mut to_lock: Vec<u64> = recent
        .iter()
        .filter_map(|record| record.entry.detail.get("time_to_lock_ms")?.as_u64())
        .collect();
    to_lock.sort_unstable();
    let (outbox_pending, _) = state.store.outbox_depth().await?;
    let held = state.store.count_held(None).await?;
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    let (per_minute, error_rate) = (
        window.requests as f64 / DASHBOARD_WINDOW_MINUTES as f64,
        if window.requests == 0 {
            0.0
        } else {
            window.failed as f64 / window.requests as f64
        },
    );
    Ok(Dashboard {
        window_minutes: DASHBOARD_WINDOW_MINUTES,
        requests: window.requests,
        requests_per_minute: per_minute,
        failed: window.failed,
        refused: window.refused,
        error_rate,
        c4c: c4c_health_view(state, false).await,
        time_to_lock_p50_ms: percentile(&to_lock, 50),
        time_to_lock_p95_ms: percentile(&to_lock, 95),
        recent_failures: failures.iter().map(LogSummary::from).collect(),
        outbox_pending,
        held,
    })
}

#[utoipa::path(get, path = "/admin/api/dashboard", tag = "dashboard",
    summary = "Requests per minute, error rate, C4C latency, recent failures",
    responses(
        (status = 200, body = Dashboard),
        (status = 401, body = ErrorBody),
    ),
    security(("session" = [])))]
async fn dashboard(State(state): State<AppState>, _admin: AdminSession) -> Response {
    respond(dashboard_view(&state).await)
}

// ---------------------------------------------------------------------------------------------
// Endpoints served by admin_auth, described here so that the document covers the whole API.

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionView {
    pub user: String,
    /// viewer or operator.
    pub role: String,
    /// Send it as X-CSRF-Token (or a csrf_token form field) on every write.
    pub csrf_token: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub created: Option<String>,
    pub expires: Option<String>,
    #[serde(rename = "lastUsed")]
    pub last_used: Option<String>,
    pub revoked: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenList {
    pub tokens: Vec<TokenView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Revoked {
    pub revoked: String,
}

/// Documentation only: the handler is `admin_auth::whoami`.
#[utoipa::path(get, path = "/admin/api/session", tag = "session",
    summary = "Who is signed in, and the CSRF token for writes",
    responses((status = 200, body = SessionView), (status = 401, body = ErrorBody)),
    security(("session" = [])))]
#[allow(dead_code)]
fn session_doc() {}

/// Documentation only: the handler is `admin_auth::list_tokens`.
#[utoipa::path(get, path = "/admin/api/tokens", tag = "tokens",
    summary = "SCIM bearer tokens (never their values)",
    responses((status = 200, body = TokenList), (status = 401, body = ErrorBody)),
    security(("session" = [])))]
#[allow(dead_code)]
fn tokens_doc() {}

/// Documentation only: the handler is `admin_auth::revoke_token`.
#[utoipa::path(post, path = "/admin/api/tokens/{id}/revoke", tag = "tokens",
    summary = "Revoke a SCIM token by id or name (operator)",
    params(("id" = String, Path, description = "token id or name")),
    responses(
        (status = 200, body = Revoked),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ),
    security(("session" = [], "csrf" = [])))]
#[allow(dead_code)]
fn revoke_token_doc() {}

// ---------------------------------------------------------------------------------------------
// The document

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "c4csb_admin",
                "the session cookie set by POST /admin/login (`__Host-c4csb_admin` when cookies are secure)",
            ))),
        );
        components.add_security_scheme(
            "csrf",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-CSRF-Token",
                "the session's csrf_token from GET /admin/api/session; required on every write",
            ))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "c4c-scim-bridge admin API",
        description = "Mapping logs, request traces, outbox, held operations, rules, tokens and C4C health. Viewers read; operators write (with the CSRF token)."
    ),
    paths(
        dashboard, search_logs, request_trace, retry_request, user_timeline, links, outbox,
        outbox_retry, outbox_discard, held, held_release, held_discard, rules, c4c_health,
        session_doc, tokens_doc, revoke_token_doc, openapi_json
    ),
    modifiers(&SecuritySchemes)
)]
pub struct AdminApiDoc;

#[utoipa::path(get, path = "/admin/api/openapi.json", tag = "session",
    summary = "This document (no sign-in needed)",
    responses((status = 200, description = "OpenAPI 3 document")))]
async fn openapi_json() -> Response {
    ok(AdminApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let samples: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&samples, 50), Some(50));
        assert_eq!(percentile(&samples, 95), Some(95));
        assert_eq!(percentile(&[7], 95), Some(7));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn times_parse_in_three_forms() {
        assert_eq!(parse_time("since", "0").ok(), Some(0));
        assert_eq!(
            parse_time("since", "2026-11-23T10:00:00Z").ok(),
            Some(1_795_428_000_000)
        );
        assert_eq!(
            parse_time("since", "2026-11-23T10:00").ok(),
            Some(1_795_428_000_000)
        );
        assert!(parse_time("since", "yesterday").is_err());
    }

    #[test]
    fn masked_values_are_not_replayed() {
        let body = serde_json::json!({
            "userName": "a",
            "phoneNumbers": "***",
            "Operations": [{"op": "replace", "path": "phoneNumbers", "value": "***"},
                           {"op": "replace", "path": "title", "value": "x"}]
        });
        let replayed = without_masked(&body);
        assert!(replayed.get("phoneNumbers").is_none());
        assert_eq!(replayed["Operations"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn the_document_lists_every_route() {
        let doc = serde_json::to_value(AdminApiDoc::openapi()).unwrap_or_default();
        for path in [
            "/admin/api/logs",
            "/admin/api/requests/{request_id}",
            "/admin/api/requests/{request_id}/retry",
            "/admin/api/users/{scim_id}/timeline",
            "/admin/api/links",
            "/admin/api/outbox",
            "/admin/api/outbox/{id}/retry",
            "/admin/api/outbox/{id}/discard",
            "/admin/api/held",
            "/admin/api/held/{id}/release",
            "/admin/api/held/{id}/discard",
            "/admin/api/rules",
            "/admin/api/c4c/health",
            "/admin/api/dashboard",
            "/admin/api/tokens",
            "/admin/api/tokens/{id}/revoke",
            "/admin/api/session",
        ] {
            assert!(doc["paths"].get(path).is_some(), "{path} missing");
        }
    }
}
