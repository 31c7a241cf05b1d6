//! Every request ends when the cluster leader is SIGKILLed under load: with
//! its reply, with `Disconnected` (in flight when the connection died) or
//! with `Timeout` (queued while no connection was usable). None hangs, and
//! requests made afterwards succeed on the new leader. No per-request
//! timeout is set: the client alone must guarantee this.

mod ovsdb_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ovsdb_support::{Cluster, have_ovs};
use ovsnet::ovsdb::{Backoff, Client, Condition, ConnectOptions, Datum, Error, MonitorRequest, Operation, Row};

const DB: &str = "Open_vSwitch";
const TASKS: usize = 8;

fn queue(name: &str) -> Operation {
    let row: Row = [("external_ids".to_string(), Datum::map([("name", name)]))].into_iter().collect();
    Operation::insert("Queue", row)
}

fn options(timeout: Duration) -> ConnectOptions {
    ConnectOptions {
        timeout,
        request_timeout: None,
        reconnect: Backoff { initial: Duration::from_millis(50), max: Duration::from_millis(500) },
        ..ConnectOptions::default()
    }
}

/// A cluster whose members have all joined (so killing one leaves a
/// majority), and a client connected to its leader.
async fn cluster_and_client(opts: &ConnectOptions) -> (Cluster, Client) {
    let cluster = Cluster::start(3);
    for i in 0..3 {
        let m = Client::connect(&cluster.remote(i), &ConnectOptions { leader_only: false, ..opts.clone() })
            .await
            .unwrap_or_else(|e| panic!("member {i} joined: {e}"));
        // A member still catching up may drop us once more: ask again.
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Err(e) = m.list_dbs().await {
            assert!(Instant::now() < deadline, "member {i}: {e}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let c = Client::connect(&cluster.remotes(), opts).await.expect("connect to cluster");
    (cluster, c)
}

/// The member that leads, once every member agrees on it and the client is
/// connected to it (leadership can still move just after the cluster forms).
async fn settled_leader(cluster: &Cluster, c: &Client) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut members = Vec::new();
    for i in 0..3 {
        let opts = ConnectOptions { leader_only: false, ..options(Duration::from_secs(5)) };
        members.push(Client::connect(&cluster.remote(i), &opts).await.expect("member"));
    }
    let mut last = None;
    loop {
        let mut leaders = Vec::new();
        for (i, m) in members.iter().enumerate() {
            let q = vec![Operation::select("Database", vec![Condition::eq("name", DB)]).columns(["leader"])];
            if let Ok(r) = m.transact("_Server", q).await
                && r[0].rows.as_ref().and_then(|rows| rows.first()).and_then(|row| row["leader"].as_bool())
                    == Some(true)
            {
                leaders.push(i);
            }
        }
        let on = c.connected_remote().and_then(|r| cluster.index_of(&r.to_string()));
        let now = (leaders.len() == 1 && on == Some(leaders[0])).then(|| leaders[0]);
        if now.is_some() && now == last {
            return leaders[0];
        }
        last = now;
        assert!(Instant::now() < deadline, "no settled leader: {leaders:?}, client on {on:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_under_load_every_request_ends() {
    if !have_ovs() {
        return;
    }
    let timeout = Duration::from_secs(8);
    let (mut cluster, c) = cluster_and_client(&options(timeout)).await;
    c.transact(DB, vec![Operation::insert("Open_vSwitch", Row::new())]).await.expect("first write");

    // Several tasks keep transactions going; each one is timed. A request
    // may end only with its reply, Disconnected or Timeout, and within
    // the connect timeout plus slack (a queued request waits at most
    // `timeout`; one in flight fails as soon as the connection drops).
    let bound = timeout + Duration::from_secs(4);
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let c = c.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut disconnected, mut timed_out) = (0usize, 0usize, 0usize);
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let started = Instant::now();
                let r = tokio::time::timeout(bound * 3, c.transact(DB, vec![queue(&format!("t{t}-{n}"))])).await;
                let took = started.elapsed();
                match r {
                    Err(_) => panic!("task {t} request {n} hung for {:?} with no reply and no error", bound * 3),
                    Ok(Ok(_)) => ok += 1,
                    Ok(Err(Error::Disconnected)) => disconnected += 1,
                    Ok(Err(Error::Timeout)) => timed_out += 1,
                    Ok(Err(e)) => panic!("task {t} request {n}: unexpected error {e}"),
                }
                assert!(took <= bound, "task {t} request {n} took {took:?} (bound {bound:?})");
            }
            (ok, disconnected, timed_out)
        }));
    }
    // Load is running: then the leader dies without a chance to close cleanly.
    let leader = settled_leader(&cluster, &c).await;
    cluster.servers[leader].kill();
    // Let the tasks run through the failover until the new leader serves them.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Some(r) = c.connected_remote()
            && cluster.index_of(&r.to_string()) != Some(leader)
        {
            break;
        }
        assert!(Instant::now() < deadline, "no new leader within 30 s");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut ok, mut disconnected, mut timed_out) = (0, 0, 0);
    for t in tasks {
        let (o, d, to) = t.await.expect("task panicked");
        ok += o;
        disconnected += d;
        timed_out += to;
    }
    eprintln!("requests: {ok} ok, {disconnected} disconnected, {timed_out} timed out");
    assert!(ok > TASKS, "the load made progress");

    // After the failover, requests succeed on the new leader, from many tasks at once.
    let mut after = Vec::new();
    for t in 0..TASKS {
        let c = c.clone();
        after.push(tokio::spawn(async move { c.transact(DB, vec![queue(&format!("after-{t}"))]).await }));
    }
    for a in after {
        a.await.expect("task").expect("write on the new leader");
    }
    let now = cluster.index_of(&c.connected_remote().expect("connected").to_string()).expect("a member");
    assert_ne!(now, leader);
    assert!(c.stats().sessions >= 2);
}

