use std::time::{Duration, Instant};

use c4c_scim_bridge::sim::{Fault, FaultScope, FaultSettings, SimConfig};
use reqwest::Method;
use serde_json::{Value, json};

use super::helpers::{error_message, start, start_with};

#[tokio::test]
async fn latency_is_added() {
    let t = start(SimConfig {
        faults: FaultSettings {
            latency_ms: 250,
            ..FaultSettings::default()
        },
        ..SimConfig::default()
    })
    .await;
    let started = Instant::now();
    let r = t
        .get("EmployeeCollection?$format=json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A lower bound only: the simulator sleeps at least this long.
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert!(
        r.headers()["c4c-odata-response-time"]
            .to_str()
            .unwrap()
            .ends_with(" ms")
    );
    t.sim.faults().set_latency(Duration::ZERO, Duration::ZERO);
    assert_eq!(t.sim.faults().settings().latency_ms, 0);
}

#[tokio::test]
async fn error_rates_and_retry_after() {
    let t = start_with(1).await;
    let f = t.sim.faults();
    f.set_error_rates(1.0, 0.0, 0.0);
    let r = t
        .get("EmployeeCollection")
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(error_message(r).await.0, 500);
    f.set_error_rates(0.0, 1.0, 0.0);
    assert_eq!(
        t.get("EmployeeCollection").send().await.unwrap().status(),
        503
    );
    f.set_error_rates(0.0, 0.0, 1.0);
    let r = t.get("EmployeeCollection").send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_none());
    f.set_retry_after(Some(7));
    let r = t.get("EmployeeCollection").send().await.unwrap();
    assert_eq!(r.headers()["retry-after"], "7");
    f.clear();
    assert_eq!(
        t.get("EmployeeCollection").send().await.unwrap().status(),
        200
    );
    f.set_maintenance(true);
    let r = t
        .get("EmployeeCollection")
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    let (s, msg) = error_message(r).await;
    assert_eq!(s, 503);
    assert!(msg.contains("maintenance"));
    let c = t.sim.counters();
    assert_eq!(c.faults_injected, 5);
    assert_eq!(c.errors, 5);
    t.sim.reset_counters();
    assert_eq!(t.sim.counters().total, 0);
}

#[tokio::test]
async fn next_n_failures_by_scope() {
    let t = start_with(1).await;
    let token = t.csrf().await;
    t.sim
        .faults()
        .fail_next(2, Fault::Status503, FaultScope::Writes);
    assert_eq!(t.sim.faults().queued().len(), 1);
    assert_eq!(
        t.get("EmployeeCollection").send().await.unwrap().status(),
        200
    );
    let body = json!({"FirstName":"A","LastName":"B"});
    for expected in [503, 503, 201] {
        let r = t
            .write(Method::POST, "EmployeeCollection", &token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), expected);
    }
    assert_eq!(t.sim.employees().len(), 2);
}

#[tokio::test]
async fn connection_reset_and_hang() {
    let t = start_with(1).await;
    t.sim.faults().fail_next(1, Fault::Reset, FaultScope::Any);
    let err = t.get("EmployeeCollection").send().await.unwrap_err();
    assert!(!err.is_timeout(), "{err:?}");
    assert_eq!(
        t.get("EmployeeCollection").send().await.unwrap().status(),
        200
    );

    t.sim.faults().set_hang_time(Duration::from_secs(5));
    t.sim.faults().fail_next(1, Fault::Hang, FaultScope::Reads);
    let err = t
        .get("EmployeeCollection")
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    t.sim.faults().set_reset_rate(1.0);
    assert!(t.get("EmployeeCollection").send().await.is_err());
}

#[tokio::test]
async fn commit_then_drop_makes_the_write_happen_unseen() {
    let t = start_with(0).await;
    let token = t.csrf().await;
    t.sim
        .faults()
        .fail_next(1, Fault::CommitThenDrop, FaultScope::Writes);
    let r = t
        .write(Method::POST, "EmployeeCollection", &token)
        .json(&json!({"FirstName":"Dup","LastName":"Licate","UserID":"DUP"}))
        .send()
        .await;
    assert!(r.is_err(), "{r:?}");
    assert_eq!(t.sim.employees().len(), 1, "the write was committed");
    // The retry a naive client makes is refused as a duplicate user.
    let r = t
        .write(Method::POST, "EmployeeCollection", &token)
        .json(&json!({"FirstName":"Dup","LastName":"Licate","UserID":"DUP"}))
        .send()
        .await
        .unwrap();
    assert!(error_message(r).await.1.contains("already exists"));
}

#[tokio::test]
async fn in_flight_cap() {
    let t = start(SimConfig {
        faults: FaultSettings {
            latency_ms: 1500,
            max_in_flight: Some(1),
            ..FaultSettings::default()
        },
        ..SimConfig::default()
    })
    .await;
    let (a, b) = tokio::join!(t.get("EmployeeCollection").send(), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        t.get("EmployeeCollection").send().await
    });
    let mut statuses = [a.unwrap().status().as_u16(), b.unwrap().status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 503]);
}

#[tokio::test]
async fn control_api() {
    let t = start_with(2).await;
    let c = t.sim.control_url();
    let r = t
        .http
        .put(format!("{c}/faults"))
        .json(&json!({"error_429_rate": 1.0, "retry_after_secs": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = t.get("EmployeeCollection").send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "3");
    assert_eq!(
        t.http
            .put(format!("{c}/faults"))
            .json(&json!({"bogus": 1}))
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    t.http
        .post(format!("{c}/faults/reset"))
        .send()
        .await
        .unwrap();
    let q = json!({"fault": {"kind": "status500"}, "scope": "reads", "remaining": 1});
    t.http
        .post(format!("{c}/faults/next"))
        .json(&q)
        .send()
        .await
        .unwrap();
    let state: Value = t
        .http
        .get(format!("{c}/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["queued"][0]["remaining"], 1);
    assert_eq!(
        t.get("EmployeeCollection").send().await.unwrap().status(),
        500
    );
    assert_eq!(
        t.get("EmployeeCollection").send().await.unwrap().status(),
        200
    );
    let counters: Value = t
        .http
        .get(format!("{c}/counters"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counters["reads"], 3);
    assert_eq!(counters["faults_injected"], 2);
    let reset: Value = t
        .http
        .post(format!("{c}/counters/reset"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reset["total"], 0);
    let token = t.csrf().await;
    t.http
        .post(format!("{c}/csrf/invalidate"))
        .send()
        .await
        .unwrap();
    let r = t
        .write(Method::POST, "EmployeeCollection", &token)
        .json(&json!({"FirstName":"A","LastName":"B"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let list: Value = t
        .http
        .get(format!("{c}/employees"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    // The control API is not counted.
    assert_eq!(t.sim.counters().total, 2);
}

#[tokio::test]
async fn control_api_can_be_switched_off() {
    let t = start(SimConfig {
        control_api: false,
        ..SimConfig::default()
    })
    .await;
    let r = t
        .http
        .get(format!("{}/counters", t.sim.control_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
