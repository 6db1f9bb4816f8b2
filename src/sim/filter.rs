//! `$filter`, exactly as narrow as C4C documents it: `eq ge gt le lt`, `*` wildcards in `eq`
//! strings, `startswith`/`endswith`, `and`, parentheses, and `or` only between conditions on one
//! property. Hand-written because no crate parses this dialect (general OData parsers accept far
//! more than the tenant does, which is exactly what the simulator must refuse).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::error::ODataError;
use super::model::{EdmType, EntityDef, PropDef};
use super::values::{Record, Val, parse_iso};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp {
        prop: &'static str,
        op: Op,
        value: Option<Val>,
    },
    StartsWith {
        prop: &'static str,
        text: String,
    },
    EndsWith {
        prop: &'static str,
        text: String,
    },
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Prefixed(String, String),
    Open,
    Close,
    Comma,
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    /// 1-based character position of the token's first character.
    pos: usize,
}

fn lex(input: &str) -> Result<Vec<Token>, ODataError> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let pos = i + 1;
        match c {
            ' ' | '\t' => i += 1,
            '(' => {
                out.push(Token {
                    tok: Tok::Open,
                    pos,
                });
                i += 1;
            }
            ')' => {
                out.push(Token {
                    tok: Tok::Close,
                    pos,
                });
                i += 1;
            }
            ',' => {
                out.push(Token {
                    tok: Tok::Comma,
                    pos,
                });
                i += 1;
            }
            '\'' => {
                let (s, next) = lex_string(&chars, i).ok_or(ODataError::invalid_token(pos))?;
                out.push(Token {
                    tok: Tok::Str(s),
                    pos,
                });
                i = next;
            }
            c if c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric()
                        || matches!(chars[i], '_' | '/' | '-' | '.' | ':' | '+'))
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                if i < chars.len() && chars[i] == '\'' {
                    let (s, next) =
                        lex_string(&chars, i).ok_or(ODataError::invalid_token(i + 1))?;
                    out.push(Token {
                        tok: Tok::Prefixed(word.to_ascii_lowercase(), s),
                        pos,
                    });
                    i = next;
                } else {
                    out.push(Token {
                        tok: Tok::Ident(word),
                        pos,
                    });
                }
            }
            _ => return Err(ODataError::invalid_token(pos)),
        }
    }
    Ok(out)
}

/// Reads `'…'` starting at `start` (a quote); `''` is an escaped quote.
fn lex_string(chars: &[char], start: usize) -> Option<(String, usize)> {
    let mut s = String::new();
    let mut i = start + 1;
    loop {
        let c = *chars.get(i)?;
        if c == '\'' {
            if chars.get(i + 1) == Some(&'\'') {
                s.push('\'');
                i += 2;
                continue;
            }
            return Some((s, i + 1));
        }
        s.push(c);
        i += 1;
    }
}

