//! Crash recovery: the bridge process killed with SIGKILL, once inside the window where C4C has
//! committed a create that the bridge has not recorded, once in the middle of a load; restarted;
//! then the identity provider's retries as Entra ID sends them (a filter GET, then a POST when
//! nothing is found). Invariants afterwards: no employee lost, none duplicated, every user linked
//! to the one employee C4C holds for it, every user the bridge answered 201 still there.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use c4c_scim_bridge::auth::create_token;
use c4c_scim_bridge::sim::{Fault, FaultScope, SimHandle};
use c4c_scim_bridge::store::{ResourceType, Store};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::harness::{Backend, TestDb, binary, free_port, start_sim};
use crate::on_both_backends;

fn write_config(dir: &Path, db: &TestDb, sim: &SimHandle) -> PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        format!(
            "[log]\nlevel = \"warn\"\n[store]\nurl = \"{}\"\nmigrate_on_start = true\n\
             [c4c]\nbase_url = \"{}/\"\n[c4c.auth]\nmode = \"basic\"\nuser = \"{}\"\npassword = \"{}\"\n",
            db.url,
            sim.service_url(),
            c4c_scim_bridge::sim::DEFAULT_USER,
            c4c_scim_bridge::sim::DEFAULT_PASSWORD,
        ),
    )
    .unwrap();
    path
}

/// A `serve` process, answering /healthz.
struct Bridge {
    child: Child,
    base: String,
}

impl Bridge {
    async fn start(config: &Path) -> Self {
        let port = free_port();
        let child = Command::new(binary())
            .args(["serve", "--config"])
            .arg(config)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let mut last = String::from("no answer");
        for _ in 0..300 {
            match client.get(format!("{base}/healthz")).send().await {
                Ok(response) if response.status().is_success() => {
                    return Self { child, base };
                }
                Ok(response) => last = response.status().to_string(),
                Err(error) => last = error.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the bridge never became healthy: {last}");
    }

    /// SIGKILL: no graceful shutdown, no flush, nothing after this instruction runs.
    async fn kill(mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }
}

/// What every test here starts from: a simulator, a `serve` process on the test's database, the
/// store seen from the test, and a token for the identity provider.
struct Scene {
    sim: SimHandle,
    _dir: tempfile::TempDir,
    config: PathBuf,
    bridge: Bridge,
    store: Store,
    token: String,
}

impl Scene {
    async fn start(db: &TestDb) -> Self {
        let sim = start_sim(0).await;
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path(), db, &sim);
        let bridge = Bridge::start(&config).await;
        let store = Store::connect(&db.url, 2).await.unwrap();
        let token = create_token(&store, "entra", None).await.unwrap();
        let token = token.token.expose_secret().to_owned();
        Self {
            sim,
            _dir: dir,
            config,
            bridge,
            store,
            token,
        }
    }
}

fn user_name(n: usize) -> String {
    format!("crash.user{n}@contoso.com")
}

fn user(n: usize) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name(n),
        "externalId": format!("crash-{n}"),
        "active": true,
        "name": {"givenName": "Crash", "familyName": format!("User{n}")},
        "emails": [{"primary": true, "type": "work", "value": user_name(n)}],
    })
}

