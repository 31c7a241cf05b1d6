//! Shared test support: private Open vSwitch instances and oracles.
//!
//! Tests that need Open vSwitch call [`ovs`]. Without OVS installed they
//! are skipped with a message, except under `CI=true`, where a missing
//! OVS fails the run.
#![allow(dead_code, unused_imports)]

use std::process::Command;

pub use ovsnet::sandbox::{OvsSandbox, SandboxOptions, unique_name};

/// Whether this run must not skip anything (CI sets `CI=true`).
pub fn strict() -> bool {
    std::env::var("CI").map(|v| v == "true" || v == "1").unwrap_or(false)
}

/// Starts a private OVS, or returns None (skip) where OVS is missing and
/// this is not CI.
pub fn ovs() -> Option<OvsSandbox> {
    ovs_with(SandboxOptions::default())
}

pub fn ovs_with(opts: SandboxOptions) -> Option<OvsSandbox> {
    if let Err(e) = ovsnet::sandbox::ovs_installed() {
        if strict() {
            panic!("CI=true and Open vSwitch is missing: {e}");
        }
        eprintln!("skipping: {e}");
        return None;
    }
    Some(OvsSandbox::start(opts).expect("start a private Open vSwitch"))
}

/// Runs `ovs-vsctl` against the sandbox (an oracle: the product never does).
pub fn vsctl(sbx: &OvsSandbox, args: &[&str]) -> String {
    let out = Command::new("ovs-vsctl")
        .arg(format!("--db={}", sbx.db_remote()))
        .arg("--timeout=10")
        .args(args)
        .output()
        .expect("run ovs-vsctl");
    assert!(out.status.success(), "ovs-vsctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `ovs-ofctl -O OpenFlow13 CMD unix:BRIDGE.mgmt ARGS...`.
pub fn ofctl(sbx: &OvsSandbox, cmd: &str, bridge: &str, args: &[&str]) -> String {
    let out = Command::new("ovs-ofctl")
        .args(["-O", "OpenFlow13", "--no-names", cmd])
        .arg(format!("unix:{}", sbx.mgmt_socket(bridge).display()))
        .args(args)
        .output()
        .expect("run ovs-ofctl");
    assert!(out.status.success(), "ovs-ofctl {cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `cond` every 10 ms until it holds or `secs` pass.
pub fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < std::time::Duration::from_secs(secs), "timed out after {secs}s waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Clears the `OVSNET_*` variables this process has from `cmd`: the test
/// says what the command is configured with, not the machine.
pub fn without_ovsnet_env(cmd: &mut std::process::Command) -> &mut std::process::Command {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("OVSNET_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// A TCP server in `ns` on `addr`: each connection's peer address is sent
/// on the returned channel, then what the peer sends is echoed until it
/// closes. Runs until the test ends.
pub fn tcp_echo_server(ns: &str, addr: std::net::SocketAddrV4) -> std::sync::mpsc::Receiver<std::net::SocketAddr> {
    let fd = ovsnet::netns::open(ns).expect("open the namespace");
    let listener = ovsnet::netns::run_in(&fd, || std::net::TcpListener::bind(addr))
        .expect("enter the namespace")
        .unwrap_or_else(|e| panic!("listen on {addr}: {e}"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let Ok(peer) = conn.peer_addr() else { continue };
            if tx.send(peer).is_err() {
                return;
            }
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = std::io::Read::read(&mut conn, &mut buf) {
                    if n == 0 || std::io::Write::write_all(&mut conn, &buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    rx
}

/// A TCP connection from the namespace `ns` to `to`.
pub fn connect_from(
    ns: &str,
    to: std::net::SocketAddrV4,
    timeout: std::time::Duration,
) -> std::io::Result<std::net::TcpStream> {
    let fd = ovsnet::netns::open(ns).expect("open the namespace");
    ovsnet::netns::run_in(&fd, || std::net::TcpStream::connect_timeout(&to.into(), timeout))
        .expect("enter the namespace")
}

/// Sends `msg` and reads the echo back.
pub fn echo(conn: &mut std::net::TcpStream, msg: &[u8]) -> bool {
    use std::io::{Read, Write};
    if conn.set_read_timeout(Some(std::time::Duration::from_secs(5))).is_err() {
        return false;
    }
    let mut back = vec![0u8; msg.len()];
    conn.write_all(msg).is_ok() && conn.read_exact(&mut back).is_ok() && back == msg
}

/// Asks `server` for `name` from inside the namespace `ns`, over UDP or
/// TCP; the answer, or `None` after `timeout`.
pub fn dns_query(
    ns: &str,
    server: std::net::SocketAddrV4,
    name: &str,
    rtype: hickory_proto::rr::RecordType,
    tcp: bool,
    timeout: std::time::Duration,
) -> Option<hickory_proto::op::Message> {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::Name;
    use std::io::{Read, Write};
    let mut m = Message::new();
    m.set_id(rand_id()).set_message_type(MessageType::Query).set_op_code(OpCode::Query).set_recursion_desired(true);
    m.add_query(Query::query(Name::from_ascii(name).ok()?, rtype));
    let q = m.to_vec().ok()?;
    let fd = ovsnet::netns::open(ns).expect("open the namespace");
    let bytes = ovsnet::netns::run_in(&fd, || -> std::io::Result<Vec<u8>> {
        if tcp {
            let mut s = std::net::TcpStream::connect_timeout(&server.into(), timeout)?;
            s.set_read_timeout(Some(timeout))?;
            let mut out = (q.len() as u16).to_be_bytes().to_vec();
            out.extend_from_slice(&q);
            s.write_all(&out)?;
            let mut len = [0u8; 2];
            s.read_exact(&mut len)?;
            let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
            s.read_exact(&mut buf)?;
            Ok(buf)
        } else {
            let s = std::net::UdpSocket::bind("0.0.0.0:0")?;
            s.set_read_timeout(Some(timeout))?;
            s.send_to(&q, server)?;
            let mut buf = vec![0u8; 4096];
            loop {
                let n = s.recv(&mut buf)?;
                if n >= 2 && buf[..2] == q[..2] {
                    buf.truncate(n);
                    return Ok(buf);
                }
            }
        }
    })
    .expect("enter the namespace")
    .ok()?;
    Message::from_vec(&bytes).ok()
}

fn rand_id() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64));
    h.finish() as u16
}

/// The IPv4 addresses of an answer, in its order.
pub fn dns_addresses(m: &hickory_proto::op::Message) -> Vec<std::net::Ipv4Addr> {
    m.answers()
        .iter()
        .filter_map(|r| match r.data() {
            hickory_proto::rr::RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

/// A resolver stub standing in for a host's upstream resolver: answers
/// UDP queries on `addr` inside the namespace `ns` with the given A
/// records, NXDOMAIN for any other name; counts the queries it gets.
/// It stops when the returned guard is dropped.
pub struct DnsStub {
    pub queries: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for DnsStub {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

pub fn dns_stub(ns: &str, addr: std::net::SocketAddrV4, records: Vec<(String, std::net::Ipv4Addr)>) -> DnsStub {
    use hickory_proto::op::{Message, MessageType, ResponseCode};
    use hickory_proto::rr::{RData, Record, rdata::A};
    use std::sync::atomic::Ordering::Relaxed;
    let fd = ovsnet::netns::open(ns).expect("open the namespace");
    let sock = ovsnet::netns::run_in(&fd, || std::net::UdpSocket::bind(addr))
        .expect("enter the namespace")
        .expect("bind the stub resolver");
    sock.set_read_timeout(Some(std::time::Duration::from_millis(100))).expect("a read timeout");
    let stub = DnsStub { queries: Default::default(), stop: Default::default() };
    let (queries, stop) = (stub.queries.clone(), stub.stop.clone());
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 4096];
        while !stop.load(Relaxed) {
            let Ok((n, from)) = sock.recv_from(&mut buf) else { continue };
            let Ok(q) = Message::from_vec(&buf[..n]) else { continue };
            queries.fetch_add(1, Relaxed);
            let mut r = Message::new();
            r.set_id(q.id()).set_message_type(MessageType::Response).set_recursion_available(true);
            r.add_queries(q.queries().to_vec());
            let name = q.queries().first().map(|q| q.name().to_ascii().trim_end_matches('.').to_owned());
            match records.iter().find(|(n, _)| Some(n) == name.as_ref()) {
                Some((_, ip)) => {
                    let qn = q.queries()[0].name().clone();
                    r.add_answer(Record::from_rdata(qn, 60, RData::A(A(*ip))));
                }
                None => {
                    r.set_response_code(ResponseCode::NXDomain);
                }
            }
            if let Ok(b) = r.to_vec() {
                let _ = sock.send_to(&b, from);
            }
        }
    });
    stub
}
