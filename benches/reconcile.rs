//! Reconciliation benchmark: seeds the simulator with N employees directly (its Rust API, not
//! through the bridge), links them all in a SQLite store as the bridge would have, plants drift
//! (every 100th employee renamed by hand, every 1000th removed, plus unlinked employees), then
//! runs one full reconciliation. Reports wall time, upstream calls (simulator counters and the
//! run's own count), findings, and memory: this process's resident set before the run and its
//! peak during the run (the peak is reset just before, via /proc/self/clear_refs), so the
//! growth the run itself causes is visible apart from the simulator's N employees.
//!
//! cargo bench --bench reconcile -- --employees 100000
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use c4c_scim_bridge::c4c::C4cClient;
use c4c_scim_bridge::provisioning::reconcile::{ReconcileConfig, Reconciler, RunOptions};
use c4c_scim_bridge::sim::{SimConfig, Simulator};
use c4c_scim_bridge::store::Store;
use clap::Parser;
use serde_json::json;

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, default_value_t = 100_000)]
    employees: usize,
    /// Employees in C4C that no SCIM user is linked to.
    #[arg(long, default_value_t = 1_000)]
    unlinked: usize,
    /// Latency the simulator adds to every call, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Linked users read from the store per page.
    #[arg(long, default_value_t = 1000)]
    page_size: u32,
    /// Ignored (cargo bench passes it).
    #[arg(long, hide = true)]
    bench: bool,
}

fn status_kib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with(field))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
}

/// CPU seconds (user + system) this process used so far: the bridge's and the simulator's.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; 100 Hz.
    (ticks(11) + ticks(12)) / 100.0
}

fn mib(kib: f64) -> f64 {
    kib / 1024.0
}

