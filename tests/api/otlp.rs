//! OpenTelemetry: with `log.otlp_endpoint`, `serve` exports its spans over OTLP/HTTP (protobuf)
//! to a collector, here a minimal one that records what it receives.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;

use crate::harness::binary;

/// What the collector received: content type and body of each export.
type Exports = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_exports_request_spans_over_otlp() {
    let received: Exports = Arc::default();
    let sink = received.clone();
    let collector = axum::Router::new().route(
        "/v1/traces",
        post(move |headers: HeaderMap, body: Bytes| {
            let sink = sink.clone();
            async move {
                let content_type = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                sink.lock().unwrap().push((content_type, body.to_vec()));
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, collector).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[log]\nlevel = \"info\"\n\
             otlp_endpoint = \"http://{collector_addr}/v1/traces\"\notlp_service_name = \"bridge-under-test\"\n\
             [store]\nurl = \"sqlite://{}\"\n",
            dir.path().join("bridge.db").display()
        ),
    )
    .unwrap();
    let mut child = tokio::process::Command::new(binary())
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let mut healthy = false;
    for _ in 0..300 {
        if let Ok(response) = client
            .get(format!(
                "http://127.0.0.1:{port}/scim/v2/ServiceProviderConfig"
            ))
            .send()
            .await
        {
            healthy = response.status().as_u16() == 401;
            if healthy {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(healthy, "the bridge did not start");
    // SIGTERM: graceful shutdown flushes the buffered spans before the process exits.
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("the bridge did not stop on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");

    let received = received.lock().unwrap();
    assert!(!received.is_empty(), "no OTLP export arrived");
    let (content_type, body) = &received[0];
    assert_eq!(content_type, "application/x-protobuf");
    let all: Vec<u8> = received.iter().flat_map(|(_, b)| b.clone()).collect();
    let contains = |needle: &[u8]| all.windows(needle.len()).any(|w| w == needle);
    assert!(!body.is_empty());
    // Protobuf keeps strings as raw bytes: the service name and the request span are in there.
    assert!(contains(b"bridge-under-test"), "service.name missing");
    assert!(
        contains(b"/scim/v2/ServiceProviderConfig"),
        "request span missing"
    );
}
