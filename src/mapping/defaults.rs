//! The default rule set, the built-in lookup tables and the EmployeeCollection properties known
//! from the reference (used when no `$metadata` is at hand).

use std::collections::BTreeMap;

use crate::c4c::metadata::{EdmType, EntityTypeModel, PropertyModel};

use super::config::{Direction, Lookup, Missing, Rule, Transform};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn rule(name: &str, scim: &str, to: &str, transforms: Vec<Transform>) -> Rule {
    Rule {
        name: name.into(),
        scim: Some(scim.into()),
        template: None,
        value: None,
        to: to.into(),
        transforms,
        direction: Direction::Both,
        when: None,
        create_only: false,
        too_long: None,
    }
}

fn lookup(table: &str, missing: Missing) -> Transform {
    Transform::Lookup(Lookup {
        table: table.into(),
        missing,
    })
}

/// Rules for what Entra ID and Okta send by default (docs/mapping.md has them as a table).
pub fn default_rules() -> Vec<Rule> {
    use Transform::*;
    let mut employee_number = rule(
        "employee_number",
        &format!("{ENTERPRISE}:employeeNumber"),
        "EmployeeID",
        vec![Trim],
    );
    employee_number.create_only = true;
    let mut locale = rule(
        "locale",
        "locale",
        "LanguageCode",
        vec![Trim, lookup("language", Missing::Skip)],
    );
    // "en-US" → "EN" loses the region: GET keeps the stored locale instead (to_scim_merged).
    locale.direction = Direction::Both;
    vec![
        rule("user_name", "userName", "UserID", vec![Trim]),
        rule("given_name", "name.givenName", "FirstName", vec![Trim]),
        rule("family_name", "name.familyName", "LastName", vec![Trim]),
        rule("middle_name", "name.middleName", "MiddleName", vec![Trim]),
        rule("nick_name", "nickName", "NickName", vec![Trim]),
        rule(
            "work_email",
            "emails[type eq \"work\"].value",
            "Email",
            vec![Trim, Lowercase],
        ),
        rule("any_email", "emails.value", "Email", vec![Trim, Lowercase]),
        rule(
            "work_phone",
            "phoneNumbers[type eq \"work\"].value",
            "OfficePhoneNumber",
            vec![Trim],
        ),
        rule(
            "mobile_phone",
            "phoneNumbers[type eq \"mobile\"].value",
            "MobilePhoneNumber",
            vec![Trim],
        ),
        rule(
            "fax",
            "phoneNumbers[type eq \"fax\"].value",
            "FaxNumber",
            vec![Trim],
        ),
        rule(
            "street",
            "addresses[type eq \"work\"].streetAddress",
            "Street",
            vec![Trim],
        ),
        rule(
            "city",
            "addresses[type eq \"work\"].locality",
            "City",
            vec![Trim],
        ),
        rule(
            "postal_code",
            "addresses[type eq \"work\"].postalCode",
            "PostalCode",
            vec![Trim],
        ),
        rule(
            "country",
            "addresses[type eq \"work\"].country",
            "CountryCode",
            vec![Trim, lookup("country", Missing::Reject)],
        ),
        rule(
            "region",
            "addresses[type eq \"work\"].region",
            "@local",
            vec![],
        ),
        locale,
        rule(
            "preferred_language",
            "preferredLanguage",
            "LanguageCode",
            vec![Trim, lookup("language", Missing::Skip)],
        ),
        rule(
            "timezone",
            "timezone",
            "TimeZoneCode",
            vec![Trim, lookup("timezone", Missing::Skip)],
        ),
        employee_number,
        rule("active", "active", "@active", vec![]),
        rule(
            "department",
            &format!("{ENTERPRISE}:department"),
            "@org_unit",
            vec![Trim, lookup("org_units", Missing::Skip)],
        ),
        rule(
            "groups",
            "groups.display",
            "@business_roles",
            vec![lookup("business_roles", Missing::Skip)],
        ),
        rule(
            "manager",
            &format!("{ENTERPRISE}:manager.value"),
            "@local",
            vec![],
        ),
        rule("display_name", "displayName", "@local", vec![]),
        rule("title", "title", "@local", vec![]),
        rule("external_id", "externalId", "@local", vec![]),
        rule("user_type", "userType", "@local", vec![]),
        rule(
            "cost_center",
            &format!("{ENTERPRISE}:costCenter"),
            "@local",
            vec![],
        ),
        rule(
            "organization",
            &format!("{ENTERPRISE}:organization"),
            "@local",
            vec![],
        ),
        rule(
            "division",
            &format!("{ENTERPRISE}:division"),
            "@local",
            vec![],
        ),
        rule("roles", "roles", "@ignore", vec![]),
    ]
}

