use super::*;
use crate::mapping::MappingConfig;
use crate::mapping::tests::sim_metadata;
use crate::scim::error::ScimType;

fn mapper() -> Mapper {
    Mapper::new(MappingConfig::default(), Some(sim_metadata())).unwrap()
}

fn rendered(plan: &QueryPlan, m: &Mapper) -> Vec<String> {
    match plan {
        QueryPlan::OData { queries, .. } => queries
            .iter()
            .map(|q| {
                q.render(m.employee_type(), &TenantProfile::default())
                    .unwrap()
            })
            .collect(),
        QueryPlan::Store { .. } => Vec::new(),
    }
}

fn plan_of(text: &str) -> Result<QueryPlan, ScimError> {
    plan(&Filter::parse(text).unwrap(), &mapper())
}

/// (SCIM filter, OData queries, residual evaluated locally?)
#[test]
fn pushes_down_what_c4c_accepts() {
    let m = mapper();
    let cases: Vec<(&str, Vec<&str>, bool)> = vec![
        (
            "name.familyName eq \"Doe\"",
            vec!["LastName eq 'Doe'"],
            false,
        ),
        (
            "name.familyName eq \"  Doe \"",
            vec!["LastName eq 'Doe'"],
            false,
        ),
        (
            "emails[type eq \"work\"].value eq \"Jane@X.com\"",
            vec!["Email eq 'jane@x.com'"],
            true,
        ),
        (
            "emails.value eq \"jane@x.com\"",
            vec!["Email eq 'jane@x.com'"],
            true,
        ),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq \"1283302\"",
            vec!["EmployeeID eq '1283302'"],
            false,
        ),
        (
            "employeeNumber eq \"1283302\"",
            vec!["EmployeeID eq '1283302'"],
            false,
        ),
        (
            "name.familyName sw \"Do\"",
            vec!["startswith(LastName,'Do')"],
            true,
        ),
        (
            "name.familyName ew \"oe\"",
            vec!["endswith(LastName,'oe')"],
            true,
        ),
        ("name.familyName co \"o\"", vec!["LastName eq '*o*'"], true),
        ("name.familyName gt \"M\"", vec!["LastName gt 'M'"], false),
        (
            "name.familyName eq \"Doe\" or name.familyName eq \"Roe\"",
            vec!["LastName eq 'Doe' or LastName eq 'Roe'"],
            false,
        ),
        (
            "name.familyName eq \"Doe\" or name.givenName eq \"Jane\"",
            vec!["LastName eq 'Doe'", "FirstName eq 'Jane'"],
            false,
        ),
        (
            "name.familyName eq \"Doe\" and (name.givenName eq \"Jane\" or nickName eq \"J\")",
            vec![
                "LastName eq 'Doe' and FirstName eq 'Jane'",
                "LastName eq 'Doe' and NickName eq 'J'",
            ],
            false,
        ),
        // The narrowing part goes to C4C, the rest is evaluated locally.
        (
            "name.familyName eq \"Doe\" and title eq \"Boss\"",
            vec!["LastName eq 'Doe'"],
            true,
        ),
        (
            "name.familyName eq \"Doe\" and not (name.givenName eq \"J\")",
            vec!["LastName eq 'Doe'"],
            true,
        ),
        (
            "name.familyName eq \"Doe\" and nickName pr",
            vec!["LastName eq 'Doe'"],
            true,
        ),
        (
            "name.familyName eq \"Doe\" and nickName ne \"J\"",
            vec!["LastName eq 'Doe'"],
            true,
        ),
        ("active eq false", vec!["UserLockedIndicator eq true"], true),
        (
            "addresses[type eq \"work\"].country eq \"Germany\"",
            vec!["CountryCode eq 'DE'"],
            true,
        ),
        ("locale eq \"de-CH\"", vec!["LanguageCode eq 'DE'"], true),
        // A `*` is C4C's wildcard: pushed, and the result re-checked.
        (
            "name.familyName eq \"D*e\"",
            vec!["LastName eq 'D*e'"],
            true,
        ),
    ];
    for (text, want, residual) in cases {
        let p = plan_of(text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
        assert_eq!(rendered(&p, &m), want, "{text}");
        let QueryPlan::OData { residual: r, .. } = &p else {
            panic!("{text}: {p:?}")
        };
        assert_eq!(r.is_some(), residual, "{text}: residual {r:?}");
    }
}

