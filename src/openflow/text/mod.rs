//! The ovs-ofctl flow syntax: parse what `ovs-ofctl add-flow` accepts and
//! print what `ovs-ofctl dump-flows` / `ofp-print` print.

mod detail;
mod parse;
mod print;

pub use parse::{parse_actions, parse_flow, parse_match};
pub use print::{
    error_name, format_actions, format_flow, format_flow_stats, format_match, format_message, format_message_xid,
};
