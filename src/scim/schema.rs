//! Attribute definitions of User (core + enterprise extension) and Group (RFC 7643 §4, §8.7).
//!
//! These tables are the single source of truth: validation, PATCH, filter evaluation,
//! projection and the discovery documents (`/Schemas`, `/ResourceTypes`,
//! `/ServiceProviderConfig`) all read them.

use super::filter::AttrPath;
use serde_json::{Map, Value, json};

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
pub const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
pub const SERVICE_PROVIDER_CONFIG_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";

/// RFC 7643 §2.3 data types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

impl AttrType {
    pub fn as_str(self) -> &'static str {
        match self {
            AttrType::String => "string",
            AttrType::Boolean => "boolean",
            AttrType::Decimal => "decimal",
            AttrType::Integer => "integer",
            AttrType::DateTime => "dateTime",
            AttrType::Binary => "binary",
            AttrType::Reference => "reference",
            AttrType::Complex => "complex",
        }
    }
}

/// RFC 7643 §7 `mutability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

impl Mutability {
    pub fn as_str(self) -> &'static str {
        match self {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
            Mutability::Immutable => "immutable",
            Mutability::WriteOnly => "writeOnly",
        }
    }
}

/// RFC 7643 §7 `returned`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    Always,
    Never,
    Default,
    Request,
}

impl Returned {
    pub fn as_str(self) -> &'static str {
        match self {
            Returned::Always => "always",
            Returned::Never => "never",
            Returned::Default => "default",
            Returned::Request => "request",
        }
    }
}

/// RFC 7643 §7 `uniqueness`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uniqueness {
    None,
    Server,
    Global,
}

impl Uniqueness {
    pub fn as_str(self) -> &'static str {
        match self {
            Uniqueness::None => "none",
            Uniqueness::Server => "server",
            Uniqueness::Global => "global",
        }
    }
}

/// One attribute (or sub-attribute) definition.
#[derive(Debug, Clone, Copy)]
pub struct AttributeDef {
    pub name: &'static str,
    pub ty: AttrType,
    pub multi_valued: bool,
    pub description: &'static str,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub uniqueness: Uniqueness,
    pub canonical_values: &'static [&'static str],
    pub reference_types: &'static [&'static str],
    pub sub_attributes: &'static [AttributeDef],
}

impl AttributeDef {
    const fn new(name: &'static str, ty: AttrType, description: &'static str) -> Self {
        Self {
            name,
            ty,
            multi_valued: false,
            description,
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: Uniqueness::None,
            canonical_values: &[],
            reference_types: &[],
            sub_attributes: &[],
        }
    }
    const fn multi(mut self) -> Self {
        self.multi_valued = true;
        self
    }
    const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    const fn case_exact(mut self) -> Self {
        self.case_exact = true;
        self
    }
    const fn mutability(mut self, m: Mutability) -> Self {
        self.mutability = m;
        self
    }
    const fn returned(mut self, r: Returned) -> Self {
        self.returned = r;
        self
    }
    const fn unique(mut self, u: Uniqueness) -> Self {
        self.uniqueness = u;
        self
    }
    const fn canonical(mut self, values: &'static [&'static str]) -> Self {
        self.canonical_values = values;
        self
    }
    const fn refs(mut self, types: &'static [&'static str]) -> Self {
        self.reference_types = types;
        self
    }
    const fn subs(mut self, subs: &'static [AttributeDef]) -> Self {
        self.sub_attributes = subs;
        self
    }

    /// A sub-attribute by name, case-insensitively.
    pub fn sub(&self, name: &str) -> Option<&'static AttributeDef> {
        self.sub_attributes
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(name))
    }

    /// True for a multi-valued complex attribute whose elements carry `primary`.
    pub fn has_primary(&self) -> bool {
        self.multi_valued && self.sub("primary").is_some()
    }

    /// The RFC 7643 §7 JSON of this attribute definition.
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("name".into(), json!(self.name));
        o.insert("type".into(), json!(self.ty.as_str()));
        o.insert("multiValued".into(), json!(self.multi_valued));
        o.insert("description".into(), json!(self.description));
        o.insert("required".into(), json!(self.required));
        if self.ty != AttrType::Complex {
            o.insert("caseExact".into(), json!(self.case_exact));
        }
        if !self.canonical_values.is_empty() {
            o.insert("canonicalValues".into(), json!(self.canonical_values));
        }
        if self.ty == AttrType::Reference {
            o.insert("referenceTypes".into(), json!(self.reference_types));
        }
        o.insert("mutability".into(), json!(self.mutability.as_str()));
        o.insert("returned".into(), json!(self.returned.as_str()));
        if self.ty != AttrType::Complex {
            o.insert("uniqueness".into(), json!(self.uniqueness.as_str()));
        }
        if self.ty == AttrType::Complex {
            let subs: Vec<Value> = self.sub_attributes.iter().map(|s| s.to_json()).collect();
            o.insert("subAttributes".into(), Value::Array(subs));
        }
        Value::Object(o)
    }
}

