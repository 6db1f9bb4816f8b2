//! SCIM Users onto C4C employees: create (link, reactivate), read, replace, patch, delete,
//! list. C4C is written first and our row only after C4C accepted, so a failed C4C write
//! leaves the row as it was. Every request appends one mapping-log entry.

use std::sync::Arc;
use std::time::Instant;

use chrono::{TimeZone, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::safety::{Admission, HeldKind, Requester, Reservation, Safety, SafetyConfig};
use super::{KeyedLocks, ProvisioningError, holds_fields};
use crate::c4c::{C4cClient, C4cError, Employee, EmployeeQuery, Fields, Order};
use crate::mapping::pushdown::{QueryPlan, plan};
use crate::mapping::{MapKind, Mapper, NoReferences, Trace};
use crate::scim::error::ScimError;
use crate::scim::filter::{CompValue, CompareOp, Filter};
use crate::scim::list::{ListQuery, ListResponse};
use crate::scim::patch::PatchRequest;
use crate::scim::resource::{validate_for_create, validate_for_replace, validate_stored};
use crate::scim::schema::USER_RESOURCE;
use crate::scim::{etag, eval};
use crate::store::{LogEntry, NewResource, ResourceRow, ResourceType, Store, now_millis};

/// Page size when the client asks for none, and the most one page may hold.
pub const DEFAULT_PAGE_SIZE: usize = 100;
pub const MAX_PAGE_SIZE: usize = 1000;

/// Who asks and where: what the mapping log records about a request.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub request_id: String,
    pub client: Option<String>,
    pub method: String,
    pub path: String,
    /// The absolute SCIM base URL, for `meta.location`.
    pub base_url: String,
}

/// A successful answer: status, the resource (absent for 204) and its version.
#[derive(Debug, Clone, PartialEq)]
pub struct UserResponse {
    pub status: u16,
    pub resource: Option<Value>,
    pub version: Option<String>,
}

pub type UserResult = Result<UserResponse, ProvisioningError>;

/// What one request did, gathered while it runs and written to the mapping log at the end.
struct Journal {
    at: i64,
    started: Instant,
    resource_id: Option<String>,
    employee_id: Option<String>,
    object_id: Option<String>,
    action: Option<&'static str>,
    trace: Option<Trace>,
    odata: Vec<Value>,
    /// The circuit breaker's decision, when it held the request.
    safety: Option<Value>,
    time_to_lock_ms: Option<i64>,
    /// The SCIM body received, masked (see `Mapper::masked`), for the admin trace and retry.
    request: Option<Value>,
    /// A deprovisioning the breaker admitted counts as in flight until it is journaled (or the
    /// request is done).
    breaker_reservation: Option<Reservation>,
}

impl Journal {
    fn start() -> Self {
        Self {
            at: now_millis(),
            started: Instant::now(),
            resource_id: None,
            employee_id: None,
            object_id: None,
            action: None,
            trace: None,
            odata: Vec::new(),
            safety: None,
            time_to_lock_ms: None,
            request: None,
            breaker_reservation: None,
        }
    }

    fn link(&mut self, row: &ResourceRow) {
        self.resource_id = Some(row.id.to_string());
        self.employee_id.clone_from(&row.employee_id);
        self.object_id.clone_from(&row.object_id);
    }

    /// Runs one C4C call and records its name, duration and outcome (never bodies or secrets).
    async fn call<T>(
        &mut self,
        name: &str,
        call: impl std::future::Future<Output = Result<T, C4cError>>,
    ) -> Result<T, C4cError> {
        let started = Instant::now();
        let result = call.await;
        let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        self.odata.push(match &result {
            Ok(_) => json!({"call": name, "ok": true, "duration_ms": duration_ms}),
            Err(error) => json!({
                "call": name,
                "ok": false,
                "duration_ms": duration_ms,
                "error_kind": error.kind().as_str(),
                "status": error.http_status(),
                "error": error.to_string(),
            }),
        });
        result
    }
}

