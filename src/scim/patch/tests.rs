//! RFC 7644 §3.5.2 examples, the Entra ID / Okta corpus of scim-clients.md, atomicity.

use super::*;
use crate::scim::error::ScimType;
use crate::scim::schema::{ENTERPRISE_USER_SCHEMA as ENT, GROUP_RESOURCE, USER_RESOURCE};
use proptest::prelude::*;
use serde_json::json;

const BABS: &str = "2819c223-7f76-453a-919d-413861904646";
const JAMES: &str = "08e1d05d-121c-4561-8b96-473d93df9210";
const MANDY: &str = "902c246b-6245-4190-8e05-00816be7344a";

fn user() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
        "id": BABS,
        "externalId": "bjensen",
        "userName": "bjensen@example.com",
        "name": {"formatted": "Ms. Barbara J Jensen III", "familyName": "Jensen", "givenName": "Barbara"},
        "displayName": "Babs Jensen",
        "title": "Tour Guide",
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "phoneNumbers": [{"value": "555-555-8377", "type": "work"}],
        "addresses": [
            {"type": "work", "streetAddress": "100 Universal City Plaza", "locality": "Hollywood", "postalCode": "91608", "country": "US", "primary": true},
            {"type": "home", "streetAddress": "456 Hollywood Blvd", "locality": "Hollywood", "postalCode": "91608", "country": "US"}
        ],
        ENT: {
            "employeeNumber": "701984",
            "department": "Tour Operations",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "$ref": "../Users/26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}
        },
        "meta": {"resourceType": "User", "created": "2010-01-23T04:56:22Z", "lastModified": "2011-05-13T04:42:34Z", "version": "W/\"a330bc54f0671c9\""}
    })
}

fn group() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": "acbf3ae7-8463-4692-b4fd-9b4da3f908ce",
        "displayName": "Tour Guides",
        "members": [
            {"value": BABS, "display": "Babs Jensen", "$ref": "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646"},
            {"value": MANDY, "display": "Mandy Pepperidge"}
        ]
    })
}

fn patch(doc: &Value, rt: &ResourceTypeDef, body: Value) -> Result<Value, ScimError> {
    PatchRequest::from_json(&body)?.apply(doc, rt)
}

fn ops(list: Value) -> Value {
    json!({"schemas": [PATCH_OP_SCHEMA], "Operations": list})
}

fn member_ids(g: &Value) -> Vec<&str> {
    g["members"]
        .as_array()
        .map(|a| a.iter().filter_map(|m| m["value"].as_str()).collect())
        .unwrap_or_default()
}

// ---------------- RFC 7644 §3.5.2.1 add ----------------

#[test]
fn rfc_add_member_to_group() {
    let out = patch(&group(), &GROUP_RESOURCE, ops(json!([{
        "op": "add", "path": "members",
        "value": [{"display": "James Smith", "$ref": "https://example.com/v2/Users/08e1d05d-121c-4561-8b96-473d93df9210", "value": JAMES}]
    }]))).unwrap();
    assert_eq!(member_ids(&out), vec![BABS, MANDY, JAMES]);
}

#[test]
fn rfc_add_without_path_adds_email_and_replaces_nickname() {
    let out = patch(&user(), &USER_RESOURCE, ops(json!([{
        "op": "add",
        "value": {"emails": [{"value": "babs@jensen.org", "type": "home"}, {"value": "b@new.org", "type": "other"}], "nickname": "Babs"}
    }]))).unwrap();
    // `nickname` is matched case-insensitively and stored as `nickName`.
    assert_eq!(out["nickName"], "Babs");
    let emails: Vec<&str> = out["emails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["value"].as_str().unwrap())
        .collect();
    // The identical home email is not duplicated; the new one is appended.
    assert_eq!(
        emails,
        vec!["bjensen@example.com", "babs@jensen.org", "b@new.org"]
    );
}

#[test]
fn rfc_add_single_valued_replaces() {
    let out = patch(
        &user(),
        &USER_RESOURCE,
        ops(json!([{"op": "add", "path": "title", "value": "Chief"}])),
    )
    .unwrap();
    assert_eq!(out["title"], "Chief");
}

#[test]
fn rfc_add_complex_merges_sub_attributes() {
    let out = patch(
        &user(),
        &USER_RESOURCE,
        ops(json!([{"op": "add", "path": "name", "value": {"middleName": "J"}}])),
    )
    .unwrap();
    assert_eq!(out["name"]["middleName"], "J");
    assert_eq!(out["name"]["givenName"], "Barbara");
}

// ---------------- RFC 7644 §3.5.2.2 remove ----------------

#[test]
fn rfc_remove_without_path_is_no_target() {
    let e = patch(&user(), &USER_RESOURCE, ops(json!([{"op": "remove"}]))).unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::NoTarget));
}

