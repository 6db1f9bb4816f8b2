//! Resource validation and projection (RFC 7643 §2, §7; RFC 7644 §3.3, §3.4.2.5, §3.5.1).
//!
//! Resources are `serde_json::Value` objects in *normal form*: attribute names in canonical
//! case, extension attributes nested under their canonical URN, values coerced to their schema
//! types, no nulls, no empty strings or arrays, no write-only values, and `schemas` derived from
//! the content. PATCH works on that JSON generically.

use super::error::ScimError;
use super::filter::AttrPath;
use super::schema::{
    AttrType, AttributeDef, Container, Mutability, ResourceTypeDef, Returned, Target,
};
use scim_v2::ScimDateTime;
use serde_json::{Map, Number, Value};

/// Whether client-supplied read-only values are dropped (client input) or kept (stored data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Client,
    Stored,
}

/// Case-insensitive key lookup in a JSON object.
pub(crate) fn get_ci<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// Validates a POST body: unknown attributes are rejected, read-only ones ignored, values coerced,
/// `required` and single-`primary` rules checked. Returns the resource in normal form (no `id`
/// or `meta`: the server assigns those).
pub fn validate_for_create(rt: &ResourceTypeDef, body: &Value) -> Result<Value, ScimError> {
    let out = normalise(rt, body, Source::Client)?;
    check_required(rt, &out).map_err(ScimError::invalid_value)?;
    Ok(finish(rt, out))
}

/// Validates a PUT body against the current resource (RFC 7644 §3.5.1): read-write attributes are
/// replaced (absent ones cleared), read-only ones keep their current values, immutable ones must
/// not change. Returns the new resource in normal form.
pub fn validate_for_replace(
    rt: &ResourceTypeDef,
    body: &Value,
    current: &Value,
) -> Result<Value, ScimError> {
    let mut out = normalise(rt, body, Source::Client)?;
    let empty = Map::new();
    let cur = current.as_object().unwrap_or(&empty);
    carry_over(rt.schema.attributes, cur, &mut out)?;
    carry_over(&super::schema::COMMON_ATTRIBUTES, cur, &mut out)?;
    for ext in rt.extensions {
        let cur_ext = cur.get(ext.schema.id).and_then(Value::as_object);
        let mut new_ext = match out.remove(ext.schema.id) {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        if let Some(cur_ext) = cur_ext {
            carry_over(ext.schema.attributes, cur_ext, &mut new_ext)?;
        }
        if !new_ext.is_empty() {
            out.insert(ext.schema.id.into(), Value::Object(new_ext));
        }
    }
    check_required(rt, &out).map_err(ScimError::invalid_value)?;
    Ok(finish(rt, out))
}

/// Re-validates a resource after PATCH (stored read-only values are kept) and returns it in
/// normal form; a removed required attribute is `mutability` (RFC 7644 §3.5.2.2).
pub fn validate_stored(rt: &ResourceTypeDef, resource: &Value) -> Result<Value, ScimError> {
    let out = normalise(rt, resource, Source::Stored)?;
    check_required(rt, &out).map_err(ScimError::mutability)?;
    Ok(finish(rt, out))
}

fn carry_over(
    defs: &'static [AttributeDef],
    cur: &Map<String, Value>,
    out: &mut Map<String, Value>,
) -> Result<(), ScimError> {
    for def in defs {
        let Some(old) = cur.get(def.name) else {
            continue;
        };
        match def.mutability {
            Mutability::ReadOnly => {
                out.insert(def.name.into(), old.clone());
            }
            Mutability::Immutable => match out.get(def.name) {
                None => {
                    out.insert(def.name.into(), old.clone());
                }
                Some(new) if new != old => {
                    return Err(ScimError::mutability(format!(
                        "attribute '{}' is immutable and already set",
                        def.name
                    )));
                }
                Some(_) => {}
            },
            Mutability::ReadWrite | Mutability::WriteOnly => {}
        }
    }
    Ok(())
}

fn finish(rt: &ResourceTypeDef, mut out: Map<String, Value>) -> Value {
    let schemas = rt.schemas_for(&out);
    out.insert("schemas".into(), Value::Array(schemas));
    Value::Object(out)
}

/// Returns the name of the first missing required attribute as an error detail.
fn check_required(rt: &ResourceTypeDef, out: &Map<String, Value>) -> Result<(), String> {
    for def in rt.schema.attributes.iter().filter(|d| d.required) {
        if !out.contains_key(def.name) {
            return Err(format!("required attribute '{}' is missing", def.name));
        }
    }
    for ext in rt.extensions {
        for def in ext.schema.attributes.iter().filter(|d| d.required) {
            let present = out
                .get(ext.schema.id)
                .and_then(Value::as_object)
                .is_some_and(|m| m.contains_key(def.name));
            if ext.required && !present {
                return Err(format!(
                    "required attribute '{}:{}' is missing",
                    ext.schema.id, def.name
                ));
            }
        }
    }
    Ok(())
}

pub(crate) fn normalise(
    rt: &ResourceTypeDef,
    body: &Value,
    source: Source,
) -> Result<Map<String, Value>, ScimError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("the resource must be a JSON object"))?;
    let mut out = Map::new();
    for (key, value) in obj {
        if key.eq_ignore_ascii_case("schemas") {
            let ok = value
                .as_array()
                .is_some_and(|a| a.iter().all(Value::is_string));
            if !ok {
                return Err(ScimError::invalid_syntax(
                    "'schemas' must be an array of URN strings",
                ));
            }
            continue;
        }
        if let Some(ext) = rt.extension_by_urn(key) {
            if value.is_null() {
                continue;
            }
            let ext_obj = value.as_object().ok_or_else(|| {
                ScimError::invalid_value(format!("'{}' must be an object", ext.id))
            })?;
            let mut ext_out = match out.remove(ext.id) {
                Some(Value::Object(m)) => m,
                _ => Map::new(),
            };
            for (k, v) in ext_obj {
                let def = ext.attr(k).ok_or_else(|| {
                    ScimError::invalid_syntax(format!("unknown attribute '{}:{k}'", ext.id))
                })?;
                insert_attr(
                    &mut ext_out,
                    def,
                    v,
                    &format!("{}:{}", ext.id, def.name),
                    source,
                )?;
            }
            if !ext_out.is_empty() {
                out.insert(ext.id.into(), Value::Object(ext_out));
            }
            continue;
        }
        if key.contains(':') {
            // A URN-qualified attribute (`urn:…:User:userName`), or an extension we do not
            // support: unknown extensions are ignored, as IdPs add their own URNs.
            if let Ok(path) = AttrPath::parse(key)
                && let Some(Target::Attr(r)) = rt.resolve(&path)
                && r.sub.is_none()
            {
                let container = match r.container {
                    Container::Core => &mut out,
                    Container::Extension(urn) => {
                        let entry = out
                            .entry(urn.to_string())
                            .or_insert_with(|| Value::Object(Map::new()));
                        match entry.as_object_mut() {
                            Some(m) => m,
                            None => continue,
                        }
                    }
                };
                insert_attr(container, r.attr, value, r.attr.name, source)?;
                out.retain(|_, v| !matches!(v, Value::Object(m) if m.is_empty()));
            }
            continue;
        }
        let def = rt.core_attr(key).ok_or_else(|| {
            ScimError::invalid_syntax(format!("unknown attribute '{key}' for {}", rt.name))
        })?;
        insert_attr(&mut out, def, value, def.name, source)?;
    }
    Ok(out)
}

