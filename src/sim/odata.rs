//! The OData core: resolves a request (method, path below the service root, query, body) against
//! the store and renders the answer. Synchronous and free of axum so that `$batch` parts run
//! through exactly the same code as top-level requests.

use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::config::TopPolicy;
use super::error::ODataError;
use super::filter::{self, Expr};
use super::metadata;
use super::model::{NavKind, SetId};
use super::query::QueryOptions;
use super::render::{Renderer, Selection, XML_DECL, key_predicate, service_document};
use super::store::{Actor, Db, Row, UpdateMode};
use super::values::Val;

const JSON: &str = "application/json; charset=utf-8";

/// A response of the simulated tenant, before it becomes an HTTP response (or a `$batch` part).
#[derive(Debug, Clone)]
pub(crate) struct SimResponse {
    pub status: StatusCode,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl SimResponse {
    fn new(status: StatusCode, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        SimResponse {
            status,
            headers: vec![
                ("content-type", content_type.to_owned()),
                ("dataserviceversion", "2.0".to_owned()),
                ("cache-control", "no-cache, no-store".to_owned()),
            ],
            body: body.into(),
        }
    }
    pub(crate) fn json(status: StatusCode, v: &Value) -> Self {
        Self::new(status, JSON, v.to_string())
    }
    pub(crate) fn no_content() -> Self {
        let mut r = Self::new(StatusCode::NO_CONTENT, "text/html", Vec::new());
        r.headers.retain(|(k, _)| *k != "cache-control");
        r
    }
    pub(crate) fn error(e: &ODataError, json: bool) -> Self {
        if json {
            Self::new(e.status, "application/json; charset=utf-8", e.json_body())
        } else {
            Self::new(e.status, "application/xml; charset=utf-8", e.xml_body())
        }
    }
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Settings the core needs from the simulator configuration.
#[derive(Clone, Debug)]
pub(crate) struct Env {
    /// Service root without trailing slash, e.g. `http://127.0.0.1:1234/sap/c4c/odata/v1/c4codataapi`.
    pub base: String,
    pub allow_ne: bool,
    pub top_policy: TopPolicy,
    pub page_size: usize,
    pub expand_page_size: usize,
}

pub(crate) struct ODataRequest<'a> {
    pub method: &'a str,
    /// Percent-decoded path below the service root, without leading slash.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub in_batch: bool,
}

impl ODataRequest<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// JSON when asked for by `$format=json` or `Accept: application/json`; Atom/XML otherwise,
    /// the tenant's documented default.
    pub(crate) fn wants_json(&self) -> bool {
        if let Some(q) = self.query {
            for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
                if k == "$format" {
                    return v == "json" || v == "application/json";
                }
            }
        }
        self.header("accept")
            .is_some_and(|a| a.contains("application/json"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    ServiceDocument,
    Metadata,
    Batch,
    Collection {
        set: SetId,
        count: bool,
    },
    Entity {
        set: SetId,
        key: String,
    },
    Nav {
        set: SetId,
        key: String,
        nav: &'static str,
        count: bool,
    },
}

fn parse_segment(seg: &str) -> Result<(SetId, Option<String>), ODataError> {
    let (name, key) = match seg.find('(') {
        Some(i) => {
            let inner = seg
                .get(i + 1..)
                .and_then(|s| s.strip_suffix(')'))
                .ok_or_else(|| {
                    ODataError::bad_request(format!("Invalid key predicate in segment '{seg}'"))
                })?;
            (&seg[..i], Some(inner))
        }
        None => (seg, None),
    };
    let set = SetId::from_set_name(name)
        .ok_or_else(|| ODataError::not_found(format!("Resource not found for segment '{name}'")))?;
    let key = match key {
        None => None,
        Some(k) => {
            let def = set.def();
            let k = match k.split_once('=') {
                Some((prop, v)) if prop == def.key_name => v,
                Some(_) => {
                    return Err(ODataError::bad_request(format!(
                        "Invalid key predicate '{k}'"
                    )));
                }
                None => k,
            };
            let lit = k
                .strip_prefix('\'')
                .and_then(|s| s.strip_suffix('\''))
                .ok_or_else(|| {
                    ODataError::bad_request(format!(
                        "Invalid key predicate '{k}': expected a string literal"
                    ))
                })?;
            Some(lit.replace("''", "'"))
        }
    };
    Ok((set, key))
}

pub(crate) fn parse_path(path: &str) -> Result<Target, ODataError> {
    match path {
        "" => return Ok(Target::ServiceDocument),
        "$metadata" => return Ok(Target::Metadata),
        "$batch" => return Ok(Target::Batch),
        _ => {}
    }
    let segs: Vec<&str> = path.split('/').collect();
    let (set, key) = parse_segment(segs.first().copied().unwrap_or_default())?;
    match (key, segs.get(1..).unwrap_or_default()) {
        (None, []) => Ok(Target::Collection { set, count: false }),
        (None, ["$count"]) => Ok(Target::Collection { set, count: true }),
        (Some(key), []) => Ok(Target::Entity { set, key }),
        (Some(key), [nav, rest @ ..]) => {
            let nav_def = set.def().nav(nav).ok_or_else(|| {
                ODataError::not_found(format!("Resource not found for segment '{nav}'"))
            })?;
            match rest {
                [] => Ok(Target::Nav {
                    set,
                    key,
                    nav: nav_def.name,
                    count: false,
                }),
                ["$count"] if nav_def.many => Ok(Target::Nav {
                    set,
                    key,
                    nav: nav_def.name,
                    count: true,
                }),
                _ => Err(ODataError::not_found(format!(
                    "Resource not found for segment '{}'",
                    rest.join("/")
                ))),
            }
        }
        (None, [other, ..]) => Err(ODataError::not_found(format!(
            "Resource not found for segment '{other}'"
        ))),
    }
}

/// Handles a GET/HEAD.
pub(crate) fn read(db: &Db, env: &Env, req: &ODataRequest<'_>) -> SimResponse {
    let json = req.wants_json();
    match read_inner(db, env, req, json) {
        Ok(r) => r,
        Err(e) => SimResponse::error(&e, json),
    }
}

fn read_inner(
    db: &Db,
    env: &Env,
    req: &ODataRequest<'_>,
    json: bool,
) -> Result<SimResponse, ODataError> {
    let target = parse_path(req.path)?;
    if matches!(target, Target::Metadata) {
        let filter = req.query.and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "$filter")
                .map(|(_, v)| v.into_owned())
        });
        let doc = match filter {
            Some(types) => metadata::edmx_for(&metadata::sets_for_filter(&types)),
            None => metadata::edmx(),
        };
        return Ok(SimResponse::new(StatusCode::OK, "application/xml", doc));
    }
    let opts = QueryOptions::parse(req.query)?;
    if opts.search.is_some() && req.in_batch {
        return Err(ODataError::bad_request(
            "System query option $search is not allowed in $batch",
        ));
    }
    let renderer = Renderer {
        base: &env.base,
        db,
        no_codedescs: req
            .header("odata-no-codedescs")
            .is_some_and(|v| v.eq_ignore_ascii_case("true")),
    };
    match target {
        Target::ServiceDocument => {
            let ct = if json {
                "application/json; charset=utf-8"
            } else {
                "application/xml; charset=utf-8"
            };
            Ok(SimResponse::new(
                StatusCode::OK,
                ct,
                service_document(&env.base, json),
            ))
        }
        Target::Metadata | Target::Batch => Err(ODataError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "$batch requires POST",
        )),
        Target::Entity { set, key } => {
            let row = db.get(set, &key).ok_or_else(|| {
                ODataError::not_found(format!("Resource not found for segment '{}'", req.path))
            })?;
            single(set, row, &opts, &renderer, json)
        }
        Target::Collection { set, count } => {
            // A lookup by indexed keys reads only its candidates, as a tenant's index would;
            // `collection` filters them (and reports a bad filter) as it does a full scan.
            let indexed = opts
                .validate(set.def(), env.allow_ne)
                .ok()
                .flatten()
                .and_then(|expr| db.table(set).candidates(&expr));
            let rows: Vec<Row> =
                indexed.unwrap_or_else(|| db.table(set).values().cloned().collect());
            collection(set, rows, &opts, &renderer, env, req, json, count)
        }
        Target::Nav {
            set,
            key,
            nav,
            count,
        } => {
            let parent = db.get(set, &key).ok_or_else(|| {
                ODataError::not_found(format!(
                    "Resource not found for segment '{}('{key}')'",
                    set.def().set_name
                ))
            })?;
            let nav_def = set
                .def()
                .nav(nav)
                .ok_or_else(|| ODataError::not_found(nav))?;
            let rows = db.navigate(set, parent, nav);
            if nav_def.many {
                collection(
                    nav_def.target,
                    rows,
                    &opts,
                    &renderer,
                    env,
                    req,
                    json,
                    count,
                )
            } else {
                match rows.first() {
                    Some(r) => single(nav_def.target, r, &opts, &renderer, json),
                    None => Ok(SimResponse::json(StatusCode::OK, &json!({"d": null}))),
                }
            }
        }
    }
}

