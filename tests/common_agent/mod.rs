//! Support for agent tests: a private OVS with a netdev `obr0`, namespace
//! containers attached with the attach library, and the agent run in
//! process (a thread with its own runtime) or as a child process.
#![allow(dead_code, unused_imports)]

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use crate::common::{self, OvsSandbox, ofctl, vsctl, wait_for};
use crate::common_attach::{Ns, rt};
use ovsnet::agent::{self, AgentOptions, Listen, Stats};
use ovsnet::attach::{AttachRequest, Attacher, AttacherOptions};
use ovsnet::container::ContainerRef;
use ovsnet::ovsdb::{Client, ConnectOptions};

pub const BR: &str = "obr0";

/// A private switch with `obr0` (netdev) and containers on it.
pub struct Lab {
    pub sbx: OvsSandbox,
    pub containers: Vec<Ns>,
}

impl Lab {
    pub fn new() -> Option<Lab> {
        let sbx = common::ovs()?;
        vsctl(&sbx, &["add-br", BR, "--", "set", "bridge", BR, "datapath_type=netdev"]);
        Some(Lab { sbx, containers: Vec::new() })
    }

    pub fn listen(&self) -> Listen {
        Listen::Unix(self.sbx.dir().join(format!("ovsnet-{BR}.sock")))
    }

    pub fn options(&self) -> AgentOptions {
        let mut o = AgentOptions::new(BR, &self.sbx.db_remote());
        o.listen = self.listen();
        o.echo_interval = Duration::from_secs(2);
        o
    }

    /// Attaches a new namespace container with `ip` (IP/PREFIX) on `network`.
    /// Returns the namespace name.
    pub fn attach(&mut self, prefix: &str, ip: &str, network: Option<&str>) -> String {
        let ns = Ns::new(prefix);
        let name = ns.0.clone();
        let sbx_ns = self.sbx.netns().to_owned();
        let db = self.sbx.db_remote();
        let mut req = AttachRequest::new(BR, ContainerRef::Netns(name.clone()), ip).expect("request");
        req.network = network.map(str::to_owned);
        rt().block_on(async {
            let client = Client::connect(&db, &ConnectOptions::default()).await.expect("connect");
            let a = Attacher::new(
                client,
                AttacherOptions {
                    switch_netns: Some(sbx_ns),
                    docker_host: Some("unix:///nonexistent/docker.sock".into()),
                    ofport_timeout: Duration::from_secs(10),
                    check_operations: true,
                },
            )
            .expect("attacher");
            a.attach(&req).await.expect("attach");
        });
        self.containers.push(ns);
        name
    }

    pub fn dump_flows(&self) -> String {
        ofctl(&self.sbx, "dump-flows", BR, &[])
    }

    /// The n_packets of the flows whose text contains `needle`, summed.
    pub fn packets(&self, needle: &str) -> u64 {
        self.packets_all(&[needle])
    }

    /// The n_packets of the flows whose text contains every needle, summed.
    pub fn packets_all(&self, needles: &[&str]) -> u64 {
        self.dump_flows()
            .lines()
            .filter(|l| needles.iter().all(|n| l.contains(n)))
            .filter_map(|l| l.split("n_packets=").nth(1))
            .filter_map(|r| r.split(',').next())
            .filter_map(|n| n.parse::<u64>().ok())
            .sum()
    }

    /// Flows in the agent's tables (by cookie tag) as the switch has them.
    pub fn agent_flow_count(&self) -> usize {
        self.dump_flows().lines().filter(|l| l.contains("cookie=0xa5e")).count()
    }
}

