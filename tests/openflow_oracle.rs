//! ovsnet's FLOW_MOD encoding against Open vSwitch's own: every flow string
//! in `tests/data/of13_flows.txt` is encoded by ovsnet and by
//! `ovs-ofctl -O OpenFlow13 parse-flows`; the bytes must be equal (xid
//! masked), or, where OVS picks another valid encoding, `ovs-ofctl ofp-print`
//! of ovsnet's bytes must print the same flow. ovsnet's own printer must
//! print each flow as ovs-ofctl does.

use std::path::PathBuf;
use std::process::Command;

use ovsnet::openflow::Message;
use ovsnet::openflow::text::{format_message, parse_flow};

fn have_ovs_ofctl() -> bool {
    let ok = Command::new("ovs-ofctl").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok && std::env::var("CI").as_deref() == Ok("true") {
        panic!("ovs-ofctl is required under CI=true");
    }
    ok
}

fn flows_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/of13_flows.txt")
}

/// Splits `ovs-ofctl -mmmmm` output into (printed line, bytes) per message.
fn parse_dump(out: &str) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = Vec::new();
    for line in out.lines() {
        if line.starts_with("OFPT_") || line.starts_with("OFPST_") {
            v.push((line.to_string(), Vec::new()));
        } else if line.len() > 10 && line.as_bytes()[8] == b' ' && line[..8].chars().all(|c| c.is_ascii_hexdigit()) {
            let hex = line[10..].split('|').next().unwrap_or("");
            if let Some(last) = v.last_mut() {
                for tok in hex.split([' ', '-']).filter(|t| t.len() == 2) {
                    last.1.push(u8::from_str_radix(tok, 16).expect("hex byte"));
                }
            }
        }
    }
    v
}

fn after_xid(line: &str) -> &str {
    line.split_once("): ").map_or(line, |(_, b)| b).trim()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn flow_mods_match_ovs_ofctl() {
    if !have_ovs_ofctl() {
        eprintln!("ovs-ofctl not installed: skipped");
        return;
    }
    let text = std::fs::read_to_string(flows_file()).expect("flows file");
    let flows: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).collect();
    assert!(flows.len() >= 60, "need at least 60 flows, have {}", flows.len());
    let out = Command::new("ovs-ofctl")
        .args(["-O", "OpenFlow13", "parse-flows"])
        .arg(flows_file())
        .arg("-mmmmm")
        .output()
        .expect("run ovs-ofctl");
    assert!(out.status.success(), "ovs-ofctl failed: {}", String::from_utf8_lossy(&out.stderr));
    let oracle = parse_dump(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(oracle.len(), flows.len(), "one FLOW_MOD per flow");

    let mut byte_equal = 0;
    let mut text_equal = Vec::new();
    let mut failures = Vec::new();
    let mut print_failures = Vec::new();
    for (i, (flow, (line, ovs_bytes))) in flows.iter().zip(&oracle).enumerate() {
        let fm = match parse_flow(flow) {
            Ok(fm) => fm,
            Err(e) => {
                failures.push(format!("{i}: {flow}: parse error {e}"));
                continue;
            }
        };
        let msg = Message::FlowMod(fm);
        let xid = u32::from_be_bytes([ovs_bytes[4], ovs_bytes[5], ovs_bytes[6], ovs_bytes[7]]);
        let ours = msg.encode(xid);
        let printed = format_message(&msg);
        if after_xid(&printed) != after_xid(line) {
            print_failures.push(format!("{i}: ovs:    {}\n   ovsnet: {}", after_xid(line), after_xid(&printed)));
        }
        if &ours == ovs_bytes {
            byte_equal += 1;
            continue;
        }
        let p = Command::new("ovs-ofctl").args(["ofp-print", &hex(&ours)]).output().expect("ofp-print");
        let ptxt = String::from_utf8_lossy(&p.stdout).to_string();
        let first = ptxt.lines().next().unwrap_or("");
        if p.status.success() && p.stderr.is_empty() && after_xid(first) == after_xid(line) {
            text_equal.push(i);
        } else {
            failures.push(format!(
                "{i}: {flow}\n   ovs:    {}\n   ovsnet: {}\n   ours={}\n   ovs ={}\n   {}",
                after_xid(line),
                after_xid(first),
                hex(&ours),
                hex(ovs_bytes),
                String::from_utf8_lossy(&p.stderr)
            ));
        }
    }
    eprintln!(
        "{} flows: {byte_equal} byte-identical, {} same text with another encoding {:?}",
        flows.len(),
        text_equal.len(),
        text_equal
    );
    assert!(failures.is_empty(), "{} encoding failures:\n{}", failures.len(), failures.join("\n"));
    assert!(print_failures.is_empty(), "{} printing differences:\n{}", print_failures.len(), print_failures.join("\n"));
}