use AttrType as T;
use Mutability as M;
use Returned as R;

const fn s(name: &'static str, d: &'static str) -> AttributeDef {
    AttributeDef::new(name, T::String, d)
}

const TYPE_WORK_HOME_OTHER: &[&str] = &["work", "home", "other"];

const fn multi_subs(value_ty: AttrType, types: &'static [&'static str]) -> [AttributeDef; 4] {
    [
        AttributeDef::new("value", value_ty, "The attribute's significant value."),
        s(
            "display",
            "A human-readable name, primarily used for display purposes.",
        ),
        s("type", "A label indicating the attribute's function.").canonical(types),
        AttributeDef::new(
            "primary",
            T::Boolean,
            "Indicates the 'primary' or preferred attribute value; at most one value is primary.",
        ),
    ]
}

const EMAIL_SUBS: [AttributeDef; 4] = multi_subs(T::String, TYPE_WORK_HOME_OTHER);
const PHONE_SUBS: [AttributeDef; 4] = multi_subs(
    T::String,
    &["work", "home", "mobile", "fax", "pager", "other"],
);
const IM_SUBS: [AttributeDef; 4] = multi_subs(
    T::String,
    &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"],
);
const PHOTO_SUBS: [AttributeDef; 4] = [
    AttributeDef::new("value", T::Reference, "URL of a photo of the user.")
        .case_exact()
        .refs(&["external"]),
    s(
        "display",
        "A human-readable name, primarily used for display purposes.",
    ),
    s("type", "A label indicating the attribute's function.").canonical(&["photo", "thumbnail"]),
    AttributeDef::new("primary", T::Boolean, "Indicates the primary photo."),
];
const ENTITLEMENT_SUBS: [AttributeDef; 4] = multi_subs(T::String, &[]);
const ROLE_SUBS: [AttributeDef; 4] = multi_subs(T::String, &[]);
const X509_SUBS: [AttributeDef; 4] = multi_subs(T::Binary, &[]);

const NAME_SUBS: [AttributeDef; 6] = [
    s("formatted", "The full name, formatted for display."),
    s("familyName", "The family name of the User."),
    s("givenName", "The given name of the User."),
    s("middleName", "The middle name(s) of the User."),
    s("honorificPrefix", "The honorific prefix(es) of the User."),
    s("honorificSuffix", "The honorific suffix(es) of the User."),
];

const ADDRESS_SUBS: [AttributeDef; 8] = [
    s(
        "formatted",
        "The full mailing address, formatted for display.",
    ),
    s("streetAddress", "The full street address component."),
    s("locality", "The city or locality component."),
    s("region", "The state or region component."),
    s("postalCode", "The zip code or postal code component."),
    s(
        "country",
        "The country name component (ISO 3166-1 alpha-2).",
    ),
    s("type", "A label indicating the attribute's function.").canonical(TYPE_WORK_HOME_OTHER),
    AttributeDef::new("primary", T::Boolean, "Indicates the primary address."),
];