#[test]
fn rfc_remove_single_member() {
    let out = patch(
        &group(),
        &GROUP_RESOURCE,
        ops(json!([{
            "op": "remove", "path": format!("members[value eq \"{BABS}\"]")
        }])),
    )
    .unwrap();
    assert_eq!(member_ids(&out), vec![MANDY]);
}

#[test]
fn rfc_remove_absent_member_succeeds_unchanged() {
    let g = group();
    let out = patch(
        &g,
        &GROUP_RESOURCE,
        ops(json!([{
            "op": "remove", "path": format!("members[value eq \"{JAMES}\"]")
        }])),
    )
    .unwrap();
    assert_eq!(member_ids(&out), member_ids(&g));
}

#[test]
fn rfc_remove_all_members() {
    let out = patch(
        &group(),
        &GROUP_RESOURCE,
        ops(json!([{"op": "remove", "path": "members"}])),
    )
    .unwrap();
    assert!(out.get("members").is_none());
}

#[test]
fn rfc_remove_emails_by_complex_filter() {
    let out = patch(
        &user(),
        &USER_RESOURCE,
        ops(json!([{
            "op": "remove", "path": "emails[type eq \"work\" and value ew \"example.com\"]"
        }])),
    )
    .unwrap();
    let emails = out["emails"].as_array().unwrap();
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0]["value"], "babs@jensen.org");
}

#[test]
fn rfc_remove_then_add_member_in_one_request() {
    // The RFC prints `members[value eq\"…\"]` without a space before the string.
    let out = patch(&group(), &GROUP_RESOURCE, ops(json!([
        {"op": "remove", "path": format!("members[value eq\"{BABS}\"]")},
        {"op": "add", "path": "members", "value": [{"display": "James Smith", "$ref": "https://example.com/v2/Users/08e1d05d-121c-4561-8b96-473d93df9210", "value": JAMES}]}
    ]))).unwrap();
    assert_eq!(member_ids(&out), vec![MANDY, JAMES]);
}

#[test]
fn rfc_remove_all_then_add_members() {
    let out = patch(&group(), &GROUP_RESOURCE, ops(json!([
        {"op": "remove", "path": "members"},
        {"op": "add", "path": "members", "value": [{"display": "Babs Jensen", "value": BABS}, {"display": "James Smith", "value": JAMES}]}
    ]))).unwrap();
    assert_eq!(member_ids(&out), vec![BABS, JAMES]);
}

#[test]
fn rfc_remove_required_attribute_is_mutability() {
    let e = patch(
        &user(),
        &USER_RESOURCE,
        ops(json!([{"op": "remove", "path": "userName"}])),
    )
    .unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::Mutability));
    let e = patch(
        &user(),
        &USER_RESOURCE,
        ops(json!([{"op": "remove", "path": "id"}])),
    )
    .unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::Mutability));
}

// ---------------- RFC 7644 §3.5.2.3 replace ----------------

#[test]
fn rfc_replace_all_members() {
    let out = patch(&group(), &GROUP_RESOURCE, ops(json!([{
        "op": "replace", "path": "members",
        "value": [
            {"display": "Babs Jensen", "$ref": "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646", "value": BABS},
            {"display": "James Smith", "$ref": "https://example.com/v2/Users/08e1d05d-121c-4561-8b96-473d93df9210", "value": JAMES}
        ]
    }]))).unwrap();
    assert_eq!(member_ids(&out), vec![BABS, JAMES]);
}

