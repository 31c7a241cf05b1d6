//! The monitor cache against wire JSON recorded from a real `ovsdb-server`
//! (OVS 3.1), replayed through the framing decoder.
//!
//! `tests/data/ovsdb/monitor-session.wire` holds, byte for byte, what the
//! server sent on one unix connection that asked for a `monitor_cond`
//! (id 1, monitor "c") and a `monitor` (id 2, monitor "m") of the same tables,
//! while another client ran the transactions listed in
//! `tests/data/ovsdb/README.md`, and finally a `select` of every row (id 3).
//! Re-record with `cargo test --test ovsdb_cache -- --ignored record`.

mod ovsdb_support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::BytesMut;
use ovsnet::ovsdb::framing::JsonCodec;
use ovsnet::ovsdb::rpc::{Json, Message};
use ovsnet::ovsdb::{Cache, DatabaseSchema, Row, TableUpdates, Uuid};
use serde_json::{Value, json};
use tokio_util::codec::Decoder;

const TABLES: [&str; 4] = ["Open_vSwitch", "Bridge", "Port", "Interface"];

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ovsdb").join(name)
}

fn schema() -> Arc<DatabaseSchema> {
    let text = std::fs::read_to_string(ovsdb_support::schema_path()).expect("schema file");
    Arc::new(DatabaseSchema::parse(&text).expect("schema parses"))
}

/// A table of a cache as full rows (defaults filled in), user columns only.
fn cache_table(cache: &Cache, table: &str) -> Vec<(Uuid, Row)> {
    let cols: Vec<String> = cache.schema().tables[table].columns.keys().cloned().collect();
    cache
        .table(table)
        .map(|(u, _)| (*u, cols.iter().map(|c| (c.clone(), cache.get(table, u, c).expect("row"))).collect()))
        .collect()
}

fn select_table(rows: &Value, schema: &DatabaseSchema, table: &str) -> Vec<(Uuid, Row)> {
    let cols: Vec<String> = schema.tables[table].columns.keys().cloned().collect();
    let mut out: Vec<(Uuid, Row)> = rows
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            let r = ovsnet::ovsdb::notation::row_from_json(r).expect("row");
            (r["_uuid"].as_uuid().expect("_uuid"), cols.iter().map(|c| (c.clone(), r[c].clone())).collect())
        })
        .collect();
    out.sort_by_key(|(u, _)| *u);
    out
}

#[test]
fn recorded_update_and_update2_rebuild_the_database() {
    let wire = std::fs::read(data("monitor-session.wire")).expect("recorded wire");
    let schema = schema();
    let mut v2 = Cache::new(schema.clone());
    let mut v1 = Cache::new(schema.clone());
    let mut codec = JsonCodec::default();
    // Feed it in odd-sized pieces, as a socket would.
    let mut buf = BytesMut::new();
    let mut msgs = Vec::new();
    for chunk in wire.chunks(997) {
        buf.extend_from_slice(chunk);
        while let Some(m) = codec.decode(&mut buf).expect("frame") {
            msgs.push(m);
        }
    }
    assert!(codec.decode_eof(&mut buf).expect("clean end").is_none());
    let (mut n_update, mut n_update2, mut modifies) = (0, 0, 0);
    let mut select = None;
    // Each cache twice: through a `Value` tree (the reference) and parsed
    // straight from the text (what the client does); they must agree.
    let mut v2_direct = Cache::new(schema.clone());
    let mut v1_direct = Cache::new(schema.clone());
    let direct = |j: &Json, update2: bool| {
        let (a, b) = match update2 {
            true => (
                TableUpdates::from_update2_slice(j.as_bytes()),
                TableUpdates::from_update2(&j.to_value().expect("json")),
            ),
            false => {
                (TableUpdates::from_update_slice(j.as_bytes()), TableUpdates::from_update(&j.to_value().expect("json")))
            }
        };
        let a = a.expect("direct parse");
        assert_eq!(a, b.expect("Value parse"), "direct and Value parses differ on {j}");
        a
    };
    for m in msgs {
        match m {
            Message::Response { id, result } if id == json!(1) => {
                v2.apply_update2(&result.to_value().expect("json")).expect("initial2");
                v2_direct.apply_owned(direct(&result, true)).expect("initial2");
            }
            Message::Response { id, result } if id == json!(2) => {
                v1.apply_update(&result.to_value().expect("json")).expect("initial");
                v1_direct.apply_owned(direct(&result, false)).expect("initial");
            }
            Message::Response { id, result } if id == json!(3) => select = Some(result.to_value().expect("json")),
            Message::Notification { method, params } if method == "update2" => {
                let parts = params.elements().expect("params");
                assert_eq!(parts[0], json!("c"));
                modifies += parts[1].to_string().matches("\"modify\"").count();
                v2.apply_update2(&parts[1].to_value().expect("json")).expect("update2");
                v2_direct.apply_owned(direct(&parts[1], true)).expect("update2");
                n_update2 += 1;
            }
            Message::Notification { method, params } if method == "update" => {
                let parts = params.elements().expect("params");
                assert_eq!(parts[0], json!("m"));
                v1.apply_update(&parts[1].to_value().expect("json")).expect("update");
                v1_direct.apply_owned(direct(&parts[1], false)).expect("update");
                n_update += 1;
            }
            other => panic!("unexpected message {other:?}"),
        }
        assert_eq!(v2.tables(), v2_direct.tables());
        assert_eq!(v1.tables(), v1_direct.tables());
    }
    assert!(n_update >= 5 && n_update == n_update2, "{n_update} updates, {n_update2} update2s");
    assert!(modifies >= 5, "the recording exercises modify: {modifies}");
    let select = select.expect("final select");
    for (i, table) in TABLES.iter().enumerate() {
        let want = select_table(&select[i]["rows"], &schema, table);
        assert_eq!(cache_table(&v2, table), want, "update2 cache, table {table}");
        assert_eq!(cache_table(&v1, table), want, "update cache, table {table}");
    }
    // Something is left in each table, so the comparison is not vacuous.
    for t in ["Bridge", "Port", "Interface"] {
        assert!(v2.table(t).count() >= 1, "{t}");
    }
}

