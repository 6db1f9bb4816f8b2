//! Writes: create without read-back, PATCH with If-Match, role and org-unit assignments,
//! and recovery from commit-then-drop without a duplicate.

use c4c_scim_bridge::c4c::{BusinessKey, C4cError, ErrorKind, Fields, NewOrgUnitAssignment};
use c4c_scim_bridge::sim::{Fault, FaultScope, SimConfig};

use super::support::*;

#[tokio::test]
async fn create_returns_keys_and_etag_without_a_read_back() {
    let sim = start(SimConfig::default()).await;
    let client = basic_client(&sim);
    let mut fields = new_employee(1);
    fields.0.remove("EmployeeID");
    let created = client.create_employee(&fields).await.unwrap();
    assert_eq!(created.object_id.len(), 32);
    assert!(
        created.employee_id.is_some(),
        "assigned by C4C and read from the 201 body"
    );
    assert!(created.etag.is_some());
    assert_eq!(sim.counters().reads, 0);
}

#[tokio::test]
async fn patch_honours_if_match() {
    let sim = start(SimConfig::default()).await;
    let client = basic_client(&sim);
    let created = client.create_employee(&new_employee(1)).await.unwrap();
    let etag = created.etag.clone().unwrap();
    client
        .update_employee(
            &created.object_id,
            &Fields::new().set("UserLockedIndicator", true),
            Some(&etag),
        )
        .await
        .unwrap();
    let err = client
        .update_employee(
            &created.object_id,
            &Fields::new().set("FirstName", "Late"),
            Some(&etag),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PreconditionFailed, "{err}");
    let fresh = client.get_employee(&created.object_id).await.unwrap();
    assert_eq!(fresh.user_locked, Some(true));
    assert_ne!(fresh.etag.as_ref(), Some(&etag));
    client
        .update_employee(
            &created.object_id,
            &Fields::new().set("FirstName", "Fresh"),
            fresh.etag.as_ref(),
        )
        .await
        .unwrap();
    assert_eq!(
        sim.employee(&created.object_id).unwrap()["FirstName"],
        "Fresh"
    );
}

#[tokio::test]
async fn business_roles_are_created_listed_and_deleted() {
    let sim = start(SimConfig::default()).await;
    let client = basic_client(&sim);
    let e = client.create_employee(&new_employee(1)).await.unwrap();
    let rep = client
        .create_role_assignment(&e.object_id, "SALES_REP", None)
        .await
        .unwrap();
    client
        .create_role_assignment(&e.object_id, "SALES_MANAGER", Some("JANE.TEST1"))
        .await
        .unwrap();
    let mut roles: Vec<_> = client
        .list_role_assignments(&e.object_id)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.business_role_id)
        .collect();
    roles.sort();
    assert_eq!(roles, vec!["SALES_MANAGER", "SALES_REP"]);
    client.delete_role_assignment(&rep.object_id).await.unwrap();
    assert_eq!(sim.business_roles_of(&e.object_id), vec!["SALES_MANAGER"]);
    let err = client
        .delete_role_assignment(&rep.object_id)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let err = client
        .create_role_assignment(&e.object_id, "NO_SUCH_ROLE", None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Validation, "{err}");
}

