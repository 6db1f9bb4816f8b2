//! Safe deprovisioning: held operations (the circuit breaker's queue) and the journal of lock and
//! validity changes applied to C4C, with the values before (for undo).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, now_millis, returned_row};

/// A deprovisioning to hold.
#[derive(Debug, Clone, PartialEq)]
pub struct NewHeld {
    pub client: Option<String>,
    pub request_id: String,
    pub resource_type: String,
    pub resource_id: String,
    pub object_id: Option<String>,
    pub kind: String,
    pub payload: serde_json::Value,
    pub base_version: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HeldOperation {
    pub id: i64,
    pub client: Option<String>,
    pub request_id: String,
    pub resource_type: String,
    pub resource_id: String,
    pub object_id: Option<String>,
    pub kind: String,
    pub payload: serde_json::Value,
    pub base_version: i64,
    pub status: String,
    pub requested_at: i64,
    pub decided_at: Option<i64>,
    pub decided_by: Option<String>,
    pub error: Option<String>,
}

const HELD_COLUMNS: &str = "id, client, request_id, resource_type, resource_id, object_id, kind, \
                            payload, base_version, status, requested_at, decided_at, decided_by, \
                            error";

fn held_from_row(row: &AnyRow) -> Result<HeldOperation, StoreError> {
    let payload: String = row.try_get("payload")?;
    Ok(HeldOperation {
        id: row.try_get("id")?,
        client: row.try_get("client")?,
        request_id: row.try_get("request_id")?,
        resource_type: row.try_get("resource_type")?,
        resource_id: row.try_get("resource_id")?,
        object_id: row.try_get("object_id")?,
        kind: row.try_get("kind")?,
        payload: serde_json::from_str(&payload)
            .map_err(|error| StoreError::Corrupt(error.to_string()))?,
        base_version: row.try_get("base_version")?,
        status: row.try_get("status")?,
        requested_at: row.try_get("requested_at")?,
        decided_at: row.try_get("decided_at")?,
        decided_by: row.try_get("decided_by")?,
        error: row.try_get("error")?,
    })
}

/// A lock / validity change the bridge applied.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewChange {
    pub client: Option<String>,
    pub actor: String,
    pub request_id: Option<String>,
    pub resource_id: Option<String>,
    pub object_id: String,
    pub kind: String,
    pub previous: serde_json::Value,
    pub applied: serde_json::Value,
    pub approved_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AppliedChange {
    pub id: i64,
    pub at: i64,
    pub change: NewChange,
    pub undone_at: Option<i64>,
    pub undone_by: Option<String>,
}

const CHANGE_COLUMNS: &str = "id, at, client, actor, request_id, resource_id, object_id, kind, \
                              previous, applied, approved_by, undone_at, undone_by";

fn change_from_row(row: &AnyRow) -> Result<AppliedChange, StoreError> {
    let json = |name: &str| -> Result<serde_json::Value, StoreError> {
        let text: String = row.try_get(name)?;
        serde_json::from_str(&text).map_err(|error| StoreError::Corrupt(error.to_string()))
    };
    Ok(AppliedChange {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        change: NewChange {
            client: row.try_get("client")?,
            actor: row.try_get("actor")?,
            request_id: row.try_get("request_id")?,
            resource_id: row.try_get("resource_id")?,
            object_id: row.try_get("object_id")?,
            kind: row.try_get("kind")?,
            previous: json("previous")?,
            applied: json("applied")?,
            approved_by: row.try_get("approved_by")?,
        },
        undone_at: row.try_get("undone_at")?,
        undone_by: row.try_get("undone_by")?,
    })
}

/// Clients are compared with NULL folded to '' (a bound NULL has no type on PostgreSQL).
fn client_key(client: Option<&str>) -> String {
    client.unwrap_or_default().to_owned()
}

impl Store {
    /// Holds a deprovisioning; when one is already held for the resource, its payload is
    /// replaced (a retried or newer request) and its first request time kept.
    pub async fn hold_operation(&self, new: &NewHeld) -> Result<HeldOperation, StoreError> {
        for _ in 0..3 {
            let sql = format!(
                "UPDATE held_operations SET request_id = $1, kind = $2, payload = $3, \
                 base_version = $4, object_id = $5 \
                 WHERE resource_type = $6 AND resource_id = $7 AND status = 'held' \
                 RETURNING {HELD_COLUMNS}"
            );
            let updated = sqlx::query(&sql)
                .bind(new.request_id.clone())
                .bind(new.kind.clone())
                .bind(new.payload.to_string())
                .bind(new.base_version)
                .bind(new.object_id.clone())
                .bind(new.resource_type.clone())
                .bind(new.resource_id.clone())
                .fetch_all(self.pool())
                .await?
                .into_iter()
                .next();
            if let Some(row) = updated {
                return held_from_row(&row);
            }
            let sql = format!(
                "INSERT INTO held_operations (client, request_id, resource_type, resource_id, \
                 object_id, kind, payload, base_version, status, requested_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'held', $9) RETURNING {HELD_COLUMNS}"
            );
            let inserted = sqlx::query(&sql)
                .bind(new.client.clone())
                .bind(new.request_id.clone())
                .bind(new.resource_type.clone())
                .bind(new.resource_id.clone())
                .bind(new.object_id.clone())
                .bind(new.kind.clone())
                .bind(new.payload.to_string())
                .bind(new.base_version)
                .bind(now_millis())
                .fetch_all(self.pool())
                .await
                .map_err(StoreError::from)
                .and_then(returned_row);
            match inserted {
                Ok(row) => return held_from_row(&row),
                // Another request held the same resource meanwhile: update that one.
                Err(StoreError::Conflict(_)) => continue,
                Err(other) => return Err(other),
            }
        }
        Err(StoreError::Conflict(format!(
            "cannot hold an operation for {}",
            new.resource_id
        )))
    }

