//! RFC 7643 §2/§7 attribute semantics and RFC 7644 §3.3 (create), §3.5.1 (replace), §3.4.2.5
//! (projection), with the bodies Entra and Okta send.

use super::*;
use crate::scim::error::ScimType;
use crate::scim::schema::{ENTERPRISE_USER_SCHEMA as ENT, GROUP_RESOURCE, USER_RESOURCE};
use serde_json::json;

fn paths(list: &str) -> Vec<AttrPath> {
    crate::scim::list::attr_list(list).unwrap()
}

#[test]
fn entra_create_body_is_normalised() {
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
        "externalId": "alice",
        "userName": "alice@contoso.com",
        "active": true,
        "displayName": "Alice Example",
        "emails": [{"primary": true, "type": "work", "value": "alice@contoso.com"}],
        "name": {"formatted": "Alice Example", "familyName": "Example", "givenName": "Alice"},
        "title": null,
        "phoneNumbers": null,
        ENT: {"employeeNumber": "100234", "department": "Sales"},
        "meta": {"resourceType": "User"},
        "roles": []
    });
    let out = validate_for_create(&USER_RESOURCE, &body).unwrap();
    assert_eq!(out["userName"], "alice@contoso.com");
    assert_eq!(out[ENT]["department"], "Sales");
    for dropped in ["title", "phoneNumbers", "roles", "meta", "id"] {
        assert!(out.get(dropped).is_none(), "{dropped}");
    }
    assert_eq!(
        out["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:User", ENT])
    );
}

#[test]
fn okta_create_body_password_and_groups_are_ignored() {
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "test.user@okta.local",
        "name": {"givenName": "Test", "familyName": "User"},
        "emails": [{"primary": true, "value": "test.user@okta.local", "type": "work"}],
        "displayName": "Test User",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq",
        "active": true
    });
    let out = validate_for_create(&USER_RESOURCE, &body).unwrap();
    assert!(out.get("password").is_none());
    assert!(out.get("groups").is_none());
    assert_eq!(out["locale"], "en-US");
    assert_eq!(
        out["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:User"])
    );
}

#[test]
fn entra_group_with_microsoft_schema_urn() {
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group",
                    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "displayName": "C4C Sales EMEA",
        "meta": {"resourceType": "Group"},
        "members": []
    });
    let out = validate_for_create(&GROUP_RESOURCE, &body).unwrap();
    assert_eq!(out["displayName"], "C4C Sales EMEA");
    assert_eq!(
        out["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:Group"])
    );
}

#[test]
fn attribute_names_and_urns_are_case_insensitive() {
    let body = json!({
        "USERNAME": "a",
        "Name": {"GIVENNAME": "A"},
        "Emails": [{"VALUE": "a@b.c", "Type": "work"}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user": {"Department": "D"},
        "urn:ietf:params:scim:schemas:core:2.0:User:displayName": "Qualified"
    });
    let out = validate_for_create(&USER_RESOURCE, &body).unwrap();
    assert_eq!(out["userName"], "a");
    assert_eq!(out["name"]["givenName"], "A");
    assert_eq!(out["emails"][0]["value"], "a@b.c");
    assert_eq!(out[ENT]["department"], "D");
    assert_eq!(out["displayName"], "Qualified");
}

#[test]
fn coercion_of_strings_for_booleans_and_bare_values() {
    let body = json!({
        "userName": "a",
        "active": "False",
        "emails": ["a@b.c"],
        ENT: {"manager": "mgr-1", "employeeNumber": 42},
        "emails2": null
    });
    let e = validate_for_create(&USER_RESOURCE, &body).unwrap_err();
    assert_eq!(
        e.scim_type,
        Some(ScimType::InvalidSyntax),
        "unknown attribute"
    );
    let mut body = body;
    body.as_object_mut().unwrap().remove("emails2");
    let out = validate_for_create(&USER_RESOURCE, &body).unwrap();
    assert_eq!(out["active"], false);
    assert_eq!(out["emails"], json!([{"value": "a@b.c"}]));
    assert_eq!(out[ENT]["manager"], json!({"value": "mgr-1"}));
    assert_eq!(out[ENT]["employeeNumber"], "42");
}

#[test]
fn type_errors_are_invalid_value() {
    for body in [
        json!({"userName": "a", "active": "maybe"}),
        json!({"userName": "a", "active": 1}),
        json!({"userName": ["a", "b"]}),
        json!({"userName": "a", "name": "plain"}),
        json!({"userName": "a", "emails": [{"value": "x", "primary": "yes"}]}),
        json!({"userName": true}),
    ] {
        let e = validate_for_create(&USER_RESOURCE, &body).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidValue), "{body}");
        assert_eq!(e.status, 400);
    }
}

