//! /Users under each simulator fault: a create, an update, a deactivation (active=false) and a
//! delete, retried as identity providers do after an error, end with C4C and our store in the
//! expected state. After every answer: an error left our row and the employee as they were, a
//! success is in both, and there is exactly one employee for the user.

use c4c_scim_bridge::sim::{Fault, FaultScope, SimHandle};
use c4c_scim_bridge::store::{ResourceRow, ResourceType};
use serde_json::{Value, json};

use crate::harness::{Backend, TestDb, start_sim};
use crate::on_both_backends;
use crate::users::{Bridge, entra_user, patch};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Injected {
    Latency,
    Storm503,
    Throttle429,
    CsrfInvalidated,
    CommitThenDrop,
    /// The tenant revokes the bridge's OAuth access token (the bridge uses client credentials).
    OAuthRevoked,
}

impl Injected {
    /// Arms the fault for the next step.
    fn arm(self, sim: &SimHandle) {
        let faults = sim.faults();
        match self {
            Injected::Latency => {
                faults.set_latency(std::time::Duration::from_millis(40), Default::default());
            }
            Injected::Storm503 => faults.fail_next(3, Fault::Status503, FaultScope::Any),
            Injected::Throttle429 => faults.fail_next(
                2,
                Fault::Status429 {
                    retry_after_secs: Some(7),
                },
                FaultScope::Any,
            ),
            Injected::CsrfInvalidated => faults.invalidate_csrf(),
            Injected::CommitThenDrop => {
                faults.fail_next(1, Fault::CommitThenDrop, FaultScope::Writes)
            }
            Injected::OAuthRevoked => faults.revoke_oauth_tokens(),
        }
    }

    /// Faults the bridge absorbs by itself: the identity provider never sees an error.
    fn absorbed(self) -> bool {
        matches!(
            self,
            Injected::Latency
                | Injected::CsrfInvalidated
                | Injected::CommitThenDrop
                | Injected::OAuthRevoked
        )
    }
}

const USER_NAME: &str = "alice@contoso.com";

async fn row(bridge: &Bridge) -> Option<ResourceRow> {
    let store = &bridge.app.store;
    match store
        .find_live_by_name(ResourceType::User, USER_NAME)
        .await
        .unwrap()
    {
        Some(row) => Some(row),
        None => store
            .find_tombstone_by_name(ResourceType::User, USER_NAME)
            .await
            .unwrap(),
    }
}

/// The simulator's employees for this user (never more than one).
fn employee(sim: &SimHandle) -> Option<Value> {
    let found: Vec<Value> = sim
        .employees()
        .into_iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .filter(|e| e["UserID"] == USER_NAME)
        .collect();
    assert!(found.len() <= 1, "duplicate employees: {found:?}");
    found.into_iter().next()
}

/// Our row and the employee agree on what the bridge writes.
fn assert_consistent(row: Option<&ResourceRow>, employee: Option<&Value>) {
    let (Some(row), Some(employee)) = (row, employee) else {
        assert!(row.is_none(), "a row without an employee: {row:?}");
        return;
    };
    assert_eq!(row.object_id.as_deref(), employee["ObjectID"].as_str());
    assert_eq!(
        row.scim_json["name"]["familyName"], employee["LastName"],
        "store and C4C disagree on the family name"
    );
    assert_eq!(
        Value::Bool(!row.active),
        employee["UserLockedIndicator"],
        "store and C4C disagree on the lock"
    );
}

/// Sends one step until it is applied, as an identity provider retries after 5xx. Each failed
/// answer must be a retryable error that changed nothing.
async fn until_applied(
    bridge: &Bridge,
    sim: &SimHandle,
    injected: Injected,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    injected.arm(sim);
    for _ in 0..10 {
        let row_before = row(bridge).await;
        let employee_before = employee(sim);
        let (status, headers, answer) = bridge.send(method.clone(), path, body.clone()).await;
        if status < 300 {
            return (status, answer);
        }
        assert!(
            !injected.absorbed(),
            "{injected:?} must not reach the identity provider: {status} {answer}"
        );
        assert_eq!(status, 503, "{injected:?}: {answer}");
        assert!(headers.contains_key("retry-after"), "{injected:?}");
        if injected == Injected::Throttle429 {
            assert_eq!(headers["retry-after"], "7");
        }
        assert_eq!(
            row(bridge).await,
            row_before,
            "a failed request changed our row"
        );
        assert_eq!(
            employee(sim),
            employee_before,
            "a failed request changed C4C"
        );
    }
    panic!("{injected:?}: {method} {path} never succeeded");
}

