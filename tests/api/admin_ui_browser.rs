//! The admin UI in a real browser: Debian's chromium, headless, driven through chromedriver with
//! fantoccini. An operator signs in, finds a failed provisioning on the dashboard, opens its
//! trace, retries it and sees it succeed; then retries a failed C4C write from the outbox view
//! and sees the worker apply it. A screenshot of every view lands in target/screenshots/.
//!
//! Outside CI the test is skipped (with a warning) when chromium or chromedriver is missing; in
//! CI (`CI=true`) it must run: `.ci/run` installs both.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use c4c_scim_bridge::provisioning::outbox::{EmployeeUpdate, enqueue_employee_update};
use c4c_scim_bridge::sim::{Fault, FaultScope};
use c4c_scim_bridge::store::{OutboxStatus, ResourceType};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::admin_api::{PASSWORD, add_admins};
use crate::harness::{Backend, TestDb, free_port, start_sim};
use crate::users::{Bridge, entra_user};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// chromedriver in a process group of its own, ended when dropped with the browsers it started
/// (also when the test fails before it closed its session).
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts chromedriver and waits until it answers; `None` (outside CI) when it is not installed.
async fn start_driver() -> Option<Driver> {
    let installed = Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists();
    if !installed {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{CHROMEDRIVER} and {CHROMIUM} are required in CI (.ci/run installs them)");
        }
        eprintln!(
            "warning: admin UI browser test skipped: install chromium and chromium-driver from Debian"
        );
        return None;
    }
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let driver = Driver { child, port };
    let status = format!("http://127.0.0.1:{port}/status");
    for _ in 0..100 {
        if let Ok(response) = reqwest::get(&status).await
            && response.status().is_success()
        {
            return Some(driver);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not answer on port {port}");
}

async fn browser(driver: &Driver, profile: &Path) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("browserName".into(), json!("chrome"));
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1366,900",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .unwrap()
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

async fn text_of(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Waits for an element of the next page (a form post or click navigates asynchronously).
async fn wait_for(client: &Client, css: &str) {
    client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|error| panic!("no {css}: {error}"));
}

/// Waits until the browser is on a page whose path and query contain `part`.
async fn wait_for_url(client: &Client, part: &str) {
    for _ in 0..200 {
        let url = client.current_url().await.unwrap();
        let here = format!("{}?{}", url.path(), url.query().unwrap_or_default());
        if here.contains(part) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the browser never reached a page with {part:?}");
}

fn user(name: &str, number: &str) -> Value {
    let mut user = entra_user();
    let login = format!("{name}@contoso.com");
    user["userName"] = json!(login);
    user["externalId"] = json!(name);
    user["emails"] = json!([{"primary": true, "type": "work", "value": login}]);
    user["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["employeeNumber"] =
        json!(number);
    user
}

/// Reloads `path` until the page shows `wanted` (the worker runs in the background); fails
/// after a generous bound, so a slow machine does not fail the test.
async fn reload_until(client: &Client, url: &str, wanted: &str) -> String {
    for _ in 0..200 {
        client.goto(url).await.unwrap();
        let source = client.source().await.unwrap();
        if source.contains(wanted) {
            return source;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} never showed {wanted:?}");
}

#[tokio::test]
async fn admin_ui_in_chromium_retry_a_failed_provisioning_and_an_outbox_item() {
    let Some(driver) = start_driver().await else {
        return;
    };
    let sim = start_sim(0).await;
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let bridge = Bridge::start_configured(db, &sim, |config| {
        config.auth.admin.cookie_secure = false;
        config.outbox.poll_interval_ms = 50;
        config.outbox.max_attempts = 1;
    })
    .await;
    add_admins(&bridge.app.store).await;

    // History: one user provisioned, one refused by C4C (a 503 storm).
    let (status, _, alice) = bridge
        .send(reqwest::Method::POST, "/Users", Some(user("alice", "300")))
        .await;
    assert_eq!(status, 201);
    sim.faults().fail_next(5, Fault::Status503, FaultScope::Any);
    let (status, _, _) = bridge
        .send(reqwest::Method::POST, "/Users", Some(user("frank", "301")))
        .await;
    assert_eq!(status, 503);
    sim.faults().clear();

    let profile = tempfile::tempdir().unwrap();
    let client = browser(&driver, profile.path()).await;
    let base = bridge.app.url("");

    // Sign in: /admin sends a browser to the form.
    client.goto(&format!("{base}/admin")).await.unwrap();
    assert!(
        client
            .current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/admin/login")
    );
    screenshot(&client, "login").await;
    let form = client
        .form(Locator::Css("form[action='/admin/login']"))
        .await
        .unwrap();
    form.set_by_name("username", "olga").await.unwrap();
    form.set_by_name("password", PASSWORD).await.unwrap();
    form.submit().await.unwrap();
    wait_for(&client, "nav[aria-label='Admin sections']").await;
    assert_eq!(client.current_url().await.unwrap().path(), "/admin");
    assert_eq!(text_of(&client, "h1").await, "Dashboard");
    screenshot(&client, "dashboard").await;

    // Keyboard: the first Tab reaches the skip link.
    client
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .send_keys("\u{E004}")
        .await
        .unwrap();
    let focused = client.active_element().await.unwrap();
    assert_eq!(focused.text().await.unwrap(), "Skip to content");

    // The failed provisioning is on the dashboard; its trace shows the C4C failure.
    let failures = text_of(&client, "section[aria-labelledby='failures'] table").await;
    assert!(failures.contains("failed"), "{failures}");
    client
        .find(Locator::Css(
            "section[aria-labelledby='failures'] a[href^='/admin/requests/']",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_url(&client, "/admin/requests/").await;
    let detail = client.source().await.unwrap();
    assert!(detail.contains("frank@contoso.com"), "the SCIM body in");
    assert!(detail.contains("503"));
    assert!(detail.contains("OData calls"));
    screenshot(&client, "request-failed").await;

    // Retry it: the new request's trace says ok and C4C has the employee.
    client
        .find(Locator::Css("form[action$='/retry'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&client, "p.flash").await;
    let flash = text_of(&client, "p.flash").await;
    assert!(flash.contains("ok (201)"), "{flash}");
    assert!(text_of(&client, "h2").await.contains("201"));
    assert!(
        sim.employees()
            .iter()
            .any(|e| serde_json::to_value(e).unwrap()["UserID"] == "frank@contoso.com")
    );
    screenshot(&client, "request-retried").await;

    // Log search with a filter, then the user's timeline.
    client.goto(&format!("{base}/admin/logs")).await.unwrap();
    let search = client
        .form(Locator::Css("form[role='search']"))
        .await
        .unwrap();
    search
        .set_by_name("user", "frank@contoso.com")
        .await
        .unwrap();
    search.submit().await.unwrap();
    wait_for_url(&client, "user=frank").await;
    let rows = client
        .find_all(Locator::Css("main table tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 2, "the failed request and its retry");
    screenshot(&client, "logs").await;
    client
        .find(Locator::Css("main table tbody a[href^='/admin/users/']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_url(&client, "/admin/users/").await;
    assert!(text_of(&client, "h1").await.contains("frank@contoso.com"));
    screenshot(&client, "user-timeline").await;

    // The outbox: a C4C write that failed (503) is retried from the view and applied.
    let store = &bridge.app.store;
    let alice_id = alice["id"].as_str().unwrap();
    let object_id = store
        .get_resource(ResourceType::User, alice_id.parse().unwrap())
        .await
        .unwrap()
        .unwrap()
        .object_id
        .unwrap();
    sim.faults()
        .fail_next(1, Fault::Status503, FaultScope::Writes);
    let item = enqueue_employee_update(
        store,
        Some(alice_id),
        &EmployeeUpdate {
            object_id: object_id.clone(),
            fields: serde_json::from_value(json!({"FirstName": "Alicia"})).unwrap(),
        },
    )
    .await
    .unwrap();
    let outbox_url = format!("{base}/admin/outbox");
    reload_until(&client, &outbox_url, "outcome-failed").await;
    assert_eq!(
        store.get_outbox(item).await.unwrap().unwrap().status,
        OutboxStatus::Failed
    );
    screenshot(&client, "outbox-failed").await;
    client
        .find(Locator::Css(&format!(
            "form[action='/admin/outbox/{item}/retry'] button"
        )))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&client, "p.flash").await;
    assert!(text_of(&client, "p.flash").await.contains("due again"));
    reload_until(&client, &outbox_url, "outcome-done").await;
    assert_eq!(sim.employee(&object_id).unwrap()["FirstName"], "Alicia");
    screenshot(&client, "outbox").await;

    // The other views render.
    for (path, name, heading) in [
        ("/admin/held", "held", "Held deprovisionings"),
        ("/admin/rules", "rules", "Mapping rules"),
        ("/admin/tokens", "tokens", "SCIM tokens"),
    ] {
        client.goto(&format!("{base}{path}")).await.unwrap();
        assert_eq!(text_of(&client, "h1").await, heading);
        screenshot(&client, name).await;
    }
    assert!(text_of(&client, "main").await.contains("entra"));

    client.close().await.unwrap();
}
