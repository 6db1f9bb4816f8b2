//! Admin sign-in through OpenID Connect, against a minimal in-test provider (discovery, JWKS,
//! authorize with PKCE, token endpoint issuing ES256 ID tokens).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use c4c_scim_bridge::auth::settings::OidcConfig;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use sha2::{Digest, Sha256};

use crate::harness::{Backend, TestApp, TestDb};

const CLIENT_ID: &str = "bridge-admin";
const CLIENT_SECRET: &str = "provider-client-secret";
const REDIRECT: &str = "http://bridge.test/admin/oidc/callback";

struct Grant {
    nonce: String,
    challenge: String,
}

struct Provider {
    issuer: String,
    key: EncodingKey,
    /// Signs with this one instead when set (a forged ID token).
    forger: Mutex<Option<EncodingKey>>,
    jwk: serde_json::Value,
    grants: Mutex<HashMap<String, Grant>>,
    /// The claims the next signed-in user gets.
    user: Mutex<serde_json::Value>,
}

fn p256() -> (EncodingKey, serde_json::Value) {
    let rng = SystemRandom::new();
    let der = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref();
    (
        EncodingKey::from_ec_der(der.as_ref()),
        serde_json::json!({
            "kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig", "alg": "ES256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        }),
    )
}

async fn start_provider() -> Arc<Provider> {
    use axum::extract::{Form, Query, State};
    use axum::http::HeaderMap;
    use axum::response::{IntoResponse, Redirect};
    use axum::routing::{get, post};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let (key, jwk) = p256();
    let provider = Arc::new(Provider {
        issuer,
        key,
        forger: Mutex::new(None),
        jwk,
        grants: Mutex::new(HashMap::new()),
        user: Mutex::new(serde_json::Value::Null),
    });

    async fn discovery(State(p): State<Arc<Provider>>) -> axum::Json<serde_json::Value> {
        axum::Json(serde_json::json!({
            "issuer": p.issuer,
            "authorization_endpoint": format!("{}/authorize", p.issuer),
            "token_endpoint": format!("{}/token", p.issuer),
            "jwks_uri": format!("{}/jwks", p.issuer),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        }))
    }
    async fn jwks(State(p): State<Arc<Provider>>) -> axum::Json<serde_json::Value> {
        axum::Json(serde_json::json!({ "keys": [p.jwk] }))
    }
    async fn authorize(
        State(p): State<Arc<Provider>>,
        Query(query): Query<HashMap<String, String>>,
    ) -> axum::response::Response {
        assert_eq!(query["client_id"], CLIENT_ID);
        assert_eq!(query["response_type"], "code");
        assert_eq!(query["code_challenge_method"], "S256");
        assert!(query["scope"].split(' ').any(|scope| scope == "openid"));
        let code = uuid::Uuid::new_v4().simple().to_string();
        p.grants.lock().unwrap().insert(
            code.clone(),
            Grant {
                nonce: query["nonce"].clone(),
                challenge: query["code_challenge"].clone(),
            },
        );
        let mut target = url::Url::parse(&query["redirect_uri"]).unwrap();
        target
            .query_pairs_mut()
            .append_pair("code", &code)
            .append_pair("state", &query["state"]);
        Redirect::to(target.as_str()).into_response()
    }
    async fn token(
        State(p): State<Arc<Provider>>,
        headers: HeaderMap,
        Form(form): Form<HashMap<String, String>>,
    ) -> axum::response::Response {
        use axum::http::StatusCode;
        let basic = headers["authorization"].to_str().unwrap();
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
        );
        if basic != expected {
            return (
                StatusCode::UNAUTHORIZED,
                axum::Json(serde_json::json!({"error": "invalid_client"})),
            )
                .into_response();
        }
        let Some(grant) = p.grants.lock().unwrap().remove(&form["code"]) else {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(serde_json::json!({"error": "invalid_grant"})),
            )
                .into_response();
        };
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(form["code_verifier"].as_bytes()));
        if challenge != grant.challenge {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(serde_json::json!({"error": "invalid_grant"})),
            )
                .into_response();
        }
        let now = jsonwebtoken::get_current_timestamp();
        let mut claims = serde_json::json!({
            "iss": p.issuer, "aud": CLIENT_ID, "iat": now, "exp": now + 300,
            "nonce": grant.nonce,
        });
        for (key, value) in p.user.lock().unwrap().as_object().unwrap() {
            claims[key] = value.clone();
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("k1".to_owned());
        let forger = p.forger.lock().unwrap().clone();
        let id_token =
            jsonwebtoken::encode(&header, &claims, forger.as_ref().unwrap_or(&p.key)).unwrap();
        axum::Json(serde_json::json!({
            "access_token": "provider-access-token", "token_type": "Bearer",
            "expires_in": 300, "id_token": id_token,
        }))
        .into_response()
    }

    let app = axum::Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .with_state(provider.clone());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    provider
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Runs the browser's part of a sign-in; returns the bridge's answer to the callback.
async fn sign_in(
    app: &TestApp,
    tamper_state: bool,
    keep_pending_cookie: bool,
) -> reqwest::Response {
    let browser = no_redirects();
    let start = browser
        .get(app.url("/admin/oidc/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 303);
    let pending = start.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        pending.contains("HttpOnly") && pending.contains("Path=/admin/oidc"),
        "{pending}"
    );
    let pending = pending.split(';').next().unwrap().to_owned();
    let to_provider = start.headers()["location"].to_str().unwrap().to_owned();
    let back = browser.get(&to_provider).send().await.unwrap();
    assert_eq!(back.status(), 303);
    let back = url::Url::parse(back.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(back.path(), "/admin/oidc/callback");
    let mut query = back.query().unwrap().to_owned();
    if tamper_state {
        query = query.replace("state=", "state=x");
    }
    let mut callback = browser.get(app.url(&format!("/admin/oidc/callback?{query}")));
    if keep_pending_cookie {
        callback = callback.header("cookie", pending);
    }
    callback.send().await.unwrap()
}

async fn session_of(app: &TestApp, callback: &reqwest::Response) -> serde_json::Value {
    let cookie = callback
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap())
        .find(|value| value.starts_with("c4csb_admin="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    app.client
        .get(app.url("/admin/api/session"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn oidc_sign_in_is_limited_to_the_configured_groups() {
    let provider = start_provider().await;
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let issuer = provider.issuer.clone();
    let app = TestApp::spawn_with(db, move |config| {
        config.auth.admin.cookie_secure = false;
        config.auth.admin.oidc = Some(OidcConfig {
            issuer_url: issuer,
            client_id: CLIENT_ID.to_owned(),
            client_secret: Some(CLIENT_SECRET.into()),
            client_secret_file: None,
            redirect_url: REDIRECT.to_owned(),
            scopes: vec!["profile".to_owned()],
            role_claim: "groups".to_owned(),
            operator_values: vec!["scim-operators".to_owned()],
            viewer_values: vec!["scim-viewers".to_owned()],
            username_claim: "preferred_username".to_owned(),
        });
    })
    .await;
    let form = app
        .client
        .get(app.url("/admin/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(form.contains("/admin/oidc/login"), "{form}");

    *provider.user.lock().unwrap() = serde_json::json!({
        "sub": "u-1", "preferred_username": "olga@contoso.com", "groups": ["sales", "scim-operators"]
    });
    let callback = sign_in(&app, false, true).await;
    assert_eq!(callback.status(), 303);
    assert_eq!(callback.headers()["location"], "/admin");
    let session = session_of(&app, &callback).await;
    assert_eq!(session["user"], "olga@contoso.com");
    assert_eq!(session["role"], "operator");

    *provider.user.lock().unwrap() = serde_json::json!({
        "sub": "u-2", "groups": "scim-viewers"
    });
    let callback = sign_in(&app, false, true).await;
    assert_eq!(callback.status(), 303);
    let session = session_of(&app, &callback).await;
    assert_eq!(session["user"], "u-2", "falls back to sub");
    assert_eq!(session["role"], "viewer");

    // Not in an allowed group, or no group claim at all: no session.
    for user in [
        serde_json::json!({"sub": "u-3", "groups": ["sales"]}),
        serde_json::json!({"sub": "u-4"}),
    ] {
        *provider.user.lock().unwrap() = user;
        let refused = sign_in(&app, false, true).await;
        assert_eq!(refused.status(), 403);
        assert!(
            refused
                .headers()
                .get_all("set-cookie")
                .iter()
                .all(|value| !value.to_str().unwrap().starts_with("c4csb_admin="))
        );
    }

    // A wrong state, or a callback this browser did not start, is refused.
    *provider.user.lock().unwrap() =
        serde_json::json!({"sub": "u-1", "groups": ["scim-operators"]});
    assert_eq!(sign_in(&app, true, true).await.status(), 400);
    assert_eq!(sign_in(&app, false, false).await.status(), 400);

    // An ID token signed by another key is refused.
    *provider.forger.lock().unwrap() = Some(p256().0);
    assert_eq!(sign_in(&app, false, true).await.status(), 401);
}
