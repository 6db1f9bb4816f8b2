use super::*;
use crate::scim::resource::validate_for_create;
use proptest::prelude::*;
use serde_json::json;
use std::sync::OnceLock;

/// The simulator's `$metadata`, fetched once from a simulator on an ephemeral port.
pub(crate) fn sim_metadata() -> &'static Metadata {
    static MD: OnceLock<Metadata> = OnceLock::new();
    MD.get_or_init(|| {
        std::thread::spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let sim = crate::sim::Simulator::start(crate::sim::SimConfig::default())
                    .await
                    .unwrap();
                let body = reqwest::Client::new()
                    .get(format!("{}/$metadata", sim.service_url()))
                    .basic_auth(crate::sim::DEFAULT_USER, Some(crate::sim::DEFAULT_PASSWORD))
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
                sim.shutdown().await;
                Metadata::parse(&body).unwrap()
            })
        })
        .join()
        .unwrap()
    })
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
}

fn mapper(config: MappingConfig) -> Mapper {
    Mapper::new(config, Some(sim_metadata()))
        .unwrap()
        .with_today(today())
}

fn default_mapper() -> Mapper {
    mapper(MappingConfig::default())
}

fn user(v: Value) -> Value {
    validate_for_create(&USER_RESOURCE, &v).unwrap()
}

fn entra_user() -> Value {
    user(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "externalId": "alice",
        "userName": "alice@contoso.com",
        "active": true,
        "displayName": "Alice Example",
        "emails": [{"primary": true, "type": "work", "value": "Alice@Contoso.com"}],
        "name": {"formatted": "Alice Example", "familyName": "Example", "givenName": "Alice"},
        "title": "Sales Rep",
        "locale": "en-US",
        "timezone": "Europe/Berlin",
        "phoneNumbers": [{"type": "mobile", "value": "+49 170 1"}, {"type": "work", "value": "+49 30 1"}],
        "addresses": [{"type": "work", "country": "DE", "locality": "Berlin"}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": "100234",
            "department": "Sales",
            "manager": {"value": "mgr-1"}
        },
        "meta": {"resourceType": "User"},
        "roles": []
    }))
}

