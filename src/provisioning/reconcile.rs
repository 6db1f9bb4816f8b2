//! Drift reconciliation: reads C4C employees and compares each one linked to a SCIM user with
//! what the bridge last wrote (active state, mapped attributes, business roles it assigned).
//!
//! Two modes. **Delta** reads employees whose `EntityLastChangedOn` is after the stored
//! watermark minus an overlap window (clocks and commit order are not exact), de-duplicated by
//! ObjectID. **Full** reads every employee in ObjectID order, page by page, and merges them with
//! the store's linked users read in the same order, so memory stays at one page of each side
//! however large the tenant; only a full run can see a linked employee that is gone.
//!
//! Each difference is a finding, stored with its run. Per field, the policy is `report` (the
//! default) or `restore`: the identity provider's value is written back to C4C, one PATCH per
//! employee, and the write goes into the mapping log with actor `reconcile`.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::safety::{Admission, HeldKind, LOCK_PROPERTIES, Requester, Safety, SafetyConfig};
use crate::c4c::odata::value_as_date;
use crate::c4c::{C4cClient, C4cError, Employee, EmployeeQuery, Fields, Filter, Order};
use crate::mapping::config::Target;
use crate::mapping::{MapKind, Mapper, NoReferences};
use crate::store::{LogEntry, NewFinding, ResourceRow, Store, StoreError, now_millis};

/// The store key of the delta watermark (C4C's newest `EntityLastChangedOn` seen, in ms).
pub const WATERMARK: &str = "delta_watermark";
/// The cross-replica lock the background job takes.
pub const JOB_LOCK: &str = "reconcile:job";

/// The finding kinds, as stored and as the `drift_findings` metric labels them.
pub const KINDS: [&str; 4] = [
    "changed_in_c4c",
    "missing_in_c4c",
    "linked_twice",
    "unlinked_match",
];

/// What to do about a field that differs.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DriftPolicy {
    /// Record the finding; change nothing.
    #[default]
    Report,
    /// Write the identity provider's value back to C4C.
    Restore,
}

/// `[reconcile]`: drift reconciliation between C4C and what the bridge wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ReconcileConfig {
    /// Run the background job in `serve` (one replica at a time runs it).
    pub enabled: bool,
    /// Time between two job runs, in seconds.
    pub interval_secs: u64,
    /// Every this many job runs, one is full (the others are delta); 0: the job never runs a
    /// full comparison (run `c4c-scim-bridge reconcile --full` instead).
    pub full_every: u32,
    /// A delta run reads changes from the watermark minus this window, in seconds.
    pub overlap_secs: u64,
    /// Linked users read from the store per page in a full run.
    pub page_size: u32,
    /// Runs (and their findings) kept in the store.
    pub keep_runs: u32,
    /// Policy per field: `active` (lock / validity), `business_roles`, or a C4C property name
    /// (`FirstName`, `Email`…). Fields not listed are reported only.
    pub policies: BTreeMap<String, DriftPolicy>,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            interval_secs: 3600,
            full_every: 24,
            overlap_secs: 600,
            page_size: 1000,
            keep_runs: 20,
            policies: BTreeMap::new(),
        }
    }
}

impl ReconcileConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.interval_secs == 0 {
            return Err("reconcile.interval_secs must be at least 1".to_owned());
        }
        if self.page_size == 0 || self.page_size > 5000 {
            return Err("reconcile.page_size: between 1 and 5000".to_owned());
        }
        if self.keep_runs == 0 {
            return Err("reconcile.keep_runs must be at least 1".to_owned());
        }
        Ok(())
    }

    fn policy(&self, field: &str) -> DriftPolicy {
        self.policies.get(field).copied().unwrap_or_default()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("C4C: {0}")]
    C4c(#[from] C4cError),
    /// The merge of C4C's pages with the store's needs both in the same ObjectID order.
    #[error("{0}")]
    Order(String),
}

/// How a run is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOptions {
    pub full: bool,
    /// Find and report; restore nothing, keep the watermark.
    pub dry_run: bool,
    /// `job` or `cli`, stored with the run.
    pub trigger: &'static str,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub mode: String,
    pub dry_run: bool,
    pub employees_read: u64,
    pub linked_compared: u64,
    pub findings: BTreeMap<String, u64>,
    pub restored: u64,
    pub restore_failed: u64,
    /// Lock restores the circuit breaker held for an operator (`held list`).
    pub held: u64,
    /// OData calls the run made: pages read, role reads, writes.
    pub upstream_calls: u64,
    /// Users whose stored representation no longer maps (rules changed): not compared.
    pub not_mappable: u64,
    pub watermark_from: Option<String>,
    pub watermark_to: Option<String>,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub run_id: i64,
    pub summary: Summary,
}