struct Parser {
    toks: Vec<Token>,
    i: usize,
    def: &'static EntityDef,
    allow_ne: bool,
    end_pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.i)
    }
    fn next(&mut self) -> Option<Token> {
        let t = self.toks.get(self.i).cloned();
        self.i += 1;
        t
    }
    fn err_here(&self) -> ODataError {
        ODataError::invalid_token(self.peek().map(|t| t.pos).unwrap_or(self.end_pos))
    }
    fn is_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Token { tok: Tok::Ident(w), .. }) if w == kw)
    }

    fn parse_or(&mut self) -> Result<Expr, ODataError> {
        let mut left = self.parse_and()?;
        while self.is_keyword("or") {
            let or_pos = self.next().map(|t| t.pos).unwrap_or(0);
            let right = self.parse_and()?;
            let mut props = BTreeSet::new();
            collect_props(&left, &mut props);
            collect_props(&right, &mut props);
            if props.len() > 1 {
                return Err(ODataError::bad_request(format!(
                    "Invalid token detected at position {or_pos}: 'or' is only supported between conditions on the same property"
                )));
            }
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_and(&mut self) -> Result<Expr, ODataError> {
        let mut left = self.parse_primary()?;
        while self.is_keyword("and") {
            self.next();
            let right = self.parse_primary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_primary(&mut self) -> Result<Expr, ODataError> {
        let tok = self.next().ok_or_else(|| self.err_here())?;
        match tok.tok {
            Tok::Open => {
                let e = self.parse_or()?;
                match self.next() {
                    Some(Token {
                        tok: Tok::Close, ..
                    }) => Ok(e),
                    Some(t) => Err(ODataError::invalid_token(t.pos)),
                    None => Err(ODataError::invalid_token(self.end_pos)),
                }
            }
            Tok::Ident(word) => {
                if matches!(self.peek(), Some(Token { tok: Tok::Open, .. })) {
                    return self.parse_function(&word, tok.pos);
                }
                self.parse_comparison(&word, tok.pos)
            }
            _ => Err(ODataError::invalid_token(tok.pos)),
        }
    }

    fn property(&self, name: &str, pos: usize) -> Result<&'static PropDef, ODataError> {
        if name.contains('/') {
            return Err(ODataError::bad_request(format!(
                "Invalid token detected at position {pos}: filtering on navigation properties is not supported ({name})"
            )));
        }
        if name == "not" {
            return Err(ODataError::invalid_token(pos));
        }
        let def = self.def;
        if def.nav(name).is_some() {
            return Err(ODataError::bad_request(format!(
                "Invalid token detected at position {pos}: filtering on navigation properties is not supported ({name})"
            )));
        }
        let prop = def.prop(name).ok_or_else(|| {
            ODataError::bad_request(format!(
                "Invalid token detected at position {pos}: property {name} not found in type {}",
                def.type_name
            ))
        })?;
        if !prop.filterable {
            return Err(ODataError::bad_request(format!(
                "Property {name} is not filterable"
            )));
        }
        Ok(prop)
    }

    fn parse_function(&mut self, name: &str, pos: usize) -> Result<Expr, ODataError> {
        let func = name.to_ascii_lowercase();
        if func != "startswith" && func != "endswith" {
            return Err(ODataError::bad_request(format!(
                "Invalid token detected at position {pos}: function {name} is not supported"
            )));
        }
        self.next(); // (
        let prop_tok = self.next().ok_or_else(|| self.err_here())?;
        let Tok::Ident(prop_name) = prop_tok.tok else {
            return Err(ODataError::invalid_token(prop_tok.pos));
        };
        let prop = self.property(&prop_name, prop_tok.pos)?;
        if !matches!(prop.ty, EdmType::String(_)) {
            return Err(ODataError::invalid_token(prop_tok.pos));
        }
        match self.next() {
            Some(Token {
                tok: Tok::Comma, ..
            }) => {}
            Some(t) => return Err(ODataError::invalid_token(t.pos)),
            None => return Err(ODataError::invalid_token(self.end_pos)),
        }
        let lit = self.next().ok_or_else(|| self.err_here())?;
        let Tok::Str(text) = lit.tok else {
            return Err(ODataError::invalid_token(lit.pos));
        };
        match self.next() {
            Some(Token {
                tok: Tok::Close, ..
            }) => {}
            Some(t) => return Err(ODataError::invalid_token(t.pos)),
            None => return Err(ODataError::invalid_token(self.end_pos)),
        }
        // The OData v2 spelling `startswith(P,'x') eq true` is accepted as well.
        if self.is_keyword("eq") {
            self.next();
            match self.next() {
                Some(Token {
                    tok: Tok::Ident(w), ..
                }) if w == "true" => {}
                Some(t) => return Err(ODataError::invalid_token(t.pos)),
                None => return Err(ODataError::invalid_token(self.end_pos)),
            }
        }
        let prop = prop.name;
        Ok(if func == "startswith" {
            Expr::StartsWith { prop, text }
        } else {
            Expr::EndsWith { prop, text }
        })
    }

    fn parse_comparison(&mut self, name: &str, pos: usize) -> Result<Expr, ODataError> {
        let prop = self.property(name, pos)?;
        let op_tok = self.next().ok_or_else(|| self.err_here())?;
        let op = match &op_tok.tok {
            Tok::Ident(w) => match w.as_str() {
                "eq" => Op::Eq,
                "ge" => Op::Ge,
                "gt" => Op::Gt,
                "le" => Op::Le,
                "lt" => Op::Lt,
                "ne" if self.allow_ne => Op::Ne,
                _ => return Err(ODataError::invalid_token(op_tok.pos)),
            },
            _ => return Err(ODataError::invalid_token(op_tok.pos)),
        };
        let lit = self.next().ok_or_else(|| self.err_here())?;
        let value = literal_for(prop, &lit)?;
        if value.is_none() && !matches!(op, Op::Eq | Op::Ne) {
            return Err(ODataError::invalid_token(lit.pos));
        }
        Ok(Expr::Cmp {
            prop: prop.name,
            op,
            value,
        })
    }
}

/// Checks the literal against the property's EDM type (`datetime'…'` only for Edm.DateTime, …).
fn literal_for(prop: &PropDef, lit: &Token) -> Result<Option<Val>, ODataError> {
    let bad = || ODataError::invalid_token(lit.pos);
    if matches!(&lit.tok, Tok::Ident(w) if w == "null") {
        return Ok(None);
    }
    match (prop.ty, &lit.tok) {
        (EdmType::String(_), Tok::Str(s)) => Ok(Some(Val::Str(s.clone()))),
        (EdmType::Boolean, Tok::Ident(w)) if w == "true" || w == "false" => {
            Ok(Some(Val::Bool(w == "true")))
        }
        (EdmType::Guid, Tok::Prefixed(p, s)) if p == "guid" => uuid::Uuid::parse_str(s)
            .ok()
            .filter(|_| s.len() == 36)
            .map(|_| Some(Val::Guid(s.to_ascii_uppercase())))
            .ok_or_else(bad),
        (EdmType::DateTime, Tok::Prefixed(p, s)) if p == "datetime" => {
            // Edm.DateTime literals carry no zone designator.
            if s.ends_with('Z') || s.contains('+') {
                return Err(bad());
            }
            parse_iso(s).map(|d| Some(Val::DateTime(d))).ok_or_else(bad)
        }
        (EdmType::DateTimeOffset, Tok::Prefixed(p, s)) if p == "datetimeoffset" => {
            let d: DateTime<Utc> = DateTime::parse_from_rfc3339(s)
                .map(|d| d.with_timezone(&Utc))
                .map_err(|_| bad())?;
            Ok(Some(Val::Dto(d)))
        }
        _ => Err(bad()),
    }
}

fn collect_props(e: &Expr, out: &mut BTreeSet<&'static str>) {
    match e {
        Expr::And(a, b) | Expr::Or(a, b) => {
            collect_props(a, out);
            collect_props(b, out);
        }
        Expr::Cmp { prop, .. } | Expr::StartsWith { prop, .. } | Expr::EndsWith { prop, .. } => {
            out.insert(prop);
        }
    }
}

/// Parses a `$filter` value (already percent-decoded) against an entity type.
pub(crate) fn parse(
    input: &str,
    def: &'static EntityDef,
    allow_ne: bool,
) -> Result<Expr, ODataError> {
    let toks = lex(input)?;
    let end_pos = input.chars().count() + 1;
    let mut p = Parser {
        toks,
        i: 0,
        def,
        allow_ne,
        end_pos,
    };
    let e = p.parse_or()?;
    if let Some(t) = p.peek() {
        return Err(ODataError::invalid_token(t.pos));
    }
    Ok(e)
}

/// `*` matches any run of characters (C4C's wildcard inside `eq` strings).
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

pub(crate) fn eval(e: &Expr, rec: &Record) -> bool {
    match e {
        Expr::And(a, b) => eval(a, rec) && eval(b, rec),
        Expr::Or(a, b) => eval(a, rec) || eval(b, rec),
        Expr::StartsWith { prop, text } => rec
            .get(prop)
            .and_then(Val::as_str)
            .is_some_and(|s| s.starts_with(text.as_str())),
        Expr::EndsWith { prop, text } => rec
            .get(prop)
            .and_then(Val::as_str)
            .is_some_and(|s| s.ends_with(text.as_str())),
        Expr::Cmp { prop, op, value } => {
            let actual = rec.get(prop);
            match (actual, value) {
                (a, None) => match op {
                    Op::Eq => a.is_none(),
                    Op::Ne => a.is_some(),
                    _ => false,
                },
                (None, Some(_)) => *op == Op::Ne,
                (Some(a), Some(v)) => match op {
                    Op::Eq => match (a, v) {
                        (Val::Str(a), Val::Str(p)) => wildcard_match(p, a),
                        _ => a == v,
                    },
                    Op::Ne => a != v,
                    Op::Gt => a > v,
                    Op::Ge => a >= v,
                    Op::Lt => a < v,
                    Op::Le => a <= v,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::model::SetId;

    fn emp() -> &'static EntityDef {
        SetId::Employee.def()
    }

    fn rec(pairs: &[(&'static str, Val)]) -> Record {
        pairs.iter().cloned().collect()
    }

    fn message(r: Result<Expr, ODataError>) -> String {
        match r {
            Err(e) => {
                assert_eq!(e.status, http::StatusCode::BAD_REQUEST);
                e.message
            }
            Ok(e) => panic!("accepted: {e:?}"),
        }
    }

    #[test]
    fn accepts_the_documented_forms() {
        for f in [
            "EmployeeID eq '1283302'",
            "UserID eq '*ADMIN*'",
            "startswith(LastName,'O''Br')",
            "startswith(LastName, 'O''Br') eq true",
            "endswith(Email,'@example.com')",
            "(FirstName eq 'Jane') and (UserLockedIndicator eq false)",
            "EmployeeID eq '1' or EmployeeID eq '2' or EmployeeID eq '3'",
            "(EmployeeID eq '1' or EmployeeID eq '2') and UserLockedIndicator eq true",
            "UserValidityEndDate ge datetime'2022-07-14T00:00:00'",
            "EntityLastChangedOn ge datetimeoffset'2024-03-01T00:00:00.0000000Z'",
            "ChangedOn gt datetimeoffset'2024-03-01T00:00:00+00:00'",
            "UUID eq guid'00163E03-A070-1EE2-88BE-9895233EBD27'",
        ] {
            assert!(parse(f, emp(), false).is_ok(), "{f}");
        }
    }

    #[test]
    fn refuses_what_c4c_does_not_support() {
        assert!(message(parse("FirstName ne 'x'", emp(), false)).contains("position 11"));
        assert!(parse("FirstName ne 'x'", emp(), true).is_ok());
        assert!(message(parse("substringof('a',FirstName)", emp(), false)).contains("substringof"));
        assert!(message(parse("tolower(FirstName) eq 'a'", emp(), false)).contains("tolower"));
        assert!(
            message(parse("FirstName eq 'a' or LastName eq 'b'", emp(), false))
                .contains("same property")
        );
        assert!(
            message(parse(
                "ETag eq datetimeoffset'2024-01-01T00:00:00Z'",
                emp(),
                false
            ))
            .contains("not filterable")
        );
        assert!(message(parse("UserName eq 'x'", emp(), false)).contains("UserName not found"));
        assert!(
            message(parse(
                "EmployeeUserBusinessRoleAssignment/BusinessRoleID eq 'X'",
                emp(),
                false
            ))
            .contains("navigation")
        );
        assert!(message(parse("not (FirstName eq 'a')", emp(), false)).contains("position"));
        assert!(message(parse("FirstName eq 'unterminated", emp(), false)).contains("position 14"));
        assert!(message(parse("FirstName eq 'a' and", emp(), false)).contains("position 21"));
        assert!(message(parse("(FirstName eq 'a'", emp(), false)).contains("position"));
    }

    #[test]
    fn literal_type_must_match_the_property_type() {
        // datetime on a DateTimeOffset property: the KBA 2310920 case.
        let f = "EntityLastChangedOn ge datetime'2016-05-03T10:09:19.6938540Z'";
        assert!(message(parse(f, emp(), false)).contains("position 24"));
        let f = "UserValidityEndDate ge datetimeoffset'2016-05-03T10:09:19Z'";
        assert!(message(parse(f, emp(), false)).contains("position 24"));
        assert!(parse("UserLockedIndicator eq 'true'", emp(), false).is_err());
        assert!(parse("FirstName eq 5", emp(), false).is_err());
        assert!(
            parse(
                "UUID eq '00163E03-A070-1EE2-88BE-9895233EBD27'",
                emp(),
                false
            )
            .is_err()
        );
    }

    #[test]
    fn evaluates_wildcards_quotes_and_ranges() {
        let r = rec(&[
            ("LastName", Val::Str("O'Brien".into())),
            ("UserID", Val::Str("SYS_ADMIN_01".into())),
            ("UserLockedIndicator", Val::Bool(false)),
        ]);
        let t = |f: &str| eval(&parse(f, emp(), true).unwrap(), &r);
        assert!(t("LastName eq 'O''Brien'"));
        assert!(t("UserID eq '*ADMIN*'"));
        assert!(t("UserID eq 'SYS*'"));
        assert!(!t("UserID eq 'ADMIN*'"));
        assert!(t("startswith(LastName,'O''B')"));
        assert!(!t("endswith(LastName,'x')"));
        assert!(t("UserLockedIndicator eq false"));
        assert!(t("Email eq null"));
        assert!(t("LastName ge 'O' and LastName lt 'P'"));
        assert!(t("LastName eq 'x' or LastName eq 'O''Brien'"));
        assert!(t("FirstName ne 'x'"));
    }

    #[test]
    fn wildcard_matching() {
        assert!(wildcard_match("*", "anything"));
        assert!(wildcard_match("a*c", "abc"));
        assert!(wildcard_match("a*b*c", "aXbYc"));
        assert!(!wildcard_match("a*b*c", "aXc"));
        assert!(wildcard_match("abc", "abc"));
        assert!(!wildcard_match("abc", "abcd"));
    }
}
