//! Framing of back-to-back JSON values on a stream.
//!
//! OVSDB's JSON-RPC has no delimiter and no length prefix: a reader finds the
//! end of each top-level JSON value itself. The decoder keeps its scan state
//! (nesting depth, inside-a-string, after-a-backslash, bytes already scanned)
//! between reads, so a message that arrives in many pieces is scanned once,
//! not from its start on every read. Only then is it handed to serde_json,
//! which classifies the message and leaves its `params` or `result` as text
//! ([`super::rpc::Json`]) for the reader to parse into what it needs.
//!
//! Pure: a `tokio_util::codec` pair, no socket.

use bytes::{BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::rpc::{Message, MessageError};

/// Default largest message accepted (64 MiB): a select over a database with
/// tens of thousands of ports fits; a peer that never closes a value does
/// not exhaust memory.
pub const DEFAULT_MAX_MESSAGE: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum FramingError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("message larger than {max} bytes")]
    TooLarge { max: usize },
    #[error("unexpected byte {byte:#04x} between JSON values")]
    Junk { byte: u8 },
    #[error("unbalanced JSON: unexpected '{0}'")]
    Unbalanced(char),
    #[error(transparent)]
    Message(#[from] MessageError),
    #[error("connection closed in the middle of a message")]
    TruncatedAtEof,
}

/// Scan state of the value being received.
#[derive(Debug, Default, Clone)]
struct Scan {
    /// Bytes of the buffer already scanned.
    pos: usize,
    /// Nesting depth of `{`/`[`; 0 between values.
    depth: usize,
    in_string: bool,
    escaped: bool,
}

/// Splits a byte stream into JSON-RPC messages; encodes messages compactly.
#[derive(Debug, Clone)]
pub struct JsonCodec {
    scan: Scan,
    max: usize,
    /// Bytes of the messages decoded so far.
    decoded: u64,
}

impl Default for JsonCodec {
    fn default() -> Self {
        JsonCodec::new(DEFAULT_MAX_MESSAGE)
    }
}

impl JsonCodec {
    pub fn new(max_message: usize) -> Self {
        JsonCodec { scan: Scan::default(), max: max_message, decoded: 0 }
    }

    /// Bytes of the messages decoded so far (a connection's traffic in).
    pub fn decoded_bytes(&self) -> u64 {
        self.decoded
    }

    /// Finds the end of the next complete top-level value in `buf`, scanning
    /// only bytes not scanned before. Returns its length (from the start of
    /// `buf`, leading whitespace included).
    fn find_end(&mut self, buf: &mut BytesMut) -> Result<Option<usize>, FramingError> {
        let s = &mut self.scan;
        // Whitespace between values: drop it so the buffer does not grow.
        if s.depth == 0 {
            let ws = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
            let _ = buf.split_to(ws);
            s.pos = 0;
        }
        let bytes = &buf[..];
        while s.pos < bytes.len() {
            if s.in_string {
                // Only `"` and `\` matter inside a string (multi-byte UTF-8
                // never contains either byte): jump to the next one instead
                // of stepping through the string's bytes one state at a time.
                if s.escaped {
                    s.escaped = false;
                    s.pos += 1;
                    continue;
                }
                match bytes[s.pos..].iter().position(|&b| b == b'"' || b == b'\\') {
                    None => s.pos = bytes.len(),
                    Some(k) => {
                        s.pos += k + 1;
                        match bytes[s.pos - 1] {
                            b'"' => s.in_string = false,
                            _ => s.escaped = true,
                        }
                    }
                }
                continue;
            }
            let b = bytes[s.pos];
            s.pos += 1;
            match b {
                b'"' => s.in_string = true,
                b'{' | b'[' => s.depth += 1,
                b'}' | b']' => {
                    if s.depth == 0 {
                        return Err(FramingError::Unbalanced(b as char));
                    }
                    s.depth -= 1;
                    if s.depth == 0 {
                        let end = s.pos;
                        *s = Scan::default();
                        if end > self.max {
                            return Err(FramingError::TooLarge { max: self.max });
                        }
                        return Ok(Some(end));
                    }
                }
                // A JSON-RPC message is an object; anything else at the top
                // level means we lost the stream.
                _ if s.depth == 0 => return Err(FramingError::Junk { byte: b }),
                _ => {}
            }
        }
        if bytes.len() > self.max {
            return Err(FramingError::TooLarge { max: self.max });
        }
        Ok(None)
    }
}

/// A frame this big is not left in the read buffer's allocation.
const BIG_FRAME: usize = 1 << 20;