#[test]
fn rfc_replace_work_address_resets_other_primary() {
    let mut u = user();
    // make the home address primary first, so the replace has something to reset
    u["addresses"][0]["primary"] = json!(false);
    u["addresses"][1]["primary"] = json!(true);
    let out = patch(&u, &USER_RESOURCE, ops(json!([{
        "op": "replace", "path": "addresses[type eq \"work\"]",
        "value": {"type": "work", "streetAddress": "911 Universal City Plaza", "locality": "Hollywood", "region": "CA", "postalCode": "91608", "country": "US", "formatted": "911 Universal City Plaza\nHollywood, CA 91608 US", "primary": true}
    }]))).unwrap();
    let addrs = out["addresses"].as_array().unwrap();
    assert_eq!(addrs[0]["streetAddress"], "911 Universal City Plaza");
    assert_eq!(addrs[0]["region"], "CA");
    assert_eq!(addrs[0]["primary"], true);
    assert_eq!(addrs[1]["primary"], false);
}

#[test]
fn rfc_replace_sub_attribute_of_filtered_values() {
    let out = patch(&user(), &USER_RESOURCE, ops(json!([{
        "op": "replace", "path": "addresses[type eq \"work\"].streetAddress", "value": "1010 Broadway Ave"
    }]))).unwrap();
    assert_eq!(out["addresses"][0]["streetAddress"], "1010 Broadway Ave");
    assert_eq!(out["addresses"][1]["streetAddress"], "456 Hollywood Blvd");
}

#[test]
fn rfc_replace_without_path_replaces_listed_attributes_only() {
    let out = patch(&user(), &USER_RESOURCE, ops(json!([{
        "op": "replace",
        "value": {"emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}, {"value": "babs@jensen.org", "type": "home"}], "nickname": "Babs"}
    }]))).unwrap();
    assert_eq!(out["nickName"], "Babs");
    assert_eq!(out["emails"].as_array().unwrap().len(), 2);
    assert_eq!(out["title"], "Tour Guide");
    assert_eq!(out["phoneNumbers"], user()["phoneNumbers"]);
}

#[test]
fn rfc_replace_of_absent_attribute_is_an_add() {
    let out = patch(
        &user(),
        &USER_RESOURCE,
        ops(json!([{"op": "replace", "path": "nickName", "value": "B"}])),
    )
    .unwrap();
    assert_eq!(out["nickName"], "B");
}

#[test]
fn rfc_replace_complex_leaves_unspecified_sub_attributes() {
    let out = patch(
        &user(),
        &USER_RESOURCE,
        ops(json!([{"op": "replace", "path": "name", "value": {"givenName": "Babs"}}])),
    )
    .unwrap();
    assert_eq!(out["name"]["givenName"], "Babs");
    assert_eq!(out["name"]["familyName"], "Jensen");
}

#[test]
fn replace_with_non_equality_filter_and_no_match_is_no_target() {
    let e = patch(
        &user(),
        &USER_RESOURCE,
        ops(json!([{
            "op": "replace", "path": "emails[value co \"nowhere\"].type", "value": "other"
        }])),
    )
    .unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::NoTarget));
    assert!(e.detail.starts_with("Operations[0]"), "{}", e.detail);
}

#[test]
fn read_only_and_unknown_paths_fail() {
    let e = patch(
        &user(),
        &USER_RESOURCE,
        ops(json!([{"op": "replace", "path": "id", "value": "other"}])),
    )
    .unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::Mutability));
    let e = patch(
        &user(),
        &USER_RESOURCE,
        ops(json!([{"op": "replace", "path": "meta.created", "value": "2020-01-01T00:00:00Z"}])),
    )
    .unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::Mutability));
    let e = patch(
        &user(),
        &USER_RESOURCE,
        ops(json!([{"op": "add", "path": "groups", "value": [{"value": "g"}]}])),
    )
    .unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::Mutability));
    let e = patch(
        &user(),
        &USER_RESOURCE,
        ops(json!([{"op": "add", "path": "shoeSize", "value": 42}])),
    )
    .unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::InvalidPath));
    let e = patch(
        &user(),
        &USER_RESOURCE,
        ops(json!([{"op": "add", "path": "emails[type eq", "value": 1}])),
    )
    .unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::InvalidPath));
    let e = patch(
        &user(),
        &USER_RESOURCE,
        ops(json!([{"op": "add", "path": "active", "value": "maybe"}])),
    )
    .unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
}

