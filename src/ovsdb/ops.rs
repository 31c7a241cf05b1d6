//! RFC 7047 section 5.2 transaction operations, built without I/O.
//!
//! Builders return [`Operation`] values; only `Client::transact` sends them.

use serde::{Serialize, Serializer};
use serde_json::{Map, Value, json};

use super::notation::{Datum, NotationError, Row, Uuid, row_from_json, row_to_json};

/// A condition function (RFC 7047 5.1 `<function>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Lt,
    Le,
    Eq,
    Ne,
    Ge,
    Gt,
    Includes,
    Excludes,
}

impl Function {
    pub fn as_str(self) -> &'static str {
        match self {
            Function::Lt => "<",
            Function::Le => "<=",
            Function::Eq => "==",
            Function::Ne => "!=",
            Function::Ge => ">=",
            Function::Gt => ">",
            Function::Includes => "includes",
            Function::Excludes => "excludes",
        }
    }
}

/// `[column, function, value]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub column: String,
    pub function: Function,
    pub value: Datum,
}

impl Condition {
    pub fn new(column: &str, function: Function, value: impl Into<Datum>) -> Self {
        Condition { column: column.to_owned(), function, value: value.into() }
    }

    /// `column == value`.
    pub fn eq(column: &str, value: impl Into<Datum>) -> Self {
        Condition::new(column, Function::Eq, value)
    }

    /// `_uuid == uuid`: the condition naming one row.
    pub fn uuid(uuid: Uuid) -> Self {
        Condition::new("_uuid", Function::Eq, uuid)
    }

    pub fn to_json(&self) -> Value {
        json!([self.column, self.function.as_str(), self.value.to_json()])
    }
}

/// A mutator (RFC 7047 5.1 `<mutator>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutator {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Insert,
    Delete,
}

impl Mutator {
    pub fn as_str(self) -> &'static str {
        match self {
            Mutator::Add => "+=",
            Mutator::Sub => "-=",
            Mutator::Mul => "*=",
            Mutator::Div => "/=",
            Mutator::Mod => "%=",
            Mutator::Insert => "insert",
            Mutator::Delete => "delete",
        }
    }
}

/// `[column, mutator, value]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mutation {
    pub column: String,
    pub mutator: Mutator,
    pub value: Datum,
}

impl Mutation {
    pub fn new(column: &str, mutator: Mutator, value: impl Into<Datum>) -> Self {
        Mutation { column: column.to_owned(), mutator, value: value.into() }
    }

    pub fn to_json(&self) -> Value {
        json!([self.column, self.mutator.as_str(), self.value.to_json()])
    }
}

/// A `wait` operation's `until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitUntil {
    Equal,
    NotEqual,
}

/// One operation of a transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    Insert {
        table: String,
        row: Row,
        uuid_name: Option<String>,
        uuid: Option<Uuid>,
    },
    Select {
        table: String,
        where_: Vec<Condition>,
        columns: Option<Vec<String>>,
    },
    Update {
        table: String,
        where_: Vec<Condition>,
        row: Row,
    },
    Mutate {
        table: String,
        where_: Vec<Condition>,
        mutations: Vec<Mutation>,
    },
    Delete {
        table: String,
        where_: Vec<Condition>,
    },
    Wait {
        table: String,
        where_: Vec<Condition>,
        columns: Vec<String>,
        until: WaitUntil,
        rows: Vec<Row>,
        /// Milliseconds; `None` waits forever.
        timeout: Option<u64>,
    },
    Commit {
        durable: bool,
    },
    Abort,
    Comment {
        comment: String,
    },
    Assert {
        lock: String,
    },
}

impl Operation {
    pub fn insert(table: &str, row: Row) -> Self {
        Operation::Insert { table: table.to_owned(), row, uuid_name: None, uuid: None }
    }

    /// Names the inserted row so that other operations of the same
    /// transaction can refer to it as `["named-uuid", name]`.
    /// Only meaningful on an insert; other operations are returned unchanged.
    pub fn uuid_name(mut self, name: &str) -> Self {
        if let Operation::Insert { uuid_name, .. } = &mut self {
            *uuid_name = Some(name.to_owned());
        }
        self
    }

    /// Asks for a given UUID for the inserted row (OVS 2.13+ extension).
    /// Only meaningful on an insert.
    pub fn with_uuid(mut self, id: Uuid) -> Self {
        if let Operation::Insert { uuid, .. } = &mut self {
            *uuid = Some(id);
        }
        self
    }

    pub fn select(table: &str, where_: Vec<Condition>) -> Self {
        Operation::Select { table: table.to_owned(), where_, columns: None }
    }

