//! Bulk request/response model (RFC 7644 §3.7): limits, `bulkId` references, cycle detection and
//! `failOnErrors`. Executing the operations belongs to the provisioning layer.

use super::error::ScimError;
use super::resource::get_ci;
use super::schema::{self, BulkLimits, ResourceTypeDef};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};

pub const BULK_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
pub const BULK_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

/// HTTP method of a bulk operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkMethod {
    Post,
    Put,
    Patch,
    Delete,
}

impl BulkMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            BulkMethod::Post => "POST",
            BulkMethod::Put => "PUT",
            BulkMethod::Patch => "PATCH",
            BulkMethod::Delete => "DELETE",
        }
    }
}

/// One operation of a bulk request.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkOperation {
    pub method: BulkMethod,
    pub bulk_id: Option<String>,
    pub version: Option<String>,
    /// `/Users`, `/Groups/{id}`, `/Groups/bulkId:qwerty`.
    pub path: String,
    pub data: Option<Value>,
}

/// The resource an operation's `path` addresses.
#[derive(Debug, Clone)]
pub struct BulkTarget {
    pub resource_type: &'static ResourceTypeDef,
    /// `None` for POST to the collection; may be `bulkId:…` before resolution.
    pub id: Option<String>,
}

impl BulkOperation {
    /// Parses `path` into resource type and id.
    pub fn target(&self) -> Result<BulkTarget, ScimError> {
        let p = self.path.trim().trim_start_matches('/');
        let (endpoint, id) = match p.split_once('/') {
            Some((e, id)) => (e, Some(id.to_string())),
            None => (p, None),
        };
        let rt = schema::RESOURCE_TYPES
            .iter()
            .copied()
            .find(|r| {
                r.endpoint
                    .trim_start_matches('/')
                    .eq_ignore_ascii_case(endpoint)
            })
            .ok_or_else(|| {
                ScimError::invalid_value(format!("bulk path '{}' names no endpoint", self.path))
            })?;
        match (self.method, &id) {
            (BulkMethod::Post, Some(_)) => Err(ScimError::invalid_value(format!(
                "POST path '{}' must be a collection",
                self.path
            ))),
            (BulkMethod::Post, None) => Ok(BulkTarget {
                resource_type: rt,
                id: None,
            }),
            (_, Some(i)) if !i.is_empty() && !i.contains('/') => Ok(BulkTarget {
                resource_type: rt,
                id,
            }),
            _ => Err(ScimError::invalid_value(format!(
                "{} path '{}' must name one resource",
                self.method.as_str(),
                self.path
            ))),
        }
    }
}

/// A bulk request.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkRequest {
    /// Stop after this many errors; `None` = process everything.
    pub fail_on_errors: Option<usize>,
    pub operations: Vec<BulkOperation>,
}

impl BulkRequest {
    /// Checks `maxPayloadSize` on the raw bytes before parsing, then `maxOperations`
    /// (both `413`, RFC 7644 §3.7.4), then the structure.
    pub fn parse(raw: &[u8], limits: &BulkLimits) -> Result<BulkRequest, ScimError> {
        if raw.len() > limits.max_payload_size {
            return Err(ScimError::payload_too_large(format!(
                "The size of the bulk operation exceeds the maxPayloadSize ({}).",
                limits.max_payload_size
            )));
        }
        let body: Value = serde_json::from_slice(raw)
            .map_err(|e| ScimError::invalid_syntax(format!("bulk body is not JSON: {e}")))?;
        BulkRequest::from_json(&body, limits)
    }