async fn post_user(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    n: usize,
) -> Result<(u16, Value), reqwest::Error> {
    let response = client
        .post(format!("{base}/scim/v2/Users"))
        .bearer_auth(token)
        .header("content-type", "application/scim+json")
        .body(user(n).to_string())
        .send()
        .await?;
    let status = response.status().as_u16();
    // A body that is not JSON is kept as text, so that a failing assertion shows it.
    let text = response.text().await?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

/// Entra ID's create cycle: look the user up by userName; POST only when nothing is found.
/// Returns the SCIM id.
async fn entra_provision(client: &reqwest::Client, base: &str, token: &str, n: usize) -> String {
    let response = client
        .get(format!("{base}/scim/v2/Users"))
        .query(&[("filter", format!("userName eq \"{}\"", user_name(n)))])
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let list: Value = response.json().await.unwrap();
    if list["totalResults"] == 1 {
        return list["Resources"][0]["id"].as_str().unwrap().to_owned();
    }
    assert_eq!(list["totalResults"], 0, "{list}");
    let (status, body) = post_user(client, base, token, n).await.unwrap();
    assert_eq!(status, 201, "user {n}: {body}");
    body["id"].as_str().unwrap().to_owned()
}

/// C4C and the store agree: each user has exactly one employee (by UserID), and the store links
/// the user to that employee.
async fn assert_consistent(sim: &SimHandle, store: &Store, users: std::ops::Range<usize>) {
    let mut employees_by_user: HashMap<String, Vec<String>> = HashMap::new();
    for employee in sim.employees() {
        if let (Some(user_id), Some(object_id)) = (
            employee.get("UserID").and_then(Value::as_str),
            employee.get("ObjectID").and_then(Value::as_str),
        ) {
            employees_by_user
                .entry(user_id.to_lowercase())
                .or_default()
                .push(object_id.to_owned());
        }
    }
    let mut linked = HashSet::new();
    for n in users {
        let name = user_name(n);
        let employees = employees_by_user.get(&name).cloned().unwrap_or_default();
        assert_eq!(employees.len(), 1, "{name}: employees {employees:?}");
        let row = store
            .find_live_by_name(ResourceType::User, &name)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{name} is not in the store"));
        assert_eq!(
            row.object_id.as_deref(),
            Some(employees[0].as_str()),
            "{name}"
        );
        assert!(linked.insert(employees[0].clone()), "{name} linked twice");
    }
}

on_both_backends!(
    killed_after_c4c_committed_a_create,
    |backend: Backend| async move {
        let Some(db) = TestDb::new(backend).await else {
            return;
        };
        let Scene {
            sim,
            _dir,
            config,
            bridge,
            store,
            token,
        } = Scene::start(&db).await;
        let client = reqwest::Client::new();
        for n in 0..3 {
            entra_provision(&client, &bridge.base, &token, n).await;
        }

        // The next write commits in C4C, then its answer hangs: the bridge waits for it.
        sim.faults().set_hang_time(Duration::from_secs(30));
        sim.faults()
            .fail_next(1, Fault::CommitThenHang, FaultScope::Writes);
        let employees_before = sim.employees().len();
        let pending = {
            let (client, base, token) = (client.clone(), bridge.base.clone(), token.clone());
            tokio::spawn(async move { post_user(&client, &base, &token, 3).await })
        };
        let mut committed = false;
        for _ in 0..300 {
            if sim.employees().len() == employees_before + 1 {
                committed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(committed, "C4C never received the create");
        bridge.kill().await;
        let answer = pending.await.unwrap();
        assert!(answer.is_err(), "a killed bridge answered: {answer:?}");
        sim.faults().clear();

        // Restarted, the identity provider retries: the employee C4C made is linked, not doubled.
        let bridge = Bridge::start(&config).await;
        let id = entra_provision(&client, &bridge.base, &token, 3).await;
        assert_eq!(sim.employees().len(), employees_before + 1, "no duplicate");
        assert_consistent(&sim, &store, 0..4).await;
        let response = client
            .get(format!("{}/scim/v2/Users/{id}", bridge.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        bridge.kill().await;
        store.close().await;
    }
);

on_both_backends!(killed_mid_load, |backend: Backend| async move {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let Scene {
        sim,
        _dir,
        config,
        bridge,
        store,
        token,
    } = Scene::start(&db).await;
    sim.faults()
        .set_latency(Duration::from_millis(15), Duration::from_millis(15));
    let client = reqwest::Client::new();

    const USERS: usize = 48;
    const IN_FLIGHT: usize = 6;
    const KILL_AFTER: usize = 16;
    let answered = Arc::new(AtomicUsize::new(0));
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..IN_FLIGHT {
        let (client, base, token) = (client.clone(), bridge.base.clone(), token.clone());
        let (answered, next) = (answered.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut created = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= USERS {
                    return created;
                }
                match post_user(&client, &base, &token, n).await {
                    Ok((201, body)) => {
                        created.push((n, body["id"].as_str().unwrap().to_owned()));
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok((status, body)) => panic!("user {n}: {status} {body}"),
                    // The bridge is gone: this worker stops, as an identity provider's cycle would.
                    Err(_) => return created,
                }
            }
        }));
    }
    for _ in 0..600 {
        if answered.load(Ordering::SeqCst) >= KILL_AFTER {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    bridge.kill().await;
    let mut created_before_kill = Vec::new();
    for worker in workers {
        created_before_kill.extend(worker.await.unwrap());
    }
    assert!(created_before_kill.len() >= KILL_AFTER);
    assert!(
        created_before_kill.len() < USERS,
        "the kill came after the load"
    );

    // Restarted, the identity provider's next cycle provisions every user.
    let bridge = Bridge::start(&config).await;
    let mut ids = HashMap::new();
    for n in 0..USERS {
        ids.insert(n, entra_provision(&client, &bridge.base, &token, n).await);
    }
    for (n, id) in &created_before_kill {
        assert_eq!(&ids[n], id, "user {n} kept the id it was created with");
    }
    assert_consistent(&sim, &store, 0..USERS).await;
    assert_eq!(sim.employees().len(), USERS);
    bridge.kill().await;
    store.close().await;
});

/// Runs `program args` and says whether it succeeded.
fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .map_err(|error| format!("{program}: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Outside CI a machine may not allow what a test needs (mounting, a PostgreSQL install): the
/// test is skipped with a warning. In CI (`CI=true`) it must run.
fn skip_or_fail(what: &str, why: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{what} is required in CI: {why}");
    }
    eprintln!("warning: test skipped, {what} unavailable: {why}");
}

/// A small tmpfs, unmounted when dropped.
struct SmallDisk {
    path: PathBuf,
    _parent: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Result<Self, String> {
        let parent = tempfile::tempdir().map_err(|error| error.to_string())?;
        let path = parent.path().join("disk");
        std::fs::create_dir(&path).map_err(|error| error.to_string())?;
        let target = path.to_string_lossy().into_owned();
        run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "tmpfs",
                &target,
            ],
        )?;
        Ok(Self {
            path,
            _parent: parent,
        })
    }

    /// Writes a file until the disk refuses: in large pieces, then small ones, then bytes.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.path.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        for piece in [65_536_usize, 4_096, 1] {
            let bytes = vec![0_u8; piece];
            // Bounded: the disk is a few MiB.
            for _ in 0..(64 * 1024 * 1024 / piece).min(1 << 20) {
                if file.write_all(&bytes).and_then(|()| file.flush()).is_err() {
                    break;
                }
            }
        }
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let target = self.path.to_string_lossy().into_owned();
        if let Err(error) = run("umount", &["-l", &target]) {
            eprintln!("warning: {error}");
        }
    }
}

/// The SQLite store's disk fills up under a running bridge: creates are answered 503 with a
/// clear reason (never 500, never a panic), reads still work, and once space is freed the identity
/// provider's retries link the employees C4C created meanwhile, with nothing corrupted or lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_disk_full() {
    let disk = match SmallDisk::mount("4m") {
        Ok(disk) => disk,
        Err(why) => return skip_or_fail("mounting a small tmpfs", &why),
    };
    let db = TestDb::at_url(format!(
        "sqlite://{}",
        disk.path.join("bridge.db").display()
    ));
    let Scene {
        sim,
        _dir,
        config: _,
        bridge,
        store,
        token,
    } = Scene::start(&db).await;
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(entra_provision(&client, &bridge.base, &token, n).await);
    }

    // Checkpoint the write-ahead log into the database file and truncate it, so that the next
    // write needs new space (a WAL keeps the space it once had and would reuse it).
    let direct = sqlx::SqlitePool::connect(&db.url).await.unwrap();
    let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
        .fetch_one(&direct)
        .await
        .unwrap();
    assert_eq!(busy, 0, "the checkpoint could not finish");
    direct.close().await;
    let filler = disk.fill();
    let mut refused = 0;
    for n in 5..10 {
        let (status, body) = post_user(&client, &bridge.base, &token, n).await.unwrap();
        match status {
            // Space a previous write had reserved may still take a row: then it must be stored.
            201 => assert!(
                store
                    .find_live_by_name(ResourceType::User, &user_name(n))
                    .await
                    .unwrap()
                    .is_some(),
                "user {n} was answered 201 but not stored"
            ),
            503 => {
                assert!(
                    body["detail"].as_str().unwrap().contains("no space left"),
                    "{body}"
                );
                refused += 1;
            }
            other => panic!("user {n}: {other} {body}"),
        }
    }
    assert!(refused > 0, "a full disk refused no write");
    for id in &ids {
        let response = client
            .get(format!("{}/scim/v2/Users/{id}", bridge.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "reads work on a full disk");
    }

    std::fs::remove_file(filler).unwrap();
    for n in 5..10 {
        entra_provision(&client, &bridge.base, &token, n).await;
    }
    assert_consistent(&sim, &store, 0..10).await;
    assert_eq!(sim.employees().len(), 10, "no duplicate");
    bridge.kill().await;
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&sqlx::SqlitePool::connect(&db.url).await.unwrap())
        .await
        .unwrap();
    assert_eq!(check, "ok");
    store.close().await;
}