fn single(
    set: SetId,
    row: &Row,
    opts: &QueryOptions,
    r: &Renderer<'_>,
    json: bool,
) -> Result<SimResponse, ODataError> {
    opts.validate(set.def(), true)?;
    let sel = Selection::new(opts.select.as_deref(), &opts.expand);
    let mut resp = if json {
        SimResponse::new(StatusCode::OK, JSON, r.entity_document(set, row, &sel))
    } else {
        let body = format!("{XML_DECL}{}", r.entry_atom(set, row, &sel, true));
        SimResponse::new(
            StatusCode::OK,
            "application/atom+xml;type=entry; charset=utf-8",
            body,
        )
    };
    if let Some(etag) = Db::etag_of(row) {
        resp.headers.push(("etag", etag));
    }
    Ok(resp)
}

/// Words of `$search`: whole-word, case-insensitive, `*` wildcard, space = AND.
fn search_matches(set: SetId, row: &Row, words: &[String]) -> bool {
    let fields: Vec<&str> = match set {
        SetId::Employee => vec![
            "FirstName",
            "LastName",
            "BusinessPartnerFormattedName",
            "Email",
            "UserID",
            "EmployeeID",
        ],
        _ => set
            .def()
            .props
            .iter()
            .filter(|p| p.text_of.is_none())
            .map(|p| p.name)
            .collect(),
    };
    let haystack: Vec<String> = fields
        .iter()
        .filter_map(|f| row.get(f).and_then(Val::as_str))
        .flat_map(|s| {
            s.split(|c: char| c.is_whitespace() || c == '@' || c == '.')
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
        })
        .collect();
    words.iter().all(|w| {
        let w = w.to_lowercase();
        haystack.iter().any(|h| {
            let e = filter::Expr::Cmp {
                prop: "FirstName",
                op: filter::Op::Eq,
                value: Some(Val::Str(w.clone())),
            };
            let rec = [("FirstName", Val::Str(h.clone()))].into_iter().collect();
            filter::eval(&e, &rec)
        })
    })
}

