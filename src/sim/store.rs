//! The simulated tenant's in-memory data and every rule a write must pass.
//!
//! All functions here are synchronous and run under one lock, so a `$batch` changeset can hold the
//! lock for all its parts and roll back by restoring a snapshot (tables hold `Arc`ed records, so a
//! snapshot is cheap).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use http::StatusCode;
use rand::Rng;
use serde_json::{Map, Value};

use super::error::ODataError;
use super::model::{CodeList, LINKED_USER_FIELDS, NavKind, PropDef, SetId, code_list};
use super::values::{Record, Val, c4c_now, from_json, open_end, weak_etag};

pub(crate) type Row = Arc<Record>;

/// A child found inline in a POST body (deep insert): its set and its body.
type DeepInsert = (SetId, Map<String, Value>);

pub(crate) use super::table::Table;

/// Who performs a write (goes into CreatedBy/ChangedBy).
#[derive(Clone, Debug)]
pub(crate) struct Actor {
    pub formatted_name: String,
    pub identity_uuid: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UpdateMode {
    /// PATCH / MERGE: only the sent properties change.
    Merge,
    /// PUT: properties not sent are cleared.
    Replace,
}

#[derive(Clone)]
pub(crate) struct Db {
    tables: Vec<Table>,
    next_employee_id: u64,
    next_partner_id: u64,
    last_stamp: DateTime<Utc>,
    pub business_roles: BTreeSet<String>,
    pub org_units: BTreeSet<String>,
}

/// The fields each set is looked up by on every write (see [`Table`]).
fn indexed_fields(set: SetId) -> &'static [&'static str] {
    match set {
        SetId::Employee => &["EmployeeID", "UserID"],
        SetId::BusinessUser => &["EmployeeID"],
        _ if set.def().prop("ParentObjectID").is_some() => &["ParentObjectID"],
        _ => &[],
    }
}

pub(crate) fn new_object_id() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill(&mut bytes);
    // C4C ObjectIDs of this system start with the system's MAC-like prefix; keep the shape.
    bytes[0] = 0x00;
    bytes[1] = 0x16;
    bytes[2] = 0x3E;
    hex::encode_upper(bytes)
}

/// `00163E03A0701EE288BE9895233EBD27` → `00163E03-A070-1EE2-88BE-9895233EBD27`.
pub(crate) fn uuid_of(object_id: &str) -> String {
    let s = object_id;
    match (
        s.get(0..8),
        s.get(8..12),
        s.get(12..16),
        s.get(16..20),
        s.get(20..32),
    ) {
        (Some(a), Some(b), Some(c), Some(d), Some(e)) => format!("{a}-{b}-{c}-{d}-{e}"),
        _ => s.to_owned(),
    }
}

fn new_guid() -> String {
    uuid::Uuid::new_v4().to_string().to_ascii_uppercase()
}

impl Db {
    pub(crate) fn new(business_roles: BTreeSet<String>, org_units: BTreeSet<String>) -> Self {
        let mut db = Db {
            tables: SetId::ALL
                .iter()
                .map(|set| Table::with_indexes(indexed_fields(*set)))
                .collect(),
            next_employee_id: 8_000_001,
            next_partner_id: 8_000_000_001,
            last_stamp: DateTime::<Utc>::MIN_UTC,
            business_roles,
            org_units,
        };
        for (code, desc) in code_list(CodeList::Country) {
            let mut r = Record::new();
            r.insert("Code", Val::Str((*code).to_owned()));
            r.insert("Description", Val::Str((*desc).to_owned()));
            db.table_mut(SetId::CountryCode)
                .insert((*code).to_owned(), Arc::new(r));
        }
        db
    }

    pub(crate) fn table(&self, set: SetId) -> &Table {
        // `tables` has one entry per SetId by construction.
        &self.tables[set.index()]
    }
    fn table_mut(&mut self, set: SetId) -> &mut Table {
        &mut self.tables[set.index()]
    }

    pub(crate) fn get(&self, set: SetId, key: &str) -> Option<&Row> {
        self.table(set).get(key)
    }

    /// A timestamp at least 1 ms after every earlier one, so that ETags and the `/Date(ms)/`
    /// forms of ChangedOn/EntityLastChangedOn change on every write (delta polling relies on it).
    fn stamp(&mut self) -> DateTime<Utc> {
        let now = c4c_now();
        let min = self.last_stamp + Duration::milliseconds(1);
        let s = if now >= min { now } else { min };
        self.last_stamp = s;
        s
    }

    pub(crate) fn etag_of(rec: &Record) -> Option<String> {
        match rec.get("ETag") {
            Some(Val::Dto(d)) => Some(weak_etag(d)),
            _ => None,
        }
    }

    /// The business user of an employee (by EmployeeID).
    pub(crate) fn business_user_of(&self, employee: &Record) -> Option<&Row> {
        let eid = employee.get("EmployeeID")?;
        self.table(SetId::BusinessUser)
            .find_by("EmployeeID", eid)
            .map(|(_, r)| r)
            .find(|r| r.get("EmployeeID") == Some(eid))
    }

