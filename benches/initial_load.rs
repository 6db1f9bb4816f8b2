//! Initial-load benchmark: provisions N users through the real bridge (SQLite store) into the
//! simulator with a fixed latency and an in-flight cap, either through `/Bulk` or as Entra-style
//! single `POST /Users` at a given concurrency; optionally then one group holding them all.
//! Reports wall time, upstream calls (simulator counters), upstream errors (each one retried by
//! the client) and the peak resident memory of this process (bridge + simulator + load client),
//! or, with `--bridge-bin`, of the bridge alone: it then runs as its own `serve` process with the
//! same settings, and the simulator and the load client stay in this one.
//!
//! cargo bench --bench initial_load -- --users 10000 --latency-ms 200 --max-in-flight 10 --mode bulk
//! cargo bench --bench initial_load -- --users 10000 --latency-ms 200 --max-in-flight 10 --mode single --concurrency 10
//! cargo bench --bench initial_load -- --users 100000 --bridge-bin target/release/c4c-scim-bridge
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use c4c_scim_bridge::app::Application;
use c4c_scim_bridge::auth::create_token;
use c4c_scim_bridge::config::Config;
use c4c_scim_bridge::provisioning::groups::GroupRule;
use c4c_scim_bridge::sim::{SimConfig, Simulator};
use c4c_scim_bridge::store::Store;
use clap::{Parser, ValueEnum};
use futures::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq)]
enum Mode {
    Bulk,
    Single,
}

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    #[arg(long, default_value_t = 200)]
    latency_ms: u64,
    /// Most calls in flight to C4C (the bridge's client cap; the simulator refuses more with 503).
    #[arg(long, default_value_t = 10)]
    max_in_flight: usize,
    #[arg(long, value_enum, default_value_t = Mode::Bulk)]
    mode: Mode,
    /// Single mode: concurrent SCIM requests (Entra-style).
    #[arg(long, default_value_t = 10)]
    concurrency: usize,
    /// Bulk mode: operations per /Bulk request.
    #[arg(long, default_value_t = 1000)]
    ops_per_request: usize,
    /// Bulk mode: /Bulk requests in flight at once.
    #[arg(long, default_value_t = 3)]
    bulk_concurrency: usize,
    /// Bulk mode: users per OData $batch.
    #[arg(long, default_value_t = 100)]
    batch_size: usize,
    /// Bulk mode: $batches in flight per /Bulk request.
    #[arg(long, default_value_t = 4)]
    parallel_batches: usize,
    /// Then create one group (mapped to a business role) holding every user.
    #[arg(long)]
    group: bool,
    /// Run the bridge as its own process (this `c4c-scim-bridge` binary, `serve`), so that its
    /// memory is measured apart from the simulator's and the load client's.
    #[arg(long)]
    bridge_bin: Option<std::path::PathBuf>,
    /// Ignored (cargo bench passes it).
    #[arg(long, hide = true)]
    bench: bool,
}

fn user(n: usize) -> Value {
    json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        ],
        "externalId": format!("ext-{n}"),
        "userName": format!("load{n}@contoso.com"),
        "active": true,
        "displayName": format!("Load User {n}"),
        "name": {"givenName": format!("Given{n}"), "familyName": format!("Family{n}")},
        "emails": [{"primary": true, "type": "work", "value": format!("load{n}@contoso.com")}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": format!("{}", 500_000 + n)
        }
    })
}