    /// Held operations, oldest first; `status` None means every status.
    pub async fn list_held(
        &self,
        status: Option<&str>,
        client: Option<&str>,
    ) -> Result<Vec<HeldOperation>, StoreError> {
        let sql = format!(
            "SELECT {HELD_COLUMNS} FROM held_operations \
             WHERE ($1 = '' OR status = $1) AND ($2 = '' OR COALESCE(client, '') = $2) \
             ORDER BY id"
        );
        let rows = sqlx::query(&sql)
            .bind(status.unwrap_or_default().to_owned())
            .bind(client.unwrap_or_default().to_owned())
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(held_from_row).collect()
    }

    pub async fn get_held(&self, id: i64) -> Result<Option<HeldOperation>, StoreError> {
        let sql = format!("SELECT {HELD_COLUMNS} FROM held_operations WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(held_from_row).transpose()
    }

    /// Records the decision on a held operation; false when it was no longer held (someone
    /// else decided first).
    pub async fn decide_held(
        &self,
        id: i64,
        status: &str,
        by: &str,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE held_operations SET status = $1, decided_at = $2, decided_by = $3, error = $4 \
             WHERE id = $5 AND status = 'held'",
        )
        .bind(status.to_owned())
        .bind(now_millis())
        .bind(by.to_owned())
        .bind(error.map(str::to_owned))
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a deprovisioning admitted for `client` and not yet journaled, under `id`.
    pub async fn add_in_flight(&self, id: &str, client: Option<&str>) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO safety_in_flight (id, client, admitted_at) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(client_key(client))
            .bind(now_millis())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Deprovisionings admitted for a client, by any replica, since `since` and not yet
    /// journaled (or failed).
    pub async fn count_in_flight(
        &self,
        client: Option<&str>,
        since: i64,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM safety_in_flight WHERE client = $1 AND admitted_at >= $2",
        )
        .bind(client_key(client))
        .bind(since)
        .fetch_one(self.pool())
        .await?)
    }

