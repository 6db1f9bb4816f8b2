//! Seed data: deterministic generated employees, and JSON or CSV seed files.

use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};

use super::error::SimError;
use super::model::{EdmType, SetId};

const FIRST: &[&str] = &[
    "Jane",
    "José",
    "Zoë",
    "Siobhán",
    "François",
    "Łukasz",
    "Ana-María",
    "Jürgen",
    "Søren",
    "Chloé",
    "Mei",
    "Aarav",
    "Olúwaseun",
    "Björn",
    "Renée",
    "Hélène",
    "Dmitri",
    "Priya",
    "Mateo",
    "Noémie",
    "Kenji",
    "Fatima",
    "Liam",
    "Ingrid",
    "Ciarán",
    "Amélie",
    "Tomás",
    "Ewa",
    "Yusuf",
    "Grace",
];

const LAST: &[&str] = &[
    "O'Brien",
    "D'Angelo",
    "Müller",
    "García",
    "Núñez",
    "Ødegaard",
    "Dvořák",
    "Fernández",
    "N'Diaye",
    "O'Connor",
    "Smith",
    "Kowalski",
    "Lefèvre",
    "Schröder",
    "Nakamura",
    "Okafor",
    "Johansson",
    "Ó Súilleabháin",
    "Van der Berg",
    "Dubois",
    "Rossi",
    "Patel",
    "Kim",
    "Nguyễn",
    "Brown",
    "Wójcik",
    "Álvarez",
    "MacLeod",
    "Ferreira",
    "Yılmaz",
];

/// (country, language, time zone, phone prefix)
const PLACES: &[(&str, &str, &str, &str)] = &[
    ("US", "EN", "EST", "+1 212"),
    ("US", "EN", "PST", "+1 415"),
    ("GB", "EN", "GMTUK", "+44 20"),
    ("DE", "DE", "CET", "+49 30"),
    ("FR", "FR", "CET", "+33 1"),
    ("ES", "ES", "CET", "+34 91"),
    ("IE", "EN", "GMTUK", "+353 1"),
    ("PL", "PL", "CET", "+48 22"),
    ("JP", "JA", "JAPAN", "+81 3"),
    ("IN", "EN", "INDIA", "+91 80"),
    ("BR", "PT", "BRAZIL", "+55 11"),
    ("SE", "SV", "CET", "+46 8"),
];

const ROLES: &[&str] = &[
    "SALES_REP",
    "SALES_MANAGER",
    "SERVICE_AGENT",
    "SERVICE_MANAGER",
    "MARKETING",
];
const ORG_UNITS: &[&str] = &["S1000", "S3110", "S3120", "S4000", "SVC100", "MKT200"];

/// Folds letters to ASCII for user names and e-mail addresses (`Ø` → `O`, `ß` → `ss`).
pub(crate) fn fold_ascii(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let r = match c {
            'á' | 'à' | 'â' | 'ä' | 'ã' | 'å' => "a",
            'Á' | 'À' | 'Â' | 'Ä' | 'Ã' | 'Å' => "A",
            'é' | 'è' | 'ê' | 'ë' | 'ě' | 'ễ' => "e",
            'É' | 'È' | 'Ê' | 'Ë' => "E",
            'í' | 'ì' | 'î' | 'ï' | 'ı' => "i",
            'Í' | 'Ì' | 'Î' | 'Ï' | 'İ' => "I",
            'ó' | 'ò' | 'ô' | 'ö' | 'õ' | 'ø' => "o",
            'Ó' | 'Ò' | 'Ô' | 'Ö' | 'Õ' | 'Ø' => "O",
            'ú' | 'ù' | 'û' | 'ü' => "u",
            'Ú' | 'Ù' | 'Û' | 'Ü' => "U",
            'ñ' | 'ń' => "n",
            'Ñ' | 'Ń' => "N",
            'ç' | 'č' => "c",
            'Ç' | 'Č' => "C",
            'ř' => "r",
            'Ř' => "R",
            'š' | 'ś' => "s",
            'Š' | 'Ś' => "S",
            'ž' | 'ź' | 'ż' => "z",
            'Ž' | 'Ź' | 'Ż' => "Z",
            'ł' => "l",
            'Ł' => "L",
            'ß' => "ss",
            'ý' | 'ÿ' => "y",
            'ğ' => "g",
            'ạ' | 'ấ' => "a",
            'Ạ' => "A",
            'ư' | 'ữ' => "u",
            'ệ' | 'ể' => "e",
            c if c.is_ascii_alphanumeric() => {
                out.push(c);
                continue;
            }
            _ => "",
        };
        out.push_str(r);
    }
    out
}

