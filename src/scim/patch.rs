//! The PATCH engine (RFC 7644 §3.5.2) with the dialects of real clients.
//!
//! `apply` works on a copy and returns it only when every operation succeeded and the result
//! validates, so a failing request leaves the stored resource untouched (atomicity).
//!
//! Client quirks handled (see docs/scim.md): op names in any case (`Replace`); booleans and
//! numbers as strings (`"False"`); path-less add/replace whose keys are paths (`name.givenName`,
//! `urn:…:enterprise:2.0:User:employeeNumber`) or extension URNs; add/replace on a filtered path
//! that matches nothing creates the element (`phoneNumbers[type eq "mobile"].value`, Entra);
//! the enterprise `manager` as a plain id, `{"value": id}` or `[{"$ref":…, "value": id}]`;
//! `remove` of `manager[value eq "id"]` on the single-valued manager; `remove` of `members`
//! with a value array and no filter; `""` and `null` values clear; `value` as array or object;
//! read-only attributes re-sent unchanged (Okta's `{"id": …, "displayName": …}`) are accepted.

use super::error::ScimError;
use super::eval::matches_element;
use super::filter::{CompareOp, Filter, PatchPath};
use super::resource::{self, Source, coerce, coerce_scalar, coerce_single, get_ci};
use super::schema::{AttrType, AttributeDef, Container, Mutability, ResourceTypeDef, Target};
use serde_json::{Map, Value};
use std::fmt;

/// Schema URN of a PATCH request body.
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// `add`, `remove` or `replace` (matched case-insensitively on input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Add,
    Remove,
    Replace,
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OpKind::Add => "add",
            OpKind::Remove => "remove",
            OpKind::Replace => "replace",
        })
    }
}

/// One PATCH operation.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOperation {
    pub op: OpKind,
    pub path: Option<PatchPath>,
    /// `Some(Value::Null)` when the client sent `"value": null`.
    pub value: Option<Value>,
}

/// A PATCH request body (`urn:ietf:params:scim:api:messages:2.0:PatchOp`).
#[derive(Debug, Clone, PartialEq)]
pub struct PatchRequest {
    pub operations: Vec<PatchOperation>,
}

impl PatchRequest {
    /// Reads a PATCH body. Malformed structure is `invalidSyntax`, a bad path `invalidPath`.
    pub fn from_json(body: &Value) -> Result<PatchRequest, ScimError> {
        let obj = body
            .as_object()
            .ok_or_else(|| ScimError::invalid_syntax("the PATCH body must be a JSON object"))?;
        if let Some(schemas) = get_ci(obj, "schemas") {
            let ok = schemas.as_array().is_some_and(|a| {
                a.iter().any(|s| {
                    s.as_str()
                        .is_some_and(|s| s.eq_ignore_ascii_case(PATCH_OP_SCHEMA))
                })
            });
            if !ok {
                return Err(ScimError::invalid_syntax(format!(
                    "'schemas' must contain {PATCH_OP_SCHEMA}"
                )));
            }
        }
        let ops = get_ci(obj, "Operations")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                ScimError::invalid_syntax("the PATCH body needs an 'Operations' array")
            })?;
        if ops.is_empty() {
            return Err(ScimError::invalid_syntax("'Operations' is empty"));
        }
        let mut operations = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            let o = op.as_object().ok_or_else(|| {
                ScimError::invalid_syntax(format!("Operations[{i}] must be an object"))
            })?;
            let kind = match get_ci(o, "op")
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase)
            {
                Some(k) if k == "add" => OpKind::Add,
                Some(k) if k == "remove" => OpKind::Remove,
                Some(k) if k == "replace" => OpKind::Replace,
                _ => {
                    return Err(ScimError::invalid_syntax(format!(
                        "Operations[{i}].op must be 'add', 'remove' or 'replace'"
                    )));
                }
            };
            let path = match get_ci(o, "path") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if s.trim().is_empty() => None,
                Some(Value::String(s)) => Some(PatchPath::parse(s).map_err(|e| at(i, e))?),
                Some(_) => {
                    return Err(ScimError::invalid_path(format!(
                        "Operations[{i}].path must be a string"
                    )));
                }
            };
            operations.push(PatchOperation {
                op: kind,
                path,
                value: get_ci(o, "value").cloned(),
            });
        }
        Ok(PatchRequest { operations })
    }

    /// Applies all operations atomically (see [`apply`]).
    pub fn apply(&self, resource: &Value, rt: &ResourceTypeDef) -> Result<Value, ScimError> {
        apply(resource, &self.operations, rt)
    }
}

