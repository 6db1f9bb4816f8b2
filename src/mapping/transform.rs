//! Transforms, forward (SCIM → C4C) and reverse (C4C → SCIM).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde_json::Value;

use super::ReferenceResolver;
use super::config::{Missing, Transform};

/// A lookup table, keys compared case-insensitively.
#[derive(Debug, Clone, Default)]
pub struct LookupTable {
    /// lower-cased key → (key as written, value)
    forward: BTreeMap<String, (String, String)>,
}

impl LookupTable {
    pub fn new(entries: &BTreeMap<String, String>) -> Self {
        let mut forward = BTreeMap::new();
        for (k, v) in entries {
            forward.insert(k.to_lowercase(), (k.clone(), v.clone()));
        }
        Self { forward }
    }

    /// Exact key (any case), then the language part of `en-US` / `pt_BR`.
    pub fn get(&self, key: &str) -> Option<&str> {
        let lower = key.to_lowercase();
        if let Some((_, v)) = self.forward.get(&lower) {
            return Some(v);
        }
        let base = lower.split(['-', '_']).next()?;
        (base != lower)
            .then(|| self.forward.get(base).map(|(_, v)| v.as_str()))
            .flatten()
    }

    /// The key for a value: one equal to it (any case), else the shortest.
    pub fn reverse(&self, value: &str) -> Option<&str> {
        let keys = self
            .forward
            .values()
            .filter(|(_, v)| v == value)
            .map(|(k, _)| k.as_str());
        let mut best: Option<&str> = None;
        for k in keys {
            if k.eq_ignore_ascii_case(value) {
                return Some(k);
            }
            if best.is_none_or(|b| k.len() < b.len()) {
                best = Some(k);
            }
        }
        best
    }

    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.forward.values().map(|(_, v)| v.as_str())
    }
}

/// Why a forward transform stopped.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    /// Leave the target alone; the reason goes to the trace.
    Skip(String),
    /// Refuse the request.
    Reject(String),
}

pub struct Env<'a> {
    pub lookups: &'a BTreeMap<String, LookupTable>,
    pub resolver: &'a dyn ReferenceResolver,
}

