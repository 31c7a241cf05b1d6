//! `ovs-ofctl` as an oracle for flow text: encode a file of flows with
//! ovsnet and with `ovs-ofctl -O OpenFlow13 parse-flows`, and compare bytes
//! (xid masked), decoded text and ovsnet's own printing.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use ovsnet::openflow::Message;
use ovsnet::openflow::text::{format_message, parse_flow};

/// Whether `ovs-ofctl` runs here; under `CI=true` its absence is a failure.
pub fn have_ovs_ofctl() -> bool {
    let ok = Command::new("ovs-ofctl").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok && std::env::var("CI").as_deref() == Ok("true") {
        panic!("ovs-ofctl is required under CI=true");
    }
    ok
}

/// A file under `tests/data/`.
pub fn data_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

/// The flows of a data file: non-empty lines that are not `#` comments.
pub fn flows_of(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).collect()
}

/// Splits `ovs-ofctl -mmmmm` output into (printed line, bytes) per message.
pub fn parse_dump(out: &str) -> Vec<(String, Vec<u8>)> {
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

/// The part of an `ofp-print` first line after `(xid=...): `.
pub fn after_xid(line: &str) -> &str {
    line.split_once("): ").map_or(line, |(_, b)| b).trim()
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What comparing a file of flows with ovs-ofctl found.
#[derive(Debug, Default)]
pub struct Comparison {
    pub flows: usize,
    pub byte_equal: usize,
    /// Indexes of flows that OVS encodes otherwise but that decode to the same text.
    pub text_equal: Vec<usize>,
    /// Indexes of flows whose OVS encoding `ofp-print` itself cannot decode
    /// (compared by bytes only).
    pub oracle_cannot_print: Vec<usize>,
    pub encoding_failures: Vec<String>,
    pub print_failures: Vec<String>,
}

impl Comparison {
    pub fn assert_clean(&self) {
        eprintln!(
            "{} flows: {} byte-identical, {} same text with another encoding {:?}, {} not printable by OVS {:?}",
            self.flows,
            self.byte_equal,
            self.text_equal.len(),
            self.text_equal,
            self.oracle_cannot_print.len(),
            self.oracle_cannot_print
        );
        assert!(
            self.encoding_failures.is_empty(),
            "{} encoding failures:\n{}",
            self.encoding_failures.len(),
            self.encoding_failures.join("\n")
        );
        assert!(
            self.print_failures.is_empty(),
            "{} printing differences:\n{}",
            self.print_failures.len(),
            self.print_failures.join("\n")
        );
    }
}

/// Encodes every flow of `path` with ovsnet and with ovs-ofctl and compares.
pub fn compare_with_ovs_ofctl(path: &Path) -> Comparison {
    let text = std::fs::read_to_string(path).expect("flows file");
    let flows = flows_of(&text);
    let out = Command::new("ovs-ofctl")
        .args(["-O", "OpenFlow13", "parse-flows"])
        .arg(path)
        .arg("-mmmmm")
        .output()
        .expect("run ovs-ofctl");
    assert!(out.status.success(), "ovs-ofctl failed: {}", String::from_utf8_lossy(&out.stderr));
    let oracle = parse_dump(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(oracle.len(), flows.len(), "one FLOW_MOD per flow");

    let mut c = Comparison { flows: flows.len(), ..Comparison::default() };
    for (i, (flow, (line, ovs_bytes))) in flows.iter().zip(&oracle).enumerate() {
        let fm = match parse_flow(flow) {
            Ok(fm) => fm,
            Err(e) => {
                c.encoding_failures.push(format!("{i}: {flow}: parse error {e}"));
                continue;
            }
        };
        let msg = Message::FlowMod(fm);
        let xid = u32::from_be_bytes([ovs_bytes[4], ovs_bytes[5], ovs_bytes[6], ovs_bytes[7]]);
        let ours = msg.encode(xid);
        let printed = format_message(&msg);
        if after_xid(line).starts_with("***decode error") {
            // OVS cannot print its own encoding of some flows (it checks
            // ct_nw_src and friends before it has read eth_type): then the
            // bytes alone must agree.
            c.oracle_cannot_print.push(i);
            if ours != *ovs_bytes {
                c.encoding_failures.push(format!("{i}: {flow}\n   ours={}\n   ovs ={}", hex(&ours), hex(ovs_bytes)));
            } else {
                c.byte_equal += 1;
            }
            continue;
        }
        if after_xid(&printed) != after_xid(line) {
            c.print_failures.push(format!("{i}: ovs:    {}\n   ovsnet: {}", after_xid(line), after_xid(&printed)));
        }
        if &ours == ovs_bytes {
            c.byte_equal += 1;
            continue;
        }
        let p = Command::new("ovs-ofctl").args(["ofp-print", &hex(&ours)]).output().expect("ofp-print");
        let ptxt = String::from_utf8_lossy(&p.stdout).to_string();
        let first = ptxt.lines().next().unwrap_or("");
        if p.status.success() && p.stderr.is_empty() && after_xid(first) == after_xid(line) {
            c.text_equal.push(i);
        } else {
            c.encoding_failures.push(format!(
                "{i}: {flow}\n   ovs:    {}\n   ovsnet: {}\n   ours={}\n   ovs ={}\n   {}",
                after_xid(line),
                after_xid(first),
                hex(&ours),
                hex(ovs_bytes),
                String::from_utf8_lossy(&p.stderr)
            ));
        }
    }
    c
}
