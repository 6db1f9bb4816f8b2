//! CSRF: one fetch per session (riding on a read when there is one), shared by all tasks,
//! refreshed once by one task when the session expires; nothing fetched for tenants that
//! never ask; one HTTP call per write in steady state.

use c4c_scim_bridge::c4c::{C4cError, EmployeeQuery, Fields};
use c4c_scim_bridge::sim::{CsrfPolicy, SimConfig};

use super::support::*;

#[tokio::test]
async fn token_rides_on_the_first_read() {
    let sim = start(SimConfig {
        generated_employees: 1,
        ..Default::default()
    })
    .await;
    let client = basic_client(&sim);
    client.query_employees(&EmployeeQuery::new()).await.unwrap();
    client.create_employee(&new_employee(1)).await.unwrap();
    let c = sim.counters();
    assert_eq!(c.csrf_fetches, 1, "{c:?}");
    assert_eq!(c.service_document, 0, "no separate fetch call: {c:?}");
    assert_eq!(c.csrf_rejections, 0, "{c:?}");
}

#[tokio::test]
async fn first_write_without_a_read_fetches_once() {
    let sim = start(SimConfig::default()).await;
    let client = basic_client(&sim);
    for n in 0..3 {
        client.create_employee(&new_employee(n)).await.unwrap();
    }
    let c = sim.counters();
    assert_eq!(c.csrf_fetches, 1, "{c:?}");
    assert_eq!(c.posts, 3, "{c:?}");
    assert_eq!(c.total, 4, "{c:?}");
}

#[tokio::test]
async fn steady_state_costs_one_call_per_write() {
    let sim = start(SimConfig::default()).await;
    let client = basic_client(&sim);
    let first = client.create_employee(&new_employee(0)).await.unwrap();
    sim.reset_counters();
    let mut etag = first.etag.clone();
    for n in 1..=10 {
        client.create_employee(&new_employee(n)).await.unwrap();
        etag = client
            .update_employee(
                &first.object_id,
                &Fields::new().set("MobilePhoneNumber", format!("+1 555 01{n:02}")),
                None,
            )
            .await
            .unwrap()
            .or(etag);
    }
    let role = client
        .create_role_assignment(&first.object_id, "SALES_REP", None)
        .await
        .unwrap();
    client
        .delete_role_assignment(&role.object_id)
        .await
        .unwrap();
    let c = sim.counters();
    assert_eq!(c.total, 22, "22 writes, 22 calls: {c:?}");
    assert_eq!((c.posts, c.patches, c.deletes), (11, 10, 1), "{c:?}");
    assert_eq!((c.csrf_fetches, c.reads, c.metadata), (0, 0, 0), "{c:?}");
    let _ = etag;
}

#[tokio::test]
async fn session_expiry_mid_run_is_refreshed_once_and_the_write_replayed() {
    let sim = start(SimConfig::default()).await;
    let client = basic_client(&sim);
    for n in 0..5 {
        client.create_employee(&new_employee(n)).await.unwrap();
    }
    sim.faults().invalidate_csrf();
    for n in 5..10 {
        client.create_employee(&new_employee(n)).await.unwrap();
    }
    let c = sim.counters();
    assert_eq!(c.csrf_fetches, 2, "{c:?}");
    assert_eq!(c.csrf_rejections, 1, "{c:?}");
    assert_eq!(sim.employees().len(), 10, "every write landed exactly once");
}

#[tokio::test]
async fn concurrent_writers_share_one_refresh() {
    let sim = start(SimConfig::default()).await;
    let client = basic_client_with(&sim, "max_in_flight = 16");
    client.create_employee(&new_employee(0)).await.unwrap();
    sim.faults().invalidate_csrf();
    let before = sim.counters().csrf_fetches;
    let tasks: Vec<_> = (1..=16)
        .map(|n| {
            let c = client.clone();
            tokio::spawn(async move { c.create_employee(&new_employee(n)).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let c = sim.counters();
    assert_eq!(
        c.csrf_fetches - before,
        1,
        "one refresh for all tasks: {c:?}"
    );
    assert_eq!(sim.employees().len(), 17);
}

#[tokio::test]
async fn tenants_that_never_ask_get_no_fetch_in_on_demand_mode() {
    let sim = start(SimConfig {
        csrf: CsrfPolicy {
            basic: false,
            bearer: false,
            certificate: false,
        },
        ..Default::default()
    })
    .await;
    let client = basic_client_with(&sim, "csrf = \"on_demand\"");
    for n in 0..3 {
        client.create_employee(&new_employee(n)).await.unwrap();
    }
    let c = sim.counters();
    assert_eq!((c.csrf_fetches, c.total), (0, 3), "{c:?}");
}

#[tokio::test]
async fn on_demand_mode_fetches_when_the_tenant_asks() {
    let sim = start(SimConfig::default()).await;
    let client = basic_client_with(&sim, "csrf = \"on_demand\"");
    for n in 0..3 {
        client.create_employee(&new_employee(n)).await.unwrap();
    }
    let c = sim.counters();
    assert_eq!(
        (c.csrf_rejections, c.csrf_fetches, c.posts),
        (1, 1, 4),
        "{c:?}"
    );
    assert_eq!(sim.employees().len(), 3);
}

#[tokio::test]
async fn disabled_mode_reports_csrf_required() {
    let sim = start(SimConfig::default()).await;
    let client = basic_client_with(&sim, "csrf = \"disabled\"");
    let err = client.create_employee(&new_employee(1)).await.unwrap_err();
    assert!(matches!(err, C4cError::CsrfRequired), "{err:?}");
    assert!(!err.is_ambiguous());
    assert!(sim.employees().is_empty());
}
