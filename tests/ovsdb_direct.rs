//! The monitor reader parses `update`/`update2` table updates straight from
//! their JSON text into rows ([`TableUpdates::from_update2_slice`]); the
//! reference is the older path through a `serde_json::Value` tree
//! ([`TableUpdates::from_update2`]). On any JSON text without a member named
//! twice, both must give the same rows, or both a (typed) error, never a
//! panic. Recorded `ovsdb-server` traffic is compared in `ovsdb_cache.rs`.

use ovsnet::ovsdb::notation::NotationError;
use ovsnet::ovsdb::{Atom, Datum, TableUpdates, Uuid};
use proptest::prelude::*;
use serde_json::{Value, json};

type Parsed = Result<TableUpdates, NotationError>;

/// Both paths on one text: equal rows, or an error from both.
fn both(text: &str, update2: bool) -> (Parsed, Parsed) {
    let direct = match update2 {
        true => TableUpdates::from_update2_slice(text.as_bytes()),
        false => TableUpdates::from_update_slice(text.as_bytes()),
    };
    let reference = match serde_json::from_str::<Value>(text) {
        Ok(v) if update2 => TableUpdates::from_update2(&v),
        Ok(v) => TableUpdates::from_update(&v),
        Err(e) => Err(NotationError(e.to_string())),
    };
    (direct, reference)
}

fn agree(text: &str, update2: bool) -> Result<(), TestCaseError> {
    match both(text, update2) {
        (Ok(a), Ok(b)) => prop_assert_eq!(a, b, "{}", text),
        (Err(_), Err(_)) => {}
        (a, b) => prop_assert!(false, "direct {:?} but Value path {:?} on {}", a, b, text),
    }
    Ok(())
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e20f64..1e20).prop_map(Value::from),
        "[a-z\"\\\\ü]{0,6}".prop_map(Value::from),
        Just(json!("uuid")),
        Just(json!("set")),
        Just(json!("map")),
        Just(json!("named-uuid")),
        Just(json!("11111111-2222-4333-8444-555555555555")),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,3}", inner, 0..3).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn atom_json() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        // Beyond i64: a real on both paths.
        (i64::MAX as u64 + 1..=u64::MAX).prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        Just(json!(1.0)),
        Just(json!(-0.0)),
        any::<bool>().prop_map(Value::Bool),
        ".{0,8}".prop_map(Value::from),
        any::<u128>().prop_map(|u| json!(["uuid", uuid::Uuid::from_u128(u).to_string()])),
        any::<u128>().prop_map(|u| json!(["uuid", uuid::Uuid::from_u128(u).simple().to_string().to_uppercase()])),
        "[a-z][a-z0-9_]{0,6}".prop_map(|n| json!(["named-uuid", n])),
    ]
}

/// A datum as the server writes it, or (about one time in six) something
/// that is not one.
fn datum_json() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => atom_json(),
        3 => prop::collection::vec(atom_json(), 0..5).prop_map(|a| json!(["set", a])),
        3 => prop::collection::vec((atom_json(), atom_json()), 0..5)
            .prop_map(|p| json!(["map", p.into_iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>()])),
        1 => Just(json!(["set", [1, ["set", [2]]]])),
        1 => Just(json!(["map", [[1]]])),
        1 => Just(json!(["map", [[1, 2, 3]]])),
        1 => Just(json!(["uuid", "not-a-uuid"])),
        1 => Just(json!(["set", [1], 2])),
        1 => Just(json!(["set"])),
        1 => any_json(),
    ]
}

/// A datum as the server writes it (valid).
fn valid_datum_json() -> impl Strategy<Value = Value> {
    prop_oneof![
        atom_json(),
        prop::collection::vec(atom_json(), 0..5).prop_map(|a| json!(["set", a])),
        prop::collection::vec((atom_json(), atom_json()), 0..5)
            .prop_map(|p| json!(["map", p.into_iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>()])),
    ]
}

/// Valid `<table-updates2>`: every row parses.
fn valid_table_updates2_json() -> impl Strategy<Value = Value> {
    let row = prop::collection::btree_map("[a-z_]{1,8}", valid_datum_json(), 0..6)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
        .boxed();
    let update = prop_oneof![
        row.clone().prop_map(|r| json!({"initial": r})),
        row.clone().prop_map(|r| json!({"insert": r})),
        row.prop_map(|r| json!({"modify": r})),
        Just(json!({"delete": null})),
    ];
    let table =
        prop::collection::btree_map(any::<u128>().prop_map(|u| uuid::Uuid::from_u128(u).to_string()), update, 0..5)
            .prop_map(|m| Value::Object(m.into_iter().collect()));
    prop::collection::btree_map("[A-Z][a-z]{0,5}", table, 0..4).prop_map(|m| Value::Object(m.into_iter().collect()))
}

