//! The mapping log: one record per SCIM request, with what the bridge did about it.

use sqlx::Row;
use sqlx::any::AnyRow;

use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use super::{Store, StoreError};

/// A record to append. `detail` holds the request's trace (rules applied, OData calls, bodies,
/// already masked by the caller) as JSON.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogEntry {
    pub request_id: String,
    pub at: i64,
    pub client: Option<String>,
    pub method: String,
    pub path: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub employee_id: Option<String>,
    pub object_id: Option<String>,
    pub status: i64,
    pub outcome: String,
    pub duration_ms: i64,
    pub detail: serde_json::Value,
}

/// A stored record: its id (newer records have larger ids) and what was appended.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    pub id: i64,
    pub entry: LogEntry,
}

/// Search criteria; every field narrows. Results come newest first; `before_id` pages backwards.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub resource_id: Option<String>,
    pub employee_id: Option<String>,
    pub outcome: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub before_id: Option<i64>,
    pub limit: i64,
}

const COLUMNS: &str = "id, request_id, at, client, method, path, resource_type, resource_id, \
                       employee_id, object_id, status, outcome, duration_ms, detail";

pub(super) fn from_row(row: &AnyRow) -> Result<LogRecord, StoreError> {
    let detail: String = row.try_get("detail")?;
    Ok(LogRecord {
        id: row.try_get("id")?,
        entry: LogEntry {
            request_id: row.try_get("request_id")?,
            at: row.try_get("at")?,
            client: row.try_get("client")?,
            method: row.try_get("method")?,
            path: row.try_get("path")?,
            resource_type: row.try_get("resource_type")?,
            resource_id: row.try_get("resource_id")?,
            employee_id: row.try_get("employee_id")?,
            object_id: row.try_get("object_id")?,
            status: row.try_get("status")?,
            outcome: row.try_get("outcome")?,
            duration_ms: row.try_get("duration_ms")?,
            detail: serde_json::from_str(&detail)
                .map_err(|error| StoreError::Corrupt(error.to_string()))?,
        },
    })
}

/// Most records one group commit writes (13 parameters each keeps the statement far below
/// SQLite's and PostgreSQL's parameter limits).
const MAX_GROUP: usize = 128;

type Pending = (LogEntry, oneshot::Sender<Result<(), StoreError>>);

/// Group commit for the mapping log. Every SCIM request appends one record; as one write
/// transaction each, concurrent requests queue on SQLite's single writer and every commit throws
/// away the other connections' page caches. Records that arrive while a commit runs are written
/// together by the next one, in one statement. A caller still waits for its own commit, so a
/// record is stored before the response that it describes is sent.
#[derive(Clone)]
pub(super) struct LogWriter {
    queue: mpsc::Sender<Pending>,
}

impl LogWriter {
    /// Starts the writer task; it ends when the last `Store` clone is dropped.
    pub(super) fn start(pool: AnyPool) -> Self {
        let (queue, mut pending) = mpsc::channel::<Pending>(MAX_GROUP * 8);
        tokio::spawn(async move {
            let mut group: Vec<Pending> = Vec::with_capacity(MAX_GROUP);
            while pending.recv_many(&mut group, MAX_GROUP).await > 0 {
                let result = insert_group(&pool, &group).await;
                for (_, reply) in group.drain(..) {
                    // A caller that went away (its request was cancelled) needs no answer.
                    let _ = reply.send(result.clone());
                }
            }
        });
        Self { queue }
    }

