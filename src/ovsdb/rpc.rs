//! JSON-RPC 1.0 messages exactly as `ovsdb-server` speaks them.
//!
//! Wire facts this module keeps (checked against OVS 3.1):
//! - there is never a `"jsonrpc"` member: the server drops a connection whose
//!   request carries one, even `"jsonrpc": null`;
//! - replies carry `"error": null` next to `"result"`, and an error reply may
//!   carry a bare string as `error` and no `result`;
//! - notifications carry `"id": null`, which is not the same as an absent id.
//!
//! Pure: no I/O.

use std::fmt;
use std::io;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// The text of one JSON value, parsed only when (and into what) the reader
/// asks: a monitor's snapshot of megabytes goes straight into rows
/// ([`crate::ovsdb::TableUpdates::from_update2_slice`]) and never becomes a
/// [`Value`] tree; a small reply becomes a `Value` with [`Json::to_value`].
///
/// Received, it shares the frame's allocation (a slice of it), so keeping
/// it keeps the frame. Always well-formed JSON: it comes from a frame that
/// serde_json has checked, or from serializing a `Value`. Two `Json`s are
/// equal when their values are (not their bytes).
#[derive(Clone)]
pub struct Json(Bytes);

impl Json {
    /// The JSON text of a value.
    pub fn from_value(v: &Value) -> Self {
        // Serializing a `Value` to a Vec cannot fail.
        Json(Bytes::from(serde_json::to_vec(v).unwrap_or_default()))
    }

    /// The text as received (or serialized).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Length of the text in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value as a [`Value`] tree.
    pub fn to_value(&self) -> Result<Value, MessageError> {
        self.parse()
    }

    /// The value as any deserializable type.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, MessageError> {
        serde_json::from_slice(&self.0).map_err(|e| MessageError(e.to_string()))
    }

    /// The elements of a JSON array, each as its own text, without parsing
    /// them (`None` if this is no array).
    pub fn elements(&self) -> Option<Vec<Json>> {
        let raws: Vec<&RawValue> = serde_json::from_slice(&self.0).ok()?;
        Some(raws.into_iter().map(|r| Json(self.0.slice_ref(r.get().as_bytes()))).collect())
    }

    /// A member of a received frame, sharing its allocation.
    fn within(frame: &Bytes, raw: &RawValue) -> Json {
        // `raw` was borrowed from `frame`'s bytes by serde_json.
        Json(frame.slice_ref(raw.get().as_bytes()))
    }
}

impl From<Value> for Json {
    fn from(v: Value) -> Self {
        Json::from_value(&v)
    }
}

impl From<&Value> for Json {
    fn from(v: &Value) -> Self {
        Json::from_value(v)
    }
}

impl PartialEq for Json {
    fn eq(&self, other: &Self) -> bool {
        match (self.to_value(), other.to_value()) {
            (Ok(a), Ok(b)) => a == b,
            _ => self.0 == other.0,
        }
    }
}

impl PartialEq<Value> for Json {
    fn eq(&self, other: &Value) -> bool {
        self.to_value().is_ok_and(|v| v == *other)
    }
}

impl fmt::Debug for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 512;
        let text = String::from_utf8_lossy(&self.0[..self.0.len().min(SHOWN)]);
        match self.0.len() > SHOWN {
            true => write!(f, "Json({text}... {} bytes)", self.0.len()),
            false => write!(f, "Json({text})"),
        }
    }
}

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

/// The members of one JSON-RPC 1.0 object as received, all optional, the
/// payloads left as text in the frame.
///
/// `id`, `result` and `error` keep `null` and absent apart: `None` is
/// absent, `Some(null)` an explicit `null`.
#[derive(Deserialize)]
struct Members<'a> {
    #[serde(default)]
    method: Option<String>,
    #[serde(default, borrow)]
    params: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present_raw")]
    result: Option<&'a RawValue>,
    #[serde(default, deserialize_with = "present")]
    error: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    id: Option<Value>,
}

/// Deserialize a member that is present (even as `null`) to `Some`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

