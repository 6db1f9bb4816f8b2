//! The store: the SCIM id ↔ ObjectID ↔ EmployeeID mapping table, the mapping log and the outbox.
//!
//! One API over PostgreSQL (production, shared by replicas) and SQLite (the embedded default).
//! Both run through sqlx's `Any` driver with one SQL dialect: the statements below are written to
//! the common subset (numbered `$n` parameters, `RETURNING`, partial indexes, times as Unix
//! milliseconds), so every query exists once and both backends are tested with the same code.
//! On a SQLite file, the few statements every SCIM request runs (resource reads and writes, the
//! mapping log) take a path without sqlx's worker threads, with the same statement texts (`direct`).

mod admin;
mod auth;
mod direct;
mod groups;
mod locks;
mod log;
mod outbox;
mod reconcile;
mod resources;
mod safety;
mod tokens;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

pub use admin::{
    AdminLogQuery, LinkQuery, LinkRow, LogWindow, MAX_ADMIN_PAGE, OutboxDecisionError,
    RETRY_SEPARATOR,
};
pub use auth::{AdminSessionRow, AdminUserRow, OAuthClientRow, SigningKeyRow};
pub use groups::MemberRow;
pub use locks::ReplicaLock;
pub use log::{LogEntry, LogQuery, LogRecord};
pub use outbox::{OutboxItem, OutboxStatus};
pub use reconcile::{FindingRow, NewFinding, ReconcileRun, RoleMembership};
pub use resources::{NewResource, ResourceRow, ResourceType, new_resource_id};
pub use safety::{AppliedChange, HeldOperation, NewChange, NewHeld};
pub use tokens::{TOKEN_CACHE_TTL, TokenRow};

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("store is unreachable: {0}")]
    Unavailable(String),
    /// The database or its disk is full: nothing was written.
    #[error("store is full: {0}")]
    Full(String),
    #[error("{0}")]
    Conflict(String),
    #[error("resource {0} not found")]
    NotFound(String),
    #[error("version mismatch: the resource changed since it was read")]
    VersionMismatch,
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_) => StoreError::Unavailable(error.to_string()),
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(db.message().to_owned())
            }
            sqlx::Error::Database(db) if is_full(db.as_ref()) => {
                StoreError::Full(db.message().to_owned())
            }
            sqlx::Error::Database(db) if is_transient(db.as_ref()) => {
                StoreError::Unavailable(error.to_string())
            }
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                StoreError::Corrupt(error.to_string())
            }
            _ => StoreError::Database(error.to_string()),
        }
    }
}

/// A full disk: SQLite's SQLITE_FULL (13) or a write I/O error (SQLITE_IOERR, 10, and its
/// extended codes); PostgreSQL's disk_full (53100).
fn is_full(error: &dyn sqlx::error::DatabaseError) -> bool {
    let code = error.code();
    if error
        .try_downcast_ref::<sqlx::sqlite::SqliteError>()
        .is_some()
    {
        return code
            .and_then(|code| code.parse::<i64>().ok())
            .is_some_and(|n| matches!(n & 0xff, 10 | 13));
    }
    code.as_deref() == Some("53100")
}

/// PostgreSQL errors that pass: connection exceptions (class 08), a server shutting down or
/// restarting (class 57: admin_shutdown, crash_shutdown, cannot_connect_now), too many
/// connections or out of memory (class 53), serialization failures and deadlocks (class 40).
fn is_transient(error: &dyn sqlx::error::DatabaseError) -> bool {
    if error
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .is_none()
    {
        return false;
    }
    error.code().is_some_and(|code| {
        code.len() == 5
            && ["08", "57", "53", "40"]
                .iter()
                .any(|class| code.starts_with(class))
    })
}