const GROUP_REF_SUBS: [AttributeDef; 4] = [
    s("value", "The identifier of the User's group.").mutability(M::ReadOnly),
    AttributeDef::new(
        "$ref",
        T::Reference,
        "The URI of the corresponding Group resource.",
    )
    .refs(&["User", "Group"])
    .mutability(M::ReadOnly),
    s("display", "A human-readable name.").mutability(M::ReadOnly),
    s("type", "How the membership was derived.")
        .canonical(&["direct", "indirect"])
        .mutability(M::ReadOnly),
];

const USER_ATTRS: [AttributeDef; 21] = [
    s(
        "userName",
        "Unique identifier for the User, used to authenticate.",
    )
    .required()
    .unique(Uniqueness::Server),
    AttributeDef::new(
        "name",
        T::Complex,
        "The components of the user's real name.",
    )
    .subs(&NAME_SUBS),
    s(
        "displayName",
        "The name of the User, suitable for display to end-users.",
    ),
    s("nickName", "The casual way to address the user."),
    AttributeDef::new(
        "profileUrl",
        T::Reference,
        "A fully qualified URL of the User's profile.",
    )
    .refs(&["external"]),
    s("title", "The user's title, such as 'Vice President'."),
    s(
        "userType",
        "The relationship between the organization and the user.",
    ),
    s(
        "preferredLanguage",
        "The User's preferred written or spoken language.",
    ),
    s("locale", "The User's default location for localization."),
    s(
        "timezone",
        "The User's time zone in the Olson time zone database format.",
    ),
    AttributeDef::new("active", T::Boolean, "The User's administrative status."),
    s(
        "password",
        "The User's cleartext password (accepted, never stored or returned).",
    )
    .mutability(M::WriteOnly)
    .returned(R::Never),
    AttributeDef::new("emails", T::Complex, "Email addresses for the user.")
        .multi()
        .subs(&EMAIL_SUBS),
    AttributeDef::new("phoneNumbers", T::Complex, "Phone numbers for the User.")
        .multi()
        .subs(&PHONE_SUBS),
    AttributeDef::new(
        "ims",
        T::Complex,
        "Instant messaging addresses for the User.",
    )
    .multi()
    .subs(&IM_SUBS),
    AttributeDef::new("photos", T::Complex, "URLs of photos of the User.")
        .multi()
        .subs(&PHOTO_SUBS),
    AttributeDef::new(
        "addresses",
        T::Complex,
        "A physical mailing address for this User.",
    )
    .multi()
    .subs(&ADDRESS_SUBS),
    AttributeDef::new("groups", T::Complex, "Groups to which the user belongs.")
        .multi()
        .mutability(M::ReadOnly)
        .subs(&GROUP_REF_SUBS),
    AttributeDef::new("entitlements", T::Complex, "Entitlements for the User.")
        .multi()
        .subs(&ENTITLEMENT_SUBS),
    AttributeDef::new("roles", T::Complex, "Roles for the User.")
        .multi()
        .subs(&ROLE_SUBS),
    AttributeDef::new(
        "x509Certificates",
        T::Complex,
        "DER-encoded X.509 certificates.",
    )
    .multi()
    .subs(&X509_SUBS),
];

const MANAGER_SUBS: [AttributeDef; 3] = [
    s(
        "value",
        "The id of the SCIM resource representing the User's manager.",
    ),
    AttributeDef::new(
        "$ref",
        T::Reference,
        "The URI of the manager's User resource.",
    )
    .refs(&["User"]),
    s("displayName", "The displayName of the User's manager.").mutability(M::ReadOnly),
];

const ENTERPRISE_ATTRS: [AttributeDef; 6] = [
    s(
        "employeeNumber",
        "Numeric or alphanumeric identifier assigned to a person.",
    ),
    s("costCenter", "Identifies the name of a cost center."),
    s("organization", "Identifies the name of an organization."),
    s("division", "Identifies the name of a division."),
    s("department", "Identifies the name of a department."),
    AttributeDef::new("manager", T::Complex, "The User's manager.").subs(&MANAGER_SUBS),
];