#[derive(Clone)]
pub struct Reconciler {
    store: Store,
    c4c: C4cClient,
    mapper: Arc<Mapper>,
    config: ReconcileConfig,
    /// Lock restores are deprovisionings: the circuit breaker admits them like a client's.
    safety: Safety,
}

/// Findings are written to the store in batches of this many.
const FLUSH_AT: usize = 200;

/// One run's state while it reads.
struct Pass {
    run_id: i64,
    dry_run: bool,
    summary: Summary,
    pending: Vec<NewFinding>,
    /// Newest `EntityLastChangedOn` seen (the next watermark).
    newest: Option<DateTime<Utc>>,
    /// ObjectIDs reported missing (their role memberships are not reported again).
    missing: HashSet<String>,
}

/// What became of one employee's restore, for the mapping log.
enum RestoreOutcome {
    Applied,
    Failed(String),
    /// The breaker could not decide (the store failed): C4C was not written.
    NotAdmitted(String),
    /// Held by the circuit breaker as this operation.
    Held {
        id: i64,
        reason: Value,
    },
}

impl RestoreOutcome {
    /// Whether C4C was asked to write (the PATCH succeeded or failed).
    fn wrote_to_c4c(&self) -> bool {
        matches!(self, Self::Applied | Self::Failed(_))
    }
}

/// An employee's differences that the policy restores, and the findings they belong to.
struct Restore {
    fields: Fields,
    lock_kind: Option<&'static str>,
    finding_indexes: Vec<usize>,
}

