//! Safe deprovisioning: a circuit breaker that holds deactivations above a threshold per
//! identity-provider client, an operator's release or discard of what it held, a journal of
//! every lock and validity change applied (with the values before), and undo of a time range.
//!
//! The user use cases call [`Safety::admit`] before a deactivation and
//! [`Safety::record_applied`] after C4C confirmed a lock or validity change. Group role removals
//! are to be admitted the same way ([`HeldKind::RoleRemoval`]); releasing them belongs to the
//! groups service and is refused here until it exists.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{ProvisioningError, holds_fields};
use crate::c4c::{C4cClient, C4cError, Employee, Fields};
use crate::mapping::Mapper;
use crate::scim::error::ScimError;
use crate::store::{
    AppliedChange, HeldOperation, LogEntry, NewChange, NewHeld, ResourceRow, ResourceType, Store,
    StoreError, now_millis,
};

/// The C4C properties deprovisioning writes; the journal keeps their values before and after.
pub const LOCK_PROPERTIES: [&str; 2] = ["UserLockedIndicator", "UserValidityEndDate"];

/// What the identity provider is told about a held operation.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum HoldPolicy {
    /// Success, as if applied: the identity provider moves on; the operator decides later.
    #[default]
    HoldQuietly,
    /// 503 with Retry-After: the identity provider retries (and its retries replace the held
    /// operation, never pile up).
    RetryLater,
}

/// `[safety]`: the deprovisioning circuit breaker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SafetyConfig {
    /// Turn the breaker on (off: every deprovisioning is applied at once).
    pub enabled: bool,
    /// The sliding window deactivations are counted in, per identity-provider client.
    pub window_secs: u64,
    /// More deactivations than this in the window trip the breaker.
    pub max_count: u32,
    /// A larger share of the linked users than this in the window trips the breaker...
    pub max_share: f64,
    /// ...once at least this many deactivations were made (small tenants stay usable).
    pub min_count: u32,
    pub policy: HoldPolicy,
    /// Retry-After sent with the `retry_later` policy, in seconds.
    pub retry_after_secs: u64,
}

impl Default for SafetyConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window_secs: 3600,
            max_count: 100,
            max_share: 0.2,
            min_count: 10,
            policy: HoldPolicy::HoldQuietly,
            retry_after_secs: 600,
        }
    }
}

impl SafetyConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.max_share) {
            return Err(format!(
                "safety.max_share = {}: a share between 0 and 1",
                self.max_share
            ));
        }
        if self.window_secs == 0 {
            return Err("safety.window_secs must be at least 1".to_owned());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeldKind {
    /// PUT or PATCH turning `active` to false (the whole write is held).
    Deactivate,
    /// DELETE (lock / end validity, then tombstone).
    Delete,
    /// A business-role removal (groups; hook for the groups service).
    RoleRemoval,
    /// A lock drift reconciliation would put back (C4C unlocked, or made valid again, a user
    /// the identity provider deactivated): only C4C changes, our row already says inactive.
    ReconcileLock,
}

impl HeldKind {
    /// Every kind's name, as stored and shown.
    pub const NAMES: [&'static str; 4] = [
        HeldKind::Deactivate.as_str(),
        HeldKind::Delete.as_str(),
        HeldKind::RoleRemoval.as_str(),
        HeldKind::ReconcileLock.as_str(),
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            HeldKind::Deactivate => "deactivate",
            HeldKind::Delete => "delete",
            HeldKind::RoleRemoval => "role_removal",
            HeldKind::ReconcileLock => "reconcile_lock",
        }
    }
}

/// Held operations on group members are stored under this resource type.
pub const ROLE_REMOVAL_RESOURCE: &str = "GroupMember";

/// A business-role (or org-unit) assignment a group change would delete.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct RoleRemoval {
    pub group_id: uuid::Uuid,
    pub user_id: uuid::Uuid,
    pub employee_object_id: Option<String>,
    /// The assignment's entity set (business roles or org units).
    pub set: String,
    pub assignment_object_id: String,
}

/// The breaker's answer to one deprovisioning.
#[derive(Debug)]
pub enum Admission {
    /// Apply it. Keep the reservation until the change is journaled, then release it (see
    /// [`Reservation::release`]); until then it counts in every replica's window, so that
    /// concurrent requests cannot all pass.
    Apply(Reservation),
    Held {
        operation: Box<HeldOperation>,
        /// Why, for the mapping log.
        reason: Value,
    },
}

