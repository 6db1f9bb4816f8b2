use reqwest::Method;
use serde_json::{Value, json};

use super::helpers::{error_message, start_with};

#[tokio::test]
async fn create_returns_201_location_and_generated_keys() {
    let t = start_with(0).await;
    let token = t.csrf().await;
    let r = t
        .write(Method::POST, "EmployeeCollection", &token)
        .json(&json!({"ObjectID":"IGNORED","FirstName":"Jane","LastName":"Doe","UserID":"JANE.DOE","Email":"jane@example.com",
            "UserValidityStartDate":"2024-01-01T00:00:00","UserValidityEndDate":"9999-12-31T00:00:00",
            "EmployeeOrganisationalUnitAssignment":[{"OrgUnitID":"S3110","RoleCode":"219","JobID":"SALES","StartDate":"2024-01-01T00:00:00","EndDate":"9999-12-31T00:00:00"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let d = r.json::<Value>().await.unwrap()["d"].clone();
    let id = d["ObjectID"].as_str().unwrap();
    assert_ne!(id, "IGNORED");
    assert_eq!(id.len(), 32);
    assert!(
        id.chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    );
    assert_eq!(
        location,
        format!("{}/EmployeeCollection('{id}')", t.sim.service_url())
    );
    assert!(
        d["EmployeeID"]
            .as_str()
            .unwrap()
            .chars()
            .all(|c| c.is_ascii_digit())
    );
    assert_eq!(d["__metadata"]["etag"], etag);
    assert_eq!(d["UserValidityStartDate"], "/Date(1704067200000)/");
    assert_eq!(t.sim.employee(id).unwrap()["Email"], "jane@example.com");
    assert_eq!(
        t.sim
            .count("EmployeeOrganisationalUnitAssignmentCollection"),
        Some(1)
    );
    assert_eq!(t.sim.counters().posts, 1);

    let r = t
        .write(Method::POST, "EmployeeCollection", &token)
        .header("odata-no-response-payload", "true")
        .json(&json!({"FirstName":"A","LastName":"B"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(r.headers().contains_key("location"));
    assert!(r.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn create_validation_errors() {
    let t = start_with(0).await;
    t.create(json!({"FirstName":"A","LastName":"B","EmployeeID":"E1","UserID":"U1"}))
        .await;
    let token = t.csrf().await;
    for (body, needle) in [
        (json!({"LastName":"Doe"}), "FirstName is mandatory"),
        (json!({"FirstName":"Jane"}), "LastName is mandatory"),
        (
            json!({"FirstName":"J","LastName":"D","UserName":"x"}),
            "UserName",
        ),
        (
            json!({"FirstName":"J","LastName":"D","UserLock":true}),
            "UserLock",
        ),
        (
            json!({"FirstName":"J","LastName":"D","Department":"x"}),
            "Department",
        ),
        (
            json!({"FirstName":"J","LastName":"D","CreatedOn":"2024-01-01T00:00:00"}),
            "read-only",
        ),
        (
            json!({"FirstName":"x".repeat(41),"LastName":"D"}),
            "maximum length is 40",
        ),
        (
            json!({"FirstName":"J","LastName":"D","LanguageCode":"XX"}),
            "not a valid code",
        ),
        (
            json!({"FirstName":"J","LastName":"D","UserLockedIndicator":"yes"}),
            "Edm.Boolean",
        ),
        (
            json!({"FirstName":"J","LastName":"D","EmployeeID":"E1"}),
            "already exists",
        ),
        (
            json!({"FirstName":"J","LastName":"D","UserID":"u1"}),
            "already exists",
        ),
        (
            json!({"FirstName":"J","LastName":"D","UserID":"U2","EmployeeUserBusinessRoleAssignment":[{"BusinessRoleID":"NO_SUCH_ROLE"}]}),
            "not a valid code",
        ),
    ] {
        let r = t
            .write(Method::POST, "EmployeeCollection", &token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, msg) = error_message(r).await;
        assert_eq!(status, 400, "{body}");
        assert!(msg.contains(needle), "{body}: {msg}");
    }
    let r = t
        .write(Method::POST, "EmployeeCollection", &token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(error_message(r).await.0, 400);
    let r = t
        .write(Method::POST, "BusinessUserCollection", &token)
        .json(&json!({"UserID":"X"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_message(r).await.0, 405);
    assert_eq!(t.sim.employees().len(), 1);
}

#[tokio::test]
async fn patch_put_merge_and_etags() {
    let t = start_with(0).await;
    let e = t.create(json!({"FirstName":"Jane","LastName":"Doe","UserID":"JANE.DOE","EmployeeID":"E1","MobilePhoneNumber":"+1 555"})).await;
    let id = e["ObjectID"].as_str().unwrap().to_owned();
    let etag = e["__metadata"]["etag"].as_str().unwrap().to_owned();
    let changed_before = e["ChangedOn"].as_str().unwrap().to_owned();
    let path = format!("EmployeeCollection('{id}')");
    let token = t.csrf().await;

    let r = t.write(Method::PATCH, &path, &token).header("if-match", &etag)
        .json(&json!({"UserLockedIndicator":true,"EmployeeID":"E1","ETag":"/Date(0)/","CountryCodeText":"ignored"}))
        .send().await.unwrap();
    assert_eq!(r.status(), 204);
    let after = t.sim.employee(&id).unwrap();
    assert_eq!(after["UserLockedIndicator"], true);
    assert_eq!(after["MobilePhoneNumber"], "+1 555");
    assert_ne!(after["ChangedOn"].as_str().unwrap(), changed_before);

    // Stale ETag → 412.
    let r = t
        .write(Method::PATCH, &path, &token)
        .header("if-match", &etag)
        .json(&json!({"FirstName":"X"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_message(r).await.0, 412);
    // EmployeeID is immutable.
    let r = t
        .write(Method::PATCH, &path, &token)
        .json(&json!({"EmployeeID":"E2"}))
        .send()
        .await
        .unwrap();
    let (s, msg) = error_message(r).await;
    assert_eq!(s, 400);
    assert!(msg.contains("not updatable"), "{msg}");
    // PUT replaces: what is not sent is cleared.
    let r = t
        .write(Method::PUT, &path, &token)
        .json(&json!({"FirstName":"Janet","LastName":"Doe","UserID":"JANE.DOE"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(
        !t.sim
            .employee(&id)
            .unwrap()
            .contains_key("MobilePhoneNumber")
    );
    // MERGE via X-HTTP-Method tunnelling.
    let r = t
        .write(Method::POST, &path, &token)
        .header("x-http-method", "MERGE")
        .json(&json!({"OfficePhoneNumber":"+49 30"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(t.sim.employee(&id).unwrap()["OfficePhoneNumber"], "+49 30");
    let c = t.sim.counters();
    assert_eq!((c.patches, c.puts, c.merges), (3, 1, 1));

    // Delta polling: ChangedOn/EntityLastChangedOn move forward and filter with ge.
    let last = t.sim.employee(&id).unwrap()["EntityLastChangedOn"]
        .as_str()
        .unwrap()
        .to_owned();
    let ms: i64 = last
        .trim_start_matches("/Date(")
        .trim_end_matches(")/")
        .parse()
        .unwrap();
    let since = chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ");
    let (_, v) = t
        .get_json(&format!(
            "EmployeeCollection?$format=json&$filter=EntityLastChangedOn ge datetimeoffset'{since}'"
        ))
        .await;
    assert_eq!(v["d"]["results"].as_array().unwrap().len(), 1);

    let r = t
        .write(Method::PATCH, "EmployeeCollection('NOPE')", &token)
        .json(&json!({"FirstName":"X"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_message(r).await.0, 404);
}

#[tokio::test]
async fn deletes_and_role_assignments() {
    let t = start_with(0).await;
    let e = t
        .create(json!({"FirstName":"Jane","LastName":"Doe","UserID":"JANE.DOE"}))
        .await;
    let id = e["ObjectID"].as_str().unwrap().to_owned();
    let token = t.csrf().await;
    let r = t
        .write(
            Method::DELETE,
            &format!("EmployeeCollection('{id}')"),
            &token,
        )
        .send()
        .await
        .unwrap();
    let (s, msg) = error_message(r).await;
    assert_eq!(s, 405);
    assert!(msg.contains("No delete authorization"));
    assert!(t.sim.employee(&id).is_some());

    let r = t
        .write(
            Method::POST,
            &format!("EmployeeCollection('{id}')/EmployeeUserBusinessRoleAssignment"),
            &token,
        )
        .json(&json!({"UserID":"JANE.DOE","BusinessRoleID":"SALES_REP"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let role: Value = r.json().await.unwrap();
    let rid = role["d"]["ObjectID"].as_str().unwrap().to_owned();
    assert_eq!(role["d"]["ParentObjectID"], id.as_str());
    let r = t
        .write(
            Method::POST,
            "EmployeeUserBusinessRoleAssignmentCollection",
            &token,
        )
        .json(&json!({"ParentObjectID": id, "BusinessRoleID":"SALES_REP"}))
        .send()
        .await
        .unwrap();
    assert!(error_message(r).await.1.contains("already assigned"));
    let rpath = format!("EmployeeUserBusinessRoleAssignmentCollection('{rid}')");
    let r = t
        .write(Method::PATCH, &rpath, &token)
        .json(&json!({"BusinessRoleID":"SALES_MANAGER"}))
        .send()
        .await
        .unwrap();
    assert!(error_message(r).await.1.contains("not updatable"));
    assert_eq!(t.sim.business_roles_of(&id), vec!["SALES_REP".to_owned()]);
    let r = t
        .write(Method::DELETE, &rpath, &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = t
        .write(Method::DELETE, &rpath, &token)
        .send()
        .await
        .unwrap();
    let (s, msg) = error_message(r).await;
    assert_eq!(
        (s, msg.as_str()),
        (404, "Delete not possible; object does not exist")
    );
    assert!(t.sim.business_roles_of(&id).is_empty());
    assert_eq!(t.sim.counters().deletes, 3);
}

#[tokio::test]
async fn business_user_follows_the_employee() {
    let t = start_with(0).await;
    let e = t
        .create(json!({"FirstName":"Jane","LastName":"Doe","UserID":"JANE.DOE"}))
        .await;
    let id = e["ObjectID"].as_str().unwrap().to_owned();
    let (_, bu) = t
        .get_json(&format!(
            "EmployeeCollection('{id}')/BusinessUser?$format=json"
        ))
        .await;
    let bu_id = bu["d"]["ObjectID"].as_str().unwrap().to_owned();
    let token = t.csrf().await;
    let r = t
        .write(
            Method::PATCH,
            &format!("BusinessUserCollection('{bu_id}')"),
            &token,
        )
        .json(&json!({"UserLockedIndicator":true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(t.sim.employee(&id).unwrap()["UserLockedIndicator"], true);
    let r = t
        .write(
            Method::PATCH,
            &format!("BusinessUserCollection('{bu_id}')"),
            &token,
        )
        .json(&json!({"EmailURI":"x@y"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_message(r).await.0, 400);
}

#[tokio::test]
async fn handle_plants_and_edits_employees() {
    let t = start_with(0).await;
    let id = t
        .sim
        .plant_employee(json!({"FirstName":"Ana","LastName":"Núñez","EmployeeID":"77"}))
        .unwrap();
    assert!(t.sim.plant_employee(json!({"LastName":"x"})).is_err());
    let before = t.sim.employee(&id).unwrap()["ETag"].clone();
    t.sim
        .edit_employee(&id, json!({"UserLockedIndicator": true}))
        .unwrap();
    let after = t.sim.employee_by_employee_id("77").unwrap();
    assert_ne!(after["ETag"], before);
    assert_eq!(after["UserLockedIndicator"], true);
}

#[tokio::test]
async fn delete_honours_if_match_and_method_tunnelling() {
    let t = start_with(0).await;
    let e = t
        .create(
            json!({"FirstName":"Jane","LastName":"Doe","UserID":"JANE.DOE",
            "EmployeeUserBusinessRoleAssignment":[{"BusinessRoleID":"SALES_REP"}]}),
        )
        .await;
    let id = e["ObjectID"].as_str().unwrap().to_owned();
    let (_, roles) = t
        .get_json(&format!(
            "EmployeeCollection('{id}')/EmployeeUserBusinessRoleAssignment?$format=json"
        ))
        .await;
    let role = &roles["d"]["results"][0];
    let path = format!(
        "EmployeeUserBusinessRoleAssignmentCollection('{}')",
        role["ObjectID"].as_str().unwrap()
    );
    let token = t.csrf().await;
    let stale = "W/\"datetimeoffset'2000-01-01T00%3A00%3A00.0000000Z'\"";
    let r = t
        .write(Method::DELETE, &path, &token)
        .header("if-match", stale)
        .send()
        .await
        .unwrap();
    assert_eq!(error_message(r).await.0, 412);
    let etag = role["__metadata"]["etag"].as_str().unwrap();
    let r = t
        .write(Method::POST, &path, &token)
        .header("x-http-method", "DELETE")
        .header("if-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(t.sim.business_roles_of(&id).is_empty());
}