/// The agent in this process: a thread with its own runtime; stopped on drop.
pub struct InProcessAgent {
    pub stats: Arc<Stats>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl InProcessAgent {
    pub fn start(opts: AgentOptions) -> InProcessAgent {
        let stats = Arc::new(Stats::default());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let st = stats.clone();
        let thread = std::thread::spawn(move || {
            rt().block_on(async move {
                agent::run(opts, st, async move {
                    let _ = rx.await;
                })
                .await
                .map_err(|e| e.to_string())
            })
        });
        InProcessAgent { stats, stop: Some(tx), thread: Some(thread) }
    }

    /// Waits until the switch is connected and a reconcile ran with it.
    pub fn wait_connected(&self) {
        wait_for(20, "switch connected to the agent", || {
            self.stats.switch_connected.load(Relaxed) == 1 && self.stats.switch_connects.load(Relaxed) > 0
        });
    }

    pub fn stop(&mut self) -> Result<(), String> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        match self.thread.take() {
            Some(t) => t.join().unwrap_or_else(|_| Err("agent thread panicked".into())),
            None => Ok(()),
        }
    }
}

impl Drop for InProcessAgent {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// The agent as a child process of the `ovsnet` binary; killed on drop.
pub struct ChildAgent {
    pub child: Child,
    pub out: Arc<std::sync::Mutex<Vec<String>>>,
}

impl ChildAgent {
    pub fn start(lab: &Lab, extra: &[&str]) -> ChildAgent {
        let Listen::Unix(sock) = lab.listen() else { unreachable!() };
        let mut child = Command::new(env!("CARGO_BIN_EXE_ovsnet"))
            .arg(format!("--db={}", lab.sbx.db_remote()))
            .args(["agent", "--bridge", BR, "--echo-interval", "2"])
            .arg(format!("--listen=unix:{}", sock.display()))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn ovsnet agent");
        let out = Arc::new(std::sync::Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("stdout");
        let o = out.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                o.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        });
        ChildAgent { child, out }
    }

    pub fn lines(&self) -> Vec<String> {
        self.out.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits for a reconcile line with the switch connected; returns it.
    pub fn wait_switch_reconcile(&self) -> String {
        let mut found = String::new();
        wait_for(20, "a reconcile after the switch connected", || {
            match self.lines().into_iter().find(|l| l.starts_with("reconcile (switch connected)")) {
                Some(l) => {
                    found = l;
                    true
                }
                None => false,
            }
        });
        found
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn term(&mut self) -> std::process::ExitStatus {
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        self.child.wait().expect("wait agent")
    }
}

impl Drop for ChildAgent {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn ping(from: &str, to: &str) -> bool {
    Command::new("ip")
        .args(["netns", "exec", from, "ping", "-c", "1", "-W", "1", to])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs a command in a namespace and returns whether it succeeded.
pub fn ns_run(ns: &str, args: &[&str]) -> bool {
    Command::new("ip").args(["netns", "exec", ns]).args(args).output().is_ok_and(|o| o.status.success())
}

/// Sends raw Ethernet frames out of `ifname` inside namespace `ns`
/// (an `AF_PACKET` socket opened in that namespace).
pub fn send_frames(ns: &str, ifname: &str, frame: &[u8], count: usize) {
    let fd = ovsnet::netns::open(ns).expect("open ns");
    let frame = frame.to_vec();
    let ifname = std::ffi::CString::new(ifname).expect("ifname");
    ovsnet::netns::run_in(&fd, move || {
        // SAFETY: plain socket(2)/if_nametoindex(3)/sendto(2)/close(2) on
        // values checked here; the buffers outlive the calls.
        unsafe {
            let s = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
            assert!(s >= 0, "AF_PACKET socket");
            let index = libc::if_nametoindex(ifname.as_ptr());
            assert!(index > 0, "no such interface");
            let mut addr: libc::sockaddr_ll = std::mem::zeroed();
            addr.sll_family = libc::AF_PACKET as u16;
            addr.sll_ifindex = index as i32;
            addr.sll_halen = 6;
            addr.sll_addr[..6].copy_from_slice(&frame[..6]);
            for _ in 0..count {
                let n = libc::sendto(
                    s,
                    frame.as_ptr().cast(),
                    frame.len(),
                    0,
                    (&raw const addr).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                );
                assert_eq!(n, frame.len() as isize, "sendto");
            }
            libc::close(s);
        }
    })
    .expect("run in namespace");
}