fn user_name(n: usize) -> String {
    format!("bench{n}@contoso.com")
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let sim = Simulator::start(SimConfig::default()).await.unwrap();

    let started = Instant::now();
    let mut object_ids = Vec::with_capacity(args.employees);
    for n in 0..args.employees + args.unlinked {
        let object_id = sim
            .plant_employee(json!({
                "EmployeeID": format!("{}", 2_000_000 + n),
                "UserID": user_name(n),
                "FirstName": format!("Given{n}"),
                "LastName": format!("Family{n}"),
                "Email": user_name(n),
                "UserLockedIndicator": false,
            }))
            .unwrap();
        if n < args.employees {
            object_ids.push(object_id);
        }
    }
    println!(
        "seeded {} employees in the simulator in {:.1} s",
        args.employees + args.unlinked,
        started.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir().unwrap();
    let store_url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = Store::connect(&store_url, 5).await.unwrap();
    store.migrate().await.unwrap();
    let started = Instant::now();
    let now = c4c_scim_bridge::store::now_millis();
    for (chunk_index, chunk) in object_ids.chunks(200).enumerate() {
        let mut sql = String::from(
            "INSERT INTO resources (id, resource_type, object_id, employee_id, external_id, \
             user_name, user_name_lower, version, scim_json, active, tombstone, created_at, \
             updated_at) VALUES ",
        );
        for index in 0..chunk.len() {
            let base = index * 6;
            if index > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "(${}, 'User', ${}, ${}, NULL, ${}, ${}, 1, ${}, 1, 0, {now}, {now})",
                base + 1,
                base + 2,
                base + 3,
                base + 4,
                base + 5,
                base + 6
            ));
        }
        let mut query = sqlx::query(&sql);
        for (index, object_id) in chunk.iter().enumerate() {
            let n = chunk_index * 200 + index;
            let name = user_name(n);
            let resource = json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": name,
                "active": true,
                "name": {"givenName": format!("Given{n}"), "familyName": format!("Family{n}")},
                "emails": [{"primary": true, "type": "work", "value": name}],
            });
            query = query
                .bind(uuid::Uuid::new_v4().to_string())
                .bind(object_id.clone())
                .bind(format!("{}", 2_000_000 + n))
                .bind(name.clone())
                .bind(name.to_lowercase())
                .bind(resource.to_string());
        }
        query.execute(store.pool()).await.unwrap();
    }
    println!(
        "linked {} users in the store in {:.1} s",
        object_ids.len(),
        started.elapsed().as_secs_f64()
    );

    // Drift by hand: renamed and removed employees.
    let mut renamed = 0;
    let mut removed = 0;
    for (n, object_id) in object_ids.iter().enumerate() {
        if n % 1000 == 999 {
            assert!(sim.remove_employee(object_id));
            removed += 1;
        } else if n % 100 == 0 {
            sim.edit_employee(object_id, json!({"FirstName": "Renamed"}))
                .unwrap();
            renamed += 1;
        }
    }
    println!(
        "planted: {renamed} renamed, {removed} removed, {} unlinked",
        args.unlinked
    );
    drop(object_ids);

    sim.faults()
        .set_latency(Duration::from_millis(args.latency_ms), Duration::ZERO);
    let c4c = C4cClient::new(
        toml::from_str(&format!(
            "base_url = \"{}/\"\n[auth]\nmode = \"basic\"\nuser = \"{}\"\npassword = \"{}\"\n",
            sim.service_url(),
            c4c_scim_bridge::sim::DEFAULT_USER,
            c4c_scim_bridge::sim::DEFAULT_PASSWORD,
        ))
        .unwrap(),
    )
    .unwrap();
    let mapping = c4c_scim_bridge::config::Config::default()
        .resolved_mapping()
        .unwrap();
    let mapper = c4c_scim_bridge::mapping::Mapper::new(mapping, None).unwrap();
    let reconciler = Reconciler::new(
        store.clone(),
        c4c.clone(),
        Arc::new(mapper),
        ReconcileConfig {
            page_size: args.page_size,
            ..ReconcileConfig::default()
        },
    );

    let rss_before = status_kib("VmRSS:");
    // Writing 5 resets the peak (VmHWM) to the current resident set (Linux 4.0+).
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    sim.reset_counters();
    let started = Instant::now();
    let cpu = cpu_seconds();
    let report = reconciler
        .run(RunOptions {
            full: true,
            dry_run: false,
            trigger: "bench",
        })
        .await
        .unwrap();
    let wall = started.elapsed();
    let cpu = cpu_seconds() - cpu;
    let peak = status_kib("VmHWM:");
    let counters = sim.counters();

    let summary = &report.summary;
    println!(
        "full reconciliation: {:.1} s wall, {:.1} CPU s (bridge and simulator), {} employees read, {} linked compared",
        wall.as_secs_f64(),
        cpu,
        summary.employees_read,
        summary.linked_compared
    );
    println!("findings: {:?}", summary.findings);
    println!(
        "upstream calls: {} counted by the run; simulator counters: {:?}",
        summary.upstream_calls, counters
    );
    println!(
        "memory: resident before the run {:.0} MiB (simulator's tenant included); peak during the run {:.0} MiB{}; growth {:.0} MiB",
        mib(rss_before),
        mib(peak),
        if reset {
            ""
        } else {
            " (peak not reset: since start)"
        },
        mib(peak - rss_before)
    );
    // Afterwards, the same paged read alone (no comparison, no store): what paging costs.
    let started = Instant::now();
    let cpu = cpu_seconds();
    let query = c4c_scim_bridge::c4c::EmployeeQuery::new()
        .select([
            "ObjectID",
            "EmployeeID",
            "UserID",
            "EntityLastChangedOn",
            "UserLockedIndicator",
            "UserValidityEndDate",
            "FirstName",
            "LastName",
            "Email",
        ])
        .order_by("ObjectID", c4c_scim_bridge::c4c::Order::Asc);
    let mut pages = c4c.employee_pages(&query).await.unwrap();
    let (mut read, mut calls) = (0, 0);
    while let Some(page) = pages.next_page().await.unwrap() {
        read += page.len();
        calls += 1;
    }
    println!(
        "paged read alone: {read} employees in {calls} pages, {:.1} s wall, {:.1} CPU s",
        started.elapsed().as_secs_f64(),
        cpu_seconds() - cpu
    );

    assert_eq!(summary.findings["changed_in_c4c"], renamed);
    assert_eq!(summary.findings["missing_in_c4c"], removed);
}