fn present_raw<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// A classified message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A request expecting a reply with the same `id`.
    Request { id: Value, method: String, params: Json },
    /// A notification (`"id": null`): `update`, `update2`, `update3`,
    /// `locked`, `stolen`.
    Notification { method: String, params: Json },
    /// A successful reply.
    Response { id: Value, result: Json },
    /// An error reply; `error` is an object (`{"error": "...", "details": ...}`)
    /// or a bare string.
    Error { id: Value, error: Value },
}

/// A JSON object that is no JSON-RPC 1.0 message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a JSON-RPC 1.0 message: {0}")]
pub struct MessageError(pub String);

impl Message {
    pub fn request(id: impl Into<Value>, method: &str, params: Value) -> Self {
        Message::Request { id: id.into(), method: method.to_owned(), params: Json::from_value(&params) }
    }

    /// Parses one complete JSON text, leaving `params` and `result` as text
    /// (slices of `frame`) for the reader to parse into what it needs.
    pub fn from_bytes(frame: Bytes) -> Result<Self, MessageError> {
        let m: Members<'_> = serde_json::from_slice(&frame).map_err(|e| MessageError(e.to_string()))?;
        let params = m.params.map(|p| Json::within(&frame, p));
        match (m.method, m.id) {
            (Some(method), Some(id)) if !id.is_null() => {
                Ok(Message::Request { id, method, params: params.unwrap_or_else(|| Json(Bytes::from_static(b"[]"))) })
            }
            (Some(method), _) => Ok(Message::Notification {
                method,
                params: params.unwrap_or_else(|| Json(Bytes::from_static(b"null"))),
            }),
            (None, Some(id)) => match m.error {
                Some(error) if !error.is_null() => Ok(Message::Error { id, error }),
                _ => match m.result {
                    Some(result) => Ok(Message::Response { id, result: Json::within(&frame, result) }),
                    None => Err(MessageError(format!("reply {id} has neither result nor error"))),
                },
            },
            (None, None) => Err(MessageError("neither method nor id".into())),
        }
    }

    /// Parses one complete JSON text (copied).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, MessageError> {
        Message::from_bytes(Bytes::copy_from_slice(bytes))
    }

    /// Writes the message as compact JSON, members in the order
    /// `method`, `params`, `result`, `error`, `id`; never a `"jsonrpc"`.
    pub fn write_to<W: io::Write>(&self, w: &mut W) -> io::Result<()> {
        fn json<W: io::Write, T: Serialize + ?Sized>(w: &mut W, v: &T) -> io::Result<()> {
            serde_json::to_writer(w, v).map_err(io::Error::from)
        }
        match self {
            Message::Request { id, method, params } => {
                w.write_all(b"{\"method\":")?;
                json(w, method)?;
                w.write_all(b",\"params\":")?;
                w.write_all(params.as_bytes())?;
                w.write_all(b",\"id\":")?;
                json(w, id)?;
            }
            Message::Notification { method, params } => {
                w.write_all(b"{\"method\":")?;
                json(w, method)?;
                w.write_all(b",\"params\":")?;
                w.write_all(params.as_bytes())?;
                w.write_all(b",\"id\":null")?;
            }
            Message::Response { id, result } => {
                w.write_all(b"{\"result\":")?;
                w.write_all(result.as_bytes())?;
                w.write_all(b",\"error\":null,\"id\":")?;
                json(w, id)?;
            }
            Message::Error { id, error } => {
                w.write_all(b"{\"result\":null,\"error\":")?;
                json(w, error)?;
                w.write_all(b",\"id\":")?;
                json(w, id)?;
            }
        }
        w.write_all(b"}")
    }

    /// Serializes to compact JSON.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = self.write_to(&mut out);
        out
    }
}

