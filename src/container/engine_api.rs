//! The Docker Engine API calls ovsnet makes over the engine's unix socket:
//! container and network inspect (HTTP/1.1, one request per connection),
//! and the event stream the agent follows containers with ([`EventStream`],
//! one long response taken apart as it arrives by [`EventDecoder`]).
//!
//! A general client (bollard on hyper) took about 1.4 ms for the first
//! inspect of a process, where the request itself takes 0.4 ms (docs/
//! BENCHMARKS.md, "Container attach: where a single attach's time goes",
//! has today's figure); an attach is one short process, so it paid that
//! every time. What is left is small: the request, and the parsing of the
//! response (status line, headers, a body either sized or chunked), which
//! is pure and tested byte for byte below.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// The API version asked for: 1.41 (Docker 20.10) is understood by every
/// engine still around, and by Podman. An engine that refuses it is asked
/// for its own version (`GET /version`) and the request repeated with it.
pub const API_VERSION: &str = "1.41";

/// The largest response read (an inspect is a few KB).
const MAX_RESPONSE: usize = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("malformed HTTP response: {0}")]
    Malformed(&'static str),
    #[error("the engine answered {status}: {message}")]
    Status { status: u16, message: String },
    #[error("malformed event: {0}")]
    BadEvent(String),
}

/// A response: its status and its body (de-chunked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// What ovsnet reads from `GET /containers/NAME/json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Inspect {
    #[serde(rename = "Id", default)]
    pub id: String,
    /// With its leading `/`.
    #[serde(rename = "Name", default)]
    pub name: String,
    #[serde(rename = "State", default)]
    pub state: State,
    #[serde(rename = "NetworkSettings", default)]
    pub network_settings: NetworkSettings,
}

/// A container's networks, as inspect shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct NetworkSettings {
    /// By network name; `null` for a container on none.
    #[serde(rename = "Networks", default)]
    pub networks: Option<BTreeMap<String, EndpointSettings>>,
}

/// A container's endpoint in one network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct EndpointSettings {
    #[serde(rename = "NetworkID", default)]
    pub network_id: String,
    #[serde(rename = "EndpointID", default)]
    pub endpoint_id: String,
    /// `--network-alias` (and, on older engines, the short container ID).
    #[serde(rename = "Aliases", default)]
    pub aliases: Option<Vec<String>>,
    /// The names the engine's own DNS answers for this endpoint (API 1.44
    /// and later): the container name, its aliases, its short ID.
    #[serde(rename = "DNSNames", default)]
    pub dns_names: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct State {
    #[serde(rename = "Running", default)]
    pub running: bool,
    #[serde(rename = "Pid", default)]
    pub pid: i64,
}

/// The request for `path` (absolute, already safe to put in a URL).
pub fn request(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: ovsnet\r\nConnection: close\r\n\r\n").into_bytes()
}

/// A response's status line and the headers that frame its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    /// Bytes up to and including the blank line.
    len: usize,
    status: u16,
    chunked: bool,
    length: Option<usize>,
}

/// The head of a response, or `None` while its blank line has not arrived.
fn parse_head(raw: &[u8]) -> Result<Option<Head>, ApiError> {
    let Some(head_len) = find(raw, b"\r\n\r\n") else { return Ok(None) };
    let head = std::str::from_utf8(&raw[..head_len]).map_err(|_| ApiError::Malformed("headers not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    if !parts.next().is_some_and(|p| p.starts_with("HTTP/1.")) {
        return Err(ApiError::Malformed("no HTTP/1 status line"));
    }
    let status: u16 = parts.next().and_then(|s| s.parse().ok()).ok_or(ApiError::Malformed("bad status code"))?;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let (name, value) = line.split_once(':').ok_or(ApiError::Malformed("bad header line"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        } else if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().map_err(|_| ApiError::Malformed("bad Content-Length"))?);
        }
    }
    Ok(Some(Head { len: head_len + 4, status, chunked, length }))
}

/// Parses a whole response, read until the engine closed the connection.
pub fn parse_response(raw: &[u8]) -> Result<Response, ApiError> {
    let Head { len, status, chunked, length } = parse_head(raw)?.ok_or(ApiError::Malformed("no end of headers"))?;
    let rest = &raw[len..];
    let body = match (chunked, length) {
        (true, _) => dechunk(rest)?,
        (false, Some(n)) => rest.get(..n).ok_or(ApiError::Malformed("body shorter than Content-Length"))?.to_vec(),
        (false, None) => rest.to_vec(),
    };
    Ok(Response { status, body })
}

