//! SCIM filter → C4C `$filter` push-down, only within what C4C accepts.
//!
//! C4C filters with `eq ge gt le lt`, `startswith`, `endswith`, `and`, and `or` on one property.
//! Everything else is planned: `or` across properties is split into several queries, the part
//! that narrows is pushed down and the whole filter is re-evaluated locally when the pushed part
//! is wider than the SCIM filter, and what C4C cannot narrow at all is refused (400
//! invalidFilter naming the attribute). Values only ever reach C4C as typed literals through
//! `c4c::filter`, so no input can change the structure of a query.

use chrono::{DateTime, Utc};

use crate::c4c::config::TenantProfile;
use crate::c4c::filter::{self as odata, Literal};
use crate::c4c::metadata::EdmType;
use crate::scim::error::ScimError;
use crate::scim::eval;
use crate::scim::filter::{AttrPath, CompValue, CompareOp, Filter, PatchPath};
use crate::scim::schema::USER_RESOURCE;

use super::config::{Target, Transform};
use super::transform::{self, Env, Stop};
use super::{CompiledRule, Mapper, NoReferences, Source, path};

/// How to answer a SCIM filter.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryPlan {
    /// Answer from the store's mapping table (id, externalId, userName; userName
    /// case-insensitively), then evaluate `residual` (if any) on the candidates' resources.
    Store {
        lookup: Filter,
        residual: Option<Filter>,
    },
    /// Run each query against EmployeeCollection (the union, de-duplicated by ObjectID, is the
    /// candidate set), then evaluate `residual` (if any) on the candidates mapped back to SCIM.
    OData {
        queries: Vec<odata::Filter>,
        residual: Option<Filter>,
    },
}

const STORE_ATTRS: [&str; 3] = ["id", "externalid", "username"];

fn store_only(f: &Filter) -> bool {
    match f {
        Filter::Present(p) | Filter::Compare(p, _, _) => {
            p.uri.is_none()
                && p.sub_attr.is_none()
                && STORE_ATTRS.contains(&p.name.to_ascii_lowercase().as_str())
        }
        Filter::ValuePath { .. } => false,
        Filter::Not(inner) => store_only(inner),
        Filter::And(items) | Filter::Or(items) => items.iter().all(store_only),
    }
}

fn join(mut items: Vec<Filter>) -> Option<Filter> {
    match items.len() {
        0 => None,
        1 => items.pop(),
        _ => Some(Filter::And(items)),
    }
}

/// Plans a SCIM filter on Users.
pub fn plan(filter: &Filter, mapper: &Mapper) -> Result<QueryPlan, ScimError> {
    eval::check(filter, &USER_RESOURCE)?;
    if store_only(filter) {
        return Ok(QueryPlan::Store {
            lookup: filter.clone(),
            residual: None,
        });
    }
    if let Filter::And(items) = filter {
        let (store, rest): (Vec<Filter>, Vec<Filter>) = items.iter().cloned().partition(store_only);
        if let Some(lookup) = join(store) {
            return Ok(QueryPlan::Store {
                lookup,
                residual: join(rest),
            });
        }
    }
    match translate(filter, mapper) {
        Tr::Local(reason) => Err(ScimError::invalid_filter(format!(
            "C4C cannot narrow this filter: {reason}"
        ))),
        Tr::Pushed(pushed, exact) => {
            let queries = odata::plan(&pushed)
                .map_err(|e| ScimError::invalid_filter(format!("filter too wide for C4C: {e}")))?;
            for q in &queries {
                q.render(mapper.employee_type(), &TenantProfile::default())
                    .map_err(|e| ScimError::invalid_filter(format!("C4C cannot filter: {e}")))?;
            }
            Ok(QueryPlan::OData {
                queries,
                residual: (!exact).then(|| filter.clone()),
            })
        }
    }
}

/// A translated sub-filter: pushed (with "exact": the C4C result is not wider than SCIM's),
/// or local only (with the reason).
enum Tr {
    Pushed(odata::Filter, bool),
    Local(String),
}

fn translate(f: &Filter, mapper: &Mapper) -> Tr {
    match f {
        Filter::Compare(p, op, v) => leaf(p, None, *op, v, mapper),
        Filter::ValuePath { attr, filter } => value_path(attr, filter, mapper),
        Filter::Present(p) => Tr::Local(format!("'{p} pr' (C4C has no presence test)")),
        Filter::Not(_) => Tr::Local("'not' (C4C has no negation)".into()),
        Filter::And(items) => {
            let mut pushed = Vec::new();
            let mut exact = true;
            let mut reasons = Vec::new();
            for item in items {
                match translate(item, mapper) {
                    Tr::Pushed(q, e) => {
                        pushed.push(q);
                        exact &= e;
                    }
                    Tr::Local(r) => {
                        exact = false;
                        reasons.push(r);
                    }
                }
            }
            match pushed.len() {
                0 => Tr::Local(reasons.join("; ")),
                1 => match pushed.pop() {
                    Some(q) => Tr::Pushed(q, exact),
                    None => Tr::Local(reasons.join("; ")),
                },
                _ => Tr::Pushed(odata::Filter::And(pushed), exact),
            }
        }
        Filter::Or(items) => {
            let mut pushed = Vec::new();
            let mut exact = true;
            for item in items {
                match translate(item, mapper) {
                    Tr::Pushed(q, e) => {
                        pushed.push(q);
                        exact &= e;
                    }
                    // One branch C4C cannot narrow makes the whole `or` unnarrowable.
                    Tr::Local(r) => return Tr::Local(r),
                }
            }
            Tr::Pushed(odata::Filter::Or(pushed), exact)
        }
    }
}

