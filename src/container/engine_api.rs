//! The one Docker Engine API call ovsnet makes, container inspect, over the
//! engine's unix socket: HTTP/1.1, one request per connection.
//!
//! A general client (bollard on hyper) took about 1.4 ms for the first
//! inspect of a process, where the request itself takes 0.4 ms (docs/
//! BENCHMARKS.md, "Container attach: where a single attach's time goes",
//! has today's figure); an attach is one short process, so it paid that
//! every time. What is left is small: the request, and the parsing of the
//! response (status line, headers, a body either sized or chunked), which
//! is pure and tested byte for byte below.

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

/// Parses a whole response, read until the engine closed the connection.
pub fn parse_response(raw: &[u8]) -> Result<Response, ApiError> {
    let head_len = find(raw, b"\r\n\r\n").ok_or(ApiError::Malformed("no end of headers"))?;
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
    let rest = &raw[head_len + 4..];
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
        let line_len = find(data, b"\r\n").ok_or(ApiError::Malformed("chunk size line not ended"))?;
        let line = std::str::from_utf8(&data[..line_len]).map_err(|_| ApiError::Malformed("bad chunk size"))?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| ApiError::Malformed("bad chunk size"))?;
        data = &data[line_len + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = data.get(..size).ok_or(ApiError::Malformed("chunk cut short"))?;
        if data.get(size..size + 2) != Some(b"\r\n".as_slice()) {
            return Err(ApiError::Malformed("chunk not followed by CRLF"));
        }
        out.extend_from_slice(chunk);
        data = &data[size + 2..];
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
                state: State { running: true, pid: 4242 }
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