fn insert_attr(
    out: &mut Map<String, Value>,
    def: &AttributeDef,
    value: &Value,
    path: &str,
    source: Source,
) -> Result<(), ScimError> {
    if source == Source::Client && def.mutability == Mutability::ReadOnly {
        return Ok(());
    }
    // Write-only values (the password) are accepted but never kept: C4C users sign on via SSO.
    if def.mutability == Mutability::WriteOnly {
        return Ok(());
    }
    if let Some(v) = coerce(def, value, path, source)? {
        out.insert(def.name.into(), v);
    }
    Ok(())
}

/// Coerces a value for `def`; `Ok(None)` means "unassigned" (null, "", [] or {}).
pub(crate) fn coerce(
    def: &AttributeDef,
    value: &Value,
    path: &str,
    source: Source,
) -> Result<Option<Value>, ScimError> {
    if value.is_null() {
        return Ok(None);
    }
    if def.multi_valued {
        let items: Vec<&Value> = match value {
            Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if let Some(v) = coerce_single(def, item, path, source)? {
                out.push(v);
            }
        }
        if out.is_empty() {
            return Ok(None);
        }
        let primaries = out
            .iter()
            .filter(|v| v.get("primary") == Some(&Value::Bool(true)))
            .count();
        if primaries > 1 {
            return Err(ScimError::invalid_value(format!(
                "at most one value of '{path}' may be primary"
            )));
        }
        return Ok(Some(Value::Array(out)));
    }
    let single = match value {
        Value::Array(a) if a.is_empty() => return Ok(None),
        Value::Array(a) if a.len() == 1 => a.first().unwrap_or(&Value::Null),
        Value::Array(_) => {
            return Err(ScimError::invalid_value(format!(
                "'{path}' is single-valued but an array was given"
            )));
        }
        other => other,
    };
    coerce_single(def, single, path, source)
}