/// A one-line description of an error reply's `error` member.
pub fn describe_error(error: &Value) -> String {
    match error {
        Value::String(s) => s.clone(),
        Value::Object(o) => {
            let kind = o.get("error").and_then(Value::as_str).unwrap_or("error");
            match o.get("details").and_then(Value::as_str) {
                Some(d) => format!("{kind}: {d}"),
                None => kind.to_owned(),
            }
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reply_with_null_error_is_a_response() {
        let m = Message::from_slice(br#"{"id":1,"result":["Open_vSwitch","_Server"],"error":null}"#).unwrap();
        assert_eq!(m, Message::Response { id: json!(1), result: json!(["Open_vSwitch", "_Server"]).into() });
    }

    #[test]
    fn bare_string_error_without_result() {
        let m = Message::from_slice(br#"{"id":3,"error":"unknown method"}"#).unwrap();
        assert_eq!(m, Message::Error { id: json!(3), error: json!("unknown method") });
        assert_eq!(describe_error(&json!("unknown method")), "unknown method");
        assert_eq!(describe_error(&json!({"error": "unknown database", "details": "x"})), "unknown database: x");
    }

    #[test]
    fn null_id_is_a_notification_and_server_echo_is_a_request() {
        let m = Message::from_slice(br#"{"id":null,"method":"update2","params":["m",{}]}"#).unwrap();
        assert_eq!(m, Message::Notification { method: "update2".into(), params: json!(["m", {}]).into() });
        let e = Message::from_slice(br#"{"id":"echo","method":"echo","params":[]}"#).unwrap();
        assert_eq!(e, Message::request("echo", "echo", json!([])));
    }

    #[test]
    fn requests_never_carry_jsonrpc_and_notifications_carry_null_id() {
        let r = Message::request(7, "list_dbs", json!([]));
        assert_eq!(
            serde_json::from_slice::<Value>(&r.to_vec()).unwrap(),
            json!({"method": "list_dbs", "params": [], "id": 7})
        );
        let n = Message::Notification { method: "update".into(), params: json!([]).into() };
        assert_eq!(
            serde_json::from_slice::<Value>(&n.to_vec()).unwrap(),
            json!({"method": "update", "params": [], "id": null})
        );
        let reply = Message::Response { id: json!("echo"), result: json!([]).into() };
        assert_eq!(
            serde_json::from_slice::<Value>(&reply.to_vec()).unwrap(),
            json!({"id": "echo", "result": [], "error": null})
        );
    }

    #[test]
    fn payloads_stay_text_until_asked() {
        let wire = br#"{"id":null,"method":"update2","params":["m", {"T": {"x": [1, 2.5, "\u00fc"]}}]}"#;
        let Message::Notification { params, .. } = Message::from_slice(wire).unwrap() else { panic!("notification") };
        assert_eq!(params.as_bytes(), br#"["m", {"T": {"x": [1, 2.5, "\u00fc"]}}]"#);
        assert_eq!(params, json!(["m", {"T": {"x": [1, 2.5, "ü"]}}]));
        let parts = params.elements().unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1].as_bytes(), br#"{"T": {"x": [1, 2.5, "\u00fc"]}}"#);
        assert!(Json::from(json!({})).elements().is_none());
        // An error reply's `result: null` is not a result.
        let e = Message::from_slice(br#"{"id":4,"result":null,"error":{"error":"x"}}"#).unwrap();
        assert_eq!(e, Message::Error { id: json!(4), error: json!({"error": "x"}) });
        // A reply whose result is null is still a response.
        let r = Message::from_slice(br#"{"id":5,"result":null,"error":null}"#).unwrap();
        assert_eq!(r, Message::Response { id: json!(5), result: Value::Null.into() });
    }

    #[test]
    fn every_kind_round_trips() {
        for m in [
            Message::request(1, "transact", json!(["db", {"op": "comment", "comment": "a\"b"}])),
            Message::Notification { method: "locked".into(), params: json!(["l"]).into() },
            Message::Response { id: json!("echo"), result: json!([1]).into() },
            Message::Error { id: json!(9), error: json!("unknown method") },
        ] {
            assert_eq!(Message::from_slice(&m.to_vec()).unwrap(), m);
        }
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(Message::from_slice(br#"{"id":1,"result":[1,,2]}"#).is_err());
        assert!(Message::from_slice(br#"{"id":1,"id":2,"result":1}"#).is_err());
        assert!(Message::from_slice(br#"{"result":1}"#).is_err());
        assert!(Message::from_slice(br#"{"id":1}"#).is_err());
        assert!(Message::from_slice(b"[1,2]").is_err());
    }
}
