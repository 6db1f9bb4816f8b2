//! Mapping rules between SCIM resources and C4C EmployeeCollection entities. Pure functions, no I/O.
//!
//! [`Mapper`] compiles a [`MappingConfig`] (checked against `$metadata` when given) and maps a
//! SCIM User (normal form) to employee [`Fields`], child-set operations and values kept locally,
//! with a [`Trace`] of every rule; [`Mapper::to_scim`] maps back. [`pushdown::plan`] turns SCIM
//! filters into C4C queries; [`validate`] checks rules; [`dry_run`] serves the `map` command.
//! See docs/mapping.md.

pub mod config;
pub mod defaults;
mod dryrun;
pub mod path;
pub mod pushdown;
pub mod trace;
pub mod transform;
mod validate;

use std::collections::{BTreeMap, HashMap};

use chrono::{NaiveDate, Utc};
use serde_json::{Map, Value};

use crate::c4c::metadata::{EdmType, EntityTypeModel, Metadata, PropertyModel};
use crate::c4c::model::{BusinessKey, Employee, Fields};
use crate::c4c::odata::{date_for_body, value_as_date};
use crate::scim::error::ScimError;
use crate::scim::filter::PatchPath;
use crate::scim::schema::USER_RESOURCE;

pub use config::{
    Deprovisioning, Direction, MappingConfig, MatchOn, Missing, Rule, Target, TooLong, Transform,
};
pub use dryrun::{DryRunReport, dry_run};
pub use trace::{Outcome, Trace, TraceEntry};
pub use validate::{RuleProblem, Severity, validate};

use transform::{Env, LookupTable, Stop};

/// Resolves references between resources (e.g. `manager.value`) without I/O in this layer;
/// the provisioning layer backs it with the store.
pub trait ReferenceResolver {
    /// The C4C key (as stored in the mapping table) of the SCIM resource with this id.
    fn c4c_key_of(&self, scim_id: &str) -> Option<String>;
    /// The SCIM id of the resource with this C4C key.
    fn scim_id_of(&self, c4c_key: &str) -> Option<String>;
}

/// Resolves nothing (dry runs, tests).
pub struct NoReferences;

impl ReferenceResolver for NoReferences {
    fn c4c_key_of(&self, _: &str) -> Option<String> {
        None
    }
    fn scim_id_of(&self, _: &str) -> Option<String> {
        None
    }
}

/// What the mapping is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapKind {
    Create,
    Update,
}

/// A child-set change the provisioning layer carries out (desired state; it diffs with C4C).
#[derive(Debug, Clone, PartialEq)]
pub enum ChildOp {
    /// The employee's organisational unit (`EmployeeOrganisationalUnitAssignment.OrgUnitID`).
    AssignOrgUnit { org_unit_id: String },
    /// The business roles the employee should have (`EmployeeUserBusinessRoleAssignment`).
    SetBusinessRoles { role_ids: Vec<String> },
}

/// The result of mapping a SCIM user.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MappedEmployee {
    /// The EmployeeCollection body.
    pub fields: Fields,
    pub child_ops: Vec<ChildOp>,
    /// Values with no writable home in C4C, by SCIM path (the store keeps the whole resource).
    pub local: Map<String, Value>,
    pub trace: Trace,
    /// Values of create-only properties (compared on update to refuse a change).
    create_only: Map<String, Value>,
}

/// Why a user cannot be mapped. Becomes a SCIM 400 at the edge.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MappingError {
    #[error("rule {rule} ({path}): {message}")]
    Rejected {
        rule: String,
        path: String,
        message: String,
    },
    #[error(
        "rule {rule} ({path} -> {property}): value has {len} characters, {property} allows {max}"
    )]
    TooLong {
        rule: String,
        path: String,
        property: String,
        len: usize,
        max: usize,
    },
    #[error("{property} is mandatory in C4C: set {paths}")]
    Missing { property: String, paths: String },
    #[error("rule {rule}: {property} cannot change once created (C4C does not allow it)")]
    Immutable { rule: String, property: String },
}

