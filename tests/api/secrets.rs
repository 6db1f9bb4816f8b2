//! Secret hygiene: known secrets planted in the configuration and used through a full
//! provisioning cycle with failures appear in none of the logs, the mapping log, the admin API or
//! `check` output.

use std::io::Write;
use std::sync::{Arc, Mutex};

use c4c_scim_bridge::auth::admin::{Role, add_user};
use c4c_scim_bridge::auth::create_token;
use c4c_scim_bridge::auth::oauth::create_client;
use c4c_scim_bridge::config::Config;
use c4c_scim_bridge::sim::{Fault, FaultScope, OAuthClient, SimConfig, Simulator, TechnicalUser};
use c4c_scim_bridge::store::LogQuery;
use secrecy::ExposeSecret;
use serde_json::json;

use crate::harness::{Backend, TestApp, TestDb, binary};

/// Every log line of this test process, as the bridge's subscriber would write it.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn planted(label: &str) -> String {
    format!("PLANTED-{label}-{}", uuid::Uuid::new_v4().simple())
}

fn user(name: &str, password: &str) -> serde_json::Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": format!("{name}@contoso.com"),
        "active": true,
        "password": password,
        "name": {"givenName": "Planted", "familyName": name},
        "emails": [{"primary": true, "type": "work", "value": format!("{name}@contoso.com")}]
    })
}

