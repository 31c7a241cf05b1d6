//! Every action spelling of `ovs-actions(7)` and every field (and alias) of
//! `ovs-fields(7)` against `ovs-ofctl`: `tests/data/of13_spellings.txt` has
//! one flow per spelling; each must encode as `ovs-ofctl -O OpenFlow13
//! parse-flows` encodes it (bytes with the xid masked, or the same decoded
//! text) and print as ovs-ofctl prints it. The lists are read from the
//! installed manuals at test time, so a spelling the manuals document and
//! the data file lacks fails the test, unless it is excluded below with a
//! reason (those are refused with a one-line error, see docs/OPENFLOW.md).

mod common_ofctl;

use std::process::Command;

use common_ofctl::{compare_with_ovs_ofctl, data_file, flows_of, have_ovs_ofctl};
use ovsnet::openflow::error::Error;
use ovsnet::openflow::text::parse_flow;

/// Documented actions ovsnet refuses, and why.
const EXCLUDED_ACTIONS: &[(&str, &str)] = &[
    // Only meaningful on NSH packets; matching those needs packet_type and
    // the nsh_* fields, which the codec lacks.
    ("dec_nsh_ttl", "needs NSH fields"),
    // Deletes tun_metadata fields, which need a TLV map the codec lacks.
    ("delete_field", "needs tun_metadata fields"),
];

/// Documented fields ovsnet does not know (yet), and why.
const EXCLUDED_FIELDS: &[(&str, &str)] = &[
    // Tunnel metadata of particular encapsulations: experimenter/NXM fields
    // not in the codec's field table.
    ("tun_gbp_id", "VXLAN GBP field not in the codec"),
    ("tun_gbp_flags", "VXLAN GBP field not in the codec"),
    ("tun_erspan_ver", "ERSPAN field not in the codec"),
    ("tun_erspan_idx", "ERSPAN field not in the codec"),
    ("tun_erspan_dir", "ERSPAN field not in the codec"),
    ("tun_erspan_hwid", "ERSPAN field not in the codec"),
    ("tun_gtpu_flags", "GTP-U field not in the codec"),
    ("tun_gtpu_msgtype", "GTP-U field not in the codec"),
    // Geneve options: tun_metadata0..63 need a TLV map on the switch.
    ("tun_metadata*", "needs a Geneve TLV map"),
    // No NXM or OXM code: OpenFlow cannot match it at all.
    ("skb_priority", "not matchable over OpenFlow"),
    // OpenFlow 1.5 packet type and the NSH fields that depend on it.
    ("packet_type", "packet-type-aware matching not in the codec"),
    ("nsh_*", "NSH fields not in the codec"),
    ("nsp", "alias of nsh_spi"),
    ("nsi", "alias of nsh_si"),
    ("nshc1", "alias of nsh_c1"),
    ("nshc2", "alias of nsh_c2"),
    ("nshc3", "alias of nsh_c3"),
    ("nshc4", "alias of nsh_c4"),
    // 128-bit registers (NXM_NX_XXREG0..3) not in the codec's field table.
    ("xxreg*", "128-bit registers not in the codec"),
    ("nd_reserved", "ND field not in the codec"),
    ("nd_options_type", "ND field not in the codec"),
];

fn excluded(table: &[(&str, &str)], name: &str) -> bool {
    table.iter().any(|(n, _)| match n.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => *n == name,
    })
}

/// The text of an installed manual page, or `None` when it is not installed
/// (a failure under `CI=true`).
fn man_page(name: &str) -> Option<String> {
    let path = format!("/usr/share/man/man7/{name}.7.gz");
    let out = Command::new("zcat").arg(&path).output().ok().filter(|o| o.status.success());
    if out.is_none() && std::env::var("CI").as_deref() == Ok("true") {
        panic!("{path} is required under CI=true (openvswitch-common)");
    }
    out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
}

/// Action names from the `Syntax:` blocks of ovs-actions(7): each line of a
/// block starts with the action's name in bold (`\fBoutput:\fP...`).
fn documented_actions(man: &str) -> Vec<String> {
    let mut names = Vec::new();
    let (mut after_syntax, mut in_block) = (false, false);
    for line in man.lines() {
        if line.contains("\\fBSyntax\\fP") {
            after_syntax = true;
        } else if after_syntax && line.starts_with(".nf") {
            in_block = true;
        } else if in_block && line.starts_with(".fi") {
            (after_syntax, in_block) = (false, false);
        } else if in_block {
            if let Some(rest) = line.strip_prefix("\\fB") {
                let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if !name.is_empty() && !names.contains(&name) {
                    names.push(name);
                }
            }
        }
    }
    // The reserved ports an action list may name alone (`The output action`).
    for port in ["local", "in_port", "normal", "flood", "all", "controller", "drop"] {
        if !names.iter().any(|n| n == port) {
            names.push(port.to_string());
        }
    }
    names
}

