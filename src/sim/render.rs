//! Response bodies: OData v2 verbose JSON (`d`, `d.results`, `__metadata`, `__deferred`) and Atom.

use std::collections::{BTreeMap, BTreeSet};

use quick_xml::escape::escape;
use serde_json::json;

use super::model::{EntityDef, PropDef, SetId, code_text};
use super::store::{Db, Row};
use super::values::{Record, Val, dto_text};

pub(crate) const NAMESPACE: &str = "c4codataapi";

/// What `$select` asks for at one level.
#[derive(Clone, Debug, Default)]
pub(crate) struct Selection {
    /// `None` = every property.
    pub props: Option<BTreeSet<String>>,
    /// Navigations to expand, each with its own selection.
    pub expand: BTreeMap<String, Selection>,
    /// Navigations named in `$select` without `$expand` (rendered deferred).
    pub deferred_navs: BTreeSet<String>,
}

impl Selection {
    pub(crate) fn new(select: Option<&[String]>, expand: &[String]) -> Self {
        let mut s = Selection::default();
        for nav in expand {
            s.expand.insert(nav.clone(), Selection::default());
        }
        let Some(items) = select else { return s };
        if items.iter().any(|i| i == "*") {
            return s;
        }
        let mut props = BTreeSet::new();
        for item in items {
            match item.split_once('/') {
                Some((nav, prop)) => {
                    if let Some(sub) = s.expand.get_mut(nav)
                        && prop != "*"
                    {
                        sub.props
                            .get_or_insert_with(BTreeSet::new)
                            .insert(prop.to_owned());
                    }
                }
                None => {
                    if s.expand.contains_key(item) {
                        continue;
                    }
                    props.insert(item.clone());
                    s.deferred_navs.insert(item.clone());
                }
            }
        }
        s.props = Some(props);
        s
    }

    fn wants(&self, name: &str) -> bool {
        self.props.as_ref().is_none_or(|p| p.contains(name))
    }

    fn wants_nav(&self, name: &str) -> bool {
        self.props.is_none() || self.deferred_navs.contains(name) || self.expand.contains_key(name)
    }
}

pub(crate) struct Renderer<'a> {
    /// Service root without trailing slash.
    pub base: &'a str,
    pub db: &'a Db,
    pub no_codedescs: bool,
}

pub(crate) fn key_predicate(def: &EntityDef, rec: &Record) -> String {
    let key = rec
        .get(def.key_name)
        .and_then(Val::as_str)
        .unwrap_or_default();
    format!("{}('{}')", def.set_name, key.replace('\'', "''"))
}

fn text_value(p: &PropDef, rec: &Record) -> Option<Val> {
    let code = rec.get(p.text_of?)?.as_str()?;
    code_text(p.text_list?, code).map(|t| Val::Str(t.to_owned()))
}

