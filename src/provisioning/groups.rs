//! SCIM Groups onto C4C business roles (or org units), by configuration.
//!
//! A group is a row of our own (C4C has no group object); its members are rows in
//! `group_members`, each with the ObjectID of the C4C assignment that carries it, so that a
//! removal costs one DELETE. Business roles are never created: a role the tenant does not know
//! is reported. Assignments that existed before the bridge (made by hand) are recorded as
//! unmanaged and left alone when the member leaves, unless `remove_unmanaged` is set. Groups
//! that map to nothing are kept locally only.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use futures::StreamExt;
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::safety::{Admission, HoldPolicy, Requester, Reservation, RoleRemoval, Safety};
use super::users::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, RequestContext, UserResponse, requester};
use super::{KeyedLocks, ProvisioningError};
use crate::c4c::model::{NewOrgUnitAssignment, ORG_ASSIGNMENT_SET, ROLE_ASSIGNMENT_SET};
use crate::c4c::{
    BatchChange, BatchPart, BatchPartResult, C4cClient, C4cError, ErrorKind, OrgUnitAssignment,
    RoleAssignment,
};
use crate::scim::error::ScimError;
use crate::scim::etag;
use crate::scim::filter::{CompValue, CompareOp, Filter};
use crate::scim::list::{ListQuery, ListResponse};
use crate::scim::patch::PatchRequest;
use crate::scim::resource::{project, validate_for_create, validate_for_replace, validate_stored};
use crate::scim::schema::GROUP_RESOURCE;
use crate::store::{
    LogEntry, MemberRow, NewResource, ResourceRow, ResourceType, Store, now_millis,
};

/// The schema of the read-only extension that tells what a group maps to in C4C.
pub const C4C_GROUP_EXTENSION: &str = "urn:c4c-scim-bridge:schemas:extension:c4c:2.0:Group";

pub type GroupResult = Result<UserResponse, ProvisioningError>;

/// A boxed, `Send` future: stream combinators over borrowing async blocks need the explicit
/// bound, or the compiler cannot prove the handler's future `Send`.
pub(crate) type Job<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Runs `jobs` with at most `parallel` at once, results in input order.
pub(crate) async fn run_ordered<T>(jobs: Vec<Job<'_, T>>, parallel: usize) -> Vec<T> {
    futures::stream::iter(jobs)
        .buffered(parallel.max(1))
        .collect()
        .await
}

/// `[groups]`: how SCIM groups map onto C4C.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GroupsConfig {
    /// First matching rule wins; a group no rule matches is kept locally, unmapped.
    pub rules: Vec<GroupRule>,
    /// Also delete assignments the bridge did not make (found already present in C4C) when
    /// their member leaves the group. Off by default: hand-made access is left alone.
    pub remove_unmanaged: bool,
    /// Assignment creates or deletes per OData `$batch` (each in its own changeset).
    pub batch_size: usize,
    /// `$batch` calls a large membership change keeps in flight at once (the C4C client's
    /// `max_in_flight` still caps all calls).
    pub parallel_batches: usize,
    /// Above this many added members, the role's holders are read once (paged) instead of
    /// reading each new member's assignments.
    pub holders_read_threshold: usize,
}

impl Default for GroupsConfig {
    fn default() -> Self {
        Self {
            rules: Vec::new(),
            remove_unmanaged: false,
            batch_size: 100,
            parallel_batches: 4,
            holders_read_threshold: 500,
        }
    }
}

/// One mapping rule: which groups (one of `display_name`, `external_id`, `pattern`) map to
/// what (one of `business_role`, `org_unit`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GroupRule {
    /// Exact displayName, compared case-insensitively.
    pub display_name: Option<String>,
    /// Exact externalId.
    pub external_id: Option<String>,
    /// A regular expression over displayName; `business_role` / `org_unit` may use its
    /// capture groups (`$1`, `${name}`).
    pub pattern: Option<String>,
    /// The C4C BusinessRoleID (must exist in the tenant; the bridge does not create roles).
    pub business_role: Option<String>,
    /// The C4C OrgUnitID, to map the group to an org-unit assignment instead.
    pub org_unit: Option<String>,
    /// RoleCode of the org-unit assignment (e.g. "222").
    pub org_role_code: Option<String>,
}

/// What a group maps to in C4C.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    BusinessRole(String),
    OrgUnit {
        org_unit: String,
        role_code: Option<String>,
    },
}

impl Target {
    /// The form kept in `group_members.target`.
    pub fn key(&self) -> String {
        match self {
            Target::BusinessRole(role) => format!("role:{role}"),
            Target::OrgUnit { org_unit, .. } => format!("org:{org_unit}"),
        }
    }

    fn describe(&self) -> Value {
        match self {
            Target::BusinessRole(role) => {
                json!({"mapping": "businessRole", "businessRoleId": role})
            }
            Target::OrgUnit {
                org_unit,
                role_code,
            } => json!({"mapping": "orgUnit", "orgUnitId": org_unit, "roleCode": role_code}),
        }
    }
}

enum Matcher {
    DisplayName(String),
    ExternalId(String),
    Pattern(Regex),
}

struct CompiledRule {
    matcher: Matcher,
    rule: GroupRule,
}

/// The compiled `[groups]` rules.
pub struct GroupMapper {
    rules: Vec<CompiledRule>,
}

impl GroupMapper {
    /// Compiles the rules; a rule that names no or two matchers or targets, or a bad regular
    /// expression, is an error naming the rule.
    pub fn new(config: &GroupsConfig) -> Result<Self, String> {
        let mut rules = Vec::with_capacity(config.rules.len());
        for (index, rule) in config.rules.iter().enumerate() {
            let name = format!("groups.rules[{index}]");
            let matcher = match (&rule.display_name, &rule.external_id, &rule.pattern) {
                (Some(name), None, None) => Matcher::DisplayName(name.to_lowercase()),
                (None, Some(id), None) => Matcher::ExternalId(id.clone()),
                (None, None, Some(pattern)) => Matcher::Pattern(
                    Regex::new(pattern).map_err(|error| format!("{name}.pattern: {error}"))?,
                ),
                _ => {
                    return Err(format!(
                        "{name}: set exactly one of display_name, external_id, pattern"
                    ));
                }
            };
            match (&rule.business_role, &rule.org_unit) {
                (Some(role), None) if !role.trim().is_empty() => {}
                (None, Some(unit)) if !unit.trim().is_empty() => {}
                _ => {
                    return Err(format!(
                        "{name}: set exactly one of business_role, org_unit (not empty)"
                    ));
                }
            }
            rules.push(CompiledRule {
                matcher,
                rule: rule.clone(),
            });
        }
        Ok(Self { rules })
    }