#[test]
fn default_rules_pass_validation_against_the_simulator() {
    let problems = validate(&MappingConfig::default(), sim_metadata());
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn misspelt_property_fails_with_did_you_mean() {
    let mut config = MappingConfig::default();
    config.rules[5].to = "Emial".into();
    let problems = validate(&config, sim_metadata());
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let text = problems[0].to_string();
    assert_eq!(
        text,
        "error: rule work_email (emails[type eq \"work\"].value -> Emial): Employee has no property Emial; did you mean Email?"
    );
    let err = Mapper::new(config, Some(sim_metadata())).unwrap_err();
    assert_eq!(err.len(), 1);
}

#[test]
fn validation_table() {
    let base = |to: &str, scim: &str, transforms: Vec<Transform>| Rule {
        name: "r".into(),
        scim: Some(scim.into()),
        template: None,
        value: None,
        to: to.into(),
        transforms,
        direction: Direction::Both,
        when: None,
        create_only: false,
        too_long: None,
    };
    let mut lookups = std::collections::BTreeMap::new();
    lookups.insert(
        "long".to_string(),
        [("a".to_string(), "ABCDEFGHIJKLMNOP".to_string())]
            .into_iter()
            .collect(),
    );
    let cases: Vec<(Rule, Option<&str>)> = vec![
        (base("Email", "userName", vec![]), None),
        (
            base("EmployeeID", "userName", vec![]),
            Some("EmployeeID is not updatable in $metadata: set create_only = true"),
        ),
        (
            base("ObjectID", "userName", vec![]),
            Some("ObjectID is read-only in $metadata"),
        ),
        (
            base("UserLockedIndicator", "userName", vec![]),
            Some("UserLockedIndicator is Boolean but the rule produces Text"),
        ),
        (
            base("UserLockedIndicator", "active", vec![Transform::Not]),
            None,
        ),
        (
            base("Email", "nosuch", vec![]),
            Some("nosuch is not an attribute of the SCIM User schema"),
        ),
        (base("Email", "userName eq \"x\"", vec![]), Some("")),
        (
            base("@nowhere", "userName", vec![]),
            Some("unknown target @nowhere"),
        ),
        (
            base(
                "LanguageCode",
                "locale",
                vec![Transform::Default(json!("ENG"))],
            ),
            Some("constant \"ENG\" is longer than 2 characters"),
        ),
        (
            base(
                "LanguageCode",
                "locale",
                vec![Transform::Lookup(config::Lookup {
                    table: "langauge".into(),
                    missing: Missing::Skip,
                })],
            ),
            Some("no lookup table 'langauge'; did you mean language?"),
        ),
        (
            base(
                "TimeZoneCode",
                "timezone",
                vec![Transform::Lookup(config::Lookup {
                    table: "long".into(),
                    missing: Missing::Skip,
                })],
            ),
            Some("lookup table 'long' has value \"ABCDEFGHIJKLMNOP\", longer than 10 characters"),
        ),
        (
            base("@active", "userName", vec![]),
            Some("@active needs a boolean source"),
        ),
    ];
    for (rule, want) in cases {
        let config = MappingConfig {
            rules: vec![rule.clone()],
            lookups: lookups.clone(),
            ..Default::default()
        };
        let problems = validate(&config, sim_metadata());
        match want {
            None => assert!(problems.is_empty(), "{rule:?}: {problems:#?}"),
            Some(text) => {
                assert!(!problems.is_empty(), "{rule:?} passed");
                let all = problems
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join("\n");
                assert!(all.contains(text), "{rule:?}: {all}");
            }
        }
    }
}

#[test]
fn maps_entra_default_user() {
    let m = default_mapper();
    let out = m
        .to_c4c(&entra_user(), MapKind::Create, &NoReferences)
        .unwrap();
    assert_eq!(
        Value::Object(out.fields.0.clone()),
        json!({
            "UserID": "alice@contoso.com",
            "FirstName": "Alice",
            "LastName": "Example",
            "Email": "alice@contoso.com",
            "OfficePhoneNumber": "+49 30 1",
            "MobilePhoneNumber": "+49 170 1",
            "City": "Berlin",
            "CountryCode": "DE",
            "LanguageCode": "EN",
            "TimeZoneCode": "CET",
            "EmployeeID": "100234",
            "UserLockedIndicator": false
        })
    );
    // No department → org unit table by default: skipped and said so.
    assert!(out.child_ops.is_empty());
    assert!(matches!(
        out.trace.rule("department").unwrap().outcome,
        Outcome::Skipped { .. }
    ));
    assert_eq!(
        out.trace.rule("any_email").unwrap().outcome,
        Outcome::Shadowed {
            by: "work_email".into()
        }
    );
    assert_eq!(
        out.trace.rule("manager").unwrap().outcome,
        Outcome::KeptLocally
    );
    assert_eq!(out.local.get("title"), Some(&json!("Sales Rep")));
    // Phone numbers are sensitive by default: masked in the trace.
    assert_eq!(
        out.trace.rule("work_phone").unwrap().before.as_deref(),
        Some("***")
    );
    assert_eq!(
        out.trace.rule("user_name").unwrap().before.as_deref(),
        Some("\"alice@contoso.com\"")
    );
    // The body passes the C4C client's $metadata write check.
    sim_metadata()
        .check_write(
            "EmployeeCollection",
            &out.fields.0,
            crate::c4c::WriteKind::Create,
        )
        .unwrap();
}

#[test]
fn okta_user_without_types_or_extension() {
    let m = default_mapper();
    let u = user(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "test.user@okta.local",
        "name": {"givenName": "Test", "familyName": "User"},
        "emails": [{"primary": true, "value": "test.user@okta.local"}],
        "displayName": "Test User", "locale": "de-CH", "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [], "password": "1mz050nq", "active": false
    }));
    let out = m.to_c4c(&u, MapKind::Create, &NoReferences).unwrap();
    assert_eq!(
        out.fields.get("Email"),
        Some(&json!("test.user@okta.local"))
    );
    assert_eq!(out.fields.get("LanguageCode"), Some(&json!("DE")));
    assert_eq!(out.fields.get("UserLockedIndicator"), Some(&json!(true)));
    assert!(out.fields.get("EmployeeID").is_none());
}