fn map_strings(v: Value, f: &dyn Fn(&str) -> String) -> Value {
    match v {
        Value::String(s) => Value::String(f(&s)),
        Value::Array(items) => Value::Array(items.into_iter().map(|i| map_strings(i, f)).collect()),
        other => other,
    }
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// A date from RFC 3339, `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM:SS`, C4C's `/Date(ms)/`, or `format`.
pub fn parse_date(text: &str, format: Option<&str>) -> Option<NaiveDate> {
    let text = text.trim();
    if let Some(f) = format {
        if let Ok(d) = NaiveDate::parse_from_str(text, f) {
            return Some(d);
        }
        if let Ok(d) = NaiveDateTime::parse_from_str(text, f) {
            return Some(d.date());
        }
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(text) {
        return Some(d.date_naive());
    }
    if let Ok(d) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S") {
        return Some(d.date());
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some(d);
    }
    crate::c4c::odata::parse_odata_date(text).map(|d| d.date_naive())
}

/// Applies one transform forward. `notes` collects what the trace should say.
pub fn forward(
    t: &Transform,
    value: Option<Value>,
    env: &Env<'_>,
    notes: &mut Vec<String>,
) -> Result<Option<Value>, Stop> {
    let Some(v) = value else {
        return Ok(match t {
            Transform::Default(d) => {
                notes.push("default used".into());
                Some(d.clone())
            }
            _ => None,
        });
    };
    Ok(Some(match t {
        Transform::Trim => map_strings(v, &|s| s.trim().to_string()),
        Transform::Lowercase => map_strings(v, &|s| s.to_lowercase()),
        Transform::Uppercase => map_strings(v, &|s| s.to_uppercase()),
        Transform::Default(_) => v,
        Transform::Not => match as_bool(&v) {
            Some(b) => Value::Bool(!b),
            None => return Err(Stop::Reject(format!("'not' needs a boolean, got {v}"))),
        },
        Transform::Truncate(n) => {
            let n = *n;
            map_strings(v, &|s| {
                if s.chars().count() > n {
                    s.chars().take(n).collect()
                } else {
                    s.to_string()
                }
            })
        }
        Transform::Lookup(l) => {
            let Some(table) = env.lookups.get(&l.table) else {
                return Err(Stop::Reject(format!("no lookup table '{}'", l.table)));
            };
            let items = match v {
                Value::Array(items) => items,
                other => {
                    return match lookup_one(table, &l.table, l.missing, &other)? {
                        Some(found) => Ok(Some(found)),
                        None => Err(Stop::Skip(format!(
                            "no entry for {other} in lookup table '{}'",
                            l.table
                        ))),
                    };
                }
            };
            let mut out = Vec::new();
            for item in items {
                match lookup_one(table, &l.table, l.missing, &item)? {
                    Some(v) => out.push(v),
                    None => notes.push(format!(
                        "no entry for {item} in lookup table '{}', dropped",
                        l.table
                    )),
                }
            }
            Value::Array(out)
        }
        Transform::Split(s) => {
            let Some(text) = as_text(&v) else {
                return Err(Stop::Reject(format!("'split' needs a string, got {v}")));
            };
            match text.split(s.separator.as_str()).nth(s.index) {
                Some(part) => Value::String(part.to_string()),
                None => {
                    return Err(Stop::Skip(format!(
                        "'split' has no part {} of {:?}",
                        s.index, text
                    )));
                }
            }
        }
        Transform::Join(sep) => match v {
            Value::Array(items) => Value::String(
                items
                    .iter()
                    .filter_map(as_text)
                    .collect::<Vec<_>>()
                    .join(sep),
            ),
            other => other,
        },
        Transform::Date(f) => {
            let Some(text) = as_text(&v) else {
                return Err(Stop::Reject(format!("'date' needs a string, got {v}")));
            };
            match parse_date(&text, f.format.as_deref()) {
                Some(d) => Value::String(d.format("%Y-%m-%dT00:00:00").to_string()),
                None => return Err(Stop::Reject(format!("{text:?} is not a date"))),
            }
        }
        Transform::Reference => {
            let Some(id) = as_text(&v) else {
                return Err(Stop::Reject(format!("'reference' needs an id, got {v}")));
            };
            match env.resolver.c4c_key_of(&id) {
                Some(key) => Value::String(key),
                None => {
                    return Err(Stop::Skip(format!(
                        "reference {id} is not (yet) known in C4C"
                    )));
                }
            }
        }
    }))
}

/// `Ok(None)` = skip this value.
fn lookup_one(
    table: &LookupTable,
    name: &str,
    missing: Missing,
    v: &Value,
) -> Result<Option<Value>, Stop> {
    let Some(key) = as_text(v) else {
        return Err(Stop::Reject(format!(
            "lookup '{name}' needs a string, got {v}"
        )));
    };
    match table.get(&key) {
        Some(found) => Ok(Some(Value::String(found.to_string()))),
        None => match missing {
            Missing::Reject => Err(Stop::Reject(format!(
                "{key:?} has no entry in lookup table '{name}'"
            ))),
            Missing::Pass => Ok(Some(v.clone())),
            Missing::Skip => Ok(None),
        },
    }
}

/// Can a rule with these transforms be read back from C4C?
pub fn reversible(transforms: &[Transform]) -> bool {
    !transforms.iter().any(|t| matches!(t, Transform::Split(_)))
}

/// Applies one transform backwards (C4C value → SCIM value). Lossy steps (case, trim,
/// truncate, default) are the identity.
pub fn reverse(t: &Transform, v: Value, env: &Env<'_>) -> Option<Value> {
    Some(match t {
        Transform::Not => Value::Bool(!as_bool(&v)?),
        Transform::Lookup(l) => {
            let table = env.lookups.get(&l.table)?;
            let rev = |v: Value| match v.as_str().and_then(|s| table.reverse(s)) {
                Some(k) => Value::String(k.to_string()),
                None => v,
            };
            match v {
                Value::Array(items) => Value::Array(items.into_iter().map(rev).collect()),
                other => rev(other),
            }
        }
        Transform::Join(sep) => match v {
            Value::String(s) if !sep.is_empty() => Value::Array(
                s.split(sep.as_str())
                    .filter(|p| !p.is_empty())
                    .map(|p| Value::String(p.to_string()))
                    .collect(),
            ),
            other => other,
        },
        Transform::Date(f) => {
            let d = parse_date(v.as_str()?, None)?;
            Value::String(match &f.format {
                Some(fmt) => d.format(fmt).to_string(),
                None => d.format("%Y-%m-%d").to_string(),
            })
        }
        Transform::Reference => Value::String(env.resolver.scim_id_of(v.as_str()?)?),
        Transform::Split(_) => return None,
        Transform::Trim
        | Transform::Lowercase
        | Transform::Uppercase
        | Transform::Default(_)
        | Transform::Truncate(_) => v,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::config::{DateFormat, Lookup, Split};
    use crate::mapping::{NoReferences, ReferenceResolver};
    use serde_json::json;

    struct Refs;
    impl ReferenceResolver for Refs {
        fn c4c_key_of(&self, scim_id: &str) -> Option<String> {
            (scim_id == "mgr-1").then(|| "1001".to_string())
        }
        fn scim_id_of(&self, c4c_key: &str) -> Option<String> {
            (c4c_key == "1001").then(|| "mgr-1".to_string())
        }
    }

    fn tables() -> BTreeMap<String, LookupTable> {
        let mut t = BTreeMap::new();
        for (name, entries) in crate::mapping::defaults::builtin_lookups() {
            t.insert(name, LookupTable::new(&entries));
        }
        let mut dept = BTreeMap::new();
        dept.insert("Sales".to_string(), "ORG_SALES".to_string());
        dept.insert("R&D (Berlin)".to_string(), "ORG_RD".to_string());
        t.insert("departments".into(), LookupTable::new(&dept));
        t
    }

    fn lookup(table: &str, missing: Missing) -> Transform {
        Transform::Lookup(Lookup {
            table: table.into(),
            missing,
        })
    }

    /// (transform, input, expected output)
    #[test]
    fn forward_table() {
        let t = tables();
        let env = Env {
            lookups: &t,
            resolver: &Refs,
        };
        let skip = |s: &str| Err(Stop::Skip(s.to_string()));
        type Case = (Transform, Option<Value>, Result<Option<Value>, Stop>);
        let cases: Vec<Case> = vec![
            (
                Transform::Trim,
                Some(json!("  a b ")),
                Ok(Some(json!("a b"))),
            ),
            (
                Transform::Trim,
                Some(json!([" a", "b "])),
                Ok(Some(json!(["a", "b"]))),
            ),
            (
                Transform::Lowercase,
                Some(json!("ÄbC@X.com")),
                Ok(Some(json!("äbc@x.com"))),
            ),
            (
                Transform::Uppercase,
                Some(json!("jane.doe")),
                Ok(Some(json!("JANE.DOE"))),
            ),
            (Transform::Trim, None, Ok(None)),
            (Transform::Default(json!("EN")), None, Ok(Some(json!("EN")))),
            (
                Transform::Default(json!("EN")),
                Some(json!("DE")),
                Ok(Some(json!("DE"))),
            ),
            (Transform::Not, Some(json!(true)), Ok(Some(json!(false)))),
            (Transform::Not, Some(json!("False")), Ok(Some(json!(true)))),
            (
                Transform::Truncate(3),
                Some(json!("abcdef")),
                Ok(Some(json!("abc"))),
            ),
            (
                Transform::Truncate(3),
                Some(json!("äöü")),
                Ok(Some(json!("äöü"))),
            ),
            (
                lookup("language", Missing::Reject),
                Some(json!("en-US")),
                Ok(Some(json!("EN"))),
            ),
            (
                lookup("language", Missing::Reject),
                Some(json!("pt_BR")),
                Ok(Some(json!("PT"))),
            ),
            (
                lookup("language", Missing::Reject),
                Some(json!("DE")),
                Ok(Some(json!("DE"))),
            ),
            (
                lookup("country", Missing::Reject),
                Some(json!("Germany")),
                Ok(Some(json!("DE"))),
            ),
            (
                lookup("country", Missing::Reject),
                Some(json!("us")),
                Ok(Some(json!("US"))),
            ),
            (
                lookup("timezone", Missing::Reject),
                Some(json!("Europe/Berlin")),
                Ok(Some(json!("CET"))),
            ),
            (
                lookup("timezone", Missing::Skip),
                Some(json!("Mars/Base")),
                skip("no entry for \"Mars/Base\" in lookup table 'timezone'"),
            ),
            (
                lookup("departments", Missing::Pass),
                Some(json!("Legal")),
                Ok(Some(json!("Legal"))),
            ),
            (
                lookup("departments", Missing::Reject),
                Some(json!("r&d (berlin)")),
                Ok(Some(json!("ORG_RD"))),
            ),
            (
                lookup("departments", Missing::Skip),
                Some(json!(["Sales", "Legal"])),
                Ok(Some(json!(["ORG_SALES"]))),
            ),
            (
                Transform::Split(Split {
                    separator: "@".into(),
                    index: 0,
                }),
                Some(json!("jane@x.com")),
                Ok(Some(json!("jane"))),
            ),
            (
                Transform::Split(Split {
                    separator: "@".into(),
                    index: 2,
                }),
                Some(json!("jane@x.com")),
                skip("'split' has no part 2 of \"jane@x.com\""),
            ),
            (
                Transform::Join(", ".into()),
                Some(json!(["a", "b"])),
                Ok(Some(json!("a, b"))),
            ),
            (
                Transform::Date(DateFormat::default()),
                Some(json!("2024-03-01T10:15:30+02:00")),
                Ok(Some(json!("2024-03-01T00:00:00"))),
            ),
            (
                Transform::Date(DateFormat::default()),
                Some(json!("2024-03-01")),
                Ok(Some(json!("2024-03-01T00:00:00"))),
            ),
            (
                Transform::Date(DateFormat {
                    format: Some("%d.%m.%Y".into()),
                }),
                Some(json!("01.03.2024")),
                Ok(Some(json!("2024-03-01T00:00:00"))),
            ),
            (
                Transform::Reference,
                Some(json!("mgr-1")),
                Ok(Some(json!("1001"))),
            ),
            (
                Transform::Reference,
                Some(json!("mgr-2")),
                skip("reference mgr-2 is not (yet) known in C4C"),
            ),
        ];
        for (t, input, want) in cases {
            let mut notes = Vec::new();
            let got = forward(&t, input.clone(), &env, &mut notes);
            assert_eq!(got, want, "{t:?} on {input:?}");
        }
    }

    #[test]
    fn forward_rejections() {
        let t = tables();
        let env = Env {
            lookups: &t,
            resolver: &NoReferences,
        };
        let cases: Vec<(Transform, Value)> = vec![
            (Transform::Not, json!("maybe")),
            (lookup("country", Missing::Reject), json!("Atlantis")),
            (lookup("nosuch", Missing::Pass), json!("x")),
            (Transform::Date(DateFormat::default()), json!("yesterday")),
            (
                Transform::Split(Split {
                    separator: "@".into(),
                    index: 0,
                }),
                json!({"a": 1}),
            ),
        ];
        for (t, input) in cases {
            let got = forward(&t, Some(input.clone()), &env, &mut Vec::new());
            assert!(
                matches!(got, Err(Stop::Reject(_))),
                "{t:?} on {input}: {got:?}"
            );
        }
    }

    #[test]
    fn reverse_table() {
        let t = tables();
        let env = Env {
            lookups: &t,
            resolver: &Refs,
        };
        let cases: Vec<(Transform, Value, Option<Value>)> = vec![
            (Transform::Trim, json!("a"), Some(json!("a"))),
            (Transform::Lowercase, json!("a@x"), Some(json!("a@x"))),
            (Transform::Not, json!(true), Some(json!(false))),
            (
                lookup("language", Missing::Skip),
                json!("EN"),
                Some(json!("en")),
            ),
            (
                lookup("language", Missing::Skip),
                json!("NO"),
                Some(json!("no")),
            ),
            (
                lookup("country", Missing::Skip),
                json!("DE"),
                Some(json!("DE")),
            ),
            (
                lookup("departments", Missing::Skip),
                json!("ORG_SALES"),
                Some(json!("Sales")),
            ),
            (
                lookup("departments", Missing::Pass),
                json!("OTHER"),
                Some(json!("OTHER")),
            ),
            (
                Transform::Join(",".into()),
                json!("a,b"),
                Some(json!(["a", "b"])),
            ),
            (
                Transform::Date(DateFormat::default()),
                json!("2024-03-01T00:00:00"),
                Some(json!("2024-03-01")),
            ),
            (
                Transform::Date(DateFormat::default()),
                json!("/Date(1709251200000)/"),
                Some(json!("2024-03-01")),
            ),
            (
                Transform::Date(DateFormat {
                    format: Some("%d.%m.%Y".into()),
                }),
                json!("2024-03-01T00:00:00"),
                Some(json!("01.03.2024")),
            ),
            (Transform::Reference, json!("1001"), Some(json!("mgr-1"))),
            (Transform::Reference, json!("1002"), None),
            (
                Transform::Split(Split {
                    separator: "@".into(),
                    index: 0,
                }),
                json!("a"),
                None,
            ),
        ];
        for (t, input, want) in cases {
            assert_eq!(reverse(&t, input.clone(), &env), want, "{t:?} on {input}");
        }
        assert!(!reversible(&[Transform::Split(Split {
            separator: "@".into(),
            index: 0
        })]));
        assert!(reversible(&[Transform::Trim, Transform::Not]));
    }
}
