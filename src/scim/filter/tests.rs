//! RFC 7644 §3.4.2.2 (filters) and §3.5.2 (PATCH paths): parsing and printing.

use super::*;
use crate::scim::error::ScimType;
use proptest::prelude::*;

/// Every filter printed in RFC 7644 (Figure 2 of §3.4.2.2, §3.4.2.2 text, §3.4.3).
const RFC_FILTERS: &[&str] = &[
    r#"userName Eq "john""#,
    r#"Username eq "john""#,
    r#"userName eq "bjensen""#,
    r#"name.familyName co "O'Malley""#,
    r#"userName sw "J""#,
    r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
    r#"title pr"#,
    r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
    r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
    r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
    r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
    r#"title pr and userType eq "Employee""#,
    r#"title pr or userType eq "Intern""#,
    r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
    r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
    r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
    r#"userType eq "Employee" and (emails.type eq "work")"#,
    r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
    r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
    // §3.4.3 search request example
    r#"displayName sw "smith""#,
];

#[test]
fn every_rfc_7644_filter_example_parses_and_round_trips() {
    for src in RFC_FILTERS {
        let f = Filter::parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        let printed = f.to_string();
        assert_eq!(Filter::parse(&printed).unwrap(), f, "{src} -> {printed}");
    }
}

