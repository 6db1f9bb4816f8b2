//! The embedded SQLite store's request path, without sqlx.
//!
//! sqlx-sqlite runs each connection on a worker thread of its own and sends it every query over a
//! channel: a keyed read costs two thread switches around a few microseconds of SQLite, and on a
//! 2-core machine those switches, not SQLite, were most of a SCIM GET's store time (perf,
//! docs/performance.md). The few statements every SCIM request runs go through here instead:
//!
//! - reads run on the calling thread, on a connection taken from a small pool. In WAL mode a read
//!   never waits for the writer, and a keyed read is cheaper than the hop to a thread would be;
//! - writes go to one writer thread, which commits everything that arrived while it was busy in
//!   one transaction (group commit). Each caller still gets its own statement's result, and only
//!   after that transaction's commit, so a row is stored before the response that describes it.
//!   The one exception is a read's mapping-log record ([`Direct::write_soon`]): nobody waits for
//!   it, and it is committed with the next group.
//!
//! Everything else (migrations, admin queries, groups, the outbox) stays on the sqlx pool, over
//! the same file; SQLite's locking keeps the two apart.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use super::StoreError;

/// Connections kept for reads when idle; more are opened when more reads run at once.
const MAX_IDLE_READERS: usize = 16;

/// Most writes one transaction commits.
const MAX_GROUP: usize = 256;

/// How long a group of only unawaited writes waits for more before it commits. Each commit writes
/// every page it touched to the WAL again (the mapping log's table and its indexes), so records
/// nobody waits for are better committed several at a time; a write somebody waits for ends the
/// wait at once.
const LINGER: Duration = Duration::from_millis(10);

/// Most jobs queued before an unawaited write waits like any other: a writer that cannot keep up
/// (a slow disk, another process holding the file's write lock) then slows the reads down
/// instead of growing the queue without bound.
const MAX_BACKLOG: usize = 4096;

/// As the sqlx connections (see `Store::connect`).
const PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; \
                       PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 10000;";
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// What a write sends back once its transaction has ended: given the commit's outcome, it answers
/// its caller.
type Reply = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// A write: given the writer's connection inside a transaction (or why there is none), it runs
/// its statements and returns its reply and its own error, if it had one.
type Job = Box<dyn FnOnce(Result<&Connection, StoreError>) -> (Reply, Option<StoreError>) + Send>;

/// A job on its way to the writer, and whether a caller waits for its commit.
struct Queued {
    job: Job,
    awaited: bool,
}

/// The writer's queue. Not a channel: a channel wakes its receiver on every send, and while the
/// writer waits for company for unawaited writes (one per SCIM GET) each of those wake-ups was a
/// thread switch per request. Here only a write somebody waits for, or the first one after the
/// writer fell idle, wakes it.
#[derive(Default)]
struct WriteQueue {
    state: Mutex<QueueState>,
    ready: Condvar,
}

#[derive(Default)]
struct QueueState {
    jobs: VecDeque<Queued>,
    /// How many of `jobs` a caller waits for.
    awaited: usize,
    /// The writer waits for any job at all (nothing is queued).
    idle: bool,
    closed: bool,
}

impl WriteQueue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // Nothing panics while holding the lock; a poisoned one is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, queued: Queued) -> Result<(), StoreError> {
        let mut state = self.lock();
        if state.closed {
            return Err(StoreError::Unavailable(
                "the SQLite writer has stopped".into(),
            ));
        }
        let wake = queued.awaited || state.idle;
        state.awaited += usize::from(queued.awaited);
        state.jobs.push_back(queued);
        drop(state);
        if wake {
            self.ready.notify_one();
        }
        Ok(())
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }

    /// The writer's next group, into `group`: waits for a first job, then (when nobody waits for
    /// any queued job) up to [`LINGER`] for more. `false` once closed and drained.
    fn next_group(&self, group: &mut Vec<Job>) -> bool {
        let mut state = self.lock();
        while state.jobs.is_empty() {
            if state.closed {
                return false;
            }
            state.idle = true;
            state = self
                .ready
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
            state.idle = false;
        }
        let deadline = Instant::now() + LINGER;
        while state.awaited == 0 && state.jobs.len() < MAX_GROUP && !state.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = self
                .ready
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        let take = state.jobs.len().min(MAX_GROUP);
        let state = &mut *state;
        for queued in state.jobs.drain(..take) {
            state.awaited -= usize::from(queued.awaited);
            group.push(queued.job);
        }
        true
    }
}

