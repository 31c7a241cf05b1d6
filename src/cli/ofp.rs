//! `ovsnet ofp`: OpenFlow debugging aids, like ovs-ofctl's `parse-flow` and `ofp-print`.

use std::io::BufRead;

use anyhow::{Context, bail};
use clap::Subcommand;

use super::Format;
use crate::openflow::Message;
use crate::openflow::text::{format_message, parse_flow};

#[derive(Debug, Subcommand)]
pub enum OfpCommand {
    /// Print the OpenFlow 1.3 FLOW_MOD (add) for a flow in ovs-ofctl syntax, as hex.
    EncodeFlow {
        /// The flow; `-` or nothing reads one flow a line from stdin.
        flow: Option<String>,
    },
    /// Decode an OpenFlow message given as hex and print it in ovs-ofctl's words.
    Print {
        /// The message as hex; `-` or nothing reads one message a line from stdin.
        hex: Option<String>,
    },
}

pub fn run(cmd: OfpCommand, format: Format) -> anyhow::Result<()> {
    match cmd {
        OfpCommand::EncodeFlow { flow } => for_each_input(flow, |line| {
            let fm = parse_flow(line).with_context(|| format!("cannot parse flow {line:?}"))?;
            let bytes = Message::FlowMod(fm).encode(0);
            match format {
                Format::Table => outln!("{}", to_hex(&bytes)),
                Format::Json => outln!("{}", serde_json::json!({ "flow": line, "hex": to_hex(&bytes) })),
            }
            Ok(())
        }),
        OfpCommand::Print { hex } => for_each_input(hex, |line| {
            let bytes = from_hex(line)?;
            let (h, msg) = Message::decode(&bytes).context("cannot decode message")?;
            let text = crate::openflow::text::format_message_xid(&msg, h.xid);
            match format {
                Format::Table => outln!("{text}"),
                Format::Json => outln!("{}", serde_json::json!({ "xid": h.xid, "text": text })),
            }
            let _ = format_message;
            Ok(())
        }),
    }
}

/// Runs `f` on the argument, or on each non-empty stdin line when the
/// argument is absent or `-`.
fn for_each_input(arg: Option<String>, mut f: impl FnMut(&str) -> anyhow::Result<()>) -> anyhow::Result<()> {
    match arg.as_deref() {
        Some(a) if a != "-" => f(a.trim()),
        _ => {
            let mut failed = 0;
            for line in std::io::stdin().lock().lines() {
                let line = line.context("reading stdin")?;
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                if let Err(e) = f(line) {
                    eprintln!("error: {e:#}");
                    failed += 1;
                }
            }
            if failed > 0 {
                bail!("{failed} input line(s) failed");
            }
            Ok(())
        }
    }
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Hex with optional spaces, dashes, colons or a `0x` prefix.
fn from_hex(s: &str) -> anyhow::Result<Vec<u8>> {
    let s = s.trim().trim_start_matches("0x");
    let digits: Vec<u8> = s.bytes().filter(|c| !matches!(c, b' ' | b'-' | b':' | b'\t')).collect();
    if digits.len() % 2 != 0 {
        bail!("odd number of hex digits");
    }
    digits
        .chunks(2)
        .map(|p| {
            let t = std::str::from_utf8(p).unwrap_or("zz");
            u8::from_str_radix(t, 16).with_context(|| format!("bad hex {t:?}"))
        })
        .collect()
}
