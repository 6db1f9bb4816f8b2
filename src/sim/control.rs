//! `/__sim/…`: the runtime control API (no authentication; loopback test tool).
//!
//! - `GET /__sim/counters`, `POST /__sim/counters/reset`
//! - `GET /__sim/faults`, `PUT /__sim/faults` (a `FaultSettings` JSON), `POST /__sim/faults/reset`
//! - `POST /__sim/faults/next` (a `QueuedFault` JSON: `{"fault":{"kind":"reset"},"scope":"writes","remaining":1}`)
//! - `POST /__sim/csrf/invalidate`
//! - `POST /__sim/oauth/revoke`
//! - `GET /__sim/employees`, `DELETE /__sim/employees/{ObjectID}` (an administrator's removal)

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::{HeaderValue, Method, StatusCode};
use serde_json::{Value, json};

use super::faults::{FaultSettings, QueuedFault};
use super::model::SetId;
use super::server::Shared;
use super::store::record_to_map;

fn json_response(status: StatusCode, v: &Value) -> Response {
    let mut r = Response::new(Body::from(v.to_string()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    r
}

fn bad(msg: String) -> Response {
    json_response(StatusCode::BAD_REQUEST, &json!({"error": msg}))
}

pub(crate) async fn handle(sh: &Shared, rest: &str, req: Request) -> Response {
    let method = req.method().clone();
    let body = match axum::body::to_bytes(req.into_body(), 1024 * 1024).await {
        Ok(b) => b,
        Err(e) => return bad(e.to_string()),
    };
    match (method, rest) {
        (Method::GET, "counters") => json_response(StatusCode::OK, &json!(sh.counters.snapshot())),
        (Method::POST, "counters/reset") => {
            sh.counters.reset();
            json_response(StatusCode::OK, &json!(sh.counters.snapshot()))
        }
        (Method::GET, "faults") => json_response(
            StatusCode::OK,
            &json!({"settings": sh.faults.settings(), "queued": sh.faults.queued()}),
        ),
        (Method::PUT, "faults") => match serde_json::from_slice::<FaultSettings>(&body) {
            Ok(s) => {
                sh.faults.set(s.clone());
                json_response(StatusCode::OK, &json!(s))
            }
            Err(e) => bad(format!("invalid fault settings: {e}")),
        },
        (Method::POST, "faults/reset") => {
            sh.faults.clear();
            json_response(StatusCode::OK, &json!(sh.faults.settings()))
        }
        (Method::POST, "faults/next") => match serde_json::from_slice::<QueuedFault>(&body) {
            Ok(q) => {
                sh.faults.push(q);
                json_response(StatusCode::OK, &json!(sh.faults.queued()))
            }
            Err(e) => bad(format!("invalid queued fault: {e}")),
        },
        (Method::POST, "csrf/invalidate") => {
            sh.auth.invalidate_sessions();
            json_response(StatusCode::OK, &json!({"invalidated": true}))
        }
        (Method::POST, "oauth/revoke") => {
            sh.auth.revoke_tokens();
            json_response(StatusCode::OK, &json!({"revoked": true}))
        }
        (Method::GET, "employees") => {
            let db = sh.db.read().unwrap_or_else(|p| p.into_inner());
            let list: Vec<_> = db
                .table(SetId::Employee)
                .values()
                .map(|r| record_to_map(SetId::Employee, r))
                .collect();
            json_response(StatusCode::OK, &json!(list))
        }
        (Method::DELETE, path) if path.starts_with("employees/") => {
            let object_id = path.trim_start_matches("employees/");
            let removed = sh
                .db
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .remove_employee(object_id);
            if removed {
                json_response(StatusCode::OK, &json!({"removed": object_id}))
            } else {
                json_response(StatusCode::NOT_FOUND, &json!({"error": "no such employee"}))
            }
        }
        _ => json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": "unknown control endpoint"}),
        ),
    }
}