#[test]
fn mandatory_properties_and_too_long_values() {
    let m = default_mapper();
    let err = m
        .to_c4c(
            &user(json!({"userName": "x", "name": {"givenName": "A"}})),
            MapKind::Create,
            &NoReferences,
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "LastName is mandatory in C4C: set name.familyName"
    );
    let long = "a".repeat(41);
    let u = user(json!({"userName": long, "name": {"givenName": "A", "familyName": "B"}}));
    let err = m.to_c4c(&u, MapKind::Create, &NoReferences).unwrap_err();
    assert_eq!(
        err.to_string(),
        "rule user_name (userName -> UserID): value has 41 characters, UserID allows 40"
    );
    assert_eq!(ScimError::from(err).status, 400);
    let t = mapper(MappingConfig {
        too_long: TooLong::Truncate,
        ..Default::default()
    });
    let out = t.to_c4c(&u, MapKind::Create, &NoReferences).unwrap();
    assert_eq!(out.fields.get("UserID"), Some(&json!("a".repeat(40))));
    assert_eq!(
        out.trace.rule("user_name").unwrap().outcome,
        Outcome::Truncated { max: 40 }
    );
}

#[test]
fn deprovisioning_modes() {
    let cases = [
        (
            Deprovisioning::Lock,
            json!({"UserLockedIndicator": true}),
            json!({"UserLockedIndicator": false}),
        ),
        (
            Deprovisioning::EndValidity,
            json!({"UserValidityEndDate": "2026-11-23T00:00:00"}),
            json!({"UserValidityEndDate": "9999-12-31T00:00:00"}),
        ),
        (
            Deprovisioning::Both,
            json!({"UserLockedIndicator": true, "UserValidityEndDate": "2026-11-23T00:00:00"}),
            json!({"UserLockedIndicator": false, "UserValidityEndDate": "9999-12-31T00:00:00"}),
        ),
    ];
    for (mode, off, on) in cases {
        let m = mapper(MappingConfig {
            deprovisioning: mode,
            ..Default::default()
        });
        assert_eq!(Value::Object(m.deactivate_fields().0), off, "{mode:?}");
        assert_eq!(Value::Object(m.reactivate_fields().0), on, "{mode:?}");
    }
}

