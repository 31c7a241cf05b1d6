//! The connection: a cheap cloneable [`Client`] handle and one task that owns
//! the socket (the rtnetlink pattern). This is the only module of the OVSDB
//! client that does I/O.
//!
//! The task reads every message in one place and matches replies to pending
//! requests by id, so many requests can be in flight at once and a
//! notification may arrive before the reply to the request that caused it.
//! It answers the server's `echo`, probes idle TCP/SSL connections with its
//! own, and reconnects with backoff: monitors and locks are re-established
//! on the new connection (monitors deliver a [`MonitorEvent::Resync`] with a
//! fresh snapshot). Requests in flight on a lost connection fail with
//! [`Error::Disconnected`]; they are never replayed, since a transaction is
//! not idempotent. Requests made while no connection is usable wait for the
//! new connection; one that has waited the connect timeout (counted from the
//! call) fails with [`Error::Timeout`]. So every request ends: with its
//! reply, with `Disconnected` or with `Timeout`.
//!
//! Each new connection first monitors the `_Server` database's `Database`
//! table; a member whose clustered database is not connected to the cluster
//! (still joining, or cut off), or (with `leader_only`) is not its leader, is
//! left for the next remote (or retried, with one remote), also later when
//! its status changes. Standalone databases always qualify.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::codec::Framed;

use super::Error;
use super::cache::TableUpdates;
use super::framing::{DEFAULT_MAX_MESSAGE, FramingError, JsonCodec};
use super::notation::Datum;
use super::ops::{Condition, OpOutcome, OpResult, Operation};
use super::remote::Remote;
use super::rpc::{Json, Message, describe_error};
use super::schema::DatabaseSchema;

/// Reconnection backoff: waited once every remote has failed in turn; it
/// starts at `initial` and doubles up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(4) }
    }
}

/// How to connect. `Default` gives: no TLS files, leader only, probes every
/// 5 s on TCP/SSL, 10 s to connect, no per-request timeout.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// PEM private key for `ssl:` (OVS's `--private-key`).
    pub private_key: Option<PathBuf>,
    /// PEM certificate (chain) for `ssl:` (OVS's `--certificate`).
    pub certificate: Option<PathBuf>,
    /// PEM CA certificate that must have signed the server's (`--ca-cert`).
    pub ca_cert: Option<PathBuf>,
    /// With several remotes: only use a cluster member that is the leader.
    pub leader_only: bool,
    /// With several remotes: the database whose cluster status decides
    /// (default: every clustered database the server has).
    pub database: Option<String>,
    pub reconnect: Backoff,
    /// After a usable connection is lost, wait a random time up to this
    /// before reconnecting, so that the clients of a member that went away
    /// do not all reconnect in the same instant.
    pub reconnect_jitter: Duration,
    /// Idle time after which we send our own echo on TCP/SSL, and after
    /// which an unanswered one drops the connection. `None`: never.
    pub probe_interval: Option<Duration>,
    /// Time allowed to (re)connect before requests fail.
    pub timeout: Duration,
    /// Fail `connect` as soon as every remote has been tried once and
    /// failed (for one-shot commands), instead of retrying until `timeout`.
    pub fail_fast: bool,
    /// Time allowed for each reply; `None` waits as long as the connection lives.
    pub request_timeout: Option<Duration>,
    /// Largest message accepted from the server.
    pub max_message: usize,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            private_key: None,
            certificate: None,
            ca_cert: None,
            leader_only: true,
            database: None,
            reconnect: Backoff::default(),
            reconnect_jitter: Duration::from_secs(1),
            probe_interval: Some(Duration::from_secs(5)),
            timeout: Duration::from_secs(10),
            fail_fast: false,
            request_timeout: None,
            max_message: DEFAULT_MAX_MESSAGE,
        }
    }
}

/// What to monitor in one table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MonitorRequest {
    /// Columns to report; `None`: all.
    pub columns: Option<Vec<String>>,
    /// `monitor_cond` only: rows to report; `None`: all.
    pub where_: Option<Vec<Condition>>,
}

impl MonitorRequest {
    pub fn all() -> Self {
        MonitorRequest::default()
    }

    pub fn columns<S: AsRef<str>>(cols: impl IntoIterator<Item = S>) -> Self {
        MonitorRequest { columns: Some(cols.into_iter().map(|c| c.as_ref().to_owned()).collect()), where_: None }
    }

    pub fn where_(mut self, conds: Vec<Condition>) -> Self {
        self.where_ = Some(conds);
        self
    }

    fn to_json(&self, cond: bool) -> Value {
        let mut o = serde_json::Map::new();
        if let Some(c) = &self.columns {
            o.insert("columns".into(), c.clone().into());
        }
        if cond && let Some(w) = &self.where_ {
            o.insert("where".into(), Value::Array(w.iter().map(Condition::to_json).collect()));
        }
        Value::Object(o)
    }
}

/// A change seen by a monitor.
#[derive(Debug, Clone, PartialEq)]
pub enum MonitorEvent {
    /// Changes since the last event (`update`, `update2` or `update3`);
    /// also, for a `monitor_cond_since` monitor, what it missed while the
    /// connection was down.
    Update(TableUpdates),
    /// The connection was re-established and the monitor re-issued: this is
    /// a full snapshot; drop the old state and start again from it.
    Resync(TableUpdates),
}

impl MonitorEvent {
    /// Applies the change to `cache`: an update on top of what it holds, a
    /// resync in place of it.
    pub fn apply_to(&self, cache: &mut super::cache::Cache) -> Result<(), super::cache::CacheError> {
        match self {
            MonitorEvent::Update(u) => cache.apply(u),
            MonitorEvent::Resync(u) => {
                cache.clear();
                cache.apply(u)
            }
        }
    }
}

/// A running monitor: the initial rows and a stream of changes.
#[derive(Debug)]
pub struct Monitor {
    pub id: String,
    pub db: String,
    /// The rows present when the monitor started (`update` or `update2`
    /// shaped, as the method was).
    pub initial: TableUpdates,
    /// Whether this is a `monitor_cond` (`update2`) monitor.
    pub cond: bool,
    events: mpsc::UnboundedReceiver<MonitorEvent>,
    client: Client,
}

impl Monitor {
    /// The next change; `None` once the monitor is cancelled or the client
    /// is gone.
    pub async fn next(&mut self) -> Option<MonitorEvent> {
        self.events.recv().await
    }

