//! Drift reconciliation end to end: users provisioned through /Users, drift planted by hand in
//! the simulator (an administrator's lock, edits, removal, a re-created employee, a removed
//! role), then `reconcile` finds each kind; `restore` policies repair what they name, report-only
//! leaves C4C untouched (simulator write counters). On SQLite and PostgreSQL.

use std::sync::Arc;

use c4c_scim_bridge::c4c::C4cClient;
use c4c_scim_bridge::provisioning::reconcile::{
    JOB_LOCK, ReconcileConfig, ReconcileJob, Reconciler, RunOptions,
};
use c4c_scim_bridge::sim::SimHandle;
use c4c_scim_bridge::store::{LogQuery, NewResource, ResourceType, Store};
use serde_json::{Value, json};

use crate::groups::Bridge;
use c4c_scim_bridge::auth::create_token;
use secrecy::ExposeSecret;

use crate::harness::{Backend, TestApp, TestDb, c4c_config_for, start_sim};
use crate::on_both_backends;

use crate::safety::{operator, operator_config};

/// The bridge with the groups rules (SALES_REP), and its store's URL for operator commands.
async fn start(
    backend: Backend,
    sim: &SimHandle,
    adjust: impl FnOnce(&mut c4c_scim_bridge::config::Config) + Send + 'static,
) -> Option<(Bridge, String)> {
    let db = TestDb::new(backend).await?;
    let url = db.url.clone();
    let c4c = c4c_config_for(sim);
    let app = TestApp::spawn_with(db, move |config| {
        config.c4c = Some(c4c);
        config.groups = crate::groups::rules();
        adjust(config);
    })
    .await;
    let issued = create_token(&app.store, "entra", None).await.unwrap();
    let token = issued.token.expose_secret().to_owned();
    Some((Bridge { app, token }, url))
}

fn reconciler(store: &Store, sim: &SimHandle, config: ReconcileConfig) -> Reconciler {
    let mapping = c4c_scim_bridge::config::Config::default()
        .resolved_mapping()
        .unwrap();
    Reconciler::new(
        store.clone(),
        C4cClient::new(c4c_config_for(sim)).unwrap(),
        Arc::new(c4c_scim_bridge::mapping::Mapper::new(mapping, None).unwrap()),
        config,
    )
}

fn findings_of<'a>(report: &'a Value, kind: &str) -> Vec<&'a Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == kind)
        .collect()
}

