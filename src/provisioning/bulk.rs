//! `/Bulk` (RFC 7644 §3.7) executed against C4C: operations run in dependency order (bulkId
//! references resolved as they are created); runs of new users are sent as OData `$batch`es
//! of `batch_size` changesets (one per user, so one refusal does not undo the others), a few
//! `$batch`es in flight at once; every other operation goes through the user and group use
//! cases one by one. `failOnErrors` is checked after every round of `$batch`es and after every
//! single operation: operations already sent in a round are reported, the rest are not run.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::ProvisioningError;
use super::groups::{GroupService, Job, run_ordered};
use super::users::{
    RequestContext, UserResponse, UserService, external_id, is_active, respond, set_id,
};
use crate::c4c::{BusinessKey, C4cError, Employee, Fields};
use crate::mapping::{MapKind, NoReferences};
use crate::scim::bulk::{
    BulkMethod, BulkOperation, BulkOperationResult, BulkRequest, BulkResponse, PlanStep,
    references, resolve_path, resolve_references,
};
use crate::scim::error::ScimError;
use crate::scim::resource::validate_for_create;
use crate::scim::schema::{BulkLimits, USER_RESOURCE};
use crate::store::{LogEntry, NewResource, ResourceType, now_millis};

/// `[bulk]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BulkConfig {
    /// Serve `/Bulk` and advertise it.
    pub enabled: bool,
    /// Most operations in one request (`maxOperations`).
    pub max_operations: usize,
    /// New users per OData `$batch` (each in its own changeset).
    pub batch_size: usize,
    /// `$batch` calls in flight at once for one request (the C4C client's `max_in_flight`
    /// still caps all calls).
    pub parallel_batches: usize,
}

impl Default for BulkConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_operations: 1000,
            batch_size: 100,
            parallel_batches: 4,
        }
    }
}

impl BulkConfig {
    /// The advertised limits; the payload limit is the server's body limit.
    pub fn limits(&self, body_limit_bytes: usize) -> BulkLimits {
        BulkLimits {
            max_operations: self.max_operations,
            max_payload_size: body_limit_bytes,
        }
    }
}

pub struct BulkService {
    users: Arc<UserService>,
    groups: Arc<GroupService>,
    config: BulkConfig,
    limits: BulkLimits,
}

/// A new user of a `$batch` round, validated and mapped.
struct NewUser {
    index: usize,
    user: Value,
    user_name: String,
    fields: Fields,
    key: Option<BusinessKey>,
}

impl BulkService {
    pub fn new(
        users: Arc<UserService>,
        groups: Arc<GroupService>,
        config: BulkConfig,
        body_limit_bytes: usize,
    ) -> Self {
        let limits = config.limits(body_limit_bytes);
        Self {
            users,
            groups,
            config,
            limits,
        }
    }

    pub fn limits(&self) -> BulkLimits {
        self.limits
    }

