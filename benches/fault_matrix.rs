//! Fault matrix: one fixed identity-provider workload per scenario against the real bridge
//! (SQLite store, or `--store-url`) and a fresh simulator with the scenario's fault running the
//! whole time; then C4C's state is checked against the expected one.
//!
//! Workload for N users (Entra ID's way: a filter GET then a POST; every request retried after a
//! 5xx, a 429 or a broken connection, waiting Retry-After capped at 2 s, for at most 90 s):
//! create all, change every family name, deactivate every third user, delete every fifth.
//! Invariants: each user has exactly one employee; it holds the last family name sent; it is
//! locked exactly when the user was deactivated or deleted; the store links each user to that
//! employee (deleted users as tombstones); every request was finally applied or answered with an
//! error (none left unanswered).
//!
//! cargo bench --bench fault_matrix -- --users 200                 # every scenario
//! cargo bench --bench fault_matrix -- --users 200 --scenario storm503
//! (The quick versions of these scenarios, and SIGKILL, PostgreSQL restart and disk full, are
//! tests: tests/api/users_faults.rs and tests/api/crash.rs.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use c4c_scim_bridge::app::Application;
use c4c_scim_bridge::auth::create_token;
use c4c_scim_bridge::config::Config;
use c4c_scim_bridge::sim::{Fault, FaultScope, SimConfig, SimHandle, Simulator};
use c4c_scim_bridge::store::{ResourceType, Store};
use clap::{Parser, ValueEnum};
use futures::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Scenario {
    Baseline,
    /// 20–500 ms on every call.
    LatencySpikes,
    /// The tenant answers 503 (maintenance) to everything for 30 s, starting 1 s in.
    Storm503,
    /// 20 % of calls get 429 with Retry-After: 1.
    Throttle429,
    /// Every session (and so every CSRF token) ends every 100 ms.
    CsrfInvalidated,
    /// The bridge's OAuth access token is revoked every 100 ms.
    OauthRevoked,
    /// A write is committed and its connection dropped every 100 ms.
    CommitThenDrop,
    /// 10 % of connections reset before any answer.
    Resets,
    /// 10 % of calls answered 500.
    Errors500,
}

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, default_value_t = 200)]
    users: usize,
    /// One scenario; all when absent.
    #[arg(long, value_enum)]
    scenario: Option<Scenario>,
    /// Identity-provider requests in flight.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// A PostgreSQL URL (an empty database per scenario is made next to it); SQLite otherwise.
    #[arg(long)]
    postgres_url: Option<String>,
    /// Ignored (cargo bench passes it).
    #[arg(long, hide = true)]
    bench: bool,
}

fn user_name(n: usize) -> String {
    format!("matrix{n}@contoso.com")
}

fn user(n: usize) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name(n),
        "externalId": format!("m-{n}"),
        "active": true,
        "name": {"givenName": "Matrix", "familyName": format!("User{n}")},
        "emails": [{"primary": true, "type": "work", "value": user_name(n)}],
    })
}

fn patch(operations: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations})
}

/// What the identity provider saw.
#[derive(Default)]
struct IdpStats {
    requests: AtomicU64,
    retried: AtomicU64,
    by_status: std::sync::Mutex<HashMap<String, u64>>,
}

impl IdpStats {
    fn saw(&self, what: String) {
        *self
            .by_status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(what)
            .or_default() += 1;
    }
}

struct Idp {
    client: reqwest::Client,
    base: String,
    token: String,
    stats: IdpStats,
}

impl Idp {
    /// Sends until the answer is final (not 5xx, 429 or a broken connection), for at most 90 s.
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let mut request = self
                .client
                .request(method.clone(), format!("{}{path}", self.base))
                .bearer_auth(&self.token);
            if let Some(body) = &body {
                request = request
                    .header("content-type", "application/scim+json")
                    .body(body.to_string());
            }
            let wait = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    self.stats.saw(status.to_string());
                    let retry_after = response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok());
                    let text = response.text().await.unwrap_or_default();
                    if status < 500 && status != 429 {
                        let value = serde_json::from_str(&text).unwrap_or(Value::Null);
                        return (status, value);
                    }
                    Duration::from_secs(retry_after.unwrap_or(1).min(2))
                }
                Err(_) => {
                    self.stats.saw("connection error".into());
                    Duration::from_millis(500)
                }
            };
            if Instant::now() + wait > deadline {
                return (0, json!("gave up after 90 s"));
            }
            self.stats.retried.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(wait).await;
        }
    }

    /// Entra's create cycle; the SCIM id.
    async fn provision(&self, n: usize) -> Result<String, String> {
        let filter = format!("userName eq \"{}\"", user_name(n));
        let path = format!(
            "/Users?filter={}",
            url::form_urlencoded::byte_serialize(filter.as_bytes()).collect::<String>()
        );
        let (status, list) = self.send(reqwest::Method::GET, &path, None).await;
        if status != 200 {
            return Err(format!("user {n}: filter answered {status} {list}"));
        }
        if list["totalResults"] == 1 {
            return Ok(list["Resources"][0]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned());
        }
        let (status, body) = self
            .send(reqwest::Method::POST, "/Users", Some(user(n)))
            .await;
        match status {
            201 => Ok(body["id"].as_str().unwrap_or_default().to_owned()),
            _ => Err(format!("user {n}: create answered {status} {body}")),
        }
    }
}

