//! The resource mapping table: our SCIM id ↔ C4C ObjectID ↔ EmployeeID, with the last SCIM
//! representation and a version for ETags.

use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use super::{Param, Store, StoreError, bind_all, now_millis, returned_row};

/// Whether a statement only reads (it may then run on the calling thread) or writes.
#[derive(Clone, Copy)]
enum Access {
    Read,
    Write,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceType {
    User,
    Group,
}

impl ResourceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::User => "User",
            ResourceType::Group => "Group",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        match text {
            "User" => Ok(ResourceType::User),
            "Group" => Ok(ResourceType::Group),
            other => Err(StoreError::Corrupt(format!(
                "unknown resource type {other:?}"
            ))),
        }
    }
}

/// A resource to link: what we know when it is first created or adopted.
#[derive(Debug, Clone)]
pub struct NewResource {
    pub id: Uuid,
    pub resource_type: ResourceType,
    pub object_id: Option<String>,
    pub employee_id: Option<String>,
    pub external_id: Option<String>,
    /// userName for users, displayName for groups.
    pub user_name: String,
    pub scim_json: serde_json::Value,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResourceRow {
    pub id: Uuid,
    pub resource_type: ResourceType,
    pub object_id: Option<String>,
    pub employee_id: Option<String>,
    pub external_id: Option<String>,
    pub user_name: String,
    /// Grows by one on every change; the SCIM ETag is derived from it.
    pub version: i64,
    pub scim_json: serde_json::Value,
    pub active: bool,
    pub tombstone: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

pub(super) const COLUMNS: &str = "id, resource_type, object_id, employee_id, external_id, user_name, version, \
                       scim_json, active, tombstone, created_at, updated_at";

/// A column of [`COLUMNS`]: its position there and its name. Every statement that reads
/// resource rows selects (or returns) exactly [`COLUMNS`], so the direct SQLite path reads a
/// column by position: SQLite looks a name up by walking the result's column names
/// (`sqlite3_column_name`), about a tenth of a keyed read's time.
#[derive(Clone, Copy)]
pub(super) struct Column(usize, &'static str);

const ID: Column = Column(0, "id");
const RESOURCE_TYPE: Column = Column(1, "resource_type");
const OBJECT_ID: Column = Column(2, "object_id");
const EMPLOYEE_ID: Column = Column(3, "employee_id");
const EXTERNAL_ID: Column = Column(4, "external_id");
const USER_NAME: Column = Column(5, "user_name");
const VERSION: Column = Column(6, "version");
const SCIM_JSON: Column = Column(7, "scim_json");
const ACTIVE: Column = Column(8, "active");
const TOMBSTONE: Column = Column(9, "tombstone");
const CREATED_AT: Column = Column(10, "created_at");
const UPDATED_AT: Column = Column(11, "updated_at");

/// A row of either driver, so that one function decodes a resource row whichever path (sqlx
/// pool or direct SQLite) read it.
pub(super) trait Columns {
    fn text(&self, column: Column) -> Result<String, StoreError>;
    fn optional_text(&self, column: Column) -> Result<Option<String>, StoreError>;
    fn integer(&self, column: Column) -> Result<i64, StoreError>;
}

/// sqlx's rows are read by name: the pool's queries are not all on the request path, and a name
/// is what sqlx's Any driver checks types against.
impl Columns for AnyRow {
    fn text(&self, column: Column) -> Result<String, StoreError> {
        Ok(self.try_get(column.1)?)
    }
    fn optional_text(&self, column: Column) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(column.1)?)
    }
    fn integer(&self, column: Column) -> Result<i64, StoreError> {
        Ok(self.try_get(column.1)?)
    }
}

impl Columns for rusqlite::Row<'_> {
    fn text(&self, column: Column) -> Result<String, StoreError> {
        Ok(self.get(position(self, column))?)
    }
    fn optional_text(&self, column: Column) -> Result<Option<String>, StoreError> {
        Ok(self.get(position(self, column))?)
    }
    fn integer(&self, column: Column) -> Result<i64, StoreError> {
        Ok(self.get(position(self, column))?)
    }
}

