//! The embedded SQLite store's request path, without sqlx.
//!
//! sqlx-sqlite runs each connection on a worker thread of its own and sends it every query over a
//! channel: a keyed read costs two thread switches around a few microseconds of SQLite, and on a
//! 2-core machine those switches, not SQLite, were most of a SCIM GET's store time (perf,
//! docs/performance.md). The few statements every SCIM request runs go through here instead:
//!
//! - reads run on the calling thread, on a connection taken from a small pool. In WAL mode a read
//!   never waits for the writer, and a keyed read is cheaper than the hop to a thread would be;
//! - writes share one connection and are committed in groups: whoever commits takes everything
//!   queued so far into one transaction (group commit). Each caller still gets its own statement's
//!   result, and only after that transaction's commit, so a row is stored before the response that
//!   describes it. A write whose caller waits commits on the caller's own thread when nobody else
//!   is committing and the file's write lock is free at once (no hand-off to another thread and
//!   back: two thread wake-ups per write, most of a write's latency on an idle machine); otherwise
//!   it waits in the queue for whoever commits next: the caller committing now, or the writer
//!   thread, which also commits the writes nobody waits for. The one such write is a read's
//!   mapping-log record ([`Direct::write_soon`]): it is committed with the next group.
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

/// Most groups a caller commits on its own thread (its own, then writes that queued meanwhile)
/// before it leaves the rest to the writer thread: its own answer waits for them.
const MAX_INLINE_GROUPS: usize = 2;

/// Most jobs queued before an unawaited write waits like any other: a writer that cannot keep up
/// (a slow disk, another process holding the file's write lock) then slows the reads down
/// instead of growing the queue without bound.
const MAX_BACKLOG: usize = 4096;

/// Settings of every connection to the file, the sqlx pool's included: WAL, so that readers run
/// beside the one writer; and a WAL that has started over is cut back to 320 MiB, above
/// [`WAL_RESTART_FRAMES`], so that under sustained writes the file is reused in place instead of
/// being truncated and grown again at each restart.
const SHARED_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; \
                              PRAGMA synchronous = NORMAL; PRAGMA journal_size_limit = 335544320;";

/// The direct path's connections never checkpoint inside a commit: the writer's commits may run on a thread that
/// serves requests, and the checkpoint thread (see [`checkpoint`]) keeps the WAL short instead.
const DIRECT_PRAGMAS: &str = "PRAGMA wal_autocheckpoint = 0;";

/// The sqlx pool's settings (see `Store::connect`): its writers wait for the write lock instead of
/// failing with SQLITE_BUSY, and checkpoint inside a commit only as a backstop, at twice the
/// checkpoint thread's restart threshold.
pub(super) fn pool_pragmas() -> String {
    format!(
        "PRAGMA busy_timeout = {}; {SHARED_PRAGMAS} PRAGMA wal_autocheckpoint = {};",
        BUSY_TIMEOUT.as_millis(),
        2 * WAL_RESTART_FRAMES
    )
}

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the checkpointer copies the WAL back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// WAL frames (pages of about 4 KiB) past which the checkpointer restarts the WAL. A passive
/// checkpoint copies pages back but cannot rewind the file while writes keep coming (the next
/// writer rewinds it only if everything was copied when it began), so under sustained writes the
/// WAL would grow without bound.
const WAL_RESTART_FRAMES: i64 = 65_536;

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
    /// The writer thread waits on `ready` for a job, or for the one committing to finish.
    idle: bool,
    /// The writer thread waits on `ready` for company for unawaited writes (see [`LINGER`]).
    lingering: bool,
    /// Somebody (the writer thread or a caller on its own thread) holds the connection: only it
    /// takes jobs from the queue.
    committing: bool,
    closed: bool,
}