/// Who asks: the identity-provider client and the request.
#[derive(Debug, Clone, Default)]
pub struct Requester {
    pub client: Option<String>,
    pub request_id: String,
}

/// Which held operations a release or discard takes: those matching every filter given (with
/// none, every held operation).
#[derive(Debug, Clone, Copy, Default)]
pub struct HeldFilter<'a> {
    pub ids: &'a [i64],
    pub client: Option<&'a str>,
    /// A [`HeldKind`] name.
    pub kind: Option<&'a str>,
}

/// What an operator's release, discard or undo did to one item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub id: String,
    pub object_id: Option<String>,
    /// released, discarded, superseded, failed; restored, unchanged, conflict (undo).
    pub result: String,
    pub detail: Option<String>,
}

/// How long an admitted deprovisioning counts as in flight at most: far longer than a C4C call
/// with its retries, so that only what a replica that stopped mid-request left behind expires.
pub const IN_FLIGHT_EXPIRY: Duration = Duration::from_secs(600);

/// The cross-replica lock under which admissions are decided.
const ADMISSION_LOCK: &str = "safety:admission";

/// One admitted deprovisioning, counted by every replica's breaker (a row in the store) until it
/// is released or dropped.
pub struct Reservation {
    counted: Option<(Store, String)>,
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation")
            .field("id", &self.counted.as_ref().map(|(_, id)| id))
            .finish()
    }
}

impl Reservation {
    /// For admissions with the breaker off.
    fn uncounted() -> Self {
        Self { counted: None }
    }

    /// Stops counting it. Called once its change is journaled: a replica deciding meanwhile
    /// counts it twice (in flight and journaled), never not at all.
    pub async fn release(mut self) {
        if let Some((store, id)) = self.counted.take() {
            forget(&store, &id).await;
        }
    }
}

impl Drop for Reservation {
    /// Not released: the change failed or its request was cancelled. A drop cannot wait, so the
    /// row goes on a task; without a runtime it stays until it expires.
    fn drop(&mut self) {
        if let Some((store, id)) = self.counted.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move { forget(&store, &id).await });
        }
    }
}

async fn forget(store: &Store, id: &str) {
    let expired_before = now_millis().saturating_sub(expiry_millis());
    if let Err(error) = store.remove_in_flight(id, expired_before).await {
        tracing::warn!(%error, "cannot forget an in-flight deprovisioning; it expires on its own");
    }
}

fn expiry_millis() -> i64 {
    i64::try_from(IN_FLIGHT_EXPIRY.as_millis()).unwrap_or(i64::MAX)
}

#[derive(Clone)]
pub struct Safety {
    store: Store,
    c4c: C4cClient,
    mapper: Arc<Mapper>,
    config: SafetyConfig,
    /// Admissions are decided one at a time, here and across replicas (a store-wide lock): the
    /// count read and the reservation made together. Deprovisionings are rare next to other
    /// writes, so the queue costs little. This replica's own queue is in memory, so that its
    /// waiting admissions hold no connection.
    admitting: Arc<tokio::sync::Mutex<()>>,
}

impl Safety {
    pub fn new(store: Store, c4c: C4cClient, mapper: Arc<Mapper>, config: SafetyConfig) -> Self {
        Self {
            store,
            c4c,
            mapper,
            config,
            admitting: Arc::default(),
        }
    }

    /// Deprovisionings admitted for `client` by any replica and not journaled yet (the breaker
    /// on, see [`Safety::decide`]).
    async fn in_flight_for(&self, client: Option<&str>) -> Result<i64, StoreError> {
        let since = now_millis().saturating_sub(expiry_millis());
        self.store.count_in_flight(client, since).await
    }

    /// Called with the breaker on (see [`Safety::decide`]).
    async fn reserve(&self, client: Option<&str>) -> Result<Reservation, StoreError> {
        let id = uuid::Uuid::new_v4().to_string();
        self.store.add_in_flight(&id, client).await?;
        Ok(Reservation {
            counted: Some((self.store.clone(), id)),
        })
    }

    pub fn config(&self) -> &SafetyConfig {
        &self.config
    }

    /// The same breaker with other settings (services are built with the defaults, then
    /// configured).
    #[must_use]
    pub fn with_config(mut self, config: SafetyConfig) -> Self {
        self.config = config;
        self
    }