const MEMBER_SUBS: [AttributeDef; 4] = [
    s("value", "Identifier of the member of this Group.")
        .case_exact()
        .mutability(M::Immutable),
    AttributeDef::new("$ref", T::Reference, "The URI of the member resource.")
        .refs(&["User", "Group"])
        .mutability(M::Immutable),
    // Not in RFC 7643 §8.7.1, but Okta sends it and RFC 7643 §4.2 mentions it.
    s("display", "A human-readable name of the member.").mutability(M::Immutable),
    s("type", "The type of the member.")
        .canonical(&["User", "Group"])
        .mutability(M::Immutable),
];

const GROUP_ATTRS: [AttributeDef; 2] = [
    s("displayName", "A human-readable name for the Group.")
        .required()
        .unique(Uniqueness::Server),
    AttributeDef::new("members", T::Complex, "A list of members of the Group.")
        .multi()
        .subs(&MEMBER_SUBS),
];

const META_SUBS: [AttributeDef; 5] = [
    s(
        "resourceType",
        "The name of the resource type of the resource.",
    )
    .case_exact()
    .mutability(M::ReadOnly),
    AttributeDef::new("created", T::DateTime, "When the resource was added.")
        .mutability(M::ReadOnly),
    AttributeDef::new(
        "lastModified",
        T::DateTime,
        "When the resource was last modified.",
    )
    .mutability(M::ReadOnly),
    AttributeDef::new("location", T::Reference, "The URI of the resource.")
        .case_exact()
        .refs(&["uri"])
        .mutability(M::ReadOnly),
    s("version", "The version (weak ETag) of the resource.")
        .case_exact()
        .mutability(M::ReadOnly),
];

/// `id`, `externalId` and `meta` (RFC 7643 §3.1), shared by every resource type.
pub const COMMON_ATTRIBUTES: [AttributeDef; 3] = [
    s(
        "id",
        "Unique, stable, server-assigned identifier of the resource.",
    )
    .case_exact()
    .mutability(M::ReadOnly)
    .returned(R::Always)
    .unique(Uniqueness::Server),
    s(
        "externalId",
        "Identifier of the resource as defined by the provisioning client.",
    )
    .case_exact(),
    AttributeDef::new("meta", T::Complex, "Resource metadata.")
        .mutability(M::ReadOnly)
        .subs(&META_SUBS),
];

/// A schema: its URN and its attributes.
#[derive(Debug)]
pub struct SchemaDef {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub attributes: &'static [AttributeDef],
}

impl SchemaDef {
    /// An attribute by name, case-insensitively.
    pub fn attr(&self, name: &str) -> Option<&'static AttributeDef> {
        self.attributes
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(name))
    }

    /// The RFC 7643 §7 representation, with `meta.location` under `base_url`.
    pub fn to_json(&self, base_url: &str) -> Value {
        json!({
            "schemas": [SCHEMA_SCHEMA],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": self.attributes.iter().map(AttributeDef::to_json).collect::<Vec<_>>(),
            "meta": {
                "resourceType": "Schema",
                "location": format!("{}/Schemas/{}", base_url.trim_end_matches('/'), self.id),
            }
        })
    }
}

pub static USER: SchemaDef = SchemaDef {
    id: USER_SCHEMA,
    name: "User",
    description: "User Account",
    attributes: &USER_ATTRS,
};

pub static ENTERPRISE_USER: SchemaDef = SchemaDef {
    id: ENTERPRISE_USER_SCHEMA,
    name: "EnterpriseUser",
    description: "Enterprise User",
    attributes: &ENTERPRISE_ATTRS,
};

pub static GROUP: SchemaDef = SchemaDef {
    id: GROUP_SCHEMA,
    name: "Group",
    description: "Group",
    attributes: &GROUP_ATTRS,
};

/// A schema extension of a resource type.
#[derive(Debug)]
pub struct ExtensionDef {
    pub schema: &'static SchemaDef,
    pub required: bool,
}

