//! RFC 7047 section 5.1 notation: atoms, sets, maps, UUIDs and rows.
//!
//! Pure: serde to and from the wire JSON, no I/O. A set of exactly one atom
//! is sent as the bare atom (as `ovsdb-server` itself does); sets and maps are
//! kept canonical (sorted, no duplicates) so two datums compare equal exactly
//! when the database would consider them equal.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An OVSDB UUID (`["uuid", "..."]` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uuid(pub uuid::Uuid);

impl Uuid {
    /// A fresh random (v4) UUID, e.g. for an insert's `uuid` member.
    pub fn new_v4() -> Self {
        Uuid(uuid::Uuid::new_v4())
    }

    /// Parses the 36-character text form.
    pub fn parse(s: &str) -> Result<Self, NotationError> {
        uuid::Uuid::parse_str(s).map(Uuid).map_err(|_| NotationError(format!("{s:?} is not a UUID")))
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl Serialize for Uuid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Atom::Uuid(*self).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Uuid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Atom::deserialize(d)? {
            Atom::Uuid(u) => Ok(u),
            other => Err(de::Error::custom(format!("expected [\"uuid\", ...], got {other}"))),
        }
    }
}

impl From<uuid::Uuid> for Uuid {
    fn from(u: uuid::Uuid) -> Self {
        Uuid(u)
    }
}

/// Malformed notation JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad OVSDB notation: {0}")]
pub struct NotationError(pub String);

/// One atomic value.
#[derive(Debug, Clone)]
pub enum Atom {
    Integer(i64),
    Real(f64),
    Boolean(bool),
    String(String),
    Uuid(Uuid),
    /// A `["named-uuid", name]` reference to a row inserted by the same
    /// transaction; only meaningful inside a transaction.
    NamedUuid(String),
}

