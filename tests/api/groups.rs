//! /Groups end to end against the C4C simulator: groups as business roles, members as role
//! assignments (ObjectIDs kept, hand-made ones left alone), unmapped groups, a missing role,
//! and a 10,000-member group; simulator state and upstream calls checked after each step.

use c4c_scim_bridge::auth::create_token;
use c4c_scim_bridge::c4c::C4cClient;
use c4c_scim_bridge::config::Config;
use c4c_scim_bridge::provisioning::groups::{GroupRule, GroupsConfig};
use c4c_scim_bridge::sim::SimHandle;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::harness::{Backend, TestApp, TestDb, c4c_config_for, start_sim};
use crate::on_both_backends;

pub struct Bridge {
    pub app: TestApp,
    pub token: String,
}

impl Bridge {
    pub async fn start(
        backend: Backend,
        sim: &SimHandle,
        adjust: impl FnOnce(&mut Config) + Send + 'static,
    ) -> Option<Self> {
        let db = TestDb::new(backend).await?;
        Some(Self::start_on(db, sim, adjust).await)
    }

    /// A bridge on a given database (two of them on one PostgreSQL database are two replicas).
    pub async fn start_on(
        db: TestDb,
        sim: &SimHandle,
        adjust: impl FnOnce(&mut Config) + Send + 'static,
    ) -> Self {
        let c4c = c4c_config_for(sim);
        let app = TestApp::spawn_with(db, move |config| {
            config.c4c = Some(c4c);
            config.groups = rules();
            config.server.request_timeout_secs = 300;
            config.server.body_limit_bytes = 16 * 1024 * 1024;
            adjust(config);
        })
        .await;
        // One token per bridge: two bridges may share a database.
        let name = format!("entra-{}", app.addr.port());
        let issued = create_token(&app.store, &name, None).await.unwrap();
        let token = issued.token.expose_secret().to_owned();
        Self { app, token }
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
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
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|error| {
                panic!("{status} {error}: {}", &text[..text.len().min(300)])
            })
        };
        (status, body)
    }

    /// PATCHes a user's `active`, as an identity provider deactivates or reactivates it.
    pub async fn set_active(&self, id: &str, active: bool) -> (u16, Value) {
        self.send(
            reqwest::Method::PATCH,
            &format!("/Users/{id}"),
            Some(patch(json!([
                {"op": "replace", "path": "active", "value": active}
            ]))),
        )
        .await
    }

    /// Creates a user and returns (SCIM id, employee ObjectID).
    pub async fn user(&self, n: usize) -> (String, String) {
        let (status, body) = self
            .send(reqwest::Method::POST, "/Users", Some(user(n)))
            .await;
        assert_eq!(status, 201, "{body}");
        let id = body["id"].as_str().unwrap().to_owned();
        let row = self
            .app
            .store
            .get_resource(
                c4c_scim_bridge::store::ResourceType::User,
                uuid::Uuid::parse_str(&id).unwrap(),
            )
            .await
            .unwrap()
            .unwrap();
        (id, row.object_id.unwrap())
    }
}

pub fn user(n: usize) -> Value {
    json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        ],
        "userName": format!("user{n}@contoso.com"),
        "active": true,
        "name": {"givenName": format!("Given{n}"), "familyName": format!("Family{n}")},
        "emails": [{"primary": true, "type": "work", "value": format!("user{n}@contoso.com")}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": format!("{}", 700_000 + n)
        }
    })
}

pub fn rules() -> GroupsConfig {
    GroupsConfig {
        rules: vec![
            GroupRule {
                display_name: Some("Sales Reps".into()),
                business_role: Some("SALES_REP".into()),
                ..GroupRule::default()
            },
            GroupRule {
                display_name: Some("Ghosts".into()),
                business_role: Some("NO_SUCH_ROLE".into()),
                ..GroupRule::default()
            },
            GroupRule {
                pattern: Some("^C4C_(.+)$".into()),
                business_role: Some("$1".into()),
                ..GroupRule::default()
            },
            GroupRule {
                display_name: Some("Munich Office".into()),
                org_unit: Some("S3110".into()),
                org_role_code: Some("222".into()),
                ..GroupRule::default()
            },
        ],
        ..GroupsConfig::default()
    }
}

pub fn patch(operations: Value) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": operations
    })
}

fn group(name: &str, members: &[&str]) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": name,
        "members": members.iter().map(|m| json!({"value": m})).collect::<Vec<_>>(),
    })
}

