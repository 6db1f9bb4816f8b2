//! Every auth mode against the simulator: Basic, X.509 (PEM and PKCS#12), OAuth client
//! credentials, SAML 2.0 bearer (signed by us, or supplied).

use c4c_scim_bridge::c4c::{C4cClient, C4cError, EmployeeQuery, ErrorKind};
use c4c_scim_bridge::sim::tls::TestPki;
use c4c_scim_bridge::sim::{Access, DEFAULT_USER, Fault, FaultScope, SimConfig, TechnicalUser};
use secrecy::ExposeSecret;

use super::support::*;

#[tokio::test]
async fn basic_auth_reads_and_writes() {
    let sim = start(SimConfig {
        generated_employees: 3,
        ..Default::default()
    })
    .await;
    let client = basic_client(&sim);
    assert_eq!(
        client
            .query_employees(&EmployeeQuery::new())
            .await
            .unwrap()
            .len(),
        3
    );
    let created = client.create_employee(&new_employee(1)).await.unwrap();
    assert!(sim.employee(&created.object_id).is_some());
}

#[tokio::test]
async fn wrong_password_is_unauthorized_and_not_retried() {
    let sim = start(SimConfig::default()).await;
    let auth = format!("mode = \"basic\"\nuser = {DEFAULT_USER:?}\npassword = \"wrong\"");
    let client = C4cClient::new(config(&sim.service_url(), &auth, "")).unwrap();
    let err = client
        .get_employee("00163E0A1B2C1EDB9F8E7D6C5B4A3928")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    assert_eq!(sim.counters().unauthorized, 1);
}

fn write(dir: &tempfile::TempDir, name: &str, content: &[u8]) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    path.display().to_string()
}