fn at(i: usize, e: ScimError) -> ScimError {
    ScimError {
        detail: format!("Operations[{i}]: {}", e.detail),
        ..e
    }
}

/// Applies `ops` to a copy of `resource` and returns the new resource in normal form, or the
/// first error (naming the operation) with the input untouched.
pub fn apply(
    resource: &Value,
    ops: &[PatchOperation],
    rt: &ResourceTypeDef,
) -> Result<Value, ScimError> {
    let mut doc = resource::normalise(rt, resource, Source::Stored)?;
    for (i, op) in ops.iter().enumerate() {
        apply_one(rt, &mut doc, op).map_err(|e| at(i, e))?;
    }
    resource::validate_stored(rt, &Value::Object(doc))
}

fn apply_one(
    rt: &ResourceTypeDef,
    doc: &mut Map<String, Value>,
    op: &PatchOperation,
) -> Result<(), ScimError> {
    match &op.path {
        Some(path) => apply_path(rt, doc, op.op, path, op.value.as_ref()),
        None if op.op == OpKind::Remove => Err(ScimError::no_target("'remove' requires a 'path'")),
        None => {
            let value = op.value.as_ref().ok_or_else(|| {
                ScimError::invalid_value(format!("'{}' without a path requires a value", op.op))
            })?;
            let obj = match value {
                Value::Object(o) => o,
                Value::Array(a) if a.len() == 1 && a.first().is_some_and(Value::is_object) => {
                    match a.first() {
                        Some(Value::Object(o)) => o,
                        _ => return Err(ScimError::invalid_value("value must be an object")),
                    }
                }
                _ => {
                    return Err(ScimError::invalid_value(format!(
                        "'{}' without a path requires an object value",
                        op.op
                    )));
                }
            };
            for (key, v) in obj {
                // Clients that send a whole representation path-less also send these; both are
                // server-managed, so they are skipped rather than refused.
                if key.eq_ignore_ascii_case("schemas") || key.eq_ignore_ascii_case("meta") {
                    continue;
                }
                // Entra folds several attributes into one object keyed by *paths*.
                let path = PatchPath::parse(key).map_err(|e| {
                    ScimError::invalid_path(format!("value key '{key}': {}", e.detail))
                })?;
                apply_path(rt, doc, op.op, &path, Some(v))?;
            }
            Ok(())
        }
    }
}

fn apply_path(
    rt: &ResourceTypeDef,
    doc: &mut Map<String, Value>,
    kind: OpKind,
    path: &PatchPath,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let target = rt.resolve(path.attr()).ok_or_else(|| {
        ScimError::invalid_path(format!(
            "'{}' is not an attribute of {}",
            path.attr(),
            rt.name
        ))
    })?;
    match (target, path) {
        (Target::Extension(ext), PatchPath::Attr(_)) => {
            if kind == OpKind::Remove {
                doc.remove(ext.id);
                return Ok(());
            }
            let value = required_value(kind, ext.id, value)?;
            if is_clear(value) {
                doc.remove(ext.id);
                return Ok(());
            }
            let obj = value.as_object().ok_or_else(|| {
                ScimError::invalid_value(format!("'{}' needs an object value", ext.id))
            })?;
            for (k, v) in obj {
                let def = ext.attr(k).ok_or_else(|| {
                    ScimError::invalid_path(format!("'{}:{k}' is not an attribute", ext.id))
                })?;
                let r = super::schema::Resolved {
                    container: Container::Extension(ext.id),
                    attr: def,
                    sub: None,
                };
                attr_op(doc, kind, r, Some(v))?;
            }
            Ok(())
        }
        (Target::Extension(ext), PatchPath::Value { .. }) => Err(ScimError::invalid_path(format!(
            "'{}' is a schema, not a multi-valued attribute",
            ext.id
        ))),
        (Target::Attr(r), PatchPath::Attr(_)) => attr_op(doc, kind, r, value),
        (
            Target::Attr(r),
            PatchPath::Value {
                filter, sub_attr, ..
            },
        ) => {
            if r.sub.is_some() || r.attr.ty != AttrType::Complex {
                return Err(ScimError::invalid_path(format!(
                    "'{path}': a value filter needs a complex attribute"
                )));
            }
            let sub = match sub_attr {
                Some(s) => Some(r.attr.sub(s).ok_or_else(|| {
                    ScimError::invalid_path(format!(
                        "'{s}' is not a sub-attribute of '{}'",
                        r.attr.name
                    ))
                })?),
                None => None,
            };
            value_path_op(doc, kind, r.container, r.attr, filter, sub, value)
        }
    }
}