on_both_backends!(finds_each_kind_of_drift, |backend: Backend| async move {
    let sim = start_sim(2).await;
    let Some((bridge, store_url)) = start(backend, &sim, |_| {}).await else {
        return;
    };
    let mut users = Vec::new();
    for n in 0..6 {
        users.push(bridge.user(n).await);
    }
    let (status, _) = bridge
        .send(
            reqwest::Method::POST,
            "/Groups",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Sales Reps",
                "members": [{"value": users[5].0}],
            })),
        )
        .await;
    assert_eq!(status, 201);
    assert!(
        sim.business_roles_of(&users[5].1)
            .contains(&"SALES_REP".to_owned())
    );

    // A clean tenant has no drift.
    let store = bridge.app.store.clone();
    let clean = reconciler(&store, &sim, ReconcileConfig::default())
        .run(RunOptions {
            full: true,
            dry_run: false,
            trigger: "test",
        })
        .await
        .unwrap();
    assert!(
        clean.summary.findings.values().all(|n| *n == 0),
        "{:?}",
        clean.summary
    );
    assert_eq!(clean.summary.linked_compared, 6);
    assert_eq!(clean.summary.employees_read, 8);

    // Drift, by hand: an administrator locks user 0 and renames user 1 ...
    sim.edit_employee(&users[0].1, json!({"UserLockedIndicator": true}))
        .unwrap();
    sim.edit_employee(&users[1].1, json!({"FirstName": "Robert"}))
        .unwrap();
    // ... removes user 2's employee, and re-creates user 3's as a new employee (the link is lost).
    let before = sim.employee(&users[3].1).unwrap();
    assert!(sim.remove_employee(&users[2].1));
    assert!(sim.remove_employee(&users[3].1));
    let recreated = sim
        .plant_employee(json!({
            "EmployeeID": before["EmployeeID"],
            "UserID": before["UserID"],
            "FirstName": before["FirstName"],
            "LastName": before["LastName"],
            "Email": before["Email"],
        }))
        .unwrap();
    // ... takes SALES_REP away from user 5.
    let direct = C4cClient::new(c4c_config_for(&sim)).unwrap();
    for assignment in direct.list_role_assignments(&users[5].1).await.unwrap() {
        direct
            .delete_role_assignment(&assignment.object_id)
            .await
            .unwrap();
    }
    // Two SCIM users on one employee cannot be made through the API (the store's unique index
    // refuses it): planted in the store, as an older bridge or a restored backup could leave it.
    sqlx::query("DROP INDEX resources_object_id")
        .execute(store.pool())
        .await
        .unwrap();
    let ghost = uuid::Uuid::new_v4();
    store
        .insert_resource(&NewResource {
            id: ghost,
            resource_type: ResourceType::User,
            object_id: Some(users[4].1.clone()),
            employee_id: None,
            external_id: None,
            user_name: "ghost@contoso.com".into(),
            scim_json: json!({"userName": "ghost@contoso.com", "active": true}),
            active: true,
        })
        .await
        .unwrap();
    sim.reset_counters();

    let dir = tempfile::tempdir().unwrap();
    let config = operator_config(dir.path(), &store_url, &sim, "");
    let (code, out, err) = operator(&config, &["reconcile", "--full", "--json"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["summary"]["mode"], "full");

    let changed = findings_of(&report, "changed_in_c4c");
    let field = |object_id: &str, name: &str| {
        changed
            .iter()
            .find(|f| f["object_id"] == object_id && f["field"] == name)
            .copied()
            .unwrap_or_else(|| panic!("no {name} finding for {object_id}: {report}"))
    };
    let lock = field(&users[0].1, "UserLockedIndicator");
    assert_eq!(
        (lock["c4c_value"].clone(), lock["expected_value"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(lock["resource_id"], users[0].0.as_str());
    let name = field(&users[1].1, "FirstName");
    assert_eq!(
        (name["c4c_value"].clone(), name["expected_value"].clone()),
        (json!("Robert"), json!("Given1"))
    );
    let role = field(&users[5].1, "business_role");
    assert_eq!(role["expected_value"], "SALES_REP");
    assert_eq!(changed.len(), 3, "{report}");
    assert!(changed.iter().all(|f| f["action"] == "reported"));

    let missing = findings_of(&report, "missing_in_c4c");
    let mut missing_ids: Vec<&str> = missing
        .iter()
        .map(|f| f["resource_id"].as_str().unwrap())
        .collect();
    missing_ids.sort_unstable();
    let mut expected_missing = vec![users[2].0.as_str(), users[3].0.as_str()];
    expected_missing.sort_unstable();
    assert_eq!(missing_ids, expected_missing, "{report}");

    let unlinked = findings_of(&report, "unlinked_match");
    assert_eq!(unlinked.len(), 1, "{report}");
    assert_eq!(unlinked[0]["object_id"], recreated.as_str());
    assert_eq!(unlinked[0]["resource_id"], users[3].0.as_str());
    assert_eq!(unlinked[0]["field"], "EmployeeID");

    let twice = findings_of(&report, "linked_twice");
    assert_eq!(twice.len(), 1, "{report}");
    assert_eq!(twice[0]["object_id"], users[4].1.as_str());
    assert_eq!(
        twice[0]["expected_value"],
        json!([users[4].0, ghost.to_string()])
    );

    // Report only: C4C was read, never written.
    let counters = sim.counters();
    assert_eq!(counters.writes(), 0);
    assert!(counters.reads > 0);

    // The run and its findings are in the store for the admin API.
    let run = store.latest_reconcile_run(true).await.unwrap().unwrap();
    assert_eq!(run.status, "ok");
    assert_eq!(run.trigger_source, "cli");
    assert_eq!(run.id, report["run_id"].as_i64().unwrap());
    let counts = store.count_findings(run.id).await.unwrap();
    assert_eq!(
        counts,
        vec![
            ("changed_in_c4c".to_owned(), 3),
            ("linked_twice".to_owned(), 1),
            ("missing_in_c4c".to_owned(), 2),
            ("unlinked_match".to_owned(), 1),
        ]
    );

    // The human form lists the same findings.
    let (code, out, err) = operator(&config, &["reconcile", "--full", "--dry-run"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.matches("missing_in_c4c").count(), 2, "{out}");
    assert!(out.contains("Robert"), "{out}");
    assert!(err.contains("dry run"), "{err}");
});

on_both_backends!(
    restore_repairs_what_the_policy_names,
    |backend: Backend| async move {
        let sim = start_sim(0).await;
        let Some((bridge, store_url)) = start(backend, &sim, |_| {}).await else {
            return;
        };
        let mut users = Vec::new();
        for n in 0..3 {
            users.push(bridge.user(n).await);
        }
        let (status, _) = bridge
            .send(
                reqwest::Method::POST,
                "/Groups",
                Some(json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": "Sales Reps",
                    "members": [{"value": users[2].0}],
                })),
            )
            .await;
        assert_eq!(status, 201);
        // Deactivated by the identity provider: an administrator unlocking it is drift too.
        let (status, _) = bridge.set_active(&users[1].0, false).await;
        assert_eq!(status, 200);

        sim.edit_employee(
            &users[0].1,
            json!({"UserLockedIndicator": true, "FirstName": "Anna", "LastName": "Hand"}),
        )
        .unwrap();
        sim.edit_employee(&users[1].1, json!({"UserLockedIndicator": false}))
            .unwrap();
        let direct = C4cClient::new(c4c_config_for(&sim)).unwrap();
        for assignment in direct.list_role_assignments(&users[2].1).await.unwrap() {
            direct
                .delete_role_assignment(&assignment.object_id)
                .await
                .unwrap();
        }
        sim.reset_counters();

        let policies = "[reconcile.policies]\nactive = \"restore\"\nFirstName = \"restore\"\nbusiness_roles = \"restore\"\n";
        let dir = tempfile::tempdir().unwrap();
        let config = operator_config(dir.path(), &store_url, &sim, policies);

        // Dry run: says what it would restore, writes nothing.
        let (code, out, err) =
            operator(&config, &["reconcile", "--full", "--dry-run", "--json"]).await;
        assert_eq!(code, 0, "{out}{err}");
        let report: Value = serde_json::from_str(&out).unwrap();
        let actions: Vec<(&str, &str)> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["field"].as_str().unwrap(), f["action"].as_str().unwrap()))
            .collect();
        assert_eq!(actions.len(), 5, "{report}");
        for (field, action) in &actions {
            let wanted = if *field == "LastName" {
                "reported"
            } else {
                "would_restore"
            };
            assert_eq!(action, &wanted, "{field}: {report}");
        }
        assert_eq!(sim.counters().writes(), 0);

        let (code, out, err) = operator(&config, &["reconcile", "--full", "--json"]).await;
        assert_eq!(code, 0, "{out}{err}");
        let report: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(report["summary"]["restored"], 3, "{report}");
        // One PATCH per employee (user 0: lock and first name together), one role assignment.
        let counters = sim.counters();
        assert_eq!(counters.writes(), 3, "{counters:?}");
        let employee = sim.employee(&users[0].1).unwrap();
        assert_eq!(employee["UserLockedIndicator"], false);
        assert_eq!(employee["FirstName"], "Given0");
        assert_eq!(employee["LastName"], "Hand", "report-only field left alone");
        assert_eq!(
            sim.employee(&users[1].1).unwrap()["UserLockedIndicator"],
            true
        );
        assert!(
            sim.business_roles_of(&users[2].1)
                .contains(&"SALES_REP".to_owned())
        );

        // The restores are in the mapping log with actor "reconcile".
        let log = bridge
            .app
            .store
            .query_log(&LogQuery {
                limit: 100,
                ..LogQuery::default()
            })
            .await
            .unwrap();
        let restores: Vec<_> = log
            .iter()
            .filter(|r| r.entry.method == "RECONCILE")
            .collect();
        assert_eq!(restores.len(), 2);
        assert!(
            restores
                .iter()
                .all(|r| r.entry.detail["actor"] == "reconcile" && r.entry.outcome == "ok")
        );
        let user0 = restores
            .iter()
            .find(|r| r.entry.resource_id.as_deref() == Some(users[0].0.as_str()))
            .unwrap();
        assert_eq!(
            user0.entry.detail["fields"],
            json!(["FirstName", "UserLockedIndicator"])
        );

        // Restored locks are journaled like the bridge's other lock changes (for undo).
        let journal = bridge.app.store.changes_of(&users[1].1).await.unwrap();
        let last = journal.last().unwrap();
        assert_eq!(
            (last.change.actor.as_str(), last.change.kind.as_str()),
            ("reconcile", "deactivate")
        );
        assert_eq!(last.change.applied, json!({"UserLockedIndicator": true}));
        let journal = bridge.app.store.changes_of(&users[0].1).await.unwrap();
        assert_eq!(journal.last().unwrap().change.kind, "reactivate");

        // Repaired: the next run finds only the report-only field, and writes nothing.
        sim.reset_counters();
        let (code, out, err) = operator(&config, &["reconcile", "--full", "--json"]).await;
        assert_eq!(code, 0, "{out}{err}");
        let report: Value = serde_json::from_str(&out).unwrap();
        let findings = report["findings"].as_array().unwrap();
        assert_eq!(findings.len(), 1, "{report}");
        assert_eq!(findings[0]["field"], "LastName");
        assert_eq!(findings[0]["action"], "reported");
        assert_eq!(sim.counters().writes(), 0);
    }
);

