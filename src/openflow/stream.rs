//! OpenFlow over a byte stream: whole messages cut from what has arrived,
//! by the length in their header, and decoded. Pure: bytes in, messages
//! out; [`tokio_util::codec`] is used only as the framing trait, so any
//! reader (a socket, an in-memory pipe) can be wrapped in a `FramedRead`.
//!
//! As in mini-redis's `read_frame`: a message not yet wholly buffered is
//! not an error (the decoder asks for more bytes), a stream that ends
//! between messages is a clean end (`Ok(None)`), and a stream that ends
//! inside one is an error.

use bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::error::Error;
use super::message::{HEADER_LEN, Header, Message};

/// What can go wrong reading OpenFlow from a stream.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A header whose length cannot even hold the header: nothing after it
    /// can be framed.
    #[error("OpenFlow length {0}")]
    BadLength(usize),
    /// The stream ended inside a message.
    #[error("the stream ended inside a message ({have} of {need} bytes)")]
    Truncated { need: usize, have: usize },
    /// A whole message that does not decode.
    #[error(transparent)]
    Decode(#[from] Error),
}

/// The framing: [`Decoder`] yields each message with its header;
/// [`Encoder`] writes a message with a transaction id.
#[derive(Debug, Clone, Copy, Default)]
pub struct OfCodec;

/// The length of the message at the start of `src` once its header is
/// there (the cheap check before decoding).
fn frame_len(src: &[u8]) -> Result<Option<usize>, StreamError> {
    if src.len() < HEADER_LEN {
        return Ok(None);
    }
    let len = usize::from(u16::from_be_bytes([src[2], src[3]]));
    if len < HEADER_LEN {
        return Err(StreamError::BadLength(len));
    }
    Ok(Some(len))
}

impl Decoder for OfCodec {
    type Item = (Header, Message);
    type Error = StreamError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<(Header, Message)>, StreamError> {
        let Some(len) = frame_len(src)? else { return Ok(None) };
        if src.len() < len {
            // Incomplete: room for the rest, then wait for it.
            src.reserve(len - src.len());
            return Ok(None);
        }
        let frame = src.split_to(len);
        Ok(Some(Message::decode(&frame)?))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<(Header, Message)>, StreamError> {
        match self.decode(src)? {
            Some(m) => Ok(Some(m)),
            None if src.is_empty() => Ok(None),
            None => {
                let need = frame_len(src)?.unwrap_or(HEADER_LEN);
                let have = src.len();
                src.advance(have);
                Err(StreamError::Truncated { need, have })
            }
        }
    }
}

impl Encoder<(u32, &Message)> for OfCodec {
    type Error = StreamError;

    fn encode(&mut self, (xid, m): (u32, &Message), dst: &mut BytesMut) -> Result<(), StreamError> {
        dst.extend_from_slice(&m.encode(xid));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openflow::Hello;

    fn frames(msgs: &[Message]) -> Vec<u8> {
        msgs.iter().enumerate().flat_map(|(i, m)| m.encode(i as u32 + 1)).collect()
    }

    /// Messages split anywhere come out whole, in order.
    #[test]
    fn messages_cut_anywhere_come_out_whole() {
        let msgs = vec![Message::Hello(Hello::of13()), Message::EchoRequest(b"abc".to_vec()), Message::FeaturesRequest];
        let bytes = frames(&msgs);
        for cut in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..cut]);
            let mut out = Vec::new();
            while let Some((_, m)) = OfCodec.decode(&mut buf).expect("decode") {
                out.push(m);
            }
            buf.extend_from_slice(&bytes[cut..]);
            while let Some((_, m)) = OfCodec.decode_eof(&mut buf).expect("decode") {
                out.push(m);
            }
            assert_eq!(out, msgs, "cut at {cut}");
        }
    }

    #[test]
    fn a_clean_end_is_none_and_an_end_inside_a_message_an_error() {
        let mut empty = BytesMut::new();
        assert!(OfCodec.decode_eof(&mut empty).expect("clean").is_none());
        let bytes = Message::EchoRequest(b"abcdef".to_vec()).encode(9);
        for cut in 1..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..cut]);
            assert!(OfCodec.decode(&mut buf).expect("incomplete").is_none(), "cut at {cut}");
            let err = OfCodec.decode_eof(&mut buf).expect_err("truncated");
            assert!(matches!(err, StreamError::Truncated { have, .. } if have == cut), "{err}");
        }
    }

    #[test]
    fn a_length_shorter_than_the_header_is_an_error() {
        let mut buf = BytesMut::from(&[4u8, 2, 0, 4, 0, 0, 0, 1][..]);
        assert!(matches!(OfCodec.decode(&mut buf), Err(StreamError::BadLength(4))));
    }

    #[test]
    fn encoder_writes_what_message_encode_writes() {
        let m = Message::EchoReply(b"x".to_vec());
        let mut dst = BytesMut::new();
        OfCodec.encode((5, &m), &mut dst).expect("encode");
        assert_eq!(&dst[..], &m.encode(5)[..]);
        assert_eq!(OfCodec.decode(&mut dst).expect("decode"), Some((Header::parse(&m.encode(5)).expect("h"), m)));
    }
}