    fn employee_by_employee_id(&self, eid: &Val) -> Option<&Row> {
        self.table(SetId::Employee)
            .find_by("EmployeeID", eid)
            .map(|(_, r)| r)
            .find(|r| r.get("EmployeeID") == Some(eid))
    }

    /// Records reached from `rec` (of `set`) through navigation `nav`.
    pub(crate) fn navigate(&self, set: SetId, rec: &Record, nav: &str) -> Vec<Row> {
        let Some(nav) = set.def().nav(nav) else {
            return vec![];
        };
        match nav.kind {
            NavKind::Children => {
                let Some(id) = rec.get("ObjectID") else {
                    return vec![];
                };
                self.table(nav.target)
                    .find_by("ParentObjectID", id)
                    .map(|(_, c)| c)
                    .filter(|c| c.get("ParentObjectID") == Some(id))
                    .cloned()
                    .collect()
            }
            NavKind::BusinessUserOfEmployee => {
                self.business_user_of(rec).cloned().into_iter().collect()
            }
            NavKind::ParentEmployee => rec
                .get("ParentObjectID")
                .and_then(Val::as_str)
                .and_then(|p| self.get(SetId::Employee, p))
                .cloned()
                .into_iter()
                .collect(),
        }
    }

    /// Creates a record of `set` from a POST body (with deep-inserted children), under every
    /// create rule; `parent` is the employee ObjectID when created through a navigation.
    pub(crate) fn create(
        &mut self,
        set: SetId,
        body: &Value,
        parent: Option<&str>,
        actor: &Actor,
    ) -> Result<String, ODataError> {
        let obj = body
            .as_object()
            .ok_or_else(|| ODataError::bad_request("The request body must be a JSON object"))?;
        let parent_rec = match parent {
            Some(p) => Some(self.get(SetId::Employee, p).cloned().ok_or_else(|| {
                ODataError::not_found(format!(
                    "Resource not found for segment 'EmployeeCollection('{p}')'"
                ))
            })?),
            None => None,
        };
        let stamp = self.stamp();
        let (rec, children) = self.prepare(set, obj, parent_rec.as_deref(), actor, stamp)?;
        // Prepare every deep-inserted child before inserting anything: deep insert is atomic.
        let mut prepared_children = Vec::new();
        let mut roles_seen = BTreeSet::new();
        for (child_set, child_body) in children {
            let (child, grandchildren) =
                self.prepare(child_set, &child_body, Some(&rec), actor, stamp)?;
            if !grandchildren.is_empty() {
                return Err(ODataError::bad_request(
                    "Deep insert is supported one level deep only",
                ));
            }
            if child_set == SetId::RoleAssignment
                && let Some(role) = child.get("BusinessRoleID")
                && !roles_seen.insert(role.clone())
            {
                return Err(ODataError::bad_request(format!(
                    "Business role {} is assigned more than once",
                    role.as_str().unwrap_or_default()
                )));
            }
            prepared_children.push((child_set, child));
        }
        let id = match rec.get(set.def().key_name).and_then(Val::as_str) {
            Some(id) => id.to_owned(),
            None => return Err(ODataError::new(StatusCode::INTERNAL_SERVER_ERROR, "no key")),
        };
        if set == SetId::Employee {
            self.bump_counters(&rec);
        }
        let employee_for_user =
            (set == SetId::Employee && rec.contains_key("UserID")).then(|| rec.clone());
        self.table_mut(set).insert(id.clone(), Arc::new(rec));
        for (child_set, child) in prepared_children {
            if let Some(cid) = child
                .get("ObjectID")
                .and_then(Val::as_str)
                .map(str::to_owned)
            {
                self.table_mut(child_set).insert(cid, Arc::new(child));
            }
        }
        if let Some(emp) = employee_for_user {
            self.create_business_user(&emp, stamp);
        }
        Ok(id)
    }

    fn bump_counters(&mut self, rec: &Record) {
        if let Some(n) = rec
            .get("EmployeeID")
            .and_then(Val::as_str)
            .and_then(|s| s.parse::<u64>().ok())
            && n >= self.next_employee_id
        {
            self.next_employee_id = n + 1;
        }
    }

