//! Typed views of the C4C entities the bridge reads and writes.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};

use super::error::C4cError;
use super::filter::Filter;
use super::odata::{
    ETag, date_for_body, entity_etag, object_id_from_uri, value_as_date, value_as_datetime,
};

pub const EMPLOYEE_SET: &str = "EmployeeCollection";
pub const ROLE_ASSIGNMENT_SET: &str = "EmployeeUserBusinessRoleAssignmentCollection";
pub const ORG_ASSIGNMENT_SET: &str = "EmployeeOrganisationalUnitAssignmentCollection";
pub const ROLE_NAV: &str = "EmployeeUserBusinessRoleAssignment";
pub const ORG_NAV: &str = "EmployeeOrganisationalUnitAssignment";

fn string(map: &Map<String, Value>, key: &str) -> Option<String> {
    map.get(key).and_then(Value::as_str).map(str::to_string)
}

fn object_id(map: &Map<String, Value>) -> Result<String, C4cError> {
    string(map, "ObjectID")
        .or_else(|| {
            map.get("__metadata")
                .and_then(|m| m.get("uri"))
                .and_then(Value::as_str)
                .and_then(object_id_from_uri)
        })
        .ok_or_else(|| C4cError::UnexpectedResponse("entity without ObjectID".into()))
}

/// An employee as read from `EmployeeCollection`: well-known fields typed, every other
/// property (including tenant extension fields) kept in `other`.
#[derive(Debug, Clone, PartialEq)]
pub struct Employee {
    pub object_id: String,
    pub employee_id: Option<String>,
    pub uuid: Option<String>,
    pub user_id: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub user_locked: Option<bool>,
    pub user_validity_start: Option<NaiveDate>,
    pub user_validity_end: Option<NaiveDate>,
    pub entity_last_changed_on: Option<DateTime<Utc>>,
    pub etag: Option<ETag>,
    /// Properties not listed above, as C4C sent them (dates as `/Date(ms)/`); expanded
    /// navigations appear here as `{"results": […]}`.
    pub other: Map<String, Value>,
}

impl Employee {
    pub fn from_entity(mut map: Map<String, Value>) -> Result<Self, C4cError> {
        let object_id = object_id(&map)?;
        let etag = entity_etag(&map);
        let take_str = |m: &mut Map<String, Value>, k: &str| match m.remove(k) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        };
        map.remove("ObjectID");
        map.remove("__metadata");
        let employee_id = take_str(&mut map, "EmployeeID");
        let uuid = take_str(&mut map, "UUID");
        let user_id = take_str(&mut map, "UserID");
        let first_name = take_str(&mut map, "FirstName");
        let last_name = take_str(&mut map, "LastName");
        let email = take_str(&mut map, "Email");
        let user_locked = map.remove("UserLockedIndicator").and_then(|v| v.as_bool());
        let user_validity_start = map
            .remove("UserValidityStartDate")
            .as_ref()
            .and_then(value_as_date);
        let user_validity_end = map
            .remove("UserValidityEndDate")
            .as_ref()
            .and_then(value_as_date);
        let entity_last_changed_on = map
            .remove("EntityLastChangedOn")
            .as_ref()
            .and_then(value_as_datetime);
        // Deferred navigation stubs carry nothing the bridge can use.
        map.retain(|_, v| v.get("__deferred").is_none());
        Ok(Self {
            object_id,
            employee_id,
            uuid,
            user_id,
            first_name,
            last_name,
            email,
            user_locked,
            user_validity_start,
            user_validity_end,
            entity_last_changed_on,
            etag,
            other: map,
        })
    }

    /// Any property by its C4C name, typed fields included (as JSON).
    pub fn property(&self, name: &str) -> Option<Value> {
        let s = |v: &Option<String>| v.clone().map(Value::String);
        match name {
            "ObjectID" => Some(Value::String(self.object_id.clone())),
            "EmployeeID" => s(&self.employee_id),
            "UUID" => s(&self.uuid),
            "UserID" => s(&self.user_id),
            "FirstName" => s(&self.first_name),
            "LastName" => s(&self.last_name),
            "Email" => s(&self.email),
            "UserLockedIndicator" => self.user_locked.map(Value::Bool),
            "UserValidityStartDate" => self.user_validity_start.map(date_for_body),
            "UserValidityEndDate" => self.user_validity_end.map(date_for_body),
            "EntityLastChangedOn" => self
                .entity_last_changed_on
                .map(|d| Value::String(d.to_rfc3339())),
            other => self.other.get(other).cloned(),
        }
    }

    /// Expanded business-role assignments, when read with `$expand`.
    pub fn expanded_roles(&self) -> Result<Vec<RoleAssignment>, C4cError> {
        expanded(&self.other, ROLE_NAV)?
            .into_iter()
            .map(RoleAssignment::from_entity)
            .collect()
    }
}

