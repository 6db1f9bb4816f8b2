//! /Users end to end against the C4C simulator: Entra ID's create, update, disable, re-enable,
//! delete and re-create, with the simulator's employee state and upstream call count checked
//! after each step.

use c4c_scim_bridge::auth::create_token;
use c4c_scim_bridge::sim::SimHandle;
use c4c_scim_bridge::store::{LogQuery, ResourceType};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::harness::{Backend, TestApp, TestDb, c4c_config_for, start_sim};
use crate::on_both_backends;

pub(crate) struct Bridge {
    pub(crate) app: TestApp,
    pub(crate) token: String,
}

impl Bridge {
    pub(crate) async fn start(backend: Backend, sim: &SimHandle) -> Option<Self> {
        let db = TestDb::new(backend).await?;
        Some(Self::start_on(db, sim).await)
    }

    pub(crate) async fn start_on(db: TestDb, sim: &SimHandle) -> Self {
        Self::start_configured(db, sim, |_| {}).await
    }

    /// With the simulator as tenant and further settings.
    pub(crate) async fn start_configured(
        db: TestDb,
        sim: &SimHandle,
        adjust: impl FnOnce(&mut c4c_scim_bridge::config::Config),
    ) -> Self {
        let c4c = c4c_config_for(sim);
        let app = TestApp::spawn_with(db, move |config| {
            config.c4c = Some(c4c);
            adjust(config);
        })
        .await;
        let issued = create_token(&app.store, "entra", None).await.unwrap();
        let token = issued.token.expose_secret().to_owned();
        Self { app, token }
    }

    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut request = self
            .app
            .client
            .request(method, self.app.url(&format!("/scim/v2{path}")))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/scim+json")
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        (status, headers, body)
    }
}

pub(crate) fn entra_user() -> Value {
    json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        ],
        "externalId": "alice",
        "userName": "alice@contoso.com",
        "active": true,
        "displayName": "Alice Example",
        "emails": [{"primary": true, "type": "work", "value": "alice@contoso.com"}],
        "name": {"formatted": "Alice Example", "familyName": "Example", "givenName": "Alice"},
        "title": "Sales Rep",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": "100234",
            "department": "Sales"
        },
        "meta": {"resourceType": "User"},
        "roles": []
    })
}

pub(crate) fn patch(operations: Value) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": operations
    })
}

fn locked(sim: &SimHandle, object_id: &str) -> Value {
    sim.employee(object_id).unwrap()["UserLockedIndicator"].clone()
}

/// Upstream calls since the last reset, then a fresh reset.
pub(crate) fn calls(sim: &SimHandle) -> u64 {
    let total = sim.counters().total;
    sim.reset_counters();
    total
}

