//! Filters (RFC 7644 §3.4.2.2) and PATCH paths (§3.5.2): our AST, parsing and printing.
//!
//! Parsing is delegated to the `scim_v2` crate (pinned `=1.0.0`): it parses every filter and
//! path example of RFC 7644, is case-insensitive for operators and keywords, handles JSON string
//! escapes and numbers, and enforces depth (64) and term (1024) budgets *while* parsing, so a
//! hostile `not (not (…))` cannot overflow the stack. Its AST is converted into ours at once, so
//! nothing above this module depends on the crate and the parser can be swapped (e.g. for a `peg`
//! grammar) without touching the evaluator or the PATCH engine. Its AST carries no source
//! positions, so positions are reported for syntax errors only (byte offsets into the input).

use super::error::ScimError;
use scim_v2::filter as sv;
use std::fmt;

/// An attribute path: `[schemaURN ":"] name ["." subAttr]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttrPath {
    /// Schema URN prefix, e.g. `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`.
    pub uri: Option<String>,
    /// Attribute name as written (matching is case-insensitive).
    pub name: String,
    /// Sub-attribute name, e.g. `familyName` in `name.familyName`.
    pub sub_attr: Option<String>,
}

impl AttrPath {
    /// A bare attribute name.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            uri: None,
            name: name.into(),
            sub_attr: None,
        }
    }

    /// `name.sub`.
    pub fn with_sub(name: impl Into<String>, sub: impl Into<String>) -> Self {
        Self {
            uri: None,
            name: name.into(),
            sub_attr: Some(sub.into()),
        }
    }

    /// Parses a plain attribute path (as used in `attributes`, `sortBy` and path-less PATCH keys).
    pub fn parse(input: &str) -> Result<AttrPath, ScimError> {
        match PatchPath::parse(input)? {
            PatchPath::Attr(p) => Ok(p),
            PatchPath::Value { .. } => Err(ScimError::invalid_path(format!(
                "'{input}' is not a plain attribute path"
            ))),
        }
    }
}

/// Comparison operators (RFC 7644 Table 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Lt,
    Ge,
    Le,
}

impl CompareOp {
    /// Lower-case wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Lt => "lt",
            CompareOp::Ge => "ge",
            CompareOp::Le => "le",
        }
    }

    /// True for `gt`, `ge`, `lt`, `le`.
    pub fn is_ordering(self) -> bool {
        matches!(
            self,
            CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
        )
    }
}

/// The literal on the right of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    Str(String),
}

impl CompValue {
    /// The literal as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            CompValue::Null => serde_json::Value::Null,
            CompValue::Bool(b) => serde_json::Value::Bool(*b),
            CompValue::Number(n) => serde_json::Value::Number(n.clone()),
            CompValue::Str(s) => serde_json::Value::String(s.clone()),
        }
    }
}

/// A filter expression. `And`/`Or` are n-ary with at least two operands and never directly
/// contain a node of their own kind (the parser flattens chains; use [`Filter::and`] /
/// [`Filter::or`] to build the same shape by hand).
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `attr pr`
    Present(AttrPath),
    /// `attr op value`
    Compare(AttrPath, CompareOp, CompValue),
    /// `attr[filter]`: some element of the multi-valued `attr` matches `filter`, whose paths are
    /// relative to the element (the inner filter never contains another value path).
    ValuePath {
        attr: AttrPath,
        filter: Box<Filter>,
    },
    /// `not (filter)`
    Not(Box<Filter>),
    And(Vec<Filter>),
    Or(Vec<Filter>),
}

impl Filter {
    /// Parses a filter; syntax errors are `400 invalidFilter` naming the byte position.
    pub fn parse(input: &str) -> Result<Filter, ScimError> {
        let parsed: sv::Filter = match input.parse() {
            Ok(f) => f,
            Err(e) => {
                let fixed = lenient_rewrite(input).unwrap_or_else(|| input.to_string());
                let fixed = value_path_sub_rewrite(&fixed).unwrap_or(fixed);
                fixed
                    .parse()
                    .map_err(|_| ScimError::invalid_filter(describe(input, "filter", &e)))?
            }
        };
        Ok(Filter::from_sv(&parsed))
    }

    /// `lhs and rhs`, flattening nested `And`s.
    pub fn and(lhs: Filter, rhs: Filter) -> Filter {
        let mut items = match lhs {
            Filter::And(items) => items,
            other => vec![other],
        };
        match rhs {
            Filter::And(more) => items.extend(more),
            other => items.push(other),
        }
        Filter::And(items)
    }

