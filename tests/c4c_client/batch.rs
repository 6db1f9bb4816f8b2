//! `$batch`: 200 creates in one call, atomic changesets, reads inside a batch, recovery
//! from a lost batch answer.

use c4c_scim_bridge::c4c::{
    BatchChange, BatchPart, BatchPartResult, BusinessKey, C4cError, EmployeeQuery, ErrorKind,
    Fields,
};
use c4c_scim_bridge::sim::{Fault, FaultScope, SimConfig};
use serde_json::json;

use super::support::*;

#[tokio::test]
async fn two_hundred_creates_in_one_batch() {
    let sim = start(SimConfig::default()).await;
    let client = basic_client(&sim);
    let employees: Vec<Fields> = (0..200).map(new_employee).collect();
    let results = client.batch_create_employees(&employees).await.unwrap();
    assert_eq!(results.len(), 200);
    for (n, r) in results.iter().enumerate() {
        let e = r.as_ref().unwrap();
        assert_eq!(
            e.employee_id.as_deref(),
            Some(format!("T{n:06}").as_str()),
            "results in request order"
        );
        assert!(e.etag.is_some());
    }
    let c = sim.counters();
    assert_eq!((c.batches, c.posts), (1, 0), "{c:?}");
    assert_eq!(sim.employees().len(), 200);
    let all = client.query_employees(&EmployeeQuery::new()).await.unwrap();
    assert_eq!(all.len(), 200);
}

#[tokio::test]
async fn one_bad_create_fails_only_its_own_changeset() {
    let sim = start(SimConfig::default()).await;
    let client = basic_client(&sim);
    let mut bad = new_employee(2);
    bad.0.remove("LastName");
    let results = client
        .batch_create_employees(&[new_employee(1), bad, new_employee(3)])
        .await
        .unwrap();
    assert!(results[0].is_ok() && results[2].is_ok());
    match &results[1] {
        Err(C4cError::Validation { property, .. }) => {
            assert_eq!(property.as_deref(), Some("LastName"))
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(sim.employees().len(), 2);
}

#[tokio::test]
async fn a_changeset_is_all_or_nothing() {
    let sim = start(SimConfig::default()).await;
    let client = basic_client(&sim);
    let e = client.create_employee(&new_employee(1)).await.unwrap();
    let path = format!("EmployeeCollection('{}')", e.object_id);
    let parts = vec![
        BatchPart::Get(
            "EmployeeCollection?$filter=EmployeeID%20eq%20'T000001'&$format=json".into(),
        ),
        BatchPart::Changeset(vec![
            BatchChange::patch(path.clone(), json!({"FirstName": "Changed"}), None),
            BatchChange::post(
                "EmployeeUserBusinessRoleAssignmentCollection",
                json!({"ParentObjectID": e.object_id, "BusinessRoleID": "NO_SUCH_ROLE"}),
            ),
        ]),
        BatchPart::Changeset(vec![BatchChange::patch(
            path,
            json!({"MiddleName": "Q"}),
            e.etag.clone(),
        )]),
    ];
    let results = client.batch(parts).await.unwrap();
    assert_eq!(results.len(), 3);
    match &results[0] {
        BatchPartResult::Get(Ok(r)) => assert_eq!(r.status, 200),
        other => panic!("unexpected {other:?}"),
    }
    match &results[1] {
        BatchPartResult::Changeset(changes) => {
            assert_eq!(changes.len(), 2);
            assert!(changes.iter().all(|c| c.is_err()), "{changes:?}");
        }
        other => panic!("unexpected {other:?}"),
    }
    match &results[2] {
        BatchPartResult::Changeset(changes) => assert_eq!(changes[0].as_ref().unwrap().status, 204),
        other => panic!("unexpected {other:?}"),
    }
    let stored = sim.employee(&e.object_id).unwrap();
    assert_eq!(
        stored["FirstName"], "Jane",
        "the failed changeset was rolled back"
    );
    assert_eq!(stored["MiddleName"], "Q");
}

#[tokio::test]
async fn a_filter_on_a_non_filterable_property_fails_inside_a_batch() {
    let sim = start(SimConfig::default()).await;
    let client = basic_client(&sim);
    let parts = vec![BatchPart::Get(
        "EmployeeCollection?$filter=ETag%20eq%20'x'&$format=json".into(),
    )];
    match &client.batch(parts).await.unwrap()[0] {
        BatchPartResult::Get(Err(e)) => {
            assert_eq!(e.kind(), ErrorKind::PropertyNotFilterable, "{e}")
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn a_lost_batch_answer_is_recovered_without_duplicates() {
    let sim = start(SimConfig::default()).await;
    let client = basic_client(&sim);
    let items: Vec<(Fields, BusinessKey)> = (0..60)
        .map(|n| (new_employee(n), BusinessKey::EmployeeId(format!("T{n:06}"))))
        .collect();
    client
        .batch_create_employees(&[new_employee(1000)])
        .await
        .unwrap();
    sim.faults()
        .fail_next(1, Fault::CommitThenDrop, FaultScope::Writes);
    let results = client.batch_create_employees_once(&items).await.unwrap();
    assert_eq!(results.len(), 60);
    for (n, r) in results.iter().enumerate() {
        assert_eq!(
            r.as_ref().unwrap().employee_id.as_deref(),
            Some(format!("T{n:06}").as_str())
        );
    }
    assert_eq!(sim.employees().len(), 61, "every employee exactly once");
    assert_eq!(
        sim.counters().batches,
        3,
        "first batch, lost batch, one lookup batch: {:?}",
        sim.counters()
    );
}
