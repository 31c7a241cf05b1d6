//! The configuration file and the `OVSNET_*` variables through the binary:
//! `config show` and its sources, bad files refused in one line, and a
//! cluster database from the environment that leaves a plain `attach`
//! plain. Nothing here needs a switch: the commands stop before one.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Run {
    dir: tempfile::TempDir,
}

impl Run {
    fn new() -> Run {
        Run { dir: tempfile::tempdir().unwrap() }
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

/// `ovsnet ARGS` with only the `OVSNET_*` variables given (none inherited).
fn ovsnet(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ovsnet"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("OVSNET_") {
            cmd.env_remove(k);
        }
    }
    // Nothing here may reach a real switch or Docker.
    cmd.env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    cmd.args(args).envs(env.iter().copied()).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A failure with exit code 1 and one line on stderr; the line.
fn one_line_failure(o: &Output) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "exit code; stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    err.trim_end().to_owned()
}

fn show_line<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines().find(|l| l.split_whitespace().next() == Some(key)).unwrap_or_else(|| panic!("no {key} in {out}"))
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn config_show_names_each_source() {
    let r = Run::new();
    let conf = r.file(
        "ovsnet.conf",
        "# test\ndb = \"unix:/file/db.sock\"\ncluster_db = \"tcp:10.9.9.9:6650\"\nhost_name = \"from-file\"\n\
         underlay_ip = \"192.168.56.11\"\ntunnel = [\"geneve\", \"gre\"]\n",
    );
    let c = path_str(&conf);
    let o = ovsnet(
        &["--config", c, "--db", "unix:/flag/db.sock", "config", "show"],
        &[("OVSNET_CLUSTER_DB", "tcp:10.0.0.1:6650"), ("OVSNET_BRIDGE", "br-env")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(show_line(&out, "config"), format!("config       {c}  (flag, read)"));
    assert_eq!(show_line(&out, "db"), "db           unix:/flag/db.sock  (flag)");
    assert_eq!(show_line(&out, "cluster_db"), "cluster_db   tcp:10.0.0.1:6650  (env OVSNET_CLUSTER_DB)");
    assert_eq!(show_line(&out, "host_name"), format!("host_name    from-file  (file {c}:4)"));
    assert_eq!(show_line(&out, "underlay_ip"), format!("underlay_ip  192.168.56.11  (file {c}:5)"));
    assert_eq!(show_line(&out, "tunnel"), format!("tunnel       geneve,gre  (file {c}:6)"));
    assert_eq!(show_line(&out, "bridge"), "bridge       br-env  (env OVSNET_BRIDGE)");
    assert_eq!(show_line(&out, "ca_cert"), "ca_cert      unset");
}

#[test]
fn config_show_as_json_and_from_ovsnet_config() {
    let r = Run::new();
    let conf = r.file("other.conf", "bridge = \"br-int\"\n");
    let o = ovsnet(&["--format", "json", "config", "show"], &[("OVSNET_CONFIG", path_str(&conf))]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["file"]["source"], "env OVSNET_CONFIG");
    assert_eq!(v["file"]["read"], true);
    let keys = v["keys"].as_array().unwrap();
    assert_eq!(keys.len(), ovsnet::config::Key::ALL.len(), "every key");
    assert_eq!(
        keys.len(),
        11,
        "db, cluster_db, db_dir, host_name, underlay_ip, tunnel, bridge, docker_plugin and the TLS files"
    );
    let bridge = keys.iter().find(|k| k["key"] == "bridge").unwrap();
    assert_eq!(bridge["value"], "br-int");
    assert_eq!(bridge["source"], format!("file {}:1", conf.display()));
    let tunnel = keys.iter().find(|k| k["key"] == "tunnel").unwrap();
    assert_eq!((&tunnel["value"], &tunnel["source"]), (&serde_json::json!("vxlan"), &serde_json::json!("default")));
    let ca = keys.iter().find(|k| k["key"] == "ca_cert").unwrap();
    assert!(ca["value"].is_null() && ca["source"] == "unset", "{ca}");
}

#[test]
fn a_bad_file_is_one_line_naming_file_line_and_key() {
    let r = Run::new();
    for (name, text, line, key) in [
        ("unknown.conf", "db = \"unix:/x\"\n\ncolour = \"blue\"\n", 3, "colour"),
        ("address.conf", "host_name = \"h1\"\nunderlay_ip = \"10.0.0.300\"\n", 2, "underlay_ip"),
        ("type.conf", "# x\nbridge = 5\n", 2, "bridge"),
        ("tunnel.conf", "tunnel = [\"vxlan\", \"ipip\"]\n", 1, "tunnel"),
    ] {
        let conf = r.file(name, text);
        let want = format!("ovsnet: {}:{line}: {key}: ", conf.display());
        for args in [
            vec!["config", "show"],
            // The commands stop before they start or write anything.
            vec!["attach", "obr0", "pid:1", "172.16.42.10/24"],
            vec!["agent", "--bridge", "obr0"],
            vec!["network", "list"],
        ] {
            let mut all = vec!["--config", path_str(&conf)];
            all.extend(args.iter().copied());
            let err = one_line_failure(&ovsnet(&all, &[]));
            assert!(err.starts_with(&want), "{name} {args:?}: {err}");
        }
    }
}

#[test]
fn a_named_file_must_exist_and_the_default_need_not() {
    let r = Run::new();
    let missing = r.dir.path().join("missing.conf");
    let err = one_line_failure(&ovsnet(&["--config", path_str(&missing), "config", "show"], &[]));
    assert!(err.contains(path_str(&missing)), "{err}");
    let err = one_line_failure(&ovsnet(&["config", "show"], &[("OVSNET_CONFIG", path_str(&missing))]));
    assert!(err.contains(path_str(&missing)), "{err}");
}

#[test]
fn a_bad_variable_is_one_line_naming_it() {
    let r = Run::new();
    let conf = r.file("empty.conf", "");
    let err = one_line_failure(&ovsnet(
        &["--config", path_str(&conf), "config", "show"],
        &[("OVSNET_UNDERLAY_IP", "10.0.0")],
    ));
    assert!(err.contains("OVSNET_UNDERLAY_IP"), "{err}");
}

#[test]
fn a_cluster_database_from_env_or_file_leaves_a_plain_attach_plain() {
    let r = Run::new();
    let empty = r.file("empty.conf", "");
    let with_cluster = r.file("cluster.conf", "cluster_db = \"tcp:127.0.0.1:9\"\n");
    let db = format!("unix:{}", r.dir.path().join("no-db.sock").display());
    let attach = ["attach", "obr0", "web_worker", "172.16.42.10/24"];
    for (conf, env) in [(&empty, vec![("OVSNET_CLUSTER_DB", "tcp:127.0.0.1:9")]), (&with_cluster, vec![])] {
        let mut args = vec!["--config", path_str(conf), "--db", &db, "--timeout", "2"];
        args.extend(attach);
        let o = ovsnet(&args, &env);
        let err = stderr(&o);
        // It fails (no database, no container), but not over the cluster.
        assert!(!o.status.success(), "{err}");
        assert!(!err.contains("--network") && !err.contains("cluster"), "{err}");
    }
}

#[test]
fn attach_into_a_network_without_a_cluster_says_so() {
    let r = Run::new();
    let conf = r.file("empty.conf", "host_name = \"h1\"\n");
    let err = one_line_failure(&ovsnet(
        &["--config", path_str(&conf), "attach", "obr0", "web_worker", "--network", "x"],
        &[],
    ));
    assert!(err.contains("no cluster database is configured"), "{err}");
    assert!(err.contains("OVSNET_CLUSTER_DB") && err.contains(path_str(&conf)), "{err}");
}

#[test]
fn commands_of_the_cluster_without_one_say_so() {
    let r = Run::new();
    let conf = r.file("empty.conf", "");
    for args in [vec!["network", "list"], vec!["host", "list"], vec!["cluster", "status"]] {
        let mut all = vec!["--config", path_str(&conf)];
        all.extend(args.iter().copied());
        let err = one_line_failure(&ovsnet(&all, &[]));
        assert!(err.contains("no cluster database is configured"), "{args:?}: {err}");
    }
}

#[test]
fn the_agent_in_cluster_mode_needs_an_underlay_address_and_takes_the_rest_from_config() {
    let r = Run::new();
    // host_name from the file, cluster from the environment: what is
    // missing is the underlay address, and it says where to give one.
    let conf = r.file("agent.conf", "host_name = \"h1\"\ntunnel = \"gre\"\n");
    // (With a tcp: member the agent would take the address the kernel
    // routes to it from; a unix: socket has none.)
    let err = one_line_failure(&ovsnet(
        &["--config", path_str(&conf), "agent"],
        &[("OVSNET_CLUSTER_DB", "unix:/nonexistent/ovsnet.sock")],
    ));
    assert!(err.contains("no underlay address") && err.contains("OVSNET_UNDERLAY_IP"), "{err}");
    // Cluster flags on the command line without a cluster database are a mistake.
    let err = one_line_failure(&ovsnet(&["--config", path_str(&conf), "agent", "--underlay-ip", "10.0.0.1"], &[]));
    assert!(err.contains("need a cluster database"), "{err}");
}

#[test]
fn the_help_documents_every_variable() {
    let o = ovsnet(&["--help"], &[]);
    let help = stdout(&o);
    for var in [
        "OVSNET_CONFIG",
        "OVSNET_DB",
        "OVSNET_CLUSTER_DB",
        "OVSNET_HOST_NAME",
        "OVSNET_UNDERLAY_IP",
        "OVSNET_TUNNEL",
        "OVSNET_BRIDGE",
        "OVSNET_PRIVATE_KEY",
        "OVSNET_CERTIFICATE",
        "OVSNET_CA_CERT",
    ] {
        assert!(help.contains(var), "no {var} in --help");
    }
    assert!(stdout(&ovsnet(&["config", "show", "--help"], &[])).contains("OVSNET_CLUSTER_DB"));
}
