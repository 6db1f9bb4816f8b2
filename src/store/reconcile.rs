//! Drift reconciliation: linked users in ObjectID order (the reconciler merges them with C4C's
//! employees read in the same order), runs and their findings, and the delta watermark.

use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use super::resources::{COLUMNS, fold_name, from_row};
use super::{ResourceRow, Store, StoreError, now_millis};

/// Values per `IN (…)` list: far below SQLite's parameter limit.
const CHUNK: usize = 500;

/// A difference to store.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct NewFinding {
    /// changed_in_c4c, missing_in_c4c, linked_twice, unlinked_match.
    pub kind: String,
    pub resource_id: Option<String>,
    pub object_id: Option<String>,
    pub employee_id: Option<String>,
    pub field: Option<String>,
    pub c4c_value: Option<serde_json::Value>,
    pub expected_value: Option<serde_json::Value>,
    /// reported, restored, would_restore, restore_failed.
    pub action: String,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FindingRow {
    pub id: i64,
    pub run_id: i64,
    #[serde(flatten)]
    pub finding: NewFinding,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReconcileRun {
    pub id: i64,
    pub mode: String,
    pub dry_run: bool,
    pub trigger_source: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub status: String,
    pub summary: serde_json::Value,
    pub error: Option<String>,
}

/// A business-role membership the bridge made, with the member's employee.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleMembership {
    pub group_id: Uuid,
    pub user_id: Uuid,
    pub object_id: String,
    pub employee_id: Option<String>,
    pub assignment_object_id: Option<String>,
}

const RUN_COLUMNS: &str =
    "id, mode, dry_run, trigger_source, started_at, finished_at, status, summary, error";
const FINDING_COLUMNS: &str = "id, run_id, kind, resource_id, object_id, employee_id, field, \
                               c4c_value, expected_value, action, detail";

fn json_column(row: &AnyRow, name: &str) -> Result<Option<serde_json::Value>, StoreError> {
    let text: Option<String> = row.try_get(name)?;
    text.map(|text| {
        serde_json::from_str(&text).map_err(|error| StoreError::Corrupt(error.to_string()))
    })
    .transpose()
}

fn run_from_row(row: &AnyRow) -> Result<ReconcileRun, StoreError> {
    Ok(ReconcileRun {
        id: row.try_get("id")?,
        mode: row.try_get("mode")?,
        dry_run: row.try_get::<i64, _>("dry_run")? != 0,
        trigger_source: row.try_get("trigger_source")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        status: row.try_get("status")?,
        summary: json_column(row, "summary")?.unwrap_or(serde_json::Value::Null),
        error: row.try_get("error")?,
    })
}

fn finding_from_row(row: &AnyRow) -> Result<FindingRow, StoreError> {
    Ok(FindingRow {
        id: row.try_get("id")?,
        run_id: row.try_get("run_id")?,
        finding: NewFinding {
            kind: row.try_get("kind")?,
            resource_id: row.try_get("resource_id")?,
            object_id: row.try_get("object_id")?,
            employee_id: row.try_get("employee_id")?,
            field: row.try_get("field")?,
            c4c_value: json_column(row, "c4c_value")?,
            expected_value: json_column(row, "expected_value")?,
            action: row.try_get("action")?,
            detail: row.try_get("detail")?,
        },
    })
}

