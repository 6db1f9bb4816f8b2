//! Mapping configuration: the `[mapping]` section of the main TOML file, or a separate rules file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// Everything the mapping engine is configured with. `Default` is the default rule set.
#[derive(Debug, Clone, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MappingConfig {
    /// A separate rules file (same keys as this section); when set, its content replaces this one.
    pub rules_file: Option<PathBuf>,
    /// What `active = false` does in C4C (employees cannot be deleted there).
    pub deprovisioning: Deprovisioning,
    /// What to do with a value longer than the property's max length (rules may override).
    pub too_long: TooLong,
    /// Which property links a SCIM user to an employee that already exists in C4C.
    pub match_on: MatchOn,
    /// SCIM paths whose values are masked in traces (prefix match, case-insensitive).
    pub sensitive: Vec<String>,
    /// Lookup tables by name; merged over the built-in `language`, `country` and `timezone`.
    pub lookups: BTreeMap<String, BTreeMap<String, String>>,
    /// The rules, applied in order; the first rule that sets a target wins.
    pub rules: Vec<Rule>,
}

impl Default for MappingConfig {
    fn default() -> Self {
        Self {
            rules_file: None,
            deprovisioning: Deprovisioning::Lock,
            too_long: TooLong::Reject,
            match_on: MatchOn::UserId,
            sensitive: vec!["phoneNumbers".into(), "addresses".into()],
            lookups: BTreeMap::new(),
            rules: super::defaults::default_rules(),
        }
    }
}

/// Errors reading a rules file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read mapping rules file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("mapping rules file {path}: {message}")]
    Parse { path: PathBuf, message: String },
}

impl MappingConfig {
    /// Reads a rules file (the keys of the `[mapping]` section at top level).
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let config = Self::from_toml_str(&text).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })?;
        if config.rules_file.is_some() {
            return Err(ConfigError::Parse {
                path: path.to_path_buf(),
                message: "a rules file cannot name another rules_file".into(),
            });
        }
        Ok(config)
    }

    /// Parses TOML text with the keys of the `[mapping]` section.
    pub fn from_toml_str(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// This configuration, or the rules file's when `rules_file` is set.
    pub fn resolve(self) -> Result<Self, ConfigError> {
        match &self.rules_file {
            Some(path) => Self::from_toml_file(path),
            None => Ok(self),
        }
    }
}

/// Deprovisioning in C4C: lock the user, end its validity, or both.
#[derive(
    Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Deprovisioning {
    Lock,
    EndValidity,
    Both,
}

#[derive(
    Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum TooLong {
    Truncate,
    Reject,
}

#[derive(
    Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum MatchOn {
    EmployeeId,
    UserId,
    Email,
}

/// Which way a rule works.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    #[default]
    Both,
    ToC4c,
    ToScim,
}

/// One rule: a SCIM source (path, template or constant), transforms, and a target.
#[derive(Debug, Clone, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// A name for the rule, shown in traces and the mapping log.
    pub name: String,
    /// SCIM attribute path, value paths included (`emails[type eq "work"].value`,
    /// `urn:…:enterprise:2.0:User:employeeNumber`).
    #[serde(default)]
    pub scim: Option<String>,
    /// A template instead of a path: `"{name.givenName} {name.familyName}"`.
    #[serde(default)]
    pub template: Option<String>,
    /// A constant instead of a path.
    #[serde(default)]
    pub value: Option<Value>,
    /// An EmployeeCollection property, or `@org_unit`, `@business_roles`, `@active`, `@local`,
    /// `@ignore`.
    pub to: String,
    /// Transforms applied in order to the source value.
    #[serde(default)]
    pub transforms: Vec<Transform>,
    #[serde(default)]
    pub direction: Direction,
    /// Apply only when this holds (on the SCIM resource).
    #[serde(default)]
    pub when: Option<Condition>,
    /// Sent on create only (properties C4C does not let us update, like EmployeeID).
    #[serde(default)]
    pub create_only: bool,
    /// Overrides the global `too_long` for this rule.
    #[serde(default)]
    pub too_long: Option<TooLong>,
}

/// `when = { present = "path" }`, `{ absent = "path" }` or `{ path = "…", equals = "…" }`.
#[derive(Debug, Clone, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// Apply when this SCIM path has a value.
    #[serde(default)]
    pub present: Option<String>,
    /// Apply when this SCIM path has no value.
    #[serde(default)]
    pub absent: Option<String>,
    /// With `equals`: apply when this SCIM path equals the value.
    #[serde(default)]
    pub path: Option<String>,
    /// The value `path` must equal.
    #[serde(default)]
    pub equals: Option<Value>,
}

/// What to do when a lookup table has no entry.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    /// Refuse the request (400 invalidValue naming the value and the table).
    #[default]
    Reject,
    /// Send the value unchanged.
    Pass,
    /// Leave the target alone (the trace says so).
    Skip,
}

#[derive(Debug, Clone, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Lookup {
    pub table: String,
    #[serde(default)]
    pub missing: Missing,
}

#[derive(Debug, Clone, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Split {
    pub separator: String,
    pub index: usize,
}

/// `{ date = {} }` or `{ date = { format = "%d.%m.%Y" } }`.
#[derive(Debug, Clone, Deserialize, PartialEq, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DateFormat {
    /// chrono format of the SCIM value; RFC 3339 and `YYYY-MM-DD` are always accepted.
    #[serde(default)]
    pub format: Option<String>,
}