impl Reconciler {
    pub fn new(store: Store, c4c: C4cClient, mapper: Arc<Mapper>, config: ReconcileConfig) -> Self {
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
            config,
            safety,
        }
    }

    /// The circuit breaker's settings (the defaults otherwise).
    #[must_use]
    pub fn with_safety(mut self, config: SafetyConfig) -> Self {
        self.safety = self.safety.with_config(config);
        self
    }

    pub fn config(&self) -> &ReconcileConfig {
        &self.config
    }

    /// Runs one reconciliation and stores it with its findings. A delta run without a stored
    /// watermark is run full.
    pub async fn run(&self, options: RunOptions) -> Result<Report, ReconcileError> {
        let started = Instant::now();
        let started_at = now_millis();
        let watermark = self.store.reconcile_value(WATERMARK).await?;
        let full = options.full || watermark.is_none();
        let mode = if full { "full" } else { "delta" };
        let run_id = self
            .store
            .start_reconcile_run(mode, options.dry_run, options.trigger)
            .await?;
        let mut pass = Pass {
            run_id,
            dry_run: options.dry_run,
            summary: Summary {
                mode: mode.to_owned(),
                dry_run: options.dry_run,
                findings: KINDS.iter().map(|kind| ((*kind).to_owned(), 0)).collect(),
                ..Summary::default()
            },
            pending: Vec::new(),
            newest: None,
            missing: HashSet::new(),
        };
        let result = match (full, watermark) {
            (false, Some(watermark)) => self.delta(&mut pass, watermark).await,
            _ => self.full(&mut pass).await,
        };
        let result = match result {
            Ok(()) => self.roles(&mut pass).await,
            Err(error) => Err(error),
        };
        let result = match result {
            Ok(()) => self.flush(&mut pass).await,
            Err(error) => Err(error),
        };
        pass.summary.watermark_from = watermark.map(rfc3339);
        pass.summary.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(0);
        let result = match result {
            Ok(()) if !options.dry_run => match pass.newest {
                Some(newest) => {
                    // C4C's JSON gives milliseconds (`/Date(ms)/`) of a time kept to 100 ns:
                    // the change happened within the next millisecond, so `gt` the truncated
                    // value would read the newest change again.
                    // Never past the run's start: an employee changed while the run read
                    // others may carry an older time than the newest one read.
                    let newest = newest
                        .timestamp_millis()
                        .saturating_add(1)
                        .min(started_at)
                        .max(watermark.unwrap_or(0));
                    pass.summary.watermark_to = Some(rfc3339(newest));
                    self.store
                        .set_reconcile_value(WATERMARK, newest)
                        .await
                        .map_err(ReconcileError::from)
                }
                None => {
                    pass.summary.watermark_to = pass.summary.watermark_from.clone();
                    Ok(())
                }
            },
            other => other,
        };
        let summary = serde_json::to_value(&pass.summary).unwrap_or(Value::Null);
        match result {
            Ok(()) => {
                self.store
                    .finish_reconcile_run(run_id, "ok", &summary, None)
                    .await?;
                crate::metrics::record_drift_findings(&pass.summary.findings);
                if let Err(error) = self
                    .store
                    .prune_reconcile_runs(i64::from(self.config.keep_runs))
                    .await
                {
                    tracing::warn!(%error, "cannot prune old reconciliation runs");
                }
                Ok(Report {
                    run_id,
                    summary: pass.summary,
                })
            }
            Err(error) => {
                let text = error.to_string();
                if let Err(store_error) = self
                    .store
                    .finish_reconcile_run(run_id, "failed", &summary, Some(&text))
                    .await
                {
                    tracing::error!(error = %store_error, "cannot record a failed reconciliation run");
                }
                Err(error)
            }
        }
    }

    /// The properties a comparison needs (`$select`): the rules' targets and the lock ones.
    fn query(&self) -> EmployeeQuery {
        let mut select: Vec<String> = [
            "ObjectID",
            "EmployeeID",
            "UserID",
            "EntityLastChangedOn",
            "UserLockedIndicator",
            "UserValidityEndDate",
        ]
        .iter()
        .map(|name| (*name).to_owned())
        .collect();
        for rule in self.mapper.rules() {
            if let Target::Property(name) = &rule.target
                && !select.contains(name)
            {
                select.push(name.clone());
            }
        }
        EmployeeQuery::new().select(select)
    }

    /// Every employee in ObjectID order, merged with the linked users in the same order.
    async fn full(&self, pass: &mut Pass) -> Result<(), ReconcileError> {
        let query = self.query().order_by("ObjectID", Order::Asc);
        let mut pages = self.c4c.employee_pages(&query).await?;
        let mut linked = LinkedCursor::new(&self.store, i64::from(self.config.page_size));
        let mut previous: Option<String> = None;
        loop {
            let Some(page) = pages.next_page().await? else {
                break;
            };
            pass.summary.upstream_calls += 1;
            pass.summary.employees_read += page.len() as u64;
            let mut work = PageWork::default();
            for employee in page {
                if previous
                    .as_deref()
                    .is_some_and(|before| before >= employee.object_id.as_str())
                {
                    return Err(ReconcileError::Order(format!(
                        "C4C returned ObjectID {} after {}: pages are not in ObjectID order",
                        employee.object_id,
                        previous.unwrap_or_default()
                    )));
                }
                previous = Some(employee.object_id.clone());
                note_changed(pass, &employee);
                // Linked users before this employee are gone from C4C.
                while let Some(row) = linked.next_before(&employee.object_id).await? {
                    self.missing(pass, &row);
                }
                let rows = linked.take_equal(&employee.object_id).await?;
                self.place(pass, employee, &rows, &mut work);
            }
            self.finish_page(pass, work).await?;
        }
        while let Some(row) = linked.next_any().await? {
            self.missing(pass, &row);
        }
        Ok(())
    }

    /// Employees changed since the watermark minus the overlap, de-duplicated by ObjectID.
    async fn delta(&self, pass: &mut Pass, watermark: i64) -> Result<(), ReconcileError> {
        let overlap = i64::try_from(self.config.overlap_secs.saturating_mul(1000)).unwrap_or(0);
        let from = Utc
            .timestamp_millis_opt(watermark.saturating_sub(overlap))
            .single()
            .unwrap_or_default();
        let query = self
            .query()
            .filter(Filter::gt("EntityLastChangedOn", from))
            .order_by("EntityLastChangedOn", Order::Asc);
        let mut pages = self.c4c.employee_pages(&query).await?;
        let mut seen = HashSet::new();
        loop {
            let Some(page) = pages.next_page().await? else {
                break;
            };
            pass.summary.upstream_calls += 1;
            pass.summary.employees_read += page.len() as u64;
            // Paging over a set that changes while it is read can repeat an employee.
            let fresh: Vec<Employee> = page
                .into_iter()
                .filter(|employee| seen.insert(employee.object_id.clone()))
                .collect();
            let object_ids: Vec<String> = fresh.iter().map(|e| e.object_id.clone()).collect();
            let mut by_object: HashMap<String, Vec<ResourceRow>> = HashMap::new();
            for row in self.store.users_by_object_ids(&object_ids).await? {
                if let Some(object_id) = row.object_id.clone() {
                    by_object.entry(object_id).or_default().push(row);
                }
            }
            let mut work = PageWork::default();
            for employee in fresh {
                note_changed(pass, &employee);
                let rows = by_object.remove(&employee.object_id).unwrap_or_default();
                self.place(pass, employee, &rows, &mut work);
            }
            self.finish_page(pass, work).await?;
        }
        Ok(())
    }

    /// One employee of a page, by the users linked to it: none (a candidate for linking), one
    /// (compared, maybe restored), several (a finding).
    fn place(
        &self,
        pass: &mut Pass,
        employee: Employee,
        rows: &[ResourceRow],
        work: &mut PageWork,
    ) {
        match rows {
            [] => work.unlinked.push(employee),
            [row] => {
                if let Some(restore) = self.compare(pass, row, &employee) {
                    work.restores.push((row.clone(), employee, restore));
                }
            }
            _ => linked_twice(pass, &employee, rows),
        }
    }

    /// The end of a page: its unlinked employees matched, its restores applied, the findings
    /// written once enough are pending.
    async fn finish_page(&self, pass: &mut Pass, work: PageWork) -> Result<(), ReconcileError> {
        self.unlinked(pass, &work.unlinked).await?;
        self.restore(pass, work.restores).await;
        if pass.pending.len() >= FLUSH_AT {
            self.flush(pass).await?;
        }
        Ok(())
    }

    fn missing(&self, pass: &mut Pass, row: &ResourceRow) {
        // A deleted user's employee may go: nothing the identity provider still expects.
        if row.tombstone {
            return;
        }
        if let Some(object_id) = &row.object_id {
            pass.missing.insert(object_id.clone());
        }
        add(
            pass,
            NewFinding {
                kind: "missing_in_c4c".into(),
                resource_id: Some(row.id.to_string()),
                object_id: row.object_id.clone(),
                employee_id: row.employee_id.clone(),
                action: "reported".into(),
                detail: Some(format!("userName {}", row.user_name)),
                ..NewFinding::default()
            },
        );
    }

    /// Compares one linked employee with the user's row; findings go to `pass`, and what the
    /// policy restores is returned.
    fn compare(&self, pass: &mut Pass, row: &ResourceRow, employee: &Employee) -> Option<Restore> {
        pass.summary.linked_compared += 1;
        let mut restore = Restore {
            fields: Fields::new(),
            lock_kind: None,
            finding_indexes: Vec::new(),
        };
        let base = |field: &str, held: Value, wanted: Value| NewFinding {
            kind: "changed_in_c4c".into(),
            resource_id: Some(row.id.to_string()),
            object_id: Some(employee.object_id.clone()),
            employee_id: employee.employee_id.clone(),
            field: Some(field.to_owned()),
            c4c_value: Some(held),
            expected_value: Some(wanted),
            action: "reported".into(),
            detail: None,
        };
        // Active state, per the deprovisioning mode: what the bridge writes to lock or unlock.
        let expected_active = row.active && !row.tombstone;
        let wanted_lock = if expected_active {
            self.mapper.reactivate_fields()
        } else {
            self.mapper.deactivate_fields()
        };
        let today = self.mapper.today();
        for (name, wanted) in &wanted_lock.0 {
            let drift = match name.as_str() {
                "UserLockedIndicator" => employee.user_locked != wanted.as_bool(),
                // The bridge ends validity on the day it deactivates; later days are drift.
                "UserValidityEndDate" => match employee.user_validity_end {
                    Some(end) if expected_active => end < today,
                    Some(end) => end > today,
                    None => !expected_active,
                },
                _ => false,
            };
            if drift {
                let held = employee.property(name).unwrap_or(Value::Null);
                let index = add(pass, base(name, held, wanted.clone()));
                if self.config.policy("active") == DriftPolicy::Restore {
                    restore.fields.insert(name, wanted.clone());
                    restore.finding_indexes.push(index);
                    restore.lock_kind = Some(if expected_active {
                        "reactivate"
                    } else {
                        "deactivate"
                    });
                }
            }
        }
        // Mapped attributes of a user the identity provider still has.
        if !row.tombstone {
            match self
                .mapper
                .to_c4c(&row.scim_json, MapKind::Update, &NoReferences)
            {
                Ok(mapped) => {
                    for (name, wanted) in &mapped.fields.0 {
                        if LOCK_PROPERTIES.contains(&name.as_str()) {
                            continue;
                        }
                        let held = employee.property(name).unwrap_or(Value::Null);
                        if same(name, wanted, &held) {
                            continue;
                        }
                        let index = add(pass, base(name, held, wanted.clone()));
                        if self.config.policy(name) == DriftPolicy::Restore {
                            restore.fields.insert(name, wanted.clone());
                            restore.finding_indexes.push(index);
                        }
                    }
                }
                Err(_) => pass.summary.not_mappable += 1,
            }
        }
        (!restore.fields.is_empty()).then_some(restore)
    }

    /// Employees no user is linked to that carry a live user's EmployeeID or userName (as
    /// UserID): the same person twice, or a link lost when C4C's employee was re-created.
    async fn unlinked(&self, pass: &mut Pass, employees: &[Employee]) -> Result<(), StoreError> {
        let employee_ids: Vec<String> = employees
            .iter()
            .filter_map(|e| e.employee_id.clone())
            .collect();
        let user_ids: Vec<String> = employees.iter().filter_map(|e| e.user_id.clone()).collect();
        if employee_ids.is_empty() && user_ids.is_empty() {
            return Ok(());
        }
        let candidates = self
            .store
            .live_users_by_keys(&employee_ids, &user_ids)
            .await?;
        if candidates.is_empty() {
            return Ok(());
        }
        for employee in employees {
            for row in &candidates {
                let by_employee_id = employee.employee_id.is_some()
                    && row.employee_id.as_deref() == employee.employee_id.as_deref();
                let by_user_id = employee
                    .user_id
                    .as_deref()
                    .is_some_and(|user| user.to_lowercase() == row.user_name.to_lowercase());
                let (field, value) = if by_employee_id {
                    ("EmployeeID", employee.employee_id.clone())
                } else if by_user_id {
                    ("UserID", employee.user_id.clone())
                } else {
                    continue;
                };
                add(
                    pass,
                    NewFinding {
                        kind: "unlinked_match".into(),
                        resource_id: Some(row.id.to_string()),
                        object_id: Some(employee.object_id.clone()),
                        employee_id: employee.employee_id.clone(),
                        field: Some(field.to_owned()),
                        c4c_value: value.map(Value::String),
                        expected_value: Some(json!({"linked_object_id": row.object_id})),
                        action: "reported".into(),
                        detail: Some(format!(
                            "user {} ({}) is linked to {}",
                            row.id,
                            row.user_name,
                            row.object_id.as_deref().unwrap_or("no employee")
                        )),
                    },
                );
            }
        }
        Ok(())
    }

    /// Writes back what the policy restores: one PATCH per employee. A restore that locks is a
    /// deprovisioning, so the circuit breaker admits it first; a held one waits for an operator
    /// (`held release`), and C4C is not written.
    async fn restore(&self, pass: &mut Pass, restores: Vec<(ResourceRow, Employee, Restore)>) {
        let requester = Requester {
            client: None,
            request_id: format!("reconcile-{}", pass.run_id),
        };
        for (row, employee, restore) in restores {
            if pass.dry_run {
                for index in &restore.finding_indexes {
                    set_action(pass, *index, "would_restore", None);
                }
                continue;
            }
            let started = Instant::now();
            let outcome = self
                .restore_one(&requester, &row, &employee, &restore)
                .await;
            if outcome.wrote_to_c4c() {
                pass.summary.upstream_calls += 1;
            }
            record_outcome(pass, &restore, &outcome);
            self.log_restore(
                pass.run_id,
                &row,
                &employee,
                &restore.fields,
                &outcome,
                started,
            )
            .await;
        }
    }

    /// One employee's restore: admitted by the breaker first when it locks, then one PATCH, and
    /// a lock journaled for undo.
    async fn restore_one(
        &self,
        requester: &Requester,
        row: &ResourceRow,
        employee: &Employee,
        restore: &Restore,
    ) -> RestoreOutcome {
        let mut reservation = None;
        if restore.lock_kind == Some("deactivate") {
            let payload = json!({ "fields": restore.fields.0 });
            match self
                .safety
                .admit(requester, row, HeldKind::ReconcileLock, payload)
                .await
            {
                Ok(Admission::Apply(admitted)) => reservation = Some(admitted),
                Ok(Admission::Held { operation, reason }) => {
                    return RestoreOutcome::Held {
                        id: operation.id,
                        reason,
                    };
                }
                Err(error) => {
                    return RestoreOutcome::NotAdmitted(format!("circuit breaker: {error}"));
                }
            }
        }
        let outcome = match self
            .c4c
            .update_employee(&employee.object_id, &restore.fields, None)
            .await
        {
            Ok(_) => {
                if let Some(kind) = restore.lock_kind {
                    // Journaled like any lock change, so `undo` can reverse it.
                    if let Err(error) = self
                        .safety
                        .record_applied("reconcile", requester, row, kind, &restore.fields, None)
                        .await
                    {
                        tracing::error!(%error, "cannot journal a restored lock change for undo");
                    }
                }
                RestoreOutcome::Applied
            }
            Err(error) => RestoreOutcome::Failed(error.to_string()),
        };
        // Counted as journaled now (or failed): no longer in flight.
        if let Some(reservation) = reservation {
            reservation.release().await;
        }
        outcome
    }

    async fn log_restore(
        &self,
        run_id: i64,
        row: &ResourceRow,
        employee: &Employee,
        fields: &Fields,
        outcome: &RestoreOutcome,
        started: Instant,
    ) {
        let names: Vec<&String> = fields.0.keys().collect();
        let (status, result, action, error, safety) = match outcome {
            RestoreOutcome::Applied => (200, "ok", "restore", None, None),
            RestoreOutcome::Failed(error) => (502, "failed", "restore", Some(error.as_str()), None),
            RestoreOutcome::NotAdmitted(error) => {
                (503, "failed", "restore", Some(error.as_str()), None)
            }
            RestoreOutcome::Held { id, reason } => (
                202,
                "ok",
                "held",
                None,
                Some(json!({
                    "decision": "held",
                    "decided_by": "circuit_breaker",
                    "held_id": id,
                    "held_kind": HeldKind::ReconcileLock.as_str(),
                    "reason": reason,
                })),
            ),
        };
        let odata = if outcome.wrote_to_c4c() {
            json!([{"call": "update_employee", "ok": error.is_none()}])
        } else {
            json!([])
        };
        let entry = LogEntry {
            request_id: format!("reconcile-{run_id}-{}", row.id),
            at: now_millis(),
            client: None,
            method: "RECONCILE".into(),
            path: format!("reconcile/{run_id}"),
            resource_type: Some("User".into()),
            resource_id: Some(row.id.to_string()),
            employee_id: employee.employee_id.clone(),
            object_id: Some(employee.object_id.clone()),
            status,
            outcome: result.into(),
            duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
            detail: json!({
                "action": action,
                "actor": "reconcile",
                "run_id": run_id,
                "fields": names,
                "odata": odata,
                "safety": safety,
                "error": error,
            }),
        };
        if let Err(error) = self.store.append_log(entry).await {
            tracing::error!(%error, "cannot append to the mapping log");
        }
    }

    /// Business roles the bridge assigned (group memberships it manages) that C4C no longer
    /// has: one paged read of each role's holders.
    async fn roles(&self, pass: &mut Pass) -> Result<(), ReconcileError> {
        let policy = self.config.policy("business_roles");
        for target in self.store.managed_role_targets().await? {
            let Some(role) = target.strip_prefix("role:") else {
                continue;
            };
            let members = self.store.managed_role_members(&target).await?;
            if members.is_empty() {
                continue;
            }
            pass.summary.upstream_calls += 1;
            let holders: HashSet<String> = self
                .c4c
                .role_holders(role)
                .await?
                .into_iter()
                .filter_map(|assignment| assignment.parent_object_id)
                .collect();
            for member in members {
                if holders.contains(&member.object_id) || pass.missing.contains(&member.object_id) {
                    continue;
                }
                let mut finding = NewFinding {
                    kind: "changed_in_c4c".into(),
                    resource_id: Some(member.user_id.to_string()),
                    object_id: Some(member.object_id.clone()),
                    employee_id: member.employee_id.clone(),
                    field: Some("business_role".into()),
                    c4c_value: Some(Value::Null),
                    expected_value: Some(Value::String(role.to_owned())),
                    action: "reported".into(),
                    detail: Some(format!("group {}", member.group_id)),
                };
                if policy == DriftPolicy::Restore {
                    if pass.dry_run {
                        finding.action = "would_restore".into();
                    } else {
                        pass.summary.upstream_calls += 1;
                        match self
                            .c4c
                            .create_role_assignment(&member.object_id, role, None)
                            .await
                        {
                            Ok(assignment) => {
                                self.store
                                    .set_member_assignment(
                                        member.group_id,
                                        member.user_id,
                                        &assignment.object_id,
                                    )
                                    .await?;
                                pass.summary.restored += 1;
                                finding.action = "restored".into();
                            }
                            Err(error) => {
                                pass.summary.restore_failed += 1;
                                finding.action = "restore_failed".into();
                                finding.detail = Some(error.to_string());
                            }
                        }
                    }
                }
                add(pass, finding);
            }
            if pass.pending.len() >= FLUSH_AT {
                self.flush(pass).await?;
            }
        }
        Ok(())
    }

    async fn flush(&self, pass: &mut Pass) -> Result<(), ReconcileError> {
        if pass.pending.is_empty() {
            return Ok(());
        }
        self.store.add_findings(pass.run_id, &pass.pending).await?;
        pass.pending.clear();
        Ok(())
    }
}