/// Coerces one (non-array) value of `def`.
pub(crate) fn coerce_single(
    def: &AttributeDef,
    value: &Value,
    path: &str,
    source: Source,
) -> Result<Option<Value>, ScimError> {
    if def.ty != AttrType::Complex {
        return coerce_scalar(def, value, path);
    }
    match value {
        Value::Null => Ok(None),
        Value::Object(obj) => {
            let mut out = Map::new();
            for (k, v) in obj {
                let sub = def.sub(k).ok_or_else(|| {
                    ScimError::invalid_syntax(format!("unknown sub-attribute '{path}.{k}'"))
                })?;
                if source == Source::Client && sub.mutability == Mutability::ReadOnly {
                    continue;
                }
                if let Some(v) = coerce_scalar(sub, v, &format!("{path}.{}", sub.name))? {
                    out.insert(sub.name.into(), v);
                }
            }
            Ok((!out.is_empty()).then_some(Value::Object(out)))
        }
        // A bare value for a complex attribute with a `value` sub-attribute: Entra sends the
        // enterprise manager as a plain id string, some clients send `emails: ["a@b"]`.
        Value::String(_) | Value::Number(_) | Value::Bool(_) => match def.sub("value") {
            Some(sub) => Ok(
                coerce_scalar(sub, value, &format!("{path}.value"))?.map(|v| {
                    let mut m = Map::new();
                    m.insert("value".into(), v);
                    Value::Object(m)
                }),
            ),
            None => Err(ScimError::invalid_value(format!(
                "'{path}' must be an object"
            ))),
        },
        Value::Array(_) => Err(ScimError::invalid_value(format!(
            "'{path}' must be an object"
        ))),
    }
}

