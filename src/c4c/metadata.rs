//! `$metadata` (EDMX, OData v2 with SAP annotations) parsed into a small model.

use std::collections::HashMap;

use quick_xml::events::{BytesStart, Event};

use super::error::C4cError;

/// EDM primitive types the client distinguishes (others are kept by name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EdmType {
    String,
    Boolean,
    DateTime,
    DateTimeOffset,
    Time,
    Guid,
    Decimal,
    Int16,
    Int32,
    Int64,
    Double,
    Binary,
    Other(String),
}

impl EdmType {
    fn parse(text: &str) -> Self {
        match text {
            "Edm.String" => Self::String,
            "Edm.Boolean" => Self::Boolean,
            "Edm.DateTime" => Self::DateTime,
            "Edm.DateTimeOffset" => Self::DateTimeOffset,
            "Edm.Time" => Self::Time,
            "Edm.Guid" => Self::Guid,
            "Edm.Decimal" => Self::Decimal,
            "Edm.Int16" | "Edm.Byte" | "Edm.SByte" => Self::Int16,
            "Edm.Int32" => Self::Int32,
            "Edm.Int64" => Self::Int64,
            "Edm.Double" | "Edm.Single" => Self::Double,
            "Edm.Binary" => Self::Binary,
            other => Self::Other(other.to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyModel {
    pub name: String,
    pub edm_type: EdmType,
    pub nullable: bool,
    pub max_length: Option<usize>,
    pub creatable: bool,
    pub updatable: bool,
    pub filterable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NavigationModel {
    pub name: String,
    /// Entity type reached (qualified name, e.g. `c4codataapi.EmployeeUserBusinessRoleAssignment`).
    pub target_type: Option<String>,
    pub many: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EntityTypeModel {
    pub name: String,
    pub namespace: String,
    pub keys: Vec<String>,
    pub properties: Vec<PropertyModel>,
    pub navigations: Vec<NavigationModel>,
}

impl EntityTypeModel {
    pub fn property(&self, name: &str) -> Option<&PropertyModel> {
        self.properties.iter().find(|p| p.name == name)
    }
    pub fn qualified_name(&self) -> String {
        format!("{}.{}", self.namespace, self.name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntitySetModel {
    pub name: String,
    /// Qualified entity type name.
    pub entity_type: String,
    pub creatable: bool,
    pub updatable: bool,
    pub deletable: bool,
}

/// The parsed service model.
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    pub entity_sets: Vec<EntitySetModel>,
    types: HashMap<String, EntityTypeModel>,
}

impl Metadata {
    pub fn entity_set(&self, name: &str) -> Option<&EntitySetModel> {
        self.entity_sets.iter().find(|s| s.name == name)
    }

    /// Entity type by qualified or unqualified name.
    pub fn entity_type(&self, name: &str) -> Option<&EntityTypeModel> {
        self.types
            .get(name)
            .or_else(|| self.types.values().find(|t| t.name == name))
    }

    /// The entity type behind an entity set.
    pub fn entity_type_of_set(&self, set: &str) -> Option<&EntityTypeModel> {
        self.entity_set(set)
            .and_then(|s| self.entity_type(&s.entity_type))
    }

    pub fn entity_types(&self) -> impl Iterator<Item = &EntityTypeModel> {
        self.types.values()
    }

    /// Parses an EDMX document.
    pub fn parse(xml: &[u8]) -> Result<Self, C4cError> {
        Parser::default().run(xml)
    }
}

/// Which write a body is meant for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    Create,
    Update,
}

impl Metadata {
    /// Checks a write body against the entity set's annotations, without a call: unknown
    /// properties, read-only ones, string max lengths, JSON types, and (on create) the
    /// mandatory properties. Follows C4C's rules: `ETag` and `…Text` descriptions are ignored
    /// on updates, a non-creatable key that is not nullable (ObjectID) is ignored on create.
    /// Expanded children (deep insert arrays) are not checked here.
    pub fn check_write(
        &self,
        set: &str,
        body: &serde_json::Map<String, serde_json::Value>,
        kind: WriteKind,
    ) -> Result<(), C4cError> {
        use serde_json::Value;
        let entity = self
            .entity_type_of_set(set)
            .ok_or_else(|| C4cError::InvalidInput(format!("$metadata has no entity set {set}")))?;
        let invalid = |property: &str, message: String| C4cError::Validation {
            status: 400,
            code: "CLIENT_CHECK".into(),
            message,
            property: Some(property.to_string()),
        };
        for (name, value) in body {
            if entity.navigations.iter().any(|n| &n.name == name) && kind == WriteKind::Create {
                continue;
            }
            let Some(prop) = entity.property(name) else {
                return Err(invalid(
                    name,
                    format!("{} has no property {name}", entity.name),
                ));
            };
            let ignored = match kind {
                WriteKind::Create => !prop.creatable && !prop.nullable,
                WriteKind::Update => name == "ETag" || name.ends_with("Text"),
            };
            if ignored {
                continue;
            }
            let allowed = match kind {
                WriteKind::Create => prop.creatable,
                WriteKind::Update => prop.updatable,
            };
            if !allowed {
                return Err(invalid(
                    name,
                    format!("property {name} is read-only ({kind:?})"),
                ));
            }
            match (&prop.edm_type, value) {
                (_, Value::Null) if prop.nullable => {}
                (_, Value::Null) => {
                    return Err(invalid(name, format!("property {name} cannot be null")));
                }
                (EdmType::String, Value::String(text)) => {
                    if let Some(max) = prop.max_length
                        && text.chars().count() > max
                    {
                        return Err(invalid(
                            name,
                            format!("property {name} is longer than {max} characters"),
                        ));
                    }
                }
                (EdmType::Boolean, Value::Bool(_)) => {}
                (
                    EdmType::DateTime | EdmType::DateTimeOffset | EdmType::Time | EdmType::Guid,
                    Value::String(_),
                ) => {}
                (
                    EdmType::Int16 | EdmType::Int32 | EdmType::Int64 | EdmType::Double,
                    Value::Number(_),
                ) => {}
                (EdmType::Decimal, Value::String(_) | Value::Number(_)) => {}
                (EdmType::Other(_) | EdmType::Binary, _) => {}
                (t, v) => return Err(invalid(name, format!("property {name} is {t:?}, got {v}"))),
            }
        }
        if kind == WriteKind::Create {
            for prop in entity
                .properties
                .iter()
                .filter(|p| !p.nullable && p.creatable)
            {
                if !body.contains_key(&prop.name) {
                    return Err(invalid(
                        &prop.name,
                        format!("property {} is mandatory", prop.name),
                    ));
                }
            }
        }
        Ok(())
    }
}

struct Association {
    ends: HashMap<String, (String, bool)>,
}

#[derive(Default)]
struct Parser {
    namespace: String,
    types: HashMap<String, EntityTypeModel>,
    sets: Vec<EntitySetModel>,
    associations: HashMap<String, Association>,
    current_type: Option<EntityTypeModel>,
    current_assoc: Option<(String, Association)>,
    in_key: bool,
    /// (type qualified name, nav name, relationship, to role)
    pending_navs: Vec<(String, String, String, String)>,
}

fn attr(e: &BytesStart<'_>, name: &[u8]) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == name)
        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
}

fn flag(e: &BytesStart<'_>, name: &[u8], default: bool) -> bool {
    match attr(e, name).as_deref() {
        Some("true") => true,
        Some("false") => false,
        _ => default,
    }
}

impl Parser {
    fn run(mut self, xml: &[u8]) -> Result<Metadata, C4cError> {
        let mut reader = quick_xml::Reader::from_reader(xml);
        reader.config_mut().trim_text(true);
        let mut buf = Vec::new();
        let mut saw_edmx = false;
        loop {
            let event = reader
                .read_event_into(&mut buf)
                .map_err(|e| C4cError::UnexpectedResponse(format!("$metadata is not XML: {e}")))?;
            match event {
                Event::Start(e) => {
                    saw_edmx |= e.local_name().as_ref() == b"Edmx";
                    self.open(&e, false);
                }
                Event::Empty(e) => self.open(&e, true),
                Event::End(e) => self.close(e.local_name().as_ref()),
                Event::Eof => break,
                _ => {}
            }
            buf.clear();
        }
        if !saw_edmx {
            return Err(C4cError::UnexpectedResponse(
                "$metadata has no edmx:Edmx root".into(),
            ));
        }
        self.resolve_navigations();
        Ok(Metadata {
            entity_sets: self.sets,
            types: self.types,
        })
    }

    fn open(&mut self, e: &BytesStart<'_>, empty: bool) {
        match e.local_name().as_ref() {
            b"Schema" => self.namespace = attr(e, b"Namespace").unwrap_or_default(),
            b"EntityType" => {
                let model = EntityTypeModel {
                    name: attr(e, b"Name").unwrap_or_default(),
                    namespace: self.namespace.clone(),
                    ..Default::default()
                };
                if empty {
                    self.types.insert(model.qualified_name(), model);
                } else {
                    self.current_type = Some(model);
                }
            }
            b"Key" => self.in_key = !empty,
            b"PropertyRef" if self.in_key => {
                if let (Some(t), Some(name)) = (self.current_type.as_mut(), attr(e, b"Name")) {
                    t.keys.push(name);
                }
            }
            b"Property" => {
                if let Some(t) = self.current_type.as_mut() {
                    t.properties.push(PropertyModel {
                        name: attr(e, b"Name").unwrap_or_default(),
                        edm_type: EdmType::parse(&attr(e, b"Type").unwrap_or_default()),
                        nullable: flag(e, b"Nullable", true),
                        max_length: attr(e, b"MaxLength").and_then(|m| m.parse().ok()),
                        creatable: flag(e, b"sap:creatable", true),
                        updatable: flag(e, b"sap:updatable", true),
                        filterable: flag(e, b"sap:filterable", true),
                    });
                }
            }
            b"NavigationProperty" => {
                if let Some(t) = self.current_type.as_ref() {
                    self.pending_navs.push((
                        t.qualified_name(),
                        attr(e, b"Name").unwrap_or_default(),
                        attr(e, b"Relationship").unwrap_or_default(),
                        attr(e, b"ToRole").unwrap_or_default(),
                    ));
                }
            }
            b"Association" => {
                let name = format!(
                    "{}.{}",
                    self.namespace,
                    attr(e, b"Name").unwrap_or_default()
                );
                if !empty {
                    self.current_assoc = Some((
                        name,
                        Association {
                            ends: HashMap::new(),
                        },
                    ));
                }
            }
            b"End" => {
                if let Some((_, assoc)) = self.current_assoc.as_mut()
                    && let (Some(role), Some(ty)) = (attr(e, b"Role"), attr(e, b"Type"))
                {
                    let many = attr(e, b"Multiplicity").as_deref() == Some("*");
                    assoc.ends.insert(role, (ty, many));
                }
            }
            b"EntitySet" => {
                self.sets.push(EntitySetModel {
                    name: attr(e, b"Name").unwrap_or_default(),
                    entity_type: attr(e, b"EntityType").unwrap_or_default(),
                    creatable: flag(e, b"sap:creatable", true),
                    updatable: flag(e, b"sap:updatable", true),
                    deletable: flag(e, b"sap:deletable", true),
                });
            }
            _ => {}
        }
    }

    fn close(&mut self, name: &[u8]) {
        match name {
            b"EntityType" => {
                if let Some(t) = self.current_type.take() {
                    self.types.insert(t.qualified_name(), t);
                }
            }
            b"Key" => self.in_key = false,
            b"Association" => {
                if let Some((name, assoc)) = self.current_assoc.take() {
                    self.associations.insert(name, assoc);
                }
            }
            _ => {}
        }
    }

    fn resolve_navigations(&mut self) {
        for (type_name, nav, relationship, to_role) in std::mem::take(&mut self.pending_navs) {
            let end = self
                .associations
                .get(&relationship)
                .and_then(|a| a.ends.get(&to_role));
            let model = NavigationModel {
                name: nav,
                target_type: end.map(|(t, _)| t.clone()),
                many: end.map(|(_, many)| *many).unwrap_or(true),
            };
            if let Some(t) = self.types.get_mut(&type_name) {
                t.navigations.push(model);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const SAMPLE: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<edmx:Edmx Version="1.0" xmlns:edmx="http://schemas.microsoft.com/ado/2007/06/edmx" xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata" xmlns:sap="http://www.sap.com/Protocols/SAPData">
 <edmx:DataServices m:DataServiceVersion="2.0">
  <Schema Namespace="c4codataapi" xmlns="http://schemas.microsoft.com/ado/2008/09/edm">
   <EntityType Name="Employee">
    <Key><PropertyRef Name="ObjectID"/></Key>
    <Property Name="ObjectID" Type="Edm.String" Nullable="false" MaxLength="70" sap:creatable="false" sap:updatable="false"/>
    <Property Name="EmployeeID" Type="Edm.String" MaxLength="20" sap:updatable="false"/>
    <Property Name="FirstName" Type="Edm.String" Nullable="false" MaxLength="40"/>
    <Property Name="LastName" Type="Edm.String" Nullable="false" MaxLength="40"/>
    <Property Name="Email" Type="Edm.String" MaxLength="255"/>
    <Property Name="UserID" Type="Edm.String" MaxLength="40"/>
    <Property Name="UserLockedIndicator" Type="Edm.Boolean"/>
    <Property Name="UserValidityEndDate" Type="Edm.DateTime" Precision="0" sap:display-format="Date"/>
    <Property Name="EntityLastChangedOn" Type="Edm.DateTimeOffset" Precision="7" sap:creatable="false" sap:updatable="false"/>
    <Property Name="UUID" Type="Edm.Guid" sap:creatable="false" sap:updatable="false"/>
    <Property Name="ETag" Type="Edm.DateTimeOffset" Precision="7" ConcurrencyMode="Fixed" sap:creatable="false" sap:updatable="false" sap:filterable="false"/>
    <NavigationProperty Name="EmployeeUserBusinessRoleAssignment" Relationship="c4codataapi.Employee_EmployeeUserBusinessRoleAssignment" FromRole="Employee" ToRole="EmployeeUserBusinessRoleAssignment"/>
   </EntityType>
   <EntityType Name="EmployeeUserBusinessRoleAssignment">
    <Key><PropertyRef Name="ObjectID"/></Key>
    <Property Name="ObjectID" Type="Edm.String" Nullable="false" MaxLength="70" sap:creatable="false" sap:updatable="false"/>
    <Property Name="ParentObjectID" Type="Edm.String" MaxLength="70" sap:updatable="false"/>
    <Property Name="BusinessRoleID" Type="Edm.String" Nullable="false" MaxLength="255" sap:updatable="false"/>
   </EntityType>
   <Association Name="Employee_EmployeeUserBusinessRoleAssignment">
    <End Type="c4codataapi.Employee" Multiplicity="1" Role="Employee"/>
    <End Type="c4codataapi.EmployeeUserBusinessRoleAssignment" Multiplicity="*" Role="EmployeeUserBusinessRoleAssignment"/>
   </Association>
   <EntityContainer Name="c4codataapi" m:IsDefaultEntityContainer="true">
    <EntitySet Name="EmployeeCollection" EntityType="c4codataapi.Employee" sap:creatable="true" sap:updatable="true" sap:deletable="false"/>
    <EntitySet Name="EmployeeUserBusinessRoleAssignmentCollection" EntityType="c4codataapi.EmployeeUserBusinessRoleAssignment" sap:deletable="true"/>
   </EntityContainer>
  </Schema>
 </edmx:DataServices>
</edmx:Edmx>"#;

    #[test]
    fn parses_sets_types_and_flags() {
        let md = Metadata::parse(SAMPLE.as_bytes()).unwrap();
        let set = md.entity_set("EmployeeCollection").unwrap();
        assert!(!set.deletable && set.creatable);
        let t = md.entity_type_of_set("EmployeeCollection").unwrap();
        assert_eq!(t.keys, vec!["ObjectID"]);
        let etag = t.property("ETag").unwrap();
        assert!(!etag.filterable);
        assert_eq!(etag.edm_type, EdmType::DateTimeOffset);
        let email = t.property("Email").unwrap();
        assert_eq!(email.max_length, Some(255));
        assert!(email.filterable && email.creatable && email.updatable && email.nullable);
        let first = t.property("FirstName").unwrap();
        assert!(!first.nullable);
        let id = t.property("EmployeeID").unwrap();
        assert!(id.creatable && !id.updatable);
        assert_eq!(
            t.property("UserValidityEndDate").unwrap().edm_type,
            EdmType::DateTime
        );
        let nav = &t.navigations[0];
        assert_eq!(nav.name, "EmployeeUserBusinessRoleAssignment");
        assert!(nav.many);
        assert_eq!(
            nav.target_type.as_deref(),
            Some("c4codataapi.EmployeeUserBusinessRoleAssignment")
        );
        assert!(
            md.entity_type("EmployeeUserBusinessRoleAssignment")
                .is_some()
        );
    }

    #[test]
    fn checks_writes_against_annotations() {
        let md = Metadata::parse(SAMPLE.as_bytes()).unwrap();
        let body = |v: serde_json::Value| v.as_object().cloned().unwrap();
        let ok = body(
            serde_json::json!({"ObjectID": "X", "FirstName": "Jane", "LastName": "Doe", "EmployeeID": "1",
            "UserLockedIndicator": false, "UserValidityEndDate": "9999-12-31T00:00:00", "EmployeeUserBusinessRoleAssignment": []}),
        );
        md.check_write("EmployeeCollection", &ok, WriteKind::Create)
            .unwrap();
        let property = |r: Result<(), C4cError>| match r {
            Err(C4cError::Validation { property, .. }) => property.unwrap(),
            other => panic!("unexpected {other:?}"),
        };
        let missing = body(serde_json::json!({"FirstName": "Jane"}));
        assert_eq!(
            property(md.check_write("EmployeeCollection", &missing, WriteKind::Create)),
            "LastName"
        );
        let long = body(serde_json::json!({"Email": "x".repeat(256)}));
        assert_eq!(
            property(md.check_write("EmployeeCollection", &long, WriteKind::Update)),
            "Email"
        );
        let fixed = body(serde_json::json!({"EmployeeID": "2"}));
        assert_eq!(
            property(md.check_write("EmployeeCollection", &fixed, WriteKind::Update)),
            "EmployeeID"
        );
        let typed = body(serde_json::json!({"UserLockedIndicator": "yes"}));
        assert_eq!(
            property(md.check_write("EmployeeCollection", &typed, WriteKind::Update)),
            "UserLockedIndicator"
        );
        let unknown = body(serde_json::json!({"UserName": "x"}));
        assert_eq!(
            property(md.check_write("EmployeeCollection", &unknown, WriteKind::Update)),
            "UserName"
        );
        let etag = body(serde_json::json!({"ETag": "x", "FirstName": "J"}));
        md.check_write("EmployeeCollection", &etag, WriteKind::Update)
            .unwrap();
    }

    #[test]
    fn refuses_non_edmx() {
        assert!(Metadata::parse(b"<html><body>login</body></html>").is_err());
        assert!(Metadata::parse(b"{\"d\":1}").is_err());
    }
}
