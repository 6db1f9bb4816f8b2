//! The entity model: the one source for `$metadata` and for everything the simulator enforces
//! (types, max lengths, creatable/updatable/filterable, navigations, code lists).

use std::sync::LazyLock;

/// The entity sets the simulator serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum SetId {
    Employee,
    RoleAssignment,
    OrgAssignment,
    SalesResponsibility,
    BusinessUser,
    CountryCode,
    CorporateAccount,
}

impl SetId {
    pub(crate) const ALL: [SetId; 7] = [
        SetId::Employee,
        SetId::RoleAssignment,
        SetId::OrgAssignment,
        SetId::SalesResponsibility,
        SetId::BusinessUser,
        SetId::CountryCode,
        SetId::CorporateAccount,
    ];

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    pub(crate) fn def(self) -> &'static EntityDef {
        &MODEL.sets[self.index()]
    }

    pub(crate) fn from_set_name(name: &str) -> Option<SetId> {
        SetId::ALL.into_iter().find(|s| s.def().set_name == name)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EdmType {
    String(Option<u32>),
    Boolean,
    DateTime,
    DateTimeOffset,
    Guid,
}

impl EdmType {
    pub(crate) fn edm_name(self) -> &'static str {
        match self {
            EdmType::String(_) => "Edm.String",
            EdmType::Boolean => "Edm.Boolean",
            EdmType::DateTime => "Edm.DateTime",
            EdmType::DateTimeOffset => "Edm.DateTimeOffset",
            EdmType::Guid => "Edm.Guid",
        }
    }
}

/// Code lists whose values writes are checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CodeList {
    Country,
    Language,
    TimeZone,
    Gender,
    Title,
    AcademicTitle,
    MaritalStatus,
    PasswordPolicy,
    OrgRole,
    /// Business role IDs: configured per simulator (tenant configuration).
    BusinessRole,
    /// Organisational unit IDs: configured per simulator.
    OrgUnit,
    /// Code lists the simulator does not validate (descriptions are empty).
    Unchecked,
}

#[derive(Clone, Debug)]
pub(crate) struct PropDef {
    pub name: &'static str,
    pub ty: EdmType,
    pub nullable: bool,
    pub creatable: bool,
    pub updatable: bool,
    pub filterable: bool,
    pub key: bool,
    /// The property holds a code of this list.
    pub code: Option<CodeList>,
    /// A read-only description of this code property (`CountryCodeText` of `CountryCode`).
    pub text_of: Option<&'static str>,
    /// For a `…Text` property: the code list its code property uses.
    pub text_list: Option<CodeList>,
    pub date_only: bool,
    pub etag: bool,
}

impl PropDef {
    fn new(name: &'static str, ty: EdmType) -> Self {
        PropDef {
            name,
            ty,
            nullable: true,
            creatable: true,
            updatable: true,
            filterable: true,
            key: false,
            code: None,
            text_of: None,
            text_list: None,
            date_only: false,
            etag: false,
        }
    }

