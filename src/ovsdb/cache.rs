//! A monitor cache: tables of rows kept current by `update` and `update2`
//! notifications, applied as a pure function.
//!
//! `update` (RFC 7047 4.1.6) carries `old`/`new` rows, `new` holding every
//! monitored column. `update2` (the `monitor_cond` extension, RFC 7047bis)
//! carries `initial`, `insert`, `delete` or `modify`; a `modify` holds only
//! changed columns as a *diff*: for a column of at most one element (not a
//! map), the new value (`["set",[]]` when cleared); for a set, the elements to toggle (symmetric difference); for a
//! map, pairs to toggle (a key not present is added, a key present with the
//! same value is removed, a key present with another value is replaced).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::Deserializer;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

use super::notation::{Atom, Datum, NotationError, Row, RowSeed, Uuid, row_from_json};
use super::schema::DatabaseSchema;

/// What happened to one row.
#[derive(Debug, Clone, PartialEq)]
pub enum RowUpdate {
    /// `update`: `old` (changed columns, before) and `new` (all columns, after).
    /// No `new`: deleted; no `old`: inserted or initial.
    Update { old: Option<Row>, new: Option<Row> },
    /// `update2` `initial`: present when the monitor started.
    Initial(Row),
    /// `update2` `insert`.
    Insert(Row),
    /// `update2` `modify`: changed columns as diffs.
    Modify(Row),
    /// `update2` `delete`.
    Delete,
}

/// The `<table-updates>` or `<table-updates2>` of one notification or one
/// monitor reply: table name to row UUID to change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableUpdates(pub BTreeMap<String, BTreeMap<Uuid, RowUpdate>>);

fn obj<'a>(v: &'a Value, what: &str) -> Result<&'a serde_json::Map<String, Value>, NotationError> {
    v.as_object().ok_or_else(|| NotationError(format!("{what} is not an object: {v}")))
}

impl TableUpdates {
    /// Parses `update`'s `<table-updates>` (also `monitor`'s reply).
    pub fn from_update(v: &Value) -> Result<Self, NotationError> {
        Self::parse(v, |u| {
            let u = obj(u, "row update")?;
            let old = u.get("old").map(row_from_json).transpose()?;
            let new = u.get("new").map(row_from_json).transpose()?;
            Ok(RowUpdate::Update { old, new })
        })
    }

    /// Parses `update2`'s `<table-updates2>` (also `monitor_cond`'s reply).
    pub fn from_update2(v: &Value) -> Result<Self, NotationError> {
        Self::parse(v, |u| {
            let u = obj(u, "row update2")?;
            if u.len() > 1 {
                return Err(NotationError("row update2 with more than one member".into()));
            }
            let (kind, row) = u.iter().next().ok_or_else(|| NotationError("empty row update2".into()))?;
            Ok(match kind.as_str() {
                "initial" => RowUpdate::Initial(row_from_json(row)?),
                "insert" => RowUpdate::Insert(row_from_json(row)?),
                "modify" => RowUpdate::Modify(row_from_json(row)?),
                "delete" => RowUpdate::Delete,
                other => return Err(NotationError(format!("unknown row update2 {other:?}"))),
            })
        })
    }

    fn parse(
        v: &Value,
        row_update: impl Fn(&Value) -> Result<RowUpdate, NotationError>,
    ) -> Result<Self, NotationError> {
        let mut out = BTreeMap::new();
        for (table, rows) in obj(v, "table updates")? {
            let mut t = BTreeMap::new();
            for (uuid, u) in obj(rows, "table update")? {
                // Two spellings of one UUID (upper and lower case).
                if t.insert(Uuid::parse(uuid)?, row_update(u)?).is_some() {
                    return Err(NotationError(format!("row {uuid} appears twice in table {table}")));
                }
            }
            out.insert(table.clone(), t);
        }
        Ok(TableUpdates(out))
    }

    /// Parses `update2`'s `<table-updates2>` (also `monitor_cond`'s reply,
    /// and the last member of `update3`) straight from its JSON text, into
    /// rows, without a [`Value`] tree: what [`TableUpdates::from_update2`]
    /// gives for the same JSON, except that a member named twice in one
    /// object is refused (the `Value` path keeps the last).
    pub fn from_update2_slice(json: &[u8]) -> Result<Self, NotationError> {
        Self::from_slice(json, true)
    }

