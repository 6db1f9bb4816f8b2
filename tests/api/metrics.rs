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