on_both_backends!(entra_lifecycle, |backend: Backend| async move {
    let sim = start_sim(5).await;
    let Some(bridge) = Bridge::start(backend, &sim).await else {
        return;
    };
    let employees_before = sim.employees().len();
    sim.reset_counters();

    // Entra's create cycle: the match probe is answered from the mapping table...
    let (status, _, found) = bridge
        .send(
            reqwest::Method::GET,
            "/Users?filter=userName+eq+%22alice%40contoso.com%22",
            None,
        )
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["totalResults"], 0);
    assert_eq!(found["Resources"], json!([]));
    assert_eq!(calls(&sim), 0, "the filter probe costs no OData call");

    // ...then the POST: one lookup by business key and one create.
    let (status, headers, created) = bridge
        .send(reqwest::Method::POST, "/Users", Some(entra_user()))
        .await;
    assert_eq!(status, 201, "{created}");
    // The client read $metadata at start-up (to check the rules) and keeps it.
    let counters = sim.counters();
    assert_eq!(
        (
            counters.metadata,
            counters.reads,
            counters.posts,
            counters.total
        ),
        (0, 1, 1, 2),
        "first create: lookup + create"
    );
    sim.reset_counters();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["userName"], "alice@contoso.com");
    assert_eq!(created["meta"]["resourceType"], "User");
    assert_eq!(
        headers["etag"].to_str().unwrap(),
        created["meta"]["version"]
    );
    assert!(
        headers["location"]
            .to_str()
            .unwrap()
            .ends_with(&format!("/scim/v2/Users/{id}")),
        "{:?}",
        headers["location"]
    );
    assert_eq!(sim.employees().len(), employees_before + 1);
    let row = bridge
        .app
        .store
        .get_resource(ResourceType::User, id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let object_id = row.object_id.clone().unwrap();
    let employee = sim.employee(&object_id).unwrap();
    assert_eq!(employee["UserID"], "alice@contoso.com");
    assert_eq!(employee["FirstName"], "Alice");
    assert_eq!(employee["LastName"], "Example");
    assert_eq!(employee["Email"], "alice@contoso.com");
    assert_eq!(
        employee["EmployeeID"],
        row.employee_id.clone().unwrap().as_str()
    );

    // The probe now finds the user, still without an OData call; so do externalId and id.
    for filter in [
        "userName+eq+%22ALICE%40contoso.com%22".to_owned(),
        "externalId+eq+%22alice%22".to_owned(),
        format!("id+eq+%22{id}%22"),
    ] {
        let (status, _, found) = bridge
            .send(
                reqwest::Method::GET,
                &format!("/Users?filter={filter}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{found}");
        assert_eq!(found["totalResults"], 1, "{filter}");
        assert_eq!(found["Resources"][0]["id"], id.as_str());
    }
    assert_eq!(calls(&sim), 0);

    // A second POST of the same userName is a uniqueness conflict, decided locally.
    let (status, _, conflict) = bridge
        .send(reqwest::Method::POST, "/Users", Some(entra_user()))
        .await;
    assert_eq!(status, 409, "{conflict}");
    assert_eq!(conflict["scimType"], "uniqueness");
    assert_eq!(calls(&sim), 0);

    // A filter C4C answers: one OData GET.
    let (status, _, found) = bridge
        .send(
            reqwest::Method::GET,
            "/Users?filter=name.familyName+eq+%22Example%22",
            None,
        )
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["totalResults"], 1);
    assert_eq!(found["Resources"][0]["id"], id.as_str());
    assert_eq!(calls(&sim), 1);
    // One C4C cannot narrow is refused clearly, not answered wrongly, and costs nothing.
    let (status, _, refused) = bridge
        .send(
            reqwest::Method::GET,
            "/Users?filter=not+(name.familyName+eq+%22Example%22)",
            None,
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["scimType"], "invalidFilter");
    assert_eq!(calls(&sim), 0);

    // Read: one OData GET, merged with what only the bridge keeps.
    let (status, _, read) = bridge
        .send(reqwest::Method::GET, &format!("/Users/{id}"), None)
        .await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["name"]["givenName"], "Alice");
    assert_eq!(read["title"], "Sales Rep");
    assert_eq!(read["active"], true);
    assert_eq!(calls(&sim), 1);

    // Entra-style update: capitalised op, one OData PATCH.
    let (status, _, updated) = bridge
        .send(
            reqwest::Method::PATCH,
            &format!("/Users/{id}"),
            Some(patch(json!([
                {"op": "Replace", "path": "name.givenName", "value": "Alicia"}
            ]))),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["name"]["givenName"], "Alicia");
    assert_eq!(calls(&sim), 1);
    assert_eq!(sim.employee(&object_id).unwrap()["FirstName"], "Alicia");

    // Disable, without the aadOptscim062020 flag: "False" as a string.
    let (status, _, disabled) = bridge
        .send(
            reqwest::Method::PATCH,
            &format!("/Users/{id}"),
            Some(patch(
                json!([{"op": "Replace", "path": "active", "value": "False"}]),
            )),
        )
        .await;
    assert_eq!(status, 200, "{disabled}");
    assert_eq!(disabled["active"], false);
    assert_eq!(calls(&sim), 1);
    assert_eq!(locked(&sim, &object_id), true);

    // A disabled user is still returned.
    let (status, _, read) = bridge
        .send(reqwest::Method::GET, &format!("/Users/{id}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(read["active"], false);
    sim.reset_counters();

    // Re-enable, with If-Match on the current version.
    let (_, headers, _) = bridge
        .send(reqwest::Method::GET, &format!("/Users/{id}"), None)
        .await;
    let version = headers["etag"].to_str().unwrap().to_owned();
    sim.reset_counters();
    let stale = bridge
        .app
        .client
        .patch(bridge.app.url(&format!("/scim/v2/Users/{id}")))
        .bearer_auth(&bridge.token)
        .header("if-match", "W/\"1\"")
        .header("content-type", "application/scim+json")
        .body(patch(json!([{"op": "replace", "path": "active", "value": true}])).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 412);
    assert_eq!(calls(&sim), 0, "a stale If-Match costs no OData call");
    let enabled = bridge
        .app
        .client
        .patch(bridge.app.url(&format!("/scim/v2/Users/{id}")))
        .bearer_auth(&bridge.token)
        .header("if-match", version)
        .header("content-type", "application/scim+json")
        .body(patch(json!([{"op": "replace", "path": "active", "value": true}])).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(enabled.status(), 200);
    assert_eq!(calls(&sim), 1);
    assert_eq!(locked(&sim, &object_id), false);

    // Delete: a lock, never an OData DELETE; then 404 without asking C4C.
    let (status, _, _) = bridge
        .send(reqwest::Method::DELETE, &format!("/Users/{id}"), None)
        .await;
    assert_eq!(status, 204);
    let counters = sim.counters();
    assert_eq!((counters.total, counters.deletes), (1, 0));
    sim.reset_counters();
    assert_eq!(locked(&sim, &object_id), true);
    let (status, _, gone) = bridge
        .send(reqwest::Method::GET, &format!("/Users/{id}"), None)
        .await;
    assert_eq!(status, 404, "{gone}");
    assert_eq!(gone["status"], "404");
    let (_, _, found) = bridge
        .send(
            reqwest::Method::GET,
            "/Users?filter=userName+eq+%22alice%40contoso.com%22",
            None,
        )
        .await;
    assert_eq!(found["totalResults"], 0);
    assert_eq!(calls(&sim), 0);

    // Re-create: the same employee comes back (unlocked), under the same SCIM id.
    let (status, _, again) = bridge
        .send(reqwest::Method::POST, "/Users", Some(entra_user()))
        .await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["id"], id.as_str());
    assert_eq!(again["name"]["givenName"], "Alice");
    assert_eq!(calls(&sim), 1, "one PATCH reactivates");
    assert_eq!(sim.employees().len(), employees_before + 1);
    assert_eq!(locked(&sim, &object_id), false);
    assert_eq!(sim.employee(&object_id).unwrap()["FirstName"], "Alice");

    // Steady state: another user's create cycle (probe + POST) costs two calls.
    let mut bob = entra_user();
    bob["userName"] = json!("bob@contoso.com");
    bob["externalId"] = json!("bob");
    bob["emails"][0]["value"] = json!("bob@contoso.com");
    bob["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["employeeNumber"] =
        json!("100235");
    let (status, _, found) = bridge
        .send(
            reqwest::Method::GET,
            "/Users?filter=userName+eq+%22bob%40contoso.com%22",
            None,
        )
        .await;
    assert_eq!((status, found["totalResults"].clone()), (200, json!(0)));
    let (status, _, created_bob) = bridge
        .send(reqwest::Method::POST, "/Users", Some(bob))
        .await;
    assert_eq!(status, 201, "{created_bob}");
    assert_ne!(created_bob["id"], id.as_str());
    assert_eq!(calls(&sim), 2, "create cycle: lookup + create");
    assert_eq!(sim.employees().len(), employees_before + 2);

    // Every request left one mapping-log entry, with the C4C keys and no token.
    let log = bridge
        .app
        .store
        .query_log(&LogQuery {
            resource_id: Some(id.clone()),
            limit: 100,
            ..LogQuery::default()
        })
        .await
        .unwrap();
    let methods: Vec<&str> = log.iter().map(|r| r.entry.method.as_str()).collect();
    assert!(
        methods.contains(&"DELETE") && methods.contains(&"PATCH"),
        "{methods:?}"
    );
    let create = log
        .iter()
        .rev()
        .find(|r| r.entry.method == "POST" && r.entry.status == 201)
        .unwrap();
    assert_eq!(create.entry.object_id.as_deref(), Some(object_id.as_str()));
    assert_eq!(create.entry.client.as_deref(), Some("entra"));
    assert_eq!(create.entry.detail["action"], "create");
    assert!(create.entry.detail["trace"].is_array() || create.entry.detail["trace"].is_object());
    assert_eq!(create.entry.detail["odata"].as_array().unwrap().len(), 2);
    for record in &log {
        assert!(!record.entry.detail.to_string().contains(&bridge.token));
    }
});

on_both_backends!(
    users_without_c4c_are_unavailable,
    |backend: Backend| async move {
        let Some(app) = TestApp::spawn(backend).await else {
            return;
        };
        let issued = create_token(&app.store, "t", None).await.unwrap();
        let response = app
            .client
            .get(app.url("/scim/v2/Users"))
            .bearer_auth(issued.token.expose_secret())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 503);
        assert!(response.headers().contains_key("retry-after"));
        let body: Value = response.json().await.unwrap();
        assert!(body["detail"].as_str().unwrap().contains("[c4c]"), "{body}");
    }
);

