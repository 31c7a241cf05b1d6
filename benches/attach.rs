//! Container attach figures (a benchmark, not a timed test):
//! `cargo bench --bench attach` (root, Open vSwitch installed; Docker and
//! `PIPEWORK=/path/to/pipework` for the comparison).
//!
//! - single attach: `ovsnet attach` as a command (process start, connect,
//!   attach), median over fresh containers, and the library call alone;
//! - 1,000 sequential attaches on one bridge: per-attach median of the
//!   first 100 and of the last 100 (it must stay flat);
//! - `ovsnet attach --batch` of 1,000;
//! - pipework and ovs-docker against the same kind of Docker containers,
//!   same bridge, same run.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ovsnet::attach::{AttachRequest, Attacher, AttacherOptions};
use ovsnet::container::ContainerRef;
use ovsnet::netns;
use ovsnet::ovsdb::{Client, ConnectOptions};
use ovsnet::sandbox::docker::DockerEngine;
use ovsnet::sandbox::{OvsSandbox, SandboxOptions, unique_name};

const BR: &str = "obr0";

struct Namespaces(Vec<String>);

impl Namespaces {
    fn new(n: usize) -> Self {
        let names: Vec<String> = (0..n).map(|_| unique_name("bn")).collect();
        for name in &names {
            netns::create(name).expect("create namespace");
        }
        Namespaces(names)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = netns::delete(n);
        }
    }
}

fn vsctl(sbx: &OvsSandbox, args: &[&str]) {
    let ok = Command::new("ovs-vsctl")
        .arg(format!("--db={}", sbx.db_remote()))
        .args(args)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "ovs-vsctl {args:?}");
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn ovsnet_cmd(sbx: &OvsSandbox) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ovsnet"));
    cmd.arg("--db").arg(sbx.db_remote()).arg("--netns").arg(sbx.netns());
    cmd
}

fn fresh_switch() -> OvsSandbox {
    let sbx = OvsSandbox::start(SandboxOptions::default()).expect("sandbox");
    vsctl(&sbx, &["add-br", BR, "--", "set", "bridge", BR, "datapath_type=netdev"]);
    sbx
}

fn ip(i: usize) -> String {
    let j = i + 2;
    format!("10.{}.{}.{}/8", 100 + j / 65536, (j / 256) % 256, j % 256)
}