impl WriteQueue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // Nothing panics while holding the lock; a poisoned one is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `queued`. `Ok(true)`: it is awaited and nobody commits, so the caller now holds the
    /// connection and must commit (see [`Direct::commit_here`]). A write nobody waits for wakes
    /// the writer thread only if it was idle; one somebody waits for never does (whoever commits
    /// now takes it with the next group).
    fn push(&self, queued: Queued) -> Result<bool, StoreError> {
        let mut state = self.lock();
        if state.closed {
            return Err(StoreError::Unavailable(
                "the SQLite writer has stopped".into(),
            ));
        }
        let awaited = queued.awaited;
        state.awaited += usize::from(awaited);
        state.jobs.push_back(queued);
        if awaited && !state.committing {
            state.committing = true;
            return Ok(true);
        }
        let wake = !awaited && state.idle && !state.committing;
        drop(state);
        if wake {
            self.ready.notify_one();
        }
        Ok(false)
    }

    /// Up to [`MAX_GROUP`] queued jobs, for the holder of the connection.
    fn take_group(&self, group: &mut Vec<Job>) {
        let mut state = self.lock();
        Self::drain_into(&mut state, group);
    }

    fn drain_into(state: &mut QueueState, group: &mut Vec<Job>) {
        let take = state.jobs.len().min(MAX_GROUP);
        for queued in state.jobs.drain(..take) {
            state.awaited -= usize::from(queued.awaited);
            group.push(queued.job);
        }
    }

    /// Whether a caller waits for a queued job.
    fn awaited_queued(&self) -> bool {
        self.lock().awaited > 0
    }

    /// The holder of the connection lets go of it; the writer thread takes over what is queued.
    fn release(&self) {
        let mut state = self.lock();
        state.committing = false;
        let wake = (state.idle && !state.jobs.is_empty())
            || (state.lingering && state.awaited > 0)
            || state.closed;
        drop(state);
        if wake {
            self.ready.notify_one();
        }
    }

    fn is_closed(&self) -> bool {
        self.lock().closed
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }

    /// The writer thread's next group, into `group`: waits for a first job and for nobody else
    /// to be committing, then (when nobody waits for any queued job) up to [`LINGER`] for more.
    /// On `true` the writer thread holds the connection until it calls [`WriteQueue::release`].
    /// `false` once closed and drained.
    fn next_group(&self, group: &mut Vec<Job>) -> bool {
        let mut state = self.lock();
        let mut lingering_since: Option<Instant> = None;
        loop {
            if state.jobs.is_empty() || state.committing {
                if state.closed && state.jobs.is_empty() && !state.committing {
                    return false;
                }
                lingering_since = None;
                state.idle = true;
                state = self
                    .ready
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                state.idle = false;
                continue;
            }
            let since = *lingering_since.get_or_insert_with(Instant::now);
            let left = LINGER.saturating_sub(since.elapsed());
            if state.awaited == 0
                && state.jobs.len() < MAX_GROUP
                && !state.closed
                && !left.is_zero()
            {
                // Meanwhile a write somebody waits for may be committed by its caller, which
                // then takes these along.
                state.lingering = true;
                state = self
                    .ready
                    .wait_timeout(state, left)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
                state.lingering = false;
                continue;
            }
            state.committing = true;
            Self::drain_into(&mut state, group);
            return true;
        }
    }
}

pub(super) struct Direct {
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    writes: Arc<WriteQueue>,
    /// The one connection that writes. Used only by whoever the queue says is committing, so
    /// its lock is never contended.
    writer: Arc<Mutex<Connection>>,
    /// How long the writer's statements wait for the file's write lock.
    busy_timeout: Duration,
}

impl Drop for Direct {
    /// The writer commits what is queued, then its thread ends.
    fn drop(&mut self) {
        self.writes.close();
    }
}