/// The user use cases. Cheap to share behind an `Arc`.
pub struct UserService {
    pub(crate) store: Store,
    pub(crate) c4c: C4cClient,
    pub(crate) mapper: Arc<Mapper>,
    /// Serialises, within this replica, creates of one userName and writes to one resource
    /// (across replicas, the store's lock does).
    pub(crate) locks: KeyedLocks,
    safety: Safety,
}

impl UserService {
    pub fn new(store: Store, c4c: C4cClient, mapper: Arc<Mapper>) -> Self {
        let safety = Safety::new(
            store.clone(),
            c4c.clone(),
            mapper.clone(),
            SafetyConfig::default(),
        );
        Self {
            store,
            c4c,
            mapper,
            locks: KeyedLocks::default(),
            safety,
        }
    }

    /// The deprovisioning circuit breaker (shared with the group service and the admin API).
    pub fn safety(&self) -> &Safety {
        &self.safety
    }

    /// The mapping rules in force.
    pub fn mapper(&self) -> &Mapper {
        &self.mapper
    }

    /// The deprovisioning circuit breaker's settings (`[safety]`).
    pub fn with_safety(mut self, config: SafetyConfig) -> Self {
        self.safety = self.safety.with_config(config);
        self
    }

    pub async fn create(&self, ctx: &RequestContext, body: &Value) -> UserResult {
        let mut journal = Journal::start();
        journal.request = Some(self.mapper.masked(body));
        let result = self.create_inner(ctx, body, &mut journal).await;
        self.finish(ctx, journal, &result).await;
        result
    }

    pub async fn get(&self, ctx: &RequestContext, id: &str) -> UserResult {
        let mut journal = Journal::start();
        let result = self.get_inner(ctx, id, &mut journal).await;
        self.finish(ctx, journal, &result).await;
        result
    }

