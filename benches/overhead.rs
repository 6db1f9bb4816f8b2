//! Bridge overhead, peers and memory (issue 14, benchmarks 1, 2 and 4).
//!
//! A load generator (this process, reqwest) against servers it starts as separate processes on
//! loopback: the bridge (`c4c-scim-bridge serve`, SQLite store in a temporary folder) in front of
//! `c4c-scim-bridge sim` with zero latency; SCIMMY + scimmy-routers (benches/peers, node);
//! scim2-server (PyPI); and a do-nothing HTTP server (this program with `--null-server`).
//!
//! Closed loop: GET /Users/{id} (100 pre-created users), POST /Users (unique userNames), PATCH
//! /Users/{id} (replace name.familyName) at each client count, warm-up then a measured window.
//! Open loop: a fixed request rate against the bridge's GET and against the simulator's
//! `EmployeeCollection('<ObjectID>')` for the same employee, latency measured from each request's
//! scheduled send time (no coordinated omission). Memory: the bridge's VmRSS at idle and VmHWM.
//!
//! cargo build --release && cargo bench --bench overhead -- --runs 3
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

#[derive(Debug, Parser)]
struct Args {
    /// Measured seconds per closed-loop cell (after the warm-up).
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
    /// Warm-up seconds per closed-loop cell (not measured).
    #[arg(long, default_value_t = 2)]
    warmup_secs: u64,
    /// Concurrent clients, comma-separated.
    #[arg(long, default_value = "1,16,128", value_delimiter = ',')]
    clients: Vec<usize>,
    /// Servers: bridge, scimmy, scim2, null (comma-separated).
    #[arg(
        long,
        default_value = "bridge,scimmy,scim2,null",
        value_delimiter = ','
    )]
    servers: Vec<String>,
    /// Workloads: get, post, patch (comma-separated).
    #[arg(long, default_value = "get,post,patch", value_delimiter = ',')]
    workloads: Vec<String>,
    /// Repetitions of the whole closed-loop matrix (medians are reported).
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Open loop: offered requests per second (0 skips the open loop).
    #[arg(long, default_value_t = 1000)]
    open_rate: u64,
    /// Open loop: measured seconds per target (after a 2 s warm-up at the same rate).
    #[arg(long, default_value_t = 10)]
    open_secs: u64,
    /// The bridge binary (release build).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Folder holding scimmy-server.mjs and its node_modules.
    #[arg(long)]
    peers_dir: Option<PathBuf>,
    /// The bridge's `c4c.max_in_flight` (its default is 8).
    #[arg(long, default_value_t = 8)]
    bridge_max_in_flight: usize,
    /// Employees the simulator starts with (generated); the bridge knows none of them.
    #[arg(long, default_value_t = 0)]
    sim_employees: usize,
    /// Internal: serve the do-nothing HTTP server on this port and nothing else.
    #[arg(long, hide = true)]
    null_server: Option<u16>,
    /// Ignored (cargo bench passes it).
    #[arg(long, hide = true)]
    bench: bool,
}

const TOKEN: &str = "bench-token";
const USERS: usize = 100;
const SIM_USER: &str = "SCIM_TECH_USER";
const SIM_PASSWORD: &str = "Welcome1!Sim";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed (by its own pid) when dropped.
struct Proc {
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(name: &str, cmd: &mut Command, log: &Path) -> Proc {
    let out = std::fs::File::create(log).unwrap();
    let err = out.try_clone().unwrap();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    Proc { child }
}

async fn wait_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not listen on port {port} within 30 s");
}

/// (VmRSS, VmHWM) of a process, in MiB.
fn rss_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// One server under test: where its SCIM API is and how to authenticate.
struct Target {
    name: String,
    base: String,
    auth: String,
    /// Pre-created user ids (GET and PATCH pick among them).
    ids: Vec<String>,
    proc: Option<Proc>,
}