    fn create_business_user(&mut self, emp: &Record, stamp: DateTime<Utc>) {
        let mut bu = Record::new();
        let id = new_object_id();
        bu.insert("ObjectID", Val::Str(id.clone()));
        for (e, b) in LINKED_USER_FIELDS {
            if let Some(v) = emp.get(e) {
                bu.insert(b, v.clone());
            }
        }
        for (e, b) in [
            ("EmployeeID", "EmployeeID"),
            ("UUID", "EmployeeUUID"),
            ("IdentityUUID", "IdentityUUID"),
            ("BusinessPartnerID", "BusinessPartnerID"),
            (
                "BusinessPartnerFormattedName",
                "BusinessPartnerFormattedName",
            ),
            ("TimeZoneCode", "TimeZoneCode"),
            ("LanguageCode", "LogonLanguageCode"),
            ("CreatedBy", "UserCreatedBy"),
            ("ChangedBy", "UserChangedBy"),
            ("UserCountedIndicator", "UserCountedIndicator"),
        ] {
            if let Some(v) = emp.get(e) {
                bu.insert(b, v.clone());
            }
        }
        bu.insert("UserAccountTypeCode", Val::Str("1".into()));
        bu.insert("PasswordInactiveIndicator", Val::Bool(false));
        bu.insert("PasswordLockedIndicator", Val::Bool(false));
        for p in ["CreatedOn", "UserChangedOn", "EntityLastChangedOn", "ETag"] {
            bu.insert(p, Val::Dto(stamp));
        }
        self.table_mut(SetId::BusinessUser).insert(id, Arc::new(bu));
    }

