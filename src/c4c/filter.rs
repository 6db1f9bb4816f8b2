//! A typed `$filter` builder that can only produce what C4C accepts.
//!
//! Literals are never concatenated from input: each value is rendered in the literal form
//! of the property's EDM type (from `$metadata`), strings with quotes doubled. `or` is
//! rendered only between conditions on one property; [`plan`] splits wider filters into
//! several queries whose union is the original. `ne` and `substringof` are refused unless
//! the tenant profile allows them.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use uuid::Uuid;

use super::config::TenantProfile;
use super::error::C4cError;
use super::metadata::{EdmType, EntityTypeModel};
use super::odata::string_literal;

/// Most queries one filter may be split into.
pub const MAX_SPLIT_QUERIES: usize = 64;

/// A value to compare with; its literal form depends on the property's EDM type.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    String(String),
    Bool(bool),
    Int(i64),
    /// A point in time: `datetime'…'` on Edm.DateTime, `datetimeoffset'…Z'` on Edm.DateTimeOffset.
    DateTime(DateTime<Utc>),
    /// A calendar date (midnight UTC).
    Date(NaiveDate),
    Guid(Uuid),
}

impl From<&str> for Literal {
    fn from(v: &str) -> Self {
        Self::String(v.to_string())
    }
}
impl From<String> for Literal {
    fn from(v: String) -> Self {
        Self::String(v)
    }
}
impl From<&String> for Literal {
    fn from(v: &String) -> Self {
        Self::String(v.clone())
    }
}
impl From<bool> for Literal {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}
impl From<i64> for Literal {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}
impl From<DateTime<Utc>> for Literal {
    fn from(v: DateTime<Utc>) -> Self {
        Self::DateTime(v)
    }
}
impl From<NaiveDate> for Literal {
    fn from(v: NaiveDate) -> Self {
        Self::Date(v)
    }
}
impl From<Uuid> for Literal {
    fn from(v: Uuid) -> Self {
        Self::Guid(v)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CmpOp {
    fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "eq",
            Self::Ne => "ne",
            Self::Gt => "gt",
            Self::Ge => "ge",
            Self::Lt => "lt",
            Self::Le => "le",
        }
    }
}

/// A filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Compare {
        property: String,
        op: CmpOp,
        value: Literal,
    },
    StartsWith {
        property: String,
        value: String,
    },
    EndsWith {
        property: String,
        value: String,
    },
    /// `substringof` where allowed, else `eq '*v*'` (C4C's wildcard).
    Contains {
        property: String,
        value: String,
    },
    And(Vec<Filter>),
    Or(Vec<Filter>),
}

impl Filter {
    fn cmp(property: &str, op: CmpOp, value: impl Into<Literal>) -> Self {
        Self::Compare {
            property: property.to_string(),
            op,
            value: value.into(),
        }
    }
    pub fn eq(property: &str, value: impl Into<Literal>) -> Self {
        Self::cmp(property, CmpOp::Eq, value)
    }
    pub fn ne(property: &str, value: impl Into<Literal>) -> Self {
        Self::cmp(property, CmpOp::Ne, value)
    }
    pub fn gt(property: &str, value: impl Into<Literal>) -> Self {
        Self::cmp(property, CmpOp::Gt, value)
    }
    pub fn ge(property: &str, value: impl Into<Literal>) -> Self {
        Self::cmp(property, CmpOp::Ge, value)
    }
    pub fn lt(property: &str, value: impl Into<Literal>) -> Self {
        Self::cmp(property, CmpOp::Lt, value)
    }
    pub fn le(property: &str, value: impl Into<Literal>) -> Self {
        Self::cmp(property, CmpOp::Le, value)
    }
    pub fn starts_with(property: &str, value: &str) -> Self {
        Self::StartsWith {
            property: property.to_string(),
            value: value.to_string(),
        }
    }
    pub fn ends_with(property: &str, value: &str) -> Self {
        Self::EndsWith {
            property: property.to_string(),
            value: value.to_string(),
        }
    }
    pub fn contains(property: &str, value: &str) -> Self {
        Self::Contains {
            property: property.to_string(),
            value: value.to_string(),
        }
    }
    /// `property eq v1 or property eq v2 …` (one property: C4C accepts it as is).
    pub fn any_of<V: Into<Literal>>(property: &str, values: impl IntoIterator<Item = V>) -> Self {
        Self::Or(values.into_iter().map(|v| Self::eq(property, v)).collect())
    }
    pub fn and(self, other: Filter) -> Self {
        match self {
            Self::And(mut items) => {
                items.push(other);
                Self::And(items)
            }
            first => Self::And(vec![first, other]),
        }
    }
    pub fn or(self, other: Filter) -> Self {
        match self {
            Self::Or(mut items) => {
                items.push(other);
                Self::Or(items)
            }
            first => Self::Or(vec![first, other]),
        }
    }