fn expanded(map: &Map<String, Value>, nav: &str) -> Result<Vec<Map<String, Value>>, C4cError> {
    let items = match map.get(nav) {
        None => return Ok(Vec::new()),
        Some(Value::Object(o)) => o
            .get("results")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => return Err(C4cError::UnexpectedResponse(format!("{nav} is not a list"))),
    };
    items
        .into_iter()
        .map(|v| match v {
            Value::Object(m) => Ok(m),
            _ => Err(C4cError::UnexpectedResponse(format!(
                "{nav} item is not an object"
            ))),
        })
        .collect()
}

/// A business-role assignment (create and delete only: nothing in it is updatable).
#[derive(Debug, Clone, PartialEq)]
pub struct RoleAssignment {
    pub object_id: String,
    pub parent_object_id: Option<String>,
    pub business_role_id: String,
    pub user_id: Option<String>,
    pub etag: Option<ETag>,
}

impl RoleAssignment {
    pub fn from_entity(map: Map<String, Value>) -> Result<Self, C4cError> {
        Ok(Self {
            object_id: object_id(&map)?,
            parent_object_id: string(&map, "ParentObjectID"),
            business_role_id: string(&map, "BusinessRoleID").ok_or_else(|| {
                C4cError::UnexpectedResponse("role assignment without BusinessRoleID".into())
            })?,
            user_id: string(&map, "UserID"),
            etag: entity_etag(&map),
        })
    }
}

/// An organisational-unit assignment of an employee.
#[derive(Debug, Clone, PartialEq)]
pub struct OrgUnitAssignment {
    pub object_id: String,
    pub parent_object_id: Option<String>,
    pub org_unit_id: Option<String>,
    pub role_code: Option<String>,
    pub job_id: Option<String>,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    pub etag: Option<ETag>,
}

impl OrgUnitAssignment {
    pub fn from_entity(map: Map<String, Value>) -> Result<Self, C4cError> {
        Ok(Self {
            object_id: object_id(&map)?,
            parent_object_id: string(&map, "ParentObjectID"),
            org_unit_id: string(&map, "OrgUnitID"),
            role_code: string(&map, "RoleCode"),
            job_id: string(&map, "JobID"),
            start_date: map.get("StartDate").and_then(value_as_date),
            end_date: map.get("EndDate").and_then(value_as_date),
            etag: entity_etag(&map),
        })
    }
}

/// What to write in an org-unit assignment.
#[derive(Debug, Clone, Default)]
pub struct NewOrgUnitAssignment {
    pub org_unit_id: String,
    pub role_code: Option<String>,
    pub job_id: Option<String>,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
}

impl NewOrgUnitAssignment {
    pub(crate) fn to_body(&self, parent: &str) -> Value {
        let mut m = Map::new();
        m.insert("ParentObjectID".into(), Value::String(parent.to_string()));
        m.insert("OrgUnitID".into(), Value::String(self.org_unit_id.clone()));
        if let Some(v) = &self.role_code {
            m.insert("RoleCode".into(), Value::String(v.clone()));
        }
        if let Some(v) = &self.job_id {
            m.insert("JobID".into(), Value::String(v.clone()));
        }
        if let Some(d) = self.start_date {
            m.insert("StartDate".into(), date_for_body(d));
        }
        if let Some(d) = self.end_date {
            m.insert("EndDate".into(), date_for_body(d));
        }
        Value::Object(m)
    }
}

/// Properties to write, by C4C name. Typed setters produce the JSON forms C4C accepts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields(pub Map<String, Value>);

