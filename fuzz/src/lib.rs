//! Fuzz harness: compiles `src/scim` as a module of this crate (same source files as the
//! bridge) and exposes one checked entry point per target. Each entry point asserts properties
//! that must hold for any input, so a violated property is a crash, not just a panic hunt.

#![allow(clippy::panic)]

#[path = "../../src/scim/mod.rs"]
pub mod scim;

pub mod c4c;

use scim::filter::{Filter, PatchPath};
use scim::schema::{GROUP_RESOURCE, USER_RESOURCE};
use serde_json::{Value, json};

/// A user with every kind of attribute, as the PATCH target.
pub fn sample_user() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "bjensen",
        "userName": "bjensen@example.com",
        "name": {"formatted": "Ms. Barbara J Jensen III", "familyName": "Jensen", "givenName": "Barbara"},
        "displayName": "Babs Jensen",
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "phoneNumbers": [{"value": "555-555-8377", "type": "work"}],
        "addresses": [{"type": "work", "streetAddress": "100 Universal City Plaza", "locality": "Hollywood", "postalCode": "91608", "country": "US", "primary": true}],
        "groups": [{"value": "e9e30dba-f08f-4109-8486-d5c6a331660a", "display": "Tour Guides"}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": "701984", "department": "Tour Operations",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}
        },
        "meta": {"resourceType": "User", "created": "2010-01-23T04:56:22Z", "lastModified": "2011-05-13T04:42:34Z", "version": "W/\"a330bc54f0671c9\""}
    })
}

/// A group with members, as the PATCH target.
pub fn sample_group() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": "e9e30dba-f08f-4109-8486-d5c6a331660a",
        "displayName": "Tour Guides",
        "members": [
            {"value": "2819c223-7f76-453a-919d-413861904646", "display": "Babs Jensen", "type": "User"},
            {"value": "902c246b-6245-4190-8e05-00816be7344a", "display": "Mandy Pepperidge"}
        ]
    })
}

/// Filter and PATCH-path parsing: never panics; whatever parses prints back to text that parses
/// to the same AST; evaluation never panics.
pub fn fuzz_filter(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(f) = Filter::parse(text) {
        let printed = f.to_string();
        let again = Filter::parse(&printed)
            .unwrap_or_else(|e| panic!("printed filter does not parse: {printed:?}: {e}"));
        assert_eq!(f, again, "round trip changed {text:?} -> {printed:?}");
        for (doc, rt) in [
            (sample_user(), &USER_RESOURCE),
            (sample_group(), &GROUP_RESOURCE),
        ] {
            let _ = scim::eval::check_source(&f, text, rt);
            let _ = scim::eval::matches(&f, &doc, rt);
        }
    }
    if let Ok(p) = PatchPath::parse(text) {
        let printed = p.to_string();
        let again = PatchPath::parse(&printed)
            .unwrap_or_else(|e| panic!("printed path does not parse: {printed:?}: {e}"));
        assert_eq!(p, again, "round trip changed {text:?} -> {printed:?}");
    }
}

/// PATCH: never panics; a successful result is in normal form (validating it again changes
/// nothing) and can be projected and versioned.
pub fn fuzz_patch(data: &[u8]) {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(req) = scim::patch::PatchRequest::from_json(&body) else {
        return;
    };
    for (doc, rt) in [
        (sample_user(), &USER_RESOURCE),
        (sample_group(), &GROUP_RESOURCE),
    ] {
        let before = doc.clone();
        match req.apply(&doc, rt) {
            Ok(after) => {
                let again = scim::resource::validate_stored(rt, &after)
                    .unwrap_or_else(|e| panic!("PATCH result does not validate: {e}: {after}"));
                assert_eq!(again, after, "PATCH result is not in normal form");
                let _ = scim::resource::project(rt, &after, &[], &[]);
                let _ = scim::etag::compute(&after);
            }
            Err(e) => assert!(
                (400..500).contains(&e.status),
                "PATCH error is not 4xx: {e}"
            ),
        }
        assert_eq!(doc, before);
    }
}

/// Resource parsing: never panics; a validated resource validates again to itself, and a PUT
/// of it over the sample keeps its read-only attributes.
pub fn fuzz_resource(data: &[u8]) {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    for (current, rt) in [
        (sample_user(), &USER_RESOURCE),
        (sample_group(), &GROUP_RESOURCE),
    ] {
        match scim::resource::validate_for_create(rt, &body) {
            Ok(created) => {
                let again = scim::resource::validate_for_create(rt, &created)
                    .unwrap_or_else(|e| panic!("created resource does not validate again: {e}"));
                assert_eq!(again, created);
                let _ = scim::resource::project(rt, &created, &[], &[]);
            }
            Err(e) => assert!((400..500).contains(&e.status), "error is not 4xx: {e}"),
        }
        if let Ok(replaced) = scim::resource::validate_for_replace(rt, &body, &current) {
            assert_eq!(replaced.get("id"), current.get("id"));
        }
    }
}

/// OData JSON responses: the collection and entity parsers never panic, whatever C4C (or a
/// proxy in front of it) sends; a parsed collection holds objects only.
pub fn fuzz_odata_response(data: &[u8]) {
    if let Ok(page) = c4c::odata::parse_collection(data) {
        let _ = format!("{page:?}");
    }
    let _ = c4c::odata::parse_entity(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = c4c::odata::parse_odata_date(text);
    }
    // Error bodies (JSON or XML): always some error, whatever the body.
    for status in [400, 403, 404, 412, 429, 500, 503] {
        let error = c4c::error::error_from_response(status, false, None, data);
        let _ = error.to_string();
    }
}

/// `$batch` responses: the multipart parser never panics, and a parsed answer has exactly one
/// result per requested part, and one per change inside a changeset.
pub fn fuzz_batch_response(data: &[u8]) {
    use c4c::batch::{BatchChange, BatchPart, BatchPartResult};
    let request = vec![
        BatchPart::Changeset(vec![
            BatchChange::post("EmployeeCollection", json!({"FirstName": "A"})),
            BatchChange::patch("EmployeeCollection('00163E')", json!({"LastName": "B"}), None),
        ]),
        BatchPart::Get("EmployeeCollection?$top=1".to_owned()),
        BatchPart::Changeset(vec![BatchChange::delete(
            "EmployeeUserBusinessRoleAssignmentCollection('00163F')",
        )]),
    ];
    for content_type in [
        "multipart/mixed; boundary=batch_resp",
        "multipart/mixed;boundary=\"batch_resp\"",
    ] {
        if let Ok(results) = c4c::batch::parse(content_type, data, &request) {
            assert_eq!(results.len(), request.len());
            for (result, part) in results.iter().zip(&request) {
                match (result, part) {
                    (BatchPartResult::Get(_), BatchPart::Get(_)) => {}
                    (BatchPartResult::Changeset(changes), BatchPart::Changeset(asked)) => {
                        assert_eq!(changes.len(), asked.len());
                    }
                    _ => panic!("result kind does not match its request part"),
                }
            }
        }
    }
}