#[test]
fn update_sends_only_changes_and_refuses_employee_id_change() {
    let m = default_mapper();
    let old = entra_user();
    let mut new = old.clone();
    new["name"]["givenName"] = json!("Alicia");
    new["active"] = json!(false);
    new["phoneNumbers"] = json!([{"type": "work", "value": "+49 30 1"}]);
    let out = m.diff_for_update(&old, &new, &NoReferences).unwrap();
    assert_eq!(
        Value::Object(out.fields.0.clone()),
        json!({"FirstName": "Alicia", "UserLockedIndicator": true, "MobilePhoneNumber": null})
    );
    assert_eq!(
        out.trace.rule("family_name").unwrap().outcome,
        Outcome::Unchanged
    );
    assert_eq!(
        out.trace.rule("employee_number").unwrap().outcome,
        Outcome::CreateOnly
    );
    let same = m.diff_for_update(&old, &old, &NoReferences).unwrap();
    assert!(same.fields.is_empty() && same.child_ops.is_empty());
    let mut renumbered = old.clone();
    renumbered["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["employeeNumber"] =
        json!("999");
    let err = m
        .diff_for_update(&old, &renumbered, &NoReferences)
        .unwrap_err();
    assert!(matches!(err, MappingError::Immutable { .. }), "{err}");
    assert_eq!(
        ScimError::from(err).scim_type,
        Some(crate::scim::error::ScimType::Mutability)
    );
}

struct Refs;
impl ReferenceResolver for Refs {
    fn c4c_key_of(&self, scim_id: &str) -> Option<String> {
        (scim_id == "mgr-1").then(|| "E1001".into())
    }
    fn scim_id_of(&self, key: &str) -> Option<String> {
        (key == "E1001").then(|| "mgr-1".into())
    }
}

fn custom_rule(name: &str, toml_rule: &str) -> Rule {
    let text = format!("[[rules]]\nname = \"{name}\"\n{toml_rule}");
    MappingConfig::from_toml_str(&text).unwrap().rules.remove(0)
}

#[test]
fn rules_with_templates_conditions_children_and_references() {
    let mut config = MappingConfig::default();
    config.lookups.insert(
        "org_units".into(),
        [("Sales".to_string(), "OU_SALES".to_string())]
            .into_iter()
            .collect(),
    );
    config.lookups.insert(
        "business_roles".into(),
        [("C4C Sales".to_string(), "SALES_REP".to_string())]
            .into_iter()
            .collect(),
    );
    config.rules.insert(0, custom_rule("nick", "template = \"{name.givenName} {name.familyName}\"\nto = \"NickName\"\ntransforms = [{ truncate = 40 }]"));
    config.rules.insert(0, custom_rule("policy", "value = \"S_BUSINESS_USER_WITHOUT_PASSWORD\"\nto = \"UserPasswordPolicyCode\"\nwhen = { path = \"userType\", equals = \"Employee\" }"));
    config.rules.insert(0, custom_rule("mgr", "scim = \"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value\"\nto = \"BirthName\"\ntransforms = [\"reference\"]"));
    config.rules.insert(0, custom_rule("born", "scim = \"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter\"\nto = \"BirthDate\"\ntransforms = [{ date = { format = \"%d.%m.%Y\" } }]"));
    let m = mapper(config);
    let mut u = entra_user();
    u["userType"] = json!("employee");
    u["groups"] =
        json!([{"value": "g1", "display": "C4C Sales"}, {"value": "g2", "display": "Other"}]);
    u["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["costCenter"] =
        json!("01.02.1990");
    let out = m.to_c4c(&u, MapKind::Create, &Refs).unwrap();
    assert_eq!(out.fields.get("NickName"), Some(&json!("Alice Example")));
    assert_eq!(
        out.fields.get("UserPasswordPolicyCode"),
        Some(&json!("S_BUSINESS_USER_WITHOUT_PASSWORD"))
    );
    assert_eq!(out.fields.get("BirthName"), Some(&json!("E1001")));
    assert_eq!(
        out.fields.get("BirthDate"),
        Some(&json!("1990-02-01T00:00:00"))
    );
    assert_eq!(
        out.child_ops,
        vec![
            ChildOp::AssignOrgUnit {
                org_unit_id: "OU_SALES".into()
            },
            ChildOp::SetBusinessRoles {
                role_ids: vec!["SALES_REP".into()]
            },
        ]
    );
    // Unresolved reference: skipped, said so; the condition not met: skipped.
    u["userType"] = json!("Contractor");
    let out = m.to_c4c(&u, MapKind::Create, &NoReferences).unwrap();
    assert!(out.fields.get("BirthName").is_none());
    assert!(
        matches!(&out.trace.rule("mgr").unwrap().outcome, Outcome::Skipped { reason } if reason.contains("mgr-1"))
    );
    assert_eq!(
        out.trace.rule("policy").unwrap().outcome,
        Outcome::Skipped {
            reason: "condition not met".into()
        }
    );
    // Reverse: the reference and the date come back.
    let e = employee(
        json!({"ObjectID": "A", "FirstName": "Alice", "LastName": "Example", "BirthName": "E1001", "BirthDate": "/Date(633830400000)/"}),
    );
    let back = m.to_scim(&e, &Refs);
    assert_eq!(
        back["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["manager"]["value"],
        json!("mgr-1")
    );
    assert_eq!(
        back["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["costCenter"],
        json!("01.02.1990")
    );
}

fn employee(v: Value) -> Employee {
    let Value::Object(m) = v else { unreachable!() };
    Employee::from_entity(m).unwrap()
}

#[test]
fn reverse_maps_an_employee() {
    let m = default_mapper();
    let e = employee(json!({
        "ObjectID": "00163E0A1B2C1EDB9F8E7D6C5B4A3928", "EmployeeID": "1283302", "UserID": "JANE.DOE",
        "FirstName": "Jane", "LastName": "Doe", "Email": "jane.doe@example.com",
        "MobilePhoneNumber": "+1 555 0100", "LanguageCode": "EN", "CountryCode": "US",
        "TimeZoneCode": "EST", "UserLockedIndicator": true, "UserValidityEndDate": "/Date(253402214400000)/"
    }));
    let back = m.to_scim(&e, &NoReferences);
    assert_eq!(
        back,
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            "userName": "JANE.DOE",
            "name": {"givenName": "Jane", "familyName": "Doe"},
            "emails": [{"type": "work", "value": "jane.doe@example.com", "primary": true}],
            "phoneNumbers": [{"type": "mobile", "value": "+1 555 0100", "primary": true}],
            "addresses": [{"type": "work", "country": "US", "primary": true}],
            "locale": "en",
            "timezone": "America/New_York",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "1283302"},
            "active": false
        })
    );
    // Merged with the stored resource: lossy values keep their stored form.
    let stored = entra_user();
    let merged = m.to_scim_merged(&employee(json!({
        "ObjectID": "A", "UserID": "alice@contoso.com", "FirstName": "Alice", "LastName": "Changed-In-C4C",
        "Email": "alice@contoso.com", "LanguageCode": "EN", "TimeZoneCode": "CET", "UserLockedIndicator": false
    })), &stored, &NoReferences);
    assert_eq!(merged["locale"], json!("en-US"));
    assert_eq!(merged["timezone"], json!("Europe/Berlin"));
    assert_eq!(merged["emails"][0]["value"], json!("Alice@Contoso.com"));
    assert_eq!(merged["name"]["familyName"], json!("Changed-In-C4C"));
    assert_eq!(merged["active"], json!(true));
    assert_eq!(merged["title"], json!("Sales Rep"));
}

#[test]
fn dry_run_prints_payload_and_trace() {
    let m = default_mapper();
    let report = dry_run(
        &m,
        &json!({
            "userName": "bob@x.com", "name": {"givenName": "Bob", "familyName": "B"},
            "emails": [{"type": "work", "value": "bob@x.com"}], "title": "Boss", "nickName": "  Bobby "
        }),
    );
    assert!(report.is_ok(), "{report}");
    let text = report.to_string();
    assert!(text.contains("\"UserID\": \"bob@x.com\""), "{text}");
    assert!(text.contains("nick_name"), "{text}");
    assert!(text.contains("\"  Bobby \" -> \"Bobby\""), "{text}");
    assert!(text.contains("title = \"Boss\""), "{text}");
    // Sensitive values kept locally are masked in the report too.
    let masked = dry_run(
        &m,
        &json!({
            "userName": "bob@x.com", "name": {"givenName": "Bob", "familyName": "B"},
            "addresses": [{"type": "work", "region": "Secret Region"}]
        }),
    );
    assert!(!masked.to_string().contains("Secret Region"), "{masked}");
    let bad = dry_run(&m, &json!({"userName": "x"}));
    assert_eq!(
        bad.error.as_deref(),
        Some("mapping: FirstName is mandatory in C4C: set name.givenName")
    );
    let invalid = dry_run(&m, &json!({"userName": 5, "bogus": 1}));
    assert!(invalid.error.unwrap().starts_with("SCIM validation"));
}

#[test]
fn business_key_follows_match_on() {
    let cases = [
        (
            MatchOn::EmployeeId,
            Some(BusinessKey::EmployeeId("100234".into())),
        ),
        (
            MatchOn::UserId,
            Some(BusinessKey::Property {
                name: "UserID".into(),
                value: "alice@contoso.com".into(),
            }),
        ),
        (
            MatchOn::Email,
            Some(BusinessKey::Property {
                name: "Email".into(),
                value: "alice@contoso.com".into(),
            }),
        ),
    ];
    for (match_on, want) in cases {
        let m = mapper(MappingConfig {
            match_on,
            ..Default::default()
        });
        let out = m
            .to_c4c(&entra_user(), MapKind::Update, &NoReferences)
            .unwrap();
        assert_eq!(m.business_key(&out), want, "{match_on:?}");
    }
}

#[test]
fn mapper_without_metadata_uses_the_builtin_model() {
    let m = Mapper::new(MappingConfig::default(), None).unwrap();
    assert!(!m.has_metadata());
    let out = m
        .to_c4c(&entra_user(), MapKind::Create, &NoReferences)
        .unwrap();
    assert_eq!(out.fields.get("UserID"), Some(&json!("alice@contoso.com")));
    // Against the built-in model an unknown property is only a warning (tenants add fields).
    let mut config = MappingConfig::default();
    config.rules.push(custom_rule(
        "ext",
        "scim = \"title\"\nto = \"ZJobTitle_KUT\"",
    ));
    assert!(Mapper::new(config.clone(), None).is_ok());
    assert!(Mapper::new(config, Some(sim_metadata())).is_err());
}

/// Values in the fixpoint of the default rules' transforms (trimmed, lower-case emails,
/// within max lengths, canonical lookup keys).
fn word(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!(
        "[A-Za-z0-9][A-Za-z0-9 .'()-]{{0,{}}}[A-Za-z0-9]",
        max - 2
    ))
    .unwrap()
}