/// The background job `serve` starts when `[reconcile] enabled`: a run right away, then one
/// every `interval_secs`; a run is skipped when another replica holds the job's lock.
pub struct ReconcileJob {
    reconciler: Reconciler,
}

impl ReconcileJob {
    pub fn new(reconciler: Reconciler) -> Self {
        Self { reconciler }
    }

    /// Runs until `stop` completes (checked between runs; a run in progress finishes first).
    pub async fn run_until(self, stop: impl std::future::Future<Output = ()>) {
        let config = self.reconciler.config().clone();
        let interval = std::time::Duration::from_secs(config.interval_secs);
        tokio::pin!(stop);
        let mut runs: u64 = 0;
        loop {
            let full = config.full_every > 0
                && runs > 0
                && runs.is_multiple_of(u64::from(config.full_every));
            runs += 1;
            self.run_once(full).await;
            tokio::select! {
                () = &mut stop => break,
                () = tokio::time::sleep(interval) => {}
            }
        }
    }

    /// One run under the cross-replica lock; `false` when another replica held it.
    pub async fn run_once(&self, full: bool) -> bool {
        let lock = match self
            .reconciler
            .store
            .try_lock_across_replicas(JOB_LOCK)
            .await
        {
            Ok(Some(lock)) => lock,
            Ok(None) => {
                tracing::debug!("reconciliation runs on another replica; skipped");
                return false;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot take the reconciliation lock; run skipped");
                return false;
            }
        };
        let options = RunOptions {
            full,
            dry_run: false,
            trigger: "job",
        };
        match self.reconciler.run(options).await {
            Ok(report) => tracing::info!(
                run = report.run_id,
                mode = %report.summary.mode,
                employees = report.summary.employees_read,
                findings = ?report.summary.findings,
                restored = report.summary.restored,
                "reconciliation finished"
            ),
            Err(error) => tracing::warn!(%error, "reconciliation failed"),
        }
        lock.release().await;
        true
    }
}