    /// A change already received, without waiting.
    pub fn try_next(&mut self) -> Option<MonitorEvent> {
        self.events.try_recv().ok()
    }

    /// `monitor_cancel`.
    pub async fn cancel(self) -> Result<(), Error> {
        self.client.monitor_cancel(&self.id).await
    }
}

/// Lock notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockEvent {
    /// `locked`: we now hold the lock.
    Locked,
    /// `stolen`: another client stole it.
    Stolen,
    /// The connection dropped (the server released the lock); the lock is
    /// requested again on the new connection.
    Lost,
}

/// A lock requested with `lock` or `steal`.
#[derive(Debug)]
pub struct Lock {
    pub name: String,
    /// Whether the lock was held when the reply came.
    pub locked: bool,
    events: mpsc::UnboundedReceiver<LockEvent>,
}

impl Lock {
    pub async fn next(&mut self) -> Option<LockEvent> {
        self.events.recv().await
    }

    /// Waits until the lock is held (returns at once if it already is).
    pub async fn wait_locked(&mut self) -> Result<(), Error> {
        while !self.locked {
            match self.events.recv().await {
                Some(LockEvent::Locked) => self.locked = true,
                Some(_) => {}
                None => return Err(Error::Disconnected),
            }
        }
        Ok(())
    }
}

/// Counters of one client's connection life, for operators and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections that became usable (1 after `connect`; more after reconnects).
    pub sessions: u64,
    /// Server `echo` requests answered.
    pub echoes_answered: u64,
    /// Our own idle probes sent.
    pub probes_sent: u64,
    /// Monitors re-established after a reconnect with only the changes
    /// they missed (`monitor_cond_since` found their last transaction).
    pub resumed: u64,
    /// Monitors re-established with a full snapshot.
    pub resent: u64,
    /// Bytes of the messages received from servers, over every connection.
    pub bytes_received: u64,
}

#[derive(Debug, Default)]
struct Counters {
    sessions: AtomicU64,
    echoes_answered: AtomicU64,
    probes_sent: AtomicU64,
    resumed: AtomicU64,
    resent: AtomicU64,
    bytes_received: AtomicU64,
}

/// A reply's `result`, still as text: the caller parses it into what it
/// needs (a monitor's snapshot straight into rows).
type Reply = oneshot::Sender<Result<Json, Error>>;

enum Command {
    Request {
        method: String,
        params: Value,
        reply: Reply,
    },
    Monitor {
        id: String,
        db: String,
        kind: MonitorKind,
        requests: Value,
        events: mpsc::UnboundedSender<MonitorEvent>,
        reply: Reply,
    },
    MonitorCancel {
        id: String,
        reply: Reply,
    },
    Lock {
        steal: bool,
        name: String,
        events: mpsc::UnboundedSender<LockEvent>,
        reply: Reply,
    },
    Unlock {
        name: String,
        reply: Reply,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Status {
    Connecting {
        last_error: Option<String>,
    },
    Connected(Remote),
    /// `fail_fast`: every remote refused the first try.
    GaveUp {
        last_error: String,
    },
}

struct Inner {
    /// Each command with the time it was made (queued ones expire from it).
    cmd: mpsc::UnboundedSender<(Instant, Command)>,
    status: watch::Receiver<Status>,
    schemas: Mutex<HashMap<String, Arc<DatabaseSchema>>>,
    next_monitor: AtomicU64,
    opts: ConnectOptions,
    counters: Arc<Counters>,
}

/// A handle to one OVSDB connection; clone it freely. The connection closes
/// when the last handle (and the last [`Monitor`]) is dropped.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("status", &*self.inner.status.borrow()).finish()
    }
}

impl Client {
    /// Connects to the first usable remote of a comma-separated list and
    /// returns once connected (or fails after `opts.timeout`, naming the
    /// last error). Must be called inside a tokio runtime.
    pub async fn connect(remotes: &str, opts: &ConnectOptions) -> Result<Client, Error> {
        let list = Remote::parse(remotes)?;
        let tls = if list.iter().any(|r| matches!(r, Remote::Ssl { .. })) {
            let need = |p: &Option<PathBuf>, what: &str| {
                p.clone().ok_or_else(|| Error::Tls(format!("ssl: remote needs a {what} (PEM file)")))
            };
            Some(super::tls::client_config(
                &need(&opts.private_key, "private key")?,
                &need(&opts.certificate, "certificate")?,
                &need(&opts.ca_cert, "CA certificate")?,
            )?)
        } else {
            None
        };
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let counters = Arc::new(Counters::default());
        let (status_tx, mut status_rx) = watch::channel(Status::Connecting { last_error: None });
        let task = Task {
            remotes: list,
            opts: opts.clone(),
            tls,
            cmd_rx,
            status: status_tx,
            monitors: HashMap::new(),
            locks: HashMap::new(),
            queued: Vec::new(),
            next_id: 1,
            current: 0,
            counters: counters.clone(),
        };
        let handle = tokio::spawn(task.run());
        let connected = tokio::time::timeout(
            opts.timeout,
            status_rx.wait_for(|s| matches!(s, Status::Connected(_) | Status::GaveUp { .. })),
        )
        .await
        .is_ok_and(|r| r.is_ok_and(|s| matches!(*s, Status::Connected(_))));
        match connected {
            true => {}
            false => {
                handle.abort();
                let why = match &*status_rx.borrow() {
                    Status::Connecting { last_error: Some(e) } | Status::GaveUp { last_error: e } => {
                        // With one remote, the error need not name it twice.
                        e.strip_prefix(&format!("{remotes}: ")).unwrap_or(e).to_owned()
                    }
                    _ => format!("no usable connection within {:?}", opts.timeout),
                };
                return Err(Error::Connect { remote: remotes.to_owned(), source: io::Error::other(why) });
            }
        }
        Ok(Client {
            inner: Arc::new(Inner {
                cmd: cmd_tx,
                status: status_rx,
                schemas: Mutex::new(HashMap::new()),
                next_monitor: AtomicU64::new(1),
                opts: opts.clone(),
                counters,
            }),
        })
    }