fn table(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Built-in lookup tables; keys compare case-insensitively, and a key with a region
/// (`en-US`, `pt_BR`) falls back to its language part.
pub fn builtin_lookups() -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    // Tenant-specific: empty until the configuration fills them (department names → OrgUnitID,
    // group display names → BusinessRoleID).
    out.insert("org_units".to_string(), BTreeMap::new());
    out.insert("business_roles".to_string(), BTreeMap::new());
    out.insert(
        "language".to_string(),
        table(&[
            ("cs", "CS"),
            ("da", "DA"),
            ("de", "DE"),
            ("en", "EN"),
            ("es", "ES"),
            ("fi", "FI"),
            ("fr", "FR"),
            ("it", "IT"),
            ("ja", "JA"),
            ("nl", "NL"),
            ("no", "NO"),
            ("nb", "NO"),
            ("pl", "PL"),
            ("pt", "PT"),
            ("sv", "SV"),
            ("tr", "TR"),
            ("zh", "ZH"),
        ]),
    );
    let mut country = table(&[
        ("Austria", "AT"),
        ("Australia", "AU"),
        ("Belgium", "BE"),
        ("Brazil", "BR"),
        ("Canada", "CA"),
        ("Switzerland", "CH"),
        ("China", "CN"),
        ("Czech Republic", "CZ"),
        ("Germany", "DE"),
        ("Denmark", "DK"),
        ("Spain", "ES"),
        ("Finland", "FI"),
        ("France", "FR"),
        ("United Kingdom", "GB"),
        ("Ireland", "IE"),
        ("India", "IN"),
        ("Italy", "IT"),
        ("Japan", "JP"),
        ("Mexico", "MX"),
        ("Netherlands", "NL"),
        ("Norway", "NO"),
        ("Poland", "PL"),
        ("Portugal", "PT"),
        ("Sweden", "SE"),
        ("Singapore", "SG"),
        ("Turkey", "TR"),
        ("United States", "US"),
        ("USA", "US"),
        ("South Africa", "ZA"),
    ]);
    // ISO alpha-2 codes map to themselves (what Entra and Okta send).
    let codes: Vec<String> = country.values().cloned().collect();
    for code in codes {
        country.insert(code.clone(), code);
    }
    out.insert("country".to_string(), country);
    out.insert(
        "timezone".to_string(),
        table(&[
            ("UTC", "UTC"),
            ("Etc/UTC", "UTC"),
            ("Europe/Berlin", "CET"),
            ("Europe/Paris", "CET"),
            ("Europe/Madrid", "CET"),
            ("Europe/Rome", "CET"),
            ("Europe/Vienna", "CET"),
            ("Europe/Zurich", "CET"),
            ("Europe/Amsterdam", "CET"),
            ("Europe/Brussels", "CET"),
            ("Europe/Stockholm", "CET"),
            ("Europe/Oslo", "CET"),
            ("Europe/Copenhagen", "CET"),
            ("Europe/Warsaw", "CET"),
            ("Europe/Prague", "CET"),
            ("Europe/Helsinki", "EET"),
            ("Europe/Athens", "EET"),
            ("Europe/London", "GMTUK"),
            ("Europe/Dublin", "GMTUK"),
            ("America/New_York", "EST"),
            ("America/Chicago", "CST"),
            ("America/Denver", "MST"),
            ("America/Los_Angeles", "PST"),
            ("America/Sao_Paulo", "BRAZIL"),
            ("Asia/Kolkata", "INDIA"),
            ("Asia/Tokyo", "JAPAN"),
            ("Asia/Shanghai", "CHINA"),
            ("Australia/Sydney", "AUSNSW"),
            ("Asia/Singapore", "SINGAP"),
        ]),
    );
    out
}