fn member_ids(group: &Value) -> Vec<String> {
    let mut ids: Vec<String> = group["members"]
        .as_array()
        .map(|members| {
            members
                .iter()
                .map(|m| m["value"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

fn has_role(sim: &SimHandle, employee: &str, role: &str) -> bool {
    sim.business_roles_of(employee).iter().any(|r| r == role)
}

on_both_backends!(
    business_role_group_lifecycle,
    |backend: Backend| async move {
        let sim = start_sim(0).await;
        let Some(bridge) = Bridge::start(backend, &sim, |_| {}).await else {
            return;
        };
        let (u1, e1) = bridge.user(1).await;
        let (u2, e2) = bridge.user(2).await;
        let (u3, e3) = bridge.user(3).await;
        // SALES_REP given to user 3 by hand in C4C, before the bridge knew of any group.
        let direct = C4cClient::new(c4c_config_for(&sim)).unwrap();
        direct
            .create_role_assignment(&e3, "SALES_REP", None)
            .await
            .unwrap();
        let employees = sim.employees().len();
        sim.reset_counters();

        // Create with two members: one $batch reads their assignments, one $batch creates both.
        let (status, created) = bridge
            .send(
                reqwest::Method::POST,
                "/Groups",
                Some(group("Sales Reps", &[&u1, &u2])),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_str().unwrap().to_owned();
        assert_eq!(member_ids(&created), {
            let mut v = vec![u1.clone(), u2.clone()];
            v.sort();
            v
        });
        let ext = &created["urn:c4c-scim-bridge:schemas:extension:c4c:2.0:Group"];
        assert_eq!(ext["businessRoleId"], "SALES_REP", "{created}");
        assert!(has_role(&sim, &e1, "SALES_REP") && has_role(&sim, &e2, "SALES_REP"));
        let counters = sim.counters();
        assert_eq!(
            (counters.batches, counters.posts, counters.deletes),
            (2, 0, 0)
        );
        sim.reset_counters();

        // excludedAttributes=members: no member is read or returned; no upstream call.
        let (status, light) = bridge
            .send(
                reqwest::Method::GET,
                &format!("/Groups/{id}?excludedAttributes=members"),
                None,
            )
            .await;
        assert_eq!(status, 200);
        assert!(light.get("members").is_none(), "{light}");
        assert_eq!(light["displayName"], "Sales Reps");
        let (status, found) = bridge
            .send(
                reqwest::Method::GET,
                "/Groups?filter=displayName+eq+%22sales+reps%22&excludedAttributes=members",
                None,
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(found["totalResults"], 1);
        assert!(found["Resources"][0].get("members").is_none());
        assert_eq!(sim.counters().total, 0);

        // Adding user 3, who holds the role by hand: adopted, nothing created.
        let (status, body) = bridge
            .send(
                reqwest::Method::PATCH,
                &format!("/Groups/{id}"),
                Some(patch(
                    json!([{"op": "add", "path": "members", "value": [{"value": u3}]}]),
                )),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(member_ids(&body).len(), 3);
        assert_eq!(sim.business_roles_of(&e3), vec!["SALES_REP".to_owned()]);
        let counters = sim.counters();
        assert_eq!((counters.posts, counters.batches), (0, 0), "{counters:?}");
        assert_eq!(counters.reads, 1, "one read of user 3's assignments");
        sim.reset_counters();

        // Removing user 1 costs one DELETE (the kept ObjectID), nothing else.
        let (status, body) = bridge
            .send(
                reqwest::Method::PATCH,
                &format!("/Groups/{id}"),
                Some(patch(
                    json!([{"op": "remove", "path": format!("members[value eq \"{u1}\"]")}]),
                )),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert!(!has_role(&sim, &e1, "SALES_REP"));
        let counters = sim.counters();
        assert_eq!(
            (counters.deletes, counters.reads, counters.batches),
            (1, 0, 0)
        );
        assert_eq!(counters.total - counters.csrf_fetches, 1);
        sim.reset_counters();

        // Removing user 3 leaves the hand-made assignment alone.
        let (status, _) = bridge
            .send(
                reqwest::Method::PATCH,
                &format!("/Groups/{id}"),
                Some(patch(
                    json!([{"op": "remove", "path": format!("members[value eq \"{u3}\"]")}]),
                )),
            )
            .await;
        assert_eq!(status, 200);
        assert!(has_role(&sim, &e3, "SALES_REP"));
        assert_eq!(sim.counters().total, 0);

        // Rename onto another role: user 2's SALES_REP is deleted and MARKETING assigned.
        let (status, renamed) = bridge
            .send(
                reqwest::Method::PATCH,
                &format!("/Groups/{id}"),
                Some(patch(
                    json!([{"op": "replace", "path": "displayName", "value": "C4C_MARKETING"}]),
                )),
            )
            .await;
        assert_eq!(status, 200, "{renamed}");
        assert_eq!(member_ids(&renamed), vec![u2.clone()]);
        assert!(!has_role(&sim, &e2, "SALES_REP") && has_role(&sim, &e2, "MARKETING"));
        assert_eq!(
            renamed["urn:c4c-scim-bridge:schemas:extension:c4c:2.0:Group"]["businessRoleId"],
            "MARKETING"
        );

        // Delete: the role leaves its members; employees stay as they were.
        sim.reset_counters();
        let (status, _) = bridge
            .send(reqwest::Method::DELETE, &format!("/Groups/{id}"), None)
            .await;
        assert_eq!(status, 204);
        assert!(!has_role(&sim, &e2, "MARKETING"));
        assert!(has_role(&sim, &e3, "SALES_REP"));
        assert_eq!(sim.employees().len(), employees);
        assert_eq!(sim.counters().deletes, 1);
        assert_eq!(
            sim.counters().patches + sim.counters().puts,
            0,
            "employees untouched"
        );
        assert_eq!(sim.employee(&e2).unwrap()["UserLockedIndicator"], false);
        let (status, _) = bridge
            .send(reqwest::Method::GET, &format!("/Groups/{id}"), None)
            .await;
        assert_eq!(status, 404);
    }
);

on_both_backends!(unmapped_group_stays_local, |backend: Backend| async move {
    let sim = start_sim(0).await;
    let Some(bridge) = Bridge::start(backend, &sim, |_| {}).await else {
        return;
    };
    let (u1, e1) = bridge.user(1).await;
    let roles_before = sim.business_roles_of(&e1);
    sim.reset_counters();
    let (status, created) = bridge
        .send(
            reqwest::Method::POST,
            "/Groups",
            Some(group("Everyone", &[&u1])),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created["urn:c4c-scim-bridge:schemas:extension:c4c:2.0:Group"]["mapping"],
        "unmapped"
    );
    assert_eq!(member_ids(&created), vec![u1.clone()]);
    let id = created["id"].as_str().unwrap();
    let (status, _) = bridge
        .send(reqwest::Method::DELETE, &format!("/Groups/{id}"), None)
        .await;
    assert_eq!(status, 204);
    assert_eq!(sim.counters().total, 0, "an unmapped group never calls C4C");
    assert_eq!(sim.business_roles_of(&e1), roles_before);
});

on_both_backends!(missing_role_is_reported, |backend: Backend| async move {
    let sim = start_sim(0).await;
    let Some(bridge) = Bridge::start(backend, &sim, |_| {}).await else {
        return;
    };
    let (u1, e1) = bridge.user(1).await;
    let (status, body) = bridge
        .send(
            reqwest::Method::POST,
            "/Groups",
            Some(group("Ghosts", &[&u1])),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("NO_SUCH_ROLE") && detail.contains("does not exist"),
        "{detail}"
    );
    assert!(sim.business_roles_of(&e1).is_empty());
    let (_, found) = bridge
        .send(
            reqwest::Method::GET,
            "/Groups?filter=displayName+eq+%22Ghosts%22",
            None,
        )
        .await;
    assert_eq!(found["totalResults"], 0, "the group was not kept");
});

on_both_backends!(org_unit_group, |backend: Backend| async move {
    let sim = start_sim(0).await;
    let Some(bridge) = Bridge::start(backend, &sim, |_| {}).await else {
        return;
    };
    let (u1, e1) = bridge.user(1).await;
    let org_before = sim
        .count("EmployeeOrganisationalUnitAssignmentCollection")
        .unwrap();
    let (status, created) = bridge
        .send(
            reqwest::Method::POST,
            "/Groups",
            Some(group("Munich Office", &[&u1])),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        sim.count("EmployeeOrganisationalUnitAssignmentCollection")
            .unwrap(),
        org_before + 1
    );
    let id = created["id"].as_str().unwrap();
    let (status, _) = bridge
        .send(reqwest::Method::DELETE, &format!("/Groups/{id}"), None)
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        sim.count("EmployeeOrganisationalUnitAssignmentCollection")
            .unwrap(),
        org_before
    );
    assert!(sim.employee(&e1).is_some());
});