/// Runs the fault for the scenario until `stop` is set.
fn start_fault(scenario: Scenario, sim: &SimHandle) -> Arc<std::sync::atomic::AtomicBool> {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let faults = sim.faults();
    match scenario {
        Scenario::Baseline => {}
        Scenario::LatencySpikes => {
            faults.set_latency(Duration::from_millis(20), Duration::from_millis(480))
        }
        Scenario::Throttle429 => {
            faults.set_retry_after(Some(1));
            faults.set_error_rates(0.0, 0.0, 0.2);
        }
        Scenario::Resets => faults.set_reset_rate(0.1),
        Scenario::Errors500 => faults.set_error_rates(0.1, 0.0, 0.0),
        Scenario::Storm503
        | Scenario::CsrfInvalidated
        | Scenario::OauthRevoked
        | Scenario::CommitThenDrop => {
            let stop = stop.clone();
            tokio::spawn(async move {
                if scenario == Scenario::Storm503 {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    faults.set_maintenance(true);
                    let until = Instant::now() + Duration::from_secs(30);
                    while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    faults.set_maintenance(false);
                    return;
                }
                let every = Duration::from_millis(100);
                while !stop.load(Ordering::Relaxed) {
                    match scenario {
                        Scenario::CsrfInvalidated => faults.invalidate_csrf(),
                        Scenario::OauthRevoked => faults.revoke_oauth_tokens(),
                        _ => faults.fail_next(1, Fault::CommitThenDrop, FaultScope::Writes),
                    }
                    tokio::time::sleep(every).await;
                }
            });
        }
    }
    stop
}

async fn store_url(args: &Args, dir: &std::path::Path) -> String {
    let Some(admin_url) = &args.postgres_url else {
        return format!("sqlite://{}", dir.join("matrix.db").display());
    };
    let name = format!("c4c_matrix_{}", uuid::Uuid::new_v4().simple());
    let admin = sqlx::PgPool::connect(admin_url).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let mut url = url::Url::parse(admin_url).unwrap();
    url.set_path(&name);
    url.to_string()
}

struct Outcome {
    wall: Duration,
    idp_requests: u64,
    idp_retries: u64,
    idp_answers: String,
    upstream_calls: u64,
    faults_injected: u64,
    violations: Vec<String>,
}

