//! Reads: paging over `__next`, streaming, filters (escaping, literal forms, splitting),
//! lookups by many keys through `$batch`, get by ObjectID, `$metadata`, delta queries.

use std::collections::HashSet;
use std::time::Duration;

use c4c_scim_bridge::c4c::metadata::EdmType;
use c4c_scim_bridge::c4c::{
    C4cError, DeltaCursor, EmployeeQuery, Fields, Filter, Order, WriteKind,
};
use c4c_scim_bridge::sim::SimConfig;
use futures::StreamExt;

use super::support::*;

#[tokio::test]
async fn paging_over_2500_employees_follows_next_links() {
    let sim = start(SimConfig {
        generated_employees: 2500,
        ..Default::default()
    })
    .await;
    let client = basic_client(&sim);
    let all = client.query_employees(&EmployeeQuery::new()).await.unwrap();
    assert_eq!(all.len(), 2500);
    let ids: HashSet<_> = all.iter().map(|e| e.object_id.clone()).collect();
    assert_eq!(ids.len(), 2500, "no duplicates across pages");
    assert_eq!(
        sim.counters().reads,
        3,
        "1000 + 1000 + 500: {:?}",
        sim.counters()
    );
}

#[tokio::test]
async fn paging_whatever_page_size_the_tenant_picks() {
    let sim = start(SimConfig {
        generated_employees: 730,
        page_size: 100,
        ..Default::default()
    })
    .await;
    let client = basic_client(&sim);
    let q = EmployeeQuery::new()
        .select(["ObjectID", "EmployeeID", "LastName"])
        .order_by("EmployeeID", Order::Desc);
    let all = client.query_employees(&q).await.unwrap();
    assert_eq!(all.len(), 730);
    let ids: Vec<_> = all.iter().map(|e| e.employee_id.clone().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(ids, sorted, "order kept across pages");
    assert_eq!(sim.counters().reads, 8);
}

#[tokio::test]
async fn streaming_reads_one_page_at_a_time() {
    let sim = start(SimConfig {
        generated_employees: 2500,
        ..Default::default()
    })
    .await;
    let client = basic_client(&sim);
    let mut pages = client.employee_pages(&EmployeeQuery::new()).await.unwrap();
    let first = pages.next_page().await.unwrap().unwrap();
    assert_eq!(first.len(), 1000);
    assert_eq!(sim.counters().reads, 1, "pages are fetched on demand");
    let stream = client
        .employee_pages(&EmployeeQuery::new())
        .await
        .unwrap()
        .into_stream();
    let count = stream
        .fold(0usize, |n, e| async move {
            e.unwrap();
            n + 1
        })
        .await;
    assert_eq!(count, 2500);
}

#[tokio::test]
async fn filters_escape_quotes_and_use_typed_literals() {
    let sim = start(SimConfig::default()).await;
    let client = basic_client(&sim);
    let mut fields = new_employee(1);
    fields.insert("LastName", "O'Brien' or LastName eq 'x".into());
    let created = client.create_employee(&fields).await.unwrap();
    client.create_employee(&new_employee(2)).await.unwrap();
    let found = client
        .query_employees(
            &EmployeeQuery::new().filter(Filter::eq("LastName", "O'Brien' or LastName eq 'x")),
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].object_id, created.object_id);

    // DateTimeOffset literal on EntityLastChangedOn, DateTime literal on a date property.
    let since = chrono::Utc::now() - chrono::Duration::hours(1);
    let q = EmployeeQuery::new().filter(Filter::ge("EntityLastChangedOn", since).and(Filter::ge(
        "UserValidityEndDate",
        chrono::NaiveDate::from_ymd_opt(2000, 1, 1).unwrap(),
    )));
    assert_eq!(client.query_employees(&q).await.unwrap().len(), 2);
    let q = EmployeeQuery::new().filter(Filter::starts_with("LastName", "O'B"));
    assert_eq!(client.query_employees(&q).await.unwrap().len(), 1);
}

