//! The admin web UI at /admin (issue 12): server-rendered HTML (maud escapes every value),
//! plain forms with the CSRF token for writes, assets embedded in the binary. Works without
//! JavaScript; `admin.js` only asks for confirmation before destructive forms.
//!
//! Every view is built from the same functions as the JSON API (`admin_api`).

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::AppState;
use super::admin_api::{
    self, ApiError, C4cHealthView, HeldSearch, LogSearch, LogSummary, OutboxSearch, PageParams,
};
use super::admin_auth::{AdminSession, CSRF_FIELD, harden};
use crate::auth::admin::Role;

const CSS: &str = include_str!("admin_ui/admin.css");
const JS: &str = include_str!("admin_ui/admin.js");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(dashboard))
        .route("/admin/logs", get(logs))
        .route("/admin/requests/{request_id}", get(request_detail))
        .route("/admin/requests/{request_id}/retry", post(retry_request))
        .route("/admin/users/{scim_id}", get(timeline))
        .route("/admin/outbox", get(outbox))
        .route("/admin/outbox/{id}/retry", post(outbox_retry))
        .route("/admin/outbox/{id}/discard", post(outbox_discard))
        .route("/admin/held", get(held))
        .route("/admin/held/{id}/release", post(held_release))
        .route("/admin/held/{id}/discard", post(held_discard))
        .route("/admin/rules", get(rules))
        .route("/admin/tokens", get(tokens))
        .route("/admin/tokens/{id}/revoke", post(token_revoke))
        .route("/admin/assets/admin.css", get(css))
        .route("/admin/assets/admin.js", get(js))
}

async fn css() -> Response {
    asset(CSS, "text/css; charset=utf-8")
}

async fn js() -> Response {
    asset(JS, "text/javascript; charset=utf-8")
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

// ---------------------------------------------------------------------------------------------
// Layout

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Dashboard,
    Logs,
    Outbox,
    Held,
    Rules,
    Tokens,
}

const SECTIONS: [(Section, &str, &str); 6] = [
    (Section::Dashboard, "/admin", "Dashboard"),
    (Section::Logs, "/admin/logs", "Mapping log"),
    (Section::Outbox, "/admin/outbox", "Outbox"),
    (Section::Held, "/admin/held", "Held"),
    (Section::Rules, "/admin/rules", "Rules"),
    (Section::Tokens, "/admin/tokens", "Tokens"),
];

fn page(admin: &AdminSession, section: Section, title: &str, body: Markup) -> Response {
    render(StatusCode::OK, layout(admin, Some(section), title, body))
}

fn render(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, axum::response::Html(markup.into_string())).into_response();
    harden(response.headers_mut());
    response
}