fn row_json() -> impl Strategy<Value = Value> {
    prop_oneof![
        12 => prop::collection::btree_map("[a-z_]{1,8}", datum_json(), 0..6)
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        1 => any_json(),
    ]
}

fn row_update2_json() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => row_json().prop_map(|r| json!({"initial": r})),
        4 => row_json().prop_map(|r| json!({"insert": r})),
        4 => row_json().prop_map(|r| json!({"modify": r})),
        2 => Just(json!({"delete": null})),
        1 => Just(json!({"delete": {"whatever": [1]}})),
        1 => row_json().prop_map(|r| json!({"explode": r})),
        1 => row_json().prop_map(|r| json!({"insert": r, "delete": null})),
        1 => Just(json!({})),
        1 => any_json(),
    ]
    .boxed()
}

fn row_update_json() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => row_json().prop_map(|r| json!({"new": r})),
        4 => (row_json(), row_json()).prop_map(|(o, n)| json!({"old": o, "new": n})),
        2 => row_json().prop_map(|r| json!({"old": r})),
        1 => row_json().prop_map(|r| json!({"new": r, "extra": [1, {"x": null}]})),
        1 => Just(json!({})),
        1 => any_json(),
    ]
    .boxed()
}

fn row_key() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => (0u128..4).prop_map(|u| uuid::Uuid::from_u128(0xabcd_0000 + u).to_string()),
        // The same UUIDs spelled otherwise: a clash with the above.
        2 => (0u128..4).prop_map(|u| uuid::Uuid::from_u128(0xabcd_0000 + u).to_string().to_uppercase()),
        1 => "[a-z0-9-]{0,10}",
    ]
}

fn table_updates_json(row: BoxedStrategy<Value>) -> impl Strategy<Value = Value> {
    let table = prop::collection::btree_map(row_key(), row, 0..5).prop_map(|m| Value::Object(m.into_iter().collect()));
    prop_oneof![
        12 => prop::collection::btree_map("[A-Z][a-z]{0,5}", table, 0..4)
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        1 => any_json(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn update2_direct_parse_is_the_value_parse(v in table_updates_json(row_update2_json()), pretty in any::<bool>()) {
        let text = if pretty { serde_json::to_string_pretty(&v).expect("json") } else { v.to_string() };
        agree(&text, true)?;
    }

    #[test]
    fn valid_update2_parses_the_same_on_both_paths(v in valid_table_updates2_json()) {
        let (direct, reference) = both(&v.to_string(), true);
        let direct = direct.map_err(|e| TestCaseError::fail(format!("{e} on {v}")))?;
        prop_assert_eq!(&direct, &reference.map_err(|e| TestCaseError::fail(e.to_string()))?);
        prop_assert_eq!(direct.len(), v.as_object().map_or(0, |t| t.values().map(|r| r.as_object().map_or(0, |r| r.len())).sum()));
    }

    #[test]
    fn update_direct_parse_is_the_value_parse(v in table_updates_json(row_update_json())) {
        agree(&v.to_string(), false)?;
    }

    #[test]
    fn datum_direct_parse_is_the_value_parse(v in datum_json()) {
        let direct = serde_json::from_str::<Datum>(&v.to_string());
        let reference = Datum::from_json(&v);
        match (direct, reference) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(_), Err(_)) => {}
            (a, b) => prop_assert!(false, "direct {:?} but Value path {:?} on {}", a, b, v),
        }
        let atom = serde_json::from_str::<Atom>(&v.to_string());
        match (atom, Atom::from_json(&v)) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(_), Err(_)) => {}
            (a, b) => prop_assert!(false, "direct {:?} but Value path {:?} on {}", a, b, v),
        }
    }

    /// Any bytes at all: an error or rows, never a panic; and whenever the
    /// bytes are JSON, the two paths agree.
    #[test]
    fn arbitrary_text_never_panics(text in "[\\[\\]{}\",:0-9a-z \\-]{0,64}") {
        let _ = TableUpdates::from_update_slice(text.as_bytes());
        agree(&text, true)?;
    }
}

const U: &str = "11111111-2222-4333-8444-5555555abcde";

