//! Database schemas (RFC 7047 section 3.2): parse `.ovsschema` files and
//! `get_schema` replies, and check operations against column types and
//! constraints before they are sent, naming the table and column at fault.
//!
//! Pure: no I/O (the caller reads the file).

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use super::notation::{Atom, Datum, Row};
use super::ops::{Condition, Function, Mutation, Mutator, Operation};

/// A schema problem: malformed schema JSON, or an operation that does not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SchemaError {
    pub table: Option<String>,
    pub column: Option<String>,
    pub message: String,
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.table, &self.column) {
            (Some(t), Some(c)) => write!(f, "table {t}, column {c}: {}", self.message),
            (Some(t), None) => write!(f, "table {t}: {}", self.message),
            (None, Some(c)) => write!(f, "column {c}: {}", self.message),
            (None, None) => f.write_str(&self.message),
        }
    }
}

impl SchemaError {
    pub fn new(message: impl Into<String>) -> Self {
        SchemaError { table: None, column: None, message: message.into() }
    }
    fn at(table: &str, column: Option<&str>, message: impl Into<String>) -> Self {
        SchemaError { table: Some(table.to_owned()), column: column.map(str::to_owned), message: message.into() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtomicType {
    Integer,
    Real,
    Boolean,
    String,
    Uuid,
}

impl AtomicType {
    fn parse(s: &str) -> Result<Self, SchemaError> {
        Ok(match s {
            "integer" => AtomicType::Integer,
            "real" => AtomicType::Real,
            "boolean" => AtomicType::Boolean,
            "string" => AtomicType::String,
            "uuid" => AtomicType::Uuid,
            other => return Err(SchemaError::new(format!("unknown atomic type {other:?}"))),
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AtomicType::Integer => "integer",
            AtomicType::Real => "real",
            AtomicType::Boolean => "boolean",
            AtomicType::String => "string",
            AtomicType::Uuid => "uuid",
        }
    }

    fn accepts(self, atom: &Atom) -> bool {
        matches!(
            (self, atom),
            (AtomicType::Integer, Atom::Integer(_))
                | (AtomicType::Real, Atom::Real(_) | Atom::Integer(_))
                | (AtomicType::Boolean, Atom::Boolean(_))
                | (AtomicType::String, Atom::String(_))
                | (AtomicType::Uuid, Atom::Uuid(_) | Atom::NamedUuid(_))
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefType {
    Strong,
    Weak,
}

/// A key or value type with its constraints.
#[derive(Debug, Clone, PartialEq)]
pub struct BaseType {
    pub atomic: AtomicType,
    pub enum_: Option<Vec<Atom>>,
    pub min_integer: Option<i64>,
    pub max_integer: Option<i64>,
    pub min_real: Option<f64>,
    pub max_real: Option<f64>,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    pub ref_table: Option<String>,
    pub ref_type: RefType,
}

impl BaseType {
    fn simple(atomic: AtomicType) -> Self {
        BaseType {
            atomic,
            enum_: None,
            min_integer: None,
            max_integer: None,
            min_real: None,
            max_real: None,
            min_length: None,
            max_length: None,
            ref_table: None,
            ref_type: RefType::Strong,
        }
    }

    fn from_json(v: &Value) -> Result<Self, SchemaError> {
        let o = match v {
            Value::String(s) => return Ok(BaseType::simple(AtomicType::parse(s)?)),
            Value::Object(o) => o,
            other => return Err(SchemaError::new(format!("bad base type {other}"))),
        };
        let atomic = AtomicType::parse(
            o.get("type").and_then(Value::as_str).ok_or_else(|| SchemaError::new("base type without \"type\""))?,
        )?;
        let mut b = BaseType::simple(atomic);
        if let Some(e) = o.get("enum") {
            let d = Datum::from_json(e).map_err(|e| SchemaError::new(e.0))?;
            b.enum_ = Some(d.as_set().unwrap_or(&[]).to_vec());
        }
        b.min_integer = o.get("minInteger").and_then(Value::as_i64);
        b.max_integer = o.get("maxInteger").and_then(Value::as_i64);
        b.min_real = o.get("minReal").and_then(Value::as_f64);
        b.max_real = o.get("maxReal").and_then(Value::as_f64);
        b.min_length = o.get("minLength").and_then(Value::as_u64);
        b.max_length = o.get("maxLength").and_then(Value::as_u64);
        b.ref_table = o.get("refTable").and_then(Value::as_str).map(str::to_owned);
        if o.get("refType").and_then(Value::as_str) == Some("weak") {
            b.ref_type = RefType::Weak;
        }
        Ok(b)
    }

    /// Checks one atom against this type and its constraints.
    pub fn check(&self, atom: &Atom) -> Result<(), String> {
        if !self.atomic.accepts(atom) {
            return Err(format!("{atom} is not of type {}", self.atomic.as_str()));
        }
        if let Some(e) = &self.enum_
            && !matches!(atom, Atom::NamedUuid(_))
            && !e.contains(atom)
        {
            let list: Vec<String> = e.iter().map(ToString::to_string).collect();
            return Err(format!("{atom} is not one of {}", list.join(", ")));
        }
        match atom {
            Atom::Integer(i)
                if self.atomic == AtomicType::Integer
                    && (self.min_integer.is_some_and(|m| *i < m) || self.max_integer.is_some_and(|m| *i > m)) =>
            {
                return Err(format!(
                    "{i} is out of range {}..={}",
                    self.min_integer.map_or("".into(), |m| m.to_string()),
                    self.max_integer.map_or("".into(), |m| m.to_string())
                ));
            }
            Atom::Integer(_) | Atom::Real(_) if self.atomic == AtomicType::Real => {
                let r = atom.as_real().unwrap_or_default();
                if self.min_real.is_some_and(|m| r < m) || self.max_real.is_some_and(|m| r > m) {
                    return Err(format!("{r} is out of range"));
                }
            }
            Atom::String(s) => {
                // OVSDB counts string length in characters (UTF-8 code points).
                let n = s.chars().count() as u64;
                if let Some(m) = self.min_length
                    && n < m
                {
                    return Err(format!("{atom} is shorter than {m} characters"));
                }
                if let Some(m) = self.max_length
                    && n > m
                {
                    return Err(format!("{atom} is longer than {m} characters"));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// A column's type: a key type, an optional value type (a map), and how many
/// elements it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnType {
    pub key: BaseType,
    pub value: Option<BaseType>,
    pub min: u64,
    /// `None` is `"unlimited"`.
    pub max: Option<u64>,
}

impl ColumnType {
    fn from_json(v: &Value) -> Result<Self, SchemaError> {
        let o = match v {
            Value::String(_) => {
                return Ok(ColumnType { key: BaseType::from_json(v)?, value: None, min: 1, max: Some(1) });
            }
            Value::Object(o) => o,
            other => return Err(SchemaError::new(format!("bad column type {other}"))),
        };
        let key = BaseType::from_json(o.get("key").ok_or_else(|| SchemaError::new("column type without \"key\""))?)?;
        let value = o.get("value").map(BaseType::from_json).transpose()?;
        let min = o.get("min").map_or(Some(1), Value::as_u64).ok_or_else(|| SchemaError::new("bad \"min\""))?;
        let max = match o.get("max") {
            None => Some(1),
            Some(Value::String(s)) if s == "unlimited" => None,
            Some(m) => Some(m.as_u64().ok_or_else(|| SchemaError::new(format!("bad \"max\" {m}")))?),
        };
        Ok(ColumnType { key, value, min, max })
    }

    /// The value a column has when nothing was written to it: an empty set
    /// or map when it may be empty, else one default atom (0, 0.0, false,
    /// "", the all-zero UUID), as OVSDB defines it. `ovsdb-server` leaves
    /// columns at their default out of `update2` `initial`/`insert` rows.
    pub fn default_datum(&self) -> Datum {
        if self.min == 0 {
            return if self.is_map() { Datum::empty_map() } else { Datum::empty_set() };
        }
        let atom = |b: &BaseType| match b.atomic {
            AtomicType::Integer => Atom::Integer(0),
            AtomicType::Real => Atom::Real(0.0),
            AtomicType::Boolean => Atom::Boolean(false),
            AtomicType::String => Atom::String(String::new()),
            AtomicType::Uuid => Atom::Uuid(super::notation::Uuid(uuid::Uuid::nil())),
        };
        match &self.value {
            Some(v) => Datum::Map(vec![(atom(&self.key), atom(v))]),
            None => Datum::Set(vec![atom(&self.key)]),
        }
    }

    pub fn is_map(&self) -> bool {
        self.value.is_some()
    }

    /// Exactly one element.
    pub fn is_scalar(&self) -> bool {
        self.value.is_none() && self.min == 1 && self.max == Some(1)
    }

    /// At most one element and not a map (scalar or optional scalar): in an
    /// `update2` `modify`, `ovsdb-server` sends such a column's new value
    /// (`["set",[]]` when cleared), not a diff. Checked against OVS 3.1.
    pub fn is_single_valued(&self) -> bool {
        self.value.is_none() && self.max == Some(1)
    }

    /// Checks element types and constraints; with `counts`, also the number
    /// of elements.
    fn check(&self, d: &Datum, counts: bool) -> Result<(), String> {
        match (d, &self.value) {
            (Datum::Set(atoms), None) => {
                for a in atoms {
                    self.key.check(a)?;
                }
            }
            (Datum::Set(atoms), Some(_)) if atoms.is_empty() => {}
            (Datum::Set(_), Some(_)) => return Err("expected a map, got a set".into()),
            (Datum::Map(_), None) => return Err("expected a set, got a map".into()),
            (Datum::Map(pairs), Some(vt)) => {
                for (k, v) in pairs {
                    self.key.check(k)?;
                    vt.check(v)?;
                }
            }
        }
        if counts {
            let n = d.len() as u64;
            if n < self.min {
                return Err(format!("{n} elements, at least {} required", self.min));
            }
            if let Some(max) = self.max
                && n > max
            {
                return Err(format!("{n} elements, at most {max} allowed"));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSchema {
    pub type_: ColumnType,
    pub ephemeral: bool,
    pub mutable: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TableSchema {
    pub columns: BTreeMap<String, ColumnSchema>,
    pub is_root: bool,
    pub indexes: Vec<Vec<String>>,
    pub max_rows: Option<u64>,
}

impl TableSchema {
    /// The column's type, including the implicit `_uuid` and `_version`.
    pub fn column_type(&self, name: &str) -> Option<&ColumnType> {
        static IMPLICIT: std::sync::OnceLock<ColumnType> = std::sync::OnceLock::new();
        match name {
            "_uuid" | "_version" => Some(IMPLICIT.get_or_init(|| ColumnType {
                key: BaseType::simple(AtomicType::Uuid),
                value: None,
                min: 1,
                max: Some(1),
            })),
            _ => self.columns.get(name).map(|c| &c.type_),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseSchema {
    pub name: String,
    pub version: Option<String>,
    pub cksum: Option<String>,
    pub tables: BTreeMap<String, TableSchema>,
}

impl DatabaseSchema {
    /// Parses an `.ovsschema` file's text.
    pub fn parse(text: &str) -> Result<Self, SchemaError> {
        let v: Value = serde_json::from_str(text).map_err(|e| SchemaError::new(format!("schema is not JSON: {e}")))?;
        DatabaseSchema::from_json(&v)
    }

    /// Parses a schema as JSON (an `.ovsschema` or a `get_schema` result).
    pub fn from_json(v: &Value) -> Result<Self, SchemaError> {
        let o = v.as_object().ok_or_else(|| SchemaError::new("schema is not an object"))?;
        let name = o.get("name").and_then(Value::as_str).ok_or_else(|| SchemaError::new("schema without a name"))?;
        let mut tables = BTreeMap::new();
        let ts = o.get("tables").and_then(Value::as_object).ok_or_else(|| SchemaError::new("schema without tables"))?;
        for (tname, t) in ts {
            let wrap = |e: SchemaError| SchemaError { table: Some(tname.clone()), ..e };
            let t = t.as_object().ok_or_else(|| SchemaError::at(tname, None, "table is not an object"))?;
            let mut columns = BTreeMap::new();
            let cs = t
                .get("columns")
                .and_then(Value::as_object)
                .ok_or_else(|| SchemaError::at(tname, None, "table without columns"))?;
            for (cname, c) in cs {
                let ty = c
                    .get("type")
                    .ok_or_else(|| SchemaError::at(tname, Some(cname), "column without a type"))
                    .and_then(|ty| {
                        ColumnType::from_json(ty).map_err(|e| SchemaError { column: Some(cname.clone()), ..wrap(e) })
                    })?;
                columns.insert(
                    cname.clone(),
                    ColumnSchema {
                        type_: ty,
                        ephemeral: c.get("ephemeral").and_then(Value::as_bool).unwrap_or(false),
                        mutable: c.get("mutable").and_then(Value::as_bool).unwrap_or(true),
                    },
                );
            }
            let indexes = t
                .get("indexes")
                .and_then(Value::as_array)
                .map(|ix| {
                    ix.iter()
                        .map(|cols| {
                            cols.as_array()
                                .map(|a| a.iter().filter_map(|c| c.as_str().map(str::to_owned)).collect())
                                .unwrap_or_default()
                        })
                        .collect()
                })
                .unwrap_or_default();
            tables.insert(
                tname.clone(),
                TableSchema {
                    columns,
                    is_root: t.get("isRoot").and_then(Value::as_bool).unwrap_or(false),
                    indexes,
                    max_rows: t.get("maxRows").and_then(Value::as_u64),
                },
            );
        }
        Ok(DatabaseSchema {
            name: name.to_owned(),
            version: o.get("version").and_then(Value::as_str).map(str::to_owned),
            cksum: o.get("cksum").and_then(Value::as_str).map(str::to_owned),
            tables,
        })
    }

    fn table(&self, name: &str) -> Result<&TableSchema, SchemaError> {
        self.tables
            .get(name)
            .ok_or_else(|| SchemaError::at(name, None, format!("no such table in database {}", self.name)))
    }

    /// Checks a transaction's operations against this schema: tables and
    /// columns exist, values have the column's type, integers are in range,
    /// strings are in the enum and of allowed length, sets and maps have an
    /// allowed number of elements, immutable columns are not updated.
    pub fn check_operations(&self, ops: &[Operation]) -> Result<(), SchemaError> {
        for op in ops {
            self.check_operation(op)?;
        }
        Ok(())
    }

    fn check_operation(&self, op: &Operation) -> Result<(), SchemaError> {
        let Some(tname) = op.table() else { return Ok(()) };
        let table = self.table(tname)?;
        let col = |c: &str| -> Result<&ColumnType, SchemaError> {
            table.column_type(c).ok_or_else(|| SchemaError::at(tname, Some(c), "no such column"))
        };
        let check_row = |row: &Row, whole: bool, updating: bool| -> Result<(), SchemaError> {
            for (c, d) in row {
                if c.starts_with('_') {
                    return Err(SchemaError::at(tname, Some(c), "cannot be written"));
                }
                let ty = col(c)?;
                if updating && table.columns.get(c).is_some_and(|cs| !cs.mutable) {
                    return Err(SchemaError::at(tname, Some(c), "column is immutable"));
                }
                ty.check(d, whole).map_err(|m| SchemaError::at(tname, Some(c), m))?;
            }
            Ok(())
        };
        let check_where = |w: &[Condition]| -> Result<(), SchemaError> {
            for cond in w {
                let ty = col(&cond.column)?;
                if matches!(cond.function, Function::Lt | Function::Le | Function::Gt | Function::Ge)
                    && !(ty.is_scalar() && matches!(ty.key.atomic, AtomicType::Integer | AtomicType::Real))
                {
                    return Err(SchemaError::at(
                        tname,
                        Some(&cond.column),
                        format!("{} needs an integer or real column", cond.function.as_str()),
                    ));
                }
                ty.check(&cond.value, false).map_err(|m| SchemaError::at(tname, Some(&cond.column), m))?;
            }
            Ok(())
        };
        match op {
            Operation::Insert { row, .. } => {
                check_row(row, true, false)?;
                // Columns left out get their default; one that needs at least
                // one element has no empty default only if min > 0 and the
                // type has no natural default, which OVSDB supplies anyway.
            }
            Operation::Select { where_, columns, .. } => {
                check_where(where_)?;
                for c in columns.iter().flatten() {
                    col(c)?;
                }
            }
            Operation::Update { where_, row, .. } => {
                check_where(where_)?;
                check_row(row, true, true)?;
            }
            Operation::Mutate { where_, mutations, .. } => {
                check_where(where_)?;
                for m in mutations {
                    self.check_mutation(tname, table, m)?;
                }
            }
            Operation::Delete { where_, .. } => check_where(where_)?,
            Operation::Wait { where_, columns, rows, .. } => {
                check_where(where_)?;
                for c in columns {
                    col(c)?;
                }
                for r in rows {
                    for (c, d) in r {
                        col(c)?.check(d, false).map_err(|m| SchemaError::at(tname, Some(c), m))?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn check_mutation(&self, tname: &str, table: &TableSchema, m: &Mutation) -> Result<(), SchemaError> {
        let err = |msg: String| SchemaError::at(tname, Some(&m.column), msg);
        let cs = table.columns.get(&m.column).ok_or_else(|| err("no such column".into()))?;
        if !cs.mutable {
            return Err(err("column is immutable".into()));
        }
        let ty = &cs.type_;
        match m.mutator {
            Mutator::Insert => ty.check(&m.value, false).map_err(err),
            Mutator::Delete => match (&m.value, &ty.value) {
                // A map's keys may be deleted by a set of keys.
                (Datum::Set(keys), Some(_)) => keys.iter().try_for_each(|k| ty.key.check(k)).map_err(err),
                _ => ty.check(&m.value, false).map_err(err),
            },
            _ => {
                if ty.is_map() || !matches!(ty.key.atomic, AtomicType::Integer | AtomicType::Real) {
                    return Err(err(format!("{} needs an integer or real column", m.mutator.as_str())));
                }
                let atom = m.value.as_atom().ok_or_else(|| err("arithmetic mutation needs one value".into()))?;
                if !ty.key.atomic.accepts(atom) {
                    return Err(err(format!("{atom} is not of type {}", ty.key.atomic.as_str())));
                }
                Ok(())
            }
        }
    }

    /// Rewrites values the server would misread without the schema: an empty
    /// set given for a map column becomes an empty map (`["set",[]]` is
    /// refused where a map is expected).
    pub fn normalize_operations(&self, ops: &mut [Operation]) {
        for op in ops {
            let Some(table) = op.table().and_then(|t| self.tables.get(t)) else { continue };
            let fix = |c: &str, d: &mut Datum| {
                if d.is_empty() && table.column_type(c).is_some_and(ColumnType::is_map) {
                    *d = Datum::empty_map();
                }
            };
            let fix_row = |r: &mut Row| r.iter_mut().for_each(|(c, d)| fix(c, d));
            let fix_where = |w: &mut Vec<Condition>| w.iter_mut().for_each(|c| fix(&c.column, &mut c.value));
            match op {
                Operation::Insert { row, .. } => fix_row(row),
                Operation::Update { where_, row, .. } => {
                    fix_where(where_);
                    fix_row(row);
                }
                Operation::Select { where_, .. } | Operation::Delete { where_, .. } => fix_where(where_),
                Operation::Mutate { where_, mutations, .. } => {
                    fix_where(where_);
                    for m in mutations.iter_mut().filter(|m| m.mutator == Mutator::Insert) {
                        fix(&m.column, &mut m.value);
                    }
                }
                Operation::Wait { where_, rows, .. } => {
                    fix_where(where_);
                    rows.iter_mut().for_each(fix_row);
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ovsdb::notation::Datum;
    use serde_json::json;

    fn schema() -> DatabaseSchema {
        DatabaseSchema::from_json(&json!({
            "name": "T", "version": "1.2.3",
            "tables": {
                "Interface": {
                    "columns": {
                        "name": {"type": "string", "mutable": false},
                        "type": {"type": {"key": {"type": "string", "enum": ["set", ["", "internal", "gre"]]}}},
                        "ofport_request": {"type": {"key": {"type": "integer", "minInteger": 1, "maxInteger": 65279}, "min": 0, "max": 1}},
                        "options": {"type": {"key": "string", "value": "string", "min": 0, "max": "unlimited"}},
                        "mac": {"type": {"key": {"type": "string", "minLength": 1, "maxLength": 3}, "min": 0, "max": 1}},
                        "tags": {"type": {"key": "integer", "min": 0, "max": 2}}
                    },
                    "isRoot": true,
                    "indexes": [["name"]]
                }
            }
        }))
        .unwrap()
    }

    fn insert(col: &str, d: Datum) -> Operation {
        let mut row = Row::new();
        row.insert(col.into(), d);
        Operation::insert("Interface", row)
    }

    #[test]
    fn parses_types() {
        let s = schema();
        let t = &s.tables["Interface"];
        assert!(t.is_root);
        assert_eq!(t.indexes, vec![vec!["name".to_string()]]);
        assert_eq!(t.columns["options"].type_.max, None);
        assert!(t.columns["options"].type_.is_map());
        assert!(!t.columns["name"].mutable);
        assert!(t.columns["type"].type_.is_scalar());
        assert_eq!(t.columns["type"].type_.key.enum_.as_ref().map(Vec::len), Some(3));
    }

    #[test]
    fn errors_name_table_and_column() {
        let s = schema();
        let e = s.check_operations(&[insert("type", Datum::from("foo"))]).unwrap_err();
        assert_eq!(e.to_string(), r#"table Interface, column type: "foo" is not one of "", "gre", "internal""#);
        let e = s.check_operations(&[insert("ofport_request", Datum::from(70000))]).unwrap_err();
        assert!(e.to_string().starts_with("table Interface, column ofport_request: 70000 is out of range"), "{e}");
        let e = s.check_operations(&[insert("nope", Datum::from(1))]).unwrap_err();
        assert_eq!(e.to_string(), "table Interface, column nope: no such column");
        let e = s.check_operations(&[Operation::select("Nope", vec![])]).unwrap_err();
        assert_eq!(e.to_string(), "table Nope: no such table in database T");
        let e = s.check_operations(&[insert("name", Datum::from(1))]).unwrap_err();
        assert_eq!(e.to_string(), "table Interface, column name: 1 is not of type string");
        let e = s.check_operations(&[insert("tags", Datum::set([1i64, 2, 3]))]).unwrap_err();
        assert_eq!(e.to_string(), "table Interface, column tags: 3 elements, at most 2 allowed");
        let e = s.check_operations(&[insert("name", Datum::empty_set())]).unwrap_err();
        assert_eq!(e.to_string(), "table Interface, column name: 0 elements, at least 1 required");
        let e = s.check_operations(&[insert("mac", Datum::from("abcd"))]).unwrap_err();
        assert_eq!(e.to_string(), r#"table Interface, column mac: "abcd" is longer than 3 characters"#);
        let e = s.check_operations(&[insert("options", Datum::from("x"))]).unwrap_err();
        assert_eq!(e.to_string(), "table Interface, column options: expected a map, got a set");
        let mut row = Row::new();
        row.insert("name".into(), Datum::from("x"));
        let e = s.check_operations(&[Operation::update("Interface", vec![], row)]).unwrap_err();
        assert_eq!(e.to_string(), "table Interface, column name: column is immutable");
        let e = s
            .check_operations(&[Operation::select("Interface", vec![Condition::new("name", Function::Lt, "a")])])
            .unwrap_err();
        assert_eq!(e.to_string(), "table Interface, column name: < needs an integer or real column");
    }

    #[test]
    fn good_operations_pass_and_empty_map_is_normalized() {
        let s = schema();
        let mut ops = vec![
            insert("options", Datum::empty_set()),
            insert("type", Datum::from("gre")),
            Operation::select("Interface", vec![Condition::uuid(crate::ovsdb::notation::Uuid::new_v4())]),
            Operation::mutate("Interface", vec![], vec![Mutation::new("options", Mutator::Delete, Datum::set(["k"]))]),
            Operation::mutate("Interface", vec![], vec![Mutation::new("ofport_request", Mutator::Add, 1)]),
        ];
        s.check_operations(&ops).unwrap();
        s.normalize_operations(&mut ops);
        let Operation::Insert { row, .. } = &ops[0] else { unreachable!() };
        assert_eq!(row["options"], Datum::empty_map());
    }

    #[test]
    fn bad_schemas_are_errors() {
        assert!(DatabaseSchema::parse("{").is_err());
        assert!(DatabaseSchema::from_json(&json!({"name": "x"})).is_err());
        let e = DatabaseSchema::from_json(&json!({"name": "x", "tables": {"T": {"columns": {"c": {"type": "nope"}}}}}))
            .unwrap_err();
        assert_eq!(e.to_string(), r#"table T, column c: unknown atomic type "nope""#);
    }
}