    /// Decides whether one deprovisioning may be applied now. Held (stored durably) when the
    /// client already has held operations, or when this one would take the client above the
    /// threshold in the window.
    pub async fn admit(
        &self,
        requester: &Requester,
        row: &ResourceRow,
        kind: HeldKind,
        payload: Value,
    ) -> Result<Admission, StoreError> {
        let held = NewHeld {
            client: requester.client.clone(),
            request_id: requester.request_id.clone(),
            resource_type: row.resource_type.as_str().to_owned(),
            resource_id: row.id.to_string(),
            object_id: row.object_id.clone(),
            kind: kind.as_str().to_owned(),
            payload,
            base_version: row.version,
        };
        self.decide(requester, held).await
    }

    /// The same decision for a business-role assignment a group change would delete (a member
    /// leaving, or the group deleted). Held per group and member, so that one user's removals
    /// from several groups are held side by side.
    pub async fn admit_role_removal(
        &self,
        requester: &Requester,
        removal: &RoleRemoval,
    ) -> Result<Admission, StoreError> {
        let held = NewHeld {
            client: requester.client.clone(),
            request_id: requester.request_id.clone(),
            resource_type: ROLE_REMOVAL_RESOURCE.to_owned(),
            resource_id: format!("{}/{}", removal.group_id, removal.user_id),
            object_id: removal.employee_object_id.clone(),
            kind: HeldKind::RoleRemoval.as_str().to_owned(),
            payload: serde_json::to_value(removal).unwrap_or(Value::Null),
            base_version: 0,
        };
        self.decide(requester, held).await
    }

    /// Applies or holds one deprovisioning: one admission at a time across replicas, each
    /// counting the admitted ones not journaled yet (any replica's, this request's earlier ones
    /// included).
    async fn decide(&self, requester: &Requester, held: NewHeld) -> Result<Admission, StoreError> {
        if !self.config.enabled {
            return Ok(Admission::Apply(Reservation::uncounted()));
        }
        let _one_at_a_time = self.admitting.lock().await;
        let across_replicas = self
            .store
            .lock_across_replicas_inside_another(ADMISSION_LOCK)
            .await?;
        let client = requester.client.as_deref();
        let pending = self.in_flight_for(client).await?;
        let admission = match self.trips(requester, pending).await? {
            None => Admission::Apply(self.reserve(client).await?),
            Some(reason) => self.hold(requester, held, reason).await?,
        };
        across_replicas.release().await;
        Ok(admission)
    }

    /// Journals a role removal C4C confirmed, so that it counts in the breaker's window.
    pub async fn record_role_removal(
        &self,
        requester: &Requester,
        removal: &RoleRemoval,
    ) -> Result<(), StoreError> {
        if !self.config.enabled {
            return Ok(());
        }
        self.store
            .record_change(&NewChange {
                client: requester.client.clone(),
                actor: requester.client.clone().unwrap_or_default(),
                request_id: Some(requester.request_id.clone()),
                resource_id: Some(removal.user_id.to_string()),
                object_id: removal.employee_object_id.clone().unwrap_or_default(),
                kind: HeldKind::RoleRemoval.as_str().to_owned(),
                previous: serde_json::to_value(removal).unwrap_or(Value::Null),
                applied: json!({}),
                approved_by: None,
            })
            .await
            .map(|_| ())
    }

    /// `Some(reason)` when one more deprovisioning by this client (beyond `pending` admitted
    /// but not yet journaled) must be held.
    async fn trips(
        &self,
        requester: &Requester,
        pending: i64,
    ) -> Result<Option<Value>, StoreError> {
        if !self.config.enabled {
            return Ok(None);
        }
        let client = requester.client.as_deref();
        let since = now_millis().saturating_sub(window_millis(&self.config));
        let already_held = self.store.count_held(client).await?;
        let applied = self.store.count_deactivations_since(client, since).await?;
        let count = applied.saturating_add(pending) + already_held + 1;
        let linked = self.store.count_linked_users(since).await?.max(1);
        #[allow(clippy::cast_precision_loss)] // counts of users are far below 2^52
        let share = count as f64 / linked as f64;
        let over_count = count > i64::from(self.config.max_count);
        let over_share = count >= i64::from(self.config.min_count) && share > self.config.max_share;
        if already_held == 0 && !over_count && !over_share {
            return Ok(None);
        }
        Ok(Some(json!({
            "breaker": if already_held > 0 { "held operations pending" } else { "threshold" },
            "count_in_window": count,
            "linked_users": linked,
            "share": share,
            "max_count": self.config.max_count,
            "max_share": self.config.max_share,
            "window_secs": self.config.window_secs,
        })))
    }