/// Writes a JSON string (quoted and escaped).
fn write_str(out: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn write_val(out: &mut Vec<u8>, v: Option<&Val>) {
    match v {
        None => out.extend_from_slice(b"null"),
        Some(Val::Str(s) | Val::Guid(s)) => write_str(out, s),
        Some(Val::Bool(true)) => out.extend_from_slice(b"true"),
        Some(Val::Bool(false)) => out.extend_from_slice(b"false"),
        Some(Val::DateTime(d) | Val::Dto(d)) => {
            out.extend_from_slice(format!("\"/Date({})/\"", d.timestamp_millis()).as_bytes())
        }
    }
}

impl Renderer<'_> {
    fn value_of(&self, p: &PropDef, rec: &Record) -> Option<Val> {
        if p.text_of.is_some() {
            text_value(p, rec)
        } else {
            rec.get(p.name).cloned()
        }
    }

    fn props<'d>(
        &self,
        def: &'d EntityDef,
        sel: &'d Selection,
    ) -> impl Iterator<Item = &'d PropDef> + 'd {
        let skip_texts = self.no_codedescs;
        def.props
            .iter()
            .filter(move |p| sel.wants(p.name) && !(skip_texts && p.text_of.is_some()))
    }

    /// Writes one entity in verbose JSON, straight into `out` (no intermediate `Value`: this is
    /// the hot path of every read).
    pub(crate) fn write_entity(&self, out: &mut Vec<u8>, set: SetId, rec: &Row, sel: &Selection) {
        let def = set.def();
        let uri = format!("{}/{}", self.base, key_predicate(def, rec));
        out.extend_from_slice(b"{\"__metadata\":{\"uri\":");
        write_str(out, &uri);
        out.extend_from_slice(format!(",\"type\":\"{NAMESPACE}.{}\"", def.type_name).as_bytes());
        if let Some(etag) = Db::etag_of(rec) {
            out.extend_from_slice(b",\"etag\":");
            write_str(out, &etag);
        }
        out.push(b'}');
        for p in self.props(def, sel) {
            // Property names are plain ASCII identifiers: no escaping needed.
            out.extend_from_slice(b",\"");
            out.extend_from_slice(p.name.as_bytes());
            out.extend_from_slice(b"\":");
            if p.text_of.is_some() {
                write_val(out, text_value(p, rec).as_ref());
            } else {
                write_val(out, rec.get(p.name));
            }
        }
        for nav in def.navs.iter().filter(|n| sel.wants_nav(n.name)) {
            out.push(b',');
            write_str(out, nav.name);
            out.push(b':');
            match sel.expand.get(nav.name) {
                Some(sub) => {
                    let targets = self.db.navigate(set, rec, nav.name);
                    if nav.many {
                        out.extend_from_slice(b"{\"results\":[");
                        for (i, t) in targets.iter().enumerate() {
                            if i > 0 {
                                out.push(b',');
                            }
                            self.write_entity(out, nav.target, t, sub);
                        }
                        out.extend_from_slice(b"]}");
                    } else {
                        match targets.first() {
                            Some(t) => self.write_entity(out, nav.target, t, sub),
                            None => out.extend_from_slice(b"null"),
                        }
                    }
                }
                None => {
                    out.extend_from_slice(b"{\"__deferred\":{\"uri\":");
                    write_str(out, &format!("{uri}/{}", nav.name));
                    out.extend_from_slice(b"}}");
                }
            }
        }
        out.push(b'}');
    }

    /// `{"d":{…entity…}}`
    pub(crate) fn entity_document(&self, set: SetId, rec: &Row, sel: &Selection) -> Vec<u8> {
        let mut out = Vec::with_capacity(4096);
        out.extend_from_slice(b"{\"d\":");
        self.write_entity(&mut out, set, rec, sel);
        out.push(b'}');
        out
    }

    /// `{"d":{"__count":"N","results":[…],"__next":"…"}}`
    pub(crate) fn collection_document(
        &self,
        set: SetId,
        rows: &[Row],
        sel: &Selection,
        count: Option<usize>,
        next: Option<&str>,
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(512 + rows.len() * 4096);
        out.extend_from_slice(b"{\"d\":{");
        if let Some(c) = count {
            out.extend_from_slice(format!("\"__count\":\"{c}\",").as_bytes());
        }
        out.extend_from_slice(b"\"results\":[");
        for (i, r) in rows.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            self.write_entity(&mut out, set, r, sel);
        }
        out.push(b']');
        if let Some(n) = next {
            out.extend_from_slice(b",\"__next\":");
            write_str(&mut out, n);
        }
        out.extend_from_slice(b"}}");
        out
    }

    pub(crate) fn entry_atom(
        &self,
        set: SetId,
        rec: &Row,
        sel: &Selection,
        top_level: bool,
    ) -> String {
        let def = set.def();
        let pred = key_predicate(def, rec);
        let id = format!("{}/{pred}", self.base);
        let mut out = String::with_capacity(2048);
        out.push_str("<entry");
        if top_level {
            out.push_str(ATOM_NS);
        }
        if let Some(etag) = Db::etag_of(rec) {
            out.push_str(&format!(" m:etag=\"{}\"", escape(etag.as_str())));
        }
        out.push('>');
        let updated = match rec.get("EntityLastChangedOn") {
            Some(Val::Dto(d)) => dto_text(d),
            _ => "1970-01-01T00:00:00Z".into(),
        };
        out.push_str(&format!(
            "<id>{}</id><title type=\"text\">{}</title><updated>{updated}</updated><category term=\"{NAMESPACE}.{}\" scheme=\"http://schemas.microsoft.com/ado/2007/08/dataservices/scheme\"/><link href=\"{}\" rel=\"edit\" title=\"{}\"/>",
            escape(id.as_str()),
            escape(pred.as_str()),
            def.type_name,
            escape(pred.as_str()),
            def.type_name
        ));
        for nav in def.navs.iter().filter(|n| sel.wants_nav(n.name)) {
            let kind = if nav.many { "feed" } else { "entry" };
            out.push_str(&format!(
                "<link href=\"{}/{}\" rel=\"http://schemas.microsoft.com/ado/2007/08/dataservices/related/{}\" type=\"application/atom+xml;type={kind}\" title=\"{}\">",
                escape(pred.as_str()),
                nav.name,
                nav.name,
                nav.name
            ));
            if let Some(sub) = sel.expand.get(nav.name) {
                let targets = self.db.navigate(set, rec, nav.name);
                out.push_str("<m:inline>");
                if nav.many {
                    out.push_str(&self.feed_atom(nav.target, &targets, sub, None, None, false));
                } else if let Some(t) = targets.first() {
                    out.push_str(&self.entry_atom(nav.target, t, sub, false));
                }
                out.push_str("</m:inline>");
            }
            out.push_str("</link>");
        }
        out.push_str("<content type=\"application/xml\"><m:properties>");
        for p in self.props(def, sel) {
            out.push_str(&prop_atom(p, self.value_of(p, rec).as_ref()));
        }
        out.push_str("</m:properties></content></entry>");
        out
    }

    pub(crate) fn feed_atom(
        &self,
        set: SetId,
        rows: &[Row],
        sel: &Selection,
        count: Option<usize>,
        next: Option<&str>,
        top_level: bool,
    ) -> String {
        let def = set.def();
        let mut out = String::with_capacity(rows.len() * 2048 + 512);
        out.push_str("<feed");
        if top_level {
            out.push_str(ATOM_NS);
        }
        out.push_str(&format!(
            "><id>{}/{}</id><title type=\"text\">{}</title><updated>{}</updated><author><name/></author><link href=\"{}\" rel=\"self\" title=\"{}\"/>",
            escape(self.base),
            def.set_name,
            def.set_name,
            dto_text(&chrono::Utc::now()),
            def.set_name,
            def.set_name
        ));
        if let Some(c) = count {
            out.push_str(&format!("<m:count>{c}</m:count>"));
        }
        for r in rows {
            out.push_str(&self.entry_atom(set, r, sel, false));
        }
        if let Some(n) = next {
            out.push_str(&format!("<link href=\"{}\" rel=\"next\"/>", escape(n)));
        }
        out.push_str("</feed>");
        out
    }
}

