//! Reading and writing SCIM resources (normal form) at rule paths, value paths included.

use serde_json::{Map, Value};

use crate::scim::eval::matches_element;
use crate::scim::filter::{AttrPath, CompValue, CompareOp, Filter, PatchPath};
use crate::scim::resource::get_ci;
use crate::scim::schema::{AttributeDef, Container, Resolved, USER_RESOURCE};

/// Resolves the attribute a path starts at, against the User resource type.
pub fn resolve(path: &PatchPath) -> Option<Resolved> {
    let attr = path.attr();
    let r = USER_RESOURCE.resolve_attr(attr)?;
    match path {
        PatchPath::Attr(_) => Some(r),
        PatchPath::Value { sub_attr, .. } => {
            if r.sub.is_some() {
                return None;
            }
            let sub = match sub_attr {
                Some(name) => Some(r.attr.sub(name)?),
                None => None,
            };
            Some(Resolved { sub, ..r })
        }
    }
}

fn container(doc: &Value, c: Container) -> Option<&Map<String, Value>> {
    let obj = doc.as_object()?;
    match c {
        Container::Core => Some(obj),
        Container::Extension(urn) => get_ci(obj, urn)?.as_object(),
    }
}

fn is_primary(v: &Value) -> bool {
    v.as_object()
        .and_then(|o| get_ci(o, "primary"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The values at `path`, primary elements first. Empty when nothing is there.
pub fn get(doc: &Value, path: &PatchPath) -> Vec<Value> {
    let Some(r) = resolve(path) else {
        return Vec::new();
    };
    let Some(c) = container(doc, r.container) else {
        return Vec::new();
    };
    let Some(v) = get_ci(c, r.attr.name) else {
        return Vec::new();
    };
    let mut elements: Vec<&Value> = match v {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    if let PatchPath::Value { filter, .. } = path {
        elements.retain(|e| matches_element(filter, e, r.attr));
    }
    // Stable: primary first, the rest in their order.
    elements.sort_by_key(|e| !is_primary(e));
    let out = elements.into_iter().filter_map(|e| match r.sub {
        Some(sub) => e.as_object().and_then(|o| get_ci(o, sub.name)).cloned(),
        None => Some(e.clone()),
    });
    out.filter(|v| !v.is_null() && v.as_str() != Some(""))
        .collect()
}

/// The `eq` terms of a value filter, used to create the element a value path names.
fn eq_terms(filter: &Filter, out: &mut Map<String, Value>, parent: &AttributeDef) {
    match filter {
        Filter::Compare(AttrPath { name, .. }, CompareOp::Eq, lit) if *lit != CompValue::Null => {
            let key = parent.sub(name).map(|d| d.name).unwrap_or(name.as_str());
            out.insert(key.to_string(), lit.to_json());
        }
        Filter::And(items) => items.iter().for_each(|f| eq_terms(f, out, parent)),
        _ => {}
    }
}

/// Writes `value` at `path`, creating containers and the element a value path names.
/// Returns false when the path cannot hold a value.
pub fn set(doc: &mut Value, path: &PatchPath, value: Value) -> bool {
    let Some(r) = resolve(path) else {
        return false;
    };
    let Some(root) = doc.as_object_mut() else {
        return false;
    };
    let holder = match r.container {
        Container::Core => root,
        Container::Extension(urn) => {
            let entry = root
                .entry(urn.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            match entry.as_object_mut() {
                Some(m) => m,
                None => return false,
            }
        }
    };
    let name = r.attr.name.to_string();
    match (r.sub, r.attr.multi_valued) {
        (None, false) => {
            holder.insert(name, value);
        }
        (None, true) => {
            let items = match value {
                Value::Array(a) => a,
                v => vec![v],
            };
            holder.insert(name, Value::Array(items));
        }
        (Some(sub), false) => {
            let entry = holder
                .entry(name)
                .or_insert_with(|| Value::Object(Map::new()));
            match entry.as_object_mut() {
                Some(m) => {
                    m.insert(sub.name.to_string(), value);
                }
                None => return false,
            }
        }
        (Some(sub), true) => {
            let entry = holder
                .entry(name)
                .or_insert_with(|| Value::Array(Vec::new()));
            let Some(items) = entry.as_array_mut() else {
                return false;
            };
            let wanted = |e: &Value| match path {
                PatchPath::Value { filter, .. } => matches_element(filter, e, r.attr),
                PatchPath::Attr(_) => true,
            };
            match items.iter_mut().find(|e| wanted(e)) {
                Some(Value::Object(m)) => {
                    m.insert(sub.name.to_string(), value);
                }
                _ => {
                    let mut element = Map::new();
                    if let PatchPath::Value { filter, .. } = path {
                        eq_terms(filter, &mut element, r.attr);
                    }
                    element.insert(sub.name.to_string(), value);
                    if items.is_empty() && r.attr.has_primary() {
                        element.insert("primary".into(), Value::Bool(true));
                    }
                    items.push(Value::Object(element));
                }
            }
        }
    }
    true
}

/// The attribute (top-level name, or `urn:name` for extensions) a path starts at, lower-cased.
pub fn attr_key(path: &PatchPath) -> Option<String> {
    let r = resolve(path)?;
    Some(match r.container {
        Container::Core => r.attr.name.to_ascii_lowercase(),
        Container::Extension(urn) => format!("{urn}:{}", r.attr.name).to_ascii_lowercase(),
    })
}

/// Canonical text of a path's attribute part (for matching filters to rules).
pub fn canonical(path: &AttrPath) -> Option<String> {
    let r = USER_RESOURCE.resolve_attr(path)?;
    let base = match r.container {
        Container::Core => r.attr.name.to_string(),
        Container::Extension(urn) => format!("{urn}:{}", r.attr.name),
    };
    Some(match r.sub {
        Some(s) => format!("{base}.{}", s.name).to_ascii_lowercase(),
        None => base.to_ascii_lowercase(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> PatchPath {
        PatchPath::parse(s).unwrap()
    }

    #[test]
    fn reads_paths() {
        let doc = json!({
            "userName": "a",
            "name": {"givenName": "G"},
            "emails": [{"type": "home", "value": "h@x"}, {"type": "work", "value": "w@x"}, {"value": "p@x", "primary": true}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "7", "manager": {"value": "m1"}}
        });
        let cases: Vec<(&str, Vec<Value>)> = vec![
            ("userName", vec![json!("a")]),
            ("USERNAME", vec![json!("a")]),
            ("name.givenName", vec![json!("G")]),
            ("name.familyName", vec![]),
            ("emails[type eq \"work\"].value", vec![json!("w@x")]),
            (
                "emails.value",
                vec![json!("p@x"), json!("h@x"), json!("w@x")],
            ),
            ("emails[type eq \"other\"].value", vec![]),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
                vec![json!("7")],
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
                vec![json!("m1")],
            ),
            ("nosuch", vec![]),
        ];
        for (path, want) in cases {
            assert_eq!(get(&doc, &p(path)), want, "{path}");
        }
    }

    #[test]
    fn writes_paths() {
        let mut doc = json!({});
        assert!(set(&mut doc, &p("userName"), json!("u")));
        assert!(set(&mut doc, &p("name.familyName"), json!("F")));
        assert!(set(
            &mut doc,
            &p("emails[type eq \"work\"].value"),
            json!("w@x")
        ));
        assert!(set(
            &mut doc,
            &p("emails[type eq \"home\"].value"),
            json!("h@x")
        ));
        assert!(set(
            &mut doc,
            &p("emails[type eq \"work\"].value"),
            json!("w2@x")
        ));
        assert!(set(
            &mut doc,
            &p("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"),
            json!("9")
        ));
        assert!(!set(&mut doc, &p("nosuch"), json!("9")));
        assert_eq!(
            doc,
            json!({
                "userName": "u",
                "name": {"familyName": "F"},
                "emails": [{"type": "work", "value": "w2@x", "primary": true}, {"type": "home", "value": "h@x"}],
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "9"}
            })
        );
    }

    #[test]
    fn keys_and_canonical_names() {
        assert_eq!(
            attr_key(&p("Emails[type eq \"work\"].value")).unwrap(),
            "emails"
        );
        assert_eq!(
            canonical(&AttrPath::parse("EMAILS.VALUE").unwrap()).unwrap(),
            "emails.value"
        );
        assert_eq!(
            canonical(&AttrPath::parse("employeeNumber").unwrap()).unwrap(),
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:employeenumber"
        );
    }
}