/// The store's linked users in ObjectID order, one page at a time.
struct LinkedCursor<'a> {
    store: &'a Store,
    page_size: i64,
    buffer: VecDeque<ResourceRow>,
    after: Option<String>,
    done: bool,
}

impl<'a> LinkedCursor<'a> {
    fn new(store: &'a Store, page_size: i64) -> Self {
        Self {
            store,
            page_size,
            buffer: VecDeque::new(),
            after: None,
            done: false,
        }
    }

    async fn peek(&mut self) -> Result<Option<&ResourceRow>, ReconcileError> {
        if self.buffer.is_empty() && !self.done {
            let page = self
                .store
                .linked_users_after(self.after.as_deref(), self.page_size)
                .await?;
            if (page.len() as i64) < self.page_size {
                self.done = true;
            }
            for row in page {
                let object_id = row.object_id.clone().unwrap_or_default();
                if let Some(after) = &self.after
                    && object_id.as_str() < after.as_str()
                {
                    return Err(ReconcileError::Order(format!(
                        "the store returned ObjectID {object_id} after {after}: its collation \
                         does not order ObjectIDs bytewise"
                    )));
                }
                self.after = Some(object_id);
                self.buffer.push_back(row);
            }
        }
        Ok(self.buffer.front())
    }

    /// The next linked user whose ObjectID sorts before `object_id`.
    async fn next_before(
        &mut self,
        object_id: &str,
    ) -> Result<Option<ResourceRow>, ReconcileError> {
        let before = self
            .peek()
            .await?
            .is_some_and(|row| row.object_id.as_deref().unwrap_or_default() < object_id);
        Ok(if before {
            self.buffer.pop_front()
        } else {
            None
        })
    }