/// A resource type (RFC 7643 §6).
#[derive(Debug)]
pub struct ResourceTypeDef {
    pub id: &'static str,
    pub name: &'static str,
    pub endpoint: &'static str,
    pub description: &'static str,
    pub schema: &'static SchemaDef,
    pub extensions: &'static [ExtensionDef],
}

pub static USER_RESOURCE: ResourceTypeDef = ResourceTypeDef {
    id: "User",
    name: "User",
    endpoint: "/Users",
    description: "User Account",
    schema: &USER,
    extensions: &[ExtensionDef {
        schema: &ENTERPRISE_USER,
        required: false,
    }],
};

pub static GROUP_RESOURCE: ResourceTypeDef = ResourceTypeDef {
    id: "Group",
    name: "Group",
    endpoint: "/Groups",
    description: "Group",
    schema: &GROUP,
    extensions: &[],
};

/// Every resource type we serve.
pub static RESOURCE_TYPES: [&ResourceTypeDef; 2] = [&USER_RESOURCE, &GROUP_RESOURCE];

/// Every schema we publish.
pub static SCHEMAS: [&SchemaDef; 3] = [&USER, &ENTERPRISE_USER, &GROUP];

/// Where a resolved attribute lives in the resource JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// Top level (core schema or common attribute).
    Core,
    /// Inside the object keyed by this extension URN.
    Extension(&'static str),
}

/// An attribute path resolved against a resource type, with canonical names.
#[derive(Debug, Clone, Copy)]
pub struct Resolved {
    pub container: Container,
    pub attr: &'static AttributeDef,
    pub sub: Option<&'static AttributeDef>,
}

/// What a path names: an attribute, or a whole extension object.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    Attr(Resolved),
    Extension(&'static SchemaDef),
}

impl ResourceTypeDef {
    /// A schema of this resource type (core or extension) by URN, case-insensitively.
    pub fn schema_by_urn(&self, urn: &str) -> Option<&'static SchemaDef> {
        if self.schema.id.eq_ignore_ascii_case(urn) {
            return Some(self.schema);
        }
        self.extension_by_urn(urn)
    }

    /// An extension schema by URN, case-insensitively.
    pub fn extension_by_urn(&self, urn: &str) -> Option<&'static SchemaDef> {
        self.extensions
            .iter()
            .find(|e| e.schema.id.eq_ignore_ascii_case(urn))
            .map(|e| e.schema)
    }

    /// A top-level attribute of the core schema or a common attribute.
    pub fn core_attr(&self, name: &str) -> Option<&'static AttributeDef> {
        self.schema.attr(name).or_else(|| {
            COMMON_ATTRIBUTES
                .iter()
                .find(|d| d.name.eq_ignore_ascii_case(name))
        })
    }

    /// Resolves a path (URN prefix optional, names case-insensitive). A path without URN is
    /// looked up in the core schema first and then in the extensions (Entra filters on
    /// `manager` without the enterprise URN).
    pub fn resolve(&self, path: &AttrPath) -> Option<Target> {
        if let Some(uri) = &path.uri {
            // `urn:…:enterprise:2.0:User` parses as uri `urn:…:2.0` + name `User`.
            if path.sub_attr.is_none()
                && let Some(ext) = self.extension_by_urn(&format!("{uri}:{}", path.name))
            {
                return Some(Target::Extension(ext));
            }
            let schema = self.schema_by_urn(uri)?;
            let (container, attr) = if std::ptr::eq(schema, self.schema) {
                (Container::Core, self.core_attr(&path.name)?)
            } else {
                (Container::Extension(schema.id), schema.attr(&path.name)?)
            };
            return with_sub(container, attr, path.sub_attr.as_deref()).map(Target::Attr);
        }
        if let Some(attr) = self.core_attr(&path.name) {
            return with_sub(Container::Core, attr, path.sub_attr.as_deref()).map(Target::Attr);
        }
        for ext in self.extensions {
            if let Some(attr) = ext.schema.attr(&path.name) {
                return with_sub(
                    Container::Extension(ext.schema.id),
                    attr,
                    path.sub_attr.as_deref(),
                )
                .map(Target::Attr);
            }
        }
        None
    }

    /// Like [`resolve`](Self::resolve) but only attributes (not whole extensions).
    pub fn resolve_attr(&self, path: &AttrPath) -> Option<Resolved> {
        match self.resolve(path)? {
            Target::Attr(r) => Some(r),
            Target::Extension(_) => None,
        }
    }

    /// The RFC 7643 §6 representation, with `meta.location` under `base_url`.
    pub fn to_json(&self, base_url: &str) -> Value {
        let exts: Vec<Value> = self
            .extensions
            .iter()
            .map(|e| json!({"schema": e.schema.id, "required": e.required}))
            .collect();
        json!({
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": self.id,
            "name": self.name,
            "endpoint": self.endpoint,
            "description": self.description,
            "schema": self.schema.id,
            "schemaExtensions": exts,
            "meta": {
                "resourceType": "ResourceType",
                "location": format!("{}/ResourceTypes/{}", base_url.trim_end_matches('/'), self.id),
            }
        })
    }

    /// The URNs a resource of this type carries in `schemas`, given its JSON.
    pub fn schemas_for(&self, resource: &Map<String, Value>) -> Vec<Value> {
        let mut out = vec![Value::String(self.schema.id.into())];
        for ext in self.extensions {
            if resource.contains_key(ext.schema.id) {
                out.push(Value::String(ext.schema.id.into()));
            }
        }
        out
    }
}