    pub async fn replace(
        &self,
        ctx: &RequestContext,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> UserResult {
        let mut journal = Journal::start();
        journal.request = Some(self.mapper.masked(body));
        let result = self
            .serialized(
                format!("User:{id}"),
                self.replace_locked(ctx, id, body, if_match, &mut journal),
            )
            .await;
        self.finish(ctx, journal, &result).await;
        result
    }

    pub async fn patch(
        &self,
        ctx: &RequestContext,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> UserResult {
        let mut journal = Journal::start();
        journal.request = Some(self.mapper.masked_patch(body));
        let result = self
            .serialized(
                format!("User:{id}"),
                self.patch_locked(ctx, id, body, if_match, &mut journal),
            )
            .await;
        self.finish(ctx, journal, &result).await;
        result
    }

    /// Deprovisions (lock and/or end validity, never an OData DELETE) and keeps the row as a
    /// tombstone, so a later POST of the same userName reactivates the same employee.
    pub async fn delete(
        &self,
        ctx: &RequestContext,
        id: &str,
        if_match: Option<&str>,
    ) -> UserResult {
        let mut journal = Journal::start();
        let result = self
            .serialized(
                format!("User:{id}"),
                self.delete_locked(ctx, id, if_match, &mut journal),
            )
            .await;
        self.finish(ctx, journal, &result).await;
        result
    }

    /// GET /Users. Filters on `id`, `externalId` and `userName` are answered from the mapping
    /// table; others are pushed down to C4C as planned by `mapping::pushdown` (what C4C cannot
    /// narrow is refused with invalidFilter naming the attribute).
    pub async fn list(&self, ctx: &RequestContext, query: &ListQuery) -> UserResult {
        let mut journal = Journal::start();
        let result = self.list_inner(ctx, query, &mut journal).await;
        self.finish(ctx, journal, &result).await;
        result
    }

    async fn replace_locked(
        &self,
        ctx: &RequestContext,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
        journal: &mut Journal,
    ) -> UserResult {
        let row = self.live_row(id, journal).await?;
        check_version(&row, if_match)?;
        let new = validate_for_replace(&USER_RESOURCE, body, &with_id(&row))?;
        self.write_change(ctx, row, new, journal).await
    }

    async fn patch_locked(
        &self,
        ctx: &RequestContext,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
        journal: &mut Journal,
    ) -> UserResult {
        let row = self.live_row(id, journal).await?;
        check_version(&row, if_match)?;
        let request = PatchRequest::from_json(body)?;
        let patched = request.apply(&with_id(&row), &USER_RESOURCE)?;
        let new = validate_stored(&USER_RESOURCE, &patched)?;
        self.write_change(ctx, row, new, journal).await
    }

    async fn delete_locked(
        &self,
        ctx: &RequestContext,
        id: &str,
        if_match: Option<&str>,
        journal: &mut Journal,
    ) -> UserResult {
        let mut row = self.live_row(id, journal).await?;
        check_version(&row, if_match)?;
        journal.action = Some("deactivate");
        let object_id = linked_object_id(&row)?;
        let fields = self.mapper.deactivate_fields();
        // A user already deactivated is only being tombstoned: nothing for the breaker.
        let deprovisions = row.active;
        if deprovisions {
            let payload = json!({"fields": fields.0});
            if let Some(held) = self
                .hold_if_tripped(ctx, &row, HeldKind::Delete, payload, journal)
                .await?
            {
                return held.map(|()| UserResponse {
                    status: 204,
                    resource: None,
                    version: None,
                });
            }
        }
        self.update_employee(journal, &object_id, &fields).await?;
        if deprovisions {
            self.journal_lock_change(ctx, &row, "deactivate", &fields, journal)
                .await;
        }
        row.tombstone = true;
        row.active = false;
        if let Some(resource) = row.scim_json.as_object_mut() {
            resource.insert("active".into(), Value::Bool(false));
        }
        let row = self.store.update_resource(&row).await?;
        journal.link(&row);
        Ok(UserResponse {
            status: 204,
            resource: None,
            version: None,
        })
    }

    async fn list_inner(
        &self,
        ctx: &RequestContext,
        query: &ListQuery,
        journal: &mut Journal,
    ) -> UserResult {
        let body = match &query.filter {
            None => self.list_all(ctx, query).await?,
            Some(filter) => match plan(filter, &self.mapper)? {
                QueryPlan::Store { lookup, .. } => {
                    let candidates = self.store_candidates(&lookup).await?;
                    let resources = candidates
                        .iter()
                        .map(|row| with_meta(row, &ctx.base_url))
                        .collect();
                    // The whole filter (lookup and residual) is evaluated on the candidates.
                    query
                        .apply(&USER_RESOURCE, resources, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?
                        .to_json()
                }
                QueryPlan::OData { queries, residual } => {
                    self.list_odata(ctx, query, &queries, residual.as_ref(), journal)
                        .await?
                }
            },
        };
        Ok(UserResponse {
            status: 200,
            resource: Some(body),
            version: None,
        })
    }

    /// Runs the planned OData queries page by page: the union (de-duplicated by ObjectID) of
    /// employees linked to a live user, mapped back and merged with what only we keep, then the
    /// residual filter. Only the requested page is kept in memory; the rest is counted.
    /// `sortBy` is not supported (ServiceProviderConfig says so) and is ignored here: the order
    /// is C4C's by ObjectID, stable across pages.
    async fn list_odata(
        &self,
        ctx: &RequestContext,
        query: &ListQuery,
        queries: &[crate::c4c::filter::Filter],
        residual: Option<&Filter>,
        journal: &mut Journal,
    ) -> Result<Value, ProvisioningError> {
        let count = query.effective_count(DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE);
        let skip = query.start_index.saturating_sub(1);
        let mut seen = std::collections::HashSet::new();
        let mut total = 0_usize;
        let mut page = Vec::new();
        for filter in queries {
            let request = EmployeeQuery::new()
                .filter(filter.clone())
                .order_by("ObjectID", Order::Asc);
            let mut pages = journal
                .call("query_employees", self.c4c.employee_pages(&request))
                .await?;
            loop {
                let Some(employees) = journal
                    .call("query_employees_page", pages.next_page())
                    .await?
                else {
                    break;
                };
                let fresh: Vec<Employee> = employees
                    .into_iter()
                    .filter(|employee| seen.insert(employee.object_id.clone()))
                    .collect();
                if fresh.is_empty() {
                    continue;
                }
                let object_ids: Vec<String> = fresh.iter().map(|e| e.object_id.clone()).collect();
                let rows: std::collections::HashMap<String, ResourceRow> = self
                    .store
                    .find_live_by_object_ids(ResourceType::User, &object_ids)
                    .await?
                    .into_iter()
                    .filter_map(|row| row.object_id.clone().map(|id| (id, row)))
                    .collect();
                for employee in fresh {
                    let Some(row) = rows.get(&employee.object_id) else {
                        continue;
                    };
                    let mut merged_row = row.clone();
                    merged_row.scim_json =
                        self.mapper
                            .to_scim_merged(&employee, &with_id(row), &NoReferences);
                    let resource = with_meta(&merged_row, &ctx.base_url);
                    if residual.is_some_and(|f| !eval::matches(f, &resource, &USER_RESOURCE)) {
                        continue;
                    }
                    total += 1;
                    if total > skip && page.len() < count {
                        page.push(crate::scim::resource::project(
                            &USER_RESOURCE,
                            &resource,
                            &query.attributes,
                            &query.excluded_attributes,
                        ));
                    }
                }
            }
        }
        Ok(ListResponse::new(total, query.start_index, page).to_json())
    }

    async fn list_all(
        &self,
        ctx: &RequestContext,
        query: &ListQuery,
    ) -> Result<Value, ProvisioningError> {
        let count = query.effective_count(DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE);
        let offset = i64::try_from(query.start_index.saturating_sub(1)).unwrap_or(i64::MAX);
        let limit = i64::try_from(count).unwrap_or(i64::MAX);
        let (rows, total) = self
            .store
            .list_live_resources(ResourceType::User, offset, limit)
            .await?;
        let resources: Vec<Value> = rows
            .iter()
            .map(|row| {
                crate::scim::resource::project(
                    &USER_RESOURCE,
                    &with_meta(row, &ctx.base_url),
                    &query.attributes,
                    &query.excluded_attributes,
                )
            })
            .collect();
        let total = usize::try_from(total).unwrap_or(0);
        Ok(ListResponse::new(total, query.start_index, resources).to_json())
    }

    /// Live rows that may match a store-answerable filter: one indexed lookup for `attr eq
    /// "value"` (Entra's and Okta's probes), else every live user (the filter is evaluated on
    /// them afterwards).
    async fn store_candidates(
        &self,
        lookup: &Filter,
    ) -> Result<Vec<ResourceRow>, ProvisioningError> {
        if let Filter::Compare(path, CompareOp::Eq, CompValue::Str(value)) = lookup
            && path.uri.is_none()
            && path.sub_attr.is_none()
        {
            let found = match path.name.to_ascii_lowercase().as_str() {
                "username" => {
                    self.store
                        .find_live_by_name(ResourceType::User, value)
                        .await?
                }
                "externalid" => {
                    self.store
                        .find_live_by_external_id(ResourceType::User, value)
                        .await?
                }
                "id" => match Uuid::parse_str(value) {
                    Ok(id) => self
                        .store
                        .get_resource(ResourceType::User, id)
                        .await?
                        .filter(|row| !row.tombstone),
                    Err(_) => None,
                },
                _ => return self.all_live().await,
            };
            return Ok(found.into_iter().collect());
        }
        self.all_live().await
    }

    async fn all_live(&self) -> Result<Vec<ResourceRow>, ProvisioningError> {
        const PAGE: i64 = 1000;
        let mut rows = Vec::new();
        loop {
            let offset = i64::try_from(rows.len()).unwrap_or(i64::MAX);
            let (page, total) = self
                .store
                .list_live_resources(ResourceType::User, offset, PAGE)
                .await?;
            let done = page.is_empty();
            rows.extend(page);
            if done || i64::try_from(rows.len()).unwrap_or(i64::MAX) >= total {
                return Ok(rows);
            }
        }
    }

    async fn create_inner(
        &self,
        ctx: &RequestContext,
        body: &Value,
        journal: &mut Journal,
    ) -> UserResult {
        let user = validate_for_create(&USER_RESOURCE, body)?;
        let user_name = user
            .get("userName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        // Concurrent POSTs of one userName, on this replica or another sharing the store: the
        // first creates, the others then see its row (409).
        let key = format!("userName:{}", user_name.to_lowercase());
        self.serialized(key, self.create_locked(ctx, user, user_name, journal))
            .await
    }

    async fn create_locked(
        &self,
        ctx: &RequestContext,
        user: Value,
        user_name: String,
        journal: &mut Journal,
    ) -> UserResult {
        match self
            .store
            .find_by_name_for_create(ResourceType::User, &user_name)
            .await?
        {
            Some(tombstone) if tombstone.tombstone => {
                return self.reactivate(ctx, tombstone, user, journal).await;
            }
            Some(existing) => {
                journal.link(&existing);
                return Err(ScimError::uniqueness(format!(
                    "userName {user_name:?} is already taken by user {}",
                    existing.id
                ))
                .into());
            }
            None => {}
        }

        let mapped = self.mapper.to_c4c(&user, MapKind::Create, &NoReferences)?;
        journal.trace = Some(mapped.trace.clone());
        let key = self.mapper.business_key(&mapped);
        let existing = match &key {
            Some(key) => {
                journal
                    .call("lookup_by_key", self.c4c.lookup_by_key(key))
                    .await?
            }
            None => None,
        };
        let employee = match existing {
            Some(employee) => {
                if let Some(linked) = self
                    .store
                    .find_by_object_id(ResourceType::User, &employee.object_id)
                    .await?
                    && !linked.tombstone
                {
                    return Err(ScimError::uniqueness(format!(
                        "C4C employee {} is already linked to user {}",
                        employee.object_id, linked.id
                    ))
                    .into());
                }
                journal.action = Some("link");
                // EmployeeID cannot change in C4C; the rest brings the employee up to date.
                let mut fields = mapped.fields.clone();
                fields.0.remove("EmployeeID");
                if !fields.is_empty() {
                    self.update_employee(journal, &employee.object_id, &fields)
                        .await?;
                }
                employee
            }
            None => {
                journal.action = Some("create");
                match &key {
                    Some(key) => {
                        journal
                            .call(
                                "create_employee_once",
                                self.c4c.create_employee_once(&mapped.fields, key),
                            )
                            .await?
                    }
                    None => {
                        journal
                            .call("create_employee", self.c4c.create_employee(&mapped.fields))
                            .await?
                    }
                }
            }
        };
        let id = crate::store::new_resource_id();
        let mut resource = user;
        set_id(&mut resource, id);
        let row = self
            .store
            .insert_resource(&NewResource {
                id,
                resource_type: ResourceType::User,
                object_id: Some(employee.object_id.clone()),
                employee_id: employee.employee_id.clone(),
                external_id: external_id(&resource),
                user_name,
                active: is_active(&resource),
                scim_json: resource,
            })
            .await?;
        journal.link(&row);
        Ok(respond(201, &row, &ctx.base_url))
    }

    /// A POST for a userName we deleted earlier: the same employee comes back (lock lifted,
    /// validity restored) with the new representation, under the same SCIM id.
    async fn reactivate(
        &self,
        ctx: &RequestContext,
        mut row: ResourceRow,
        user: Value,
        journal: &mut Journal,
    ) -> UserResult {
        journal.link(&row);
        journal.action = Some("reactivate");
        let object_id = linked_object_id(&row)?;
        let mut resource = user;
        set_id(&mut resource, row.id);
        let mut mapped = self
            .mapper
            .diff_for_update(&row.scim_json, &resource, &NoReferences)?;
        if is_active(&resource) {
            for (name, value) in self.mapper.reactivate_fields().0 {
                mapped.fields.insert(&name, value);
            }
        }
        journal.trace = Some(mapped.trace.clone());
        if !mapped.fields.is_empty() {
            self.update_employee(journal, &object_id, &mapped.fields)
                .await?;
            self.journal_lock_change(ctx, &row, "reactivate", &mapped.fields, journal)
                .await;
        }
        row.tombstone = false;
        row.active = is_active(&resource);
        row.external_id = external_id(&resource);
        row.scim_json = resource;
        let row = self.store.update_resource(&row).await?;
        journal.link(&row);
        Ok(respond(201, &row, &ctx.base_url))
    }

    /// One C4C PATCH. When its outcome is unknown (the connection dropped after sending), the
    /// employee is read back: if it holds every written value the write happened and counts
    /// as done, so the caller records it instead of leaving our row behind C4C.
    async fn update_employee(
        &self,
        journal: &mut Journal,
        object_id: &str,
        fields: &Fields,
    ) -> Result<(), C4cError> {
        let error = match journal
            .call(
                "update_employee",
                self.c4c.update_employee(object_id, fields, None),
            )
            .await
        {
            Ok(_) => return Ok(()),
            Err(error) if error.is_ambiguous() => error,
            Err(error) => return Err(error),
        };
        let employee = journal
            .call("verify_update", self.c4c.get_employee(object_id))
            .await?;
        if holds_fields(&employee, fields) {
            Ok(())
        } else {
            Err(error)
        }
    }

    /// Asks the circuit breaker about a deprovisioning. `None`: apply it. `Some(Ok(()))`: held
    /// quietly (answer as if applied). `Some(Err(503))`: held, the client is to retry later.
    async fn hold_if_tripped(
        &self,
        ctx: &RequestContext,
        row: &ResourceRow,
        kind: HeldKind,
        payload: Value,
        journal: &mut Journal,
    ) -> Result<Option<Result<(), ProvisioningError>>, ProvisioningError> {
        match self
            .safety
            .admit(&requester(ctx), row, kind, payload)
            .await?
        {
            Admission::Apply(reservation) => {
                journal.breaker_reservation = Some(reservation);
                Ok(None)
            }
            Admission::Held { operation, reason } => {
                journal.action = Some("held");
                journal.safety = Some(json!({
                    "decision": "held",
                    "decided_by": "circuit_breaker",
                    "held_id": operation.id,
                    "held_kind": kind.as_str(),
                    "policy": self.safety.config().policy,
                    "reason": reason,
                }));
                Ok(Some(match self.safety.held_error(&operation) {
                    Some(error) => Err(error),
                    None => Ok(()),
                }))
            }
        }
    }

    /// After C4C confirmed a lock or validity change: the undo journal, and for a
    /// deactivation the time to lock (metric and mapping log). A journal that cannot be
    /// written does not fail the request (C4C has changed); it is reported in the service log.
    async fn journal_lock_change(
        &self,
        ctx: &RequestContext,
        row: &ResourceRow,
        kind: &str,
        fields: &Fields,
        journal: &mut Journal,
    ) {
        if kind == "deactivate" {
            let elapsed = journal.started.elapsed();
            crate::metrics::record_time_to_lock("direct", elapsed);
            journal.time_to_lock_ms = Some(i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX));
        }
        let actor = format!("scim:{}", ctx.client.as_deref().unwrap_or("-"));
        if let Err(error) = self
            .safety
            .record_applied(&actor, &requester(ctx), row, kind, fields, None)
            .await
        {
            tracing::error!(%error, "cannot journal a lock change for undo");
        }
        // Journaled (or reported): it now counts among the applied ones, no longer in flight.
        if let Some(reservation) = journal.breaker_reservation.take() {
            reservation.release().await;
        }
    }

    /// Runs `work` (a future, so nothing of it runs before the locks are held) holding both
    /// locks for `key`: this replica's first (so a replica queues its own requests in memory,
    /// holding no connection), then the store-wide one shared by replicas.
    async fn serialized<T>(
        &self,
        key: String,
        work: impl std::future::Future<Output = Result<T, ProvisioningError>>,
    ) -> Result<T, ProvisioningError> {
        let _local = self.locks.lock(key.clone()).await;
        let shared = self.store.lock_across_replicas(&key).await?;
        let result = work.await;
        shared.release().await;
        result
    }

    async fn get_inner(&self, ctx: &RequestContext, id: &str, journal: &mut Journal) -> UserResult {
        let row = self.live_row(id, journal).await?;
        let object_id = linked_object_id(&row)?;
        let select = self.mapper.read_back_select();
        let employee: Employee = journal
            .call(
                "get_employee",
                self.c4c.get_employee_selecting(&object_id, select),
            )
            .await?;
        let merged = self
            .mapper
            .to_scim_merged(&employee, &with_id(&row), &NoReferences);
        let mut merged_row = row;
        merged_row.scim_json = merged;
        Ok(respond(200, &merged_row, &ctx.base_url))
    }

    /// PUT and PATCH after validation: one C4C PATCH with what changed, then our row.
    async fn write_change(
        &self,
        ctx: &RequestContext,
        mut row: ResourceRow,
        new: Value,
        journal: &mut Journal,
    ) -> UserResult {
        let user_name = new
            .get("userName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if !user_name.eq_ignore_ascii_case(&row.user_name)
            && let Some(other) = self
                .store
                .find_live_by_name(ResourceType::User, &user_name)
                .await?
            && other.id != row.id
        {
            return Err(ScimError::uniqueness(format!(
                "userName {user_name:?} is already taken by user {}",
                other.id
            ))
            .into());
        }
        let mapped = self
            .mapper
            .diff_for_update(&row.scim_json, &new, &NoReferences)?;
        journal.trace = Some(mapped.trace.clone());
        let was_active = row.active;
        let now_active = is_active(&new);
        let action = match (was_active, now_active) {
            (true, false) => "deactivate",
            (false, true) => "reactivate",
            _ => "update",
        };
        journal.action = Some(action);
        if action == "deactivate" {
            let payload = json!({"fields": mapped.fields.0, "resource": new});
            if let Some(held) = self
                .hold_if_tripped(ctx, &row, HeldKind::Deactivate, payload, journal)
                .await?
            {
                // Held quietly: answered as if applied; our row and C4C wait for the operator.
                held?;
                let mut shown = row;
                shown.scim_json = new;
                shown.active = false;
                return Ok(respond(200, &shown, &ctx.base_url));
            }
        }
        if !mapped.fields.is_empty() {
            let object_id = linked_object_id(&row)?;
            self.update_employee(journal, &object_id, &mapped.fields)
                .await?;
            if action != "update" {
                self.journal_lock_change(ctx, &row, action, &mapped.fields, journal)
                    .await;
            }
        }
        row.user_name = user_name;
        row.active = now_active;
        row.external_id = external_id(&new);
        row.scim_json = new;
        let row = self.store.update_resource(&row).await?;
        journal.link(&row);
        Ok(respond(200, &row, &ctx.base_url))
    }

    /// The live row with this id; unknown ids and tombstones are both 404.
    async fn live_row(
        &self,
        id: &str,
        journal: &mut Journal,
    ) -> Result<ResourceRow, ProvisioningError> {
        let not_found = || ScimError::not_found(format!("no user {id}"));
        let uuid = Uuid::parse_str(id).map_err(|_| not_found())?;
        let row = self
            .store
            .get_resource(ResourceType::User, uuid)
            .await?
            .ok_or_else(not_found)?;
        journal.link(&row);
        if row.tombstone {
            return Err(not_found().into());
        }
        Ok(row)
    }

    /// Appends the request's mapping-log entry. A log that cannot be written does not fail
    /// the request (C4C has already changed); it is reported in the service log.
    async fn finish(&self, ctx: &RequestContext, journal: Journal, result: &UserResult) {
        // The body answered: single resources only (a list is not a provisioning).
        let response_body = match result {
            Ok(response) if ctx.method != "GET" => response
                .resource
                .as_ref()
                .map(|body| self.mapper.masked(body)),
            _ => None,
        };
        let (status, outcome, error) = match result {
            Ok(response) => (response.status, "ok", None),
            Err(failure) => (
                failure.error.status,
                if failure.error.status >= 500 {
                    "failed"
                } else {
                    "refused"
                },
                Some(failure.error.detail.clone()),
            ),
        };
        let entry = LogEntry {
            request_id: ctx.request_id.clone(),
            at: journal.at,
            client: ctx.client.clone(),
            method: ctx.method.clone(),
            path: ctx.path.clone(),
            resource_type: Some(ResourceType::User.as_str().to_owned()),
            resource_id: journal.resource_id,
            employee_id: journal.employee_id,
            object_id: journal.object_id,
            status: i64::from(status),
            outcome: outcome.to_owned(),
            duration_ms: i64::try_from(journal.started.elapsed().as_millis()).unwrap_or(i64::MAX),
            detail: json!({
                "action": journal.action,
                "trace": journal.trace,
                "odata": journal.odata,
                "safety": journal.safety,
                "time_to_lock_ms": journal.time_to_lock_ms,
                "error": error,
                "request": journal.request,
                "response": response_body,
            }),
        };
        // A read changed nothing: its record need not be stored before the answer goes out.
        let appended = if ctx.method == "GET" {
            self.store.append_read_log(entry).await
        } else {
            self.store.append_log(entry).await
        };
        if let Err(error) = appended {
            tracing::error!(%error, "cannot append to the mapping log");
        }
    }
}

/// Who asks, for the circuit breaker (also used by the group service).
pub(crate) fn requester(ctx: &RequestContext) -> Requester {
    Requester {
        client: ctx.client.clone(),
        request_id: ctx.request_id.clone(),
    }
}

fn check_version(row: &ResourceRow, if_match: Option<&str>) -> Result<(), ScimError> {
    etag::check_if_match(if_match, &version_of(row))
}

/// The SCIM version of a row: it grows with every change we make.
pub fn version_of(row: &ResourceRow) -> String {
    etag::weak(&row.version.to_string())
}

fn linked_object_id(row: &ResourceRow) -> Result<String, ScimError> {
    row.object_id.clone().ok_or_else(|| {
        ScimError::internal(format!("user {} is not linked to a C4C employee", row.id))
    })
}

pub(crate) fn set_id(resource: &mut Value, id: Uuid) {
    if let Some(object) = resource.as_object_mut() {
        object.insert("id".into(), Value::String(id.to_string()));
    }
}

fn with_id(row: &ResourceRow) -> Value {
    let mut resource = row.scim_json.clone();
    set_id(&mut resource, row.id);
    resource
}

pub(crate) fn is_active(resource: &Value) -> bool {
    resource.get("active").and_then(Value::as_bool) != Some(false)
}

pub(crate) fn external_id(resource: &Value) -> Option<String> {
    resource
        .get("externalId")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn rfc3339(millis: i64) -> Value {
    Utc.timestamp_millis_opt(millis)
        .single()
        .map(|time| Value::String(time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)))
        .unwrap_or(Value::Null)
}

/// The representation with `id` and `meta` (created, lastModified, version, location).
fn with_meta(row: &ResourceRow, base_url: &str) -> Value {
    let mut resource = with_id(row);
    if let Some(object) = resource.as_object_mut() {
        let mut meta = Map::new();
        meta.insert("resourceType".into(), json!("User"));
        meta.insert("created".into(), rfc3339(row.created_at));
        meta.insert("lastModified".into(), rfc3339(row.updated_at));
        meta.insert("version".into(), Value::String(version_of(row)));
        meta.insert(
            "location".into(),
            Value::String(format!("{base_url}/Users/{}", row.id)),
        );
        object.insert("meta".into(), Value::Object(meta));
    }
    resource
}

pub(crate) fn respond(status: u16, row: &ResourceRow, base_url: &str) -> UserResponse {
    UserResponse {
        status,
        resource: Some(with_meta(row, base_url)),
        version: Some(version_of(row)),
    }
}
