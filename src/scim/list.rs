//! Query parameters and list responses (RFC 7644 §3.4.2, §3.4.3).

use super::error::ScimError;
use super::eval;
use super::filter::{AttrPath, Filter};
use super::resource::{get_ci, project};
use super::schema::ResourceTypeDef;
use serde_json::{Value, json};

pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const SEARCH_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// `sortOrder`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortOrder {
    #[default]
    Ascending,
    Descending,
}

/// A list or search request, from `GET` query parameters or a `POST /.search` body.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub filter: Option<Filter>,
    /// The filter text as received, for error positions.
    pub filter_source: Option<String>,
    /// 1-based; values below 1 are read as 1 (RFC 7644 §3.4.2.4).
    pub start_index: usize,
    /// `None` = server default; negative values are read as 0.
    pub count: Option<usize>,
    pub sort_by: Option<AttrPath>,
    pub sort_order: SortOrder,
    pub attributes: Vec<AttrPath>,
    pub excluded_attributes: Vec<AttrPath>,
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            filter: None,
            filter_source: None,
            start_index: 1,
            count: None,
            sort_by: None,
            sort_order: SortOrder::Ascending,
            attributes: Vec::new(),
            excluded_attributes: Vec::new(),
        }
    }
}

impl ListQuery {
    /// From decoded query parameters. Names are matched case-insensitively and unknown
    /// parameters are ignored (Entra appends `aadOptscim062020` and similar flags).
    pub fn from_query_pairs<I, K, V>(pairs: I) -> Result<ListQuery, ScimError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut q = ListQuery::default();
        for (k, v) in pairs {
            let (k, v) = (k.as_ref(), v.as_ref());
            match k.to_ascii_lowercase().as_str() {
                "filter" => {
                    q.filter = Some(Filter::parse(v)?);
                    q.filter_source = Some(v.to_string());
                }
                "startindex" => q.start_index = start_index_from(parse_int(k, v)?),
                "count" => q.count = Some(count_from(parse_int(k, v)?)),
                "sortby" => q.sort_by = Some(sort_by_from(v)?),
                "sortorder" => q.sort_order = sort_order_from(v)?,
                "attributes" => q.attributes = attr_list(v)?,
                "excludedattributes" => q.excluded_attributes = attr_list(v)?,
                _ => {}
            }
        }
        Ok(q)
    }

    /// From a `POST /.search` body (RFC 7644 §3.4.3).
    pub fn from_search_body(body: &Value) -> Result<ListQuery, ScimError> {
        let obj = body
            .as_object()
            .ok_or_else(|| ScimError::invalid_syntax("the search body must be a JSON object"))?;
        if let Some(schemas) = get_ci(obj, "schemas") {
            let ok = schemas.as_array().is_some_and(|a| {
                a.iter().any(|s| {
                    s.as_str()
                        .is_some_and(|s| s.eq_ignore_ascii_case(SEARCH_REQUEST_SCHEMA))
                })
            });
            if !ok {
                return Err(ScimError::invalid_syntax(format!(
                    "'schemas' must contain {SEARCH_REQUEST_SCHEMA}"
                )));
            }
        }
        let mut q = ListQuery::default();
        for (k, v) in obj {
            // Numbers may arrive as strings and strings as numbers; both are read as text.
            let text = |what: &str| -> Result<String, ScimError> {
                match v {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    _ => Err(ScimError::invalid_value(format!(
                        "'{what}' must be a string or a number"
                    ))),
                }
            };
            match k.to_ascii_lowercase().as_str() {
                "filter" => {
                    let source = text("filter")?;
                    q.filter = Some(Filter::parse(&source)?);
                    q.filter_source = Some(source);
                }
                "startindex" => {
                    q.start_index = start_index_from(parse_int(k, &text("startIndex")?)?)
                }
                "count" => q.count = Some(count_from(parse_int(k, &text("count")?)?)),
                "sortby" => q.sort_by = Some(sort_by_from(&text("sortBy")?)?),
                "sortorder" => q.sort_order = sort_order_from(&text("sortOrder")?)?,
                "attributes" | "excludedattributes" => {
                    let list = match v {
                        Value::String(s) => attr_list(s)?,
                        Value::Array(items) => {
                            let mut out = Vec::new();
                            for item in items {
                                let s = item.as_str().ok_or_else(|| {
                                    ScimError::invalid_value(format!("'{k}' must hold strings"))
                                })?;
                                out.extend(attr_list(s)?);
                            }
                            out
                        }
                        _ => {
                            return Err(ScimError::invalid_value(format!(
                                "'{k}' must be an array of strings"
                            )));
                        }
                    };
                    if k.eq_ignore_ascii_case("attributes") {
                        q.attributes = list;
                    } else {
                        q.excluded_attributes = list;
                    }
                }
                _ => {}
            }
        }
        Ok(q)
    }

    /// The page size to use: the requested count (or `default`), capped by `max`.
    pub fn effective_count(&self, default: usize, max: usize) -> usize {
        self.count.unwrap_or(default).min(max)
    }

    /// Filters, sorts, pages and projects an in-memory collection. `default_count` applies when
    /// no `count` was given; `max_results` is `filter.maxResults` of `/ServiceProviderConfig`.
    pub fn apply(
        &self,
        rt: &ResourceTypeDef,
        resources: Vec<Value>,
        default_count: usize,
        max_results: usize,
    ) -> Result<ListResponse, ScimError> {
        let mut hits: Vec<Value> = match &self.filter {
            Some(f) => {
                match &self.filter_source {
                    Some(source) => eval::check_source(f, source, rt)?,
                    None => eval::check(f, rt)?,
                }
                resources
                    .into_iter()
                    .filter(|r| eval::matches(f, r, rt))
                    .collect()
            }
            None => resources,
        };
        if let Some(sort_by) = &self.sort_by {
            // Stable sort: ties keep the store's order, so pages do not overlap.
            hits.sort_by(|a, b| {
                let o = eval::sort_key_cmp(rt, a, b, sort_by);
                match self.sort_order {
                    SortOrder::Ascending => o,
                    SortOrder::Descending => o.reverse(),
                }
            });
        }
        let total = hits.len();
        let count = self.effective_count(default_count, max_results);
        let page: Vec<Value> = hits
            .into_iter()
            .skip(self.start_index.saturating_sub(1))
            .take(count)
            .map(|r| project(rt, &r, &self.attributes, &self.excluded_attributes))
            .collect();
        Ok(ListResponse::new(total, self.start_index, page))
    }
}