#[allow(clippy::too_many_arguments)]
fn collection(
    set: SetId,
    rows: Vec<Row>,
    opts: &QueryOptions,
    r: &Renderer<'_>,
    env: &Env,
    req: &ODataRequest<'_>,
    json: bool,
    count_only: bool,
) -> Result<SimResponse, ODataError> {
    let def = set.def();
    let expr: Option<Expr> = opts.validate(def, env.allow_ne)?;
    let words: Vec<String> = opts
        .search
        .as_deref()
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let mut rows: Vec<Row> = rows
        .into_iter()
        .filter(|row| expr.as_ref().is_none_or(|e| filter::eval(e, row)))
        .filter(|row| words.is_empty() || search_matches(set, row, &words))
        .collect();
    if count_only {
        return Ok(SimResponse::new(
            StatusCode::OK,
            "text/plain",
            rows.len().to_string(),
        ));
    }
    if !opts.orderby.is_empty() {
        rows.sort_by(|a, b| {
            for (prop, desc) in &opts.orderby {
                let o = a.get(prop.as_str()).cmp(&b.get(prop.as_str()));
                let o = if *desc { o.reverse() } else { o };
                if o.is_ne() {
                    return o;
                }
            }
            std::cmp::Ordering::Equal
        });
    }
    let total = rows.len();
    let window_start = opts.skip.min(total);
    let window_end = match opts.top {
        Some(t) => window_start.saturating_add(t).min(total),
        None => total,
    };
    let window = &rows[window_start..window_end];
    let page_size = if opts.expand.is_empty() {
        env.page_size
    } else {
        env.expand_page_size
    };
    let paged = match opts.top {
        None => true,
        Some(t) => t > page_size && env.top_policy == TopPolicy::CapAndPage,
    };
    let offset = opts.skiptoken.map(|t| t - 1).unwrap_or(0).min(window.len());
    let page_end = if paged {
        offset.saturating_add(page_size).min(window.len())
    } else {
        window.len()
    };
    let page = &window[offset..page_end];
    let next = (paged && page_end < window.len()).then(|| {
        format!(
            "{}/{}?{}",
            env.base,
            req.path,
            opts.next_query(page_end + 1)
        )
    });
    let sel = Selection::new(opts.select.as_deref(), &opts.expand);
    if json {
        let body = r.collection_document(
            set,
            page,
            &sel,
            opts.inlinecount.then_some(total),
            next.as_deref(),
        );
        Ok(SimResponse::new(StatusCode::OK, JSON, body))
    } else {
        let body = format!(
            "{XML_DECL}{}",
            r.feed_atom(
                set,
                page,
                &sel,
                opts.inlinecount.then_some(total),
                next.as_deref(),
                true
            )
        );
        Ok(SimResponse::new(
            StatusCode::OK,
            "application/atom+xml;type=feed; charset=utf-8",
            body,
        ))
    }
}

/// Handles POST, PUT, PATCH, MERGE and DELETE.
pub(crate) fn write(db: &mut Db, env: &Env, req: &ODataRequest<'_>, actor: &Actor) -> SimResponse {
    let json = req.wants_json();
    match write_inner(db, env, req, actor, json) {
        Ok(r) => r,
        Err(e) => SimResponse::error(&e, json),
    }
}