    async fn hold(
        &self,
        requester: &Requester,
        new: NewHeld,
        reason: Value,
    ) -> Result<Admission, StoreError> {
        let operation = self.store.hold_operation(&new).await?;
        tracing::warn!(
            client = requester.client.as_deref().unwrap_or("-"),
            held = operation.id,
            kind = %new.kind,
            "deprovisioning held by the circuit breaker"
        );
        Ok(Admission::Held {
            operation: Box::new(operation),
            reason,
        })
    }

    /// The error to answer a held operation with, under the `retry_later` policy.
    pub fn held_error(&self, operation: &HeldOperation) -> Option<ProvisioningError> {
        match self.config.policy {
            HoldPolicy::HoldQuietly => None,
            HoldPolicy::RetryLater => Some(ProvisioningError {
                error: ScimError::plain(
                    503,
                    format!(
                        "deprovisioning held for review by the bridge's circuit breaker \
                         (held operation {}); retry later",
                        operation.id
                    ),
                ),
                retry_after: Some(Duration::from_secs(self.config.retry_after_secs)),
            }),
        }
    }

    /// Journals a lock / validity change C4C confirmed. The values before are the bridge's last
    /// known ones (its previous journal entry for the employee, else the opposite state): no
    /// read is spent on them, so a write stays one OData call. Undo checks C4C before it
    /// restores anything.
    pub async fn record_applied(
        &self,
        actor: &str,
        requester: &Requester,
        row: &ResourceRow,
        kind: &str,
        fields: &Fields,
        approved_by: Option<&str>,
    ) -> Result<(), StoreError> {
        let applied = lock_values(fields);
        if applied.is_empty() {
            return Ok(());
        }
        let Some(object_id) = row.object_id.clone() else {
            return Ok(());
        };
        let previous = self.previous_values(&object_id, &applied, kind).await?;
        self.store
            .record_change(&NewChange {
                client: requester.client.clone(),
                actor: actor.to_owned(),
                request_id: Some(requester.request_id.clone()),
                resource_id: Some(row.id.to_string()),
                object_id,
                kind: kind.to_owned(),
                previous: Value::Object(previous),
                applied: Value::Object(applied),
                approved_by: approved_by.map(str::to_owned),
            })
            .await?;
        Ok(())
    }

    async fn previous_values(
        &self,
        object_id: &str,
        applied: &Map<String, Value>,
        kind: &str,
    ) -> Result<Map<String, Value>, StoreError> {
        let journal = self.store.changes_of(object_id).await?;
        let opposite = if kind == "deactivate" {
            self.mapper.reactivate_fields()
        } else {
            self.mapper.deactivate_fields()
        };
        let mut previous = Map::new();
        for name in applied.keys() {
            let last = journal
                .iter()
                .rev()
                .find_map(|change| change.change.applied.get(name).cloned());
            let value = last
                .or_else(|| opposite.get(name).cloned())
                .unwrap_or(Value::Null);
            previous.insert(name.clone(), value);
        }
        Ok(previous)
    }