fn with_sub(
    container: Container,
    attr: &'static AttributeDef,
    sub: Option<&str>,
) -> Option<Resolved> {
    let sub = match sub {
        Some(name) => Some(attr.sub(name)?),
        None => None,
    };
    Some(Resolved {
        container,
        attr,
        sub,
    })
}

/// A resource type by its name (`User`, `Group`), case-insensitively.
pub fn resource_type(name: &str) -> Option<&'static ResourceTypeDef> {
    RESOURCE_TYPES
        .iter()
        .copied()
        .find(|r| r.id.eq_ignore_ascii_case(name))
}

/// A published schema by URN, case-insensitively.
pub fn schema(urn: &str) -> Option<&'static SchemaDef> {
    SCHEMAS
        .iter()
        .copied()
        .find(|s| s.id.eq_ignore_ascii_case(urn))
}

/// Bulk limits advertised in `/ServiceProviderConfig`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkLimits {
    pub max_operations: usize,
    pub max_payload_size: usize,
}

/// An authentication scheme advertised in `/ServiceProviderConfig` (RFC 7643 §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthScheme {
    /// `oauthbearertoken`, `httpbasic`, …
    pub kind: String,
    pub name: String,
    pub description: String,
    pub spec_uri: Option<String>,
    pub documentation_uri: Option<String>,
    pub primary: bool,
}

impl AuthScheme {
    /// The static bearer-token scheme IdPs use against us.
    pub fn bearer_token(primary: bool) -> Self {
        Self {
            kind: "oauthbearertoken".into(),
            name: "OAuth Bearer Token".into(),
            description: "Authentication with a bearer token in the Authorization header".into(),
            spec_uri: Some("https://www.rfc-editor.org/info/rfc6750".into()),
            documentation_uri: None,
            primary,
        }
    }

    /// HTTP Basic.
    pub fn http_basic(primary: bool) -> Self {
        Self {
            kind: "httpbasic".into(),
            name: "HTTP Basic".into(),
            description: "Authentication with HTTP Basic".into(),
            spec_uri: Some("https://www.rfc-editor.org/info/rfc7617".into()),
            documentation_uri: None,
            primary,
        }
    }
}

/// What the server really supports; the HTTP layer fills it from its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    pub documentation_uri: Option<String>,
    pub patch: bool,
    /// `None` = bulk not supported.
    pub bulk: Option<BulkLimits>,
    /// `None` = filtering not supported; otherwise `filter.maxResults`.
    pub filter_max_results: Option<usize>,
    pub change_password: bool,
    pub sort: bool,
    pub etag: bool,
    pub auth_schemes: Vec<AuthScheme>,
}