/// A throwaway PostgreSQL cluster of the machine's installation, run as the postgres user, that a
/// test may stop and start; removed when dropped.
struct OwnPostgres {
    bin: PathBuf,
    data: tempfile::TempDir,
    port: u16,
}

impl OwnPostgres {
    fn start() -> Result<Self, String> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .map_err(|error| format!("/usr/lib/postgresql: {error}"))?
            .filter_map(Result::ok)
            .map(|entry| entry.path().join("bin"))
            .filter(|bin| bin.join("initdb").exists())
            .max()
            .ok_or("no initdb under /usr/lib/postgresql")?;
        let data = tempfile::tempdir().map_err(|error| error.to_string())?;
        let dir = data.path().to_string_lossy().into_owned();
        run("chown", &["postgres", &dir])?;
        let cluster = Self {
            bin,
            data,
            port: free_port(),
        };
        cluster.as_postgres("initdb", &["-D", &dir, "-A", "trust", "-U", "postgres"])?;
        cluster.pg_ctl("start")?;
        Ok(cluster)
    }

    fn as_postgres(&self, tool: &str, args: &[&str]) -> Result<(), String> {
        let tool = self.bin.join(tool).to_string_lossy().into_owned();
        let mut all = vec!["-u", "postgres", "--", tool.as_str()];
        all.extend_from_slice(args);
        run("runuser", &all)
    }

    fn pg_ctl(&self, action: &str) -> Result<(), String> {
        let dir = self.data.path().to_string_lossy().into_owned();
        let log = self.data.path().join("log").to_string_lossy().into_owned();
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, dir);
        self.as_postgres(
            "pg_ctl",
            &[
                "-D", &dir, "-l", &log, "-o", &options, "-m", "fast", "-w", action,
            ],
        )
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        if let Err(error) = self.pg_ctl("stop") {
            eprintln!("warning: {error}");
        }
    }
}