/// Coerces a simple value: strings for booleans and numbers are accepted (`"False"`, `"42"`).
pub(crate) fn coerce_scalar(
    def: &AttributeDef,
    value: &Value,
    path: &str,
) -> Result<Option<Value>, ScimError> {
    let value = match value {
        // `{"value": x}` or `[{"value": x}]` for a simple attribute (old Microsoft clients).
        Value::Object(o) if def.ty != AttrType::Complex => match get_ci(o, "value") {
            Some(inner) if !inner.is_object() && !inner.is_array() => inner,
            _ => {
                return Err(ScimError::invalid_value(format!(
                    "'{path}' must be a {}",
                    def.ty.as_str()
                )));
            }
        },
        Value::Array(a) if a.len() == 1 => {
            return coerce_scalar(def, a.first().unwrap_or(&Value::Null), path);
        }
        Value::Array(a) if a.is_empty() => return Ok(None),
        other => other,
    };
    let bad = || {
        ScimError::invalid_value(format!(
            "'{path}' must be a {}, got {}",
            def.ty.as_str(),
            short(value)
        ))
    };
    match (def.ty, value) {
        (_, Value::Null) => Ok(None),
        (AttrType::String | AttrType::Reference | AttrType::Binary, Value::String(s)) => {
            Ok((!s.is_empty()).then(|| Value::String(s.clone())))
        }
        (AttrType::String, Value::Number(n)) => Ok(Some(Value::String(n.to_string()))),
        (AttrType::Boolean, Value::Bool(b)) => Ok(Some(Value::Bool(*b))),
        (AttrType::Boolean, Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(Some(Value::Bool(true))),
            "false" => Ok(Some(Value::Bool(false))),
            "" => Ok(None),
            _ => Err(bad()),
        },
        (AttrType::Integer, Value::Number(n)) => match n.as_i64() {
            Some(_) => Ok(Some(Value::Number(n.clone()))),
            None => Err(bad()),
        },
        (AttrType::Integer, Value::String(s)) if s.is_empty() => Ok(None),
        (AttrType::Integer, Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(|i| Some(Value::Number(i.into())))
            .map_err(|_| bad()),
        (AttrType::Decimal, Value::Number(n)) => Ok(Some(Value::Number(n.clone()))),
        (AttrType::Decimal, Value::String(s)) if s.is_empty() => Ok(None),
        (AttrType::Decimal, Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(|n| Some(Value::Number(n)))
            .ok_or_else(bad),
        (AttrType::DateTime, Value::String(s)) if s.is_empty() => Ok(None),
        (AttrType::DateTime, Value::String(s)) => match s.parse::<ScimDateTime>() {
            Ok(_) => Ok(Some(Value::String(s.clone()))),
            Err(_) => Err(bad()),
        },
        _ => Err(bad()),
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        let cut: String = s.chars().take(40).collect();
        format!("{cut}…")
    } else {
        s
    }
}

/// One entry of `attributes` / `excludedAttributes`, resolved to canonical names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sel {
    Attr {
        container: Container,
        attr: &'static str,
        sub: Option<&'static str>,
    },
    Extension(&'static str),
}

fn selectors(rt: &ResourceTypeDef, paths: &[AttrPath]) -> Vec<Sel> {
    paths
        .iter()
        .filter_map(|p| match rt.resolve(p)? {
            Target::Attr(r) => Some(Sel::Attr {
                container: r.container,
                attr: r.attr.name,
                sub: r.sub.map(|s| s.name),
            }),
            Target::Extension(s) => Some(Sel::Extension(s.id)),
        })
        .collect()
}

/// Applies `returned` and the `attributes` / `excludedAttributes` parameters
/// (RFC 7644 §3.4.2.5): `never` is never returned, `always` always, `request` only when asked
/// for, `default` unless excluded or unless `attributes` lists other attributes. Unknown names
/// in either list are ignored.
pub fn project(
    rt: &ResourceTypeDef,
    resource: &Value,
    attributes: &[AttrPath],
    excluded: &[AttrPath],
) -> Value {
    let Some(obj) = resource.as_object() else {
        return resource.clone();
    };
    let wanted = selectors(rt, attributes);
    let unwanted = if wanted.is_empty() {
        selectors(rt, excluded)
    } else {
        // RFC 7644 §3.9: `excludedAttributes` has no effect when `attributes` is given.
        Vec::new()
    };
    let mut out = Map::new();
    for (key, value) in obj {
        if key == "schemas" {
            out.insert(key.clone(), value.clone());
            continue;
        }
        if let Some(ext) = rt.extension_by_urn(key) {
            let Some(ext_obj) = value.as_object() else {
                continue;
            };
            let whole = wanted.contains(&Sel::Extension(ext.id));
            let dropped = unwanted.contains(&Sel::Extension(ext.id));
            let mut ext_out = Map::new();
            for (k, v) in ext_obj {
                let Some(def) = ext.attr(k) else { continue };
                let container = Container::Extension(ext.id);
                if dropped && def.returned != Returned::Always {
                    continue;
                }
                if let Some(v) = decide(container, def, v, &wanted, &unwanted, whole) {
                    ext_out.insert(def.name.into(), v);
                }
            }
            if !ext_out.is_empty() {
                out.insert(ext.id.into(), Value::Object(ext_out));
            }
            continue;
        }
        let Some(def) = rt.core_attr(key) else {
            continue;
        };
        if let Some(v) = decide(Container::Core, def, value, &wanted, &unwanted, false) {
            out.insert(def.name.into(), v);
        }
    }
    Value::Object(out)
}

fn decide(
    container: Container,
    def: &AttributeDef,
    value: &Value,
    wanted: &[Sel],
    unwanted: &[Sel],
    whole_container_wanted: bool,
) -> Option<Value> {
    match def.returned {
        Returned::Never => return None,
        Returned::Always => return Some(value.clone()),
        Returned::Default | Returned::Request => {}
    }
    let is_this = |s: &&Sel| matches!(s, Sel::Attr { container: c, attr, .. } if *c == container && *attr == def.name);
    let whole = |s: &&Sel| matches!(s, Sel::Attr { sub: None, .. });
    if unwanted.iter().filter(is_this).any(|s| whole(&s)) {
        return None;
    }
    let excluded_subs: Vec<&str> = unwanted
        .iter()
        .filter(is_this)
        .filter_map(|s| match s {
            Sel::Attr { sub: Some(sub), .. } => Some(*sub),
            _ => None,
        })
        .collect();
    let mut value = value.clone();
    if !wanted.is_empty() {
        let mine: Vec<&Sel> = wanted.iter().filter(is_this).collect();
        if whole_container_wanted || mine.iter().any(whole) {
            // the whole attribute
        } else if mine.is_empty() {
            return None;
        } else {
            let keep: Vec<&str> = mine
                .iter()
                .filter_map(|s| match s {
                    Sel::Attr { sub: Some(sub), .. } => Some(*sub),
                    _ => None,
                })
                .collect();
            retain_subs(&mut value, |name| {
                keep.contains(&name)
                    || def
                        .sub(name)
                        .is_some_and(|d| d.returned == Returned::Always)
            });
        }
    } else if def.returned == Returned::Request {
        return None;
    }
    if !excluded_subs.is_empty() {
        retain_subs(&mut value, |name| !excluded_subs.contains(&name));
    }
    let empty = match &value {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    };
    (!empty).then_some(value)
}

fn retain_subs(value: &mut Value, keep: impl Fn(&str) -> bool) {
    match value {
        Value::Object(m) => m.retain(|k, _| keep(k)),
        Value::Array(items) => {
            for item in items.iter_mut() {
                if let Value::Object(m) = item {
                    m.retain(|k, _| keep(k));
                }
            }
            items.retain(|i| !matches!(i, Value::Object(m) if m.is_empty()));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