    /// Runs a bulk request; the body is the raw bytes (size checked before parsing).
    pub async fn execute(&self, ctx: &RequestContext, raw: &[u8]) -> Result<Value, ScimError> {
        let request = BulkRequest::parse(raw, &self.limits)?;
        let plan = request.plan()?;
        let mut ids: HashMap<String, String> = HashMap::new();
        let mut results: Vec<Option<BulkOperationResult>> = vec![None; request.operations.len()];
        let mut index = 0;
        while index < plan.len() {
            if stop(&results, request.fail_on_errors) {
                break;
            }
            // A run of POST /Users whose data does not reference each other goes upstream in
            // rounds of `$batch`es.
            let mut wave = Vec::new();
            let mut wave_ids = HashSet::new();
            while let Some(step) = plan.get(index) {
                let (op_index, data) = match step {
                    PlanStep::Run(i) => (*i, request.operations[*i].data.clone()),
                    PlanStep::RunWith { index, data } => (*index, Some(data.clone())),
                    PlanStep::AddMembers { .. } => break,
                };
                let op = &request.operations[op_index];
                let is_user_post = op.method == BulkMethod::Post
                    && op
                        .target()
                        .is_ok_and(|t| t.resource_type.name.eq_ignore_ascii_case("User"));
                let data = data.unwrap_or(Value::Null);
                if !is_user_post || references(&data).iter().any(|r| wave_ids.contains(r)) {
                    break;
                }
                if let Some(bulk_id) = &op.bulk_id {
                    wave_ids.insert(bulk_id.clone());
                }
                wave.push((op_index, data));
                index += 1;
            }
            if !wave.is_empty() {
                self.create_users(ctx, &request, wave, &mut ids, &mut results)
                    .await;
                continue;
            }
            let Some(step) = plan.get(index) else { break };
            index += 1;
            match step {
                PlanStep::Run(i) => {
                    let op = &request.operations[*i];
                    let result = self.run_one(ctx, op, op.data.as_ref(), &ids).await;
                    record(&mut ids, op, &result);
                    results[*i] = Some(result);
                }
                PlanStep::RunWith { index: i, data } => {
                    let op = &request.operations[*i];
                    let result = self.run_one(ctx, op, Some(data), &ids).await;
                    record(&mut ids, op, &result);
                    results[*i] = Some(result);
                }
                PlanStep::AddMembers { index: i, patch } => {
                    let op = &request.operations[*i];
                    let Some(id) = op.bulk_id.as_ref().and_then(|b| ids.get(b)).cloned() else {
                        continue;
                    };
                    let patch_op = BulkOperation {
                        method: BulkMethod::Patch,
                        bulk_id: None,
                        version: None,
                        path: format!("/Groups/{id}"),
                        data: Some(patch.clone()),
                    };
                    let result = self.run_one(ctx, &patch_op, Some(patch), &ids).await;
                    if result.is_error() {
                        results[*i] = Some(BulkOperationResult {
                            method: op.method,
                            bulk_id: op.bulk_id.clone(),
                            ..result
                        });
                    }
                }
            }
        }
        let response = BulkResponse {
            operations: results.into_iter().flatten().collect(),
        };
        Ok(response.to_json())
    }

    /// One operation through the user or group use cases.
    async fn run_one(
        &self,
        ctx: &RequestContext,
        op: &BulkOperation,
        data: Option<&Value>,
        ids: &HashMap<String, String>,
    ) -> BulkOperationResult {
        let resolved = (|| -> Result<(String, Option<Value>), ScimError> {
            let path = resolve_path(&op.path, ids)?;
            let data = data.map(|d| resolve_references(d, ids)).transpose()?;
            Ok((path, data))
        })();
        let (path, data) = match resolved {
            Ok(resolved) => resolved,
            Err(error) => return BulkOperationResult::failed(op, &error),
        };
        let resolved_op = BulkOperation {
            path: path.clone(),
            ..op.clone()
        };
        let target = match resolved_op.target() {
            Ok(target) => target,
            Err(error) => return BulkOperationResult::failed(op, &error),
        };
        let op_ctx = RequestContext {
            method: op.method.as_str().to_owned(),
            path: format!("{} (bulk)", path),
            ..ctx.clone()
        };
        let body = data.unwrap_or(Value::Null);
        let if_match = op.version.as_deref();
        let is_group = target.resource_type.name.eq_ignore_ascii_case("Group");
        let id = target.id.unwrap_or_default();
        let result = match (is_group, op.method) {
            (false, BulkMethod::Post) => self.users.create(&op_ctx, &body).await,
            (false, BulkMethod::Put) => self.users.replace(&op_ctx, &id, &body, if_match).await,
            (false, BulkMethod::Patch) => self.users.patch(&op_ctx, &id, &body, if_match).await,
            (false, BulkMethod::Delete) => self.users.delete(&op_ctx, &id, if_match).await,
            (true, BulkMethod::Post) => self.groups.create(&op_ctx, &body).await,
            (true, BulkMethod::Put) => self.groups.replace(&op_ctx, &id, &body, if_match).await,
            (true, BulkMethod::Patch) => self.groups.patch(&op_ctx, &id, &body, if_match).await,
            (true, BulkMethod::Delete) => self.groups.delete(&op_ctx, &id, if_match).await,
        };
        to_result(op, result)
    }

