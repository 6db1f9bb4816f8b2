use std::time::Duration;

use base64::Engine;
use c4c_scim_bridge::sim::tls::TestPki;
use c4c_scim_bridge::sim::{DEFAULT_PASSWORD, DEFAULT_USER, SimConfig, Simulator};
use reqwest::{Certificate, Client, Identity};
use serde_json::{Value, json};

use super::helpers::start;

#[tokio::test]
async fn x509_client_certificates_over_tls() {
    let pki = TestPki::new().unwrap();
    let sim = Simulator::start(SimConfig {
        tls: Some(pki.tls_settings(true)),
        generated_employees: 2,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let base = sim.service_url();
    assert!(base.starts_with("https://127.0.0.1:"));
    let ca = Certificate::from_pem(pki.ca_cert_pem().as_bytes()).unwrap();
    let cert = pki.client_cert(DEFAULT_USER).unwrap();
    let client = Client::builder()
        .use_rustls_tls()
        .add_root_certificate(ca.clone())
        .identity(Identity::from_pem(cert.identity_pem().as_bytes()).unwrap())
        .cookie_store(true)
        .build()
        .unwrap();
    // No Authorization header: the certificate authenticates.
    let r = client
        .get(format!("{base}/EmployeeCollection?$format=json"))
        .header("x-csrf-token", "fetch")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let token = r.headers()["x-csrf-token"].to_str().unwrap().to_owned();
    let r = client
        .post(format!("{base}/EmployeeCollection"))
        .header("x-csrf-token", token)
        .json(&json!({"FirstName":"Cert","LastName":"User"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // A certificate for an unknown user, and no certificate at all: 401; Basic still works.
    let stranger = pki.client_cert("SOMEONE_ELSE").unwrap();
    let other = Client::builder()
        .use_rustls_tls()
        .add_root_certificate(ca.clone())
        .identity(Identity::from_pem(stranger.identity_pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    assert_eq!(
        other
            .get(format!("{base}/EmployeeCollection"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let plain = Client::builder()
        .use_rustls_tls()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    assert_eq!(
        plain
            .get(format!("{base}/EmployeeCollection"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let r = plain
        .get(format!("{base}/EmployeeCollection"))
        .basic_auth(DEFAULT_USER, Some(DEFAULT_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A certificate from another CA is refused in the handshake.
    let foreign = TestPki::new().unwrap().client_cert(DEFAULT_USER).unwrap();
    let foreign_client = Client::builder()
        .use_rustls_tls()
        .add_root_certificate(Certificate::from_pem(pki.ca_cert_pem().as_bytes()).unwrap())
        .identity(Identity::from_pem(foreign.identity_pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    assert!(
        foreign_client
            .get(format!("{base}/EmployeeCollection"))
            .send()
            .await
            .is_err()
    );
    sim.shutdown().await;
}

async fn token(
    t: &super::helpers::Tenant,
    auth: (&str, &str),
    form: &[(&str, &str)],
) -> (u16, Value) {
    let r = t
        .http
        .post(t.sim.token_url())
        .basic_auth(auth.0, Some(auth.1))
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn assertion(issuer: &str, user: &str, not_on_or_after: &str) -> String {
    let xml = format!(
        r#"<saml2:Assertion xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion" ID="_5f6e" IssueInstant="2024-01-01T00:00:00Z" Version="2.0"><saml2:Issuer>{issuer}</saml2:Issuer><saml2:Subject><saml2:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified">{user}</saml2:NameID><saml2:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"/></saml2:Subject><saml2:Conditions NotBefore="2024-01-01T00:00:00Z" NotOnOrAfter="{not_on_or_after}"><saml2:AudienceRestriction><saml2:Audience>127.0.0.1</saml2:Audience></saml2:AudienceRestriction></saml2:Conditions></saml2:Assertion>"#
    );
    base64::engine::general_purpose::STANDARD.encode(xml)
}

#[tokio::test]
async fn oauth_token_endpoint() {
    let t = start(SimConfig {
        generated_employees: 1,
        ..SimConfig::default()
    })
    .await;
    let client = ("SCIM_BRIDGE_CLIENT", "Client-Secret-1");
    let (s, v) = token(&t, client, &[("grant_type", "client_credentials")]).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 3600);
    assert_eq!(v["scope"], "UIWC:CC_HOME");
    let access = v["access_token"].as_str().unwrap().to_owned();
    let r = t
        .http
        .get(t.url("EmployeeCollection?$format=json"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let good = assertion("SIM_IDP", DEFAULT_USER, "2999-01-01T00:00:00Z");
    let saml = [
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:saml2-bearer",
        ),
        ("client_id", "SCIM_BRIDGE_CLIENT"),
        ("scope", "UIWC:CC_HOME"),
        ("assertion", good.as_str()),
    ];
    let (s, v) = token(&t, client, &saml).await;
    assert_eq!(s, 200, "{v}");
    let saml_token = v["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        t.http
            .get(t.url("EmployeeCollection"))
            .bearer_auth(&saml_token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    for (assertion_text, err) in [
        (
            assertion("OTHER_IDP", DEFAULT_USER, "2999-01-01T00:00:00Z"),
            "invalid_grant",
        ),
        (
            assertion("SIM_IDP", "NOBODY", "2999-01-01T00:00:00Z"),
            "invalid_grant",
        ),
        (
            assertion("SIM_IDP", DEFAULT_USER, "2000-01-01T00:00:00Z"),
            "invalid_grant",
        ),
        ("bm90IHhtbA==".to_owned(), "invalid_grant"),
    ] {
        let form = [
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:saml2-bearer",
            ),
            ("assertion", assertion_text.as_str()),
        ];
        let (s, v) = token(&t, client, &form).await;
        assert_eq!((s, v["error"].as_str().unwrap()), (400, err));
    }
    let (s, v) = token(
        &t,
        ("SCIM_BRIDGE_CLIENT", "wrong"),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!((s, v["error"].as_str().unwrap()), (401, "invalid_client"));
    let (s, v) = token(&t, client, &[("grant_type", "password")]).await;
    assert_eq!(
        (s, v["error"].as_str().unwrap()),
        (400, "unsupported_grant_type")
    );
    assert_eq!(t.sim.counters().token_requests, 8);

    assert_eq!(
        t.http
            .get(t.url("EmployeeCollection"))
            .bearer_auth("made-up")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    let no_cc = start(SimConfig {
        allow_client_credentials: false,
        ..SimConfig::default()
    })
    .await;
    let (s, _) = token(&no_cc, client, &[("grant_type", "client_credentials")]).await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn access_tokens_expire() {
    let t = start(SimConfig {
        token_lifetime: Duration::from_millis(300),
        ..SimConfig::default()
    })
    .await;
    let (s, v) = token(
        &t,
        ("SCIM_BRIDGE_CLIENT", "Client-Secret-1"),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["expires_in"], 0);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let r = t
        .http
        .get(t.url("EmployeeCollection"))
        .bearer_auth(v["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.text().await.unwrap(), "Access token expired");
}
