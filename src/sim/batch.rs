//! `$batch`: multipart/mixed with changesets, strict about CRLFs and blank lines, atomic per
//! changeset. Hand-written: multipart crates handle form-data, not OData's embedded HTTP messages.

use std::collections::HashMap;

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use super::error::ODataError;
use super::faults::bump;
use super::odata::{self, ODataRequest, SimResponse};
use super::server::{SERVICE_PATH, Shared};
use super::store::Actor;

#[derive(Debug)]
struct Operation {
    method: String,
    url: String,
    headers: HeaderMap,
    body: Vec<u8>,
    content_id: Option<String>,
}

#[derive(Debug)]
enum Part {
    Retrieve(Operation),
    ChangeSet(Vec<Operation>),
}

fn bad(msg: impl Into<String>) -> ODataError {
    ODataError::bad_request(msg)
}

pub(crate) fn boundary_of(content_type: &str) -> Option<String> {
    let (mime, params) = content_type.split_once(';')?;
    if !mime.trim().eq_ignore_ascii_case("multipart/mixed") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// Splits a multipart body into its parts (each without the delimiter line's CRLF).
fn split_multipart<'a>(body: &'a str, boundary: &str) -> Result<Vec<&'a str>, ODataError> {
    let delim = format!("--{boundary}");
    let start = if body.starts_with(&delim) {
        0
    } else {
        body.find(&format!("\r\n{delim}"))
            .map(|i| i + 2)
            .ok_or_else(|| {
                bad(format!(
                    "Invalid batch body: boundary '{boundary}' not found"
                ))
            })?
    };
    let mut parts = Vec::new();
    let mut rest = &body[start + delim.len()..];
    loop {
        if rest.starts_with("--") {
            return Ok(parts);
        }
        let after = rest.strip_prefix("\r\n").ok_or_else(|| {
            bad("Invalid batch body: a boundary delimiter must be followed by CRLF")
        })?;
        let next = format!("\r\n{delim}");
        let end = after
            .find(&next)
            .ok_or_else(|| bad("Invalid batch body: missing closing boundary"))?;
        parts.push(&after[..end]);
        rest = &after[end + next.len()..];
    }
}

/// Splits "headers CRLF CRLF body"; headers are returned lower-cased by name.
fn split_headers(text: &str) -> Result<(HeaderMap, &str), ODataError> {
    let (head, body) = if let Some(b) = text.strip_prefix("\r\n") {
        ("", b)
    } else {
        text.split_once("\r\n\r\n").ok_or_else(|| {
            bad("Invalid batch part: headers must end with an empty line (CRLF CRLF)")
        })?
    };
    let mut headers = HeaderMap::new();
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| bad(format!("Invalid header line in batch part: '{line}'")))?;
        let name = HeaderName::from_bytes(k.trim().as_bytes())
            .map_err(|_| bad(format!("Invalid header name '{k}'")))?;
        let value = HeaderValue::from_str(v.trim())
            .map_err(|_| bad(format!("Invalid header value for '{k}'")))?;
        headers.append(name, value);
    }
    Ok((headers, body))
}