    /// Reads an already-parsed body (the caller checked the payload size).
    pub fn from_json(body: &Value, limits: &BulkLimits) -> Result<BulkRequest, ScimError> {
        let obj = body
            .as_object()
            .ok_or_else(|| ScimError::invalid_syntax("the bulk body must be a JSON object"))?;
        if let Some(schemas) = get_ci(obj, "schemas") {
            let ok = schemas.as_array().is_some_and(|a| {
                a.iter().any(|s| {
                    s.as_str()
                        .is_some_and(|s| s.eq_ignore_ascii_case(BULK_REQUEST_SCHEMA))
                })
            });
            if !ok {
                return Err(ScimError::invalid_syntax(format!(
                    "'schemas' must contain {BULK_REQUEST_SCHEMA}"
                )));
            }
        }
        let ops = get_ci(obj, "Operations")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                ScimError::invalid_syntax("the bulk body needs an 'Operations' array")
            })?;
        if ops.len() > limits.max_operations {
            return Err(ScimError::payload_too_large(format!(
                "The number of operations ({}) exceeds the maxOperations ({}).",
                ops.len(),
                limits.max_operations
            )));
        }
        let fail_on_errors = match get_ci(obj, "failOnErrors") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(n) if n >= 1 => usize::try_from(n).ok(),
                _ => {
                    return Err(ScimError::invalid_value(
                        "failOnErrors must be a positive integer",
                    ));
                }
            },
        };
        let mut operations = Vec::with_capacity(ops.len());
        let mut seen = HashSet::new();
        for (i, op) in ops.iter().enumerate() {
            let o = op.as_object().ok_or_else(|| {
                ScimError::invalid_syntax(format!("Operations[{i}] must be an object"))
            })?;
            let string = |key: &str| -> Result<Option<String>, ScimError> {
                match get_ci(o, key) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::String(s)) => Ok(Some(s.clone())),
                    Some(_) => Err(ScimError::invalid_syntax(format!(
                        "Operations[{i}].{key} must be a string"
                    ))),
                }
            };
            let method = match string("method")?.map(|m| m.to_ascii_uppercase()).as_deref() {
                Some("POST") => BulkMethod::Post,
                Some("PUT") => BulkMethod::Put,
                Some("PATCH") => BulkMethod::Patch,
                Some("DELETE") => BulkMethod::Delete,
                _ => {
                    return Err(ScimError::invalid_syntax(format!(
                        "Operations[{i}].method must be POST, PUT, PATCH or DELETE"
                    )));
                }
            };
            let path = string("path")?.ok_or_else(|| {
                ScimError::invalid_syntax(format!("Operations[{i}].path is required"))
            })?;
            let bulk_id = string("bulkId")?;
            if method == BulkMethod::Post && bulk_id.is_none() {
                return Err(ScimError::invalid_syntax(format!(
                    "Operations[{i}]: bulkId is required for POST"
                )));
            }
            if let Some(b) = &bulk_id
                && !seen.insert(b.clone())
            {
                return Err(ScimError::invalid_value(format!(
                    "Operations[{i}]: bulkId '{b}' is used twice"
                )));
            }
            let data = get_ci(o, "data").filter(|v| !v.is_null()).cloned();
            if method != BulkMethod::Delete && data.is_none() {
                return Err(ScimError::invalid_syntax(format!(
                    "Operations[{i}]: data is required for {}",
                    method.as_str()
                )));
            }
            let op = BulkOperation {
                method,
                bulk_id,
                version: string("version")?,
                path,
                data,
            };
            op.target().map_err(|e| ScimError {
                detail: format!("Operations[{i}]: {}", e.detail),
                ..e
            })?;
            operations.push(op);
        }
        Ok(BulkRequest {
            fail_on_errors,
            operations,
        })
    }

    /// An execution order in which every operation runs after the POSTs whose `bulkId` it
    /// references (in its path or data); otherwise request order is kept. A reference cycle is
    /// `409`; [`plan`](Self::plan) first tries to break it. References to unknown bulkIds do not
    /// order anything; they fail when resolved.
    pub fn execution_order(&self) -> Result<Vec<usize>, ScimError> {
        let by_id = self.post_ids();
        let deps: Vec<Vec<usize>> = self
            .operations
            .iter()
            .enumerate()
            .map(|(i, o)| self.deps_of(&by_id, i, o.data.as_ref()))
            .collect();
        self.topological(&deps)
    }

    /// Like [`execution_order`](Self::execution_order), but resolves circular references
    /// between new groups as RFC 7644 §3.7.1 asks: a POSTed Group whose `members` reference
    /// resources that are themselves on the cycle is created without those members, and they
    /// are added by a PATCH once every POST has run. Cycles that cannot be broken this way are
    /// `409`.
    pub fn plan(&self) -> Result<Vec<PlanStep>, ScimError> {
        if let Ok(order) = self.execution_order() {
            return Ok(order.into_iter().map(PlanStep::Run).collect());
        }
        let by_id = self.post_ids();
        let deps: Vec<Vec<usize>> = self
            .operations
            .iter()
            .enumerate()
            .map(|(i, o)| self.deps_of(&by_id, i, o.data.as_ref()))
            .collect();
        let cyclic: Vec<bool> = (0..deps.len()).map(|i| reaches(&deps, i, i)).collect();
        let on_cycle = |v: &Value| {
            references(v).iter().any(|r| {
                by_id
                    .get(r.as_str())
                    .is_some_and(|&j| cyclic.get(j) == Some(&true))
            })
        };
        let mut overrides: HashMap<usize, Value> = HashMap::new();
        let mut deferred: Vec<(usize, Vec<Value>)> = Vec::new();
        for (i, op) in self.operations.iter().enumerate() {
            let is_group_post = op.method == BulkMethod::Post
                && op
                    .target()
                    .is_ok_and(|t| std::ptr::eq(t.resource_type, &schema::GROUP_RESOURCE));
            if cyclic.get(i) != Some(&true) || !is_group_post {
                continue;
            }
            let Some(Value::Object(data)) = &op.data else {
                continue;
            };
            let Some(key) = data
                .keys()
                .find(|k| k.eq_ignore_ascii_case("members"))
                .cloned()
            else {
                continue;
            };
            let Some(Value::Array(members)) = data.get(&key) else {
                continue;
            };
            let (later, now): (Vec<Value>, Vec<Value>) =
                members.iter().cloned().partition(|m| on_cycle(m));
            if later.is_empty() {
                continue;
            }
            let mut data = data.clone();
            data.insert(key, Value::Array(now));
            overrides.insert(i, Value::Object(data));
            deferred.push((i, later));
        }
        let deps: Vec<Vec<usize>> = self
            .operations
            .iter()
            .enumerate()
            .map(|(i, o)| self.deps_of(&by_id, i, overrides.get(&i).or(o.data.as_ref())))
            .collect();
        let order = self.topological(&deps)?;
        let mut steps: Vec<PlanStep> = order
            .into_iter()
            .map(|i| match overrides.remove(&i) {
                Some(data) => PlanStep::RunWith { index: i, data },
                None => PlanStep::Run(i),
            })
            .collect();
        steps.extend(
            deferred
                .into_iter()
                .map(|(index, members)| PlanStep::AddMembers {
                    index,
                    patch: json!({
                        "schemas": [super::patch::PATCH_OP_SCHEMA],
                        "Operations": [{"op": "add", "path": "members", "value": members}]
                    }),
                }),
        );
        Ok(steps)
    }

    fn post_ids(&self) -> HashMap<&str, usize> {
        self.operations
            .iter()
            .enumerate()
            .filter(|(_, o)| o.method == BulkMethod::Post)
            .filter_map(|(i, o)| o.bulk_id.as_deref().map(|b| (b, i)))
            .collect()
    }

    fn deps_of(&self, by_id: &HashMap<&str, usize>, i: usize, data: Option<&Value>) -> Vec<usize> {
        let Some(op) = self.operations.get(i) else {
            return Vec::new();
        };
        let mut refs = references(data.unwrap_or(&Value::Null));
        refs.extend(path_reference(&op.path));
        let mut d: Vec<usize> = refs
            .iter()
            .filter_map(|r| by_id.get(r.as_str()).copied())
            .filter(|&j| j != i || op.method != BulkMethod::Post)
            .collect();
        d.sort_unstable();
        d.dedup();
        d
    }

    fn topological(&self, deps: &[Vec<usize>]) -> Result<Vec<usize>, ScimError> {
        // Depth-first topological sort with colours; grey-on-grey is a cycle.
        #[derive(Clone, Copy, PartialEq)]
        enum Colour {
            White,
            Grey,
            Black,
        }
        let n = self.operations.len();
        let mut colour = vec![Colour::White; n];
        let mut order = Vec::with_capacity(n);
        for start in 0..n {
            if colour.get(start) != Some(&Colour::White) {
                continue;
            }
            let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
            if let Some(c) = colour.get_mut(start) {
                *c = Colour::Grey;
            }
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                let node_deps = deps.get(node).map(Vec::as_slice).unwrap_or(&[]);
                if let Some(&dep) = node_deps.get(*next) {
                    *next += 1;
                    match colour.get(dep).copied() {
                        Some(Colour::White) => {
                            if let Some(c) = colour.get_mut(dep) {
                                *c = Colour::Grey;
                            }
                            stack.push((dep, 0));
                        }
                        Some(Colour::Grey) => {
                            let ids: Vec<String> = stack
                                .iter()
                                .skip_while(|(s, _)| *s != dep)
                                .filter_map(|(s, _)| {
                                    self.operations.get(*s).and_then(|o| o.bulk_id.clone())
                                })
                                .collect();
                            return Err(ScimError::conflict(format!(
                                "circular bulkId references: {}",
                                ids.join(" -> ")
                            )));
                        }
                        _ => {}
                    }
                } else {
                    if let Some(c) = colour.get_mut(node) {
                        *c = Colour::Black;
                    }
                    order.push(node);
                    stack.pop();
                }
            }
        }
        Ok(order)
    }
}