#[test]
fn rfc_filters_outside_the_abnf_are_accepted_leniently() {
    // §3.4.2.1 prints `(meta.resourceType eq User) or (meta.resourceType eq Group)`, §3.7.1
    // `displayName sw 'Group'` and §3.5.2.2 `members[value eq"…"]`; all contradict the ABNF
    // (compValue is a JSON literal after a space) but clients copy them.
    let f = Filter::parse("(meta.resourceType eq User) or (meta.resourceType eq Group)").unwrap();
    assert_eq!(
        f,
        Filter::parse(r#"meta.resourceType eq "User" or meta.resourceType eq "Group""#).unwrap()
    );
    assert_eq!(
        Filter::parse("displayName sw 'Group'").unwrap(),
        Filter::parse(r#"displayName sw "Group""#).unwrap()
    );
    assert_eq!(
        PatchPath::parse(r#"members[value eq"2819c223"]"#).unwrap(),
        PatchPath::parse(r#"members[value eq "2819c223"]"#).unwrap()
    );
    assert_eq!(
        Filter::parse("active eq TRUE").unwrap(),
        Filter::parse("active eq true").unwrap()
    );
}

#[test]
fn entra_value_path_with_sub_attribute_comparison() {
    let f = Filter::parse(r#"emails[type eq "work"].value eq "a@b.c""#).unwrap();
    assert_eq!(
        f,
        Filter::parse(r#"emails[type eq "work" and value eq "a@b.c"]"#).unwrap()
    );
    let g = Filter::parse(
        r#"userName eq "x" or emails[type eq "work" or primary eq true].value EQ "a]b""#,
    )
    .unwrap();
    assert_eq!(
        g,
        Filter::parse(
            r#"userName eq "x" or emails[(type eq "work" or primary eq true) and value eq "a]b"]"#
        )
        .unwrap()
    );
}

#[test]
fn garbage_stays_invalid_filter_with_position() {
    for src in [
        "userName eq",
        "(title pr",
        "title pr )",
        "eq eq eq",
        "userName 'x'",
    ] {
        let e = Filter::parse(src).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidFilter), "{src}");
        assert_eq!(e.status, 400);
        assert!(e.detail.contains("position"), "{}", e.detail);
    }
}

#[test]
fn case_insensitive_operators_and_keywords() {
    let a = Filter::parse(r#"userName EQ "john" AND NOT (title PR) OR active eq true"#).unwrap();
    let b = Filter::parse(r#"userName eq "john" and not (title pr) or active eq true"#).unwrap();
    assert_eq!(a, b);
}

#[test]
fn precedence_and_binds_tighter_than_or() {
    let f = Filter::parse(r#"a eq 1 and b eq 2 or c eq 3"#).unwrap();
    let Filter::Or(items) = &f else {
        panic!("expected or at the top: {f:?}")
    };
    assert!(matches!(items[0], Filter::And(_)));
    let g = Filter::parse(r#"a eq 1 and (b eq 2 or c eq 3)"#).unwrap();
    assert!(matches!(g, Filter::And(_)));
    assert_eq!(g.to_string(), r#"a eq 1 and (b eq 2 or c eq 3)"#);
}

#[test]
fn literals_strings_escapes_numbers_booleans_null() {
    let f = Filter::parse(r#"x eq "a \"q\" \\ \u00e9\n""#).unwrap();
    assert_eq!(
        f,
        Filter::Compare(
            AttrPath::new("x"),
            CompareOp::Eq,
            CompValue::Str("a \"q\" \\ é\n".into())
        )
    );
    assert_eq!(Filter::parse(&f.to_string()).unwrap(), f);
    let n = Filter::parse("x ge -1.5e3").unwrap();
    let Filter::Compare(_, CompareOp::Ge, CompValue::Number(num)) = n else {
        panic!("{n:?}")
    };
    assert_eq!(num.as_f64(), Some(-1500.0));
    assert!(matches!(
        Filter::parse("x eq null").unwrap(),
        Filter::Compare(_, _, CompValue::Null)
    ));
    assert!(matches!(
        Filter::parse("x eq false").unwrap(),
        Filter::Compare(_, _, CompValue::Bool(false))
    ));
}

#[test]
fn urn_prefixed_paths_split_into_uri_name_sub() {
    let f = Filter::parse(
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d""#,
    )
    .unwrap();
    let Filter::Compare(p, ..) = f else { panic!() };
    assert_eq!(
        p.uri.as_deref(),
        Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
    );
    assert_eq!(p.name, "manager");
    assert_eq!(p.sub_attr.as_deref(), Some("value"));
}

#[test]
fn syntax_errors_name_the_position() {
    let e = Filter::parse(r#"userName eq "x" and"#).unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::InvalidFilter));
    assert!(
        e.detail.contains("unexpected 'and' at position 16"),
        "{}",
        e.detail
    );
    let e = Filter::parse(r#"userName zz "x""#).unwrap_err();
    assert!(e.detail.contains("position 9"), "{}", e.detail);
    let e = Filter::parse(r#"  userName eq "x" )"#).unwrap_err();
    assert!(e.detail.contains("position 18"), "{}", e.detail);
    assert!(Filter::parse("").is_err());
    assert!(Filter::parse(r#"emails[type eq "work""#).is_err());
}

#[test]
fn position_of_finds_whole_paths_outside_strings() {
    let src = r#"title eq "emails" or Emails[type eq "work"] or emails.value pr"#;
    assert_eq!(position_of(src, &AttrPath::new("emails")), Some(21));
    assert_eq!(
        position_of(src, &AttrPath::with_sub("emails", "value")),
        Some(47)
    );
    assert_eq!(position_of(src, &AttrPath::new("type")), Some(28));
    assert_eq!(position_of(src, &AttrPath::new("nickName")), None);
}

#[test]
fn hostile_nesting_is_rejected_without_overflow() {
    let deep = format!("{}title pr{}", "not (".repeat(5000), ")".repeat(5000));
    let e = Filter::parse(&deep).unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::InvalidFilter));
    let wide = vec!["title pr"; 2000].join(" or ");
    assert!(Filter::parse(&wide).is_err());
}

/// Every PATCH path printed in RFC 7644 §3.5.2 and the paths of scim-clients.md.
const RFC_PATHS: &[&str] = &[
    "members",
    "name.familyName",
    r#"addresses[type eq "work"]"#,
    r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#,
    r#"members[value eq "2819c223-7f76-453a-919d-413861904646"].displayName"#,
    r#"emails[type eq "work" and value ew "example.com"]"#,
    r#"addresses[type eq "work"].streetAddress"#,
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
    r#"emails[type eq "work"].value"#,
    r#"phoneNumbers[type eq "mobile"].value"#,
    r#"addresses[type eq "work"].postalCode"#,
    r#"manager[value eq "abc"]"#,
    "active",
    "x509Certificates",
];

#[test]
fn every_rfc_patch_path_parses_and_round_trips() {
    for src in RFC_PATHS {
        let p = PatchPath::parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        assert_eq!(PatchPath::parse(&p.to_string()).unwrap(), p, "{src}");
    }
    let p = PatchPath::parse(r#"emails[type eq "work"].value"#).unwrap();
    let PatchPath::Value {
        attr,
        filter,
        sub_attr,
    } = p
    else {
        panic!()
    };
    assert_eq!(attr, AttrPath::new("emails"));
    assert_eq!(sub_attr.as_deref(), Some("value"));
    assert_eq!(filter.to_string(), r#"type eq "work""#);
}

/// Fuzz regression (filter target, crash-7284e8b2): a big integer literal became an f64 that
/// printed as `1.3673980002187135e+20` and parsed back one ulp off, until serde_json's
/// `float_roundtrip` was enabled.
#[test]
fn fuzz_regression_large_number_literal_round_trips() {
    let p = PatchPath::parse("a[timsle ge 136739800021871342748]").unwrap();
    assert_eq!(PatchPath::parse(&p.to_string()).unwrap(), p);
    for src in [
        "x eq 1.3673980002187135e+20",
        "x eq 0.30000000000000004",
        "x lt 5e-324",
    ] {
        let f = Filter::parse(src).unwrap();
        assert_eq!(Filter::parse(&f.to_string()).unwrap(), f, "{src}");
    }
}

#[test]
fn bad_patch_paths_are_invalid_path() {
    for src in ["emails[", "a.b.c", "1abc", "emails[type eq \"w\"].", "  "] {
        let e = PatchPath::parse(src).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidPath), "{src}");
    }
}

#[test]
fn attr_path_parse_rejects_value_paths() {
    assert_eq!(
        AttrPath::parse("name.givenName").unwrap(),
        AttrPath::with_sub("name", "givenName")
    );
    assert!(AttrPath::parse(r#"emails[type eq "work"]"#).is_err());
}

// ---- property tests: print → parse gives the same AST ----

fn arb_name() -> impl Strategy<Value = String> {
    "[a-zA-Z][a-zA-Z0-9_-]{0,8}".prop_filter("keywords are not names", |s| {
        ![
            "and", "or", "not", "pr", "eq", "ne", "co", "sw", "ew", "gt", "lt", "ge", "le", "true",
            "false", "null",
        ]
        .contains(&s.to_ascii_lowercase().as_str())
    })
}

fn arb_path() -> impl Strategy<Value = AttrPath> {
    (
        prop::option::of(prop_oneof![
            Just("urn:ietf:params:scim:schemas:core:2.0:User".to_string()),
            Just("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User".to_string()),
        ]),
        arb_name(),
        prop::option::of(arb_name()),
    )
        .prop_map(|(uri, name, sub_attr)| AttrPath {
            uri,
            name,
            sub_attr,
        })
}

fn arb_value() -> impl Strategy<Value = CompValue> {
    prop_oneof![
        Just(CompValue::Null),
        any::<bool>().prop_map(CompValue::Bool),
        any::<i64>().prop_map(|i| CompValue::Number(i.into())),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(CompValue::Number)),
        any::<String>().prop_map(CompValue::Str),
    ]
}

fn arb_op() -> impl Strategy<Value = CompareOp> {
    prop_oneof![
        Just(CompareOp::Eq),
        Just(CompareOp::Ne),
        Just(CompareOp::Co),
        Just(CompareOp::Sw),
        Just(CompareOp::Ew),
        Just(CompareOp::Gt),
        Just(CompareOp::Lt),
        Just(CompareOp::Ge),
        Just(CompareOp::Le),
    ]
}

fn arb_leaf() -> impl Strategy<Value = Filter> {
    prop_oneof![
        arb_path().prop_map(Filter::Present),
        (arb_path(), arb_op(), arb_value()).prop_map(|(p, o, v)| Filter::Compare(p, o, v)),
    ]
}

fn combine(leaf: BoxedStrategy<Filter>) -> impl Strategy<Value = Filter> {
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|f| Filter::Not(Box::new(f))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::and(a, b)),
            (inner.clone(), inner).prop_map(|(a, b)| Filter::or(a, b)),
        ]
    })
}

fn arb_filter() -> impl Strategy<Value = Filter> {
    let simple_name = arb_name().prop_map(AttrPath::new);
    let value_path =
        (simple_name, combine(arb_leaf_in_element().boxed())).prop_map(|(attr, filter)| {
            Filter::ValuePath {
                attr,
                filter: Box::new(filter),
            }
        });
    combine(prop_oneof![3 => arb_leaf(), 1 => value_path].boxed())
}

/// Inside `[...]` paths are sub-attribute names.
fn arb_leaf_in_element() -> impl Strategy<Value = Filter> {
    prop_oneof![
        arb_name().prop_map(|n| Filter::Present(AttrPath::new(n))),
        (arb_name().prop_map(AttrPath::new), arb_op(), arb_value())
            .prop_map(|(p, o, v)| Filter::Compare(p, o, v)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn printed_filters_parse_back_to_the_same_ast(f in arb_filter()) {
        let printed = f.to_string();
        let parsed = Filter::parse(&printed);
        prop_assert!(parsed.is_ok(), "{printed}: {:?}", parsed);
        prop_assert_eq!(parsed.unwrap(), f);
    }

    #[test]
    fn printed_patch_paths_parse_back(attr in arb_name().prop_map(AttrPath::new),
                                      filter in combine(arb_leaf_in_element().boxed()),
                                      sub_attr in prop::option::of(arb_name())) {
        let p = PatchPath::Value { attr, filter, sub_attr };
        let printed = p.to_string();
        prop_assert_eq!(PatchPath::parse(&printed).unwrap(), p);
    }

    #[test]
    fn the_parser_never_panics(s in any::<String>()) {
        let _ = Filter::parse(&s);
        let _ = PatchPath::parse(&s);
    }
}
