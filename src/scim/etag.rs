//! Versions and ETags (RFC 7644 §3.14): weak ETags in `meta.version` and the ETag header.

use super::error::ScimError;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A weak ETag derived from the resource content (everything but `meta`), so that it changes
/// exactly when the representation does. Keys are hashed in sorted order.
pub fn compute(resource: &Value) -> String {
    let mut hasher = Sha256::new();
    match resource {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().filter(|k| k.as_str() != "meta").collect();
            keys.sort();
            hasher.update(b"{");
            for k in keys {
                hash_str(&mut hasher, k);
                if let Some(v) = m.get(k) {
                    hash_value(&mut hasher, v);
                }
            }
            hasher.update(b"}");
        }
        other => hash_value(&mut hasher, other),
    }
    let digest = hasher.finalize();
    let short = digest.get(..12).unwrap_or(&digest[..]);
    weak(&hex::encode(short))
}

fn hash_str(h: &mut Sha256, s: &str) {
    h.update((s.len() as u64).to_le_bytes());
    h.update(s.as_bytes());
}

fn hash_value(h: &mut Sha256, v: &Value) {
    match v {
        Value::Null => h.update(b"n"),
        Value::Bool(b) => h.update(if *b { b"t" } else { b"f" }),
        Value::Number(n) => {
            h.update(b"#");
            hash_str(h, &n.to_string());
        }
        Value::String(s) => {
            h.update(b"s");
            hash_str(h, s);
        }
        Value::Array(items) => {
            h.update(b"[");
            h.update((items.len() as u64).to_le_bytes());
            for i in items {
                hash_value(h, i);
            }
        }
        Value::Object(m) => {
            h.update(b"{");
            h.update((m.len() as u64).to_le_bytes());
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            for k in keys {
                hash_str(h, k);
                if let Some(v) = m.get(k) {
                    hash_value(h, v);
                }
            }
        }
    }
}

/// `W/"<opaque>"`.
pub fn weak(opaque: &str) -> String {
    format!("W/\"{opaque}\"")
}

/// The opaque part of an entity tag, without `W/` and quotes.
fn opaque(tag: &str) -> &str {
    let t = tag.trim();
    let t = t
        .strip_prefix("W/")
        .or_else(|| t.strip_prefix("w/"))
        .unwrap_or(t);
    t.trim_matches('"')
}

/// Does an `If-Match` / `If-None-Match` header value (`*` or a list of tags) match `current`?
/// Weak comparison (RFC 7232 §2.3.2), as SCIM versions are weak.
pub fn header_matches(header: &str, current: &str) -> bool {
    let cur = opaque(current);
    header
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || (!t.is_empty() && opaque(t) == cur))
}

/// `If-Match` on PUT/PATCH/DELETE: `412` when present and not matching.
pub fn check_if_match(header: Option<&str>, current: &str) -> Result<(), ScimError> {
    match header {
        Some(h) if !header_matches(h, current) => Err(ScimError::precondition_failed(format!(
            "the resource has changed: its version is {current}"
        ))),
        _ => Ok(()),
    }
}

/// `If-None-Match` on GET: `true` means answer `304 Not Modified`.
pub fn not_modified(if_none_match: Option<&str>, current: &str) -> bool {
    if_none_match.is_some_and(|h| header_matches(h, current))
}

/// Sets `meta.version` (creating `meta` if needed) and returns the tag.
pub fn stamp(resource: &mut Value) -> String {
    let tag = compute(resource);
    if let Some(obj) = resource.as_object_mut() {
        let meta = obj
            .entry("meta")
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        if let Some(m) = meta.as_object_mut() {
            m.insert("version".into(), Value::String(tag.clone()));
        }
    }
    tag
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn version_is_weak_and_ignores_meta_and_key_order() {
        let a = json!({"id": "1", "userName": "a", "meta": {"version": "W/\"old\""}});
        let b = json!({"userName": "a", "id": "1"});
        assert_eq!(compute(&a), compute(&b));
        assert!(compute(&a).starts_with("W/\""));
        assert_ne!(compute(&a), compute(&json!({"id": "1", "userName": "b"})));
    }

    #[test]
    fn if_match_and_if_none_match() {
        let tag = "W/\"abc\"";
        assert!(check_if_match(None, tag).is_ok());
        assert!(check_if_match(Some("*"), tag).is_ok());
        assert!(check_if_match(Some("W/\"x\", W/\"abc\""), tag).is_ok());
        assert!(check_if_match(Some("\"abc\""), tag).is_ok());
        let e = check_if_match(Some("W/\"x\""), tag).unwrap_err();
        assert_eq!(e.status, 412);
        assert!(not_modified(Some(tag), tag));
        assert!(!not_modified(Some("W/\"x\""), tag));
        assert!(!not_modified(None, tag));
    }

    #[test]
    fn stamp_sets_meta_version() {
        let mut r = json!({"id": "1"});
        let tag = stamp(&mut r);
        assert_eq!(r["meta"]["version"], tag);
        assert_eq!(compute(&r), tag, "stamping does not change the version");
    }
}