/// The column's position; debug builds (the tests) check that the statement put it there.
fn position(row: &rusqlite::Row<'_>, column: Column) -> usize {
    debug_assert_eq!(
        row.as_ref().column_name(column.0).ok(),
        Some(column.1),
        "a resource statement must select COLUMNS in order"
    );
    column.0
}

pub(super) fn from_row(row: &impl Columns) -> Result<ResourceRow, StoreError> {
    let id = row.text(ID)?;
    let scim_json = row.text(SCIM_JSON)?;
    Ok(ResourceRow {
        id: Uuid::parse_str(&id).map_err(|error| StoreError::Corrupt(error.to_string()))?,
        resource_type: ResourceType::parse(&row.text(RESOURCE_TYPE)?)?,
        object_id: row.optional_text(OBJECT_ID)?,
        employee_id: row.optional_text(EMPLOYEE_ID)?,
        external_id: row.optional_text(EXTERNAL_ID)?,
        user_name: row.text(USER_NAME)?,
        version: row.integer(VERSION)?,
        scim_json: serde_json::from_str(&scim_json)
            .map_err(|error| StoreError::Corrupt(error.to_string()))?,
        active: row.integer(ACTIVE)? != 0,
        tombstone: row.integer(TOMBSTONE)? != 0,
        created_at: row.integer(CREATED_AT)?,
        updated_at: row.integer(UPDATED_AT)?,
    })
}

fn query_resources(
    connection: &rusqlite::Connection,
    sql: &str,
    params: &[Param],
) -> Result<Vec<ResourceRow>, StoreError> {
    let mut statement = connection.prepare_cached(sql)?;
    super::direct::bind_numbered(&mut statement, params)?;
    let mut rows = statement.raw_query();
    let mut out = Vec::new();
    // Stepped to the end even for one row: a write commits (or fails) only there.
    while let Some(row) = rows.next()? {
        out.push(from_row(row)?);
    }
    Ok(out)
}

fn text(value: &str) -> Param {
    Param::Text(value.to_owned())
}

fn optional_text(value: Option<&str>) -> Param {
    value.map_or(Param::Null, text)
}

/// A new resource's SCIM id: a UUIDv7, whose leading bits are its creation time, so that the
/// ids of new rows land at the end of the `resources.id` index and of the mapping log's
/// `resource_id` index rather than on a random page each: with random (v4) ids every create
/// rewrote two more index pages in the write-ahead log. The rest of a v7 id is random (74 bits);
/// that a user was created at some millisecond is what `meta.created` says anyway.
pub fn new_resource_id() -> Uuid {
    Uuid::now_v7()
}

/// Case-insensitive key for userName (SCIM says userName is caseExact=false).
pub fn fold_name(name: &str) -> String {
    name.to_lowercase()
}

impl Store {
    /// Links a new resource. A live resource of the same type and userName (any case), or a row
    /// already linked to the same ObjectID, is a `Conflict`.
    pub async fn insert_resource(&self, new: &NewResource) -> Result<ResourceRow, StoreError> {
        let _timer = self.timer("insert_resource");
        let now = now_millis();
        let sql = format!(
            "INSERT INTO resources ({COLUMNS}, user_name_lower) \
             VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8, 0, $9, $9, $10) RETURNING {COLUMNS}"
        );
        let params = vec![
            Param::Text(new.id.to_string()),
            text(new.resource_type.as_str()),
            optional_text(new.object_id.as_deref()),
            optional_text(new.employee_id.as_deref()),
            optional_text(new.external_id.as_deref()),
            text(&new.user_name),
            Param::Text(new.scim_json.to_string()),
            Param::Integer(i64::from(new.active)),
            Param::Integer(now),
            Param::Text(fold_name(&new.user_name)),
        ];
        returned_row(self.resource_rows(sql, params, Access::Write).await?)
    }