#[test]
fn store_answers_id_external_id_and_user_name() {
    let cases = [
        ("userName eq \"Alice@Contoso.com\"", None),
        ("USERNAME Eq \"alice\"", None),
        ("externalId eq \"a\" or id eq \"b\"", None),
        ("id eq \"x\" and manager eq \"y\"", Some("manager eq \"y\"")),
        (
            "userName sw \"a\" and title eq \"t\"",
            Some("title eq \"t\""),
        ),
    ];
    for (text, want_residual) in cases {
        match plan_of(text).unwrap() {
            QueryPlan::Store { residual, .. } => {
                assert_eq!(
                    residual.map(|r| r.to_string()).as_deref(),
                    want_residual,
                    "{text}"
                )
            }
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn refuses_what_c4c_cannot_narrow() {
    let cases = [
        (
            "title eq \"Boss\"",
            "title has no home in C4C (rule title keeps it locally)",
        ),
        ("nickName pr", "'nickName pr' (C4C has no presence test)"),
        (
            "not (name.familyName eq \"Doe\")",
            "'not' (C4C has no negation)",
        ),
        ("name.familyName ne \"Doe\"", "'ne' on name.familyName"),
        (
            "name.familyName eq \"Doe\" or title eq \"x\"",
            "title has no home in C4C",
        ),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq \"Sales\"",
            "@org_unit",
        ),
        ("x-unknown eq \"1\"", "no rule mapping it"),
        ("timezone eq \"Mars/Base\"", "no entry"),
        ("active gt true", ""),
    ];
    for (text, want) in cases {
        let err = plan_of(text).unwrap_err();
        assert_eq!(err.scim_type, Some(ScimType::InvalidFilter), "{text}");
        assert!(err.detail.contains(want), "{text}: {}", err.detail);
    }
}

/// Values with quotes, parentheses and OData keywords stay one literal: the query structure
/// never changes with the input.
#[test]
fn injection_attempts_stay_literals() {
    let m = mapper();
    let cases = [
        (
            "name.familyName eq \"x' or UserID ne '\"",
            "LastName eq 'x'' or UserID ne '''",
        ),
        (
            "name.familyName eq \"O'Brien) or (FirstName eq 'a\"",
            "LastName eq 'O''Brien) or (FirstName eq ''a'",
        ),
        (
            "name.givenName sw \"a') or substringof('b\"",
            "startswith(FirstName,'a'') or substringof(''b')",
        ),
        (
            "nickName eq \"and eq or not ( ) $filter=&$top=1\"",
            "NickName eq 'and eq or not ( ) $filter=&$top=1'",
        ),
        ("nickName eq \"\\\"quoted\\\"\"", "NickName eq '\"quoted\"'"),
        ("nickName eq \"''\"", "NickName eq ''''''"),
    ];
    for (text, want) in cases {
        let p = plan_of(text).unwrap();
        assert_eq!(rendered(&p, &m), vec![want], "{text}");
    }
    // userName is answered by the store: nothing reaches C4C at all.
    assert!(matches!(
        plan_of("userName eq \"x' or UserID ne '\"").unwrap(),
        QueryPlan::Store { .. }
    ));
    // Mixed with an OData leaf, userName goes to C4C as a literal too.
    let p = plan_of("userName eq \"x' or UserID ne '\" or name.familyName eq \"y\"").unwrap();
    assert_eq!(
        rendered(&p, &m),
        vec!["UserID eq 'x'' or UserID ne '''", "LastName eq 'y'"]
    );
}

/// A rule with a default or a condition can put values in C4C the SCIM attribute never had:
/// the pushed query is re-checked locally.
#[test]
fn defaults_and_conditions_make_the_query_inexact() {
    let mut config = MappingConfig::default();
    config.rules[4]
        .transforms
        .push(Transform::Default(serde_json::json!("none")));
    config.rules[2].when = Some(crate::mapping::config::Condition {
        present: Some("name.givenName".into()),
        absent: None,
        path: None,
        equals: None,
    });
    let m = Mapper::new(config, Some(sim_metadata())).unwrap();
    for text in ["nickName eq \"none\"", "name.familyName eq \"Doe\""] {
        match plan(&Filter::parse(text).unwrap(), &m).unwrap() {
            QueryPlan::OData { residual, .. } => assert!(residual.is_some(), "{text}"),
            other => panic!("{text}: {other:?}"),
        }
    }
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        /// Any value becomes exactly one quoted literal after the operator.
        #[test]
        fn any_value_is_one_literal(s in "[ -~]{1,30}") {
            let m = mapper();
            let f = Filter::Compare(AttrPath::new("nickName"), CompareOp::Eq, CompValue::Str(s.clone()));
            let p = plan(&f, &m).unwrap();
            let q = rendered(&p, &m);
            prop_assert_eq!(q.len(), 1);
            let lit = q[0].strip_prefix("NickName eq '").unwrap().strip_suffix('\'').unwrap();
            prop_assert!(!lit.replace("''", "").contains('\''));
            prop_assert_eq!(lit.replace("''", "'"), s.trim());
        }
    }
}
