//! Filter evaluation against a resource (RFC 7644 §3.4.2.2).
//!
//! Attribute names are case-insensitive; string comparison follows the attribute's `caseExact`;
//! `dateTime` values compare as instants, booleans and numbers by value. A multi-valued
//! attribute matches when any value matches; a complex attribute compared without a
//! sub-attribute compares its `value` sub-attribute (`emails co "x"`, `manager eq "id"`).
//! Attributes the resource does not have evaluate as unassigned (RFC 7644 §3.4.2.1).

use super::error::ScimError;
use super::filter::{AttrPath, CompValue, CompareOp, Filter, position_of};
use super::resource::get_ci;
use super::schema::{AttrType, AttributeDef, Container, ResourceTypeDef, Target};
use scim_v2::ScimDateTime;
use serde_json::Value;
use std::cmp::Ordering;

/// Where the paths of a filter are resolved.
#[derive(Clone, Copy)]
enum Scope<'a> {
    /// Paths name attributes of a resource.
    Resource(&'a ResourceTypeDef),
    /// Paths name sub-attributes of one element of `parent` (inside `attr[…]`).
    Element(&'a AttributeDef),
}

/// Does `resource` match `filter`?
pub fn matches(filter: &Filter, resource: &Value, rt: &ResourceTypeDef) -> bool {
    eval(filter, resource, Scope::Resource(rt))
}

/// Does one element of the multi-valued (or complex) attribute `parent` match the filter of a
/// value path? Used by the PATCH engine.
pub fn matches_element(filter: &Filter, element: &Value, parent: &AttributeDef) -> bool {
    eval(filter, element, Scope::Element(parent))
}

/// Rejects filters that cannot be evaluated (RFC 7644 §3.4.2.2): ordering operators on boolean
/// or binary attributes, and comparisons of complex attributes that have no `value`.
pub fn check(filter: &Filter, rt: &ResourceTypeDef) -> Result<(), ScimError> {
    check_in(filter, Scope::Resource(rt)).map_err(|(_, detail)| ScimError::invalid_filter(detail))
}

/// Like [`check`], and names the byte position of the offending attribute in `source` (the
/// text the filter was parsed from).
pub fn check_source(filter: &Filter, source: &str, rt: &ResourceTypeDef) -> Result<(), ScimError> {
    check_in(filter, Scope::Resource(rt)).map_err(|(path, detail)| {
        match position_of(source, &path) {
            Some(pos) => ScimError::invalid_filter(format!("{detail} (position {pos})")),
            None => ScimError::invalid_filter(detail),
        }
    })
}

type CheckError = (AttrPath, String);

fn check_in(filter: &Filter, scope: Scope<'_>) -> Result<(), CheckError> {
    match filter {
        Filter::Present(_) => Ok(()),
        Filter::Compare(path, op, _) => {
            let Some(def) = leaf_def(scope, path) else {
                return Ok(());
            };
            if op.is_ordering() && matches!(def.ty, AttrType::Boolean | AttrType::Binary) {
                return Err((
                    path.clone(),
                    format!(
                        "'{op}' is not defined for {} attribute '{path}'",
                        def.ty.as_str()
                    ),
                ));
            }
            if def.ty == AttrType::Complex {
                return Err((
                    path.clone(),
                    format!("'{path}' is complex: compare one of its sub-attributes"),
                ));
            }
            Ok(())
        }
        Filter::ValuePath { attr, filter } => match scope {
            Scope::Resource(rt) => match rt.resolve_attr(attr) {
                Some(r) if r.sub.is_none() && r.attr.ty == AttrType::Complex => {
                    check_in(filter, Scope::Element(r.attr))
                }
                Some(_) => Err((
                    attr.clone(),
                    format!("'{attr}' is not a complex attribute and cannot take a value filter"),
                )),
                None => Ok(()),
            },
            Scope::Element(_) => Err((attr.clone(), "value filters cannot nest".into())),
        },
        Filter::Not(inner) => check_in(inner, scope),
        Filter::And(items) | Filter::Or(items) => items.iter().try_for_each(|f| check_in(f, scope)),
    }
}

fn eval(filter: &Filter, doc: &Value, scope: Scope<'_>) -> bool {
    match filter {
        Filter::Present(path) => {
            let (_, values) = values_of(scope, doc, path);
            values.iter().any(|v| is_present(v))
        }
        Filter::Compare(path, op, lit) => {
            let (def, values) = values_of(scope, doc, path);
            match op {
                CompareOp::Ne => !values.iter().any(|v| compare(def, v, CompareOp::Eq, lit)),
                _ => values.iter().any(|v| compare(def, v, *op, lit)),
            }
        }
        Filter::ValuePath { attr, filter } => {
            let Scope::Resource(rt) = scope else {
                return false;
            };
            let Some(r) = rt.resolve_attr(attr) else {
                return false;
            };
            if r.sub.is_some() {
                return false;
            }
            let Some(container) = container_of(doc, r.container) else {
                return false;
            };
            match get_ci(container, r.attr.name) {
                Some(Value::Array(items)) => items
                    .iter()
                    .any(|e| eval(filter, e, Scope::Element(r.attr))),
                Some(single @ Value::Object(_)) => eval(filter, single, Scope::Element(r.attr)),
                _ => false,
            }
        }
        Filter::Not(inner) => !eval(inner, doc, scope),
        Filter::And(items) => items.iter().all(|f| eval(f, doc, scope)),
        Filter::Or(items) => items.iter().any(|f| eval(f, doc, scope)),
    }
}

fn is_present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

fn container_of(doc: &Value, container: Container) -> Option<&serde_json::Map<String, Value>> {
    let obj = doc.as_object()?;
    match container {
        Container::Core => Some(obj),
        Container::Extension(urn) => get_ci(obj, urn)?.as_object(),
    }
}

/// The definition that governs comparisons for `path` in `scope`.
fn leaf_def(scope: Scope<'_>, path: &AttrPath) -> Option<&'static AttributeDef> {
    match scope {
        Scope::Resource(rt) => {
            let r = rt.resolve_attr(path)?;
            Some(match r.sub {
                Some(sub) => sub,
                None => r.attr.sub("value").unwrap_or(r.attr),
            })
        }
        Scope::Element(parent) => {
            if path.sub_attr.is_some() || path.uri.is_some() {
                return None;
            }
            parent.sub(&path.name)
        }
    }
}

fn flatten<'v>(v: &'v Value, out: &mut Vec<&'v Value>) {
    match v {
        Value::Array(items) => out.extend(items.iter()),
        other => out.push(other),
    }
}

/// The values `path` designates in `doc`, with the definition used to compare them.
fn values_of<'v>(
    scope: Scope<'_>,
    doc: &'v Value,
    path: &AttrPath,
) -> (Option<&'static AttributeDef>, Vec<&'v Value>) {
    let mut out = Vec::new();
    match scope {
        Scope::Element(_) => {
            let def = leaf_def(scope, path);
            if path.sub_attr.is_none()
                && path.uri.is_none()
                && let Some(v) = doc.as_object().and_then(|o| get_ci(o, &path.name))
            {
                flatten(v, &mut out);
            }
            (def, out)
        }
        Scope::Resource(rt) => {
            let Some(obj) = doc.as_object() else {
                return (None, out);
            };
            if path.uri.is_none()
                && path.sub_attr.is_none()
                && path.name.eq_ignore_ascii_case("schemas")
            {
                if let Some(v) = obj.get("schemas") {
                    flatten(v, &mut out);
                }
                return (None, out);
            }
            let Some(Target::Attr(r)) = rt.resolve(path) else {
                return (None, out);
            };
            let Some(container) = container_of(doc, r.container) else {
                return (None, out);
            };
            let Some(v) = get_ci(container, r.attr.name) else {
                return (None, out);
            };
            let mut elements = Vec::new();
            flatten(v, &mut elements);
            let (sub_name, def) = match r.sub {
                Some(sub) => (Some(sub.name), sub),
                None => match r.attr.sub("value") {
                    Some(value) if r.attr.ty == AttrType::Complex => (Some("value"), value),
                    _ => (None, r.attr),
                },
            };
            match sub_name {
                Some(name) => {
                    for e in elements {
                        if let Some(v) = e.as_object().and_then(|o| get_ci(o, name)) {
                            flatten(v, &mut out);
                        }
                    }
                }
                None => out = elements,
            }
            (Some(def), out)
        }
    }
}