#[tokio::test]
async fn org_unit_assignments_are_created_and_deleted() {
    let sim = start(SimConfig::default()).await;
    let client = basic_client(&sim);
    let e = client.create_employee(&new_employee(1)).await.unwrap();
    let a = client
        .create_org_assignment(
            &e.object_id,
            &NewOrgUnitAssignment {
                org_unit_id: "S3110".into(),
                role_code: Some("219".into()),
                start_date: chrono::NaiveDate::from_ymd_opt(2024, 1, 1),
                end_date: chrono::NaiveDate::from_ymd_opt(9999, 12, 31),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let listed = client.list_org_assignments(&e.object_id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].org_unit_id.as_deref(), Some("S3110"));
    assert_eq!(
        listed[0].end_date,
        chrono::NaiveDate::from_ymd_opt(9999, 12, 31)
    );
    client.delete_org_assignment(&a.object_id).await.unwrap();
    assert!(
        client
            .list_org_assignments(&e.object_id)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn commit_then_drop_on_create_is_ambiguous_and_never_replayed_blindly() {
    let sim = start(SimConfig::default()).await;
    let client = basic_client(&sim);
    client.create_employee(&new_employee(0)).await.unwrap();
    sim.faults()
        .fail_next(1, Fault::CommitThenDrop, FaultScope::Writes);
    let err = client.create_employee(&new_employee(1)).await.unwrap_err();
    assert!(err.is_ambiguous(), "{err:?}");
    assert_eq!(sim.counters().posts, 2, "the POST was not replayed");
    assert_eq!(sim.employees().len(), 2, "it did land");
}

#[tokio::test]
async fn commit_then_drop_recovery_leaves_exactly_one_employee() {
    let sim = start(SimConfig::default()).await;
    let client = basic_client(&sim);
    client.create_employee(&new_employee(0)).await.unwrap();
    sim.faults()
        .fail_next(1, Fault::CommitThenDrop, FaultScope::Writes);
    let key = BusinessKey::EmployeeId("T000001".into());
    let created = client
        .create_employee_once(&new_employee(1), &key)
        .await
        .unwrap();
    let matching: Vec<_> = sim
        .employees()
        .into_iter()
        .filter(|e| e.get("EmployeeID").and_then(|v| v.as_str()) == Some("T000001"))
        .collect();
    assert_eq!(matching.len(), 1, "exactly one employee");
    assert_eq!(matching[0]["ObjectID"], created.object_id.as_str());
    assert_eq!(sim.counters().posts, 2);

    // Without the fault, the same call is one POST.
    sim.reset_counters();
    let key = BusinessKey::UserIdAndEmail {
        user_id: "JANE.TEST2".into(),
        email: "jane.test2@example.com".into(),
    };
    client
        .create_employee_once(&new_employee(2), &key)
        .await
        .unwrap();
    assert_eq!(sim.counters().total, 1);
}

#[tokio::test]
async fn a_dropped_post_that_did_not_land_is_sent_again_after_the_lookup() {
    let sim = start(SimConfig::default()).await;
    let client = basic_client(&sim);
    client.create_employee(&new_employee(0)).await.unwrap();
    sim.faults().fail_next(1, Fault::Reset, FaultScope::Writes);
    let key = BusinessKey::EmployeeId("T000001".into());
    client
        .create_employee_once(&new_employee(1), &key)
        .await
        .unwrap();
    assert!(sim.employee_by_employee_id("T000001").is_some());
    assert_eq!(sim.employees().len(), 2);
}

#[tokio::test]
async fn a_patch_without_if_match_is_replayed_after_a_reset() {
    let sim = start(SimConfig::default()).await;
    let client = basic_client(&sim);
    let e = client.create_employee(&new_employee(1)).await.unwrap();
    sim.faults()
        .fail_next(1, Fault::CommitThenDrop, FaultScope::Writes);
    client
        .update_employee(&e.object_id, &Fields::new().set("FirstName", "Again"), None)
        .await
        .unwrap();
    assert_eq!(sim.employee(&e.object_id).unwrap()["FirstName"], "Again");
    assert_eq!(sim.counters().patches, 2);

    // With If-Match the replay would meet a 412: the client reports the ambiguity instead.
    let etag = client.get_employee(&e.object_id).await.unwrap().etag;
    sim.faults()
        .fail_next(1, Fault::CommitThenDrop, FaultScope::Writes);
    let err = client
        .update_employee(
            &e.object_id,
            &Fields::new().set("FirstName", "Once"),
            etag.as_ref(),
        )
        .await
        .unwrap_err();
    assert!(err.is_ambiguous(), "{err:?}");
    assert!(matches!(
        err,
        C4cError::Transport { .. } | C4cError::Timeout { .. }
    ));
}

#[tokio::test]
async fn a_lost_delete_answer_counts_as_done() {
    let sim = start(SimConfig::default()).await;
    let client = basic_client(&sim);
    let e = client.create_employee(&new_employee(1)).await.unwrap();
    let role = client
        .create_role_assignment(&e.object_id, "SALES_REP", None)
        .await
        .unwrap();
    sim.faults()
        .fail_next(1, Fault::CommitThenDrop, FaultScope::Writes);
    client
        .delete_role_assignment(&role.object_id)
        .await
        .unwrap();
    assert!(sim.business_roles_of(&e.object_id).is_empty());
}

#[tokio::test]
async fn role_assignment_recovers_from_commit_then_drop() {
    let sim = start(SimConfig::default()).await;
    let client = basic_client(&sim);
    let e = client.create_employee(&new_employee(1)).await.unwrap();
    sim.faults()
        .fail_next(1, Fault::CommitThenDrop, FaultScope::Writes);
    let role = client
        .create_role_assignment(&e.object_id, "SALES_REP", None)
        .await
        .unwrap();
    assert_eq!(role.business_role_id, "SALES_REP");
    assert_eq!(sim.business_roles_of(&e.object_id), vec!["SALES_REP"]);
}