#[tokio::test]
async fn planted_secrets_never_reach_logs_mapping_log_admin_api_or_check() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_env_filter("trace,hyper=debug,h2=debug,sqlx=debug,rustls=debug")
        .with_ansi(false)
        .finish();
    // Current-thread test runtime: the bridge's tasks run on this thread, so a thread-local
    // subscriber sees all their events without touching other tests.
    let _capture = tracing::subscriber::set_default(subscriber);

    let c4c_password = planted("c4c-password");
    let c4c_client_secret = planted("c4c-client-secret");
    let admin_password = planted("admin-password");
    let wrong_admin_password = planted("wrong-admin-password");
    let scim_password = planted("scim-user-password");
    let wrong_client_secret = planted("wrong-client-secret");

    let sim = Simulator::start(SimConfig {
        users: vec![TechnicalUser::new("SCIM_TECH_USER", c4c_password.clone())],
        oauth_clients: vec![OAuthClient::new(
            "SCIM_BRIDGE_CLIENT",
            c4c_client_secret.clone(),
            "SCIM_TECH_USER",
        )],
        generated_employees: 2,
        ..SimConfig::default()
    })
    .await
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let (signing_key, der) = c4c_scim_bridge::auth::jwt::SigningKey::generate().unwrap();
    let _ = signing_key;
    let key_pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &der)
    );
    let key_body = key_pem.lines().nth(1).unwrap().to_owned();
    let key_file = dir.path().join("signing.pem");
    std::fs::write(&key_file, &key_pem).unwrap();
    let kek = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        uuid::Uuid::new_v4().as_bytes().repeat(2),
    );
    let kek_file = dir.path().join("kek");
    std::fs::write(&kek_file, &kek).unwrap();

    let mut secrets: Vec<(String, String)> = vec![
        ("C4C password".into(), c4c_password.clone()),
        ("C4C OAuth client secret".into(), c4c_client_secret.clone()),
        ("admin password".into(), admin_password.clone()),
        ("wrong admin password".into(), wrong_admin_password.clone()),
        ("SCIM user password".into(), scim_password.clone()),
        ("wrong client secret".into(), wrong_client_secret.clone()),
        ("signing key".into(), key_body[..48].to_owned()),
        ("key-encryption key".into(), kek.clone()),
        (
            "signing key (end)".into(),
            key_body[key_body.len() - 48..].to_owned(),
        ),
    ];

    let auth_modes = [
        format!(
            "[auth]\nmode = \"basic\"\nuser = \"SCIM_TECH_USER\"\npassword = \"{c4c_password}\"\n"
        ),
        format!(
            "[auth]\nmode = \"oauth_client_credentials\"\ntoken_url = \"{}\"\nclient_id = \"SCIM_BRIDGE_CLIENT\"\nclient_secret = \"{c4c_client_secret}\"\n",
            sim.token_url()
        ),
    ];
    let mut check_outputs = String::new();
    let mut mapping_logs = String::new();
    let mut admin_answers = String::new();
    for (round, auth) in auth_modes.iter().enumerate() {
        let db = TestDb::new(Backend::Sqlite).await.unwrap();
        let config_file = dir.path().join(format!("config-{round}.toml"));
        std::fs::write(
            &config_file,
            format!(
                "[store]\nurl = \"{}\"\n[auth.oauth]\nsigning_key_file = \"{}\"\nkey_encryption_key_file = \"{}\"\n[auth.admin]\ncookie_secure = false\n[c4c]\nbase_url = \"{}/\"\n[c4c.retry]\nmax_attempts = 1\n[c4c.{auth}",
                db.url,
                key_file.display(),
                kek_file.display(),
                sim.service_url(),
                auth = auth.trim_start_matches('[')
            ),
        )
        .unwrap();
        let loaded = Config::load(Some(&config_file)).unwrap();
        assert!(!format!("{loaded:?}").contains(&c4c_password));
        assert!(!format!("{loaded:?}").contains(&c4c_client_secret));

        let check = std::process::Command::new(binary())
            .args(["check", "--config"])
            .arg(&config_file)
            .output()
            .unwrap();
        assert_eq!(
            check.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
        check_outputs.push_str(&String::from_utf8_lossy(&check.stdout));
        check_outputs.push_str(&String::from_utf8_lossy(&check.stderr));

        let app = TestApp::spawn_with(db, move |config| {
            let listen = config.server.listen;
            *config = loaded;
            config.server.listen = listen;
        })
        .await;
        let bearer = create_token(&app.store, "entra", None).await.unwrap();
        let bearer = bearer.token.expose_secret().to_owned();
        let client = create_client(&app.store, "okta").await.unwrap();
        let client_secret = client.secret.expose_secret().to_owned();
        add_user(
            &app.store,
            "olga",
            Role::Operator,
            &admin_password.clone().into(),
        )
        .await
        .unwrap();

        // An OAuth token for the bridge, by Basic and by form; and a failed attempt.
        let token: serde_json::Value = app
            .client
            .post(app.url("/oauth/token"))
            .basic_auth(&client.row.client_id, Some(&client_secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let jwt = token["access_token"].as_str().unwrap().to_owned();
        let failed = app
            .client
            .post(app.url("/oauth/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client.row.client_id.as_str()),
                ("client_secret", wrong_client_secret.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(failed.status(), 401);

        let send = |method: reqwest::Method,
                    path: String,
                    token: String,
                    body: Option<serde_json::Value>| {
            let mut request = app
                .client
                .request(method, app.url(&format!("/scim/v2{path}")))
                .bearer_auth(token);
            if let Some(body) = body {
                request = request
                    .header("content-type", "application/scim+json")
                    .body(body.to_string());
            }
            async move {
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                (status, body)
            }
        };
        let name = format!("ada{round}");
        // C4C fails the first create (503), then a 500; the third create succeeds.
        sim.faults()
            .fail_next(1, Fault::Status503, FaultScope::Writes);
        let (status, _) = send(
            reqwest::Method::POST,
            "/Users".into(),
            bearer.clone(),
            Some(user(&name, &scim_password)),
        )
        .await;
        assert_eq!(status, 503);
        sim.faults()
            .fail_next(1, Fault::Status500, FaultScope::Writes);
        let (status, _) = send(
            reqwest::Method::POST,
            "/Users".into(),
            jwt.clone(),
            Some(user(&name, &scim_password)),
        )
        .await;
        assert!(status >= 500, "{status}");
        let (status, created) = send(
            reqwest::Method::POST,
            "/Users".into(),
            jwt.clone(),
            Some(user(&name, &scim_password)),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        assert!(created.get("password").is_none(), "{created}");
        let id = created["id"].as_str().unwrap().to_owned();
        let patch = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "password", "value": scim_password}]
        });
        send(
            reqwest::Method::PATCH,
            format!("/Users/{id}"),
            bearer.clone(),
            Some(patch),
        )
        .await;
        sim.faults().fail_next(1, Fault::Reset, FaultScope::Writes);
        let deactivate = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "value": {"active": false}}]
        });
        send(
            reqwest::Method::PATCH,
            format!("/Users/{id}"),
            bearer.clone(),
            Some(deactivate.clone()),
        )
        .await;
        let (status, _) = send(
            reqwest::Method::PATCH,
            format!("/Users/{id}"),
            bearer.clone(),
            Some(deactivate),
        )
        .await;
        assert_eq!(status, 200);
        let (status, _) = send(
            reqwest::Method::GET,
            format!("/Users/{id}"),
            "c4csb_0000000000000000_wrong".into(),
            None,
        )
        .await;
        assert_eq!(status, 401);
        if round == 1 {
            // The C4C token endpoint fails once: the bridge must not echo its credentials.
            sim.faults()
                .fail_next(1, Fault::Status500, FaultScope::Token);
        }
        send(
            reqwest::Method::GET,
            "/Users?filter=userName+eq+%22ada%40contoso.com%22".into(),
            jwt.clone(),
            None,
        )
        .await;
        let (status, _) = send(
            reqwest::Method::DELETE,
            format!("/Users/{id}"),
            jwt.clone(),
            None,
        )
        .await;
        assert!(status == 204 || status >= 500, "{status}");

        // Admin: a failed and a good login, then everything the admin API shows.
        let no_redirects = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let wrong = no_redirects
            .post(app.url("/admin/login"))
            .form(&[
                ("username", "olga"),
                ("password", wrong_admin_password.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401);
        admin_answers.push_str(&wrong.text().await.unwrap());
        let good = no_redirects
            .post(app.url("/admin/login"))
            .form(&[("username", "olga"), ("password", admin_password.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(good.status(), 303);
        let cookie = good.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        for path in [
            "/admin/api/session",
            "/admin/api/tokens",
            "/admin",
            "/.well-known/jwks.json",
        ] {
            let answer = app
                .client
                .get(app.url(path))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 200, "{path}");
            admin_answers.push_str(&answer.text().await.unwrap());
        }

        let records = app
            .store
            .query_log(&LogQuery {
                limit: 10_000,
                ..LogQuery::default()
            })
            .await
            .unwrap();
        assert!(records.len() >= 6, "{records:?}");
        assert!(
            records
                .iter()
                .any(|record| record.entry.outcome == "failed")
        );
        mapping_logs.push_str(&format!("{records:?}"));

        secrets.push((format!("SCIM bearer token {round}"), bearer.clone()));
        secrets.push((
            format!("SCIM bearer secret part {round}"),
            bearer[23..].to_owned(),
        ));
        secrets.push((format!("bridge OAuth client secret {round}"), client_secret));
        secrets.push((
            format!("bridge JWT signature {round}"),
            jwt.rsplit('.').next().unwrap().to_owned(),
        ));
        secrets.push((
            format!("admin session cookie {round}"),
            cookie.split_once('=').unwrap().1.to_owned(),
        ));
        app.stop().await;
    }
    sim.shutdown().await;

    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(logs.contains("access token issued"), "the capture works");
    assert!(logs.contains("admin login failed"), "the capture works");
    for (what, secret) in &secrets {
        assert!(!logs.contains(secret.as_str()), "{what} found in the logs");
        assert!(
            !mapping_logs.contains(secret.as_str()),
            "{what} found in the mapping log"
        );
        assert!(
            !admin_answers.contains(secret.as_str()),
            "{what} found in the admin API"
        );
        assert!(
            !check_outputs.contains(secret.as_str()),
            "{what} found in `check` output"
        );
    }
}
