//! Initial-load benchmark: provisions N users through the real bridge (SQLite store) into the
//! simulator with a fixed latency and an in-flight cap, either through `/Bulk` or as Entra-style
//! single `POST /Users` at a given concurrency; optionally then one group holding them all.
//! Reports wall time, upstream calls (simulator counters), upstream errors (each one retried by
//! the client) and the peak resident memory of this process (bridge + simulator + load client).
//!
//! cargo bench --bench initial_load -- --users 10000 --latency-ms 200 --max-in-flight 10 --mode bulk
//! cargo bench --bench initial_load -- --users 10000 --latency-ms 200 --max-in-flight 10 --mode single --concurrency 10
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

/// Peak resident set size of this process (VmHWM), in MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
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
    let app = Application::build(config, store.clone()).await.unwrap();
    let addr = app.local_addr().unwrap();
    tokio::spawn(async move {
        app.run_until(std::future::pending::<()>()).await.unwrap();
    });
    let token = create_token(&store, "bench", None).await.unwrap();
    let token = Arc::new(token.token.expose_secret().to_owned());
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
        "peak RSS (bridge + simulator + load client): {:.0} MiB",
        peak_rss_mib()
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
        println!("peak RSS after the group: {:.0} MiB", peak_rss_mib());
    }
}