prop_compose! {
    fn scim_users()(
        user_name in word(40), given in word(40), family in word(40), nick in proptest::option::of(word(40)),
        email in proptest::option::of("[a-z0-9.]{1,20}@[a-z]{1,10}\\.com"),
        mobile in proptest::option::of("\\+[0-9 ]{1,20}[0-9]"),
        country in proptest::option::of(proptest::sample::select(vec!["DE", "US", "FR", "JP"])),
        language in proptest::option::of(proptest::sample::select(vec!["en", "de", "fr", "ja"])),
        employee_number in proptest::option::of("[0-9]{1,20}"),
        active in any::<bool>(),
    ) -> Value {
        let mut u = json!({
            "userName": user_name, "name": {"givenName": given, "familyName": family}, "active": active
        });
        if let Some(n) = nick { u["nickName"] = json!(n); }
        if let Some(e) = email { u["emails"] = json!([{"type": "work", "value": e, "primary": true}]); }
        if let Some(p) = mobile { u["phoneNumbers"] = json!([{"type": "mobile", "value": p, "primary": true}]); }
        if let Some(c) = country { u["addresses"] = json!([{"type": "work", "country": c, "primary": true}]); }
        if let Some(l) = language { u["locale"] = json!(l); }
        if let Some(n) = employee_number {
            u["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] = json!({"employeeNumber": n});
        }
        user(u)
    }
}

/// C4C's answer for a body we sent: the same properties plus its own keys.
fn as_read(fields: &Fields) -> Employee {
    let mut m = fields.0.clone();
    m.insert("ObjectID".into(), json!("00163E0A1B2C1EDB9F8E7D6C5B4A3928"));
    Employee::from_entity(m).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Mapping then reverse-mapping returns every mapped attribute unchanged.
    #[test]
    fn map_then_reverse_returns_the_mapped_attributes(u in scim_users()) {
        let m = default_mapper();
        let out = m.to_c4c(&u, MapKind::Create, &NoReferences).unwrap();
        let back = m.to_scim(&as_read(&out.fields), &NoReferences);
        for rule in m.rules().iter().filter(|r| r.reverse_applies()) {
            let Source::Path(p) = &rule.source else { continue };
            let entry = out.trace.rule(&rule.rule.name).unwrap();
            if matches!(entry.outcome, Outcome::Set | Outcome::Defaulted) && rule.target != Target::Active {
                prop_assert_eq!(path::get(&back, p), path::get(&u, p), "rule {}", rule.rule.name);
            }
        }
        prop_assert_eq!(&back["active"], &u["active"]);
    }

    /// Whatever the values (case, spaces, length within limits), mapping what came back maps
    /// to the same body: reverse mapping loses nothing C4C holds.
    #[test]
    fn reverse_then_map_is_stable(given in "\\PC{1,40}", email in "[A-Za-z .@]{1,40}", locale in "[a-zA-Z_-]{1,8}") {
        let m = default_mapper();
        let u = json!({"userName": "u", "name": {"givenName": given, "familyName": "F"},
            "emails": [{"type": "work", "value": email}], "locale": locale});
        let Ok(u) = validate_for_create(&USER_RESOURCE, &u) else { return Ok(()) };
        let Ok(out) = m.to_c4c(&u, MapKind::Create, &NoReferences) else { return Ok(()) };
        let back = m.to_scim(&as_read(&out.fields), &NoReferences);
        let again = m.to_c4c(&back, MapKind::Create, &NoReferences).unwrap();
        prop_assert_eq!(again.fields, out.fields);
    }
}

#[test]
fn example_rules_file_parses_validates_and_repeats_the_defaults() {
    let config =
        MappingConfig::from_toml_str(include_str!("../../deploy/mapping.example.toml")).unwrap();
    let problems = validate(&config, sim_metadata());
    assert!(problems.is_empty(), "{problems:#?}");
    let defaults = defaults::default_rules();
    assert_eq!(config.rules[..defaults.len()], defaults[..]);
    let m = mapper(config);
    let mut u = entra_user();
    u["userType"] = json!("Employee");
    u["groups"] = json!([{"value": "g1", "display": "C4C Sales Reps"}]);
    let out = m.to_c4c(&u, MapKind::Create, &NoReferences).unwrap();
    assert_eq!(
        out.fields.get("UserPasswordPolicyCode"),
        Some(&json!("S_BUSINESS_USER_WITHOUT_PASSWORD"))
    );
    assert_eq!(
        out.child_ops,
        vec![
            ChildOp::AssignOrgUnit {
                org_unit_id: "ORG_SALES_EMEA".into()
            },
            ChildOp::SetBusinessRoles {
                role_ids: vec!["SALES_REP".into()]
            },
        ]
    );
}

#[test]
fn bodies_for_the_mapping_log_are_masked() {
    let m = default_mapper();
    let body = json!({
        "userName": "a@example.com",
        "password": "hunter2",
        "phoneNumbers": [{"type": "work", "value": "+49 30 1"}],
        "addresses": [{"streetAddress": "Main 1"}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": "7",
            "password": "x"
        }
    });
    let masked = m.masked(&body);
    assert_eq!(masked["userName"], "a@example.com");
    assert_eq!(masked["password"], "***");
    assert_eq!(masked["phoneNumbers"], "***");
    assert_eq!(masked["addresses"], "***");
    let enterprise = &masked["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"];
    assert_eq!(enterprise["employeeNumber"], "7");
    assert_eq!(enterprise["password"], "***");
    let text = masked.to_string();
    assert!(!text.contains("hunter2") && !text.contains("+49") && !text.contains("Main 1"));

    let patch = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "replace", "path": "phoneNumbers[type eq \"work\"].value", "value": "+1 555"},
            {"op": "replace", "path": "password", "value": "hunter2"},
            {"op": "replace", "value": {"title": "Lead", "phoneNumbers": [{"value": "+1 555"}]}},
            {"op": "replace", "path": "title", "value": "Boss"}
        ]
    });
    let masked = m.masked_patch(&patch);
    let operations = masked["Operations"].as_array().unwrap();
    assert_eq!(operations[0]["value"], "***");
    assert_eq!(operations[1]["value"], "***");
    assert_eq!(operations[2]["value"]["title"], "Lead");
    assert_eq!(operations[2]["value"]["phoneNumbers"], "***");
    assert_eq!(operations[3]["value"], "Boss");
    assert!(!masked.to_string().contains("555"));
}

