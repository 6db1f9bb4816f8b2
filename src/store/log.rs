//! The mapping log: one record per SCIM request, with what the bridge did about it.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, returned_row};

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

impl Store {
    pub async fn append_log(&self, entry: &LogEntry) -> Result<i64, StoreError> {
        let _timer = self.timer("append_log");
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO mapping_log (request_id, at, client, method, path, resource_type, \
             resource_id, employee_id, object_id, status, outcome, duration_ms, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
        )
        .bind(entry.request_id.clone())
        .bind(entry.at)
        .bind(entry.client.clone())
        .bind(entry.method.clone())
        .bind(entry.path.clone())
        .bind(entry.resource_type.clone())
        .bind(entry.resource_id.clone())
        .bind(entry.employee_id.clone())
        .bind(entry.object_id.clone())
        .bind(entry.status)
        .bind(entry.outcome.clone())
        .bind(entry.duration_ms)
        .bind(entry.detail.to_string())
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::from)
        .and_then(returned_row)?;
        Ok(id)
    }

    pub async fn query_log(&self, query: &LogQuery) -> Result<Vec<LogRecord>, StoreError> {
        let _timer = self.timer("query_log");
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
