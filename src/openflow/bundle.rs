//! The ONF bundle extension for OpenFlow 1.3 (experimenter 0x4f4e4600):
//! open, add, commit and discard a set of messages applied atomically.

use super::buf::{Put, Reader};
use super::error::{Error, Result};
use super::message::{HEADER_LEN, Header, Message};

/// `ONFT_BUNDLE_CONTROL`.
pub const ONF_ET_BUNDLE_CONTROL: u32 = 2300;
/// `ONFT_BUNDLE_ADD_MESSAGE`.
pub const ONF_ET_BUNDLE_ADD_MESSAGE: u32 = 2301;

pub const OFPBCT_OPEN_REQUEST: u16 = 0;
pub const OFPBCT_OPEN_REPLY: u16 = 1;
pub const OFPBCT_CLOSE_REQUEST: u16 = 2;
pub const OFPBCT_CLOSE_REPLY: u16 = 3;
pub const OFPBCT_COMMIT_REQUEST: u16 = 4;
pub const OFPBCT_COMMIT_REPLY: u16 = 5;
pub const OFPBCT_DISCARD_REQUEST: u16 = 6;
pub const OFPBCT_DISCARD_REPLY: u16 = 7;

/// `OFPBF_ATOMIC`.
pub const OFPBF_ATOMIC: u16 = 1;
/// `OFPBF_ORDERED`.
pub const OFPBF_ORDERED: u16 = 2;

/// A bundle control message (open, close, commit, discard and their replies).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BundleControl {
    pub bundle_id: u32,
    pub ctrl_type: u16,
    pub flags: u16,
    /// Bundle properties, kept raw.
    pub properties: Vec<u8>,
}

impl BundleControl {
    pub fn new(bundle_id: u32, ctrl_type: u16, flags: u16) -> Self {
        BundleControl { bundle_id, ctrl_type, flags, properties: Vec::new() }
    }
    pub(crate) fn emit(&self, buf: &mut Vec<u8>) {
        buf.put_u32(self.bundle_id);
        buf.put_u16(self.ctrl_type);
        buf.put_u16(self.flags);
        buf.extend_from_slice(&self.properties);
    }
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<BundleControl> {
        Ok(BundleControl { bundle_id: r.u32()?, ctrl_type: r.u16()?, flags: r.u16()?, properties: r.rest().to_vec() })
    }
}

/// A message added to a bundle. `message` holds the inner message's bytes;
/// its xid must equal the bundle-add message's own xid, which
/// [`BundleAdd::new`] and encoding take care of.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BundleAdd {
    pub bundle_id: u32,
    pub flags: u16,
    pub message: Vec<u8>,
    /// The inner message's xid when it differs from the outer one (which
    /// OVS refuses); `None` means "the bundle-add message's own xid".
    pub inner_xid: Option<u32>,
    /// Bundle properties, kept raw (padding before them is implied).
    pub properties: Vec<u8>,
}

impl BundleAdd {
    /// Wraps `msg` for bundle `bundle_id`.
    pub fn new(bundle_id: u32, flags: u16, msg: &Message) -> Self {
        BundleAdd { bundle_id, flags, message: msg.encode(0), inner_xid: None, properties: Vec::new() }
    }
    /// Decodes the inner message.
    pub fn inner(&self) -> Result<(Header, Message)> {
        Message::decode(&self.message)
    }
    pub(crate) fn emit(&self, buf: &mut Vec<u8>, xid: u32) {
        buf.put_u32(self.bundle_id);
        buf.put_u16(0);
        buf.put_u16(self.flags);
        let start = buf.len();
        buf.extend_from_slice(&self.message);
        // OVS rejects an inner xid that differs from the outer one.
        if self.message.len() >= HEADER_LEN {
            let x = self.inner_xid.unwrap_or(xid);
            buf[start + 4..start + 8].copy_from_slice(&x.to_be_bytes());
        }
        if !self.properties.is_empty() {
            buf.pad8_from(start);
            buf.extend_from_slice(&self.properties);
        }
    }
    pub(crate) fn parse(r: &mut Reader<'_>, outer_xid: u32) -> Result<BundleAdd> {
        let bundle_id = r.u32()?;
        r.skip(2)?;
        let flags = r.u16()?;
        let inner = Header::parse(r.peek(HEADER_LEN)?)?;
        let len = inner.length as usize;
        if len > r.remaining() {
            return Err(Error::BadLength { what: "bundled message", len });
        }
        let mut message = r.bytes(len)?.to_vec();
        let inner_xid = (inner.xid != outer_xid).then_some(inner.xid);
        // Stored with xid 0: the encoder writes the outer xid back.
        message[4..8].copy_from_slice(&[0; 4]);
        let mut properties = Vec::new();
        if !r.is_empty() {
            let pad = super::buf::pad8(len) - len;
            r.skip(pad.min(r.remaining()))?;
            properties = r.rest().to_vec();
        }
        Ok(BundleAdd { bundle_id, flags, message, inner_xid, properties })
    }
}
