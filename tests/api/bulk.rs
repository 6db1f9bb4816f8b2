//! /Bulk end to end: new users go upstream as `$batch` changesets in chunks, bulkId references
//! across users and groups, failOnErrors, maxOperations, a `$batch` whose changesets fail
//! part-way, and a 2,000-member group built and trimmed in batches (10,000: the benchmark).

use serde_json::{Value, json};

use c4c_scim_bridge::store::{NewResource, ResourceType};

use crate::groups::{Bridge, patch, user};
use crate::harness::{Backend, TestDb, start_sim};
use crate::on_both_backends;

fn post_user(n: usize) -> Value {
    json!({"method": "POST", "path": "/Users", "bulkId": format!("u{n}"), "data": user(n)})
}

fn bulk(operations: Vec<Value>, fail_on_errors: Option<usize>) -> Value {
    let mut body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": operations,
    });
    if let Some(n) = fail_on_errors {
        body["failOnErrors"] = json!(n);
    }
    body
}

fn statuses(response: &Value) -> Vec<(String, String)> {
    response["Operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|op| {
            (
                op["bulkId"].as_str().unwrap_or("-").to_owned(),
                op["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

on_both_backends!(bulk_ids_order_and_resolve, |backend: Backend| async move {
    let sim = start_sim(0).await;
    let Some(bridge) = Bridge::start(backend, &sim, |_| {}).await else {
        return;
    };
    let (_, config) = bridge
        .send(reqwest::Method::GET, "/ServiceProviderConfig", None)
        .await;
    assert_eq!(config["bulk"]["supported"], true);
    assert_eq!(config["bulk"]["maxOperations"], 1000);
    sim.reset_counters();
    // The group comes first in the request but needs both users: it runs after them.
    let body = bulk(
        vec![
            json!({"method": "POST", "path": "/Groups", "bulkId": "g", "data": {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Sales Reps",
                "members": [{"value": "bulkId:u1"}, {"value": "bulkId:u2"}]
            }}),
            post_user(1),
            post_user(2),
        ],
        None,
    );
    let (status, response) = bridge
        .send(reqwest::Method::POST, "/Bulk", Some(body))
        .await;
    assert_eq!(status, 200, "{response}");
    assert_eq!(
        statuses(&response),
        vec![
            ("g".into(), "201".into()),
            ("u1".into(), "201".into()),
            ("u2".into(), "201".into())
        ],
        "results are reported in request order"
    );
    assert_eq!(
        response["Operations"][0]["location"]
            .as_str()
            .map(|l| l.contains("/Groups/")),
        Some(true)
    );
    // Both users in one $batch (plus one key lookup), then the group's read and create.
    let counters = sim.counters();
    assert_eq!(counters.posts, 0, "{counters:?}");
    assert_eq!(counters.batches, 3, "{counters:?}");
    let group_location = response["Operations"][0]["location"].as_str().unwrap();
    let group_id = group_location.rsplit('/').next().unwrap();
    let (_, group) = bridge
        .send(reqwest::Method::GET, &format!("/Groups/{group_id}"), None)
        .await;
    assert_eq!(group["members"].as_array().unwrap().len(), 2);
    for employee in sim.employees() {
        let object_id = employee["ObjectID"].as_str().unwrap();
        assert_eq!(
            sim.business_roles_of(object_id),
            vec!["SALES_REP".to_owned()]
        );
    }
    assert_eq!(sim.employees().len(), 2);

    // A reference to a bulkId that is not in the request: 409 for that operation only.
    let body = bulk(
        vec![
            json!({"method": "PATCH", "path": "/Groups/bulkId:nowhere", "data":
            patch(json!([{"op": "add", "path": "members", "value": [{"value": "x"}]}]))}),
        ],
        None,
    );
    let (status, response) = bridge
        .send(reqwest::Method::POST, "/Bulk", Some(body))
        .await;
    assert_eq!(status, 200);
    assert_eq!(response["Operations"][0]["status"], "409", "{response}");
});

on_both_backends!(
    fail_on_errors_stops_between_batches,
    |backend: Backend| async move {
        let sim = start_sim(0).await;
        let Some(bridge) = Bridge::start(backend, &sim, |config| {
            config.bulk.batch_size = 2;
            config.bulk.parallel_batches = 1;
            config.bulk.max_operations = 6;
        })
        .await
        else {
            return;
        };
        // Operation 2 lacks the required name and is refused; with failOnErrors 1 the first
        // $batch (operations 1 and 2) is reported and nothing after it runs.
        let mut broken = post_user(2);
        broken["data"]["name"] = json!({});
        broken["data"].as_object_mut().unwrap().remove("name");
        broken["data"]["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] = json!({});
        let body = bulk(
            vec![post_user(1), broken, post_user(3), post_user(4)],
            Some(1),
        );
        let (status, response) = bridge
            .send(reqwest::Method::POST, "/Bulk", Some(body))
            .await;
        assert_eq!(status, 200, "{response}");
        let results = statuses(&response);
        assert_eq!(results.len(), 2, "{response}");
        assert_eq!(results[0], ("u1".into(), "201".into()));
        assert!(results[1].1.starts_with('4'), "{response}");
        assert_eq!(sim.employees().len(), 1);

        // Without failOnErrors every operation runs and reports.
        let body = bulk(vec![post_user(3), post_user(4), post_user(5)], None);
        let (_, response) = bridge
            .send(reqwest::Method::POST, "/Bulk", Some(body))
            .await;
        assert_eq!(statuses(&response).len(), 3);
        assert_eq!(sim.employees().len(), 4);

        // maxOperations: 7 operations are refused as a whole with 413.
        let body = bulk((10..17).map(post_user).collect(), None);
        let (status, response) = bridge
            .send(reqwest::Method::POST, "/Bulk", Some(body))
            .await;
        assert_eq!(status, 413, "{response}");
        assert_eq!(sim.employees().len(), 4);
    }
);

fn without_name(n: usize) -> Value {
    let mut op = post_user(n);
    op["data"].as_object_mut().unwrap().remove("name");
    op["data"]["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] = json!({});
    op
}

// Rounds of parallel $batches would let operations run past the limit; under failOnErrors a
// round holds no more operations than errors still allowed, so nothing runs after the limit.
on_both_backends!(
    fail_on_errors_is_exact_within_a_round,
    |backend: Backend| async move {
        let sim = start_sim(0).await;
        let Some(bridge) = Bridge::start(backend, &sim, |config| {
            config.bulk.batch_size = 2;
            config.bulk.parallel_batches = 2;
        })
        .await
        else {
            return;
        };
        let body = bulk(
            vec![
                post_user(1),
                without_name(2),
                post_user(3),
                without_name(4),
                post_user(5),
            ],
            Some(1),
        );
        let (status, response) = bridge
            .send(reqwest::Method::POST, "/Bulk", Some(body))
            .await;
        assert_eq!(status, 200, "{response}");
        let results = statuses(&response);
        assert_eq!(results.len(), 2, "{response}");
        assert_eq!(results[0], ("u1".into(), "201".into()));
        assert!(results[1].1.starts_with('4'), "{response}");
        assert_eq!(
            sim.employees().len(),
            1,
            "nothing ran after the first error"
        );
    }
);

on_both_backends!(batch_failing_part_way, |backend: Backend| async move {
    let sim = start_sim(3).await;
    let Some(bridge) = Bridge::start(backend, &sim, |_| {}).await else {
        return;
    };
    // User 3 brings an EmployeeID an existing employee already has (the bridge matches on
    // UserID, so it cannot know): C4C refuses that changeset in the middle of the $batch; the
    // changesets before and after it are applied.
    let taken = sim.employees()[0]["EmployeeID"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = sim.employees().len();
    let mut clash = post_user(3);
    clash["data"]["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["employeeNumber"] =
        json!(taken);
    sim.reset_counters();
    let body = bulk(
        (1..=5)
            .map(|n| if n == 3 { clash.clone() } else { post_user(n) })
            .collect(),
        None,
    );
    let (status, response) = bridge
        .send(reqwest::Method::POST, "/Bulk", Some(body))
        .await;
    assert_eq!(status, 200, "{response}");
    let results = statuses(&response);
    assert_eq!(
        results.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>(),
        vec!["201", "201", "400", "201", "201"],
        "{response}"
    );
    assert!(
        response["Operations"][2]["response"]["detail"]
            .as_str()
            .unwrap()
            .contains("C4C"),
        "{response}"
    );
    assert_eq!(sim.employees().len(), before + 4);
    let counters = sim.counters();
    assert_eq!(
        counters.batches, 1,
        "one $batch for the five creates: {counters:?}"
    );
    assert_eq!(counters.posts, 0);
    // The refused user has no row; the four others do, each linked to its new employee.
    let (_, listed) = bridge
        .send(reqwest::Method::GET, "/Users?count=10", None)
        .await;
    assert_eq!(listed["totalResults"], 4);
});

on_both_backends!(large_group_batched, |backend: Backend| async move {
    // 10,000 in the release benchmark (docs/performance.md); 2,000 here keeps a debug build
    // fast enough for a test.
    const N: usize = 2_000;
    let sim = start_sim(0).await;
    let Some(bridge) = Bridge::start(backend, &sim, |config| {
        config.groups.holders_read_threshold = 500;
        // Removing 300 members at once is a mass role removal the breaker would hold (its own
        // test: safety::mass_role_removal_is_held_then_released); here it is about batching.
        config.safety.enabled = false;
    })
    .await
    else {
        return;
    };
    // Linked users, made directly (creating them is /Bulk's test, not this one's).
    let mut ids = Vec::with_capacity(N);
    for n in 0..N {
        let object_id = sim
            .plant_employee(json!({
                "FirstName": format!("Given{n}"),
                "LastName": format!("Family{n}"),
                "UserID": format!("MEMBER{n}"),
            }))
            .unwrap();
        let id = uuid::Uuid::new_v4();
        bridge
            .app
            .store
            .insert_resource(&NewResource {
                id,
                resource_type: ResourceType::User,
                object_id: Some(object_id),
                employee_id: None,
                external_id: None,
                user_name: format!("member{n}@contoso.com"),
                scim_json: json!({"userName": format!("member{n}@contoso.com")}),
                active: true,
            })
            .await
            .unwrap();
        ids.push(id.to_string());
    }

    sim.reset_counters();
    let members: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
    let (status, created) = bridge
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
    assert_eq!(
        status,
        201,
        "{}",
        &created.to_string()[..300.min(created.to_string().len())]
    );
    assert_eq!(created["members"].as_array().unwrap().len(), N);
    assert_eq!(
        sim.count("EmployeeUserBusinessRoleAssignmentCollection")
            .unwrap(),
        N
    );
    // One paged read of the role's holders, then $batches of 100 creates.
    let counters = sim.counters();
    assert_eq!(
        (counters.batches, counters.reads),
        (N as u64 / 100, 1),
        "{counters:?}"
    );
    assert_eq!(counters.posts, 0);
    let id = created["id"].as_str().unwrap();

    sim.reset_counters();
    let (status, light) = bridge
        .send(
            reqwest::Method::GET,
            &format!("/Groups/{id}?excludedAttributes=members"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert!(light.get("members").is_none());
    assert_eq!(sim.counters().total, 0);

    // Removing 300 members: three $batches of 100 deletes.
    let remove: Vec<Value> = ids[..300]
        .iter()
        .map(|u| json!({"op": "remove", "path": format!("members[value eq \"{u}\"]")}))
        .collect();
    let (status, body) = bridge
        .send(
            reqwest::Method::PATCH,
            &format!("/Groups/{id}"),
            Some(patch(json!(remove))),
        )
        .await;
    assert_eq!(
        status,
        200,
        "{}",
        &body.to_string()[..300.min(body.to_string().len())]
    );
    assert_eq!(body["members"].as_array().unwrap().len(), N - 300);
    let counters = sim.counters();
    assert_eq!((counters.batches, counters.deletes), (3, 0), "{counters:?}");
    assert_eq!(
        sim.count("EmployeeUserBusinessRoleAssignmentCollection")
            .unwrap(),
        N - 300
    );
});

/// Two replicas on one PostgreSQL database receive the same /Bulk of new users at the same time:
/// the store's cross-replica locks let one replica create each user; the other answers 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_bulk_the_same_users_once() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let second_db = db.same_database();
    let sim = start_sim(0).await;
    let replicas = [
        Bridge::start_on(db, &sim, |_| {}).await,
        Bridge::start_on(second_db, &sim, |_| {}).await,
    ];
    const USERS: usize = 40;
    let body = bulk((0..USERS).map(post_user).collect(), None);
    let (first, second) = tokio::join!(
        replicas[0].send(reqwest::Method::POST, "/Bulk", Some(body.clone())),
        replicas[1].send(reqwest::Method::POST, "/Bulk", Some(body)),
    );
    assert_eq!((first.0, second.0), (200, 200), "{} {}", first.1, second.1);
    let mut created = std::collections::HashMap::new();
    for (bulk_id, status) in statuses(&first.1).into_iter().chain(statuses(&second.1)) {
        match status.as_str() {
            "201" => *created.entry(bulk_id).or_insert(0) += 1,
            "409" => {}
            unexpected => panic!("{bulk_id}: {unexpected} in {} {}", first.1, second.1),
        }
    }
    assert_eq!(created.len(), USERS, "every user created");
    assert!(created.values().all(|&n| n == 1), "{created:?}");
    assert_eq!(sim.employees().len(), USERS, "no duplicate employee");
}
