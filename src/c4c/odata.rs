//! OData v2 wire forms: `{"d": …}` envelopes, `/Date(ms)/`, ETags, key predicates.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::{Map, Value};

use super::error::C4cError;

/// An ETag exactly as C4C sent it (weak, `W/"datetimeoffset'…%3A…'"`): sent back verbatim
/// in `If-Match`, percent-encoding kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ETag(String);

impl ETag {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ETag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One page of a collection: its entities and the server's next link, if any.
#[derive(Debug, Clone)]
pub(crate) struct Page {
    pub results: Vec<Map<String, Value>>,
    pub next: Option<String>,
    /// `__count` (a string in OData v2 JSON), present with `$inlinecount=allpages`.
    #[cfg_attr(not(test), allow(dead_code))]
    pub count: Option<u64>,
}

/// Parses `{"d":{"results":[…],"__next":…}}` (and the bare `{"d":[…]}` of old servers).
pub(crate) fn parse_collection(body: &[u8]) -> Result<Page, C4cError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| C4cError::UnexpectedResponse(format!("collection is not JSON: {e}")))?;
    parse_collection_value(value)
}

pub(crate) fn parse_collection_value(value: Value) -> Result<Page, C4cError> {
    let Value::Object(mut outer) = value else {
        return Err(C4cError::UnexpectedResponse(
            "collection is not a JSON object".into(),
        ));
    };
    let d = outer
        .remove("d")
        .ok_or_else(|| C4cError::UnexpectedResponse("collection without \"d\"".into()))?;
    let (results, next, count) = match d {
        Value::Array(items) => (items, None, None),
        Value::Object(mut d) => {
            let items = match d.remove("results") {
                Some(Value::Array(items)) => items,
                _ => {
                    return Err(C4cError::UnexpectedResponse(
                        "collection without \"d.results\" array".into(),
                    ));
                }
            };
            let next = match d.remove("__next") {
                Some(Value::String(s)) => Some(s),
                _ => None,
            };
            // `__count` is a string in OData v2 JSON.
            let count = match d.remove("__count") {
                Some(Value::String(s)) => s.parse().ok(),
                Some(Value::Number(n)) => n.as_u64(),
                _ => None,
            };
            (items, next, count)
        }
        _ => {
            return Err(C4cError::UnexpectedResponse(
                "\"d\" is neither object nor array".into(),
            ));
        }
    };
    let results = results
        .into_iter()
        .map(|item| match item {
            Value::Object(map) => Ok(map),
            _ => Err(C4cError::UnexpectedResponse(
                "collection item is not an object".into(),
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page {
        results,
        next,
        count,
    })
}

/// Parses `{"d":{…entity…}}`.
pub(crate) fn parse_entity(body: &[u8]) -> Result<Map<String, Value>, C4cError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| C4cError::UnexpectedResponse(format!("entity is not JSON: {e}")))?;
    parse_entity_value(value)
}

pub(crate) fn parse_entity_value(value: Value) -> Result<Map<String, Value>, C4cError> {
    match value {
        Value::Object(mut outer) => match outer.remove("d") {
            Some(Value::Object(mut d)) => {
                // A single-entity response wrapped like a collection of one.
                if let Some(Value::Array(mut items)) = d.remove("results") {
                    if items.len() == 1
                        && let Some(Value::Object(item)) = items.pop()
                    {
                        return Ok(item);
                    }
                    return Err(C4cError::UnexpectedResponse("expected one entity".into()));
                }
                Ok(d)
            }
            _ => Err(C4cError::UnexpectedResponse(
                "entity without \"d\" object".into(),
            )),
        },
        _ => Err(C4cError::UnexpectedResponse(
            "entity is not a JSON object".into(),
        )),
    }
}

/// `__metadata.etag` of an entity, if any.
pub(crate) fn entity_etag(entity: &Map<String, Value>) -> Option<ETag> {
    entity
        .get("__metadata")
        .and_then(|m| m.get("etag"))
        .and_then(Value::as_str)
        .map(ETag::new)
}

/// Parses `/Date(1351534600660)/` or `/Date(1351534600660+0060)/` (ms since epoch, UTC).
pub fn parse_odata_date(text: &str) -> Option<DateTime<Utc>> {
    let inner = text.strip_prefix("/Date(")?.strip_suffix(")/")?;
    // An offset suffix (+mmmm / -mmmm) only informs about the original zone; ms stay UTC.
    let digits_end = inner
        .char_indices()
        .skip(1)
        .find(|(_, c)| *c == '+' || *c == '-')
        .map(|(i, _)| i)
        .unwrap_or(inner.len());
    let ms: i64 = inner.get(..digits_end)?.parse().ok()?;
    DateTime::from_timestamp_millis(ms)
}

/// Reads a date-time property: `/Date(ms)/` or an ISO-8601 string.
pub fn value_as_datetime(value: &Value) -> Option<DateTime<Utc>> {
    let text = value.as_str()?;
    if let Some(d) = parse_odata_date(text) {
        return Some(d);
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(text) {
        return Some(d.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|n| n.and_utc())
}

/// Reads an `Edm.DateTime` with date display format as a calendar date.
pub fn value_as_date(value: &Value) -> Option<NaiveDate> {
    value_as_datetime(value).map(|d| d.date_naive())
}

/// The JSON form C4C accepts for an `Edm.DateTime` in request bodies.
pub fn date_for_body(date: NaiveDate) -> Value {
    Value::String(format!("{}T00:00:00", date.format("%Y-%m-%d")))
}

/// `'O''Brien'`: OData v2 string literal, single quotes doubled.
pub fn string_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push('\'');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// `EmployeeCollection('00163E…')` after checking the key is a plain C4C ObjectID-like value.
pub(crate) fn key_path(entity_set: &str, object_id: &str) -> Result<String, C4cError> {
    if object_id.is_empty()
        || object_id.len() > 70
        || !object_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(C4cError::InvalidInput(format!(
            "not a C4C ObjectID: {object_id:?}"
        )));
    }
    Ok(format!("{entity_set}({})", string_literal(object_id)))
}

/// Extracts the ObjectID from a `location` header or `__metadata.uri`
/// (`…/EmployeeCollection('00163E…')`).
pub(crate) fn object_id_from_uri(uri: &str) -> Option<String> {
    let start = uri.rfind("('")? + 2;
    let end = uri.get(start..)?.find("')")? + start;
    uri.get(start..end).map(|s| s.replace("''", "'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_collection_envelope_with_next_and_count() {
        let body = br#"{"d":{"__count":"39080","results":[{"__metadata":{"uri":"https://h/x/EmployeeCollection('AB')","type":"c4codataapi.Employee","etag":"W/\"datetimeoffset'2015-02-03T21%3A07%3A03.5328420Z'\""},"ObjectID":"AB"}],"__next":"https://h/x/EmployeeCollection?$skiptoken=1001"}}"#;
        let page = parse_collection(body).unwrap();
        assert_eq!(page.results.len(), 1);
        assert_eq!(page.count, Some(39080));
        assert_eq!(
            page.next.as_deref(),
            Some("https://h/x/EmployeeCollection?$skiptoken=1001")
        );
        let etag = entity_etag(&page.results[0]).unwrap();
        assert_eq!(
            etag.as_str(),
            "W/\"datetimeoffset'2015-02-03T21%3A07%3A03.5328420Z'\""
        );
    }

    #[test]
    fn collection_without_next_and_refusals() {
        let page = parse_collection(br#"{"d":{"results":[]}}"#).unwrap();
        assert!(page.next.is_none() && page.results.is_empty());
        assert!(parse_collection(br#"{"x":1}"#).is_err());
        assert!(parse_collection(b"<feed/>").is_err());
        assert!(parse_collection(br#"{"d":{"results":[1]}}"#).is_err());
    }

    #[test]
    fn parses_single_entity() {
        let e = parse_entity(br#"{"d":{"ObjectID":"AB","FirstName":"Jane"}}"#).unwrap();
        assert_eq!(e["FirstName"], "Jane");
        assert!(parse_entity(br#"{"d":[]}"#).is_err());
    }

    #[test]
    fn parses_odata_dates() {
        let d = parse_odata_date("/Date(253402214400000)/").unwrap();
        assert_eq!(d.to_rfc3339(), "9999-12-31T00:00:00+00:00");
        let d = parse_odata_date("/Date(1351534600660+0060)/").unwrap();
        assert_eq!(d.timestamp_millis(), 1351534600660);
        assert!(parse_odata_date("/Date(-1000)/").is_some());
        assert!(parse_odata_date("2024-01-01").is_none());
        let v = Value::String("2024-01-01T00:00:00".into());
        assert_eq!(value_as_date(&v).unwrap().to_string(), "2024-01-01");
    }

    #[test]
    fn escapes_string_literals() {
        assert_eq!(string_literal("O'Brien"), "'O''Brien'");
        assert_eq!(string_literal(""), "''");
        assert_eq!(string_literal("''"), "''''''");
    }

    #[test]
    fn key_paths_refuse_injection() {
        assert_eq!(
            key_path("EmployeeCollection", "00163E").unwrap(),
            "EmployeeCollection('00163E')"
        );
        assert!(key_path("EmployeeCollection", "x')/Foo").is_err());
        assert!(key_path("EmployeeCollection", "").is_err());
        assert_eq!(
            object_id_from_uri("https://h/EmployeeCollection('00163E0A')").as_deref(),
            Some("00163E0A")
        );
        assert_eq!(object_id_from_uri("https://h/EmployeeCollection"), None);
    }
}