fn parse_operation(part: &str) -> Result<Operation, ODataError> {
    let (mime_headers, http) = split_headers(part)?;
    let ct = mime_headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !ct.eq_ignore_ascii_case("application/http") {
        return Err(bad(format!(
            "Invalid batch part: Content-Type must be application/http, got '{ct}'"
        )));
    }
    let content_id = mime_headers
        .get("content-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (request_line, rest) = http
        .split_once("\r\n")
        .ok_or_else(|| bad("Invalid batch part: request line must end with CRLF"))?;
    let words: Vec<&str> = request_line.split(' ').collect();
    let [method, url, version] = words.as_slice() else {
        return Err(bad(format!(
            "Invalid request line in batch part: '{request_line}' (query strings must be URL-encoded)"
        )));
    };
    if *version != "HTTP/1.1" {
        return Err(bad(format!(
            "Invalid HTTP version in batch part: '{version}'"
        )));
    }
    let (headers, body) = split_headers(rest)?;
    let content_id = content_id.or_else(|| {
        headers
            .get("content-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    });
    let body = body.trim_end_matches("\r\n").as_bytes().to_vec();
    Ok(Operation {
        method: method.to_ascii_uppercase(),
        url: (*url).to_owned(),
        headers,
        body,
        content_id,
    })
}

fn parse_batch(body: &str, boundary: &str) -> Result<Vec<Part>, ODataError> {
    let mut parts = Vec::new();
    for raw in split_multipart(body, boundary)? {
        let (headers, inner) = split_headers(raw)?;
        let ct = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if let Some(cs_boundary) = boundary_of(ct) {
            let mut ops = Vec::new();
            for op in split_multipart(inner, &cs_boundary)? {
                let op = parse_operation(op)?;
                if op.method == "GET" {
                    return Err(bad("GET operations are not allowed inside a changeset"));
                }
                ops.push(op);
            }
            parts.push(Part::ChangeSet(ops));
        } else {
            let op = parse_operation(raw)?;
            if op.method != "GET" {
                return Err(bad(format!(
                    "{} operations must be inside a changeset",
                    op.method
                )));
            }
            parts.push(Part::Retrieve(op));
        }
    }
    Ok(parts)
}

fn render_http(r: &SimResponse) -> String {
    let reason = r.status.canonical_reason().unwrap_or("");
    let mut out = format!("HTTP/1.1 {} {reason}\r\n", r.status.as_u16());
    for (k, v) in &r.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", r.body.len()));
    out.push_str(&String::from_utf8_lossy(&r.body));
    out
}

fn http_part(r: &SimResponse) -> String {
    format!(
        "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n{}\r\n",
        render_http(r)
    )
}

fn random_boundary(prefix: &str) -> String {
    format!(
        "{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// Resolves `$<Content-ID>` and splits path and query of an operation URL.
fn resolve(
    url: &str,
    ids: &HashMap<String, String>,
) -> Result<(String, Option<String>), ODataError> {
    if url.starts_with("http://") || url.starts_with("https://") || url.starts_with('/') {
        let path_start = url
            .find(SERVICE_PATH)
            .ok_or_else(|| bad(format!("Operation URL '{url}' is outside the service")))?;
        return resolve(
            url[path_start + SERVICE_PATH.len()..].trim_start_matches('/'),
            ids,
        );
    }
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p, Some(q.to_owned())),
        None => (url, None),
    };
    let path = match path.strip_prefix('$').and_then(|rest| {
        let (id, tail) = rest.split_once('/').unwrap_or((rest, ""));
        ids.get(id).map(|loc| {
            if tail.is_empty() {
                loc.clone()
            } else {
                format!("{loc}/{tail}")
            }
        })
    }) {
        Some(p) => p,
        None => path.to_owned(),
    };
    let decoded = percent_encoding::percent_decode_str(&path)
        .decode_utf8()
        .map_err(|_| bad("Invalid URL encoding in batch operation"))?
        .into_owned();
    Ok((decoded, query))
}

enum Db<'a> {
    Read(&'a super::store::Db),
    Write(&'a mut super::store::Db),
}

fn run_op(
    db: Db<'_>,
    sh: &Shared,
    op: &Operation,
    ids: &HashMap<String, String>,
    actor: &Actor,
) -> SimResponse {
    let json_pref = op
        .headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("json"));
    let (path, query) = match resolve(&op.url, ids) {
        Ok(x) => x,
        Err(e) => return SimResponse::error(&e, json_pref),
    };
    let req = ODataRequest {
        method: &op.method,
        path: &path,
        query: query.as_deref(),
        headers: &op.headers,
        body: &op.body,
        in_batch: true,
    };
    match db {
        Db::Write(db) => odata::write(db, &sh.env, &req, actor),
        Db::Read(db) => odata::read(db, &sh.env, &req),
    }
}

/// Handles a `$batch` POST (CSRF and auth already checked by the caller).
pub(crate) fn handle(sh: &Shared, req: &ODataRequest<'_>, actor: &Actor) -> SimResponse {
    let json = req.wants_json();
    match handle_inner(sh, req, actor) {
        Ok(r) => r,
        Err(e) => SimResponse::error(&e, json),
    }
}

fn handle_inner(
    sh: &Shared,
    req: &ODataRequest<'_>,
    actor: &Actor,
) -> Result<SimResponse, ODataError> {
    let ct = req
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let boundary = boundary_of(ct).ok_or_else(|| {
        bad("Content type of a $batch request must be multipart/mixed with a boundary")
    })?;
    let body = std::str::from_utf8(req.body).map_err(|_| bad("Batch body is not valid UTF-8"))?;
    let parts = parse_batch(body, &boundary)?;
    let outer = random_boundary("batch");
    let mut out = String::new();
    for part in parts {
        out.push_str(&format!("--{outer}\r\n"));
        match part {
            Part::Retrieve(op) => {
                bump(&sh.counters.batch_parts);
                let db = sh.db.read().unwrap_or_else(|p| p.into_inner());
                let r = run_op(Db::Read(&db), sh, &op, &HashMap::new(), actor);
                out.push_str(&http_part(&r));
            }
            Part::ChangeSet(ops) => {
                let mut db = sh.db.write().unwrap_or_else(|p| p.into_inner());
                let snapshot = db.clone();
                let mut ids = HashMap::new();
                let mut responses = Vec::new();
                let mut failed = None;
                for op in &ops {
                    bump(&sh.counters.batch_parts);
                    let r = run_op(Db::Write(&mut db), sh, op, &ids, actor);
                    if r.status.as_u16() >= 400 {
                        failed = Some(r);
                        break;
                    }
                    if let (Some(cid), Some(loc)) = (&op.content_id, r.header("location")) {
                        let rel = loc
                            .strip_prefix(&format!("{}/", sh.env.base))
                            .unwrap_or(loc)
                            .to_owned();
                        ids.insert(cid.clone(), rel);
                    }
                    responses.push((op.content_id.clone(), r));
                }
                match failed {
                    Some(err) => {
                        *db = snapshot;
                        out.push_str(&http_part(&err));
                    }
                    None => {
                        let cs = random_boundary("changeset");
                        let mut inner = String::new();
                        for (cid, r) in responses {
                            inner.push_str(&format!("--{cs}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"));
                            if let Some(cid) = cid {
                                inner.push_str(&format!("Content-ID: {cid}\r\n"));
                            }
                            inner.push_str(&format!("\r\n{}\r\n", render_http(&r)));
                        }
                        inner.push_str(&format!("--{cs}--\r\n"));
                        out.push_str(&format!(
                            "Content-Type: multipart/mixed; boundary={cs}\r\nContent-Length: {}\r\n\r\n{inner}\r\n",
                            inner.len()
                        ));
                    }
                }
            }
        }
    }
    out.push_str(&format!("--{outer}--\r\n"));
    Ok(SimResponse {
        status: StatusCode::ACCEPTED,
        headers: vec![
            ("content-type", format!("multipart/mixed; boundary={outer}")),
            ("dataserviceversion", "2.0".to_owned()),
        ],
        body: out.into_bytes(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "--batch_1\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nGET EmployeeCollection?$filter=EmployeeID%20eq%20'1'&$format=json HTTP/1.1\r\n\r\n\r\n--batch_1\r\nContent-Type: multipart/mixed; boundary=changeset_a\r\n\r\n--changeset_a\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nPATCH EmployeeCollection('X') HTTP/1.1\r\nContent-Type: application/json\r\nContent-ID: 1\r\n\r\n{\"UserLockedIndicator\": true}\r\n--changeset_a--\r\n--batch_1--\r\n";

    #[test]
    fn parses_the_dev_guide_shape() {
        let parts = parse_batch(SAMPLE, "batch_1").unwrap();
        assert_eq!(parts.len(), 2);
        let Part::Retrieve(get) = &parts[0] else {
            panic!()
        };
        assert_eq!(get.method, "GET");
        let Part::ChangeSet(ops) = &parts[1] else {
            panic!()
        };
        assert_eq!(ops[0].method, "PATCH");
        assert_eq!(ops[0].content_id.as_deref(), Some("1"));
        assert_eq!(ops[0].body, b"{\"UserLockedIndicator\": true}");
    }

    #[test]
    fn strict_about_line_endings_and_encoding() {
        assert!(parse_batch(&SAMPLE.replace("\r\n", "\n"), "batch_1").is_err());
        assert!(parse_batch(&SAMPLE.replace("%20", " "), "batch_1").is_err());
        // A GET without the blank line after its request line.
        let no_blank = "--b\r\nContent-Type: application/http\r\n\r\nGET EmployeeCollection HTTP/1.1\r\n--b--\r\n";
        assert!(parse_batch(no_blank, "b").is_err());
        let post_outside = "--b\r\nContent-Type: application/http\r\n\r\nPOST EmployeeCollection HTTP/1.1\r\n\r\n{}\r\n--b--\r\n";
        assert!(parse_batch(post_outside, "b").is_err());
        assert_eq!(
            boundary_of("multipart/mixed; boundary=\"abc\"").as_deref(),
            Some("abc")
        );
        assert_eq!(boundary_of("application/json"), None);
    }

    #[test]
    fn resolves_content_id_references() {
        let ids: HashMap<String, String> =
            [("1".to_owned(), "EmployeeCollection('ABC')".to_owned())].into();
        let (p, q) = resolve("$1/EmployeeUserBusinessRoleAssignment", &ids).unwrap();
        assert_eq!(
            p,
            "EmployeeCollection('ABC')/EmployeeUserBusinessRoleAssignment"
        );
        assert_eq!(q, None);
        let (p, q) = resolve("EmployeeCollection?$top=1", &ids).unwrap();
        assert_eq!(
            (p.as_str(), q.as_deref()),
            ("EmployeeCollection", Some("$top=1"))
        );
    }
}