on_both_backends!(
    lock_restores_pass_the_circuit_breaker,
    |backend: Backend| async move {
        let sim = start_sim(0).await;
        let Some((bridge, store_url)) = start(backend, &sim, |config| {
            config.safety.max_count = 5;
            config.safety.min_count = 1000;
        })
        .await
        else {
            return;
        };
        // Six users the identity provider deactivates: five applied, the sixth held for its
        // client. Its deprovisionings, under its own client name, do not count against
        // reconciliation's.
        let mut users = Vec::new();
        for n in 0..6 {
            let (id, object_id) = bridge.user(n).await;
            let (status, body) = bridge.set_active(&id, false).await;
            assert_eq!(status, 200, "{body}");
            users.push((id, object_id));
        }
        let scim_held = users.pop().unwrap();
        assert_ne!(
            sim.employee(&scim_held.1).unwrap()["UserLockedIndicator"],
            true
        );
        // An administrator unlocks the five in C4C.
        for (_, object_id) in &users {
            sim.edit_employee(object_id, json!({"UserLockedIndicator": false}))
                .unwrap();
        }
        let locked =
            |object_id: &str| sim.employee(object_id).unwrap()["UserLockedIndicator"] == true;
        sim.reset_counters();

        let extra = "[safety]\nmax_count = 2\nmin_count = 1000\n\
                     [reconcile.policies]\nactive = \"restore\"\n";
        let dir = tempfile::tempdir().unwrap();
        let config = operator_config(dir.path(), &store_url, &sim, extra);
        let (code, out, err) = operator(&config, &["reconcile", "--full", "--json"]).await;
        assert_eq!(code, 0, "{out}{err}");
        let report: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(report["summary"]["restored"], 2, "{report}");
        assert_eq!(report["summary"]["held"], 3, "{report}");
        assert_eq!(sim.counters().writes(), 2);
        let relocked: Vec<bool> = users.iter().map(|(_, o)| locked(o)).collect();
        assert_eq!(relocked.iter().filter(|l| **l).count(), 2, "{relocked:?}");
        let held_findings: Vec<&Value> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["action"] == "held")
            .collect();
        assert_eq!(held_findings.len(), 3, "{report}");
        assert!(
            held_findings.iter().all(|f| f["detail"]
                .as_str()
                .unwrap()
                .contains("held by the circuit breaker")),
            "{report}"
        );
        let store = bridge.app.store.clone();
        let held = store.list_held(Some("held"), None).await.unwrap();
        assert_eq!(held.len(), 4);
        let reconcile_held: Vec<_> = held.iter().filter(|h| h.client.is_none()).collect();
        assert_eq!(reconcile_held.len(), 3);
        assert!(reconcile_held.iter().all(|h| h.kind == "reconcile_lock"));
        let (code, out, err) =
            operator(&config, &["held", "list", "--kind", "reconcile_lock"]).await;
        assert_eq!(code, 0, "{err}");
        assert_eq!(out.lines().count(), 4, "{out}");
        let log = store
            .query_log(&LogQuery {
                limit: 100,
                ..LogQuery::default()
            })
            .await
            .unwrap();
        let held_log = log
            .iter()
            .filter(|r| r.entry.method == "RECONCILE" && r.entry.detail["action"] == "held")
            .count();
        assert_eq!(held_log, 3);

        // The same drift found again: held again, the held operations replaced, not piled up.
        let (code, out, err) = operator(&config, &["reconcile", "--full", "--json"]).await;
        assert_eq!(code, 0, "{out}{err}");
        let report: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(report["summary"]["held"], 3, "{report}");
        assert_eq!(report["summary"]["restored"], 0, "{report}");
        assert_eq!(store.list_held(Some("held"), None).await.unwrap().len(), 4);
        assert_eq!(sim.counters().writes(), 2);

        // Meanwhile the identity provider reactivates one of them: its held lock is stale.
        let comeback = users.iter().find(|(_, o)| !locked(o)).cloned().unwrap();
        let (status, body) = bridge.set_active(&comeback.0, true).await;
        assert_eq!(status, 200, "{body}");

        let (code, out, err) = operator(
            &config,
            &[
                "held",
                "release",
                "--kind",
                "reconcile_lock",
                "--by",
                "alice",
            ],
        )
        .await;
        assert_eq!(code, 0, "{out}{err}");
        assert_eq!(out.matches("released").count(), 2, "{out}");
        assert_eq!(out.matches("superseded").count(), 1, "{out}");
        // The identity provider's own held deactivation is another kind: still held.
        let still_held = store.list_held(Some("held"), None).await.unwrap();
        assert_eq!(still_held.len(), 1);
        assert_eq!(still_held[0].kind, "deactivate");
        assert_eq!(still_held[0].resource_id, scim_held.0);
        let (code, _, err) = operator(
            &config,
            &[
                "held",
                "discard",
                "--kind",
                "reconcile_lock",
                "--by",
                "alice",
            ],
        )
        .await;
        assert_eq!(code, 0, "{err}");
        assert!(
            err.contains("no held operation of kind reconcile_lock"),
            "{err}"
        );
        assert_eq!(store.list_held(Some("held"), None).await.unwrap().len(), 1);
        for (id, object_id) in &users {
            assert_eq!(locked(object_id), *id != comeback.0, "{id}");
        }
        // Released locks are journaled with the operator as approver, for undo.
        let mut approved = 0;
        for (id, object_id) in &users {
            let journal = store.changes_of(object_id).await.unwrap();
            let last = journal.last().unwrap();
            if *id == comeback.0 {
                assert_eq!(last.change.kind, "reactivate");
            } else if last.change.approved_by.as_deref() == Some("alice") {
                assert_eq!(last.change.kind, "deactivate");
                assert_eq!(last.change.applied, json!({"UserLockedIndicator": true}));
                approved += 1;
            }
        }
        assert_eq!(approved, 2);

        // Nothing left to restore.
        sim.reset_counters();
        let (code, out, err) = operator(&config, &["reconcile", "--full", "--json"]).await;
        assert_eq!(code, 0, "{out}{err}");
        let report: Value = serde_json::from_str(&out).unwrap();
        assert!(
            report["findings"].as_array().unwrap().is_empty(),
            "{report}"
        );
        assert_eq!(sim.counters().writes(), 0);
    }
);