impl From<MappingError> for ScimError {
    fn from(e: MappingError) -> Self {
        match e {
            MappingError::Immutable { .. } => ScimError::mutability(e.to_string()),
            _ => ScimError::invalid_value(e.to_string()),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Source {
    Path(PatchPath),
    Template(Vec<TemplatePart>),
    Constant(Value),
}

#[derive(Debug, Clone)]
pub(crate) enum TemplatePart {
    Text(String),
    Path(PatchPath),
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledRule {
    pub rule: Rule,
    pub source: Source,
    pub target: Target,
    /// Text of the source for traces and messages.
    pub source_text: String,
}

impl CompiledRule {
    fn forward_applies(&self) -> bool {
        self.rule.direction != Direction::ToScim
    }
    fn reverse_applies(&self) -> bool {
        self.rule.direction != Direction::ToC4c
            && matches!(self.source, Source::Path(_))
            && transform::reversible(&self.rule.transforms)
            && matches!(self.target, Target::Property(_) | Target::Active)
    }
}

pub(crate) fn parse_template(text: &str) -> Result<Vec<TemplatePart>, String> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        if start > 0 {
            parts.push(TemplatePart::Text(rest[..start].to_string()));
        }
        let after = &rest[start + 1..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("template {text:?}: '{{' without '}}'"))?;
        let path = PatchPath::parse(after[..end].trim())
            .map_err(|e| format!("template {text:?}: {}", e.detail))?;
        parts.push(TemplatePart::Path(path));
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        parts.push(TemplatePart::Text(rest.to_string()));
    }
    Ok(parts)
}

pub(crate) fn compile(rule: &Rule) -> Result<CompiledRule, String> {
    let target = Target::parse(&rule.to)?;
    let (source, source_text) = match (&rule.scim, &rule.template, &rule.value) {
        (Some(p), None, None) => {
            let parsed = PatchPath::parse(p).map_err(|e| e.detail)?;
            if path::resolve(&parsed).is_none() {
                return Err(format!("{p} is not an attribute of the SCIM User schema"));
            }
            (Source::Path(parsed), p.clone())
        }
        (None, Some(t), None) => (Source::Template(parse_template(t)?), t.clone()),
        (None, None, Some(v)) => (Source::Constant(v.clone()), v.to_string()),
        _ => return Err("set exactly one of scim, template or value".into()),
    };
    Ok(CompiledRule {
        rule: rule.clone(),
        source,
        target,
        source_text,
    })
}

/// One rule's forward run: source value, result, notes, and why the target is left alone.
struct Forward {
    before: Option<Value>,
    after: Option<Value>,
    notes: Vec<String>,
    skipped: Option<String>,
}

/// The compiled mapping.
#[derive(Debug, Clone)]
pub struct Mapper {
    config: MappingConfig,
    rules: Vec<CompiledRule>,
    lookups: BTreeMap<String, LookupTable>,
    employee: EntityTypeModel,
    has_metadata: bool,
    today: Option<NaiveDate>,
    /// See [`Mapper::read_back_select`]; set once the tenant's `$metadata` is known.
    read_back_select: std::sync::OnceLock<String>,
}

const OPEN_END: (i32, u32, u32) = (9999, 12, 31);

fn open_end() -> NaiveDate {
    NaiveDate::from_ymd_opt(OPEN_END.0, OPEN_END.1, OPEN_END.2).unwrap_or(NaiveDate::MAX)
}

impl Mapper {
    /// Compiles the rules; with `$metadata`, also validates them against it (errors refuse).
    pub fn new(
        config: MappingConfig,
        metadata: Option<&Metadata>,
    ) -> Result<Self, Vec<RuleProblem>> {
        let mut problems = match metadata {
            Some(md) => validate(&config, md),
            None => validate::check_rules(&config, &defaults::builtin_employee(), false),
        };
        problems.retain(|p| p.severity == Severity::Error);
        if !problems.is_empty() {
            return Err(problems);
        }
        let rules: Vec<CompiledRule> = config
            .rules
            .iter()
            .filter_map(|r| compile(r).ok())
            .collect();
        let mut tables = defaults::builtin_lookups();
        for (name, entries) in &config.lookups {
            tables
                .entry(name.clone())
                .or_default()
                .extend(entries.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        let lookups = tables
            .iter()
            .map(|(k, v)| (k.clone(), LookupTable::new(v)))
            .collect();
        let employee = metadata
            .and_then(|m| m.entity_type_of_set(crate::c4c::model::EMPLOYEE_SET))
            .cloned()
            .unwrap_or_else(defaults::builtin_employee);
        let mapper = Self {
            config,
            rules,
            lookups,
            employee,
            has_metadata: metadata.is_some(),
            today: None,
            read_back_select: std::sync::OnceLock::new(),
        };
        if let Some(metadata) = metadata {
            mapper.learn_tenant(metadata);
        }
        Ok(mapper)
    }

    /// Takes note of the tenant's `$metadata` once it has been read (at start-up, after the
    /// mapper was built): from then on a read of one employee asks only for what it needs.
    pub fn learn_tenant(&self, metadata: &Metadata) {
        let Some(employee) = metadata.entity_type_of_set(crate::c4c::model::EMPLOYEE_SET) else {
            return;
        };
        let _ = self
            .read_back_select
            .set(self.read_back_fields(employee).join(","));
    }

    /// What a read of one employee needs for the SCIM answer, as a `$select` value: the keys,
    /// every property a reverse rule reads and the ones `active` is derived from. A real
    /// Employee has over a hundred properties; a GET maps back a dozen. `None` without the
    /// tenant's `$metadata`: a name the tenant does not know would fail the read.
    pub fn read_back_select(&self) -> Option<&str> {
        self.read_back_select.get().map(String::as_str)
    }

    fn read_back_fields(&self, employee: &EntityTypeModel) -> Vec<String> {
        let active_fields: &[&str] = match self.config.deprovisioning {
            Deprovisioning::Lock => &["UserLockedIndicator"],
            Deprovisioning::EndValidity => &["UserValidityEndDate"],
            Deprovisioning::Both => &["UserLockedIndicator", "UserValidityEndDate"],
        };
        let mut fields: std::collections::BTreeSet<String> =
            ["ObjectID", "EmployeeID"].map(String::from).into();
        for rule in self.rules.iter().filter(|rule| rule.reverse_applies()) {
            match &rule.target {
                Target::Property(name) => {
                    fields.insert(name.clone());
                }
                Target::Active => fields.extend(active_fields.iter().map(|f| f.to_string())),
                _ => {}
            }
        }
        fields.retain(|name| employee.property(name).is_some());
        fields.into_iter().collect()
    }

    /// Fixes "today" (deprovisioning by end of validity); tests and dry runs use it.
    pub fn with_today(mut self, today: NaiveDate) -> Self {
        self.today = Some(today);
        self
    }

    pub fn config(&self) -> &MappingConfig {
        &self.config
    }

    /// The EmployeeCollection entity type used (from `$metadata`, or the built-in one).
    pub fn employee_type(&self) -> &EntityTypeModel {
        &self.employee
    }

    pub fn has_metadata(&self) -> bool {
        self.has_metadata
    }

    pub(crate) fn rules(&self) -> &[CompiledRule] {
        &self.rules
    }

    pub(crate) fn today(&self) -> NaiveDate {
        self.today.unwrap_or_else(|| Utc::now().date_naive())
    }

    /// The fields that deprovision a user, per `deprovisioning`.
    pub fn deactivate_fields(&self) -> Fields {
        let mut f = Fields::new();
        if self.config.deprovisioning != Deprovisioning::EndValidity {
            f.insert("UserLockedIndicator", Value::Bool(true));
        }
        if self.config.deprovisioning != Deprovisioning::Lock {
            f.insert("UserValidityEndDate", date_for_body(self.today()));
        }
        f
    }

    /// The fields that undo [`deactivate_fields`](Self::deactivate_fields).
    pub fn reactivate_fields(&self) -> Fields {
        let mut f = Fields::new();
        if self.config.deprovisioning != Deprovisioning::EndValidity {
            f.insert("UserLockedIndicator", Value::Bool(false));
        }
        if self.config.deprovisioning != Deprovisioning::Lock {
            f.insert("UserValidityEndDate", date_for_body(open_end()));
        }
        f
    }

    /// The key to find an existing employee by (`match_on`), from a mapped user.
    pub fn business_key(&self, mapped: &MappedEmployee) -> Option<BusinessKey> {
        let get = |p: &str| {
            mapped
                .fields
                .get(p)
                .or_else(|| mapped.create_only.get(p))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        match self.config.match_on {
            MatchOn::EmployeeId => get("EmployeeID").map(BusinessKey::EmployeeId),
            MatchOn::UserId => get("UserID").map(|value| BusinessKey::Property {
                name: "UserID".into(),
                value,
            }),
            MatchOn::Email => get("Email").map(|value| BusinessKey::Property {
                name: "Email".into(),
                value,
            }),
        }
    }

    fn sensitive(&self, path: &str) -> bool {
        self.config
            .sensitive
            .iter()
            .any(|attribute| is_or_under(path, attribute))
    }

    /// A SCIM body as the mapping log may keep it: `password` and the configured sensitive
    /// attributes (top level and inside extension objects) become `"***"`.
    pub fn masked(&self, body: &Value) -> Value {
        let Some(object) = body.as_object() else {
            return body.clone();
        };
        let masked = object
            .iter()
            .map(|(key, value)| {
                let value = if key.eq_ignore_ascii_case("password") || self.sensitive(key) {
                    Value::String("***".into())
                } else if key.starts_with("urn:") && value.is_object() {
                    let inner = value
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(name, inner)| {
                            let full = format!("{key}:{name}");
                            let shown = if name.eq_ignore_ascii_case("password")
                                || self.sensitive(&full)
                                || self.sensitive(name)
                            {
                                Value::String("***".into())
                            } else {
                                inner.clone()
                            };
                            (name.clone(), shown)
                        })
                        .collect();
                    Value::Object(inner)
                } else {
                    value.clone()
                };
                (key.clone(), value)
            })
            .collect();
        Value::Object(masked)
    }

    /// A SCIM PatchOp body as the mapping log may keep it: an operation whose path is
    /// sensitive (or `password`) has its value masked; path-less values are masked like bodies.
    pub fn masked_patch(&self, body: &Value) -> Value {
        let mut body = body.clone();
        let operations = body
            .as_object_mut()
            .and_then(|object| {
                object
                    .iter_mut()
                    .find(|(key, _)| key.eq_ignore_ascii_case("Operations"))
            })
            .and_then(|(_, operations)| operations.as_array_mut());
        for operation in operations.into_iter().flatten() {
            let Some(operation) = operation.as_object_mut() else {
                continue;
            };
            let path = operation
                .get("path")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if let Some(value) = operation.get_mut("value") {
                *value = match &path {
                    Some(path)
                        if self.sensitive(path)
                            || path.to_ascii_lowercase().contains("password") =>
                    {
                        Value::String("***".into())
                    }
                    Some(_) => value.clone(),
                    None => self.masked(value),
                };
            }
        }
        body
    }

    fn show(&self, rule: &CompiledRule, v: &Option<Value>) -> Option<String> {
        v.as_ref().map(|v| {
            if self.sensitive(&rule.source_text) {
                "***".to_string()
            } else {
                v.to_string()
            }
        })
    }

    fn env<'a>(&'a self, resolver: &'a dyn ReferenceResolver) -> Env<'a> {
        Env {
            lookups: &self.lookups,
            resolver,
        }
    }

    fn condition_holds(&self, rule: &Rule, user: &Value) -> Result<bool, String> {
        let Some(c) = &rule.when else {
            return Ok(true);
        };
        let values = |p: &str| -> Result<Vec<Value>, String> {
            Ok(path::get(user, &PatchPath::parse(p).map_err(|e| e.detail)?))
        };
        if let Some(p) = &c.present
            && values(p)?.is_empty()
        {
            return Ok(false);
        }
        if let Some(p) = &c.absent
            && !values(p)?.is_empty()
        {
            return Ok(false);
        }
        if let Some(p) = &c.path {
            let got = values(p)?;
            return Ok(match &c.equals {
                Some(want) => got.iter().any(|v| equal_loose(v, want)),
                None => !got.is_empty(),
            });
        }
        Ok(true)
    }

    /// The raw source value of a rule (several values become an array only where wanted).
    fn source_value(&self, rule: &CompiledRule, user: &Value) -> Option<Value> {
        match &rule.source {
            Source::Constant(v) => Some(v.clone()),
            Source::Path(p) => {
                let mut values = path::get(user, p);
                let wants_many = rule.target == Target::BusinessRoles
                    || matches!(rule.rule.transforms.first(), Some(Transform::Join(_)));
                match values.len() {
                    0 => None,
                    1 if !wants_many => values.pop(),
                    _ if wants_many => Some(Value::Array(values)),
                    _ => values.into_iter().next(),
                }
            }
            Source::Template(parts) => {
                let mut out = String::new();
                for part in parts {
                    match part {
                        TemplatePart::Text(t) => out.push_str(t),
                        TemplatePart::Path(p) => {
                            let v = path::get(user, p).into_iter().next()?;
                            match v {
                                Value::String(s) => out.push_str(&s),
                                other => out.push_str(&other.to_string()),
                            }
                        }
                    }
                }
                Some(Value::String(out))
            }
        }
    }

    /// Runs a rule's transforms; `Ok(None)` with a reason when the target is left alone.
    fn run_forward(
        &self,
        rule: &CompiledRule,
        user: &Value,
        resolver: &dyn ReferenceResolver,
    ) -> Result<Forward, MappingError> {
        let before = self.source_value(rule, user);
        let env = self.env(resolver);
        let mut notes = Vec::new();
        let mut v = before.clone();
        for t in &rule.rule.transforms {
            match transform::forward(t, v, &env, &mut notes) {
                Ok(next) => v = next,
                Err(Stop::Skip(reason)) => {
                    return Ok(Forward {
                        before,
                        after: None,
                        notes,
                        skipped: Some(reason),
                    });
                }
                Err(Stop::Reject(message)) => {
                    return Err(MappingError::Rejected {
                        rule: rule.rule.name.clone(),
                        path: rule.source_text.clone(),
                        message,
                    });
                }
            }
        }
        // A value that transforms to an empty string is absent (C4C would store "").
        if v.as_ref().and_then(Value::as_str) == Some("") {
            v = None;
        }
        let skipped = v.is_none().then(|| "source absent".to_string());
        Ok(Forward {
            before,
            after: v,
            notes,
            skipped,
        })
    }

    /// Coerces a value to the property's EDM type and enforces its max length.
    fn fit(
        &self,
        rule: &CompiledRule,
        prop: Option<&PropertyModel>,
        v: Value,
    ) -> Result<(Value, Option<usize>), MappingError> {
        let Some(prop) = prop else {
            return Ok((v, None));
        };
        let reject = |message: String| MappingError::Rejected {
            rule: rule.rule.name.clone(),
            path: rule.source_text.clone(),
            message,
        };
        let v = match (&prop.edm_type, v) {
            (EdmType::String, Value::String(s)) => Value::String(s),
            (EdmType::String, Value::Number(n)) => Value::String(n.to_string()),
            (EdmType::String, Value::Bool(b)) => Value::String(b.to_string()),
            (EdmType::Boolean, v) => match transform::as_bool(&v) {
                Some(b) => Value::Bool(b),
                None => return Err(reject(format!("{} is Edm.Boolean, got {v}", prop.name))),
            },
            (EdmType::DateTime, Value::String(s)) => match transform::parse_date(&s, None) {
                Some(d) => date_for_body(d),
                None => return Err(reject(format!("{} is a date, got {s:?}", prop.name))),
            },
            (t, v @ (Value::Array(_) | Value::Object(_))) => {
                return Err(reject(format!("{} is {t:?}, got {v}", prop.name)));
            }
            (_, v) => v,
        };
        if let (Some(max), Value::String(s)) = (prop.max_length, &v) {
            let len = s.chars().count();
            if len > max {
                let policy = rule.rule.too_long.unwrap_or(self.config.too_long);
                return match policy {
                    TooLong::Truncate => {
                        Ok((Value::String(s.chars().take(max).collect()), Some(max)))
                    }
                    TooLong::Reject => Err(MappingError::TooLong {
                        rule: rule.rule.name.clone(),
                        path: rule.source_text.clone(),
                        property: prop.name.clone(),
                        len,
                        max,
                    }),
                };
            }
        }
        Ok((v, None))
    }

    /// Maps a SCIM User (normal form) to an employee body, child-set operations and local values.
    pub fn to_c4c(
        &self,
        user: &Value,
        kind: MapKind,
        resolver: &dyn ReferenceResolver,
    ) -> Result<MappedEmployee, MappingError> {
        let mut out = MappedEmployee::default();
        let mut set_by: HashMap<String, String> = HashMap::new();
        for rule in self.rules.iter().filter(|r| r.forward_applies()) {
            let mut entry = TraceEntry {
                rule: rule.rule.name.clone(),
                scim_path: rule.source_text.clone(),
                before: None,
                after: None,
                target: rule.target.to_string(),
                outcome: Outcome::Set,
            };
            let target_key = match &rule.target {
                Target::Local | Target::Ignore => None,
                t => Some(t.to_string()),
            };
            if let Some(by) = target_key.as_ref().and_then(|k| set_by.get(k)) {
                entry.outcome = Outcome::Shadowed { by: by.clone() };
                out.trace.push(entry);
                continue;
            }
            match self.condition_holds(&rule.rule, user) {
                Ok(true) => {}
                Ok(false) => {
                    entry.outcome = Outcome::Skipped {
                        reason: "condition not met".into(),
                    };
                    out.trace.push(entry);
                    continue;
                }
                Err(message) => {
                    return Err(MappingError::Rejected {
                        rule: rule.rule.name.clone(),
                        path: rule.source_text.clone(),
                        message,
                    });
                }
            }
            let Forward {
                before,
                after,
                notes,
                skipped,
            } = self.run_forward(rule, user, resolver)?;
            entry.before = self.show(rule, &before);
            let Some(value) = after else {
                if before.is_some() || rule.target != Target::Local {
                    entry.outcome = Outcome::Skipped {
                        reason: skipped.unwrap_or_else(|| "no value".into()),
                    };
                    if before.is_some() || !matches!(rule.target, Target::Ignore | Target::Local) {
                        out.trace.push(entry);
                    }
                }
                continue;
            };
            if notes.iter().any(|n| n == "default used") {
                entry.outcome = Outcome::Defaulted;
            }
            match &rule.target {
                Target::Property(name) => {
                    let prop = self.employee.property(name);
                    let (value, truncated) = self.fit(rule, prop, value)?;
                    if let Some(max) = truncated {
                        entry.outcome = Outcome::Truncated { max };
                    }
                    entry.after = self.show(rule, &Some(value.clone()));
                    let create_only = rule.rule.create_only || prop.is_some_and(|p| !p.updatable);
                    if create_only {
                        out.create_only.insert(name.clone(), value.clone());
                    }
                    if kind == MapKind::Update && create_only {
                        entry.outcome = Outcome::CreateOnly;
                    } else {
                        out.fields.insert(name, value);
                    }
                }
                Target::Active => {
                    let Some(active) = transform::as_bool(&value) else {
                        return Err(MappingError::Rejected {
                            rule: rule.rule.name.clone(),
                            path: rule.source_text.clone(),
                            message: format!("active must be a boolean, got {value}"),
                        });
                    };
                    let fields = if active {
                        self.reactivate_fields()
                    } else {
                        self.deactivate_fields()
                    };
                    entry.after = Some(Value::Object(fields.0.clone()).to_string());
                    for (k, v) in fields.0 {
                        out.fields.insert(&k, v);
                    }
                }
                Target::OrgUnit => {
                    let Some(id) = value.as_str().filter(|s| !s.is_empty()) else {
                        return Err(MappingError::Rejected {
                            rule: rule.rule.name.clone(),
                            path: rule.source_text.clone(),
                            message: format!("an OrgUnitID must be a string, got {value}"),
                        });
                    };
                    entry.after = self.show(rule, &Some(value.clone()));
                    out.child_ops.push(ChildOp::AssignOrgUnit {
                        org_unit_id: id.to_string(),
                    });
                }
                Target::BusinessRoles => {
                    let mut role_ids: Vec<String> = match &value {
                        Value::Array(items) => items
                            .iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect(),
                        Value::String(s) => vec![s.clone()],
                        _ => Vec::new(),
                    };
                    role_ids.sort();
                    role_ids.dedup();
                    entry.after = self.show(rule, &Some(value.clone()));
                    out.child_ops.push(ChildOp::SetBusinessRoles { role_ids });
                }
                Target::Local => {
                    entry.outcome = Outcome::KeptLocally;
                    out.local.insert(rule.source_text.clone(), value);
                }
                Target::Ignore => entry.outcome = Outcome::Ignored,
            }
            if let Some(k) = target_key {
                set_by.insert(k, rule.rule.name.clone());
            }
            out.trace.push(entry);
        }
        self.trace_unmapped(user, &mut out.trace);
        if kind == MapKind::Create {
            self.check_mandatory(&out)?;
        }
        Ok(out)
    }

    /// Records SCIM attributes no rule reads, so the trace explains where they went.
    fn trace_unmapped(&self, user: &Value, trace: &mut Trace) {
        let Some(obj) = user.as_object() else {
            return;
        };
        let covered: Vec<String> = self
            .rules
            .iter()
            .filter_map(|r| match &r.source {
                Source::Path(p) => path::attr_key(p),
                _ => None,
            })
            .collect();
        let skip = ["schemas", "id", "meta", "password"];
        let mut report = |key: String, shown: String| {
            if !covered.contains(&key.to_ascii_lowercase()) {
                trace.push(TraceEntry {
                    rule: "-".into(),
                    scim_path: shown,
                    before: None,
                    after: None,
                    target: "@local".into(),
                    outcome: Outcome::NoRule,
                });
            }
        };
        for (k, v) in obj {
            if skip.iter().any(|s| s.eq_ignore_ascii_case(k)) {
                continue;
            }
            if USER_RESOURCE.extension_by_urn(k).is_some() {
                if let Some(ext) = v.as_object() {
                    for sub in ext.keys() {
                        report(format!("{k}:{sub}"), format!("{k}:{sub}"));
                    }
                }
                continue;
            }
            report(k.clone(), k.clone());
        }
    }

    fn check_mandatory(&self, out: &MappedEmployee) -> Result<(), MappingError> {
        for prop in self
            .employee
            .properties
            .iter()
            .filter(|p| !p.nullable && p.creatable)
        {
            if out.fields.get(&prop.name).is_none() {
                let paths: Vec<String> = self
                    .rules
                    .iter()
                    .filter(|r| r.target == Target::Property(prop.name.clone()))
                    .map(|r| r.source_text.clone())
                    .collect();
                return Err(MappingError::Missing {
                    property: prop.name.clone(),
                    paths: if paths.is_empty() {
                        format!("a rule targeting {}", prop.name)
                    } else {
                        paths.join(" or ")
                    },
                });
            }
        }
        Ok(())
    }

    /// Maps an update: only properties whose mapped value changed, cleared ones as `null`;
    /// child-set operations only when they changed. A change to a create-only property fails.
    pub fn diff_for_update(
        &self,
        old: &Value,
        new: &Value,
        resolver: &dyn ReferenceResolver,
    ) -> Result<MappedEmployee, MappingError> {
        // The old resource was accepted before (perhaps under other rules): map it leniently.
        let before = self
            .to_c4c(old, MapKind::Update, resolver)
            .unwrap_or_default();
        let mut after = self.to_c4c(new, MapKind::Update, resolver)?;
        for (prop, value) in &after.create_only {
            if let Some(old_value) = before.create_only.get(prop)
                && old_value != value
            {
                let rule = self
                    .rules
                    .iter()
                    .find(|r| r.target == Target::Property(prop.clone()))
                    .map(|r| r.rule.name.clone())
                    .unwrap_or_default();
                return Err(MappingError::Immutable {
                    rule,
                    property: prop.clone(),
                });
            }
        }
        let mut changed = Fields::new();
        for (k, v) in &after.fields.0 {
            if before.fields.get(k) != Some(v) {
                changed.insert(k, v.clone());
            }
        }
        for k in before.fields.0.keys() {
            if after.fields.get(k).is_none() {
                let nullable = self.employee.property(k).is_none_or(|p| p.nullable);
                if !nullable {
                    return Err(MappingError::Missing {
                        property: k.clone(),
                        paths: self
                            .rules
                            .iter()
                            .filter(|r| r.target == Target::Property(k.clone()))
                            .map(|r| r.source_text.clone())
                            .collect::<Vec<_>>()
                            .join(" or "),
                    });
                }
                changed.insert(k, Value::Null);
            }
        }
        for entry in &mut after.trace.entries {
            let same = |p: &str| after.fields.get(p).is_some() && changed.get(p).is_none();
            if matches!(entry.outcome, Outcome::Set | Outcome::Defaulted) && same(&entry.target) {
                entry.outcome = Outcome::Unchanged;
            }
        }
        after.child_ops.retain(|op| !before.child_ops.contains(op));
        after.fields = changed;
        Ok(after)
    }

    /// Reads one rule's property from an employee, as the SCIM value (reverse transforms).
    fn reverse_value(
        &self,
        rule: &CompiledRule,
        employee: &Employee,
        resolver: &dyn ReferenceResolver,
    ) -> Option<Value> {
        let env = self.env(resolver);
        let raw = match &rule.target {
            Target::Property(name) => {
                let v = employee.property(name)?;
                let is_date = self
                    .employee
                    .property(name)
                    .is_some_and(|p| p.edm_type == EdmType::DateTime);
                match v {
                    Value::Null => return None,
                    Value::String(s) if s.is_empty() => return None,
                    v if is_date => {
                        let d = value_as_date(&v)?;
                        if rule
                            .rule
                            .transforms
                            .iter()
                            .any(|t| matches!(t, Transform::Date(_)))
                        {
                            date_for_body(d)
                        } else {
                            Value::String(format!("{}T00:00:00Z", d.format("%Y-%m-%d")))
                        }
                    }
                    v => v,
                }
            }
            Target::Active => Value::Bool(self.known_active(employee)?),
            _ => return None,
        };
        let mut v = raw;
        for t in rule.rule.transforms.iter().rev() {
            v = transform::reverse(t, v, &env)?;
        }
        Some(v)
    }

    /// Whether C4C holds the employee as active, per the deprovisioning mode (active when C4C
    /// says nothing).
    pub fn is_active(&self, employee: &Employee) -> bool {
        self.known_active(employee).unwrap_or(true)
    }

    /// Like [`is_active`](Self::is_active), `None` when C4C holds none of the properties.
    fn known_active(&self, employee: &Employee) -> Option<bool> {
        let unlocked = employee.user_locked.map(|l| !l);
        let valid = employee.user_validity_end.map(|end| end >= self.today());
        match self.config.deprovisioning {
            Deprovisioning::Lock => unlocked,
            Deprovisioning::EndValidity => valid,
            Deprovisioning::Both => match (unlocked, valid) {
                (None, None) => None,
                (a, b) => Some(a.unwrap_or(true) && b.unwrap_or(true)),
            },
        }
    }

    /// Maps an employee back to a SCIM User (mapped attributes only; the caller merges what
    /// only the bridge keeps, or uses [`to_scim_merged`](Self::to_scim_merged)).
    pub fn to_scim(&self, employee: &Employee, resolver: &dyn ReferenceResolver) -> Value {
        let mut doc = Value::Object(Map::new());
        let mut done: Vec<String> = Vec::new();
        for rule in self.rules.iter().filter(|r| r.reverse_applies()) {
            let key = rule.target.to_string();
            if done.contains(&key) {
                continue;
            }
            done.push(key);
            if let (Source::Path(p), Some(v)) =
                (&rule.source, self.reverse_value(rule, employee, resolver))
            {
                path::set(&mut doc, p, v);
            }
        }
        finish_schemas(&mut doc);
        doc
    }

    /// Like [`to_scim`](Self::to_scim) on top of the stored resource: where the stored value
    /// still maps to what C4C holds, it is kept as is (so `en-US` is not read back as `en`),
    /// else C4C's value wins.
    pub fn to_scim_merged(
        &self,
        employee: &Employee,
        stored: &Value,
        resolver: &dyn ReferenceResolver,
    ) -> Value {
        let mut doc = stored.clone();
        let mut done: Vec<String> = Vec::new();
        for rule in self.rules.iter().filter(|r| r.reverse_applies()) {
            let key = rule.target.to_string();
            if done.contains(&key) {
                continue;
            }
            let Source::Path(p) = &rule.source else {
                continue;
            };
            let held = match &rule.target {
                Target::Property(name) => employee.property(name).filter(|v| !v.is_null()),
                Target::Active => Some(Value::Bool(self.is_active(employee))),
                _ => None,
            };
            let Some(held) = held else {
                continue;
            };
            done.push(key);
            let stored_forward = self
                .run_forward(rule, stored, resolver)
                .ok()
                .and_then(|f| f.after);
            let keep = match &rule.target {
                Target::Property(name) => stored_forward
                    .and_then(|v| self.fit(rule, self.employee.property(name), v).ok())
                    .is_some_and(|(v, _)| same_value(&v, &held)),
                Target::Active => {
                    stored_forward.and_then(|v| transform::as_bool(&v))
                        == Some(self.is_active(employee))
                }
                _ => false,
            };
            if keep {
                continue;
            }
            if let Some(v) = self.reverse_value(rule, employee, resolver) {
                path::set(&mut doc, p, v);
            }
        }
        finish_schemas(&mut doc);
        doc
    }
}

fn finish_schemas(doc: &mut Value) {
    if let Some(obj) = doc.as_object_mut() {
        let schemas = USER_RESOURCE.schemas_for(obj);
        obj.insert("schemas".into(), Value::Array(schemas));
    }
}

/// Compares a mapped value with what C4C returned (dates in either form).
fn same_value(mapped: &Value, held: &Value) -> bool {
    if mapped == held {
        return true;
    }
    match (value_as_date(mapped), value_as_date(held)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

fn equal_loose(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.eq_ignore_ascii_case(y),
        _ => a == b,
    }
}

/// Whether `path` names `attribute` or lies inside it (`attribute.x`, `attribute[…]`,
/// `urn:…:attribute`), ASCII case-insensitively. Runs for every attribute of every logged body:
/// it allocates nothing.
fn is_or_under(path: &str, attribute: &str) -> bool {
    let (path, attribute) = (path.as_bytes(), attribute.as_bytes());
    let n = attribute.len();
    if path.len() < n {
        return false;
    }
    let prefix = path[..n].eq_ignore_ascii_case(attribute)
        && (path.len() == n || matches!(path[n], b'.' | b'['));
    let suffix = path.len() > n
        && path[path.len() - n..].eq_ignore_ascii_case(attribute)
        && path[path.len() - n - 1] == b':';
    prefix || suffix
}

#[cfg(test)]
mod tests;