    /// Forgets the in-flight deprovisioning `id`, and any admitted before `expired_before` (left
    /// behind by a replica that stopped).
    pub async fn remove_in_flight(&self, id: &str, expired_before: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM safety_in_flight WHERE id = $1 OR admitted_at < $2")
            .bind(id)
            .bind(expired_before)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Operations still held for a client.
    pub async fn count_held(&self, client: Option<&str>) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM held_operations WHERE status = 'held' \
             AND COALESCE(client, '') = $1",
        )
        .bind(client_key(client))
        .fetch_one(self.pool())
        .await?)
    }

    /// Deactivations and role removals a client made apply since `since`, operator-approved
    /// ones excepted.
    pub async fn count_deactivations_since(
        &self,
        client: Option<&str>,
        since: i64,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM applied_changes WHERE kind IN ('deactivate', 'role_removal') \
             AND approved_by IS NULL AND COALESCE(client, '') = $1 AND at >= $2",
        )
        .bind(client_key(client))
        .bind(since)
        .fetch_one(self.pool())
        .await?)
    }

    /// Users linked to an employee: the live ones and those deleted since `since` (so that a
    /// burst of deletions does not shrink the base it is measured against).
    pub async fn count_linked_users(&self, since: i64) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM resources WHERE resource_type = 'User' \
             AND object_id IS NOT NULL AND (tombstone = 0 OR updated_at >= $1)",
        )
        .bind(since)
        .fetch_one(self.pool())
        .await?)
    }

    pub async fn record_change(&self, change: &NewChange) -> Result<i64, StoreError> {
        sqlx::query_scalar(
            "INSERT INTO applied_changes (at, client, actor, request_id, resource_id, object_id, \
             kind, previous, applied, approved_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(now_millis())
        .bind(change.client.clone())
        .bind(change.actor.clone())
        .bind(change.request_id.clone())
        .bind(change.resource_id.clone())
        .bind(change.object_id.clone())
        .bind(change.kind.clone())
        .bind(change.previous.to_string())
        .bind(change.applied.to_string())
        .bind(change.approved_by.clone())
        .fetch_all(self.pool())
        .await
        .map_err(StoreError::from)
        .and_then(returned_row)
    }

    /// Changes not undone yet in `[since, until)`, of one client when given, oldest first;
    /// undo records themselves and role removals (not undone by `undo`) excepted. At most `limit`, after id `after_id` (paging).
    pub async fn changes_to_undo(
        &self,
        since: i64,
        until: i64,
        client: Option<&str>,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<AppliedChange>, StoreError> {
        let sql = format!(
            "SELECT {CHANGE_COLUMNS} FROM applied_changes WHERE at >= $1 AND at < $2 \
             AND ($3 = '' OR COALESCE(client, '') = $3) AND kind NOT IN ('undo', 'role_removal') \
             AND undone_at IS NULL AND id > $4 ORDER BY id LIMIT $5"
        );
        let rows = sqlx::query(&sql)
            .bind(since)
            .bind(until)
            .bind(client.unwrap_or_default().to_owned())
            .bind(after_id)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(change_from_row).collect()
    }

    /// Every journal entry of one employee (oldest first).
    pub async fn changes_of(&self, object_id: &str) -> Result<Vec<AppliedChange>, StoreError> {
        let sql = format!(
            "SELECT {CHANGE_COLUMNS} FROM applied_changes WHERE object_id = $1 ORDER BY id"
        );
        let rows = sqlx::query(&sql)
            .bind(object_id.to_owned())
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(change_from_row).collect()
    }

    pub async fn mark_undone(&self, id: i64, by: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE applied_changes SET undone_at = $1, undone_by = $2 \
             WHERE id = $3 AND undone_at IS NULL",
        )
        .bind(now_millis())
        .bind(by.to_owned())
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