on_both_backends!(
    a_lock_restore_the_breaker_cannot_decide_on_writes_nothing,
    |backend: Backend| async move {
        let sim = start_sim(0).await;
        let Some((bridge, store_url)) = start(backend, &sim, |_| {}).await else {
            return;
        };
        let (id, object_id) = bridge.user(0).await;
        let (status, body) = bridge.set_active(&id, false).await;
        assert_eq!(status, 200, "{body}");
        sim.edit_employee(&object_id, json!({"UserLockedIndicator": false}))
            .unwrap();
        sim.reset_counters();
        // The breaker's store fails: its count of deprovisionings in flight cannot be read.
        sqlx::query("DROP TABLE safety_in_flight")
            .execute(bridge.app.store.pool())
            .await
            .unwrap();

        let dir = tempfile::tempdir().unwrap();
        let config = operator_config(
            dir.path(),
            &store_url,
            &sim,
            "[reconcile.policies]\nactive = \"restore\"\n",
        );
        let (code, out, err) = operator(&config, &["reconcile", "--full", "--json"]).await;
        assert_eq!(code, 0, "{out}{err}");
        let report: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(report["summary"]["restore_failed"], 1, "{report}");
        assert_eq!(report["summary"]["restored"], 0, "{report}");
        let finding = &report["findings"][0];
        assert_eq!(finding["action"], "restore_failed", "{report}");
        assert!(
            finding["detail"]
                .as_str()
                .unwrap()
                .starts_with("circuit breaker:"),
            "{report}"
        );
        // Not admitted, not written.
        assert_eq!(sim.counters().writes(), 0);
        assert_eq!(
            sim.employee(&object_id).unwrap()["UserLockedIndicator"],
            false
        );
    }
);

