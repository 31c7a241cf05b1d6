//! A 3-member Raft cluster of `Open_vSwitch` on loopback: the client finds
//! the leader through `_Server`, a follower's address forwards writes, and
//! writes keep working after the leader is killed.

mod ovsdb_support;

use std::time::{Duration, Instant};

use ovsdb_support::{Cluster, have_ovs};
use ovsnet::ovsdb::{Backoff, Client, Condition, ConnectOptions, Datum, Error, Operation, Row};

const DB: &str = "Open_vSwitch";

fn queue(name: &str) -> Operation {
    let row: Row = [("external_ids".to_string(), Datum::map([("name", name)]))].into_iter().collect();
    Operation::insert("Queue", row)
}

async fn queue_names(c: &Client) -> Vec<String> {
    let r = read_retrying(c, DB, vec![Operation::select("Queue", vec![]).columns(["external_ids"])]).await;
    let mut v: Vec<String> =
        r[0].rows.iter().flatten().filter_map(|r| r["external_ids"].as_string_map()?.get("name").cloned()).collect();
    v.sort();
    v
}

/// Runs `db`'s transaction again while it fails with a lost connection.
/// Requests in flight when the connection drops (a fail-over, or a member
/// leaving "connected" during an election on a loaded machine) fail with
/// `Disconnected` and are not replayed by the client. Only for reads: a
/// write may have committed before its reply was lost.
async fn read_retrying(c: &Client, db: &str, ops: Vec<Operation>) -> Vec<ovsnet::ovsdb::OpResult> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match c.transact(db, ops.clone()).await {
            Ok(r) => return r,
            Err(e @ (Error::Disconnected | Error::Timeout)) if Instant::now() < deadline => {
                eprintln!("retrying after: {e}");
                let _ = c.wait_connected(Duration::from_secs(10)).await;
            }
            Err(e) => panic!("{db} read: {e}"),
        }
    }
}

/// Writes a queue named `name` exactly once across lost connections: before
/// each retry the client looks whether the lost attempt committed.
async fn add_queue(c: &Client, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match c.transact(DB, vec![queue(name)]).await {
            Ok(_) => return,
            Err(e @ (Error::Disconnected | Error::Timeout)) if Instant::now() < deadline => {
                eprintln!("retrying {name} after: {e}");
                let _ = c.wait_connected(Duration::from_secs(10)).await;
                if queue_names(c).await.iter().any(|n| n == name) {
                    return;
                }
            }
            Err(e) => panic!("write {name}: {e}"),
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
    // A member can drop out of "connected" again while the first elections
    // settle; the client then leaves it and reconnects, failing the request
    // in flight, so the question is asked until a connected member answers.
    for i in 0..3 {
        let m = Client::connect(&cluster.remote(i), &ConnectOptions { leader_only: false, ..opts.clone() })
            .await
            .unwrap_or_else(|e| panic!("member {i} joined: {e}"));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match m.list_dbs().await {
                Ok(dbs) => {
                    assert!(dbs.iter().any(|d| d == DB), "member {i} serves {DB}: {dbs:?}");
                    break;
                }
                Err(e @ (Error::Disconnected | Error::Timeout)) if Instant::now() < deadline => {
                    eprintln!("member {i}: retrying after: {e}");
                    m.wait_connected(Duration::from_secs(10)).await.ok();
                }
                Err(e) => panic!("member {i} list_dbs: {e}"),
            }
        }
    }
    // Through the list, the client lands on the leader.
    let c = Client::connect(&cluster.remotes(), &opts).await.expect("connect to cluster");
    let leader = cluster.index_of(&c.connected_remote().expect("connected").to_string()).expect("a member");
    add_queue(&c, "via-leader").await;

    // The status the client relied on: the member it chose says it leads.
    let s = read_retrying(&c, "_Server", vec![Operation::select("Database", vec![Condition::eq("name", DB)])]).await;
    let row = &s[0].rows.as_ref().expect("rows")[0];
    assert_eq!(row["model"].as_str(), Some("clustered"));
    assert_eq!(row["leader"].as_bool(), Some(true));
    assert_eq!(row["connected"].as_bool(), Some(true));

    // A follower's own address, not leader-only: the write goes to the leader.
    let follower = (leader + 1) % 3;
    let f = Client::connect(&cluster.remote(follower), &ConnectOptions { leader_only: false, ..opts.clone() })
        .await
        .expect("connect to follower");
    add_queue(&f, "via-follower").await;
    let fs = read_retrying(&f, "_Server", vec![Operation::select("Database", vec![Condition::eq("name", DB)])]).await;
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
    add_queue(&c, "after-failover").await;
    let now = cluster.index_of(&c.connected_remote().expect("connected").to_string()).expect("a member");
    assert_ne!(now, leader, "moved away from the dead leader");
    assert_eq!(queue_names(&c).await, ["after-failover", "via-follower", "via-leader"]);
    assert!(c.stats().sessions >= 2);
}