async fn run(args: &Args, scenario: Scenario) -> Outcome {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store_url = store_url(args, dir.path()).await;
    let mut config = Config::default();
    config.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.store.url = Some(SecretString::from(store_url.clone()));
    // The workload deprovisions 47 % of the users at once: the mass-deprovisioning breaker
    // would rightly hold it. This matrix is about faults, so the breaker is off.
    config.safety.enabled = false;
    let auth = if scenario == Scenario::OauthRevoked {
        format!(
            "mode = \"oauth_client_credentials\"\ntoken_url = \"{}\"\nclient_id = \"SCIM_BRIDGE_CLIENT\"\nclient_secret = \"Client-Secret-1\"\n",
            sim.token_url()
        )
    } else {
        format!(
            "mode = \"basic\"\nuser = \"{}\"\npassword = \"{}\"\n",
            c4c_scim_bridge::sim::DEFAULT_USER,
            c4c_scim_bridge::sim::DEFAULT_PASSWORD
        )
    };
    config.c4c = Some(
        toml::from_str(&format!(
            "base_url = \"{}/\"\n[auth]\n{auth}",
            sim.service_url()
        ))
        .unwrap(),
    );
    let store = Store::connect(&store_url, 10).await.unwrap();
    store.migrate().await.unwrap();
    let app = Application::build(config, store.clone()).await.unwrap();
    let addr = app.local_addr().unwrap();
    tokio::spawn(async move {
        app.run_until(std::future::pending::<()>()).await.unwrap();
    });
    let token = create_token(&store, "matrix", None).await.unwrap();
    let idp = Arc::new(Idp {
        client: reqwest::Client::new(),
        base: format!("http://{addr}/scim/v2"),
        token: token.token.expose_secret().to_owned(),
        stats: IdpStats::default(),
    });

    sim.reset_counters();
    let started = Instant::now();
    let stop = start_fault(scenario, &sim);
    let mut violations = Vec::new();
    let users = args.users;
    let concurrency = args.concurrency.max(1);

    let created: Vec<(usize, Result<String, String>)> =
        futures::stream::iter((0..users).map(|n| {
            let idp = idp.clone();
            async move { (n, idp.provision(n).await) }
        }))
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut ids: HashMap<usize, String> = HashMap::new();
    for (n, result) in created {
        match result {
            Ok(id) => {
                ids.insert(n, id);
            }
            Err(error) => violations.push(error),
        }
    }
    let ids = Arc::new(ids);
    let steps: Vec<(usize, &'static str)> = (0..users)
        .map(|n| (n, "rename"))
        .chain((0..users).step_by(3).map(|n| (n, "deactivate")))
        .chain((0..users).step_by(5).map(|n| (n, "delete")))
        .collect();
    // Phases in order (a rename must not overtake the deactivation of the same user).
    for phase in ["rename", "deactivate", "delete"] {
        let answers: Vec<Option<String>> =
            futures::stream::iter(steps.iter().filter(|(_, kind)| *kind == phase).map(
                |&(n, kind)| {
                    let (idp, ids) = (idp.clone(), ids.clone());
                    async move {
                        let id = ids.get(&n)?;
                        let (method, body, expected) = match kind {
                            "rename" => (
                                reqwest::Method::PATCH,
                                Some(patch(json!([{"op": "replace", "path": "name.familyName",
                                    "value": format!("Changed{n}")}]))),
                                200,
                            ),
                            "deactivate" => (
                                reqwest::Method::PATCH,
                                Some(patch(
                                    json!([{"op": "replace", "path": "active", "value": false}]),
                                )),
                                200,
                            ),
                            _ => (reqwest::Method::DELETE, None, 204),
                        };
                        let (status, body) = idp.send(method, &format!("/Users/{id}"), body).await;
                        (status != expected)
                            .then(|| format!("user {n}: {kind} answered {status} {body}"))
                    }
                },
            ))
            .buffer_unordered(concurrency)
            .collect()
            .await;
        violations.extend(answers.into_iter().flatten());
    }
    stop.store(true, Ordering::Relaxed);
    let wall = started.elapsed();
    sim.faults().clear();
    let counters = sim.counters();

    // C4C against the expected state, and the store against C4C.
    let mut employees: HashMap<String, Vec<HashMap<String, Value>>> = HashMap::new();
    for employee in sim.employees() {
        if let Some(user_id) = employee.get("UserID").and_then(Value::as_str) {
            employees
                .entry(user_id.to_lowercase())
                .or_default()
                .push(employee);
        }
    }
    for n in 0..users {
        let name = user_name(n);
        let Some(found) = employees.get(&name) else {
            violations.push(format!("user {n}: no employee"));
            continue;
        };
        if found.len() != 1 {
            violations.push(format!("user {n}: {} employees", found.len()));
            continue;
        }
        let employee = &found[0];
        if employee.get("LastName") != Some(&json!(format!("Changed{n}"))) {
            violations.push(format!("user {n}: LastName {:?}", employee.get("LastName")));
        }
        let should_lock = n % 3 == 0 || n % 5 == 0;
        if employee.get("UserLockedIndicator") != Some(&json!(should_lock)) {
            violations.push(format!(
                "user {n}: UserLockedIndicator {:?}, expected {should_lock}",
                employee.get("UserLockedIndicator")
            ));
        }
        let object_id = employee.get("ObjectID").and_then(Value::as_str);
        let row = match store.find_live_by_name(ResourceType::User, &name).await {
            Ok(Some(row)) => Some(row),
            Ok(None) => match ids.get(&n) {
                Some(id) => match uuid::Uuid::parse_str(id) {
                    Ok(id) => store
                        .get_resource(ResourceType::User, id)
                        .await
                        .ok()
                        .flatten(),
                    Err(_) => None,
                },
                None => None,
            },
            Err(error) => {
                violations.push(format!("user {n}: store: {error}"));
                None
            }
        };
        match row {
            None => violations.push(format!("user {n}: not in the store")),
            Some(row) => {
                if row.object_id.as_deref() != object_id {
                    violations.push(format!("user {n}: store links another employee"));
                }
                if row.tombstone != (n % 5 == 0) {
                    violations.push(format!("user {n}: tombstone {}", row.tombstone));
                }
            }
        }
    }
    let answers = idp
        .stats
        .by_status
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>();
    let mut answers = answers;
    answers.sort();
    Outcome {
        wall,
        idp_requests: idp.stats.requests.load(Ordering::Relaxed),
        idp_retries: idp.stats.retried.load(Ordering::Relaxed),
        idp_answers: answers.join(", "),
        upstream_calls: counters.total,
        faults_injected: counters.faults_injected,
        violations,
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let scenarios: Vec<Scenario> = match args.scenario {
        Some(one) => vec![one],
        None => Scenario::value_variants().to_vec(),
    };
    println!(
        "| scenario | wall time | IdP requests (retries) | answers the IdP saw | upstream calls | faults injected | invariants |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut failed = false;
    for scenario in scenarios {
        let outcome = run(&args, scenario).await;
        let name = scenario
            .to_possible_value()
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default();
        let verdict = if outcome.violations.is_empty() {
            "hold".to_owned()
        } else {
            failed = true;
            format!(
                "**{} violated**: {}",
                outcome.violations.len(),
                outcome.violations[..outcome.violations.len().min(3)].join("; ")
            )
        };
        println!(
            "| {name} | {:.1} s | {} ({}) | {} | {} | {} | {verdict} |",
            outcome.wall.as_secs_f64(),
            outcome.idp_requests,
            outcome.idp_retries,
            outcome.idp_answers,
            outcome.upstream_calls,
            outcome.faults_injected,
        );
    }
    if failed {
        std::process::exit(1);
    }
}