    /// The target of a group, or `None` when no rule matches (an unmapped group).
    pub fn target(&self, display_name: &str, external_id: Option<&str>) -> Option<Target> {
        for compiled in &self.rules {
            let expand = |template: &str| -> Option<String> {
                match &compiled.matcher {
                    Matcher::DisplayName(name) => {
                        (display_name.to_lowercase() == *name).then(|| template.to_owned())
                    }
                    Matcher::ExternalId(id) => {
                        (external_id == Some(id.as_str())).then(|| template.to_owned())
                    }
                    Matcher::Pattern(regex) => regex.captures(display_name).map(|captures| {
                        let mut out = String::new();
                        captures.expand(template, &mut out);
                        out
                    }),
                }
            };
            let rule = &compiled.rule;
            let found = match (&rule.business_role, &rule.org_unit) {
                (Some(role), _) => expand(role).map(Target::BusinessRole),
                (None, Some(unit)) => expand(unit).map(|org_unit| Target::OrgUnit {
                    org_unit,
                    role_code: rule.org_role_code.clone(),
                }),
                (None, None) => None,
            };
            if let Some(target) = found.filter(|target| match target {
                Target::BusinessRole(role) => !role.is_empty(),
                Target::OrgUnit { org_unit, .. } => !org_unit.is_empty(),
            }) {
                return Some(target);
            }
        }
        None
    }
}

/// A user named as a member, resolved to its employee.
#[derive(Debug, Clone)]
struct MemberUser {
    id: Uuid,
    object_id: String,
}

/// What a membership change did, for the mapping log and the answer.
#[derive(Debug, Default)]
struct Outcome {
    created: usize,
    deleted: usize,
    adopted: usize,
    /// Role removals the circuit breaker held (the member stays until an operator decides).
    held: usize,
    failures: Vec<(Uuid, C4cError)>,
    /// The breaker could not decide (its store failed): the removal was not made.
    unsure: Option<String>,
    calls: usize,
}

/// The group use cases. Cheap to share behind an `Arc`.
pub struct GroupService {
    store: Store,
    c4c: C4cClient,
    mapper: GroupMapper,
    config: GroupsConfig,
    locks: KeyedLocks,
    /// The deprovisioning circuit breaker, shared with the user service.
    safety: Option<Safety>,
}

impl GroupService {
    pub fn new(store: Store, c4c: C4cClient, config: GroupsConfig) -> Result<Self, String> {
        let mapper = GroupMapper::new(&config)?;
        Ok(Self {
            store,
            c4c,
            mapper,
            config,
            locks: KeyedLocks::default(),
            safety: None,
        })
    }

    /// Business-role removals go through the circuit breaker: a mass removal (a deleted group,
    /// a broken scoping rule) is held like a mass deactivation.
    pub fn with_safety(mut self, safety: Safety) -> Self {
        self.safety = Some(safety);
        self
    }

    pub async fn create(&self, ctx: &RequestContext, body: &Value) -> GroupResult {
        let started = (now_millis(), Instant::now());
        let mut outcome = Outcome::default();
        let result = self.create_inner(ctx, body, &mut outcome).await;
        self.finish(ctx, started, "create", &outcome, &result).await;
        result
    }

    pub async fn get(&self, ctx: &RequestContext, id: &str, query: &ListQuery) -> GroupResult {
        let row = self.live_row(id).await?;
        let wants_members = wants_members(query);
        let resource = self
            .representation(&row, wants_members, &ctx.base_url)
            .await?;
        Ok(UserResponse {
            status: 200,
            resource: Some(with_extension(
                project(
                    &GROUP_RESOURCE,
                    &resource,
                    &query.attributes,
                    &query.excluded_attributes,
                ),
                &self.mapper,
                &row,
            )),
            version: Some(version_of(&row)),
        })
    }

