use c4c_scim_bridge::sim::{DEFAULT_PASSWORD, DEFAULT_USER};
use serde_json::json;

use super::helpers::{Tenant, start_with};

fn batch_body(parts: &[String]) -> String {
    let mut out = String::new();
    for p in parts {
        out.push_str("--batch_x\r\n");
        out.push_str(p);
    }
    out.push_str("--batch_x--\r\n");
    out
}

fn get_part(url: &str) -> String {
    format!(
        "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nGET {url} HTTP/1.1\r\nAccept: application/json\r\n\r\n\r\n"
    )
}

fn changeset(ops: &[(&str, &str, Option<&str>, &str)]) -> String {
    let mut inner = String::new();
    for (method, url, cid, body) in ops {
        inner.push_str("--changeset_y\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n");
        if let Some(cid) = cid {
            inner.push_str(&format!("Content-ID: {cid}\r\n"));
        }
        inner.push_str(&format!(
            "\r\n{method} {url} HTTP/1.1\r\nContent-Type: application/json\r\nAccept: application/json\r\n\r\n{body}\r\n"
        ));
    }
    inner.push_str("--changeset_y--\r\n");
    format!("Content-Type: multipart/mixed; boundary=changeset_y\r\n\r\n{inner}\r\n")
}

async fn post_batch(t: &Tenant, body: String) -> (u16, String, String) {
    let token = t.csrf().await;
    let r = t
        .http
        .post(t.url("$batch"))
        .basic_auth(DEFAULT_USER, Some(DEFAULT_PASSWORD))
        .header("x-csrf-token", token)
        .header("content-type", "multipart/mixed; boundary=batch_x")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    (status, ct, r.text().await.unwrap())
}

#[tokio::test]
async fn batch_with_reads_and_an_atomic_changeset() {
    let t = start_with(2).await;
    let existing = t.sim.employees()[0]["ObjectID"]
        .as_str()
        .unwrap()
        .to_owned();
    let eid = t.sim.employees()[0]["EmployeeID"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = batch_body(&[
        get_part(&format!(
            "EmployeeCollection?$filter=EmployeeID%20eq%20'{eid}'&$format=json"
        )),
        changeset(&[
            (
                "POST",
                "EmployeeCollection",
                Some("1"),
                r#"{"FirstName":"Batch","LastName":"O'Neil","UserID":"BATCH.ONEIL"}"#,
            ),
            (
                "POST",
                "$1/EmployeeUserBusinessRoleAssignment",
                Some("2"),
                r#"{"BusinessRoleID":"SALES_MANAGER"}"#,
            ),
            (
                "PATCH",
                &format!("EmployeeCollection('{existing}')"),
                Some("3"),
                r#"{"UserLockedIndicator": true}"#,
            ),
        ]),
    ]);
    let (status, ct, text) = post_batch(&t, body).await;
    assert_eq!(status, 202, "{text}");
    let boundary = ct.split("boundary=").nth(1).unwrap();
    assert_ne!(boundary, "batch_x", "the server chooses its own boundary");
    assert!(text.starts_with(&format!("--{boundary}\r\n")));
    assert!(text.trim_end().ends_with(&format!("--{boundary}--")));
    assert!(text.contains("HTTP/1.1 200 OK"));
    assert!(text.contains(&format!("\"EmployeeID\":\"{eid}\"")));
    assert_eq!(text.matches("HTTP/1.1 201 Created").count(), 2);
    assert!(text.contains("HTTP/1.1 204 No Content"));
    assert!(text.contains("Content-ID: 2"));
    assert!(text.contains("location: "));
    let created = t
        .sim
        .employees()
        .into_iter()
        .find(|e| e["UserID"] == "BATCH.ONEIL")
        .unwrap();
    assert_eq!(
        t.sim
            .business_roles_of(created["ObjectID"].as_str().unwrap()),
        vec!["SALES_MANAGER".to_owned()]
    );
    assert_eq!(
        t.sim.employee(&existing).unwrap()["UserLockedIndicator"],
        true
    );
    let c = t.sim.counters();
    assert_eq!((c.batches, c.batch_parts, c.posts, c.reads), (1, 4, 0, 0));
}

#[tokio::test]
async fn a_failing_changeset_rolls_back_entirely() {
    let t = start_with(1).await;
    let before = t.sim.employees().len();
    let body = batch_body(&[
        changeset(&[
            (
                "POST",
                "EmployeeCollection",
                Some("1"),
                r#"{"FirstName":"Good","LastName":"One"}"#,
            ),
            (
                "POST",
                "EmployeeCollection",
                Some("2"),
                r#"{"FirstName":"Bad"}"#,
            ),
        ]),
        get_part("EmployeeCollection/$count"),
    ]);
    let (status, _, text) = post_batch(&t, body).await;
    assert_eq!(status, 202);
    assert!(text.contains("HTTP/1.1 400 Bad Request"), "{text}");
    assert!(text.contains("LastName is mandatory"));
    assert!(!text.contains("201 Created"));
    assert_eq!(t.sim.employees().len(), before);
    // The read after the failed changeset sees the rolled-back state.
    assert!(text.contains(&format!("\r\n\r\n{before}\r\n")), "{text}");
}

#[tokio::test]
async fn batch_is_strict_and_needs_csrf() {
    let t = start_with(1).await;
    let good = batch_body(&[get_part("EmployeeCollection?$top=1")]);
    let r = t
        .http
        .post(t.url("$batch"))
        .basic_auth(DEFAULT_USER, Some(DEFAULT_PASSWORD))
        .header("content-type", "multipart/mixed; boundary=batch_x")
        .body(good.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["x-csrf-token"], "Required");
    for bad in [
        good.replace("\r\n", "\n"),
        batch_body(&[get_part("EmployeeCollection?$filter=FirstName eq 'x'")]),
        batch_body(&[changeset(&[("GET", "EmployeeCollection", None, "")])]),
        batch_body(&[get_part("EmployeeCollection?$search=x")]),
    ] {
        let (status, _, text) = post_batch(&t, bad).await;
        if status == 202 {
            assert!(text.contains("HTTP/1.1 400"), "{text}");
        } else {
            assert_eq!(status, 400, "{text}");
        }
    }
    let token = t.csrf().await;
    let r = t
        .http
        .post(t.url("$batch"))
        .basic_auth(DEFAULT_USER, Some(DEFAULT_PASSWORD))
        .header("x-csrf-token", token)
        .header("accept", "application/json")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn connection_drop_after_a_committed_batch() {
    let t = start_with(0).await;
    t.sim.faults().fail_next(
        1,
        c4c_scim_bridge::sim::Fault::CommitThenDrop,
        c4c_scim_bridge::sim::FaultScope::Writes,
    );
    let body = batch_body(&[changeset(&[(
        "POST",
        "EmployeeCollection",
        Some("1"),
        r#"{"FirstName":"Lost","LastName":"Reply"}"#,
    )])]);
    let token = t.csrf().await;
    let r = t
        .http
        .post(t.url("$batch"))
        .basic_auth(DEFAULT_USER, Some(DEFAULT_PASSWORD))
        .header("x-csrf-token", token)
        .header("content-type", "multipart/mixed; boundary=batch_x")
        .body(body)
        .send()
        .await;
    assert!(r.is_err(), "{r:?}");
    assert_eq!(t.sim.employees().len(), 1);
}