fn layout(admin: &AdminSession, section: Option<Section>, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · c4c-scim-bridge admin" }
                link rel="stylesheet" href="/admin/assets/admin.css";
                script src="/admin/assets/admin.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    span.brand { "c4c-scim-bridge" }
                    nav aria-label="Admin sections" {
                        ul {
                            @for (item, href, label) in SECTIONS {
                                li {
                                    @if section == Some(item) {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                        }
                    }
                    div.who {
                        span { (admin.user) " (" (admin.role) ")" }
                        form.inline method="post" action="/admin/logout" {
                            (csrf(admin))
                            button.secondary type="submit" { "Sign out" }
                        }
                    }
                }
                main #main tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

fn csrf(admin: &AdminSession) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(admin.csrf_token); }
}

fn is_operator(admin: &AdminSession) -> bool {
    admin.role >= Role::Operator
}

fn error_page(admin: &AdminSession, error: &ApiError) -> Response {
    if let ApiError::Rejected(_) = error {
        let (status, message) = error.status_and_message();
        return render(
            status,
            layout(
                admin,
                None,
                "Not allowed",
                html! { p.flash.error role="alert" { (message) } },
            ),
        );
    }
    let (status, message) = error.status_and_message();
    if let ApiError::Store(error) = error {
        tracing::error!(%error, "admin UI: store error");
    }
    render(
        status,
        layout(
            admin,
            None,
            status.canonical_reason().unwrap_or("Error"),
            html! { p.flash.error role="alert" { (message) } p { a href="/admin" { "Back to the dashboard" } } },
        ),
    )
}

fn outcome(text: &str) -> Markup {
    let class = format!(
        "outcome-{}",
        text.replace(|c: char| !c.is_ascii_alphanumeric(), "")
    );
    html! { span class=(class) { (text) } }
}

fn short_time(rfc3339: &str) -> String {
    // 2026-11-23T10:00:00.000Z → 2026-11-23 10:00:00
    rfc3339.get(..19).unwrap_or(rfc3339).replace('T', " ")
}

fn opt(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("–")
}

fn log_table(items: &[LogSummary]) -> Markup {
    html! {
        table {
            caption.muted { "Newest first" }
            thead { tr {
                th scope="col" { "Time (UTC)" }
                th scope="col" { "Request" }
                th scope="col" { "Client" }
                th scope="col" { "User (SCIM id)" }
                th scope="col" { "EmployeeID" }
                th scope="col" class="num" { "Status" }
                th scope="col" { "Outcome" }
                th scope="col" class="num" { "ms" }
            } }
            tbody {
                @for item in items {
                    tr {
                        td { (short_time(&item.at)) }
                        td { a href=(format!("/admin/requests/{}", urlencode(&item.request_id))) { (item.method) " " (item.path) } }
                        td { (opt(&item.client)) }
                        td {
                            @if let Some(id) = &item.resource_id {
                                a href=(format!("/admin/users/{}", urlencode(id))) { code { (id) } }
                            } @else { "–" }
                        }
                        td { (opt(&item.employee_id)) }
                        td class="num" { (item.status) }
                        td {
                            (outcome(&item.outcome))
                            @if let Some(error) = &item.error { br; span.muted { (error) } }
                        }
                        td class="num" { (item.duration_ms) }
                    }
                }
            }
        }
    }
}

/// Everything but RFC 3986's unreserved characters is escaped in a path segment or query value.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn urlencode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, SEGMENT).to_string()
}

fn flash(message: &Option<String>, error: bool) -> Markup {
    html! {
        @if let Some(message) = message {
            @if error {
                p.flash.error role="alert" { (message) }
            } @else {
                p.flash role="status" { (message) }
            }
        }
    }
}

/// `?done=…` / `?error=…` after a form post (post/redirect/get).
#[derive(Debug, Default, Deserialize)]
struct Notice {
    done: Option<String>,
    error: Option<String>,
}

fn notice_markup(notice: &Notice) -> Markup {
    html! { (flash(&notice.done, false)) (flash(&notice.error, true)) }
}

fn redirect_with(path: &str, key: &str, message: &str) -> Response {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair(key, message)
        .finish();
    let mut response = Redirect::to(&format!("{path}?{query}")).into_response();
    harden(response.headers_mut());
    response
}

// ---------------------------------------------------------------------------------------------
// Dashboard

fn health_block(health: &C4cHealthView) -> Markup {
    html! {
        @if !health.configured {
            p.empty { "No C4C tenant is configured ([c4c] section): provisioning is off." }
        } @else {
            dl.facts {
                dt { "Service root" } dd { code { (opt(&health.service_root)) } }
                dt { "Auth mode" } dd { (opt(&health.auth_mode)) }
                dt { "Last success" } dd { (health.last_success.as_deref().map(short_time).unwrap_or_else(|| "none since start".to_owned())) }
                dt { "Last failure" } dd {
                    @if let Some(failure) = &health.last_failure {
                        (failure) " at " (health.last_failure_at.as_deref().map(short_time).unwrap_or_default())
                    } @else { "none since start" }
                }
                dt { "CSRF tokens" } dd {
                    (health.csrf.fetched) " fetched, " (health.csrf.piggyback) " on reads, "
                    (health.csrf.rejected) " rejected by C4C"
                    @if let Some(at) = &health.csrf.last_token { "; last at " (short_time(at)) }
                }
                dt { "Calls since start" } dd { (health.calls) }
            }
        }
    }
}

fn ms(value: Option<u64>) -> String {
    value.map_or_else(|| "–".to_owned(), |ms| format!("{ms} ms"))
}