impl Atom {
    fn rank(&self) -> u8 {
        match self {
            Atom::Integer(_) => 0,
            Atom::Real(_) => 1,
            Atom::Boolean(_) => 2,
            Atom::String(_) => 3,
            Atom::Uuid(_) => 4,
            Atom::NamedUuid(_) => 5,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Atom::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_integer(&self) -> Option<i64> {
        match self {
            Atom::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// A real; integers convert, because `ovsdb-server` prints a real with
    /// no fractional part (`1.0`) as the JSON integer `1`.
    pub fn as_real(&self) -> Option<f64> {
        match self {
            Atom::Real(r) => Some(*r),
            Atom::Integer(i) => Some(*i as f64),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Atom::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_uuid(&self) -> Option<Uuid> {
        match self {
            Atom::Uuid(u) => Some(*u),
            _ => None,
        }
    }

    /// The atom as JSON.
    pub fn to_json(&self) -> Value {
        match self {
            Atom::Integer(i) => Value::from(*i),
            Atom::Real(r) => serde_json::Number::from_f64(*r)
                .map(Value::Number)
                // NaN and infinities have no JSON form; OVSDB rejects them too.
                .unwrap_or(Value::Null),
            Atom::Boolean(b) => Value::Bool(*b),
            Atom::String(s) => Value::String(s.clone()),
            Atom::Uuid(u) => Value::Array(vec!["uuid".into(), u.to_string().into()]),
            Atom::NamedUuid(n) => Value::Array(vec!["named-uuid".into(), n.clone().into()]),
        }
    }

    /// An atom from JSON.
    pub fn from_json(v: &Value) -> Result<Self, NotationError> {
        match v {
            Value::Bool(b) => Ok(Atom::Boolean(*b)),
            Value::String(s) => Ok(Atom::String(s.clone())),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Ok(Atom::Integer(i))
                } else if let Some(r) = n.as_f64() {
                    Ok(Atom::Real(r))
                } else {
                    Err(NotationError(format!("number {n} out of range")))
                }
            }
            Value::Array(a) if a.len() == 2 => match (&a[0], &a[1]) {
                (Value::String(tag), Value::String(s)) if tag == "uuid" => Ok(Atom::Uuid(Uuid::parse(s)?)),
                (Value::String(tag), Value::String(s)) if tag == "named-uuid" => Ok(Atom::NamedUuid(s.clone())),
                _ => Err(NotationError(format!("expected an atom, got {v}"))),
            },
            _ => Err(NotationError(format!("expected an atom, got {v}"))),
        }
    }
}

impl PartialEq for Atom {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Atom {}
impl PartialOrd for Atom {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Atom {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Atom::Integer(a), Atom::Integer(b)) => a.cmp(b),
            (Atom::Real(a), Atom::Real(b)) => a.total_cmp(b),
            (Atom::Boolean(a), Atom::Boolean(b)) => a.cmp(b),
            (Atom::String(a), Atom::String(b)) => a.cmp(b),
            (Atom::Uuid(a), Atom::Uuid(b)) => a.cmp(b),
            (Atom::NamedUuid(a), Atom::NamedUuid(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Atom::Integer(i) => write!(f, "{i}"),
            Atom::Real(r) => write!(f, "{r}"),
            Atom::Boolean(b) => write!(f, "{b}"),
            Atom::String(s) => write!(f, "{s:?}"),
            Atom::Uuid(u) => write!(f, "{u}"),
            Atom::NamedUuid(n) => write!(f, "@{n}"),
        }
    }
}

impl From<i64> for Atom {
    fn from(v: i64) -> Self {
        Atom::Integer(v)
    }
}
impl From<f64> for Atom {
    fn from(v: f64) -> Self {
        Atom::Real(v)
    }
}
impl From<bool> for Atom {
    fn from(v: bool) -> Self {
        Atom::Boolean(v)
    }
}
impl From<&str> for Atom {
    fn from(v: &str) -> Self {
        Atom::String(v.to_owned())
    }
}
impl From<String> for Atom {
    fn from(v: String) -> Self {
        Atom::String(v)
    }
}
impl From<Uuid> for Atom {
    fn from(v: Uuid) -> Self {
        Atom::Uuid(v)
    }
}

impl Serialize for Atom {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}
impl<'de> Deserialize<'de> for Atom {
    /// Straight from the wire text, no [`Value`] in between; the same
    /// atoms (and the same refusals) as [`Atom::from_json`].
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match d.deserialize_any(NotationVisitor { datum: false })? {
            Parsed::Atom(a) => Ok(a),
            // Not made by an atom visitor; refused all the same.
            Parsed::Datum(_) => Err(de::Error::custom("expected an atom, got a set or map")),
        }
    }
}

/// What [`NotationVisitor`] made.
enum Parsed {
    Atom(Atom),
    Datum(Datum),
}

/// Deserializes an atom, or (with `datum`) a datum: the serde visitor form
/// of [`Atom::from_json`] and [`Datum::from_json`], giving exactly what they
/// give for the same JSON (`tests/ovsdb_direct.rs` checks it), without
/// building a [`Value`] first.
struct NotationVisitor {
    datum: bool,
}

impl NotationVisitor {
    fn atom<E>(self, a: Atom) -> Result<Parsed, E> {
        Ok(if self.datum { Parsed::Datum(Datum::Set(vec![a])) } else { Parsed::Atom(a) })
    }
}

/// The first element of a notation array: `"set"`, `"map"`, `"uuid"` or
/// `"named-uuid"`.
#[derive(Clone, Copy, PartialEq)]
enum Tag {
    Set,
    Map,
    Uuid,
    NamedUuid,
}

impl<'de> Deserialize<'de> for Tag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Tag;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"set\", \"map\", \"uuid\" or \"named-uuid\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Tag, E> {
                match s {
                    "set" => Ok(Tag::Set),
                    "map" => Ok(Tag::Map),
                    "uuid" => Ok(Tag::Uuid),
                    "named-uuid" => Ok(Tag::NamedUuid),
                    other => Err(E::custom(format!("expected an atom, got an array tagged {other:?}"))),
                }
            }
        }
        d.deserialize_str(V)
    }
}

/// A JSON array of atoms (the second element of `["set", ...]`).
struct Atoms;

impl<'de> de::DeserializeSeed<'de> for Atoms {
    type Value = Vec<Atom>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Atom>, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = Vec<Atom>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of atoms")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Atom>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(a) = seq.next_element::<Atom>()? {
                    out.push(a);
                }
                Ok(out)
            }
        }
        d.deserialize_seq(V)
    }
}

/// A JSON array of `[key, value]` pairs (the second element of `["map", ...]`).
struct Pairs;

impl<'de> de::DeserializeSeed<'de> for Pairs {
    type Value = BTreeMap<Atom, Atom>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = BTreeMap<Atom, Atom>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of [key, value] pairs")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut m = BTreeMap::new();
                while let Some(Pair(k, v)) = seq.next_element::<Pair>()? {
                    // A later duplicate key wins, as in `Datum::from_json`.
                    m.insert(k, v);
                }
                Ok(m)
            }
        }
        d.deserialize_seq(V)
    }
}