    /// Parses `update`'s `<table-updates>` (also `monitor`'s reply) straight
    /// from its JSON text; see [`TableUpdates::from_update2_slice`].
    pub fn from_update_slice(json: &[u8]) -> Result<Self, NotationError> {
        Self::from_slice(json, false)
    }

    fn from_slice(json: &[u8], update2: bool) -> Result<Self, NotationError> {
        let mut de = serde_json::Deserializer::from_slice(json);
        let out = TableUpdatesSeed { update2 }.deserialize(&mut de).map_err(|e| NotationError(e.to_string()))?;
        de.end().map_err(|e| NotationError(e.to_string()))?;
        Ok(out)
    }

    /// Number of row changes.
    pub fn len(&self) -> usize {
        self.0.values().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Deserializes `<table-updates>` (`update2` false) or `<table-updates2>`
/// from any serde deserializer, rows straight into [`Datum`]s. Usable
/// inside a bigger document (e.g. as one element of a notification's
/// parameters) with `SeqAccess::next_element_seed`.
#[derive(Debug, Clone, Copy)]
pub struct TableUpdatesSeed {
    pub update2: bool,
}

impl<'de> DeserializeSeed<'de> for TableUpdatesSeed {
    type Value = TableUpdates;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<TableUpdates, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TableUpdatesSeed {
    type Value = TableUpdates;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("table updates (an object of tables)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TableUpdates, A::Error> {
        let mut out = BTreeMap::new();
        while let Some(table) = map.next_key::<String>()? {
            let rows = map.next_value_seed(TableUpdateSeed { update2: self.update2 })?;
            if out.contains_key(&table) {
                return Err(de::Error::custom(format!("table {table} appears twice")));
            }
            out.insert(table, rows);
        }
        Ok(TableUpdates(out))
    }
}

/// One table's `<table-update>`: row UUID to row update.
#[derive(Clone, Copy)]
struct TableUpdateSeed {
    update2: bool,
}

impl<'de> DeserializeSeed<'de> for TableUpdateSeed {
    type Value = BTreeMap<Uuid, RowUpdate>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TableUpdateSeed {
    type Value = BTreeMap<Uuid, RowUpdate>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a table update (an object of rows by UUID)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut rows = BTreeMap::new();
        while let Some(RowKey(uuid)) = map.next_key::<RowKey>()? {
            let u = match self.update2 {
                true => map.next_value_seed(RowUpdate2Seed)?,
                false => map.next_value_seed(RowUpdate1Seed)?,
            };
            if rows.insert(uuid, u).is_some() {
                return Err(de::Error::custom(format!("row {uuid} appears twice")));
            }
        }
        Ok(rows)
    }
}

/// A row's UUID as an object key, parsed without an allocation.
struct RowKey(Uuid);

impl<'de> de::Deserialize<'de> for RowKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RowKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a row UUID")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RowKey, E> {
                Uuid::parse(s).map(RowKey).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// `update`'s `<row-update>`: `{"old": row, "new": row}`, both optional.
struct RowUpdate1Seed;

impl<'de> DeserializeSeed<'de> for RowUpdate1Seed {
    type Value = RowUpdate;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RowUpdate, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowUpdate1Seed {
    type Value = RowUpdate;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a row update (an object with \"old\" and/or \"new\")")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RowUpdate, A::Error> {
        let (mut old, mut new) = (None, None);
        while let Some(key) = map.next_key::<Member>()? {
            let slot = match key {
                Member::Old => &mut old,
                Member::New => &mut new,
                // Other members are ignored, as the `Value` path does.
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            if slot.is_some() {
                return Err(de::Error::custom("a member appears twice in a row update"));
            }
            *slot = Some(map.next_value_seed(RowSeed)?);
        }
        Ok(RowUpdate::Update { old, new })
    }
}

/// `update2`'s `<row-update2>`: exactly one of `initial`, `insert`,
/// `modify` (each a row) or `delete`.
struct RowUpdate2Seed;

impl<'de> DeserializeSeed<'de> for RowUpdate2Seed {
    type Value = RowUpdate;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RowUpdate, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowUpdate2Seed {
    type Value = RowUpdate;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a row update2 (an object of one member)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RowUpdate, A::Error> {
        let Some(kind) = map.next_key::<Member>()? else {
            return Err(de::Error::custom("empty row update2"));
        };
        let u = match kind {
            Member::Initial => RowUpdate::Initial(map.next_value_seed(RowSeed)?),
            Member::Insert => RowUpdate::Insert(map.next_value_seed(RowSeed)?),
            Member::Modify => RowUpdate::Modify(map.next_value_seed(RowSeed)?),
            Member::Delete => {
                map.next_value::<IgnoredAny>()?;
                RowUpdate::Delete
            }
            Member::Old | Member::New | Member::Other(_) => {
                return Err(de::Error::custom(format!("unknown row update2 {:?}", kind.name())));
            }
        };
        if map.next_key::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom("row update2 with more than one member"));
        }
        Ok(u)
    }
}

/// A member name of a row update.
enum Member {
    Old,
    New,
    Initial,
    Insert,
    Modify,
    Delete,
    Other(String),
}

impl Member {
    fn name(&self) -> &str {
        match self {
            Member::Old => "old",
            Member::New => "new",
            Member::Initial => "initial",
            Member::Insert => "insert",
            Member::Modify => "modify",
            Member::Delete => "delete",
            Member::Other(s) => s,
        }
    }
}

impl<'de> de::Deserialize<'de> for Member {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Member;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Member, E> {
                Ok(match s {
                    "old" => Member::Old,
                    "new" => Member::New,
                    "initial" => Member::Initial,
                    "insert" => Member::Insert,
                    "modify" => Member::Modify,
                    "delete" => Member::Delete,
                    other => Member::Other(other.to_owned()),
                })
            }
        }
        d.deserialize_str(V)
    }
}

/// A cache problem: a diff for a row we do not have, or for a column whose
/// type we do not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("monitor cache: table {table}, row {uuid}: {message}")]
pub struct CacheError {
    pub table: String,
    pub uuid: Uuid,
    pub message: String,
}

/// Tables of rows as the monitors see them.
#[derive(Debug, Clone)]
pub struct Cache {
    schema: Arc<DatabaseSchema>,
    tables: BTreeMap<String, BTreeMap<Uuid, Row>>,
}

impl Cache {
    /// An empty cache for a database; the schema tells `modify` diffs of
    /// one-element columns from diffs of sets.
    pub fn new(schema: Arc<DatabaseSchema>) -> Self {
        Cache { schema, tables: BTreeMap::new() }
    }

    pub fn schema(&self) -> &DatabaseSchema {
        &self.schema
    }

    /// The rows of a table (empty if none).
    pub fn table(&self, name: &str) -> impl Iterator<Item = (&Uuid, &Row)> {
        self.tables.get(name).into_iter().flatten()
    }

    pub fn row(&self, table: &str, uuid: &Uuid) -> Option<&Row> {
        self.tables.get(table)?.get(uuid)
    }

    /// A column of a row, with the column's default when the row does not
    /// carry it (`update2` rows leave default-valued columns out).
    pub fn get(&self, table: &str, uuid: &Uuid, column: &str) -> Option<Datum> {
        let row = self.row(table, uuid)?;
        match row.get(column) {
            Some(d) => Some(d.clone()),
            None => Some(self.schema.tables.get(table)?.column_type(column)?.default_datum()),
        }
    }

    /// Every table with at least one row.
    pub fn tables(&self) -> &BTreeMap<String, BTreeMap<Uuid, Row>> {
        &self.tables
    }

    /// Drops everything (before applying a resync snapshot).
    pub fn clear(&mut self) {
        self.tables.clear();
    }

    /// Applies a raw `update` notification's table-updates.
    pub fn apply_update(&mut self, table_updates: &Value) -> Result<(), CacheError> {
        let u = TableUpdates::from_update(table_updates).map_err(Self::bad_json)?;
        self.apply(&u)
    }

    /// Applies a raw `update2` notification's table-updates2.
    pub fn apply_update2(&mut self, table_updates2: &Value) -> Result<(), CacheError> {
        let u = TableUpdates::from_update2(table_updates2).map_err(Self::bad_json)?;
        self.apply(&u)
    }

    fn bad_json(e: NotationError) -> CacheError {
        CacheError { table: String::new(), uuid: Uuid(uuid::Uuid::nil()), message: e.0 }
    }

    /// Applies parsed updates of either kind.
    pub fn apply(&mut self, updates: &TableUpdates) -> Result<(), CacheError> {
        for (tname, rows) in &updates.0 {
            for (uuid, change) in rows {
                self.apply_row(tname, *uuid, change.clone())?;
            }
        }
        Ok(())
    }

    /// Applies parsed updates of either kind, taking their rows instead of
    /// copying them: for a big initial snapshot, the rows parsed from the
    /// wire become the cache's rows, and no second copy is ever made.
    pub fn apply_owned(&mut self, updates: TableUpdates) -> Result<(), CacheError> {
        for (tname, rows) in updates.0 {
            for (uuid, change) in rows {
                self.apply_row(&tname, uuid, change)?;
            }
        }
        Ok(())
    }

    fn apply_row(&mut self, tname: &str, uuid: Uuid, change: RowUpdate) -> Result<(), CacheError> {
        let err = |m: String| CacheError { table: tname.to_owned(), uuid, message: m };
        // Look the table up by `&str` first: `entry` would allocate its
        // name once per row.
        if !self.tables.contains_key(tname) {
            self.tables.insert(tname.to_owned(), BTreeMap::new());
        }
        let Some(table) = self.tables.get_mut(tname) else { return Err(err("table vanished".into())) };
        match change {
            RowUpdate::Update { new: Some(new), .. } => {
                table.insert(uuid, new);
            }
            RowUpdate::Update { new: None, .. } | RowUpdate::Delete => {
                table.remove(&uuid);
            }
            RowUpdate::Initial(row) | RowUpdate::Insert(row) => {
                table.insert(uuid, row);
            }
            RowUpdate::Modify(diff) => {
                let tschema = self.schema.tables.get(tname).ok_or_else(|| err("table not in schema".into()))?;
                let row = table.get_mut(&uuid).ok_or_else(|| err("modify for a row not in the cache".into()))?;
                for (col, d) in diff {
                    let ty = tschema.column_type(&col).ok_or_else(|| err(format!("column {col} not in schema")))?;
                    let merged = match row.get(&col) {
                        _ if ty.is_single_valued() => d,
                        // Absent: at its default, which for a set or map
                        // that may be empty is empty, so the diff is the value.
                        None => apply_diff(&ty.default_datum(), &d, ty.is_map())
                            .map_err(|m| err(format!("column {col}: {m}")))?,
                        Some(old) => apply_diff(old, &d, ty.is_map()).map_err(|m| err(format!("column {col}: {m}")))?,
                    };
                    row.insert(col, merged);
                }
            }
        }
        if table.is_empty() {
            self.tables.remove(tname);
        }
        Ok(())
    }
}

/// Applies an `update2` diff to a set (`is_map` false) or map datum.
pub fn apply_diff(old: &Datum, diff: &Datum, is_map: bool) -> Result<Datum, String> {
    if !is_map {
        let o = old.as_set().ok_or("set diff against a map value")?;
        let d = diff.as_set().ok_or("map diff for a set column")?;
        // Symmetric difference of two sorted sets.
        let mut out: Vec<Atom> = o.iter().filter(|a| d.binary_search(a).is_err()).cloned().collect();
        out.extend(d.iter().filter(|a| o.binary_search(a).is_err()).cloned());
        return Ok(Datum::set(out));
    }
    let o = old.as_pairs().ok_or("map diff against a set value")?;
    let d = diff.as_pairs().ok_or("set diff for a map column")?;
    let mut m: BTreeMap<Atom, Atom> = o.iter().cloned().collect();
    for (k, v) in d {
        match m.get(k) {
            Some(cur) if cur == v => {
                m.remove(k);
            }
            _ => {
                m.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(Datum::Map(m.into_iter().collect()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Arc<DatabaseSchema> {
        Arc::new(
            DatabaseSchema::from_json(&json!({"name": "T", "tables": {"B": {"columns": {
                "name": {"type": "string"},
                "vlans": {"type": {"key": "integer", "min": 0, "max": 4096}},
                "ids": {"type": {"key": "string", "value": "string", "min": 0, "max": "unlimited"}},
                "mode": {"type": {"key": "string", "min": 0, "max": 1}}
            }}}}))
            .expect("schema"),
        )
    }

    const U: &str = "11111111-2222-4333-8444-555555555555";

    #[test]
    fn update2_modify_applies_diffs() {
        let mut c = Cache::new(schema());
        c.apply_update2(&json!({"B": {U: {"initial": {"name": "a", "vlans": ["set", [1, 2]], "ids": ["map", [["k", "v"], ["x", "1"]]], "mode": "m"}}}}))
            .expect("initial");
        c.apply_update2(&json!({"B": {U: {"modify": {
            "name": "b",
            "vlans": ["set", [2, 3]],
            "ids": ["map", [["k", "v"], ["x", "2"], ["y", "3"]]],
            "mode": ["set", []]
        }}}}))
        .expect("modify");
        let u = Uuid::parse(U).expect("uuid");
        let row = c.row("B", &u).expect("row");
        assert_eq!(row["name"], Datum::from("b"));
        assert_eq!(row["vlans"], Datum::set([1i64, 3]));
        assert_eq!(row["ids"], Datum::map([("x", "2"), ("y", "3")]));
        assert_eq!(row["mode"], Datum::empty_set());
        c.apply_update2(&json!({"B": {U: {"delete": null}}})).expect("delete");
        assert!(c.row("B", &u).is_none());
        assert!(c.tables().is_empty());
    }

    #[test]
    fn absent_columns_read_as_defaults_and_diff_from_them() {
        let mut c = Cache::new(schema());
        c.apply_update2(&json!({"B": {U: {"insert": {"name": "a"}}}})).expect("insert");
        let u = Uuid::parse(U).expect("uuid");
        assert_eq!(c.get("B", &u, "ids"), Some(Datum::empty_map()));
        assert_eq!(c.get("B", &u, "vlans"), Some(Datum::empty_set()));
        c.apply_update2(&json!({"B": {U: {"modify": {"vlans": 7}}}})).expect("modify");
        assert_eq!(c.get("B", &u, "vlans"), Some(Datum::set([7i64])));
    }

    #[test]
    fn apply_owned_gives_what_apply_gives() {
        let steps = [
            json!({"B": {U: {"initial": {"name": "a", "vlans": ["set", [1, 2]], "ids": ["map", [["k", "v"]]]}}}}),
            json!({"B": {U: {"modify": {"vlans": ["set", [2, 3]], "ids": ["map", [["x", "1"]]], "mode": "m"}}}}),
            json!({"B": {U: {"delete": null}}}),
        ];
        let (mut by_ref, mut owned) = (Cache::new(schema()), Cache::new(schema()));
        for s in &steps {
            let u = TableUpdates::from_update2(s).expect("parse");
            by_ref.apply(&u).expect("apply");
            owned.apply_owned(u).expect("apply_owned");
            assert_eq!(by_ref.tables(), owned.tables());
        }
        let e = owned.apply_owned(TableUpdates::from_update2(&steps[1]).expect("parse")).unwrap_err();
        assert!(e.to_string().contains("not in the cache"), "{e}");
    }

    #[test]
    fn update_v1_old_new() {
        let mut c = Cache::new(schema());
        c.apply_update(&json!({"B": {U: {"new": {"name": "a"}}}})).expect("insert");
        c.apply_update(&json!({"B": {U: {"old": {"name": "a"}, "new": {"name": "b"}}}})).expect("modify");
        let u = Uuid::parse(U).expect("uuid");
        assert_eq!(c.row("B", &u).expect("row")["name"], Datum::from("b"));
        c.apply_update(&json!({"B": {U: {"old": {"name": "b"}}}})).expect("delete");
        assert!(c.row("B", &u).is_none());
    }

    #[test]
    fn inconsistent_updates_are_errors() {
        let mut c = Cache::new(schema());
        let e = c.apply_update2(&json!({"B": {U: {"modify": {"name": "x"}}}})).unwrap_err();
        assert!(e.to_string().contains("modify for a row not in the cache"), "{e}");
        assert!(c.apply_update2(&json!({"B": {"not-a-uuid": {"insert": {}}}})).is_err());
        assert!(c.apply_update2(&json!({"B": {U: {"explode": {}}}})).is_err());
        assert!(c.apply_update2(&json!([1])).is_err());
    }
}