async fn dashboard(State(state): State<AppState>, admin: AdminSession) -> Response {
    let view = match admin_api::dashboard_view(&state).await {
        Ok(view) => view,
        Err(error) => return error_page(&admin, &error),
    };
    let body = html! {
        section aria-labelledby="traffic" {
            h2 #traffic { "Last " (view.window_minutes) " minutes" }
            div.cards {
                div.card { div.value { (format!("{:.2}", view.requests_per_minute)) } div.label { "requests per minute (" (view.requests) " in all)" } }
                div.card { div.value { (format!("{:.1} %", view.error_rate * 100.0)) } div.label { "error rate (" (view.failed) " failed, " (view.refused) " refused)" } }
                div.card { div.value { (ms(view.c4c.latency_p50_ms)) } div.label { "C4C latency p50 (p95 " (ms(view.c4c.latency_p95_ms)) ")" } }
                div.card { div.value { (ms(view.time_to_lock_p50_ms)) } div.label { "time to lock p50 (p95 " (ms(view.time_to_lock_p95_ms)) ")" } }
                div.card { div.value { a href="/admin/outbox?status=pending" { (view.outbox_pending) } } div.label { "outbox items waiting" } }
                div.card { div.value { a href="/admin/held" { (view.held) } } div.label { "deprovisionings held" } }
            }
        }
        section aria-labelledby="failures" {
            h2 #failures { "Recent failures" }
            @if view.recent_failures.is_empty() {
                p.empty { "No failed provisioning. Requests that C4C or the bridge could not complete appear here, with a link to their trace and a retry." }
            } @else {
                (log_table(&view.recent_failures))
                p { a href="/admin/logs?outcome=failed" { "All failures" } }
            }
        }
        section aria-labelledby="c4c" {
            h2 #c4c { "C4C connection" }
            (health_block(&view.c4c))
        }
    };
    page(&admin, Section::Dashboard, "Dashboard", body)
}

// ---------------------------------------------------------------------------------------------
// Log search

fn field(label: &str, name: &str, value: &Option<String>, kind: &str) -> Markup {
    html! {
        label { (label) input type=(kind) name=(name) value=(value.as_deref().unwrap_or("")); }
    }
}

async fn logs(
    State(state): State<AppState>,
    admin: AdminSession,
    Query(search): Query<LogSearch>,
) -> Response {
    let result = admin_api::search_log_view(&state, &search).await;
    let outcomes = ["", "ok", "refused", "failed", "applied", "retrying"];
    let limit = search.limit.unwrap_or(admin_api::DEFAULT_PAGE);
    let form = html! {
        form.filters method="get" action="/admin/logs" role="search" {
            (field("User name", "user", &search.user, "text"))
            (field("SCIM id", "scim_id", &search.scim_id, "text"))
            (field("EmployeeID", "employee_id", &search.employee_id, "text"))
            (field("ObjectID", "object_id", &search.object_id, "text"))
            label { "Outcome"
                select name="outcome" {
                    @for value in outcomes {
                        @let label = if value.is_empty() { "any" } else { value };
                        @if search.outcome.as_deref().unwrap_or("") == value {
                            option value=(value) selected { (label) }
                        } @else {
                            option value=(value) { (label) }
                        }
                    }
                }
            }
            (field("From (UTC)", "since", &search.since, "datetime-local"))
            (field("Until (UTC)", "until", &search.until, "datetime-local"))
            (field("Text", "q", &search.q, "search"))
            label { "Per page"
                select name="limit" {
                    @for size in [25_i64, 50, 100, 200] {
                        @if size == limit { option value=(size) selected { (size) } } @else { option value=(size) { (size) } }
                    }
                }
            }
            button type="submit" { "Search" }
            a href="/admin/logs" { "Clear" }
        }
    };
    let body = match result {
        Err(error @ ApiError::BadRequest(_)) => {
            let (_, message) = error.status_and_message();
            html! { (form) p.flash.error role="alert" { (message) } }
        }
        Err(error) => return error_page(&admin, &error),
        Ok(view) => {
            let next = view.next_cursor.map(|cursor| {
                let mut next = search.clone();
                next.cursor = Some(cursor);
                format!("/admin/logs?{}", serde_urlencoded_query(&next))
            });
            html! {
                (form)
                @if view.items.is_empty() {
                    @if search.cursor.is_some() {
                        p.empty { "No older records." }
                    } @else {
                        p.empty { "No mapping-log record matches. Every SCIM request the bridge receives is recorded here; widen the filters or clear them." }
                    }
                } @else {
                    (log_table(&view.items))
                }
                nav aria-label="Pages" {
                    @if search.cursor.is_some() { a href="/admin/logs" { "Newest" } " " }
                    @if let Some(next) = next { a href=(next) rel="next" { "Older records" } }
                }
            }
        }
    };
    page(&admin, Section::Logs, "Mapping log", body)
}