#[test]
fn the_project_schema_is_the_recorded_version() {
    let s = schema();
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ovsdb-schemas/README.md")).expect("README");
    let v = s.version.clone().expect("version");
    assert_eq!(v, "8.3.1");
    assert!(readme.contains(&format!("| {v} |")), "README records version {v}");
    assert_eq!(s.name, "Open_vSwitch");
    assert_eq!(s.tables.len(), 19);
}

/// Records `monitor-session.wire` from a private server (run on demand).
#[tokio::test]
#[ignore = "records test data; run with --ignored to refresh it"]
async fn record_monitor_session() {
    use ovsnet::ovsdb::{Client, Condition, ConnectOptions, Datum, Mutation, Mutator, Operation};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    assert!(ovsdb_support::have_ovs());
    let srv = ovsdb_support::Standalone::start(false);
    let c = Client::connect(&srv.unix(), &ConnectOptions::default()).await.expect("connect");
    let row = |pairs: Vec<(&str, Datum)>| -> Row { pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect() };
    c.transact(
        "Open_vSwitch",
        vec![
            Operation::insert("Interface", row(vec![("name", "eth0".into()), ("type", "internal".into())]))
                .uuid_name("i0"),
            Operation::insert("Port", row(vec![("name", "eth0".into()), ("interfaces", Datum::named_uuid("i0"))]))
                .uuid_name("p0"),
            Operation::insert(
                "Bridge",
                row(vec![("name", "br0".into()), ("ports", Datum::named_uuid("p0")), ("fail_mode", "secure".into())]),
            )
            .uuid_name("b0"),
            Operation::insert("Open_vSwitch", row(vec![("bridges", Datum::named_uuid("b0"))])),
        ],
    )
    .await
    .expect("initial rows");

    let path = srv.tmp.path().join("db.sock");
    let mut raw = tokio::net::UnixStream::connect(&path).await.expect("raw connect");
    let all: serde_json::Map<String, Value> = TABLES.iter().map(|t| (t.to_string(), json!({}))).collect();
    raw.write_all(
        json!({"method": "monitor_cond", "params": ["Open_vSwitch", "c", all], "id": 1}).to_string().as_bytes(),
    )
    .await
    .expect("send");
    raw.write_all(json!({"method": "monitor", "params": ["Open_vSwitch", "m", all], "id": 2}).to_string().as_bytes())
        .await
        .expect("send");
    // Wait for both replies before changing anything.
    let mut wire = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    while !(String::from_utf8_lossy(&wire).contains("\"id\":1") && String::from_utf8_lossy(&wire).contains("\"id\":2"))
    {
        let n = raw.read(&mut chunk).await.expect("read");
        assert!(n > 0);
        wire.extend_from_slice(&chunk[..n]);
    }
    let br = Condition::eq("name", "br0");
    let steps = vec![
        vec![Operation::update(
            "Bridge",
            vec![br.clone()],
            row(vec![
                ("flood_vlans", Datum::set([10i64, 20, 30])),
                ("external_ids", Datum::map([("a", "1"), ("b", "2")])),
                ("datapath_type", "netdev".into()),
            ]),
        )],
        vec![Operation::mutate(
            "Bridge",
            vec![br.clone()],
            vec![
                Mutation::new("flood_vlans", Mutator::Delete, Datum::set([20i64])),
                Mutation::new("flood_vlans", Mutator::Insert, Datum::set([40i64])),
                Mutation::new("external_ids", Mutator::Delete, Datum::set(["a"])),
                Mutation::new("external_ids", Mutator::Insert, Datum::map([("c", "3")])),
            ],
        )],
        vec![Operation::update(
            "Bridge",
            vec![br.clone()],
            row(vec![("external_ids", Datum::map([("b", "22"), ("c", "3")])), ("fail_mode", Datum::empty_set())]),
        )],
        vec![
            Operation::insert(
                "Interface",
                row(vec![
                    ("name", "vx0".into()),
                    ("type", "vxlan".into()),
                    ("options", Datum::map([("remote_ip", "flow"), ("key", "flow")])),
                ]),
            )
            .uuid_name("i1"),
            Operation::insert("Port", row(vec![("name", "vx0".into()), ("interfaces", Datum::named_uuid("i1"))]))
                .uuid_name("p1"),
            Operation::mutate(
                "Bridge",
                vec![br.clone()],
                vec![Mutation::new("ports", Mutator::Insert, Datum::named_uuid("p1"))],
            ),
        ],
        vec![Operation::update(
            "Interface",
            vec![Condition::eq("name", "vx0")],
            row(vec![
                ("options", Datum::map([("remote_ip", "flow"), ("key", "100")])),
                ("mtu_request", Datum::from(1400)),
            ]),
        )],
        vec![Operation::update("Port", vec![Condition::eq("name", "eth0")], row(vec![("tag", Datum::from(5))]))],
        vec![Operation::update("Port", vec![Condition::eq("name", "eth0")], row(vec![("tag", Datum::empty_set())]))],
        vec![Operation::mutate(
            "Bridge",
            vec![br.clone()],
            vec![Mutation::new(
                "ports",
                Mutator::Delete,
                Datum::set([ovsnet::ovsdb::Atom::Uuid(
                    c.transact(
                        "Open_vSwitch",
                        vec![Operation::select("Port", vec![Condition::eq("name", "eth0")]).columns(["_uuid"])],
                    )
                    .await
                    .expect("port uuid")[0]
                        .rows
                        .as_ref()
                        .expect("rows")[0]["_uuid"]
                        .as_uuid()
                        .expect("uuid"),
                )]),
            )],
        )],
    ];
    for ops in steps {
        c.transact("Open_vSwitch", ops).await.expect("step");
    }
    let selects: Vec<Value> = TABLES.iter().map(|t| json!({"op": "select", "table": t, "where": []})).collect();
    let mut params = vec![json!("Open_vSwitch")];
    params.extend(selects);
    raw.write_all(json!({"method": "transact", "params": params, "id": 3}).to_string().as_bytes()).await.expect("send");
    // The reply to id 3 comes after every notification of the steps above.
    loop {
        let n = raw.read(&mut chunk).await.expect("read");
        assert!(n > 0);
        wire.extend_from_slice(&chunk[..n]);
        let mut codec = JsonCodec::default();
        let mut b = BytesMut::from(&wire[..]);
        let mut done = false;
        while let Ok(Some(m)) = codec.decode(&mut b) {
            if matches!(&m, Message::Response { id, .. } if *id == json!(3)) {
                done = true;
            }
        }
        if done {
            break;
        }
    }
    std::fs::create_dir_all(data("")).expect("mkdir");
    std::fs::write(data("monitor-session.wire"), &wire).expect("write");
}