/// Joins the chunks of a `Transfer-Encoding: chunked` body.
fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    loop {
        match next_chunk(data)? {
            Chunk::Incomplete if find(data, b"\r\n").is_none() => {
                return Err(ApiError::Malformed("chunk size line not ended"));
            }
            Chunk::Incomplete => return Err(ApiError::Malformed("chunk cut short")),
            Chunk::Last => return Ok(out),
            Chunk::Data { data: range, len } => {
                out.extend_from_slice(&data[range]);
                data = &data[len..];
            }
        }
    }
}

/// What the start of a chunked body holds.
#[derive(Debug, PartialEq, Eq)]
enum Chunk {
    /// Not all of the next chunk is there yet.
    Incomplete,
    /// The last chunk (size 0).
    Last,
    /// A chunk: where its data is, and how many bytes it takes with its
    /// size line and closing CRLF.
    Data { data: std::ops::Range<usize>, len: usize },
}

/// The chunk at the start of `data` (`SIZE[;ext]\r\nDATA\r\n`). Refuses a
/// size that does not parse, one over [`MAX_EVENT`], and data not followed
/// by CRLF.
fn next_chunk(data: &[u8]) -> Result<Chunk, ApiError> {
    let Some(line_len) = find(data, b"\r\n") else {
        return match data.len() > 64 {
            true => Err(ApiError::Malformed("chunk size line not ended")),
            false => Ok(Chunk::Incomplete),
        };
    };
    let line = std::str::from_utf8(&data[..line_len]).map_err(|_| ApiError::Malformed("bad chunk size"))?;
    let size_text = line.split(';').next().unwrap_or_default().trim();
    let size = usize::from_str_radix(size_text, 16).map_err(|_| ApiError::Malformed("bad chunk size"))?;
    if size > MAX_EVENT {
        return Err(ApiError::Malformed("a chunk larger than 1 MB"));
    }
    if size == 0 {
        return Ok(Chunk::Last);
    }
    let len = line_len + 2 + size + 2;
    match data.get(len - 2..len) {
        None => Ok(Chunk::Incomplete),
        Some(b"\r\n") => Ok(Chunk::Data { data: line_len + 2..len - 2, len }),
        Some(_) => Err(ApiError::Malformed("chunk not followed by CRLF")),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The engine's words for an error response (`{"message": "..."}`), else
/// the body as text.
pub fn message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Error {
        message: String,
    }
    match serde_json::from_slice::<Error>(body) {
        Ok(e) => e.message,
        Err(_) => String::from_utf8_lossy(body).trim().to_owned(),
    }
}

/// The engine's own API version, from `GET /version`.
pub fn api_version(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Version {
        #[serde(rename = "ApiVersion")]
        api_version: String,
    }
    serde_json::from_slice::<Version>(body).ok().map(|v| v.api_version)
}

/// One GET on the engine's socket.
pub async fn get(socket: &Path, path: &str) -> Result<Response, ApiError> {
    let mut stream = UnixStream::connect(socket).await?;
    stream.write_all(&request(path)).await?;
    let mut raw = Vec::with_capacity(8192);
    while stream.read_buf(&mut raw).await? > 0 {
        if raw.len() > MAX_RESPONSE {
            return Err(ApiError::Malformed("response larger than 4 MB"));
        }
    }
    parse_response(&raw)
}

/// One event of `GET /events`: what it is about and what happened.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Event {
    /// `container`, `network`, ...
    #[serde(rename = "Type", default)]
    pub kind: String,
    /// `start`, `die`, `destroy`, `connect`, ...
    #[serde(rename = "Action", default)]
    pub action: String,
    #[serde(rename = "Actor", default)]
    pub actor: Actor,
}

/// What an event is about: a container's or a network's ID, and its
/// attributes (a container's `name` and labels; a network event's
/// `container`, `name` and `type`, the driver).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Actor {
    #[serde(rename = "ID", default)]
    pub id: String,
    #[serde(rename = "Attributes", default)]
    pub attributes: BTreeMap<String, String>,
}

/// The longest event line taken (an event is a few hundred bytes; labels
/// can make it a few KB).
const MAX_EVENT: usize = 1 << 20;

/// Takes an event stream apart as its bytes arrive: the response head,
/// then the body (chunked, or plain until the end) into lines, each line
/// one JSON event. Pure: [`EventStream`] feeds it from the socket.
#[derive(Debug, Default)]
pub struct EventDecoder {
    raw: Vec<u8>,
    head: Option<Head>,
    body: Vec<u8>,
    /// The last chunk (size 0) has arrived.
    ended: bool,
}