/// The mapped payloads against the strict simulator: accepted on create and update, read back,
/// and pushed-down filters find (only) what they should.
mod against_the_simulator {
    use super::*;
    use crate::c4c::{C4cClient, C4cConfig, EmployeeQuery};
    use crate::mapping::pushdown::{QueryPlan, plan};
    use crate::scim::filter::Filter;

    fn client(url: &str) -> C4cClient {
        let text = format!(
            "base_url = {url:?}\n[retry]\nmax_attempts = 2\nbase_backoff_ms = 5\nmax_backoff_ms = 20\n[auth]\nmode = \"basic\"\nuser = {:?}\npassword = {:?}\n",
            crate::sim::DEFAULT_USER,
            crate::sim::DEFAULT_PASSWORD
        );
        let config: C4cConfig = toml::from_str(&text).unwrap();
        C4cClient::new(config).unwrap()
    }

    async fn find(c: &C4cClient, m: &Mapper, filter: &str, stored: &Value) -> Vec<String> {
        let QueryPlan::OData { queries, residual } =
            plan(&Filter::parse(filter).unwrap(), m).unwrap()
        else {
            panic!("{filter}: not an OData plan")
        };
        let mut out = Vec::new();
        for q in queries {
            for e in c
                .query_employees(&EmployeeQuery::new().filter(q))
                .await
                .unwrap()
            {
                let scim = m.to_scim_merged(&e, stored, &NoReferences);
                let keep = residual
                    .as_ref()
                    .is_none_or(|r| crate::scim::eval::matches(r, &scim, &USER_RESOURCE));
                if keep && !out.contains(&e.object_id) {
                    out.push(e.object_id.clone());
                }
            }
        }
        out
    }

