//! The small lexical pieces of the ovs-ofctl syntax: numbers, masks,
//! separators outside parentheses and `name:arg` / `name(arg)`.

use crate::openflow::error::{Error, Result};

/// Splits at separators outside parentheses and brackets, dropping empties.
pub(super) fn split_top<'a>(s: &'a str, seps: &[char]) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            c if depth == 0 && seps.contains(&c) => {
                if !s[start..i].trim().is_empty() {
                    out.push(s[start..i].trim());
                }
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    if !s[start..].trim().is_empty() {
        out.push(s[start..].trim());
    }
    out
}

pub(super) fn split_mask(v: &str) -> (&str, Option<&str>) {
    match v.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (v, None),
    }
}

/// Parses a decimal or `0x` hexadecimal number into any integer type.
pub(super) fn num<T: TryFrom<u128>>(s: &str, what: &'static str) -> Result<T> {
    let v = parse_u128(s).ok_or_else(|| Error::value(what, format!("{s:?} is not a number")))?;
    T::try_from(v).map_err(|_| Error::value(what, format!("{s} is out of range")))
}

pub(super) fn parse_u128(s: &str) -> Option<u128> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u128::from_str_radix(h, 16).ok()
    } else {
        s.parse().ok()
    }
}

/// `name:arg`, `name(arg)` or `name`.
pub(super) fn split_action(tok: &str) -> (&str, Option<&str>) {
    let tok = tok.trim();
    let colon = tok.find(':');
    let paren = tok.find('(');
    match (colon, paren) {
        (Some(c), Some(p)) if c < p => (&tok[..c], Some(&tok[c + 1..])),
        (_, Some(p)) if tok.ends_with(')') => (&tok[..p], Some(&tok[p + 1..tok.len() - 1])),
        (Some(c), _) => (&tok[..c], Some(&tok[c + 1..])),
        _ => (tok, None),
    }
}
