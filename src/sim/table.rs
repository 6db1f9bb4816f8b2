//! One entity set of the simulated tenant: rows in insertion order (the tenant's default order),
//! with secondary indexes on the fields that its uniqueness checks and child navigation look up.
//!
//! The maps are persistent (structurally shared, `imbl`): a `$batch` changeset snapshots the whole
//! database for its rollback, and an initial load makes one changeset per user, so the snapshot
//! must cost O(1), not a copy of every row. The indexes turn the per-insert uniqueness checks
//! (EmployeeID, UserID, one role per employee) from scans of every row into lookups, as a real
//! tenant's database does.

use imbl::{HashMap, OrdMap, OrdSet};

use super::filter::{Expr, Op};
use super::store::Row;
use super::values::Val;

#[derive(Clone, Default)]
pub(crate) struct Table {
    /// Insertion sequence → (key, row); an update keeps the row's place.
    order: OrdMap<u64, (String, Row)>,
    seq_of: HashMap<String, u64>,
    next_seq: u64,
    indexed_fields: &'static [&'static str],
    /// Field → value (ASCII-lowercased) → sequences of the rows holding it.
    index: HashMap<&'static str, HashMap<String, OrdSet<u64>>>,
}

/// Index key of a value: string values only, ASCII case folded (C4C compares user IDs without
/// case; callers re-check the exact value where case matters).
fn index_key(v: &Val) -> Option<String> {
    v.as_str().map(str::to_ascii_lowercase)
}