    #[tokio::test]
    async fn create_update_read_back_and_filter() {
        let sim = crate::sim::Simulator::start(crate::sim::SimConfig::default())
            .await
            .unwrap();
        let c = client(&sim.service_url());
        let metadata = c.metadata().await.unwrap();
        let m = Mapper::new(MappingConfig::default(), Some(&metadata))
            .unwrap()
            .with_today(today());
        let stored = entra_user();

        let mapped = m.to_c4c(&stored, MapKind::Create, &NoReferences).unwrap();
        let created = c.create_employee(&mapped.fields).await.unwrap();
        let read = c.get_employee(&created.object_id).await.unwrap();
        let back = m.to_scim(&read, &NoReferences);
        assert_eq!(back["userName"], json!("alice@contoso.com"));
        assert_eq!(
            back["name"],
            json!({"givenName": "Alice", "familyName": "Example"})
        );
        assert_eq!(back["emails"][0]["value"], json!("alice@contoso.com"));
        assert_eq!(back["active"], json!(true));
        let merged = m.to_scim_merged(&read, &stored, &NoReferences);
        assert_eq!(merged, {
            let mut s = stored.clone();
            s["schemas"] = merged["schemas"].clone();
            s
        });

        // Deactivate and rename: only the changes are sent, C4C holds them.
        let mut new = stored.clone();
        new["active"] = json!(false);
        new["name"]["familyName"] = json!("O'Example");
        let diff = m.diff_for_update(&stored, &new, &NoReferences).unwrap();
        assert_eq!(
            Value::Object(diff.fields.0.clone()),
            json!({"LastName": "O'Example", "UserLockedIndicator": true})
        );
        c.update_employee(&created.object_id, &diff.fields, None)
            .await
            .unwrap();
        let read = c.get_employee(&created.object_id).await.unwrap();
        assert!(!m.is_active(&read));
        assert_eq!(
            m.to_scim_merged(&read, &stored, &NoReferences)["name"]["familyName"],
            json!("O'Example")
        );

        let id = vec![created.object_id.clone()];
        assert_eq!(
            find(
                &c,
                &m,
                "emails[type eq \"work\"].value eq \"Alice@Contoso.com\"",
                &new
            )
            .await,
            id
        );
        assert_eq!(
            find(&c, &m, "name.familyName eq \"O'Example\"", &new).await,
            id
        );
        assert_eq!(
            find(
                &c,
                &m,
                "name.familyName eq \"O'Example\" and active eq false",
                &new
            )
            .await,
            id
        );
        assert_eq!(
            find(
                &c,
                &m,
                "employeeNumber eq \"100234\" or name.givenName eq \"Nobody\"",
                &new
            )
            .await,
            id
        );
        assert!(
            find(&c, &m, "name.familyName eq \"x' or UserID ne '\"", &new)
                .await
                .is_empty()
        );
        assert!(
            find(
                &c,
                &m,
                "name.familyName eq \"O'Example\" and title eq \"CEO\"",
                &new
            )
            .await
            .is_empty()
        );
        sim.shutdown().await;
    }
}