/// The leader and a follower die: no member can serve for longer than the
/// connect timeout. Transactions and monitor starts made meanwhile are
/// queued and fail with `Timeout` once they have waited the connect timeout
/// (none waits longer, none hangs); once a majority is back, requests
/// succeed on the new leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_majority_for_longer_than_the_timeout_queued_requests_time_out() {
    if !have_ovs() {
        return;
    }
    let timeout = Duration::from_secs(3);
    let (mut cluster, c) = cluster_and_client(&options(timeout)).await;
    c.transact(DB, vec![Operation::insert("Open_vSwitch", Row::new())]).await.expect("first write");
    let leader = settled_leader(&cluster, &c).await;
    let follower = (leader + 1) % 3;
    cluster.servers[leader].kill();
    cluster.servers[follower].kill();
    eprintln!("killed leader {leader} and follower {follower}: {:?}", cluster.remotes());

    let slack = Duration::from_secs(2);
    let outage = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let mut timed_out = 0usize;
            // Two rounds of requests, each made while nothing can serve.
            for n in 0..2 {
                let started = Instant::now();
                let call = async {
                    if t % 2 == 0 {
                        c.transact(DB, vec![queue(&format!("t{t}-{n}"))]).await.map(drop)
                    } else {
                        c.monitor_cond(DB, &[("Queue", MonitorRequest::all())]).await.map(drop)
                    }
                };
                let r = tokio::time::timeout(timeout * 4, call)
                    .await
                    .unwrap_or_else(|_| panic!("task {t} request {n} hung with no reply and no error"));
                let took = started.elapsed();
                assert!(took <= timeout + slack, "task {t} request {n} took {took:?}");
                match r {
                    Err(Error::Timeout) => {
                        assert!(took + Duration::from_millis(50) >= timeout, "timed out early: {took:?}");
                        timed_out += 1;
                    }
                    // Sent on the dying connection before its loss was seen.
                    Err(Error::Disconnected) => {
                        assert!(took < timeout, "a queued request must time out, not be disconnected ({took:?})")
                    }
                    Err(e) => panic!("task {t} request {n}: unexpected error {e}"),
                    Ok(()) => panic!(
                        "task {t} request {n} succeeded with no majority after {took:?} on {:?}",
                        c.connected_remote()
                    ),
                }
            }
            timed_out
        }));
    }
    let mut timed_out = 0;
    for t in tasks {
        timed_out += t.await.expect("task panicked");
    }
    eprintln!("{timed_out} of {} requests timed out after {:?} of outage", TASKS * 2, outage.elapsed());
    assert!(timed_out >= TASKS, "requests made with no usable connection time out");

    // A majority again: the client reaches the new leader, and requests
    // (transactions and monitors) made from many tasks at once succeed.
    cluster.servers[follower].restart();
    c.wait_connected(Duration::from_secs(30)).await.expect("a new leader");
    let mut after = Vec::new();
    for t in 0..TASKS {
        let c = c.clone();
        after.push(tokio::spawn(async move {
            c.transact(DB, vec![queue(&format!("after-{t}"))]).await.map(drop)?;
            c.monitor_cond(DB, &[("Queue", MonitorRequest::all())]).await.map(drop)
        }));
    }
    for a in after {
        a.await.expect("task").expect("requests on the new leader");
    }
    let now = cluster.index_of(&c.connected_remote().expect("connected").to_string()).expect("a member");
    assert_ne!(now, leader);
}