    /// Restricts the columns a select returns. Only meaningful on a select.
    pub fn columns<S: AsRef<str>>(mut self, cols: impl IntoIterator<Item = S>) -> Self {
        if let Operation::Select { columns, .. } = &mut self {
            *columns = Some(cols.into_iter().map(|c| c.as_ref().to_owned()).collect());
        }
        self
    }

    pub fn update(table: &str, where_: Vec<Condition>, row: Row) -> Self {
        Operation::Update { table: table.to_owned(), where_, row }
    }

    pub fn mutate(table: &str, where_: Vec<Condition>, mutations: Vec<Mutation>) -> Self {
        Operation::Mutate { table: table.to_owned(), where_, mutations }
    }

    pub fn delete(table: &str, where_: Vec<Condition>) -> Self {
        Operation::Delete { table: table.to_owned(), where_ }
    }

    pub fn wait(
        table: &str,
        where_: Vec<Condition>,
        columns: Vec<String>,
        until: WaitUntil,
        rows: Vec<Row>,
        timeout: Option<u64>,
    ) -> Self {
        Operation::Wait { table: table.to_owned(), where_, columns, until, rows, timeout }
    }

    pub fn commit(durable: bool) -> Self {
        Operation::Commit { durable }
    }

    pub fn abort() -> Self {
        Operation::Abort
    }

    pub fn comment(text: &str) -> Self {
        Operation::Comment { comment: text.to_owned() }
    }

    pub fn assert(lock: &str) -> Self {
        Operation::Assert { lock: lock.to_owned() }
    }

    /// The operation's name on the wire.
    pub fn op_name(&self) -> &'static str {
        match self {
            Operation::Insert { .. } => "insert",
            Operation::Select { .. } => "select",
            Operation::Update { .. } => "update",
            Operation::Mutate { .. } => "mutate",
            Operation::Delete { .. } => "delete",
            Operation::Wait { .. } => "wait",
            Operation::Commit { .. } => "commit",
            Operation::Abort => "abort",
            Operation::Comment { .. } => "comment",
            Operation::Assert { .. } => "assert",
        }
    }

    /// The table the operation works on, if any.
    pub fn table(&self) -> Option<&str> {
        match self {
            Operation::Insert { table, .. }
            | Operation::Select { table, .. }
            | Operation::Update { table, .. }
            | Operation::Mutate { table, .. }
            | Operation::Delete { table, .. }
            | Operation::Wait { table, .. } => Some(table),
            _ => None,
        }
    }

    pub fn to_json(&self) -> Value {
        let conds = |w: &[Condition]| Value::Array(w.iter().map(Condition::to_json).collect());
        let mut o = Map::new();
        o.insert("op".into(), self.op_name().into());
        if let Some(t) = self.table() {
            o.insert("table".into(), t.into());
        }
        match self {
            Operation::Insert { row, uuid_name, uuid, .. } => {
                o.insert("row".into(), row_to_json(row));
                if let Some(n) = uuid_name {
                    o.insert("uuid-name".into(), n.as_str().into());
                }
                if let Some(u) = uuid {
                    o.insert("uuid".into(), u.to_string().into());
                }
            }
            Operation::Select { where_, columns, .. } => {
                o.insert("where".into(), conds(where_));
                if let Some(c) = columns {
                    o.insert("columns".into(), c.clone().into());
                }
            }
            Operation::Update { where_, row, .. } => {
                o.insert("where".into(), conds(where_));
                o.insert("row".into(), row_to_json(row));
            }
            Operation::Mutate { where_, mutations, .. } => {
                o.insert("where".into(), conds(where_));
                o.insert("mutations".into(), Value::Array(mutations.iter().map(Mutation::to_json).collect()));
            }
            Operation::Delete { where_, .. } => {
                o.insert("where".into(), conds(where_));
            }
            Operation::Wait { where_, columns, until, rows, timeout, .. } => {
                o.insert("where".into(), conds(where_));
                o.insert("columns".into(), columns.clone().into());
                let until = match until {
                    WaitUntil::Equal => "==",
                    WaitUntil::NotEqual => "!=",
                };
                o.insert("until".into(), until.into());
                o.insert("rows".into(), Value::Array(rows.iter().map(row_to_json).collect()));
                if let Some(t) = timeout {
                    o.insert("timeout".into(), (*t).into());
                }
            }
            Operation::Commit { durable } => {
                o.insert("durable".into(), (*durable).into());
            }
            Operation::Abort => {}
            Operation::Comment { comment } => {
                o.insert("comment".into(), comment.as_str().into());
            }
            Operation::Assert { lock } => {
                o.insert("lock".into(), lock.as_str().into());
            }
        }
        Value::Object(o)
    }
}

impl Serialize for Operation {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

/// The result of one successful operation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpResult {
    /// Insert: the new row's UUID.
    pub uuid: Option<Uuid>,
    /// Select: the rows.
    pub rows: Option<Vec<Row>>,
    /// Update, mutate, delete: how many rows matched.
    pub count: Option<u64>,
}

