//! Test harness: a fresh store per test (a new SQLite file; a new PostgreSQL database when a
//! server answers) and the real server on an ephemeral port.

use std::net::SocketAddr;
use std::path::PathBuf;

use c4c_scim_bridge::app::Application;
use c4c_scim_bridge::config::Config;
use c4c_scim_bridge::store::Store;
use secrecy::SecretString;
use tokio::sync::oneshot;

/// The PostgreSQL server the tests use: `TEST_POSTGRES_URL`, else the local one the project's
/// machines run (trust auth, user postgres).
pub fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A store on a fresh database, removed when dropped (SQLite) or left for the server to keep
/// (PostgreSQL databases are named per test and dropped at the start of the next run).
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// `None` when the backend is PostgreSQL and no server answers outside CI (a warning is
    /// printed). In CI (`CI=true`) a missing PostgreSQL fails the test instead.
    pub async fn new(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("bridge.db").display());
                Some(Self {
                    url,
                    _dir: Some(dir),
                })
            }
            Backend::Postgres => {
                let admin_url = postgres_admin_url();
                let admin = match sqlx::PgPool::connect(&admin_url).await {
                    Ok(pool) => pool,
                    Err(error) => {
                        if std::env::var("CI").as_deref() == Ok("true") {
                            panic!("PostgreSQL at {admin_url} is required in CI: {error}");
                        }
                        eprintln!(
                            "warning: PostgreSQL tests skipped, no server at {admin_url}: {error}"
                        );
                        return None;
                    }
                };
                let name = format!("c4c_test_{}", uuid::Uuid::new_v4().simple());
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&admin)
                    .await
                    .unwrap();
                admin.close().await;
                let mut url = url::Url::parse(&admin_url).unwrap();
                url.set_path(&name);
                Some(Self {
                    url: url.to_string(),
                    _dir: None,
                })
            }
        }
    }

    /// A database the test made itself (a file on a small disk, a server of its own).
    pub fn at_url(url: String) -> Self {
        Self { url, _dir: None }
    }

    /// Another handle on the same PostgreSQL database (a second replica's view of it).
    pub fn same_database(&self) -> Self {
        assert!(
            self._dir.is_none(),
            "only a PostgreSQL database can be shared"
        );
        Self {
            url: self.url.clone(),
            _dir: None,
        }
    }

    pub async fn store(&self) -> Store {
        let store = Store::connect(&self.url, 5).await.unwrap();
        store.migrate().await.unwrap();
        store
    }
}

pub fn test_config(db: &TestDb) -> Config {
    let mut config = Config::default();
    config.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.store.url = Some(SecretString::from(db.url.clone()));
    config
}

/// The real server on an ephemeral port; stopped gracefully when dropped.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub store: Store,
    /// Kept so that a SQLite file lives as long as the server.
    _db: TestDb,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Option<Self> {
        let db = TestDb::new(backend).await?;
        Some(Self::spawn_with(db, |_| {}).await)
    }

    pub async fn spawn_with(db: TestDb, adjust: impl FnOnce(&mut Config)) -> Self {
        let mut config = test_config(&db);
        adjust(&mut config);
        let store = db.store().await;
        let app = Application::build(config, store.clone()).await.unwrap();
        // As `serve` does: the rules are checked against the tenant and its $metadata learnt.
        app.check_rules_against_tenant().await.unwrap();
        let addr = app.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            app.run_until(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self {
            addr,
            client: reqwest::Client::new(),
            store,
            _db: db,
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Stops the server and waits until it has finished its in-flight requests.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.unwrap();
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Runs `body` once per backend; PostgreSQL is skipped (with a warning) only outside CI.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn sqlite() {
                ($body)($crate::harness::Backend::Sqlite).await;
            }
            #[tokio::test]
            async fn postgres() {
                ($body)($crate::harness::Backend::Postgres).await;
            }
        }
    };
}

/// A loopback port free at the time of asking (for a process started by the test).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_c4c-scim-bridge"))
}

/// C4C settings for a simulator, with its default technical user.
pub fn c4c_config_for(sim: &c4c_scim_bridge::sim::SimHandle) -> c4c_scim_bridge::c4c::C4cConfig {
    toml::from_str(&format!(
        "base_url = \"{}/\"\n[retry]\nmax_attempts = 1\n[auth]\nmode = \"basic\"\nuser = \"{}\"\npassword = \"{}\"\n",
        sim.service_url(),
        c4c_scim_bridge::sim::DEFAULT_USER,
        c4c_scim_bridge::sim::DEFAULT_PASSWORD,
    ))
    .unwrap()
}

/// A simulator with `employees` generated employees, on an ephemeral port.
pub async fn start_sim(employees: usize) -> c4c_scim_bridge::sim::SimHandle {
    c4c_scim_bridge::sim::Simulator::start(c4c_scim_bridge::sim::SimConfig {
        generated_employees: employees,
        ..c4c_scim_bridge::sim::SimConfig::default()
    })
    .await
    .unwrap()
}