/// `Employee` as the reference (§2.2) describes it; used for types and max lengths when no
/// `$metadata` was given. `$metadata`, when present, always wins.
pub fn builtin_employee() -> EntityTypeModel {
    // (name, type, max length, creatable, updatable, nullable)
    let s = |n: &str, max: usize| (n.to_string(), EdmType::String, Some(max), true, true);
    let mut rows: Vec<(String, EdmType, Option<usize>, bool, bool)> = vec![
        ("ObjectID".into(), EdmType::String, Some(70), false, false),
        ("EmployeeID".into(), EdmType::String, Some(20), true, false),
        ("UUID".into(), EdmType::Guid, None, false, false),
        s("UserID", 40),
        s("GlobalUserID", 36),
        (
            "BusinessPartnerID".into(),
            EdmType::String,
            Some(10),
            false,
            false,
        ),
        (
            "EmployeeValidityStartDate".into(),
            EdmType::DateTime,
            None,
            true,
            true,
        ),
        (
            "EmployeeValidityEndDate".into(),
            EdmType::DateTime,
            None,
            true,
            true,
        ),
        s("TitleCode", 4),
        s("AcademicTitleCode", 4),
        s("GenderCode", 1),
        s("MaritalStatusCode", 1),
        s("LanguageCode", 2),
        s("NationalityCountryCode", 3),
        ("BirthDate".into(), EdmType::DateTime, None, true, true),
        s("CountryCode", 3),
        s("RegionCode", 6),
        s("POBoxCountryCode", 3),
        s("POBoxRegionCode", 6),
        s("TimeZoneCode", 10),
        s("TaxJurisdictionCode", 25),
        s("Email", 255),
        s("Street", 60),
        s("UserPasswordPolicyCode", 40),
        (
            "UserValidityStartDate".into(),
            EdmType::DateTime,
            None,
            true,
            true,
        ),
        (
            "UserValidityEndDate".into(),
            EdmType::DateTime,
            None,
            true,
            true,
        ),
        (
            "UserLockedIndicator".into(),
            EdmType::Boolean,
            None,
            true,
            true,
        ),
        (
            "UserCountedIndicator".into(),
            EdmType::Boolean,
            None,
            false,
            false,
        ),
        (
            "CreatedOn".into(),
            EdmType::DateTimeOffset,
            None,
            false,
            false,
        ),
        (
            "ChangedOn".into(),
            EdmType::DateTimeOffset,
            None,
            false,
            false,
        ),
        (
            "EntityLastChangedOn".into(),
            EdmType::DateTimeOffset,
            None,
            false,
            false,
        ),
    ];
    for n in [
        "FirstName",
        "MiddleName",
        "LastName",
        "SecondLastName",
        "NickName",
        "BirthName",
        "BirthPlace",
        "CareOfName",
        "AddressLine1",
        "AddressLine2",
        "AddressLine4",
        "AddressLine5",
        "District",
        "City",
        "DifferentCity",
        "County",
        "POBoxCity",
        "OfficePhoneNumber",
        "MobilePhoneNumber",
        "FaxNumber",
    ] {
        rows.push(s(n, 40));
    }
    for n in [
        "HouseNumber",
        "PostalCode",
        "CompanyPostalCode",
        "POBox",
        "POBoxPostalCode",
        "Building",
        "Floor",
        "Room",
        "InhouseMail",
    ] {
        rows.push(s(n, 10));
    }
    let properties = rows
        .into_iter()
        .map(
            |(name, edm_type, max_length, creatable, updatable)| PropertyModel {
                nullable: !matches!(name.as_str(), "ObjectID" | "FirstName" | "LastName"),
                name,
                edm_type,
                max_length,
                creatable,
                updatable,
                filterable: true,
            },
        )
        .collect();
    EntityTypeModel {
        name: "Employee".into(),
        namespace: "c4codataapi".into(),
        keys: vec!["ObjectID".into()],
        properties,
        navigations: Vec::new(),
    }
}