/// One `[key, value]` pair of a map.
struct Pair(Atom, Atom);

impl<'de> Deserialize<'de> for Pair {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = Pair;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a [key, value] pair")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Pair, A::Error> {
                let not_pair = || de::Error::custom("map element is not a pair");
                let k = seq.next_element::<Atom>()?.ok_or_else(not_pair)?;
                let v = seq.next_element::<Atom>()?.ok_or_else(not_pair)?;
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(not_pair());
                }
                Ok(Pair(k, v))
            }
        }
        d.deserialize_seq(V)
    }
}

impl<'de> de::Visitor<'de> for NotationVisitor {
    type Value = Parsed;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.datum { "an OVSDB datum" } else { "an OVSDB atom" })
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Parsed, E> {
        self.atom(Atom::Boolean(b))
    }

    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Parsed, E> {
        self.atom(Atom::Integer(i))
    }

    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Parsed, E> {
        // Beyond i64: a real, as `serde_json::Number::as_f64` gives it.
        self.atom(i64::try_from(u).map_or(Atom::Real(u as f64), Atom::Integer))
    }

    fn visit_f64<E: de::Error>(self, r: f64) -> Result<Parsed, E> {
        self.atom(Atom::Real(r))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Parsed, E> {
        self.atom(Atom::String(s.to_owned()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Parsed, E> {
        self.atom(Atom::String(s))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Parsed, A::Error> {
        let short = || de::Error::custom("expected an atom or datum, got an array that is not a pair");
        let tag = seq.next_element::<Tag>()?.ok_or_else(short)?;
        let out = match tag {
            Tag::Set | Tag::Map if !self.datum => {
                return Err(de::Error::custom("expected an atom, got a set or map"));
            }
            Tag::Set => {
                let atoms = seq.next_element_seed(Atoms)?.ok_or_else(short)?;
                Parsed::Datum(Datum::set(atoms))
            }
            Tag::Map => {
                let m = seq.next_element_seed(Pairs)?.ok_or_else(short)?;
                Parsed::Datum(Datum::Map(m.into_iter().collect()))
            }
            Tag::Uuid => {
                let s = seq.next_element::<String>()?.ok_or_else(short)?;
                self.atom(Atom::Uuid(Uuid::parse(&s).map_err(de::Error::custom)?))?
            }
            Tag::NamedUuid => {
                let s = seq.next_element::<String>()?.ok_or_else(short)?;
                self.atom(Atom::NamedUuid(s))?
            }
        };
        if seq.next_element::<de::IgnoredAny>()?.is_some() {
            return Err(short());
        }
        Ok(out)
    }
}

/// A column's value: a set (one atom is a set of one) or a map.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Datum {
    /// Sorted, without duplicates (use [`Datum::set`] to build one).
    Set(Vec<Atom>),
    /// Sorted by key, keys unique (use [`Datum::map`] to build one).
    Map(Vec<(Atom, Atom)>),
}

impl Datum {
    /// The empty set: how OVSDB spells "no value" for an optional column.
    pub fn empty_set() -> Self {
        Datum::Set(Vec::new())
    }

    /// The empty map.
    pub fn empty_map() -> Self {
        Datum::Map(Vec::new())
    }

    /// A canonical set from any atoms (sorted, duplicates dropped).
    pub fn set<A: Into<Atom>>(atoms: impl IntoIterator<Item = A>) -> Self {
        let mut v: Vec<Atom> = atoms.into_iter().map(Into::into).collect();
        v.sort();
        v.dedup();
        Datum::Set(v)
    }

    /// A canonical map from key/value pairs (sorted; a later duplicate key wins).
    pub fn map<K: Into<Atom>, V: Into<Atom>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        let m: BTreeMap<Atom, Atom> = pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        Datum::Map(m.into_iter().collect())
    }

    /// A set of UUID references to rows inserted in the same transaction.
    pub fn named_uuid(name: &str) -> Self {
        Datum::Set(vec![Atom::NamedUuid(name.to_owned())])
    }

    /// Number of elements (atoms of a set, pairs of a map).
    pub fn len(&self) -> usize {
        match self {
            Datum::Set(s) => s.len(),
            Datum::Map(m) => m.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The only atom of a set of one.
    pub fn as_atom(&self) -> Option<&Atom> {
        match self {
            Datum::Set(s) if s.len() == 1 => s.first(),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        self.as_atom().and_then(Atom::as_str)
    }

    pub fn as_integer(&self) -> Option<i64> {
        self.as_atom().and_then(Atom::as_integer)
    }

    pub fn as_real(&self) -> Option<f64> {
        self.as_atom().and_then(Atom::as_real)
    }

    pub fn as_bool(&self) -> Option<bool> {
        self.as_atom().and_then(Atom::as_bool)
    }

    pub fn as_uuid(&self) -> Option<Uuid> {
        self.as_atom().and_then(Atom::as_uuid)
    }

    /// The atoms of a set (a map gives `None`).
    pub fn as_set(&self) -> Option<&[Atom]> {
        match self {
            Datum::Set(s) => Some(s),
            Datum::Map(_) => None,
        }
    }

    /// The UUIDs of a set of references (other atoms are skipped).
    pub fn uuids(&self) -> Vec<Uuid> {
        self.as_set().unwrap_or(&[]).iter().filter_map(Atom::as_uuid).collect()
    }

    /// The pairs of a map (an empty set counts as an empty map).
    pub fn as_pairs(&self) -> Option<&[(Atom, Atom)]> {
        match self {
            Datum::Map(m) => Some(m),
            Datum::Set(s) if s.is_empty() => Some(&[]),
            Datum::Set(_) => None,
        }
    }

    /// A string-to-string map (like `external_ids` or `options`); `None` if
    /// this is not a map or holds a non-string key or value.
    pub fn as_string_map(&self) -> Option<BTreeMap<String, String>> {
        self.as_pairs()?.iter().map(|(k, v)| Some((k.as_str()?.to_owned(), v.as_str()?.to_owned()))).collect()
    }

    /// A string-to-string map; the same as [`Datum::as_string_map`].
    pub fn as_map(&self) -> Option<BTreeMap<String, String>> {
        self.as_string_map()
    }

    /// The value of `key` in a map.
    pub fn get(&self, key: &Atom) -> Option<&Atom> {
        let pairs = self.as_pairs()?;
        pairs.binary_search_by(|(k, _)| k.cmp(key)).ok().map(|i| &pairs[i].1)
    }

    /// The datum as JSON.
    pub fn to_json(&self) -> Value {
        match self {
            Datum::Set(s) if s.len() == 1 => s[0].to_json(),
            Datum::Set(s) => Value::Array(vec!["set".into(), Value::Array(s.iter().map(Atom::to_json).collect())]),
            Datum::Map(m) => Value::Array(vec![
                "map".into(),
                Value::Array(m.iter().map(|(k, v)| Value::Array(vec![k.to_json(), v.to_json()])).collect()),
            ]),
        }
    }

    /// A datum from JSON (canonicalised).
    pub fn from_json(v: &Value) -> Result<Self, NotationError> {
        if let Value::Array(a) = v
            && a.len() == 2
            && let Value::String(tag) = &a[0]
        {
            match tag.as_str() {
                "set" => {
                    let Value::Array(elems) = &a[1] else {
                        return Err(NotationError(format!("set without an array: {v}")));
                    };
                    let atoms = elems.iter().map(Atom::from_json).collect::<Result<Vec<_>, _>>()?;
                    return Ok(Datum::set(atoms));
                }
                "map" => {
                    let Value::Array(elems) = &a[1] else {
                        return Err(NotationError(format!("map without an array: {v}")));
                    };
                    let mut m = BTreeMap::new();
                    for e in elems {
                        match e {
                            Value::Array(kv) if kv.len() == 2 => {
                                m.insert(Atom::from_json(&kv[0])?, Atom::from_json(&kv[1])?);
                            }
                            _ => return Err(NotationError(format!("map element is not a pair: {e}"))),
                        }
                    }
                    return Ok(Datum::Map(m.into_iter().collect()));
                }
                _ => {}
            }
        }
        Ok(Datum::Set(vec![Atom::from_json(v)?]))
    }
}

impl Default for Datum {
    fn default() -> Self {
        Datum::empty_set()
    }
}

macro_rules! datum_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Datum {
            fn from(v: $t) -> Self {
                Datum::Set(vec![Atom::from(v)])
            }
        }
    )*};
}
datum_from!(i64, f64, bool, &str, String, Uuid);

impl From<Atom> for Datum {
    fn from(v: Atom) -> Self {
        Datum::Set(vec![v])
    }
}

impl Serialize for Datum {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Datum::Set(v) if v.len() == 1 => v[0].serialize(s),
            Datum::Set(v) => {
                let mut seq = s.serialize_seq(Some(2))?;
                seq.serialize_element("set")?;
                seq.serialize_element(v)?;
                seq.end()
            }
            Datum::Map(m) => {
                let mut seq = s.serialize_seq(Some(2))?;
                seq.serialize_element("map")?;
                seq.serialize_element(m)?;
                seq.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Datum {
    /// Straight from the wire text, no [`Value`] in between; the same
    /// datums (and the same refusals) as [`Datum::from_json`].
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NotationVisitor { datum: true }).map(|n| match n {
            Parsed::Datum(d) => d,
            Parsed::Atom(a) => Datum::Set(vec![a]),
        })
    }
}

/// A row: column name to value. Rows from the server may be partial (only
/// the columns asked for, or only the changed ones).
pub type Row = BTreeMap<String, Datum>;

/// A row from JSON (`{"column": datum, ...}`).
pub fn row_from_json(v: &Value) -> Result<Row, NotationError> {
    let Value::Object(o) = v else {
        return Err(NotationError(format!("row is not an object: {v}")));
    };
    o.iter()
        .map(|(k, v)| Ok((k.clone(), Datum::from_json(v).map_err(|e| NotationError(format!("column {k}: {}", e.0)))?)))
        .collect()
}

/// A row straight from the wire text (`{"column": datum, ...}`), no
/// [`Value`] in between: what [`row_from_json`] gives for the same JSON. A
/// column named twice is refused (the `Value` path would keep the last).
pub struct RowSeed;

impl<'de> de::DeserializeSeed<'de> for RowSeed {
    type Value = Row;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Row, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> de::Visitor<'de> for RowSeed {
    type Value = Row;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a row (an object of columns)")
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Row, A::Error> {
        let mut row = Row::new();
        while let Some(col) = map.next_key::<String>()? {
            let d = map.next_value::<Datum>().map_err(|e| de::Error::custom(format_args!("column {col}: {e}")))?;
            if let Some(_dup) = row.insert(col, d) {
                return Err(de::Error::custom("a column appears twice in a row"));
            }
        }
        Ok(row)
    }
}

/// A row as JSON.
pub fn row_to_json(row: &Row) -> Value {
    Value::Object(row.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn atoms_round_trip() {
        let u = "36a9f2b4-9b4d-4f5d-8b9d-8f3f9a2b1c0d";
        for (j, a) in [
            (json!(5), Atom::Integer(5)),
            (json!(-1), Atom::Integer(-1)),
            (json!(1.5), Atom::Real(1.5)),
            (json!(true), Atom::Boolean(true)),
            (json!("br0"), Atom::from("br0")),
            (json!(["uuid", u]), Atom::Uuid(Uuid::parse(u).unwrap())),
            (json!(["named-uuid", "row1"]), Atom::NamedUuid("row1".into())),
        ] {
            assert_eq!(Atom::from_json(&j).unwrap(), a);
            assert_eq!(a.to_json(), j);
        }
    }

    #[test]
    fn set_of_one_is_the_bare_atom() {
        let d = Datum::from("internal");
        assert_eq!(serde_json::to_value(&d).unwrap(), json!("internal"));
        assert_eq!(Datum::from_json(&json!(["set", ["internal"]])).unwrap(), d);
        assert_eq!(d.as_str(), Some("internal"));
    }

    #[test]
    fn sets_and_maps_are_canonical() {
        let d = Datum::from_json(&json!(["set", [3, 1, 2, 1]])).unwrap();
        assert_eq!(d, Datum::set([1i64, 2, 3]));
        assert_eq!(serde_json::to_value(&d).unwrap(), json!(["set", [1, 2, 3]]));
        let m = Datum::from_json(&json!(["map", [["b", "2"], ["a", "1"]]])).unwrap();
        assert_eq!(serde_json::to_value(&m).unwrap(), json!(["map", [["a", "1"], ["b", "2"]]]));
        let sm = m.as_string_map().unwrap();
        assert_eq!(sm.get("a").map(String::as_str), Some("1"));
        assert_eq!(m.get(&Atom::from("b")), Some(&Atom::from("2")));
        assert_eq!(Datum::empty_set().as_string_map(), Some(BTreeMap::new()));
        assert_eq!(serde_json::to_value(Datum::empty_set()).unwrap(), json!(["set", []]));
    }

    #[test]
    fn bad_notation_is_an_error_not_a_panic() {
        for j in [json!(null), json!({}), json!(["uuid", "nope"]), json!(["map", [[1]]]), json!(["set", 1])] {
            assert!(Datum::from_json(&j).is_err(), "{j}");
        }
        assert!(row_from_json(&json!([1])).is_err());
    }
}