async fn lifecycle(backend: Backend, injected: Injected) {
    let sim = start_sim(3).await;
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let oauth = oauth_config_for(&sim);
    let bridge = Bridge::start_configured(db, &sim, |config| {
        if injected == Injected::OAuthRevoked {
            config.c4c = Some(oauth);
        }
    })
    .await;
    let employees_before = sim.employees().len();

    // Create.
    let (status, created) = until_applied(
        &bridge,
        &sim,
        injected,
        reqwest::Method::POST,
        "/Users",
        Some(entra_user()),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(sim.employees().len(), employees_before + 1);
    let stored = row(&bridge).await.unwrap();
    let held = employee(&sim).unwrap();
    assert_consistent(Some(&stored), Some(&held));
    assert_eq!(held["LastName"], "Example");
    assert_eq!(held["UserLockedIndicator"], false);

    // Update.
    let (status, updated) = until_applied(
        &bridge,
        &sim,
        injected,
        reqwest::Method::PATCH,
        &format!("/Users/{id}"),
        Some(patch(
            json!([{"op": "replace", "path": "name.familyName", "value": "Changed"}]),
        )),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    let stored = row(&bridge).await.unwrap();
    let held = employee(&sim).unwrap();
    assert_consistent(Some(&stored), Some(&held));
    assert_eq!(held["LastName"], "Changed");

    // Deactivate.
    let (status, disabled) = until_applied(
        &bridge,
        &sim,
        injected,
        reqwest::Method::PATCH,
        &format!("/Users/{id}"),
        Some(patch(
            json!([{"op": "replace", "path": "active", "value": false}]),
        )),
    )
    .await;
    assert_eq!(status, 200, "{disabled}");
    assert_eq!(disabled["active"], false);
    let stored = row(&bridge).await.unwrap();
    let held = employee(&sim).unwrap();
    assert_consistent(Some(&stored), Some(&held));
    assert_eq!(held["UserLockedIndicator"], true);

    // Delete: gone for the identity provider, a tombstone here, the employee locked in C4C.
    let (status, _) = until_applied(
        &bridge,
        &sim,
        injected,
        reqwest::Method::DELETE,
        &format!("/Users/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    sim.faults().clear();
    let (status, _, _) = bridge
        .send(reqwest::Method::GET, &format!("/Users/{id}"), None)
        .await;
    assert_eq!(status, 404);
    let stored = row(&bridge).await.unwrap();
    assert!(stored.tombstone);
    let held = employee(&sim).unwrap();
    assert_consistent(Some(&stored), Some(&held));
    assert_eq!(held["UserLockedIndicator"], true);
    assert_eq!(sim.employees().len(), employees_before + 1, "no duplicate");
    if injected == Injected::OAuthRevoked {
        // The first token (fetched at start-up, to read $metadata), then one after each of
        // the four revocations, which all hit a live token.
        assert_eq!(sim.counters().token_requests, 5);
    }
}

/// C4C settings for the simulator with the OAuth client-credentials grant.
fn oauth_config_for(sim: &SimHandle) -> c4c_scim_bridge::c4c::C4cConfig {
    toml::from_str(&format!(
        "base_url = \"{}/\"\n[retry]\nmax_attempts = 1\n[auth]\nmode = \"oauth_client_credentials\"\n\
         token_url = \"{}\"\nclient_id = \"SCIM_BRIDGE_CLIENT\"\nclient_secret = \"Client-Secret-1\"\n",
        sim.service_url(),
        sim.token_url(),
    ))
    .unwrap()
}

on_both_backends!(latency, |backend: Backend| lifecycle(
    backend,
    Injected::Latency
));
on_both_backends!(storm_503, |backend: Backend| lifecycle(
    backend,
    Injected::Storm503
));
on_both_backends!(throttle_429_retry_after, |backend: Backend| lifecycle(
    backend,
    Injected::Throttle429
));
on_both_backends!(csrf_invalidated, |backend: Backend| lifecycle(
    backend,
    Injected::CsrfInvalidated
));
on_both_backends!(commit_then_drop, |backend: Backend| lifecycle(
    backend,
    Injected::CommitThenDrop
));

on_both_backends!(oauth_token_revoked, |backend: Backend| lifecycle(
    backend,
    Injected::OAuthRevoked
));
