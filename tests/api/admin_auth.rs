//! Admin authentication: local accounts, session cookies, CSRF on writes, roles; and the
//! per-client rate limit of the SCIM API.

use c4c_scim_bridge::auth::admin::{Role, add_user};
use c4c_scim_bridge::auth::create_token;
use secrecy::{ExposeSecret, SecretString};

use crate::harness::{Backend, TestApp, TestDb, binary};
use crate::on_both_backends;

const PASSWORD: &str = "correct horse battery staple";

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Signs in and returns the session cookie (`name=value`).
async fn login(app: &TestApp, user: &str, password: &str) -> reqwest::Response {
    no_redirects()
        .post(app.url("/admin/login"))
        .form(&[("username", user), ("password", password)])
        .send()
        .await
        .unwrap()
}

fn cookie_of(response: &reqwest::Response) -> String {
    let set_cookie = response.headers()["set-cookie"].to_str().unwrap();
    set_cookie.split(';').next().unwrap().to_owned()
}

async fn csrf_of(app: &TestApp, cookie: &str) -> String {
    let session: serde_json::Value = app
        .client
        .get(app.url("/admin/api/session"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    session["csrf_token"].as_str().unwrap().to_owned()
}

on_both_backends!(
    admin_login_session_csrf_and_roles,
    |backend: Backend| async move {
        let Some(db) = TestDb::new(backend).await else {
            return;
        };
        let app = TestApp::spawn_with(db, |config| config.auth.admin.cookie_secure = false).await;
        add_user(
            &app.store,
            "olga",
            Role::Operator,
            &SecretString::from(PASSWORD),
        )
        .await
        .unwrap();
        add_user(
            &app.store,
            "vic",
            Role::Viewer,
            &SecretString::from(PASSWORD),
        )
        .await
        .unwrap();
        let token = create_token(&app.store, "entra-prod", None).await.unwrap();

        // Not signed in: the API says 401, a browser is sent to the form.
        let anonymous = app
            .client
            .get(app.url("/admin/api/session"))
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status(), 401);
        let page = no_redirects()
            .get(app.url("/admin"))
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 303);
        assert_eq!(page.headers()["location"], "/admin/login");
        let form = app
            .client
            .get(app.url("/admin/login"))
            .send()
            .await
            .unwrap();
        assert_eq!(form.headers()["x-frame-options"], "DENY");
        assert!(form.text().await.unwrap().contains("name=\"password\""));

        // A SCIM token opens nothing under /admin.
        let scim = app
            .client
            .get(app.url("/admin/api/session"))
            .bearer_auth(token.token.expose_secret())
            .send()
            .await
            .unwrap();
        assert_eq!(scim.status(), 401);

        assert_eq!(login(&app, "olga", "wrong password!!").await.status(), 401);
        assert_eq!(login(&app, "nobody", PASSWORD).await.status(), 401);
        let cross_site = no_redirects()
            .post(app.url("/admin/login"))
            .header("origin", "https://evil.example")
            .form(&[("username", "olga"), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        assert_eq!(cross_site.status(), 403);

        let signed_in = login(&app, "olga", PASSWORD).await;
        assert_eq!(signed_in.status(), 303);
        let set_cookie = signed_in.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .to_owned();
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(set_cookie.contains(attribute), "{set_cookie}");
        }
        assert!(
            !set_cookie.contains("Secure"),
            "cookie_secure = false: {set_cookie}"
        );
        let cookie = cookie_of(&signed_in);
        let session_id = cookie.split_once('=').unwrap().1.to_owned();
        assert!(
            app.store
                .get_admin_session(&session_id)
                .await
                .unwrap()
                .is_none(),
            "the store keeps a hash, not the session id"
        );
        let csrf = csrf_of(&app, &cookie).await;
        assert!(csrf.len() >= 40);

        let revoke_url = app.url(&format!("/admin/api/tokens/{}/revoke", token.row.id));
        // Writes without the CSRF token, or with a wrong one, are refused and change nothing.
        let without = app
            .client
            .post(&revoke_url)
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(without.status(), 403);
        let wrong = app
            .client
            .post(&revoke_url)
            .header("cookie", &cookie)
            .header("x-csrf-token", "x".repeat(csrf.len()))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 403);
        let form_without = app
            .client
            .post(&revoke_url)
            .header("cookie", &cookie)
            .form(&[("other", "1")])
            .send()
            .await
            .unwrap();
        assert_eq!(form_without.status(), 403);
        let row = app.store.get_token(&token.row.id).await.unwrap().unwrap();
        assert!(row.revoked_at.is_none());

        // A viewer with a good CSRF token still may not write.
        let viewer_cookie = cookie_of(&login(&app, "vic", PASSWORD).await);
        let viewer_csrf = csrf_of(&app, &viewer_cookie).await;
        assert_ne!(viewer_csrf, csrf, "each session has its own CSRF token");
        let viewer = app
            .client
            .post(&revoke_url)
            .header("cookie", &viewer_cookie)
            .header("x-csrf-token", &viewer_csrf)
            .send()
            .await
            .unwrap();
        assert_eq!(viewer.status(), 403);
        // One session's CSRF token does not serve another's.
        let crossed = app
            .client
            .post(&revoke_url)
            .header("cookie", &cookie)
            .header("x-csrf-token", &viewer_csrf)
            .send()
            .await
            .unwrap();
        assert_eq!(crossed.status(), 403);
        // Viewers read.
        let list: serde_json::Value = app
            .client
            .get(app.url("/admin/api/tokens"))
            .header("cookie", &viewer_cookie)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(list["tokens"][0]["name"], "entra-prod");
        assert!(!list.to_string().contains(&row.secret_hash));

        // The operator, with the token, in the header or as a form field.
        let ok = app
            .client
            .post(&revoke_url)
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf)
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
        assert!(
            app.store
                .get_token(&token.row.id)
                .await
                .unwrap()
                .unwrap()
                .revoked_at
                .is_some()
        );

        let logout_without = no_redirects()
            .post(app.url("/admin/logout"))
            .header("cookie", &cookie)
            .form(&[("x", "y")])
            .send()
            .await
            .unwrap();
        assert_eq!(logout_without.status(), 403);
        let logout = no_redirects()
            .post(app.url("/admin/logout"))
            .header("cookie", &cookie)
            .form(&[("csrf_token", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(logout.status(), 303);
        let after = app
            .client
            .get(app.url("/admin/api/session"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(after.status(), 401);

        // A removed account's sessions end at once.
        c4c_scim_bridge::auth::admin::remove_user(&app.store, "vic")
            .await
            .unwrap();
        let gone = app
            .client
            .get(app.url("/admin/api/session"))
            .header("cookie", &viewer_cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(gone.status(), 401);
    }
);

#[tokio::test]
async fn secure_cookie_by_default_and_login_brute_force_gets_429() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let app = TestApp::spawn_with(db, |config| config.auth.failure_limit = 3).await;
    add_user(
        &app.store,
        "olga",
        Role::Operator,
        &SecretString::from(PASSWORD),
    )
    .await
    .unwrap();
    let signed_in = login(&app, "olga", PASSWORD).await;
    let set_cookie = signed_in.headers()["set-cookie"].to_str().unwrap();
    assert!(
        set_cookie.starts_with("__Host-c4csb_admin="),
        "{set_cookie}"
    );
    assert!(set_cookie.contains("; Secure"), "{set_cookie}");
    for _ in 0..3 {
        assert_eq!(login(&app, "olga", "guess guess guess").await.status(), 401);
    }
    let blocked = login(&app, "olga", PASSWORD).await;
    assert_eq!(blocked.status(), 429);
    assert!(blocked.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn each_client_has_its_own_rate_limit() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let app = TestApp::spawn_with(db, |config| {
        config.auth.client_rate.per_second = 1;
        config.auth.client_rate.burst = 3;
    })
    .await;
    let busy = create_token(&app.store, "busy", None).await.unwrap();
    let calm = create_token(&app.store, "calm", None).await.unwrap();
    let get = |token: String| {
        let request = app
            .client
            .get(app.url("/scim/v2/ServiceProviderConfig"))
            .bearer_auth(token);
        async move { request.send().await.unwrap() }
    };
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(get(busy.token.expose_secret().to_owned()).await);
    }
    let limited = statuses.iter().find(|response| response.status() == 429);
    let limited = limited.expect("a client over its burst gets 429");
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    assert_eq!(statuses[0].status(), 200);
    // Another client is not slowed by the busy one.
    assert_eq!(
        get(calm.token.expose_secret().to_owned()).await.status(),
        200
    );
}

#[tokio::test]
async fn admin_and_client_cli() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let run = |args: &[&str], stdin: &str| {
        use std::io::Write;
        let mut child = std::process::Command::new(binary())
            .args(args)
            .env("C4C_SCIM_BRIDGE__STORE__URL", &db.url)
            .env("C4C_SCIM_BRIDGE__LOG__LEVEL", "warn")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        (
            output.status.code().unwrap(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, _, err) = run(
        &["admin", "add", "alice", "--role", "operator"],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(&["admin", "add", "bob"], "short\n");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("at least 12"), "{err}");
    let (code, list, _) = run(&["admin", "list"], "");
    assert_eq!(code, 0);
    assert!(
        list.contains("alice") && list.contains("operator"),
        "{list}"
    );
    assert!(!list.contains("argon2"), "{list}");
    let store = db.store().await;
    let hash = store
        .get_admin_user("alice")
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    assert!(hash.starts_with("$argon2id$"));
    let (code, _, err) = run(&["admin", "passwd", "alice"], "another long password\n");
    assert_eq!(code, 0, "{err}");
    assert!(
        c4c_scim_bridge::auth::admin::verify_login(
            &store,
            "alice",
            &SecretString::from("another long password")
        )
        .await
        .is_ok()
    );
    let (code, _, _) = run(&["admin", "remove", "alice"], "");
    assert_eq!(code, 0);
    assert!(store.get_admin_user("alice").await.unwrap().is_none());

    let (code, out, err) = run(&["oauth-client", "create", "--name", "okta"], "");
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("client_id:") && out.contains("client_secret:"),
        "{out}"
    );
    let secret = out
        .lines()
        .find_map(|line| line.strip_prefix("client_secret:"))
        .unwrap()
        .trim()
        .to_owned();
    let (_, list, _) = run(&["oauth-client", "list"], "");
    assert!(list.contains("okta") && !list.contains(&secret), "{list}");
    let (code, out, err) = run(&["signing-key", "rotate"], "");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("new signing key"), "{out}");
    let (_, keys, _) = run(&["signing-key", "list"], "");
    assert!(keys.contains("signing now"), "{keys}");
    let (code, _, _) = run(&["oauth-client", "revoke", "okta"], "");
    assert_eq!(code, 0);
}

#[tokio::test]
async fn overlong_filter_is_refused_before_parsing() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let app = TestApp::spawn_with(db, |_| {}).await;
    let token = create_token(&app.store, "okta", None).await.unwrap();
    let filter = format!("userName eq \"{}\"", "a".repeat(5000));
    let response = app
        .client
        .get(app.url("/scim/v2/Users"))
        .query(&[("filter", filter.as_str())])
        .bearer_auth(token.token.expose_secret())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["scimType"], "invalidFilter");
}
