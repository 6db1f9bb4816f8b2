//! SCIM client authentication with bearer tokens.

use std::time::Duration;

use c4c_scim_bridge::auth::create_token;
use secrecy::ExposeSecret;

use crate::harness::{Backend, TestApp, TestDb, binary};
use crate::on_both_backends;

async fn get_status(app: &TestApp, token: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(app.url("/scim/v2/Users"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

on_both_backends!(
    valid_revoked_and_expired_tokens,
    |backend: Backend| async move {
        let Some(app) = TestApp::spawn(backend).await else {
            return;
        };
        let issued = create_token(&app.store, "entra-prod", None).await.unwrap();
        let token = issued.token.expose_secret().to_owned();

        let missing = get_status(&app, None).await;
        assert_eq!(missing.status(), 401);
        assert_eq!(
            missing.headers()["www-authenticate"],
            "Bearer realm=\"c4c-scim-bridge\""
        );
        assert_eq!(missing.headers()["content-type"], "application/scim+json");
        let body: serde_json::Value = missing.json().await.unwrap();
        assert_eq!(body["status"], "401");
        assert_eq!(
            body["schemas"][0],
            "urn:ietf:params:scim:api:messages:2.0:Error"
        );

        // Authenticated: past the gate (no [c4c] configured here, so /Users answers 503).
        let ok = get_status(&app, Some(&token)).await;
        assert_eq!(ok.status(), 503);
        let row = app.store.get_token(&issued.row.id).await.unwrap().unwrap();
        assert!(row.last_used_at.is_some());
        assert_ne!(row.secret_hash, token, "only a hash is stored");
        assert!(!row.secret_hash.contains(&token[token.len() - 20..]));

        // A changed secret, a changed id, and garbage are all refused alike.
        let mut tampered = token.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        for wrong in [
            tampered.as_str(),
            "c4csb_0000000000000000_x",
            "nonsense",
            "",
        ] {
            assert_eq!(get_status(&app, Some(wrong)).await.status(), 401, "{wrong}");
        }

        // Rotation: a second token works beside the first; revoking one leaves the other.
        let second = create_token(&app.store, "entra-next", None).await.unwrap();
        assert_eq!(app.store.revoke_token("entra-prod", 1).await.unwrap(), 1);
        assert_eq!(get_status(&app, Some(&token)).await.status(), 401);
        assert_eq!(
            get_status(&app, Some(second.token.expose_secret()))
                .await
                .status(),
            503
        );

        let expired = create_token(&app.store, "short", Some(Duration::ZERO))
            .await
            .unwrap();
        let response = get_status(&app, Some(expired.token.expose_secret())).await;
        assert_eq!(response.status(), 401);
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(body["detail"].as_str().unwrap().contains("expired"));
    }
);

#[tokio::test]
async fn repeated_failures_from_one_address_get_429() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let app = TestApp::spawn_with(db, |config| config.auth.failure_limit = 3).await;
    let issued = create_token(&app.store, "okta", None).await.unwrap();
    for _ in 0..3 {
        assert_eq!(get_status(&app, Some("c4csb_guess")).await.status(), 401);
    }
    // Blocked now, even with a good token, until the window ends.
    let blocked = get_status(&app, Some(issued.token.expose_secret())).await;
    assert_eq!(blocked.status(), 429);
    let retry_after: u64 = blocked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after));
}

#[tokio::test]
async fn duplicate_live_name_is_refused() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let store = db.store().await;
    create_token(&store, "okta", None).await.unwrap();
    assert!(create_token(&store, "okta", None).await.is_err());
    assert!(create_token(&store, "  ", None).await.is_err());
}

#[tokio::test]
async fn token_cli_create_list_revoke() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let run = |args: &[&str]| {
        let output = std::process::Command::new(binary())
            .args(args)
            .env("C4C_SCIM_BRIDGE__STORE__URL", &db.url)
            .env("C4C_SCIM_BRIDGE__LOG__LEVEL", "warn")
            .output()
            .unwrap();
        (
            output.status.code().unwrap(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, token, err) = run(&[
        "token",
        "create",
        "--name",
        "entra-prod",
        "--expires",
        "365d",
    ]);
    assert_eq!(code, 0, "{err}");
    let token = token.trim().to_owned();
    assert!(token.starts_with("c4csb_"), "{token}");
    assert!(err.contains("shown only now"));

    let (code, list, _) = run(&["token", "list"]);
    assert_eq!(code, 0);
    assert!(
        list.contains("entra-prod") && list.contains("active"),
        "{list}"
    );
    assert!(!list.contains(&token[20..]), "list never shows a token");

    let store = db.store().await;
    let identity = c4c_scim_bridge::auth::verify_token(&store, &token.clone().into())
        .await
        .unwrap();
    assert_eq!(identity.name, "entra-prod");

    let (code, _, err) = run(&["token", "create", "--name", "x", "--expires", "soon"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = run(&["token", "revoke", "entra-prod"]);
    assert_eq!(code, 0);
    let (_, list, _) = run(&["token", "list"]);
    assert!(list.contains("revoked"), "{list}");
    let (code, _, err) = run(&["token", "revoke", "entra-prod"]);
    assert_eq!(code, 2);
    assert!(err.contains("no live token"), "{err}");
}