impl Direct {
    /// Opens the writer's connection and starts its thread and the checkpoint thread; both end
    /// when this is dropped (the checkpoint thread at its next pass).
    pub(super) fn open(path: &Path) -> Result<Self, StoreError> {
        let direct = Self::with_writer(path, open_connection(path)?, BUSY_TIMEOUT)?;
        let checkpointer = open_connection(path)?;
        checkpointer.busy_handler(Some(retry_for_about_100_ms))?;
        let alive = Arc::downgrade(&direct.writes);
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(CHECKPOINT_EVERY);
                    if alive.upgrade().is_none_or(|queue| queue.is_closed()) {
                        return;
                    }
                    if let Err(error) = checkpoint(&checkpointer, WAL_RESTART_FRAMES) {
                        tracing::debug!(%error, "background WAL checkpoint");
                    }
                }
            })
            .map_err(|error| {
                StoreError::Unavailable(format!("cannot start the checkpointer: {error}"))
            })?;
        Ok(direct)
    }

    /// `writer` waits `busy_timeout` for the file's write lock (set on it by the caller).
    fn with_writer(
        path: &Path,
        writer: Connection,
        busy_timeout: Duration,
    ) -> Result<Self, StoreError> {
        let writer = Arc::new(Mutex::new(writer));
        let writes = Arc::new(WriteQueue::default());
        let (jobs, connection) = (writes.clone(), writer.clone());
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || write_in_groups(&connection, &jobs))
            .map_err(|error| {
                StoreError::Unavailable(format!("cannot start the writer: {error}"))
            })?;
        Ok(Self {
            path: path.to_owned(),
            readers: Mutex::new(Vec::new()),
            writes,
            writer,
            busy_timeout,
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

    /// Runs `write` in the next group's transaction (on this thread when nobody else is
    /// committing, see [`Direct::commit_here`]) and returns its result once that transaction has
    /// committed (or the error that stopped it).
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
        if self.writes.push(Queued { job, awaited: true })? {
            self.commit_here();
        }
        answered.await.map_err(|_| stopped())?
    }

    /// The caller holds the connection (see [`WriteQueue::push`]): it commits its own group here
    /// (and, up to [`MAX_INLINE_GROUPS`] in all, the awaited writes queued meanwhile), unless the
    /// file's write lock is taken (another process, the sqlx pool): a thread serving requests
    /// must not wait for it, so the writer thread, which may, takes over.
    fn commit_here(&self) {
        let connection = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let mut group = Vec::with_capacity(MAX_GROUP);
        for _ in 0..MAX_INLINE_GROUPS {
            if !begin_without_waiting(&connection, self.busy_timeout) {
                break;
            }
            self.writes.take_group(&mut group);
            run_group(&connection, Ok(()), group.drain(..));
            if !self.writes.awaited_queued() {
                break;
            }
        }
        drop(connection);
        self.writes.release();
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
        self.writes
            .push(Queued {
                job,
                awaited: false,
            })
            .map(|_| ())
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
    connection.execute_batch(SHARED_PRAGMAS)?;
    connection.execute_batch(DIRECT_PRAGMAS)?;
    Ok(connection)
}

/// SQLite's commits checkpoint the WAL once it is long enough, and with `synchronous = NORMAL`
/// that checkpoint is the only write that waits for the disk (three fsyncs): the request whose
/// commit crosses the threshold would pay for it while every other write queues behind it. So the
/// writer never checkpoints (`DIRECT_PRAGMAS`) and a thread does it beside the writers: passively, which
/// holds nobody back, and, once the WAL holds `restart_at` frames, with a restart, which holds
/// writers back while the frames written since the passive step are copied. Returns the frames
/// the WAL held before.
fn checkpoint(connection: &Connection, restart_at: i64) -> Result<i64, StoreError> {
    // The answer is (busy, frames in the WAL, frames copied back).
    let frames: i64 =
        connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))?;
    if frames >= restart_at {
        let started = Instant::now();
        let busy: i64 =
            connection.query_row("PRAGMA wal_checkpoint(RESTART)", [], |row| row.get(0))?;
        // Busy: it gave up waiting for the write lock or for a reader; the next pass tries again.
        let outcome = if busy == 0 {
            "wal_restart"
        } else {
            "wal_restart_given_up"
        };
        crate::metrics::record_store(outcome, started.elapsed());
    }
    Ok(frames)
}

