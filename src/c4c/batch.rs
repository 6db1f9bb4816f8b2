//! OData v2 `$batch`: multipart/mixed request building and response parsing.
//!
//! Written by hand: the multipart crates on crates.io target `multipart/form-data` uploads,
//! while a batch body is small, in memory, nests one level of `multipart/mixed` and carries
//! raw HTTP messages (parsed here with `httparse`).

use bytes::Bytes;
use serde_json::Value;

use super::error::{C4cError, error_from_response};
use super::odata::ETag;

/// Methods allowed inside a changeset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeMethod {
    Post,
    Patch,
    Put,
    Delete,
}

impl ChangeMethod {
    fn as_str(self) -> &'static str {
        match self {
            Self::Post => "POST",
            Self::Patch => "PATCH",
            Self::Put => "PUT",
            Self::Delete => "DELETE",
        }
    }
}

/// One write inside a changeset. `path` is relative to the service root, query URL-encoded.
#[derive(Debug, Clone)]
pub struct BatchChange {
    pub method: ChangeMethod,
    pub path: String,
    pub body: Option<Value>,
    pub if_match: Option<ETag>,
}

impl BatchChange {
    pub fn post(path: impl Into<String>, body: Value) -> Self {
        Self {
            method: ChangeMethod::Post,
            path: path.into(),
            body: Some(body),
            if_match: None,
        }
    }
    pub fn patch(path: impl Into<String>, body: Value, if_match: Option<ETag>) -> Self {
        Self {
            method: ChangeMethod::Patch,
            path: path.into(),
            body: Some(body),
            if_match,
        }
    }
    pub fn delete(path: impl Into<String>) -> Self {
        Self {
            method: ChangeMethod::Delete,
            path: path.into(),
            body: None,
            if_match: None,
        }
    }
}

/// A top-level part of a batch: a read, or a changeset applied all-or-nothing.
#[derive(Debug, Clone)]
pub enum BatchPart {
    Get(String),
    Changeset(Vec<BatchChange>),
}

/// One HTTP response carried in a batch.
#[derive(Debug, Clone)]
pub struct BatchResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl BatchResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn into_result(self) -> Result<BatchResponse, C4cError> {
        if (200..300).contains(&self.status) {
            Ok(self)
        } else {
            let csrf = self
                .header("x-csrf-token")
                .is_some_and(|v| v.eq_ignore_ascii_case("required"));
            Err(error_from_response(self.status, csrf, None, &self.body))
        }
    }
}

/// Result of one top-level part, aligned with the request's parts.
#[derive(Debug, Clone)]
pub enum BatchPartResult {
    Get(Result<BatchResponse, C4cError>),
    /// One result per change, in request order. When the changeset failed as a whole, every
    /// change carries that failure (nothing of it was applied).
    Changeset(Vec<Result<BatchResponse, C4cError>>),
}

/// A built request body and its Content-Type header value.
pub(crate) struct BuiltBatch {
    pub content_type: String,
    pub body: Vec<u8>,
}

fn check_path(path: &str) -> Result<(), C4cError> {
    if path.is_empty()
        || path.starts_with('/')
        || path.contains("://")
        || path
            .chars()
            .any(|c| c.is_ascii_whitespace() || c.is_control())
    {
        return Err(C4cError::InvalidInput(format!(
            "batch part path must be relative to the service root and URL-encoded: {path:?}"
        )));
    }
    Ok(())
}