impl Table {
    pub(crate) fn with_indexes(indexed_fields: &'static [&'static str]) -> Self {
        Table {
            indexed_fields,
            ..Table::default()
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Row> {
        let seq = self.seq_of.get(key)?;
        self.order.get(seq).map(|(_, row)| row)
    }

    /// Rows in the tenant's default order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &Row> + '_ {
        self.order.values().map(|(_, row)| row)
    }

    /// (key, row) pairs in the tenant's default order.
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &Row)> + '_ {
        self.order.values().map(|(key, row)| (key.as_str(), row))
    }

    /// Rows whose indexed `field` equals `value` ignoring ASCII case, in default order. Callers
    /// that need an exact match filter again. Panics in debug builds if `field` is not indexed
    /// (a programming error: the scan it would hide is what this type exists to avoid).
    pub(crate) fn find_by<'a>(
        &'a self,
        field: &'static str,
        value: &Val,
    ) -> impl Iterator<Item = (&'a str, &'a Row)> + 'a {
        debug_assert!(
            self.indexed_fields.contains(&field),
            "{field} is not indexed"
        );
        let seqs = index_key(value)
            .and_then(|k| self.index.get(field).and_then(|by_value| by_value.get(&k)))
            .cloned()
            .unwrap_or_default();
        seqs.into_iter()
            .filter_map(move |seq| self.order.get(&seq).map(|(key, row)| (key.as_str(), row)))
    }

    /// The rows that can match `expr` when it is `field eq v` or a disjunction of such terms on
    /// indexed fields without wildcards (what a lookup by business key sends): a superset, in default order, that
    /// the caller still filters with `expr`. `None` for any other shape (scan every row).
    pub(crate) fn candidates(&self, expr: &Expr) -> Option<Vec<Row>> {
        fn terms<'e>(expr: &'e Expr, out: &mut Vec<(&'static str, &'e Val)>) -> bool {
            match expr {
                Expr::Or(a, b) => terms(a, out) && terms(b, out),
                Expr::Cmp {
                    prop,
                    op: Op::Eq,
                    value: Some(value),
                } => {
                    out.push((prop, value));
                    true
                }
                _ => false,
            }
        }
        let mut wanted = Vec::new();
        if !terms(expr, &mut wanted)
            || wanted.iter().any(|(field, value)| {
                // C4C's `eq` with `*` is a pattern match, which no index answers.
                !self.indexed_fields.contains(field)
                    || value.as_str().is_none_or(|text| text.contains('*'))
            })
        {
            return None;
        }
        let mut seqs: Vec<u64> = wanted
            .iter()
            .filter_map(|(field, value)| {
                let by_value = self.index.get(*field)?;
                by_value.get(&index_key(value)?)
            })
            .flat_map(|seqs| seqs.iter().copied())
            .collect();
        seqs.sort_unstable();
        seqs.dedup();
        Some(
            seqs.into_iter()
                .filter_map(|seq| self.order.get(&seq).map(|(_, row)| row.clone()))
                .collect(),
        )
    }

    /// Inserts or replaces the row under `key`; a replaced row keeps its place in the order.
    pub(crate) fn insert(&mut self, key: String, row: Row) {
        let seq = match self.seq_of.get(&key) {
            Some(&seq) => {
                if let Some((_, old)) = self.order.get(&seq).cloned() {
                    self.unindex(seq, &old);
                }
                seq
            }
            None => {
                let seq = self.next_seq;
                self.next_seq += 1;
                self.seq_of.insert(key.clone(), seq);
                seq
            }
        };
        self.index_row(seq, &row);
        self.order.insert(seq, (key, row));
    }

    pub(crate) fn remove(&mut self, key: &str) -> Option<Row> {
        let seq = self.seq_of.remove(key)?;
        let (_, row) = self.order.remove(&seq)?;
        self.unindex(seq, &row);
        Some(row)
    }

    fn index_row(&mut self, seq: u64, row: &Row) {
        for &field in self.indexed_fields {
            if let Some(k) = row.get(field).and_then(index_key) {
                self.index
                    .entry(field)
                    .or_default()
                    .entry(k)
                    .or_default()
                    .insert(seq);
            }
        }
    }

    fn unindex(&mut self, seq: u64, row: &Row) {
        for &field in self.indexed_fields {
            let Some(k) = row.get(field).and_then(index_key) else {
                continue;
            };
            let Some(by_value) = self.index.get_mut(field) else {
                continue;
            };
            let now_empty = by_value.get_mut(&k).is_some_and(|seqs| {
                seqs.remove(&seq);
                seqs.is_empty()
            });
            if now_empty {
                by_value.remove(&k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::sim::values::Record;

    fn row(id: &str, user: &str) -> Row {
        let mut r = Record::new();
        r.insert("ObjectID", Val::Str(id.into()));
        r.insert("UserID", Val::Str(user.into()));
        Arc::new(r)
    }

    fn users_of(t: &Table, user: &str) -> Vec<String> {
        t.find_by("UserID", &Val::Str(user.into()))
            .map(|(k, _)| k.to_owned())
            .collect()
    }

    #[test]
    fn keeps_insertion_order_and_place_on_update() {
        let mut t = Table::with_indexes(&["UserID"]);
        t.insert("b".into(), row("b", "U1"));
        t.insert("a".into(), row("a", "U2"));
        t.insert("b".into(), row("b", "U3"));
        let keys: Vec<_> = t.iter().map(|(k, _)| k.to_owned()).collect();
        assert_eq!(keys, ["b", "a"]);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn index_follows_updates_and_removals_case_insensitively() {
        let mut t = Table::with_indexes(&["UserID"]);
        t.insert("1".into(), row("1", "Alice"));
        t.insert("2".into(), row("2", "ALICE"));
        assert_eq!(users_of(&t, "alice"), ["1", "2"]);
        t.insert("1".into(), row("1", "bob"));
        assert_eq!(users_of(&t, "alice"), ["2"]);
        assert_eq!(users_of(&t, "BOB"), ["1"]);
        t.remove("2");
        assert!(users_of(&t, "alice").is_empty());
        assert!(t.get("2").is_none());
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn candidates_of_a_disjunction_on_an_indexed_field_come_in_table_order() {
        let mut t = Table::with_indexes(&["UserID"]);
        for (id, user) in [("1", "a"), ("2", "b"), ("3", "c"), ("4", "B")] {
            t.insert(id.into(), row(id, user));
        }
        let eq = |user: &str| Expr::Cmp {
            prop: "UserID",
            op: Op::Eq,
            value: Some(Val::Str(user.into())),
        };
        let either = Expr::Or(Box::new(eq("c")), Box::new(eq("b")));
        let found: Vec<_> = t
            .candidates(&either)
            .unwrap()
            .iter()
            .map(|r| r.get("ObjectID").and_then(Val::as_str).unwrap().to_owned())
            .collect();
        assert_eq!(found, ["2", "3", "4"], "a superset (case folded), in order");
        let other = Expr::Cmp {
            prop: "UserID",
            op: Op::Ne,
            value: Some(Val::Str("c".into())),
        };
        assert!(t.candidates(&other).is_none());
        let unindexed = Expr::Cmp {
            prop: "LastName",
            op: Op::Eq,
            value: Some(Val::Str("c".into())),
        };
        assert!(t.candidates(&unindexed).is_none());
    }

    #[test]
    fn a_snapshot_is_unaffected_by_later_writes() {
        let mut t = Table::with_indexes(&["UserID"]);
        t.insert("1".into(), row("1", "alice"));
        let snapshot = t.clone();
        t.insert("2".into(), row("2", "bob"));
        t.remove("1");
        assert_eq!(snapshot.len(), 1);
        assert_eq!(users_of(&snapshot, "alice"), ["1"]);
        assert!(users_of(&snapshot, "bob").is_empty());
    }
}
