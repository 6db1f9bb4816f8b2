//! `/metrics` after traffic: SCIM requests by route template, method and status; outbox gauges.

use serde_json::json;

use crate::harness::{Backend, TestApp};

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    for _ in 0..3 {
        app.client.get(app.url("/healthz")).send().await.unwrap();
    }
    // Unauthenticated SCIM requests: counted under the template, never the raw id.
    app.client
        .get(app.url("/scim/v2/Schemas/urn:secret-looking-id"))
        .send()
        .await
        .unwrap();
    app.store
        .enqueue_outbox("update", None, &json!({}))
        .await
        .unwrap();
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let healthz = text
        .lines()
        .find(|line| {
            line.starts_with("scim_requests_total{")
                && line.contains(r#"endpoint="/healthz""#)
                && line.contains(r#"status="200""#)
        })
        .unwrap_or_else(|| panic!("{text}"));
    let count: f64 = healthz.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 3.0, "{healthz}");
    assert!(
        text.contains(r#"endpoint="/scim/v2/Schemas/{id}",method="GET",status="401""#),
        "{text}"
    );
    assert!(!text.contains("secret-looking-id"));
    assert!(text.contains("scim_request_duration_seconds_bucket{"));
    assert!(text.contains("outbox_depth "), "{text}");
}

/// After a provisioning run through OAuth, with one C4C failure retried: every series operators
/// chart is present with the labels they filter on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_after_a_provisioning_run() {
    let sim = crate::harness::start_sim(1).await;
    let db = crate::harness::TestDb::new(Backend::Sqlite).await.unwrap();
    let c4c: c4c_scim_bridge::c4c::C4cConfig = toml::from_str(&format!(
        "base_url = \"{}/\"\n[retry]\nmax_attempts = 3\nbase_backoff_ms = 1\nmax_backoff_ms = 5\n\
         [auth]\nmode = \"oauth_client_credentials\"\ntoken_url = \"{}\"\n\
         client_id = \"SCIM_BRIDGE_CLIENT\"\nclient_secret = \"Client-Secret-1\"\n",
        sim.service_url(),
        sim.token_url(),
    ))
    .unwrap();
    let app = TestApp::spawn_with(db, move |config| config.c4c = Some(c4c)).await;
    let token = c4c_scim_bridge::auth::create_token(&app.store, "entra", None)
        .await
        .unwrap();
    let token = secrecy::ExposeSecret::expose_secret(&token.token).to_owned();
    // The first write attempt meets a 503 and is retried.
    sim.faults().fail_next(
        1,
        c4c_scim_bridge::sim::Fault::Status503,
        c4c_scim_bridge::sim::FaultScope::Writes,
    );
    let created: serde_json::Value = app
        .client
        .post(app.url("/scim/v2/Users"))
        .bearer_auth(&token)
        .header("content-type", "application/scim+json")
        .body(
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "metrics.user@contoso.com",
                "active": true,
                "name": {"givenName": "Metrics", "familyName": "User"},
                "emails": [{"primary": true, "type": "work", "value": "metrics.user@contoso.com"}]
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"));
    let patched = app
        .client
        .patch(app.url(&format!("/scim/v2/Users/{id}")))
        .bearer_auth(&token)
        .header("content-type", "application/scim+json")
        .body(
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": false}]
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for series in [
        r#"scim_requests_total{endpoint="/scim/v2/Users",method="POST",status="201"}"#,
        r#"scim_requests_total{endpoint="/scim/v2/Users/{id}",method="PATCH",status="200"}"#,
        r#"scim_request_duration_seconds_bucket{endpoint="/scim/v2/Users",method="POST""#,
        r#"c4c_calls_total{kind="token",status="200",error="none"}"#,
        r#"c4c_csrf_tokens_total{how="#,
        r#"c4c_calls_total{kind="update",status="204""#,
        r#"c4c_call_duration_seconds_bucket{kind="read""#,
        r#"c4c_retries_total{kind="#,
        r#"store_operation_duration_seconds_bucket{operation="insert_resource""#,
        r#"store_operation_duration_seconds_bucket{operation="append_log""#,
        "outbox_depth ",
        "outbox_oldest_age_seconds ",
    ] {
        assert!(text.contains(series), "missing {series} in\n{text}");
    }
    assert!(!text.contains("Client-Secret-1"));
    assert!(!text.contains(&token));
}