/// The one row a write with RETURNING produced. SQLite commits an autocommit write when its
/// statement runs to the end and reports a failed commit (a full disk) only to a caller that steps
/// that far; `fetch_one` and `fetch_optional` stop at the first row and would take a write that was
/// rolled back for done. So every write with RETURNING reads with `fetch_all`, then this.
pub(crate) fn returned_row<T>(rows: Vec<T>) -> Result<T, StoreError> {
    rows.into_iter()
        .next()
        .ok_or_else(|| StoreError::Database("a write with RETURNING returned no row".into()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Sqlite,
    Postgres,
}

impl StoreKind {
    pub fn from_url(url: &str) -> Result<Self, String> {
        if url.starts_with("sqlite:") {
            Ok(StoreKind::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(StoreKind::Postgres)
        } else {
            Err("must start with sqlite:// or postgres://".to_owned())
        }
    }
}

/// Hides the password of a URL, for messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            // set_password only fails for URLs that cannot carry one, which we just read one from.
            let _ = parsed.set_password(Some("redacted"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Milliseconds since the Unix epoch: the store's one representation of time.
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// See [`Store::timer`].
pub(crate) struct OperationTimer {
    operation: &'static str,
    started: std::time::Instant,
}

impl Drop for OperationTimer {
    fn drop(&mut self) {
        crate::metrics::record_store(self.operation, self.started.elapsed());
    }
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// PostgreSQL only: the connections that hold cross-replica advisory locks. Kept apart from
    /// `pool` because a lock holder also needs a connection for its work: with one pool, as
    /// many holders as connections would wait forever for a second one.
    lock_pool: Option<AnyPool>,
    kind: StoreKind,
    log_writer: log::LogWriter,
    token_cache: std::sync::Arc<tokens::TokenCache>,
    /// SQLite in a file: the request path's statements, without sqlx (see `direct`).
    direct: Option<std::sync::Arc<direct::Direct>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("kind", &self.kind).finish()
    }
}

impl Store {
    /// Connects to the store; a SQLite file and its folder are created when missing.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let kind = StoreKind::from_url(url).map_err(StoreError::Unavailable)?;
        let url = match kind {
            StoreKind::Sqlite => prepare_sqlite_url(url)?,
            StoreKind::Postgres => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)
            .map_err(|error| StoreError::Unavailable(error.to_string()))?;
        let lock_pool = (kind == StoreKind::Postgres).then(|| {
            AnyPoolOptions::new()
                .max_connections(max_connections)
                .min_connections(0)
                // As the main pool: with the store down, a request must get its 503 well inside
                // the request timeout (30 s by default), not wait for the lock that long.
                .acquire_timeout(Duration::from_secs(10))
                .connect_lazy_with(options.clone())
        });
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            // sqlx pings a connection before lending it and again when it comes back; on SQLite
            // each ping is one more round trip to the connection's worker thread (two thread
            // switches) for a file that cannot have hung up. PostgreSQL keeps the check: a server
            // restart leaves dead connections in the pool.
            .test_before_acquire(kind == StoreKind::Postgres)
            .after_connect(move |connection, _| {
                Box::pin(async move {
                    if kind == StoreKind::Sqlite {
                        // Shared with the direct path's connections (direct.rs), which write
                        // the request path's rows and checkpoint the WAL.
                        connection.execute(direct::pool_pragmas().as_str()).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let direct = match sqlite_file(&url) {
            Some(path) if kind == StoreKind::Sqlite => {
                Some(std::sync::Arc::new(direct::Direct::open(&path)?))
            }
            _ => None,
        };
        Ok(Self {
            direct,
            log_writer: log::LogWriter::start(pool.clone()),
            token_cache: std::sync::Arc::default(),
            pool,
            lock_pool,
            kind,
        })
    }

    /// Times one operation into the store latency histogram when dropped.
    pub(crate) fn timer(&self, operation: &'static str) -> OperationTimer {
        OperationTimer {
            operation,
            started: std::time::Instant::now(),
        }
    }

    pub fn kind(&self) -> StoreKind {
        self.kind
    }

    /// The pool for transactions that only hold an advisory lock (see `lock_pool`).
    pub(crate) fn lock_pool(&self) -> &AnyPool {
        self.lock_pool.as_ref().unwrap_or(&self.pool)
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Applies pending migrations. Safe when several replicas start at once: on PostgreSQL the
    /// migrator holds an advisory lock; SQLite serialises writers on the file.
    pub async fn migrate(&self) -> Result<usize, StoreError> {
        let migrator = match self.kind {
            StoreKind::Sqlite => &SQLITE_MIGRATOR,
            StoreKind::Postgres => &POSTGRES_MIGRATOR,
        };
        let applied_before = self.applied_migrations().await.unwrap_or(0);
        migrator
            .run(&self.pool)
            .await
            .map_err(|error| StoreError::Migration(error.to_string()))?;
        let applied_after = self.applied_migrations().await?;
        Ok(applied_after.saturating_sub(applied_before))
    }

    async fn applied_migrations(&self) -> Result<usize, StoreError> {
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_one(&self.pool)
                .await?;
        Ok(usize::try_from(count).unwrap_or(0))
    }

    /// Readiness: the store answers a trivial query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        // Reads' mapping-log records may still be on their way to the file.
        if let Err(error) = self.settle_log().await {
            tracing::error!(%error, "mapping-log records not stored at shutdown");
        }
        if let Some(locks) = &self.lock_pool {
            locks.close().await;
        }
        self.pool.close().await;
    }
}

/// The file of a SQLite URL; `None` for an in-memory database, which only one connection sees.
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let in_memory = path.is_empty() || path == ":memory:" || query.contains("mode=memory");
    (!in_memory).then(|| std::path::PathBuf::from(path))
}

/// Binds each of `params` in order; the statements that run on both paths take them this way.
pub(crate) fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    params: &'q [Param],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for param in params {
        query = match param {
            Param::Null => query.bind(None::<String>),
            Param::Integer(number) => query.bind(*number),
            Param::Real(number) => query.bind(*number),
            Param::Text(text) => query.bind(text.as_str()),
            Param::Blob(bytes) => query.bind(bytes.as_slice()),
        };
    }
    query
}

/// A statement parameter, for statements that run on sqlx or on the direct SQLite path.
pub(crate) use rusqlite::types::Value as Param;

fn prepare_sqlite_url(url: &str) -> Result<String, StoreError> {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    let parent = Path::new(path)
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty());
    if let Some(parent) = parent.filter(|_| path != ":memory:" && !path.is_empty()) {
        std::fs::create_dir_all(parent).map_err(|error| {
            StoreError::Unavailable(format!(
                "cannot create the folder {} for the SQLite store: {error}",
                parent.display()
            ))
        })?;
    }
    Ok(match query {
        Some(query) if query.contains("mode=") => url.to_owned(),
        Some(_) => format!("{url}&mode=rwc"),
        None => format!("{url}?mode=rwc"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_password() {
        let redacted = redact_url("postgres://user:hunter2@localhost/db");
        assert!(!redacted.contains("hunter2"));
        assert!(redacted.contains("user"));
    }

    #[test]
    fn sqlite_files_and_memory() {
        assert_eq!(
            sqlite_file("sqlite://data/bridge.db?mode=rwc"),
            Some(std::path::PathBuf::from("data/bridge.db"))
        );
        assert_eq!(
            sqlite_file("sqlite:///var/lib/b.db"),
            Some(std::path::PathBuf::from("/var/lib/b.db"))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("sqlite://x.db?mode=memory"), None);
    }

    #[test]
    fn kind_from_url() {
        assert_eq!(StoreKind::from_url("sqlite://a.db"), Ok(StoreKind::Sqlite));
        assert_eq!(
            StoreKind::from_url("postgresql://h/db"),
            Ok(StoreKind::Postgres)
        );
        assert!(StoreKind::from_url("mysql://h/db").is_err());
    }
}