/// PostgreSQL restarts while identity-provider traffic flows: requests during the outage are
/// answered 503 with Retry-After (never 500), the bridge reconnects by itself, and the retries
/// leave C4C and the store consistent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_mid_load() {
    let postgres = match OwnPostgres::start() {
        Ok(postgres) => postgres,
        Err(why) => return skip_or_fail("a PostgreSQL cluster of our own", &why),
    };
    let db = TestDb::at_url(postgres.url());
    let Scene {
        sim,
        _dir,
        config: _,
        bridge,
        store,
        token,
    } = Scene::start(&db).await;
    sim.faults()
        .set_latency(Duration::from_millis(10), Duration::from_millis(10));
    store.close().await;
    let client = reqwest::Client::new();

    // Each request during the outage waits for the store's acquire timeout: keep them few.
    const USERS: usize = 30;
    let mut answers: HashMap<u16, usize> = HashMap::new();
    for n in 0..USERS {
        if n == USERS / 2 {
            postgres.pg_ctl("stop").unwrap();
        }
        if n == USERS / 2 + 3 {
            postgres.pg_ctl("start").unwrap();
        }
        let (status, body) = post_user(&client, &bridge.base, &token, n).await.unwrap();
        assert!(status == 201 || status == 503, "user {n}: {status} {body}");
        *answers.entry(status).or_default() += 1;
    }
    assert!(answers.get(&503).copied().unwrap_or(0) >= 3, "{answers:?}");
    // The identity provider's next cycle retries what failed.
    for n in 0..USERS {
        entra_provision(&client, &bridge.base, &token, n).await;
    }
    let store = Store::connect(&db.url, 2).await.unwrap();
    assert_consistent(&sim, &store, 0..USERS).await;
    assert_eq!(sim.employees().len(), USERS, "no duplicate");
    bridge.kill().await;
    store.close().await;
}