impl Fields {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn set(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.0.insert(name.to_string(), value.into());
        self
    }
    /// An `Edm.DateTime` date property (`"2024-01-01T00:00:00"`).
    pub fn set_date(mut self, name: &str, date: NaiveDate) -> Self {
        self.0.insert(name.to_string(), date_for_body(date));
        self
    }
    pub fn insert(&mut self, name: &str, value: Value) {
        self.0.insert(name.to_string(), value);
    }
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Map<String, Value>> for Fields {
    fn from(m: Map<String, Value>) -> Self {
        Self(m)
    }
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Asc,
    Desc,
}

/// A read of `EmployeeCollection`.
#[derive(Debug, Clone, Default)]
pub struct EmployeeQuery {
    pub filter: Option<Filter>,
    pub select: Vec<String>,
    pub expand: Vec<String>,
    pub order_by: Vec<(String, Order)>,
    /// Client-side limit on the total returned (sent as `$top`).
    pub top: Option<u32>,
    pub skip: Option<u32>,
}

impl EmployeeQuery {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn filter(mut self, f: Filter) -> Self {
        self.filter = Some(f);
        self
    }
    pub fn select<S: Into<String>>(mut self, props: impl IntoIterator<Item = S>) -> Self {
        self.select = props.into_iter().map(Into::into).collect();
        self
    }
    pub fn expand<S: Into<String>>(mut self, navs: impl IntoIterator<Item = S>) -> Self {
        self.expand = navs.into_iter().map(Into::into).collect();
        self
    }
    pub fn order_by(mut self, prop: &str, order: Order) -> Self {
        self.order_by.push((prop.to_string(), order));
        self
    }
    pub fn top(mut self, n: u32) -> Self {
        self.top = Some(n);
        self
    }
    pub fn skip(mut self, n: u32) -> Self {
        self.skip = Some(n);
        self
    }
}

/// A business key to find an employee by after an ambiguous create.
#[derive(Debug, Clone, PartialEq)]
pub enum BusinessKey {
    EmployeeId(String),
    /// UserID and Email together (for tenants where C4C assigns EmployeeID).
    UserIdAndEmail {
        user_id: String,
        email: String,
    },
    /// Any filterable property with its value.
    Property {
        name: String,
        value: String,
    },
}

impl BusinessKey {
    pub(crate) fn filter(&self) -> Filter {
        match self {
            Self::EmployeeId(id) => Filter::eq("EmployeeID", id.as_str()),
            Self::UserIdAndEmail { user_id, email } => {
                Filter::eq("UserID", user_id.as_str()).and(Filter::eq("Email", email.as_str()))
            }
            Self::Property { name, value } => Filter::eq(name, value.as_str()),
        }
    }

    /// Exact check on a returned employee (a `*` in a value is a wildcard for C4C's `eq`).
    pub(crate) fn matches(&self, e: &Employee) -> bool {
        let eq = |v: Option<Value>, want: &str| v.as_ref().and_then(Value::as_str) == Some(want);
        match self {
            Self::EmployeeId(id) => e.employee_id.as_deref() == Some(id.as_str()),
            Self::UserIdAndEmail { user_id, email } => {
                e.user_id
                    .as_deref()
                    .is_some_and(|u| u.eq_ignore_ascii_case(user_id))
                    && e.email
                        .as_deref()
                        .is_some_and(|m| m.eq_ignore_ascii_case(email))
            }
            Self::Property { name, value } => eq(e.property(name), value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn employee_keeps_unknown_properties() {
        let v = json!({
            "__metadata": {"uri": "https://h/EmployeeCollection('AB')", "etag": "W/\"datetimeoffset'2024-03-01T10%3A15%3A30.1234560Z'\""},
            "ObjectID": "AB", "EmployeeID": "1283302", "FirstName": "Jane", "LastName": "Doe",
            "UserLockedIndicator": false, "UserValidityEndDate": "/Date(253402214400000)/",
            "EntityLastChangedOn": "/Date(1709288130123)/", "CountryCode": "US", "ZExtField_KUT": "x",
            "BusinessUser": {"__deferred": {"uri": "https://h/x"}}
        });
        let Value::Object(m) = v else { unreachable!() };
        let e = Employee::from_entity(m).unwrap();
        assert_eq!(e.object_id, "AB");
        assert_eq!(e.employee_id.as_deref(), Some("1283302"));
        assert_eq!(e.user_locked, Some(false));
        assert_eq!(e.user_validity_end.unwrap().to_string(), "9999-12-31");
        assert_eq!(
            e.entity_last_changed_on.unwrap().timestamp_millis(),
            1709288130123
        );
        assert!(e.etag.as_ref().unwrap().as_str().contains("%3A"));
        assert_eq!(e.other.get("ZExtField_KUT"), Some(&json!("x")));
        assert!(!e.other.contains_key("BusinessUser"));
        assert!(e.expanded_roles().unwrap().is_empty());
    }

    #[test]
    fn reads_expanded_roles_and_requires_object_id() {
        let v = json!({"ObjectID": "AB", "EmployeeUserBusinessRoleAssignment": {"results": [
            {"ObjectID": "R1", "BusinessRoleID": "SALES_REP", "ParentObjectID": "AB"}]}});
        let Value::Object(m) = v else { unreachable!() };
        let e = Employee::from_entity(m).unwrap();
        let roles = e.expanded_roles().unwrap();
        assert_eq!(roles[0].business_role_id, "SALES_REP");
        assert!(Employee::from_entity(Map::new()).is_err());
    }

    #[test]
    fn business_key_checks_exactly() {
        let Value::Object(m) =
            json!({"ObjectID": "A", "EmployeeID": "E*1", "UserID": "JANE", "Email": "j@x"})
        else {
            unreachable!()
        };
        let e = Employee::from_entity(m).unwrap();
        assert!(BusinessKey::EmployeeId("E*1".into()).matches(&e));
        assert!(!BusinessKey::EmployeeId("E11".into()).matches(&e));
        assert!(
            BusinessKey::UserIdAndEmail {
                user_id: "jane".into(),
                email: "J@X".into()
            }
            .matches(&e)
        );
    }
}
