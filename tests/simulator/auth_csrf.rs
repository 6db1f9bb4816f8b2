use std::time::Duration;

use c4c_scim_bridge::sim::{
    Access, CsrfPolicy, DEFAULT_PASSWORD, DEFAULT_USER, SimConfig, TechnicalUser,
};
use reqwest::Method;
use serde_json::json;

use super::helpers::{error_message, start, start_with};

#[tokio::test]
async fn basic_auth_is_required() {
    let t = start_with(1).await;
    let r = t
        .http
        .get(t.url("EmployeeCollection"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let r = t
        .http
        .get(t.url("EmployeeCollection"))
        .basic_auth(DEFAULT_USER, Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = t
        .http
        .get(t.url("EmployeeCollection"))
        .basic_auth("NOBODY", Some(DEFAULT_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(t.sim.counters().unauthorized, 3);
}

#[tokio::test]
async fn csrf_token_is_bound_to_the_session_cookie() {
    let t = start_with(0).await;
    let body = json!({"FirstName":"A","LastName":"B"});
    // No token at all.
    let r = t
        .http
        .post(t.url("EmployeeCollection"))
        .basic_auth(DEFAULT_USER, Some(DEFAULT_PASSWORD))
        .header("accept", "application/json")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["x-csrf-token"], "Required");
    assert_eq!(error_message(r).await.1, "CSRF token validation failed");

    let fetch = t
        .get("EmployeeCollection?$top=1&$format=json")
        .header("x-csrf-token", "fetch")
        .send()
        .await
        .unwrap();
    let token = fetch.headers()["x-csrf-token"].to_str().unwrap().to_owned();
    assert_eq!(token.len(), 24);
    let cookies: Vec<_> = fetch
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .collect();
    assert!(
        cookies.iter().any(|c| c.starts_with("SAP_SESSIONID_")),
        "{cookies:?}"
    );
    // Right token, but without the session cookie (a client without a cookie store).
    let bare = reqwest::Client::new();
    let r = bare
        .post(t.url("EmployeeCollection"))
        .basic_auth(DEFAULT_USER, Some(DEFAULT_PASSWORD))
        .header("x-csrf-token", &token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["x-csrf-token"], "Required");
    // Token and cookie: accepted, and reusable.
    for _ in 0..2 {
        let r = t
            .write(Method::POST, "EmployeeCollection", &token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    // A second fetch in the same session returns the same token.
    assert_eq!(t.csrf().await, token);
    // Invalidated on demand → stale token gets 403 Required.
    t.sim.faults().invalidate_csrf();
    let r = t
        .write(Method::POST, "EmployeeCollection", &token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["x-csrf-token"], "Required");
    let fresh = t.csrf().await;
    assert_ne!(fresh, token);
    let r = t
        .write(Method::POST, "EmployeeCollection", &fresh)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let c = t.sim.counters();
    assert_eq!(c.csrf_rejections, 3);
    assert_eq!(c.csrf_fetches, 3);
    // HEAD on the service root fetches too (what pyodata's docs do).
    let r = t
        .http
        .head(t.url(""))
        .basic_auth(DEFAULT_USER, Some(DEFAULT_PASSWORD))
        .header("x-csrf-token", "Fetch")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-csrf-token"));
}

#[tokio::test]
async fn csrf_tokens_expire() {
    let t = start(SimConfig {
        csrf_token_lifetime: Duration::from_millis(200),
        ..SimConfig::default()
    })
    .await;
    let token = t.csrf().await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let r = t
        .write(Method::POST, "EmployeeCollection", &token)
        .json(&json!({"FirstName":"A","LastName":"B"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["x-csrf-token"], "Required");
}

#[tokio::test]
async fn csrf_enforcement_is_a_setting_per_auth_mode() {
    let t = start(SimConfig {
        csrf: CsrfPolicy {
            basic: false,
            bearer: true,
            certificate: true,
        },
        ..SimConfig::default()
    })
    .await;
    let r = t
        .http
        .post(t.url("EmployeeCollection"))
        .basic_auth(DEFAULT_USER, Some(DEFAULT_PASSWORD))
        .json(&json!({"FirstName":"A","LastName":"B"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn missing_authorization_gets_tenant_errors() {
    let mut reader = TechnicalUser::new("READER", "pw");
    reader.access = Access::ReadOnly;
    let mut no_view = TechnicalUser::new("COMM_USER", "pw");
    no_view.access = Access::NoWorkCenterView;
    let t = start(SimConfig {
        users: vec![reader, no_view],
        ..SimConfig::default()
    })
    .await;
    let r = t
        .http
        .get(t.url(""))
        .basic_auth("COMM_USER", Some("pw"))
        .header("x-csrf-token", "fetch")
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    let (s, msg) = error_message(r).await;
    assert_eq!(s, 403);
    assert_eq!(
        msg,
        "Inconsistent Authorization: Re-activate Communication Arrangement."
    );
    let r = t
        .http
        .get(t.url("EmployeeCollection?$format=json"))
        .basic_auth("READER", Some("pw"))
        .header("x-csrf-token", "fetch")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let token = r.headers()["x-csrf-token"].to_str().unwrap().to_owned();
    let r = t
        .http
        .post(t.url("EmployeeCollection"))
        .basic_auth("READER", Some("pw"))
        .header("x-csrf-token", token)
        .header("accept", "application/json")
        .json(&json!({"FirstName":"A","LastName":"B"}))
        .send()
        .await
        .unwrap();
    let (s, msg) = error_message(r).await;
    assert_eq!(s, 403);
    assert!(msg.contains("No authorization"));
}