async fn tls_sim(pki: &TestPki) -> c4c_scim_bridge::sim::SimHandle {
    start(SimConfig {
        tls: Some(pki.tls_settings(true)),
        generated_employees: 2,
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn x509_client_certificate_from_pem_files() {
    let pki = TestPki::new().unwrap();
    let sim = tls_sim(&pki).await;
    assert!(sim.service_url().starts_with("https://"));
    let dir = tempfile::tempdir().unwrap();
    let cert = pki.client_cert(DEFAULT_USER).unwrap();
    let ca = write(&dir, "ca.pem", pki.ca_cert_pem().as_bytes());
    let cert_file = write(&dir, "cert.pem", cert.cert_pem.as_bytes());
    let key_file = write(&dir, "key.pem", cert.key_pem.expose_secret().as_bytes());
    let auth = format!("mode = \"x509\"\ncert_file = {cert_file:?}\nkey_file = {key_file:?}");
    let client = C4cClient::new(config(
        &sim.service_url(),
        &auth,
        &format!("ca_cert_file = {ca:?}"),
    ))
    .unwrap();
    assert_eq!(
        client
            .query_employees(&EmployeeQuery::new())
            .await
            .unwrap()
            .len(),
        2
    );
    let created = client.create_employee(&new_employee(7)).await.unwrap();
    assert!(sim.employee(&created.object_id).is_some());
    assert_eq!(sim.counters().unauthorized, 0);
}

#[tokio::test]
async fn x509_client_certificate_from_pkcs12() {
    let pki = TestPki::new().unwrap();
    let sim = tls_sim(&pki).await;
    let dir = tempfile::tempdir().unwrap();
    let cert = pki.client_cert(DEFAULT_USER).unwrap();
    let cert_der = rustls_pemfile::certs(&mut cert.cert_pem.as_bytes())
        .next()
        .unwrap()
        .unwrap();
    let key_der = rustls_pemfile::private_key(&mut cert.key_pem.expose_secret().as_bytes())
        .unwrap()
        .unwrap();
    let chain = p12_keystore::PrivateKeyChain::new(
        vec![1u8; 20],
        p12_keystore::PrivateKey::from_der(key_der.secret_der()).unwrap(),
        [p12_keystore::Certificate::from_der(cert_der.as_ref()).unwrap()],
    );
    let mut store = p12_keystore::KeyStore::new();
    store.add_entry("tech", p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
    let p12 = store.writer("p12-Secret").write().unwrap();
    let p12_file = write(&dir, "tech.p12", &p12);
    let ca = write(&dir, "ca.pem", pki.ca_cert_pem().as_bytes());

    let auth = format!("mode = \"x509\"\np12_file = {p12_file:?}\np12_password = \"p12-Secret\"");
    let client = C4cClient::new(config(
        &sim.service_url(),
        &auth,
        &format!("ca_cert_file = {ca:?}"),
    ))
    .unwrap();
    assert_eq!(
        client
            .query_employees(&EmployeeQuery::new())
            .await
            .unwrap()
            .len(),
        2
    );

    let auth = format!("mode = \"x509\"\np12_file = {p12_file:?}\np12_password = \"wrong\"");
    let err = C4cClient::new(config(
        &sim.service_url(),
        &auth,
        &format!("ca_cert_file = {ca:?}"),
    ))
    .unwrap_err();
    assert!(err.to_string().contains("c4c.auth.p12_file"), "{err}");
}

#[tokio::test]
async fn server_certificate_from_an_unknown_ca_is_refused() {
    let pki = TestPki::new().unwrap();
    let sim = tls_sim(&pki).await;
    let client = basic_client(&sim);
    let err = client
        .query_employees(&EmployeeQuery::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport, "{err}");
}

#[tokio::test]
async fn oauth_client_credentials_token_is_cached() {
    let sim = start(SimConfig {
        generated_employees: 2,
        ..Default::default()
    })
    .await;
    let auth = format!(
        "mode = \"oauth_client_credentials\"\ntoken_url = {:?}\nclient_id = \"SCIM_BRIDGE_CLIENT\"\nclient_secret = \"Client-Secret-1\"",
        sim.token_url()
    );
    let client = C4cClient::new(config(&sim.service_url(), &auth, "")).unwrap();
    for n in 0..5 {
        client.query_employees(&EmployeeQuery::new()).await.unwrap();
        client
            .create_employee(&new_employee(100 + n))
            .await
            .unwrap();
    }
    assert_eq!(sim.counters().token_requests, 1, "{:?}", sim.counters());
    assert_eq!(sim.counters().unauthorized, 0);
}

#[tokio::test]
async fn a_failing_token_endpoint_is_retried() {
    let sim = start(SimConfig {
        generated_employees: 1,
        ..Default::default()
    })
    .await;
    let auth = format!(
        "mode = \"oauth_client_credentials\"\ntoken_url = {:?}\nclient_id = \"SCIM_BRIDGE_CLIENT\"\nclient_secret = \"Client-Secret-1\"",
        sim.token_url()
    );
    let client = C4cClient::new(config(&sim.service_url(), &auth, "")).unwrap();
    sim.faults()
        .fail_next(1, Fault::Status503, FaultScope::Token);
    assert_eq!(
        client
            .query_employees(&EmployeeQuery::new())
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(sim.counters().token_requests, 2);
}

#[tokio::test]
async fn oauth_wrong_secret_is_a_token_error() {
    let sim = start(SimConfig::default()).await;
    let auth = format!(
        "mode = \"oauth_client_credentials\"\ntoken_url = {:?}\nclient_id = \"SCIM_BRIDGE_CLIENT\"\nclient_secret = \"nope\"",
        sim.token_url()
    );
    let client = C4cClient::new(config(&sim.service_url(), &auth, "")).unwrap();
    match client
        .query_employees(&EmployeeQuery::new())
        .await
        .unwrap_err()
    {
        C4cError::TokenRequest { status, message } => {
            assert_eq!(status, 401);
            assert!(message.contains("invalid_client"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn expiring_tokens_are_refreshed_before_use() {
    let sim = start(SimConfig {
        token_lifetime: std::time::Duration::from_secs(1),
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let secret = write(&dir, "secret", b"Client-Secret-1\n");
    let auth = format!(
        "mode = \"oauth_client_credentials\"\ntoken_url = {:?}\nclient_id = \"SCIM_BRIDGE_CLIENT\"\nclient_secret_file = {secret:?}",
        sim.token_url()
    );
    let client = C4cClient::new(config(&sim.service_url(), &auth, "")).unwrap();
    client.query_employees(&EmployeeQuery::new()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    client.query_employees(&EmployeeQuery::new()).await.unwrap();
    // A token about to expire is replaced before it is sent: no 401 round trip.
    assert_eq!(sim.counters().unauthorized, 0);
    assert!(sim.counters().token_requests >= 2);
}

#[tokio::test]
async fn saml_bearer_with_an_assertion_we_sign() {
    let sim = start(SimConfig {
        generated_employees: 1,
        ..Default::default()
    })
    .await;
    let pki = TestPki::new().unwrap();
    let signer = pki.client_cert("SIM_IDP").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = write(
        &dir,
        "idp-key.pem",
        signer.key_pem.expose_secret().as_bytes(),
    );
    let cert = write(&dir, "idp-cert.pem", signer.cert_pem.as_bytes());
    let auth = format!(
        "mode = \"saml_bearer\"\ntoken_url = {:?}\nclient_id = \"SCIM_BRIDGE_CLIENT\"\nclient_secret = \"Client-Secret-1\"\nuser = {DEFAULT_USER:?}\nissuer = \"SIM_IDP\"\nsigning_key_file = {key:?}\nsigning_cert_file = {cert:?}",
        sim.token_url()
    );
    let client = C4cClient::new(config(&sim.service_url(), &auth, "")).unwrap();
    assert_eq!(
        client
            .query_employees(&EmployeeQuery::new())
            .await
            .unwrap()
            .len(),
        1
    );
    client.create_employee(&new_employee(3)).await.unwrap();
    assert_eq!(sim.counters().token_requests, 1);

    let auth = auth.replace("issuer = \"SIM_IDP\"", "issuer = \"UNKNOWN_IDP\"");
    let client = C4cClient::new(config(&sim.service_url(), &auth, "")).unwrap();
    match client
        .query_employees(&EmployeeQuery::new())
        .await
        .unwrap_err()
    {
        C4cError::TokenRequest {
            status: 400,
            message,
        } => assert!(message.contains("issuer"), "{message}"),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn saml_bearer_with_a_supplied_assertion_file() {
    let sim = start(SimConfig {
        generated_employees: 1,
        ..Default::default()
    })
    .await;
    let expires = (chrono::Utc::now() + chrono::Duration::minutes(10))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let assertion = format!(
        "<saml2:Assertion xmlns:saml2=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"_1\" Version=\"2.0\"><saml2:Issuer>SIM_IDP</saml2:Issuer><saml2:Subject><saml2:NameID>{DEFAULT_USER}</saml2:NameID></saml2:Subject><saml2:Conditions NotOnOrAfter=\"{expires}\"></saml2:Conditions></saml2:Assertion>"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, "assertion.xml", assertion.as_bytes());
    let auth = format!(
        "mode = \"saml_bearer\"\ntoken_url = {:?}\nclient_id = \"SCIM_BRIDGE_CLIENT\"\nclient_secret = \"Client-Secret-1\"\nassertion_file = {file:?}",
        sim.token_url()
    );
    let client = C4cClient::new(config(&sim.service_url(), &auth, "")).unwrap();
    assert_eq!(
        client
            .query_employees(&EmployeeQuery::new())
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn inconsistent_authorization_is_named() {
    let mut user = TechnicalUser::new("NOWOC", "Pw-1");
    user.access = Access::NoWorkCenterView;
    let sim = start(SimConfig {
        users: vec![user],
        ..Default::default()
    })
    .await;
    let auth = "mode = \"basic\"\nuser = \"NOWOC\"\npassword = \"Pw-1\"";
    let client = C4cClient::new(config(&sim.service_url(), auth, "")).unwrap();
    let err = client
        .query_employees(&EmployeeQuery::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InconsistentAuthorization, "{err}");
    assert!(
        err.to_string().contains("communication arrangement"),
        "{err}"
    );
}