/// The search as a query string (empty criteria left out).
fn serde_urlencoded_query(search: &LogSearch) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in [
        ("user", &search.user),
        ("scim_id", &search.scim_id),
        ("employee_id", &search.employee_id),
        ("object_id", &search.object_id),
        ("outcome", &search.outcome),
        ("since", &search.since),
        ("until", &search.until),
        ("q", &search.q),
    ] {
        if let Some(value) = value.as_deref().filter(|value| !value.is_empty()) {
            query.append_pair(key, value);
        }
    }
    if let Some(cursor) = search.cursor {
        query.append_pair("cursor", &cursor.to_string());
    }
    if let Some(limit) = search.limit {
        query.append_pair("limit", &limit.to_string());
    }
    query.finish()
}

// ---------------------------------------------------------------------------------------------
// Request detail

fn json_block(label: &str, value: Option<&Value>) -> Markup {
    html! {
        section {
            h3 { (label) }
            @match value.filter(|value| !value.is_null()) {
                Some(value) => pre tabindex="0" { (serde_json::to_string_pretty(value).unwrap_or_default()) },
                None => p.muted { "Not recorded (no body, or a read)." },
            }
        }
    }
}

fn text_of(value: &Value) -> String {
    match value {
        Value::Null => "–".to_owned(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn rules_table(trace: Option<&Value>) -> Markup {
    let entries = trace
        .and_then(|trace| trace.get("entries"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    html! {
        @if entries.is_empty() {
            p.muted { "No rule ran (the request failed before mapping, or did not map anything)." }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Rule" } th scope="col" { "SCIM path" } th scope="col" { "Before" }
                    th scope="col" { "After" } th scope="col" { "C4C property" } th scope="col" { "Outcome" }
                } }
                tbody {
                    @for entry in &entries {
                        tr {
                            td { (text_of(&entry["rule"])) }
                            td { code { (text_of(&entry["scim_path"])) } }
                            td { code { (text_of(&entry["before"])) } }
                            td { code { (text_of(&entry["after"])) } }
                            td { (text_of(&entry["target"])) }
                            td { (text_of(&entry["outcome"]["kind"]))
                                @if let Some(detail) = entry["outcome"].get("detail") { " " span.muted { (detail.to_string()) } } }
                        }
                    }
                }
            }
        }
    }
}

fn odata_table(calls: Option<&Value>) -> Markup {
    let calls = calls.and_then(Value::as_array).cloned().unwrap_or_default();
    html! {
        @if calls.is_empty() {
            p.muted { "No OData call was made." }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Call" } th scope="col" { "Result" } th scope="col" class="num" { "HTTP status" } th scope="col" class="num" { "ms" } th scope="col" { "Error" }
                } }
                tbody {
                    @for call in &calls {
                        tr {
                            td { (text_of(&call["call"])) }
                            td { @if call["ok"] == Value::Bool(true) { (outcome("ok")) } @else { (outcome("failed")) " " (text_of(&call["error_kind"])) } }
                            td class="num" { @if call["ok"] == Value::Bool(true) { "2xx" } @else { (call.get("status").map(text_of).unwrap_or_else(|| "none".to_owned())) } }
                            td class="num" { (text_of(&call["duration_ms"])) }
                            td { (call.get("error").map(text_of).unwrap_or_default()) }
                        }
                    }
                }
            }
        }
    }
}

