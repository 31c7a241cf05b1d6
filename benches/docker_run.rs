//! Docker driver figures (a benchmark, not a timed test):
//! `cargo bench --bench docker_run [-- N]` (root, Open vSwitch, Docker and
//! docker-compose installed).
//!
//! On one private engine in a private switch's namespace, in one run:
//! - `docker run -d` of the busybox image, median of N (default 50), on an
//!   ovsnet network, on a user-defined network of Docker's own `bridge`
//!   driver, and with `--net=none` followed by `ovsnet attach` (the
//!   pipework way), alternating so that load drifts hit all three alike;
//! - the driver's `Join` inside the agent, p50 and p99 (from its log);
//! - 20 concurrent `docker run -d` on ovsnet and on the bridge driver;
//! - `docker-compose up -d` of 50 services on ovsnet and on the bridge
//!   driver, three rounds in alternating order, median.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ovsnet::sandbox::docker::{DockerEngine, DockerOptions, MINI_IMAGE};
use ovsnet::sandbox::{OvsSandbox, SandboxOptions};

const BR: &str = "obr0";
/// Rounds of `docker-compose up -d` each way.
const COMPOSE_ROUNDS: usize = 3;

fn run(cmd: &mut Command) -> String {
    let out = cmd.stdin(Stdio::null()).output().expect("run");
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn ovsnet(sbx: &OvsSandbox, tmp: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ovsnet"));
    cmd.args(args)
        .env("OVSNET_CONFIG", tmp.join("ovsnet.conf"))
        .env("OVSNET_DB_DIR", tmp.join("db"))
        .env("OVSNET_DB", sbx.db_remote())
        .env("OVSNET_HOST_NAME", "h1")
        .env("OVSNET_UNDERLAY_IP", "172.30.0.1")
        .env("OVS_RUNDIR", sbx.dir())
        .env_remove("OVSNET_CLUSTER_DB");
    cmd
}

fn timed(cmd: &mut Command) -> Duration {
    let t = Instant::now();
    run(cmd);
    t.elapsed()
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// A log line without its colour escapes.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split(' ').take(3).collect::<Vec<_>>().join(" ")
}

fn compose_file(dir: &Path, name: &str, services: usize, driver: &str, subnet: &str) -> PathBuf {
    let mut text = String::from("version: \"2.4\"\nservices:\n");
    for i in 0..services {
        text.push_str(&format!("  s{i}: {{image: \"{MINI_IMAGE}\", command: sleep 600, networks: [net]}}\n"));
    }
    let ipam = if driver == "ovsnet" { "driver: ovsnet, " } else { "" };
    text.push_str(&format!(
        "networks:\n  net:\n    driver: {driver}\n    ipam: {{{ipam}config: [{{subnet: {subnet}}}]}}\n"
    ));
    let path = dir.join(format!("{name}.yml"));
    std::fs::write(&path, text).expect("write compose file");
    path
}

fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(50);
    let sbx = OvsSandbox::start(SandboxOptions::default()).expect("sandbox");
    run(Command::new("ovs-vsctl").arg(format!("--db={}", sbx.db_remote())).args([
        "add-br",
        BR,
        "--",
        "set",
        "bridge",
        BR,
        "datapath_type=netdev",
    ]));
    let tmp = tempfile::Builder::new().prefix("ovsnet-bd").tempdir_in("/tmp").expect("tempdir");
    std::fs::write(tmp.path().join("ovsnet.conf"), "").expect("config");
    run(&mut ovsnet(&sbx, tmp.path(), &["cluster", "start"]));
    let plugins = tmp.path().join("plugins");
    let mut engine = DockerEngine::start_with(&DockerOptions {
        netns: Some(sbx.netns().to_owned()),
        plugins: Some(plugins.clone()),
        dir: None,
        bridge_nat: false,
    })
    .expect("dockerd");
    engine.import_mini_image().expect("image");

    // The agent with the plugin, in the switch's namespace; its log gives
    // each Join's time.
    let sock = plugins.join("ovsnet.sock");
    let mut cmd = ovsnet(&sbx, tmp.path(), &["agent", "--quiet", "--docker-plugin", &sock.display().to_string()]);
    cmd.env("DOCKER_HOST", engine.host()).env("RUST_LOG", "ovsnet::driver=info,ovsnet::agent=debug");
    let ns = ovsnet::netns::open(sbx.netns()).expect("netns");
    ovsnet::netns::command_in(&mut cmd, &ns);
    let mut agent = cmd.stdin(Stdio::null()).stderr(Stdio::piped()).spawn().expect("agent");
    drop(ns);
    let joins = Arc::new(Mutex::new(Vec::<Duration>::new()));
    // Each Join's stages, as the driver logs them.
    const STAGES: [&str; 4] = ["lookup_us", "plug_us", "cleanup_us", "flows_us"];
    let stages = Arc::new(Mutex::new(vec![Vec::<u64>::new(); STAGES.len()]));
    let stderr = agent.stderr.take().expect("stderr");
    let j = joins.clone();
    let st = stages.clone();
    // Ports per OVSDB transaction, as the driver batches them: new ports
    // of Joins that found no spare, and spares made together.
    let batches = Arc::new(Mutex::new(Vec::<usize>::new()));
    let b = batches.clone();
    let spare_batches = Arc::new(Mutex::new(Vec::<usize>::new()));
    let sb = spare_batches.clone();
    // The agent's part of a claim: computing the flows, the switch taking them.
    let claim_parts = Arc::new(Mutex::new(vec![Vec::<u64>::new(); 2]));
    let cl = claim_parts.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let line = strip_ansi(&line);
            if line.contains("change timing") && line.contains("driver claim") {
                let mut all = cl.lock().unwrap_or_else(|p| p.into_inner());
                for (i, key) in ["compute_us", "switch_us"].iter().enumerate() {
                    let v = line.split(&format!("{key}=")).nth(1).and_then(|r| r.split(' ').next());
                    if let Some(v) = v.and_then(|v| v.parse().ok()) {
                        all[i].push(v);
                    }
                }
            }
            let ports = || line.split("ports=").nth(1).and_then(|r| r.split(' ').next()).and_then(|v| v.parse().ok());
            if line.contains("driver ports added together") {
                if let Some(n) = ports() {
                    b.lock().unwrap_or_else(|p| p.into_inner()).push(n);
                }
            }
            if line.contains("driver spares made together") {
                if let Some(n) = ports() {
                    sb.lock().unwrap_or_else(|p| p.into_inner()).push(n);
                }
            }
            if line.contains("driver join stages") {
                let mut all = st.lock().unwrap_or_else(|p| p.into_inner());
                for (i, key) in STAGES.iter().enumerate() {
                    let v = line.split(&format!("{key}=")).nth(1).and_then(|r| r.split(' ').next());
                    if let Some(v) = v.and_then(|v| v.parse().ok()) {
                        all[i].push(v);
                    }
                }
            }
            if let Some(us) =
                line.split("took_us=").nth(1).and_then(|r| r.split(' ').next()).and_then(|v| v.parse().ok())
            {
                j.lock().unwrap_or_else(|p| p.into_inner()).push(Duration::from_micros(us));
            }
        }
    });
    let start = Instant::now();
    while std::os::unix::net::UnixStream::connect(&sock).is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "no plugin socket");
        std::thread::sleep(Duration::from_millis(20));
    }

    let docker = |args: &[&str]| {
        let mut c = engine.cli();
        c.args(args);
        c
    };
    run(&mut docker(&[
        "network",
        "create",
        "-d",
        "ovsnet",
        "--ipam-driver",
        "ovsnet",
        "--subnet",
        "10.40.0.0/16",
        "ovs",
    ]));
    run(&mut docker(&["network", "create", "-d", "bridge", "--subnet", "10.60.0.0/16", "brg"]));

    println!("load before: {}", load());
    let (mut on_ovsnet, mut on_bridge, mut attach_way) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        on_ovsnet.push(timed(&mut docker(&[
            "run",
            "-d",
            "--network",
            "ovs",
            "--name",
            &format!("o{i}"),
            MINI_IMAGE,
            "sleep",
            "600",
        ])));
        on_bridge.push(timed(&mut docker(&[
            "run",
            "-d",
            "--network",
            "brg",
            "--name",
            &format!("b{i}"),
            MINI_IMAGE,
            "sleep",
            "600",
        ])));
        let name = format!("p{i}");
        let t = Instant::now();
        run(&mut docker(&["run", "-d", "--net=none", "--name", &name, MINI_IMAGE, "sleep", "600"]));
        let ip = format!("10.50.{}.{}/16", i / 250, i % 250 + 1);
        let mut a = ovsnet(&sbx, tmp.path(), &["--netns", sbx.netns(), "attach", BR, &name, &ip]);
        a.env("DOCKER_HOST", engine.host());
        run(&mut a);
        attach_way.push(t.elapsed());
    }
    println!("load after the single runs: {}", load());
    let (o, b, p) = (pct(&mut on_ovsnet, 0.5), pct(&mut on_bridge, 0.5), pct(&mut attach_way, 0.5));
    println!(
        "docker run -d, median of {n}: ovsnet {} | bridge driver {} | --net=none + ovsnet attach {}",
        ms(o),
        ms(b),
        ms(p)
    );
    println!("ratio ovsnet / bridge driver: {:.3}", o.as_secs_f64() / b.as_secs_f64());
    let mut js = joins.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if !js.is_empty() {
        let count = js.len();
        println!(
            "driver Join inside the agent: p50 {} p99 {} (of {count})",
            ms(pct(&mut js, 0.5)),
            ms(pct(&mut js, 0.99))
        );
        let mut all = stages.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let parts: Vec<String> = STAGES
            .iter()
            .zip(all.iter_mut())
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| {
                v.sort_unstable();
                format!("{} {:.2} ms", k.trim_end_matches("_us"), v[v.len() / 2] as f64 / 1000.0)
            })
            .collect();
        println!("Join's stages, p50 each: {}", parts.join(", "));
        let mut cp = claim_parts.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if cp.iter().all(|v| !v.is_empty()) {
            for v in cp.iter_mut() {
                v.sort_unstable();
            }
            println!(
                "the agent on a claim, p50: computing the flows {:.2} ms, the switch taking them {:.2} ms (of {})",
                cp[0][cp[0].len() / 2] as f64 / 1000.0,
                cp[1][cp[1].len() / 2] as f64 / 1000.0,
                cp[0].len()
            );
        }
    }

    // Clear the single runs, then 20 concurrent starts on each.
    let all = run(&mut docker(&["ps", "-aq"]));
    let ids: Vec<&str> = all.lines().collect();
    let mut rm = docker(&["rm", "-f"]);
    rm.args(&ids);
    run(&mut rm);
    for (net, prefix) in [("ovs", "co"), ("brg", "cb")] {
        let batches_before = batches.lock().unwrap_or_else(|p| p.into_inner()).len();
        let spares_before = spare_batches.lock().unwrap_or_else(|p| p.into_inner()).len();
        let t = Instant::now();
        let children: Vec<_> = (0..20)
            .map(|i| {
                docker(&["run", "-d", "--network", net, "--name", &format!("{prefix}{i}"), MINI_IMAGE, "sleep", "600"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("docker run")
            })
            .collect();
        let failed =
            children.into_iter().map(|c| c.wait_with_output().expect("wait")).filter(|o| !o.status.success()).count();
        println!("20 concurrent docker run -d on {net}: {} ({failed} failed), load {}", ms(t.elapsed()), load());
        if net == "ovs" {
            for (what, sizes, before) in [
                ("new ports of Joins that found no spare", &batches, batches_before),
                ("spares made meanwhile", &spare_batches, spares_before),
            ] {
                let all = sizes.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let these = &all[before.min(all.len())..];
                println!(
                    "  {what}: {} in {} transaction(s), the largest of {} port(s)",
                    these.iter().sum::<usize>(),
                    these.len(),
                    these.iter().max().copied().unwrap_or(0)
                );
            }
        }
    }
    let all = run(&mut docker(&["ps", "-aq"]));
    let ids: Vec<&str> = all.lines().collect();
    let mut rm = docker(&["rm", "-f"]);
    rm.args(&ids);
    run(&mut rm);

    // Compose: 50 services, each way.
    let compose = |file: &Path, project: &str, args: &[&str]| {
        let mut c = Command::new("docker-compose");
        c.arg("-f").arg(file).args(["-p", project]).args(args).env("DOCKER_HOST", engine.host());
        c.env("DOCKER_CONFIG", engine.dir().join("cli"));
        c
    };
    let fo = compose_file(tmp.path(), "ovsnet", 50, "ovsnet", "10.41.0.0/16");
    let fb = compose_file(tmp.path(), "bridge", 50, "bridge", "10.61.0.0/16");
    // Three rounds, the order swapped each round, the median of each.
    let (mut ups_o, mut ups_b) = (Vec::new(), Vec::new());
    for round in 0..COMPOSE_ROUNDS {
        let ovsnet_first = round % 2 == 0;
        for ovsnet_turn in [ovsnet_first, !ovsnet_first] {
            let (file, project, into) = match ovsnet_turn {
                true => (&fo, "co", &mut ups_o),
                false => (&fb, "cb", &mut ups_b),
            };
            into.push(timed(&mut compose(file, project, &["up", "-d"])));
            run(&mut compose(file, project, &["down"]));
        }
        println!(
            "  compose round {}: ovsnet {} | bridge driver {}; load {}",
            round + 1,
            ms(ups_o[round]),
            ms(ups_b[round]),
            load()
        );
    }
    let (up_o, up_b) = (pct(&mut ups_o, 0.5), pct(&mut ups_b, 0.5));
    println!(
        "docker-compose up -d, 50 services (median of {COMPOSE_ROUNDS}): ovsnet {} | bridge driver {} | ratio {:.3}; load {}",
        ms(up_o),
        ms(up_b),
        up_o.as_secs_f64() / up_b.as_secs_f64(),
        load()
    );

    let _ = agent.kill();
    let _ = agent.wait();
    engine.stop();
    let _ = ovsnet::cluster::server::stop(&tmp.path().join("db"));
}