impl EventDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes from the socket.
    pub fn push(&mut self, data: &[u8]) {
        self.raw.extend_from_slice(data);
    }

    /// The stream's last chunk has arrived: no event will follow.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The next whole event, `None` until one has arrived. A refusal
    /// (any status but 200) is an error once its body is in; so is a line
    /// that is not an event.
    pub fn next_event(&mut self) -> Result<Option<Event>, ApiError> {
        if self.head.is_none() {
            let Some(head) = parse_head(&self.raw)? else {
                if self.raw.len() > MAX_EVENT {
                    return Err(ApiError::Malformed("headers larger than 1 MB"));
                }
                return Ok(None);
            };
            self.raw.drain(..head.len);
            self.head = Some(head);
        }
        let Some(head) = self.head else { return Ok(None) };
        self.take_body(head)?;
        if head.status != 200 {
            let whole = self.ended || head.length.is_some_and(|n| self.body.len() >= n);
            return match whole {
                true => Err(ApiError::Status { status: head.status, message: message(&self.body) }),
                false => Ok(None),
            };
        }
        loop {
            let Some(end) = self.body.iter().position(|b| *b == b'\n') else {
                if self.body.len() > MAX_EVENT {
                    return Err(ApiError::BadEvent("a line longer than 1 MB".into()));
                }
                return Ok(None);
            };
            let line: Vec<u8> = self.body.drain(..=end).collect();
            let line = line.trim_ascii();
            if line.is_empty() {
                continue;
            }
            return serde_json::from_slice(line).map(Some).map_err(|e| ApiError::BadEvent(e.to_string()));
        }
    }

    /// Moves what has arrived of the body from `raw` to `body`.
    fn take_body(&mut self, head: Head) -> Result<(), ApiError> {
        if !head.chunked {
            self.body.append(&mut self.raw);
            return Ok(());
        }
        while !self.ended {
            match next_chunk(&self.raw)? {
                Chunk::Incomplete => return Ok(()),
                Chunk::Last => {
                    self.ended = true;
                    self.raw.clear();
                }
                Chunk::Data { data, len } => {
                    self.body.extend_from_slice(&self.raw[data]);
                    self.raw.drain(..len);
                }
            }
        }
        Ok(())
    }
}

/// `GET /events` with its filters, for [`EventStream::open`]: the
/// filters' JSON, percent-encoded.
pub fn events_path(version: &str, types: &[&str]) -> String {
    let filters = serde_json::json!({ "type": types }).to_string();
    let mut encoded = String::with_capacity(filters.len() * 3);
    for b in filters.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("/v{version}/events?filters={encoded}")
}

/// The engine's events as they happen (*I/O*).
pub struct EventStream {
    stream: UnixStream,
    decoder: EventDecoder,
}

impl EventStream {
    /// Opens `GET /events` for the given kinds of object.
    pub async fn open(socket: &Path, version: &str, types: &[&str]) -> Result<EventStream, ApiError> {
        let mut stream = UnixStream::connect(socket).await?;
        stream.write_all(&request(&events_path(version, types))).await?;
        Ok(EventStream { stream, decoder: EventDecoder::new() })
    }

