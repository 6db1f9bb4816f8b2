//! Safe deprovisioning end to end: a burst of deactivations above the breaker's threshold is
//! held (C4C untouched, counted by the simulator), then released or discarded by an operator;
//! undo of a time range restores the employees' previous state. Operator commands run through
//! the real binary.

use std::process::Command;

use c4c_scim_bridge::provisioning::safety::{HoldPolicy, Safety, SafetyConfig};
use c4c_scim_bridge::sim::SimHandle;
use c4c_scim_bridge::store::{LogQuery, ResourceType, Store};
use serde_json::{Value, json};

use crate::harness::{Backend, TestApp, TestDb, binary, c4c_config_for, start_sim};
use crate::on_both_backends;
use crate::users::{Bridge, entra_user, patch};

fn user(n: usize) -> Value {
    let mut user = entra_user();
    let login = format!("user{n}@contoso.com");
    user["userName"] = json!(login);
    user["externalId"] = json!(format!("user{n}"));
    user["emails"] = json!([{"primary": true, "type": "work", "value": login}]);
    user["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] = json!({});
    user
}

/// Creates `n` users; their SCIM ids and ObjectIDs.
async fn create_users(bridge: &Bridge, n: usize) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for i in 0..n {
        let (status, _, created) = bridge
            .send(reqwest::Method::POST, "/Users", Some(user(i)))
            .await;
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_str().unwrap().to_owned();
        let row = bridge
            .app
            .store
            .get_resource(ResourceType::User, id.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        out.push((id, row.object_id.unwrap()));
    }
    out
}

async fn disable(bridge: &Bridge, id: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    bridge
        .send(
            reqwest::Method::PATCH,
            &format!("/Users/{id}"),
            Some(patch(
                json!([{"op": "replace", "path": "active", "value": false}]),
            )),
        )
        .await
}

fn locked(sim: &SimHandle, object_id: &str) -> bool {
    sim.employee(object_id).unwrap()["UserLockedIndicator"] == true
}

async fn row(store: &Store, id: &str) -> c4c_scim_bridge::store::ResourceRow {
    store
        .get_resource(ResourceType::User, id.parse().unwrap())
        .await
        .unwrap()
        .unwrap()
}

/// A configuration file for operator commands on this store and tenant, with `extra` TOML after.
pub(crate) fn operator_config(
    dir: &std::path::Path,
    store_url: &str,
    sim: &SimHandle,
    extra: &str,
) -> std::path::PathBuf {
    let path = dir.join("operator.toml");
    std::fs::write(
        &path,
        format!(
            "[store]\nurl = \"{store_url}\"\n[c4c]\nbase_url = \"{}/\"\n[c4c.retry]\nmax_attempts = 1\n\
             [c4c.auth]\nmode = \"basic\"\nuser = \"{}\"\npassword = \"{}\"\n{extra}",
            sim.service_url(),
            c4c_scim_bridge::sim::DEFAULT_USER,
            c4c_scim_bridge::sim::DEFAULT_PASSWORD,
        ),
    )
    .unwrap();
    path
}

/// Runs the binary off the runtime's thread, so the in-process simulator keeps answering.
pub(crate) async fn operator(config: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let config = config.to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(binary())
            .arg("--config")
            .arg(config)
            .args(args)
            .env("C4C_SCIM_BRIDGE__LOG__LEVEL", "warn")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn breaker(max_count: u32, policy: HoldPolicy) -> SafetyConfig {
    SafetyConfig {
        max_count,
        // The share rule is tested apart; here only the count trips.
        min_count: 1000,
        policy,
        retry_after_secs: 120,
        ..SafetyConfig::default()
    }
}

/// The simulator and a bridge on `backend` whose breaker is `safety`; `None` when the backend is
/// skipped.
async fn bridge_with_breaker(
    backend: Backend,
    safety: SafetyConfig,
) -> Option<(SimHandle, Bridge)> {
    let sim = start_sim(2).await;
    let db = TestDb::new(backend).await?;
    let bridge = Bridge::start_configured(db, &sim, |config| config.safety = safety).await;
    Some((sim, bridge))
}

/// Two replicas on one PostgreSQL database, configured alike by `adjust`, the second using the
/// first's token (the same database: the same client on both); `None` without PostgreSQL.
async fn two_replicas(
    sim: &SimHandle,
    adjust: impl Fn(&mut c4c_scim_bridge::config::Config) + Send + 'static,
) -> Option<(Bridge, Bridge)> {
    let db = TestDb::new(Backend::Postgres).await?;
    let second_db = db.same_database();
    let adjust = std::sync::Arc::new(adjust);
    let first = Bridge::start_configured(db, sim, {
        let adjust = adjust.clone();
        move |config| adjust(config)
    })
    .await;
    let c4c = c4c_config_for(sim);
    let second = Bridge {
        app: TestApp::spawn_with(second_db, move |config| {
            config.c4c = Some(c4c);
            adjust(config);
        })
        .await,
        token: first.token.clone(),
    };
    Some((first, second))
}

on_both_backends!(burst_is_held_then_released, |backend: Backend| async move {
    let sim = start_sim(2).await;
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store_url = db.url.clone();
    let bridge = Bridge::start_configured(db, &sim, |config| {
        config.safety = breaker(3, HoldPolicy::HoldQuietly);
    })
    .await;
    let users = create_users(&bridge, 6).await;
    sim.reset_counters();

    // Three deactivations are within the threshold and applied.
    for (id, object_id) in &users[..3] {
        let (status, _, body) = disable(&bridge, id).await;
        assert_eq!(status, 200, "{body}");
        assert!(locked(&sim, object_id));
    }
    assert_eq!(sim.counters().writes(), 3);

    // The burst goes on: held quietly (success answers), C4C untouched.
    let (status, _, body) = disable(&bridge, &users[3].0).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active"], false);
    let (status, _, _) = bridge
        .send(
            reqwest::Method::DELETE,
            &format!("/Users/{}", users[4].0),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _, body) = disable(&bridge, &users[5].0).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        sim.counters().writes(),
        3,
        "held operations never reach C4C"
    );
    for (id, object_id) in &users[3..] {
        assert!(!locked(&sim, object_id));
        let stored = row(&bridge.app.store, id).await;
        assert!(stored.active && !stored.tombstone, "our row waits too");
    }
    let held = bridge
        .app
        .store
        .list_held(Some("held"), None)
        .await
        .unwrap();
    assert_eq!(held.len(), 3);
    assert_eq!(held[1].kind, "delete");
    assert!(held.iter().all(|h| h.client.as_deref() == Some("entra")));
    // The decision is in the mapping log, with who made it.
    let log = bridge
        .app
        .store
        .query_log(&LogQuery {
            resource_id: Some(users[3].0.clone()),
            limit: 5,
            ..LogQuery::default()
        })
        .await
        .unwrap();
    let detail = &log[0].entry.detail;
    assert_eq!(detail["action"], "held", "{detail}");
    assert_eq!(detail["safety"]["decided_by"], "circuit_breaker");
    assert_eq!(detail["safety"]["reason"]["count_in_window"], 4);
    // An applied deactivation carries its time to lock.
    let log = bridge
        .app
        .store
        .query_log(&LogQuery {
            resource_id: Some(users[0].0.clone()),
            limit: 1,
            ..LogQuery::default()
        })
        .await
        .unwrap();
    assert!(log[0].entry.detail["time_to_lock_ms"].as_i64().is_some());

    // The operator lists and releases the batch: C4C ends as the identity provider asked.
    let dir = tempfile::tempdir().unwrap();
    let config = operator_config(dir.path(), &store_url, &sim, "");
    let (code, out, err) = operator(&config, &["held", "list"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 4, "{out}");
    let (code, out, err) = operator(&config, &["held", "release", "--all", "--by", "alice"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.matches("released").count(), 3, "{out}");
    assert_eq!(sim.counters().writes(), 6);
    for (id, object_id) in &users[3..] {
        assert!(locked(&sim, object_id));
        let stored = row(&bridge.app.store, id).await;
        assert!(!stored.active);
    }
    assert!(row(&bridge.app.store, &users[4].0).await.tombstone);
    let (status, _, _) = bridge
        .send(
            reqwest::Method::GET,
            &format!("/Users/{}", users[4].0),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let all = bridge.app.store.list_held(None, None).await.unwrap();
    assert!(
        all.iter()
            .all(|h| h.status == "released" && h.decided_by.as_deref() == Some("alice"))
    );
    let releases: Vec<_> = bridge
        .app
        .store
        .query_log(&LogQuery {
            limit: 50,
            ..LogQuery::default()
        })
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.entry.method == "RELEASE")
        .collect();
    assert_eq!(releases.len(), 3);
    for release in &releases {
        assert_eq!(release.entry.detail["decided_by"], "alice");
        assert!(release.entry.detail["time_to_lock_ms"].as_i64().is_some());
    }
    // Released twice: nothing left to do.
    let (code, out, _) = operator(&config, &["held", "release", "--all", "--by", "alice"]).await;
    assert_eq!(code, 0);
    assert!(!out.contains("released"), "{out}");
    assert_eq!(sim.counters().writes(), 6);
});

on_both_backends!(
    retry_later_policy_then_discard,
    |backend: Backend| async move {
        let Some((sim, bridge)) =
            bridge_with_breaker(backend, breaker(1, HoldPolicy::RetryLater)).await
        else {
            return;
        };
        let users = create_users(&bridge, 3).await;
        let (status, _, _) = disable(&bridge, &users[0].0).await;
        assert_eq!(status, 200);
        sim.reset_counters();

        // Above the threshold: 503 with Retry-After; the identity provider's retries replace
        // the held operation instead of piling up.
        for _ in 0..2 {
            let (status, headers, body) = disable(&bridge, &users[1].0).await;
            assert_eq!(status, 503, "{body}");
            assert_eq!(headers["retry-after"], "120");
        }
        assert_eq!(sim.counters().writes(), 0);
        let held = bridge
            .app
            .store
            .list_held(Some("held"), None)
            .await
            .unwrap();
        assert_eq!(held.len(), 1);
        assert!(!locked(&sim, &users[1].1));

        // Discarded: nothing applied, the user stays active here and in C4C.
        let mapping = c4c_scim_bridge::config::Config::default()
            .resolved_mapping()
            .unwrap();
        let safety = Safety::new(
            bridge.app.store.clone(),
            c4c_scim_bridge::c4c::C4cClient::new(c4c_config_for(&sim)).unwrap(),
            std::sync::Arc::new(c4c_scim_bridge::mapping::Mapper::new(mapping, None).unwrap()),
            breaker(1, HoldPolicy::RetryLater),
        );
        let entra = c4c_scim_bridge::provisioning::safety::HeldFilter {
            client: Some("entra"),
            ..Default::default()
        };
        let outcomes = safety.discard(entra, "bob").await.unwrap();
        assert_eq!(outcomes.len(), 1);
        assert_eq!(outcomes[0].result, "discarded");
        assert_eq!(sim.counters().writes(), 0);
        assert!(row(&bridge.app.store, &users[1].0).await.active);
        let held = bridge.app.store.list_held(None, None).await.unwrap();
        assert_eq!(held[0].status, "discarded");
        assert_eq!(held[0].decided_by.as_deref(), Some("bob"));
        // Nothing held any more, but the window is still full: the next one is held again.
        let (status, _, _) = disable(&bridge, &users[2].0).await;
        assert_eq!(status, 503);
    }
);

on_both_backends!(
    concurrent_deactivations_stop_at_the_threshold,
    |backend: Backend| async move {
        let Some((sim, bridge)) =
            bridge_with_breaker(backend, breaker(4, HoldPolicy::HoldQuietly)).await
        else {
            return;
        };
        let users = create_users(&bridge, 12).await;
        sim.reset_counters();
        // A slow C4C: every request is admitted while the earlier ones are still in flight, none
        // of them journaled yet. Admissions must count those in flight, not only journaled ones.
        sim.faults().set_latency(
            std::time::Duration::from_millis(300),
            std::time::Duration::ZERO,
        );
        let answers =
            futures::future::join_all(users.iter().map(|(id, _)| disable(&bridge, id))).await;
        for (status, _, body) in &answers {
            assert_eq!(*status, 200, "{body}");
        }
        let applied = users
            .iter()
            .filter(|(_, object_id)| locked(&sim, object_id))
            .count();
        assert_eq!(applied, 4, "exactly the threshold is applied");
        assert_eq!(sim.counters().writes(), 4);
        let held = bridge
            .app
            .store
            .list_held(Some("held"), None)
            .await
            .unwrap();
        assert_eq!(held.len(), 8);
    }
);

/// Two replicas on one PostgreSQL database, each receiving half of a burst of deactivations
/// while C4C is slow: each replica must count the other's admitted but unconfirmed ones, so
/// the burst stops at the threshold as on one replica (before, each replica applied up to the
/// threshold on its own: 8 here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deactivations_on_two_replicas_stop_at_the_threshold() {
    let sim = start_sim(2).await;
    let Some((first, second)) = two_replicas(&sim, |config| {
        config.safety = breaker(4, HoldPolicy::HoldQuietly);
    })
    .await
    else {
        return;
    };
    let users = create_users(&first, 12).await;
    sim.reset_counters();
    sim.faults().set_latency(
        std::time::Duration::from_millis(300),
        std::time::Duration::ZERO,
    );
    let answers = futures::future::join_all(users.iter().enumerate().map(|(i, (id, _))| {
        let replica = if i % 2 == 0 { &first } else { &second };
        disable(replica, id)
    }))
    .await;
    for (status, _, body) in &answers {
        assert_eq!(*status, 200, "{body}");
    }
    let applied = users
        .iter()
        .filter(|(_, object_id)| locked(&sim, object_id))
        .count();
    assert_eq!(
        applied, 4,
        "exactly the threshold is applied across both replicas"
    );
    assert_eq!(sim.counters().writes(), 4);
    let held = first.app.store.list_held(Some("held"), None).await.unwrap();
    assert_eq!(held.len(), 8);
    // Every reservation was released once its change was journaled.
    assert_eq!(
        first
            .app
            .store
            .count_in_flight(Some("entra"), 0)
            .await
            .unwrap(),
        0
    );
}

/// The same for business-role removals: two groups of three members, deleted at once on two
/// replicas while C4C is slow, against `max_count = 3`: three removals made, three held (when
/// each replica counted only its own request's removals, all six were made).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_removals_on_two_replicas_stop_at_the_threshold() {
    let sim = start_sim(0).await;
    let Some((first, second)) = two_replicas(&sim, |config| {
        config.safety = breaker(3, HoldPolicy::HoldQuietly);
        config.groups = crate::groups::rules();
    })
    .await
    else {
        return;
    };
    let users = create_users(&first, 6).await;
    let mut groups = Vec::new();
    // Both names map to the business role SALES_REP (crate::groups::rules).
    for (name, members) in [("Sales Reps", &users[..3]), ("C4C_SALES_REP", &users[3..])] {
        let members: Vec<Value> = members.iter().map(|(id, _)| json!({"value": id})).collect();
        let (status, _, group) = first
            .send(
                reqwest::Method::POST,
                "/Groups",
                Some(json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": name,
                    "members": members,
                })),
            )
            .await;
        assert_eq!(status, 201, "{group}");
        groups.push(group["id"].as_str().unwrap().to_owned());
    }
    for (_, object_id) in &users {
        assert_eq!(sim.business_roles_of(object_id), ["SALES_REP"]);
    }
    sim.faults().set_latency(
        std::time::Duration::from_millis(300),
        std::time::Duration::ZERO,
    );
    let paths: Vec<String> = groups.iter().map(|id| format!("/Groups/{id}")).collect();
    let (a, b) = tokio::join!(
        first.send(reqwest::Method::DELETE, &paths[0], None),
        second.send(reqwest::Method::DELETE, &paths[1], None),
    );
    assert_eq!((a.0, b.0), (204, 204), "{} {}", a.2, b.2);
    let with_role = users
        .iter()
        .filter(|(_, object_id)| !sim.business_roles_of(object_id).is_empty())
        .count();
    assert_eq!(
        with_role, 3,
        "three removals made across both replicas, three held"
    );
    let held = first.app.store.list_held(Some("held"), None).await.unwrap();
    assert_eq!(held.len(), 3);
    assert!(held.iter().all(|h| h.kind == "role_removal"));
    assert_eq!(
        first
            .app
            .store
            .count_in_flight(Some("entra"), 0)
            .await
            .unwrap(),
        0
    );
}