    /// A resource by id, tombstones included (callers decide what a tombstone means).
    pub async fn get_resource(
        &self,
        resource_type: ResourceType,
        id: Uuid,
    ) -> Result<Option<ResourceRow>, StoreError> {
        let _timer = self.timer("get_resource");
        let sql = format!("SELECT {COLUMNS} FROM resources WHERE id = $1 AND resource_type = $2");
        let params = vec![Param::Text(id.to_string()), text(resource_type.as_str())];
        let rows = self.resource_rows(sql, params, Access::Read).await?;
        Ok(rows.into_iter().next())
    }

    /// The live resource with this userName, compared case-insensitively.
    pub async fn find_live_by_name(
        &self,
        resource_type: ResourceType,
        user_name: &str,
    ) -> Result<Option<ResourceRow>, StoreError> {
        let _timer = self.timer("find_live_by_name");
        self.find_one(
            "resource_type = $1 AND user_name_lower = $2 AND tombstone = 0",
            resource_type,
            &fold_name(user_name),
        )
        .await
    }

    /// The most recent tombstone with this userName: a returning user is reactivated from it.
    pub async fn find_tombstone_by_name(
        &self,
        resource_type: ResourceType,
        user_name: &str,
    ) -> Result<Option<ResourceRow>, StoreError> {
        let _timer = self.timer("find_tombstone_by_name");
        self.find_one(
            "resource_type = $1 AND user_name_lower = $2 AND tombstone = 1 \
             ORDER BY updated_at DESC",
            resource_type,
            &fold_name(user_name),
        )
        .await
    }

    /// What a create of this userName meets: the live row when there is one, else the most
    /// recent tombstone (a returning user), in one read.
    pub async fn find_by_name_for_create(
        &self,
        resource_type: ResourceType,
        user_name: &str,
    ) -> Result<Option<ResourceRow>, StoreError> {
        let _timer = self.timer("find_by_name_for_create");
        self.find_one(
            "resource_type = $1 AND user_name_lower = $2 ORDER BY tombstone, updated_at DESC",
            resource_type,
            &fold_name(user_name),
        )
        .await
    }

    pub async fn find_by_object_id(
        &self,
        resource_type: ResourceType,
        object_id: &str,
    ) -> Result<Option<ResourceRow>, StoreError> {
        let _timer = self.timer("find_by_object_id");
        self.find_one(
            "resource_type = $1 AND object_id = $2",
            resource_type,
            object_id,
        )
        .await
    }

    pub async fn find_live_by_external_id(
        &self,
        resource_type: ResourceType,
        external_id: &str,
    ) -> Result<Option<ResourceRow>, StoreError> {
        let _timer = self.timer("find_live_by_external_id");
        self.find_one(
            "resource_type = $1 AND external_id = $2 AND tombstone = 0",
            resource_type,
            external_id,
        )
        .await
    }

