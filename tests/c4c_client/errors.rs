//! Each error kind, produced by the simulator; retries with backoff on 429/503 and resets.

use std::time::Duration;

use c4c_scim_bridge::c4c::{C4cClient, C4cError, EmployeeQuery, ErrorKind, Fields, Filter};
use c4c_scim_bridge::sim::{Access, Fault, FaultScope, SimConfig, TechnicalUser};

use super::support::*;

const UNKNOWN_ID: &str = "00163E0A1B2C1EDB9F8E7D6C5B4A3928";

#[tokio::test]
async fn not_found() {
    let sim = start(SimConfig::default()).await;
    let err = basic_client(&sim)
        .get_employee(UNKNOWN_ID)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

#[tokio::test]
async fn validation_names_the_property() {
    let sim = start(SimConfig::default()).await;
    let client = basic_client(&sim);
    let mut fields = new_employee(1);
    fields.0.remove("LastName");
    match client.create_employee(&fields).await.unwrap_err() {
        C4cError::Validation {
            status: 400,
            property,
            message,
            ..
        } => {
            assert_eq!(property.as_deref(), Some("LastName"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    let too_long = new_employee(2).set("Email", format!("{}@example.com", "x".repeat(300)));
    let err = client.create_employee(&too_long).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Validation, "{err}");
    assert!(sim.employees().is_empty());
}

#[tokio::test]
async fn forbidden_for_a_read_only_user() {
    let mut user = TechnicalUser::new("READER", "Pw-1");
    user.access = Access::ReadOnly;
    let sim = start(SimConfig {
        users: vec![user],
        ..Default::default()
    })
    .await;
    let client = C4cClient::new(config(
        &sim.service_url(),
        "mode = \"basic\"\nuser = \"READER\"\npassword = \"Pw-1\"",
        "",
    ))
    .unwrap();
    let err = client.create_employee(&new_employee(1)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden, "{err}");
}

#[tokio::test]
async fn property_not_filterable_is_caught_before_sending() {
    let sim = start(SimConfig::default()).await;
    let client = basic_client(&sim);
    let err = client
        .query_employees(&EmployeeQuery::new().filter(Filter::eq("ETag", "x")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PropertyNotFilterable, "{err}");
    assert_eq!(sim.counters().reads, 0);
}

#[tokio::test]
async fn ne_is_refused_unless_the_profile_allows_it() {
    let sim = start(SimConfig {
        allow_ne: true,
        generated_employees: 3,
        ..Default::default()
    })
    .await;
    let err = basic_client(&sim)
        .query_employees(&EmployeeQuery::new().filter(Filter::ne("UserLockedIndicator", true)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnsupportedFilter, "{err}");
    let client = basic_client_with(&sim, "[tenant]\nallow_ne = true");
    let found = client
        .query_employees(&EmployeeQuery::new().filter(Filter::ne("EmployeeID", "nobody")))
        .await
        .unwrap();
    assert_eq!(found.len(), 3);
}

#[tokio::test]
async fn throttled_calls_are_retried_then_reported() {
    let sim = start(SimConfig {
        generated_employees: 1,
        ..Default::default()
    })
    .await;
    let client = basic_client(&sim);
    sim.faults().fail_next(
        2,
        Fault::Status429 {
            retry_after_secs: Some(0),
        },
        FaultScope::Reads,
    );
    assert_eq!(
        client
            .query_employees(&EmployeeQuery::new())
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(sim.counters().total, 3, "two refusals, one success");

    sim.faults().fail_next(
        3,
        Fault::Status429 {
            retry_after_secs: None,
        },
        FaultScope::Writes,
    );
    match client.create_employee(&new_employee(1)).await.unwrap_err() {
        C4cError::Throttled { retry_after } => assert_eq!(retry_after, None),
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        sim.employees().len() == 1,
        "nothing was created by refused POSTs"
    );
}

#[tokio::test]
async fn throttled_writes_are_retried_safely() {
    let sim = start(SimConfig::default()).await;
    let client = basic_client(&sim);
    sim.faults().fail_next(
        1,
        Fault::Status429 {
            retry_after_secs: Some(0),
        },
        FaultScope::Writes,
    );
    sim.faults()
        .fail_next(1, Fault::Status503, FaultScope::Writes);
    client.create_employee(&new_employee(1)).await.unwrap();
    assert_eq!(sim.employees().len(), 1);
}

#[tokio::test]
async fn unavailable_during_maintenance() {
    let sim = start(SimConfig::default()).await;
    sim.faults().set_maintenance(true);
    let err = basic_client(&sim)
        .query_employees(&EmployeeQuery::new())
        .await
        .unwrap_err();
    assert!(
        matches!(err, C4cError::Unavailable { status: 503, .. }),
        "{err:?}"
    );
    assert_eq!(sim.counters().total, 3, "retried up to max_attempts");
}

#[tokio::test]
async fn server_errors_are_not_retried() {
    let sim = start(SimConfig::default()).await;
    sim.faults()
        .fail_next(1, Fault::Status500, FaultScope::Reads);
    let err = basic_client(&sim)
        .query_employees(&EmployeeQuery::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server, "{err}");
    assert_eq!(sim.counters().total, 1);
}

#[tokio::test]
async fn resets_are_retried_for_reads_and_reported_as_transport() {
    let sim = start(SimConfig {
        generated_employees: 2,
        ..Default::default()
    })
    .await;
    let client = basic_client(&sim);
    sim.faults().fail_next(1, Fault::Reset, FaultScope::Reads);
    assert_eq!(
        client
            .query_employees(&EmployeeQuery::new())
            .await
            .unwrap()
            .len(),
        2
    );
    sim.faults().fail_next(5, Fault::Reset, FaultScope::Reads);
    let err = client
        .query_employees(&EmployeeQuery::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport, "{err}");
    assert!(!err.is_ambiguous(), "a read has no outcome to doubt");
}

#[tokio::test]
async fn a_hanging_tenant_times_out() {
    let sim = start(SimConfig::default()).await;
    sim.faults().set_hang_time(Duration::from_secs(5));
    let client = basic_client_with(&sim, "[timeouts]\nrequest_ms = 200\n");
    let e = client.create_employee(&new_employee(1)).await.unwrap();
    sim.faults().fail_next(3, Fault::Hang, FaultScope::Reads);
    let err = client.get_employee(&e.object_id).await.unwrap_err();
    assert!(
        matches!(
            err,
            C4cError::Timeout {
                outcome_unknown: false
            }
        ),
        "{err:?}"
    );
    sim.faults().fail_next(1, Fault::Hang, FaultScope::Writes);
    let err = client
        .update_employee(
            &e.object_id,
            &Fields::new().set("FirstName", "X"),
            e.etag.as_ref(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            C4cError::Timeout {
                outcome_unknown: true
            }
        ),
        "{err:?}"
    );
    assert!(err.is_ambiguous());
}

#[tokio::test]
async fn the_overall_timeout_bounds_retries() {
    let sim = start(SimConfig::default()).await;
    sim.faults().set_maintenance(true);
    let client = basic_client_with(
        &sim,
        "[timeouts]\noverall_ms = 300\n[retry]\nmax_attempts = 1000\nbase_backoff_ms = 50\nmax_backoff_ms = 50",
    );
    let err = client
        .query_employees(&EmployeeQuery::new())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            C4cError::Timeout {
                outcome_unknown: false
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_in_flight_cap_keeps_the_tenant_below_its_limit() {
    let sim = start(SimConfig {
        generated_employees: 5,
        ..Default::default()
    })
    .await;
    sim.faults().set_max_in_flight(Some(2));
    sim.faults()
        .set_latency(Duration::from_millis(20), Duration::ZERO);
    let client = basic_client_with(&sim, "max_in_flight = 2");
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move { c.query_employees(&EmployeeQuery::new()).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().len(), 5);
    }
    assert_eq!(
        sim.counters().errors,
        0,
        "no request beyond the cap: {:?}",
        sim.counters()
    );
}

#[tokio::test]
async fn the_observer_sees_every_attempt_with_its_error_kind() {
    use c4c_scim_bridge::c4c::CallKind;
    let sim = start(SimConfig::default()).await;
    let (client, recorder) = recording_client(&sim, "");
    sim.faults()
        .fail_next(1, Fault::Status503, FaultScope::Writes);
    client.create_employee(&new_employee(1)).await.unwrap();
    let _ = client.get_employee(UNKNOWN_ID).await;
    let calls = recorder.calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        vec![
            (CallKind::CsrfFetch, Some(200), None),
            (CallKind::Create, Some(503), Some(ErrorKind::Unavailable)),
            (CallKind::Create, Some(201), None),
            (CallKind::Read, Some(404), Some(ErrorKind::NotFound)),
        ]
    );
    assert_eq!(recorder.by_kind()[&CallKind::Create], 2);
}