pub(super) struct Direct {
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    writes: Arc<WriteQueue>,
}

impl Drop for Direct {
    /// The writer commits what is queued, then its thread ends.
    fn drop(&mut self) {
        self.writes.close();
    }
}

impl Direct {
    /// Opens the writer's connection and starts its thread; the thread ends when this is dropped.
    pub(super) fn open(path: &Path) -> Result<Self, StoreError> {
        let writer = open_connection(path)?;
        let writes = Arc::new(WriteQueue::default());
        let jobs = writes.clone();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || write_in_groups(&writer, &jobs))
            .map_err(|error| {
                StoreError::Unavailable(format!("cannot start the writer: {error}"))
            })?;
        Ok(Self {
            path: path.to_owned(),
            readers: Mutex::new(Vec::new()),
            writes,
        })
    }

    /// Runs `read` on a reader connection, on this thread.
    pub(super) fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let idle = self.readers.lock().ok().and_then(|mut idle| idle.pop());
        let connection = match idle {
            Some(connection) => connection,
            None => open_connection(&self.path)?,
        };
        let result = read(&connection);
        if let Ok(mut idle) = self.readers.lock()
            && idle.len() < MAX_IDLE_READERS
        {
            idle.push(connection);
        }
        result
    }

    /// Runs `write` on the writer thread, in the next group's transaction, and returns its result
    /// once that transaction has committed (or the error that stopped it).
    pub(super) async fn write<T: Send + 'static>(
        &self,
        write: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (answer, answered) = oneshot::channel::<Result<T, StoreError>>();
        let job: Job = Box::new(move |connection| {
            let result = connection.and_then(write);
            let own_error = result.as_ref().err().cloned();
            let reply: Reply = Box::new(move |committed| {
                // A caller that went away (its request was cancelled) needs no answer.
                let _ = answer.send(committed.and(result));
            });
            (reply, own_error)
        });
        let stopped = || StoreError::Unavailable("the SQLite writer has stopped".into());
        self.writes.push(Queued { job, awaited: true })?;
        answered.await.map_err(|_| stopped())?
    }

    /// Queues `write` and returns without waiting for its commit, unless [`MAX_BACKLOG`] jobs are
    /// already queued: then it waits like [`Direct::write`].
    pub(super) async fn write_soon(
        &self,
        write: impl FnOnce(&Connection) -> Result<(), StoreError> + Send + 'static,
    ) -> Result<(), StoreError> {
        if self.writes.lock().jobs.len() < MAX_BACKLOG {
            self.write_unawaited(write)
        } else {
            self.write(write).await
        }
    }

    /// Queues `write` for the writer and returns at once: it commits with the next group, at most
    /// [`LINGER`] from now while the writer keeps up. Its error, if any, goes to the service log.
    /// A later [`Direct::write`] (or [`Direct::settle`]) returns only after it has committed too,
    /// since the writer takes jobs in order.
    fn write_unawaited(
        &self,
        write: impl FnOnce(&Connection) -> Result<(), StoreError> + Send + 'static,
    ) -> Result<(), StoreError> {
        let job: Job = Box::new(move |connection| {
            let own_error = connection.and_then(write).err();
            let reply: Reply = Box::new(|committed| {
                if let Err(error) = committed {
                    tracing::error!(%error, "an unawaited store write was not committed");
                }
            });
            (reply, own_error)
        });
        self.writes.push(Queued {
            job,
            awaited: false,
        })
    }

    /// Returns once every write queued before this call has committed (or failed).
    pub(super) async fn settle(&self) -> Result<(), StoreError> {
        self.write(|_| Ok(())).await
    }
}

