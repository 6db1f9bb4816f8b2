//! Two real `serve` processes on one PostgreSQL database, as two replicas of a deployment:
//! migrations run by both at once, identity-provider traffic spread across both (Entra's
//! double sends included), and readiness following the C4C connection.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use c4c_scim_bridge::auth::create_token;
use c4c_scim_bridge::provisioning::outbox::{EmployeeUpdate, enqueue_employee_update};
use c4c_scim_bridge::store::{LogQuery, OutboxStatus, ResourceType, Store};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::harness::{Backend, TestDb, binary, free_port, start_sim};

fn spawn_replica(config: &std::path::Path, port: u16) -> Child {
    Command::new(binary())
        .args(["serve", "--config"])
        .arg(config)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Polls `url` until it answers `status`, for at most `attempts` × 100 ms; a replica that never
/// gets there fails the test with the last answer seen.
async fn wait_for(client: &reqwest::Client, url: &str, status: u16, attempts: u32) {
    let mut last = String::from("no answer");
    for _ in 0..attempts {
        match client.get(url).send().await {
            Ok(response) if response.status().as_u16() == status => return,
            Ok(response) => {
                last = format!(
                    "{} {}",
                    response.status(),
                    response.text().await.unwrap_or_default()
                )
            }
            Err(error) => last = error.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} never answered {status}; last: {last}");
}

fn user(n: usize) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": format!("replica.user{n}@contoso.com"),
        "externalId": format!("ext-{n}"),
        "active": true,
        "name": {"givenName": "Replica", "familyName": format!("User{n}")},
        "emails": [{"primary": true, "type": "work", "value": format!("replica.user{n}@contoso.com")}],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_processes_share_one_postgres() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let sim = start_sim(3).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[log]\nlevel = \"warn\"\n[store]\nurl = \"{}\"\nmigrate_on_start = true\n\
             [c4c]\nbase_url = \"{}/\"\n[c4c.auth]\nmode = \"basic\"\nuser = \"{}\"\npassword = \"{}\"\n\
             [c4c.retry]\nmax_attempts = 1\n[outbox]\npoll_interval_ms = 50\nbatch_size = 3\n",
            db.url,
            sim.service_url(),
            c4c_scim_bridge::sim::DEFAULT_USER,
            c4c_scim_bridge::sim::DEFAULT_PASSWORD,
        ),
    )
    .unwrap();

    // Both start together on an empty database: both try to migrate at once.
    let ports = [free_port(), free_port()];
    let mut replicas: Vec<Child> = ports.iter().map(|&p| spawn_replica(&config, p)).collect();
    let client = reqwest::Client::new();
    let bases: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    for base in &bases {
        wait_for(&client, &format!("{base}/healthz"), 200, 300).await;
    }
    for replica in &mut replicas {
        assert!(replica.try_wait().unwrap().is_none(), "a replica exited");
    }
    let store = Store::connect(&db.url, 2).await.unwrap();
    // Migrations were applied exactly once: a third run has nothing left to do.
    assert_eq!(store.migrate().await.unwrap(), 0);
    let token = create_token(&store, "entra", None).await.unwrap();
    let token = token.token.expose_secret().to_owned();

    let employees_before = sim.employees().len();
    const USERS: usize = 12;
    // Entra may send the same create twice; here each create goes to both replicas at once.
    let mut creates = Vec::new();
    for n in 0..USERS {
        for base in &bases {
            let (client, token, url) = (
                client.clone(),
                token.clone(),
                format!("{base}/scim/v2/Users"),
            );
            creates.push(tokio::spawn(async move {
                let response = client
                    .post(url)
                    .bearer_auth(token)
                    .header("content-type", "application/scim+json")
                    .body(user(n).to_string())
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                (n, status, response.json::<Value>().await.unwrap())
            }));
        }
    }
    let mut ids: HashMap<usize, String> = HashMap::new();
    for task in creates {
        let (n, status, body) = task.await.unwrap();
        match status {
            201 => {
                assert!(
                    ids.insert(n, body["id"].as_str().unwrap().to_owned())
                        .is_none()
                );
            }
            409 => assert_eq!(body["scimType"], "uniqueness", "{body}"),
            other => panic!("create {n}: {other} {body}"),
        }
    }
    assert_eq!(ids.len(), USERS, "one 201 per user");
    assert_eq!(
        sim.employees().len(),
        employees_before + USERS,
        "no duplicate employee"
    );

    // Updates spread across replicas: every other user deactivated through the other replica.
    for (n, id) in &ids {
        let base = &bases[(n + 1) % 2];
        let response = client
            .patch(format!("{base}/scim/v2/Users/{id}"))
            .bearer_auth(&token)
            .header("content-type", "application/scim+json")
            .body(
                json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "Replace", "path": "active", "value": n % 2 == 1}]
                })
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }
    // Each replica reads the other's writes: store and C4C agree.
    for (n, id) in &ids {
        for base in &bases {
            let body: Value = client
                .get(format!("{base}/scim/v2/Users/{id}"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(body["active"], json!(n % 2 == 1), "{body}");
        }
        let row = store
            .get_resource(ResourceType::User, id.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        let employee = sim.employee(row.object_id.as_deref().unwrap()).unwrap();
        assert_eq!(
            employee["UserLockedIndicator"],
            json!(n % 2 == 0),
            "{employee:?}"
        );
    }

    // Queued writes are applied once each, whichever replica's worker claims them: both
    // workers poll the one outbox, in small batches, so they compete for the items.
    let employees: Vec<String> = sim
        .employees()
        .iter()
        .map(|e| e["ObjectID"].as_str().unwrap().to_owned())
        .collect();
    const ITEMS: usize = 40;
    sim.reset_counters();
    let mut queued = Vec::new();
    for n in 0..ITEMS {
        let update = EmployeeUpdate {
            object_id: employees[n % employees.len()].clone(),
            fields: json!({"LastName": format!("Queued{n}")})
                .as_object()
                .unwrap()
                .clone(),
        };
        queued.push(
            enqueue_employee_update(&store, None, &update)
                .await
                .unwrap(),
        );
    }
    let mut done = 0;
    for _ in 0..300 {
        done = 0;
        for id in &queued {
            let item = store.get_outbox(*id).await.unwrap().unwrap();
            if item.status == OutboxStatus::Done {
                assert_eq!(item.attempts, 1, "{item:?}");
                done += 1;
            }
        }
        if done == ITEMS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(done, ITEMS, "every queued write applied");
    assert_eq!(
        sim.counters().patches,
        ITEMS as u64,
        "each applied exactly once"
    );
    let last = &employees[(ITEMS - 1) % employees.len()];
    assert_eq!(
        sim.employee(last).unwrap()["LastName"],
        json!(format!("Queued{}", ITEMS - 1))
    );
    let workers: std::collections::HashSet<String> = store
        .query_log(&LogQuery {
            limit: 500,
            ..LogQuery::default()
        })
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.entry.method == "OUTBOX")
        .map(|r| r.entry.client.unwrap_or_default())
        .collect();
    assert!(!workers.is_empty());

    // Readiness follows the C4C connection on both replicas, and comes back with it.
    for base in &bases {
        wait_for(&client, &format!("{base}/readyz"), 200, 100).await;
    }
    sim.faults().set_maintenance(true);
    for base in &bases {
        wait_for(&client, &format!("{base}/readyz"), 503, 100).await;
        wait_for(&client, &format!("{base}/healthz"), 200, 10).await;
    }
    sim.faults().set_maintenance(false);
    for base in &bases {
        wait_for(&client, &format!("{base}/readyz"), 200, 100).await;
    }

    for mut replica in replicas {
        replica.kill().await.unwrap();
    }
    store.close().await;
}

/// A burst of distinct creates larger than the connection pool: every one succeeds. (With the
/// advisory locks on the same pool, each holder waited for a second connection that the other
/// holders kept: all of them failed after the acquire timeout.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_larger_than_the_pool_is_served() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let sim = start_sim(1).await;
    let c4c = crate::harness::c4c_config_for(&sim);
    let app = crate::harness::TestApp::spawn_with(db, move |config| {
        config.store.max_connections = 4;
        config.c4c = Some(c4c);
    })
    .await;
    let token = create_token(&app.store, "okta", None).await.unwrap();
    let token = token.token.expose_secret().to_owned();
    let employees_before = sim.employees().len();
    const BURST: usize = 30;
    let tasks: Vec<_> = (0..BURST)
        .map(|n| {
            let (client, token, url) =
                (app.client.clone(), token.clone(), app.url("/scim/v2/Users"));
            tokio::spawn(async move {
                let response = client
                    .post(url)
                    .bearer_auth(token)
                    .header("content-type", "application/scim+json")
                    .body(user(100 + n).to_string())
                    .send()
                    .await
                    .unwrap();
                (response.status().as_u16(), response.text().await.unwrap())
            })
        })
        .collect();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, 201, "{body}");
    }
    assert_eq!(sim.employees().len(), employees_before + BURST);
}