/// Field names and aliases from the `Name:` rows of ovs-fields(7)
/// (`Name:;\fBeth_src\fR (aka \fBdl_src\fR)`), with `reg0`, `xreg0`, `xxreg0`
/// and `tun_metadata0` standing for their whole arrays.
fn documented_fields(man: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in man.lines() {
        let Some(rest) = line.strip_prefix("Name:;") else { continue };
        for part in rest.split("\\fB").skip(1) {
            let name: String = part.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            let expand = match name.as_str() {
                "reg0" => Some(("reg", 16)),
                "xreg0" => Some(("xreg", 8)),
                "xxreg0" => Some(("xxreg", 4)),
                "tun_metadata0" => Some(("tun_metadata", 64)),
                _ => None,
            };
            match expand {
                Some((prefix, n)) => names.extend((0..n).map(|i| format!("{prefix}{i}"))),
                None if !name.is_empty() => names.push(name),
                None => {}
            }
        }
    }
    names
}

/// Whether `name` appears in `line` as a whole word.
fn mentions(line: &str, name: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    line.match_indices(name).any(|(i, _)| {
        let before = line[..i].chars().next_back();
        let after = line[i + name.len()..].chars().next();
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}

fn missing(names: &[String], excluded_table: &[(&str, &str)], flows: &[&str]) -> Vec<String> {
    names
        .iter()
        .filter(|n| !excluded(excluded_table, n))
        .filter(|n| !flows.iter().any(|f| mentions(f, n)))
        .cloned()
        .collect()
}

#[test]
fn data_file_covers_every_documented_spelling() {
    let text = std::fs::read_to_string(data_file("of13_spellings.txt")).expect("spellings file");
    let flows = flows_of(&text);
    let (Some(actions_man), Some(fields_man)) = (man_page("ovs-actions"), man_page("ovs-fields")) else {
        eprintln!("Open vSwitch manuals not installed: skipped");
        return;
    };
    let actions = documented_actions(&actions_man);
    let fields = documented_fields(&fields_man);
    // The extraction itself must keep working: these are in every 3.x manual.
    for must in ["output", "set_field", "learn", "goto_table", "multipath"] {
        assert!(actions.iter().any(|a| a == must), "no {must} in ovs-actions(7) extraction: {actions:?}");
    }
    for must in ["eth_src", "dl_src", "reg15", "xreg7", "nd_tll"] {
        assert!(fields.iter().any(|a| a == must), "no {must} in ovs-fields(7) extraction: {fields:?}");
    }
    let flows_actions: Vec<&str> = flows.iter().filter_map(|f| f.split_once("actions=").map(|(_, a)| a)).collect();
    let missing_actions = missing(&actions, EXCLUDED_ACTIONS, &flows_actions);
    let missing_fields = missing(&fields, EXCLUDED_FIELDS, &flows);
    assert!(
        missing_actions.is_empty() && missing_fields.is_empty(),
        "documented but not in tests/data/of13_spellings.txt:\n  actions: {missing_actions:?}\n  fields: {missing_fields:?}"
    );
}

#[test]
fn every_spelling_encodes_and_prints_as_ovs_ofctl() {
    if !have_ovs_ofctl() {
        eprintln!("ovs-ofctl not installed: skipped");
        return;
    }
    let c = compare_with_ovs_ofctl(&data_file("of13_spellings.txt"));
    assert!(c.flows >= 150, "need at least 150 flows, have {}", c.flows);
    c.assert_clean();
}

#[test]
fn excluded_actions_are_refused_with_a_reason() {
    for (flow, what) in [
        ("actions=dec_nsh_ttl", "dec_nsh_ttl"),
        ("actions=delete_field:tun_metadata0", "delete_field"),
        ("actions=encap(nsh(md_type=1))", "encap(nsh(...))"),
    ] {
        match parse_flow(flow) {
            Err(Error::Unsupported { what: w, why }) => {
                assert_eq!(w, what);
                assert!(!why.is_empty());
                let line = parse_flow(flow).err().map(|e| e.to_string()).unwrap_or_default();
                assert!(!line.contains('\n') && line.contains(what), "{line}");
            }
            other => panic!("{flow}: expected Unsupported, got {other:?}"),
        }
    }
}
