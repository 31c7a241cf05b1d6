//! The OVSDB client against a real, private `ovsdb-server`.

mod ovsdb_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ovsdb_support::{Standalone, have_ovs};
use ovsnet::ovsdb::{
    Atom, Cache, Client, Condition, ConnectOptions, Datum, Error, Function, MonitorEvent, MonitorRequest, Mutation,
    Mutator, Operation, Row, Uuid, WaitUntil,
};
use serde_json::json;

const DB: &str = "Open_vSwitch";

fn row<const N: usize>(pairs: [(&str, Datum); N]) -> Row {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn opts() -> ConnectOptions {
    ConnectOptions { request_timeout: Some(Duration::from_secs(20)), ..ConnectOptions::default() }
}

/// Creates the root row and one bridge `name`; returns the bridge's UUID.
async fn init_with_bridge(c: &Client, name: &str) -> Uuid {
    let r = c
        .transact(
            DB,
            vec![
                Operation::insert("Bridge", row([("name", Datum::from(name))])).uuid_name("br"),
                Operation::insert("Open_vSwitch", row([("bridges", Datum::named_uuid("br"))])),
            ],
        )
        .await
        .expect("init");
    r[0].uuid.expect("bridge uuid")
}

async fn bridge_names(c: &Client) -> Vec<String> {
    let r = c.transact(DB, vec![Operation::select("Bridge", vec![]).columns(["name"])]).await.expect("select");
    let mut names: Vec<String> =
        r[0].rows.iter().flatten().filter_map(|r| r.get("name")?.as_str().map(str::to_owned)).collect();
    names.sort();
    names
}

async fn next_event(m: &mut ovsnet::ovsdb::Monitor) -> MonitorEvent {
    tokio::time::timeout(Duration::from_secs(10), m.next()).await.expect("monitor event in time").expect("monitor open")
}

#[tokio::test]
async fn list_dbs_and_get_schema() {
    if !have_ovs() {
        return;
    }
    let srv = Standalone::start(false);
    let c = Client::connect(&srv.unix(), &opts()).await.expect("connect");
    let mut dbs = c.list_dbs().await.expect("list_dbs");
    dbs.sort();
    assert_eq!(dbs, ["Open_vSwitch", "_Server"]);
    let schema = c.get_schema(DB).await.expect("get_schema");
    assert_eq!(schema.name, DB);
    assert_eq!(schema.version.as_deref(), Some("8.3.1"));
    assert!(schema.tables["Interface"].columns["type"].type_.key.enum_.is_none());
    assert!(schema.tables["Open_vSwitch"].is_root);
    assert_eq!(schema.tables["Open_vSwitch"].max_rows, Some(1));
    // Cached: the same schema object again.
    assert!(Arc::ptr_eq(&schema, &c.get_schema(DB).await.expect("cached")));
    let server = c.get_schema("_Server").await.expect("_Server schema");
    assert!(server.tables.contains_key("Database"));
    match c.get_schema("Nope").await {
        Err(Error::Rpc(m)) => assert!(m.contains("unknown database"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.echo(json!(["ping", 1])).await.expect("echo"), json!(["ping", 1]));
}

#[tokio::test]
async fn transact_every_operation() {
    if !have_ovs() {
        return;
    }
    let srv = Standalone::start(false);
    let c = Client::connect(&srv.unix(), &opts()).await.expect("connect");
    let br = init_with_bridge(&c, "br0").await;

    // select with a condition and columns
    let r = c
        .transact(DB, vec![Operation::select("Bridge", vec![Condition::eq("name", "br0")]).columns(["_uuid", "name"])])
        .await
        .expect("select");
    let rows = r[0].rows.as_ref().expect("rows");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["_uuid"].as_uuid(), Some(br));

    // update, then mutate (map insert, and integer arithmetic), comment
    let r = c
        .transact(
            DB,
            vec![
                Operation::update(
                    "Bridge",
                    vec![Condition::uuid(br)],
                    row([("external_ids", Datum::map([("a", "1")]))]),
                ),
                Operation::mutate(
                    "Bridge",
                    vec![Condition::eq("name", "br0")],
                    vec![Mutation::new("external_ids", Mutator::Insert, Datum::map([("b", "2")]))],
                ),
                Operation::mutate("Open_vSwitch", vec![], vec![Mutation::new("next_cfg", Mutator::Add, 5)]),
                Operation::comment("ovsnet test: update and mutate"),
            ],
        )
        .await
        .expect("update+mutate");
    assert_eq!(r[0].count, Some(1));
    assert_eq!(r[1].count, Some(1));
    assert_eq!(r[2].count, Some(1));
    let r = c
        .transact(
            DB,
            vec![
                Operation::select("Bridge", vec![Condition::uuid(br)]).columns(["external_ids"]),
                Operation::select("Open_vSwitch", vec![Condition::new("next_cfg", Function::Ge, 5)])
                    .columns(["next_cfg"]),
            ],
        )
        .await
        .expect("select back");
    let ext = r[0].rows.as_ref().expect("rows")[0]["external_ids"].as_string_map().expect("map");
    assert_eq!(ext.into_iter().collect::<Vec<_>>(), [("a".into(), "1".into()), ("b".into(), "2".into())]);
    assert_eq!(r[1].rows.as_ref().expect("rows")[0]["next_cfg"].as_integer(), Some(5));

    // wait: satisfied at once, and timing out
    let name_row = vec![row([("name", Datum::from("br0"))])];
    c.transact(
        DB,
        vec![Operation::wait(
            "Bridge",
            vec![Condition::uuid(br)],
            vec!["name".into()],
            WaitUntil::Equal,
            name_row.clone(),
            Some(0),
        )],
    )
    .await
    .expect("wait ==");
    let started = Instant::now();
    match c
        .transact(
            DB,
            vec![
                Operation::comment("wait that times out"),
                Operation::wait(
                    "Bridge",
                    vec![Condition::uuid(br)],
                    vec!["name".into()],
                    WaitUntil::NotEqual,
                    name_row,
                    Some(50),
                ),
            ],
        )
        .await
    {
        Err(Error::Transaction { index: 1, op, error, .. }) => {
            assert_eq!(op, "wait");
            assert_eq!(error, ovsnet::ovsdb::ErrorTag::TimedOut);
        }
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() >= Duration::from_millis(40));

    // abort: nothing of the transaction stays
    match c
        .transact(
            DB,
            vec![
                Operation::insert("Bridge", row([("name", Datum::from("gone"))])).uuid_name("g"),
                Operation::mutate(
                    "Open_vSwitch",
                    vec![],
                    vec![Mutation::new("bridges", Mutator::Insert, Datum::named_uuid("g"))],
                ),
                Operation::abort(),
            ],
        )
        .await
    {
        Err(Error::Transaction { index: 2, op, error, .. }) => {
            assert_eq!(op, "abort");
            assert_eq!(error, ovsnet::ovsdb::ErrorTag::Aborted);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(bridge_names(&c).await, ["br0"]);

    // commit (durable) with an insert; a Datum::empty_set() for a map column
    // (normalized to an empty map for the server)
    let r = c
        .transact(
            DB,
            vec![
                Operation::insert("Bridge", row([("name", Datum::from("br1")), ("other_config", Datum::empty_set())]))
                    .uuid_name("b1"),
                Operation::mutate(
                    "Open_vSwitch",
                    vec![],
                    vec![Mutation::new("bridges", Mutator::Insert, Datum::named_uuid("b1"))],
                ),
                Operation::commit(true),
            ],
        )
        .await
        .expect("commit durable");
    let br1 = r[0].uuid.expect("uuid");
    assert_eq!(bridge_names(&c).await, ["br0", "br1"]);

    // delete: unreference and delete
    let r = c
        .transact(
            DB,
            vec![
                Operation::mutate("Open_vSwitch", vec![], vec![Mutation::new("bridges", Mutator::Delete, br1)]),
                Operation::delete("Bridge", vec![Condition::uuid(br1)]),
            ],
        )
        .await
        .expect("delete");
    assert_eq!(r[1].count, Some(1));
    assert_eq!(bridge_names(&c).await, ["br0"]);

    // A server-side failure names the operation: a duplicate of the root row.
    match c.transact(DB, vec![Operation::comment("x"), Operation::insert("Open_vSwitch", Row::new())]).await {
        Err(Error::Transaction { index, error, .. }) => {
            assert_eq!(index, 2, "maxRows violation is reported at commit, after the operations");
            assert_eq!(error, ovsnet::ovsdb::ErrorTag::ConstraintViolation);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn schema_errors_name_table_and_column_and_send_nothing() {
    if !have_ovs() {
        return;
    }
    let srv = Standalone::start(false);
    let c = Client::connect(&srv.unix(), &opts()).await.expect("connect");
    let bad = |col: &str, d: Datum| vec![Operation::insert("Interface", row([("name", Datum::from("x")), (col, d)]))];
    let e = c
        .transact(
            DB,
            vec![Operation::insert("Port", row([("name", Datum::from("p")), ("vlan_mode", Datum::from("foo"))]))],
        )
        .await
        .expect_err("enum");
    assert!(matches!(e, Error::Schema(_)));
    assert_eq!(
        e.to_string(),
        "schema check: table Port, column vlan_mode: \"foo\" is not one of \"access\", \"dot1q-tunnel\", \"native-tagged\", \"native-untagged\", \"trunk\""
    );
    let e = c.transact(DB, bad("ofport_request", Datum::from(0))).await.expect_err("range");
    assert_eq!(e.to_string(), "schema check: table Interface, column ofport_request: 0 is out of range 1..=65279");
    let e = c.transact(DB, bad("mtu_request", Datum::from("1500"))).await.expect_err("type");
    assert_eq!(e.to_string(), "schema check: table Interface, column mtu_request: \"1500\" is not of type integer");
    let e = c.transact(DB, bad("nosuch", Datum::from(1))).await.expect_err("column");
    assert_eq!(e.to_string(), "schema check: table Interface, column nosuch: no such column");
    // The server agrees that the enum value is wrong (sent unchecked):
    match c
        .transact_unchecked(
            DB,
            vec![Operation::insert("Port", row([("name", Datum::from("p")), ("vlan_mode", Datum::from("foo"))]))],
        )
        .await
    {
        Err(Error::Transaction { index: 0, error, details, .. }) => {
            assert_eq!(error, ovsnet::ovsdb::ErrorTag::ConstraintViolation);
            assert!(details.unwrap_or_default().contains("foo"));
        }
        other => panic!("{other:?}"),
    }
    // And nothing was ever inserted.
    let r = c
        .transact(DB, vec![Operation::select("Port", vec![]), Operation::select("Interface", vec![])])
        .await
        .expect("select");
    assert_eq!(r[0].rows.as_ref().map(Vec::len), Some(0));
    assert_eq!(r[1].rows.as_ref().map(Vec::len), Some(0));
}

/// Compares a cache's table with what a select says now: user columns
/// only, every schema column filled in with its default where absent
/// (`update2` leaves default-valued columns out).
async fn assert_cache_matches(c: &Client, cache: &Cache, table: &str) {
    let r = c.transact(DB, vec![Operation::select(table, vec![])]).await.expect("select");
    let columns: Vec<String> = cache.schema().tables[table].columns.keys().cloned().collect();
    let mut want: Vec<(Uuid, Row)> = r[0]
        .rows
        .iter()
        .flatten()
        .map(|r| {
            let uuid = r["_uuid"].as_uuid().expect("_uuid");
            (uuid, columns.iter().map(|k| (k.clone(), r[k].clone())).collect())
        })
        .collect();
    want.sort_by_key(|(u, _)| *u);
    let got: Vec<(Uuid, Row)> = cache
        .table(table)
        .map(|(u, _)| (*u, columns.iter().map(|k| (k.clone(), cache.get(table, u, k).expect("row"))).collect()))
        .collect();
    assert_eq!(got, want, "cache of {table}");
}

/// Drives one monitor kind through inserts, modifies (sets, maps, scalars)
/// and deletes, checking the cache against the database after each step.
async fn monitor_keeps_cache(cond: bool) {
    let srv = Standalone::start(false);
    let c = Client::connect(&srv.unix(), &opts()).await.expect("connect");
    let br = init_with_bridge(&c, "br0").await;
    let schema = c.get_schema(DB).await.expect("schema");
    let reqs = [("Bridge", MonitorRequest::all()), ("Open_vSwitch", MonitorRequest::all())];
    let mut m = if cond { c.monitor_cond(DB, &reqs).await } else { c.monitor(DB, &reqs).await }.expect("monitor");
    assert_eq!(m.cond, cond);
    let mut cache = Cache::new(schema);
    cache.apply(&m.initial).expect("initial");
    assert_cache_matches(&c, &cache, "Bridge").await;
    assert_cache_matches(&c, &cache, "Open_vSwitch").await;

    let steps: Vec<Vec<Operation>> = vec![
        // set column, map column, scalar column
        vec![Operation::update(
            "Bridge",
            vec![Condition::uuid(br)],
            row([
                ("flood_vlans", Datum::set([10i64, 20, 30])),
                ("external_ids", Datum::map([("a", "1"), ("b", "2")])),
                ("fail_mode", Datum::from("secure")),
                ("datapath_type", Datum::from("netdev")),
            ]),
        )],
        // set toggles, map changes a value/adds/removes a key
        vec![
            Operation::mutate(
                "Bridge",
                vec![Condition::uuid(br)],
                vec![
                    Mutation::new("flood_vlans", Mutator::Delete, Datum::set([20i64])),
                    Mutation::new("flood_vlans", Mutator::Insert, Datum::set([40i64])),
                    Mutation::new("external_ids", Mutator::Delete, Datum::set(["a"])),
                    Mutation::new("external_ids", Mutator::Insert, Datum::map([("c", "3")])),
                ],
            ),
            Operation::update(
                "Bridge",
                vec![Condition::uuid(br)],
                row([("datapath_type", Datum::from("system")), ("fail_mode", Datum::empty_set())]),
            ),
        ],
        vec![Operation::update(
            "Bridge",
            vec![Condition::uuid(br)],
            row([("external_ids", Datum::map([("b", "22"), ("c", "3")]))]),
        )],
        // insert a second bridge
        vec![
            Operation::insert("Bridge", row([("name", Datum::from("br1"))])).uuid_name("b1"),
            Operation::mutate(
                "Open_vSwitch",
                vec![],
                vec![Mutation::new("bridges", Mutator::Insert, Datum::named_uuid("b1"))],
            ),
        ],
        // delete the first
        vec![
            Operation::mutate("Open_vSwitch", vec![], vec![Mutation::new("bridges", Mutator::Delete, br)]),
            Operation::delete("Bridge", vec![Condition::uuid(br)]),
        ],
    ];
    for (i, ops) in steps.into_iter().enumerate() {
        c.transact(DB, ops).await.unwrap_or_else(|e| panic!("step {i}: {e}"));
        match next_event(&mut m).await {
            MonitorEvent::Update(u) => cache.apply(&u).unwrap_or_else(|e| panic!("step {i}: {e}")),
            other => panic!("step {i}: {other:?}"),
        }
        assert_cache_matches(&c, &cache, "Bridge").await;
        assert_cache_matches(&c, &cache, "Open_vSwitch").await;
    }

    // monitor_cancel: no more events, and the id is gone on the server.
    let id = m.id.clone();
    c.monitor_cancel(&id).await.expect("cancel");
    c.transact(DB, vec![Operation::update("Bridge", vec![], row([("external_ids", Datum::map([("z", "9")]))]))])
        .await
        .expect("after cancel");
    assert_eq!(tokio::time::timeout(Duration::from_secs(5), m.next()).await.expect("stream ends"), None);
    match c.monitor_cancel(&id).await {
        Err(Error::Rpc(msg)) => assert!(msg.contains("unknown monitor"), "{msg}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn monitor_cond_update2_keeps_the_cache() {
    if !have_ovs() {
        return;
    }
    monitor_keeps_cache(true).await;
}

#[tokio::test]
async fn monitor_update_keeps_the_cache() {
    if !have_ovs() {
        return;
    }
    monitor_keeps_cache(false).await;
}

#[tokio::test]
async fn monitor_cond_where_filters_rows() {
    if !have_ovs() {
        return;
    }
    let srv = Standalone::start(false);
    let c = Client::connect(&srv.unix(), &opts()).await.expect("connect");
    init_with_bridge(&c, "br0").await;
    let mut m = c
        .monitor_cond(DB, &[("Bridge", MonitorRequest::columns(["name"]).where_(vec![Condition::eq("name", "br1")]))])
        .await
        .expect("monitor_cond");
    assert!(m.initial.is_empty(), "br0 does not match: {:?}", m.initial);
    c.transact(
        DB,
        vec![
            Operation::insert("Bridge", row([("name", Datum::from("br1"))])).uuid_name("b1"),
            Operation::mutate(
                "Open_vSwitch",
                vec![],
                vec![Mutation::new("bridges", Mutator::Insert, Datum::named_uuid("b1"))],
            ),
        ],
    )
    .await
    .expect("insert br1");
    match next_event(&mut m).await {
        MonitorEvent::Update(u) => {
            let rows: Vec<_> = u.0["Bridge"].values().collect();
            assert_eq!(rows.len(), 1);
            assert_eq!(*rows[0], ovsnet::ovsdb::RowUpdate::Insert(row([("name", Datum::from("br1"))])));
        }
        other => panic!("{other:?}"),
    }
    m.cancel().await.expect("cancel");
}

#[tokio::test]
async fn many_requests_in_flight_on_one_connection() {
    if !have_ovs() {
        return;
    }
    let srv = Standalone::start(false);
    let c = Client::connect(&srv.unix(), &opts()).await.expect("connect");
    init_with_bridge(&c, "br0").await;
    let mut m = c.monitor_cond(DB, &[("Open_vSwitch", MonitorRequest::columns(["next_cfg"]))]).await.expect("monitor");
    let calls = (0..200).map(|i| {
        let c = c.clone();
        async move {
            if i % 2 == 0 {
                c.echo(json!([i])).await.map(|v| assert_eq!(v, json!([i])))
            } else {
                c.transact(
                    DB,
                    vec![Operation::mutate("Open_vSwitch", vec![], vec![Mutation::new("next_cfg", Mutator::Add, 1)])],
                )
                .await
                .map(|r| assert_eq!(r[0].count, Some(1)))
            }
        }
    });
    for r in futures_util::future::join_all(calls).await {
        r.expect("call");
    }
    // Every one of the 100 increments was notified.
    let mut seen = 0;
    while seen < 100 {
        match next_event(&mut m).await {
            MonitorEvent::Update(u) => seen += u.len(),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(seen, 100);
}

#[tokio::test]
async fn lock_steal_unlock_between_two_clients() {
    if !have_ovs() {
        return;
    }
    let srv = Standalone::start(false);
    let a = Client::connect(&srv.unix(), &opts()).await.expect("a");
    let b = Client::connect(&srv.unix(), &opts()).await.expect("b");
    let assert_op = |c: Client| async move { c.transact(DB, vec![Operation::assert("L")]).await };

    let mut la = a.lock("L").await.expect("a lock");
    assert!(la.locked);
    let mut lb = b.lock("L").await.expect("b lock");
    assert!(!lb.locked, "held by a");
    assert_op(a.clone()).await.expect("a holds L");
    match assert_op(b.clone()).await {
        Err(Error::Transaction { index: 0, op, error, .. }) => {
            assert_eq!(op, "assert");
            assert_eq!(error, ovsnet::ovsdb::ErrorTag::NotOwner);
        }
        other => panic!("{other:?}"),
    }
    // a unlocks: b is told it got the lock.
    a.unlock("L").await.expect("a unlock");
    tokio::time::timeout(Duration::from_secs(5), lb.wait_locked()).await.expect("in time").expect("b locked");
    assert_op(b.clone()).await.expect("b holds L");
    // a steals it back: b is told.
    let sa = a.steal("L").await.expect("steal");
    assert!(sa.locked);
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), lb.next()).await.expect("in time"),
        Some(ovsnet::ovsdb::LockEvent::Stolen)
    );
    assert_op(a.clone()).await.expect("a holds L again");
    assert!(assert_op(b.clone()).await.is_err());
    // The thief hears nothing more; a's first lock handle ended with its unlock.
    let mut sa = sa;
    assert!(sa.try_next_is_none());
    assert_eq!(la.next().await, None);
    b.unlock("L").await.expect("b unlock");
    a.unlock("L").await.expect("a unlock");
}

trait TryNext {
    fn try_next_is_none(&mut self) -> bool;
}
impl TryNext for ovsnet::ovsdb::Lock {
    fn try_next_is_none(&mut self) -> bool {
        futures_util::FutureExt::now_or_never(self.next()).is_none()
    }
}

#[tokio::test]
async fn server_echo_is_answered_and_own_probes_keep_tcp_alive() {
    if !have_ovs() {
        return;
    }
    let srv = Standalone::start(true);
    let setup = Client::connect(&srv.unix(), &opts()).await.expect("connect");
    // A Manager row makes the server listen on a second TCP port with a
    // 1 s inactivity probe (the default is 5 s).
    let port = ovsdb_support::free_port();
    setup
        .transact(
            DB,
            vec![
                Operation::insert(
                    "Manager",
                    row([
                        ("target", Datum::from(format!("ptcp:{port}:127.0.0.1"))),
                        ("inactivity_probe", Datum::from(1000)),
                    ]),
                )
                .uuid_name("m"),
                Operation::insert("Open_vSwitch", row([("manager_options", Datum::named_uuid("m"))])),
            ],
        )
        .await
        .expect("manager");
    let remote = format!("tcp:127.0.0.1:{port}");
    // The server applies manager_options asynchronously: retry until it listens.
    let deadline = Instant::now() + Duration::from_secs(10);
    let quiet = ConnectOptions { probe_interval: None, timeout: Duration::from_secs(1), ..opts() };
    let c = loop {
        match Client::connect(&remote, &quiet).await {
            Ok(c) => break c,
            Err(e) if Instant::now() < deadline => eprintln!("retrying: {e}"),
            Err(e) => panic!("{e}"),
        }
    };
    let mut m = c.monitor_cond(DB, &[("Bridge", MonitorRequest::all())]).await.expect("monitor");
    // Idle for 3.5 s: the server probes about every second and would drop
    // us after 2 s without an answer.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let st = c.stats();
    assert!(st.echoes_answered >= 2, "{st:?}");
    assert_eq!(st.sessions, 1, "never reconnected: {st:?}");
    assert!(m.try_next().is_none(), "no resync");
    c.list_dbs().await.expect("still connected");

    // Our own probes on an idle TCP connection (server's probe is 5 s there).
    let probing = ConnectOptions { probe_interval: Some(Duration::from_millis(300)), ..opts() };
    let p = Client::connect(&srv.tcp(), &probing).await.expect("tcp");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let st = p.stats();
    assert!(st.probes_sent >= 2, "{st:?}");
    assert_eq!(st.sessions, 1, "{st:?}");
    p.list_dbs().await.expect("still connected");
}

/// A peer that answers the first request of each connection (the client's
/// hello) and then stays silent forever.
async fn silent_after_hello(mut s: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let first = loop {
        let n = s.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(Ok(v)) = serde_json::Deserializer::from_slice(&buf).into_iter::<serde_json::Value>().next() {
            break v;
        }
    };
    // An empty `_Server` snapshot: no clustered database to judge.
    let reply = json!({"id": first["id"], "result": {}, "error": null});
    let _ = s.write_all(reply.to_string().as_bytes()).await;
    // Read (and ignore) everything else, probes included.
    while s.read(&mut chunk).await.unwrap_or(0) > 0 {}
}

#[tokio::test]
async fn unanswered_probe_drops_the_connection() {
    // No OVS needed: a fake peer that never answers our echo probes.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = tokio::spawn(async move {
        let mut n = 0;
        while n < 2 {
            let (s, _) = listener.accept().await.expect("accept");
            tokio::spawn(silent_after_hello(s));
            n += 1;
        }
        n
    });
    let o = ConnectOptions {
        probe_interval: Some(Duration::from_millis(200)),
        reconnect: ovsnet::ovsdb::Backoff { initial: Duration::from_millis(10), max: Duration::from_millis(50) },
        ..ConnectOptions::default()
    };
    let c = Client::connect(&format!("tcp:{addr}"), &o).await.expect("connect");
    assert_eq!(c.stats().sessions, 1);
    // The probe goes unanswered: the client drops the connection and
    // connects again (a second accept, a second session).
    let n = tokio::time::timeout(Duration::from_secs(5), accepted).await.expect("reconnected in time").expect("join");
    assert_eq!(n, 2);
    assert!(c.stats().probes_sent >= 1);
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.stats().sessions < 2 {
        assert!(Instant::now() < deadline, "{:?}", c.stats());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A request the silent peer never answers fails with a timeout, not a hang.
    let t = ConnectOptions { request_timeout: Some(Duration::from_millis(200)), ..o };
    drop(c);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        if let Ok((s, _)) = listener.accept().await {
            silent_after_hello(s).await;
        }
    });
    let c = Client::connect(&format!("tcp:{addr}"), &t).await.expect("connect");
    assert!(matches!(c.list_dbs().await, Err(Error::Timeout)));
}

#[tokio::test]
async fn reconnect_after_server_restart_resyncs_the_monitor() {
    if !have_ovs() {
        return;
    }
    let mut srv = Standalone::start(false);
    let o = ConnectOptions {
        reconnect: ovsnet::ovsdb::Backoff { initial: Duration::from_millis(20), max: Duration::from_millis(200) },
        ..opts()
    };
    let c = Client::connect(&srv.unix(), &o).await.expect("connect");
    init_with_bridge(&c, "br0").await;
    let schema = c.get_schema(DB).await.expect("schema");
    let mut m = c.monitor_cond(DB, &[("Bridge", MonitorRequest::columns(["name"]))]).await.expect("monitor");
    let mut cache = Cache::new(schema);
    cache.apply(&m.initial).expect("initial");
    assert_eq!(cache.table("Bridge").count(), 1);
    let mut lock = c.lock("owner").await.expect("lock");
    assert!(lock.locked);

    // Restart; while it is down, change the database file behind our back
    // so that the resync has something new to show.
    srv.server.stop();
    let out = std::process::Command::new("ovsdb-tool")
        .arg("transact")
        .arg(&srv.server.db)
        .arg(
            json!(["Open_vSwitch",
                {"op": "insert", "table": "Bridge", "row": {"name": "offline"}, "uuid-name": "x"},
                {"op": "mutate", "table": "Open_vSwitch", "where": [], "mutations": [["bridges", "insert", ["named-uuid", "x"]]]}])
            .to_string(),
        )
        .output()
        .expect("ovsdb-tool transact");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    srv.server.restart();

    match next_event(&mut m).await {
        MonitorEvent::Resync(snapshot) => {
            cache.clear();
            cache.apply(&snapshot).expect("resync");
        }
        other => panic!("expected a resync, got {other:?}"),
    }
    let mut names: Vec<&str> = cache.table("Bridge").filter_map(|(_, r)| r["name"].as_str()).collect();
    names.sort();
    assert_eq!(names, ["br0", "offline"]);
    // The lock was lost with the connection and taken again on the new one.
    let first = tokio::time::timeout(Duration::from_secs(5), lock.next()).await.expect("lock event in time");
    assert_eq!(first, Some(ovsnet::ovsdb::LockEvent::Lost));
    let second = tokio::time::timeout(Duration::from_secs(5), lock.next()).await.expect("lock event in time");
    assert_eq!(second, Some(ovsnet::ovsdb::LockEvent::Locked));
    c.transact(DB, vec![Operation::assert("owner")]).await.expect("lock held after reconnect");
    assert_eq!(c.stats().sessions, 2);
    // Requests work again, and the monitor keeps streaming.
    c.transact(
        DB,
        vec![
            Operation::insert("Bridge", row([("name", Datum::from("after"))])).uuid_name("a"),
            Operation::mutate(
                "Open_vSwitch",
                vec![],
                vec![Mutation::new("bridges", Mutator::Insert, Datum::named_uuid("a"))],
            ),
        ],
    )
    .await
    .expect("transact after restart");
    match next_event(&mut m).await {
        MonitorEvent::Update(u) => cache.apply(&u).expect("update"),
        other => panic!("{other:?}"),
    }
    assert_eq!(cache.table("Bridge").count(), 3);
}

#[tokio::test]
async fn ten_thousand_rows_in_one_multi_megabyte_reply() {
    if !have_ovs() {
        return;
    }
    let srv = Standalone::start(false);
    let c = Client::connect(&srv.unix(), &opts()).await.expect("connect");
    let ops: Vec<Operation> = (0..10_000)
        .map(|i| {
            Operation::insert(
                "Queue",
                row([
                    ("dscp", Datum::from(i % 64)),
                    (
                        "external_ids",
                        Datum::map([
                            ("container-id", format!("container-{i:05}-0123456789abcdef0123456789abcdef")),
                            ("owner", "ovsnet-large-message-test".to_string()),
                        ]),
                    ),
                ]),
            )
        })
        .collect();
    let started = Instant::now();
    let r = c.transact(DB, ops).await.expect("insert 10k");
    assert_eq!(r.len(), 10_000);
    assert!(r.iter().all(|x| x.uuid.is_some()));
    let insert_time = started.elapsed();
    let started = Instant::now();
    let v = c.request("transact", json!([DB, {"op": "select", "table": "Queue", "where": []}])).await.expect("select");
    let bytes = v.to_string().len();
    let r = c.transact(DB, vec![Operation::select("Queue", vec![])]).await.expect("select");
    let rows = r[0].rows.as_ref().expect("rows");
    assert_eq!(rows.len(), 10_000);
    assert!(bytes > 2_000_000, "reply is {bytes} bytes");
    let mut dscp: Vec<i64> = rows.iter().filter_map(|r| r["dscp"].as_integer()).collect();
    dscp.sort();
    assert_eq!(dscp.iter().filter(|d| **d == 63).count(), 156);
    eprintln!("10k-row insert {insert_time:?}; select reply {bytes} bytes, 2 selects {:?}", started.elapsed());
    let _ = Atom::from(0i64);
}

#[tokio::test]
async fn connect_errors_name_the_remote() {
    let dir = tempfile::tempdir().expect("tempdir");
    let remote = format!("unix:{}", dir.path().join("no.sock").display());
    let o = ConnectOptions { timeout: Duration::from_millis(300), ..ConnectOptions::default() };
    match Client::connect(&remote, &o).await {
        Err(e @ Error::Connect { .. }) => {
            let m = e.to_string();
            assert!(m.contains(&remote) && m.contains("No such file"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    match Client::connect("tcp:127.0.0.1:6640,udp:1.2.3.4:1", &o).await {
        Err(e @ Error::Remote(_)) => assert!(e.to_string().contains("udp:1.2.3.4:1"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_peer_that_never_answers_is_not_a_connection() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            conns.push(s);
        }
    });
    let o = ConnectOptions { timeout: Duration::from_millis(400), ..ConnectOptions::default() };
    let started = Instant::now();
    match Client::connect(&format!("tcp:{addr}"), &o).await {
        Err(e @ Error::Connect { .. }) => assert!(e.to_string().contains(&addr.to_string()), "{e}"),
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(3));
    held.abort();
}