fn parse_int(name: &str, v: &str) -> Result<i64, ScimError> {
    v.trim()
        .parse::<i64>()
        .map_err(|_| ScimError::invalid_value(format!("'{name}' must be an integer, got '{v}'")))
}

fn start_index_from(i: i64) -> usize {
    usize::try_from(i).ok().filter(|&i| i >= 1).unwrap_or(1)
}

fn count_from(i: i64) -> usize {
    usize::try_from(i).unwrap_or(0)
}

fn sort_by_from(v: &str) -> Result<AttrPath, ScimError> {
    AttrPath::parse(v).map_err(|e| ScimError::invalid_value(format!("sortBy: {}", e.detail)))
}

fn sort_order_from(v: &str) -> Result<SortOrder, ScimError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "ascending" | "" => Ok(SortOrder::Ascending),
        "descending" => Ok(SortOrder::Descending),
        _ => Err(ScimError::invalid_value(format!(
            "sortOrder must be 'ascending' or 'descending', got '{v}'"
        ))),
    }
}

/// A comma-separated attribute list (`attributes=userName,name.givenName`).
pub fn attr_list(v: &str) -> Result<Vec<AttrPath>, ScimError> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            AttrPath::parse(s)
                .map_err(|e| ScimError::invalid_value(format!("attribute list: {}", e.detail)))
        })
        .collect()
}

/// A ListResponse (RFC 7644 §3.4.2).
#[derive(Debug, Clone, PartialEq)]
pub struct ListResponse {
    pub total_results: usize,
    pub start_index: usize,
    pub items_per_page: usize,
    pub resources: Vec<Value>,
}

impl ListResponse {
    /// One page of `total_results`, starting at `start_index` (echoed as requested).
    pub fn new(total_results: usize, start_index: usize, resources: Vec<Value>) -> Self {
        Self {
            total_results,
            start_index,
            items_per_page: resources.len(),
            resources,
        }
    }

    /// A complete, unpaged list.
    pub fn complete(resources: Vec<Value>) -> Self {
        Self::new(resources.len(), 1, resources)
    }