    /// Builds a new record from a POST body without touching the tables. Returns the record and
    /// the deep-insert children found in the body.
    fn prepare(
        &mut self,
        set: SetId,
        obj: &Map<String, Value>,
        parent: Option<&Record>,
        actor: &Actor,
        stamp: DateTime<Utc>,
    ) -> Result<(Record, Vec<DeepInsert>), ODataError> {
        let def = set.def();
        if !def.creatable {
            return Err(ODataError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("Entity set {} does not support create", def.set_name),
            ));
        }
        let mut rec = Record::new();
        let mut children = Vec::new();
        for (name, value) in obj {
            if name == "__metadata" {
                continue;
            }
            if let Some(nav) = def.nav(name) {
                if nav.kind != NavKind::Children {
                    return Err(ODataError::bad_request(format!(
                        "Deep insert via navigation property {name} is not supported"
                    )));
                }
                let items = value
                    .as_array()
                    .or_else(|| value.get("results").and_then(Value::as_array))
                    .ok_or_else(|| {
                        ODataError::bad_request(format!(
                            "Navigation property {name} expects an array"
                        ))
                    })?;
                for item in items {
                    let child = item.as_object().cloned().ok_or_else(|| {
                        ODataError::bad_request(format!("Entries of {name} must be objects"))
                    })?;
                    children.push((nav.target, child));
                }
                continue;
            }
            let prop = def.prop(name).ok_or_else(|| {
                ODataError::bad_request(format!(
                    "Property {name} is invalid: not found in type {}",
                    def.type_name
                ))
            })?;
            if !prop.creatable {
                // Sending a key that is creatable=false + not nullable is silently dropped [doc].
                if prop.key && !prop.nullable {
                    continue;
                }
                return Err(ODataError::bad_request(format!(
                    "Property {name} is read-only and cannot be set on create"
                )));
            }
            if let Some(v) = from_json(prop, value).map_err(ODataError::bad_request)? {
                self.check_code(prop, &v)?;
                rec.insert(prop.name, v);
            }
        }
        // Children take their parent from the path or from ParentObjectID.
        let parent_owned;
        let parent = match (set, parent) {
            (SetId::RoleAssignment | SetId::OrgAssignment | SetId::SalesResponsibility, None) => {
                let pid = rec
                    .get("ParentObjectID")
                    .and_then(Val::as_str)
                    .ok_or_else(|| {
                        ODataError::bad_request("Property ParentObjectID is mandatory")
                    })?;
                parent_owned = self.get(SetId::Employee, pid).cloned().ok_or_else(|| {
                    ODataError::bad_request(format!("Parent object {pid} does not exist"))
                })?;
                Some(&*parent_owned)
            }
            (_, p) => p,
        };
        if let Some(parent) = parent {
            for (field, parent_field) in
                [("ParentObjectID", "ObjectID"), ("EmployeeID", "EmployeeID")]
            {
                if def.prop(field).is_none() {
                    continue;
                }
                let pv = parent.get(parent_field).cloned();
                if let (Some(sent), Some(pv)) = (rec.get(field), &pv)
                    && sent != pv
                {
                    return Err(ODataError::bad_request(format!(
                        "Property {field} does not match the parent employee"
                    )));
                }
                if let Some(pv) = pv {
                    rec.insert(field, pv);
                }
            }
            if set == SetId::RoleAssignment {
                let parent_user = parent.get("UserID").ok_or_else(|| {
                    ODataError::bad_request(
                        "Business roles can only be assigned to employees with a user",
                    )
                })?;
                match rec.get("UserID").and_then(Val::as_str) {
                    Some(u)
                        if !u.eq_ignore_ascii_case(parent_user.as_str().unwrap_or_default()) =>
                    {
                        return Err(ODataError::bad_request(
                            "Property UserID does not match the user of the parent employee",
                        ));
                    }
                    _ => {
                        rec.insert("UserID", parent_user.clone());
                    }
                }
                let role = rec.get("BusinessRoleID").cloned();
                let pid = parent.get("ObjectID").cloned();
                if role.is_some()
                    && let Some(pid) = pid.as_ref()
                    && self
                        .table(SetId::RoleAssignment)
                        .find_by("ParentObjectID", pid)
                        .any(|(_, r)| {
                            r.get("ParentObjectID") == Some(pid)
                                && r.get("BusinessRoleID") == role.as_ref()
                        })
                {
                    return Err(ODataError::bad_request(format!(
                        "Business role {} is already assigned to user {}",
                        role.as_ref().and_then(Val::as_str).unwrap_or_default(),
                        parent_user.as_str().unwrap_or_default()
                    )));
                }
            }
        }
        for p in def.props.iter().filter(|p| !p.nullable && p.creatable) {
            if !rec.contains_key(p.name) {
                return Err(ODataError::bad_request(format!(
                    "Property {} is mandatory",
                    p.name
                )));
            }
        }
        let object_id = new_object_id();
        if def.key_name == "ObjectID" {
            rec.insert("ObjectID", Val::Str(object_id.clone()));
        }
        if set == SetId::Employee {
            self.complete_employee(&mut rec, &object_id, actor, stamp)?;
        }
        if def.prop("CreatedOn").is_some() {
            rec.insert("CreatedOn", Val::Dto(stamp));
        }
        for p in ["ChangedOn", "EntityLastChangedOn", "ETag"] {
            if def.prop(p).is_some() {
                rec.insert(p, Val::Dto(stamp));
            }
        }
        Ok((rec, children))
    }

    fn complete_employee(
        &mut self,
        rec: &mut Record,
        object_id: &str,
        actor: &Actor,
        stamp: DateTime<Utc>,
    ) -> Result<(), ODataError> {
        match rec.get("EmployeeID").cloned() {
            Some(eid) => {
                if self.employee_by_employee_id(&eid).is_some() {
                    return Err(ODataError::bad_request(format!(
                        "Employee ID {} already exists",
                        eid.as_str().unwrap_or_default()
                    )));
                }
            }
            None => loop {
                let candidate = Val::Str(self.next_employee_id.to_string());
                self.next_employee_id += 1;
                if self.employee_by_employee_id(&candidate).is_none() {
                    rec.insert("EmployeeID", candidate);
                    break;
                }
            },
        }
        if let Some(user) = rec.get("UserID").cloned() {
            self.check_user_id_free(&user, None)?;
            rec.insert("IdentityUUID", Val::Guid(new_guid()));
        }
        rec.insert("UUID", Val::Guid(uuid_of(object_id)));
        rec.insert(
            "BusinessPartnerID",
            Val::Str(self.next_partner_id.to_string()),
        );
        self.next_partner_id += 1;
        refresh_formatted_name(rec);
        let today = stamp
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .map(|n| n.and_utc())
            .unwrap_or(stamp);
        rec.entry("EmployeeValidityStartDate")
            .or_insert(Val::DateTime(today));
        rec.entry("EmployeeValidityEndDate")
            .or_insert(Val::DateTime(open_end()));
        if rec.contains_key("UserID") {
            rec.entry("UserValidityStartDate")
                .or_insert(Val::DateTime(today));
            rec.entry("UserValidityEndDate")
                .or_insert(Val::DateTime(open_end()));
            rec.entry("UserLockedIndicator").or_insert(Val::Bool(false));
        }
        rec.insert(
            "UserCountedIndicator",
            Val::Bool(rec.contains_key("UserID")),
        );
        rec.insert("CreatedBy", Val::Str(actor.formatted_name.clone()));
        rec.insert("ChangedBy", Val::Str(actor.formatted_name.clone()));
        rec.insert(
            "CreatedByIdentityUUID",
            Val::Guid(actor.identity_uuid.clone()),
        );
        rec.insert(
            "ChangedByIdentityUUID",
            Val::Guid(actor.identity_uuid.clone()),
        );
        Ok(())
    }

    fn check_user_id_free(
        &self,
        user: &Val,
        except_employee: Option<&str>,
    ) -> Result<(), ODataError> {
        let wanted = user.as_str().unwrap_or_default();
        let taken = self
            .table(SetId::Employee)
            .find_by("UserID", user)
            .any(|(id, r)| {
                Some(id) != except_employee
                    && r.get("UserID")
                        .and_then(Val::as_str)
                        .is_some_and(|u| u.eq_ignore_ascii_case(wanted))
            });
        if taken {
            return Err(ODataError::bad_request(format!(
                "User ID {wanted} already exists"
            )));
        }
        Ok(())
    }

    fn check_code(&self, prop: &PropDef, v: &Val) -> Result<(), ODataError> {
        let Some(list) = prop.code else { return Ok(()) };
        let Some(code) = v.as_str() else {
            return Ok(());
        };
        let known = match list {
            CodeList::Unchecked => true,
            CodeList::BusinessRole => self.business_roles.contains(code),
            CodeList::OrgUnit => self.org_units.contains(code),
            other => code_list(other).iter().any(|(c, _)| *c == code),
        };
        if known {
            Ok(())
        } else {
            Err(ODataError::bad_request(format!(
                "Value {code} of property {} is not a valid code",
                prop.name
            )))
        }
    }

    pub(crate) fn check_if_match(rec: &Record, if_match: Option<&str>) -> Result<(), ODataError> {
        let Some(wanted) = if_match else {
            return Ok(());
        };
        if wanted.trim() == "*" {
            return Ok(());
        }
        let current = Self::etag_of(rec);
        if current.as_deref() == Some(wanted.trim()) {
            Ok(())
        } else {
            Err(ODataError::new(
                StatusCode::PRECONDITION_FAILED,
                "Entity was changed in the meantime; the ETag value in the If-Match header does not match",
            ))
        }
    }

    pub(crate) fn update(
        &mut self,
        set: SetId,
        key: &str,
        body: &Value,
        mode: UpdateMode,
        if_match: Option<&str>,
        actor: &Actor,
    ) -> Result<(), ODataError> {
        let def = set.def();
        let obj = body
            .as_object()
            .ok_or_else(|| ODataError::bad_request("The request body must be a JSON object"))?;
        let current = self.get(set, key).cloned().ok_or_else(|| {
            ODataError::not_found(format!(
                "Resource not found for segment '{}('{key}')'",
                def.set_name
            ))
        })?;
        if !def.updatable {
            return Err(ODataError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("Entity set {} does not support update", def.set_name),
            ));
        }
        Self::check_if_match(&current, if_match)?;
        let mut rec: Record = (*current).clone();
        let mut sent = BTreeSet::new();
        for (name, value) in obj {
            if name == "__metadata" {
                continue;
            }
            if def.nav(name).is_some() {
                return Err(ODataError::bad_request(format!(
                    "Navigation property {name} cannot be changed by an update"
                )));
            }
            let prop = def.prop(name).ok_or_else(|| {
                ODataError::bad_request(format!(
                    "Property {name} is invalid: not found in type {}",
                    def.type_name
                ))
            })?;
            // ETag and code descriptions are silently ignored on updates [doc].
            if prop.etag || prop.text_of.is_some() {
                continue;
            }
            let parsed = from_json(prop, value).map_err(ODataError::bad_request)?;
            sent.insert(prop.name);
            if !prop.updatable {
                if parsed.as_ref() != current.get(prop.name) {
                    return Err(ODataError::bad_request(format!(
                        "Property {name} cannot be changed; it is not updatable"
                    )));
                }
                continue;
            }
            match parsed {
                Some(v) => {
                    self.check_code(prop, &v)?;
                    rec.insert(prop.name, v);
                }
                None => {
                    if !prop.nullable {
                        return Err(ODataError::bad_request(format!(
                            "Property {name} is mandatory"
                        )));
                    }
                    rec.remove(prop.name);
                }
            }
        }
        if mode == UpdateMode::Replace {
            for p in def
                .props
                .iter()
                .filter(|p| p.updatable && !sent.contains(p.name))
            {
                if !p.nullable {
                    return Err(ODataError::bad_request(format!(
                        "Property {} is mandatory",
                        p.name
                    )));
                }
                rec.remove(p.name);
            }
        }
        if set == SetId::Employee {
            if rec.get("UserID") != current.get("UserID")
                && let Some(u) = rec.get("UserID")
            {
                self.check_user_id_free(u, Some(key))?;
                rec.entry("IdentityUUID")
                    .or_insert_with(|| Val::Guid(new_guid()));
            }
            refresh_formatted_name(&mut rec);
            rec.insert(
                "UserCountedIndicator",
                Val::Bool(rec.contains_key("UserID")),
            );
            rec.insert("ChangedBy", Val::Str(actor.formatted_name.clone()));
            rec.insert(
                "ChangedByIdentityUUID",
                Val::Guid(actor.identity_uuid.clone()),
            );
        }
        if set == SetId::BusinessUser {
            rec.insert("UserChangedBy", Val::Str(actor.formatted_name.clone()));
        }
        let stamp = self.stamp();
        for p in ["ChangedOn", "UserChangedOn", "EntityLastChangedOn", "ETag"] {
            if def.prop(p).is_some() {
                rec.insert(p, Val::Dto(stamp));
            }
        }
        let rec = Arc::new(rec);
        self.table_mut(set).insert(key.to_owned(), rec.clone());
        self.sync_user(set, &rec, actor, stamp);
        Ok(())
    }

    /// Keeps an employee and its business user in step for the fields both carry.
    fn sync_user(&mut self, set: SetId, rec: &Record, actor: &Actor, stamp: DateTime<Utc>) {
        match set {
            SetId::Employee => {
                let Some(bu) = self.business_user_of(rec).cloned() else {
                    if rec.contains_key("UserID") {
                        self.create_business_user(rec, stamp);
                    }
                    return;
                };
                let mut b: Record = (*bu).clone();
                let mut changed = false;
                for (e, bf) in LINKED_USER_FIELDS {
                    if b.get(bf) != rec.get(e) {
                        changed = true;
                        match rec.get(e) {
                            Some(v) => b.insert(bf, v.clone()),
                            None => b.remove(bf),
                        };
                    }
                }
                if let Some(v) = rec.get("BusinessPartnerFormattedName") {
                    b.insert("BusinessPartnerFormattedName", v.clone());
                }
                if changed {
                    b.insert("UserChangedBy", Val::Str(actor.formatted_name.clone()));
                    for p in ["UserChangedOn", "EntityLastChangedOn", "ETag"] {
                        b.insert(p, Val::Dto(stamp));
                    }
                }
                if let Some(id) = b.get("ObjectID").and_then(Val::as_str).map(str::to_owned) {
                    self.table_mut(SetId::BusinessUser).insert(id, Arc::new(b));
                }
            }
            SetId::BusinessUser => {
                let Some(emp) = rec
                    .get("EmployeeID")
                    .and_then(|eid| self.employee_by_employee_id(eid))
                    .cloned()
                else {
                    return;
                };
                let mut e: Record = (*emp).clone();
                for (ef, bf) in LINKED_USER_FIELDS {
                    if ef == "Email" {
                        continue; // EmailURI is read-only on the business user
                    }
                    match rec.get(bf) {
                        Some(v) => e.insert(ef, v.clone()),
                        None => e.remove(ef),
                    };
                }
                for p in ["ChangedOn", "EntityLastChangedOn", "ETag"] {
                    e.insert(p, Val::Dto(stamp));
                }
                e.insert("ChangedBy", Val::Str(actor.formatted_name.clone()));
                if let Some(id) = e.get("ObjectID").and_then(Val::as_str).map(str::to_owned) {
                    self.table_mut(SetId::Employee).insert(id, Arc::new(e));
                }
            }
            _ => {}
        }
    }

    /// Removes an employee with its children and business user, as a tenant administrator's
    /// clean-up would (the API refuses to delete employees). `false` when there is none.
    pub(crate) fn remove_employee(&mut self, object_id: &str) -> bool {
        let Some(employee) = self.table_mut(SetId::Employee).remove(object_id) else {
            return false;
        };
        if let Some(parent) = employee.get("ObjectID") {
            for set in [
                SetId::RoleAssignment,
                SetId::OrgAssignment,
                SetId::SalesResponsibility,
            ] {
                let children: Vec<String> = self
                    .table(set)
                    .find_by("ParentObjectID", parent)
                    .filter(|(_, child)| child.get("ParentObjectID") == Some(parent))
                    .map(|(key, _)| key.to_owned())
                    .collect();
                for key in children {
                    self.table_mut(set).remove(&key);
                }
            }
        }
        if let Some(eid) = employee.get("EmployeeID") {
            let users: Vec<String> = self
                .table(SetId::BusinessUser)
                .find_by("EmployeeID", eid)
                .filter(|(_, user)| user.get("EmployeeID") == Some(eid))
                .map(|(key, _)| key.to_owned())
                .collect();
            for key in users {
                self.table_mut(SetId::BusinessUser).remove(&key);
            }
        }
        true
    }

    pub(crate) fn delete(
        &mut self,
        set: SetId,
        key: &str,
        if_match: Option<&str>,
    ) -> Result<(), ODataError> {
        let def = set.def();
        if !def.deletable {
            return Err(ODataError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "No delete authorization. Please contact your administrator.",
            ));
        }
        let current = self
            .get(set, key)
            .cloned()
            .ok_or_else(|| ODataError::not_found("Delete not possible; object does not exist"))?;
        Self::check_if_match(&current, if_match)?;
        self.table_mut(set).remove(key);
        Ok(())
    }
}

