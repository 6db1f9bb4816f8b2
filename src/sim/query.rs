//! System query options (`$filter`, `$select`, `$orderby`, `$top`, `$skip`, `$skiptoken`,
//! `$inlinecount`, `$expand`, `$format`, `$search`), parsed and checked against the model.

use super::error::ODataError;
use super::filter::{self, Expr};
use super::model::EntityDef;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Json,
    Atom,
}

#[derive(Debug, Default)]
pub(crate) struct QueryOptions {
    pub filter: Option<String>,
    pub select: Option<Vec<String>>,
    pub orderby: Vec<(String, bool)>,
    pub top: Option<usize>,
    pub skip: usize,
    pub skiptoken: Option<usize>,
    pub inlinecount: bool,
    pub expand: Vec<String>,
    pub format: Option<Format>,
    pub search: Option<String>,
    /// Every pair as received (decoded), to rebuild `__next` links.
    pub pairs: Vec<(String, String)>,
}

fn parse_usize(name: &str, v: &str) -> Result<usize, ODataError> {
    v.trim().parse().map_err(|_| {
        ODataError::bad_request(format!(
            "Invalid value '{v}' for system query option {name}"
        ))
    })
}

impl QueryOptions {
    pub(crate) fn parse(query: Option<&str>) -> Result<Self, ODataError> {
        let mut o = QueryOptions::default();
        let Some(q) = query else { return Ok(o) };
        let mut seen = std::collections::BTreeSet::new();
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
            let (k, v) = (k.into_owned(), v.into_owned());
            if k.starts_with('$') && !seen.insert(k.clone()) {
                return Err(ODataError::bad_request(format!(
                    "System query option {k} is given more than once"
                )));
            }
            match k.as_str() {
                "$filter" => o.filter = Some(v.clone()),
                "$select" => {
                    o.select = Some(
                        v.split(',')
                            .map(|s| s.trim().to_owned())
                            .filter(|s| !s.is_empty())
                            .collect(),
                    )
                }
                "$orderby" => {
                    for item in v.split(',') {
                        let mut words = item.split_whitespace();
                        let prop = words
                            .next()
                            .ok_or_else(|| ODataError::bad_request("Invalid $orderby"))?
                            .to_owned();
                        let desc = match words.next() {
                            None | Some("asc") => false,
                            Some("desc") => true,
                            Some(w) => {
                                return Err(ODataError::bad_request(format!(
                                    "Invalid sort order '{w}' in $orderby"
                                )));
                            }
                        };
                        if words.next().is_some() {
                            return Err(ODataError::bad_request("Invalid $orderby"));
                        }
                        o.orderby.push((prop, desc));
                    }
                }
                "$top" => o.top = Some(parse_usize("$top", &v)?),
                "$skip" => o.skip = parse_usize("$skip", &v)?,
                "$skiptoken" => {
                    let t = parse_usize("$skiptoken", &v)?;
                    if t == 0 {
                        return Err(ODataError::bad_request("Invalid value '0' for $skiptoken"));
                    }
                    o.skiptoken = Some(t)
                }
                "$inlinecount" => match v.as_str() {
                    "allpages" => o.inlinecount = true,
                    "none" => o.inlinecount = false,
                    _ => {
                        return Err(ODataError::bad_request(format!(
                            "Invalid value '{v}' for $inlinecount"
                        )));
                    }
                },
                "$expand" => {
                    o.expand = v
                        .split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect()
                }
                "$format" => {
                    o.format = Some(match v.as_str() {
                        "json" | "application/json" => Format::Json,
                        "xml" | "atom" | "application/atom+xml" => Format::Atom,
                        _ => {
                            return Err(ODataError::bad_request(format!(
                                "Unsupported format '{v}'"
                            )));
                        }
                    })
                }
                "$search" => o.search = Some(v.trim_matches('\'').to_owned()),
                other if other.starts_with('$') => {
                    return Err(ODataError::bad_request(format!(
                        "System query option {other} is not supported"
                    )));
                }
                // Custom options such as sap-label or sap-client are accepted and ignored.
                _ => {}
            }
            o.pairs.push((k, v));
        }
        Ok(o)
    }

    /// Checks `$select`, `$expand` and `$orderby` against the entity type and parses `$filter`.
    pub(crate) fn validate(
        &self,
        def: &'static EntityDef,
        allow_ne: bool,
    ) -> Result<Option<Expr>, ODataError> {
        for nav in &self.expand {
            if nav.contains('/') {
                return Err(ODataError::bad_request(format!(
                    "Multi-level $expand '{nav}' is not supported"
                )));
            }
            if def.nav(nav).is_none() {
                return Err(ODataError::bad_request(format!(
                    "Navigation property {nav} not found in type {}",
                    def.type_name
                )));
            }
        }
        if let Some(select) = &self.select {
            for item in select {
                if item == "*" {
                    continue;
                }
                match item.split_once('/') {
                    Some((nav, prop)) => {
                        let Some(n) = def.nav(nav) else {
                            return Err(ODataError::bad_request(format!(
                                "Property {item} in $select not found"
                            )));
                        };
                        if !self.expand.iter().any(|e| e == nav) {
                            return Err(ODataError::bad_request(format!(
                                "Navigation property {nav} in $select must also be in $expand"
                            )));
                        }
                        if prop != "*" && n.target.def().prop(prop).is_none() {
                            return Err(ODataError::bad_request(format!(
                                "Property {item} in $select not found"
                            )));
                        }
                    }
                    None => {
                        if def.prop(item).is_none() && def.nav(item).is_none() {
                            return Err(ODataError::bad_request(format!(
                                "Property {item} in $select not found in type {}",
                                def.type_name
                            )));
                        }
                    }
                }
            }
        }
        for (prop, _) in &self.orderby {
            if def.prop(prop).is_none() {
                return Err(ODataError::bad_request(format!(
                    "Property {prop} in $orderby not found in type {}",
                    def.type_name
                )));
            }
        }
        self.filter
            .as_deref()
            .map(|f| filter::parse(f, def, allow_ne))
            .transpose()
    }

    /// Query string for the next page: every option as received, with a new `$skiptoken`.
    pub(crate) fn next_query(&self, skiptoken: usize) -> String {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in self.pairs.iter().filter(|(k, _)| k != "$skiptoken") {
            ser.append_pair(k, v);
        }
        ser.append_pair("$skiptoken", &skiptoken.to_string());
        // Keep `$` readable as tenants print it; '%24' would be equally valid.
        ser.finish().replace("%24", "$")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::model::SetId;

    #[test]
    fn parses_and_validates_options() {
        let o = QueryOptions::parse(Some(
            "$filter=LastName%20eq%20'O''Brien'&$select=EmployeeID,EmployeeUserBusinessRoleAssignment/BusinessRoleID&$expand=EmployeeUserBusinessRoleAssignment&$top=5&$skip=2&$inlinecount=allpages&$format=json&$orderby=LastName desc,FirstName&sap-label=true",
        ))
        .unwrap();
        assert_eq!(o.top, Some(5));
        assert_eq!(o.skip, 2);
        assert!(o.inlinecount);
        assert_eq!(o.format, Some(Format::Json));
        assert_eq!(
            o.orderby,
            vec![("LastName".into(), true), ("FirstName".into(), false)]
        );
        assert!(o.validate(SetId::Employee.def(), false).unwrap().is_some());
        let next = o.next_query(1001);
        assert!(next.contains("$skiptoken=1001"), "{next}");
        assert!(
            next.contains("$filter=LastName+eq+%27O%27%27Brien%27"),
            "{next}"
        );
    }

    #[test]
    fn refuses_bad_options() {
        assert!(QueryOptions::parse(Some("$top=x")).is_err());
        assert!(QueryOptions::parse(Some("$foo=1")).is_err());
        assert!(QueryOptions::parse(Some("$top=1&$top=2")).is_err());
        assert!(QueryOptions::parse(Some("$inlinecount=some")).is_err());
        assert!(QueryOptions::parse(Some("$format=csv")).is_err());
        let e = SetId::Employee.def();
        for q in [
            "$select=UserName",
            "$expand=Manager",
            "$select=EmployeeUserBusinessRoleAssignment/BusinessRoleID",
            "$orderby=Nope",
            "$expand=BusinessUser/X",
        ] {
            let o = QueryOptions::parse(Some(q)).unwrap();
            assert!(o.validate(e, false).is_err(), "{q}");
        }
    }
}