#[test]
fn read_back_select_names_what_the_reverse_rules_and_active_read() {
    let select = default_mapper().read_back_select().unwrap().to_owned();
    let fields: Vec<&str> = select.split(',').collect();
    for wanted in [
        "ObjectID",
        "EmployeeID",
        "FirstName",
        "LastName",
        "UserLockedIndicator",
    ] {
        assert!(fields.contains(&wanted), "{wanted} missing from {select}");
    }
    // Navigations and properties no rule reads back are not asked for.
    assert!(
        !fields.contains(&"EmployeeUserBusinessRoleAssignment"),
        "{select}"
    );
    assert!(!fields.contains(&"EntityLastChangedOn"), "{select}");

    let by_validity = mapper(MappingConfig {
        deprovisioning: Deprovisioning::EndValidity,
        ..MappingConfig::default()
    });
    let select = by_validity.read_back_select().unwrap();
    assert!(select.contains("UserValidityEndDate"), "{select}");
    assert!(!select.contains("UserLockedIndicator"), "{select}");

    // Without the tenant's $metadata every property is read, until it is learnt.
    let blind = Mapper::new(MappingConfig::default(), None).unwrap();
    assert_eq!(blind.read_back_select(), None);
    blind.learn_tenant(sim_metadata());
    assert_eq!(
        blind.read_back_select(),
        default_mapper().read_back_select()
    );
}

#[test]
fn a_sensitive_attribute_covers_its_sub_attributes_and_extension_paths_in_any_case() {
    use super::is_or_under;
    for path in [
        "phoneNumbers",
        "PHONENUMBERS",
        "phoneNumbers.value",
        "phonenumbers[type eq \"work\"].value",
        "urn:ietf:params:scim:schemas:extension:custom:2.0:User:phoneNumbers",
    ] {
        assert!(is_or_under(path, "phoneNumbers"), "{path}");
    }
    for path in [
        "phone",
        "phoneNumbersX",
        "xphoneNumbers",
        "emails.phoneNumbers",
        "urn:x:phoneNumbersX",
        "",
    ] {
        assert!(!is_or_under(path, "phoneNumbers"), "{path}");
    }
}
