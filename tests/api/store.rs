//! The store API, run on SQLite and on PostgreSQL with the same code.

use crate::on_both_backends;
use c4c_scim_bridge::store::{
    LogEntry, LogQuery, NewResource, OutboxStatus, ResourceType, StoreError,
};
use serde_json::json;
use uuid::Uuid;

use crate::harness::{Backend, TestDb};

fn new_user(name: &str, object_id: Option<&str>) -> NewResource {
    NewResource {
        id: Uuid::new_v4(),
        resource_type: ResourceType::User,
        object_id: object_id.map(str::to_owned),
        employee_id: Some("E1".to_owned()),
        external_id: Some(format!("ext-{name}")),
        user_name: name.to_owned(),
        scim_json: json!({"userName": name}),
        active: true,
    }
}

on_both_backends!(migrations_are_idempotent, |backend: Backend| async move {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store = db.store().await;
    assert_eq!(
        store.migrate().await.unwrap(),
        0,
        "second run applies nothing"
    );
    store.ping().await.unwrap();
});

on_both_backends!(
    user_name_is_unique_case_insensitively,
    |backend: Backend| async move {
        let Some(db) = TestDb::new(backend).await else {
            return;
        };
        let store = db.store().await;
        let first = store
            .insert_resource(&new_user("Ada.Lovelace@Example.com", None))
            .await
            .unwrap();
        assert_eq!(first.version, 1);
        let clash = store
            .insert_resource(&new_user("ada.lovelace@example.COM", None))
            .await;
        assert!(matches!(clash, Err(StoreError::Conflict(_))), "{clash:?}");
        // Unicode folding is done in Rust, so non-ASCII names compare case-insensitively too.
        store
            .insert_resource(&new_user("ÉMILE@example.com", None))
            .await
            .unwrap();
        let found = store
            .find_live_by_name(ResourceType::User, "émile@EXAMPLE.com")
            .await
            .unwrap();
        assert!(found.is_some());
        // The same name as a Group is a different resource type.
        let mut group = new_user("ada.lovelace@example.com", None);
        group.resource_type = ResourceType::Group;
        store.insert_resource(&group).await.unwrap();
    }
);

on_both_backends!(
    tombstone_frees_the_name_and_is_found_again,
    |backend: Backend| async move {
        let Some(db) = TestDb::new(backend).await else {
            return;
        };
        let store = db.store().await;
        let mut row = store
            .insert_resource(&new_user("grace", Some("OBJ1")))
            .await
            .unwrap();
        row.tombstone = true;
        row.active = false;
        let dead = store.update_resource(&row).await.unwrap();
        assert_eq!(dead.version, 2);
        assert!(
            store
                .find_live_by_name(ResourceType::User, "Grace")
                .await
                .unwrap()
                .is_none()
        );
        let tomb = store
            .find_tombstone_by_name(ResourceType::User, "GRACE")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(tomb.id, row.id);
        assert_eq!(tomb.object_id.as_deref(), Some("OBJ1"));
        // A second link to the same ObjectID is refused even while the first is a tombstone.
        let twice = store
            .insert_resource(&new_user("other", Some("OBJ1")))
            .await;
        assert!(matches!(twice, Err(StoreError::Conflict(_))), "{twice:?}");
        // A create of the name meets the tombstone; once the name is live again, the live row.
        let met = store
            .find_by_name_for_create(ResourceType::User, "gRACE")
            .await
            .unwrap()
            .unwrap();
        assert_eq!((met.id, met.tombstone), (row.id, true));
        let live = store
            .insert_resource(&new_user("grace", Some("OBJ2")))
            .await
            .unwrap();
        let met = store
            .find_by_name_for_create(ResourceType::User, "Grace")
            .await
            .unwrap()
            .unwrap();
        assert_eq!((met.id, met.tombstone), (live.id, false));
        assert!(
            store
                .find_by_name_for_create(ResourceType::User, "nobody")
                .await
                .unwrap()
                .is_none()
        );
    }
);

on_both_backends!(stale_version_is_refused, |backend: Backend| async move {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store = db.store().await;
    let row = store
        .insert_resource(&new_user("linus", None))
        .await
        .unwrap();
    let mut first = row.clone();
    first.scim_json = json!({"userName": "linus", "title": "a"});
    store.update_resource(&first).await.unwrap();
    let mut second = row.clone();
    second.scim_json = json!({"userName": "linus", "title": "b"});
    assert!(matches!(
        store.update_resource(&second).await,
        Err(StoreError::VersionMismatch)
    ));
    let stored = store
        .get_resource(ResourceType::User, row.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.scim_json["title"], "a");
    let mut missing = row.clone();
    missing.id = Uuid::new_v4();
    assert!(matches!(
        store.update_resource(&missing).await,
        Err(StoreError::NotFound(_))
    ));
});