#[test]
fn malformed_updates_are_typed_errors_on_both_paths() {
    let cases = [
        // Not an object at each level.
        json!([1]),
        json!({"Bridge": [1]}),
        json!({"Bridge": {U: [1]}}),
        json!({"Bridge": {U: {"insert": [1]}}}),
        // Bad keys and kinds.
        json!({"Bridge": {"not-a-uuid": {"insert": {}}}}),
        json!({"Bridge": {U: {"explode": {}}}}),
        json!({"Bridge": {U: {}}}),
        json!({"Bridge": {U: {"insert": {}, "modify": {}}}}),
        // One UUID spelled twice.
        json!({"Bridge": {U: {"insert": {}}, U.to_uppercase(): {"delete": null}}}),
        // Wrong types in columns.
        json!({"Bridge": {U: {"insert": {"name": null}}}}),
        json!({"Bridge": {U: {"insert": {"name": {"a": 1}}}}}),
        json!({"Bridge": {U: {"insert": {"ports": ["set", [["uuid", "x"]]]}}}}),
        json!({"Bridge": {U: {"insert": {"ports": ["set", 1]}}}}),
        json!({"Bridge": {U: {"insert": {"ids": ["map", [["a"]]]}}}}),
        json!({"Bridge": {U: {"insert": {"ids": ["map", [["a", ["set", []]]]]}}}}),
        json!({"Bridge": {U: {"insert": {"x": ["uuid", U, 1]}}}}),
        json!({"Bridge": {U: {"insert": {"x": ["set", [["set", [1]]]]}}}}),
        json!({"Bridge": {U: {"insert": {"x": ["other", 1]}}}}),
        json!({"Bridge": {U: {"insert": {"x": []}}}}),
    ];
    for c in cases {
        let (direct, reference) = both(&c.to_string(), true);
        let (Err(d), Err(r)) = (&direct, &reference) else {
            panic!("{c}: direct {direct:?}, Value path {reference:?}")
        };
        assert!(!d.0.is_empty() && !r.0.is_empty());
    }
    // `update`: rows that are no objects.
    for c in [json!({"Bridge": {U: {"new": 1}}}), json!({"Bridge": {U: {"old": null}}}), json!({"Bridge": {U: 7}})] {
        let (direct, reference) = both(&c.to_string(), false);
        assert!(direct.is_err() && reference.is_err(), "{c}: {direct:?} {reference:?}");
    }
    // Not JSON, or trailing bytes: errors too.
    for t in ["", "{", "{\"Bridge\":{}} x", "{\"Bridge\":{\"", "nul"] {
        assert!(TableUpdates::from_update2_slice(t.as_bytes()).is_err(), "{t:?}");
    }
    // The error says where and what.
    let e = TableUpdates::from_update2_slice(json!({"Bridge": {U: {"insert": {"name": null}}}}).to_string().as_bytes())
        .expect_err("a null column");
    assert!(e.to_string().contains("column name"), "{e}");
}

#[test]
fn the_direct_parse_refuses_a_member_named_twice() {
    // The Value path silently keeps the last; the server never sends these.
    for t in [
        r#"{"Bridge":{},"Bridge":{}}"#.to_owned(),
        format!(r#"{{"Bridge":{{"{U}":{{"delete":null}},"{U}":{{"delete":null}}}}}}"#),
        format!(r#"{{"Bridge":{{"{U}":{{"insert":{{"a":1,"a":2}}}}}}}}"#),
        format!(r#"{{"Bridge":{{"{U}":{{"insert":{{}},"insert":{{}}}}}}}}"#),
    ] {
        assert!(TableUpdates::from_update2_slice(t.as_bytes()).is_err(), "{t}");
    }
    let t = format!(r#"{{"Bridge":{{"{U}":{{"new":{{}},"new":{{}}}}}}}}"#);
    assert!(TableUpdates::from_update_slice(t.as_bytes()).is_err());
}

#[test]
fn what_the_server_sends_parses_the_same() {
    let u = Uuid::parse(U).expect("uuid");
    let text = json!({
        "Interface": {U: {"initial": {
            "name": "ep0", "type": "patch", "ofport": 1, "mtu": ["set", []],
            "options": ["map", [["peer", "none0"]]],
            "external_ids": ["map", [["ovsnet-ip", "10.0.0.2/16"], ["a", "\u{1F600}\"\\"]]],
            "statistics": ["map", [["rx_bytes", 9_007_199_254_740_993_i64]]],
            "link_speed": 1e10,
            "ingress_policing_burst": 0,
            "status": ["map", []],
            "lacp_current": false
        }}},
        "Port": {U: {"modify": {"tag": ["set", []], "trunks": ["set", [3, 1, 2, 1]]}}},
        "Bridge": {U: {"delete": null}}
    })
    .to_string();
    let (direct, reference) = both(&text, true);
    let direct = direct.expect("direct");
    assert_eq!(direct, reference.expect("Value path"));
    let ovsnet::ovsdb::RowUpdate::Initial(row) = &direct.0["Interface"][&u] else { panic!("initial") };
    assert_eq!(row["statistics"].get(&Atom::from("rx_bytes")), Some(&Atom::Integer(9_007_199_254_740_993)));
    assert_eq!(row["link_speed"].as_real(), Some(1e10));
    assert_eq!(row["external_ids"].get(&Atom::from("a")), Some(&Atom::from("\u{1F600}\"\\")));
    assert_eq!(
        direct.0["Port"][&u],
        ovsnet::ovsdb::RowUpdate::Modify(
            [("tag".to_owned(), Datum::empty_set()), ("trunks".to_owned(), Datum::set([1i64, 2, 3]))]
                .into_iter()
                .collect()
        )
    );
}
