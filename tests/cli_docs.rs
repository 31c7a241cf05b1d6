//! `ovsnet completion` and `ovsnet man`: generated from the same command
//! definitions as `--help`, for every command.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

fn ovsnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ovsnet")).args(args).output().expect("run ovsnet")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn bash_completion_is_valid_bash_and_knows_every_command() {
    let out = ovsnet(&["completion", "bash"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let script = stdout(&out);
    for word in ["attach", "detach", "gc", "network", "host", "agent", "flows", "--cluster-db", "--if-exists"] {
        assert!(script.contains(word), "no {word} in the bash completion");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ovsnet.bash");
    std::fs::write(&path, &script).unwrap();
    let check = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(check.status.success(), "bash -n: {}", String::from_utf8_lossy(&check.stderr));
}

#[test]
fn other_shells_and_a_wrong_one() {
    for shell in ["zsh", "fish"] {
        let out = ovsnet(&["completion", shell]);
        assert!(out.status.success() && stdout(&out).contains("attach"), "{shell}");
    }
    let out = ovsnet(&["completion", "tcsh"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("tcsh"), "{err}");
}

#[test]
fn man_prints_the_main_page() {
    let out = ovsnet(&["man"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let page = stdout(&out);
    assert!(page.starts_with(".ie") || page.starts_with(".TH"), "{}", &page[..page.len().min(200)]);
    assert!(page.contains(".TH ovsnet 1"), "no title");
    assert!(page.contains("attach") && page.contains("network"), "commands missing");
    assert!(page.contains("Exit status: 0") && page.contains("2 on a usage error"), "exit codes missing");
}

#[test]
fn exit_codes_are_as_documented() {
    assert_eq!(ovsnet(&["--version"]).status.code(), Some(0));
    assert_eq!(ovsnet(&["attach", "--no-such-option"]).status.code(), Some(2), "usage error");
    let out = ovsnet(&["--db", "unix:/nonexistent/db.sock", "-t", "1", "bridge", "show"]);
    assert_eq!(out.status.code(), Some(1), "an error");
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim().lines().count(), 1, "one line");
}

#[test]
fn man_writes_one_page_per_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = ovsnet(&["man", "--dir", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut pages: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    pages.sort();
    for want in ["ovsnet.1", "ovsnet-attach.1", "ovsnet-network-create.1", "ovsnet-host-del.1", "ovsnet-cluster-init.1"]
    {
        assert!(pages.iter().any(|p| p == want), "no {want} in {pages:?}");
    }
    assert!(!pages.iter().any(|p| p.contains("help")), "a page for help: {pages:?}");
    assert_eq!(stdout(&out).trim(), format!("wrote {} manual pages to {}", pages.len(), dir.path().display()));
    let del = std::fs::read_to_string(dir.path().join("ovsnet-host-del.1")).unwrap();
    assert!(del.contains(".TH ovsnet-host-del 1") && del.contains("\\-\\-force"), "{del}");
}

#[test]
fn man_into_a_missing_directory_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let out = ovsnet(&["man", "--dir", missing.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("not a directory"), "{err}");
    assert!(!missing.exists());
}

/// Every command and every option says what it is in `--help` (and so in
/// the manual pages): none is listed bare.
#[test]
fn every_command_and_option_has_help() {
    use clap::CommandFactory;
    fn walk(cmd: &clap::Command, path: &str, bare: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if arg.get_help().is_none() && arg.get_long_help().is_none() && !["help", "version"].contains(&id) {
                bare.push(format!("{path} {id}"));
            }
        }
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let sub_path = format!("{path} {}", sub.get_name());
            if sub.get_about().is_none() && sub.get_long_about().is_none() {
                bare.push(sub_path.clone());
            }
            walk(sub, &sub_path, bare);
        }
    }
    let mut bare = Vec::new();
    walk(&ovsnet::cli::Cli::command(), "ovsnet", &mut bare);
    assert!(bare.is_empty(), "without help:\n{}", bare.join("\n"));
}

/// Output into a pipe nobody reads (`ovsnet ... | head -0`) stops the
/// command quietly with the status of a tool ended by SIGPIPE, never a
/// panic.
#[test]
fn a_closed_standard_output_stops_the_command_quietly() {
    let (read, write) = nix::unistd::pipe().expect("pipe");
    drop(read);
    let out = Command::new(env!("CARGO_BIN_EXE_ovsnet"))
        .args(["completion", "bash"])
        .stdout(std::process::Stdio::from(write))
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run ovsnet");
    assert_eq!(out.status.code(), Some(141), "{out:?}");
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}