    /// Applies the held operations `filter` selects.
    pub async fn release(
        &self,
        filter: HeldFilter<'_>,
        by: &str,
    ) -> Result<Vec<Outcome>, StoreError> {
        let mut outcomes = Vec::new();
        for operation in self.select_held(filter).await? {
            let started = Instant::now();
            let outcome = self.release_one(&operation, by).await;
            self.log_decision(&operation, "RELEASE", by, &outcome, started)
                .await;
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    /// Drops the held operations `filter` selects without applying them.
    pub async fn discard(
        &self,
        filter: HeldFilter<'_>,
        by: &str,
    ) -> Result<Vec<Outcome>, StoreError> {
        let mut outcomes = Vec::new();
        for operation in self.select_held(filter).await? {
            let started = Instant::now();
            let result = if self
                .store
                .decide_held(operation.id, "discarded", by, None)
                .await?
            {
                "discarded"
            } else {
                "already_decided"
            };
            let outcome = Outcome {
                id: operation.id.to_string(),
                object_id: operation.object_id.clone(),
                result: result.to_owned(),
                detail: None,
            };
            self.log_decision(&operation, "DISCARD", by, &outcome, started)
                .await;
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    async fn select_held(&self, filter: HeldFilter<'_>) -> Result<Vec<HeldOperation>, StoreError> {
        let held = self.store.list_held(Some("held"), filter.client).await?;
        Ok(held
            .into_iter()
            .filter(|operation| filter.ids.is_empty() || filter.ids.contains(&operation.id))
            .filter(|operation| filter.kind.is_none_or(|kind| operation.kind == kind))
            .collect())
    }

    async fn release_one(&self, operation: &HeldOperation, by: &str) -> Outcome {
        let outcome = |result: &str, detail: Option<String>| Outcome {
            id: operation.id.to_string(),
            object_id: operation.object_id.clone(),
            result: result.to_owned(),
            detail,
        };
        match self.apply_held(operation, by).await {
            Ok(Some(superseded)) => {
                match self
                    .store
                    .decide_held(operation.id, "superseded", by, Some(&superseded))
                    .await
                {
                    Ok(_) => outcome("superseded", Some(superseded)),
                    Err(error) => outcome("failed", Some(error.to_string())),
                }
            }
            Ok(None) => match self
                .store
                .decide_held(operation.id, "released", by, None)
                .await
            {
                Ok(_) => outcome("released", None),
                Err(error) => outcome("failed", Some(error.to_string())),
            },
            // Still held: the operator can release it again once C4C answers.
            Err(error) => outcome("failed", Some(error)),
        }
    }

    /// Applies one held operation: C4C first, then our row (as a request would). `Some(reason)`
    /// when the resource changed since it was held, so applying it would be stale.
    async fn apply_held(
        &self,
        operation: &HeldOperation,
        by: &str,
    ) -> Result<Option<String>, String> {
        let kind = operation.kind.as_str();
        if kind == HeldKind::RoleRemoval.as_str() {
            return self.apply_role_removal(operation, by).await.map(|()| None);
        }
        let id = uuid::Uuid::parse_str(&operation.resource_id).map_err(|e| e.to_string())?;
        let lock = self
            .store
            .lock_across_replicas(&format!("User:{id}"))
            .await
            .map_err(|e| e.to_string())?;
        let result = self.apply_held_locked(operation, id, by).await;
        lock.release().await;
        result
    }

    async fn apply_held_locked(
        &self,
        operation: &HeldOperation,
        id: uuid::Uuid,
        by: &str,
    ) -> Result<Option<String>, String> {
        let Some(mut row) = self
            .store
            .get_resource(ResourceType::User, id)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(Some("the user no longer exists".into()));
        };
        if operation.kind == HeldKind::ReconcileLock.as_str() {
            return self.apply_reconcile_lock(operation, &row, by).await;
        }
        if row.tombstone || row.version != operation.base_version {
            return Ok(Some(format!(
                "the user changed since it was held (version {} then, {} now{})",
                operation.base_version,
                row.version,
                if row.tombstone { ", deleted" } else { "" }
            )));
        }
        let object_id = row
            .object_id
            .clone()
            .ok_or_else(|| "the user is not linked to a C4C employee".to_owned())?;
        let fields = match operation.payload.get("fields") {
            Some(Value::Object(map)) => Fields(map.clone()),
            _ => self.mapper.deactivate_fields(),
        };
        update_verified(&self.c4c, &object_id, &fields)
            .await
            .map_err(|e| format!("C4C: {e}"))?;
        let time_to_lock = Duration::from_millis(
            u64::try_from(now_millis().saturating_sub(operation.requested_at)).unwrap_or(0),
        );
        crate::metrics::record_time_to_lock("released", time_to_lock);
        if operation.kind == HeldKind::Delete.as_str() {
            row.tombstone = true;
            row.active = false;
            if let Some(resource) = row.scim_json.as_object_mut() {
                resource.insert("active".into(), Value::Bool(false));
            }
        } else if let Some(resource) = operation.payload.get("resource") {
            row.scim_json = resource.clone();
            row.active = false;
            if let Some(name) = resource.get("userName").and_then(Value::as_str) {
                row.user_name = name.to_owned();
            }
            row.external_id = resource
                .get("externalId")
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
        let row = self
            .store
            .update_resource(&row)
            .await
            .map_err(|e| format!("C4C was changed but our row was not: {e}"))?;
        self.journal_release(operation, &row, &fields, by).await;
        Ok(None)
    }

    /// A lock reconciliation held: written to C4C only, since our row already says inactive
    /// (deleted users included); stale once the identity provider changed the user since.
    async fn apply_reconcile_lock(
        &self,
        operation: &HeldOperation,
        row: &ResourceRow,
        by: &str,
    ) -> Result<Option<String>, String> {
        if row.version != operation.base_version {
            return Ok(Some(format!(
                "the user changed since it was held (version {} then, {} now)",
                operation.base_version, row.version
            )));
        }
        let object_id = row
            .object_id
            .clone()
            .ok_or_else(|| "the user is not linked to a C4C employee".to_owned())?;
        let Some(Value::Object(fields)) = operation.payload.get("fields") else {
            return Err("the held lock names no fields".to_owned());
        };
        let fields = Fields(fields.clone());
        update_verified(&self.c4c, &object_id, &fields)
            .await
            .map_err(|e| format!("C4C: {e}"))?;
        self.journal_release(operation, row, &fields, by).await;
        Ok(None)
    }

    /// Journals a released lock with the operator as approver (for undo; approved changes do
    /// not count in the breaker's window). C4C has changed already, so a failure is only logged.
    async fn journal_release(
        &self,
        operation: &HeldOperation,
        row: &ResourceRow,
        fields: &Fields,
        by: &str,
    ) {
        let requester = Requester {
            client: operation.client.clone(),
            request_id: operation.request_id.clone(),
        };
        if let Err(error) = self
            .record_applied(
                &format!("operator:{by}"),
                &requester,
                row,
                "deactivate",
                fields,
                Some(by),
            )
            .await
        {
            tracing::error!(%error, "cannot journal a released deprovisioning");
        }
    }

    /// Reverses the lock and validity changes applied in `[since, until)` (of one client when
    /// given): each employee gets back its values from before the first change in the range,
    /// if C4C still holds what the bridge last wrote. Employees are read in batches (one OData
    /// read per batch); one already restored is left alone, so running it again changes
    /// nothing. With `dry_run` nothing is written.
    pub async fn undo(
        &self,
        since: i64,
        until: i64,
        client: Option<&str>,
        dry_run: bool,
        by: &str,
    ) -> Result<Vec<Outcome>, StoreError> {
        const PAGE: i64 = 500;
        const BATCH: usize = 50;
        // Per employee: the first change's values before, the last change's values after.
        let mut order: Vec<String> = Vec::new();
        let mut plans: HashMap<String, UndoPlan> = HashMap::new();
        let mut after_id = 0;
        loop {
            let page = self
                .store
                .changes_to_undo(since, until, client, after_id, PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after_id = last.id;
            for change in page {
                let object_id = change.change.object_id.clone();
                match plans.get_mut(&object_id) {
                    Some(plan) => plan.absorb(change),
                    None => {
                        order.push(object_id.clone());
                        plans.insert(object_id, UndoPlan::new(change));
                    }
                }
            }
        }
        let mut outcomes = Vec::new();
        for chunk in order.chunks(BATCH) {
            let current: HashMap<String, Employee> =
                match self.c4c.find_employees_by("ObjectID", chunk).await {
                    Ok(found) => found
                        .into_iter()
                        .map(|employee| (employee.object_id.clone(), employee))
                        .collect(),
                    Err(error) => {
                        for object_id in chunk {
                            outcomes.push(Outcome {
                                id: object_id.clone(),
                                object_id: Some(object_id.clone()),
                                result: "failed".into(),
                                detail: Some(format!("C4C: {error}")),
                            });
                        }
                        continue;
                    }
                };
            for object_id in chunk {
                let Some(plan) = plans.get(object_id) else {
                    continue;
                };
                let started = Instant::now();
                let outcome = self
                    .undo_one(object_id, plan, current.get(object_id), dry_run, by)
                    .await?;
                if !dry_run {
                    self.log_undo(object_id, plan, by, &outcome, started).await;
                }
                outcomes.push(outcome);
            }
        }
        Ok(outcomes)
    }

    async fn undo_one(
        &self,
        object_id: &str,
        plan: &UndoPlan,
        current: Option<&Employee>,
        dry_run: bool,
        by: &str,
    ) -> Result<Outcome, StoreError> {
        let outcome = |result: &str, detail: Option<String>| Outcome {
            id: plan
                .ids
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(","),
            object_id: Some(object_id.to_owned()),
            result: result.to_owned(),
            detail,
        };
        let Some(current) = current else {
            return Ok(outcome("failed", Some("not found in C4C".into())));
        };
        let target = Fields(plan.previous.clone());
        if holds_fields(current, &target) {
            if !dry_run {
                for id in &plan.ids {
                    self.store.mark_undone(*id, by).await?;
                }
            }
            return Ok(outcome(
                "unchanged",
                Some("C4C already holds the previous values".into()),
            ));
        }
        if !holds_fields(current, &Fields(plan.applied.clone())) {
            return Ok(outcome(
                "conflict",
                Some("C4C changed since the bridge wrote it; left as it is".into()),
            ));
        }
        if dry_run {
            return Ok(outcome(
                "would_restore",
                Some(Value::Object(plan.previous.clone()).to_string()),
            ));
        }
        if let Err(error) = update_verified(&self.c4c, object_id, &target).await {
            return Ok(outcome("failed", Some(format!("C4C: {error}"))));
        }
        let row = self
            .store
            .find_by_object_id(ResourceType::User, object_id)
            .await?;
        if let Some(mut row) = row {
            // A live row follows C4C; a deleted one stays a tombstone (the identity provider
            // deleted it; its next POST reactivates the employee).
            let unlocked = target
                .get("UserLockedIndicator")
                .map(|locked| locked == &Value::Bool(false));
            if !row.tombstone
                && let Some(active) = unlocked
            {
                row.active = active;
                if let Some(resource) = row.scim_json.as_object_mut() {
                    resource.insert("active".into(), Value::Bool(active));
                }
                self.store.update_resource(&row).await?;
            }
            self.store
                .record_change(&NewChange {
                    client: plan.client.clone(),
                    actor: format!("operator:{by}"),
                    request_id: None,
                    resource_id: Some(row.id.to_string()),
                    object_id: object_id.to_owned(),
                    kind: "undo".into(),
                    previous: Value::Object(plan.applied.clone()),
                    applied: Value::Object(plan.previous.clone()),
                    approved_by: Some(by.to_owned()),
                })
                .await?;
        }
        for id in &plan.ids {
            self.store.mark_undone(*id, by).await?;
        }
        Ok(outcome("restored", None))
    }

    /// Releases a held role removal: the assignment is deleted in C4C (one already gone counts
    /// as done), then the group's member row; journaled as approved by the operator.
    async fn apply_role_removal(&self, operation: &HeldOperation, by: &str) -> Result<(), String> {
        let removal: RoleRemoval = serde_json::from_value(operation.payload.clone())
            .map_err(|error| format!("held role removal unreadable: {error}"))?;
        let deleted = if removal.set == crate::c4c::model::ORG_ASSIGNMENT_SET {
            self.c4c
                .delete_org_assignment(&removal.assignment_object_id)
                .await
        } else {
            self.c4c
                .delete_role_assignment(&removal.assignment_object_id)
                .await
        };
        match deleted {
            Ok(()) => {}
            Err(error) if error.kind() == crate::c4c::ErrorKind::NotFound => {}
            Err(error) => return Err(format!("C4C: {error}")),
        }
        self.store
            .remove_group_members(removal.group_id, &[removal.user_id])
            .await
            .map_err(|error| error.to_string())?;
        self.store
            .record_change(&NewChange {
                client: operation.client.clone(),
                actor: by.to_owned(),
                request_id: Some(operation.request_id.clone()),
                resource_id: Some(removal.user_id.to_string()),
                object_id: removal.employee_object_id.clone().unwrap_or_default(),
                kind: HeldKind::RoleRemoval.as_str().to_owned(),
                previous: operation.payload.clone(),
                applied: json!({}),
                approved_by: Some(by.to_owned()),
            })
            .await
            .map(|_| ())
            .map_err(|error| error.to_string())
    }

    async fn log_decision(
        &self,
        operation: &HeldOperation,
        method: &str,
        by: &str,
        outcome: &Outcome,
        started: Instant,
    ) {
        let entry = LogEntry {
            request_id: format!("held-{}-{}", operation.id, now_millis()),
            at: now_millis(),
            client: operation.client.clone(),
            method: method.to_owned(),
            path: format!("held/{}", operation.id),
            resource_type: Some(operation.resource_type.clone()),
            resource_id: Some(operation.resource_id.clone()),
            employee_id: None,
            object_id: operation.object_id.clone(),
            status: if outcome.result == "failed" { 502 } else { 200 },
            outcome: if outcome.result == "failed" {
                "failed".into()
            } else {
                "ok".into()
            },
            duration_ms: elapsed_ms(started),
            detail: json!({
                "action": method.to_lowercase(),
                "decided_by": by,
                "held_id": operation.id,
                "held_kind": operation.kind,
                "held_request_id": operation.request_id,
                "result": outcome.result,
                "error": outcome.detail,
                "time_to_lock_ms": (method == "RELEASE" && outcome.result == "released")
                    .then(|| now_millis().saturating_sub(operation.requested_at)),
            }),
        };
        if let Err(error) = self.store.append_log(entry).await {
            tracing::error!(%error, "cannot append to the mapping log");
        }
    }

    async fn log_undo(
        &self,
        object_id: &str,
        plan: &UndoPlan,
        by: &str,
        outcome: &Outcome,
        started: Instant,
    ) {
        let entry = LogEntry {
            request_id: format!("undo-{object_id}-{}", now_millis()),
            at: now_millis(),
            client: plan.client.clone(),
            method: "UNDO".into(),
            path: format!("undo/{object_id}"),
            resource_type: Some(ResourceType::User.as_str().to_owned()),
            resource_id: plan.resource_id.clone(),
            employee_id: None,
            object_id: Some(object_id.to_owned()),
            status: if outcome.result == "failed" { 502 } else { 200 },
            outcome: match outcome.result.as_str() {
                "failed" => "failed".into(),
                "conflict" => "refused".into(),
                _ => "ok".into(),
            },
            duration_ms: elapsed_ms(started),
            detail: json!({
                "action": "undo",
                "decided_by": by,
                "changes": plan.ids,
                "before": plan.applied,
                "restored": plan.previous,
                "result": outcome.result,
                "error": outcome.detail,
            }),
        };
        if let Err(error) = self.store.append_log(entry).await {
            tracing::error!(%error, "cannot append to the mapping log");
        }
    }
}

/// Undo of one employee: the values before the first change in the range, those after the
/// last, and the journal entries covered.
struct UndoPlan {
    ids: Vec<i64>,
    client: Option<String>,
    resource_id: Option<String>,
    previous: Map<String, Value>,
    applied: Map<String, Value>,
}

impl UndoPlan {
    fn new(change: AppliedChange) -> Self {
        Self {
            ids: vec![change.id],
            client: change.change.client,
            resource_id: change.change.resource_id,
            previous: as_map(change.change.previous),
            applied: as_map(change.change.applied),
        }
    }

    fn absorb(&mut self, change: AppliedChange) {
        self.ids.push(change.id);
        for (name, value) in as_map(change.change.previous) {
            self.previous.entry(name).or_insert(value);
        }
        for (name, value) in as_map(change.change.applied) {
            self.applied.insert(name, value);
        }
    }
}

fn as_map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The lock and validity values among written fields.
pub fn lock_values(fields: &Fields) -> Map<String, Value> {
    LOCK_PROPERTIES
        .iter()
        .filter_map(|name| fields.get(name).map(|v| ((*name).to_owned(), v.clone())))
        .collect()
}

fn window_millis(config: &SafetyConfig) -> i64 {
    i64::try_from(config.window_secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

fn elapsed_ms(started: Instant) -> i64 {
    i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX)
}

/// A C4C PATCH; when its outcome is unknown, the employee is read back and the write counts as
/// done if C4C holds every value.
pub(crate) async fn update_verified(
    c4c: &C4cClient,
    object_id: &str,
    fields: &Fields,
) -> Result<(), C4cError> {
    match c4c.update_employee(object_id, fields, None).await {
        Ok(_) => Ok(()),
        Err(error) if error.is_ambiguous() => {
            let employee = c4c.get_employee(object_id).await?;
            if holds_fields(&employee, fields) {
                Ok(())
            } else {
                Err(error)
            }
        }
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_refuses_a_share_above_one() {
        let config = SafetyConfig {
            max_share: 1.5,
            ..SafetyConfig::default()
        };
        assert!(config.validate().unwrap_err().contains("max_share"));
        assert!(SafetyConfig::default().validate().is_ok());
    }

    #[test]
    fn lock_values_keep_only_lock_and_validity() {
        let fields = Fields::new()
            .set("UserLockedIndicator", true)
            .set("LastName", "Example");
        let values = lock_values(&fields);
        assert_eq!(values.len(), 1);
        assert_eq!(values["UserLockedIndicator"], true);
    }

    #[test]
    fn an_undo_plan_restores_the_first_previous_and_expects_the_last_applied() {
        let change = |id, previous: Value, applied: Value| AppliedChange {
            id,
            at: 0,
            change: NewChange {
                object_id: "O1".into(),
                kind: "deactivate".into(),
                previous,
                applied,
                ..NewChange::default()
            },
            undone_at: None,
            undone_by: None,
        };
        let mut plan = UndoPlan::new(change(
            1,
            json!({"UserLockedIndicator": false}),
            json!({"UserLockedIndicator": true}),
        ));
        plan.absorb(change(
            2,
            json!({"UserLockedIndicator": true}),
            json!({"UserLockedIndicator": false}),
        ));
        assert_eq!(plan.previous["UserLockedIndicator"], false);
        assert_eq!(plan.applied["UserLockedIndicator"], false);
        assert_eq!(plan.ids, [1, 2]);
    }
}
