//! The admin JSON API (issue 12) against a real server, the simulator and both stores: mapping-log
//! search with paging and filters, request traces, retry of a failed provisioning, timelines,
//! links, outbox and held-operation decisions, rules, C4C health, dashboard, tokens, the OpenAPI
//! document; and access by role (anonymous 401, viewer 403 on every write, CSRF on writes).

use c4c_scim_bridge::auth::admin::{Role, add_user};
use c4c_scim_bridge::provisioning::outbox::{EmployeeUpdate, enqueue_employee_update};
use c4c_scim_bridge::sim::{Fault, FaultScope};
use c4c_scim_bridge::store::{OutboxStatus, ResourceType};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::harness::{Backend, TestDb, start_sim};
use crate::on_both_backends;
use crate::users::{Bridge, entra_user, patch};

pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// A signed-in admin: the session cookie and the CSRF token.
pub(crate) struct Admin {
    pub(crate) cookie: String,
    pub(crate) csrf: String,
}

pub(crate) async fn sign_in(base: &str, user: &str) -> Admin {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client
        .post(format!("{base}/admin/login"))
        .form(&[("username", user), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303, "sign-in of {user}");
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let session: Value = client
        .get(format!("{base}/admin/api/session"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Admin {
        cookie,
        csrf: session["csrf_token"].as_str().unwrap().to_owned(),
    }
}

pub(crate) async fn add_admins(store: &c4c_scim_bridge::store::Store) {
    add_user(store, "olga", Role::Operator, &SecretString::from(PASSWORD))
        .await
        .unwrap();
    add_user(store, "vic", Role::Viewer, &SecretString::from(PASSWORD))
        .await
        .unwrap();
}

fn user(name: &str, employee_number: &str) -> Value {
    let mut user = entra_user();
    let login = format!("{name}@contoso.com");
    user["userName"] = json!(login);
    user["externalId"] = json!(name);
    user["displayName"] = json!(format!("{name} Example"));
    user["emails"] = json!([{"primary": true, "type": "work", "value": login}]);
    user["phoneNumbers"] = json!([{"type": "work", "value": "+49 30 1234567"}]);
    user["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["employeeNumber"] =
        json!(employee_number);
    user
}

struct Api<'a> {
    bridge: &'a Bridge,
}

impl Api<'_> {
    async fn get(&self, admin: Option<&Admin>, path: &str) -> (u16, Value) {
        let mut request = self.bridge.app.client.get(self.bridge.app.url(path));
        if let Some(admin) = admin {
            request = request.header("cookie", &admin.cookie);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A write; `csrf` false leaves the token out.
    async fn post(&self, admin: Option<&Admin>, path: &str, csrf: bool) -> (u16, Value) {
        let mut request = self.bridge.app.client.post(self.bridge.app.url(path));
        if let Some(admin) = admin {
            request = request.header("cookie", &admin.cookie);
            if csrf {
                request = request.header("x-csrf-token", &admin.csrf);
            }
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

/// A write every role rule applies to: anonymous 401, viewer 403, operator without CSRF 403.
async fn assert_write_guarded(api: &Api<'_>, viewer: &Admin, operator: &Admin, path: &str) {
    assert_eq!(api.post(None, path, false).await.0, 401, "anonymous {path}");
    assert_eq!(
        api.post(Some(viewer), path, true).await.0,
        403,
        "viewer {path}"
    );
    assert_eq!(
        api.post(Some(operator), path, false).await.0,
        403,
        "operator without CSRF {path}"
    );
}

on_both_backends!(
    admin_api_log_search_paging_trace_retry_timeline_links,
    |backend: Backend| async move {
        let sim = start_sim(0).await;
        let Some(db) = TestDb::new(backend).await else {
            return;
        };
        let bridge = Bridge::start_configured(db, &sim, |config| {
            config.auth.admin.cookie_secure = false;
        })
        .await;
        add_admins(&bridge.app.store).await;
        let api = Api { bridge: &bridge };
        let base = bridge.app.url("");
        let olga = sign_in(&base, "olga").await;
        let vic = sign_in(&base, "vic").await;

        // Three users provisioned, a fourth refused by C4C (503 storm).
        let mut ids = Vec::new();
        for (name, number) in [("alice", "100"), ("bob", "101"), ("carol", "102")] {
            let (status, _, created) = bridge
                .send(reqwest::Method::POST, "/Users", Some(user(name, number)))
                .await;
            assert_eq!(status, 201, "{created}");
            ids.push(created["id"].as_str().unwrap().to_owned());
        }
        sim.faults().fail_next(5, Fault::Status503, FaultScope::Any);
        let (status, _, _) = bridge
            .send(reqwest::Method::POST, "/Users", Some(user("dave", "103")))
            .await;
        assert_eq!(status, 503);
        sim.faults().clear();
        assert!(
            !sim.employees()
                .iter()
                .any(|e| serde_json::to_value(e).unwrap()["UserID"] == "dave@contoso.com")
        );

        // Anonymous: 401 on every read.
        for path in [
            "/admin/api/logs",
            "/admin/api/dashboard",
            "/admin/api/outbox",
            "/admin/api/held",
            "/admin/api/rules",
            "/admin/api/c4c/health",
            "/admin/api/links?user=alice@contoso.com",
        ] {
            assert_eq!(api.get(None, path).await.0, 401, "{path}");
        }

        // Paging: two per page, newest first, every record once.
        let mut seen: Vec<i64> = Vec::new();
        let mut path = "/admin/api/logs?limit=2".to_owned();
        let mut pages = 0;
        loop {
            let (status, page) = api.get(Some(&vic), &path).await;
            assert_eq!(status, 200, "{page}");
            let items = page["items"].as_array().unwrap();
            assert!(items.len() <= 2);
            seen.extend(items.iter().map(|item| item["id"].as_i64().unwrap()));
            pages += 1;
            match page["next_cursor"].as_i64() {
                Some(cursor) => path = format!("/admin/api/logs?limit=2&cursor={cursor}"),
                None => break,
            }
        }
        assert_eq!(seen.len(), 4, "{seen:?}");
        assert_eq!(pages, 2);
        assert!(seen.windows(2).all(|pair| pair[0] > pair[1]), "{seen:?}");

        // Filters.
        let (_, failed) = api.get(Some(&vic), "/admin/api/logs?outcome=failed").await;
        let failed = failed["items"].as_array().unwrap().clone();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0]["status"], 503);
        assert!(failed[0]["error"].as_str().unwrap().contains("C4C"));
        let failed_request = failed[0]["request_id"].as_str().unwrap().to_owned();
        let (_, by_user) = api
            .get(Some(&vic), "/admin/api/logs?user=ALICE@contoso.com")
            .await;
        assert_eq!(by_user["items"].as_array().unwrap().len(), 1);
        assert_eq!(by_user["items"][0]["resource_id"], ids[0].as_str());
        let (_, by_id) = api
            .get(Some(&vic), &format!("/admin/api/logs?scim_id={}", ids[1]))
            .await;
        assert_eq!(by_id["items"].as_array().unwrap().len(), 1);
        let bob_employee = by_id["items"][0]["employee_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (_, by_employee) = api
            .get(
                Some(&vic),
                &format!("/admin/api/logs?employee_id={bob_employee}"),
            )
            .await;
        assert_eq!(by_employee["items"][0]["resource_id"], ids[1].as_str());
        let (_, by_text) = api.get(Some(&vic), "/admin/api/logs?q=DAVE%40").await;
        assert_eq!(by_text["items"].as_array().unwrap().len(), 1);
        let (_, wildcard) = api.get(Some(&vic), "/admin/api/logs?q=%25").await;
        assert_eq!(wildcard["items"].as_array().unwrap().len(), 0);
        let (_, future) = api
            .get(Some(&vic), "/admin/api/logs?since=2999-01-01T00:00:00Z")
            .await;
        assert!(future["items"].as_array().unwrap().is_empty());
        let (_, all_time) = api
            .get(
                Some(&vic),
                "/admin/api/logs?since=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00Z",
            )
            .await;
        assert_eq!(all_time["items"].as_array().unwrap().len(), 4);
        for bad in [
            "/admin/api/logs?since=yesterday",
            "/admin/api/logs?limit=0",
            "/admin/api/logs?limit=201",
            "/admin/api/logs?cursor=abc",
            "/admin/api/logs?limit=99999999999999999999",
        ] {
            let (status, body) = api.get(Some(&vic), bad).await;
            assert_eq!(status, 400, "{bad}");
            assert!(body["error"].is_string(), "{bad}: {body}");
        }

        // One request's trace: bodies in and out (masked), rules, OData calls.
        let (_, alice_log) = api
            .get(Some(&vic), &format!("/admin/api/logs?scim_id={}", ids[0]))
            .await;
        let alice_request = alice_log["items"][0]["request_id"].as_str().unwrap();
        let (status, trace) = api
            .get(Some(&vic), &format!("/admin/api/requests/{alice_request}"))
            .await;
        assert_eq!(status, 200, "{trace}");
        assert_eq!(trace["retryable"], false);
        let detail = &trace["records"][0]["detail"];
        assert_eq!(detail["request"]["userName"], "alice@contoso.com");
        assert_eq!(detail["request"]["phoneNumbers"], "***");
        assert_eq!(detail["response"]["id"], ids[0].as_str());
        assert_eq!(detail["response"]["phoneNumbers"], "***");
        assert!(!trace.to_string().contains("1234567"));
        assert!(!detail["trace"]["entries"].as_array().unwrap().is_empty());
        assert!(
            detail["odata"]
                .as_array()
                .unwrap()
                .iter()
                .any(|call| call["ok"] == true && call["duration_ms"].is_i64())
        );
        let (status, failed_trace) = api
            .get(Some(&vic), &format!("/admin/api/requests/{failed_request}"))
            .await;
        assert_eq!(status, 200);
        assert_eq!(failed_trace["retryable"], true);
        assert!(
            failed_trace["records"][0]["detail"]["odata"]
                .as_array()
                .unwrap()
                .iter()
                .any(|call| call["ok"] == false && call["status"] == 503)
        );
        assert_eq!(
            api.get(Some(&vic), "/admin/api/requests/no-such-request")
                .await
                .0,
            404
        );

        // Retry: guarded by role and CSRF; an operator's retry provisions the user.
        let retry = format!("/admin/api/requests/{failed_request}/retry");
        assert_write_guarded(&api, &vic, &olga, &retry).await;
        let (status, retried) = api.post(Some(&olga), &retry, true).await;
        assert_eq!(status, 200, "{retried}");
        assert_eq!(retried["outcome"], "ok", "{retried}");
        assert_eq!(retried["status"], 201);
        assert!(
            sim.employees()
                .iter()
                .any(|e| serde_json::to_value(e).unwrap()["UserID"] == "dave@contoso.com")
        );
        let new_request = retried["request_id"].as_str().unwrap();
        let (_, new_trace) = api
            .get(Some(&vic), &format!("/admin/api/requests/{new_request}"))
            .await;
        assert_eq!(new_trace["records"][0]["summary"], Value::Null);
        assert_eq!(new_trace["records"][0]["client"], "admin:olga");
        assert_eq!(new_trace["records"][0]["outcome"], "ok");
        assert_eq!(new_trace["retry_of"], failed_request.as_str());
        let (_, original) = api
            .get(Some(&vic), &format!("/admin/api/requests/{failed_request}"))
            .await;
        assert_eq!(original["retries"][0]["request_id"], new_request);
        assert_eq!(original["retries"][0]["outcome"], "ok");
        assert!(original["retry_of"].is_null());
        assert_eq!(
            api.post(
                Some(&olga),
                &format!("/admin/api/requests/{alice_request}/retry"),
                true
            )
            .await
            .0,
            409,
            "a successful request is not retried"
        );
        assert_eq!(
            api.post(Some(&olga), "/admin/api/requests/nope/retry", true)
                .await
                .0,
            404
        );

        // Timeline and links.
        let (status, timeline) = api
            .get(Some(&vic), &format!("/admin/api/users/{}/timeline", ids[0]))
            .await;
        assert_eq!(status, 200, "{timeline}");
        let object_id = timeline["link"]["object_id"].as_str().unwrap().to_owned();
        assert_eq!(timeline["link"]["user_name"], "alice@contoso.com");
        assert_eq!(timeline["link"]["employee_id"], "100");
        assert_eq!(timeline["items"].as_array().unwrap().len(), 1);
        bridge
            .send(
                reqwest::Method::PATCH,
                &format!("/Users/{}", ids[0]),
                Some(patch(
                    json!([{"op": "replace", "path": "title", "value": "Lead"}]),
                )),
            )
            .await;
        let (_, first) = api
            .get(
                Some(&vic),
                &format!("/admin/api/users/{}/timeline?limit=1", ids[0]),
            )
            .await;
        assert_eq!(first["items"][0]["method"], "PATCH");
        let cursor = first["next_cursor"].as_i64().unwrap();
        let (_, second) = api
            .get(
                Some(&vic),
                &format!(
                    "/admin/api/users/{}/timeline?limit=1&cursor={cursor}",
                    ids[0]
                ),
            )
            .await;
        assert_eq!(second["items"][0]["method"], "POST");
        assert!(second["next_cursor"].is_null());
        assert_eq!(
            api.get(Some(&vic), "/admin/api/users/nobody/timeline")
                .await
                .0,
            404
        );
        for query in [
            format!("object_id={object_id}"),
            "employee_id=100".to_owned(),
            format!("scim_id={}", ids[0]),
            "user=Alice@Contoso.com".to_owned(),
        ] {
            let (status, links) = api
                .get(Some(&vic), &format!("/admin/api/links?{query}"))
                .await;
            assert_eq!(status, 200);
            assert_eq!(links["links"].as_array().unwrap().len(), 1, "{query}");
            assert_eq!(links["links"][0]["scim_id"], ids[0].as_str(), "{query}");
            assert_eq!(links["links"][0]["object_id"], object_id.as_str());
        }
        assert_eq!(api.get(Some(&vic), "/admin/api/links").await.0, 400);
        let (_, none) = api
            .get(Some(&vic), "/admin/api/links?employee_id=999999")
            .await;
        assert!(none["links"].as_array().unwrap().is_empty());
    }
);

on_both_backends!(
    admin_api_outbox_held_rules_health_dashboard_tokens,
    |backend: Backend| async move {
        let sim = start_sim(0).await;
        let Some(db) = TestDb::new(backend).await else {
            return;
        };
        let bridge = Bridge::start_configured(db, &sim, |config| {
            config.auth.admin.cookie_secure = false;
            // Outbox items stay as the test puts them: no worker takes them.
            config.outbox.enabled = false;
            // Every deactivation is held.
            config.safety.max_count = 0;
            config.safety.min_count = 0;
        })
        .await;
        add_admins(&bridge.app.store).await;
        let api = Api { bridge: &bridge };
        let base = bridge.app.url("");
        let olga = sign_in(&base, "olga").await;
        let vic = sign_in(&base, "vic").await;
        let store = &bridge.app.store;

        let (status, _, created) = bridge
            .send(reqwest::Method::POST, "/Users", Some(user("erin", "200")))
            .await;
        assert_eq!(status, 201);
        let id = created["id"].as_str().unwrap().to_owned();
        let object_id = store
            .get_resource(ResourceType::User, id.parse().unwrap())
            .await
            .unwrap()
            .unwrap()
            .object_id
            .unwrap();

        // Outbox: a failed item is retried (due again, fresh attempts), a pending one discarded.
        let update = EmployeeUpdate {
            object_id: object_id.clone(),
            fields: serde_json::from_value(json!({"JobName": "Lead"})).unwrap(),
        };
        let failed = enqueue_employee_update(store, Some(&id), &update)
            .await
            .unwrap();
        store
            .finish_outbox(failed, OutboxStatus::Failed, Some("C4C: boom"), None)
            .await
            .unwrap();
        let pending = enqueue_employee_update(store, Some(&id), &update)
            .await
            .unwrap();
        let (status, page) = api.get(Some(&vic), "/admin/api/outbox?status=failed").await;
        assert_eq!(status, 200);
        assert_eq!(page["items"].as_array().unwrap().len(), 1);
        assert_eq!(page["items"][0]["id"], failed);
        assert_eq!(page["items"][0]["last_error"], "C4C: boom");
        let (_, first) = api.get(Some(&vic), "/admin/api/outbox?limit=1").await;
        assert_eq!(first["items"][0]["id"], pending);
        let cursor = first["next_cursor"].as_i64().unwrap();
        let (_, second) = api
            .get(
                Some(&vic),
                &format!("/admin/api/outbox?limit=1&cursor={cursor}"),
            )
            .await;
        assert_eq!(second["items"][0]["id"], failed);
        assert!(second["next_cursor"].is_null());
        assert_eq!(
            api.get(Some(&vic), "/admin/api/outbox?status=bogus")
                .await
                .0,
            400
        );
        let retry = format!("/admin/api/outbox/{failed}/retry");
        assert_write_guarded(&api, &vic, &olga, &retry).await;
        let (status, item) = api.post(Some(&olga), &retry, true).await;
        assert_eq!(status, 200, "{item}");
        assert_eq!(item["status"], "pending");
        assert_eq!(item["attempts"], 0);
        let discard = format!("/admin/api/outbox/{pending}/discard");
        assert_write_guarded(&api, &vic, &olga, &discard).await;
        let (status, item) = api.post(Some(&olga), &discard, true).await;
        assert_eq!(status, 200);
        assert_eq!(item["status"], "discarded");
        assert_eq!(api.post(Some(&olga), &discard, true).await.0, 409);
        store
            .finish_outbox(failed, OutboxStatus::Done, None, None)
            .await
            .unwrap();
        assert_eq!(api.post(Some(&olga), &retry, true).await.0, 409);
        let (status, body) = api
            .post(Some(&olga), "/admin/api/outbox/abc/retry", true)
            .await;
        assert_eq!(status, 400);
        assert!(body["error"].is_string(), "{body}");
        assert_eq!(
            api.post(Some(&olga), "/admin/api/outbox/999999/retry", true)
                .await
                .0,
            404
        );

        // Held deprovisioning: listed, guarded, released (C4C locks the employee).
        let (status, _, _) = bridge
            .send(
                reqwest::Method::PATCH,
                &format!("/Users/{id}"),
                Some(patch(
                    json!([{"op": "replace", "path": "active", "value": false}]),
                )),
            )
            .await;
        assert_eq!(status, 200);
        assert_ne!(
            sim.employee(&object_id).unwrap()["UserLockedIndicator"],
            true,
            "held, not applied"
        );
        let (status, held) = api.get(Some(&vic), "/admin/api/held").await;
        assert_eq!(status, 200);
        let items = held["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{held}");
        assert_eq!(items[0]["resource_id"], id.as_str());
        let held_id = items[0]["id"].as_i64().unwrap();
        assert_eq!(api.get(Some(&vic), "/admin/api/held?status=x").await.0, 400);
        let release = format!("/admin/api/held/{held_id}/release");
        assert_write_guarded(&api, &vic, &olga, &release).await;
        assert_write_guarded(
            &api,
            &vic,
            &olga,
            &format!("/admin/api/held/{held_id}/discard"),
        )
        .await;
        let (status, decision) = api.post(Some(&olga), &release, true).await;
        assert_eq!(status, 200, "{decision}");
        assert_eq!(decision["result"], "released", "{decision}");
        assert_eq!(
            sim.employee(&object_id).unwrap()["UserLockedIndicator"],
            true
        );
        let (_, all) = api.get(Some(&vic), "/admin/api/held?status=all").await;
        assert_eq!(all["items"][0]["decided_by"], "operator:olga");
        assert_eq!(api.post(Some(&olga), &release, true).await.0, 409);
        assert_eq!(
            api.post(Some(&olga), "/admin/api/held/999999/discard", true)
                .await
                .0,
            404
        );

        // Rules, checked against the simulator's $metadata.
        let (status, rules) = api.get(Some(&vic), "/admin/api/rules").await;
        assert_eq!(status, 200);
        assert_eq!(rules["metadata_checked"], true, "{rules}");
        assert_eq!(rules["errors"], 0, "{rules}");
        assert!(
            rules["rules"]
                .as_array()
                .unwrap()
                .iter()
                .any(|rule| rule["to"] == "UserID")
        );

        // C4C health: what the calls showed, and a live probe.
        let (status, health) = api
            .get(Some(&vic), "/admin/api/c4c/health?probe=true")
            .await;
        assert_eq!(status, 200);
        assert_eq!(health["auth_mode"], "basic");
        assert!(health["last_success"].is_string(), "{health}");
        assert!(health["latency_samples"].as_u64().unwrap() > 0);
        assert!(health["latency_p95_ms"].is_u64());
        assert!(
            health["csrf"]["fetched"].as_u64().unwrap()
                + health["csrf"]["piggyback"].as_u64().unwrap()
                > 0,
            "{health}"
        );
        assert_eq!(health["probe"]["ok"], true);
        assert_eq!(
            api.get(Some(&vic), "/admin/api/c4c/health?probe=maybe")
                .await
                .0,
            400
        );

        // Dashboard.
        let (status, dashboard) = api.get(Some(&vic), "/admin/api/dashboard").await;
        assert_eq!(status, 200);
        assert!(dashboard["requests"].as_i64().unwrap() >= 2, "{dashboard}");
        assert_eq!(dashboard["held"], 0);
        assert_eq!(dashboard["outbox_pending"], 0);

        // Tokens: listed, revoked by an operator only.
        let (status, tokens) = api.get(Some(&vic), "/admin/api/tokens").await;
        assert_eq!(status, 200);
        assert_eq!(tokens["tokens"][0]["name"], "entra");
        let revoke = "/admin/api/tokens/entra/revoke";
        assert_write_guarded(&api, &vic, &olga, revoke).await;
        assert_eq!(api.post(Some(&olga), revoke, true).await.0, 200);
        let (status, _, _) = bridge.send(reqwest::Method::GET, "/Users", None).await;
        assert_eq!(status, 401, "the revoked token no longer works");

        // The document: served without a session, covering every route.
        let (status, doc) = api.get(None, "/admin/api/openapi.json").await;
        assert_eq!(status, 200);
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        for path in [
            "/admin/api/logs",
            "/admin/api/requests/{request_id}/retry",
            "/admin/api/outbox/{id}/discard",
            "/admin/api/held/{id}/release",
            "/admin/api/tokens/{id}/revoke",
            "/admin/api/c4c/health",
        ] {
            assert!(doc["paths"].get(path).is_some(), "{path}");
        }
        assert!(doc["components"]["securitySchemes"]["session"].is_object());
    }
);

/// The HTML views without a browser: empty states, escaping, role-dependent buttons, forms that
/// carry the CSRF token as a field, and the embedded assets.
#[tokio::test]
async fn admin_ui_pages_escape_values_show_empty_states_and_guard_forms() {
    let sim = start_sim(0).await;
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let bridge = Bridge::start_configured(db, &sim, |config| {
        config.auth.admin.cookie_secure = false;
    })
    .await;
    add_admins(&bridge.app.store).await;
    let base = bridge.app.url("");
    let olga = sign_in(&base, "olga").await;
    let vic = sign_in(&base, "vic").await;
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = |admin: &Admin, path: &str| {
        browser
            .get(format!("{base}{path}"))
            .header("cookie", &admin.cookie)
            .header("accept", "text/html")
            .send()
    };

    // A fresh bridge: every view says what will appear, not a bare table.
    for (path, empty) in [
        ("/admin", "No failed provisioning"),
        ("/admin/logs", "No mapping-log record matches"),
        ("/admin/outbox", "The outbox is empty"),
        ("/admin/held", "Nothing is held"),
    ] {
        let response = page(&vic, path).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert!(
            response.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'self'")
        );
        let html = response.text().await.unwrap();
        assert!(html.contains(empty), "{path}: {html}");
        assert!(html.contains("name=\"csrf_token\""), "sign-out form");
    }

    // A create with markup in it fails at C4C: the trace shows it escaped.
    let mut hostile = user("mallory", "666");
    hostile["displayName"] = json!("<script>alert(1)</script>");
    sim.faults().fail_next(5, Fault::Status503, FaultScope::Any);
    let (status, _, _) = bridge
        .send(reqwest::Method::POST, "/Users", Some(hostile))
        .await;
    assert_eq!(status, 503);
    sim.faults().clear();
    let failed = bridge
        .app
        .store
        .search_log(&c4c_scim_bridge::store::AdminLogQuery {
            outcome: Some("failed".into()),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    let request_id = failed[0].entry.request_id.clone();
    let detail = page(&vic, &format!("/admin/requests/{request_id}"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(detail.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!detail.contains("<script>alert"));
    // A viewer sees no retry button and cannot post the form.
    assert!(!detail.contains("Retry this request"));
    assert!(detail.contains("an operator can retry it"));
    let form = |admin: &Admin, token: Option<&str>| {
        let mut fields = Vec::new();
        if let Some(token) = token {
            fields.push(("csrf_token", token.to_owned()));
        }
        browser
            .post(format!("{base}/admin/requests/{request_id}/retry"))
            .header("cookie", &admin.cookie)
            .form(&fields)
            .send()
    };
    assert_eq!(form(&vic, Some(&vic.csrf)).await.unwrap().status(), 403);
    assert_eq!(form(&olga, None).await.unwrap().status(), 403);
    assert_eq!(form(&olga, Some("wrong")).await.unwrap().status(), 403);
    let operator_view = page(&olga, &format!("/admin/requests/{request_id}"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(operator_view.contains("Retry this request"));
    let retried = form(&olga, Some(&olga.csrf)).await.unwrap();
    assert_eq!(retried.status(), 303);
    let location = retried.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&format!("/admin/requests/{request_id}.retry-")),
        "{location}"
    );
    let result = page(&olga, &location).await.unwrap().text().await.unwrap();
    assert!(result.contains("ok (201)"), "{result}");

    // Held operations name who asked: a client, or drift reconciliation (which has no client).
    for (client, kind) in [(Some("entra"), "deactivate"), (None, "reconcile_lock")] {
        bridge
            .app
            .store
            .hold_operation(&c4c_scim_bridge::store::NewHeld {
                client: client.map(str::to_owned),
                request_id: format!("held-{kind}"),
                resource_type: "User".into(),
                resource_id: uuid::Uuid::new_v4().to_string(),
                object_id: None,
                kind: kind.into(),
                payload: json!({}),
                base_version: 1,
            })
            .await
            .unwrap();
    }
    let held = page(&olga, "/admin/held")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(held.matches("Release held operation").count(), 2, "{held}");
    for shown in [
        "<td>entra</td>",
        "<td>drift reconciliation</td>",
        "reconcile_lock",
    ] {
        assert!(held.contains(shown), "{shown}: {held}");
    }

    // Assets are embedded and served with their types.
    for (path, kind) in [
        ("/admin/assets/admin.css", "text/css"),
        ("/admin/assets/admin.js", "text/javascript"),
    ] {
        let response = browser.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind)
        );
    }
}