#[tokio::test]
async fn or_across_properties_is_split_and_merged() {
    let sim = start(SimConfig::default()).await;
    let client = basic_client(&sim);
    let a = client.create_employee(&new_employee(1)).await.unwrap();
    let b = client.create_employee(&new_employee(2)).await.unwrap();
    client.create_employee(&new_employee(3)).await.unwrap();
    sim.reset_counters();
    let f = Filter::eq("EmployeeID", "T000001")
        .or(Filter::eq("Email", "jane.test2@example.com"))
        .or(Filter::eq("UserID", "JANE.TEST1"));
    let found = client
        .query_employees(&EmployeeQuery::new().filter(f))
        .await
        .unwrap();
    let ids: HashSet<_> = found.iter().map(|e| e.object_id.clone()).collect();
    assert_eq!(ids, HashSet::from([a.object_id, b.object_id]));
    assert_eq!(found.len(), 2, "de-duplicated");
    assert_eq!(sim.counters().reads, 3, "one query per property");
    assert_eq!(sim.counters().errors, 0);
}

#[tokio::test]
async fn many_keys_are_looked_up_in_one_batch() {
    let sim = start(SimConfig {
        generated_employees: 300,
        ..Default::default()
    })
    .await;
    let client = basic_client(&sim);
    let all = client
        .query_employees(&EmployeeQuery::new().select(["ObjectID", "EmployeeID"]))
        .await
        .unwrap();
    let mut wanted: Vec<String> = all
        .iter()
        .take(120)
        .map(|e| e.employee_id.clone().unwrap())
        .collect();
    wanted.push("NO-SUCH-ID".into());
    sim.reset_counters();
    let found = client
        .find_employees_by("EmployeeID", &wanted)
        .await
        .unwrap();
    assert_eq!(found.len(), 120);
    let c = sim.counters();
    assert_eq!((c.batches, c.batch_parts, c.reads), (1, 3, 0), "{c:?}");
    // One chunk: a plain GET.
    let found = client
        .find_employees_by("EmployeeID", &wanted[..2])
        .await
        .unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(sim.counters().reads, 1);
}

#[tokio::test]
async fn get_by_object_id_carries_the_etag() {
    let sim = start(SimConfig::default()).await;
    let client = basic_client(&sim);
    let created = client.create_employee(&new_employee(1)).await.unwrap();
    let got = client.get_employee(&created.object_id).await.unwrap();
    assert_eq!(got.employee_id.as_deref(), Some("T000001"));
    assert_eq!(got.last_name.as_deref(), Some("O'Test1"));
    let etag = got.etag.unwrap();
    assert!(etag.as_str().starts_with("W/\"datetimeoffset'"), "{etag}");
    assert!(
        etag.as_str().contains("%3A"),
        "percent-encoding kept: {etag}"
    );
    assert_eq!(Some(etag), created.etag);
}

#[tokio::test]
async fn get_by_object_id_with_select_reads_only_those_properties() {
    let sim = start(SimConfig::default()).await;
    let client = basic_client(&sim);
    let created = client.create_employee(&new_employee(1)).await.unwrap();
    let full = client.get_employee(&created.object_id).await.unwrap();
    assert!(full.first_name.is_some() && !full.other.is_empty());
    let got = client
        .get_employee_selecting(&created.object_id, Some("ObjectID,EmployeeID,LastName"))
        .await
        .unwrap();
    assert_eq!(got.object_id, created.object_id);
    assert_eq!(got.employee_id.as_deref(), Some("T000001"));
    assert_eq!(got.last_name.as_deref(), Some("O'Test1"));
    assert_eq!(got.first_name, None);
    assert!(got.other.is_empty(), "{:?}", got.other.keys());
    // The ETag comes with any selection: a conditional write after a narrow read still works.
    assert_eq!(got.etag, created.etag);
    let unknown = client
        .get_employee_selecting(&created.object_id, Some("ObjectID,NoSuchProperty"))
        .await;
    assert!(unknown.is_err());
}