    fn read_only(name: &'static str, ty: EdmType) -> Self {
        PropDef {
            creatable: false,
            updatable: false,
            ..PropDef::new(name, ty)
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NavKind {
    /// Children whose `ParentObjectID` is the parent's `ObjectID`.
    Children,
    /// The business user of an employee (same `EmployeeID`).
    BusinessUserOfEmployee,
    /// Back from a child to its parent employee.
    ParentEmployee,
}

#[derive(Clone, Debug)]
pub(crate) struct NavDef {
    pub name: &'static str,
    pub target: SetId,
    pub many: bool,
    pub kind: NavKind,
}

#[derive(Clone, Debug)]
pub(crate) struct EntityDef {
    pub set_name: &'static str,
    pub type_name: &'static str,
    pub props: Vec<PropDef>,
    pub navs: Vec<NavDef>,
    pub creatable: bool,
    pub updatable: bool,
    pub deletable: bool,
    /// Key is `Code` rather than `ObjectID` (code-list sets).
    pub key_name: &'static str,
}

impl EntityDef {
    pub(crate) fn prop(&self, name: &str) -> Option<&PropDef> {
        self.props.iter().find(|p| p.name == name)
    }
    pub(crate) fn nav(&self, name: &str) -> Option<&NavDef> {
        self.navs.iter().find(|n| n.name == name)
    }
}

pub(crate) struct Model {
    pub sets: Vec<EntityDef>,
}

pub(crate) static MODEL: LazyLock<Model> = LazyLock::new(build_model);

/// Small builder so the property tables below read like the reference's tables.
struct Props(Vec<PropDef>);

impl Props {
    fn key() -> Self {
        let mut p = PropDef::read_only("ObjectID", EdmType::String(Some(70)));
        p.nullable = false;
        p.key = true;
        Props(vec![p])
    }
    /// Creatable and updatable string.
    fn s(mut self, name: &'static str, max: u32) -> Self {
        self.0.push(PropDef::new(name, EdmType::String(Some(max))));
        self
    }
    /// Creatable, not updatable string.
    fn s_create_only(mut self, name: &'static str, max: u32) -> Self {
        let mut p = PropDef::new(name, EdmType::String(Some(max)));
        p.updatable = false;
        self.0.push(p);
        self
    }
    /// A property the tenant computes: neither creatable nor updatable.
    fn read_only(mut self, name: &'static str, edm: EdmType) -> Self {
        self.0.push(PropDef::read_only(name, edm));
        self
    }
    fn s_ro(self, name: &'static str, max: u32) -> Self {
        self.read_only(name, EdmType::String(Some(max)))
    }
    fn mandatory(mut self) -> Self {
        if let Some(p) = self.0.last_mut() {
            p.nullable = false;
        }
        self
    }
    /// A code property plus its read-only `…Text` sibling.
    fn code(mut self, name: &'static str, max: u32, list: CodeList) -> Self {
        let mut p = PropDef::new(name, EdmType::String(Some(max)));
        p.code = Some(list);
        self.0.push(p);
        self.0.push(text_prop(name, list));
        self
    }
    fn code_ro(mut self, name: &'static str, max: u32, list: CodeList) -> Self {
        let mut p = PropDef::read_only(name, EdmType::String(Some(max)));
        p.code = Some(list);
        self.0.push(p);
        self.0.push(text_prop(name, list));
        self
    }
    fn date(mut self, name: &'static str) -> Self {
        let mut p = PropDef::new(name, EdmType::DateTime);
        p.date_only = true;
        self.0.push(p);
        self
    }
    fn boolean(mut self, name: &'static str) -> Self {
        self.0.push(PropDef::new(name, EdmType::Boolean));
        self
    }
    fn boolean_ro(self, name: &'static str) -> Self {
        self.read_only(name, EdmType::Boolean)
    }
    fn guid_ro(self, name: &'static str) -> Self {
        self.read_only(name, EdmType::Guid)
    }
    fn dto_ro(self, name: &'static str) -> Self {
        self.read_only(name, EdmType::DateTimeOffset)
    }
    fn etag(mut self) -> Self {
        let mut p = PropDef::read_only("ETag", EdmType::DateTimeOffset);
        p.filterable = false;
        p.etag = true;
        self.0.push(p);
        self
    }
    fn non_updatable_all(mut self) -> Self {
        for p in &mut self.0 {
            p.updatable = false;
        }
        self
    }
}

fn text_prop(code_name: &'static str, list: CodeList) -> PropDef {
    let name: &'static str = match code_name {
        "TitleCode" => "TitleCodeText",
        "AcademicTitleCode" => "AcademicTitleCodeText",
        "GenderCode" => "GenderCodeText",
        "MaritalStatusCode" => "MaritalStatusCodeText",
        "LanguageCode" => "LanguageCodeText",
        "NationalityCountryCode" => "NationalityCountryCodeText",
        "CountryCode" => "CountryCodeText",
        "RegionCode" => "RegionCodeText",
        "POBoxCountryCode" => "POBoxCountryCodeText",
        "POBoxRegionCode" => "POBoxRegionCodeText",
        "TimeZoneCode" => "TimeZoneCodeText",
        "TaxJurisdictionCode" => "TaxJurisdictionCodeText",
        "UserPasswordPolicyCode" => "UserPasswordPolicyCodeText",
        "RoleCode" => "RoleCodeText",
        "DistributionChannelCode" => "DistributionChannelCodeText",
        "DivisionCode" => "DivisionCodeText",
        "LogonLanguageCode" => "LogonLanguageCodeText",
        "DecimalFormatCode" => "DecimalFormatCodeText",
        "DateFormatCode" => "DateFormatCodeText",
        "TimeFormatCode" => "TimeFormatCodeText",
        "PasswordPolicyCode" => "PasswordPolicyCodeText",
        "UserAccountTypeCode" => "UserAccountTypeCodeText",
        _ => "CodeText",
    };
    let mut p = PropDef::read_only(name, EdmType::String(None));
    p.text_of = Some(code_name);
    p.text_list = Some(list);
    p
}

fn employee() -> EntityDef {
    use CodeList::*;
    let props = Props::key()
        .s_create_only("EmployeeID", 20)
        .guid_ro("UUID")
        .s("UserID", 40)
        .guid_ro("IdentityUUID")
        .s("GlobalUserID", 36)
        .s_ro("BusinessPartnerID", 10)
        .date("EmployeeValidityStartDate")
        .date("EmployeeValidityEndDate")
        .s_ro("BusinessPartnerFormattedName", 480)
        .code("TitleCode", 4, Title)
        .code("AcademicTitleCode", 4, AcademicTitle)
        .s("FirstName", 40)
        .mandatory()
        .s("MiddleName", 40)
        .s("LastName", 40)
        .mandatory()
        .s("SecondLastName", 40)
        .s("NickName", 40)
        .s("BirthName", 40)
        .s("BirthPlace", 40)
        .code("GenderCode", 1, Gender)
        .code("MaritalStatusCode", 1, MaritalStatus)
        .code("LanguageCode", 2, Language)
        .code("NationalityCountryCode", 3, Country)
        .date("BirthDate")
        .s_ro("FormattedPostalAddressDescription", 480)
        .code("CountryCode", 3, Country)
        .code("RegionCode", 6, Unchecked)
        .s("CareOfName", 40)
        .s("AddressLine1", 40)
        .s("AddressLine2", 40)
        .s("AddressLine4", 40)
        .s("AddressLine5", 40)
        .s("District", 40)
        .s("City", 40)
        .s("DifferentCity", 40)
        .s("County", 40)
        .s("POBoxCity", 40)
        .s("HouseNumber", 10)
        .s("PostalCode", 10)
        .s("CompanyPostalCode", 10)
        .s("POBox", 10)
        .s("POBoxPostalCode", 10)
        .s("Building", 10)
        .s("Floor", 10)
        .s("Room", 10)
        .s("InhouseMail", 10)
        .s("Street", 60)
        .code("POBoxCountryCode", 3, Country)
        .code("POBoxRegionCode", 6, Unchecked)
        .code("TimeZoneCode", 10, TimeZone)
        .code("TaxJurisdictionCode", 25, Unchecked)
        .s("OfficePhoneNumber", 40)
        .s("MobilePhoneNumber", 40)
        .s("FaxNumber", 40)
        .s_ro("NormalisedOfficePhoneNumber", 40)
        .s_ro("NormalisedMobilePhoneNumber", 40)
        .s("Email", 255)
        .date("UserValidityStartDate")
        .date("UserValidityEndDate")
        .code("UserPasswordPolicyCode", 40, PasswordPolicy)
        .boolean("UserLockedIndicator")
        .boolean_ro("UserCountedIndicator")
        .dto_ro("CreatedOn")
        .dto_ro("ChangedOn")
        .dto_ro("EntityLastChangedOn")
        .s_ro("CreatedBy", 480)
        .s_ro("ChangedBy", 480)
        .guid_ro("CreatedByIdentityUUID")
        .guid_ro("ChangedByIdentityUUID")
        .etag();
    EntityDef {
        set_name: "EmployeeCollection",
        type_name: "Employee",
        props: props.0,
        navs: vec![
            NavDef {
                name: "BusinessUser",
                target: SetId::BusinessUser,
                many: false,
                kind: NavKind::BusinessUserOfEmployee,
            },
            NavDef {
                name: "EmployeeOrganisationalUnitAssignment",
                target: SetId::OrgAssignment,
                many: true,
                kind: NavKind::Children,
            },
            NavDef {
                name: "EmployeeSalesResponsibility",
                target: SetId::SalesResponsibility,
                many: true,
                kind: NavKind::Children,
            },
            NavDef {
                name: "EmployeeUserBusinessRoleAssignment",
                target: SetId::RoleAssignment,
                many: true,
                kind: NavKind::Children,
            },
        ],
        creatable: true,
        updatable: true,
        deletable: false,
        key_name: "ObjectID",
    }
}

fn parent_nav() -> Vec<NavDef> {
    vec![NavDef {
        name: "Employee",
        target: SetId::Employee,
        many: false,
        kind: NavKind::ParentEmployee,
    }]
}

fn role_assignment() -> EntityDef {
    let props = Props::key()
        .s_create_only("ParentObjectID", 70)
        .s_create_only("EmployeeID", 20)
        .s_create_only("UserID", 40)
        .s_create_only("BusinessRoleID", 255)
        .mandatory()
        .non_updatable_all()
        .dto_ro("EntityLastChangedOn")
        .etag();
    let mut props = props.0;
    if let Some(p) = props.iter_mut().find(|p| p.name == "BusinessRoleID") {
        p.code = Some(CodeList::BusinessRole);
    }
    EntityDef {
        set_name: "EmployeeUserBusinessRoleAssignmentCollection",
        type_name: "EmployeeUserBusinessRoleAssignment",
        props,
        navs: parent_nav(),
        creatable: true,
        updatable: true,
        deletable: true,
        key_name: "ObjectID",
    }
}

fn org_assignment() -> EntityDef {
    let mut props = Props::key()
        .s_create_only("ParentObjectID", 70)
        .s_create_only("EmployeeID", 20)
        .s_create_only("OrgUnitID", 20)
        .code("RoleCode", 10, CodeList::OrgRole)
        .date("StartDate")
        .date("EndDate")
        .s("JobID", 20)
        .dto_ro("EntityLastChangedOn")
        .etag()
        .0;
    if let Some(p) = props.iter_mut().find(|p| p.name == "OrgUnitID") {
        p.code = Some(CodeList::OrgUnit);
    }
    EntityDef {
        set_name: "EmployeeOrganisationalUnitAssignmentCollection",
        type_name: "EmployeeOrganisationalUnitAssignment",
        props,
        navs: parent_nav(),
        creatable: true,
        updatable: true,
        deletable: true,
        key_name: "ObjectID",
    }
}

fn sales_responsibility() -> EntityDef {
    let props = Props::key()
        .s_create_only("ParentObjectID", 70)
        .s_create_only("EmployeeID", 20)
        .s("SalesOrganisationID", 20)
        .mandatory()
        .code("DistributionChannelCode", 2, CodeList::Unchecked)
        .code("DivisionCode", 2, CodeList::Unchecked)
        .boolean("MainIndicator")
        .dto_ro("EntityLastChangedOn")
        .etag();
    EntityDef {
        set_name: "EmployeeSalesResponsibilityCollection",
        type_name: "EmployeeSalesResponsibility",
        props: props.0,
        navs: parent_nav(),
        creatable: true,
        updatable: true,
        deletable: true,
        key_name: "ObjectID",
    }
}

fn business_user() -> EntityDef {
    let props = Props::key()
        .s("UserID", 40)
        .mandatory()
        .s_ro("EmployeeID", 20)
        .guid_ro("EmployeeUUID")
        .s_ro("TechnicalUserID", 255)
        .guid_ro("IdentityUUID")
        .s_ro("BusinessPartnerID", 10)
        .s_ro("BusinessPartnerFormattedName", 480)
        .s_ro("DepartmentName", 40)
        .s_ro("CompanyName", 40)
        .s_ro("ManagerName", 480)
        .s_ro("EmailURI", 255)
        .code("DecimalFormatCode", 2, CodeList::Unchecked)
        .code("DateFormatCode", 2, CodeList::Unchecked)
        .code("TimeFormatCode", 2, CodeList::Unchecked)
        .code("TimeZoneCode", 10, CodeList::TimeZone)
        .code("LogonLanguageCode", 2, CodeList::Language)
        .date("UserValidityStartDate")
        .date("UserValidityEndDate")
        .boolean("UserLockedIndicator")
        .code("PasswordPolicyCode", 40, CodeList::PasswordPolicy)
        .boolean_ro("UserCountedIndicator")
        .boolean_ro("PasswordInactiveIndicator")
        .boolean_ro("PasswordLockedIndicator")
        .code_ro("UserAccountTypeCode", 1, CodeList::Unchecked)
        .dto_ro("CreatedOn")
        .s_ro("UserCreatedBy", 480)
        .s_ro("UserChangedBy", 480)
        .dto_ro("UserChangedOn")
        .dto_ro("EntityLastChangedOn")
        .etag();
    EntityDef {
        set_name: "BusinessUserCollection",
        type_name: "BusinessUser",
        props: props.0,
        navs: vec![],
        creatable: false,
        updatable: true,
        deletable: false,
        key_name: "ObjectID",
    }
}

fn country_code() -> EntityDef {
    let mut code = PropDef::new("Code", EdmType::String(Some(3)));
    code.nullable = false;
    code.key = true;
    code.creatable = false;
    code.updatable = false;
    let mut desc = PropDef::new("Description", EdmType::String(Some(60)));
    desc.creatable = false;
    desc.updatable = false;
    EntityDef {
        set_name: "EmployeeCountryCodeCollection",
        type_name: "CodeList",
        props: vec![code, desc],
        navs: vec![],
        creatable: false,
        updatable: false,
        deletable: false,
        key_name: "Code",
    }
}

fn corporate_account() -> EntityDef {
    let props = Props::key()
        .s_ro("AccountID", 10)
        .s("Name", 80)
        .code("CountryCode", 3, CodeList::Country)
        .s("City", 40)
        .s("Email", 255)
        .dto_ro("CreatedOn")
        .dto_ro("ChangedOn")
        .dto_ro("EntityLastChangedOn")
        .etag();
    let mut props = props.0;
    if let Some(p) = props.iter_mut().find(|p| p.name == "Name") {
        p.nullable = false;
    }
    EntityDef {
        set_name: "CorporateAccountCollection",
        type_name: "CorporateAccount",
        props,
        navs: vec![],
        creatable: true,
        updatable: true,
        deletable: true,
        key_name: "ObjectID",
    }
}

fn build_model() -> Model {
    Model {
        sets: vec![
            employee(),
            role_assignment(),
            org_assignment(),
            sales_responsibility(),
            business_user(),
            country_code(),
            corporate_account(),
        ],
    }
}

/// Code list content: (code, description).
pub(crate) fn code_list(list: CodeList) -> &'static [(&'static str, &'static str)] {
    match list {
        CodeList::Country => &[
            ("AT", "Austria"),
            ("AU", "Australia"),
            ("BE", "Belgium"),
            ("BR", "Brazil"),
            ("CA", "Canada"),
            ("CH", "Switzerland"),
            ("CN", "China"),
            ("CZ", "Czech Republic"),
            ("DE", "Germany"),
            ("DK", "Denmark"),
            ("ES", "Spain"),
            ("FI", "Finland"),
            ("FR", "France"),
            ("GB", "United Kingdom"),
            ("IE", "Ireland"),
            ("IN", "India"),
            ("IT", "Italy"),
            ("JP", "Japan"),
            ("MX", "Mexico"),
            ("NL", "Netherlands"),
            ("NO", "Norway"),
            ("PL", "Poland"),
            ("PT", "Portugal"),
            ("SE", "Sweden"),
            ("SG", "Singapore"),
            ("TR", "Turkey"),
            ("US", "United States"),
            ("ZA", "South Africa"),
        ],
        CodeList::Language => &[
            ("CS", "Czech"),
            ("DA", "Danish"),
            ("DE", "German"),
            ("EN", "English"),
            ("ES", "Spanish"),
            ("FI", "Finnish"),
            ("FR", "French"),
            ("IT", "Italian"),
            ("JA", "Japanese"),
            ("NL", "Dutch"),
            ("NO", "Norwegian"),
            ("PL", "Polish"),
            ("PT", "Portuguese"),
            ("SV", "Swedish"),
            ("TR", "Turkish"),
            ("ZH", "Chinese"),
        ],
        CodeList::TimeZone => &[
            ("UTC", "Coordinated Universal Time"),
            ("CET", "Central Europe"),
            ("EET", "Eastern Europe"),
            ("GMTUK", "United Kingdom"),
            ("EST", "Eastern Time (New York)"),
            ("CST", "Central Time (Dallas)"),
            ("MST", "Mountain Time (Denver)"),
            ("PST", "Pacific Time (Los Angeles)"),
            ("BRAZIL", "Brazil (Sao Paulo)"),
            ("INDIA", "India"),
            ("JAPAN", "Japan"),
            ("CHINA", "China"),
            ("AUSNSW", "Australia (Sydney)"),
            ("SINGAP", "Singapore"),
        ],
        CodeList::Gender => &[("0", "Unknown"), ("1", "Female"), ("2", "Male")],
        CodeList::Title => &[("0001", "Ms."), ("0002", "Mr."), ("0003", "Mx.")],
        CodeList::AcademicTitle => &[("0001", "Dr."), ("0002", "Prof."), ("0003", "Prof. Dr.")],
        CodeList::MaritalStatus => &[
            ("1", "Single"),
            ("2", "Married"),
            ("3", "Widowed"),
            ("4", "Divorced"),
        ],
        CodeList::PasswordPolicy => &[
            (
                "S_BUSINESS_USER_WITH_PASSWORD",
                "Business User with Password",
            ),
            (
                "S_BUSINESS_USER_WITHOUT_PASSWORD",
                "Business User without Password",
            ),
        ],
        CodeList::OrgRole => &[("219", "Manager"), ("222", "Employee")],
        CodeList::BusinessRole | CodeList::OrgUnit | CodeList::Unchecked => &[],
    }
}

/// Description of a code, if the list knows it.
pub(crate) fn code_text(list: CodeList, code: &str) -> Option<&'static str> {
    code_list(list)
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, d)| *d)
}