/// One step of a bulk [`plan`](BulkRequest::plan).
#[derive(Debug, Clone, PartialEq)]
pub enum PlanStep {
    /// Run operation `index` as sent (after resolving its references).
    Run(usize),
    /// Run operation `index` with this `data` (members on a reference cycle removed).
    RunWith { index: usize, data: Value },
    /// After all POSTs: PATCH the resource created by operation `index` with `patch` (resolve its
    /// references first); a failure is reported as the result of operation `index`.
    AddMembers { index: usize, patch: Value },
}

/// Can `target` be reached from `from` by following at least one dependency edge?
fn reaches(deps: &[Vec<usize>], from: usize, target: usize) -> bool {
    let mut seen = vec![false; deps.len()];
    let mut stack: Vec<usize> = deps.get(from).cloned().unwrap_or_default();
    while let Some(n) = stack.pop() {
        if n == target {
            return true;
        }
        if let Some(s) = seen.get_mut(n) {
            if *s {
                continue;
            }
            *s = true;
        }
        stack.extend(deps.get(n).into_iter().flatten().copied());
    }
    false
}

const PREFIX: &str = "bulkId:";

fn path_reference(path: &str) -> Option<String> {
    path.rsplit('/')
        .next()
        .and_then(|last| last.strip_prefix(PREFIX))
        .map(str::to_string)
}

