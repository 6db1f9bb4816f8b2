//! OAuth 2.0 client credentials, the bridge's JWTs and JWKS, and JWTs from an external issuer
//! checked against an in-test JWKS server.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use c4c_scim_bridge::auth::jwt::{KeyRing, rotate};
use c4c_scim_bridge::auth::oauth::create_client;
use c4c_scim_bridge::auth::settings::{ExternalIssuerConfig, OAuthConfig};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
};
use secrecy::ExposeSecret;

use crate::harness::{Backend, TestApp, TestDb};
use crate::on_both_backends;

async fn scim_status(app: &TestApp, token: &str) -> (u16, String) {
    let response = app
        .client
        .get(app.url("/scim/v2/ServiceProviderConfig"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn token_request(
    app: &TestApp,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = app.client.post(app.url("/oauth/token")).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    request.send().await.unwrap()
}

on_both_backends!(
    client_credentials_issue_jwts_the_scim_api_accepts,
    |backend: Backend| async move {
        let Some(app) = TestApp::spawn(backend).await else {
            return;
        };
        let client = create_client(&app.store, "entra-prod").await.unwrap();
        let id = client.row.client_id.clone();
        let secret = client.secret.expose_secret().to_owned();
        assert!(
            !app.store
                .get_oauth_client(&id)
                .await
                .unwrap()
                .unwrap()
                .secret_hash
                .contains(&secret),
            "only a hash is stored"
        );

        // client_secret_basic
        let response = token_request(
            &app,
            Some((&id, &secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 900);
        let access = body["access_token"].as_str().unwrap().to_owned();
        let header = jsonwebtoken::decode_header(&access).unwrap();
        assert_eq!(header.alg, Algorithm::ES256);
        assert_eq!(scim_status(&app, &access).await.0, 200);

        // The JWKS publishes the key that signed it, and nothing private.
        let jwks: serde_json::Value = app
            .client
            .get(app.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let keys = jwks["keys"].as_array().unwrap();
        assert!(
            keys.iter()
                .any(|key| key["kid"] == header.kid.clone().unwrap().as_str())
        );
        assert!(keys.iter().all(|key| key.get("d").is_none()));

        // client_secret_post
        let response = token_request(
            &app,
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
                ("scope", "scim"),
            ],
        )
        .await;
        assert_eq!(response.status(), 200);

        // Refusals, as RFC 6749 §5.2 words them.
        let wrong = token_request(
            &app,
            Some((&id, "wrong")),
            &[("grant_type", "client_credentials")],
        )
        .await;
        assert_eq!(wrong.status(), 401);
        assert!(wrong.headers().contains_key("www-authenticate"));
        let body: serde_json::Value = wrong.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client");
        let grant = token_request(&app, Some((&id, &secret)), &[("grant_type", "password")]).await;
        assert_eq!(grant.status(), 400);
        assert_eq!(
            grant.json::<serde_json::Value>().await.unwrap()["error"],
            "unsupported_grant_type"
        );
        let both = token_request(
            &app,
            Some((&id, &secret)),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
            ],
        )
        .await;
        assert_eq!(both.status(), 400);
        let scope = token_request(
            &app,
            Some((&id, &secret)),
            &[("grant_type", "client_credentials"), ("scope", "admin")],
        )
        .await;
        assert_eq!(
            scope.json::<serde_json::Value>().await.unwrap()["error"],
            "invalid_scope"
        );

        // A tampered token is refused; a revoked client's tokens stop at once.
        let mut tampered = access.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(scim_status(&app, &tampered).await.0, 401);
        assert_eq!(
            app.store
                .revoke_oauth_client("entra-prod", 1)
                .await
                .unwrap(),
            1
        );
        assert_eq!(scim_status(&app, &access).await.0, 401);
        let after = token_request(
            &app,
            Some((&id, &secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
        assert_eq!(after.status(), 401);
    }
);

#[tokio::test]
async fn expired_bridge_token_is_refused() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let app = TestApp::spawn_with(db, |config| {
        config.auth.oauth.token_ttl_secs = 1;
        config.auth.oauth.clock_skew_secs = 0;
    })
    .await;
    let client = create_client(&app.store, "okta").await.unwrap();
    let response = token_request(
        &app,
        Some((&client.row.client_id, client.secret.expose_secret())),
        &[("grant_type", "client_credentials")],
    )
    .await;
    let access = response.json::<serde_json::Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(scim_status(&app, &access).await.0, 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, body) = scim_status(&app, &access).await;
    assert_eq!(status, 401);
    assert!(body.contains("expired"), "{body}");
}

#[tokio::test]
async fn rotated_keys_keep_verifying_until_retired() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let store = db.store().await;
    let config = OAuthConfig::default();
    let client = create_client(&store, "entra").await.unwrap();
    let id = client.row.client_id.clone();
    let first_ring = KeyRing::new(store.clone(), &config);
    let old = c4c_scim_bridge::auth::jwt::issue(&first_ring, &config, &id)
        .await
        .unwrap();
    let new_kid = rotate(&store, &config, Duration::from_secs(3600))
        .await
        .unwrap();

    // Another replica (or a restart) signs with the new key and still verifies the old token.
    let ring = KeyRing::new(store.clone(), &config);
    let new = c4c_scim_bridge::auth::jwt::issue(&ring, &config, &id)
        .await
        .unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(&new).unwrap().kid.unwrap(),
        new_kid
    );
    assert_ne!(
        jsonwebtoken::decode_header(&old).unwrap().kid.unwrap(),
        new_kid
    );
    assert_eq!(
        c4c_scim_bridge::auth::jwt::verify(&ring, &config, &old)
            .await
            .unwrap(),
        id
    );
    assert_eq!(
        c4c_scim_bridge::auth::jwt::verify(&ring, &config, &new)
            .await
            .unwrap(),
        id
    );
    let jwks = ring.jwks().await.unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);

    // Rotating with no grace retires both earlier keys: their tokens stop verifying.
    rotate(&store, &config, Duration::ZERO).await.unwrap();
    let ring = KeyRing::new(store.clone(), &config);
    assert!(
        c4c_scim_bridge::auth::jwt::verify(&ring, &config, &old)
            .await
            .is_err()
    );
    assert!(
        c4c_scim_bridge::auth::jwt::verify(&ring, &config, &new)
            .await
            .is_err()
    );
    assert_eq!(
        ring.jwks().await.unwrap()["keys"].as_array().unwrap().len(),
        1
    );
}

/// A key of the in-test identity provider.
struct IdpKey {
    kid: String,
    encoding: EncodingKey,
    jwk: serde_json::Value,
    /// The public point, as an attacker would find it in the JWKS.
    public_point: Vec<u8>,
}

fn idp_key(kid: &str, p384: bool) -> IdpKey {
    let (algorithm, crv, half) = if p384 {
        (&ECDSA_P384_SHA384_FIXED_SIGNING, "P-384", 48)
    } else {
        (&ECDSA_P256_SHA256_FIXED_SIGNING, "P-256", 32)
    };
    let rng = SystemRandom::new();
    let der = EcdsaKeyPair::generate_pkcs8(algorithm, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(algorithm, der.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref().to_vec();
    IdpKey {
        kid: kid.to_owned(),
        encoding: EncodingKey::from_ec_der(der.as_ref()),
        jwk: serde_json::json!({
            "kty": "EC", "crv": crv, "kid": kid, "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(&point[1..=half]),
            "y": URL_SAFE_NO_PAD.encode(&point[half + 1..]),
        }),
        public_point: point,
    }
}

/// A JWKS endpoint on an ephemeral port serving `keys` (changeable) and counting fetches.
struct JwksServer {
    url: String,
    keys: Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
    fetches: Arc<AtomicUsize>,
}

async fn jwks_server(keys: Vec<serde_json::Value>) -> JwksServer {
    let keys = Arc::new(std::sync::Mutex::new(keys));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (served, counter) = (keys.clone(), fetches.clone());
    let app = axum::Router::new().route(
        "/keys",
        axum::routing::get(move || {
            let served = served.clone();
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                axum::Json(serde_json::json!({ "keys": served.lock().unwrap().clone() }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    JwksServer {
        url: format!("http://{addr}/keys"),
        keys,
        fetches,
    }
}

const ISSUER: &str = "https://login.example.test/tenant/v2.0";
const AUDIENCE: &str = "api://c4c-scim-bridge";

fn claims(iss: &str, aud: &str, exp_offset: i64, nbf_offset: i64) -> serde_json::Value {
    let now = i64::try_from(jsonwebtoken::get_current_timestamp()).unwrap();
    serde_json::json!({
        "iss": iss, "aud": aud, "sub": "entra-provisioning",
        "iat": now, "nbf": now + nbf_offset, "exp": now + exp_offset,
    })
}

fn sign(key: &IdpKey, algorithm: Algorithm, claims: &serde_json::Value) -> String {
    let mut header = Header::new(algorithm);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
}

#[tokio::test]
async fn external_issuer_tokens_are_fully_checked() {
    let good = idp_key("key-1", false);
    let p384 = idp_key("key-384", true);
    let server = jwks_server(vec![good.jwk.clone(), p384.jwk.clone()]).await;
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let jwks_url = server.url.clone();
    let app = TestApp::spawn_with(db, move |config| {
        config.auth.external.push(ExternalIssuerConfig {
            name: "entra-prod".to_owned(),
            issuer: ISSUER.to_owned(),
            audience: AUDIENCE.to_owned(),
            jwks_url,
            algorithms: vec![Algorithm::ES256],
            clock_skew_secs: 60,
            jwks_refresh_secs: 3600,
            unknown_kid_refetch_secs: 0,
        });
    })
    .await;

    let valid = sign(&good, Algorithm::ES256, &claims(ISSUER, AUDIENCE, 600, 0));
    assert_eq!(scim_status(&app, &valid).await.0, 200);
    assert_eq!(scim_status(&app, &valid).await.0, 200);
    assert_eq!(
        server.fetches.load(Ordering::SeqCst),
        1,
        "the JWKS is cached"
    );
    // Within the clock skew: expired 30 s ago, valid from 30 s on.
    let skewed = sign(&good, Algorithm::ES256, &claims(ISSUER, AUDIENCE, -30, 30));
    assert_eq!(scim_status(&app, &skewed).await.0, 200);

    let stranger = idp_key("key-1", false);
    let mut none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT","kid":"key-1"}"#);
    none_header.push('.');
    none_header
        .push_str(&URL_SAFE_NO_PAD.encode(claims(ISSUER, AUDIENCE, 600, 0).to_string().as_bytes()));
    let alg_none = format!("{none_header}.");
    // HS256 keyed with public material an attacker can read: the point, or the JWK's x.
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = Some("key-1".to_owned());
    let confusion_point = jsonwebtoken::encode(
        &hs_header,
        &claims(ISSUER, AUDIENCE, 600, 0),
        &EncodingKey::from_secret(&good.public_point),
    )
    .unwrap();
    let confusion_jwk = jsonwebtoken::encode(
        &hs_header,
        &claims(ISSUER, AUDIENCE, 600, 0),
        &EncodingKey::from_secret(good.jwk.to_string().as_bytes()),
    )
    .unwrap();
    let refused = [
        (
            "wrong issuer",
            sign(
                &good,
                Algorithm::ES256,
                &claims("https://evil.test", AUDIENCE, 600, 0),
            ),
        ),
        (
            "wrong audience",
            sign(
                &good,
                Algorithm::ES256,
                &claims(ISSUER, "api://other", 600, 0),
            ),
        ),
        (
            "wrong signature",
            sign(
                &stranger,
                Algorithm::ES256,
                &claims(ISSUER, AUDIENCE, 600, 0),
            ),
        ),
        ("alg none", alg_none),
        ("HS256 over the public point", confusion_point),
        ("HS256 over the JWK", confusion_jwk),
        (
            "algorithm not allowed (ES384)",
            sign(&p384, Algorithm::ES384, &claims(ISSUER, AUDIENCE, 600, 0)),
        ),
        (
            "expired",
            sign(&good, Algorithm::ES256, &claims(ISSUER, AUDIENCE, -120, 0)),
        ),
        (
            "not yet valid",
            sign(
                &good,
                Algorithm::ES256,
                &claims(ISSUER, AUDIENCE, 3600, 600),
            ),
        ),
        (
            "unknown kid",
            sign(
                &idp_key("key-9", false),
                Algorithm::ES256,
                &claims(ISSUER, AUDIENCE, 600, 0),
            ),
        ),
    ];
    for (case, token) in &refused {
        let (status, body) = scim_status(&app, token).await;
        assert_eq!(status, 401, "{case}: {body}");
    }
    let (_, body) = scim_status(&app, &refused[7].1).await;
    assert!(body.contains("expired"), "{body}");

    // The issuer rotates: a token with a new kid makes the bridge fetch the JWKS again.
    let rotated = idp_key("key-2", false);
    server.keys.lock().unwrap().push(rotated.jwk.clone());
    let fetches_before = server.fetches.load(Ordering::SeqCst);
    let token = sign(
        &rotated,
        Algorithm::ES256,
        &claims(ISSUER, AUDIENCE, 600, 0),
    );
    assert_eq!(scim_status(&app, &token).await.0, 200);
    assert!(server.fetches.load(Ordering::SeqCst) > fetches_before);
}

#[test]
fn symmetric_algorithms_are_refused_for_external_issuers() {
    let config = ExternalIssuerConfig {
        name: "x".to_owned(),
        issuer: ISSUER.to_owned(),
        audience: AUDIENCE.to_owned(),
        jwks_url: "https://idp.test/keys".to_owned(),
        algorithms: vec![Algorithm::HS256],
        clock_skew_secs: 60,
        jwks_refresh_secs: 3600,
        unknown_kid_refetch_secs: 5,
    };
    assert!(config.validate().unwrap_err().contains("symmetric"));
}

/// A fixed RSA key (tests only; ring cannot generate RSA keys): PKCS#8 PEM, its public PEM and
/// its modulus as base64url.
const RSA_KEY_PEM: &str = include_str!("rsa_test_key.pem");
const RSA_PUBLIC_PEM: &str = include_str!("rsa_test_key.pub.pem");
const RSA_MODULUS: &str = include_str!("rsa_test_key.n");

#[tokio::test]
async fn external_rs256_tokens_like_entra_are_accepted_and_confusion_is_refused() {
    let jwk = serde_json::json!({
        "kty": "RSA", "kid": "entra-key", "use": "sig", "n": RSA_MODULUS.trim(), "e": "AQAB",
    });
    let server = jwks_server(vec![jwk]).await;
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let jwks_url = server.url.clone();
    let app = TestApp::spawn_with(db, move |config| {
        config.auth.external.push(ExternalIssuerConfig {
            name: "entra-prod".to_owned(),
            issuer: ISSUER.to_owned(),
            audience: AUDIENCE.to_owned(),
            jwks_url,
            algorithms: vec![Algorithm::RS256],
            clock_skew_secs: 60,
            jwks_refresh_secs: 3600,
            unknown_kid_refetch_secs: 5,
        });
    })
    .await;
    let key = EncodingKey::from_rsa_pem(RSA_KEY_PEM.as_bytes()).unwrap();
    let sign_with = |algorithm: Algorithm, key: &EncodingKey| {
        let mut header = Header::new(algorithm);
        header.kid = Some("entra-key".to_owned());
        jsonwebtoken::encode(&header, &claims(ISSUER, AUDIENCE, 600, 0), key).unwrap()
    };
    assert_eq!(
        scim_status(&app, &sign_with(Algorithm::RS256, &key))
            .await
            .0,
        200
    );
    // Same key, an algorithm not configured.
    assert_eq!(
        scim_status(&app, &sign_with(Algorithm::RS384, &key))
            .await
            .0,
        401
    );
    assert_eq!(
        scim_status(&app, &sign_with(Algorithm::PS256, &key))
            .await
            .0,
        401
    );
    // The classic confusion: HS256 keyed with the published public key.
    let confusion = sign_with(
        Algorithm::HS256,
        &EncodingKey::from_secret(RSA_PUBLIC_PEM.as_bytes()),
    );
    assert_eq!(scim_status(&app, &confusion).await.0, 401);
}

#[tokio::test]
async fn stored_signing_keys_are_encrypted_with_the_key_encryption_key() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let store = db.store().await;
    let dir = tempfile::tempdir().unwrap();
    let kek_file = dir.path().join("kek");
    std::fs::write(
        &kek_file,
        format!(
            "{}\n",
            base64::engine::general_purpose::STANDARD.encode([7_u8; 32])
        ),
    )
    .unwrap();
    // A key stored before the key-encryption key was configured stays readable.
    let plain_config = OAuthConfig::default();
    let old_kid = rotate(&store, &plain_config, Duration::from_secs(3600))
        .await
        .unwrap();
    let config = OAuthConfig {
        key_encryption_key_file: Some(kek_file.clone()),
        ..OAuthConfig::default()
    };
    let new_kid = rotate(&store, &config, Duration::from_secs(3600))
        .await
        .unwrap();
    let live = store.live_signing_keys(0).await.unwrap();
    let new_row = live.iter().find(|row| row.kid == new_kid).unwrap();
    assert!(new_row.private_pkcs8.starts_with("enc:v1:"), "{new_row:?}");
    let old_row = live.iter().find(|row| row.kid == old_kid).unwrap();
    assert!(!old_row.private_pkcs8.starts_with("enc:v1:"));

    let client = create_client(&store, "entra").await.unwrap();
    let ring = KeyRing::new(store.clone(), &config);
    let token = c4c_scim_bridge::auth::jwt::issue(&ring, &config, &client.row.client_id)
        .await
        .unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(&token).unwrap().kid.unwrap(),
        new_kid
    );
    assert!(
        c4c_scim_bridge::auth::jwt::verify(&ring, &config, &token)
            .await
            .is_ok()
    );
    // Without the key-encryption key, or with another one, the stored key is unusable.
    let without = KeyRing::new(store.clone(), &plain_config);
    assert!(
        without
            .jwks()
            .await
            .unwrap_err()
            .to_string()
            .contains("key_encryption_key_file")
    );
    std::fs::write(
        &kek_file,
        base64::engine::general_purpose::STANDARD.encode([8_u8; 32]),
    )
    .unwrap();
    let wrong = KeyRing::new(store.clone(), &config);
    assert!(
        wrong
            .jwks()
            .await
            .unwrap_err()
            .to_string()
            .contains("cannot be decrypted")
    );
    std::fs::write(&kek_file, "c2hvcnQ=").unwrap();
    let mut full = c4c_scim_bridge::config::Config::default();
    full.auth.oauth.key_encryption_key_file = Some(kek_file);
    assert!(
        full.validate()
            .unwrap_err()
            .to_string()
            .contains("32 bytes")
    );

    // A bridge started without the key-encryption key answers 503 (its fault, not the client's)
    // and says nothing about its keys to the client.
    let app = TestApp::spawn_with(db, |_| {}).await;
    let (status, body) = scim_status(&app, &token).await;
    assert_eq!(status, 503, "{body}");
    assert!(!body.contains("key_encryption"), "{body}");
}