/// The `/ServiceProviderConfig` document (RFC 7643 §5).
pub fn service_provider_config(caps: &Capabilities, base_url: &str) -> Value {
    let schemes: Vec<Value> = caps
        .auth_schemes
        .iter()
        .map(|a| {
            let mut o = json!({
                "type": a.kind,
                "name": a.name,
                "description": a.description,
                "primary": a.primary,
            });
            if let Some(map) = o.as_object_mut() {
                if let Some(u) = &a.spec_uri {
                    map.insert("specUri".into(), json!(u));
                }
                if let Some(u) = &a.documentation_uri {
                    map.insert("documentationUri".into(), json!(u));
                }
            }
            o
        })
        .collect();
    let mut doc = json!({
        "schemas": [SERVICE_PROVIDER_CONFIG_SCHEMA],
        "patch": {"supported": caps.patch},
        "bulk": match caps.bulk {
            Some(b) => json!({"supported": true, "maxOperations": b.max_operations, "maxPayloadSize": b.max_payload_size}),
            None => json!({"supported": false, "maxOperations": 0, "maxPayloadSize": 0}),
        },
        "filter": match caps.filter_max_results {
            Some(n) => json!({"supported": true, "maxResults": n}),
            None => json!({"supported": false, "maxResults": 0}),
        },
        "changePassword": {"supported": caps.change_password},
        "sort": {"supported": caps.sort},
        "etag": {"supported": caps.etag},
        "authenticationSchemes": schemes,
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{}/ServiceProviderConfig", base_url.trim_end_matches('/')),
        }
    });
    if let (Some(uri), Some(map)) = (&caps.documentation_uri, doc.as_object_mut()) {
        map.insert("documentationUri".into(), json!(uri));
    }
    doc
}

/// `/Schemas` as a ListResponse.
pub fn schemas_list(base_url: &str) -> Value {
    let all: Vec<Value> = SCHEMAS.iter().map(|s| s.to_json(base_url)).collect();
    super::list::ListResponse::complete(all).to_json()
}