#[tokio::test]
async fn metadata_is_parsed_and_cached() {
    let sim = start(SimConfig::default()).await;
    let client = basic_client(&sim);
    let md = client.metadata().await.unwrap();
    let set = md.entity_set("EmployeeCollection").unwrap();
    assert!(set.creatable && !set.deletable);
    let employee = md.entity_type_of_set("EmployeeCollection").unwrap();
    assert_eq!(employee.keys, vec!["ObjectID"]);
    assert!(!employee.property("ETag").unwrap().filterable);
    assert_eq!(
        employee.property("EntityLastChangedOn").unwrap().edm_type,
        EdmType::DateTimeOffset
    );
    assert_eq!(
        employee.property("UserValidityEndDate").unwrap().edm_type,
        EdmType::DateTime
    );
    assert_eq!(employee.property("Email").unwrap().max_length, Some(255));
    assert!(!employee.property("EmployeeID").unwrap().updatable);
    assert!(
        employee
            .navigations
            .iter()
            .any(|n| n.name == "EmployeeUserBusinessRoleAssignment" && n.many)
    );
    let roles = md
        .entity_set("EmployeeUserBusinessRoleAssignmentCollection")
        .unwrap();
    assert!(roles.deletable);
    client.metadata().await.unwrap();
    assert_eq!(sim.counters().metadata, 1, "cached");

    client
        .check_employee_write(&new_employee(1), WriteKind::Create)
        .await
        .unwrap();
    let mut missing = new_employee(2);
    missing.0.remove("FirstName");
    match client
        .check_employee_write(&missing, WriteKind::Create)
        .await
        .unwrap_err()
    {
        C4cError::Validation { property, .. } => assert_eq!(property.as_deref(), Some("FirstName")),
        other => panic!("unexpected {other:?}"),
    }
    let fixed = Fields::new().set("EmployeeID", "X");
    assert!(
        client
            .check_employee_write(&fixed, WriteKind::Update)
            .await
            .is_err()
    );
    assert_eq!(sim.counters().total, 1, "checks cost no call");
}

#[tokio::test]
async fn delta_reports_each_change_once() {
    let sim = start(SimConfig::default()).await;
    let client = basic_client(&sim);
    let start_at = chrono::Utc::now() - chrono::Duration::seconds(5);
    let a = client.create_employee(&new_employee(1)).await.unwrap();
    client.create_employee(&new_employee(2)).await.unwrap();
    let mut cursor = DeltaCursor::new(start_at, Duration::from_secs(60));
    let first = client.delta(&mut cursor).await.unwrap();
    assert_eq!(first.len(), 2);
    let again = client.delta(&mut cursor).await.unwrap();
    assert!(
        again.is_empty(),
        "overlap re-reads are de-duplicated: {again:?}"
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    client
        .update_employee(&a.object_id, &Fields::new().set("FirstName", "Janet"), None)
        .await
        .unwrap();
    let changed = client.delta(&mut cursor).await.unwrap();
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].first_name.as_deref(), Some("Janet"));
    let all = client.delta_since(start_at, Duration::ZERO).await.unwrap();
    assert_eq!(all.len(), 2);
}

#[tokio::test]
async fn expanded_roles_come_with_the_employees() {
    let sim = start(SimConfig::default()).await;
    let client = basic_client(&sim);
    for n in 0..3 {
        let e = client.create_employee(&new_employee(n)).await.unwrap();
        client
            .create_role_assignment(&e.object_id, "SALES_REP", None)
            .await
            .unwrap();
    }
    let q = EmployeeQuery::new().expand(["EmployeeUserBusinessRoleAssignment"]);
    let all = client.query_employees(&q).await.unwrap();
    assert_eq!(all.len(), 3);
    for e in &all {
        let roles = e.expanded_roles().unwrap();
        assert_eq!(roles.len(), 1);
        assert_eq!(roles[0].business_role_id, "SALES_REP");
    }
}
