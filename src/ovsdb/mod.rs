//! RFC 7047 OVSDB client.
//!
//! Layers, each usable alone:
//! - [`notation`]: atoms, sets, maps, UUIDs, rows and their JSON (pure);
//! - [`rpc`]: JSON-RPC 1.0 messages as `ovsdb-server` speaks them (pure);
//! - [`framing`]: back-to-back JSON values on a stream, incremental (pure);
//! - [`ops`]: transaction operations and their results (pure);
//! - [`schema`]: `.ovsschema` parsing and checking operations (pure);
//! - [`cache`]: a monitor cache applying `update`/`update2` (pure);
//! - [`remote`]: `unix:`/`tcp:`/`ssl:` remote syntax (pure);
//! - [`client`]: the connection: a cheap cloneable [`Client`] handle talking
//!   to one connection task that owns the socket (I/O edge), with [`tls`].
//!
//! ```no_run
//! # async fn f() -> Result<(), ovsnet::ovsdb::Error> {
//! use ovsnet::ovsdb::{Client, ConnectOptions, Condition, Operation};
//! let client = Client::connect("unix:/run/openvswitch/db.sock", &ConnectOptions::default()).await?;
//! let rows = client
//!     .transact("Open_vSwitch", vec![Operation::select("Bridge", vec![]).columns(["name"])])
//!     .await?;
//! # Ok(()) }
//! ```

pub mod cache;
pub mod client;
pub mod error_tag;
pub mod framing;
pub mod notation;
pub mod ops;
pub mod remote;
pub mod rpc;
pub mod schema;
pub mod tls;

pub use cache::{Cache, CacheError, RowUpdate, TableUpdates};
pub use client::{Backoff, Client, ConnectOptions, Lock, LockEvent, Monitor, MonitorEvent, MonitorRequest, Stats};
pub use error_tag::ErrorTag;
pub use notation::{Atom, Datum, Row, Uuid};
pub use ops::{Condition, Function, Mutation, Mutator, OpResult, Operation, WaitUntil};
pub use remote::Remote;
pub use schema::{DatabaseSchema, SchemaError};

/// Everything that can go wrong talking to a database, one line each.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Could not connect to (or keep a usable connection with) a remote.
    #[error("cannot connect to {remote}: {source}")]
    Connect {
        remote: String,
        #[source]
        source: std::io::Error,
    },
    /// A remote that does not parse.
    #[error("bad remote {0}")]
    Remote(String),
    /// An operation that does not fit the database schema (not sent).
    #[error("schema check: {0}")]
    Schema(#[from] SchemaError),
    /// The server refused operation `index` of a transaction.
    #[error("transaction failed at operation {index} ({op}): {error}{}", details.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
    Transaction { index: usize, op: String, error: ErrorTag, details: Option<String> },
    /// The server answered a request with an error.
    #[error("OVSDB error reply: {0}")]
    Rpc(String),
    /// The connection went away before the reply came; the request may or
    /// may not have been carried out.
    #[error("connection to the database lost before the reply came")]
    Disconnected,
    #[error("timed out waiting for the database")]
    Timeout,
    /// The peer sent something that is not OVSDB JSON-RPC.
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error(transparent)]
    Cache(#[from] CacheError),
}