    /// The property of a leaf condition.
    fn leaf_property(&self) -> Option<&str> {
        match self {
            Self::Compare { property, .. }
            | Self::StartsWith { property, .. }
            | Self::EndsWith { property, .. }
            | Self::Contains { property, .. } => Some(property),
            Self::And(_) | Self::Or(_) => None,
        }
    }

    /// True when this `Or` is a chain of leaves on one property.
    fn is_single_property_or(items: &[Filter]) -> bool {
        let mut props = items.iter().map(Filter::leaf_property);
        match props.next() {
            Some(Some(first)) => props.all(|p| p == Some(first)),
            _ => false,
        }
    }

    /// Renders for C4C, checking properties against the entity type and the tenant profile.
    pub fn render(
        &self,
        entity: &EntityTypeModel,
        profile: &TenantProfile,
    ) -> Result<String, C4cError> {
        let mut out = String::new();
        self.render_into(&mut out, entity, profile, true)?;
        Ok(out)
    }

    fn render_into(
        &self,
        out: &mut String,
        entity: &EntityTypeModel,
        profile: &TenantProfile,
        top: bool,
    ) -> Result<(), C4cError> {
        match self {
            Self::Compare {
                property,
                op,
                value,
            } => {
                let prop = filterable(entity, property)?;
                if *op == CmpOp::Ne && !profile.allow_ne {
                    return Err(C4cError::UnsupportedFilter(format!(
                        "`ne` on {property}: C4C does not document `ne` (set tenant.allow_ne if yours accepts it)"
                    )));
                }
                out.push_str(property);
                out.push(' ');
                out.push_str(op.as_str());
                out.push(' ');
                out.push_str(&literal(property, &prop.edm_type, value)?);
            }
            Self::StartsWith { property, value } | Self::EndsWith { property, value } => {
                let prop = filterable(entity, property)?;
                expect_string(property, &prop.edm_type)?;
                let func = if matches!(self, Self::StartsWith { .. }) {
                    "startswith"
                } else {
                    "endswith"
                };
                out.push_str(&format!("{func}({property},{})", string_literal(value)));
            }
            Self::Contains { property, value } => {
                let prop = filterable(entity, property)?;
                expect_string(property, &prop.edm_type)?;
                if profile.allow_substringof {
                    out.push_str(&format!(
                        "substringof({},{property})",
                        string_literal(value)
                    ));
                } else if value.contains('*') {
                    return Err(C4cError::UnsupportedFilter(format!(
                        "contains on {property} with a '*' in the value needs substringof (tenant.allow_substringof)"
                    )));
                } else {
                    out.push_str(&format!(
                        "{property} eq {}",
                        string_literal(&format!("*{value}*"))
                    ));
                }
            }
            Self::And(items) => {
                if items.is_empty() {
                    return Err(C4cError::InvalidInput("empty `and`".into()));
                }
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(" and ");
                    }
                    let wrap = matches!(item, Self::Or(v) if v.len() > 1);
                    if wrap {
                        out.push('(');
                    }
                    item.render_into(out, entity, profile, false)?;
                    if wrap {
                        out.push(')');
                    }
                }
            }
            Self::Or(items) => {
                if items.is_empty() {
                    return Err(C4cError::InvalidInput("empty `or`".into()));
                }
                if !Self::is_single_property_or(items) {
                    return Err(C4cError::UnsupportedFilter(
                        "`or` across properties: C4C accepts `or` only on one property (use filter::plan to split)"
                            .into(),
                    ));
                }
                let _ = top;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(" or ");
                    }
                    item.render_into(out, entity, profile, false)?;
                }
            }
        }
        Ok(())
    }
}