/// Properties shared by an employee and its business user (employee name, business-user name).
pub(crate) const LINKED_USER_FIELDS: [(&str, &str); 6] = [
    ("UserID", "UserID"),
    ("UserLockedIndicator", "UserLockedIndicator"),
    ("UserValidityStartDate", "UserValidityStartDate"),
    ("UserValidityEndDate", "UserValidityEndDate"),
    ("Email", "EmailURI"),
    ("UserPasswordPolicyCode", "PasswordPolicyCode"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn employee_uses_real_property_names() {
        let e = SetId::Employee.def();
        for name in [
            "UserID",
            "UserLockedIndicator",
            "OfficePhoneNumber",
            "MobilePhoneNumber",
            "UserValidityEndDate",
        ] {
            assert!(e.prop(name).is_some(), "{name}");
        }
        for wrong in [
            "UserName",
            "UserLock",
            "Phone",
            "MobilePhone",
            "Department",
            "ManagerID",
            "EmployeeRoleCode",
        ] {
            assert!(e.prop(wrong).is_none(), "{wrong}");
        }
        assert!(!e.deletable);
        assert!(!e.prop("ETag").map(|p| p.filterable).unwrap_or(true));
        assert!(e.prop("FirstName").map(|p| !p.nullable).unwrap_or(false));
    }

    #[test]
    fn role_assignment_fields_are_not_updatable() {
        let r = SetId::RoleAssignment.def();
        assert!(r.props.iter().all(|p| !p.updatable));
        assert!(r.deletable);
    }

    #[test]
    fn every_code_property_has_a_text_sibling() {
        for set in SetId::ALL {
            let d = set.def();
            let described = |p: &&PropDef| {
                !matches!(
                    p.code,
                    None | Some(CodeList::BusinessRole | CodeList::OrgUnit)
                )
            };
            for p in d.props.iter().filter(described) {
                assert!(
                    d.props.iter().any(|t| t.text_of == Some(p.name)),
                    "{} in {}",
                    p.name,
                    d.set_name
                );
            }
        }
    }
}
