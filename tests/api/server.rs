//! The HTTP skeleton: probes, request ids, limits, graceful shutdown.

use crate::on_both_backends;

use crate::harness::{Backend, TestApp, TestDb, c4c_config_for, start_sim};

on_both_backends!(health_and_readiness, |backend: Backend| async move {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["store"], "ok");
    // Readiness follows the store: closed store, not ready; liveness is unaffected.
    app.store.close().await;
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    app.stop().await;
});

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let response = app.client.get(app.url("/healthz")).send().await.unwrap();
    let id = response
        .headers()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    // A caller's own id is kept, so it can be followed across systems.
    let response = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "idp-trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "idp-trace-42");
    let missing = app.client.get(app.url("/nope")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let app = TestApp::spawn_with(db, |config| config.server.body_limit_bytes = 2048).await;
    let response = app
        .client
        .post(app.url("/healthz"))
        .body(vec![b'x'; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
}

#[tokio::test]
async fn shutdown_finishes_and_stops_listening() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let addr = app.addr;
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    app.stop().await;
    assert!(
        reqwest::get(format!("http://{addr}/healthz"))
            .await
            .is_err()
    );
}

async fn readiness(app: &TestApp) -> (u16, serde_json::Value) {
    let response = app.client.get(app.url("/readyz")).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// Polls readiness until it reports `want` (the C4C check is cached for two seconds).
async fn wait_for_readiness(app: &TestApp, want: u16) -> serde_json::Value {
    for _ in 0..100 {
        let (status, body) = readiness(app).await;
        if status == want {
            return body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("readiness never became {want}");
}

#[tokio::test]
async fn readiness_follows_the_c4c_tenant() {
    let sim = start_sim(3).await;
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let app = TestApp::spawn_with(db, |config| config.c4c = Some(c4c_config_for(&sim))).await;
    let (status, body) = readiness(&app).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["c4c"], "ok");
    sim.faults().set_maintenance(true);
    let body = wait_for_readiness(&app, 503).await;
    assert_eq!(body["checks"]["c4c"], "unavailable", "{body}");
    assert_eq!(body["checks"]["store"], "ok");
    // Liveness does not depend on the tenant.
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    sim.faults().set_maintenance(false);
    wait_for_readiness(&app, 200).await;
    sim.shutdown().await;
}