fn refresh_formatted_name(rec: &mut Record) {
    let name = ["FirstName", "MiddleName", "LastName"]
        .iter()
        .filter_map(|p| rec.get(p).and_then(Val::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    rec.insert("BusinessPartnerFormattedName", Val::Str(name));
}

/// Values of `rec` as JSON-friendly pairs (used by handle snapshots).
pub(crate) fn record_to_map(set: SetId, rec: &Record) -> HashMap<String, Value> {
    set.def()
        .props
        .iter()
        .filter_map(|p| rec.get(p.name).map(|v| (p.name.to_owned(), v.to_json())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn actor() -> Actor {
        Actor {
            formatted_name: "SIM TECH USER".into(),
            identity_uuid: new_guid(),
        }
    }

    fn db() -> Db {
        Db::new(
            ["SALES_REP".to_owned(), "SALES_MANAGER".to_owned()].into(),
            ["S3110".to_owned()].into(),
        )
    }

    #[test]
    fn uniqueness_follows_creates_updates_and_removals() {
        let mut db = db();
        let body = |eid: &str, user: &str| json!({"EmployeeID": eid, "UserID": user, "FirstName": "A", "LastName": "B"});
        let first = db
            .create(SetId::Employee, &body("10", "ANN"), None, &actor())
            .unwrap();
        // Same UserID in another case, same EmployeeID: both refused.
        assert!(
            db.create(SetId::Employee, &body("11", "ann"), None, &actor())
                .is_err()
        );
        assert!(
            db.create(SetId::Employee, &body("10", "BEN"), None, &actor())
                .is_err()
        );
        // A renamed user frees the old UserID and takes the new one.
        db.update(
            SetId::Employee,
            &first,
            &json!({"UserID": "ANNA"}),
            UpdateMode::Merge,
            None,
            &actor(),
        )
        .unwrap();
        assert!(
            db.create(SetId::Employee, &body("12", "ann"), None, &actor())
                .is_ok()
        );
        assert!(
            db.create(SetId::Employee, &body("13", "anna"), None, &actor())
                .is_err()
        );
        // A removed employee frees both, and its business user goes with it.
        assert!(db.remove_employee(&first));
        assert!(!db.remove_employee(&first));
        assert!(
            db.create(SetId::Employee, &body("10", "ANNA"), None, &actor())
                .is_ok()
        );
    }

    fn err(r: Result<impl std::fmt::Debug, ODataError>) -> ODataError {
        r.expect_err("expected an error")
    }

    #[test]
    fn create_assigns_ids_and_timestamps() {
        let mut db = db();
        let id = db
            .create(SetId::Employee, &json!({"FirstName":"Jane","LastName":"Doe","UserID":"JANE.DOE","ObjectID":"IGNORED"}), None, &actor())
            .unwrap();
        assert_eq!(id.len(), 32);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
        );
        let rec = db.get(SetId::Employee, &id).unwrap();
        assert_eq!(
            rec.get("UUID").and_then(Val::as_str),
            Some(uuid_of(&id).as_str())
        );
        assert!(rec.get("EmployeeID").is_some());
        assert_eq!(rec.get("CreatedOn"), rec.get("EntityLastChangedOn"));
        assert_eq!(
            rec.get("BusinessPartnerFormattedName"),
            Some(&Val::Str("Jane Doe".into()))
        );
        assert!(db.business_user_of(rec).is_some());
    }

    #[test]
    fn create_validation() {
        let mut db = db();
        let a = actor();
        assert!(
            err(db.create(SetId::Employee, &json!({"LastName":"Doe"}), None, &a))
                .message
                .contains("FirstName is mandatory")
        );
        assert!(
            err(db.create(
                SetId::Employee,
                &json!({"FirstName":"J","LastName":"D","UserName":"x"}),
                None,
                &a
            ))
            .message
            .contains("UserName")
        );
        assert!(
            err(db.create(
                SetId::Employee,
                &json!({"FirstName":"J","LastName":"D","BusinessPartnerID":"1"}),
                None,
                &a
            ))
            .message
            .contains("read-only")
        );
        assert!(
            err(db.create(
                SetId::Employee,
                &json!({"FirstName":"J","LastName":"D","CountryCode":"XX"}),
                None,
                &a
            ))
            .message
            .contains("not a valid code")
        );
        assert!(
            err(db.create(
                SetId::Employee,
                &json!({"FirstName":"J","LastName":"D","Email":"a".repeat(256)}),
                None,
                &a
            ))
            .message
            .contains("255")
        );
        db.create(
            SetId::Employee,
            &json!({"FirstName":"J","LastName":"D","EmployeeID":"E1","UserID":"U1"}),
            None,
            &a,
        )
        .unwrap();
        assert!(
            err(db.create(
                SetId::Employee,
                &json!({"FirstName":"J","LastName":"D","EmployeeID":"E1"}),
                None,
                &a
            ))
            .message
            .contains("already exists")
        );
        assert!(
            err(db.create(
                SetId::Employee,
                &json!({"FirstName":"J","LastName":"D","UserID":"u1"}),
                None,
                &a
            ))
            .message
            .contains("already exists")
        );
        let e = err(db.create(SetId::BusinessUser, &json!({"UserID":"X"}), None, &a));
        assert_eq!(e.status, StatusCode::METHOD_NOT_ALLOWED);
    }

    #[test]
    fn deep_insert_is_atomic() {
        let mut db = db();
        let a = actor();
        let bad = json!({"FirstName":"J","LastName":"D","UserID":"JD",
            "EmployeeUserBusinessRoleAssignment":[{"BusinessRoleID":"SALES_REP"},{"BusinessRoleID":"NOPE"}]});
        assert!(db.create(SetId::Employee, &bad, None, &a).is_err());
        assert!(db.table(SetId::Employee).is_empty());
        assert!(db.table(SetId::RoleAssignment).is_empty());
        let good = json!({"FirstName":"J","LastName":"D","UserID":"JD",
            "EmployeeUserBusinessRoleAssignment":[{"BusinessRoleID":"SALES_REP"}],
            "EmployeeOrganisationalUnitAssignment":{"results":[{"OrgUnitID":"S3110","RoleCode":"219"}]}});
        let id = db.create(SetId::Employee, &good, None, &a).unwrap();
        let emp = db.get(SetId::Employee, &id).unwrap().clone();
        let roles = db.navigate(SetId::Employee, &emp, "EmployeeUserBusinessRoleAssignment");
        assert_eq!(roles.len(), 1);
        assert_eq!(roles[0].get("UserID"), Some(&Val::Str("JD".into())));
        assert_eq!(roles[0].get("EmployeeID"), emp.get("EmployeeID"));
        assert_eq!(
            db.navigate(
                SetId::Employee,
                &emp,
                "EmployeeOrganisationalUnitAssignment"
            )
            .len(),
            1
        );
    }

    #[test]
    fn update_rules() {
        let mut db = db();
        let a = actor();
        let id = db
            .create(
                SetId::Employee,
                &json!({"FirstName":"J","LastName":"D","EmployeeID":"E1","UserID":"JD"}),
                None,
                &a,
            )
            .unwrap();
        let before = db.get(SetId::Employee, &id).unwrap().clone();
        let etag = Db::etag_of(&before).unwrap();
        // Same EmployeeID, ETag and a …Text: accepted.
        db.update(
            SetId::Employee,
            &id,
            &json!({"EmployeeID":"E1","ETag":"x","CountryCodeText":"y","UserLockedIndicator":true}),
            UpdateMode::Merge,
            Some(&etag),
            &a,
        )
        .unwrap();
        let after = db.get(SetId::Employee, &id).unwrap().clone();
        assert!(after.get("ChangedOn") > before.get("ChangedOn"));
        assert_ne!(Db::etag_of(&after), Some(etag.clone()));
        assert_eq!(
            db.business_user_of(&after)
                .unwrap()
                .get("UserLockedIndicator"),
            Some(&Val::Bool(true))
        );
        // Stale ETag.
        let e = err(db.update(
            SetId::Employee,
            &id,
            &json!({"FirstName":"K"}),
            UpdateMode::Merge,
            Some(&etag),
            &a,
        ));
        assert_eq!(e.status, StatusCode::PRECONDITION_FAILED);
        // EmployeeID is immutable.
        assert!(
            err(db.update(
                SetId::Employee,
                &id,
                &json!({"EmployeeID":"E2"}),
                UpdateMode::Merge,
                None,
                &a
            ))
            .message
            .contains("not updatable")
        );
        // PUT without LastName.
        assert!(
            err(db.update(
                SetId::Employee,
                &id,
                &json!({"FirstName":"K"}),
                UpdateMode::Replace,
                None,
                &a
            ))
            .message
            .contains("mandatory")
        );
        // PUT clears what is not sent.
        db.update(
            SetId::Employee,
            &id,
            &json!({"FirstName":"K","LastName":"L","UserID":"JD"}),
            UpdateMode::Replace,
            None,
            &a,
        )
        .unwrap();
        assert!(
            db.get(SetId::Employee, &id)
                .unwrap()
                .get("UserLockedIndicator")
                .is_none()
        );
        assert_eq!(
            err(db.update(
                SetId::Employee,
                "NOPE",
                &json!({}),
                UpdateMode::Merge,
                None,
                &a
            ))
            .status,
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn delete_rules() {
        let mut db = db();
        let a = actor();
        let id = db
            .create(
                SetId::Employee,
                &json!({"FirstName":"J","LastName":"D","UserID":"JD"}),
                None,
                &a,
            )
            .unwrap();
        assert_eq!(
            err(db.delete(SetId::Employee, &id, None)).status,
            StatusCode::METHOD_NOT_ALLOWED
        );
        let rid = db
            .create(
                SetId::RoleAssignment,
                &json!({"ParentObjectID": id, "BusinessRoleID":"SALES_REP"}),
                None,
                &a,
            )
            .unwrap();
        assert!(
            err(db.create(
                SetId::RoleAssignment,
                &json!({"ParentObjectID": id, "BusinessRoleID":"SALES_REP"}),
                None,
                &a
            ))
            .message
            .contains("already assigned")
        );
        assert!(
            err(db.update(
                SetId::RoleAssignment,
                &rid,
                &json!({"BusinessRoleID":"SALES_MANAGER"}),
                UpdateMode::Merge,
                None,
                &a
            ))
            .message
            .contains("not updatable")
        );
        db.delete(SetId::RoleAssignment, &rid, None).unwrap();
        let e = err(db.delete(SetId::RoleAssignment, &rid, None));
        assert_eq!(e.message, "Delete not possible; object does not exist");
    }
}