impl Decoder for JsonCodec {
    type Item = Message;
    type Error = FramingError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, FramingError> {
        match self.find_end(buf)? {
            Some(end) => {
                self.decoded += end as u64;
                let frame = buf.split_to(end);
                let frame = if frame.len() > BIG_FRAME {
                    // The read buffer would otherwise keep this frame's
                    // allocation (megabytes, for a monitor's initial
                    // snapshot) for the life of the connection: move what
                    // follows into a fresh buffer, so the frame owns its
                    // allocation alone and it is freed with the message.
                    *buf = BytesMut::from(&buf[..]);
                    frame.freeze()
                } else {
                    // The message's payloads are slices of its frame: a
                    // small one gets a copy of its own, so a message kept
                    // around never pins the read buffer.
                    Bytes::copy_from_slice(&frame)
                };
                Ok(Some(Message::from_bytes(frame)?))
            }
            None => Ok(None),
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, FramingError> {
        match self.decode(buf)? {
            Some(m) => Ok(Some(m)),
            None if buf.iter().all(u8::is_ascii_whitespace) => Ok(None),
            None => Err(FramingError::TruncatedAtEof),
        }
    }
}

impl Encoder<Message> for JsonCodec {
    type Error = FramingError;

    fn encode(&mut self, msg: Message, dst: &mut BytesMut) -> Result<(), FramingError> {
        msg.write_to(&mut dst.writer()).map_err(FramingError::Io)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decode_all(codec: &mut JsonCodec, buf: &mut BytesMut) -> Vec<Message> {
        let mut out = Vec::new();
        while let Some(m) = codec.decode(buf).unwrap() {
            out.push(m);
        }
        out
    }

    #[test]
    fn split_at_every_byte() {
        // Strings with braces, escaped quotes and backslashes, UTF-8, nesting.
        let wire = concat!(
            r#"{"id":null,"method":"update2","params":["m",{"Bridge":{"x":{"insert":{"name":"a}\"{[\\"}}}}]}"#,
            "\n",
            r#"{"id":1,"result":[{"rows":[{"name":"br-ü]"}]}],"error":null}"#,
            r#"  {"id":"echo","method":"echo","params":[]}"#
        )
        .as_bytes();
        let mut whole = JsonCodec::default();
        let expected = decode_all(&mut whole, &mut BytesMut::from(wire));
        assert_eq!(expected.len(), 3);
        assert_eq!(
            expected[0],
            Message::Notification {
                method: "update2".into(),
                params: json!(["m", {"Bridge": {"x": {"insert": {"name": "a}\"{[\\"}}}}]).into(),
            }
        );
        for cut in 0..=wire.len() {
            let mut codec = JsonCodec::default();
            let mut buf = BytesMut::from(&wire[..cut]);
            let mut got = decode_all(&mut codec, &mut buf);
            buf.extend_from_slice(&wire[cut..]);
            got.extend(decode_all(&mut codec, &mut buf));
            assert_eq!(got, expected, "split at byte {cut}");
        }
        // And one byte at a time.
        let mut codec = JsonCodec::default();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in wire {
            buf.extend_from_slice(&[*b]);
            got.extend(decode_all(&mut codec, &mut buf));
        }
        assert_eq!(got, expected);
    }

    #[test]
    fn too_large_is_an_error() {
        let mut codec = JsonCodec::new(16);
        let mut buf = BytesMut::from(&br#"{"id":1,"result":"0123456789abcdef"#[..]);
        assert!(matches!(codec.decode(&mut buf), Err(FramingError::TooLarge { max: 16 })));
    }

    #[test]
    fn junk_and_truncation_are_errors() {
        let mut codec = JsonCodec::default();
        assert!(matches!(codec.decode(&mut BytesMut::from(&b"x{}"[..])), Err(FramingError::Junk { byte: b'x' })));
        let mut codec = JsonCodec::default();
        assert!(matches!(codec.decode(&mut BytesMut::from(&b"]"[..])), Err(FramingError::Unbalanced(']'))));
        let mut codec = JsonCodec::default();
        let mut buf = BytesMut::from(&br#"{"id":1,"#[..]);
        assert!(matches!(codec.decode_eof(&mut buf), Err(FramingError::TruncatedAtEof)));
        let mut codec = JsonCodec::default();
        assert!(codec.decode_eof(&mut BytesMut::from(&b" \n"[..])).unwrap().is_none());
    }

    #[test]
    fn a_big_frame_does_not_keep_the_read_buffer() {
        let mut codec = JsonCodec::default();
        let big = Message::request(1, "echo", json!(["x".repeat(BIG_FRAME + 10)]));
        let next = Message::request(2, "echo", json!([]));
        let mut buf = BytesMut::new();
        codec.encode(big.clone(), &mut buf).unwrap();
        codec.encode(next.clone(), &mut buf).unwrap();
        let cut = buf.len() - 3;
        let tail = buf.split_off(cut);
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(big));
        // What followed the big frame is kept, in a buffer of its own size.
        assert!(buf.capacity() < 4096, "{}", buf.capacity());
        buf.extend_from_slice(&tail);
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(next));
    }

    #[test]
    fn encode_then_decode() {
        let mut codec = JsonCodec::default();
        let mut buf = BytesMut::new();
        let m = Message::request(1, "transact", json!(["Open_vSwitch", {"op": "comment", "comment": "x"}]));
        codec.encode(m.clone(), &mut buf).unwrap();
        codec.encode(m.clone(), &mut buf).unwrap();
        assert_eq!(decode_all(&mut codec, &mut buf), vec![m.clone(), m]);
    }
}