fn filterable<'a>(
    entity: &'a EntityTypeModel,
    property: &str,
) -> Result<&'a super::metadata::PropertyModel, C4cError> {
    let prop = entity.property(property).ok_or_else(|| {
        C4cError::InvalidInput(format!("{} has no property {property}", entity.name))
    })?;
    if !prop.filterable {
        return Err(C4cError::PropertyNotFilterable {
            property: property.to_string(),
            message: format!(
                "{}.{property} is sap:filterable=false in $metadata",
                entity.name
            ),
        });
    }
    Ok(prop)
}

fn expect_string(property: &str, edm: &EdmType) -> Result<(), C4cError> {
    if *edm == EdmType::String {
        Ok(())
    } else {
        Err(C4cError::InvalidInput(format!(
            "{property} is {edm:?}, not a string"
        )))
    }
}

fn mismatch(property: &str, edm: &EdmType, value: &Literal) -> C4cError {
    C4cError::InvalidInput(format!(
        "{property} is {edm:?}; cannot compare with {value:?}"
    ))
}

/// The literal of `value` in the form `edm` needs.
pub fn literal(property: &str, edm: &EdmType, value: &Literal) -> Result<String, C4cError> {
    Ok(match (edm, value) {
        (EdmType::String, Literal::String(s)) => string_literal(s),
        (EdmType::Boolean, Literal::Bool(b)) => b.to_string(),
        (EdmType::Int16 | EdmType::Int32, Literal::Int(i)) => i.to_string(),
        (EdmType::Int64, Literal::Int(i)) => format!("{i}L"),
        (EdmType::Decimal, Literal::Int(i)) => format!("{i}M"),
        (EdmType::DateTime, Literal::DateTime(d)) => {
            format!("datetime'{}'", d.format("%Y-%m-%dT%H:%M:%S"))
        }
        (EdmType::DateTime, Literal::Date(d)) => {
            format!("datetime'{}T00:00:00'", d.format("%Y-%m-%d"))
        }
        (EdmType::DateTimeOffset, Literal::DateTime(d)) => {
            // C4C's DateTimeOffset has 7 fractional digits; chrono gives 9 at most, we pad/cut to 7.
            let base = d.to_rfc3339_opts(SecondsFormat::Secs, true);
            let base = base.trim_end_matches('Z');
            format!(
                "datetimeoffset'{base}.{:07}Z'",
                d.timestamp_subsec_nanos() / 100
            )
        }
        (EdmType::DateTimeOffset, Literal::Date(d)) => {
            format!("datetimeoffset'{}T00:00:00.0000000Z'", d.format("%Y-%m-%d"))
        }
        (EdmType::Guid, Literal::Guid(u)) => {
            format!("guid'{}'", u.hyphenated().to_string().to_uppercase())
        }
        (EdmType::Guid, Literal::String(s)) => {
            let u = Uuid::parse_str(s).map_err(|_| mismatch(property, edm, value))?;
            format!("guid'{}'", u.hyphenated().to_string().to_uppercase())
        }
        _ => return Err(mismatch(property, edm, value)),
    })
}

/// Splits a filter into filters C4C accepts, whose results' union equals the original's.
/// Conditions joined by `or` across properties become separate queries; `and` over such
/// an `or` is distributed. Fails when more than [`MAX_SPLIT_QUERIES`] queries would be needed.
pub fn plan(filter: &Filter) -> Result<Vec<Filter>, C4cError> {
    let alternatives = expand(filter)?;
    Ok(alternatives)
}

