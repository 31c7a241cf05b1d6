//! Messages captured from real switches and ovs-ofctl (the Ryu OpenFlow 1.3
//! vectors): every one decodes, and encoding the decoded message gives the
//! same bytes back.

use std::path::PathBuf;

use ovsnet::openflow::Message;

fn vector_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/of13/packet")
}

#[test]
fn ryu_vectors_round_trip_byte_exact() {
    let mut checked = 0;
    let mut failures = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(vector_dir())
        .expect("vector dir")
        .map(|e| e.expect("entry").path())
        .collect();
    // Replies captured from ovs-vswitchd 3.1 by tests/openflow_live.rs.
    let captured = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/of13/ovs-3.1");
    if let Ok(rd) = std::fs::read_dir(captured) {
        entries.extend(rd.map(|e| e.expect("entry").path()));
    }
    entries.sort();
    for path in entries {
        let bytes = std::fs::read(&path).expect("read vector");
        if bytes.is_empty() {
            continue;
        }
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        match Message::decode(&bytes) {
            Ok((h, msg)) => {
                let again = msg.encode(h.xid);
                if again != bytes {
                    failures.push(format!("{name}: re-encoding differs"));
                }
                checked += 1;
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(checked >= 100, "only {checked} vectors decoded");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// ovsnet's printer gives ovs-ofctl's first line for every reply a real
/// ovs-vswitchd sent.
#[test]
fn captured_replies_print_like_ovs_ofctl() {
    let ok = std::process::Command::new("ovs-ofctl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "ovs-ofctl is required under CI=true"
        );
        return;
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/of13/ovs-3.1");
    let mut failures = Vec::new();
    let mut n = 0;
    for e in std::fs::read_dir(dir).expect("captured vectors") {
        let bytes = std::fs::read(e.expect("entry").path()).expect("read");
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let out = std::process::Command::new("ovs-ofctl")
            .args(["ofp-print", &hex])
            .output()
            .expect("ofp-print");
        let theirs = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .trim_end()
            .to_string();
        let (h, m) = Message::decode(&bytes).expect("decode");
        let ours = ovsnet::openflow::text::format_message_xid(&m, h.xid);
        let ours = ours.lines().next().unwrap_or("").trim_end().to_string();
        if ours != theirs {
            failures.push(format!("ovs:    {theirs}\novsnet: {ours}"));
        }
        n += 1;
    }
    assert!(n >= 10);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