    pub async fn replace(
        &self,
        ctx: &RequestContext,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> GroupResult {
        let started = (now_millis(), Instant::now());
        let mut outcome = Outcome::default();
        let result = self
            .change(ctx, id, if_match, &mut outcome, |current| {
                validate_for_replace(&GROUP_RESOURCE, body, current)
            })
            .await;
        self.finish(ctx, started, "replace", &outcome, &result)
            .await;
        result
    }

    pub async fn patch(
        &self,
        ctx: &RequestContext,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> GroupResult {
        let started = (now_millis(), Instant::now());
        let mut outcome = Outcome::default();
        let result = match PatchRequest::from_json(body) {
            Ok(request) => {
                self.change(ctx, id, if_match, &mut outcome, |current| {
                    let patched = request.apply(current, &GROUP_RESOURCE)?;
                    validate_stored(&GROUP_RESOURCE, &patched)
                })
                .await
            }
            Err(error) => Err(error.into()),
        };
        self.finish(ctx, started, "patch", &outcome, &result).await;
        result
    }

    /// Removes the group: the assignments it made are deleted; employees are not touched.
    pub async fn delete(
        &self,
        ctx: &RequestContext,
        id: &str,
        if_match: Option<&str>,
    ) -> GroupResult {
        let started = (now_millis(), Instant::now());
        let mut outcome = Outcome::default();
        let result = self.delete_inner(ctx, id, if_match, &mut outcome).await;
        self.finish(ctx, started, "delete", &outcome, &result).await;
        result
    }

    /// GET /Groups: answered from the store. Members are read only when returned.
    pub async fn list(&self, ctx: &RequestContext, query: &ListQuery) -> GroupResult {
        let rows = self.candidates(query.filter.as_ref()).await?;
        let members = wants_members(query);
        let mut resources = Vec::with_capacity(rows.len());
        // Filter and page first on member-less representations; read members of the page only.
        for row in &rows {
            resources.push(self.representation(row, false, &ctx.base_url).await?);
        }
        let unprojected = ListQuery {
            attributes: Vec::new(),
            excluded_attributes: Vec::new(),
            ..query.clone()
        };
        let page =
            unprojected.apply(&GROUP_RESOURCE, resources, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
        let mut out = Vec::with_capacity(page.resources.len());
        for resource in page.resources {
            let row = resource["id"]
                .as_str()
                .and_then(|id| rows.iter().find(|row| row.id.to_string() == id));
            let Some(row) = row else { continue };
            let full = if members {
                self.representation(row, true, &ctx.base_url).await?
            } else {
                resource
            };
            out.push(with_extension(
                project(
                    &GROUP_RESOURCE,
                    &full,
                    &query.attributes,
                    &query.excluded_attributes,
                ),
                &self.mapper,
                row,
            ));
        }
        let body = ListResponse::new(page.total_results, query.start_index, out).to_json();
        Ok(UserResponse {
            status: 200,
            resource: Some(body),
            version: None,
        })
    }

    async fn candidates(
        &self,
        filter: Option<&Filter>,
    ) -> Result<Vec<ResourceRow>, ProvisioningError> {
        if let Some(Filter::Compare(path, CompareOp::Eq, CompValue::Str(value))) = filter
            && path.uri.is_none()
            && path.sub_attr.is_none()
        {
            let found = match path.name.to_ascii_lowercase().as_str() {
                "displayname" => Some(
                    self.store
                        .find_live_by_name(ResourceType::Group, value)
                        .await?,
                ),
                "externalid" => Some(
                    self.store
                        .find_live_by_external_id(ResourceType::Group, value)
                        .await?,
                ),
                "id" => Some(match Uuid::parse_str(value) {
                    Ok(id) => self
                        .store
                        .get_resource(ResourceType::Group, id)
                        .await?
                        .filter(|row| !row.tombstone),
                    Err(_) => None,
                }),
                _ => None,
            };
            if let Some(found) = found {
                return Ok(found.into_iter().collect());
            }
        }
        const PAGE: i64 = 1000;
        let mut rows = Vec::new();
        loop {
            let offset = i64::try_from(rows.len()).unwrap_or(i64::MAX);
            let (page, total) = self
                .store
                .list_live_resources(ResourceType::Group, offset, PAGE)
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
        outcome: &mut Outcome,
    ) -> GroupResult {
        let group = validate_for_create(&GROUP_RESOURCE, body)?;
        let display_name = display_name(&group);
        let _local = self
            .locks
            .lock(format!("groupName:{}", display_name.to_lowercase()))
            .await;
        let shared = self
            .store
            .lock_across_replicas(&format!("groupName:{}", display_name.to_lowercase()))
            .await?;
        let result = self.create_locked(ctx, group, display_name, outcome).await;
        shared.release().await;
        result
    }

    async fn create_locked(
        &self,
        ctx: &RequestContext,
        group: Value,
        display_name: String,
        outcome: &mut Outcome,
    ) -> GroupResult {
        if let Some(existing) = self
            .store
            .find_live_by_name(ResourceType::Group, &display_name)
            .await?
        {
            return Err(ScimError::uniqueness(format!(
                "displayName {display_name:?} is already taken by group {}",
                existing.id
            ))
            .into());
        }
        let desired = self.resolve_members(&group).await?;
        let target = self
            .mapper
            .target(&display_name, external_id(&group).as_deref());
        let id = crate::store::new_resource_id();
        let (added, removed) = self
            .sync_members(&requester(ctx), id, target.as_ref(), &[], &desired, outcome)
            .await;
        debug_assert!(removed.is_empty());
        if let Some(missing) = role_missing(target.as_ref(), outcome) {
            // Nothing was assigned: the group is not created, so the client sees why.
            return Err(missing.into());
        }
        let mut resource = strip_members(group);
        set_id(&mut resource, id);
        let row = self
            .store
            .insert_resource(&NewResource {
                id,
                resource_type: ResourceType::Group,
                object_id: None,
                employee_id: None,
                external_id: external_id(&resource),
                user_name: display_name,
                scim_json: resource,
                active: true,
            })
            .await?;
        self.store.upsert_group_members(id, &added).await?;
        // The group is kept with the assignments C4C made (rolling them back could fail too and
        // leave assignments nobody tracks): a client that looks the group up before a retry, as
        // Entra ID and Okta do, finds it and finishes with a PUT or PATCH.
        failure(outcome).map_err(|mut failed| {
            failed.error.detail = format!(
                "{}. The group was stored as {id} with the members C4C accepted; update it to \
                 finish rather than creating it again.",
                failed
                    .error
                    .detail
                    .trim_end_matches("; repeat the request to finish"),
            );
            failed
        })?;
        let resource = self.representation(&row, true, &ctx.base_url).await?;
        Ok(respond(201, &row, resource, &self.mapper))
    }

    /// PUT and PATCH: `update` turns the current representation (with members) into the new.
    async fn change(
        &self,
        ctx: &RequestContext,
        id: &str,
        if_match: Option<&str>,
        outcome: &mut Outcome,
        update: impl FnOnce(&Value) -> Result<Value, ScimError>,
    ) -> GroupResult {
        let key = format!("Group:{id}");
        let _local = self.locks.lock(key.clone()).await;
        let shared = self.store.lock_across_replicas(&key).await?;
        let result = self.change_locked(ctx, id, if_match, outcome, update).await;
        shared.release().await;
        result
    }

    async fn change_locked(
        &self,
        ctx: &RequestContext,
        id: &str,
        if_match: Option<&str>,
        outcome: &mut Outcome,
        update: impl FnOnce(&Value) -> Result<Value, ScimError>,
    ) -> GroupResult {
        let mut row = self.live_row(id).await?;
        etag::check_if_match(if_match, &version_of(&row))?;
        let current_members = self.store.group_members(row.id).await?;
        let mut current = with_id(&row);
        if let Some(object) = current.as_object_mut() {
            object.insert(
                "members".into(),
                Value::Array(
                    current_members
                        .iter()
                        .map(|m| json!({"value": m.user_id.to_string(), "type": "User"}))
                        .collect(),
                ),
            );
        }
        let new = update(&current)?;
        let display_name = display_name(&new);
        if !display_name.eq_ignore_ascii_case(&row.user_name)
            && let Some(other) = self
                .store
                .find_live_by_name(ResourceType::Group, &display_name)
                .await?
            && other.id != row.id
        {
            return Err(ScimError::uniqueness(format!(
                "displayName {display_name:?} is already taken by group {}",
                other.id
            ))
            .into());
        }
        let desired = self.resolve_members(&new).await?;
        let target = self
            .mapper
            .target(&display_name, external_id(&new).as_deref());
        let (added, removed) = self
            .sync_members(
                &requester(ctx),
                row.id,
                target.as_ref(),
                &current_members,
                &desired,
                outcome,
            )
            .await;
        if let Some(missing) = role_missing(target.as_ref(), outcome)
            && removed.is_empty()
        {
            return Err(missing.into());
        }
        self.store.remove_group_members(row.id, &removed).await?;
        self.store.upsert_group_members(row.id, &added).await?;
        row.user_name = display_name;
        row.external_id = external_id(&new);
        row.scim_json = strip_members(new);
        let row = self.store.update_resource(&row).await?;
        failure(outcome)?;
        self.held(outcome)?;
        let resource = self.representation(&row, true, &ctx.base_url).await?;
        Ok(respond(200, &row, resource, &self.mapper))
    }

    async fn delete_inner(
        &self,
        ctx: &RequestContext,
        id: &str,
        if_match: Option<&str>,
        outcome: &mut Outcome,
    ) -> GroupResult {
        let key = format!("Group:{id}");
        let _local = self.locks.lock(key.clone()).await;
        let shared = self.store.lock_across_replicas(&key).await?;
        let result = async {
            let mut row = self.live_row(id).await?;
            etag::check_if_match(if_match, &version_of(&row))?;
            let current = self.store.group_members(row.id).await?;
            let (_, removed) = self
                .sync_members(&requester(ctx), row.id, None, &current, &[], outcome)
                .await;
            self.store.remove_group_members(row.id, &removed).await?;
            failure(outcome)?;
            // Under `retry_later` the group stays, with its held members, for the retry.
            self.held(outcome)?;
            self.store.clear_group_members(row.id).await?;
            row.tombstone = true;
            row.active = false;
            self.store.update_resource(&row).await?;
            Ok(UserResponse {
                status: 204,
                resource: None,
                version: None,
            })
        }
        .await;
        shared.release().await;
        result
    }

    /// Brings C4C and the member rows from `current` to `desired` under `target`. Returns the
    /// rows to upsert and the users whose rows to remove; failures are left in `outcome`
    /// (their rows stay as they were, so a retry of the request finishes the job).
    async fn sync_members(
        &self,
        requester: &Requester,
        group_id: Uuid,
        target: Option<&Target>,
        current: &[MemberRow],
        desired: &[MemberUser],
        outcome: &mut Outcome,
    ) -> (Vec<MemberRow>, Vec<Uuid>) {
        let target_key = target.map(Target::key);
        let desired_ids: HashSet<Uuid> = desired.iter().map(|m| m.id).collect();
        let current_by_user: HashMap<Uuid, &MemberRow> =
            current.iter().map(|m| (m.user_id, m)).collect();
        // Leaving members, and members whose assignment was for another target (a rename).
        let leaving: Vec<&MemberRow> = current
            .iter()
            .filter(|m| !desired_ids.contains(&m.user_id) || m.target != target_key)
            .collect();
        let joining: Vec<&MemberUser> = desired
            .iter()
            .filter(|m| {
                current_by_user
                    .get(&m.id)
                    .is_none_or(|row| row.target != target_key)
            })
            .collect();

        let mut removed = Vec::new();
        let mut role_deletes = Vec::new();
        let mut org_deletes = Vec::new();
        for member in leaving {
            match (&member.target, &member.assignment_object_id) {
                (Some(kind), Some(assignment))
                    if member.managed || self.config.remove_unmanaged =>
                {
                    if kind.starts_with("org:") {
                        org_deletes.push((member.user_id, assignment.clone()));
                    } else {
                        role_deletes.push((member.user_id, assignment.clone()));
                    }
                }
                _ => removed.push(member.user_id),
            }
        }
        let (role_deletes, mut admitted) = self
            .admit_role_removals(requester, group_id, role_deletes, outcome)
            .await;
        for (set, deletes) in [
            (ROLE_ASSIGNMENT_SET, role_deletes),
            (ORG_ASSIGNMENT_SET, org_deletes),
        ] {
            let done = self.delete_assignments(set, deletes, outcome).await;
            if set == ROLE_ASSIGNMENT_SET {
                self.record_role_removals(requester, std::mem::take(&mut admitted), &done)
                    .await;
            }
            removed.extend(done);
        }
        let failed: HashSet<Uuid> = outcome.failures.iter().map(|(id, _)| *id).collect();
        let joining: Vec<&MemberUser> = joining
            .into_iter()
            .filter(|m| !failed.contains(&m.id))
            .collect();

        let added = match target {
            None => joining
                .iter()
                .map(|m| MemberRow {
                    user_id: m.id,
                    target: None,
                    assignment_object_id: None,
                    managed: false,
                })
                .collect(),
            Some(target) => self.assign(group_id, target, &joining, outcome).await,
        };
        // A member both leaving (old target) and joining (new target) keeps one row: the new.
        let added_ids: HashSet<Uuid> = added.iter().map(|m| m.user_id).collect();
        removed.retain(|id| !added_ids.contains(id));
        (added, removed)
    }

    /// The answer when role removals were held: none under `hold_quietly` (success, the
    /// operator decides later), 503 with Retry-After under `retry_later`.
    fn held(&self, outcome: &Outcome) -> Result<(), ProvisioningError> {
        let Some(safety) = self.safety.as_ref() else {
            return Ok(());
        };
        if outcome.held == 0 || safety.config().policy != HoldPolicy::RetryLater {
            return Ok(());
        }
        Err(ProvisioningError {
            error: ScimError::plain(
                503,
                format!(
                    "{} business-role removal(s) held for review by the bridge's circuit \
                     breaker; retry later",
                    outcome.held
                ),
            ),
            retry_after: Some(std::time::Duration::from_secs(
                safety.config().retry_after_secs,
            )),
        })
    }

    /// Asks the circuit breaker about each business-role removal; returns the ones to make now,
    /// and (breaker on) the same as removals to journal once C4C confirms them, each with its
    /// reservation (it counts as in flight until then). Held ones are not made and their
    /// members stay in the group until an operator decides.
    async fn admit_role_removals(
        &self,
        requester: &Requester,
        group_id: Uuid,
        deletes: Vec<(Uuid, String)>,
        outcome: &mut Outcome,
    ) -> (Vec<(Uuid, String)>, Vec<(RoleRemoval, Reservation)>) {
        let Some(safety) = self.safety.as_ref().filter(|s| s.config().enabled) else {
            return (deletes, Vec::new());
        };
        let mut admitted = Vec::with_capacity(deletes.len());
        for (user_id, assignment) in deletes {
            let removal = RoleRemoval {
                group_id,
                user_id,
                employee_object_id: self.employee_of(user_id).await,
                set: ROLE_ASSIGNMENT_SET.to_owned(),
                assignment_object_id: assignment,
            };
            match safety.admit_role_removal(requester, &removal).await {
                Ok(Admission::Apply(reservation)) => admitted.push((removal, reservation)),
                Ok(Admission::Held { .. }) => outcome.held += 1,
                Err(error) => {
                    tracing::error!(%error, "circuit breaker: cannot decide on a role removal");
                    outcome.unsure = Some(error.to_string());
                }
            }
        }
        let deletes = admitted
            .iter()
            .map(|(r, _)| (r.user_id, r.assignment_object_id.clone()))
            .collect();
        (deletes, admitted)
    }

    /// Journals the role removals C4C confirmed, so that they count in the breaker's window.
    async fn record_role_removals(
        &self,
        requester: &Requester,
        admitted: Vec<(RoleRemoval, Reservation)>,
        done: &[Uuid],
    ) {
        let Some(safety) = self.safety.as_ref() else {
            return;
        };
        for (removal, reservation) in admitted {
            if done.contains(&removal.user_id)
                && let Err(error) = safety.record_role_removal(requester, &removal).await
            {
                tracing::error!(%error, "cannot journal a role removal");
            }
            // Journaled, or not made: no longer in flight either way.
            reservation.release().await;
        }
    }

    async fn employee_of(&self, user_id: Uuid) -> Option<String> {
        match self.store.get_resource(ResourceType::User, user_id).await {
            Ok(row) => row.and_then(|row| row.object_id),
            Err(_) => None,
        }
    }

    /// Deletes assignments: one call for one, else `$batch`es of `batch_size` changesets.
    /// Returns the users whose assignment is gone (a 404 counts: someone removed it already).
    async fn delete_assignments(
        &self,
        set: &'static str,
        deletes: Vec<(Uuid, String)>,
        outcome: &mut Outcome,
    ) -> Vec<Uuid> {
        let mut done = Vec::new();
        if deletes.len() == 1 {
            let (user, assignment) = &deletes[0];
            outcome.calls += 1;
            let result = if set == ORG_ASSIGNMENT_SET {
                self.c4c.delete_org_assignment(assignment).await
            } else {
                self.c4c.delete_role_assignment(assignment).await
            };
            match result {
                Ok(()) => done.push(*user),
                Err(error) if error.kind() == ErrorKind::NotFound => done.push(*user),
                Err(error) => outcome.failures.push((*user, error)),
            }
            outcome.deleted += done.len();
            return done;
        }
        let chunks: Vec<Vec<(Uuid, String)>> = deletes
            .chunks(self.config.batch_size.max(1))
            .map(<[_]>::to_vec)
            .collect();
        let jobs: Vec<Job<'_, _>> = chunks
            .into_iter()
            .map(|chunk| -> Job<'_, _> {
                Box::pin(async move {
                    let parts: Result<Vec<BatchPart>, C4cError> = chunk
                        .iter()
                        .map(|(_, assignment)| {
                            crate::c4c::odata::key_path(set, assignment)
                                .map(|path| BatchPart::Changeset(vec![BatchChange::delete(path)]))
                        })
                        .collect();
                    let result = match parts {
                        Ok(parts) => self.c4c.batch(parts).await,
                        Err(error) => Err(error),
                    };
                    (chunk, result)
                })
            })
            .collect();
        let results = run_ordered(jobs, self.config.parallel_batches).await;
        for (chunk, result) in results {
            outcome.calls += 1;
            match result {
                Ok(parts) => {
                    for ((user, _), part) in chunk.iter().zip(parts) {
                        match first_change(part) {
                            Ok(_) => done.push(*user),
                            Err(error) if error.kind() == ErrorKind::NotFound => done.push(*user),
                            Err(error) => outcome.failures.push((*user, error)),
                        }
                    }
                }
                Err(error) => {
                    for (user, _) in chunk {
                        outcome.failures.push((user, error.clone()));
                    }
                }
            }
        }
        outcome.deleted += done.len();
        done
    }

    /// Gives each joining member the target: an existing assignment (made by hand) is adopted
    /// as unmanaged; the others are created.
    async fn assign(
        &self,
        group_id: Uuid,
        target: &Target,
        joining: &[&MemberUser],
        outcome: &mut Outcome,
    ) -> Vec<MemberRow> {
        let _ = group_id;
        if joining.is_empty() {
            return Vec::new();
        }
        let existing = self.existing_assignments(target, joining, outcome).await;
        let mut rows = Vec::new();
        let mut to_create = Vec::new();
        for member in joining {
            match existing.get(&member.object_id) {
                Some(Ok(Some(assignment))) => {
                    outcome.adopted += 1;
                    rows.push(MemberRow {
                        user_id: member.id,
                        target: Some(target.key()),
                        assignment_object_id: Some(assignment.clone()),
                        managed: false,
                    });
                }
                Some(Err(error)) => outcome.failures.push((member.id, error.clone())),
                _ => to_create.push(*member),
            }
        }
        rows.extend(self.create_assignments(target, &to_create, outcome).await);
        rows
    }

    /// Which joining members already hold the target: ObjectID of the assignment per employee.
    async fn existing_assignments(
        &self,
        target: &Target,
        joining: &[&MemberUser],
        outcome: &mut Outcome,
    ) -> HashMap<String, Result<Option<String>, C4cError>> {
        let mut found = HashMap::new();
        if let Target::BusinessRole(role) = target
            && joining.len() > self.config.holders_read_threshold
        {
            outcome.calls += 1;
            match self.c4c.role_holders(role).await {
                Ok(holders) => {
                    let wanted: HashSet<&str> =
                        joining.iter().map(|m| m.object_id.as_str()).collect();
                    for holder in holders {
                        if let Some(parent) = holder.parent_object_id
                            && wanted.contains(parent.as_str())
                        {
                            found.insert(parent, Ok(Some(holder.object_id)));
                        }
                    }
                }
                Err(error) => {
                    for member in joining {
                        found.insert(member.object_id.clone(), Err(error.clone()));
                    }
                }
            }
            return found;
        }
        let org = matches!(target, Target::OrgUnit { .. });
        if let [member] = joining {
            // One member: a plain read of its assignments.
            outcome.calls += 1;
            let holding = match target {
                Target::BusinessRole(role) => self
                    .c4c
                    .list_role_assignments(&member.object_id)
                    .await
                    .map(|all| {
                        all.into_iter()
                            .find(|a| a.business_role_id == *role)
                            .map(|a| a.object_id)
                    }),
                Target::OrgUnit { org_unit, .. } => self
                    .c4c
                    .list_org_assignments(&member.object_id)
                    .await
                    .map(|all| {
                        all.into_iter()
                            .find(|a| a.org_unit_id.as_deref() == Some(org_unit.as_str()))
                            .map(|a| a.object_id)
                    }),
            };
            found.insert(member.object_id.clone(), holding);
            return found;
        }
        let chunks: Vec<Vec<&MemberUser>> = joining
            .chunks(self.config.batch_size.max(1))
            .map(<[_]>::to_vec)
            .collect();
        let jobs: Vec<Job<'_, _>> = chunks
            .into_iter()
            .map(|chunk| -> Job<'_, _> {
                Box::pin(async move {
                    let parts: Result<Vec<BatchPart>, C4cError> = chunk
                        .iter()
                        .map(|m| C4cClient::assignments_path(&m.object_id, org).map(BatchPart::Get))
                        .collect();
                    let result = match parts {
                        Ok(parts) => self.c4c.batch(parts).await,
                        Err(error) => Err(error),
                    };
                    (chunk, result)
                })
            })
            .collect();
        let results = run_ordered(jobs, self.config.parallel_batches).await;
        for (chunk, result) in results {
            outcome.calls += 1;
            match result {
                Ok(parts) => {
                    for (member, part) in chunk.iter().zip(parts) {
                        let holding = match part {
                            BatchPartResult::Get(Ok(response)) => {
                                holding_in(&response.body, target)
                            }
                            BatchPartResult::Get(Err(error)) => Err(error),
                            BatchPartResult::Changeset(_) => Err(C4cError::UnexpectedResponse(
                                "batch result does not match its request".into(),
                            )),
                        };
                        found.insert(member.object_id.clone(), holding);
                    }
                }
                Err(error) => {
                    for member in chunk {
                        found.insert(member.object_id.clone(), Err(error.clone()));
                    }
                }
            }
        }
        found
    }

    /// Creates assignments: the client's create-once call for one, else `$batch`es of
    /// `batch_size` changesets (one per assignment: one refusal does not undo the others).
    async fn create_assignments(
        &self,
        target: &Target,
        members: &[&MemberUser],
        outcome: &mut Outcome,
    ) -> Vec<MemberRow> {
        let row = |user_id: Uuid, object_id: String| MemberRow {
            user_id,
            target: Some(target.key()),
            assignment_object_id: Some(object_id),
            managed: true,
        };
        let mut rows = Vec::new();
        if let [member] = members {
            outcome.calls += 1;
            let result = match target {
                Target::BusinessRole(role) => self
                    .c4c
                    .create_role_assignment(&member.object_id, role, None)
                    .await
                    .map(|a| a.object_id),
                Target::OrgUnit { .. } => self
                    .c4c
                    .create_org_assignment(&member.object_id, &org_assignment(target))
                    .await
                    .map(|a| a.object_id),
            };
            match result {
                Ok(object_id) => rows.push(row(member.id, object_id)),
                Err(error) => outcome.failures.push((member.id, error)),
            }
            outcome.created += rows.len();
            return rows;
        }
        let chunks: Vec<Vec<&MemberUser>> = members
            .chunks(self.config.batch_size.max(1))
            .map(<[_]>::to_vec)
            .collect();
        let jobs: Vec<Job<'_, _>> = chunks
            .into_iter()
            .map(|chunk| -> Job<'_, _> {
                Box::pin(async move {
                    let parts = chunk
                        .iter()
                        .map(|m| BatchPart::Changeset(vec![assignment_post(target, &m.object_id)]))
                        .collect();
                    (chunk, self.c4c.batch(parts).await)
                })
            })
            .collect();
        let results = run_ordered(jobs, self.config.parallel_batches).await;
        for (chunk, result) in results {
            outcome.calls += 1;
            match result {
                Ok(parts) => {
                    for (member, part) in chunk.iter().zip(parts) {
                        match first_change(part).and_then(|response| created_id(&response)) {
                            Ok(object_id) => rows.push(row(member.id, object_id)),
                            Err(error) => outcome.failures.push((member.id, error)),
                        }
                    }
                }
                Err(error) => {
                    for member in chunk {
                        outcome.failures.push((member.id, error.clone()));
                    }
                }
            }
        }
        outcome.created += rows.len();
        rows
    }

    /// The members named in a representation, resolved to linked, live users; an unknown id
    /// or a nested group is a 400 before anything is sent to C4C.
    async fn resolve_members(&self, group: &Value) -> Result<Vec<MemberUser>, ProvisioningError> {
        let Some(members) = group.get("members").and_then(Value::as_array) else {
            return Ok(Vec::new());
        };
        let mut ids = Vec::with_capacity(members.len());
        let mut seen = HashSet::new();
        for member in members {
            let value = member.get("value").and_then(Value::as_str).unwrap_or("");
            let id = Uuid::parse_str(value).map_err(|_| {
                ScimError::invalid_value(format!("member {value:?} is not a user of this bridge"))
            })?;
            if seen.insert(id) {
                ids.push(id);
            }
        }
        let users = self.store.live_user_objects(&ids).await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match users.get(&id) {
                Some(Some(object_id)) => out.push(MemberUser {
                    id,
                    object_id: object_id.clone(),
                }),
                Some(None) => {
                    return Err(ScimError::invalid_value(format!(
                        "member {id} is not linked to a C4C employee"
                    ))
                    .into());
                }
                None => {
                    return Err(ScimError::invalid_value(format!(
                        "member {id} is not a user of this bridge (groups cannot contain groups)"
                    ))
                    .into());
                }
            }
        }
        Ok(out)
    }