    /// Connection counters.
    pub fn stats(&self) -> Stats {
        let c = &self.inner.counters;
        Stats {
            sessions: c.sessions.load(Ordering::Relaxed),
            echoes_answered: c.echoes_answered.load(Ordering::Relaxed),
            probes_sent: c.probes_sent.load(Ordering::Relaxed),
            resumed: c.resumed.load(Ordering::Relaxed),
            resent: c.resent.load(Ordering::Relaxed),
            bytes_received: c.bytes_received.load(Ordering::Relaxed),
        }
    }

    /// The remote currently connected, if any.
    pub fn connected_remote(&self) -> Option<Remote> {
        match &*self.inner.status.borrow() {
            Status::Connected(r) => Some(r.clone()),
            Status::Connecting { .. } | Status::GaveUp { .. } => None,
        }
    }

    /// Waits until a connection is up again (after a reconnect), or times out.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<Remote, Error> {
        let mut rx = self.inner.status.clone();
        match tokio::time::timeout(timeout, rx.wait_for(|s| matches!(s, Status::Connected(_)))).await {
            Ok(Ok(s)) => match &*s {
                Status::Connected(r) => Ok(r.clone()),
                Status::Connecting { .. } | Status::GaveUp { .. } => Err(Error::Disconnected),
            },
            Ok(Err(_)) => Err(Error::Disconnected),
            Err(_) => Err(Error::Timeout),
        }
    }

    async fn call(&self, make: impl FnOnce(Reply) -> Command) -> Result<Json, Error> {
        let (tx, rx) = oneshot::channel();
        self.inner.cmd.send((Instant::now(), make(tx))).map_err(|_| Error::Disconnected)?;
        let reply = async { rx.await.map_err(|_| Error::Disconnected)? };
        match self.inner.opts.request_timeout {
            Some(t) => tokio::time::timeout(t, reply).await.map_err(|_| Error::Timeout)?,
            None => reply.await,
        }
    }

    /// Sends any request and returns its `result`.
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, Error> {
        let r = self.call(|reply| Command::Request { method: method.to_owned(), params, reply }).await?;
        r.to_value().map_err(|e| Error::Protocol(format!("{method} reply: {e}")))
    }

    /// `list_dbs`.
    pub async fn list_dbs(&self) -> Result<Vec<String>, Error> {
        let v = self.request("list_dbs", json!([])).await?;
        serde_json::from_value(v).map_err(|e| Error::Protocol(format!("list_dbs reply: {e}")))
    }

    /// `get_schema`, cached per database for the life of the client.
    pub async fn get_schema(&self, db: &str) -> Result<Arc<DatabaseSchema>, Error> {
        if let Some(s) = self.lock_schemas().get(db) {
            return Ok(s.clone());
        }
        let v = self.request("get_schema", json!([db])).await?;
        let s = Arc::new(DatabaseSchema::from_json(&v).map_err(|e| Error::Protocol(format!("get_schema reply: {e}")))?);
        self.lock_schemas().insert(db.to_owned(), s.clone());
        Ok(s)
    }

    fn lock_schemas(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<DatabaseSchema>>> {
        // A poisoned map of Arcs is still consistent.
        self.inner.schemas.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `transact`: checks the operations against the schema first (nothing is
    /// sent if one does not fit), then returns one result per operation, or
    /// [`Error::Transaction`] naming the operation the server refused.
    pub async fn transact(&self, db: &str, mut ops: Vec<Operation>) -> Result<Vec<OpResult>, Error> {
        let schema = self.get_schema(db).await?;
        schema.check_operations(&ops)?;
        schema.normalize_operations(&mut ops);
        self.transact_unchecked(db, ops).await
    }

    /// `transact` without the schema check: the server judges.
    pub async fn transact_unchecked(&self, db: &str, ops: Vec<Operation>) -> Result<Vec<OpResult>, Error> {
        let mut params = vec![Value::from(db)];
        params.extend(ops.iter().map(Operation::to_json));
        let v = self.request("transact", Value::Array(params)).await?;
        parse_transact_reply(&ops, &v)
    }

    /// `monitor` (RFC 7047 4.1.5): changes arrive as `update` (old/new rows).
    pub async fn monitor(&self, db: &str, requests: &[(&str, MonitorRequest)]) -> Result<Monitor, Error> {
        self.start_monitor(db, requests, MonitorKind::Plain).await
    }

    /// `monitor_cond`: changes arrive as `update2` (initial/insert/delete/modify).
    pub async fn monitor_cond(&self, db: &str, requests: &[(&str, MonitorRequest)]) -> Result<Monitor, Error> {
        self.start_monitor(db, requests, MonitorKind::Cond).await
    }

    /// `monitor_cond_since` (an OVSDB extension, `ovsdb-server(7)`): a
    /// `monitor_cond` whose changes (`update3`) carry the id of their
    /// transaction. After a reconnect, to this member or another of the
    /// cluster, the monitor is re-established from the last id seen: a
    /// server that still has that transaction in its history sends only
    /// what was missed, as a [`MonitorEvent::Update`]; otherwise a full
    /// snapshot comes, as a [`MonitorEvent::Resync`]. [`Stats`] counts both.
    pub async fn monitor_cond_since(&self, db: &str, requests: &[(&str, MonitorRequest)]) -> Result<Monitor, Error> {
        self.start_monitor(db, requests, MonitorKind::CondSince).await
    }

    async fn start_monitor(
        &self,
        db: &str,
        requests: &[(&str, MonitorRequest)],
        kind: MonitorKind,
    ) -> Result<Monitor, Error> {
        let cond = kind != MonitorKind::Plain;
        let id = format!("m{}", self.inner.next_monitor.fetch_add(1, Ordering::Relaxed));
        let reqs: serde_json::Map<String, Value> =
            requests.iter().map(|(t, r)| ((*t).to_owned(), r.to_json(cond))).collect();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let v = self
            .call(|reply| Command::Monitor {
                id: id.clone(),
                db: db.to_owned(),
                kind,
                requests: Value::Object(reqs),
                events: ev_tx,
                reply,
            })
            .await?;
        // The snapshot (megabytes for a big bridge) goes straight into rows.
        let initial = match kind {
            MonitorKind::CondSince => parse_updates(&since_reply(&v).map_err(Error::Protocol)?.2, cond)?,
            _ => parse_updates(&v, cond)?,
        };
        Ok(Monitor { id, db: db.to_owned(), initial, cond, events: ev_rx, client: self.clone() })
    }

    /// `monitor_cancel`.
    pub async fn monitor_cancel(&self, id: &str) -> Result<(), Error> {
        self.call(|reply| Command::MonitorCancel { id: id.to_owned(), reply }).await.map(drop)
    }

    /// `lock`: the reply says whether we hold it now; if not, a
    /// [`LockEvent::Locked`] comes when we do.
    pub async fn lock(&self, name: &str) -> Result<Lock, Error> {
        self.lock_or_steal(name, false).await
    }

    /// `steal`: takes the lock from its holder (who gets `stolen`).
    pub async fn steal(&self, name: &str) -> Result<Lock, Error> {
        self.lock_or_steal(name, true).await
    }

    async fn lock_or_steal(&self, name: &str, steal: bool) -> Result<Lock, Error> {
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let r = self.call(|reply| Command::Lock { steal, name: name.to_owned(), events: ev_tx, reply }).await?;
        let v = r.to_value().map_err(|e| Error::Protocol(format!("lock reply: {e}")))?;
        let locked = v
            .get("locked")
            .and_then(Value::as_bool)
            .ok_or_else(|| Error::Protocol(format!("lock reply without \"locked\": {v}")))?;
        Ok(Lock { name: name.to_owned(), locked, events: ev_rx })
    }

    /// `unlock`.
    pub async fn unlock(&self, name: &str) -> Result<(), Error> {
        self.call(|reply| Command::Unlock { name: name.to_owned(), reply }).await.map(drop)
    }

    /// `echo`: the server returns `params` unchanged.
    pub async fn echo(&self, params: Value) -> Result<Value, Error> {
        self.request("echo", params).await
    }
}

/// A monitor reply's or notification's table updates, parsed from their
/// text straight into rows (never a `Value` tree).
fn parse_updates(j: &Json, cond: bool) -> Result<TableUpdates, Error> {
    let r = match cond {
        true => TableUpdates::from_update2_slice(j.as_bytes()),
        false => TableUpdates::from_update_slice(j.as_bytes()),
    };
    r.map_err(|e| Error::Protocol(format!("monitor update: {}", e.0)))
}

/// The monitor id, the transaction id (`update3` only) and the table
/// updates of an `update`/`update2` notification (`[id, updates]`) or an
/// `update3` (`[id, last-txn-id, updates]`), the updates still as text.
fn monitor_notification(method: &str, params: &Json) -> Result<(Value, Option<String>, Json), String> {
    let bad = || format!("{method} notification without monitor id and updates");
    let mut parts = params.elements().ok_or_else(bad)?;
    let want = if method == "update3" { 3 } else { 2 };
    if parts.len() != want {
        return Err(bad());
    }
    let updates = parts.pop().ok_or_else(bad)?;
    let id = parts[0].to_value().map_err(|e| e.to_string())?;
    let txn = match want {
        3 => parts[1].to_value().map_err(|e| e.to_string())?.as_str().map(str::to_owned),
        _ => None,
    };
    Ok((id, txn, updates))
}

/// A `monitor_cond_since` reply, `[found, last-txn-id, updates]`: whether
/// the server resumed from the id asked for, the id to resume from next
/// time, and the updates, still as text.
fn since_reply(j: &Json) -> Result<(bool, Option<String>, Json), String> {
    let bad = || "monitor_cond_since reply is not [found, last-txn-id, updates]".to_owned();
    let mut parts = j.elements().ok_or_else(bad)?;
    if parts.len() != 3 {
        return Err(bad());
    }
    let updates = parts.pop().ok_or_else(bad)?;
    let last = parts[1].to_value().map_err(|e| e.to_string())?;
    let found = parts[0].to_value().map_err(|e| e.to_string())?.as_bool().ok_or_else(bad)?;
    Ok((found, last.as_str().map(str::to_owned), updates))
}

/// Turns a `transact` result array into per-operation results, or the first
/// error (an extra trailing error is a commit-time failure).
fn parse_transact_reply(ops: &[Operation], v: &Value) -> Result<Vec<OpResult>, Error> {
    let results = v.as_array().ok_or_else(|| Error::Protocol(format!("transact reply is not an array: {v}")))?;
    let mut out = Vec::with_capacity(ops.len());
    for (index, r) in results.iter().enumerate() {
        let outcome = OpOutcome::from_json(r).map_err(|e| Error::Protocol(e.0))?;
        let op = ops.get(index).map_or("commit", Operation::op_name).to_owned();
        match outcome {
            OpOutcome::Error { error, details } => return Err(Error::Transaction { index, op, error, details }),
            OpOutcome::Ok(res) if index < ops.len() => out.push(res),
            OpOutcome::Ok(_) | OpOutcome::NotExecuted => {}
        }
    }
    if out.len() != ops.len() {
        return Err(Error::Protocol(format!("transact reply has {} results for {} operations", out.len(), ops.len())));
    }
    Ok(out)
}

/// A random time from zero up to `max` (a reconnect's spread; not for
/// anything secret).
fn jitter(max: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    if max.is_zero() {
        return max;
    }
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    max.mul_f64((h.finish() % 1_000_001) as f64 / 1_000_000.0)
}

// ---------------------------------------------------------------------------
// The connection task.

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Conn = Framed<Box<dyn Io>, JsonCodec>;

/// Which monitor method a monitor uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MonitorKind {
    /// `monitor`: `update` notifications.
    Plain,
    /// `monitor_cond`: `update2`.
    Cond,
    /// `monitor_cond_since`: `update3`, and a resumption after a reconnect.
    CondSince,
}

impl MonitorKind {
    fn method(self) -> &'static str {
        match self {
            MonitorKind::Plain => "monitor",
            MonitorKind::Cond => "monitor_cond",
            MonitorKind::CondSince => "monitor_cond_since",
        }
    }
}

