//! A 3-member Raft cluster of `Open_vSwitch` on loopback: the client finds
//! the leader through `_Server`, a follower's address forwards writes, and
//! writes keep working after the leader is killed.

mod ovsdb_support;

use std::time::{Duration, Instant};

use ovsnet::ovsdb::{Backoff, Client, Condition, ConnectOptions, Datum, Error, Operation, Row};
use ovsdb_support::{Cluster, have_ovs};

const DB: &str = "Open_vSwitch";

fn queue(name: &str) -> Operation {
    let row: Row = [("external_ids".to_string(), Datum::map([("name", name)]))].into_iter().collect();
    Operation::insert("Queue", row)
}

async fn queue_names(c: &Client) -> Vec<String> {
    let r = c.transact(DB, vec![Operation::select("Queue", vec![]).columns(["external_ids"])]).await.expect("select");
    let mut v: Vec<String> = r[0]
        .rows
        .iter()
        .flatten()
        .filter_map(|r| r["external_ids"].as_string_map()?.get("name").cloned())
        .collect();
    v.sort();
    v
}

/// Retries a transaction across a failover: requests in flight when the
/// connection drops fail with `Disconnected` and are not replayed by the client.
async fn transact_retrying(c: &Client, ops: Vec<Operation>) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match c.transact(DB, ops.clone()).await {
            Ok(_) => return Ok(()),
            Err(e @ (Error::Disconnected | Error::Timeout)) if Instant::now() < deadline => {
                eprintln!("retrying after: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

#[tokio::test]
async fn cluster_leader_follower_and_failover() {
    if !have_ovs() {
        return;
    }
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).try_init();
    }
    let mut cluster = Cluster::start(3);
    let opts = ConnectOptions {
        timeout: Duration::from_secs(30),
        request_timeout: Some(Duration::from_secs(10)),
        reconnect: Backoff { initial: Duration::from_millis(50), max: Duration::from_millis(500) },
        ..ConnectOptions::default()
    };
    // Every member has joined (a client that does not need the leader only
    // gets connected to a member that is connected to the cluster): else
    // killing the leader could leave no majority.
    for i in 0..3 {
        let m = Client::connect(&cluster.remote(i), &ConnectOptions { leader_only: false, ..opts.clone() })
            .await
            .unwrap_or_else(|e| panic!("member {i} joined: {e}"));
        m.list_dbs().await.expect("list_dbs");
    }
    // Through the list, the client lands on the leader.
    let c = Client::connect(&cluster.remotes(), &opts).await.expect("connect to cluster");
    let leader = cluster.index_of(&c.connected_remote().expect("connected").to_string()).expect("a member");
    let root: Row = Row::new();
    c.transact(DB, vec![Operation::insert("Open_vSwitch", root), queue("via-leader")]).await.expect("write via leader");

    // The status the client relied on: the member it chose says it leads.
    let s = c
        .transact("_Server", vec![Operation::select("Database", vec![Condition::eq("name", DB)])])
        .await
        .expect("_Server");
    let row = &s[0].rows.as_ref().expect("rows")[0];
    assert_eq!(row["model"].as_str(), Some("clustered"));
    assert_eq!(row["leader"].as_bool(), Some(true));
    assert_eq!(row["connected"].as_bool(), Some(true));

    // A follower's own address, not leader-only: the write goes to the leader.
    let follower = (leader + 1) % 3;
    let f = Client::connect(&cluster.remote(follower), &ConnectOptions { leader_only: false, ..opts.clone() })
        .await
        .expect("connect to follower");
    f.transact(DB, vec![queue("via-follower")]).await.expect("write via follower");
    let fs = f
        .transact("_Server", vec![Operation::select("Database", vec![Condition::eq("name", DB)])])
        .await
        .expect("_Server on follower");
    assert_eq!(fs[0].rows.as_ref().expect("rows")[0]["leader"].as_bool(), Some(false));
    // The leader has it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while queue_names(&c).await != ["via-follower", "via-leader"] {
        assert!(Instant::now() < deadline, "follower write never reached the leader");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(f);
    // The same follower alone, leader-only (the default): refused, saying why.
    let quick = ConnectOptions { timeout: Duration::from_secs(1), ..opts.clone() };
    match Client::connect(&cluster.remote(follower), &quick).await {
        Err(e @ Error::Connect { .. }) => assert!(e.to_string().contains("not the cluster leader"), "{e}"),
        other => panic!("{other:?}"),
    }

    // Kill the leader: the client fails over to the new leader and writes work.
    cluster.servers[leader].stop();
    transact_retrying(&c, vec![queue("after-failover")]).await.expect("write after failover");
    let now = cluster.index_of(&c.connected_remote().expect("connected").to_string()).expect("a member");
    assert_ne!(now, leader, "moved away from the dead leader");
    assert_eq!(queue_names(&c).await, ["after-failover", "via-follower", "via-leader"]);
    assert!(c.stats().sessions >= 2);
}
