//! Errors of the OpenFlow codec and of the ovs-ofctl flow syntax.

use thiserror::Error;

/// Why bytes or text could not be turned into OpenFlow values.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// Fewer bytes than the structure needs.
    #[error("truncated {what}: need {need} bytes, have {have}")]
    Truncated { what: &'static str, need: usize, have: usize },
    /// A length field that disagrees with the structure or the buffer.
    #[error("bad length {len} in {what}")]
    BadLength { what: &'static str, len: usize },
    /// A message header of another protocol version (the body is not decoded).
    #[error("unsupported OpenFlow version {0:#04x}")]
    BadVersion(u8),
    /// A value out of the range the field allows.
    #[error("bad value for {what}: {detail}")]
    BadValue { what: &'static str, detail: String },
    /// A match field used without the fields it depends on (e.g. `arp_tpa` without `arp`).
    #[error("{field} requires {prereq}")]
    BadPrerequisite { field: String, prereq: String },
    /// Text that is not valid ovs-ofctl flow syntax.
    #[error("syntax error: {0}")]
    Syntax(String),
    /// A field name the text syntax does not know.
    #[error("unknown field {0:?}")]
    UnknownField(String),
    /// An action name the text syntax does not know.
    #[error("unknown action {0:?}")]
    UnknownAction(String),
    /// A documented spelling that OpenFlow 1.3, or this codec, cannot carry.
    #[error("{what} is not supported: {why}")]
    Unsupported { what: String, why: &'static str },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn syntax(msg: impl Into<String>) -> Error {
        Error::Syntax(msg.into())
    }
    pub(crate) fn value(what: &'static str, detail: impl Into<String>) -> Error {
        Error::BadValue { what, detail: detail.into() }
    }
}