fn expand(filter: &Filter) -> Result<Vec<Filter>, C4cError> {
    let out = match filter {
        Filter::Or(items) if Filter::is_single_property_or(items) => vec![filter.clone()],
        Filter::Or(items) => {
            let mut out = Vec::new();
            for item in items {
                out.extend(expand(item)?);
                check_size(out.len())?;
            }
            out
        }
        Filter::And(items) => {
            let mut combos: Vec<Vec<Filter>> = vec![Vec::new()];
            for item in items {
                let alts = expand(item)?;
                check_size(combos.len().saturating_mul(alts.len()))?;
                combos = combos
                    .into_iter()
                    .flat_map(|combo| {
                        alts.iter().map(move |alt| {
                            let mut next = combo.clone();
                            next.push(alt.clone());
                            next
                        })
                    })
                    .collect();
            }
            combos
                .into_iter()
                .map(|mut c| {
                    if c.len() == 1 {
                        c.remove(0)
                    } else {
                        Filter::And(c)
                    }
                })
                .collect()
        }
        leaf => vec![leaf.clone()],
    };
    Ok(out)
}

fn check_size(n: usize) -> Result<(), C4cError> {
    if n > MAX_SPLIT_QUERIES {
        return Err(C4cError::UnsupportedFilter(format!(
            "filter needs more than {MAX_SPLIT_QUERIES} separate queries"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::c4c::metadata::Metadata;
    use crate::c4c::metadata::tests::SAMPLE;
    use chrono::TimeZone;

    fn employee() -> EntityTypeModel {
        Metadata::parse(SAMPLE.as_bytes())
            .unwrap()
            .entity_type("Employee")
            .unwrap()
            .clone()
    }

    fn render(f: &Filter) -> Result<String, C4cError> {
        f.render(&employee(), &TenantProfile::default())
    }

    #[test]
    fn escapes_strings() {
        assert_eq!(
            render(&Filter::eq("LastName", "O'Brien")).unwrap(),
            "LastName eq 'O''Brien'"
        );
        assert_eq!(
            render(&Filter::eq("LastName", "x' or FirstName eq 'y")).unwrap(),
            "LastName eq 'x'' or FirstName eq ''y'"
        );
    }

    #[test]
    fn literal_form_follows_edm_type() {
        let t = Utc.with_ymd_and_hms(2024, 3, 1, 10, 15, 30).unwrap();
        assert_eq!(
            render(&Filter::ge("EntityLastChangedOn", t)).unwrap(),
            "EntityLastChangedOn ge datetimeoffset'2024-03-01T10:15:30.0000000Z'"
        );
        assert_eq!(
            render(&Filter::lt("UserValidityEndDate", t)).unwrap(),
            "UserValidityEndDate lt datetime'2024-03-01T10:15:30'"
        );
        let t = t + chrono::Duration::nanoseconds(123_456_789);
        assert_eq!(
            render(&Filter::gt("EntityLastChangedOn", t)).unwrap(),
            "EntityLastChangedOn gt datetimeoffset'2024-03-01T10:15:30.1234567Z'"
        );
        let u = Uuid::parse_str("00163e03-a070-1ee2-88be-9895233ebd27").unwrap();
        assert_eq!(
            render(&Filter::eq("UUID", u)).unwrap(),
            "UUID eq guid'00163E03-A070-1EE2-88BE-9895233EBD27'"
        );
        assert_eq!(
            render(&Filter::eq("UserLockedIndicator", false)).unwrap(),
            "UserLockedIndicator eq false"
        );
        assert!(render(&Filter::eq("UserLockedIndicator", "false")).is_err());
        assert!(render(&Filter::eq("EntityLastChangedOn", "2024")).is_err());
    }

    #[test]
    fn or_only_on_one_property() {
        let f = Filter::any_of("EmployeeID", ["1", "2"]);
        assert_eq!(
            render(&f).unwrap(),
            "EmployeeID eq '1' or EmployeeID eq '2'"
        );
        let f =
            Filter::eq("UserLockedIndicator", false).and(Filter::any_of("EmployeeID", ["1", "2"]));
        assert_eq!(
            render(&f).unwrap(),
            "UserLockedIndicator eq false and (EmployeeID eq '1' or EmployeeID eq '2')"
        );
        let wide = Filter::eq("UserID", "A").or(Filter::eq("Email", "a@x"));
        assert!(matches!(render(&wide), Err(C4cError::UnsupportedFilter(_))));
    }

    #[test]
    fn plan_splits_cross_property_or() {
        let wide = Filter::eq("UserID", "A").or(Filter::eq("Email", "a@x"));
        let parts = plan(&wide).unwrap();
        assert_eq!(parts.len(), 2);
        let rendered: Vec<_> = parts.iter().map(|p| render(p).unwrap()).collect();
        assert_eq!(rendered, vec!["UserID eq 'A'", "Email eq 'a@x'"]);

        let f = Filter::eq("UserLockedIndicator", false).and(wide);
        let rendered: Vec<_> = plan(&f)
            .unwrap()
            .iter()
            .map(|p| render(p).unwrap())
            .collect();
        assert_eq!(
            rendered,
            vec![
                "UserLockedIndicator eq false and UserID eq 'A'",
                "UserLockedIndicator eq false and Email eq 'a@x'"
            ]
        );

        let same = Filter::any_of("EmployeeID", ["1", "2", "3"]);
        assert_eq!(plan(&same).unwrap().len(), 1);
    }

    #[test]
    fn plan_refuses_explosions() {
        let mut f = Filter::And(Vec::new());
        for i in 0..7 {
            f = f.and(Filter::eq("UserID", format!("u{i}").as_str()).or(Filter::eq("Email", "e")));
        }
        assert!(matches!(plan(&f), Err(C4cError::UnsupportedFilter(_))));
    }

    #[test]
    fn ne_and_substringof_need_the_profile() {
        assert!(matches!(
            render(&Filter::ne("UserID", "A")),
            Err(C4cError::UnsupportedFilter(_))
        ));
        let allow = TenantProfile {
            allow_ne: true,
            allow_substringof: true,
            ..Default::default()
        };
        assert_eq!(
            Filter::ne("UserID", "A")
                .render(&employee(), &allow)
                .unwrap(),
            "UserID ne 'A'"
        );
        assert_eq!(
            render(&Filter::contains("Email", "doe")).unwrap(),
            "Email eq '*doe*'"
        );
        assert_eq!(
            Filter::contains("Email", "d'oe")
                .render(&employee(), &allow)
                .unwrap(),
            "substringof('d''oe',Email)"
        );
        assert!(render(&Filter::contains("Email", "a*b")).is_err());
        assert_eq!(
            render(&Filter::starts_with("LastName", "O'")).unwrap(),
            "startswith(LastName,'O''')"
        );
    }

    #[test]
    fn refuses_unknown_and_non_filterable_properties() {
        assert!(matches!(
            render(&Filter::eq("ETag", "x")),
            Err(C4cError::PropertyNotFilterable { .. })
        ));
        assert!(matches!(
            render(&Filter::eq("NoSuch", "x")),
            Err(C4cError::InvalidInput(_))
        ));
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use crate::c4c::metadata::Metadata;
    use crate::c4c::metadata::tests::SAMPLE;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the input, the rendered string literal is a single quoted token.
        #[test]
        fn string_literals_stay_one_token(s in ".*") {
            let md = Metadata::parse(SAMPLE.as_bytes()).unwrap();
            let t = md.entity_type("Employee").unwrap();
            let out = Filter::eq("LastName", s.as_str()).render(t, &TenantProfile::default()).unwrap();
            let lit = out.strip_prefix("LastName eq ").unwrap();
            prop_assert!(lit.starts_with('\'') && lit.ends_with('\''));
            let inner = &lit[1..lit.len() - 1];
            prop_assert_eq!(inner.replace("''", "'"), s.clone());
            prop_assert!(!inner.replace("''", "").contains('\''));
        }
    }
}