#[test]
fn malformed_bodies_are_invalid_syntax() {
    for body in [
        json!([]),
        json!({"schemas": [PATCH_OP_SCHEMA]}),
        json!({"schemas": [PATCH_OP_SCHEMA], "Operations": []}),
        json!({"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "move", "path": "title"}]}),
        json!({"schemas": ["urn:wrong"], "Operations": [{"op": "add", "path": "title", "value": "x"}]}),
    ] {
        let e = PatchRequest::from_json(&body).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax), "{body}");
    }
}

#[test]
fn setting_primary_demotes_the_others() {
    let out = patch(
        &user(),
        &USER_RESOURCE,
        ops(json!([{
            "op": "replace", "path": "emails[type eq \"home\"].primary", "value": true
        }])),
    )
    .unwrap();
    assert_eq!(out["emails"][0]["primary"], false);
    assert_eq!(out["emails"][1]["primary"], true);
}

// ---------------- Entra ID corpus (scim-clients.md §1.4–1.7) ----------------

#[test]
fn entra_default_update_with_capitalised_ops() {
    let out = patch(&user(), &USER_RESOURCE, ops(json!([
        {"op": "Replace", "path": "displayName", "value": "Alice Q. Example"},
        {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "alice.q@contoso.com"},
        {"op": "Replace", "path": "name.givenName", "value": "Alice"},
        {"op": "Replace", "path": "name.familyName", "value": "Example"},
        {"op": "Replace", "path": "externalId", "value": "aliceq"},
        {"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "value": "100234"}
    ]))).unwrap();
    assert_eq!(out["displayName"], "Alice Q. Example");
    assert_eq!(out["emails"][0]["value"], "alice.q@contoso.com");
    assert_eq!(out["emails"][0]["type"], "work");
    assert_eq!(out["name"]["givenName"], "Alice");
    assert_eq!(out["name"]["familyName"], "Example");
    assert_eq!(out["externalId"], "aliceq");
    assert_eq!(out[ENT]["employeeNumber"], "100234");
    assert_eq!(out[ENT]["department"], "Tour Operations");
}

#[test]
fn entra_disable_with_string_boolean_and_reenable() {
    for (v, expected) in [
        (json!("False"), false),
        (json!("false"), false),
        (json!(false), false),
        (json!("True"), true),
        (json!(true), true),
    ] {
        let out = patch(
            &user(),
            &USER_RESOURCE,
            ops(json!([{"op": "Replace", "path": "active", "value": v}])),
        )
        .unwrap();
        assert_eq!(out["active"], expected, "{v}");
    }
}

#[test]
fn entra_add_single_valued_string() {
    for op in ["Add", "add", "ADD"] {
        let out = patch(
            &user(),
            &USER_RESOURCE,
            ops(json!([{"op": op, "path": "nickName", "value": "Babs"}])),
        )
        .unwrap();
        assert_eq!(out["nickName"], "Babs");
    }
}

#[test]
fn entra_flagged_pathless_replace_with_dotted_and_urn_keys() {
    let out = patch(
        &user(),
        &USER_RESOURCE,
        ops(json!([{
            "op": "replace",
            "value": {
                "displayName": "X",
                "name.givenName": "Y",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "Z",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager": "m-42"
            }
        }])),
    )
    .unwrap();
    assert_eq!(out["displayName"], "X");
    assert_eq!(out["name"]["givenName"], "Y");
    assert_eq!(out["name"]["familyName"], "Jensen");
    assert!(out.get("name.givenName").is_none());
    assert_eq!(out[ENT]["employeeNumber"], "Z");
    assert_eq!(out[ENT]["manager"], json!({"value": "m-42"}));
}

#[test]
fn entra_pathless_add_with_extension_object() {
    let out = patch(
        &user(),
        &USER_RESOURCE,
        ops(json!([{
            "op": "add", "value": {ENT: {"department": "Sales", "costCenter": "4130"}}
        }])),
    )
    .unwrap();
    assert_eq!(out[ENT]["department"], "Sales");
    assert_eq!(out[ENT]["costCenter"], "4130");
    assert_eq!(out[ENT]["employeeNumber"], "701984");
}

#[test]
fn entra_filtered_path_without_match_creates_the_element() {
    let out = patch(
        &user(),
        &USER_RESOURCE,
        ops(json!([
            {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0100"},
            {"op": "Replace", "path": "addresses[type eq \"other\"].postalCode", "value": "10115"}
        ])),
    )
    .unwrap();
    let phones = out["phoneNumbers"].as_array().unwrap();
    assert_eq!(phones.len(), 2);
    assert_eq!(phones[1], json!({"type": "mobile", "value": "+1 555 0100"}));
    let addrs = out["addresses"].as_array().unwrap();
    assert_eq!(addrs[2], json!({"type": "other", "postalCode": "10115"}));
    // and on a user without any email yet
    let mut u = user();
    u.as_object_mut().unwrap().remove("emails");
    let out = patch(
        &u,
        &USER_RESOURCE,
        ops(json!([
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new@contoso.com"}
        ])),
    )
    .unwrap();
    assert_eq!(
        out["emails"],
        json!([{"type": "work", "value": "new@contoso.com"}])
    );
}

#[test]
fn entra_manager_in_all_four_shapes() {
    // 1. Add with an array value (Entra docs)
    let out = patch(&user(), &USER_RESOURCE, ops(json!([{
        "op": "Add", "path": "manager", "value": [{"$ref": "https://host/scim/v2/Users/m1", "value": "m1"}]
    }]))).unwrap();
    assert_eq!(
        out[ENT]["manager"],
        json!({"value": "m1", "$ref": "https://host/scim/v2/Users/m1"})
    );
    // 2. plain string on the URN path (a new referent drops the old $ref and displayName)
    let out = patch(&user(), &USER_RESOURCE, ops(json!([{
        "op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "m2"
    }]))).unwrap();
    assert_eq!(out[ENT]["manager"], json!({"value": "m2"}));
    // 3. {"value": id}
    let out = patch(&user(), &USER_RESOURCE, ops(json!([{
        "op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": {"value": "m3"}
    }]))).unwrap();
    assert_eq!(out[ENT]["manager"], json!({"value": "m3"}));
    // 4a. removal by filter on the single-valued manager
    let out = patch(
        &user(),
        &USER_RESOURCE,
        ops(json!([{
            "op": "Remove", "path": "manager[value eq \"26118915-6090-4610-87e4-49d8ca9f808d\"]"
        }])),
    )
    .unwrap();
    assert!(out[ENT].get("manager").is_none());
    assert_eq!(out[ENT]["employeeNumber"], "701984");
    // 4b. removal of a different manager id changes nothing
    let out = patch(
        &user(),
        &USER_RESOURCE,
        ops(json!([{
            "op": "Remove", "path": "manager[value eq \"someone-else\"]"
        }])),
    )
    .unwrap();
    assert_eq!(
        out[ENT]["manager"]["value"],
        "26118915-6090-4610-87e4-49d8ca9f808d"
    );
    // 4c. replace with an empty value (gallery validator)
    for empty in [json!(""), json!(null), json!({}), json!({"value": ""})] {
        let out = patch(&user(), &USER_RESOURCE, ops(json!([{
            "op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": empty
        }]))).unwrap();
        assert!(out[ENT].get("manager").is_none(), "{empty}");
    }
}

#[test]
fn entra_empty_string_and_null_clear() {
    let out = patch(&user(), &USER_RESOURCE, ops(json!([
        {"op": "Replace", "path": "title", "value": ""},
        {"op": "Replace", "path": "name.givenName", "value": null},
        {"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": ""}
    ]))).unwrap();
    assert!(out.get("title").is_none());
    assert!(out["name"].get("givenName").is_none());
    assert!(out[ENT].get("department").is_none());
}

#[test]
fn entra_group_add_several_members_with_null_ref() {
    let out = patch(&group(), &GROUP_RESOURCE, ops(json!([{
        "op": "Add", "path": "members",
        "value": [{"$ref": null, "value": "f648f8d5ea4e4cd38e9c"}, {"$ref": null, "value": "0b2d7c11aa3e44a0a1c2"}]
    }]))).unwrap();
    assert_eq!(
        member_ids(&out),
        vec![BABS, MANDY, "f648f8d5ea4e4cd38e9c", "0b2d7c11aa3e44a0a1c2"]
    );
    assert!(out["members"][2].get("$ref").is_none());
}

#[test]
fn entra_group_remove_member_by_value_array_without_filter() {
    let out = patch(
        &group(),
        &GROUP_RESOURCE,
        ops(json!([{
            "op": "Remove", "path": "members", "value": [{"value": MANDY}]
        }])),
    )
    .unwrap();
    assert_eq!(member_ids(&out), vec![BABS]);
    // absent member: success, no change
    let out = patch(
        &group(),
        &GROUP_RESOURCE,
        ops(json!([{
            "op": "Remove", "path": "members", "value": [{"value": JAMES}]
        }])),
    )
    .unwrap();
    assert_eq!(member_ids(&out), vec![BABS, MANDY]);
}

#[test]
fn entra_group_flagged_remove_by_filter_and_rename() {
    let out = patch(
        &group(),
        &GROUP_RESOURCE,
        ops(json!([
            {"op": "remove", "path": format!("members[value eq \"{MANDY}\"]")},
            {"op": "Replace", "path": "displayName", "value": "C4C Sales EMEA"}
        ])),
    )
    .unwrap();
    assert_eq!(member_ids(&out), vec![BABS]);
    assert_eq!(out["displayName"], "C4C Sales EMEA");
}

#[test]
fn entra_readding_existing_member_is_idempotent() {
    let out = patch(
        &group(),
        &GROUP_RESOURCE,
        ops(json!([{
            "op": "Add", "path": "members", "value": [{"value": BABS}]
        }])),
    )
    .unwrap();
    assert_eq!(member_ids(&out), vec![BABS, MANDY]);
}

#[test]
fn old_microsoft_value_wrapper_for_simple_attribute() {
    let out = patch(
        &user(),
        &USER_RESOURCE,
        ops(json!([{
            "op": "Replace", "path": "displayName", "value": [{"$ref": null, "value": "Wrapped"}]
        }])),
    )
    .unwrap();
    assert_eq!(out["displayName"], "Wrapped");
}

#[test]
fn case_insensitive_paths_are_canonicalised() {
    let out = patch(&user(), &USER_RESOURCE, ops(json!([
        {"op": "replace", "path": "NAME.GIVENNAME", "value": "B"},
        {"op": "replace", "path": "Emails[Type eq \"work\"].Value", "value": "w@x.y"},
        {"op": "replace", "path": "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:Department", "value": "D"}
    ]))).unwrap();
    assert_eq!(out["name"]["givenName"], "B");
    assert_eq!(out["emails"][0]["value"], "w@x.y");
    assert_eq!(out[ENT]["department"], "D");
}

// ---------------- Okta corpus (scim-clients.md §2) ----------------

#[test]
fn okta_deactivate_pathless_object() {
    let out = patch(
        &user(),
        &USER_RESOURCE,
        ops(json!([{"op": "replace", "value": {"active": false}}])),
    )
    .unwrap();
    assert_eq!(out["active"], false);
    assert_eq!(out["userName"], "bjensen@example.com");
}

#[test]
fn okta_group_rename_with_unchanged_id_is_idempotent() {
    let g = group();
    let body = ops(
        json!([{"op": "replace", "value": {"id": "acbf3ae7-8463-4692-b4fd-9b4da3f908ce", "displayName": "Test SCIMv2"}}]),
    );
    let once = patch(&g, &GROUP_RESOURCE, body.clone()).unwrap();
    let twice = patch(&once, &GROUP_RESOURCE, body).unwrap();
    assert_eq!(once["displayName"], "Test SCIMv2");
    assert_eq!(once, twice);
    // a different id is a mutability error
    let e = patch(
        &g,
        &GROUP_RESOURCE,
        ops(json!([{"op": "replace", "value": {"id": "other"}}])),
    )
    .unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::Mutability));
}