/// Binds `$n` placeholders to `params[n - 1]` by their number, as sqlx does, so one statement
/// text runs on both paths whatever the order its placeholders first appear in.
pub(super) fn bind_numbered(
    statement: &mut rusqlite::Statement<'_>,
    params: &[rusqlite::types::Value],
) -> Result<(), StoreError> {
    for index in 1..=statement.parameter_count() {
        let number = statement
            .parameter_name(index)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|number| number.parse::<usize>().ok())
            .filter(|number| (1..=params.len()).contains(number))
            .ok_or_else(|| {
                StoreError::Database(format!(
                    "statement parameter {index} is not one of $1..${}",
                    params.len()
                ))
            })?;
        statement.raw_bind_parameter(index, &params[number - 1])?;
    }
    Ok(())
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags)?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    connection.execute_batch(PRAGMAS)?;
    Ok(connection)
}

/// The writer thread: one transaction per group of whatever writes are waiting.
fn write_in_groups(connection: &Connection, jobs: &WriteQueue) {
    let mut group: Vec<Job> = Vec::with_capacity(MAX_GROUP);
    while jobs.next_group(&mut group) {
        run_group(connection, group.drain(..));
    }
}

fn run_group(connection: &Connection, group: impl Iterator<Item = Job>) {
    let mut replies: Vec<Reply> = Vec::new();
    let mut stopped: Option<StoreError> = connection
        .execute_batch("BEGIN IMMEDIATE")
        .err()
        .map(StoreError::from);
    for job in group {
        if let Some(error) = &stopped {
            // No transaction: the job answers with why, and writes nothing.
            replies.push(job(Err(error.clone())).0);
            continue;
        }
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(Ok(connection))));
        let Ok((reply, own_error)) = ran else {
            // A bug, not a state of the file: this group is rolled back (the panicked job's
            // caller sees its answer dropped) and the thread goes on serving the next ones.
            let _ = connection.execute_batch("ROLLBACK");
            stopped = Some(StoreError::Database(
                "a store write failed unexpectedly".into(),
            ));
            continue;
        };
        replies.push(reply);
        // SQLite rolls the whole transaction back on some errors (a full disk, an I/O error):
        // the writes before this one are gone, and the ones after must not run outside it.
        if connection.is_autocommit() {
            stopped = Some(own_error.unwrap_or_else(|| {
                StoreError::Database("the SQLite transaction was rolled back".into())
            }));
        }
    }
    let committed = match stopped {
        Some(error) => Err(error),
        None => connection.execute_batch("COMMIT").map_err(|error| {
            let error = StoreError::from(error);
            if !connection.is_autocommit() {
                let _ = connection.execute_batch("ROLLBACK");
            }
            error
        }),
    };
    for reply in replies {
        reply(committed.clone());
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match &error {
            rusqlite::Error::SqliteFailure(failure, message) => {
                let message = message.clone().unwrap_or_else(|| failure.to_string());
                match failure.code {
                    ErrorCode::ConstraintViolation
                        if matches!(
                            failure.extended_code,
                            rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                                | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                        ) =>
                    {
                        StoreError::Conflict(message)
                    }
                    ErrorCode::DiskFull | ErrorCode::SystemIoFailure => StoreError::Full(message),
                    ErrorCode::DatabaseBusy
                    | ErrorCode::DatabaseLocked
                    | ErrorCode::CannotOpen
                    | ErrorCode::OutOfMemory => StoreError::Unavailable(message),
                    _ => StoreError::Database(message),
                }
            }
            rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::IntegralValueOutOfRange(..) => {
                StoreError::Corrupt(error.to_string())
            }
            _ => StoreError::Database(error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_file() -> (tempfile::TempDir, Direct) {
        let dir = tempfile::tempdir().expect("temp dir");
        let direct = Direct::open(&dir.path().join("store.db")).expect("open");
        (dir, direct)
    }

    async fn create_table(direct: &Direct) {
        direct
            .write(|connection| {
                connection
                    .execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
                    .map_err(StoreError::from)
            })
            .await
            .expect("create table");
    }

    async fn insert(direct: &Direct, key: &str, value: i64) -> Result<usize, StoreError> {
        let key = key.to_owned();
        direct
            .write(move |connection| {
                connection
                    .execute("INSERT INTO t (k, v) VALUES (?1, ?2)", (key, value))
                    .map_err(StoreError::from)
            })
            .await
    }

    fn count(direct: &Direct) -> i64 {
        direct
            .read(|connection| {
                connection
                    .query_row("SELECT COUNT(*) FROM t", [], |row| row.get(0))
                    .map_err(StoreError::from)
            })
            .expect("count")
    }

    #[tokio::test]
    async fn concurrent_writes_each_get_their_own_result_after_the_commit() {
        let (_dir, direct) = store_file();
        let direct = std::sync::Arc::new(direct);
        create_table(&direct).await;
        let mut tasks = Vec::new();
        for n in 0..200_i64 {
            let direct = direct.clone();
            // Every tenth key repeats an earlier one: a unique violation for that write only.
            let key = if n % 10 == 9 {
                format!("k{}", n - 1)
            } else {
                format!("k{n}")
            };
            tasks.push(tokio::spawn(async move {
                let result = insert(&direct, &key, n).await;
                // Stored when the call returns: visible to a read right away.
                let visible = direct
                    .read(|connection| {
                        connection
                            .query_row("SELECT COUNT(*) FROM t WHERE k = ?1", [&key], |row| {
                                row.get::<_, i64>(0)
                            })
                            .map_err(StoreError::from)
                    })
                    .expect("read");
                (result, visible)
            }));
        }
        let mut conflicts = 0;
        for task in tasks {
            let (result, visible) = task.await.expect("task");
            assert_eq!(visible, 1);
            match result {
                Ok(1) => {}
                Err(StoreError::Conflict(_)) => conflicts += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(conflicts, 20);
        assert_eq!(count(&direct), 180);
    }

    fn insert_unawaited(direct: &Direct, key: &str, value: i64) {
        let key = key.to_owned();
        direct
            .write_unawaited(move |connection| {
                connection
                    .execute("INSERT INTO t (k, v) VALUES (?1, ?2)", (key, value))
                    .map(|_| ())
                    .map_err(StoreError::from)
            })
            .expect("queued");
    }

    #[tokio::test]
    async fn unawaited_writes_are_stored_before_any_later_awaited_write_returns() {
        let (_dir, direct) = store_file();
        create_table(&direct).await;
        for n in 0..50 {
            insert_unawaited(&direct, &format!("u{n}"), n);
        }
        // One fails (a duplicate) and is only reported: the others of its group stay.
        insert_unawaited(&direct, "u7", 99);
        assert_eq!(insert(&direct, "awaited", 1).await.ok(), Some(1));
        assert_eq!(count(&direct), 51);
        insert_unawaited(&direct, "late", 2);
        direct.settle().await.expect("settled");
        assert_eq!(count(&direct), 52);
    }

    #[tokio::test]
    async fn beyond_the_backlog_an_unawaited_write_waits_for_its_commit() {
        let (_dir, direct) = store_file();
        let direct = Arc::new(direct);
        create_table(&direct).await;
        // Hold the writer inside a job until released.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let entered = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let blocker = {
            let direct = direct.clone();
            let entered = entered.clone();
            tokio::spawn(async move {
                direct
                    .write(move |_| {
                        entered.store(true, std::sync::atomic::Ordering::SeqCst);
                        held.recv()
                            .map_err(|_| StoreError::Database("released".into()))
                    })
                    .await
            })
        };
        // Bounded wait until the writer runs the blocking job.
        for _ in 0..5000 {
            if entered.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
            tokio::task::yield_now().await;
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(entered.load(std::sync::atomic::Ordering::SeqCst));
        // Below the backlog: returns at once although the writer is held.
        for _ in 0..MAX_BACKLOG {
            direct.write_soon(|_| Ok(())).await.expect("queued");
        }
        assert_eq!(direct.writes.lock().jobs.len(), MAX_BACKLOG);
        // At the backlog: waits for its commit, so the row is there when it returns.
        let waiting = {
            let direct = direct.clone();
            tokio::spawn(async move {
                direct
                    .write_soon(|connection| {
                        connection
                            .execute("INSERT INTO t (k, v) VALUES ('late', 1)", [])
                            .map(|_| ())
                            .map_err(StoreError::from)
                    })
                    .await
                    .expect("written");
                count(&direct)
            })
        };
        // Bounded wait until it is queued behind the backlog, then let the writer go.
        for _ in 0..1000 {
            if direct.writes.lock().jobs.len() > MAX_BACKLOG {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(direct.writes.lock().jobs.len(), MAX_BACKLOG + 1);
        release.send(()).expect("release");
        blocker.await.expect("task").expect("blocking job");
        assert_eq!(waiting.await.expect("task"), 1);
    }

    #[tokio::test]
    async fn unawaited_writes_alone_are_committed_by_the_writer_on_its_own() {
        let (_dir, direct) = store_file();
        create_table(&direct).await;
        insert_unawaited(&direct, "alone", 1);
        // Nothing else is queued: the group's wait for company ends by itself. Bounded poll.
        let mut seen = 0;
        for _ in 0..500 {
            seen = count(&direct);
            if seen == 1 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(seen, 1);
    }

    #[tokio::test]
    async fn a_failed_statement_leaves_the_rest_of_its_group_committed() {
        let (_dir, direct) = store_file();
        create_table(&direct).await;
        assert_eq!(insert(&direct, "a", 1).await.ok(), Some(1));
        let (first, second, third) = tokio::join!(
            insert(&direct, "b", 2),
            insert(&direct, "a", 3),
            insert(&direct, "c", 4)
        );
        assert!(matches!(first, Ok(1)));
        assert!(matches!(second, Err(StoreError::Conflict(_))));
        assert!(matches!(third, Ok(1)));
        assert_eq!(count(&direct), 3);
    }

    #[tokio::test]
    async fn a_write_that_panics_fails_alone_and_the_writer_goes_on() {
        let (_dir, direct) = store_file();
        create_table(&direct).await;
        let panicked = direct
            .write(|_| -> Result<(), StoreError> { panic!("a bug in a write") })
            .await;
        assert!(
            matches!(panicked, Err(StoreError::Unavailable(_))),
            "{panicked:?}"
        );
        assert_eq!(insert(&direct, "after", 1).await.ok(), Some(1));
        assert_eq!(count(&direct), 1);
    }

    #[tokio::test]
    async fn a_busy_file_answers_each_write_with_an_error_and_writes_nothing() {
        let (dir, direct) = store_file();
        create_table(&direct).await;
        // Another connection holds the write lock longer than we wait for it.
        let blocker = Connection::open(dir.path().join("store.db")).expect("open");
        blocker.execute_batch("BEGIN IMMEDIATE").expect("lock");
        let quick = open_connection(&dir.path().join("store.db")).expect("open");
        quick
            .busy_timeout(Duration::from_millis(50))
            .expect("timeout");
        let writes = Arc::new(WriteQueue::default());
        let jobs = writes.clone();
        std::thread::spawn(move || write_in_groups(&quick, &jobs));
        let impatient = Direct {
            path: dir.path().join("store.db"),
            readers: Mutex::new(Vec::new()),
            writes,
        };
        let result = insert(&impatient, "x", 1).await;
        assert!(
            matches!(result, Err(StoreError::Unavailable(_))),
            "{result:?}"
        );
        blocker.execute_batch("ROLLBACK").expect("unlock");
        assert_eq!(count(&direct), 0);
        assert_eq!(insert(&impatient, "x", 1).await.ok(), Some(1));
    }
}
