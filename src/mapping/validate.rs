//! Checks rules against the tenant's `$metadata` (at start and in `check`).

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::c4c::metadata::{EdmType, EntityTypeModel, Metadata, PropertyModel};
use crate::c4c::model::{EMPLOYEE_SET, ORG_ASSIGNMENT_SET, ROLE_ASSIGNMENT_SET};
use crate::scim::schema::AttrType;

use super::config::{Direction, MappingConfig, Target, Transform};
use super::{CompiledRule, Source, compile, defaults, path};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
}

/// A problem with one rule; the message names the rule, the SCIM path and the property.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleProblem {
    pub severity: Severity,
    pub rule: String,
    pub scim_path: String,
    pub property: Option<String>,
    pub message: String,
    pub suggestion: Option<String>,
}

impl fmt::Display for RuleProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{level}: rule {} ({}", self.rule, self.scim_path)?;
        if let Some(p) = &self.property {
            write!(f, " -> {p}")?;
        }
        write!(f, "): {}", self.message)?;
        if let Some(s) = &self.suggestion {
            write!(f, "; did you mean {s}?")?;
        }
        Ok(())
    }
}

/// The closest name, for did-you-mean.
pub(crate) fn closest<'a>(
    wanted: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<String> {
    let lower = wanted.to_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = strsim::levenshtein(&lower, &c.to_lowercase());
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    let (d, c) = best?;
    (d <= (wanted.chars().count() / 3).max(2)).then(|| c.to_string())
}

/// Checks every rule of `config` against the tenant's `$metadata`.
pub fn validate(config: &MappingConfig, metadata: &Metadata) -> Vec<RuleProblem> {
    let Some(employee) = metadata.entity_type_of_set(EMPLOYEE_SET) else {
        return vec![RuleProblem {
            severity: Severity::Error,
            rule: "-".into(),
            scim_path: "-".into(),
            property: None,
            message: format!("$metadata has no entity set {EMPLOYEE_SET}"),
            suggestion: None,
        }];
    };
    let mut problems = check_rules(config, employee, true);
    for rule in &config.rules {
        let (set, what) = match Target::parse(&rule.to) {
            Ok(Target::OrgUnit) => (ORG_ASSIGNMENT_SET, "org unit assignments"),
            Ok(Target::BusinessRoles) => (ROLE_ASSIGNMENT_SET, "business role assignments"),
            _ => continue,
        };
        let ok = metadata
            .entity_set(set)
            .is_some_and(|s| s.creatable && s.deletable);
        if !ok {
            problems.push(RuleProblem {
                severity: Severity::Error,
                rule: rule.name.clone(),
                scim_path: rule.scim.clone().unwrap_or_default(),
                property: Some(set.into()),
                message: format!("{what} need {set} to be creatable and deletable in $metadata"),
                suggestion: None,
            });
        }
    }
    problems
}

/// What a rule produces, as far as types go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Produces {
    Text,
    Bool,
    Date,
    Number,
    Complex,
    Unknown,
}

fn produces(rule: &CompiledRule) -> Produces {
    let mut p = match &rule.source {
        Source::Template(_) => Produces::Text,
        Source::Constant(v) => match v {
            Value::String(_) => Produces::Text,
            Value::Bool(_) => Produces::Bool,
            Value::Number(_) => Produces::Number,
            _ => Produces::Complex,
        },
        Source::Path(p) => match path::resolve(p) {
            Some(r) => match r.sub.unwrap_or(r.attr).ty {
                AttrType::String | AttrType::Reference | AttrType::Binary => Produces::Text,
                AttrType::Boolean => Produces::Bool,
                AttrType::DateTime => Produces::Date,
                AttrType::Integer | AttrType::Decimal => Produces::Number,
                AttrType::Complex => Produces::Complex,
            },
            None => Produces::Unknown,
        },
    };
    for t in &rule.rule.transforms {
        p = match t {
            Transform::Not => Produces::Bool,
            Transform::Date(_) => Produces::Date,
            Transform::Lookup(_) | Transform::Split(_) | Transform::Join(_) => Produces::Text,
            Transform::Trim | Transform::Lowercase | Transform::Uppercase => p,
            Transform::Truncate(_) | Transform::Reference | Transform::Default(_) => p,
        };
    }
    p
}

fn fits(edm: &EdmType, p: Produces) -> bool {
    matches!(
        (edm, p),
        (_, Produces::Unknown)
            | (
                EdmType::String,
                Produces::Text | Produces::Number | Produces::Date
            )
            | (EdmType::Boolean, Produces::Bool)
            | (
                EdmType::DateTime | EdmType::DateTimeOffset,
                Produces::Date | Produces::Text
            )
            | (
                EdmType::Int16
                    | EdmType::Int32
                    | EdmType::Int64
                    | EdmType::Decimal
                    | EdmType::Double,
                Produces::Number
            )
            | (EdmType::Guid, Produces::Text)
            | (EdmType::Other(_) | EdmType::Binary | EdmType::Time, _)
    )
}