fn compare(def: Option<&AttributeDef>, v: &Value, op: CompareOp, lit: &CompValue) -> bool {
    let case_exact = def.is_some_and(|d| d.case_exact);
    match lit {
        CompValue::Null => match op {
            // `attr eq null` asks for an unassigned attribute; present values never equal it.
            CompareOp::Eq => v.is_null(),
            _ => false,
        },
        CompValue::Bool(b) => match as_bool(v) {
            Some(x) => match op {
                CompareOp::Eq => x == *b,
                _ => false,
            },
            None => false,
        },
        CompValue::Number(n) => {
            let (Some(x), Some(y)) = (as_f64(v), n.as_f64()) else {
                return false;
            };
            ordering_holds(op, x.partial_cmp(&y))
        }
        CompValue::Str(s) => {
            let ty = def.map(|d| d.ty);
            if ty == Some(AttrType::DateTime)
                && op != CompareOp::Co
                && op != CompareOp::Sw
                && op != CompareOp::Ew
                && let (Some(Value::String(a)), Ok(b)) = (Some(v), s.parse::<ScimDateTime>())
                && let Ok(a) = a.parse::<ScimDateTime>()
            {
                return ordering_holds(op, a.xsd_partial_cmp(&b));
            }
            match v {
                Value::String(a) => compare_str(a, s, op, case_exact),
                Value::Bool(_) => match s.to_ascii_lowercase().as_str() {
                    "true" => compare(def, v, op, &CompValue::Bool(true)),
                    "false" => compare(def, v, op, &CompValue::Bool(false)),
                    _ => false,
                },
                Value::Number(_) => match s
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                {
                    Some(n) => compare(def, v, op, &CompValue::Number(n)),
                    None => false,
                },
                _ => false,
            }
        }
    }
}

fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn ordering_holds(op: CompareOp, ord: Option<Ordering>) -> bool {
    let Some(ord) = ord else { return false };
    match op {
        CompareOp::Eq => ord == Ordering::Equal,
        CompareOp::Ne => ord != Ordering::Equal,
        CompareOp::Gt => ord == Ordering::Greater,
        CompareOp::Ge => ord != Ordering::Less,
        CompareOp::Lt => ord == Ordering::Less,
        CompareOp::Le => ord != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

fn compare_str(a: &str, b: &str, op: CompareOp, case_exact: bool) -> bool {
    let (a, b) = if case_exact {
        (a.to_string(), b.to_string())
    } else {
        (a.to_lowercase(), b.to_lowercase())
    };
    match op {
        CompareOp::Eq => a == b,
        CompareOp::Ne => a != b,
        CompareOp::Co => a.contains(&b),
        CompareOp::Sw => a.starts_with(&b),
        CompareOp::Ew => a.ends_with(&b),
        _ => ordering_holds(op, Some(a.cmp(&b))),
    }
}

/// Orders two resources by `sort_by` (RFC 7644 §3.4.2.3): by the attribute's (primary, else
/// first) value, case-insensitively unless `caseExact`; resources without a value sort last.
pub fn sort_key_cmp(rt: &ResourceTypeDef, a: &Value, b: &Value, sort_by: &AttrPath) -> Ordering {
    let key = |doc: &Value| sort_value(rt, doc, sort_by);
    let def = leaf_def(Scope::Resource(rt), sort_by);
    match (key(a), key(b)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => cmp_values(def, &x, &y),
    }
}

fn sort_value(rt: &ResourceTypeDef, doc: &Value, path: &AttrPath) -> Option<Value> {
    // For a multi-valued complex attribute, prefer the primary element (RFC 7644 §3.4.2.3).
    if path.sub_attr.is_none()
        && let Some(r) = rt.resolve_attr(path)
        && r.attr.has_primary()
        && let Some(Value::Array(items)) =
            container_of(doc, r.container).and_then(|c| get_ci(c, r.attr.name))
    {
        let chosen = items
            .iter()
            .find(|e| e.get("primary") == Some(&Value::Bool(true)))
            .or_else(|| items.first());
        return chosen.and_then(|e| e.get("value")).cloned();
    }
    let (_, values) = values_of(Scope::Resource(rt), doc, path);
    values.into_iter().find(|v| !v.is_null()).cloned()
}

fn cmp_values(def: Option<&AttributeDef>, a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::String(x), Value::String(y)) => {
            if def.is_some_and(|d| d.ty == AttrType::DateTime)
                && let (Ok(p), Ok(q)) = (x.parse::<ScimDateTime>(), y.parse::<ScimDateTime>())
                && let Some(o) = p.xsd_partial_cmp(&q)
            {
                return o;
            }
            if def.is_some_and(|d| d.case_exact) {
                x.cmp(y)
            } else {
                x.to_lowercase().cmp(&y.to_lowercase())
            }
        }
        _ => a.to_string().cmp(&b.to_string()),
    }
}

#[cfg(test)]
mod tests;