/// `attr[type eq "work" and value eq "x"]` → the rule for `attr[type eq "work"].value`.
fn value_path(attr: &AttrPath, inner: &Filter, mapper: &Mapper) -> Tr {
    let terms: Vec<&Filter> = match inner {
        Filter::And(items) => items.iter().collect(),
        other => vec![other],
    };
    let mut type_eq = None;
    let mut rest = Vec::new();
    for t in terms {
        match t {
            Filter::Compare(p, CompareOp::Eq, CompValue::Str(s))
                if p.name.eq_ignore_ascii_case("type") && p.sub_attr.is_none() =>
            {
                type_eq = Some(s.clone());
            }
            other => rest.push(other),
        }
    }
    match rest.as_slice() {
        [Filter::Compare(sub, op, v)] if sub.sub_attr.is_none() => {
            let full = AttrPath {
                uri: attr.uri.clone(),
                name: attr.name.clone(),
                sub_attr: Some(sub.name.clone()),
            };
            leaf(&full, type_eq.as_deref(), *op, v, mapper)
        }
        _ => Tr::Local(format!("value filter on {attr}")),
    }
}

/// The `type eq "…"` of a rule's value path.
fn rule_type(filter: &Filter) -> Option<String> {
    match filter {
        Filter::Compare(p, CompareOp::Eq, CompValue::Str(s))
            if p.name.eq_ignore_ascii_case("type") =>
        {
            Some(s.to_lowercase())
        }
        Filter::And(items) => items.iter().find_map(rule_type),
        _ => None,
    }
}

/// The rule that writes the property a filter path reads, and whether the match is exact.
fn find_rule<'a>(
    mapper: &'a Mapper,
    path: &AttrPath,
    type_eq: Option<&str>,
) -> Option<(&'a CompiledRule, bool)> {
    let wanted = path::canonical(path)?;
    let wanted_type = type_eq.map(str::to_lowercase);
    let mut fallback = None;
    for rule in mapper.rules().iter().filter(|r| r.forward_applies()) {
        let Source::Path(p) = &rule.source else {
            continue;
        };
        let (rule_path, rtype) = match p {
            PatchPath::Attr(a) => (path::canonical(a), None),
            PatchPath::Value {
                attr,
                filter,
                sub_attr,
            } => (
                path::canonical(&AttrPath {
                    uri: attr.uri.clone(),
                    name: attr.name.clone(),
                    sub_attr: sub_attr.clone(),
                }),
                rule_type(filter),
            ),
        };
        if rule_path.as_deref() != Some(wanted.as_str()) {
            continue;
        }
        if rtype == wanted_type {
            return Some((rule, true));
        }
        fallback.get_or_insert((rule, false));
    }
    fallback
}

