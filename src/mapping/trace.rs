//! The trace of rules applied: what `map` prints and the mapping log keeps.

use std::fmt;

use serde::Serialize;

/// What a rule did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "detail")]
pub enum Outcome {
    /// The target got the value.
    Set,
    /// Set, after cutting to the property's max length.
    Truncated {
        max: usize,
    },
    /// Set, from the rule's default.
    Defaulted,
    /// Same value as before (update): nothing sent.
    Unchanged,
    /// Not sent: the property can only be written on create.
    CreateOnly,
    /// An earlier rule already set this target.
    Shadowed {
        by: String,
    },
    /// The source is absent or a step decided to leave the target alone.
    Skipped {
        reason: String,
    },
    /// No home in C4C: the bridge keeps the value.
    KeptLocally,
    Ignored,
    /// The SCIM attribute has no rule: the bridge keeps it, C4C never sees it.
    NoRule,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Set => f.write_str("set"),
            Self::Truncated { max } => write!(f, "set, truncated to {max} characters"),
            Self::Defaulted => f.write_str("set from default"),
            Self::Unchanged => f.write_str("unchanged, not sent"),
            Self::CreateOnly => f.write_str("create only, not sent on update"),
            Self::Shadowed { by } => write!(f, "not applied: rule {by} already set the target"),
            Self::Skipped { reason } => write!(f, "skipped: {reason}"),
            Self::KeptLocally => f.write_str("kept locally (no writable home in C4C)"),
            Self::Ignored => f.write_str("ignored"),
            Self::NoRule => f.write_str("no rule: kept locally"),
        }
    }
}

/// One rule application. Values are rendered as JSON text; sensitive ones as `***`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceEntry {
    pub rule: String,
    pub scim_path: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub target: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Trace {
    pub entries: Vec<TraceEntry>,
}

impl Trace {
    pub fn push(&mut self, e: TraceEntry) {
        self.entries.push(e);
    }
    /// The entry of a rule, by name.
    pub fn rule(&self, name: &str) -> Option<&TraceEntry> {
        self.entries.iter().find(|e| e.rule == name)
    }
}

impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.entries {
            let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
            writeln!(
                f,
                "{:<20} {:<45} {} -> {}  => {}: {}",
                e.rule,
                e.scim_path,
                show(&e.before),
                show(&e.after),
                e.target,
                e.outcome
            )?;
        }
        Ok(())
    }
}
