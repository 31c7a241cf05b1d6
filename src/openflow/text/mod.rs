//! The ovs-ofctl flow syntax: parse what `ovs-ofctl add-flow` accepts and
//! print what `ovs-ofctl dump-flows` / `ofp-print` print.
//!
//! One file per concern; each imports only those above it in this list, so
//! the module has no import cycle:
//! - `lex`: numbers, masks, separators (parser only);
//! - `names`: ports, protocol shorthands, flag bits, register arrays, shared
//!   by parser and printer;
//! - `nx_raw`: layouts of the Nicira actions the codec carries raw;
//! - `parse_match`, `parse_action`, `parse`: match, actions, whole flows;
//! - `print_match`, `print_action`, `flow`: match, actions and instructions,
//!   `dump-flows` lines;
//! - `detail`: the detail lines of other messages (ports, groups, meters);
//! - `error`: error type and code names;
//! - `message`: whole messages as `ofp-print` prints them.

mod detail;
mod error;
mod flow;
mod lex;
mod message;
mod names;
mod nx_raw;
mod parse;
mod parse_action;
mod parse_match;
mod print_action;
mod print_match;

pub use error::error_name;
pub use flow::{format_flow, format_flow_stats};
pub use message::{format_message, format_message_xid};
pub use parse::{parse_flow, parse_match};
pub use parse_action::parse_actions;
pub use print_action::format_actions;
pub use print_match::format_match;