#[test]
fn pathless_replace_of_a_whole_representation_skips_meta_and_schemas() {
    let mut body = user();
    body["displayName"] = json!("Whole");
    body["meta"]["lastModified"] = json!("2030-01-01T00:00:00Z");
    let out = patch(
        &user(),
        &USER_RESOURCE,
        ops(json!([{"op": "replace", "value": body}])),
    )
    .unwrap();
    assert_eq!(out["displayName"], "Whole");
    assert_eq!(out["meta"], user()["meta"]);
}

#[test]
fn okta_membership_remove_and_add_with_display() {
    let out = patch(&group(), &GROUP_RESOURCE, ops(json!([
        {"op": "remove", "path": format!("members[value eq \"{MANDY}\"]")},
        {"op": "add", "path": "members", "value": [{"value": "23a35c27-23d3-4c03-b4c5-6443c09e7173", "display": "test.user@okta.local"}]}
    ]))).unwrap();
    assert_eq!(
        member_ids(&out),
        vec![BABS, "23a35c27-23d3-4c03-b4c5-6443c09e7173"]
    );
    assert_eq!(out["members"][1]["display"], "test.user@okta.local");
}

#[test]
fn okta_full_members_replace() {
    let out = patch(
        &group(),
        &GROUP_RESOURCE,
        ops(json!([
            {"op": "replace", "path": "members", "value": [{"value": JAMES, "display": "James"}]}
        ])),
    )
    .unwrap();
    assert_eq!(member_ids(&out), vec![JAMES]);
    let out = patch(
        &group(),
        &GROUP_RESOURCE,
        ops(json!([{"op": "replace", "path": "members", "value": []}])),
    )
    .unwrap();
    assert!(out.get("members").is_none());
}