on_both_backends!(
    link_replace_and_c4c_failures,
    |backend: Backend| async move {
        let sim = start_sim(3).await;
        let Some(bridge) = Bridge::start(backend, &sim).await else {
            return;
        };
        // An employee C4C already has (created by an administrator): POST links it.
        let planted = sim
            .plant_employee(json!({
                "FirstName": "Carol", "LastName": "Old", "UserID": "carol@contoso.com"
            }))
            .unwrap();
        let employees_before = sim.employees().len();
        let mut carol = entra_user();
        carol["userName"] = json!("carol@contoso.com");
        carol["externalId"] = json!("carol");
        carol["name"] = json!({"givenName": "Carol", "familyName": "Example"});
        carol["emails"][0]["value"] = json!("carol@contoso.com");
        carol["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] =
            json!({"department": "Sales"});
        sim.reset_counters();
        let (status, _, linked) = bridge
            .send(reqwest::Method::POST, "/Users", Some(carol.clone()))
            .await;
        assert_eq!(status, 201, "{linked}");
        let counters = sim.counters();
        assert_eq!(
            (
                counters.metadata,
                counters.reads,
                counters.posts,
                counters.total
            ),
            (0, 1, 0, 2),
            "lookup + one PATCH ($metadata was read at start-up): {counters:?}"
        );
        sim.reset_counters();
        assert_eq!(
            sim.employees().len(),
            employees_before,
            "no second employee"
        );
        assert_eq!(sim.employee(&planted).unwrap()["LastName"], "Example");
        let id = linked["id"].as_str().unwrap().to_owned();
        let row = bridge
            .app
            .store
            .get_resource(ResourceType::User, id.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.object_id.as_deref(), Some(planted.as_str()));

        // PUT with only bridge-kept changes (title) costs no OData call; a mapped change costs one.
        carol["title"] = json!("Head of Sales");
        let (status, _, replaced) = bridge
            .send(
                reqwest::Method::PUT,
                &format!("/Users/{id}"),
                Some(carol.clone()),
            )
            .await;
        assert_eq!(status, 200, "{replaced}");
        assert_eq!(replaced["title"], "Head of Sales");
        assert_eq!(calls(&sim), 0);
        carol["name"]["familyName"] = json!("Newer");
        let (status, _, replaced) = bridge
            .send(
                reqwest::Method::PUT,
                &format!("/Users/{id}"),
                Some(carol.clone()),
            )
            .await;
        assert_eq!(status, 200, "{replaced}");
        assert_eq!(calls(&sim), 1);
        assert_eq!(sim.employee(&planted).unwrap()["LastName"], "Newer");

        // C4C unavailable during a PATCH: 503 with Retry-After, and our row stays as it was.
        let before = bridge
            .app
            .store
            .get_resource(ResourceType::User, id.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        sim.faults().fail_next(
            1,
            c4c_scim_bridge::sim::Fault::Status503,
            c4c_scim_bridge::sim::FaultScope::Writes,
        );
        let (status, headers, failed) = bridge
            .send(
                reqwest::Method::PATCH,
                &format!("/Users/{id}"),
                Some(patch(
                    json!([{"op": "Replace", "path": "name.familyName", "value": "Lost"}]),
                )),
            )
            .await;
        assert_eq!(status, 503, "{failed}");
        assert!(headers.contains_key("retry-after"));
        let after = bridge
            .app
            .store
            .get_resource(ResourceType::User, id.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(after, before, "a failed C4C write leaves our row as it was");
        assert_eq!(sim.employee(&planted).unwrap()["LastName"], "Newer");

        // C4C unavailable during a create: 503, no row, no employee; the retry creates one.
        let mut dave = entra_user();
        dave["userName"] = json!("dave@contoso.com");
        dave["emails"][0]["value"] = json!("dave@contoso.com");
        dave["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] = json!({});
        sim.faults().fail_next(
            1,
            c4c_scim_bridge::sim::Fault::Status503,
            c4c_scim_bridge::sim::FaultScope::Writes,
        );
        let (status, headers, failed) = bridge
            .send(reqwest::Method::POST, "/Users", Some(dave.clone()))
            .await;
        assert_eq!(status, 503, "{failed}");
        assert!(headers.contains_key("retry-after"));
        assert!(
            bridge
                .app
                .store
                .find_live_by_name(ResourceType::User, "dave@contoso.com")
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(sim.employees().len(), employees_before);
        let (status, _, created) = bridge
            .send(reqwest::Method::POST, "/Users", Some(dave))
            .await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(sim.employees().len(), employees_before + 1);

        // The failures are in the mapping log with their OData outcome.
        let failures = bridge
            .app
            .store
            .query_log(&LogQuery {
                outcome: Some("failed".to_owned()),
                limit: 10,
                ..LogQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(failures.len(), 2);
        for failure in &failures {
            assert_eq!(failure.entry.status, 503);
            let odata = failure.entry.detail["odata"].as_array().unwrap();
            assert_eq!(
                odata.last().unwrap()["error_kind"],
                "unavailable",
                "{odata:?}"
            );
        }
    }
);

on_both_backends!(
    concurrent_posts_create_one_employee,
    |backend: Backend| async move {
        let sim = start_sim(2).await;
        let Some(bridge) = Bridge::start(backend, &sim).await else {
            return;
        };
        let employees_before = sim.employees().len();
        let bridge = std::sync::Arc::new(bridge);
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let bridge = bridge.clone();
                tokio::spawn(async move {
                    bridge
                        .send(reqwest::Method::POST, "/Users", Some(entra_user()))
                        .await
                })
            })
            .collect();
        let mut statuses = Vec::new();
        for task in tasks {
            let (status, _, body) = task.await.unwrap();
            if status == 409 {
                assert_eq!(body["scimType"], "uniqueness");
            }
            statuses.push(status);
        }
        assert_eq!(
            statuses.iter().filter(|&&s| s == 201).count(),
            1,
            "{statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|&&s| s == 409).count(),
            49,
            "{statuses:?}"
        );
        assert_eq!(sim.employees().len(), employees_before + 1);
        assert_eq!(sim.counters().posts, 1);
    }
);

/// Two bridge replicas on one PostgreSQL database: 50 concurrent POSTs of one userName, split
/// between them, create exactly one employee.
#[tokio::test]
async fn two_replicas_on_one_postgres_create_one_employee() {
    let sim = start_sim(2).await;
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let url = db.url.clone();
    let first = Bridge::start_on(db, &sim).await;
    let mut config = replica_config(&url);
    config.c4c = Some(c4c_config_for(&sim));
    let store = c4c_scim_bridge::store::Store::connect(&url, 5)
        .await
        .unwrap();
    let second = c4c_scim_bridge::app::Application::build(config, store)
        .await
        .unwrap();
    let second_addr = second.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        second
            .run_until(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    let employees_before = sim.employees().len();
    let first = std::sync::Arc::new(first);
    let tasks: Vec<_> = (0..50)
        .map(|n| {
            let first = first.clone();
            tokio::spawn(async move {
                let base = if n % 2 == 0 {
                    first.app.url("/scim/v2")
                } else {
                    format!("http://{second_addr}/scim/v2")
                };
                let response = first
                    .app
                    .client
                    .post(format!("{base}/Users"))
                    .bearer_auth(&first.token)
                    .header("content-type", "application/scim+json")
                    .body(entra_user().to_string())
                    .send()
                    .await
                    .unwrap();
                response.status().as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|&&s| s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 409).count(),
        49,
        "{statuses:?}"
    );
    assert_eq!(sim.employees().len(), employees_before + 1);
    assert_eq!(sim.counters().posts, 1);
    let _ = stop.send(());
    server.await.unwrap();
}

fn replica_config(url: &str) -> c4c_scim_bridge::config::Config {
    let mut config = c4c_scim_bridge::config::Config::default();
    config.server.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    config.store.url = Some(secrecy::SecretString::from(url.to_owned()));
    config
}

fn okta_user() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "test.user@okta.local",
        "name": {"givenName": "Test", "familyName": "User"},
        "emails": [{"primary": true, "value": "test.user@okta.local", "type": "work"}],
        "displayName": "Test User",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq",
        "active": true
    })
}

on_both_backends!(okta_lifecycle, |backend: Backend| async move {
    let sim = start_sim(2).await;
    let Some(bridge) = Bridge::start(backend, &sim).await else {
        return;
    };
    let employees_before = sim.employees().len();
    sim.reset_counters();

    // Connection test and the existence probe (%20-encoded), from the mapping table.
    let (status, _, page) = bridge
        .send(reqwest::Method::GET, "/Users?startIndex=1&count=2", None)
        .await;
    assert_eq!((status, page["totalResults"].clone()), (200, json!(0)));
    let probe = "/Users?filter=userName%20eq%20%22test.user%40okta.local%22&startIndex=1&count=100";
    let (status, _, found) = bridge.send(reqwest::Method::GET, probe, None).await;
    assert_eq!((status, found["totalResults"].clone()), (200, json!(0)));
    assert_eq!(calls(&sim), 0);

    // Create: the full object comes back; the password is never kept.
    let (status, _, created) = bridge
        .send(reqwest::Method::POST, "/Users", Some(okta_user()))
        .await;
    assert_eq!(status, 201, "{created}");
    assert!(created.get("password").is_none());
    assert_eq!(created["locale"], "en-US");
    assert_eq!(sim.counters().posts, 1);
    sim.reset_counters();
    assert_eq!(sim.employees().len(), employees_before + 1);
    let id = created["id"].as_str().unwrap().to_owned();
    let object_id = bridge
        .app
        .store
        .get_resource(ResourceType::User, id.parse().unwrap())
        .await
        .unwrap()
        .unwrap()
        .object_id
        .unwrap();
    assert_eq!(sim.employee(&object_id).unwrap()["LanguageCode"], "EN");
    let row = bridge
        .app
        .store
        .get_resource(ResourceType::User, id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(!row.scim_json.to_string().contains("1mz050nq"));

    // Profile update the AIW way: GET, then PUT of the whole object (id, meta, groups, password).
    let (status, _, mut current) = bridge
        .send(reqwest::Method::GET, &format!("/Users/{id}"), None)
        .await;
    assert_eq!(status, 200);
    current["name"]["familyName"] = json!("Renamed");
    current["groups"] = json!([]);
    current["password"] = json!("another");
    let (status, _, replaced) = bridge
        .send(
            reqwest::Method::PUT,
            &format!("/Users/{id}"),
            Some(current.clone()),
        )
        .await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(calls(&sim), 2, "GET + one PATCH");
    assert_eq!(sim.employee(&object_id).unwrap()["LastName"], "Renamed");

    // Deactivate: path-less replace with an object value.
    let (status, _, deactivated) = bridge
        .send(
            reqwest::Method::PATCH,
            &format!("/Users/{id}"),
            Some(patch(
                json!([{"op": "replace", "value": {"active": false}}]),
            )),
        )
        .await;
    assert_eq!(status, 200, "{deactivated}");
    assert_eq!(deactivated["active"], false);
    assert_eq!(calls(&sim), 1);
    assert_eq!(locked(&sim, &object_id), true);

    // Reactivate by PUT with active true.
    current["active"] = json!(true);
    let (status, _, reactivated) = bridge
        .send(reqwest::Method::PUT, &format!("/Users/{id}"), Some(current))
        .await;
    assert_eq!(status, 200, "{reactivated}");
    assert_eq!(calls(&sim), 1);
    assert_eq!(locked(&sim, &object_id), false);

    // The upper-cased probe and an import page find the user, with no OData call.
    let (_, _, found) = bridge
        .send(
            reqwest::Method::GET,
            "/Users?filter=userName%20eq%20%22TEST.USER%40OKTA.LOCAL%22",
            None,
        )
        .await;
    assert_eq!(found["totalResults"], 1);
    let (_, _, page) = bridge
        .send(reqwest::Method::GET, "/Users?startIndex=1&count=100", None)
        .await;
    assert_eq!(page["totalResults"], 1);
    assert_eq!(page["Resources"][0]["id"], id.as_str());
    assert_eq!(calls(&sim), 0);
    assert_eq!(sim.employees().len(), employees_before + 1);
});

on_both_backends!(
    create_after_commit_then_drop,
    |backend: Backend| async move {
        let sim = start_sim(2).await;
        let Some(bridge) = Bridge::start(backend, &sim).await else {
            return;
        };
        let employees_before = sim.employees().len();
        // C4C commits the create, then the connection drops: the bridge looks the employee up by
        // its business key instead of posting a second one.
        sim.faults().fail_next(
            1,
            c4c_scim_bridge::sim::Fault::CommitThenDrop,
            c4c_scim_bridge::sim::FaultScope::Writes,
        );
        let (status, _, created) = bridge
            .send(reqwest::Method::POST, "/Users", Some(entra_user()))
            .await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(sim.employees().len(), employees_before + 1);
        assert_eq!(sim.counters().posts, 1);
        let row = bridge
            .app
            .store
            .get_resource(
                ResourceType::User,
                created["id"].as_str().unwrap().parse().unwrap(),
            )
            .await
            .unwrap()
            .unwrap();
        let employee = sim.employee(row.object_id.as_deref().unwrap()).unwrap();
        assert_eq!(employee["UserID"], "alice@contoso.com");
    }
);