/// `monitor_cond_since`'s last-txn-id when there is none: "send all".
const NO_TXN: &str = "00000000-0000-0000-0000-000000000000";

impl MonitorReg {
    /// The monitor request's params: `monitor_cond_since` resumes from the
    /// last transaction seen (none: "send all").
    fn params(&self, id: &str) -> Value {
        match self.kind {
            MonitorKind::CondSince => json!([self.db, id, self.requests, self.last_txn.as_deref().unwrap_or(NO_TXN)]),
            _ => json!([self.db, id, self.requests]),
        }
    }
}

struct MonitorReg {
    db: String,
    kind: MonitorKind,
    /// `monitor_cond_since`: the last transaction seen, to resume from.
    last_txn: Option<String>,
    requests: Value,
    events: mpsc::UnboundedSender<MonitorEvent>,
    /// The caller's reply, until the first snapshot arrives.
    reply: Option<Reply>,
}

enum Pending {
    Caller(Reply),
    MonitorStart(String),
    ServerMonitor,
    Relock(String),
}

/// Id of the internal `_Server` monitor; callers' ids start with "m".
const SERVER_MONITOR: &str = "_server";
/// Id of our own echo probes (replies carry it back).
const PROBE_ID: &str = "probe";

/// Why a session ended.
enum End {
    /// Every handle is gone: stop.
    Closed,
    /// Try the next remote; `ready` says whether the session was usable.
    Failed { error: String, ready: bool },
}

