//! `$metadata`: an EDMX document generated from the same model the simulator enforces.

use std::fmt::Write as _;

use super::model::{EdmType, EntityDef, NavDef, NavKind, SetId};
use super::render::{NAMESPACE, XML_DECL};

fn association_name(from: &EntityDef, nav: &NavDef) -> String {
    format!("{}_{}", from.type_name, nav.name)
}

fn role_names(from: &EntityDef, nav: &NavDef) -> (String, String) {
    let to = nav.target.def();
    if to.type_name == from.type_name {
        (
            format!("{}_From", from.type_name),
            format!("{}_To", nav.name),
        )
    } else {
        (from.type_name.to_owned(), nav.name.to_owned())
    }
}

fn multiplicities(nav: &NavDef) -> (&'static str, &'static str) {
    match nav.kind {
        NavKind::Children => ("1", "*"),
        NavKind::BusinessUserOfEmployee => ("1", "0..1"),
        NavKind::ParentEmployee => ("*", "1"),
    }
}

fn b(v: bool) -> &'static str {
    if v { "true" } else { "false" }
}

/// Entity sets whose types are named in `$metadata?$filter=Employee,BusinessUser`, plus the sets
/// their navigations reach (SAP: "only those entity types plus their dependents").
pub(crate) fn sets_for_filter(type_names: &str) -> Vec<SetId> {
    let mut wanted: Vec<SetId> = SetId::ALL
        .into_iter()
        .filter(|s| type_names.split(',').any(|n| n.trim() == s.def().type_name))
        .collect();
    for s in wanted.clone() {
        for nav in &s.def().navs {
            if !wanted.contains(&nav.target) {
                wanted.push(nav.target);
            }
        }
    }
    SetId::ALL
        .into_iter()
        .filter(|s| wanted.contains(s))
        .collect()
}

/// The EDMX document; every property carries the annotations the simulator enforces.
pub(crate) fn edmx() -> String {
    edmx_for(&SetId::ALL)
}