pub(crate) fn build(parts: &[BatchPart]) -> Result<BuiltBatch, C4cError> {
    let boundary = format!("batch_{}", uuid::Uuid::new_v4().simple());
    let mut body = Vec::new();
    let mut content_id = 0u32;
    for part in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match part {
            BatchPart::Get(path) => {
                check_path(path)?;
                body.extend_from_slice(
                    b"Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n",
                );
                body.extend_from_slice(
                    format!("GET {path} HTTP/1.1\r\nAccept: application/json\r\n\r\n\r\n")
                        .as_bytes(),
                );
            }
            BatchPart::Changeset(changes) => {
                if changes.is_empty() {
                    return Err(C4cError::InvalidInput("empty changeset".into()));
                }
                let cs = format!("changeset_{}", uuid::Uuid::new_v4().simple());
                body.extend_from_slice(
                    format!("Content-Type: multipart/mixed; boundary={cs}\r\n\r\n").as_bytes(),
                );
                for change in changes {
                    check_path(&change.path)?;
                    content_id += 1;
                    body.extend_from_slice(format!("--{cs}\r\n").as_bytes());
                    body.extend_from_slice(
                        format!(
                            "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: {content_id}\r\n\r\n"
                        )
                        .as_bytes(),
                    );
                    body.extend_from_slice(
                        format!("{} {} HTTP/1.1\r\n", change.method.as_str(), change.path)
                            .as_bytes(),
                    );
                    body.extend_from_slice(
                        format!("Content-ID: {content_id}\r\nAccept: application/json\r\n")
                            .as_bytes(),
                    );
                    if let Some(etag) = &change.if_match {
                        body.extend_from_slice(format!("If-Match: {etag}\r\n").as_bytes());
                    }
                    match &change.body {
                        Some(json) => {
                            let payload = serde_json::to_vec(json).map_err(|e| {
                                C4cError::InvalidInput(format!("body not serialisable: {e}"))
                            })?;
                            body.extend_from_slice(
                                format!(
                                    "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                                    payload.len()
                                )
                                .as_bytes(),
                            );
                            body.extend_from_slice(&payload);
                            body.extend_from_slice(b"\r\n");
                        }
                        // Headers end with an empty line; the CRLF before the next
                        // boundary belongs to the delimiter, not to this part.
                        None => body.extend_from_slice(b"\r\n\r\n"),
                    }
                }
                body.extend_from_slice(format!("--{cs}--\r\n").as_bytes());
            }
        }
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Ok(BuiltBatch {
        content_type: format!("multipart/mixed; boundary={boundary}"),
        body,
    })
}

/// Boundary parameter of a `multipart/mixed` Content-Type.
pub(crate) fn boundary_of(content_type: &str) -> Option<String> {
    let mime: mime::Mime = content_type.trim().parse().ok()?;
    if mime.type_() != mime::MULTIPART {
        return None;
    }
    mime.get_param(mime::BOUNDARY)
        .map(|b| b.as_str().to_string())
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    (from..=haystack.len() - needle.len())
        .find(|&i| haystack.get(i..i + needle.len()) == Some(needle))
}

/// Splits a multipart body into its parts (headers + body of each), tolerating LF-only lines.
fn split_multipart<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<&'a [u8]>, C4cError> {
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    let bad = |m: &str| C4cError::UnexpectedResponse(format!("batch response: {m}"));
    let mut pos = find(body, delim, 0).ok_or_else(|| bad("boundary not found"))?;
    let mut parts = Vec::new();
    loop {
        let after = pos + delim.len();
        if body.get(after..after + 2) == Some(b"--") {
            return Ok(parts);
        }
        // Skip transport padding and the line break after the delimiter.
        let line_end = find(body, b"\n", after).ok_or_else(|| bad("truncated after boundary"))?;
        let start = line_end + 1;
        let next = find(body, delim, start).ok_or_else(|| bad("missing closing boundary"))?;
        let mut end = next;
        // The line break before a delimiter belongs to the delimiter.
        if end > start && body.get(end - 1) == Some(&b'\n') {
            end -= 1;
            if end > start && body.get(end - 1) == Some(&b'\r') {
                end -= 1;
            }
        }
        parts.push(body.get(start..end).ok_or_else(|| bad("bad part bounds"))?);
        pos = next;
    }
}

/// Splits a MIME part into its header lines and body.
fn split_headers(part: &[u8]) -> (Vec<(String, String)>, &[u8]) {
    let (head, body) = match (find(part, b"\r\n\r\n", 0), find(part, b"\n\n", 0)) {
        (Some(i), Some(j)) if j < i => (&part[..j], &part[j + 2..]),
        (Some(i), _) => (&part[..i], &part[i + 4..]),
        (None, Some(j)) => (&part[..j], &part[j + 2..]),
        (None, None) => (part, &part[part.len()..]),
    };
    let headers = String::from_utf8_lossy(head)
        .lines()
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    (headers, body)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn parse_http_response(raw: &[u8]) -> Result<BatchResponse, C4cError> {
    let mut storage = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut storage);
    let status = resp.parse(raw).map_err(|e| {
        C4cError::UnexpectedResponse(format!("batch part is not an HTTP response: {e}"))
    })?;
    let httparse::Status::Complete(head_len) = status else {
        return Err(C4cError::UnexpectedResponse(
            "batch part HTTP head is truncated".into(),
        ));
    };
    let code = resp
        .code
        .ok_or_else(|| C4cError::UnexpectedResponse("batch part without status".into()))?;
    let headers: Vec<(String, String)> = resp
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let mut body = raw.get(head_len..).unwrap_or_default();
    if let Some(len) = header(&headers, "content-length").and_then(|l| l.parse::<usize>().ok())
        && let Some(declared) = body.get(..len)
    {
        body = declared;
    }
    Ok(BatchResponse {
        status: code,
        headers,
        body: Bytes::copy_from_slice(body),
    })
}