on_both_backends!(share_of_linked_users_trips, |backend: Backend| async move {
    let safety = SafetyConfig {
        max_count: 1000,
        min_count: 2,
        max_share: 0.3,
        ..SafetyConfig::default()
    };
    let Some((sim, bridge)) = bridge_with_breaker(backend, safety).await else {
        return;
    };
    let users = create_users(&bridge, 5).await;
    sim.reset_counters();
    // 1 of 5 is under the minimum count; 2 of 5 (40 %) is above 30 %: held.
    for (id, _) in &users[..2] {
        let (status, _, _) = disable(&bridge, id).await;
        assert_eq!(status, 200);
    }
    assert_eq!(sim.counters().writes(), 1);
    assert!(locked(&sim, &users[0].1));
    assert!(!locked(&sim, &users[1].1));
});

on_both_backends!(undo_restores_a_range, |backend: Backend| async move {
    let sim = start_sim(2).await;
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store_url = db.url.clone();
    let bridge = Bridge::start_on(db, &sim).await;
    let users = create_users(&bridge, 4).await;
    let since = chrono::Utc::now() - chrono::Duration::milliseconds(1);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;

    // The range: two PATCHes and a DELETE; users[3] is untouched.
    let (status, _, _) = disable(&bridge, &users[0].0).await;
    assert_eq!(status, 200);
    let (status, _, _) = bridge
        .send(
            reqwest::Method::DELETE,
            &format!("/Users/{}", users[1].0),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _, _) = disable(&bridge, &users[2].0).await;
    assert_eq!(status, 200);
    // An administrator already unlocked users[2] by hand in C4C.
    sim.edit_employee(&users[2].1, json!({"UserLockedIndicator": false}))
        .unwrap();
    sim.reset_counters();

    let dir = tempfile::tempdir().unwrap();
    let config = operator_config(dir.path(), &store_url, &sim, "");
    let since = since.to_rfc3339();

    // Dry run: says what it would do, writes nothing.
    let (code, out, err) = operator(&config, &["undo", "--since", &since, "--dry-run"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.matches("would_restore").count(), 2, "{out}");
    assert_eq!(out.matches("unchanged").count(), 1, "{out}");
    assert_eq!(sim.counters().writes(), 0);

    // Another client's range is empty.
    let (code, out, _) = operator(&config, &["undo", "--since", &since, "--client", "okta"]).await;
    assert_eq!(code, 0);
    assert_eq!(out.trim(), "");
    assert_eq!(sim.counters().writes(), 0);
    sim.reset_counters();

    let (code, out, err) = operator(
        &config,
        &[
            "undo", "--since", &since, "--client", "entra", "--by", "carol",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.matches("restored").count(), 2, "{out}");
    let counters = sim.counters();
    assert_eq!(counters.writes(), 2);
    assert_eq!(counters.reads, 1, "one batched read for the range");
    for (_, object_id) in &users {
        assert!(!locked(&sim, object_id));
    }
    // Idempotent: a second run finds nothing left to undo.
    sim.reset_counters();
    let (code, out, _) = operator(&config, &["undo", "--since", &since, "--by", "carol"]).await;
    assert_eq!(code, 0);
    assert_eq!(out.trim(), "", "{out}");
    assert_eq!(sim.counters().writes(), 0);
    // The PATCH-disabled user is active again here; the deleted one stays deleted for the
    // identity provider (its next POST reactivates the same employee).
    assert!(row(&bridge.app.store, &users[0].0).await.active);
    assert!(row(&bridge.app.store, &users[1].0).await.tombstone);
    let (status, _, body) = bridge
        .send(
            reqwest::Method::GET,
            &format!("/Users/{}", users[0].0),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active"], true);
    let (status, _, body) = bridge
        .send(reqwest::Method::POST, "/Users", Some(user(1)))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["id"], users[1].0.as_str());
    let undos: Vec<_> = bridge
        .app
        .store
        .query_log(&LogQuery {
            limit: 50,
            ..LogQuery::default()
        })
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.entry.method == "UNDO")
        .collect();
    assert_eq!(undos.len(), 3);
    assert!(
        undos
            .iter()
            .all(|r| r.entry.detail["decided_by"] == "carol")
    );
});

// A deleted group takes its business role from every member at once: above the threshold the
// removals are held (the roles stay in C4C), and an operator's release makes them.
on_both_backends!(
    mass_role_removal_is_held_then_released,
    |backend: Backend| async move {
        let sim = start_sim(0).await;
        let Some(db) = TestDb::new(backend).await else {
            return;
        };
        let store_url = db.url.clone();
        let bridge = Bridge::start_configured(db, &sim, |config| {
            config.safety = breaker(3, HoldPolicy::HoldQuietly);
            config.groups = crate::groups::rules();
        })
        .await;
        let users = create_users(&bridge, 6).await;
        let members: Vec<Value> = users.iter().map(|(id, _)| json!({"value": id})).collect();
        let (status, _, group) = bridge
            .send(
                reqwest::Method::POST,
                "/Groups",
                Some(json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": "Sales Reps",
                    "members": members,
                })),
            )
            .await;
        assert_eq!(status, 201, "{group}");
        for (_, object_id) in &users {
            assert_eq!(sim.business_roles_of(object_id), ["SALES_REP"]);
        }

        let group_id = group["id"].as_str().unwrap();
        let (status, _, answer) = bridge
            .send(
                reqwest::Method::DELETE,
                &format!("/Groups/{group_id}"),
                None,
            )
            .await;
        assert_eq!(status, 204, "{answer}");
        let with_role = users
            .iter()
            .filter(|(_, object_id)| !sim.business_roles_of(object_id).is_empty())
            .count();
        assert_eq!(with_role, 3, "three removals made, three held");
        let held = bridge
            .app
            .store
            .list_held(Some("held"), None)
            .await
            .unwrap();
        assert_eq!(held.len(), 3);
        assert!(held.iter().all(|h| h.kind == "role_removal"));
        for (_, object_id) in &users {
            assert!(!locked(&sim, object_id), "a role removal locks nobody");
        }

        let dir = tempfile::tempdir().unwrap();
        let config = operator_config(dir.path(), &store_url, &sim, "");
        let (code, out, err) =
            operator(&config, &["held", "release", "--all", "--by", "alice"]).await;
        assert_eq!(code, 0, "{err}");
        assert_eq!(out.matches("released").count(), 3, "{out}");
        for (_, object_id) in &users {
            assert!(sim.business_roles_of(object_id).is_empty());
        }
    }
);