fn placeholders(from: usize, count: usize) -> String {
    (0..count)
        .map(|index| format!("${}", from + index))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Users linked to an ObjectID (tombstones included: the bridge locked them), in ObjectID
    /// order after `after`, at most `limit`: keyset paging, so memory stays at one page.
    pub async fn linked_users_after(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ResourceRow>, StoreError> {
        let _timer = self.timer("linked_users_after");
        let sql = format!(
            "SELECT {COLUMNS} FROM resources WHERE resource_type = 'User' \
             AND object_id IS NOT NULL AND object_id > $1 ORDER BY object_id, seq LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(after.unwrap_or_default().to_owned())
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// Users (tombstones included) linked to any of these ObjectIDs.
    pub async fn users_by_object_ids(
        &self,
        object_ids: &[String],
    ) -> Result<Vec<ResourceRow>, StoreError> {
        let _timer = self.timer("users_by_object_ids");
        let mut out = Vec::new();
        for chunk in object_ids.chunks(CHUNK) {
            let sql = format!(
                "SELECT {COLUMNS} FROM resources WHERE resource_type = 'User' \
                 AND object_id IN ({}) ORDER BY object_id, seq",
                placeholders(1, chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(id.clone());
            }
            for row in query.fetch_all(self.pool()).await? {
                out.push(from_row(&row)?);
            }
        }
        Ok(out)
    }

    /// Live users whose EmployeeID is among `employee_ids` or whose userName (folded) is among
    /// `user_names`: the SCIM users an unlinked employee may belong to.
    pub async fn live_users_by_keys(
        &self,
        employee_ids: &[String],
        user_names: &[String],
    ) -> Result<Vec<ResourceRow>, StoreError> {
        let _timer = self.timer("live_users_by_keys");
        let mut out: Vec<ResourceRow> = Vec::new();
        let mut lookups: Vec<(&str, Vec<String>)> = vec![("employee_id", employee_ids.to_vec())];
        lookups.push((
            "user_name_lower",
            user_names.iter().map(|name| fold_name(name)).collect(),
        ));
        for (column, values) in lookups {
            for chunk in values.chunks(CHUNK) {
                let sql = format!(
                    "SELECT {COLUMNS} FROM resources WHERE resource_type = 'User' \
                     AND tombstone = 0 AND {column} IN ({})",
                    placeholders(1, chunk.len())
                );
                let mut query = sqlx::query(&sql);
                for value in chunk {
                    query = query.bind(value.clone());
                }
                for row in query.fetch_all(self.pool()).await? {
                    let row = from_row(&row)?;
                    if !out.iter().any(|known| known.id == row.id) {
                        out.push(row);
                    }
                }
            }
        }
        Ok(out)
    }

    /// The business roles (`role:ID` targets) the bridge assigned to live users.
    pub async fn managed_role_targets(&self) -> Result<Vec<String>, StoreError> {
        let _timer = self.timer("managed_role_targets");
        let targets: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT target FROM group_members \
             WHERE managed = 1 AND target LIKE 'role:%' ORDER BY target",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(targets)
    }

    /// The memberships carried by one business-role target, of live linked users.
    pub async fn managed_role_members(
        &self,
        target: &str,
    ) -> Result<Vec<RoleMembership>, StoreError> {
        let _timer = self.timer("managed_role_members");
        let rows = sqlx::query(
            "SELECT m.group_id, m.user_id, r.object_id, r.employee_id, m.assignment_object_id \
             FROM group_members m JOIN resources r ON r.id = m.user_id \
             WHERE m.managed = 1 AND m.target = $1 AND r.resource_type = 'User' \
             AND r.tombstone = 0 AND r.object_id IS NOT NULL ORDER BY r.object_id",
        )
        .bind(target.to_owned())
        .fetch_all(self.pool())
        .await?;
        let uuid = |text: String| {
            Uuid::parse_str(&text).map_err(|error| StoreError::Corrupt(error.to_string()))
        };
        rows.iter()
            .map(|row| {
                Ok(RoleMembership {
                    group_id: uuid(row.try_get("group_id")?)?,
                    user_id: uuid(row.try_get("user_id")?)?,
                    object_id: row.try_get("object_id")?,
                    employee_id: row.try_get("employee_id")?,
                    assignment_object_id: row.try_get("assignment_object_id")?,
                })
            })
            .collect()
    }

    /// Records the C4C assignment that now carries a membership (after a restore).
    pub async fn set_member_assignment(
        &self,
        group_id: Uuid,
        user_id: Uuid,
        assignment_object_id: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE group_members SET assignment_object_id = $1 \
             WHERE group_id = $2 AND user_id = $3",
        )
        .bind(assignment_object_id.to_owned())
        .bind(group_id.to_string())
        .bind(user_id.to_string())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn start_reconcile_run(
        &self,
        mode: &str,
        dry_run: bool,
        trigger_source: &str,
    ) -> Result<i64, StoreError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO reconcile_runs \
             (mode, dry_run, trigger_source, started_at, status, summary) \
             VALUES ($1, $2, $3, $4, 'running', '{}') RETURNING id",
        )
        .bind(mode.to_owned())
        .bind(i64::from(dry_run))
        .bind(trigger_source.to_owned())
        .bind(now_millis())
        .fetch_one(self.pool())
        .await?;
        Ok(id)
    }

    pub async fn finish_reconcile_run(
        &self,
        id: i64,
        status: &str,
        summary: &serde_json::Value,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE reconcile_runs SET finished_at = $1, status = $2, summary = $3, error = $4 \
             WHERE id = $5",
        )
        .bind(now_millis())
        .bind(status.to_owned())
        .bind(summary.to_string())
        .bind(error.map(str::to_owned))
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Appends findings in multi-row statements.
    pub async fn add_findings(
        &self,
        run_id: i64,
        findings: &[NewFinding],
    ) -> Result<(), StoreError> {
        let _timer = self.timer("add_findings");
        let json = |value: &Option<serde_json::Value>| value.as_ref().map(ToString::to_string);
        // 10 parameters a row: 50 rows a statement.
        for chunk in findings.chunks(50) {
            let mut sql = String::from(
                "INSERT INTO reconcile_findings (run_id, kind, resource_id, object_id, \
                 employee_id, field, c4c_value, expected_value, action, detail) VALUES ",
            );
            for index in 0..chunk.len() {
                if index > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("($1, {})", placeholders(2 + index * 9, 9)));
            }
            let mut query = sqlx::query(&sql).bind(run_id);
            for finding in chunk {
                query = query
                    .bind(finding.kind.clone())
                    .bind(finding.resource_id.clone())
                    .bind(finding.object_id.clone())
                    .bind(finding.employee_id.clone())
                    .bind(finding.field.clone())
                    .bind(json(&finding.c4c_value))
                    .bind(json(&finding.expected_value))
                    .bind(finding.action.clone())
                    .bind(finding.detail.clone());
            }
            query.execute(self.pool()).await?;
        }
        Ok(())
    }

    /// The newest run (finished or not), or the newest finished one.
    pub async fn latest_reconcile_run(
        &self,
        finished_only: bool,
    ) -> Result<Option<ReconcileRun>, StoreError> {
        let condition = if finished_only {
            "WHERE finished_at IS NOT NULL"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM reconcile_runs {condition} ORDER BY id DESC LIMIT 1"
        );
        let row = sqlx::query(&sql).fetch_optional(self.pool()).await?;
        row.as_ref().map(run_from_row).transpose()
    }

    pub async fn get_reconcile_run(&self, id: i64) -> Result<Option<ReconcileRun>, StoreError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM reconcile_runs WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(run_from_row).transpose()
    }

    /// A run's findings in the order found, `limit` from after id `after` (paging).
    pub async fn reconcile_findings(
        &self,
        run_id: i64,
        after: i64,
        limit: i64,
    ) -> Result<Vec<FindingRow>, StoreError> {
        let sql = format!(
            "SELECT {FINDING_COLUMNS} FROM reconcile_findings WHERE run_id = $1 AND id > $2 \
             ORDER BY id LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(run_id)
            .bind(after)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(finding_from_row).collect()
    }

    /// Findings of a run per kind.
    pub async fn count_findings(&self, run_id: i64) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, COUNT(*) AS n FROM reconcile_findings WHERE run_id = $1 \
             GROUP BY kind ORDER BY kind",
        )
        .bind(run_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("kind")?, row.try_get("n")?)))
            .collect()
    }

    /// Keeps the newest `keep` runs and their findings; older ones are deleted.
    pub async fn prune_reconcile_runs(&self, keep: i64) -> Result<(), StoreError> {
        let cutoff: Option<i64> =
            sqlx::query_scalar("SELECT id FROM reconcile_runs ORDER BY id DESC LIMIT 1 OFFSET $1")
                .bind(keep.saturating_sub(1).max(0))
                .fetch_optional(self.pool())
                .await?;
        if let Some(cutoff) = cutoff {
            sqlx::query("DELETE FROM reconcile_findings WHERE run_id < $1")
                .bind(cutoff)
                .execute(self.pool())
                .await?;
            sqlx::query("DELETE FROM reconcile_runs WHERE id < $1")
                .bind(cutoff)
                .execute(self.pool())
                .await?;
        }
        Ok(())
    }

    pub async fn reconcile_value(&self, name: &str) -> Result<Option<i64>, StoreError> {
        let value: Option<i64> =
            sqlx::query_scalar("SELECT value FROM reconcile_state WHERE name = $1")
                .bind(name.to_owned())
                .fetch_optional(self.pool())
                .await?;
        Ok(value)
    }

    pub async fn set_reconcile_value(&self, name: &str, value: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO reconcile_state (name, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, \
             updated_at = excluded.updated_at",
        )
        .bind(name.to_owned())
        .bind(value)
        .bind(now_millis())
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
