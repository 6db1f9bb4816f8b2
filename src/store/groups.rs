//! Group membership rows: which user is in which group, and the C4C assignment that carries it.

use sqlx::Row;
use uuid::Uuid;

use super::{Store, StoreError, now_millis};

/// One member of a group as the bridge keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    pub user_id: Uuid,
    /// What the membership was written to in C4C (`role:SALES_REP`, `org:S1000`); `None` for
    /// an unmapped group.
    pub target: Option<String>,
    /// The C4C assignment's ObjectID (role or org-unit assignment).
    pub assignment_object_id: Option<String>,
    /// False when the assignment existed before the bridge (made by hand in C4C).
    pub managed: bool,
}

/// Rows per multi-row statement: 5 parameters each stays far below both backends' limits.
/// Such statements' text varies with the chunk's size, so they are not kept in the connections'
/// statement caches (`persistent(false)`).
const CHUNK: usize = 500;

impl Store {
    /// Every member of a group, in insertion order of user id (stable).
    pub async fn group_members(&self, group_id: Uuid) -> Result<Vec<MemberRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT user_id, target, assignment_object_id, managed FROM group_members \
             WHERE group_id = $1 ORDER BY created_at, user_id",
        )
        .bind(group_id.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let user_id: String = row.try_get("user_id")?;
                Ok(MemberRow {
                    user_id: Uuid::parse_str(&user_id)
                        .map_err(|error| StoreError::Corrupt(error.to_string()))?,
                    target: row.try_get("target")?,
                    assignment_object_id: row.try_get("assignment_object_id")?,
                    managed: row.try_get::<i64, _>("managed")? != 0,
                })
            })
            .collect()
    }

    /// Adds (or overwrites) members, in multi-row statements inside one transaction.
    pub async fn upsert_group_members(
        &self,
        group_id: Uuid,
        members: &[MemberRow],
    ) -> Result<(), StoreError> {
        if members.is_empty() {
            return Ok(());
        }
        let now = now_millis();
        let group = group_id.to_string();
        let mut transaction = self.pool().begin().await?;
        for chunk in members.chunks(CHUNK) {
            let user_ids: Vec<String> = chunk.iter().map(|m| m.user_id.to_string()).collect();
            delete_in(&mut transaction, &group, &user_ids).await?;
            let mut sql = String::from(
                "INSERT INTO group_members \
                 (group_id, user_id, target, assignment_object_id, managed, created_at) VALUES ",
            );
            for index in 0..chunk.len() {
                let base = index * 4 + 3;
                if index > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!(
                    "($1, ${base}, ${}, ${}, ${}, $2)",
                    base + 1,
                    base + 2,
                    base + 3
                ));
            }
            let mut query = sqlx::query(&sql)
                .persistent(false)
                .bind(group.clone())
                .bind(now);
            for member in chunk {
                query = query
                    .bind(member.user_id.to_string())
                    .bind(member.target.clone())
                    .bind(member.assignment_object_id.clone())
                    .bind(i64::from(member.managed));
            }
            query.execute(&mut *transaction).await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Removes the named members of a group.
    pub async fn remove_group_members(
        &self,
        group_id: Uuid,
        user_ids: &[Uuid],
    ) -> Result<(), StoreError> {
        if user_ids.is_empty() {
            return Ok(());
        }
        let group = group_id.to_string();
        let mut transaction = self.pool().begin().await?;
        for chunk in user_ids.chunks(CHUNK) {
            let ids: Vec<String> = chunk.iter().map(Uuid::to_string).collect();
            delete_in(&mut transaction, &group, &ids).await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Removes every member of a group.
    pub async fn clear_group_members(&self, group_id: Uuid) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM group_members WHERE group_id = $1")
            .bind(group_id.to_string())
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

async fn delete_in(
    transaction: &mut sqlx::Transaction<'static, sqlx::Any>,
    group: &str,
    user_ids: &[String],
) -> Result<(), StoreError> {
    let placeholders: Vec<String> = (0..user_ids.len())
        .map(|index| format!("${}", index + 2))
        .collect();
    let sql = format!(
        "DELETE FROM group_members WHERE group_id = $1 AND user_id IN ({})",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(&sql).persistent(false).bind(group.to_owned());
    for id in user_ids {
        query = query.bind(id.clone());
    }
    query.execute(&mut **transaction).await?;
    Ok(())
}

impl Store {
    /// The C4C ObjectID of each live user among `ids` (`None` inside: live but not linked);
    /// ids that are no live user are absent. Multi-row reads, not one query per id.
    pub async fn live_user_objects(
        &self,
        ids: &[Uuid],
    ) -> Result<std::collections::HashMap<Uuid, Option<String>>, StoreError> {
        let mut out = std::collections::HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let placeholders: Vec<String> = (0..chunk.len())
                .map(|index| format!("${}", index + 1))
                .collect();
            let sql = format!(
                "SELECT id, object_id FROM resources WHERE resource_type = 'User' \
                 AND tombstone = 0 AND id IN ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(&sql).persistent(false);
            for id in chunk {
                query = query.bind(id.to_string());
            }
            for row in query.fetch_all(self.pool()).await? {
                let id: String = row.try_get("id")?;
                let id =
                    Uuid::parse_str(&id).map_err(|error| StoreError::Corrupt(error.to_string()))?;
                out.insert(id, row.try_get("object_id")?);
            }
        }
        Ok(out)
    }
}
