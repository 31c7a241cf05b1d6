//! The plugin's HTTP server on a unix socket (*I/O*): HTTP/1.1 by hyper,
//! every request a POST whose path names the call. A path the protocol
//! does not define here answers 404 (the engine reads that as "not
//! supported"); a malformed body or a failed call answers with
//! `{"Err": "..."}`, which `docker` prints as it is.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::UnixListener;

use super::protocol::{CONTENT_TYPE, Call, error_body};

/// The largest request body read (the engine's are a few KiB).
pub const MAX_BODY: usize = 1 << 20;

/// What answers the calls.
pub trait Handler: Send + Sync + 'static {
    /// The reply's JSON, or the one-line message of the failure.
    fn handle(&self, call: Call) -> impl std::future::Future<Output = Result<Value, String>> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("plugin socket {path}: {source}")]
    Socket {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn reply(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static(CONTENT_TYPE));
    r
}

/// Answers one request (pure but for the handler).
pub async fn answer<H: Handler>(handler: &H, path: &str, body: &[u8]) -> (StatusCode, Vec<u8>) {
    match Call::parse(path, body) {
        Ok(None) => (StatusCode::NOT_FOUND, error_body(&format!("{path}: not implemented by ovsnet"))),
        Err(e) => (StatusCode::BAD_REQUEST, error_body(&e.to_string())),
        Ok(Some(call)) => match handler.handle(call).await {
            Ok(v) => (StatusCode::OK, serde_json::to_vec(&v).unwrap_or_else(|_| b"{}".to_vec())),
            Err(message) => (StatusCode::INTERNAL_SERVER_ERROR, error_body(&message)),
        },
    }
}

async fn service<H: Handler>(handler: Arc<H>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    if req.method() != hyper::Method::POST {
        return Ok(reply(StatusCode::METHOD_NOT_ALLOWED, error_body(&format!("{path}: only POST"))));
    }
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Ok(reply(StatusCode::BAD_REQUEST, error_body(&format!("{path}: body: {e}")))),
    };
    let (status, bytes) = answer(&*handler, &path, &body).await;
    if status != StatusCode::OK {
        tracing::info!(%path, %status, "plugin call failed: {}", String::from_utf8_lossy(&bytes));
    }
    Ok(reply(status, bytes))
}

/// Binds the plugin socket: a stale socket file is replaced, the
/// directory made when missing.
pub fn bind(path: &Path) -> Result<UnixListener, ServerError> {
    let err = |source| ServerError::Socket { path: path.to_owned(), source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    let l = UnixListener::bind(path).map_err(err)?;
    // Only root (the Docker engine) may connect, whatever the umask.
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).map_err(err)?;
    Ok(l)
}

/// Serves the engine's calls on `listener` until `shutdown` resolves.
pub async fn serve<H: Handler>(
    listener: UnixListener,
    handler: Arc<H>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!("plugin socket accept: {e}");
                    continue;
                }
            },
        };
        let h = handler.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| service(h.clone(), req));
            if let Err(e) = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await
            {
                tracing::debug!("plugin connection: {e}");
            }
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_plugin_socket_is_for_root_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plugins").join("ovsnet.sock");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let _l = rt.block_on(async { super::bind(&path) }).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
}