/// Every `bulkId:<id>` reference in `data` (string values anywhere in the tree).
pub fn references(data: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![data];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) => {
                if let Some(id) = s.strip_prefix(PREFIX) {
                    out.push(id.to_string());
                }
            }
            Value::Array(items) => stack.extend(items.iter()),
            Value::Object(m) => stack.extend(m.values()),
            _ => {}
        }
    }
    out
}

/// Replaces every `bulkId:<id>` string with the id the server assigned; an unknown or failed
/// bulkId is `409` (RFC 7644 §3.7.2).
pub fn resolve_references(data: &Value, ids: &HashMap<String, String>) -> Result<Value, ScimError> {
    Ok(match data {
        Value::String(s) => match s.strip_prefix(PREFIX) {
            Some(b) => Value::String(ids.get(b).cloned().ok_or_else(|| {
                ScimError::conflict(format!("bulkId '{b}' was not created in this request"))
            })?),
            None => Value::String(s.clone()),
        },
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| resolve_references(i, ids))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                out.insert(k.clone(), resolve_references(v, ids)?);
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

/// Resolves a `bulkId:` reference in an operation path (`/Groups/bulkId:qwerty`).
pub fn resolve_path(path: &str, ids: &HashMap<String, String>) -> Result<String, ScimError> {
    match path_reference(path) {
        Some(b) => {
            let id = ids.get(&b).ok_or_else(|| {
                ScimError::conflict(format!("bulkId '{b}' was not created in this request"))
            })?;
            let cut = path.len() - (PREFIX.len() + b.len());
            Ok(format!("{}{id}", path.get(..cut).unwrap_or("")))
        }
        None => Ok(path.to_string()),
    }
}

/// The outcome of one operation.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkOperationResult {
    pub method: BulkMethod,
    pub bulk_id: Option<String>,
    pub version: Option<String>,
    pub location: Option<String>,
    pub status: u16,
    /// The error body for failures (RFC 7644 §3.7.3).
    pub response: Option<Value>,
}

impl BulkOperationResult {
    /// A failed operation carrying the SCIM error body.
    pub fn failed(op: &BulkOperation, error: &ScimError) -> Self {
        Self {
            method: op.method,
            bulk_id: op.bulk_id.clone(),
            version: None,
            location: None,
            status: error.status,
            response: Some(error.to_body()),
        }
    }

    pub fn is_error(&self) -> bool {
        self.status >= 400
    }

    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("method".into(), json!(self.method.as_str()));
        if let Some(b) = &self.bulk_id {
            o.insert("bulkId".into(), json!(b));
        }
        if let Some(v) = &self.version {
            o.insert("version".into(), json!(v));
        }
        if let Some(l) = &self.location {
            o.insert("location".into(), json!(l));
        }
        o.insert("status".into(), json!(self.status.to_string()));
        if let Some(r) = &self.response {
            o.insert("response".into(), r.clone());
        }
        Value::Object(o)
    }
}