/// One `_Server.Database` row, the columns that decide.
#[derive(Debug, Default, Clone)]
struct DbStatus {
    name: String,
    model: String,
    connected: bool,
    leader: bool,
}

struct Task {
    remotes: Vec<Remote>,
    opts: ConnectOptions,
    tls: Option<Arc<rustls::ClientConfig>>,
    cmd_rx: mpsc::UnboundedReceiver<(Instant, Command)>,
    status: watch::Sender<Status>,
    monitors: HashMap<String, MonitorReg>,
    locks: HashMap<String, mpsc::UnboundedSender<LockEvent>>,
    /// Requests (and monitor starts) made while no connection was usable,
    /// with when they were made; sent in order once one is.
    queued: Vec<(Instant, Command)>,
    next_id: u64,
    current: usize,
    counters: Arc<Counters>,
}

impl Task {
    async fn run(mut self) {
        let mut backoff = self.opts.reconnect.initial;
        let mut failures_before_first = 0usize;
        // Failures since the last usable session or the last wait: the
        // backoff applies once every remote has failed in turn, so a dead
        // member is followed at once by the next one (during a fail-over
        // the survivors are tried every round, not every third backoff).
        let mut failures_in_round = 0usize;
        let mut ever_ready = false;
        loop {
            let remote = self.remotes[self.current % self.remotes.len()].clone();
            match self.session(&remote).await {
                End::Closed => return,
                End::Failed { error, ready } => {
                    tracing::debug!(%remote, %error, "ovsdb connection ended");
                    self.status.send_replace(Status::Connecting { last_error: Some(format!("{remote}: {error}")) });
                    for tx in self.locks.values() {
                        if ready {
                            let _ = tx.send(LockEvent::Lost);
                        }
                    }
                    if ready {
                        backoff = self.opts.reconnect.initial;
                        ever_ready = true;
                        failures_in_round = 0;
                        // Every client of a member that went away notices
                        // at once; spread their reconnects.
                        if !self.wait_offline(jitter(self.opts.reconnect_jitter)).await {
                            return;
                        }
                    }
                    if !ever_ready {
                        failures_before_first += 1;
                        if self.opts.fail_fast && failures_before_first >= self.remotes.len() {
                            self.status.send_replace(Status::GaveUp { last_error: format!("{remote}: {error}") });
                            return;
                        }
                    }
                    self.current = (self.current + 1) % self.remotes.len();
                    failures_in_round += 1;
                    if failures_in_round < self.remotes.len() {
                        continue;
                    }
                    failures_in_round = 0;
                    if !self.wait_offline(backoff).await {
                        return;
                    }
                    backoff = (backoff * 2).min(self.opts.reconnect.max);
                }
            }
        }
    }

    /// Sleeps `delay` while accepting commands; false when every handle is gone.
    async fn wait_offline(&mut self, delay: Duration) -> bool {
        let deadline = tokio::time::sleep(delay);
        tokio::pin!(deadline);
        loop {
            let expiry = self.next_expiry();
            tokio::select! {
                _ = &mut deadline => return true,
                cmd = self.cmd_rx.recv() => match cmd {
                    Some((at, c)) => self.accept_offline(at, c),
                    None => return false,
                },
                _ = sleep_until_some(expiry) => self.expire_queued(),
            }
        }
    }

    /// When the oldest queued request times out.
    fn next_expiry(&self) -> Option<Instant> {
        self.queued.iter().map(|(at, _)| *at + self.opts.timeout).min()
    }

    /// Fails queued requests made longer than the connect timeout ago: no
    /// connection was usable all that time, and none was sent.
    fn expire_queued(&mut self) {
        let timeout = self.opts.timeout;
        let (old, keep): (Vec<_>, Vec<_>) = self.queued.drain(..).partition(|(t, _)| t.elapsed() >= timeout);
        self.queued = keep;
        for (_, cmd) in old {
            match cmd {
                Command::Request { reply, .. } | Command::Lock { reply, .. } | Command::Monitor { reply, .. } => {
                    let _ = reply.send(Err(Error::Timeout));
                }
                Command::MonitorCancel { reply, .. } | Command::Unlock { reply, .. } => {
                    let _ = reply.send(Ok(Json::from(json!({}))));
                }
            }
        }
        // Monitors whose first snapshot never came within the timeout fail too.
        let stale: Vec<String> = self
            .monitors
            .iter()
            .filter(|(_, m)| m.reply.as_ref().is_some_and(|r| r.is_closed()))
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            self.monitors.remove(&id);
        }
    }

    /// A command while no connection is usable.
    fn accept_offline(&mut self, at: Instant, cmd: Command) {
        match cmd {
            // Nothing on the server to cancel or release.
            Command::MonitorCancel { id, reply } => {
                self.monitors.remove(&id);
                let _ = reply.send(Ok(Json::from(json!({}))));
            }
            Command::Unlock { name, reply } => {
                self.locks.remove(&name);
                let _ = reply.send(Ok(Json::from(json!({}))));
            }
            // Monitor starts too: registered when sent, so a start that
            // times out here leaves nothing behind.
            c => self.queued.push((at, c)),
        }
    }

    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Opens a connection (bounded by the connect timeout) while still
    /// taking commands and expiring queued ones. `None`: every handle is gone.
    async fn connect_io(&mut self, remote: &Remote) -> Option<io::Result<Box<dyn Io>>> {
        let open = tokio::time::timeout(self.opts.timeout, open(remote.clone(), self.tls.clone()));
        tokio::pin!(open);
        loop {
            let expiry = self.next_expiry();
            tokio::select! {
                r = &mut open => {
                    let timed_out = || Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"));
                    return Some(r.unwrap_or_else(|_| timed_out()));
                }
                cmd = self.cmd_rx.recv() => match cmd {
                    Some((at, c)) => self.accept_offline(at, c),
                    None => return None,
                },
                _ = sleep_until_some(expiry) => self.expire_queued(),
            }
        }
    }
}