/// The checkpointer's busy handler. A restart first waits for the write lock, then, holding it,
/// for the readers still inside the WAL: every write waits as long. Readers are short, so it looks
/// every millisecond (SQLite's own handler backs off to 100 ms between looks); a long one (a drift
/// report, a large listing) makes it give up after about 100 ms and try again at the next pass.
fn retry_for_about_100_ms(tries: i32) -> bool {
    if tries >= 100 {
        return false;
    }
    std::thread::sleep(Duration::from_millis(1));
    true
}

/// `BEGIN IMMEDIATE` if the file's write lock is free now; `false` (and no transaction) if not.
fn begin_without_waiting(connection: &Connection, busy_timeout: Duration) -> bool {
    if connection.busy_timeout(Duration::ZERO).is_err() {
        return false;
    }
    let began = connection.execute_batch("BEGIN IMMEDIATE").is_ok();
    // The transaction's own statements, and the writer thread's, wait as before.
    if connection.busy_timeout(busy_timeout).is_err() && began {
        let _ = connection.execute_batch("ROLLBACK");
        return false;
    }
    began
}

/// The writer thread: one transaction per group of whatever writes are waiting.
fn write_in_groups(connection: &Mutex<Connection>, jobs: &WriteQueue) {
    let mut group: Vec<Job> = Vec::with_capacity(MAX_GROUP);
    while jobs.next_group(&mut group) {
        {
            let connection = connection.lock().unwrap_or_else(PoisonError::into_inner);
            let began = connection
                .execute_batch("BEGIN IMMEDIATE")
                .map_err(StoreError::from);
            run_group(&connection, began, group.drain(..));
        }
        jobs.release();
    }
}