on_both_backends!(
    lists_live_resources_with_total,
    |backend: Backend| async move {
        let Some(db) = TestDb::new(backend).await else {
            return;
        };
        let store = db.store().await;
        for index in 0..5 {
            store
                .insert_resource(&new_user(&format!("u{index}"), None))
                .await
                .unwrap();
        }
        let (page, total) = store
            .list_live_resources(ResourceType::User, 1, 2)
            .await
            .unwrap();
        assert_eq!(total, 5);
        assert_eq!(page.len(), 2);
        assert_eq!(page[0].user_name, "u1");
        let found = store
            .find_live_by_external_id(ResourceType::User, "ext-u3")
            .await
            .unwrap();
        assert_eq!(found.unwrap().user_name, "u3");
    }
);

on_both_backends!(
    mapping_log_query_and_retention,
    |backend: Backend| async move {
        let Some(db) = TestDb::new(backend).await else {
            return;
        };
        let store = db.store().await;
        for index in 0..10_i64 {
            store
                .append_log(LogEntry {
                    request_id: format!("r{index}"),
                    at: 1_000 + index,
                    method: "POST".to_owned(),
                    path: "/scim/v2/Users".to_owned(),
                    resource_id: Some(if index % 2 == 0 { "even" } else { "odd" }.to_owned()),
                    status: if index < 3 { 500 } else { 201 },
                    outcome: if index < 3 { "failure" } else { "success" }.to_owned(),
                    detail: json!({"index": index}),
                    ..LogEntry::default()
                })
                .await
                .unwrap();
        }
        let failures = store
            .query_log(&LogQuery {
                outcome: Some("failure".to_owned()),
                limit: 50,
                ..LogQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(failures.len(), 3);
        assert_eq!(failures[0].entry.request_id, "r2", "newest first");
        let even_recent = store
            .query_log(&LogQuery {
                resource_id: Some("even".to_owned()),
                since: Some(1_004),
                limit: 50,
                ..LogQuery::default()
            })
            .await
            .unwrap();
        let ids: Vec<_> = even_recent
            .iter()
            .map(|r| r.entry.request_id.as_str())
            .collect();
        assert_eq!(ids, ["r8", "r6", "r4"]);
        let page = store
            .query_log(&LogQuery {
                before_id: Some(even_recent[0].id),
                limit: 2,
                ..LogQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(page.len(), 2);
        assert_eq!(page[0].entry.detail["index"], 7);
        // Age drops r0 and r1; size then keeps the newest 5.
        let purged = store.purge_log(1_002, 5).await.unwrap();
        assert_eq!(purged, 5);
        let left = store
            .query_log(&LogQuery {
                limit: 50,
                ..LogQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(left.len(), 5);
        assert_eq!(left.last().unwrap().entry.request_id, "r5");
    }
);

on_both_backends!(
    concurrent_log_appends_are_all_stored_when_they_return,
    |backend: Backend| async move {
        let Some(db) = TestDb::new(backend).await else {
            return;
        };
        let store = db.store().await;
        // 300 appends at once: the writer groups them (at most 128 per statement); each caller
        // returns only after its own record is stored.
        let appends = (0..300_i64).map(|index| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .append_log(LogEntry {
                        request_id: format!("c{index}"),
                        at: 5_000 + index,
                        method: "GET".to_owned(),
                        path: format!("/scim/v2/Users/{index}"),
                        resource_id: Some(format!("u{index}")),
                        status: 200,
                        outcome: "ok".to_owned(),
                        detail: json!({"index": index, "text": "ünïcode \\ 'quote'"}),
                        ..LogEntry::default()
                    })
                    .await
                    .unwrap();
                let stored = store
                    .query_log(&LogQuery {
                        resource_id: Some(format!("u{index}")),
                        limit: 5,
                        ..LogQuery::default()
                    })
                    .await
                    .unwrap();
                assert_eq!(
                    stored.len(),
                    1,
                    "record {index} is stored when append returns"
                );
                assert_eq!(stored[0].entry.detail["index"], index);
                assert_eq!(stored[0].entry.path, format!("/scim/v2/Users/{index}"));
            })
        });
        for append in futures::future::join_all(appends).await {
            append.unwrap();
        }
        let all = store
            .query_log(&LogQuery {
                limit: 1000,
                ..LogQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(all.len(), 300);
        let mut seen: Vec<_> = all.iter().map(|r| r.entry.request_id.clone()).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 300, "no record lost or written twice");
    }
);

on_both_backends!(
    token_revoked_elsewhere_stops_within_the_cache_time,
    |backend: Backend| async move {
        let Some(db) = TestDb::new(backend).await else {
            return;
        };
        let store = db.store().await;
        let issued = c4c_scim_bridge::auth::create_token(&store, "idp", None)
            .await
            .unwrap();
        let id = issued.row.id.clone();
        assert!(
            store
                .get_token(&id)
                .await
                .unwrap()
                .unwrap()
                .revoked_at
                .is_none()
        );
        // Revoked through this handle: seen at once.
        let other = db.store().await;
        let second = c4c_scim_bridge::auth::create_token(&store, "idp2", None)
            .await
            .unwrap();
        assert_eq!(store.revoke_token("idp", 7).await.unwrap(), 1);
        assert_eq!(
            store.get_token(&id).await.unwrap().unwrap().revoked_at,
            Some(7)
        );
        // Revoked through another handle (another process or replica): seen once the cached row
        // is older than the cache time.
        assert!(
            store
                .get_token(&second.row.id)
                .await
                .unwrap()
                .unwrap()
                .revoked_at
                .is_none()
        );
        assert_eq!(other.revoke_token("idp2", 9).await.unwrap(), 1);
        tokio::time::sleep(
            c4c_scim_bridge::store::TOKEN_CACHE_TTL + std::time::Duration::from_millis(50),
        )
        .await;
        assert_eq!(
            store
                .get_token(&second.row.id)
                .await
                .unwrap()
                .unwrap()
                .revoked_at,
            Some(9)
        );
    }
);

#[tokio::test]
async fn an_idle_outbox_is_polled_without_the_sqlite_write_lock() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let store = db.store().await;
    // Another connection holds the file's write lock; a claim that needed it would wait the
    // busy timeout (10 s) and fail with SQLITE_BUSY. Nothing is due, so the claim only reads.
    let path = db.url.trim_start_matches("sqlite://").to_owned();
    let blocker = rusqlite::Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let claimed = store.claim_outbox("idle", 10, 60_000).await.unwrap();
    assert!(claimed.is_empty());
    blocker.execute_batch("ROLLBACK").unwrap();
    // Something due is claimed as before.
    store
        .enqueue_outbox("update", None, &json!({}))
        .await
        .unwrap();
    assert_eq!(
        store.claim_outbox("busy", 10, 60_000).await.unwrap().len(),
        1
    );
}

on_both_backends!(
    outbox_items_go_to_one_worker,
    |backend: Backend| async move {
        let Some(db) = TestDb::new(backend).await else {
            return;
        };
        let store = db.store().await;
        for index in 0..20 {
            store
                .enqueue_outbox("update", Some("u"), &json!({"n": index}))
                .await
                .unwrap();
        }
        assert_eq!(store.outbox_depth().await.unwrap().0, 20);
        // Four workers claim concurrently: every item is claimed exactly once.
        let mut tasks = Vec::new();
        for worker in 0..4 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let items = store
                        .claim_outbox(&format!("w{worker}"), 3, 60_000)
                        .await
                        .unwrap();
                    if items.is_empty() {
                        break mine;
                    }
                    mine.extend(items.into_iter().map(|item| item.id));
                }
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        all.sort_unstable();
        let before = all.len();
        all.dedup();
        assert_eq!(before, 20);
        assert_eq!(all.len(), 20);
        // Done, retried later, and failed items leave the running state.
        store
            .finish_outbox(all[0], OutboxStatus::Done, None, None)
            .await
            .unwrap();
        store
            .finish_outbox(all[1], OutboxStatus::Pending, Some("503"), Some(i64::MAX))
            .await
            .unwrap();
        let retried = store.get_outbox(all[1]).await.unwrap().unwrap();
        assert_eq!(retried.status, OutboxStatus::Pending);
        assert_eq!(retried.attempts, 1);
        assert_eq!(retried.last_error.as_deref(), Some("503"));
        assert!(
            store
                .claim_outbox("w9", 10, 60_000)
                .await
                .unwrap()
                .is_empty(),
            "not due yet"
        );
        // An expired lease makes a running item due again.
        store
            .enqueue_outbox("update", None, &json!({}))
            .await
            .unwrap();
        let leased = store.claim_outbox("dies", 1, -1).await.unwrap();
        assert_eq!(leased.len(), 1);
        let again = store.claim_outbox("rescuer", 1, 60_000).await.unwrap();
        assert_eq!(again[0].id, leased[0].id);
        assert_eq!(again[0].attempts, 2);
    }
);

on_both_backends!(
    in_flight_deprovisionings_count_per_client_until_removed_or_expired,
    |backend: Backend| async move {
        let Some(db) = TestDb::new(backend).await else {
            return;
        };
        let store = db.store().await;
        store.add_in_flight("a", Some("entra")).await.unwrap();
        store.add_in_flight("b", Some("entra")).await.unwrap();
        store.add_in_flight("c", None).await.unwrap();
        assert_eq!(store.count_in_flight(Some("entra"), 0).await.unwrap(), 2);
        assert_eq!(store.count_in_flight(None, 0).await.unwrap(), 1);
        assert_eq!(store.count_in_flight(Some("okta"), 0).await.unwrap(), 0);
        // Admitted before `since`: expired, not counted.
        let later = c4c_scim_bridge::store::now_millis() + 60_000;
        assert_eq!(
            store.count_in_flight(Some("entra"), later).await.unwrap(),
            0
        );
        store.remove_in_flight("a", 0).await.unwrap();
        assert_eq!(store.count_in_flight(Some("entra"), 0).await.unwrap(), 1);
        // Removing one also clears every row admitted before the cut-off.
        store.remove_in_flight("unknown", later).await.unwrap();
        assert_eq!(store.count_in_flight(Some("entra"), 0).await.unwrap(), 0);
        assert_eq!(store.count_in_flight(None, 0).await.unwrap(), 0);
    }
);
