//! The retry outbox: C4C writes that a worker must apply, once, even across replicas and crashes.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, StoreKind, now_millis, returned_row};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxStatus {
    Pending,
    Running,
    Done,
    Failed,
    Discarded,
}

impl OutboxStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Running => "running",
            OutboxStatus::Done => "done",
            OutboxStatus::Failed => "failed",
            OutboxStatus::Discarded => "discarded",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        Ok(match text {
            "pending" => OutboxStatus::Pending,
            "running" => OutboxStatus::Running,
            "done" => OutboxStatus::Done,
            "failed" => OutboxStatus::Failed,
            "discarded" => OutboxStatus::Discarded,
            other => return Err(StoreError::Corrupt(format!("outbox status {other:?}"))),
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    pub id: i64,
    pub kind: String,
    pub resource_id: Option<String>,
    pub payload: serde_json::Value,
    pub status: OutboxStatus,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
}

const COLUMNS: &str =
    "id, kind, resource_id, payload, status, attempts, next_attempt_at, last_error, created_at";

pub(super) fn from_row(row: &AnyRow) -> Result<OutboxItem, StoreError> {
    let payload: String = row.try_get("payload")?;
    Ok(OutboxItem {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        resource_id: row.try_get("resource_id")?,
        payload: serde_json::from_str(&payload)
            .map_err(|error| StoreError::Corrupt(error.to_string()))?,
        status: OutboxStatus::parse(&row.try_get::<String, _>("status")?)?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    pub async fn enqueue_outbox(
        &self,
        kind: &str,
        resource_id: Option<&str>,
        payload: &serde_json::Value,
    ) -> Result<i64, StoreError> {
        let _timer = self.timer("enqueue_outbox");
        let now = now_millis();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO outbox (kind, resource_id, payload, status, attempts, next_attempt_at, \
             created_at, updated_at) VALUES ($1, $2, $3, 'pending', 0, $4, $4, $4) RETURNING id",
        )
        .bind(kind.to_owned())
        .bind(resource_id.map(str::to_owned))
        .bind(payload.to_string())
        .bind(now)
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::from)
        .and_then(returned_row)?;
        Ok(id)
    }

    /// Takes up to `limit` due items for `worker` for `lease_ms`. An item whose lease ran out
    /// (its worker died) is due again. No two workers get the same item: PostgreSQL skips rows
    /// another transaction holds; SQLite runs one writer at a time.
    pub async fn claim_outbox(
        &self,
        worker: &str,
        limit: i64,
        lease_ms: i64,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let _timer = self.timer("claim_outbox");
        let now = now_millis();
        // On SQLite the UPDATE below takes the file's one write lock even when nothing is due,
        // as it is each time the worker looks (every second when idle): the request path's
        // commits then wait for it. A read, which never waits for the writer, looks first.
        if self.kind() == StoreKind::Sqlite {
            let due: i64 = sqlx::query_scalar(&format!(
                "SELECT EXISTS (SELECT 1 FROM outbox WHERE {})",
                due_at("$1")
            ))
            .bind(now)
            .fetch_one(self.pool())
            .await?;
            if due == 0 {
                return Ok(Vec::new());
            }
        }
        let lock_clause = match self.kind() {
            StoreKind::Postgres => "FOR UPDATE SKIP LOCKED",
            StoreKind::Sqlite => "",
        };
        let sql = format!(
            "UPDATE outbox SET status = 'running', locked_by = $1, locked_until = $2, \
             attempts = attempts + 1, updated_at = $3 \
             WHERE id IN (SELECT id FROM outbox WHERE {due} \
             ORDER BY id LIMIT $4 {lock_clause}) RETURNING {COLUMNS}",
            due = due_at("$3")
        );
        let rows = sqlx::query(&sql)
            .bind(worker.to_owned())
            .bind(now + lease_ms)
            .bind(now)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        let mut items = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
        items.sort_by_key(|item| item.id);
        Ok(items)
    }

    /// Ends an item: done, or failed for good, or back to pending with a later attempt time.
    pub async fn finish_outbox(
        &self,
        id: i64,
        status: OutboxStatus,
        error: Option<&str>,
        retry_at: Option<i64>,
    ) -> Result<(), StoreError> {
        let _timer = self.timer("finish_outbox");
        let now = now_millis();
        let (status, next) = match retry_at {
            Some(at) => (OutboxStatus::Pending, at),
            None => (status, now),
        };
        let affected = sqlx::query(
            "UPDATE outbox SET status = $1, last_error = $2, next_attempt_at = $3, \
             locked_by = NULL, locked_until = NULL, updated_at = $4 WHERE id = $5",
        )
        .bind(status.as_str())
        .bind(error.map(str::to_owned))
        .bind(next)
        .bind(now)
        .bind(id)
        .execute(self.pool())
        .await?
        .rows_affected();
        if affected == 0 {
            return Err(StoreError::NotFound(format!("outbox item {id}")));
        }
        Ok(())
    }

    /// Items not yet done, and the creation time of the oldest, for metrics and readiness.
    pub async fn outbox_depth(&self) -> Result<(i64, Option<i64>), StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS depth, MIN(created_at) AS oldest FROM outbox \
             WHERE status IN ('pending', 'running')",
        )
        .fetch_one(self.pool())
        .await?;
        Ok((row.try_get("depth")?, row.try_get("oldest")?))
    }

    pub async fn get_outbox(&self, id: i64) -> Result<Option<OutboxItem>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM outbox WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(from_row).transpose()
    }
}

/// The outbox items due at the time bound to `now`: pending and due, or running with a lease
/// that ran out (their worker died).
fn due_at(now: &str) -> String {
    format!(
        "((status = 'pending' AND next_attempt_at <= {now}) \
         OR (status = 'running' AND locked_until < {now}))"
    )
}
