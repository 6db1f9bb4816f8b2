//! HTTPS serving with rustls from certificate and key files.

use secrecy::ExposeSecret;

use crate::harness::{Backend, TestApp, TestDb};

#[tokio::test]
async fn serves_https_from_cert_and_key_files() {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert_file = dir.path().join("cert.pem");
    let key_file = dir.path().join("key.pem");
    std::fs::write(&cert_file, certified.cert.pem()).unwrap();
    std::fs::write(&key_file, certified.key_pair.serialize_pem()).unwrap();

    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let (cert, key) = (cert_file.clone(), key_file.clone());
    let app = TestApp::spawn_with(db, move |config| {
        config.server.tls_cert_file = Some(cert);
        config.server.tls_key_file = Some(key);
    })
    .await;
    let token = c4c_scim_bridge::auth::create_token(&app.store, "okta", None)
        .await
        .unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap(),
        )
        .build()
        .unwrap();
    let base = format!("https://127.0.0.1:{}", app.addr.port());
    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let scim = client
        .get(format!("{base}/scim/v2/ServiceProviderConfig"))
        .bearer_auth(token.token.expose_secret())
        .send()
        .await
        .unwrap();
    assert_eq!(scim.status(), 200);
    let localhost = client
        .get(format!("https://localhost:{}/healthz", app.addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(localhost.status(), 200);

    // Plain HTTP gets no answer, and a client that does not trust the certificate refuses it.
    assert!(app.client.get(app.url("/healthz")).send().await.is_err());
    assert!(
        reqwest::Client::new()
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_err()
    );
    app.stop().await;
}

#[test]
fn half_a_tls_configuration_is_an_error() {
    let mut config = c4c_scim_bridge::config::Config::default();
    config.server.tls_cert_file = Some("/nonexistent/cert.pem".into());
    let error = config.validate().unwrap_err().to_string();
    assert!(error.contains("tls_key_file"), "{error}");
    config.server.tls_key_file = Some("/nonexistent/key.pem".into());
    let error = config.validate().unwrap_err().to_string();
    assert!(error.contains("/nonexistent/cert.pem"), "{error}");
}