/// Checks rules against an entity type; `strict` when it comes from the tenant's `$metadata`
/// (unknown properties are errors then, warnings against the built-in model).
pub(crate) fn check_rules(
    config: &MappingConfig,
    employee: &EntityTypeModel,
    strict: bool,
) -> Vec<RuleProblem> {
    let mut out = Vec::new();
    let mut tables: Vec<String> = defaults::builtin_lookups().into_keys().collect();
    tables.extend(config.lookups.keys().cloned());
    let mut names: Vec<&str> = Vec::new();
    for rule in &config.rules {
        let source = rule
            .scim
            .clone()
            .or_else(|| rule.template.clone())
            .or_else(|| rule.value.as_ref().map(Value::to_string))
            .unwrap_or_default();
        let problem = |severity, property: Option<&str>, message: String, suggestion| RuleProblem {
            severity,
            rule: rule.name.clone(),
            scim_path: source.clone(),
            property: property.map(str::to_string),
            message,
            suggestion,
        };
        if names.contains(&rule.name.as_str()) {
            out.push(problem(
                Severity::Error,
                None,
                "another rule has the same name".into(),
                None,
            ));
        }
        names.push(&rule.name);
        let compiled = match compile(rule) {
            Ok(c) => c,
            Err(message) => {
                out.push(problem(Severity::Error, None, message, None));
                continue;
            }
        };
        for t in &rule.transforms {
            if let Transform::Lookup(l) = t
                && !tables.contains(&l.table)
            {
                out.push(problem(
                    Severity::Error,
                    None,
                    format!("no lookup table '{}'", l.table),
                    closest(&l.table, tables.iter().map(String::as_str)),
                ));
            }
        }
        match &compiled.target {
            Target::Property(name) => {
                let Some(prop) = employee.property(name) else {
                    out.push(problem(
                        if strict {
                            Severity::Error
                        } else {
                            Severity::Warning
                        },
                        Some(name),
                        format!("{} has no property {name}", employee.name),
                        closest(name, employee.properties.iter().map(|p| p.name.as_str())),
                    ));
                    continue;
                };
                check_property(rule, &compiled, prop, config, &mut |sev, msg| {
                    out.push(problem(sev, Some(name), msg, None))
                });
            }
            Target::Active
                if !matches!(produces(&compiled), Produces::Bool | Produces::Unknown) =>
            {
                out.push(problem(
                    Severity::Error,
                    None,
                    "@active needs a boolean source (SCIM active)".into(),
                    None,
                ));
            }
            _ => {}
        }
    }
    out
}

fn check_property(
    rule: &super::Rule,
    compiled: &CompiledRule,
    prop: &PropertyModel,
    config: &MappingConfig,
    report: &mut dyn FnMut(Severity, String),
) {
    if rule.direction != Direction::ToScim {
        if !prop.creatable && !prop.updatable {
            report(
                Severity::Error,
                format!(
                    "{} is read-only in $metadata (use direction = \"to_scim\")",
                    prop.name
                ),
            );
            return;
        }
        if !prop.creatable {
            report(Severity::Error, format!("{} is not creatable", prop.name));
        }
        if !prop.updatable && !rule.create_only {
            report(
                Severity::Error,
                format!(
                    "{} is not updatable in $metadata: set create_only = true",
                    prop.name
                ),
            );
        }
    }
    let produced = produces(compiled);
    if !fits(&prop.edm_type, produced) {
        report(
            Severity::Error,
            format!(
                "{} is {:?} but the rule produces {produced:?}",
                prop.name, prop.edm_type
            ),
        );
    }
    let Some(max) = prop.max_length else {
        return;
    };
    let too_long = |s: &str| s.chars().count() > max;
    let constants = rule
        .value
        .iter()
        .chain(rule.transforms.iter().filter_map(|t| match t {
            Transform::Default(v) => Some(v),
            _ => None,
        }));
    for c in constants {
        if let Some(s) = c.as_str()
            && too_long(s)
        {
            report(
                Severity::Error,
                format!("constant {s:?} is longer than {max} characters"),
            );
        }
    }
    for t in &rule.transforms {
        match t {
            Transform::Lookup(l) => {
                let mut all = defaults::builtin_lookups();
                if let Some(extra) = config.lookups.get(&l.table) {
                    all.entry(l.table.clone())
                        .or_default()
                        .extend(extra.clone());
                }
                if let Some(table) = all.get(&l.table) {
                    for v in table.values().filter(|v| too_long(v)) {
                        report(
                            Severity::Error,
                            format!(
                                "lookup table '{}' has value {v:?}, longer than {max} characters",
                                l.table
                            ),
                        );
                    }
                }
            }
            Transform::Truncate(n) if *n > max => report(
                Severity::Warning,
                format!("truncate to {n} exceeds the max length {max}"),
            ),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_you_mean() {
        let names = ["Email", "EmployeeID", "FirstName", "LastName", "UserID"];
        let cases = [
            ("Emial", Some("Email")),
            ("email", Some("Email")),
            ("FristName", Some("FirstName")),
            ("UserId", Some("UserID")),
            ("Department", None),
        ];
        for (wanted, want) in cases {
            assert_eq!(
                closest(wanted, names.iter().copied()).as_deref(),
                want,
                "{wanted}"
            );
        }
    }
}
