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

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// The members of one JSON-RPC 1.0 object, all optional, as on the wire.
///
/// `id` keeps `null` and absent apart: `None` is absent, `Some(Value::Null)`
/// is an explicit `null`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RawMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
}

/// Deserialize a member that is present (even as `null`) to `Some`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// A classified message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A request expecting a reply with the same `id`.
    Request { id: Value, method: String, params: Value },
    /// A notification (`"id": null`): `update`, `update2`, `locked`, `stolen`.
    Notification { method: String, params: Value },
    /// A successful reply.
    Response { id: Value, result: Value },
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
        Message::Request { id: id.into(), method: method.to_owned(), params }
    }

    /// Classifies the members of a raw message.
    pub fn from_raw(raw: RawMessage) -> Result<Self, MessageError> {
        match (raw.method, raw.id) {
            (Some(method), Some(id)) if !id.is_null() => {
                Ok(Message::Request { id, method, params: raw.params.unwrap_or(Value::Array(Vec::new())) })
            }
            (Some(method), _) => Ok(Message::Notification { method, params: raw.params.unwrap_or(Value::Null) }),
            (None, Some(id)) => match raw.error {
                Some(error) if !error.is_null() => Ok(Message::Error { id, error }),
                _ => match raw.result {
                    Some(result) => Ok(Message::Response { id, result }),
                    None => Err(MessageError(format!("reply {id} has neither result nor error"))),
                },
            },
            (None, None) => Err(MessageError("neither method nor id".into())),
        }
    }

    /// The members to put on the wire.
    pub fn to_raw(&self) -> RawMessage {
        match self {
            Message::Request { id, method, params } => RawMessage {
                method: Some(method.clone()),
                params: Some(params.clone()),
                id: Some(id.clone()),
                ..RawMessage::default()
            },
            Message::Notification { method, params } => RawMessage {
                method: Some(method.clone()),
                params: Some(params.clone()),
                id: Some(Value::Null),
                ..RawMessage::default()
            },
            Message::Response { id, result } => RawMessage {
                result: Some(result.clone()),
                error: Some(Value::Null),
                id: Some(id.clone()),
                ..RawMessage::default()
            },
            Message::Error { id, error } => RawMessage {
                result: Some(Value::Null),
                error: Some(error.clone()),
                id: Some(id.clone()),
                ..RawMessage::default()
            },
        }
    }

    /// Parses one complete JSON text.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, MessageError> {
        let raw: RawMessage = serde_json::from_slice(bytes).map_err(|e| MessageError(e.to_string()))?;
        Message::from_raw(raw)
    }

    /// Serializes to compact JSON.
    pub fn to_vec(&self) -> Vec<u8> {
        // Serializing a struct of `Value`s to a Vec cannot fail.
        serde_json::to_vec(&self.to_raw()).unwrap_or_default()
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
        assert_eq!(m, Message::Response { id: json!(1), result: json!(["Open_vSwitch", "_Server"]) });
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
        assert_eq!(m, Message::Notification { method: "update2".into(), params: json!(["m", {}]) });
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
        let n = Message::Notification { method: "update".into(), params: json!([]) };
        assert_eq!(
            serde_json::from_slice::<Value>(&n.to_vec()).unwrap(),
            json!({"method": "update", "params": [], "id": null})
        );
        let reply = Message::Response { id: json!("echo"), result: json!([]) };
        assert_eq!(
            serde_json::from_slice::<Value>(&reply.to_vec()).unwrap(),
            json!({"id": "echo", "result": [], "error": null})
        );
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(Message::from_slice(br#"{"result":1}"#).is_err());
        assert!(Message::from_slice(br#"{"id":1}"#).is_err());
        assert!(Message::from_slice(b"[1,2]").is_err());
    }
}