    /// Every linked user on `object_id` (more than one: linked twice).
    async fn take_equal(&mut self, object_id: &str) -> Result<Vec<ResourceRow>, ReconcileError> {
        let mut rows = Vec::new();
        while self
            .peek()
            .await?
            .is_some_and(|row| row.object_id.as_deref() == Some(object_id))
        {
            if let Some(row) = self.buffer.pop_front() {
                rows.push(row);
            }
        }
        Ok(rows)
    }

    async fn next_any(&mut self) -> Result<Option<ResourceRow>, ReconcileError> {
        self.peek().await?;
        Ok(self.buffer.pop_front())
    }
}

fn note_changed(pass: &mut Pass, employee: &Employee) {
    if let Some(changed) = employee.entity_last_changed_on
        && pass.newest.is_none_or(|newest| changed > newest)
    {
        pass.newest = Some(changed);
    }
}

/// What a page leaves to do once all its employees are placed.
#[derive(Default)]
struct PageWork {
    unlinked: Vec<Employee>,
    restores: Vec<(ResourceRow, Employee, Restore)>,
}

fn linked_twice(pass: &mut Pass, employee: &Employee, rows: &[ResourceRow]) {
    let ids: Vec<String> = rows.iter().map(|row| row.id.to_string()).collect();
    add(
        pass,
        NewFinding {
            kind: "linked_twice".into(),
            resource_id: ids.first().cloned(),
            object_id: Some(employee.object_id.clone()),
            employee_id: employee.employee_id.clone(),
            expected_value: Some(json!(ids)),
            action: "reported".into(),
            detail: Some(format!("SCIM users {} share one employee", ids.join(", "))),
            ..NewFinding::default()
        },
    );
}