#[test]
fn password_is_accepted_and_never_stored() {
    let out = patch(
        &user(),
        &USER_RESOURCE,
        ops(json!([{"op": "replace", "path": "password", "value": "s3cret"}])),
    )
    .unwrap();
    assert!(out.get("password").is_none());
}

// ---------------- atomicity ----------------

#[test]
fn a_failing_operation_discards_earlier_ones() {
    let u = user();
    let e = patch(
        &u,
        &USER_RESOURCE,
        ops(json!([
            {"op": "replace", "path": "displayName", "value": "Changed"},
            {"op": "replace", "path": "id", "value": "nope"}
        ])),
    )
    .unwrap_err();
    assert!(e.detail.starts_with("Operations[1]"), "{}", e.detail);
    assert_eq!(u, user());
}

fn arb_op() -> impl Strategy<Value = Value> {
    let paths = prop_oneof![
        Just(json!("displayName")),
        Just(json!("userName")),
        Just(json!("id")),
        Just(json!("active")),
        Just(json!("name.givenName")),
        Just(json!("emails")),
        Just(json!("emails[type eq \"work\"].value")),
        Just(json!("emails[value co \"x\"].type")),
        Just(json!("phoneNumbers[type eq \"mobile\"]")),
        Just(json!(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"
        )),
        Just(json!("manager[value eq \"m\"]")),
        Just(json!("groups")),
        Just(json!("meta.version")),
        Just(json!("nope")),
        Just(json!("emails[")),
        Just(Value::Null),
    ];
    let values = prop_oneof![
        Just(Value::Null),
        Just(json!("")),
        Just(json!("text")),
        Just(json!("False")),
        Just(json!(true)),
        Just(json!(17)),
        Just(json!({"value": "v", "type": "work", "primary": true})),
        Just(
            json!([{"value": "a"}, {"value": "b", "primary": true}, {"value": "c", "primary": true}])
        ),
        Just(json!({"displayName": "D", "name.familyName": "F"})),
        Just(json!({"unknown": 1})),
    ];
    let op = prop_oneof![Just("add"), Just("Replace"), Just("remove"), Just("bogus")];
    (op, paths, prop::option::of(values)).prop_map(|(op, path, value)| {
        let mut o = serde_json::Map::new();
        o.insert("op".into(), json!(op));
        if !path.is_null() {
            o.insert("path".into(), path);
        }
        if let Some(v) = value {
            o.insert("value".into(), v);
        }
        Value::Object(o)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// A PATCH that fails leaves the resource unchanged; one that succeeds yields a resource in
    /// normal form that validates again to itself.
    #[test]
    fn failed_patch_leaves_resource_unchanged(list in prop::collection::vec(arb_op(), 1..6)) {
        let original = user();
        let snapshot = original.clone();
        let result = PatchRequest::from_json(&ops(Value::Array(list)))
            .and_then(|req| req.apply(&original, &USER_RESOURCE));
        prop_assert_eq!(&original, &snapshot);
        match result {
            Ok(after) => {
                let again = resource::validate_stored(&USER_RESOURCE, &after).unwrap();
                prop_assert_eq!(again, after);
            }
            Err(e) => prop_assert!((400..500).contains(&e.status)),
        }
    }
}