    /// New users in rounds of `parallel_batches` × `batch_size`.
    async fn create_users(
        &self,
        ctx: &RequestContext,
        request: &BulkRequest,
        wave: Vec<(usize, Value)>,
        ids: &mut HashMap<String, String>,
        results: &mut [Option<BulkOperationResult>],
    ) {
        let mut batch_size = self.config.batch_size.max(1);
        let mut round = batch_size * self.config.parallel_batches.max(1);
        let mut rest: &[(usize, Value)] = &wave;
        while !rest.is_empty() {
            if stop(results, request.fail_on_errors) {
                return;
            }
            // Under failOnErrors, a round never holds more operations than the errors still
            // allowed: even if all of them fail, none runs after the limit is reached.
            if let Some(allowed) = errors_still_allowed(results, request.fail_on_errors) {
                round = round.min(allowed);
                batch_size = batch_size.min(allowed);
            }
            let (round_ops, later) = rest.split_at(round.min(rest.len()));
            rest = later;
            let chunks: Vec<&[(usize, Value)]> = round_ops.chunks(batch_size).collect();
            let known: &HashMap<String, String> = ids;
            let jobs: Vec<Job<'_, Vec<(usize, BulkOperationResult)>>> = chunks
                .into_iter()
                .map(|chunk| -> Job<'_, _> {
                    Box::pin(self.create_chunk(ctx, request, chunk, known))
                })
                .collect();
            let outcomes = run_ordered(jobs, self.config.parallel_batches).await;
            for (index, result) in outcomes.into_iter().flatten() {
                let op = &request.operations[index];
                record(ids, op, &result);
                results[index] = Some(result);
            }
        }
    }

    /// One `$batch` of new users. Users that need more than a create (a taken or returning
    /// userName, an employee already in C4C) go through the single-request path instead.
    async fn create_chunk(
        &self,
        ctx: &RequestContext,
        request: &BulkRequest,
        chunk: &[(usize, Value)],
        ids: &HashMap<String, String>,
    ) -> Vec<(usize, BulkOperationResult)> {
        let users = &self.users;
        let mut out = Vec::with_capacity(chunk.len());
        let mut fresh: Vec<NewUser> = Vec::new();
        let mut single: Vec<(usize, Value)> = Vec::new();
        let mut names = HashSet::new();
        for (index, data) in chunk {
            let op = &request.operations[*index];
            let prepared = (|| -> Result<NewUser, ProvisioningError> {
                let data = resolve_references(data, ids)?;
                let user = validate_for_create(&USER_RESOURCE, &data)?;
                let user_name = user
                    .get("userName")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                if !names.insert(user_name.to_lowercase()) {
                    return Err(ScimError::uniqueness(format!(
                        "userName {user_name:?} is created twice in this request"
                    ))
                    .into());
                }
                let mapped = users.mapper.to_c4c(&user, MapKind::Create, &NoReferences)?;
                let key = users.mapper.business_key(&mapped);
                Ok(NewUser {
                    index: *index,
                    user,
                    user_name,
                    fields: mapped.fields,
                    key,
                })
            })();
            match prepared {
                Ok(new) => fresh.push(new),
                Err(error) => out.push((*index, failed(op, error))),
            }
        }
        // Hold every userName's lock (sorted: two bulks cannot deadlock) while creating.
        let mut lock_names: Vec<String> = fresh
            .iter()
            .map(|n| format!("userName:{}", n.user_name.to_lowercase()))
            .collect();
        lock_names.sort();
        let mut guards = Vec::with_capacity(lock_names.len());
        for name in &lock_names {
            guards.push(users.locks.lock(name.clone()).await);
        }
        // Other replicas on the same store: the same keys the single-request path locks.
        let shared = match users.store.lock_many_across_replicas(&lock_names).await {
            Ok(shared) => shared,
            Err(error) => {
                let failure = ProvisioningError::from(error);
                for new in fresh {
                    out.push((
                        new.index,
                        failed(&request.operations[new.index], failure.clone()),
                    ));
                }
                return out;
            }
        };
        // Taken or returning userNames, and employees C4C already has: the single path.
        let mut remaining = Vec::with_capacity(fresh.len());
        for new in fresh {
            let taken = users
                .store
                .find_live_by_name(ResourceType::User, &new.user_name)
                .await;
            let returning = users
                .store
                .find_tombstone_by_name(ResourceType::User, &new.user_name)
                .await;
            match (taken, returning) {
                (Ok(None), Ok(None)) => remaining.push(new),
                (Ok(_), Ok(_)) => single.push((new.index, new.user)),
                (Err(error), _) | (_, Err(error)) => {
                    out.push((
                        new.index,
                        failed(&request.operations[new.index], error.into()),
                    ));
                }
            }
        }
        let (existing, lookup_error) = match self.find_existing(&remaining).await {
            Ok(found) => (found, None),
            Err(error) => (HashSet::new(), Some(error)),
        };
        let mut to_send = Vec::with_capacity(remaining.len());
        for new in remaining {
            if let Some(error) = &lookup_error {
                out.push((
                    new.index,
                    failed(&request.operations[new.index], error.clone().into()),
                ));
            } else if existing.contains(&new.index) {
                single.push((new.index, new.user));
            } else {
                to_send.push(new);
            }
        }
        let started = Instant::now();
        let created = if to_send.iter().all(|n| n.key.is_some()) {
            let items: Vec<(Fields, BusinessKey)> = to_send
                .iter()
                .filter_map(|n| n.key.clone().map(|key| (n.fields.clone(), key)))
                .collect();
            users.c4c.batch_create_employees_once(&items).await
        } else {
            let fields: Vec<Fields> = to_send.iter().map(|n| n.fields.clone()).collect();
            users.c4c.batch_create_employees(&fields).await
        };
        let batch_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        match created {
            Ok(employees) => {
                for (new, employee) in to_send.into_iter().zip(employees) {
                    let index = new.index;
                    let op = &request.operations[index];
                    let result = match employee {
                        Ok(employee) => self.link_new(ctx, op, new, employee, batch_ms).await,
                        Err(error) => {
                            let failure = ProvisioningError::from(error);
                            self.log(
                                ctx,
                                op,
                                None,
                                failure.error.status,
                                batch_ms,
                                Some(&failure.error.detail),
                            )
                            .await;
                            failed(op, failure)
                        }
                    };
                    out.push((index, result));
                }
            }
            Err(error) => {
                for new in to_send {
                    let op = &request.operations[new.index];
                    out.push((new.index, failed(op, error.clone().into())));
                }
            }
        }
        shared.release().await;
        drop(guards);
        for (index, user) in single {
            let op = &request.operations[index];
            let op_ctx = RequestContext {
                method: "POST".into(),
                path: format!("{} (bulk)", op.path),
                ..ctx.clone()
            };
            out.push((index, to_result(op, users.create(&op_ctx, &user).await)));
        }
        out
    }

    /// Indexes (into `users`) of new users whose business key already names an employee:
    /// one read per key kind and up to `max_or_values` keys (sent in one `$batch`).
    async fn find_existing(&self, users: &[NewUser]) -> Result<HashSet<usize>, C4cError> {
        let mut by_property: HashMap<String, Vec<String>> = HashMap::new();
        for new in users {
            let (property, value) = match &new.key {
                Some(BusinessKey::EmployeeId(id)) => ("EmployeeID".to_owned(), id.clone()),
                Some(BusinessKey::UserIdAndEmail { user_id, .. }) => {
                    ("UserID".to_owned(), user_id.clone())
                }
                Some(BusinessKey::Property { name, value }) => (name.clone(), value.clone()),
                None => continue,
            };
            by_property.entry(property).or_default().push(value);
        }
        let mut found: Vec<Employee> = Vec::new();
        for (property, values) in by_property {
            found.extend(self.users.c4c.find_employees_by(&property, &values).await?);
        }
        Ok(users
            .iter()
            .filter(|new| {
                new.key
                    .as_ref()
                    .is_some_and(|key| found.iter().any(|e| key.matches(e)))
            })
            .map(|new| new.index)
            .collect())
    }

    /// Stores the row of a user C4C just created and answers 201.
    async fn link_new(
        &self,
        ctx: &RequestContext,
        op: &BulkOperation,
        new: NewUser,
        employee: Employee,
        batch_ms: i64,
    ) -> BulkOperationResult {
        let id = crate::store::new_resource_id();
        let mut resource = new.user;
        set_id(&mut resource, id);
        let row = self
            .users
            .store
            .insert_resource(&NewResource {
                id,
                resource_type: ResourceType::User,
                object_id: Some(employee.object_id.clone()),
                employee_id: employee.employee_id.clone(),
                external_id: external_id(&resource),
                user_name: new.user_name,
                active: is_active(&resource),
                scim_json: resource,
            })
            .await;
        match row {
            Ok(row) => {
                self.log(ctx, op, Some(&row), 201, batch_ms, None).await;
                to_result(op, Ok(respond(201, &row, &ctx.base_url)))
            }
            Err(error) => {
                let failure = ProvisioningError::from(error);
                self.log(
                    ctx,
                    op,
                    None,
                    failure.error.status,
                    batch_ms,
                    Some(&failure.error.detail),
                )
                .await;
                failed(op, failure)
            }
        }
    }

    async fn log(
        &self,
        ctx: &RequestContext,
        op: &BulkOperation,
        row: Option<&crate::store::ResourceRow>,
        status: u16,
        batch_ms: i64,
        error: Option<&str>,
    ) {
        let entry = LogEntry {
            request_id: ctx.request_id.clone(),
            at: now_millis(),
            client: ctx.client.clone(),
            method: "POST".into(),
            path: format!("{} (bulk)", op.path),
            resource_type: Some(ResourceType::User.as_str().to_owned()),
            resource_id: row.map(|r| r.id.to_string()),
            employee_id: row.and_then(|r| r.employee_id.clone()),
            object_id: row.and_then(|r| r.object_id.clone()),
            status: i64::from(status),
            outcome: match status {
                0..400 => "ok",
                400..500 => "refused",
                _ => "failed",
            }
            .to_owned(),
            duration_ms: batch_ms,
            detail: json!({
                "action": "create",
                "bulk_id": op.bulk_id,
                "odata": [{"call": "batch_create_employees", "ok": error.is_none(), "duration_ms": batch_ms}],
                "error": error,
            }),
        };
        if let Err(error) = self.users.store.append_log(entry).await {
            tracing::error!(%error, "cannot append to the mapping log");
        }
    }
}

