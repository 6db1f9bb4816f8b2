//! RFC 7644 §3.4.2.2 filter semantics against resources.

use super::*;
use crate::scim::error::ScimType;
use crate::scim::schema::{ENTERPRISE_USER_SCHEMA as ENT, GROUP_RESOURCE, USER_RESOURCE};
use serde_json::json;

fn babs() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "bjensen",
        "userName": "Bjensen@Example.com",
        "name": {"familyName": "O'Malley", "givenName": "Barbara"},
        "title": "Tour Guide",
        "userType": "Employee",
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "ims": [{"value": "babs@foo.com", "type": "xmpp"}],
        ENT: {"employeeNumber": "701984", "manager": {"value": "26118915"}},
        "meta": {"resourceType": "User", "created": "2010-01-23T04:56:22Z", "lastModified": "2011-05-13T04:42:34Z"}
    })
}

fn intern() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": "c0ffee",
        "userName": "jsmith",
        "userType": "Intern",
        "active": false,
        "emails": [{"value": "js@example.org", "type": "home"}],
        "meta": {"resourceType": "User", "created": "2012-01-01T00:00:00Z", "lastModified": "2011-05-13T06:42:34+02:00"}
    })
}

fn m(filter: &str, doc: &Value) -> bool {
    let f = Filter::parse(filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
    check(&f, &USER_RESOURCE).unwrap_or_else(|e| panic!("{filter}: {e}"));
    matches(&f, doc, &USER_RESOURCE)
}

/// Every filter of RFC 7644 Figure 2 (and §3.4.2.2 text), with its expected result on two users.
#[test]
fn rfc_7644_figure_2_filters() {
    let cases: &[(&str, bool, bool)] = &[
        (r#"userName Eq "john""#, false, false),
        (r#"Username eq "bjensen@example.com""#, true, false),
        (r#"userName eq "bjensen""#, false, false),
        (r#"name.familyName co "O'Malley""#, true, false),
        (r#"userName sw "J""#, false, true),
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
            false,
            true,
        ),
        (r#"title pr"#, true, false),
        (
            r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
            false,
            false,
        ),
        (r#"meta.lastModified ge "2011-05-13T04:42:34Z""#, true, true),
        (
            r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
            false,
            false,
        ),
        (r#"meta.lastModified le "2011-05-13T04:42:34Z""#, true, true),
        (r#"title pr and userType eq "Employee""#, true, false),
        (r#"title pr or userType eq "Intern""#, true, true),
        (
            r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
            true,
            false,
        ),
        (
            r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
            true,
            false,
        ),
        (
            r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
            false,
            false,
        ),
        (
            r#"userType eq "Employee" and (emails.type eq "work")"#,
            true,
            false,
        ),
        (
            r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
            true,
            false,
        ),
        (
            r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
            true,
            false,
        ),
        (
            "(meta.resourceType eq User) or (meta.resourceType eq Group)",
            true,
            true,
        ),
    ];
    for (filter, on_babs, on_intern) in cases {
        assert_eq!(m(filter, &babs()), *on_babs, "{filter} on babs");
        assert_eq!(m(filter, &intern()), *on_intern, "{filter} on intern");
    }
}

#[test]
fn case_exactness_follows_the_schema() {
    // userName is caseExact=false: Okta's upper-cased lookup must find the user.
    assert!(m(r#"userName eq "BJENSEN@EXAMPLE.COM""#, &babs()));
    // id and externalId are caseExact.
    assert!(m(
        r#"id eq "2819c223-7f76-453a-919d-413861904646""#,
        &babs()
    ));
    assert!(!m(
        r#"id eq "2819C223-7F76-453A-919D-413861904646""#,
        &babs()
    ));
    assert!(!m(r#"externalId eq "BJENSEN""#, &babs()));
    assert!(m(r#"EXTERNALID eq "bjensen""#, &babs()));
}

#[test]
fn typed_comparisons() {
    assert!(m("active eq true", &babs()));
    assert!(m("active eq false", &intern()));
    assert!(m(r#"active eq "True""#, &babs()));
    // dateTime compares as instants: 06:42:34+02:00 is 04:42:34Z
    assert!(m(
        r#"meta.lastModified eq "2011-05-13T04:42:34Z""#,
        &intern()
    ));
    assert!(m(r#"meta.created lt "2011-01-01T00:00:00Z""#, &babs()));
    assert!(!m(r#"meta.created lt "2011-01-01T00:00:00Z""#, &intern()));
    assert!(m(r#"userName gt "a""#, &babs()));
    assert!(
        m("title ne \"x\"", &intern()),
        "ne matches an unassigned attribute"
    );
    assert!(!m("title pr", &intern()));
    assert!(!m("nickName eq null", &babs()));
}

#[test]
fn entra_and_ping_lookups() {
    assert!(m(r#"externalId eq "bjensen""#, &babs()));
    assert!(m(
        r#"emails[type eq "work"].value eq "bjensen@example.com""#,
        &babs()
    ));
    assert!(!m(
        r#"emails[type eq "home"].value eq "bjensen@example.com""#,
        &babs()
    ));
    assert!(m(r#"emails.value eq "babs@jensen.org""#, &babs()));
    assert!(m(r#"emails eq "babs@jensen.org""#, &babs()));
    assert!(m(
        r#"id eq "2819c223-7f76-453a-919d-413861904646" and manager eq "26118915""#,
        &babs()
    ));
    assert!(m(
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915""#,
        &babs()
    ));
    assert!(!m(
        r#"id eq "2819c223-7f76-453a-919d-413861904646" and manager eq "other""#,
        &babs()
    ));
    assert!(m(
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#,
        &babs()
    ));
}

#[test]
fn unknown_attributes_are_unassigned() {
    assert!(!m(r#"shoeSize eq "42""#, &babs()));
    assert!(!m("shoeSize pr", &babs()));
    assert!(m("not (shoeSize pr)", &babs()));
}

#[test]
fn invalid_comparisons_are_invalid_filter() {
    for f in [
        "active gt true",
        "x509Certificates.value lt \"a\"",
        "name eq \"x\"",
        "userName[value eq \"x\"]",
    ] {
        let parsed = Filter::parse(f).unwrap();
        let e = check(&parsed, &USER_RESOURCE).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidFilter), "{f}");
    }
}

#[test]
fn group_filters() {
    let g = json!({"id": "g1", "displayName": "C4C Sales EMEA", "members": [{"value": "u1"}]});
    let f = Filter::parse(r#"displayName eq "c4c sales emea""#).unwrap();
    assert!(matches(&f, &g, &GROUP_RESOURCE));
    let f = Filter::parse(r#"members[value eq "u1"]"#).unwrap();
    assert!(matches(&f, &g, &GROUP_RESOURCE));
    let f = Filter::parse(r#"members[value eq "U1"]"#).unwrap();
    assert!(
        !matches(&f, &g, &GROUP_RESOURCE),
        "member ids are caseExact"
    );
}

#[test]
fn sorting_uses_primary_value_and_puts_missing_last() {
    let by = AttrPath::new("emails");
    assert_eq!(
        sort_key_cmp(&USER_RESOURCE, &babs(), &intern(), &by),
        Ordering::Less
    );
    let by = AttrPath::new("title");
    assert_eq!(
        sort_key_cmp(&USER_RESOURCE, &babs(), &intern(), &by),
        Ordering::Less
    );
    assert_eq!(
        sort_key_cmp(&USER_RESOURCE, &intern(), &babs(), &by),
        Ordering::Greater
    );
}