    /// `lhs or rhs`, flattening nested `Or`s.
    pub fn or(lhs: Filter, rhs: Filter) -> Filter {
        let mut items = match lhs {
            Filter::Or(items) => items,
            other => vec![other],
        };
        match rhs {
            Filter::Or(more) => items.extend(more),
            other => items.push(other),
        }
        Filter::Or(items)
    }

    fn from_sv(f: &sv::Filter) -> Filter {
        match f {
            sv::Filter::Attr(e) => from_attr_exp(e),
            sv::Filter::ValuePath(vp) => Filter::ValuePath {
                attr: from_path(&vp.attr),
                filter: Box::new(from_val_filter(&vp.filter)),
            },
            sv::Filter::Not(inner) => Filter::Not(Box::new(Filter::from_sv(inner))),
            sv::Filter::And(items) => Filter::And(items.iter().map(Filter::from_sv).collect()),
            sv::Filter::Or(items) => Filter::Or(items.iter().map(Filter::from_sv).collect()),
        }
    }
}

impl std::str::FromStr for Filter {
    type Err = ScimError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Filter::parse(s)
    }
}

/// A PATCH operation path (RFC 7644 §3.5.2): `attrPath` or `valuePath ["." subAttr]`.
#[derive(Debug, Clone, PartialEq)]
pub enum PatchPath {
    /// `userName`, `name.givenName`, `urn:…:enterprise:2.0:User:manager`
    Attr(AttrPath),
    /// `emails[type eq "work"]` or `emails[type eq "work"].value`
    Value {
        attr: AttrPath,
        filter: Filter,
        sub_attr: Option<String>,
    },
}

impl PatchPath {
    /// Parses a PATCH path; syntax errors are `400 invalidPath` naming the byte position.
    pub fn parse(input: &str) -> Result<PatchPath, ScimError> {
        let parsed: sv::PatchPath = match input.parse() {
            Ok(p) => p,
            Err(e) => lenient_rewrite(input)
                .and_then(|fixed| fixed.parse().ok())
                .ok_or_else(|| ScimError::invalid_path(describe(input, "path", &e)))?,
        };
        Ok(match parsed {
            sv::PatchPath::Attr(a) => PatchPath::Attr(from_path(&a)),
            sv::PatchPath::Value(vp) => PatchPath::Value {
                attr: from_path(&vp.attr),
                filter: from_val_filter(&vp.filter),
                sub_attr: vp.sub_attr.clone(),
            },
        })
    }

    /// The attribute the path starts at.
    pub fn attr(&self) -> &AttrPath {
        match self {
            PatchPath::Attr(a) => a,
            PatchPath::Value { attr, .. } => attr,
        }
    }
}

impl std::str::FromStr for PatchPath {
    type Err = ScimError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PatchPath::parse(s)
    }
}

/// Byte position of the first occurrence of `path` in `source` outside string literals, matched
/// case-insensitively as a whole word. The AST keeps no positions, so semantic errors about a
/// parsed filter locate their attribute with this.
pub fn position_of(source: &str, path: &AttrPath) -> Option<usize> {
    let needle = path.to_string().to_ascii_lowercase();
    let hay = source.to_ascii_lowercase();
    let bytes = hay.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'$');
    let mut in_string = false;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if hay.get(i..).is_some_and(|rest| rest.starts_with(&needle))
            && (i == 0 || bytes.get(i - 1).is_some_and(|&p| !word(p)))
            && bytes.get(i + needle.len()).is_none_or(|&n| !word(n))
        {
            return Some(i);
        }
        i += 1;
    }
    None
}

const OPERATORS: [&str; 9] = ["eq", "ne", "co", "sw", "ew", "gt", "lt", "ge", "le"];