/// The EDMX document restricted to `sets` (navigations to other sets are left out).
pub(crate) fn edmx_for(sets: &[SetId]) -> String {
    let mut out = String::with_capacity(64 * 1024);
    out.push_str(XML_DECL);
    out.push_str("<edmx:Edmx Version=\"1.0\" xmlns:edmx=\"http://schemas.microsoft.com/ado/2007/06/edmx\" xmlns:m=\"http://schemas.microsoft.com/ado/2007/08/dataservices/metadata\" xmlns:sap=\"http://www.sap.com/Protocols/SAPData\"><edmx:DataServices m:DataServiceVersion=\"2.0\">");
    let _ = write!(
        out,
        "<Schema Namespace=\"{NAMESPACE}\" xml:lang=\"en\" sap:schema-version=\"1\" xmlns=\"http://schemas.microsoft.com/ado/2008/09/edm\">"
    );
    for &set in sets {
        let def = set.def();
        let _ = write!(out, "<EntityType Name=\"{}\"", def.type_name);
        if def.key_name == "Code" {
            out.push_str(" sap:semantics=\"fixed-values\"");
        }
        let _ = write!(out, "><Key><PropertyRef Name=\"{}\"/></Key>", def.key_name);
        for p in &def.props {
            let _ = write!(
                out,
                "<Property Name=\"{}\" Type=\"{}\" Nullable=\"{}\"",
                p.name,
                p.ty.edm_name(),
                b(p.nullable)
            );
            match p.ty {
                EdmType::String(Some(max)) => {
                    let _ = write!(out, " MaxLength=\"{max}\"");
                    if p.key {
                        out.push_str(" FixedLength=\"true\"");
                    }
                }
                EdmType::DateTimeOffset => out.push_str(" Precision=\"7\""),
                EdmType::DateTime if p.date_only => {
                    out.push_str(" Precision=\"0\" sap:display-format=\"Date\"")
                }
                _ => {}
            }
            if p.etag {
                out.push_str(" ConcurrencyMode=\"Fixed\"");
            }
            let _ = write!(
                out,
                " sap:creatable=\"{}\" sap:updatable=\"{}\" sap:filterable=\"{}\"",
                b(p.creatable),
                b(p.updatable),
                b(p.filterable)
            );
            if let Some(text) = def.props.iter().find(|t| t.text_of == Some(p.name)) {
                let _ = write!(out, " sap:text=\"{}\"", text.name);
            }
            out.push_str("/>");
        }
        for nav in def.navs.iter().filter(|n| sets.contains(&n.target)) {
            let (from_role, to_role) = role_names(def, nav);
            let _ = write!(
                out,
                "<NavigationProperty Name=\"{}\" Relationship=\"{NAMESPACE}.{}\" FromRole=\"{from_role}\" ToRole=\"{to_role}\"/>",
                nav.name,
                association_name(def, nav)
            );
        }
        out.push_str("</EntityType>");
    }
    for &set in sets {
        let def = set.def();
        for nav in def.navs.iter().filter(|n| sets.contains(&n.target)) {
            let (from_role, to_role) = role_names(def, nav);
            let (from_mult, to_mult) = multiplicities(nav);
            let _ = write!(
                out,
                "<Association Name=\"{}\"><End Type=\"{NAMESPACE}.{}\" Multiplicity=\"{from_mult}\" Role=\"{from_role}\"/><End Type=\"{NAMESPACE}.{}\" Multiplicity=\"{to_mult}\" Role=\"{to_role}\"/></Association>",
                association_name(def, nav),
                def.type_name,
                nav.target.def().type_name
            );
        }
    }
    let _ = write!(
        out,
        "<EntityContainer Name=\"{NAMESPACE}_Entities\" m:IsDefaultEntityContainer=\"true\">"
    );
    for &set in sets {
        let def = set.def();
        let _ = write!(
            out,
            "<EntitySet Name=\"{}\" EntityType=\"{NAMESPACE}.{}\" sap:creatable=\"{}\" sap:updatable=\"{}\" sap:deletable=\"{}\" sap:content-version=\"1\"/>",
            def.set_name,
            def.type_name,
            b(def.creatable),
            b(def.updatable),
            b(def.deletable)
        );
    }
    for &set in sets {
        let def = set.def();
        for nav in def.navs.iter().filter(|n| sets.contains(&n.target)) {
            let (from_role, to_role) = role_names(def, nav);
            let _ = write!(
                out,
                "<AssociationSet Name=\"{}\" Association=\"{NAMESPACE}.{}\" sap:creatable=\"false\" sap:updatable=\"false\" sap:deletable=\"false\"><End EntitySet=\"{}\" Role=\"{from_role}\"/><End EntitySet=\"{}\" Role=\"{to_role}\"/></AssociationSet>",
                association_name(def, nav),
                association_name(def, nav),
                def.set_name,
                nav.target.def().set_name
            );
        }
    }
    out.push_str("</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_well_formed_and_carries_the_annotations() {
        let doc = edmx();
        let mut reader = quick_xml::Reader::from_str(&doc);
        let mut depth = 0i32;
        loop {
            match reader.read_event() {
                Ok(quick_xml::events::Event::Start(_)) => depth += 1,
                Ok(quick_xml::events::Event::End(_)) => depth -= 1,
                Ok(quick_xml::events::Event::Eof) => break,
                Ok(_) => {}
                Err(e) => panic!("not well-formed: {e}"),
            }
        }
        assert_eq!(depth, 0);
        assert!(doc.contains("<EntitySet Name=\"EmployeeCollection\" EntityType=\"c4codataapi.Employee\" sap:creatable=\"true\" sap:updatable=\"true\" sap:deletable=\"false\""));
        assert!(doc.contains("<Property Name=\"ETag\" Type=\"Edm.DateTimeOffset\" Nullable=\"true\" Precision=\"7\" ConcurrencyMode=\"Fixed\" sap:creatable=\"false\" sap:updatable=\"false\" sap:filterable=\"false\"/>"));
        assert!(doc.contains(
            "<Property Name=\"UserID\" Type=\"Edm.String\" Nullable=\"true\" MaxLength=\"40\""
        ));
        assert!(doc.contains(
            "<Property Name=\"FirstName\" Type=\"Edm.String\" Nullable=\"false\" MaxLength=\"40\""
        ));
        assert!(doc.contains("Name=\"EmployeeUserBusinessRoleAssignmentCollection\" EntityType=\"c4codataapi.EmployeeUserBusinessRoleAssignment\" sap:creatable=\"true\" sap:updatable=\"true\" sap:deletable=\"true\""));
        assert!(doc.contains("<NavigationProperty Name=\"EmployeeUserBusinessRoleAssignment\""));
        assert!(!doc.contains("\"UserName\""));
        assert!(!doc.contains("\"Department\""));
    }

    #[test]
    fn filtered_metadata_keeps_types_and_dependents() {
        let sets = sets_for_filter("BusinessUser");
        assert_eq!(sets, vec![SetId::BusinessUser]);
        let sets = sets_for_filter("Employee");
        assert!(sets.contains(&SetId::RoleAssignment) && sets.contains(&SetId::BusinessUser));
        assert!(!sets.contains(&SetId::CorporateAccount));
        let doc = edmx_for(&sets_for_filter("BusinessUser"));
        assert!(doc.contains("<EntityType Name=\"BusinessUser\">"));
        assert!(!doc.contains("<EntityType Name=\"Employee\">"));
        assert!(!doc.contains("<Association "));
    }
}