fn user_body(user_name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "active": true,
        "displayName": "Bench User",
        "name": {"givenName": "Bench", "familyName": "User"},
        "emails": [{"primary": true, "type": "work", "value": user_name}]
    })
}

fn patch_body(family: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "name.familyName", "value": family}]
    })
}

/// Unique across every run of this process and across processes (the nonce).
static SEQ: AtomicU64 = AtomicU64::new(0);

fn unique_name(nonce: u32) -> String {
    format!(
        "b{nonce:x}-{}@bench.example",
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

async fn create_users(client: &reqwest::Client, t: &Target, nonce: u32) -> Vec<String> {
    let mut ids = Vec::with_capacity(USERS);
    for _ in 0..USERS {
        let resp = client
            .post(format!("{}/Users", t.base))
            .header("authorization", &t.auth)
            .header("content-type", "application/scim+json")
            .body(user_body(&unique_name(nonce)).to_string())
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert!(status.is_success(), "{}: create {status}: {body}", t.name);
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    ids
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Workload {
    Get,
    Post,
    Patch,
}

impl Workload {
    fn parse(s: &str) -> Self {
        match s {
            "get" => Self::Get,
            "post" => Self::Post,
            "patch" => Self::Patch,
            other => panic!("unknown workload {other}"),
        }
    }
    fn label(self) -> &'static str {
        match self {
            Self::Get => "GET /Users/{id}",
            Self::Post => "POST /Users",
            Self::Patch => "PATCH /Users/{id}",
        }
    }
}

fn request(
    client: &reqwest::Client,
    t: &Target,
    w: Workload,
    nonce: u32,
    rng: &mut impl Rng,
) -> reqwest::RequestBuilder {
    let mut pick = || t.ids[rng.gen_range(0..t.ids.len())].clone();
    let builder = match w {
        Workload::Get => client.get(format!("{}/Users/{}", t.base, pick())),
        Workload::Post => client
            .post(format!("{}/Users", t.base))
            .header("content-type", "application/scim+json")
            .body(user_body(&unique_name(nonce)).to_string()),
        Workload::Patch => {
            let family = format!("F{}", SEQ.fetch_add(1, Ordering::Relaxed));
            client
                .patch(format!("{}/Users/{}", t.base, pick()))
                .header("content-type", "application/scim+json")
                .body(patch_body(&family).to_string())
        }
    };
    builder.header("authorization", &t.auth)
}

#[derive(Default, Clone)]
struct Outcome {
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    /// Latencies of successful measured requests, microseconds.
    lat_us: Vec<u32>,
}

impl Outcome {
    fn merge(&mut self, other: Outcome) {
        self.ok += other.ok;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.lat_us.extend(other.lat_us);
    }
    fn percentile_ms(&mut self, p: f64) -> f64 {
        if self.lat_us.is_empty() {
            return f64::NAN;
        }
        self.lat_us.sort_unstable();
        let rank = ((p / 100.0) * self.lat_us.len() as f64).ceil() as usize;
        f64::from(self.lat_us[rank.clamp(1, self.lat_us.len()) - 1]) / 1000.0
    }
}

async fn send(req: reqwest::RequestBuilder) -> Result<(), String> {
    match req.send().await {
        Ok(resp) => {
            let status = resp.status();
            let body = resp.bytes().await.map_err(|e| e.to_string())?;
            if status.is_success() {
                Ok(())
            } else {
                Err(format!(
                    "{status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(300)])
                ))
            }
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Closed loop: `clients` tasks each sending one request after the other.
async fn closed_loop(
    t: Arc<Target>,
    w: Workload,
    clients: usize,
    warmup: Duration,
    measure: Duration,
    nonce: u32,
) -> (f64, Outcome) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();
    let start = Instant::now();
    let window_start = start + warmup;
    let end = window_start + measure;
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (t, client) = (t.clone(), client.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Outcome::default();
            let mut rng = rand::rngs::StdRng::from_entropy();
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let result = send(request(&client, &t, w, nonce, &mut rng)).await;
                let done = Instant::now();
                // Count requests that started and ended inside the window.
                if sent < window_start || done > end {
                    continue;
                }
                match result {
                    Ok(()) => {
                        out.ok += 1;
                        out.lat_us
                            .push(u32::try_from((done - sent).as_micros()).unwrap_or(u32::MAX));
                    }
                    Err(e) => {
                        out.errors += 1;
                        out.first_error.get_or_insert(e);
                    }
                }
            }
            out
        }));
    }
    let mut total = Outcome::default();
    for task in tasks {
        total.merge(task.await.unwrap());
    }
    (total.ok as f64 / measure.as_secs_f64(), total)
}

/// Open loop at `rate`/s: request i is due at start + i/rate, and its latency counts from then.
async fn open_loop(
    client: reqwest::Client,
    make: Arc<dyn Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync>,
    rate: u64,
    warmup: Duration,
    measure: Duration,
) -> Outcome {
    let start = tokio::time::Instant::now();
    let total = ((warmup + measure).as_secs_f64() * rate as f64) as u64;
    let warm_n = (warmup.as_secs_f64() * rate as f64) as u64;
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let due = start + Duration::from_nanos(i * 1_000_000_000 / rate);
        tokio::time::sleep_until(due).await;
        let req = make(&client);
        tasks.push(tokio::spawn(async move {
            let result = send(req).await;
            (result, due.elapsed())
        }));
    }
    let mut out = Outcome::default();
    for (i, task) in tasks.into_iter().enumerate() {
        let (result, latency) = task.await.unwrap();
        if (i as u64) < warm_n {
            continue;
        }
        match result {
            Ok(()) => {
                out.ok += 1;
                out.lat_us
                    .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
            }
            Err(e) => {
                out.errors += 1;
                out.first_error.get_or_insert(e);
            }
        }
    }
    out
}