/// Fallback for input the grammar refuses: RFC 7644 itself prints `value eq"x"` (no space),
/// `meta.resourceType eq User` (bare word) and `displayName sw 'Group'` (single quotes), and
/// clients copy such forms. This rewrites the comparison value after an operator into a JSON
/// literal and returns `None` when nothing needed rewriting. It only runs after the strict
/// parse failed, so it cannot change the meaning of a valid filter.
fn lenient_rewrite(input: &str) -> Option<String> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = String::with_capacity(input.len() + 8);
    let mut changed = false;
    let mut after_op = false;
    let mut i = 0;
    let is_word = |c: char| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '$' | '+');
    while let Some(&c) = chars.get(i) {
        if c == '"' {
            if after_op && !out.ends_with(' ') {
                out.push(' ');
                changed = true;
            }
            after_op = false;
            out.push(c);
            i += 1;
            while let Some(&d) = chars.get(i) {
                out.push(d);
                i += 1;
                if d == '\\' {
                    if let Some(&e) = chars.get(i) {
                        out.push(e);
                        i += 1;
                    }
                } else if d == '"' {
                    break;
                }
            }
        } else if c == '\'' && after_op {
            let start = i + 1;
            let end = (start..chars.len()).find(|&j| chars.get(j) == Some(&'\''))?;
            let text: String = chars.get(start..end)?.iter().collect();
            if !out.ends_with(' ') {
                out.push(' ');
            }
            out.push_str(&serde_json::to_string(&text).ok()?);
            changed = true;
            after_op = false;
            i = end + 1;
        } else if is_word(c) {
            let start = i;
            while chars.get(i).is_some_and(|&d| is_word(d)) {
                i += 1;
            }
            let word: String = chars.get(start..i)?.iter().collect();
            if after_op {
                let lower = word.to_ascii_lowercase();
                let numeric = word.starts_with(|d: char| d.is_ascii_digit() || d == '-');
                if matches!(lower.as_str(), "true" | "false" | "null") {
                    changed |= lower != word;
                    out.push_str(&lower);
                } else if numeric {
                    out.push_str(&word);
                } else {
                    out.push_str(&serde_json::to_string(&word).ok()?);
                    changed = true;
                }
                after_op = false;
            } else {
                after_op = OPERATORS.contains(&word.to_ascii_lowercase().as_str());
                out.push_str(&word);
            }
        } else {
            if !c.is_whitespace() {
                after_op = false;
            }
            out.push(c);
            i += 1;
        }
    }
    changed.then_some(out)
}