/// `n` realistic, varied employees (names with apostrophes and accents), the same for the same
/// `seed`. Each is a POST body with a business role and an org-unit assignment (deep insert).
pub fn generate_employees(n: usize, seed: u64) -> Vec<Value> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut used_users = std::collections::HashSet::new();
    (0..n)
        .map(|i| {
            let first = FIRST[rng.gen_range(0..FIRST.len())];
            let last = LAST[rng.gen_range(0..LAST.len())];
            let (country, lang, tz, prefix) = PLACES[rng.gen_range(0..PLACES.len())];
            let base = format!("{}.{}", fold_ascii(first), fold_ascii(last));
            let mut user = base.to_ascii_uppercase();
            let mut k = 2;
            while !used_users.insert(user.clone()) {
                user = format!("{}{k}", base.to_ascii_uppercase());
                k += 1;
            }
            let email = format!("{}@example.com", user.to_ascii_lowercase());
            let locked = rng.gen_ratio(1, 20);
            let start_year = rng.gen_range(2015..=2025);
            let mut roles = vec![ROLES[rng.gen_range(0..ROLES.len())]];
            if rng.gen_ratio(1, 4) {
                let extra = ROLES[rng.gen_range(0..ROLES.len())];
                if !roles.contains(&extra) {
                    roles.push(extra);
                }
            }
            let org = ORG_UNITS[rng.gen_range(0..ORG_UNITS.len())];
            json!({
                "EmployeeID": (1_000_001 + i).to_string(),
                "UserID": user,
                "FirstName": first,
                "LastName": last,
                "Email": email,
                "CountryCode": country,
                "LanguageCode": lang,
                "TimeZoneCode": tz,
                "OfficePhoneNumber": format!("{prefix} {:04} {:04}", rng.gen_range(0..10_000), rng.gen_range(0..10_000)),
                "MobilePhoneNumber": format!("{prefix} {:03} {:04}", rng.gen_range(100..1_000), rng.gen_range(0..10_000)),
                "EmployeeValidityStartDate": format!("{start_year}-01-01T00:00:00"),
                "EmployeeValidityEndDate": "9999-12-31T00:00:00",
                "UserValidityStartDate": format!("{start_year}-01-01T00:00:00"),
                "UserValidityEndDate": "9999-12-31T00:00:00",
                "UserPasswordPolicyCode": "S_BUSINESS_USER_WITHOUT_PASSWORD",
                "UserLockedIndicator": locked,
                "EmployeeUserBusinessRoleAssignment": roles.iter().map(|r| json!({"BusinessRoleID": r})).collect::<Vec<_>>(),
                "EmployeeOrganisationalUnitAssignment": [{"OrgUnitID": org, "RoleCode": "222", "JobID": "EMPLOYEE"}],
            })
        })
        .collect()
}

/// Reads a seed file: JSON (an array of employee objects, or `{"d":{"results":[…]}}`) or CSV
/// (a header row of Employee property names; `true`/`false` for booleans; empty = absent).
pub fn load_seed_file(path: &Path) -> Result<Vec<Value>, SimError> {
    let text = std::fs::read_to_string(path)?;
    let is_csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if is_csv {
        parse_csv(&text)
    } else {
        parse_json(&text)
    }
}