/// The do-nothing server: 200 and `{}` for every request, after reading the body.
async fn null_server(port: u16) {
    async fn nothing(_body: axum::body::Bytes) -> impl axum::response::IntoResponse {
        ([("content-type", "application/scim+json")], "{}")
    }
    let app = axum::Router::new().fallback(nothing);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    axum::serve(listener, app).await.unwrap();
}

struct Bridge {
    target: Target,
    _sim: Proc,
    sim_port: u16,
    pid: u32,
    idle_rss: f64,
    _dir: tempfile::TempDir,
}

async fn start_bridge(bin: &Path, max_in_flight: usize, sim_employees: usize) -> Bridge {
    let dir = tempfile::tempdir().unwrap();
    let sim_port = free_port();
    let sim = spawn(
        "simulator",
        Command::new(bin).args([
            "sim",
            "--listen",
            &format!("127.0.0.1:{sim_port}"),
            "--employees",
            &sim_employees.to_string(),
            "--latency-ms",
            "0",
        ]),
        &dir.path().join("sim.log"),
    );
    wait_port(sim_port, "simulator").await;
    let port = free_port();
    let config = dir.path().join("bridge.toml");
    std::fs::write(
        &config,
        format!(
            r#"[server]
listen = "127.0.0.1:{port}"

[store]
url = "sqlite://{db}"

# The benchmark is one client far above the default per-client rate (50/s).
[auth.client_rate]
per_second = 1000000
burst = 1000000

[c4c]
base_url = "http://127.0.0.1:{sim_port}/sap/c4c/odata/v1/c4codataapi/"
max_in_flight = {max_in_flight}

[c4c.auth]
mode = "basic"
user = "{SIM_USER}"
password = "{SIM_PASSWORD}"
"#,
            db = dir.path().join("bridge.db").display()
        ),
    )
    .unwrap();
    let created = Command::new(bin)
        .arg("--config")
        .arg(&config)
        .args(["token", "create", "--name", "bench"])
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "token create: {}",
        String::from_utf8_lossy(&created.stderr)
    );
    let token = String::from_utf8(created.stdout).unwrap().trim().to_owned();
    let proc = spawn(
        "bridge",
        Command::new(bin).arg("--config").arg(&config).arg("serve"),
        &dir.path().join("bridge.log"),
    );
    wait_port(port, "bridge").await;
    let pid = proc.child.id();
    // Idle: started, listening, no request served yet.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_rss = rss_mib(pid).0;
    Bridge {
        target: Target {
            name: "bridge".into(),
            base: format!("http://127.0.0.1:{port}/scim/v2"),
            auth: format!("Bearer {token}"),
            ids: Vec::new(),
            proc: Some(proc),
        },
        _sim: sim,
        sim_port,
        pid,
        idle_rss,
        _dir: dir,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| !x.is_nan());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        f64::midpoint(v[n / 2 - 1], v[n / 2])
    }
}