/// `/ResourceTypes` as a ListResponse.
pub fn resource_types_list(base_url: &str) -> Value {
    let all: Vec<Value> = RESOURCE_TYPES.iter().map(|r| r.to_json(base_url)).collect();
    super::list::ListResponse::complete(all).to_json()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::filter::AttrPath;

    fn caps() -> Capabilities {
        Capabilities {
            documentation_uri: None,
            patch: true,
            bulk: Some(BulkLimits {
                max_operations: 1000,
                max_payload_size: 1_048_576,
            }),
            filter_max_results: Some(200),
            change_password: false,
            sort: true,
            etag: true,
            auth_schemes: vec![AuthScheme::bearer_token(true)],
        }
    }

    #[test]
    fn service_provider_config_reports_the_given_capabilities() {
        let doc = service_provider_config(&caps(), "https://h/scim/v2/");
        assert_eq!(doc["schemas"][0], SERVICE_PROVIDER_CONFIG_SCHEMA);
        assert_eq!(doc["patch"]["supported"], true);
        assert_eq!(doc["bulk"]["maxOperations"], 1000);
        assert_eq!(doc["bulk"]["maxPayloadSize"], 1_048_576);
        assert_eq!(doc["filter"]["maxResults"], 200);
        assert_eq!(doc["changePassword"]["supported"], false);
        assert_eq!(doc["sort"]["supported"], true);
        assert_eq!(doc["etag"]["supported"], true);
        assert_eq!(doc["authenticationSchemes"][0]["type"], "oauthbearertoken");
        assert_eq!(
            doc["meta"]["location"],
            "https://h/scim/v2/ServiceProviderConfig"
        );
        let mut no_bulk = caps();
        no_bulk.bulk = None;
        no_bulk.filter_max_results = None;
        let doc = service_provider_config(&no_bulk, "https://h");
        assert_eq!(doc["bulk"]["supported"], false);
        assert_eq!(doc["filter"]["supported"], false);
    }

    #[test]
    fn schemas_document_is_generated_from_the_definitions() {
        let list = schemas_list("https://h/scim/v2");
        assert_eq!(list["totalResults"], 3);
        let user = &list["Resources"][0];
        assert_eq!(user["id"], USER_SCHEMA);
        let attrs = user["attributes"].as_array().unwrap();
        assert_eq!(attrs.len(), USER.attributes.len());
        let user_name = attrs.iter().find(|a| a["name"] == "userName").unwrap();
        assert_eq!(user_name["required"], true);
        assert_eq!(user_name["uniqueness"], "server");
        assert_eq!(user_name["caseExact"], false);
        let emails = attrs.iter().find(|a| a["name"] == "emails").unwrap();
        assert_eq!(emails["multiValued"], true);
        assert_eq!(emails["type"], "complex");
        assert_eq!(emails["subAttributes"].as_array().unwrap().len(), 4);
        let password = attrs.iter().find(|a| a["name"] == "password").unwrap();
        assert_eq!(password["mutability"], "writeOnly");
        assert_eq!(password["returned"], "never");
        let ent = &list["Resources"][1];
        let manager = ent["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "manager")
            .unwrap();
        assert_eq!(manager["subAttributes"][1]["name"], "$ref");
        assert_eq!(manager["subAttributes"][1]["referenceTypes"][0], "User");
        assert_eq!(
            ent["meta"]["location"],
            format!("https://h/scim/v2/Schemas/{ENTERPRISE_USER_SCHEMA}")
        );
    }

    #[test]
    fn resource_types_document() {
        let list = resource_types_list("https://h/scim/v2");
        assert_eq!(list["totalResults"], 2);
        let user = &list["Resources"][0];
        assert_eq!(user["endpoint"], "/Users");
        assert_eq!(user["schema"], USER_SCHEMA);
        assert_eq!(
            user["schemaExtensions"][0]["schema"],
            ENTERPRISE_USER_SCHEMA
        );
        assert_eq!(user["schemaExtensions"][0]["required"], false);
        assert_eq!(list["Resources"][1]["endpoint"], "/Groups");
    }

    #[test]
    fn resolution_is_case_insensitive_and_finds_extensions() {
        let r = USER_RESOURCE
            .resolve_attr(&AttrPath::with_sub("NAME", "givenname"))
            .unwrap();
        assert_eq!(
            (r.attr.name, r.sub.map(|s| s.name)),
            ("name", Some("givenName"))
        );
        let r = USER_RESOURCE
            .resolve_attr(&AttrPath::new("manager"))
            .unwrap();
        assert_eq!(r.container, Container::Extension(ENTERPRISE_USER_SCHEMA));
        let p = AttrPath {
            uri: Some(USER_SCHEMA.to_ascii_uppercase()),
            name: "userName".into(),
            sub_attr: None,
        };
        assert_eq!(
            USER_RESOURCE.resolve_attr(&p).unwrap().container,
            Container::Core
        );
        assert!(
            USER_RESOURCE
                .resolve_attr(&AttrPath::new("members"))
                .is_none()
        );
        assert!(
            GROUP_RESOURCE
                .resolve_attr(&AttrPath::new("members"))
                .is_some()
        );
        let ext = crate::scim::filter::AttrPath::parse(ENTERPRISE_USER_SCHEMA).unwrap();
        assert!(matches!(
            USER_RESOURCE.resolve(&ext),
            Some(Target::Extension(_))
        ));
        assert!(resource_type("users").is_none());
        assert!(resource_type("user").is_some());
        assert!(schema(&GROUP_SCHEMA.to_uppercase()).is_some());
    }

    #[test]
    fn at_most_one_primary_applies_to_attributes_with_primary() {
        let emails = USER.attr("emails").unwrap();
        assert!(emails.has_primary());
        assert!(!GROUP.attr("members").unwrap().has_primary());
    }
}