    /// The live resources linked to any of these ObjectIDs (one query per 500 ids, under
    /// SQLite's parameter limit).
    pub async fn find_live_by_object_ids(
        &self,
        resource_type: ResourceType,
        object_ids: &[String],
    ) -> Result<Vec<ResourceRow>, StoreError> {
        let mut out = Vec::new();
        for chunk in object_ids.chunks(500) {
            let placeholders = (0..chunk.len())
                .map(|i| format!("${}", i + 2))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT {COLUMNS} FROM resources WHERE resource_type = $1 AND tombstone = 0 \
                 AND object_id IN ({placeholders})"
            );
            let mut query = sqlx::query(&sql).bind(resource_type.as_str());
            for id in chunk {
                query = query.bind(id.clone());
            }
            for row in query.fetch_all(self.pool()).await? {
                out.push(from_row(&row)?);
            }
        }
        Ok(out)
    }

    async fn find_one(
        &self,
        condition: &str,
        resource_type: ResourceType,
        value: &str,
    ) -> Result<Option<ResourceRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM resources WHERE {condition} LIMIT 1");
        let params = vec![text(resource_type.as_str()), text(value)];
        let rows = self.resource_rows(sql, params, Access::Read).await?;
        Ok(rows.into_iter().next())
    }

    /// Runs a statement over resource rows: on SQLite's direct path when the store has one (see
    /// `direct`), else on the pool.
    async fn resource_rows(
        &self,
        sql: String,
        params: Vec<Param>,
        access: Access,
    ) -> Result<Vec<ResourceRow>, StoreError> {
        match (&self.direct, access) {
            (Some(direct), Access::Read) => {
                direct.read(|connection| query_resources(connection, &sql, &params))
            }
            (Some(direct), Access::Write) => {
                direct
                    .write(move |connection| query_resources(connection, &sql, &params))
                    .await
            }
            (None, _) => {
                let rows = bind_all(sqlx::query(&sql), &params)
                    .fetch_all(self.pool())
                    .await?;
                rows.iter().map(from_row).collect()
            }
        }
    }

    /// Writes `row` back if nobody changed it since `row.version` was read; returns the stored
    /// row with its new version. Lost updates become `VersionMismatch`, never silent overwrites.
    pub async fn update_resource(&self, row: &ResourceRow) -> Result<ResourceRow, StoreError> {
        let _timer = self.timer("update_resource");
        let sql = format!(
            "UPDATE resources SET object_id = $1, employee_id = $2, external_id = $3, \
             user_name = $4, user_name_lower = $5, scim_json = $6, active = $7, tombstone = $8, \
             version = version + 1, updated_at = $9 \
             WHERE id = $10 AND version = $11 RETURNING {COLUMNS}"
        );
        let params = vec![
            optional_text(row.object_id.as_deref()),
            optional_text(row.employee_id.as_deref()),
            optional_text(row.external_id.as_deref()),
            text(&row.user_name),
            Param::Text(fold_name(&row.user_name)),
            Param::Text(row.scim_json.to_string()),
            Param::Integer(i64::from(row.active)),
            Param::Integer(i64::from(row.tombstone)),
            Param::Integer(now_millis()),
            Param::Text(row.id.to_string()),
            Param::Integer(row.version),
        ];
        let updated = self
            .resource_rows(sql, params, Access::Write)
            .await?
            .into_iter()
            .next();
        match updated {
            Some(updated) => Ok(updated),
            None => match self.get_resource(row.resource_type, row.id).await? {
                Some(_) => Err(StoreError::VersionMismatch),
                None => Err(StoreError::NotFound(row.id.to_string())),
            },
        }
    }

    /// Live resources of a type, oldest first, with the total count.
    pub async fn list_live_resources(
        &self,
        resource_type: ResourceType,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<ResourceRow>, i64), StoreError> {
        let _timer = self.timer("list_live_resources");
        let total: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM resources WHERE resource_type = $1 AND tombstone = 0",
        )
        .bind(resource_type.as_str())
        .fetch_one(self.pool())
        .await?;
        let sql = format!(
            "SELECT {COLUMNS} FROM resources WHERE resource_type = $1 AND tombstone = 0 \
             ORDER BY seq LIMIT $2 OFFSET $3"
        );
        let rows = sqlx::query(&sql)
            .bind(resource_type.as_str())
            .bind(limit)
            .bind(offset)
            .fetch_all(self.pool())
            .await?;
        let rows = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
        Ok((rows, total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_column_positions_are_those_of_the_column_list() {
        let listed: Vec<&str> = COLUMNS.split(',').map(str::trim).collect();
        let columns = [
            ID,
            RESOURCE_TYPE,
            OBJECT_ID,
            EMPLOYEE_ID,
            EXTERNAL_ID,
            USER_NAME,
            VERSION,
            SCIM_JSON,
            ACTIVE,
            TOMBSTONE,
            CREATED_AT,
            UPDATED_AT,
        ];
        assert_eq!(listed.len(), columns.len());
        for column in columns {
            assert_eq!(listed[column.0], column.1);
        }
    }

    #[test]
    fn new_resource_ids_sort_in_the_order_they_were_made() {
        let ids: Vec<String> = (0..2000).map(|_| new_resource_id().to_string()).collect();
        // As stored: the hyphenated text, compared bytewise by the index.
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");
        assert_eq!(new_resource_id().get_version_num(), 7);
    }
}
