use c4c_scim_bridge::sim::{SimConfig, TopPolicy};
use serde_json::{Value, json};

use super::helpers::{error_message, start, start_with};

#[tokio::test]
async fn metadata_and_service_document() {
    let t = start_with(0).await;
    let r = t.get("$metadata").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("xml")
    );
    let doc = r.text().await.unwrap();
    assert!(doc.contains("<EntityType Name=\"Employee\">"));
    assert!(doc.contains("sap:deletable=\"false\""));
    let (s, v) = t.get_json("").await;
    assert_eq!(s, 200);
    assert!(
        v["d"]["EntitySets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "EmployeeCollection")
    );
    // Atom service document by default; the root needs its trailing slash.
    let atom = t.get("").send().await.unwrap().text().await.unwrap();
    assert!(atom.contains("<app:collection href=\"EmployeeCollection\">"));
    let no_slash = t
        .http
        .get(t.sim.service_url())
        .basic_auth(
            c4c_scim_bridge::sim::DEFAULT_USER,
            Some(c4c_scim_bridge::sim::DEFAULT_PASSWORD),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(no_slash.status(), 404);
    let (s, _) = t.get_json("NoSuchCollection").await;
    assert_eq!(s, 404);
    assert_eq!(t.sim.counters().metadata, 1);
}

#[tokio::test]
async fn json_envelopes_and_single_entity() {
    let t = start_with(3).await;
    let (s, v) = t.get_json("EmployeeCollection?$format=json").await;
    assert_eq!(s, 200);
    let results = v["d"]["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert!(v["d"].get("__count").is_none());
    assert!(v["d"].get("__next").is_none());
    let e = &results[0];
    let id = e["ObjectID"].as_str().unwrap();
    assert_eq!(id.len(), 32);
    assert_eq!(e["UUID"].as_str().unwrap().replace('-', ""), id);
    assert_eq!(e["__metadata"]["type"], "c4codataapi.Employee");
    assert_eq!(
        e["__metadata"]["uri"],
        format!("{}/EmployeeCollection('{id}')", t.sim.service_url())
    );
    let etag = e["__metadata"]["etag"].as_str().unwrap();
    assert!(
        etag.starts_with("W/\"datetimeoffset'") && etag.contains("%3A"),
        "{etag}"
    );
    assert!(e["CreatedOn"].as_str().unwrap().starts_with("/Date("));
    assert_eq!(e["UserValidityEndDate"], "/Date(253402214400000)/");
    assert!(e["CountryCodeText"].is_string());
    assert!(
        e["EmployeeUserBusinessRoleAssignment"]["__deferred"]["uri"]
            .as_str()
            .unwrap()
            .ends_with("/EmployeeUserBusinessRoleAssignment")
    );
    for wrong in ["UserName", "UserLock", "Department", "ManagerID"] {
        assert!(e.get(wrong).is_none(), "{wrong}");
    }

    let r = t
        .get(&format!("EmployeeCollection('{id}')?$format=json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(r.headers()["dataserviceversion"], "2.0");
    let one: Value = r.json().await.unwrap();
    assert_eq!(one["d"]["ObjectID"], id);
    assert!(one["d"].get("results").is_none());

    // The business key in the key predicate is "not found".
    let eid = e["EmployeeID"].as_str().unwrap();
    let r = t
        .get(&format!("EmployeeCollection('{eid}')?$format=json"))
        .send()
        .await
        .unwrap();
    let (status, _) = error_message(r).await;
    assert_eq!(status, 404);
    let (_, by_filter) = t
        .get_json(&format!(
            "EmployeeCollection?$format=json&$filter=EmployeeID eq '{eid}'"
        ))
        .await;
    assert_eq!(by_filter["d"]["results"][0]["ObjectID"], id);

    // Atom is the default format.
    let atom = t
        .get(&format!("EmployeeCollection('{id}')"))
        .send()
        .await
        .unwrap();
    assert!(
        atom.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/atom+xml")
    );
    let body = atom.text().await.unwrap();
    assert!(
        body.contains("<m:properties>") && body.contains(&format!("<d:ObjectID>{id}</d:ObjectID>"))
    );
}

#[tokio::test]
async fn server_paging_select_orderby_count() {
    let t = start_with(2150).await;
    let (_, p1) = t
        .get_json(
            "EmployeeCollection?$format=json&$inlinecount=allpages&$select=EmployeeID,LastName",
        )
        .await;
    assert_eq!(p1["d"]["__count"], "2150");
    assert_eq!(p1["d"]["results"].as_array().unwrap().len(), 1000);
    let first = &p1["d"]["results"][0];
    assert!(first.get("FirstName").is_none());
    assert!(first.get("EmployeeID").is_some());
    let next = p1["d"]["__next"].as_str().unwrap();
    assert!(next.contains("$skiptoken=1001"), "{next}");
    assert!(next.contains("$select=EmployeeID%2CLastName"), "{next}");
    let mut seen = 1000;
    let mut url = next.to_owned();
    loop {
        let v: Value = t
            .http
            .get(&url)
            .basic_auth(
                c4c_scim_bridge::sim::DEFAULT_USER,
                Some(c4c_scim_bridge::sim::DEFAULT_PASSWORD),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        seen += v["d"]["results"].as_array().unwrap().len();
        match v["d"]["__next"].as_str() {
            Some(n) => url = n.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen, 2150);

    let count = t
        .get("EmployeeCollection/$count?$filter=UserLockedIndicator eq true")
        .send()
        .await
        .unwrap();
    assert!(
        count.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let n: usize = count.text().await.unwrap().parse().unwrap();
    assert!(n > 0 && n < 2150);

    let (_, sorted) = t
        .get_json(
            "EmployeeCollection?$format=json&$top=50&$skip=10&$orderby=LastName desc,EmployeeID",
        )
        .await;
    let names: Vec<&str> = sorted["d"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["LastName"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 50);
    assert!(names.windows(2).all(|w| w[0] >= w[1]));
    assert!(sorted["d"].get("__next").is_none());

    // $expand pages at 100.
    let (_, ex) = t.get_json("EmployeeCollection?$format=json&$expand=EmployeeUserBusinessRoleAssignment&$select=EmployeeID,EmployeeUserBusinessRoleAssignment/BusinessRoleID").await;
    assert_eq!(ex["d"]["results"].as_array().unwrap().len(), 100);
    let roles = &ex["d"]["results"][0]["EmployeeUserBusinessRoleAssignment"]["results"];
    assert!(roles[0]["BusinessRoleID"].is_string());
    assert!(roles[0].get("UserID").is_none());
    assert!(
        ex["d"]["__next"]
            .as_str()
            .unwrap()
            .contains("$skiptoken=101")
    );
}

#[tokio::test]
async fn top_above_page_size_is_a_setting() {
    let t = start_with(1200).await;
    let (_, capped) = t
        .get_json("EmployeeCollection?$format=json&$top=1100&$select=ObjectID")
        .await;
    assert_eq!(capped["d"]["results"].as_array().unwrap().len(), 1000);
    let next = capped["d"]["__next"].as_str().unwrap();
    assert!(next.contains("$top=1100"));
    let rest: Value = t
        .http
        .get(next)
        .basic_auth(
            c4c_scim_bridge::sim::DEFAULT_USER,
            Some(c4c_scim_bridge::sim::DEFAULT_PASSWORD),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rest["d"]["results"].as_array().unwrap().len(), 100);
    assert!(rest["d"].get("__next").is_none());

    let h = start(SimConfig {
        generated_employees: 1200,
        top_policy: TopPolicy::Honour,
        ..SimConfig::default()
    })
    .await;
    let (_, all) = h
        .get_json("EmployeeCollection?$format=json&$top=1100&$select=ObjectID")
        .await;
    assert_eq!(all["d"]["results"].as_array().unwrap().len(), 1100);
    assert!(all["d"].get("__next").is_none());
}

#[tokio::test]
async fn filters_are_exactly_as_narrow_as_c4c() {
    let t = start_with(0).await;
    t.create(
        json!({"FirstName":"Seán","LastName":"O'Brien","UserID":"SEAN.OBRIEN","EmployeeID":"E1"}),
    )
    .await;
    t.create(json!({"FirstName":"Zoë","LastName":"Müller","UserID":"ZOE.MUELLER","EmployeeID":"E2","UserLockedIndicator":true})).await;
    let q = |f: &str| format!("EmployeeCollection?$format=json&$filter={}", urlencode(f));
    let ids = |v: &Value| -> Vec<String> {
        v["d"]["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["EmployeeID"].as_str().unwrap().to_owned())
            .collect()
    };
    for (f, want) in [
        ("LastName eq 'O''Brien'", vec!["E1"]),
        ("UserID eq '*MUEL*'", vec!["E2"]),
        ("startswith(LastName,'M')", vec!["E2"]),
        ("endswith(LastName,'ien') eq true", vec!["E1"]),
        ("EmployeeID eq 'E1' or EmployeeID eq 'E2'", vec!["E1", "E2"]),
        (
            "(UserLockedIndicator eq true) and (FirstName eq 'Zoë')",
            vec!["E2"],
        ),
        (
            "EntityLastChangedOn ge datetimeoffset'2000-01-01T00:00:00.0000000Z'",
            vec!["E1", "E2"],
        ),
        (
            "UserValidityEndDate gt datetime'9999-01-01T00:00:00'",
            vec!["E1", "E2"],
        ),
    ] {
        let (s, v) = t.get_json(&q(f)).await;
        assert_eq!(s, 200, "{f}: {v}");
        assert_eq!(ids(&v), want, "{f}");
    }
    for (f, needle) in [
        ("FirstName ne 'x'", "Invalid token detected at position 11"),
        ("substringof('a',LastName)", "substringof"),
        ("FirstName eq 'a' or LastName eq 'b'", "same property"),
        (
            "ETag ge datetimeoffset'2000-01-01T00:00:00Z'",
            "not filterable",
        ),
        ("UserName eq 'x'", "UserName not found"),
        (
            "EmployeeUserBusinessRoleAssignment/BusinessRoleID eq 'SALES_REP'",
            "navigation",
        ),
        (
            "EntityLastChangedOn ge datetime'2016-05-03T10:09:19.6938540Z'",
            "Invalid token detected at position 24",
        ),
        ("LastName eq 'unterminated", "Invalid token"),
    ] {
        let r = t
            .get(&q(f))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        let (status, msg) = error_message(r).await;
        assert_eq!(status, 400, "{f}");
        assert!(msg.contains(needle), "{f}: {msg}");
    }
    let allow = start(SimConfig {
        allow_ne: true,
        ..SimConfig::default()
    })
    .await;
    let (s, _) = allow.get_json(&q("FirstName ne 'x'")).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn navigation_reads_and_search() {
    let t = start_with(0).await;
    let e = t
        .create(json!({"FirstName":"Jane","LastName":"Doe","UserID":"JANE.DOE",
            "EmployeeUserBusinessRoleAssignment":[{"BusinessRoleID":"SALES_REP"},{"BusinessRoleID":"SALES_MANAGER"}]}))
        .await;
    let id = e["ObjectID"].as_str().unwrap();
    let (_, roles) = t
        .get_json(&format!(
            "EmployeeCollection('{id}')/EmployeeUserBusinessRoleAssignment?$format=json"
        ))
        .await;
    assert_eq!(roles["d"]["results"].as_array().unwrap().len(), 2);
    let n = t
        .get(&format!(
            "EmployeeCollection('{id}')/EmployeeUserBusinessRoleAssignment/$count"
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(n, "2");
    let (_, bu) = t
        .get_json(&format!(
            "EmployeeCollection('{id}')/BusinessUser?$format=json"
        ))
        .await;
    assert_eq!(bu["d"]["UserID"], "JANE.DOE");
    let (_, ex) = t.get_json(&format!("EmployeeCollection('{id}')?$format=json&$expand=BusinessUser,EmployeeUserBusinessRoleAssignment")).await;
    assert_eq!(ex["d"]["BusinessUser"]["UserID"], "JANE.DOE");
    assert_eq!(
        ex["d"]["EmployeeUserBusinessRoleAssignment"]["results"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (_, child) = t.get_json("EmployeeUserBusinessRoleAssignmentCollection?$format=json&$filter=BusinessRoleID eq 'SALES_REP'&$expand=Employee").await;
    assert_eq!(child["d"]["results"][0]["Employee"]["ObjectID"], id);
    let (_, bus) = t
        .get_json("BusinessUserCollection?$format=json&$filter=UserLockedIndicator eq false")
        .await;
    assert_eq!(bus["d"]["results"].as_array().unwrap().len(), 1);
    let (_, found) = t
        .get_json("EmployeeCollection?$format=json&$search=jan*")
        .await;
    assert_eq!(found["d"]["results"].as_array().unwrap().len(), 1);
    let (_, none) = t
        .get_json("EmployeeCollection?$format=json&$search=jan")
        .await;
    assert_eq!(none["d"]["results"].as_array().unwrap().len(), 0);
    let (_, codes) = t
        .get_json("EmployeeCountryCodeCollection?$format=json&$filter=Code eq 'DE'")
        .await;
    assert_eq!(codes["d"]["results"][0]["Description"], "Germany");
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn code_descriptions_and_atom_feeds() {
    let t = start_with(3).await;
    let (_, with) = t.get_json("EmployeeCollection?$format=json&$top=1").await;
    assert!(with["d"]["results"][0]["CountryCodeText"].is_string());
    let r = t
        .get("EmployeeCollection?$format=json&$top=1")
        .header("odata-no-codedescs", "true")
        .send()
        .await
        .unwrap();
    let without: Value = r.json().await.unwrap();
    assert!(without["d"]["results"][0].get("CountryCodeText").is_none());
    assert!(without["d"]["results"][0].get("CountryCode").is_some());

    let paged = start(SimConfig {
        generated_employees: 3,
        page_size: 2,
        ..SimConfig::default()
    })
    .await;
    let feed = paged
        .get("EmployeeCollection?$inlinecount=allpages")
        .send()
        .await
        .unwrap();
    assert!(
        feed.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/atom+xml;type=feed")
    );
    let xml = feed.text().await.unwrap();
    assert_eq!(xml.matches("<entry").count(), 2);
    assert!(xml.contains("<m:count>3</m:count>"));
    assert!(
        xml.contains("rel=\"next\"") && xml.contains("$skiptoken=3"),
        "{xml}"
    );
    let err = paged
        .get("EmployeeCollection?$filter=Nope eq 1")
        .send()
        .await
        .unwrap();
    assert_eq!(err.status(), 400);
    assert!(err.text().await.unwrap().contains("<code>ERROR</code>"));
}

#[tokio::test]
async fn filtered_metadata() {
    let t = start_with(0).await;
    let doc = t
        .get("$metadata?$filter=BusinessUser")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(doc.contains("<EntityType Name=\"BusinessUser\">"));
    assert!(!doc.contains("<EntityType Name=\"Employee\">"));
    let doc = t
        .get("$metadata?$filter=Employee")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(doc.contains("<EntityType Name=\"EmployeeUserBusinessRoleAssignment\">"));
    assert!(!doc.contains("CorporateAccount"));
}
