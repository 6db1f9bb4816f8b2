//! `c4c-scim-bridge map`: the OData payload a SCIM user would produce, with the trace.

use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::scim::resource::validate_for_create;
use crate::scim::schema::USER_RESOURCE;

use super::{ChildOp, MapKind, Mapper, NoReferences, Trace};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DryRunReport {
    /// The body of `POST EmployeeCollection` (empty when mapping failed).
    pub payload: Value,
    /// Child-set operations, described.
    pub child_ops: Vec<String>,
    /// Values the bridge keeps with no C4C home.
    pub local: Map<String, Value>,
    pub trace: Trace,
    /// Why the user would be refused (SCIM validation or mapping), if it would.
    pub error: Option<String>,
}

impl DryRunReport {
    pub fn is_ok(&self) -> bool {
        self.error.is_none()
    }
}

/// Maps a SCIM User JSON (as a client would POST it) without sending anything.
pub fn dry_run(mapper: &Mapper, scim_json: &Value) -> DryRunReport {
    let mut report = DryRunReport {
        payload: Value::Object(Map::new()),
        child_ops: Vec::new(),
        local: Map::new(),
        trace: Trace::default(),
        error: None,
    };
    let user = match validate_for_create(&USER_RESOURCE, scim_json) {
        Ok(u) => u,
        Err(e) => {
            report.error = Some(format!("SCIM validation: {}", e.detail));
            return report;
        }
    };
    match mapper.to_c4c(&user, MapKind::Create, &NoReferences) {
        Ok(mapped) => {
            report.payload = Value::Object(mapped.fields.0);
            report.child_ops = mapped
                .child_ops
                .iter()
                .map(|op| match op {
                    ChildOp::AssignOrgUnit { org_unit_id } => {
                        format!("EmployeeOrganisationalUnitAssignment: OrgUnitID = {org_unit_id}")
                    }
                    ChildOp::SetBusinessRoles { role_ids } => format!(
                        "EmployeeUserBusinessRoleAssignment: BusinessRoleID in [{}]",
                        role_ids.join(", ")
                    ),
                })
                .collect();
            report.local = mapped
                .local
                .into_iter()
                .map(|(k, v)| {
                    let shown = if mapper.sensitive(&k) {
                        Value::String("***".into())
                    } else {
                        v
                    };
                    (k, shown)
                })
                .collect();
            report.trace = mapped.trace;
        }
        Err(e) => report.error = Some(format!("mapping: {e}")),
    }
    report
}

impl fmt::Display for DryRunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(e) = &self.error {
            writeln!(f, "REFUSED: {e}")?;
        }
        writeln!(f, "POST EmployeeCollection")?;
        let body = serde_json::to_string_pretty(&self.payload).map_err(|_| fmt::Error)?;
        writeln!(f, "{body}")?;
        if !self.child_ops.is_empty() {
            writeln!(f, "\nChild sets:")?;
            for op in &self.child_ops {
                writeln!(f, "  {op}")?;
            }
        }
        if !self.local.is_empty() {
            writeln!(f, "\nKept locally (no C4C home):")?;
            for (k, v) in &self.local {
                writeln!(f, "  {k} = {v}")?;
            }
        }
        writeln!(
            f,
            "\nTrace (rule, SCIM path, before -> after => target: outcome):"
        )?;
        write!(f, "{}", self.trace)
    }
}