on_both_backends!(
    delta_reads_changes_after_the_watermark,
    |backend: Backend| async move {
        let sim = start_sim(3).await;
        let Some((bridge, _)) = start(backend, &sim, |_| {}).await else {
            return;
        };
        let mut users = Vec::new();
        for n in 0..2 {
            users.push(bridge.user(n).await);
        }
        let store = bridge.app.store.clone();
        let config = ReconcileConfig {
            overlap_secs: 0,
            ..ReconcileConfig::default()
        };
        let delta = RunOptions {
            full: false,
            dry_run: false,
            trigger: "test",
        };
        // No watermark yet: the first run is full and sets it.
        let first = reconciler(&store, &sim, config.clone())
            .run(delta)
            .await
            .unwrap();
        assert_eq!(first.summary.mode, "full");
        assert_eq!(first.summary.employees_read, 5);
        assert!(first.summary.watermark_to.is_some());

        sim.edit_employee(&users[1].1, json!({"FirstName": "Changed"}))
            .unwrap();
        // The watermark never passes a run's start: the change is a moment older.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        sim.reset_counters();
        let second = reconciler(&store, &sim, config.clone())
            .run(delta)
            .await
            .unwrap();
        assert_eq!(second.summary.mode, "delta");
        assert_eq!(second.summary.employees_read, 1, "{:?}", second.summary);
        assert_eq!(second.summary.findings["changed_in_c4c"], 1);
        assert_eq!(sim.counters().writes(), 0);
        let findings = store
            .reconcile_findings(second.run_id, 0, 10)
            .await
            .unwrap();
        assert_eq!(findings[0].finding.field.as_deref(), Some("FirstName"));
        assert_eq!(
            findings[0].finding.object_id.as_deref(),
            Some(users[1].1.as_str())
        );

        // Nothing changed since: nothing read.
        let third = reconciler(&store, &sim, config.clone())
            .run(delta)
            .await
            .unwrap();
        assert_eq!(third.summary.employees_read, 0);

        // A dry run keeps the watermark.
        sim.edit_employee(&users[0].1, json!({"LastName": "Changed"}))
            .unwrap();
        // The watermark never passes a run's start: the change is a moment older.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        let dry = RunOptions {
            dry_run: true,
            ..delta
        };
        let fourth = reconciler(&store, &sim, config.clone())
            .run(dry)
            .await
            .unwrap();
        assert_eq!(fourth.summary.employees_read, 1);
        let fifth = reconciler(&store, &sim, config).run(delta).await.unwrap();
        assert_eq!(fifth.summary.employees_read, 1);
        assert_eq!(fifth.summary.findings["changed_in_c4c"], 1);
    }
);