/// Entra filters on `emails[type eq "work"].value eq "x"`, a PATCH-path shape the filter
/// grammar lacks. It means "some element has type work and value x", which the grammar spells
/// `emails[(type eq "work") and value eq "x"]`; this rewrites the former into the latter.
fn value_path_sub_rewrite(input: &str) -> Option<String> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = String::with_capacity(input.len() + 16);
    let mut opens: Vec<usize> = Vec::new();
    let mut changed = false;
    let mut i = 0;
    let name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '$');
    let read_string = |from: usize| -> Option<usize> {
        // index just past the closing quote of the JSON string starting at `from`
        let mut j = from + 1;
        loop {
            match chars.get(j)? {
                '\\' => j += 2,
                '"' => return Some(j + 1),
                _ => j += 1,
            }
        }
    };
    while let Some(&c) = chars.get(i) {
        match c {
            '"' => {
                let end = read_string(i)?;
                out.extend(chars.get(i..end)?);
                i = end;
            }
            '[' => {
                opens.push(out.len());
                out.push(c);
                i += 1;
            }
            ']' => {
                let open = opens.pop();
                let mut j = i + 1;
                let rewritten = (|| -> Option<(usize, String)> {
                    if chars.get(j) != Some(&'.') {
                        return None;
                    }
                    j += 1;
                    let start = j;
                    while chars.get(j).is_some_and(|&d| name_char(d)) {
                        j += 1;
                    }
                    let sub: String = chars.get(start..j)?.iter().collect();
                    if sub.is_empty() {
                        return None;
                    }
                    while chars.get(j).is_some_and(|d| d.is_whitespace()) {
                        j += 1;
                    }
                    let op_start = j;
                    while chars.get(j).is_some_and(|d| d.is_ascii_alphabetic()) {
                        j += 1;
                    }
                    let op: String = chars.get(op_start..j)?.iter().collect();
                    let lower = op.to_ascii_lowercase();
                    if lower == "pr" {
                        return Some((j, format!("{sub} pr")));
                    }
                    if !OPERATORS.contains(&lower.as_str()) {
                        return None;
                    }
                    while chars.get(j).is_some_and(|d| d.is_whitespace()) {
                        j += 1;
                    }
                    let value_start = j;
                    if chars.get(j) == Some(&'"') {
                        j = read_string(j)?;
                    } else {
                        while chars
                            .get(j)
                            .is_some_and(|&d| !d.is_whitespace() && d != ')' && d != ']')
                        {
                            j += 1;
                        }
                    }
                    let value: String = chars.get(value_start..j)?.iter().collect();
                    if value.is_empty() {
                        return None;
                    }
                    Some((j, format!("{sub} {lower} {value}")))
                })();
                match (open, rewritten) {
                    (Some(open), Some((end, term))) => {
                        let inner = out.split_off(open + 1);
                        out.push('(');
                        out.push_str(&inner);
                        out.push_str(") and ");
                        out.push_str(&term);
                        out.push(']');
                        i = end;
                        changed = true;
                    }
                    _ => {
                        out.push(c);
                        i += 1;
                    }
                }
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    changed.then_some(out)
}

fn from_path(p: &sv::AttrPath) -> AttrPath {
    AttrPath {
        uri: p.uri.clone(),
        name: p.name.clone(),
        sub_attr: p.sub_attr.clone(),
    }
}

fn from_op(op: &sv::CompareOp) -> CompareOp {
    match op {
        sv::CompareOp::Eq => CompareOp::Eq,
        sv::CompareOp::Ne => CompareOp::Ne,
        sv::CompareOp::Co => CompareOp::Co,
        sv::CompareOp::Sw => CompareOp::Sw,
        sv::CompareOp::Ew => CompareOp::Ew,
        sv::CompareOp::Gt => CompareOp::Gt,
        sv::CompareOp::Lt => CompareOp::Lt,
        sv::CompareOp::Ge => CompareOp::Ge,
        sv::CompareOp::Le => CompareOp::Le,
    }
}

fn from_value(v: &sv::CompValue) -> CompValue {
    match v {
        sv::CompValue::False => CompValue::Bool(false),
        sv::CompValue::True => CompValue::Bool(true),
        sv::CompValue::Null => CompValue::Null,
        sv::CompValue::Number(n) => CompValue::Number(n.clone()),
        sv::CompValue::Str(s) => CompValue::Str(s.clone()),
    }
}

fn from_attr_exp(e: &sv::AttrExp) -> Filter {
    match e {
        sv::AttrExp::Present(p) => Filter::Present(from_path(p)),
        sv::AttrExp::Comparison(p, op, v) => {
            Filter::Compare(from_path(p), from_op(op), from_value(v))
        }
    }
}

fn from_val_filter(f: &sv::ValFilter) -> Filter {
    match f {
        sv::ValFilter::Attr(e) => from_attr_exp(e),
        sv::ValFilter::Not(inner) => Filter::Not(Box::new(from_val_filter(inner))),
        sv::ValFilter::And(items) => Filter::And(items.iter().map(from_val_filter).collect()),
        sv::ValFilter::Or(items) => Filter::Or(items.iter().map(from_val_filter).collect()),
    }
}

/// Renders a parse error as an actionable detail with the byte position in the caller's input
/// (the crate parses the trimmed input, so its offsets are shifted back here).
fn describe(input: &str, what: &str, e: &sv::ParseError) -> String {
    type P = sv::ParseError;
    let shift = input.len() - input.trim_start().len();
    match e {
        P::InvalidToken { location } => {
            format!(
                "invalid {what} '{input}': unexpected character at position {}",
                location + shift
            )
        }
        P::UnrecognizedEof { location, .. } => format!(
            "invalid {what} '{input}': unexpected end at position {}",
            location + shift
        ),
        P::UnrecognizedToken {
            token: (start, tok, _),
            ..
        } => format!(
            "invalid {what} '{input}': unexpected '{}' at position {}",
            tok.trim(),
            start + shift + (tok.len() - tok.trim_start().len())
        ),
        P::ExtraToken {
            token: (start, tok, _),
        } => format!(
            "invalid {what} '{input}': unexpected '{}' at position {}",
            tok.trim(),
            start + shift + (tok.len() - tok.trim_start().len())
        ),
        P::User { error } => format!("invalid {what} '{input}': {error}"),
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(uri) = &self.uri {
            write!(f, "{uri}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(sub) = &self.sub_attr {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for CompValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompValue::Null => f.write_str("null"),
            CompValue::Bool(b) => write!(f, "{b}"),
            CompValue::Number(n) => write!(f, "{n}"),
            CompValue::Str(s) => {
                let quoted = serde_json::to_string(s).map_err(|_| fmt::Error)?;
                f.write_str(&quoted)
            }
        }
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Present(p) => write!(f, "{p} pr"),
            Filter::Compare(p, op, v) => write!(f, "{p} {op} {v}"),
            Filter::ValuePath { attr, filter } => write!(f, "{attr}[{filter}]"),
            Filter::Not(inner) => write!(f, "not ({inner})"),
            Filter::And(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" and ")?;
                    }
                    // `and` binds tighter than `or`, so an `or` operand needs parentheses.
                    if matches!(item, Filter::Or(_)) {
                        write!(f, "({item})")?;
                    } else {
                        write!(f, "{item}")?;
                    }
                }
                Ok(())
            }
            Filter::Or(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" or ")?;
                    }
                    write!(f, "{item}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for PatchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PatchPath::Attr(a) => write!(f, "{a}"),
            PatchPath::Value {
                attr,
                filter,
                sub_attr,
            } => {
                write!(f, "{attr}[{filter}]")?;
                if let Some(sub) = sub_attr {
                    write!(f, ".{sub}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests;