fn required_value<'v>(
    kind: OpKind,
    name: &str,
    value: Option<&'v Value>,
) -> Result<&'v Value, ScimError> {
    value.ok_or_else(|| ScimError::invalid_value(format!("'{kind}' of '{name}' requires a value")))
}

/// `null` and `""` mean "clear" (Entra's gallery validator sends both).
fn is_clear(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

fn container_mut(
    doc: &mut Map<String, Value>,
    container: Container,
    create: bool,
) -> Option<&mut Map<String, Value>> {
    match container {
        Container::Core => Some(doc),
        Container::Extension(urn) => {
            if !doc.contains_key(urn) {
                if !create {
                    return None;
                }
                doc.insert(urn.into(), Value::Object(Map::new()));
            }
            doc.get_mut(urn).and_then(Value::as_object_mut)
        }
    }
}

fn display_name(container: Container, attr: &AttributeDef, sub: Option<&AttributeDef>) -> String {
    let mut s = match container {
        Container::Core => attr.name.to_string(),
        Container::Extension(urn) => format!("{urn}:{}", attr.name),
    };
    if let Some(sub) = sub {
        s.push('.');
        s.push_str(sub.name);
    }
    s
}

/// Mutability of the addressed attribute: `Ok(true)` = allowed, `Ok(false)` = no-op (the client
/// re-sent the current value of a read-only/immutable attribute), `Err` = mutability.
fn writable(
    defs: &[&AttributeDef],
    kind: OpKind,
    name: &str,
    current: Option<&Value>,
    new: Option<&Value>,
) -> Result<bool, ScimError> {
    let read_only = defs.iter().any(|d| d.mutability == Mutability::ReadOnly);
    let immutable = defs.iter().any(|d| d.mutability == Mutability::Immutable);
    if !read_only && !immutable {
        return Ok(true);
    }
    if kind != OpKind::Remove && current.is_some() && current == new {
        return Ok(false);
    }
    if immutable && !read_only && kind != OpKind::Remove && current.is_none() {
        return Ok(true);
    }
    Err(ScimError::mutability(format!(
        "'{name}' is {} and cannot be changed",
        if read_only { "read-only" } else { "immutable" }
    )))
}

fn attr_op(
    doc: &mut Map<String, Value>,
    kind: OpKind,
    r: super::schema::Resolved,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let name = display_name(r.container, r.attr, r.sub);
    let attr = r.attr;
    if kind == OpKind::Remove {
        let Some(container) = container_mut(doc, r.container, false) else {
            return Ok(());
        };
        let mut defs = vec![attr];
        defs.extend(r.sub);
        let current = container.get(attr.name).cloned();
        if current.is_none() {
            return Ok(());
        }
        // Entra: `remove` of `members` with a value array and no filter removes those values.
        if let (Some(v), true, None) = (value.filter(|v| !is_clear(v)), attr.multi_valued, r.sub) {
            writable(&[attr], kind, &name, current.as_ref(), None)?;
            let targets = match coerce(attr, v, &name, Source::Client)? {
                Some(Value::Array(t)) => t,
                _ => return Ok(()),
            };
            if let Some(Value::Array(items)) = container.get_mut(attr.name) {
                items.retain(|e| !targets.iter().any(|t| same_element(attr, t, e)));
            }
            return Ok(());
        }
        writable(&defs, kind, &name, current.as_ref(), None)?;
        match r.sub {
            None => {
                container.remove(attr.name);
            }
            Some(sub) => match container.get_mut(attr.name) {
                Some(Value::Object(m)) => {
                    m.remove(sub.name);
                }
                Some(Value::Array(items)) => {
                    for e in items.iter_mut() {
                        if let Value::Object(m) = e {
                            m.remove(sub.name);
                        }
                    }
                }
                _ => {}
            },
        }
        return Ok(());
    }

    let value = required_value(kind, &name, value)?;
    let Some(container) = container_mut(doc, r.container, true) else {
        return Err(ScimError::internal("extension container is not an object"));
    };
    let current = container.get(attr.name).cloned();
    match r.sub {
        Some(sub) => {
            let new = coerce_scalar(sub, value, &name)?;
            let cur_sub = match &current {
                Some(Value::Object(m)) => m.get(sub.name).cloned(),
                _ => None,
            };
            let check_current = if attr.multi_valued {
                None
            } else {
                cur_sub.as_ref()
            };
            if !writable(&[attr, sub], kind, &name, check_current, new.as_ref())? {
                return Ok(());
            }
            match container.get_mut(attr.name) {
                Some(Value::Array(items)) if attr.multi_valued && !items.is_empty() => {
                    for e in items.iter_mut() {
                        if let Value::Object(m) = e {
                            set_or_remove(m, sub.name, new.clone());
                        }
                    }
                }
                Some(Value::Object(m)) if !attr.multi_valued => {
                    set_or_remove(m, sub.name, new);
                }
                _ => {
                    if let Some(v) = new {
                        let mut m = Map::new();
                        m.insert(sub.name.into(), v);
                        let elem = Value::Object(m);
                        let stored = if attr.multi_valued {
                            Value::Array(vec![elem])
                        } else {
                            elem
                        };
                        container.insert(attr.name.into(), stored);
                    }
                }
            }
            Ok(())
        }
        None => {
            let new = if is_clear(value) {
                None
            } else {
                coerce(attr, value, &name, Source::Client)?
            };
            if !writable(&[attr], kind, &name, current.as_ref(), new.as_ref())? {
                return Ok(());
            }
            let Some(new) = new else {
                // `add` of an empty array or object changes nothing; anything else clears.
                if kind == OpKind::Replace || is_clear(value) {
                    container.remove(attr.name);
                }
                return Ok(());
            };
            if attr.multi_valued {
                let new_items = match new {
                    Value::Array(a) => a,
                    other => vec![other],
                };
                let mut items = match (kind, current) {
                    (OpKind::Add, Some(Value::Array(a))) => a,
                    _ => Vec::new(),
                };
                for n in new_items {
                    let primary = n.get("primary") == Some(&Value::Bool(true));
                    let idx = match items.iter().position(|e| same_element(attr, &n, e)) {
                        Some(i) => {
                            if let (Some(Value::Object(e)), Value::Object(nm)) =
                                (items.get_mut(i), n)
                            {
                                for (k, v) in nm {
                                    e.insert(k, v);
                                }
                            }
                            i
                        }
                        None => {
                            items.push(n);
                            items.len() - 1
                        }
                    };
                    if primary {
                        demote_others(&mut items, idx);
                    }
                }
                container.insert(attr.name.into(), Value::Array(items));
            } else if attr.ty == AttrType::Complex {
                // Complex replace merges sub-attributes (RFC 7644 §3.5.2.3), unless the referent
                // (`value`, e.g. a new manager id) changes: then the old `$ref` must not survive.
                let merged = match (current, new) {
                    (Some(Value::Object(mut cur)), Value::Object(n)) => {
                        let same_referent = match (cur.get("value"), n.get("value")) {
                            (Some(a), Some(b)) => a == b,
                            _ => true,
                        };
                        if same_referent {
                            for (k, v) in n {
                                cur.insert(k, v);
                            }
                            Value::Object(cur)
                        } else {
                            Value::Object(n)
                        }
                    }
                    (_, n) => n,
                };
                container.insert(attr.name.into(), merged);
            } else {
                container.insert(attr.name.into(), new);
            }
            Ok(())
        }
    }
}

fn set_or_remove(m: &mut Map<String, Value>, key: &str, v: Option<Value>) {
    match v {
        Some(v) => {
            m.insert(key.into(), v);
        }
        None => {
            m.remove(key);
        }
    }
}

/// Setting `primary: true` on one value sets it to false on the others (RFC 7644 §3.5.2).
fn demote_others(items: &mut [Value], winner: usize) {
    for (i, e) in items.iter_mut().enumerate() {
        if i != winner
            && let Some(m) = e.as_object_mut()
            && m.get("primary") == Some(&Value::Bool(true))
        {
            m.insert("primary".into(), Value::Bool(false));
        }
    }
}

/// Two values of a multi-valued attribute designate the same thing: same `value` (and same
/// `type` when both have one), or equal JSON.
fn same_element(def: &AttributeDef, a: &Value, b: &Value) -> bool {
    let (Some(x), Some(y)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    match (x.get("value"), y.get("value")) {
        (Some(va), Some(vb)) => {
            let case_exact = def.sub("value").is_some_and(|d| d.case_exact);
            let same_value = match (va, vb) {
                (Value::String(p), Value::String(q)) if !case_exact => p.eq_ignore_ascii_case(q),
                _ => va == vb,
            };
            let same_type = match (x.get("type"), y.get("type")) {
                (Some(Value::String(p)), Some(Value::String(q))) => p.eq_ignore_ascii_case(q),
                _ => true,
            };
            same_value && same_type
        }
        _ => a == b,
    }
}

/// The element a filter describes, from its `eq` terms (`type eq "work"` → `{"type": "work"}`);
/// `None` when the filter is anything but a conjunction of equalities on sub-attributes.
fn seed_from_filter(filter: &Filter, parent: &AttributeDef) -> Option<Map<String, Value>> {
    let mut seed = Map::new();
    let terms: Vec<&Filter> = match filter {
        Filter::And(items) => items.iter().collect(),
        other => vec![other],
    };
    for term in terms {
        let Filter::Compare(path, CompareOp::Eq, lit) = term else {
            return None;
        };
        if path.uri.is_some() || path.sub_attr.is_some() {
            return None;
        }
        let sub = parent.sub(&path.name)?;
        seed.insert(sub.name.into(), lit.to_json());
    }
    Some(seed)
}

fn value_path_op(
    doc: &mut Map<String, Value>,
    kind: OpKind,
    container_at: Container,
    attr: &'static AttributeDef,
    filter: &Filter,
    sub: Option<&'static AttributeDef>,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let name = display_name(container_at, attr, sub);
    let create = kind != OpKind::Remove;
    let Some(container) = container_mut(doc, container_at, create) else {
        return Ok(());
    };
    let mut defs = vec![attr];
    defs.extend(sub);

    if !attr.multi_valued {
        // e.g. `manager[value eq "id"]` on the single-valued enterprise manager.
        let matched = match container.get(attr.name) {
            Some(obj @ Value::Object(_)) => matches_element(filter, obj, attr),
            _ => false,
        };
        if !matched {
            if kind == OpKind::Remove {
                return Ok(());
            }
            return Err(ScimError::no_target(format!(
                "'{}' does not match '{filter}'",
                attr.name
            )));
        }
        let current = container.get(attr.name).cloned();
        if kind == OpKind::Remove {
            writable(&defs, kind, &name, current.as_ref(), None)?;
            match sub {
                None => {
                    container.remove(attr.name);
                }
                Some(s) => {
                    if let Some(Value::Object(m)) = container.get_mut(attr.name) {
                        m.remove(s.name);
                    }
                }
            }
            return Ok(());
        }
        let value = required_value(kind, &name, value)?;
        let as_path_value = match sub {
            Some(s) => {
                let mut m = Map::new();
                m.insert(s.name.into(), value.clone());
                Value::Object(m)
            }
            None => value.clone(),
        };
        let r = super::schema::Resolved {
            container: container_at,
            attr,
            sub: None,
        };
        return attr_op(doc, kind, r, Some(&as_path_value));
    }

    let mut items = match container.get(attr.name) {
        Some(Value::Array(a)) => a.clone(),
        _ => Vec::new(),
    };
    let matched: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, e)| matches_element(filter, e, attr))
        .map(|(i, _)| i)
        .collect();

    match kind {
        OpKind::Remove => {
            if matched.is_empty() {
                // Removing something absent succeeds (RFC 7644 §3.5.2.2 example).
                return Ok(());
            }
            match sub {
                None => {
                    writable(&[attr], kind, &name, None, None)?;
                    let mut i = 0;
                    items.retain(|_| {
                        let keep = !matched.contains(&i);
                        i += 1;
                        keep
                    });
                }
                Some(s) => {
                    writable(&defs, kind, &name, None, None)?;
                    for &i in &matched {
                        if let Some(Value::Object(m)) = items.get_mut(i) {
                            m.remove(s.name);
                        }
                    }
                }
            }
        }
        OpKind::Add | OpKind::Replace => {
            let value = required_value(kind, &name, value)?;
            if attr.mutability == Mutability::ReadOnly {
                return Err(ScimError::mutability(format!(
                    "'{name}' is read-only and cannot be changed"
                )));
            }
            if is_clear(value) {
                for &i in matched.iter().rev() {
                    match sub {
                        Some(s) => {
                            if let Some(Value::Object(m)) = items.get_mut(i) {
                                m.remove(s.name);
                            }
                        }
                        None => {
                            items.remove(i);
                        }
                    }
                }
            } else if matched.is_empty() {
                // Entra expects a filtered add/replace with no match to create the element
                // (RFC 7644 would answer noTarget, which breaks Entra).
                let mut seed = seed_from_filter(filter, attr).ok_or_else(|| {
                    ScimError::no_target(format!("no value of '{}' matches '{filter}'", attr.name))
                })?;
                match (sub, value) {
                    (Some(s), v) => {
                        seed.insert(s.name.into(), v.clone());
                    }
                    (None, Value::Object(o)) => {
                        for (k, v) in o {
                            seed.insert(k.clone(), v.clone());
                        }
                    }
                    (None, _) => {
                        return Err(ScimError::invalid_value(format!(
                            "'{name}' needs an object value"
                        )));
                    }
                }
                if let Some(new) = coerce_single(attr, &Value::Object(seed), &name, Source::Client)?
                {
                    let primary = new.get("primary") == Some(&Value::Bool(true));
                    items.push(new);
                    if primary {
                        let last = items.len() - 1;
                        demote_others(&mut items, last);
                    }
                }
            } else {
                for &i in &matched {
                    let Some(elem) = items.get_mut(i) else {
                        continue;
                    };
                    match sub {
                        Some(s) => {
                            let new = coerce_scalar(s, value, &name)?;
                            let cur = elem.get(s.name).cloned();
                            if !writable(&defs, kind, &name, cur.as_ref(), new.as_ref())? {
                                continue;
                            }
                            if let Value::Object(m) = elem {
                                set_or_remove(m, s.name, new);
                            }
                        }
                        None => {
                            let new = coerce_single(attr, value, &name, Source::Client)?;
                            match (kind, new) {
                                (OpKind::Replace, Some(n)) => *elem = n,
                                (OpKind::Add, Some(Value::Object(n))) => {
                                    if let Value::Object(m) = elem {
                                        for (k, v) in n {
                                            m.insert(k, v);
                                        }
                                    }
                                }
                                _ => {}
                            }
                        }
                    }
                }
                let winner = matched.iter().copied().find(|&i| {
                    items
                        .get(i)
                        .is_some_and(|e| e.get("primary") == Some(&Value::Bool(true)))
                });
                if let Some(w) = winner {
                    demote_others(&mut items, w);
                }
            }
        }
    }
    if items.is_empty() {
        container.remove(attr.name);
    } else {
        container.insert(attr.name.into(), Value::Array(items));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