/// One element of a `transact` reply.
#[derive(Debug, Clone, PartialEq)]
pub enum OpOutcome {
    Ok(OpResult),
    /// `{"error": ..., "details": ...}`.
    Error {
        error: super::ErrorTag,
        details: Option<String>,
    },
    /// `null`: not executed because an earlier operation failed.
    NotExecuted,
}

impl OpOutcome {
    pub fn from_json(v: &Value) -> Result<Self, NotationError> {
        let o = match v {
            Value::Null => return Ok(OpOutcome::NotExecuted),
            Value::Object(o) => o,
            other => return Err(NotationError(format!("operation result is not an object: {other}"))),
        };
        if let Some(e) = o.get("error") {
            return Ok(OpOutcome::Error {
                error: super::ErrorTag::parse(&e.as_str().map(str::to_owned).unwrap_or_else(|| e.to_string())),
                details: o.get("details").and_then(Value::as_str).map(str::to_owned),
            });
        }
        let uuid = match o.get("uuid") {
            Some(u) => Some(
                super::notation::Atom::from_json(u)?
                    .as_uuid()
                    .ok_or_else(|| NotationError(format!("uuid member is not a UUID: {u}")))?,
            ),
            None => None,
        };
        let rows = match o.get("rows") {
            Some(Value::Array(rs)) => Some(rs.iter().map(row_from_json).collect::<Result<Vec<_>, _>>()?),
            Some(other) => return Err(NotationError(format!("rows member is not an array: {other}"))),
            None => None,
        };
        let count = o.get("count").and_then(Value::as_u64);
        Ok(OpOutcome::Ok(OpResult { uuid, rows, count }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ovsdb::notation::Datum;

    #[test]
    fn operations_serialize_as_rfc7047() {
        let mut row = Row::new();
        row.insert("name".into(), Datum::from("br0"));
        let ins = Operation::insert("Bridge", row).uuid_name("newbr");
        assert_eq!(ins.to_json(), json!({"op":"insert","table":"Bridge","row":{"name":"br0"},"uuid-name":"newbr"}));
        let sel = Operation::select("Bridge", vec![Condition::eq("name", "br0")]).columns(["_uuid", "ports"]);
        assert_eq!(
            sel.to_json(),
            json!({"op":"select","table":"Bridge","where":[["name","==","br0"]],"columns":["_uuid","ports"]})
        );
        let m = Operation::mutate(
            "Open_vSwitch",
            vec![],
            vec![Mutation::new("bridges", Mutator::Insert, Datum::named_uuid("newbr"))],
        );
        assert_eq!(
            m.to_json(),
            json!({"op":"mutate","table":"Open_vSwitch","where":[],"mutations":[["bridges","insert",["named-uuid","newbr"]]]})
        );
        let w = Operation::wait("Bridge", vec![], vec!["name".into()], WaitUntil::NotEqual, vec![], Some(10));
        assert_eq!(
            w.to_json(),
            json!({"op":"wait","table":"Bridge","where":[],"columns":["name"],"until":"!=","rows":[],"timeout":10})
        );
        assert_eq!(Operation::commit(true).to_json(), json!({"op":"commit","durable":true}));
        assert_eq!(Operation::abort().to_json(), json!({"op":"abort"}));
        assert_eq!(Operation::comment("hi").to_json(), json!({"op":"comment","comment":"hi"}));
        assert_eq!(Operation::assert("l").to_json(), json!({"op":"assert","lock":"l"}));
        assert_eq!(Operation::delete("Port", vec![]).to_json(), json!({"op":"delete","table":"Port","where":[]}));
    }

    #[test]
    fn outcomes_parse() {
        let u = "36a9f2b4-9b4d-4f5d-8b9d-8f3f9a2b1c0d";
        assert_eq!(
            OpOutcome::from_json(&json!({"uuid": ["uuid", u]})).unwrap(),
            OpOutcome::Ok(OpResult { uuid: Some(Uuid::parse(u).unwrap()), ..Default::default() })
        );
        assert_eq!(
            OpOutcome::from_json(&json!({"count": 2})).unwrap(),
            OpOutcome::Ok(OpResult { count: Some(2), ..Default::default() })
        );
        assert_eq!(
            OpOutcome::from_json(&json!({"error": "timed out", "details": "x"})).unwrap(),
            OpOutcome::Error { error: crate::ovsdb::ErrorTag::TimedOut, details: Some("x".into()) }
        );
        assert_eq!(OpOutcome::from_json(&Value::Null).unwrap(), OpOutcome::NotExecuted);
        assert!(OpOutcome::from_json(&json!(3)).is_err());
    }
}