on_both_backends!(
    job_runs_under_the_replica_lock,
    |backend: Backend| async move {
        let sim = start_sim(1).await;
        let Some((bridge, _)) = start(backend, &sim, |config| {
            config.reconcile.enabled = true;
            config.reconcile.interval_secs = 3600;
        })
        .await
        else {
            return;
        };
        // `serve` runs the job once at start.
        let store = bridge.app.store.clone();
        let mut run = None;
        for _ in 0..200 {
            run = store.latest_reconcile_run(true).await.unwrap();
            if run.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let run = run.expect("the job ran");
        assert_eq!(
            (run.trigger_source.as_str(), run.status.as_str()),
            ("job", "ok")
        );
        let metrics = bridge
            .app
            .client
            .get(bridge.app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("drift_findings{kind=\"missing_in_c4c\"}"),
            "{metrics}"
        );

        // While another replica holds the job's lock, a run is skipped (PostgreSQL; SQLite is one
        // process's store and has no replicas).
        let job = ReconcileJob::new(reconciler(&store, &sim, ReconcileConfig::default()));
        let held = store
            .try_lock_across_replicas(JOB_LOCK)
            .await
            .unwrap()
            .unwrap();
        let ran = job.run_once(false).await;
        assert_eq!(ran, backend == Backend::Sqlite);
        held.release().await;
        assert!(job.run_once(false).await);
    }
);