/// Sleeps until `at`, or forever.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn open(remote: Remote, tls: Option<Arc<rustls::ClientConfig>>) -> io::Result<Box<dyn Io>> {
    match &remote {
        Remote::Unix(path) => Ok(Box::new(UnixStream::connect(path).await?)),
        Remote::Tcp { host, port } => {
            let s = TcpStream::connect((host.as_str(), *port)).await?;
            s.set_nodelay(true)?;
            Ok(Box::new(s))
        }
        Remote::Ssl { host, port } => {
            let config = tls.ok_or_else(|| io::Error::other("no TLS configuration"))?;
            let s = TcpStream::connect((host.as_str(), *port)).await?;
            s.set_nodelay(true)?;
            let name = match host.parse::<std::net::IpAddr>() {
                Ok(ip) => rustls::pki_types::ServerName::IpAddress(ip.into()),
                Err(_) => rustls::pki_types::ServerName::try_from(host.clone())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?,
            };
            let tls = tokio_rustls::TlsConnector::from(config).connect(name, s).await?;
            Ok(Box::new(tls))
        }
    }
}

impl Task {
    /// One connection, from connect to loss.
    async fn session(&mut self, remote: &Remote) -> End {
        let io = match self.connect_io(remote).await {
            None => return End::Closed,
            Some(Ok(io)) => io,
            Some(Err(e)) => return End::Failed { error: e.to_string(), ready: false },
        };
        let mut conn: Conn = Framed::new(io, JsonCodec::new(self.opts.max_message));
        let mut s = Session { pending: HashMap::new(), ready: false, servers: BTreeMap::new() };
        let end = self.serve(remote, &mut conn, &mut s).await;
        // Everything still in flight fails: it may or may not have happened.
        for (_, p) in s.pending.drain() {
            match p {
                Pending::Caller(reply) => {
                    let _ = reply.send(Err(Error::Disconnected));
                }
                // A monitor whose caller still waits for its first reply
                // fails like any request in flight (it is not re-issued: its
                // caller must not wait on a connection that may never come).
                // One already running is re-issued on the next connection.
                Pending::MonitorStart(mid) => {
                    if let Some(reply) = self.monitors.get_mut(&mid).and_then(|m| m.reply.take()) {
                        self.monitors.remove(&mid);
                        let _ = reply.send(Err(Error::Disconnected));
                    }
                }
                Pending::ServerMonitor | Pending::Relock(_) => {}
            }
        }
        end
    }

    async fn serve(&mut self, remote: &Remote, conn: &mut Conn, s: &mut Session) -> End {
        let fail = |error: String, s: &Session| End::Failed { error, ready: s.ready };
        // Before the connection counts as usable: monitor `_Server` to learn
        // whether this member can serve us. This is also a first round trip:
        // with TLS 1.3 the handshake completes on our side before the server
        // has judged our certificate, and a refusal only shows up as a close.
        let id = self.take_id();
        s.pending.insert(id, Pending::ServerMonitor);
        let params =
            json!(["_Server", SERVER_MONITOR, {"Database": {"columns": ["name", "model", "connected", "leader"]}}]);
        if let Err(e) = conn.send(Message::request(id, "monitor_cond", params)).await {
            return fail(e.to_string(), s);
        }
        let probe = self.opts.probe_interval.filter(|_| remote.is_inet());
        let mut tick = tokio::time::interval(probe.unwrap_or(Duration::from_secs(3600)) / 2);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_rx = Instant::now();
        let mut probe_sent: Option<Instant> = None;
        let mut counted = conn.codec().decoded_bytes();
        // A server that accepts but never answers the `_Server` monitor.
        let not_ready_by = tokio::time::sleep(self.opts.timeout);
        tokio::pin!(not_ready_by);
        loop {
            // Only while the session is not usable yet are requests queued.
            let expiry = if s.ready { None } else { self.next_expiry() };
            tokio::select! {
                _ = sleep_until_some(expiry), if expiry.is_some() => self.expire_queued(),
                _ = &mut not_ready_by, if !s.ready => {
                    return fail(format!("no answer to the first request within {:?}", self.opts.timeout), s);
                }
                msg = conn.next() => {
                    let msg = match msg {
                        None => return fail("connection closed by the server".into(), s),
                        Some(Err(FramingError::Io(e))) => return fail(e.to_string(), s),
                        Some(Err(e)) => return fail(format!("protocol error: {e}"), s),
                        Some(Ok(m)) => m,
                    };
                    last_rx = Instant::now();
                    probe_sent = None;
                    let total = conn.codec().decoded_bytes();
                    self.counters.bytes_received.fetch_add(total - counted, Ordering::Relaxed);
                    counted = total;
                    if let Err(e) = self.handle(remote, conn, s, msg).await {
                        return fail(e, s);
                    }
                }
                cmd = self.cmd_rx.recv() => match cmd {
                    None => return End::Closed,
                    Some((_, c)) if s.ready => {
                        if let Err(e) = self.send_command(conn, s, c).await {
                            return fail(e, s);
                        }
                    }
                    Some((at, c)) => self.accept_offline(at, c),
                },
                _ = tick.tick(), if probe.is_some() => {
                    let interval = probe.unwrap_or_default();
                    if let Some(sent) = probe_sent {
                        if sent.elapsed() >= interval {
                            return fail(format!("no reply to echo probe within {interval:?}"), s);
                        }
                    } else if last_rx.elapsed() >= interval {
                        probe_sent = Some(Instant::now());
                        self.counters.probes_sent.fetch_add(1, Ordering::Relaxed);
                        if let Err(e) = conn.send(Message::request(PROBE_ID, "echo", json!([]))).await {
                            return fail(e.to_string(), s);
                        }
                    }
                }
            }
        }
    }