const ATOM_NS: &str = " xmlns=\"http://www.w3.org/2005/Atom\" xmlns:m=\"http://schemas.microsoft.com/ado/2007/08/dataservices/metadata\" xmlns:d=\"http://schemas.microsoft.com/ado/2007/08/dataservices\"";

fn prop_atom(p: &PropDef, v: Option<&Val>) -> String {
    let ty = match p.ty {
        super::model::EdmType::String(_) => String::new(),
        other => format!(" m:type=\"{}\"", other.edm_name()),
    };
    match v {
        None => format!("<d:{}{ty} m:null=\"true\"/>", p.name),
        Some(v) => format!(
            "<d:{n}{ty}>{}</d:{n}>",
            escape(v.atom_text().as_str()),
            n = p.name
        ),
    }
}

pub(crate) const XML_DECL: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>";

/// The service document (`GET …/c4codataapi/`).
pub(crate) fn service_document(base: &str, json: bool) -> String {
    let names: Vec<&str> = SetId::ALL.iter().map(|s| s.def().set_name).collect();
    if json {
        return json!({"d": {"EntitySets": names}}).to_string();
    }
    let mut out = format!(
        "{XML_DECL}<app:service xml:base=\"{}/\" xmlns:app=\"http://www.w3.org/2007/app\" xmlns:atom=\"http://www.w3.org/2005/Atom\"><app:workspace><atom:title type=\"text\">Data</atom:title>",
        escape(base)
    );
    for n in names {
        out.push_str(&format!(
            "<app:collection href=\"{n}\"><atom:title type=\"text\">{n}</atom:title></app:collection>"
        ));
    }
    out.push_str("</app:workspace></app:service>");
    out
}