fn stop(results: &[Option<BulkOperationResult>], fail_on_errors: Option<usize>) -> bool {
    errors_still_allowed(results, fail_on_errors) == Some(0)
}

/// How many more operations may fail before failOnErrors stops the request (`None`: no limit).
fn errors_still_allowed(
    results: &[Option<BulkOperationResult>],
    fail_on_errors: Option<usize>,
) -> Option<usize> {
    let limit = fail_on_errors?;
    let errors = results.iter().flatten().filter(|r| r.is_error()).count();
    Some(limit.saturating_sub(errors))
}

/// Remembers the id a POST with a bulkId created, for later references.
fn record(ids: &mut HashMap<String, String>, op: &BulkOperation, result: &BulkOperationResult) {
    if op.method != BulkMethod::Post || result.is_error() {
        return;
    }
    if let (Some(bulk_id), Some(location)) = (&op.bulk_id, &result.location)
        && let Some(id) = location.rsplit('/').next()
    {
        ids.insert(bulk_id.clone(), id.to_owned());
    }
}

fn failed(op: &BulkOperation, failure: ProvisioningError) -> BulkOperationResult {
    BulkOperationResult::failed(op, &failure.error)
}

fn to_result(
    op: &BulkOperation,
    result: Result<UserResponse, ProvisioningError>,
) -> BulkOperationResult {
    match result {
        Ok(response) => BulkOperationResult {
            method: op.method,
            bulk_id: op.bulk_id.clone(),
            version: response.version,
            location: response
                .resource
                .as_ref()
                .and_then(|r| r["meta"]["location"].as_str())
                .map(str::to_owned)
                .or_else(|| (op.method != BulkMethod::Post).then(|| op.path.clone())),
            status: response.status,
            response: None,
        },
        Err(failure) => failed(op, failure),
    }
}
