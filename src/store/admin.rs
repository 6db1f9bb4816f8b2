//! Read queries for the admin views (issue 12): mapping-log search, timelines, links, the
//! outbox list and the operator's outbox decisions.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{LogRecord, OutboxItem, OutboxStatus, ResourceType, Store, StoreError, now_millis};

/// Joins a request id and the suffix of an operator's retry of it: `{id}.retry-{random}`.
pub const RETRY_SEPARATOR: &str = ".retry-";

/// The most records one page of an admin list may hold.
pub const MAX_ADMIN_PAGE: i64 = 200;

/// Mapping-log search; every field narrows. Newest first; `before_id` is the paging cursor.
#[derive(Debug, Clone, Default)]
pub struct AdminLogQuery {
    /// A userName (case-insensitive): records of the resource that has or had it.
    pub user: Option<String>,
    pub resource_id: Option<String>,
    pub employee_id: Option<String>,
    pub object_id: Option<String>,
    pub outcome: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Case-insensitive substring of the path, client, request id or trace.
    pub text: Option<String>,
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// One row of the resource mapping: SCIM id ↔ ObjectID ↔ EmployeeID.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkRow {
    pub id: String,
    pub resource_type: String,
    pub user_name: String,
    pub external_id: Option<String>,
    pub object_id: Option<String>,
    pub employee_id: Option<String>,
    pub active: bool,
    pub tombstone: bool,
    pub updated_at: i64,
}

/// What `find_links` looks for; the first given field wins.
#[derive(Debug, Clone, Default)]
pub struct LinkQuery {
    pub scim_id: Option<String>,
    pub object_id: Option<String>,
    pub employee_id: Option<String>,
    pub user: Option<String>,
}

/// Counts over a window of the mapping log, for the dashboard.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogWindow {
    pub requests: i64,
    pub failed: i64,
    pub refused: i64,
}