#[derive(Default)]
struct Cell {
    rps: Vec<f64>,
    p50: Vec<f64>,
    p99: Vec<f64>,
    errors: u64,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Some(port) = args.null_server {
        null_server(port).await;
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // Cargo builds the package's binary with the bench, in the same profile.
    let bin = args
        .bin
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_c4c-scim-bridge")));
    assert!(
        bin.exists(),
        "{} missing: cargo build --release",
        bin.display()
    );
    let peers_dir = args
        .peers_dir
        .clone()
        .unwrap_or_else(|| root.join("benches/peers"));
    let logs = tempfile::tempdir().unwrap();
    let nonce: u32 = rand::random();
    let setup = reqwest::Client::new();

    println!("# overhead benchmark");
    println!(
        "nproc {}, load average at start {}, bridge binary {}",
        std::thread::available_parallelism().map_or(0, usize::from),
        loadavg(),
        bin.display()
    );

    let mut bridge = None;
    let mut targets: Vec<Arc<Target>> = Vec::new();
    for name in &args.servers {
        let mut target = match name.as_str() {
            "bridge" => {
                let b = start_bridge(&bin, args.bridge_max_in_flight, args.sim_employees).await;
                println!("bridge idle RSS {:.1} MiB", b.idle_rss);
                let target = Target {
                    name: b.target.name.clone(),
                    base: b.target.base.clone(),
                    auth: b.target.auth.clone(),
                    ids: Vec::new(),
                    proc: None,
                };
                bridge = Some(b);
                target
            }
            "scimmy" => {
                let port = free_port();
                let proc = spawn(
                    "scimmy",
                    Command::new("node").current_dir(&peers_dir).args([
                        "scimmy-server.mjs",
                        &port.to_string(),
                        TOKEN,
                    ]),
                    &logs.path().join("scimmy.log"),
                );
                wait_port(port, "scimmy").await;
                Target {
                    name: "scimmy".into(),
                    base: format!("http://127.0.0.1:{port}/scim/v2"),
                    auth: format!("Bearer {TOKEN}"),
                    ids: Vec::new(),
                    proc: Some(proc),
                }
            }
            "scim2" => {
                let port = free_port();
                let proc = spawn(
                    "scim2-server",
                    Command::new("scim2-server").args([
                        "--port",
                        &port.to_string(),
                        "--bearer-token",
                        TOKEN,
                    ]),
                    &logs.path().join("scim2.log"),
                );
                wait_port(port, "scim2-server").await;
                Target {
                    name: "scim2-server".into(),
                    base: format!("http://127.0.0.1:{port}/v2"),
                    auth: format!("Bearer {TOKEN}"),
                    ids: Vec::new(),
                    proc: Some(proc),
                }
            }
            "null" => {
                let port = free_port();
                let proc = spawn(
                    "null",
                    Command::new(std::env::current_exe().unwrap())
                        .args(["--null-server", &port.to_string()]),
                    &logs.path().join("null.log"),
                );
                wait_port(port, "null server").await;
                Target {
                    name: "do-nothing".into(),
                    base: format!("http://127.0.0.1:{port}/scim/v2"),
                    auth: format!("Bearer {TOKEN}"),
                    ids: (0..USERS).map(|i| format!("id{i}")).collect(),
                    proc: Some(proc),
                }
            }
            other => panic!("unknown server {other}"),
        };
        if target.ids.is_empty() {
            target.ids = create_users(&setup, &target, nonce).await;
        }
        targets.push(Arc::new(target));
    }

    let workloads: Vec<Workload> = args.workloads.iter().map(|w| Workload::parse(w)).collect();
    let warmup = Duration::from_secs(args.warmup_secs);
    let measure = Duration::from_secs(args.duration_secs);
    let mut cells: BTreeMap<(Workload, usize, String), Cell> = BTreeMap::new();
    let mut bridge_peak_rss: f64 = 0.0;
    for run in 1..=args.runs {
        println!("\n## run {run} (load average before: {})", loadavg());
        println!("| workload | clients | server | req/s | p50 ms | p99 ms | errors |");
        println!("|---|---|---|---|---|---|---|");
        for &w in &workloads {
            for &c in &args.clients {
                for t in &targets {
                    let (rps, mut out) = closed_loop(t.clone(), w, c, warmup, measure, nonce).await;
                    let (p50, p99) = (out.percentile_ms(50.0), out.percentile_ms(99.0));
                    println!(
                        "| {} | {c} | {} | {rps:.0} | {p50:.2} | {p99:.2} | {}{} |",
                        w.label(),
                        t.name,
                        out.errors,
                        out.first_error
                            .as_deref()
                            .map(|e| format!(" (first: {})", e.replace('|', "/")))
                            .unwrap_or_default()
                    );
                    if let Some(b) = &bridge {
                        let (rss, hwm) = rss_mib(b.pid);
                        bridge_peak_rss = bridge_peak_rss.max(hwm);
                        if t.name == "bridge" {
                            eprintln!("  bridge RSS now {rss:.1} MiB, peak {hwm:.1} MiB");
                        }
                    }
                    let cell = cells.entry((w, c, t.name.clone())).or_default();
                    cell.rps.push(rps);
                    cell.p50.push(p50);
                    cell.p99.push(p99);
                    cell.errors += out.errors;
                }
            }
        }
        println!("\nload average after run {run}: {}", loadavg());
    }

    // Medians and ratios.
    println!("\n## closed loop, medians of {} run(s)", args.runs);
    println!(
        "| workload | clients | bridge req/s | p50 / p99 ms | scimmy req/s | scim2-server req/s | fastest peer | bridge ÷ fastest peer | do-nothing req/s | bridge share of do-nothing | errors (bridge) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for &w in &workloads {
        for &c in &args.clients {
            let get = |name: &str| cells.get(&(w, c, name.to_owned()));
            let rps = |name: &str| get(name).map_or(f64::NAN, |cell| median(cell.rps.clone()));
            let (b, s1, s2, null) = (
                rps("bridge"),
                rps("scimmy"),
                rps("scim2-server"),
                rps("do-nothing"),
            );
            let (fastest, fastest_name) = if s1.is_nan() || s2 > s1 {
                (s2, "scim2-server")
            } else {
                (s1, "scimmy")
            };
            let lat = get("bridge").map_or("-".to_owned(), |cell| {
                format!(
                    "{:.2} / {:.2}",
                    median(cell.p50.clone()),
                    median(cell.p99.clone())
                )
            });
            println!(
                "| {} | {c} | {b:.0} | {lat} | {s1:.0} | {s2:.0} | {fastest_name} | {:.2}× | {null:.0} | {:.1} % | {} |",
                w.label(),
                b / fastest,
                100.0 * b / null,
                get("bridge").map_or(0, |cell| cell.errors)
            );
        }
    }

    if let Some(b) = &bridge {
        if args.open_rate > 0 {
            open_loop_comparison(&args, b, &targets, &setup).await;
        }
        let (rss, hwm) = rss_mib(b.pid);
        bridge_peak_rss = bridge_peak_rss.max(hwm);
        println!(
            "\n## bridge memory\nidle after start: VmRSS {:.1} MiB; after the load: VmRSS {rss:.1} MiB; peak (VmHWM) {bridge_peak_rss:.1} MiB",
            b.idle_rss
        );
    }
    println!("\nload average at the end: {}", loadavg());
    for t in targets {
        if let Ok(t) = Arc::try_unwrap(t) {
            drop(t.proc);
        }
    }
    drop(bridge);
}

async fn open_loop_comparison(
    args: &Args,
    b: &Bridge,
    targets: &[Arc<Target>],
    setup: &reqwest::Client,
) {
    let t = targets
        .iter()
        .find(|t| t.name == "bridge")
        .expect("bridge target");
    let id = t.ids[0].clone();
    let user: Value = setup
        .get(format!("{}/Users/{id}", t.base))
        .header("authorization", &t.auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let user_name = user["userName"].as_str().unwrap().to_owned();
    let service = format!(
        "http://127.0.0.1:{}/sap/c4c/odata/v1/c4codataapi",
        b.sim_port
    );
    let found: Value = setup
        .get(format!("{service}/EmployeeCollection"))
        .query(&[
            ("$filter", format!("UserID eq '{user_name}'")),
            ("$select", "ObjectID".to_owned()),
            ("$format", "json".to_owned()),
        ])
        .basic_auth(SIM_USER, Some(SIM_PASSWORD))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let object_id = found["d"]["results"][0]["ObjectID"]
        .as_str()
        .unwrap_or_else(|| panic!("employee of {user_name} not found: {found}"))
        .to_owned();
    let warmup = Duration::from_secs(2);
    let measure = Duration::from_secs(args.open_secs);
    let bridge_url = format!("{}/Users/{id}", t.base);
    let auth = t.auth.clone();
    let via_bridge: Arc<dyn Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync> =
        Arc::new(move |c| c.get(&bridge_url).header("authorization", &auth));
    let sim_url = format!("{service}/EmployeeCollection('{object_id}')?$format=json");
    let direct: Arc<dyn Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync> =
        Arc::new(move |c| c.get(&sim_url).basic_auth(SIM_USER, Some(SIM_PASSWORD)));
    println!(
        "\n## open loop at {} req/s, {} s measured after 2 s warm-up (latency from the scheduled send time)",
        args.open_rate, args.open_secs
    );
    println!(
        "| target | load avg before | completed | errors | p50 ms | p90 ms | p99 ms | max ms |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut rows = Vec::new();
    for (name, make) in [
        ("simulator directly", direct),
        ("bridge GET /Users/{id}", via_bridge),
    ] {
        let before = loadavg();
        let mut out = open_loop(
            reqwest::Client::new(),
            make,
            args.open_rate,
            warmup,
            measure,
        )
        .await;
        let (p50, p90, p99, max) = (
            out.percentile_ms(50.0),
            out.percentile_ms(90.0),
            out.percentile_ms(99.0),
            out.percentile_ms(100.0),
        );
        println!(
            "| {name} | {before} | {} | {}{} | {p50:.2} | {p90:.2} | {p99:.2} | {max:.2} |",
            out.ok,
            out.errors,
            out.first_error
                .as_deref()
                .map(|e| format!(" (first: {})", e.replace('|', "/")))
                .unwrap_or_default()
        );
        rows.push((p50, p99));
    }
    println!(
        "bridge adds {:.2} ms at p50 and {:.2} ms at p99 (targets: ≤ 1 ms, ≤ 5 ms); load average after: {}",
        rows[1].0 - rows[0].0,
        rows[1].1 - rows[0].1,
        loadavg()
    );
}