fn json_body(req: &ODataRequest<'_>) -> Result<Value, ODataError> {
    if let Some(ct) = req.header("content-type")
        && !ct.to_ascii_lowercase().starts_with("application/json")
    {
        return Err(ODataError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content type '{ct}' is not supported; send application/json"),
        ));
    }
    serde_json::from_slice(req.body)
        .map_err(|e| ODataError::bad_request(format!("Invalid JSON in request body: {e}")))
}

fn write_inner(
    db: &mut Db,
    env: &Env,
    req: &ODataRequest<'_>,
    actor: &Actor,
    json: bool,
) -> Result<SimResponse, ODataError> {
    let target = parse_path(req.path)?;
    let if_match = req.header("if-match");
    match (req.method, target) {
        ("POST", Target::Collection { set, count: false }) => {
            created(db, env, req, set, None, actor, json)
        }
        (
            "POST",
            Target::Nav {
                set: SetId::Employee,
                key,
                nav,
                count: false,
            },
        ) => {
            let nav_def = SetId::Employee
                .def()
                .nav(nav)
                .ok_or_else(|| ODataError::not_found(nav))?;
            if nav_def.kind != NavKind::Children {
                return Err(ODataError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    format!("Create via navigation {nav} is not supported"),
                ));
            }
            created(db, env, req, nav_def.target, Some(&key), actor, json)
        }
        ("PATCH" | "MERGE" | "PUT", Target::Entity { set, key }) => {
            let mode = if req.method == "PUT" {
                UpdateMode::Replace
            } else {
                UpdateMode::Merge
            };
            let body = json_body(req)?;
            db.update(set, &key, &body, mode, if_match, actor)?;
            Ok(SimResponse::no_content())
        }
        ("DELETE", Target::Entity { set, key }) => {
            db.delete(set, &key, if_match)?;
            Ok(SimResponse::no_content())
        }
        (m, _) => Err(ODataError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("Method {m} is not supported for resource '{}'", req.path),
        )),
    }
}

fn created(
    db: &mut Db,
    env: &Env,
    req: &ODataRequest<'_>,
    set: SetId,
    parent: Option<&str>,
    actor: &Actor,
    json: bool,
) -> Result<SimResponse, ODataError> {
    let body = json_body(req)?;
    let id = db.create(set, &body, parent, actor)?;
    let row = db.get(set, &id).cloned().ok_or_else(|| {
        ODataError::new(StatusCode::INTERNAL_SERVER_ERROR, "created entity vanished")
    })?;
    let location = format!("{}/{}", env.base, key_predicate(set.def(), &row));
    let no_payload = req
        .header("odata-no-response-payload")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let r = Renderer {
        base: &env.base,
        db,
        no_codedescs: false,
    };
    let sel = Selection::default();
    let mut resp = if no_payload {
        let mut r = SimResponse::no_content();
        r.status = StatusCode::CREATED;
        r
    } else if json {
        SimResponse::new(
            StatusCode::CREATED,
            JSON,
            r.entity_document(set, &row, &sel),
        )
    } else {
        let body = format!("{XML_DECL}{}", r.entry_atom(set, &row, &sel, true));
        SimResponse::new(
            StatusCode::CREATED,
            "application/atom+xml;type=entry; charset=utf-8",
            body,
        )
    };
    resp.headers.push(("location", location));
    if let Some(etag) = Db::etag_of(&row) {
        resp.headers.push(("etag", etag));
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(parse_path("").unwrap(), Target::ServiceDocument);
        assert_eq!(
            parse_path("EmployeeCollection").unwrap(),
            Target::Collection {
                set: SetId::Employee,
                count: false
            }
        );
        assert_eq!(
            parse_path("EmployeeCollection/$count").unwrap(),
            Target::Collection {
                set: SetId::Employee,
                count: true
            }
        );
        assert_eq!(
            parse_path("EmployeeCollection('AB''C')").unwrap(),
            Target::Entity {
                set: SetId::Employee,
                key: "AB'C".into()
            }
        );
        assert_eq!(
            parse_path(
                "EmployeeCollection(ObjectID='X')/EmployeeUserBusinessRoleAssignment/$count"
            )
            .unwrap(),
            Target::Nav {
                set: SetId::Employee,
                key: "X".into(),
                nav: "EmployeeUserBusinessRoleAssignment",
                count: true
            }
        );
        assert_eq!(
            parse_path("Nope").unwrap_err().status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            parse_path("EmployeeCollection(X)").unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            parse_path("EmployeeCollection('X')/Nope")
                .unwrap_err()
                .status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            parse_path("EmployeeCollection('X')/BusinessUser/$count")
                .unwrap_err()
                .status,
            StatusCode::NOT_FOUND
        );
    }
}