/// Runs `group` in the transaction `began` opened (or answers each job with why there is none),
/// then commits it.
fn run_group(
    connection: &Connection,
    began: Result<(), StoreError>,
    group: impl Iterator<Item = Job>,
) {
    let mut replies: Vec<Reply> = Vec::new();
    let mut stopped: Option<StoreError> = began.err();
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
        // Hold the writer thread inside a job (one nobody waits for: the writer thread runs it)
        // until released.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let entered = Arc::new(std::sync::atomic::AtomicBool::new(false));
        {
            let entered = entered.clone();
            direct
                .write_unawaited(move |_| {
                    entered.store(true, std::sync::atomic::Ordering::SeqCst);
                    held.recv()
                        .map_err(|_| StoreError::Database("released".into()))
                })
                .expect("queued");
        }
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

    /// The name of the thread a write ran on.
    async fn thread_of_write(direct: &Direct) -> Option<String> {
        direct
            .write(|_| Ok(std::thread::current().name().map(str::to_owned)))
            .await
            .expect("write")
    }

    #[tokio::test]
    async fn an_awaited_write_commits_on_its_callers_thread_when_nobody_else_commits() {
        let (_dir, direct) = store_file();
        create_table(&direct).await;
        let caller = std::thread::current().name().map(str::to_owned);
        assert_ne!(caller.as_deref(), Some("sqlite-writer"));
        assert_eq!(thread_of_write(&direct).await, caller);
        // And it is stored when the call returns.
        assert_eq!(insert(&direct, "a", 1).await.ok(), Some(1));
        assert_eq!(count(&direct), 1);
    }

    #[tokio::test]
    async fn an_awaited_write_waits_on_the_writer_thread_while_another_connection_writes() {
        let (dir, direct) = store_file();
        let direct = Arc::new(direct);
        create_table(&direct).await;
        let blocker = Connection::open(dir.path().join("store.db")).expect("open");
        blocker.execute_batch("BEGIN IMMEDIATE").expect("lock");
        let write = {
            let direct = direct.clone();
            tokio::spawn(async move {
                let thread = thread_of_write(&direct).await;
                (thread, insert(&direct, "after", 1).await)
            })
        };
        // Bounded wait until the writer thread holds the job (the queue is empty again).
        let mut handed_over = false;
        for _ in 0..1000 {
            tokio::task::yield_now().await;
            let state = direct.writes.lock();
            if state.jobs.is_empty() && state.committing {
                handed_over = true;
                break;
            }
            drop(state);
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(handed_over, "the write was not handed to the writer thread");
        // The caller's thread was not held: this test runs on it.
        blocker.execute_batch("ROLLBACK").expect("unlock");
        let (thread, inserted) = write.await.expect("task");
        assert_eq!(thread.as_deref(), Some("sqlite-writer"));
        assert_eq!(inserted.ok(), Some(1));
        assert_eq!(count(&direct), 1);
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
        let impatient = Direct::with_writer(
            &dir.path().join("store.db"),
            quick,
            Duration::from_millis(50),
        )
        .expect("writer");
        let result = insert(&impatient, "x", 1).await;
        assert!(
            matches!(result, Err(StoreError::Unavailable(_))),
            "{result:?}"
        );
        blocker.execute_batch("ROLLBACK").expect("unlock");
        assert_eq!(count(&direct), 0);
        assert_eq!(insert(&impatient, "x", 1).await.ok(), Some(1));
    }

    /// Frames in the WAL, from a passive checkpoint (which also copies them back).
    fn wal_frames(connection: &Connection) -> i64 {
        checkpoint(connection, i64::MAX).expect("checkpoint")
    }

    fn append(connection: &Connection) {
        connection
            .execute("INSERT INTO t (v) VALUES (1)", [])
            .expect("insert");
    }

    #[test]
    fn the_writer_never_checkpoints_and_a_checkpoint_past_the_threshold_starts_the_wal_over() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store.db");
        let writer = open_connection(&path).expect("writer");
        writer
            .execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
            .expect("table");
        // SQLite's default would have checkpointed (and so started the WAL over) at 1,000 frames.
        for _ in 0..1_200 {
            append(&writer);
        }
        let observer = open_connection(&path).expect("observer");

        // Below the threshold: passive only. A write committed while it ran is not copied, so
        // the next writer cannot start the WAL over: it keeps growing.
        writer.execute_batch("BEGIN IMMEDIATE").expect("begin");
        append(&writer);
        let frames = wal_frames(&observer);
        assert!(frames >= 1_200, "the writer checkpointed: {frames} frames");
        writer.execute_batch("COMMIT").expect("commit");
        append(&writer);
        let grown = wal_frames(&observer);
        assert!(grown > frames, "{grown} frames after {frames}");

        // Past the threshold: the restart waits for the write in flight, copies it and starts
        // the WAL over, so the next write lands at its start.
        append(&writer); // starts the WAL over (everything was copied), then one not copied
        append(&writer);
        writer.execute_batch("BEGIN IMMEDIATE").expect("begin");
        append(&writer);
        let checkpointer = std::thread::spawn(move || {
            // Patient enough for this thread's COMMIT, however late it is scheduled.
            observer
                .busy_timeout(Duration::from_secs(10))
                .expect("busy timeout");
            checkpoint(&observer, 1).expect("checkpoint");
            observer
        });
        // Gives the checkpointer time to reach the write lock; the outcome is the same if not.
        std::thread::sleep(Duration::from_millis(100));
        writer.execute_batch("COMMIT").expect("commit");
        let observer = checkpointer.join().expect("checkpointer");
        append(&writer);
        let restarted = wal_frames(&observer);
        assert!(
            restarted <= 2,
            "{restarted} frames: the WAL did not start over"
        );
    }
}
