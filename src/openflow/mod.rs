//! OpenFlow 1.3 codec with the Open vSwitch (Nicira) extensions and the ONF
//! bundle extension. Pure: no sockets, no runtime, no clock.
//!
//! - [`Message::decode`] / [`Message::encode`]: whole messages;
//!   [`EncodedFlowMod`]: a FLOW_MOD from already encoded match fields and
//!   instructions (the same layout, without decoding them);
//! - [`stream`]: framing over a byte stream ([`stream::OfCodec`]).
//! - [`Match`], [`OxmField`], [`Field`]: match fields (OXM and NXM).
//! - [`Action`], [`Instruction`]: all OpenFlow 1.3 actions plus `move`,
//!   `load`, `resubmit`, `learn`, `ct`, `nat`, `note`, `conjunction`, ...
//! - [`text`]: the ovs-ofctl flow syntax, both ways.
//!
//! What the codec does not know (message types, fields, actions,
//! experimenter payloads) is kept as raw bytes and encoded back unchanged.

pub mod action;
mod buf;
pub mod bundle;
pub mod error;
pub mod instruction;
pub mod message;
pub mod multipart;
pub mod oxm;
pub mod stream;
pub mod text;

pub use action::{Action, Subfield};
pub use bundle::{BundleAdd, BundleControl};
pub use error::{Error, Result};
pub use instruction::Instruction;
pub use message::{EncodedFlowMod, ErrorMsg, FlowMod, Header, Hello, Message};
pub use multipart::{FlowStats, MultipartReply, MultipartReplyBody, MultipartRequest, MultipartRequestBody};
pub use oxm::{Field, Match, OxmField, OxmId};