async fn request_detail(
    State(state): State<AppState>,
    admin: AdminSession,
    Path(request_id): Path<String>,
    Query(notice): Query<Notice>,
) -> Response {
    let view = match admin_api::request_trace_view(&state, &request_id).await {
        Ok(view) => view,
        Err(error) => return error_page(&admin, &error),
    };
    let body = html! {
        (notice_markup(&notice))
        @if let Some(original) = &view.retry_of {
            p { "An operator's retry of " a href=(format!("/admin/requests/{}", urlencode(original))) { code { (original) } } "." }
        }
        @if !view.retries.is_empty() {
            section aria-labelledby="retries" {
                h2 #retries { "Retries" }
                (log_table(&view.retries))
            }
        }
        @if view.retryable {
            @if is_operator(&admin) {
                form method="post" action=(format!("/admin/requests/{}/retry", urlencode(&request_id))) {
                    (csrf(&admin))
                    p { button type="submit" { "Retry this request" } " "
                        span.muted { "Replays the recorded SCIM request (masked values left out) with a new request id." } }
                }
            } @else {
                p.muted { "This request failed; an operator can retry it." }
            }
        }
        @for record in &view.records {
            @let summary = &record.summary;
            section {
                h2 { (summary.method) " " (summary.path) " → " (summary.status) " " (outcome(&summary.outcome)) }
                dl.facts {
                    dt { "Request id" } dd { code { (summary.request_id) } }
                    dt { "Time (UTC)" } dd { (short_time(&summary.at)) }
                    dt { "Client" } dd { (opt(&summary.client)) }
                    dt { "SCIM id" } dd {
                        @if let Some(id) = &summary.resource_id { a href=(format!("/admin/users/{}", urlencode(id))) { code { (id) } } } @else { "–" }
                    }
                    dt { "ObjectID" } dd { code { (opt(&summary.object_id)) } }
                    dt { "EmployeeID" } dd { (opt(&summary.employee_id)) }
                    dt { "Action" } dd { (record.detail.get("action").map(text_of).unwrap_or_else(|| "–".to_owned())) }
                    dt { "Duration" } dd { (summary.duration_ms) " ms" }
                    @if let Some(error) = &summary.error { dt { "Error" } dd { span.outcome-failed { (error) } } }
                }
                h3 { "Rules applied" }
                (rules_table(record.detail.get("trace")))
                h3 { "OData calls" }
                (odata_table(record.detail.get("odata")))
                div.two {
                    (json_block("SCIM body in (masked)", record.detail.get("request")))
                    (json_block("SCIM body out (masked)", record.detail.get("response")))
                }
                @if let Some(safety) = record.detail.get("safety").filter(|value| !value.is_null()) {
                    (json_block("Circuit breaker", Some(safety)))
                }
            }
        }
    };
    page(
        &admin,
        Section::Logs,
        &format!("Request {request_id}"),
        body,
    )
}

async fn retry_request(
    State(state): State<AppState>,
    admin: AdminSession,
    headers: HeaderMap,
    Path(request_id): Path<String>,
) -> Response {
    let base_url = super::discovery::base_url(&state, &headers);
    match admin_api::retry_request_as(&state, &admin, &request_id, base_url).await {
        Ok(result) => {
            let message = match &result.error {
                None => format!(
                    "Retry of {request_id}: {} ({}).",
                    result.outcome, result.status
                ),
                Some(error) => format!(
                    "Retry of {request_id}: {} ({}): {error}",
                    result.outcome, result.status
                ),
            };
            let key = if result.outcome == "ok" {
                "done"
            } else {
                "error"
            };
            redirect_with(
                &format!("/admin/requests/{}", urlencode(&result.request_id)),
                key,
                &message,
            )
        }
        Err(error) => error_page(&admin, &error),
    }
}

// ---------------------------------------------------------------------------------------------
// User timeline

async fn timeline(
    State(state): State<AppState>,
    admin: AdminSession,
    Path(scim_id): Path<String>,
    Query(paging): Query<PageParams>,
) -> Response {
    let view = match admin_api::timeline_view(&state, &scim_id, &paging).await {
        Ok(view) => view,
        Err(error) => return error_page(&admin, &error),
    };
    let title = view.link.as_ref().map_or_else(
        || format!("User {scim_id}"),
        |link| format!("User {}", link.user_name),
    );
    let body = html! {
        h2 { "Link" }
        @if let Some(link) = &view.link {
            dl.facts {
                dt { "SCIM id" } dd { code { (link.scim_id) } }
                dt { "userName" } dd { (link.user_name) }
                dt { "externalId" } dd { (opt(&link.external_id)) }
                dt { "C4C ObjectID" } dd { code { (opt(&link.object_id)) } }
                dt { "EmployeeID" } dd { (opt(&link.employee_id)) }
                dt { "State" } dd { @if link.deleted { "deleted in SCIM (tombstone)" } @else if link.active { "active" } @else { "inactive" } }
                dt { "Updated (UTC)" } dd { (short_time(&link.updated)) }
            }
        } @else {
            p.empty { "The bridge holds no user with this id (it may have failed before it was created)." }
        }
        h2 { "Timeline" }
        @if view.items.is_empty() {
            p.empty { "No mapping-log record for this user." }
        } @else {
            (log_table(&view.items))
        }
        @if let Some(cursor) = view.next_cursor {
            nav aria-label="Pages" { a rel="next" href=(format!("/admin/users/{}?cursor={cursor}", urlencode(&scim_id))) { "Older records" } }
        }
    };
    page(&admin, Section::Logs, &title, body)
}