    async fn append(&self, entry: LogEntry) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Unavailable("the mapping-log writer has stopped".into());
        self.queue
            .send((entry, reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn insert_group(pool: &AnyPool, group: &[Pending]) -> Result<(), StoreError> {
    let rows = (0..group.len())
        .map(|row| {
            let first = row * 13;
            let params: Vec<String> = (1..=13).map(|n| format!("${}", first + n)).collect();
            format!("({})", params.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!("{INSERT_INTO} {rows}");
    // Not kept in the connection's statement cache: one prepared statement per group size (up to
    // 128 rows of 13 parameters each) on each connection held tens of MiB after a few minutes.
    let mut statement = sqlx::query(&sql).persistent(false);
    for (entry, _) in group {
        statement = statement
            .bind(entry.request_id.as_str())
            .bind(entry.at)
            .bind(entry.client.as_deref())
            .bind(entry.method.as_str())
            .bind(entry.path.as_str())
            .bind(entry.resource_type.as_deref())
            .bind(entry.resource_id.as_deref())
            .bind(entry.employee_id.as_deref())
            .bind(entry.object_id.as_deref())
            .bind(entry.status)
            .bind(entry.outcome.as_str())
            .bind(entry.duration_ms)
            .bind(entry.detail.to_string());
    }
    // `execute` steps the statement to its end, so a commit that fails (a full disk) is reported.
    statement.execute(pool).await?;
    Ok(())
}

/// The start of every append, on both paths: the 13 columns each record binds, in order.
const INSERT_INTO: &str = "INSERT INTO mapping_log (request_id, at, client, method, path, \
     resource_type, resource_id, employee_id, object_id, status, outcome, duration_ms, detail) \
     VALUES";

static INSERT_ONE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!("{INSERT_INTO} (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)")
});

/// One record, on the direct SQLite path (inside its writer's transaction).
fn insert_one(connection: &rusqlite::Connection, entry: &LogEntry) -> Result<(), StoreError> {
    let mut statement = connection.prepare_cached(&INSERT_ONE)?;
    statement.execute(rusqlite::params![
        entry.request_id,
        entry.at,
        entry.client,
        entry.method,
        entry.path,
        entry.resource_type,
        entry.resource_id,
        entry.employee_id,
        entry.object_id,
        entry.status,
        entry.outcome,
        entry.duration_ms,
        entry.detail.to_string(),
    ])?;
    Ok(())
}

impl Store {
    /// Appends one record; it is stored when this returns (see [`LogWriter`]).
    pub async fn append_log(&self, entry: LogEntry) -> Result<(), StoreError> {
        self.append(entry, true).await
    }

    /// Appends the record of a read (a GET): a read changed nothing, so its record need not be
    /// stored before the answer is sent. On the embedded file it is committed with the next group
    /// of writes, within a few milliseconds, and this does not wait for it (unless the writer is
    /// thousands of jobs behind); a crash in between loses that read's record and nothing else.
    /// Elsewhere it is as [`Store::append_log`].
    pub async fn append_read_log(&self, entry: LogEntry) -> Result<(), StoreError> {
        self.append(entry, false).await
    }

    async fn append(&self, entry: LogEntry, stored_before_return: bool) -> Result<(), StoreError> {
        let _timer = self.timer("append_log");
        let Some(direct) = &self.direct else {
            return self.log_writer.append(entry).await;
        };
        // The direct path groups commits itself (see `direct.rs`).
        let write = move |connection: &rusqlite::Connection| insert_one(connection, &entry);
        if stored_before_return {
            direct.write(write).await
        } else {
            direct.write_soon(write).await
        }
    }

    /// Returns once every record appended before this call is stored, so that a search sees the
    /// reads' records too.
    pub async fn settle_log(&self) -> Result<(), StoreError> {
        match &self.direct {
            Some(direct) => direct.settle().await,
            None => Ok(()),
        }
    }

    pub async fn query_log(&self, query: &LogQuery) -> Result<Vec<LogRecord>, StoreError> {
        let _timer = self.timer("query_log");
        self.settle_log().await?;
        // Every criterion is a bound parameter; only the fixed condition texts are joined.
        let mut conditions: Vec<String> = Vec::new();
        let mut texts: Vec<String> = Vec::new();
        let mut numbers: Vec<(usize, i64)> = Vec::new();
        let mut next = 1;
        for (column, value) in [
            ("resource_id", &query.resource_id),
            ("employee_id", &query.employee_id),
            ("outcome", &query.outcome),
        ] {
            if let Some(value) = value {
                conditions.push(format!("{column} = ${next}"));
                texts.push(value.clone());
                next += 1;
            }
        }
        for (condition, value) in [
            ("at >= ", query.since),
            ("at <= ", query.until),
            ("id < ", query.before_id),
        ] {
            if let Some(value) = value {
                conditions.push(format!("{condition}${next}"));
                numbers.push((next, value));
                next += 1;
            }
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql =
            format!("SELECT {COLUMNS} FROM mapping_log {filter} ORDER BY id DESC LIMIT ${next}");
        let mut statement = sqlx::query(&sql);
        for text in texts {
            statement = statement.bind(text);
        }
        for (_, number) in numbers {
            statement = statement.bind(number);
        }
        statement = statement.bind(query.limit.clamp(1, 1000));
        let rows = statement.fetch_all(self.pool()).await?;
        rows.iter().map(from_row).collect()
    }

    /// Retention: drops records older than `older_than` (ms) and keeps at most `keep` records.
    pub async fn purge_log(&self, older_than: i64, keep: i64) -> Result<u64, StoreError> {
        let by_age = sqlx::query("DELETE FROM mapping_log WHERE at < $1")
            .bind(older_than)
            .execute(self.pool())
            .await?
            .rows_affected();
        let by_size = sqlx::query(
            "DELETE FROM mapping_log WHERE id <= \
             (SELECT id FROM mapping_log ORDER BY id DESC LIMIT 1 OFFSET $1)",
        )
        .bind(keep.max(0))
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(by_age + by_size)
    }
}
