//! Property values, their wire forms (`/Date(ms)/`, weak ETags) and parsing of request bodies.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};

use super::model::{EdmType, PropDef};

/// A stored property value; a property absent from a record is null.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Val {
    Str(String),
    Bool(bool),
    DateTime(DateTime<Utc>),
    Dto(DateTime<Utc>),
    Guid(String),
}

impl Val {
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Val::Str(s) | Val::Guid(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn to_json(&self) -> serde_json::Value {
        match self {
            Val::Str(s) | Val::Guid(s) => serde_json::Value::String(s.clone()),
            Val::Bool(b) => serde_json::Value::Bool(*b),
            Val::DateTime(d) | Val::Dto(d) => serde_json::Value::String(json_date(d)),
        }
    }

    /// Text of the value inside an Atom `<d:Prop>` element.
    pub(crate) fn atom_text(&self) -> String {
        match self {
            Val::Str(s) | Val::Guid(s) => s.clone(),
            Val::Bool(b) => b.to_string(),
            Val::DateTime(d) => d.format("%Y-%m-%dT%H:%M:%S").to_string(),
            Val::Dto(d) => dto_text(d),
        }
    }
}

pub(crate) type Record = BTreeMap<&'static str, Val>;

/// `/Date(ms)/`, OData v2 verbose JSON.
pub(crate) fn json_date(d: &DateTime<Utc>) -> String {
    format!("/Date({})/", d.timestamp_millis())
}

/// `2016-04-27T23:07:31.6809330Z`: 7 fractional digits as C4C writes DateTimeOffset.
pub(crate) fn dto_text(d: &DateTime<Utc>) -> String {
    use chrono::{Datelike, Timelike};
    // Formatted by hand: chrono's strftime parsing showed up in read profiles.
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}Z",
        d.year(),
        d.month(),
        d.day(),
        d.hour(),
        d.minute(),
        d.second(),
        d.timestamp_subsec_nanos() % 1_000_000_000 / 100
    )
}

/// C4C's weak ETag: `W/"datetimeoffset'2016-04-27T23%3A07%3A31.6809330Z'"` (colons encoded).
pub(crate) fn weak_etag(d: &DateTime<Utc>) -> String {
    format!("W/\"datetimeoffset'{}'\"", dto_text(d).replace(':', "%3A"))
}

/// Truncates to 100 ns, the precision C4C keeps, so that stored and rendered values agree.
pub(crate) fn c4c_now() -> DateTime<Utc> {
    let now = Utc::now();
    let nanos = now.timestamp_subsec_nanos() / 100 * 100;
    Utc.timestamp_opt(now.timestamp(), nanos)
        .single()
        .unwrap_or(now)
}

/// 9999-12-31T00:00:00Z, the "open end" of validity periods.
pub(crate) fn open_end() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|n| n.and_utc())
        .unwrap_or_else(Utc::now)
}

fn parse_json_ms(s: &str) -> Option<DateTime<Utc>> {
    let inner = s.strip_prefix("/Date(")?.strip_suffix(")/")?;
    // An offset suffix (`+0060`) only shifts the display; the instant is the ms value.
    let digits_end = inner
        .char_indices()
        .skip(1)
        .find(|(_, c)| *c == '+' || *c == '-')
        .map(|(i, _)| i)
        .unwrap_or(inner.len());
    let ms: i64 = inner.get(..digits_end)?.parse().ok()?;
    Utc.timestamp_millis_opt(ms).single()
}

/// Parses `yyyy-MM-ddTHH:mm[:ss[.fffffff]]` (optionally with `Z`/offset) or `yyyy-MM-dd`.
pub(crate) fn parse_iso(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.with_timezone(&Utc));
    }
    let trimmed = s.strip_suffix('Z').unwrap_or(s);
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(trimmed, fmt) {
            return Some(n.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|n| n.and_utc())
}

fn midnight(d: DateTime<Utc>) -> DateTime<Utc> {
    d.date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|n| n.and_utc())
        .unwrap_or(d)
}

fn is_guid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok() && s.len() == 36
}

/// Converts a JSON request value into a stored value, enforcing the property's type and length.
/// `Ok(None)` is an explicit null.
pub(crate) fn from_json(prop: &PropDef, v: &serde_json::Value) -> Result<Option<Val>, String> {
    if v.is_null() {
        return Ok(None);
    }
    let bad = || {
        format!(
            "Property {} has invalid value; expected {}",
            prop.name,
            prop.ty.edm_name()
        )
    };
    match prop.ty {
        EdmType::String(max) => {
            let s = v.as_str().ok_or_else(bad)?;
            if let Some(max) = max
                && s.chars().count() > max as usize
            {
                return Err(format!(
                    "Value of property {} is too long; maximum length is {max}",
                    prop.name
                ));
            }
            Ok(Some(Val::Str(s.to_owned())))
        }
        EdmType::Boolean => v.as_bool().map(|b| Some(Val::Bool(b))).ok_or_else(bad),
        EdmType::Guid => {
            let s = v.as_str().ok_or_else(bad)?;
            if is_guid(s) {
                Ok(Some(Val::Guid(s.to_ascii_uppercase())))
            } else {
                Err(bad())
            }
        }
        EdmType::DateTime | EdmType::DateTimeOffset => {
            let s = v.as_str().ok_or_else(bad)?;
            let d = parse_json_ms(s).or_else(|| parse_iso(s)).ok_or_else(bad)?;
            if prop.ty == EdmType::DateTime {
                let d = if prop.date_only { midnight(d) } else { d };
                Ok(Some(Val::DateTime(d)))
            } else {
                Ok(Some(Val::Dto(d)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::model::SetId;

    #[test]
    fn etag_has_seven_digits_and_encoded_colons() {
        let d = Utc
            .timestamp_opt(1_461_798_451, 680_933_000)
            .single()
            .unwrap();
        assert_eq!(
            weak_etag(&d),
            "W/\"datetimeoffset'2016-04-27T23%3A07%3A31.6809330Z'\""
        );
        assert_eq!(json_date(&d), "/Date(1461798451680)/");
    }

    #[test]
    fn request_dates_accept_iso_and_json_forms() {
        let p = SetId::Employee.def().prop("UserValidityEndDate").unwrap();
        let a = from_json(p, &serde_json::json!("9999-12-31T00:00:00")).unwrap();
        let b = from_json(p, &serde_json::json!("/Date(253402214400000)/")).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, Some(Val::DateTime(open_end())));
        assert!(from_json(p, &serde_json::json!("tomorrow")).is_err());
        assert!(from_json(p, &serde_json::json!(12)).is_err());
    }

    #[test]
    fn strings_are_checked_against_max_length_in_characters() {
        let p = SetId::Employee.def().prop("FirstName").unwrap();
        let ok = "É".repeat(40);
        assert!(from_json(p, &serde_json::json!(ok)).is_ok());
        let long = "a".repeat(41);
        let err = from_json(p, &serde_json::json!(long)).unwrap_err();
        assert!(err.contains("maximum length is 40"), "{err}");
        assert!(from_json(p, &serde_json::json!(true)).is_err());
    }
}