fn leaf(
    path: &AttrPath,
    type_eq: Option<&str>,
    op: CompareOp,
    v: &CompValue,
    mapper: &Mapper,
) -> Tr {
    let shown = match type_eq {
        Some(t) => format!(
            "{}[type eq {t:?}].{}",
            path.name,
            path.sub_attr.clone().unwrap_or_default()
        ),
        None => path.to_string(),
    };
    let Some((rule, exact_rule)) = find_rule(mapper, path, type_eq) else {
        return Tr::Local(format!("{shown} has no rule mapping it to a C4C property"));
    };
    let property = match &rule.target {
        Target::Property(p) => p.clone(),
        Target::Active => return active_leaf(mapper, rule, op, v, &shown),
        Target::Local => {
            return Tr::Local(format!(
                "{shown} has no home in C4C (rule {} keeps it locally)",
                rule.rule.name
            ));
        }
        other => {
            return Tr::Local(format!(
                "{shown} maps to {other} (rule {}), which C4C cannot filter Employees by",
                rule.rule.name
            ));
        }
    };
    let Some(prop) = mapper.employee_type().property(&property) else {
        return Tr::Local(format!("{shown} maps to unknown property {property}"));
    };
    if !prop.filterable {
        return Tr::Local(format!(
            "{shown} maps to {property}, which is not filterable in C4C"
        ));
    }
    let shared = mapper
        .rules()
        .iter()
        .filter(|r| r.target == rule.target && r.forward_applies())
        .count()
        > 1;
    // Transforms a filter literal can go through, and whether they keep the result exact.
    // A condition or a default means the property may hold values the attribute never had.
    let mut exact = exact_rule && !shared && rule.rule.when.is_none();
    for t in &rule.rule.transforms {
        let ok = match t {
            Transform::Trim | Transform::Date(_) => true,
            Transform::Default(_) => {
                exact = false;
                true
            }
            Transform::Lowercase | Transform::Uppercase => {
                exact = false;
                !op.is_ordering()
            }
            Transform::Lookup(_) | Transform::Not => {
                exact = false;
                op == CompareOp::Eq
            }
            Transform::Truncate(_)
            | Transform::Split(_)
            | Transform::Join(_)
            | Transform::Reference => false,
        };
        if !ok {
            return Tr::Local(format!(
                "{shown} goes through '{}' in rule {}; '{}' cannot be translated",
                t.name(),
                rule.rule.name,
                op.as_str()
            ));
        }
    }
    if matches!(v, CompValue::Null) {
        return Tr::Local(format!("{shown} compared with null"));
    }
    // The literal goes through the rule's transforms, as a stored value did.
    let env = Env {
        lookups: &mapper.lookups,
        resolver: &NoReferences,
    };
    let mut value = Some(v.to_json());
    for t in &rule.rule.transforms {
        if matches!(t, Transform::Default(_)) {
            continue;
        }
        value = match transform::forward(t, value, &env, &mut Vec::new()) {
            Ok(v) => v,
            Err(Stop::Skip(r) | Stop::Reject(r)) => {
                return Tr::Local(format!("{shown}: {r}"));
            }
        };
    }
    let Some(value) = value else {
        return Tr::Local(format!("{shown}: no value"));
    };
    let literal = match literal_for(&prop.edm_type, &value) {
        Some(l) => l,
        None => {
            return Tr::Local(format!(
                "{shown}: {value} does not fit {property} ({:?})",
                prop.edm_type
            ));
        }
    };
    let text = match &literal {
        Literal::String(s) => Some(s.clone()),
        _ => None,
    };
    if text.as_deref().is_some_and(|s| s.contains('*')) {
        // `*` is a wildcard in C4C's eq: the result is wider, the residual narrows it.
        exact = false;
    }
    let q = match op {
        CompareOp::Eq => odata::Filter::eq(&property, literal),
        CompareOp::Gt => odata::Filter::gt(&property, literal),
        CompareOp::Ge => odata::Filter::ge(&property, literal),
        CompareOp::Lt => odata::Filter::lt(&property, literal),
        CompareOp::Le => odata::Filter::le(&property, literal),
        CompareOp::Sw | CompareOp::Ew | CompareOp::Co => {
            let Some(s) = text else {
                return Tr::Local(format!("'{}' on non-string {shown}", op.as_str()));
            };
            if s.contains('*') && op == CompareOp::Co {
                return Tr::Local(format!("'co' with '*' on {shown}"));
            }
            exact = false;
            match op {
                CompareOp::Sw => odata::Filter::starts_with(&property, &s),
                CompareOp::Ew => odata::Filter::ends_with(&property, &s),
                _ => odata::Filter::contains(&property, &s),
            }
        }
        CompareOp::Ne => {
            return Tr::Local(format!("'ne' on {shown} (C4C documents no 'ne')"));
        }
    };
    Tr::Pushed(q, exact)
}

/// `active eq B` in terms of the deprovisioning mode's properties (never exact: C4C may hold
/// values the bridge did not write, and end-of-validity depends on the day).
fn active_leaf(
    mapper: &Mapper,
    rule: &CompiledRule,
    op: CompareOp,
    v: &CompValue,
    shown: &str,
) -> Tr {
    use super::config::Deprovisioning;
    let active = match (op, v) {
        (CompareOp::Eq, v) if rule.rule.transforms.is_empty() => transform::as_bool(&v.to_json()),
        _ => None,
    };
    let Some(active) = active else {
        return Tr::Local(format!("'{}' on {shown}", op.as_str()));
    };
    let locked = odata::Filter::eq("UserLockedIndicator", !active);
    let today = Literal::Date(mapper.today());
    let validity = if active {
        odata::Filter::ge("UserValidityEndDate", today)
    } else {
        odata::Filter::lt("UserValidityEndDate", today)
    };
    let q = match (mapper.config().deprovisioning, active) {
        (Deprovisioning::Lock, _) => locked,
        (Deprovisioning::EndValidity, _) => validity,
        (Deprovisioning::Both, true) => locked.and(validity),
        (Deprovisioning::Both, false) => locked.or(validity),
    };
    Tr::Pushed(q, false)
}

fn literal_for(edm: &EdmType, v: &serde_json::Value) -> Option<Literal> {
    use serde_json::Value;
    Some(match (edm, v) {
        (EdmType::String | EdmType::Guid, Value::String(s)) => Literal::String(s.clone()),
        (EdmType::String, Value::Number(n)) => Literal::String(n.to_string()),
        (EdmType::Boolean, v) => Literal::Bool(transform::as_bool(v)?),
        (EdmType::DateTime, Value::String(s)) => Literal::Date(transform::parse_date(s, None)?),
        (EdmType::DateTimeOffset, Value::String(s)) => {
            Literal::DateTime(DateTime::parse_from_rfc3339(s).ok()?.with_timezone(&Utc))
        }
        (EdmType::Int16 | EdmType::Int32 | EdmType::Int64, Value::Number(n)) => {
            Literal::Int(n.as_i64()?)
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