    /// The connection is usable: re-issue monitors and locks, send queued requests.
    async fn become_ready(&mut self, remote: &Remote, conn: &mut Conn, s: &mut Session) -> Result<(), String> {
        s.ready = true;
        self.counters.sessions.fetch_add(1, Ordering::Relaxed);
        self.status.send_replace(Status::Connected(remote.clone()));
        let monitors: Vec<(String, &'static str, Value)> =
            self.monitors.iter().map(|(id, m)| (id.clone(), m.kind.method(), m.params(id))).collect();
        for (id, method, params) in monitors {
            let rid = self.take_id();
            s.pending.insert(rid, Pending::MonitorStart(id));
            conn.send(Message::request(rid, method, params)).await.map_err(|e| e.to_string())?;
        }
        let locks: Vec<String> = self.locks.keys().cloned().collect();
        for name in locks {
            let rid = self.take_id();
            s.pending.insert(rid, Pending::Relock(name.clone()));
            conn.send(Message::request(rid, "lock", json!([name]))).await.map_err(|e| e.to_string())?;
        }
        self.expire_queued();
        for (_, c) in std::mem::take(&mut self.queued) {
            self.send_command(conn, s, c).await?;
        }
        Ok(())
    }

    async fn send_command(&mut self, conn: &mut Conn, s: &mut Session, cmd: Command) -> Result<(), String> {
        let id = self.take_id();
        let msg = match cmd {
            Command::Request { method, params, reply } => {
                s.pending.insert(id, Pending::Caller(reply));
                Message::request(id, &method, params)
            }
            Command::Monitor { id: mid, db, kind, requests, events, reply } => {
                let reg = MonitorReg { db, kind, last_txn: None, requests, events, reply: Some(reply) };
                let params = reg.params(&mid);
                self.monitors.insert(mid.clone(), reg);
                s.pending.insert(id, Pending::MonitorStart(mid));
                Message::request(id, kind.method(), params)
            }
            Command::MonitorCancel { id: mid, reply } => {
                self.monitors.remove(&mid);
                s.pending.insert(id, Pending::Caller(reply));
                Message::request(id, "monitor_cancel", json!([mid]))
            }
            Command::Lock { steal, name, events, reply } => {
                self.locks.insert(name.clone(), events);
                s.pending.insert(id, Pending::Caller(reply));
                Message::request(id, if steal { "steal" } else { "lock" }, json!([name]))
            }
            Command::Unlock { name, reply } => {
                self.locks.remove(&name);
                s.pending.insert(id, Pending::Caller(reply));
                Message::request(id, "unlock", json!([name]))
            }
        };
        conn.send(msg).await.map_err(|e| e.to_string())
    }

    async fn handle(&mut self, remote: &Remote, conn: &mut Conn, s: &mut Session, msg: Message) -> Result<(), String> {
        match msg {
            Message::Request { id, method, params } if method == "echo" => {
                self.counters.echoes_answered.fetch_add(1, Ordering::Relaxed);
                conn.send(Message::Response { id, result: params }).await.map_err(|e| e.to_string())
            }
            Message::Request { id, method, .. } => {
                let error = json!({"error": "unknown method", "details": method});
                conn.send(Message::Error { id, error }).await.map_err(|e| e.to_string())
            }
            Message::Notification { method, params } => self.notification(remote, conn, s, &method, &params).await,
            Message::Response { id, result } => self.reply(remote, conn, s, &id, Ok(result)).await,
            Message::Error { id, error } => self.reply(remote, conn, s, &id, Err(error)).await,
        }
    }

    async fn notification(
        &mut self,
        remote: &Remote,
        conn: &mut Conn,
        s: &mut Session,
        method: &str,
        params: &Json,
    ) -> Result<(), String> {
        match method {
            "update" | "update2" | "update3" => {
                let (mid, txn, updates) = monitor_notification(method, params)?;
                if mid.as_str() == Some(SERVER_MONITOR) {
                    s.apply_server_updates(&updates.to_value().map_err(|e| e.to_string())?);
                    return self.check_server(remote, conn, s).await;
                }
                let Some(m) = mid.as_str().and_then(|m| self.monitors.get_mut(m)) else {
                    // A cancelled monitor's last update may still be in flight.
                    return Ok(());
                };
                if txn.is_some() {
                    m.last_txn = txn;
                }
                let parsed = parse_updates(&updates, method != "update").map_err(|e| e.to_string())?;
                let _ = m.events.send(MonitorEvent::Update(parsed));
                Ok(())
            }
            "locked" | "stolen" => {
                let params = params.to_value().unwrap_or_default();
                let name = params.get(0).and_then(Value::as_str).unwrap_or_default();
                if let Some(tx) = self.locks.get(name) {
                    let _ = tx.send(if method == "locked" { LockEvent::Locked } else { LockEvent::Stolen });
                }
                Ok(())
            }
            other => {
                tracing::debug!(method = other, "ignoring unknown notification");
                Ok(())
            }
        }
    }

    async fn reply(
        &mut self,
        remote: &Remote,
        conn: &mut Conn,
        s: &mut Session,
        id: &Value,
        result: Result<Json, Value>,
    ) -> Result<(), String> {
        let Some(p) = id.as_u64().and_then(|n| s.pending.remove(&n)) else {
            // Our probe's reply, or a reply to a request whose caller gave up.
            return Ok(());
        };
        match p {
            Pending::Caller(reply) => {
                let _ = reply.send(result.map_err(|e| Error::Rpc(describe_error(&e))));
            }
            Pending::MonitorStart(mid) => {
                let Some(m) = self.monitors.get_mut(&mid) else { return Ok(()) };
                match (m.reply.take(), result) {
                    (Some(reply), r) => {
                        if let (MonitorKind::CondSince, Ok(v)) = (m.kind, &r) {
                            m.last_txn = since_reply(v)?.1;
                        }
                        let failed = r.is_err();
                        let _ = reply.send(r.map_err(|e| Error::Rpc(describe_error(&e))));
                        if failed {
                            self.monitors.remove(&mid);
                        }
                    }
                    (None, Ok(v)) if m.kind == MonitorKind::CondSince => {
                        let (found, last, updates) = since_reply(&v)?;
                        m.last_txn = last;
                        let parsed = parse_updates(&updates, true).map_err(|e| e.to_string())?;
                        let (counter, event) = match found {
                            true => (&self.counters.resumed, MonitorEvent::Update(parsed)),
                            false => (&self.counters.resent, MonitorEvent::Resync(parsed)),
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                        let _ = m.events.send(event);
                    }
                    (None, Ok(v)) => {
                        let parsed = parse_updates(&v, m.kind != MonitorKind::Plain).map_err(|e| e.to_string())?;
                        self.counters.resent.fetch_add(1, Ordering::Relaxed);
                        let _ = m.events.send(MonitorEvent::Resync(parsed));
                    }
                    (None, Err(e)) => {
                        // Cannot re-establish (schema changed?): end the stream.
                        tracing::warn!(monitor = %mid, error = %describe_error(&e), "monitor not re-established");
                        self.monitors.remove(&mid);
                    }
                }
            }
            Pending::ServerMonitor => match result {
                Ok(j) => {
                    s.apply_server_updates(&j.to_value().map_err(|e| e.to_string())?);
                    return self.check_server(remote, conn, s).await;
                }
                // An old server without _Server: nothing to check.
                Err(_) if !s.ready => return self.become_ready(remote, conn, s).await,
                Err(_) => {}
            },
            Pending::Relock(name) => {
                if let (Ok(j), Some(tx)) = (result, self.locks.get(&name))
                    && j.to_value().ok().and_then(|v| v.get("locked").and_then(Value::as_bool)) == Some(true)
                {
                    let _ = tx.send(LockEvent::Locked);
                }
            }
        }
        Ok(())
    }

    /// Decides from `_Server.Database` whether this member can serve us.
    async fn check_server(&mut self, remote: &Remote, conn: &mut Conn, s: &mut Session) -> Result<(), String> {
        let relevant = s.servers.values().filter(|d| match &self.opts.database {
            Some(db) => &d.name == db,
            None => d.model == "clustered",
        });
        for d in relevant {
            if !d.connected {
                return Err(format!("database {} is not connected to its cluster", d.name));
            }
            // A relay is no cluster member: it forwards writes itself.
            if self.opts.leader_only && !d.leader && d.model != "relay" {
                return Err(format!("database {} on this member is not the cluster leader", d.name));
            }
        }
        if !s.ready {
            self.become_ready(remote, conn, s).await?;
        }
        Ok(())
    }
}

struct Session {
    pending: HashMap<u64, Pending>,
    ready: bool,
    servers: BTreeMap<String, DbStatus>,
}

impl Session {
    /// Applies `_Server.Database` update2s (columns are all single-valued).
    fn apply_server_updates(&mut self, v: &Value) {
        let Some(rows) = v.get("Database").and_then(Value::as_object) else { return };
        for (uuid, u) in rows {
            let Some((kind, row)) = u.as_object().and_then(|o| o.iter().next()) else { continue };
            if kind == "delete" {
                self.servers.remove(uuid);
                continue;
            }
            let entry = self.servers.entry(uuid.clone()).or_default();
            let get = |c: &str| row.get(c).and_then(|v| Datum::from_json(v).ok());
            if let Some(n) = get("name").as_ref().and_then(|d| d.as_str().map(str::to_owned)) {
                entry.name = n;
            }
            if let Some(m) = get("model").as_ref().and_then(|d| d.as_str().map(str::to_owned)) {
                entry.model = m;
            }
            if let Some(c) = get("connected").and_then(|d| d.as_bool()) {
                entry.connected = c;
            }
            if let Some(l) = get("leader").and_then(|d| d.as_bool()) {
                entry.leader = l;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ovsdb::notation::Row;

    #[test]
    fn a_monitor_cond_since_reply_gives_found_the_last_id_and_the_updates() {
        let j = Json::from(json!([true, "6c3b7d3e-1f0a-4f6e-9a57-3a1d1e6f0b55", {"Host": {}}]));
        let (found, last, updates) = since_reply(&j).unwrap();
        assert!(found);
        assert_eq!(last.as_deref(), Some("6c3b7d3e-1f0a-4f6e-9a57-3a1d1e6f0b55"));
        assert_eq!(updates.to_value().unwrap(), json!({"Host": {}}));
        for bad in [json!([true, "x"]), json!({"Host": {}}), json!(["yes", "x", {}]), json!(null)] {
            assert!(since_reply(&Json::from(bad.clone())).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_update3_carries_its_transaction_id_and_an_update2_none() {
        let p = Json::from(json!(["m1", "9d3b7d3e-1f0a-4f6e-9a57-3a1d1e6f0b55", {"Host": {}}]));
        let (id, txn, _) = monitor_notification("update3", &p).unwrap();
        assert_eq!((id, txn.as_deref()), (json!("m1"), Some("9d3b7d3e-1f0a-4f6e-9a57-3a1d1e6f0b55")));
        let (_, txn, _) = monitor_notification("update2", &Json::from(json!(["m1", {"Host": {}}]))).unwrap();
        assert_eq!(txn, None);
        assert!(monitor_notification("update3", &Json::from(json!(["m1", {"Host": {}}]))).is_err());
    }

    #[test]
    fn reconnect_jitter_stays_within_its_bound() {
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
        let waits: Vec<Duration> = (0..200).map(|_| jitter(Duration::from_secs(1))).collect();
        assert!(waits.iter().all(|w| *w <= Duration::from_secs(1)));
        // Spread, not one value for every client.
        let distinct: std::collections::BTreeSet<_> = waits.iter().collect();
        assert!(distinct.len() > 100, "{} distinct waits of 200", distinct.len());
    }

    #[test]
    fn transact_reply_names_the_failed_operation() {
        let ops = vec![Operation::comment("a"), Operation::insert("T", Row::new()), Operation::comment("b")];
        let v = json!([{}, {"error": "constraint violation", "details": "bad"}, null]);
        match parse_transact_reply(&ops, &v) {
            Err(Error::Transaction { index: 1, op, error, details }) => {
                assert_eq!(op, "insert");
                assert_eq!(error, crate::ovsdb::ErrorTag::ConstraintViolation);
                assert_eq!(details.as_deref(), Some("bad"));
            }
            other => panic!("{other:?}"),
        }
        // A trailing extra error is a commit failure.
        let v = json!([{}, {}, {}, {"error": "referential integrity violation"}]);
        match parse_transact_reply(&ops, &v) {
            Err(Error::Transaction { index: 3, op, .. }) => assert_eq!(op, "commit"),
            other => panic!("{other:?}"),
        }
        assert_eq!(parse_transact_reply(&ops, &json!([{}, {}, {}])).unwrap().len(), 3);
        assert!(matches!(parse_transact_reply(&ops, &json!([{}])), Err(Error::Protocol(_))));
    }
}