#[test]
fn unknown_attributes_and_sub_attributes_are_invalid_syntax() {
    for body in [
        json!({"userName": "a", "shoeSize": 42}),
        json!({"userName": "a", "name": {"nick": "x"}}),
        json!({"userName": "a", ENT: {"salary": 1}}),
        json!("not an object"),
        json!({"userName": "a", "schemas": "urn:x"}),
    ] {
        let e = validate_for_create(&USER_RESOURCE, &body).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax), "{body}");
    }
    // unknown extension URNs are ignored
    let out = validate_for_create(
        &USER_RESOURCE,
        &json!({"userName": "a", "urn:acme:params:scim:schemas:extension:Custom:2.0:User": {"x": 1}}),
    )
    .unwrap();
    assert_eq!(out.as_object().unwrap().len(), 2);
}

#[test]
fn required_attributes() {
    let e = validate_for_create(&USER_RESOURCE, &json!({"displayName": "x"})).unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
    assert!(e.detail.contains("userName"));
    let e = validate_for_create(&GROUP_RESOURCE, &json!({"members": []})).unwrap_err();
    assert!(e.detail.contains("displayName"));
    let e = validate_for_create(&USER_RESOURCE, &json!({"userName": ""})).unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
}

#[test]
fn at_most_one_primary() {
    let e = validate_for_create(
        &USER_RESOURCE,
        &json!({"userName": "a", "emails": [{"value": "a", "primary": true}, {"value": "b", "primary": "True"}]}),
    )
    .unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
    assert!(e.detail.contains("primary"));
}

#[test]
fn datetime_values_must_be_xsd_datetime() {
    let e = validate_for_stored_meta("yesterday").unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
    assert!(validate_for_stored_meta("2011-05-13T04:42:34Z").is_ok());
}

fn validate_for_stored_meta(created: &str) -> Result<Value, ScimError> {
    validate_stored(
        &USER_RESOURCE,
        &json!({"userName": "a", "meta": {"created": created}}),
    )
}

#[test]
fn replace_keeps_read_only_and_clears_absent() {
    let current = json!({
        "id": "u1", "userName": "a", "title": "T", "nickName": "N",
        "groups": [{"value": "g1"}],
        "meta": {"resourceType": "User", "created": "2010-01-23T04:56:22Z"}
    });
    // Okta's PUT carries id, meta and groups; they are ignored, read-only values kept.
    let body = json!({"id": "other", "userName": "a", "title": "T2", "groups": [], "meta": {"created": "2020-01-01T00:00:00Z"}});
    let out = validate_for_replace(&USER_RESOURCE, &body, &current).unwrap();
    assert_eq!(out["id"], "u1");
    assert_eq!(out["title"], "T2");
    assert!(out.get("nickName").is_none());
    assert_eq!(out["groups"], json!([{"value": "g1"}]));
    assert_eq!(out["meta"]["created"], "2010-01-23T04:56:22Z");
}

#[test]
fn projection_honours_returned_attributes_and_excluded() {
    let user = validate_stored(
        &USER_RESOURCE,
        &json!({
            "id": "u1", "userName": "a", "displayName": "A",
            "name": {"givenName": "G", "familyName": "F"},
            "emails": [{"value": "a@b.c", "type": "work"}],
            ENT: {"department": "D", "employeeNumber": "1"},
            "meta": {"resourceType": "User"}
        }),
    )
    .unwrap();
    let all = project(&USER_RESOURCE, &user, &[], &[]);
    assert_eq!(all, user);

    let some = project(
        &USER_RESOURCE,
        &user,
        &paths(
            "userName,name.givenName,emails.value,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
        ),
        &[],
    );
    assert_eq!(
        some,
        json!({
            "schemas": user["schemas"].clone(),
            "id": "u1", "userName": "a",
            "name": {"givenName": "G"},
            "emails": [{"value": "a@b.c"}],
            ENT: {"department": "D"}
        })
    );
    let without = project(
        &USER_RESOURCE,
        &user,
        &[],
        &paths(
            "emails,name.familyName,id,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        ),
    );
    assert!(without.get("emails").is_none());
    assert_eq!(without["name"], json!({"givenName": "G"}));
    assert_eq!(without["id"], "u1", "id is returned always");
    assert!(without.get(ENT).is_none());

    let g = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "g", "displayName": "G", "members": [{"value": "u1"}]});
    let out = project(&GROUP_RESOURCE, &g, &[], &paths("members"));
    assert!(out.get("members").is_none());
    assert_eq!(out["displayName"], "G");
    let out = project(&GROUP_RESOURCE, &g, &[], &paths("Members"));
    assert!(out.get("members").is_none(), "case-insensitive names");
}
