//! GET /Users with filters C4C narrows: the planned OData queries run page by page, only
//! employees linked to a live user come back, the residual filter and paging apply after.

use c4c_scim_bridge::sim::{SimConfig, SimHandle, Simulator};
use serde_json::{Value, json};

use crate::harness::{Backend, TestDb};
use crate::on_both_backends;
use crate::users::{Bridge, calls, entra_user, patch};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn user(login: &str, given: &str, family: &str, department: &str) -> Value {
    let mut user = entra_user();
    user["userName"] = json!(format!("{login}@contoso.com"));
    user["externalId"] = json!(login);
    user["emails"] =
        json!([{"primary": true, "type": "work", "value": format!("{login}@contoso.com")}]);
    user["name"] = json!({"givenName": given, "familyName": family});
    user["displayName"] = json!(format!("{given} {family}"));
    user[ENTERPRISE] = json!({"department": department});
    user
}

/// GET with a raw (already encoded) query string; the userNames found, in order.
async fn list(bridge: &Bridge, query: &str) -> (u16, Value) {
    let (status, _, body) = bridge
        .send(reqwest::Method::GET, &format!("/Users?{query}"), None)
        .await;
    (status, body)
}

fn names(body: &Value) -> Vec<String> {
    let mut names: Vec<String> = body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["userName"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

fn enc(filter: &str) -> String {
    format!(
        "filter={}",
        url::form_urlencoded::byte_serialize(filter.as_bytes()).collect::<String>()
    )
}

/// Reads (OData GETs) since the last reset, then a fresh reset.
fn reads(sim: &SimHandle) -> u64 {
    let counters = sim.counters();
    assert_eq!(counters.writes(), 0, "a list never writes");
    calls(sim)
}

on_both_backends!(filters_pushed_down_to_c4c, |backend: Backend| async move {
    // Pages of two employees, so that a result spanning pages is read page by page.
    let sim = Simulator::start(SimConfig {
        generated_employees: 3,
        page_size: 2,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let bridge = Bridge::start_on(db, &sim).await;
    for (login, given, family, department) in [
        ("alice", "Alice", "Example", "Sales"),
        ("bob", "Bob", "Builder", "Sales"),
        ("carol", "Carol", "Example", "Support"),
        ("dave", "Dave", "Other", "Support"),
        ("erin", "Erin", "Example", "Sales"),
    ] {
        let (status, _, body) = bridge
            .send(
                reqwest::Method::POST,
                "/Users",
                Some(user(login, given, family, department)),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    // erin is deleted (a tombstone) and an unlinked employee shares the family name: neither
    // may come back.
    let (_, erin) = list(&bridge, &enc("userName eq \"erin@contoso.com\"")).await;
    let erin_id = erin["Resources"][0]["id"].as_str().unwrap().to_owned();
    let (status, _, _) = bridge
        .send(reqwest::Method::DELETE, &format!("/Users/{erin_id}"), None)
        .await;
    assert_eq!(status, 204);
    sim.plant_employee(json!({"FirstName": "Frank", "LastName": "Example", "UserID": "frank"}))
        .unwrap();
    sim.reset_counters();

    // One property, exact: one query; four employees named Example (alice, carol, erin,
    // frank) are two pages, so two reads.
    let (status, body) = list(&bridge, &enc("name.familyName eq \"Example\"")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(names(&body), ["alice@contoso.com", "carol@contoso.com"]);
    assert_eq!(body["totalResults"], 2);
    assert_eq!(reads(&sim), 2);

    // A value path onto Email.
    let (status, body) = list(
        &bridge,
        &enc("emails[type eq \"work\" and value eq \"bob@contoso.com\"]"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(names(&body), ["bob@contoso.com"]);
    assert_eq!(reads(&sim), 1);

    // `or` across two properties: two queries, the union without duplicates.
    let (status, body) = list(
        &bridge,
        &enc("name.familyName eq \"Example\" or emails.value eq \"DAVE@contoso.com\" or name.givenName eq \"Alice\""),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        names(&body),
        ["alice@contoso.com", "carol@contoso.com", "dave@contoso.com"]
    );
    assert_eq!(body["totalResults"], 3);
    assert!(reads(&sim) >= 3, "one query per property");

    // `and` with a part C4C cannot filter (department lives in an org-unit assignment): the
    // narrowing part is pushed down, the whole filter is evaluated on what came back.
    let (status, body) = list(
        &bridge,
        &enc(&format!(
            "name.familyName eq \"Example\" and {ENTERPRISE}:department eq \"Support\""
        )),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(names(&body), ["carol@contoso.com"]);
    assert_eq!(reads(&sim), 2);

    // Department alone cannot be narrowed: 400 invalidFilter naming it, and C4C is not asked.
    let (status, body) = list(
        &bridge,
        &enc(&format!("{ENTERPRISE}:department eq \"Support\"")),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["scimType"], "invalidFilter");
    assert!(
        body["detail"].as_str().unwrap().contains("department"),
        "{body}"
    );
    // `not` neither.
    let (status, body) = list(&bridge, &enc("not (name.familyName eq \"Example\")")).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["scimType"], "invalidFilter");
    assert_eq!(calls(&sim), 0);

    // active: carol is disabled; the lock indicator is pushed down.
    let (_, _, carol) = bridge
        .send(
            reqwest::Method::GET,
            &format!("/Users?{}", enc("userName eq \"carol@contoso.com\"")),
            None,
        )
        .await;
    let carol_id = carol["Resources"][0]["id"].as_str().unwrap().to_owned();
    let (status, _, body) = bridge
        .send(
            reqwest::Method::PATCH,
            &format!("/Users/{carol_id}"),
            Some(patch(
                json!([{"op": "replace", "path": "active", "value": false}]),
            )),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    sim.reset_counters();
    let (status, body) = list(&bridge, &enc("active eq false")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(names(&body), ["carol@contoso.com"]);
    assert_eq!(body["Resources"][0]["active"], false);
    let (status, body) = list(
        &bridge,
        &enc("active eq true and name.familyName eq \"Example\""),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(names(&body), ["alice@contoso.com"]);
    sim.reset_counters();

    // Paging: startIndex and count over the filtered set, totalResults unchanged; the pages
    // do not overlap and together give the whole set.
    let mut seen = Vec::new();
    for start in 1..=4 {
        let (status, body) = list(
            &bridge,
            &format!(
                "{}&startIndex={start}&count=1",
                enc("name.familyName sw \"B\" or name.familyName eq \"Example\" or name.familyName eq \"Other\"")
            ),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["totalResults"], 4, "{body}");
        assert_eq!(body["startIndex"], start);
        let page = names(&body);
        assert_eq!(page.len(), 1, "{body}");
        seen.extend(page);
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "alice@contoso.com",
            "bob@contoso.com",
            "carol@contoso.com",
            "dave@contoso.com"
        ]
    );
    let (status, body) = list(
        &bridge,
        &format!(
            "{}&startIndex=5&count=10",
            enc("name.familyName eq \"Example\"")
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["totalResults"], 2);
    assert_eq!(body["Resources"], json!([]));
});