    /// The next event; `None` when the engine ended the stream (it stops
    /// or restarts).
    pub async fn next(&mut self) -> Result<Option<Event>, ApiError> {
        let mut buf = [0u8; 16 * 1024];
        loop {
            if let Some(e) = self.decoder.next_event()? {
                return Ok(Some(e));
            }
            if self.decoder.ended() {
                return Ok(None);
            }
            let n = self.stream.read(&mut buf).await?;
            if n == 0 {
                // The engine closed the stream: a refusal's body is whole now.
                self.decoder.ended = true;
                return self.decoder.next_event();
            }
            self.decoder.push(&buf[..n]);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn request_is_one_get_that_closes() {
        assert_eq!(
            request("/v1.41/containers/web_worker/json"),
            b"GET /v1.41/containers/web_worker/json HTTP/1.1\r\nHost: docker\r\nUser-Agent: ovsnet\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn sized_and_chunked_bodies() {
        let sized = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(parse_response(sized).unwrap(), Response { status: 200, body: b"hello".to_vec() });
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n4\r\nWiki\r\n6;ext=1\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap().body, b"Wikipedia in \r\n\r\nchunks.".to_vec());
        let to_eof = b"HTTP/1.0 404 Not Found\r\n\r\n{\"message\":\"No such container: x\"}";
        let r = parse_response(to_eof).unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(message(&r.body), "No such container: x");
    }

    #[test]
    fn malformed_responses_are_refused() {
        for (raw, why) in [
            (&b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"[..], "no end of headers"),
            (b"SSH-2.0-x\r\n\r\n", "no HTTP/1 status line"),
            (b"HTTP/1.1 abc OK\r\n\r\n", "bad status code"),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort", "body shorter than Content-Length"),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size"),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", "chunk cut short"),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY0\r\n\r\n", "chunk not followed by CRLF"),
            (b"HTTP/1.1 200 OK\r\nbroken\r\n\r\n", "bad header line"),
        ] {
            match parse_response(raw) {
                Err(ApiError::Malformed(m)) => assert_eq!(m, why),
                other => panic!("{why}: {other:?}"),
            }
        }
    }

    const START: &str = r#"{"status":"start","id":"4f66ad9a","from":"busybox","Type":"container","Action":"start","Actor":{"ID":"4f66ad9a","Attributes":{"image":"busybox","name":"web_worker"}},"scope":"local","time":1764680000,"timeNano":1764680000000000000}"#;

    fn start_event() -> Event {
        Event {
            kind: "container".into(),
            action: "start".into(),
            actor: Actor {
                id: "4f66ad9a".into(),
                attributes: [("image", "busybox"), ("name", "web_worker")]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            },
        }
    }

    #[test]
    fn events_path_percent_encodes_the_filters() {
        assert_eq!(
            events_path("1.41", &["container", "network"]),
            "/v1.41/events?filters=%7B%22type%22%3A%5B%22container%22%2C%22network%22%5D%7D"
        );
    }

    #[test]
    fn a_chunked_event_stream_fed_a_byte_at_a_time_gives_each_event_once() {
        let connect = r#"{"Type":"network","Action":"connect","Actor":{"ID":"9a1b","Attributes":{"container":"4f66ad9a","name":"blue","type":"ovsnet"}}}"#;
        let body1 = format!("{START}\n");
        let body2 = format!("{connect}\n");
        let raw = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body1}\r\n{:x}\r\n{body2}\r\n0\r\n\r\n",
            body1.len(),
            body2.len()
        );
        let mut d = EventDecoder::new();
        let mut got = Vec::new();
        for b in raw.as_bytes() {
            d.push(std::slice::from_ref(b));
            while let Some(e) = d.next_event().unwrap() {
                got.push(e);
            }
        }
        assert!(d.ended());
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], start_event());
        assert_eq!((got[1].kind.as_str(), got[1].action.as_str()), ("network", "connect"));
        assert_eq!(got[1].actor.attributes.get("container").map(String::as_str), Some("4f66ad9a"));
    }

    #[test]
    fn an_event_split_over_chunks_and_two_in_one_chunk() {
        let two = format!("{START}\n{START}\n");
        let (a, b) = two.split_at(100);
        let raw = format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n",
            a.len(),
            b.len()
        );
        let mut d = EventDecoder::new();
        d.push(raw.as_bytes());
        assert_eq!(d.next_event().unwrap(), Some(start_event()));
        assert_eq!(d.next_event().unwrap(), Some(start_event()));
        assert_eq!(d.next_event().unwrap(), None);
        assert!(!d.ended());
    }

    #[test]
    fn a_refused_stream_and_a_bad_line_are_errors() {
        let mut d = EventDecoder::new();
        let body = r#"{"message":"invalid filter 'x'"}"#;
        d.push(format!("HTTP/1.1 400 Bad Request\r\nContent-Length: {}\r\n\r\n{body}", body.len()).as_bytes());
        match d.next_event() {
            Err(ApiError::Status { status: 400, message }) => assert_eq!(message, "invalid filter 'x'"),
            other => panic!("{other:?}"),
        }
        let mut d = EventDecoder::new();
        d.push(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nnot\n\r\n");
        assert!(matches!(d.next_event(), Err(ApiError::BadEvent(_))));
        let mut d = EventDecoder::new();
        d.push(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
        assert!(matches!(d.next_event(), Err(ApiError::Malformed("bad chunk size"))));
    }

    #[test]
    fn inspect_reads_the_fields_it_needs() {
        let body = br#"{"Id":"4f66ad9a0b2e","Created":"2026-11-21T10:00:00Z","Name":"/web_worker",
            "State":{"Status":"running","Running":true,"Paused":false,"Pid":4242,"ExitCode":0},
            "HostConfig":{"NetworkMode":"none"},"NetworkSettings":{"Networks":{}}}"#;
        let i: Inspect = serde_json::from_slice(body).unwrap();
        assert_eq!(
            i,
            Inspect {
                id: "4f66ad9a0b2e".into(),
                name: "/web_worker".into(),
                state: State { running: true, pid: 4242 },
                network_settings: NetworkSettings { networks: Some(BTreeMap::new()) },
            }
        );
        assert_eq!(
            api_version(br#"{"Version":"26.1.5","ApiVersion":"1.45","MinAPIVersion":"1.24"}"#).as_deref(),
            Some("1.45")
        );
        assert_eq!(api_version(b"{}"), None);
        assert_eq!(message(b"plain text\n"), "plain text");
    }
}