// ---------------------------------------------------------------------------------------------
// Outbox

async fn outbox(
    State(state): State<AppState>,
    admin: AdminSession,
    Query(search): Query<OutboxSearch>,
    Query(notice): Query<Notice>,
) -> Response {
    let statuses = ["", "pending", "running", "failed", "done", "discarded"];
    let form = html! {
        form.filters method="get" action="/admin/outbox" {
            label { "Status"
                select name="status" {
                    @for value in statuses {
                        @let label = if value.is_empty() { "any" } else { value };
                        @if search.status.as_deref().unwrap_or("") == value {
                            option value=(value) selected { (label) }
                        } @else { option value=(value) { (label) } }
                    }
                }
            }
            button type="submit" { "Show" }
        }
    };
    let view = match admin_api::outbox_view(&state, &search).await {
        Ok(view) => view,
        Err(error) => return error_page(&admin, &error),
    };
    let operator = is_operator(&admin);
    let body = html! {
        (notice_markup(&notice))
        (form)
        p.muted { "C4C writes the worker applies with retries: updates an operator retried and held batches released. Failed items wait for an operator." }
        @if view.items.is_empty() {
            p.empty { "The outbox is empty: no C4C write is waiting or failed." }
        } @else {
            table {
                thead { tr {
                    th scope="col" class="num" { "#" } th scope="col" { "Kind" } th scope="col" { "User (SCIM id)" }
                    th scope="col" { "Status" } th scope="col" class="num" { "Attempts" } th scope="col" { "Next attempt (UTC)" }
                    th scope="col" { "Last error" } th scope="col" { "Actions" }
                } }
                tbody {
                    @for item in &view.items {
                        tr {
                            td class="num" { (item.id) }
                            td { code { (item.kind) } }
                            td { @if let Some(id) = &item.resource_id { a href=(format!("/admin/users/{}", urlencode(id))) { code { (id) } } } @else { "–" } }
                            td { (outcome(&item.status)) }
                            td class="num" { (item.attempts) }
                            td { (short_time(&item.next_attempt)) }
                            td { (opt(&item.last_error)) }
                            td {
                                @if operator && matches!(item.status.as_str(), "failed" | "discarded" | "pending") {
                                    form.inline method="post" action=(format!("/admin/outbox/{}/retry", item.id)) {
                                        (csrf(&admin))
                                        button type="submit" aria-label=(format!("Retry outbox item {}", item.id)) { "Retry" }
                                    }
                                    " "
                                }
                                @if operator && matches!(item.status.as_str(), "failed" | "pending") {
                                    form.inline method="post" action=(format!("/admin/outbox/{}/discard", item.id)) data-confirm="Discard this C4C write for good?" {
                                        (csrf(&admin))
                                        button.danger type="submit" aria-label=(format!("Discard outbox item {}", item.id)) { "Discard" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(cursor) = view.next_cursor {
            nav aria-label="Pages" { a rel="next" href=(format!("/admin/outbox?status={}&cursor={cursor}", urlencode(search.status.as_deref().unwrap_or("")))) { "Older items" } }
        }
    };
    page(&admin, Section::Outbox, "Outbox", body)
}

async fn outbox_decide(state: &AppState, admin: &AdminSession, id: i64, retry: bool) -> Response {
    match admin_api::outbox_decide(state, admin, id, retry).await {
        Ok(item) => redirect_with(
            "/admin/outbox",
            "done",
            &format!(
                "Outbox item {} is {}.",
                item.id,
                if retry { "due again" } else { "discarded" }
            ),
        ),
        Err(error @ (ApiError::Conflict(_) | ApiError::NotFound(_))) => {
            redirect_with("/admin/outbox", "error", &error.status_and_message().1)
        }
        Err(error) => error_page(admin, &error),
    }
}

async fn outbox_retry(
    State(state): State<AppState>,
    admin: AdminSession,
    Path(id): Path<i64>,
) -> Response {
    outbox_decide(&state, &admin, id, true).await
}

async fn outbox_discard(
    State(state): State<AppState>,
    admin: AdminSession,
    Path(id): Path<i64>,
) -> Response {
    outbox_decide(&state, &admin, id, false).await
}

// ---------------------------------------------------------------------------------------------
// Held operations

async fn held(
    State(state): State<AppState>,
    admin: AdminSession,
    Query(search): Query<HeldSearch>,
    Query(notice): Query<Notice>,
) -> Response {
    let view = match admin_api::held_view(&state, &search).await {
        Ok(view) => view,
        Err(error) => return error_page(&admin, &error),
    };
    let operator = is_operator(&admin);
    let body = html! {
        (notice_markup(&notice))
        p.muted { "Deactivations, deletions, role removals and reconciliation's lock restores the circuit breaker held instead of applying. Release applies one; discard drops it." }
        p { a href="/admin/held?status=all" { "All decisions" } " · " a href="/admin/held" { "Held only" } }
        @if view.items.is_empty() {
            p.empty { "Nothing is held: every deprovisioning was within the breaker's limits." }
        } @else {
            table {
                thead { tr {
                    th scope="col" class="num" { "#" } th scope="col" { "Kind" } th scope="col" { "User (SCIM id)" }
                    th scope="col" { "Client" } th scope="col" { "Requested (UTC)" } th scope="col" { "Status" }
                    th scope="col" { "Decided by" } th scope="col" { "Actions" }
                } }
                tbody {
                    @for item in &view.items {
                        tr {
                            td class="num" { (item.id) }
                            td { (item.kind) }
                            td { a href=(format!("/admin/users/{}", urlencode(&item.resource_id))) { code { (item.resource_id) } } }
                            td {
                                @if item.client.is_none() && item.kind == "reconcile_lock" { "drift reconciliation" } @else { (opt(&item.client)) }
                            }
                            td { (short_time(&item.requested)) }
                            td { (outcome(&item.status)) @if let Some(error) = &item.error { br; span.muted { (error) } } }
                            td { (opt(&item.decided_by)) }
                            td {
                                @if operator && item.status == "held" {
                                    form.inline method="post" action=(format!("/admin/held/{}/release", item.id)) {
                                        (csrf(&admin))
                                        button type="submit" aria-label=(format!("Release held operation {}", item.id)) { "Release" }
                                    }
                                    " "
                                    form.inline method="post" action=(format!("/admin/held/{}/discard", item.id)) data-confirm="Discard this held deprovisioning?" {
                                        (csrf(&admin))
                                        button.danger type="submit" aria-label=(format!("Discard held operation {}", item.id)) { "Discard" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page(&admin, Section::Held, "Held deprovisionings", body)
}

async fn held_decide(state: &AppState, admin: &AdminSession, id: i64, release: bool) -> Response {
    match admin_api::held_decide(state, admin, id, release).await {
        Ok(decision) => redirect_with(
            "/admin/held",
            if decision.result == "failed" {
                "error"
            } else {
                "done"
            },
            &format!(
                "Held operation {}: {}{}",
                decision.id,
                decision.result,
                decision
                    .detail
                    .map(|detail| format!(" ({detail})"))
                    .unwrap_or_default()
            ),
        ),
        Err(error @ (ApiError::Conflict(_) | ApiError::NotFound(_))) => {
            redirect_with("/admin/held", "error", &error.status_and_message().1)
        }
        Err(error) => error_page(admin, &error),
    }
}

async fn held_release(
    State(state): State<AppState>,
    admin: AdminSession,
    Path(id): Path<i64>,
) -> Response {
    held_decide(&state, &admin, id, true).await
}

async fn held_discard(
    State(state): State<AppState>,
    admin: AdminSession,
    Path(id): Path<i64>,
) -> Response {
    held_decide(&state, &admin, id, false).await
}

// ---------------------------------------------------------------------------------------------
// Rules

async fn rules(State(state): State<AppState>, admin: AdminSession) -> Response {
    let view = match admin_api::rules_view(&state).await {
        Ok(view) => view,
        Err(error) => return error_page(&admin, &error),
    };
    let body = html! {
        @if view.metadata_checked {
            @if view.errors == 0 && view.warnings == 0 {
                p.flash role="status" { "Every rule matches the tenant's $metadata." }
            } @else {
                p.flash.error role="status" { (view.errors) " error(s), " (view.warnings) " warning(s) against the tenant's $metadata." }
            }
        } @else {
            p.flash.error role="status" { "Not checked against $metadata: " (opt(&view.metadata_error)) }
        }
        @if view.rules.is_empty() {
            p.empty { "No mapping rule is configured." }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Rule" } th scope="col" { "Source" } th scope="col" { "C4C property" }
                    th scope="col" { "Transforms" } th scope="col" { "Create only" } th scope="col" { "$metadata" }
                } }
                tbody {
                    @for rule in &view.rules {
                        tr {
                            td { (rule.name) }
                            td { code { (rule.source) } }
                            td { code { (rule.to) } }
                            td { (rule.transforms.join(", ")) }
                            td { @if rule.create_only { "yes" } @else { "no" } }
                            td {
                                @if rule.problems.is_empty() {
                                    @if view.metadata_checked { (outcome("ok")) } @else { "–" }
                                } @else {
                                    ul { @for problem in &rule.problems { li.outcome-failed { (problem) } } }
                                }
                            }
                        }
                    }
                }
            }
        }
        p.muted { "Masked in traces and the mapping log: " (view.sensitive.join(", ")) }
    };
    page(&admin, Section::Rules, "Mapping rules", body)
}

// ---------------------------------------------------------------------------------------------
// Tokens

async fn tokens(
    State(state): State<AppState>,
    admin: AdminSession,
    Query(notice): Query<Notice>,
) -> Response {
    let tokens = match state.store.list_tokens().await {
        Ok(tokens) => tokens,
        Err(error) => return error_page(&admin, &ApiError::Store(error)),
    };
    let operator = is_operator(&admin);
    let time = |millis: Option<i64>| {
        millis.map_or_else(|| "–".to_owned(), |at| short_time(&admin_api::rfc3339(at)))
    };
    let body = html! {
        (notice_markup(&notice))
        p.muted { "Bearer tokens of the identity providers' SCIM clients. Values are shown once, when created with " code { "c4c-scim-bridge token create" } "." }
        @if tokens.is_empty() {
            p.empty { "No SCIM token yet. Create one with " code { "c4c-scim-bridge token create --name entra-prod" } "." }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "Id" } th scope="col" { "Created (UTC)" }
                    th scope="col" { "Expires" } th scope="col" { "Last used" } th scope="col" { "Revoked" } th scope="col" { "Actions" }
                } }
                tbody {
                    @for token in &tokens {
                        tr {
                            td { (token.name) }
                            td { code { (token.id) } }
                            td { (time(Some(token.created_at))) }
                            td { (time(token.expires_at)) }
                            td { (time(token.last_used_at)) }
                            td { (time(token.revoked_at)) }
                            td {
                                @if operator && token.revoked_at.is_none() {
                                    form.inline method="post" action=(format!("/admin/tokens/{}/revoke", urlencode(&token.id))) data-confirm="Revoke this token? Its client stops working at once." {
                                        (csrf(&admin))
                                        button.danger type="submit" aria-label=(format!("Revoke token {}", token.name)) { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page(&admin, Section::Tokens, "SCIM tokens", body)
}

async fn token_revoke(
    State(state): State<AppState>,
    admin: AdminSession,
    Path(id): Path<String>,
) -> Response {
    if let Err(rejection) = admin.require_operator() {
        return error_page(&admin, &ApiError::Rejected(rejection));
    }
    match state
        .store
        .revoke_token(&id, crate::store::now_millis())
        .await
    {
        Ok(0) => redirect_with("/admin/tokens", "error", "No live token with this id."),
        Ok(_) => {
            tracing::info!(user = %admin.user, token = %id, "admin revoked a SCIM token");
            redirect_with("/admin/tokens", "done", &format!("Token {id} revoked."))
        }
        Err(error) => error_page(&admin, &ApiError::Store(error)),
    }
}