pub(crate) fn parse_json(text: &str) -> Result<Vec<Value>, SimError> {
    let v: Value =
        serde_json::from_str(text).map_err(|e| SimError::Seed(format!("invalid JSON: {e}")))?;
    let list = match v {
        Value::Array(a) => a,
        Value::Object(ref o) => match o
            .get("d")
            .and_then(|d| d.get("results"))
            .and_then(Value::as_array)
        {
            Some(a) => a.clone(),
            None => {
                return Err(SimError::Seed(
                    "expected an array of employees or {\"d\":{\"results\":[…]}}".into(),
                ));
            }
        },
        _ => return Err(SimError::Seed("expected an array of employees".into())),
    };
    // Records exported from a tenant carry read-only fields; keep what a create accepts.
    let def = SetId::Employee.def();
    Ok(list
        .into_iter()
        .map(|e| match e {
            Value::Object(o) => Value::Object(
                o.into_iter()
                    .filter(|(k, _)| def.prop(k).is_none_or(|p| p.creatable) && k != "__metadata")
                    .filter(|(k, v)| {
                        !(v.is_object() && v.get("__deferred").is_some()) || def.prop(k).is_some()
                    })
                    .collect(),
            ),
            other => other,
        })
        .collect())
}

pub(crate) fn parse_csv(text: &str) -> Result<Vec<Value>, SimError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| SimError::Seed(format!("invalid CSV header: {e}")))?
        .clone();
    let def = SetId::Employee.def();
    let mut out = Vec::new();
    for (line, row) in reader.records().enumerate() {
        let row = row.map_err(|e| SimError::Seed(format!("invalid CSV row {}: {e}", line + 2)))?;
        let mut obj = Map::new();
        for (name, value) in headers.iter().zip(row.iter()) {
            if value.is_empty() {
                continue;
            }
            let v = match def.prop(name).map(|p| p.ty) {
                Some(EdmType::Boolean) => match value {
                    "true" | "TRUE" | "1" => Value::Bool(true),
                    "false" | "FALSE" | "0" => Value::Bool(false),
                    other => {
                        return Err(SimError::Seed(format!(
                            "row {}: {name} must be true or false, not '{other}'",
                            line + 2
                        )));
                    }
                },
                _ => Value::String(value.to_owned()),
            };
            obj.insert(name.to_owned(), v);
        }
        out.push(Value::Object(obj));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_employees_are_deterministic_and_varied() {
        let a = generate_employees(50, 7);
        let b = generate_employees(50, 7);
        assert_eq!(a, b);
        assert_ne!(a, generate_employees(50, 8));
        let names: Vec<String> = a
            .iter()
            .map(|e| e["LastName"].as_str().unwrap().to_owned())
            .collect();
        assert!(names.iter().any(|n| n.contains('\'')), "{names:?}");
        assert!(names.iter().any(|n| !n.is_ascii()), "{names:?}");
        let users: std::collections::HashSet<_> =
            a.iter().map(|e| e["UserID"].as_str().unwrap()).collect();
        assert_eq!(users.len(), 50);
        assert!(users.iter().all(|u| u.is_ascii() && u.len() <= 40));
    }

    #[test]
    fn csv_and_json_seed_files() {
        let csv = "EmployeeID,FirstName,LastName,UserID,UserLockedIndicator,Email\n1,Seán,\"O'Neill\",SEAN,false,\n2,Zoë,Müller,ZOE,true,z@example.com\n";
        let rows = parse_csv(csv).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["LastName"], "O'Neill");
        assert_eq!(rows[1]["UserLockedIndicator"], true);
        assert!(rows[0].get("Email").is_none());
        assert!(parse_csv("FirstName,UserLockedIndicator\nA,maybe\n").is_err());
        let json = r#"{"d":{"results":[{"__metadata":{},"ObjectID":"X","FirstName":"A","LastName":"B","CreatedOn":"/Date(0)/"}]}}"#;
        let rows = parse_json(json).unwrap();
        assert_eq!(rows[0], json!({"FirstName":"A","LastName":"B"}));
        assert!(parse_json("{}").is_err());
    }
}