/// Peak resident set size (VmHWM) of a process (`self` or a pid), in MiB.
fn peak_rss_mib(process: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{process}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    sim.faults()
        .set_latency(Duration::from_millis(args.latency_ms), Duration::ZERO);
    sim.faults().set_max_in_flight(Some(args.max_in_flight));

    let dir = tempfile::tempdir().unwrap();
    let store_url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let mut config = Config::default();
    config.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.server.request_timeout_secs = 3600;
    config.server.body_limit_bytes = 64 * 1024 * 1024;
    config.store.url = Some(SecretString::from(store_url.clone()));
    config.c4c = Some(
        toml::from_str(&format!(
            "base_url = \"{}/\"\nmax_in_flight = {}\n[auth]\nmode = \"basic\"\nuser = \"{}\"\npassword = \"{}\"\n",
            sim.service_url(),
            args.max_in_flight,
            c4c_scim_bridge::sim::DEFAULT_USER,
            c4c_scim_bridge::sim::DEFAULT_PASSWORD,
        ))
        .unwrap(),
    );
    config.bulk.max_operations = args.ops_per_request.max(1);
    config.bulk.batch_size = args.batch_size;
    config.bulk.parallel_batches = args.parallel_batches;
    config.groups.rules = vec![GroupRule {
        display_name: Some("Everyone in Sales".into()),
        business_role: Some("SALES_REP".into()),
        ..GroupRule::default()
    }];
    let store = Store::connect(&store_url, 10).await.unwrap();
    store.migrate().await.unwrap();
    let token = create_token(&store, "bench", None).await.unwrap();
    let token = Arc::new(token.token.expose_secret().to_owned());
    let (addr, bridge) = match &args.bridge_bin {
        None => {
            let app = Application::build(config, store.clone()).await.unwrap();
            let addr = app.local_addr().unwrap();
            tokio::spawn(async move {
                app.run_until(std::future::pending::<()>()).await.unwrap();
            });
            (addr, None)
        }
        Some(bin) => {
            store.close().await;
            let bridge =
                BridgeProcess::start(bin, dir.path(), &config, &sim.service_url(), &args).await;
            (bridge.addr, Some(bridge))
        }
    };
    let rss_process = bridge
        .as_ref()
        .map_or_else(|| "self".to_owned(), |bridge| bridge.child.id().to_string());
    let rss_label = if bridge.is_some() {
        "the bridge process alone"
    } else {
        "bridge + simulator + load client"
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let base = format!("http://{addr}/scim/v2");

    sim.reset_counters();
    let started = Instant::now();
    let mut failed = 0_usize;
    let mut ids: Vec<String> = Vec::with_capacity(args.users);
    match args.mode {
        Mode::Bulk => {
            let requests: Vec<Value> = (0..args.users)
                .collect::<Vec<_>>()
                .chunks(args.ops_per_request.max(1))
                .map(|chunk| {
                    json!({
                        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                        "Operations": chunk.iter().map(|n| json!({
                            "method": "POST", "path": "/Users", "bulkId": format!("u{n}"), "data": user(*n)
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            let answers: Vec<Value> = futures::stream::iter(requests.into_iter().map(|body| {
                let (client, base, token) = (client.clone(), base.clone(), token.clone());
                async move {
                    let response = client
                        .post(format!("{base}/Bulk"))
                        .bearer_auth(token.as_str())
                        .header("content-type", "application/scim+json")
                        .body(body.to_string())
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status().as_u16(), 200);
                    response.json::<Value>().await.unwrap()
                }
            }))
            .buffered(args.bulk_concurrency.max(1))
            .collect()
            .await;
            for answer in answers {
                for op in answer["Operations"].as_array().unwrap() {
                    if op["status"] == "201" {
                        ids.push(
                            op["location"]
                                .as_str()
                                .unwrap()
                                .rsplit('/')
                                .next()
                                .unwrap()
                                .to_owned(),
                        );
                    } else {
                        failed += 1;
                    }
                }
            }
        }
        Mode::Single => {
            let answers: Vec<(u16, Value)> = futures::stream::iter((0..args.users).map(|n| {
                let (client, base, token) = (client.clone(), base.clone(), token.clone());
                async move {
                    let response = client
                        .post(format!("{base}/Users"))
                        .bearer_auth(token.as_str())
                        .header("content-type", "application/scim+json")
                        .body(user(n).to_string())
                        .send()
                        .await
                        .unwrap();
                    let status = response.status().as_u16();
                    (
                        status,
                        response.json::<Value>().await.unwrap_or(Value::Null),
                    )
                }
            }))
            .buffer_unordered(args.concurrency.max(1))
            .collect()
            .await;
            for (status, body) in answers {
                if status == 201 {
                    ids.push(body["id"].as_str().unwrap().to_owned());
                } else {
                    failed += 1;
                }
            }
        }
    }
    let wall = started.elapsed();
    let counters = sim.counters();
    println!("mode: {:?}", args.mode);
    println!(
        "users: {} (created {}, failed {failed}); latency {} ms; max in flight {}",
        args.users,
        ids.len(),
        args.latency_ms,
        args.max_in_flight
    );
    if args.mode == Mode::Bulk {
        println!(
            "ops per /Bulk {}, /Bulk in flight {}, users per $batch {}, $batches in flight per /Bulk {}",
            args.ops_per_request, args.bulk_concurrency, args.batch_size, args.parallel_batches
        );
    } else {
        println!("SCIM requests in flight: {}", args.concurrency);
    }
    println!("wall time: {:.2} s", wall.as_secs_f64());
    println!(
        "upstream calls: {} (batches {}, reads {}, posts {}, csrf fetches {}, batch parts {})",
        counters.total,
        counters.batches,
        counters.reads,
        counters.posts,
        counters.csrf_fetches,
        counters.batch_parts
    );
    println!(
        "upstream errors (each retried by the client): {}; injected faults: {}",
        counters.errors, counters.faults_injected
    );
    println!(
        "latency floor at this cap: {:.2} s",
        counters.total as f64 * args.latency_ms as f64 / 1000.0 / args.max_in_flight as f64
    );
    println!("employees in the simulator: {}", sim.employees().len());
    println!(
        "peak RSS ({rss_label}): {:.0} MiB",
        peak_rss_mib(&rss_process)
    );

    if args.group {
        sim.reset_counters();
        let started = Instant::now();
        let members: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
        let response = client
            .post(format!("{base}/Groups"))
            .bearer_auth(token.as_str())
            .header("content-type", "application/scim+json")
            .body(
                json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": "Everyone in Sales",
                    "members": members,
                })
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        let counters = sim.counters();
        println!(
            "group of {} members: status {status}, {} members returned, wall {:.2} s, upstream calls {} (batches {}, reads {}), role assignments in C4C {}",
            ids.len(),
            body["members"].as_array().map_or(0, Vec::len),
            started.elapsed().as_secs_f64(),
            counters.total,
            counters.batches,
            counters.reads,
            sim.count("EmployeeUserBusinessRoleAssignmentCollection")
                .unwrap_or(0)
        );
        let id = body["id"].as_str().unwrap_or_default();
        let started = Instant::now();
        let response = client
            .get(format!("{base}/Groups/{id}?excludedAttributes=members"))
            .bearer_auth(token.as_str())
            .send()
            .await
            .unwrap();
        println!(
            "GET the group with excludedAttributes=members: status {}, {:.1} ms",
            response.status().as_u16(),
            started.elapsed().as_secs_f64() * 1000.0
        );
        println!(
            "peak RSS after the group ({rss_label}): {:.0} MiB",
            peak_rss_mib(&rss_process)
        );
    }
}

/// The bridge as its own `serve` process, configured like the in-process one.
struct BridgeProcess {
    child: std::process::Child,
    addr: SocketAddr,
}

impl BridgeProcess {
    async fn start(
        bin: &std::path::Path,
        dir: &std::path::Path,
        config: &Config,
        service_url: &str,
        args: &Args,
    ) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let file = dir.join("bridge.toml");
        std::fs::write(
            &file,
            format!(
                r#"[server]
listen = "{addr}"
request_timeout_secs = {timeout}
body_limit_bytes = {body_limit}

[store]
url = "{store}"

[c4c]
base_url = "{service_url}/"
max_in_flight = {max_in_flight}

[c4c.auth]
mode = "basic"
user = "{user}"
password = "{password}"

[bulk]
max_operations = {max_operations}
batch_size = {batch_size}
parallel_batches = {parallel_batches}

[[groups.rules]]
display_name = "Everyone in Sales"
business_role = "SALES_REP"
"#,
                timeout = config.server.request_timeout_secs,
                body_limit = config.server.body_limit_bytes,
                store = config.store.url.as_ref().unwrap().expose_secret(),
                max_in_flight = args.max_in_flight,
                user = c4c_scim_bridge::sim::DEFAULT_USER,
                password = c4c_scim_bridge::sim::DEFAULT_PASSWORD,
                max_operations = args.ops_per_request.max(1),
                batch_size = args.batch_size,
                parallel_batches = args.parallel_batches,
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("bridge.log")).unwrap();
        let child = std::process::Command::new(bin)
            .arg("--config")
            .arg(&file)
            .arg("serve")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", bin.display()));
        let deadline = Instant::now() + Duration::from_secs(60);
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "the bridge did not listen on {addr} within 60 s (see {})",
                dir.join("bridge.log").display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self { child, addr }
    }
}

impl Drop for BridgeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