    /// The wire JSON: integer counters and `Resources` present even when empty.
    pub fn to_json(&self) -> Value {
        json!({
            "schemas": [LIST_RESPONSE_SCHEMA],
            "totalResults": self.total_results,
            "itemsPerPage": self.items_per_page,
            "startIndex": self.start_index,
            "Resources": self.resources,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::error::ScimType;
    use crate::scim::schema::USER_RESOURCE;

    fn users(n: usize) -> Vec<Value> {
        (1..=n)
            .map(|i| {
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": format!("u{i:02}"),
                       "userName": format!("user{:02}", n + 1 - i), "title": if i % 2 == 0 { json!("even") } else { Value::Null }})
            })
            .collect()
    }

    #[test]
    fn query_parameters_with_rfc_defaults_and_unknown_flags() {
        let q = ListQuery::from_query_pairs([
            ("filter", r#"userName eq "x""#),
            ("StartIndex", "0"),
            ("count", "-5"),
            ("sortBy", "userName"),
            ("sortOrder", "Descending"),
            ("attributes", "userName, name.givenName"),
            ("aadOptscim062020", ""),
        ])
        .unwrap();
        assert_eq!(q.start_index, 1);
        assert_eq!(q.count, Some(0));
        assert_eq!(q.sort_order, SortOrder::Descending);
        assert_eq!(q.attributes.len(), 2);
        assert!(q.filter.is_some());
        let e = ListQuery::from_query_pairs([("filter", "userName eq")]).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidFilter));
        let q = ListQuery::from_query_pairs([("filter", r#"userName eq "x" or active GT true"#)])
            .unwrap();
        let e = q.apply(&USER_RESOURCE, users(1), 10, 10).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidFilter));
        assert!(e.detail.ends_with("(position 19)"), "{}", e.detail);
        let e = ListQuery::from_query_pairs([("count", "ten")]).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
    }

    #[test]
    fn search_body_rfc_7644_3_4_3_example() {
        let q = ListQuery::from_search_body(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "attributes": ["displayName", "userName"],
            "filter": "displayName sw \"smith\"",
            "startIndex": 1,
            "count": 10
        }))
        .unwrap();
        assert_eq!(q.attributes.len(), 2);
        assert_eq!(q.count, Some(10));
        assert_eq!(q.start_index, 1);
        let e = ListQuery::from_search_body(&json!({"schemas": ["urn:x"]})).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
    }

    #[test]
    fn paging_echoes_start_index_and_counts() {
        let q = ListQuery::from_query_pairs([("startIndex", "6"), ("count", "5")]).unwrap();
        let page = q.apply(&USER_RESOURCE, users(11), 100, 200).unwrap();
        assert_eq!(page.total_results, 11);
        assert_eq!(page.start_index, 6);
        assert_eq!(page.items_per_page, 5);
        assert_eq!(page.resources[0]["id"], "u06");
        let last = ListQuery::from_query_pairs([("startIndex", "11"), ("count", "5")])
            .unwrap()
            .apply(&USER_RESOURCE, users(11), 100, 200)
            .unwrap();
        assert_eq!(last.items_per_page, 1);
        let zero = ListQuery::from_query_pairs([("count", "0")])
            .unwrap()
            .apply(&USER_RESOURCE, users(11), 100, 200)
            .unwrap();
        assert_eq!((zero.total_results, zero.items_per_page), (11, 0));
        let capped = ListQuery::default()
            .apply(&USER_RESOURCE, users(11), 100, 3)
            .unwrap();
        assert_eq!(capped.items_per_page, 3);
    }

    #[test]
    fn filter_sort_and_projection() {
        let q = ListQuery::from_query_pairs([
            ("filter", "title pr"),
            ("sortBy", "userName"),
            ("attributes", "userName"),
        ])
        .unwrap();
        let page = q.apply(&USER_RESOURCE, users(6), 100, 200).unwrap();
        let names: Vec<&str> = page
            .resources
            .iter()
            .map(|r| r["userName"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["user01", "user03", "user05"]);
        assert!(page.resources[0].get("title").is_none());
        assert_eq!(page.resources[0]["id"], "u06");
    }

    #[test]
    fn empty_result_is_a_list_response_not_an_error() {
        let q = ListQuery::from_query_pairs([("filter", r#"userName eq "nobody""#)]).unwrap();
        let json = q
            .apply(&USER_RESOURCE, users(3), 100, 200)
            .unwrap()
            .to_json();
        assert_eq!(
            json,
            json!({"schemas": [LIST_RESPONSE_SCHEMA], "totalResults": 0, "itemsPerPage": 0, "startIndex": 1, "Resources": []})
        );
    }
}
