//! Bounds-checked big-endian reading and writing, so no decoder can panic.

use super::error::{Error, Result};

/// A cursor over a byte slice whose getters fail with [`Error::Truncated`]
/// instead of panicking.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, what }
    }
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf
    }
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(Error::Truncated { what: self.what, need: n, have: self.buf.len() });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    pub(crate) fn peek(&self, n: usize) -> Result<&'a [u8]> {
        self.buf.get(..n).ok_or(Error::Truncated { what: self.what, need: n, have: self.buf.len() })
    }
    pub(crate) fn skip(&mut self, n: usize) -> Result<()> {
        self.bytes(n).map(|_| ())
    }
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let b = self.bytes(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }
    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    /// A fixed-size, NUL-padded string field: its bytes up to the first NUL.
    pub(crate) fn string(&mut self, n: usize) -> Result<super::message::FixedStr> {
        let b = self.bytes(n)?;
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        Ok(super::message::FixedStr(b[..end].to_vec()))
    }
}

/// Appends big-endian values to a `Vec<u8>`.
pub(crate) trait Put {
    fn put_u8(&mut self, v: u8);
    fn put_u16(&mut self, v: u16);
    fn put_u32(&mut self, v: u32);
    fn put_u64(&mut self, v: u64);
    fn put_zeros(&mut self, n: usize);
    /// A NUL-padded fixed-size string field (truncated to `n` bytes).
    fn put_string(&mut self, s: &[u8], n: usize);
    /// Zero-pads to a multiple of 8 bytes counted from `start`.
    fn pad8_from(&mut self, start: usize);
    /// Writes `v` as a big-endian u16 at `at`.
    fn set_u16(&mut self, at: usize, v: u16);
}

impl Put for Vec<u8> {
    #[inline]
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    #[inline]
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    #[inline]
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    #[inline]
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    #[inline]
    fn put_zeros(&mut self, n: usize) {
        self.resize(self.len() + n, 0);
    }
    fn put_string(&mut self, s: &[u8], n: usize) {
        let b = s;
        let k = b.len().min(n);
        self.extend_from_slice(&b[..k]);
        self.put_zeros(n - k);
    }
    #[inline]
    fn pad8_from(&mut self, start: usize) {
        let len = self.len() - start;
        self.put_zeros((8 - len % 8) % 8);
    }
    #[inline]
    fn set_u16(&mut self, at: usize, v: u16) {
        self[at..at + 2].copy_from_slice(&v.to_be_bytes());
    }
}

/// Rounds up to a multiple of 8.
pub(crate) fn pad8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// Length as u16 for a header field, or an error if it cannot fit.
pub(crate) fn len16(what: &'static str, n: usize) -> u16 {
    // Encoders only build structures far below 64 KiB except for huge
    // user-provided payloads; those saturate and the peer rejects them.
    let _ = what;
    u16::try_from(n).unwrap_or(u16::MAX)
}