/// Queues a finding; its index in the pending batch (for setting its action later).
fn add(pass: &mut Pass, finding: NewFinding) -> usize {
    *pass
        .summary
        .findings
        .entry(finding.kind.clone())
        .or_insert(0) += 1;
    pass.pending.push(finding);
    pass.pending.len() - 1
}

/// What became of a restore, in the run's summary and on its findings.
fn record_outcome(pass: &mut Pass, restore: &Restore, outcome: &RestoreOutcome) {
    let (action, detail) = match outcome {
        RestoreOutcome::Applied => {
            pass.summary.restored += 1;
            ("restored", None)
        }
        RestoreOutcome::Failed(error) | RestoreOutcome::NotAdmitted(error) => {
            pass.summary.restore_failed += 1;
            ("restore_failed", Some(error.clone()))
        }
        RestoreOutcome::Held { id, .. } => {
            pass.summary.held += 1;
            (
                "held",
                Some(format!(
                    "held by the circuit breaker as operation {id} (release it to apply)"
                )),
            )
        }
    };
    for index in &restore.finding_indexes {
        set_action(pass, *index, action, detail.clone());
    }
}

fn set_action(pass: &mut Pass, index: usize, action: &str, detail: Option<String>) {
    if let Some(finding) = pass.pending.get_mut(index) {
        finding.action = action.to_owned();
        if detail.is_some() {
            finding.detail = detail;
        }
    }
}