/// A bulk response.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BulkResponse {
    pub operations: Vec<BulkOperationResult>,
}

impl BulkResponse {
    /// Should processing stop now? True once `failOnErrors` errors have occurred.
    pub fn should_stop(&self, fail_on_errors: Option<usize>) -> bool {
        let errors = self.operations.iter().filter(|o| o.is_error()).count();
        fail_on_errors.is_some_and(|limit| errors >= limit)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "schemas": [BULK_RESPONSE_SCHEMA],
            "Operations": self.operations.iter().map(BulkOperationResult::to_json).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: BulkLimits = BulkLimits {
        max_operations: 3,
        max_payload_size: 4096,
    };

    fn post(bulk_id: &str, path: &str, data: Value) -> Value {
        json!({"method": "POST", "path": path, "bulkId": bulk_id, "data": data})
    }

    fn req(ops: Value) -> Value {
        json!({"schemas": [BULK_REQUEST_SCHEMA], "Operations": ops})
    }

    /// RFC 7644 §3.7.2: a group referencing a user created in the same request.
    #[test]
    fn rfc_bulk_id_reference_orders_and_resolves() {
        let body = req(json!([
            post(
                "ytrewq",
                "/Groups",
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Tour Guides", "members": [{"type": "User", "value": "bulkId:qwerty"}]})
            ),
            post(
                "qwerty",
                "/Users",
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "Alice"})
            )
        ]));
        let r = BulkRequest::from_json(&body, &LIMITS).unwrap();
        assert_eq!(r.execution_order().unwrap(), vec![1, 0]);
        let ids: HashMap<String, String> = [("qwerty".to_string(), "92b725cd".to_string())].into();
        let data = resolve_references(r.operations[0].data.as_ref().unwrap(), &ids).unwrap();
        assert_eq!(data["members"][0]["value"], "92b725cd");
        let e = resolve_references(&json!({"value": "bulkId:nope"}), &ids).unwrap_err();
        assert_eq!(e.status, 409);
        assert_eq!(
            resolve_path("/Groups/bulkId:qwerty", &ids).unwrap(),
            "/Groups/92b725cd"
        );
        assert_eq!(resolve_path("/Groups/abc", &ids).unwrap(), "/Groups/abc");
    }

    /// RFC 7644 §3.7.1: two groups that are members of each other are created first and
    /// linked afterwards.
    #[test]
    fn rfc_circular_group_references_are_resolved_by_the_plan() {
        let body = req(json!([
            post(
                "qwerty",
                "/Groups",
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Group A", "members": [{"type": "Group", "value": "bulkId:ytrewq"}]})
            ),
            post(
                "ytrewq",
                "/Groups",
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Group B", "members": [{"type": "Group", "value": "bulkId:qwerty"}, {"value": "existing-user"}]})
            )
        ]));
        let plan = BulkRequest::from_json(&body, &LIMITS)
            .unwrap()
            .plan()
            .unwrap();
        assert_eq!(plan.len(), 4);
        let PlanStep::RunWith { index: 0, data } = &plan[0] else {
            panic!("{plan:?}")
        };
        assert_eq!(data["members"], json!([]));
        let PlanStep::RunWith { index: 1, data } = &plan[1] else {
            panic!("{plan:?}")
        };
        assert_eq!(data["members"], json!([{"value": "existing-user"}]));
        let PlanStep::AddMembers { index: 0, patch } = &plan[2] else {
            panic!("{plan:?}")
        };
        assert_eq!(
            patch["Operations"][0]["value"],
            json!([{"type": "Group", "value": "bulkId:ytrewq"}])
        );
        let ids: HashMap<String, String> =
            [("qwerty".into(), "A".into()), ("ytrewq".into(), "B".into())].into();
        let resolved = resolve_references(patch, &ids).unwrap();
        let req = crate::scim::patch::PatchRequest::from_json(&resolved).unwrap();
        let group_a = json!({"id": "A", "displayName": "Group A"});
        let linked = req
            .apply(&group_a, &crate::scim::schema::GROUP_RESOURCE)
            .unwrap();
        assert_eq!(linked["members"], json!([{"type": "Group", "value": "B"}]));
        assert!(matches!(plan[3], PlanStep::AddMembers { index: 1, .. }));
        // without a cycle the plan is the plain execution order
        let simple = req_simple();
        assert_eq!(
            simple.plan().unwrap(),
            vec![PlanStep::Run(1), PlanStep::Run(0)]
        );
    }

    fn req_simple() -> BulkRequest {
        BulkRequest::from_json(
            &req(json!([
                post(
                    "g",
                    "/Groups",
                    json!({"displayName": "G", "members": [{"value": "bulkId:u"}]})
                ),
                post("u", "/Users", json!({"userName": "u"}))
            ])),
            &LIMITS,
        )
        .unwrap()
    }

    /// A cycle that is not between group memberships cannot be broken: 409.
    #[test]
    fn unbreakable_cycles_are_409() {
        let body = req(json!([
            post(
                "u1",
                "/Users",
                json!({"userName": "a", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "bulkId:u2"}}})
            ),
            post(
                "u2",
                "/Users",
                json!({"userName": "b", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "bulkId:u1"}}})
            )
        ]));
        let e = BulkRequest::from_json(&body, &LIMITS)
            .unwrap()
            .plan()
            .unwrap_err();
        assert_eq!(e.status, 409);
        assert!(
            e.detail.contains("u1") && e.detail.contains("u2"),
            "{}",
            e.detail
        );
    }

    #[test]
    fn circular_references_are_detected_by_execution_order() {
        let body = req(json!([
            post(
                "qwerty",
                "/Groups",
                json!({"displayName": "Group A", "members": [{"type": "Group", "value": "bulkId:ytrewq"}]})
            ),
            post(
                "ytrewq",
                "/Groups",
                json!({"displayName": "Group B", "members": [{"type": "Group", "value": "bulkId:qwerty"}]})
            )
        ]));
        let e = BulkRequest::from_json(&body, &LIMITS)
            .unwrap()
            .execution_order()
            .unwrap_err();
        assert_eq!(e.status, 409);
        assert!(
            e.detail.contains("qwerty") && e.detail.contains("ytrewq"),
            "{}",
            e.detail
        );
        let self_ref = req(json!([post(
            "a",
            "/Groups",
            json!({"displayName": "A", "members": [{"value": "bulkId:a"}]})
        )]));
        assert_eq!(
            BulkRequest::from_json(&self_ref, &LIMITS)
                .unwrap()
                .execution_order()
                .unwrap(),
            vec![0]
        );
    }

    #[test]
    fn patch_on_a_bulk_id_path_runs_after_its_post() {
        let body = req(json!([
            {"method": "PATCH", "path": "/Groups/bulkId:g", "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "add", "path": "members", "value": [{"value": "u1"}]}]}},
            {"method": "DELETE", "path": "/Users/u9", "version": "W/\"1\""},
            post("g", "/Groups", json!({"displayName": "G"}))
        ]));
        let r = BulkRequest::from_json(&body, &LIMITS).unwrap();
        assert_eq!(r.execution_order().unwrap(), vec![2, 0, 1]);
        assert_eq!(r.operations[1].version.as_deref(), Some("W/\"1\""));
        let t = r.operations[1].target().unwrap();
        assert_eq!((t.resource_type.id, t.id.as_deref()), ("User", Some("u9")));
    }

    #[test]
    fn limits_are_413() {
        let big = vec![b' '; 5000];
        assert_eq!(BulkRequest::parse(&big, &LIMITS).unwrap_err().status, 413);
        let four = req(json!([
            {"method": "DELETE", "path": "/Users/1"}, {"method": "DELETE", "path": "/Users/2"},
            {"method": "DELETE", "path": "/Users/3"}, {"method": "DELETE", "path": "/Users/4"}
        ]));
        let e = BulkRequest::parse(four.to_string().as_bytes(), &LIMITS).unwrap_err();
        assert_eq!(e.status, 413);
        assert!(e.detail.contains("maxOperations"));
    }

    #[test]
    fn malformed_operations() {
        for (ops, t) in [
            (
                json!([{"method": "POST", "path": "/Users", "data": {}}]),
                ScimType::InvalidSyntax,
            ),
            (
                json!([{"method": "GET", "path": "/Users/1"}]),
                ScimType::InvalidSyntax,
            ),
            (
                json!([{"method": "PUT", "path": "/Users/1"}]),
                ScimType::InvalidSyntax,
            ),
            (
                json!([{"method": "DELETE", "path": "/Users"}]),
                ScimType::InvalidValue,
            ),
            (
                json!([{"method": "DELETE", "path": "/Widgets/1"}]),
                ScimType::InvalidValue,
            ),
            (
                json!([
                    post("a", "/Users", json!({})),
                    post("a", "/Users", json!({}))
                ]),
                ScimType::InvalidValue,
            ),
        ] {
            let e = BulkRequest::from_json(&req(ops.clone()), &LIMITS).unwrap_err();
            assert_eq!(e.scim_type, Some(t), "{ops}");
        }
        assert!(BulkRequest::parse(b"{", &LIMITS).is_err());
        let e = BulkRequest::from_json(&json!({"failOnErrors": 0, "Operations": []}), &LIMITS)
            .unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
    }

    #[test]
    fn fail_on_errors_and_response_shape() {
        let op = BulkOperation {
            method: BulkMethod::Post,
            bulk_id: Some("q".into()),
            version: None,
            path: "/Users".into(),
            data: Some(json!({})),
        };
        let mut resp = BulkResponse::default();
        resp.operations.push(BulkOperationResult {
            method: BulkMethod::Post,
            bulk_id: Some("ok".into()),
            version: Some("W/\"1\"".into()),
            location: Some("https://h/Users/1".into()),
            status: 201,
            response: None,
        });
        assert!(!resp.should_stop(Some(1)));
        resp.operations.push(BulkOperationResult::failed(
            &op,
            &ScimError::uniqueness("dup"),
        ));
        assert!(resp.should_stop(Some(1)));
        assert!(!resp.should_stop(Some(2)));
        assert!(!resp.should_stop(None));
        let json = resp.to_json();
        assert_eq!(json["schemas"][0], BULK_RESPONSE_SCHEMA);
        assert_eq!(json["Operations"][0]["status"], "201");
        assert_eq!(json["Operations"][1]["status"], "409");
        assert_eq!(json["Operations"][1]["response"]["scimType"], "uniqueness");
    }

    use crate::scim::error::ScimType;
}