/// Why an operator's outbox decision was not applied.
#[derive(Debug, thiserror::Error)]
pub enum OutboxDecisionError {
    #[error("no outbox item {0}")]
    NotFound(i64),
    #[error("outbox item {id} is {status} and cannot be {wanted}")]
    WrongState {
        id: i64,
        status: &'static str,
        wanted: &'static str,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

const LOG_COLUMNS: &str = "id, request_id, at, client, method, path, resource_type, resource_id, \
                           employee_id, object_id, status, outcome, duration_ms, detail";

const LINK_COLUMNS: &str = "id, resource_type, user_name, external_id, object_id, employee_id, \
                            active, tombstone, updated_at";

const OUTBOX_COLUMNS: &str =
    "id, kind, resource_id, payload, status, attempts, next_attempt_at, last_error, created_at";

/// `%` and `_` are literal in a search text.
fn like_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// A bound parameter of a query built from optional criteria.
enum Param {
    Text(String),
    Number(i64),
}

/// Adds a parameter; returns its `$n` number.
fn next(params: &mut Vec<Param>, param: Param) -> usize {
    params.push(param);
    params.len()
}

fn link_from_row(row: &AnyRow) -> Result<LinkRow, StoreError> {
    Ok(LinkRow {
        id: row.try_get("id")?,
        resource_type: row.try_get("resource_type")?,
        user_name: row.try_get("user_name")?,
        external_id: row.try_get("external_id")?,
        object_id: row.try_get("object_id")?,
        employee_id: row.try_get("employee_id")?,
        active: row.try_get::<i64, _>("active")? != 0,
        tombstone: row.try_get::<i64, _>("tombstone")? != 0,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    /// The mapping log, searched by the admin criteria (each one a bound parameter).
    pub async fn search_log(&self, query: &AdminLogQuery) -> Result<Vec<LogRecord>, StoreError> {
        let _timer = self.timer("search_log");
        self.settle_log().await?;
        let mut conditions: Vec<String> = Vec::new();
        let mut params: Vec<Param> = Vec::new();
        for (column, value) in [
            ("resource_id", &query.resource_id),
            ("employee_id", &query.employee_id),
            ("object_id", &query.object_id),
            ("outcome", &query.outcome),
        ] {
            if let Some(value) = value {
                let n = next(&mut params, Param::Text(value.clone()));
                conditions.push(format!("{column} = ${n}"));
            }
        }
        if let Some(user) = &query.user {
            // The resource that has or had the name, or a request whose body named it (a
            // create that failed before any resource existed).
            let n = next(&mut params, Param::Text(super::resources::fold_name(user)));
            let body = serde_json::to_string(&user.to_lowercase()).unwrap_or_default();
            let m = next(
                &mut params,
                Param::Text(like_pattern(&format!("\"username\":{body}"))),
            );
            conditions.push(format!(
                "(resource_id IN (SELECT id FROM resources WHERE user_name_lower = ${n}) \
                 OR LOWER(detail) LIKE ${m} ESCAPE '\\')"
            ));
        }
        if let Some(text) = query.text.as_deref().filter(|text| !text.is_empty()) {
            let n = next(&mut params, Param::Text(like_pattern(text)));
            conditions.push(format!(
                "(LOWER(path) LIKE ${n} ESCAPE '\\' OR LOWER(COALESCE(client, '')) LIKE ${n} ESCAPE '\\' \
                 OR LOWER(request_id) LIKE ${n} ESCAPE '\\' OR LOWER(detail) LIKE ${n} ESCAPE '\\')"
            ));
        }
        for (condition, value) in [
            ("at >= ", query.since),
            ("at <= ", query.until),
            ("id < ", query.before_id),
        ] {
            if let Some(value) = value {
                let n = next(&mut params, Param::Number(value));
                conditions.push(format!("{condition}${n}"));
            }
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let n = next(
            &mut params,
            Param::Number(query.limit.clamp(1, MAX_ADMIN_PAGE)),
        );
        let sql =
            format!("SELECT {LOG_COLUMNS} FROM mapping_log {filter} ORDER BY id DESC LIMIT ${n}");
        let mut statement = sqlx::query(&sql);
        for param in params {
            statement = match param {
                Param::Text(text) => statement.bind(text),
                Param::Number(number) => statement.bind(number),
            };
        }
        let rows = statement.fetch_all(self.pool()).await?;
        rows.iter().map(super::log::from_row).collect()
    }

    /// Every record of one request id, oldest first (a /Bulk request writes several).
    pub async fn log_of_request(&self, request_id: &str) -> Result<Vec<LogRecord>, StoreError> {
        self.settle_log().await?;
        let sql =
            format!("SELECT {LOG_COLUMNS} FROM mapping_log WHERE request_id = $1 ORDER BY id");
        let rows = sqlx::query(&sql)
            .bind(request_id.to_owned())
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(super::log::from_row).collect()
    }

    /// The records of the operator retries of `request_id` (ids `{request_id}.retry-…`), oldest
    /// first.
    pub async fn retries_of(&self, request_id: &str) -> Result<Vec<LogRecord>, StoreError> {
        self.settle_log().await?;
        let mut pattern = String::new();
        for c in format!("{request_id}{RETRY_SEPARATOR}").chars() {
            if matches!(c, '%' | '_' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('%');
        let sql = format!(
            "SELECT {LOG_COLUMNS} FROM mapping_log WHERE request_id LIKE $1 ESCAPE '\\' ORDER BY id"
        );
        let rows = sqlx::query(&sql)
            .bind(pattern)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(super::log::from_row).collect()
    }

    /// One mapping-log record by its id.
    pub async fn log_record(&self, id: i64) -> Result<Option<LogRecord>, StoreError> {
        self.settle_log().await?;
        let sql = format!("SELECT {LOG_COLUMNS} FROM mapping_log WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(super::log::from_row).transpose()
    }

    /// Counts of the records since `since` (ms), by outcome.
    pub async fn log_window(&self, since: i64) -> Result<LogWindow, StoreError> {
        self.settle_log().await?;
        let row = sqlx::query(
            "SELECT COUNT(*) AS requests, \
             COALESCE(SUM(CASE WHEN outcome = 'failed' THEN 1 ELSE 0 END), 0) AS failed, \
             COALESCE(SUM(CASE WHEN outcome = 'refused' THEN 1 ELSE 0 END), 0) AS refused \
             FROM mapping_log WHERE at >= $1",
        )
        .bind(since)
        .fetch_one(self.pool())
        .await?;
        Ok(LogWindow {
            requests: row.try_get("requests")?,
            failed: row.try_get("failed")?,
            refused: row.try_get("refused")?,
        })
    }

    /// Links matching the query (several for a shared EmployeeID or a reused userName).
    pub async fn find_links(&self, query: &LinkQuery) -> Result<Vec<LinkRow>, StoreError> {
        let (condition, value) = if let Some(id) = &query.scim_id {
            ("id = $1", id.clone())
        } else if let Some(object_id) = &query.object_id {
            ("object_id = $1", object_id.clone())
        } else if let Some(employee_id) = &query.employee_id {
            ("employee_id = $1", employee_id.clone())
        } else if let Some(user) = &query.user {
            ("user_name_lower = $1", super::resources::fold_name(user))
        } else {
            return Ok(Vec::new());
        };
        let sql = format!(
            "SELECT {LINK_COLUMNS} FROM resources WHERE {condition} ORDER BY seq DESC LIMIT 50"
        );
        let rows = sqlx::query(&sql).bind(value).fetch_all(self.pool()).await?;
        rows.iter().map(link_from_row).collect()
    }

    /// The link of one resource of `resource_type`, tombstones included.
    pub async fn link_of(
        &self,
        resource_type: ResourceType,
        id: &str,
    ) -> Result<Option<LinkRow>, StoreError> {
        let sql =
            format!("SELECT {LINK_COLUMNS} FROM resources WHERE id = $1 AND resource_type = $2");
        let row = sqlx::query(&sql)
            .bind(id.to_owned())
            .bind(resource_type.as_str())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(link_from_row).transpose()
    }

    /// Outbox items, newest first, optionally of one status; `before_id` pages.
    pub async fn list_outbox(
        &self,
        status: Option<OutboxStatus>,
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let sql = format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE ($1 = '' OR status = $1) AND id < $2 \
             ORDER BY id DESC LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(status.map(OutboxStatus::as_str).unwrap_or_default())
            .bind(before_id.unwrap_or(i64::MAX))
            .bind(limit.clamp(1, MAX_ADMIN_PAGE))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(super::outbox::from_row).collect()
    }

    /// An operator's retry: a failed, discarded or waiting item is due now with a fresh attempt
    /// budget. A running or done item is left alone.
    pub async fn retry_outbox(&self, id: i64) -> Result<OutboxItem, OutboxDecisionError> {
        self.decide_outbox(
            id,
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $1, \
             updated_at = $1 WHERE id = $2 AND status IN ('failed', 'discarded', 'pending')",
            "retried",
        )
        .await
    }

    /// An operator's discard: a waiting or failed item is never applied.
    pub async fn discard_outbox(&self, id: i64) -> Result<OutboxItem, OutboxDecisionError> {
        self.decide_outbox(
            id,
            "UPDATE outbox SET status = 'discarded', updated_at = $1 \
             WHERE id = $2 AND status IN ('failed', 'pending')",
            "discarded",
        )
        .await
    }

    async fn decide_outbox(
        &self,
        id: i64,
        sql: &str,
        wanted: &'static str,
    ) -> Result<OutboxItem, OutboxDecisionError> {
        let affected = sqlx::query(sql)
            .bind(now_millis())
            .bind(id)
            .execute(self.pool())
            .await
            .map_err(StoreError::from)?
            .rows_affected();
        let item = self
            .get_outbox(id)
            .await?
            .ok_or(OutboxDecisionError::NotFound(id))?;
        if affected == 0 {
            return Err(OutboxDecisionError::WrongState {
                id,
                status: item.status.as_str(),
                wanted,
            });
        }
        Ok(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_pattern_escapes_wildcards() {
        assert_eq!(like_pattern("Al_i%ce\\"), "%al\\_i\\%ce\\\\%");
    }
}