    async fn live_row(&self, id: &str) -> Result<ResourceRow, ProvisioningError> {
        let not_found = || ScimError::not_found(format!("no group {id}"));
        let uuid = Uuid::parse_str(id).map_err(|_| not_found())?;
        let row = self
            .store
            .get_resource(ResourceType::Group, uuid)
            .await?
            .filter(|row| !row.tombstone)
            .ok_or_else(not_found)?;
        Ok(row)
    }

    /// The stored representation with id and meta; members read only when wanted.
    async fn representation(
        &self,
        row: &ResourceRow,
        members: bool,
        base_url: &str,
    ) -> Result<Value, ProvisioningError> {
        let mut resource = with_id(row);
        if let Some(object) = resource.as_object_mut() {
            if members {
                let rows = self.store.group_members(row.id).await?;
                object.insert(
                    "members".into(),
                    Value::Array(
                        rows.iter()
                            .map(|m| {
                                json!({
                                    "value": m.user_id.to_string(),
                                    "$ref": format!("{base_url}/Users/{}", m.user_id),
                                    "type": "User",
                                })
                            })
                            .collect(),
                    ),
                );
            }
            let mut meta = Map::new();
            meta.insert("resourceType".into(), json!("Group"));
            meta.insert("created".into(), rfc3339(row.created_at));
            meta.insert("lastModified".into(), rfc3339(row.updated_at));
            meta.insert("version".into(), Value::String(version_of(row)));
            meta.insert(
                "location".into(),
                Value::String(format!("{base_url}/Groups/{}", row.id)),
            );
            object.insert("meta".into(), Value::Object(meta));
        }
        Ok(resource)
    }