/// The load average, printed with each figure: these machines are shared.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for the list of benchmarks.
    }
    // ATTACH_BENCH=single,sequential,batch,compare (default: all).
    let parts = std::env::var("ATTACH_BENCH").unwrap_or_else(|_| "single,sequential,batch,compare".into());
    let want = |p: &str| parts.split(',').any(|x| x == p);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");

    // 1. Single attach as a command, over fresh containers.
    if want("single") {
        let sbx = fresh_switch();
        let ns = Namespaces::new(41);
        let mut times = Vec::new();
        for (i, n) in ns.0.iter().enumerate() {
            let t = Instant::now();
            let out = ovsnet_cmd(&sbx).args(["attach", BR, &format!("netns:{n}"), &ip(i)]).output().expect("ovsnet");
            let d = t.elapsed();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            if i > 0 {
                times.push(d); // the first warms the page cache
            }
        }
        println!(
            "single attach, `ovsnet attach` command, median of {}: {} (load {})",
            times.len(),
            ms(median(&mut times)),
            load()
        );
    }

    // 2. 1,000 sequential attaches through the library on one bridge.
    if want("sequential") {
        let sbx = fresh_switch();
        let ns = Namespaces::new(1000);
        let times = rt.block_on(async {
            let client = Client::connect(&sbx.db_remote(), &ConnectOptions::default()).await.expect("connect");
            let a = Attacher::new(
                client,
                AttacherOptions { switch_netns: Some(sbx.netns().to_owned()), ..Default::default() },
            )
            .expect("attacher");
            let mut times = Vec::new();
            let total = Instant::now();
            for (i, n) in ns.0.iter().enumerate() {
                let req = AttachRequest::new(BR, ContainerRef::Netns(n.clone()), &ip(i)).expect("req");
                let t = Instant::now();
                a.attach(&req).await.expect("attach");
                times.push(t.elapsed());
            }
            (times, total.elapsed())
        });
        let (mut times, total) = times;
        let mut first: Vec<Duration> = times[..100].to_vec();
        let mut last: Vec<Duration> = times[900..].to_vec();
        println!(
            "1,000 sequential attaches (library, one connection): total {:.2} s, median first 100 {}, last 100 {}, overall {} (load {})",
            total.as_secs_f64(),
            ms(median(&mut first)),
            ms(median(&mut last)),
            ms(median(&mut times)),
            load()
        );
    }

    // 3. --batch of 1,000.
    if want("batch") {
        let sbx = fresh_switch();
        let ns = Namespaces::new(1000);
        let text: String = ns.0.iter().enumerate().map(|(i, n)| format!("{BR} netns:{n} {}\n", ip(i))).collect();
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("batch");
        std::fs::write(&file, text).expect("write");
        // ATTACH_BATCH_CHUNK: lines per OVSDB commit (default: ovsnet's).
        let chunk = std::env::var("ATTACH_BATCH_CHUNK").unwrap_or_else(|_| "100".into());
        let t = Instant::now();
        let out = ovsnet_cmd(&sbx)
            .args(["attach", "--chunk", &chunk, "--batch"])
            .arg(&file)
            .stdout(Stdio::null())
            .output()
            .expect("batch");
        let d = t.elapsed();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        println!("`ovsnet attach --batch` of 1,000, --chunk {chunk}: {:.2} s (load {})", d.as_secs_f64(), load());
    }

    // 4. Against pipework and ovs-docker, on real Docker containers.
    if !want("compare") {
        return;
    }
    if ovsnet::sandbox::docker::docker_installed().is_err() {
        println!("docker not installed: comparison skipped");
        return;
    }
    let engine = DockerEngine::start().expect("dockerd");
    engine.import_mini_image().expect("image");
    let n = 10;
    let pipework = std::env::var("PIPEWORK").ok();
    let mut results = Vec::new();
    for tool in ["ovsnet", "ovs-docker", "pipework"] {
        if tool == "pipework" && pipework.is_none() {
            println!("PIPEWORK not set: pipework skipped");
            continue;
        }
        let sbx = fresh_switch();
        let names: Vec<String> = (0..n).map(|_| unique_name("cmp")).collect();
        for name in &names {
            engine.run_sleeper(name).expect("docker run");
        }
        let mut times = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let addr = format!("172.16.{}.{}/16", 42, 10 + i);
            let mut cmd = match tool {
                "ovsnet" => {
                    let mut c = ovsnet_cmd(&sbx);
                    c.args(["attach", BR, name, &addr]);
                    c
                }
                // Both scripts run inside the switch's namespace so that the
                // host end of their veth is where ovs-vswitchd can see it.
                "ovs-docker" => {
                    let mut c = Command::new("ip");
                    c.args(["netns", "exec", sbx.netns(), "ovs-docker", "add-port", BR, "eth1", name])
                        .arg(format!("--ipaddress={addr}"));
                    c
                }
                _ => {
                    let mut c = Command::new("ip");
                    c.args(["netns", "exec", sbx.netns()])
                        .arg(pipework.as_deref().unwrap_or("pipework"))
                        .args([BR, name, &addr]);
                    c
                }
            };
            cmd.env("DOCKER_HOST", engine.host())
                .env("DOCKER_CONFIG", engine.dir().join("cli"))
                .env("OVS_RUNDIR", sbx.dir());
            let t = Instant::now();
            let out = cmd.output().expect("run");
            let d = t.elapsed();
            assert!(out.status.success(), "{tool}: {}", String::from_utf8_lossy(&out.stderr));
            times.push(d);
        }
        let m = median(&mut times);
        println!("{tool}: single attach to a Docker container, median of {n}: {} (load {})", ms(m), load());
        results.push((tool, m));
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        engine.remove(&refs).expect("docker rm");
    }
    if let Some((_, ours)) = results.iter().find(|(t, _)| *t == "ovsnet") {
        for (tool, m) in &results {
            if *tool != "ovsnet" {
                println!("ovsnet is {:.1}x faster than {tool}", m.as_secs_f64() / ours.as_secs_f64());
            }
        }
    }
}