/// Parses a `$batch` response and aligns it with the request's parts.
pub(crate) fn parse(
    content_type: &str,
    body: &[u8],
    request: &[BatchPart],
) -> Result<Vec<BatchPartResult>, C4cError> {
    let boundary = boundary_of(content_type).ok_or_else(|| {
        C4cError::UnexpectedResponse(format!("batch response is not multipart: {content_type}"))
    })?;
    let parts = split_multipart(body, &boundary)?;
    if parts.len() != request.len() {
        return Err(C4cError::UnexpectedResponse(format!(
            "batch response has {} parts for {} requested",
            parts.len(),
            request.len()
        )));
    }
    let mut out = Vec::with_capacity(parts.len());
    for (raw, asked) in parts.into_iter().zip(request) {
        let (headers, inner) = split_headers(raw);
        let ctype = header(&headers, "content-type").unwrap_or("application/http");
        match (asked, boundary_of(ctype)) {
            (BatchPart::Get(_), None) => {
                out.push(BatchPartResult::Get(
                    parse_http_response(inner)?.into_result(),
                ));
            }
            (BatchPart::Get(_), Some(_)) => {
                return Err(C4cError::UnexpectedResponse(
                    "changeset response for a GET part".into(),
                ));
            }
            (BatchPart::Changeset(changes), Some(cs)) => {
                let responses = split_multipart(inner, &cs)?;
                if responses.len() != changes.len() {
                    return Err(C4cError::UnexpectedResponse(format!(
                        "changeset response has {} parts for {} changes",
                        responses.len(),
                        changes.len()
                    )));
                }
                let mut results = Vec::with_capacity(responses.len());
                for r in responses {
                    let (_, http) = split_headers(r);
                    results.push(parse_http_response(http)?.into_result());
                }
                out.push(BatchPartResult::Changeset(results));
            }
            (BatchPart::Changeset(changes), None) => {
                // A failed changeset is answered by one error response in its place.
                let failure = match parse_http_response(inner)?.into_result() {
                    Err(e) => e,
                    Ok(r) => C4cError::UnexpectedResponse(format!(
                        "changeset answered by a single {} response",
                        r.status
                    )),
                };
                out.push(BatchPartResult::Changeset(vec![
                    Err(failure);
                    changes.len()
                ]));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builds_crlf_multipart_with_changeset() {
        let parts = vec![
            BatchPart::Get("EmployeeCollection?$filter=EmployeeID%20eq%20'1'".into()),
            BatchPart::Changeset(vec![
                BatchChange::patch(
                    "EmployeeCollection('AB')",
                    json!({"UserLockedIndicator": true}),
                    Some(ETag::new("W/\"x\"")),
                ),
                BatchChange::post(
                    "EmployeeUserBusinessRoleAssignmentCollection",
                    json!({"BusinessRoleID": "R"}),
                ),
            ]),
        ];
        let built = build(&parts).unwrap();
        let text = String::from_utf8(built.body).unwrap();
        let boundary = boundary_of(&built.content_type).unwrap();
        assert!(text.starts_with(&format!("--{boundary}\r\n")));
        assert!(text.ends_with(&format!("--{boundary}--\r\n")));
        assert!(text.contains("GET EmployeeCollection?$filter=EmployeeID%20eq%20'1' HTTP/1.1\r\nAccept: application/json\r\n\r\n\r\n"));
        assert!(text.contains("PATCH EmployeeCollection('AB') HTTP/1.1\r\nContent-ID: 1\r\n"));
        assert!(text.contains("If-Match: W/\"x\"\r\n"));
        assert!(text.contains("Content-ID: 2\r\n"));
        assert!(
            !text.replace("\r\n", "").contains('\n'),
            "only CRLF line ends"
        );
    }

    #[test]
    fn refuses_unsafe_paths() {
        assert!(build(&[BatchPart::Get("EmployeeCollection?$filter=a eq 'b'".into())]).is_err());
        assert!(build(&[BatchPart::Get("/abs".into())]).is_err());
        assert!(build(&[BatchPart::Get("x\r\nHost: evil".into())]).is_err());
        assert!(build(&[BatchPart::Changeset(vec![])]).is_err());
    }

    const RESPONSE: &str = "--ejjeeffe0\r\nContent-Type: application/http\r\nContent-Length: 60\r\nContent-Transfer-Encoding: binary\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: application/json\r\ndataserviceversion: 2.0\r\n\r\n{\"d\":{\"results\":[]}}\r\n--ejjeeffe0\r\nContent-Type: multipart/mixed; boundary=ejjeeffe1\r\nContent-Length: 2329\r\n\r\n--ejjeeffe1\r\nContent-Type: application/http\r\nContent-Length: 96\r\nContent-Transfer-Encoding: binary\r\n\r\nHTTP/1.1 204 No Content\r\nContent-Type: text/html\r\nContent-Length: 0\r\ndataserviceversion: 2.0\r\n\r\n\r\n--ejjeeffe1\r\nContent-Type: application/http\r\nContent-Length: 2008\r\nContent-Transfer-Encoding: binary\r\n\r\nHTTP/1.1 201 Created\r\nContent-Type: application/json\r\nlocation: https://h/EmployeeUserBusinessRoleAssignmentCollection('00163E0D')\r\n\r\n{\"d\":{\"ObjectID\":\"00163E0D\"}}\r\n--ejjeeffe1--\r\n\r\n--ejjeeffe0--\r\n";

    fn request() -> Vec<BatchPart> {
        vec![
            BatchPart::Get("EmployeeCollection".into()),
            BatchPart::Changeset(vec![
                BatchChange::patch("EmployeeCollection('AB')", json!({}), None),
                BatchChange::post("EmployeeUserBusinessRoleAssignmentCollection", json!({})),
            ]),
        ]
    }

    #[test]
    fn parses_server_boundaries_and_nested_changesets() {
        let parsed = parse(
            "multipart/mixed; boundary=ejjeeffe0",
            RESPONSE.as_bytes(),
            &request(),
        )
        .unwrap();
        assert_eq!(parsed.len(), 2);
        match &parsed[0] {
            BatchPartResult::Get(Ok(r)) => {
                assert_eq!(r.status, 200);
                assert_eq!(&r.body[..], b"{\"d\":{\"results\":[]}}");
            }
            other => panic!("unexpected {other:?}"),
        }
        match &parsed[1] {
            BatchPartResult::Changeset(results) => {
                assert_eq!(results.len(), 2);
                assert_eq!(results[0].as_ref().unwrap().status, 204);
                let created = results[1].as_ref().unwrap();
                assert_eq!(created.status, 201);
                assert!(
                    created
                        .header("Location")
                        .unwrap()
                        .ends_with("('00163E0D')")
                );
                assert_eq!(&created.body[..], b"{\"d\":{\"ObjectID\":\"00163E0D\"}}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn failed_changeset_fails_every_change() {
        let body = "--b\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 200 OK\r\n\r\n{}\r\n--b\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n\r\n{\"error\":{\"code\":\"ERROR\",\"message\":{\"lang\":\"en\",\"value\":\"Property 'FirstName' is mandatory\"}}}\r\n--b--";
        let parsed = parse(
            "multipart/mixed;boundary=\"b\"",
            body.as_bytes(),
            &request(),
        )
        .unwrap();
        match &parsed[1] {
            BatchPartResult::Changeset(results) => {
                assert_eq!(results.len(), 2);
                for r in results {
                    match r {
                        Err(C4cError::Validation { property, .. }) => {
                            assert_eq!(property.as_deref(), Some("FirstName"))
                        }
                        other => panic!("unexpected {other:?}"),
                    }
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn tolerates_lf_only_and_refuses_mismatched_counts() {
        let body = "--b\nContent-Type: application/http\n\nHTTP/1.1 200 OK\nContent-Type: application/json\n\n{\"d\":{\"results\":[]}}\n--b--\n";
        let parsed = parse(
            "multipart/mixed; boundary=b",
            body.as_bytes(),
            &[BatchPart::Get("X".into())],
        )
        .unwrap();
        assert!(matches!(&parsed[0], BatchPartResult::Get(Ok(r)) if r.status == 200));
        assert!(parse("multipart/mixed; boundary=b", body.as_bytes(), &request()).is_err());
        assert!(parse("application/json", body.as_bytes(), &request()).is_err());
        assert!(parse("multipart/mixed; boundary=zz", body.as_bytes(), &request()).is_err());
    }
}