/// Whether C4C's value is the one the bridge wrote: equal JSON, equal dates, an empty string
/// for nothing, and case-insensitive for the properties C4C compares that way.
fn same(name: &str, wanted: &Value, held: &Value) -> bool {
    if wanted == held {
        return true;
    }
    match (wanted, held) {
        (Value::String(a), Value::Null) | (Value::Null, Value::String(a)) => a.is_empty(),
        (Value::String(a), Value::String(b)) if matches!(name, "UserID" | "Email") => {
            a.eq_ignore_ascii_case(b)
        }
        _ => matches!(
            (value_as_date(wanted), value_as_date(held)),
            (Some(a), Some(b)) if a == b
        ),
    }
}

fn rfc3339(millis: i64) -> String {
    Utc.timestamp_millis_opt(millis)
        .single()
        .map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_compare_like_c4c() {
        assert!(same("Email", &json!("a@x.com"), &json!("A@X.com")));
        assert!(!same("FirstName", &json!("ann"), &json!("Ann")));
        assert!(same("MiddleName", &json!(""), &Value::Null));
        assert!(same(
            "UserValidityEndDate",
            &json!("9999-12-31T00:00:00"),
            &json!("/Date(253402214400000)/")
        ));
        assert!(!same("LastName", &json!("Doe"), &Value::Null));
    }

    #[test]
    fn policy_defaults_to_report() {
        let mut config = ReconcileConfig::default();
        config
            .policies
            .insert("active".into(), DriftPolicy::Restore);
        assert_eq!(config.policy("active"), DriftPolicy::Restore);
        assert_eq!(config.policy("FirstName"), DriftPolicy::Report);
        assert!(config.validate().is_ok());
        config.page_size = 0;
        assert!(config.validate().is_err());
    }
}