/// A transform step. In TOML: `"trim"`, `"lowercase"`, `"uppercase"`, `"not"`, `"reference"`,
/// `{ default = "EN" }`, `{ truncate = 40 }`, `{ lookup = { table = "country" } }`,
/// `{ split = { separator = "@", index = 0 } }`, `{ join = ", " }`, `{ date = {} }`.
#[derive(Debug, Clone, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Transform {
    Trim,
    Lowercase,
    Uppercase,
    /// Boolean inversion (`active` → `UserLockedIndicator`).
    Not,
    /// A SCIM user id → the C4C key of that user, through the caller's resolver.
    Reference,
    /// Used when the source is absent.
    Default(Value),
    /// Cut to this many characters (whatever `too_long` says).
    Truncate(usize),
    Lookup(Lookup),
    Split(Split),
    Join(String),
    Date(DateFormat),
}

impl Transform {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Trim => "trim",
            Self::Lowercase => "lowercase",
            Self::Uppercase => "uppercase",
            Self::Not => "not",
            Self::Reference => "reference",
            Self::Default(_) => "default",
            Self::Truncate(_) => "truncate",
            Self::Lookup(_) => "lookup",
            Self::Split(_) => "split",
            Self::Join(_) => "join",
            Self::Date(_) => "date",
        }
    }
}

/// Where a rule's value goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Property(String),
    /// An `EmployeeOrganisationalUnitAssignment` (value = OrgUnitID).
    OrgUnit,
    /// `EmployeeUserBusinessRoleAssignment`s (values = BusinessRoleIDs).
    BusinessRoles,
    /// `active`, handled per deprovisioning mode.
    Active,
    /// No home in C4C: kept by the bridge's store only.
    Local,
    /// Dropped.
    Ignore,
}

impl Target {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        match text {
            "@org_unit" => Ok(Self::OrgUnit),
            "@business_roles" => Ok(Self::BusinessRoles),
            "@active" => Ok(Self::Active),
            "@local" => Ok(Self::Local),
            "@ignore" => Ok(Self::Ignore),
            t if t.starts_with('@') => Err(format!(
                "unknown target {t} (use a property name, @org_unit, @business_roles, @active, @local or @ignore)"
            )),
            t if !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                Ok(Self::Property(t.to_string()))
            }
            t => Err(format!("'{t}' is not a property name")),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Property(p) => f.write_str(p),
            Self::OrgUnit => f.write_str("@org_unit"),
            Self::BusinessRoles => f.write_str("@business_roles"),
            Self::Active => f.write_str("@active"),
            Self::Local => f.write_str("@local"),
            Self::Ignore => f.write_str("@ignore"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rules_file_shape() {
        let text = r#"
deprovisioning = "both"
too_long = "truncate"
match_on = "email"
sensitive = ["phoneNumbers"]
[lookups.departments]
Sales = "ORG_SALES"

[[rules]]
name = "email"
scim = 'emails[type eq "work"].value'
to = "Email"
transforms = ["trim", "lowercase", { truncate = 255 }, { lookup = { table = "departments", missing = "pass" } }, { split = { separator = "@", index = 0 } }, { join = "," }, { date = {} }, { default = "x" }]
when = { present = "emails" }
"#;
        let c = MappingConfig::from_toml_str(text).unwrap();
        assert_eq!(c.deprovisioning, Deprovisioning::Both);
        assert_eq!(c.too_long, TooLong::Truncate);
        assert_eq!(c.match_on, MatchOn::Email);
        assert_eq!(c.rules.len(), 1);
        assert_eq!(c.rules[0].transforms.len(), 8);
        assert_eq!(c.lookups["departments"]["Sales"], "ORG_SALES");
    }

    #[test]
    fn defaults_apply_when_keys_are_missing() {
        let c = MappingConfig::from_toml_str("").unwrap();
        assert_eq!(c, MappingConfig::default());
        assert!(c.rules.len() > 10);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = MappingConfig::from_toml_str("deprovision = \"lock\"").unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
        let e =
            MappingConfig::from_toml_str("[[rules]]\nname = \"a\"\nto = \"Email\"\nscm = \"x\"")
                .unwrap_err();
        assert!(e.contains("scm"), "{e}");
        let e = MappingConfig::from_toml_str(
            "[[rules]]\nname = \"a\"\nto = \"Email\"\ntransforms = [\"lowercse\"]",
        )
        .unwrap_err();
        assert!(e.contains("lowercse"), "{e}");
    }

    #[test]
    fn reads_a_rules_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.toml");
        std::fs::write(&path, "match_on = \"employee_id\"\n").unwrap();
        let c = MappingConfig {
            rules_file: Some(path.clone()),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(c.match_on, MatchOn::EmployeeId);
        std::fs::write(&path, "rules_file = \"x\"\n").unwrap();
        assert!(MappingConfig::from_toml_file(&path).is_err());
        assert!(MappingConfig::from_toml_file(dir.path().join("none.toml")).is_err());
    }

    #[test]
    fn targets() {
        let cases = [
            ("Email", Ok(Target::Property("Email".into()))),
            ("@org_unit", Ok(Target::OrgUnit)),
            ("@business_roles", Ok(Target::BusinessRoles)),
            ("@active", Ok(Target::Active)),
            ("@local", Ok(Target::Local)),
            ("@ignore", Ok(Target::Ignore)),
        ];
        for (text, want) in cases {
            assert_eq!(Target::parse(text), want, "{text}");
        }
        assert!(Target::parse("@nope").is_err());
        assert!(Target::parse("Email eq 'x'").is_err());
        assert!(Target::parse("").is_err());
    }
}