    async fn finish(
        &self,
        ctx: &RequestContext,
        started: (i64, Instant),
        action: &str,
        outcome: &Outcome,
        result: &GroupResult,
    ) {
        let (status, outcome_name, error) = match result {
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
        let resource_id = result
            .as_ref()
            .ok()
            .and_then(|r| r.resource.as_ref())
            .and_then(|r| r["id"].as_str())
            .map(str::to_owned);
        let entry = LogEntry {
            request_id: ctx.request_id.clone(),
            at: started.0,
            client: ctx.client.clone(),
            method: ctx.method.clone(),
            path: ctx.path.clone(),
            resource_type: Some(ResourceType::Group.as_str().to_owned()),
            resource_id,
            employee_id: None,
            object_id: None,
            status: i64::from(status),
            outcome: outcome_name.to_owned(),
            duration_ms: i64::try_from(started.1.elapsed().as_millis()).unwrap_or(i64::MAX),
            detail: json!({
                "action": action,
                "assignments_created": outcome.created,
                "assignments_deleted": outcome.deleted,
                "assignments_held": outcome.held,
                "assignments_adopted": outcome.adopted,
                "member_failures": outcome.failures.len(),
                "odata_calls": outcome.calls,
                "error": error,
            }),
        };
        if let Err(error) = self.store.append_log(entry).await {
            tracing::error!(%error, "cannot append to the mapping log");
        }
    }
}

fn org_assignment(target: &Target) -> NewOrgUnitAssignment {
    match target {
        Target::OrgUnit {
            org_unit,
            role_code,
        } => NewOrgUnitAssignment {
            org_unit_id: org_unit.clone(),
            role_code: role_code.clone(),
            ..NewOrgUnitAssignment::default()
        },
        Target::BusinessRole(_) => NewOrgUnitAssignment::default(),
    }
}

fn assignment_post(target: &Target, employee: &str) -> BatchChange {
    match target {
        Target::BusinessRole(role) => BatchChange::post(
            ROLE_ASSIGNMENT_SET,
            json!({"ParentObjectID": employee, "BusinessRoleID": role}),
        ),
        Target::OrgUnit { .. } => {
            BatchChange::post(ORG_ASSIGNMENT_SET, org_assignment(target).to_body(employee))
        }
    }
}

/// Does an employee's assignment list (a `$batch` GET body) hold the target? Its ObjectID.
fn holding_in(body: &[u8], target: &Target) -> Result<Option<String>, C4cError> {
    let page = crate::c4c::odata::parse_collection(body)?;
    for entity in page.results {
        match target {
            Target::BusinessRole(role) => {
                let assignment = RoleAssignment::from_entity(entity)?;
                if assignment.business_role_id == *role {
                    return Ok(Some(assignment.object_id));
                }
            }
            Target::OrgUnit { org_unit, .. } => {
                let assignment = OrgUnitAssignment::from_entity(entity)?;
                if assignment.org_unit_id.as_deref() == Some(org_unit.as_str()) {
                    return Ok(Some(assignment.object_id));
                }
            }
        }
    }
    Ok(None)
}

fn first_change(part: BatchPartResult) -> Result<crate::c4c::BatchResponse, C4cError> {
    match part {
        BatchPartResult::Changeset(changes) => changes.into_iter().next().unwrap_or_else(|| {
            Err(C4cError::UnexpectedResponse(
                "empty changeset response".into(),
            ))
        }),
        BatchPartResult::Get(_) => Err(C4cError::UnexpectedResponse(
            "batch result does not match its request".into(),
        )),
    }
}

/// The ObjectID of what a POST created: from the body, else from the location header.
fn created_id(response: &crate::c4c::BatchResponse) -> Result<String, C4cError> {
    if !response.body.is_empty() {
        let entity = crate::c4c::odata::parse_entity(&response.body)?;
        if let Some(id) = entity.get("ObjectID").and_then(Value::as_str) {
            return Ok(id.to_owned());
        }
    }
    response
        .header("location")
        .and_then(crate::c4c::odata::object_id_from_uri)
        .ok_or_else(|| C4cError::UnexpectedResponse("created assignment without ObjectID".into()))
}

/// A business role the tenant does not know: C4C refuses every assignment of it with
/// "not a valid code". When nothing else succeeded, the whole request is refused with that.
fn role_missing(target: Option<&Target>, outcome: &Outcome) -> Option<ScimError> {
    let Some(Target::BusinessRole(role)) = target else {
        return None;
    };
    let unknown = outcome
        .failures
        .iter()
        .any(|(_, error)| is_unknown_code(error));
    (unknown && outcome.created == 0 && outcome.adopted == 0).then(|| {
        ScimError::invalid_value(format!(
            "business role {role:?} does not exist in the C4C tenant; the bridge does not create \
             business roles: create it in C4C or change the [groups] rule that maps this group"
        ))
    })
}

fn is_unknown_code(error: &C4cError) -> bool {
    error.kind() == ErrorKind::Validation && error.to_string().contains("not a valid code")
}

/// Some members could not be changed: the first error, with how many failed. What succeeded is
/// kept (rows and C4C agree); repeating the request finishes the rest.
fn failure(outcome: &Outcome) -> Result<(), ProvisioningError> {
    if let Some(problem) = &outcome.unsure {
        return Err(ProvisioningError::from(
            crate::store::StoreError::Unavailable(problem.clone()),
        ));
    }
    let Some((user, error)) = outcome.failures.first() else {
        return Ok(());
    };
    let mut failed = ProvisioningError::from(error.clone());
    failed.error.detail = format!(
        "{} member change(s) failed in C4C (first: user {user}: {}); the others were applied; \
         repeat the request to finish",
        outcome.failures.len(),
        failed.error.detail
    );
    Err(failed)
}

fn wants_members(query: &ListQuery) -> bool {
    let named = |list: &[crate::scim::filter::AttrPath]| {
        list.iter()
            .any(|path| path.name.eq_ignore_ascii_case("members"))
    };
    if !query.attributes.is_empty() {
        return named(&query.attributes);
    }
    !named(&query.excluded_attributes)
}

fn display_name(group: &Value) -> String {
    group
        .get("displayName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn external_id(resource: &Value) -> Option<String> {
    resource
        .get("externalId")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn strip_members(mut group: Value) -> Value {
    if let Some(object) = group.as_object_mut() {
        object.remove("members");
        object.remove("meta");
    }
    group
}

fn set_id(resource: &mut Value, id: Uuid) {
    if let Some(object) = resource.as_object_mut() {
        object.insert("id".into(), Value::String(id.to_string()));
    }
}

fn with_id(row: &ResourceRow) -> Value {
    let mut resource = row.scim_json.clone();
    set_id(&mut resource, row.id);
    resource
}

pub fn version_of(row: &ResourceRow) -> String {
    etag::weak(&row.version.to_string())
}

fn rfc3339(millis: i64) -> Value {
    use chrono::TimeZone;
    chrono::Utc
        .timestamp_millis_opt(millis)
        .single()
        .map(|time| Value::String(time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)))
        .unwrap_or(Value::Null)
}

/// Adds the read-only extension that says what the group maps to (or that it is unmapped).
fn with_extension(mut resource: Value, mapper: &GroupMapper, row: &ResourceRow) -> Value {
    let target = mapper.target(&row.user_name, row.external_id.as_deref());
    if let Some(object) = resource.as_object_mut() {
        let info = target
            .as_ref()
            .map(Target::describe)
            .unwrap_or_else(|| json!({"mapping": "unmapped"}));
        object.insert(C4C_GROUP_EXTENSION.into(), info);
        if let Some(Value::Array(schemas)) = object.get_mut("schemas")
            && !schemas.iter().any(|s| s == C4C_GROUP_EXTENSION)
        {
            schemas.push(json!(C4C_GROUP_EXTENSION));
        }
    }
    resource
}

fn respond(status: u16, row: &ResourceRow, resource: Value, mapper: &GroupMapper) -> UserResponse {
    UserResponse {
        status,
        resource: Some(with_extension(resource, mapper, row)),
        version: Some(version_of(row)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(display: Option<&str>, pattern: Option<&str>, role: &str) -> GroupRule {
        GroupRule {
            display_name: display.map(str::to_owned),
            pattern: pattern.map(str::to_owned),
            business_role: Some(role.to_owned()),
            ..GroupRule::default()
        }
    }

    #[test]
    fn rules_map_by_name_external_id_and_pattern_first_match_wins() {
        let config = GroupsConfig {
            rules: vec![
                rule(Some("Sales Reps"), None, "SALES_REP"),
                GroupRule {
                    external_id: Some("ext-svc".into()),
                    business_role: Some("SERVICE_AGENT".into()),
                    ..GroupRule::default()
                },
                rule(None, Some("^C4C_(.+)$"), "$1"),
                GroupRule {
                    display_name: Some("Munich".into()),
                    org_unit: Some("S3110".into()),
                    org_role_code: Some("222".into()),
                    ..GroupRule::default()
                },
            ],
            ..GroupsConfig::default()
        };
        let mapper = GroupMapper::new(&config).unwrap();
        assert_eq!(
            mapper.target("sales reps", None),
            Some(Target::BusinessRole("SALES_REP".into()))
        );
        assert_eq!(
            mapper.target("Anything", Some("ext-svc")),
            Some(Target::BusinessRole("SERVICE_AGENT".into()))
        );
        assert_eq!(
            mapper.target("C4C_MARKETING", None),
            Some(Target::BusinessRole("MARKETING".into()))
        );
        assert_eq!(
            mapper.target("Munich", None),
            Some(Target::OrgUnit {
                org_unit: "S3110".into(),
                role_code: Some("222".into())
            })
        );
        assert_eq!(mapper.target("Everyone", None), None);
        assert_eq!(mapper.target("C4C_", None), None);
    }

    #[test]
    fn bad_rules_are_refused_with_their_index() {
        let two_matchers = GroupsConfig {
            rules: vec![GroupRule {
                display_name: Some("a".into()),
                external_id: Some("b".into()),
                business_role: Some("R".into()),
                ..GroupRule::default()
            }],
            ..GroupsConfig::default()
        };
        assert!(
            GroupMapper::new(&two_matchers)
                .err()
                .unwrap()
                .contains("groups.rules[0]")
        );
        let no_target = GroupsConfig {
            rules: vec![rule(Some("a"), None, "")],
            ..GroupsConfig::default()
        };
        assert!(GroupMapper::new(&no_target).is_err());
        let bad_regex = GroupsConfig {
            rules: vec![rule(None, Some("("), "R")],
            ..GroupsConfig::default()
        };
        assert!(
            GroupMapper::new(&bad_regex)
                .err()
                .unwrap()
                .contains("pattern")
        );
    }
}
