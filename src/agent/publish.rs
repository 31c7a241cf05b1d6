//! Cluster mode: this host's endpoints in the cluster database. The
//! agent's loop hands [`Publisher::sync`] the local endpoints each time it
//! has looked at the bridge again; what to write is decided here
//! ([`EndpointBook`], pure) and written in the background, so the data
//! plane never waits for the cluster. The answers to probes of this host's
//! liveness are here too ([`Publisher::answer_probes`]).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use super::cluster::{self, EndpointKey};
use crate::cluster::{ClusterDb, ClusterError, ClusterState, EndpointSpec, HeldEndpoints, HostSpec, OwnRow};
use crate::ovsdb::Uuid;
use crate::pipeline::LocalEndpoint;

/// Attempts to remove the rows of endpoints whose port went (about 10
/// minutes with the backoff capped at 30 s).
const REMOVE_ATTEMPTS: u32 = 25;

/// What this host has published and seen, to decide what to write next.
#[derive(Debug, Default, Clone)]
pub struct EndpointBook {
    /// Endpoints this agent published whose row the cluster does not list
    /// yet (in flight, or refused): each is sent once. A row listed and
    /// later gone while its port is still here is published again.
    published: BTreeSet<(String, IpAddr)>,
    /// Endpoints whose port this agent saw on the bridge (last look): one
    /// that leaves this set had its port removed, so its row goes too.
    seen: BTreeSet<EndpointKey>,
    /// This host's rows with no port were removed once (at start).
    stale_removed: bool,
}

/// The cluster writes one look at the bridge calls for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Writes {
    pub publish: Vec<EndpointSpec>,
    /// Rows to remove, with the endpoint each is for.
    pub remove: Vec<(EndpointKey, Uuid)>,
}

impl Writes {
    pub fn is_empty(&self) -> bool {
        self.publish.is_empty() && self.remove.is_empty()
    }
}

impl EndpointBook {
    /// Publishes local endpoints the cluster lacks; removes this host's
    /// rows of endpoints it saw here whose port is gone now (detach, gc,
    /// deleted by hand), and once (the first look) this host's rows with
    /// no port that nobody `held` (the driver's in-flight endpoints, whose
    /// port comes at `Join`). `local` are the endpoints the flows are for,
    /// `present` the endpoints whose port exists (with an ofport or not yet).
    pub fn sync(
        &mut self,
        local: &[LocalEndpoint],
        present: BTreeSet<EndpointKey>,
        state: &ClusterState,
        host: &str,
        held: &HeldEndpoints,
    ) -> Writes {
        let sync = cluster::endpoint_sync(local, state, host);
        let mut remove = cluster::vanished_endpoints(&self.seen, &present, state, host);
        if !self.stale_removed {
            // A row whose port exists (with no ofport yet) is not stale.
            for k in sync.remove.into_iter().filter(|k| !present.contains(k) && !held.holds(&k.0, k.1)) {
                remove.extend(cluster::host_rows(state, host, &k).into_iter().map(|u| (k.clone(), u)));
            }
            self.stale_removed = true;
        }
        // Gone from here: published again if it comes back.
        for (k, _) in &remove {
            self.published.remove(k);
        }
        self.seen = present;
        self.published.retain(|(network, ip)| {
            !state.endpoints.iter().any(|e| {
                e.host == host && e.ip == *ip && state.network_by_uuid(e.network).is_some_and(|n| n.name == *network)
            })
        });
        let publish = sync.publish.into_iter().filter(|e| self.published.insert((e.network.clone(), e.ip))).collect();
        Writes { publish, remove }
    }
}

/// This host in the cluster database: its endpoints, and its answers to
/// probes of its liveness.
pub struct Publisher {
    db: ClusterDb,
    host: HostSpec,
    book: EndpointBook,
    held: HeldEndpoints,
    answering: Option<tokio::task::JoinHandle<()>>,
}

impl Publisher {
    pub fn new(db: ClusterDb, host: HostSpec, held: HeldEndpoints) -> Self {
        Publisher { db, host, book: EndpointBook::default(), held, answering: None }
    }

    /// One look at the bridge: starts the writes it calls for in the
    /// background (publishes, then removals retried while the database is
    /// away).
    pub fn sync(&mut self, local: &[LocalEndpoint], present: BTreeSet<EndpointKey>, state: &ClusterState) {
        let writes = self.book.sync(local, present, state, &self.host.name, &self.held);
        if writes.is_empty() {
            return;
        }
        tokio::spawn(write(self.db.clone(), self.host.name.clone(), writes));
    }

    /// Starts answering probes in the background, for as long as the
    /// publisher lives: follows this host's own Host row
    /// ([`ClusterDb::watch_probes`]), copies each new `probe` to
    /// `heartbeat`, and registers the host again if its row is removed
    /// while the agent runs. Nothing is written between probes, and no
    /// other host hears of them: liveness costs the cluster nothing until
    /// someone asks.
    pub async fn answer_probes(&mut self) -> Result<(), ClusterError> {
        let mut watch = self.db.watch_probes(&self.host.name).await?;
        let (db, spec) = (self.db.clone(), self.host.clone());
        self.answering = Some(tokio::spawn(async move {
            let mut row = watch.current();
            loop {
                match row {
                    OwnRow::Gone => match db.register_host(&spec).await {
                        // Removed (`ovsnet host del --force`) while this
                        // agent runs; the endpoints removed with it are
                        // published again by the reconcile their removal
                        // causes.
                        Ok(_) => tracing::info!("host {} was removed from the cluster; registered it again", spec.name),
                        Err(e) => tracing::warn!("register host again: {e}"),
                    },
                    r => {
                        if let Some(probe) = r.unanswered()
                            && let Err(e) = db.answer_probe(&spec.name, probe).await
                        {
                            tracing::warn!("answer a probe: {e}");
                        }
                    }
                }
                row = match watch.next().await {
                    None => return,
                    Some(Ok(r)) => r,
                    Some(Err(e)) => {
                        tracing::warn!("probe watch: {e}");
                        continue;
                    }
                };
            }
        }));
        Ok(())
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        if let Some(t) = self.answering.take() {
            t.abort();
        }
    }
}

async fn write(db: ClusterDb, host: String, writes: Writes) {
    for e in writes.publish {
        match db.publish_endpoint(&e).await {
            Ok(_) => tracing::info!(ip = %e.ip, network = e.network, "published endpoint"),
            // Held by this host already (written by whoever made the port,
            // the Docker driver or `attach --network`, before this look saw it).
            Err(ClusterError::IpInUse { host: h, .. }) if h == host => {
                tracing::debug!("{} in {}: this host's row is there already", e.ip, e.network)
            }
            Err(err) => tracing::warn!("publish {} in {}: {err}", e.ip, e.network),
        }
    }
    let remove = writes.remove;
    if remove.is_empty() {
        return;
    }
    let rows: Vec<_> = remove.iter().map(|(_, u)| *u).collect();
    let what: Vec<String> = remove.iter().map(|((n, ip), _)| format!("{ip} in {n}")).collect();
    // Removing by UUID is idempotent (a row published again is a new
    // row), so a failed attempt is retried while the database is away;
    // past that, the next start's cleanup removes them.
    let mut delay = Duration::from_secs(1);
    for attempt in 1..=REMOVE_ATTEMPTS {
        match db.remove_endpoint_rows(&host, &rows).await {
            Ok(n) => {
                tracing::info!(removed = n, "removed endpoints with no port here: {}", what.join(", "));
                return;
            }
            Err(err) => tracing::warn!("remove endpoints {} (attempt {attempt}): {err}", what.join(", ")),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::Ipv4Addr;

    use super::*;
    use crate::cluster::{Endpoint, Ipam, Network};
    use crate::net::IpNet;
    use crate::net::Mac;

    fn network(name: &str) -> Network {
        Network {
            uuid: Uuid::new_v4(),
            name: name.into(),
            vni: 100,
            cidr: IpNet::parse_network("10.0.0.0/8").unwrap(),
            ipam: Ipam::Static,
            mtu: None,
            block_prefix: None,
            underlay: None,
            gateway: None,
            internal: false,
            external_ids: BTreeMap::new(),
        }
    }

    fn row(state: &ClusterState, host: &str, ip: &str) -> Endpoint {
        let v4: Ipv4Addr = ip.parse().unwrap();
        Endpoint {
            uuid: Uuid::new_v4(),
            network: state.networks["net"].uuid,
            host: host.into(),
            ip: ip.parse().unwrap(),
            mac: Mac::from_ipv4(v4).to_string(),
            container: format!("c-{ip}"),
            interface: "eth1".into(),
            external_ids: BTreeMap::new(),
        }
    }

    fn local(ip: &str) -> LocalEndpoint {
        let ip: Ipv4Addr = ip.parse().unwrap();
        LocalEndpoint { id: format!("p-{ip}"), network: "net".into(), ofport: 3, ip, mac: Mac::from_ipv4(ip) }
    }

    fn key(ip: &str) -> EndpointKey {
        ("net".to_owned(), ip.parse().unwrap())
    }

    fn state() -> ClusterState {
        let mut s = ClusterState::default();
        s.networks.insert("net".into(), network("net"));
        s
    }

    fn published(w: &Writes) -> Vec<String> {
        w.publish.iter().map(|e| e.ip.to_string()).collect()
    }

    #[test]
    fn each_missing_endpoint_is_published_once_until_the_cluster_lists_it() {
        let mut s = state();
        let mut book = EndpointBook::default();
        let w = book.sync(&[local("10.0.0.2")], [key("10.0.0.2")].into(), &s, "h1", &HeldEndpoints::default());
        assert_eq!(published(&w), ["10.0.0.2"]);
        // In flight: not sent again.
        let w = book.sync(&[local("10.0.0.2")], [key("10.0.0.2")].into(), &s, "h1", &HeldEndpoints::default());
        assert!(w.is_empty(), "{w:?}");
        // Listed, then gone while the port is still here: sent again.
        let r = row(&s, "h1", "10.0.0.2");
        s.endpoints.push(r);
        assert!(
            book.sync(&[local("10.0.0.2")], [key("10.0.0.2")].into(), &s, "h1", &HeldEndpoints::default()).is_empty()
        );
        s.endpoints.clear();
        let w = book.sync(&[local("10.0.0.2")], [key("10.0.0.2")].into(), &s, "h1", &HeldEndpoints::default());
        assert_eq!(published(&w), ["10.0.0.2"]);
    }

    #[test]
    fn stale_rows_go_once_at_start_and_rows_of_ports_seen_go_when_the_port_does() {
        let mut s = state();
        let stale = row(&s, "h1", "10.0.0.7");
        let waiting = row(&s, "h1", "10.0.0.8");
        let other = row(&s, "h2", "10.0.0.9");
        let here = row(&s, "h1", "10.0.0.2");
        let in_flight = row(&s, "h1", "10.0.0.6");
        s.endpoints.extend([stale.clone(), waiting.clone(), other, here.clone(), in_flight]);
        let mut book = EndpointBook::default();
        // First look: 10.0.0.7 has no port (stale, removed); 10.0.0.8's
        // port exists without an ofport yet (kept); h2's row is not ours;
        // 10.0.0.6 has no port yet but the driver holds it (kept); the
        // Docker driver's rows (no interface) are the driver's, also when
        // this agent started after the one whose driver wrote them.
        let mut driver = row(&s, "h1", "10.0.0.4");
        driver.interface = String::new();
        s.endpoints.push(driver);
        let held = HeldEndpoints::default();
        held.hold("net", "10.0.0.6".parse().unwrap());
        let present: BTreeSet<_> = [key("10.0.0.2"), key("10.0.0.8")].into();
        let w = book.sync(&[local("10.0.0.2")], present.clone(), &s, "h1", &held);
        assert_eq!(w.remove, [(key("10.0.0.7"), stale.uuid)]);
        assert!(w.publish.is_empty());
        // Later looks do not sweep rows with no port again...
        s.endpoints.retain(|e| e.uuid != stale.uuid);
        s.endpoints.push(row(&s, "h1", "10.0.0.5"));
        assert!(book.sync(&[local("10.0.0.2")], present, &s, "h1", &HeldEndpoints::default()).is_empty());
        // ...but a port seen here that goes takes its row with it.
        let w = book.sync(&[], [key("10.0.0.8")].into(), &s, "h1", &HeldEndpoints::default());
        assert_eq!(w.remove, [(key("10.0.0.2"), here.uuid)]);
        // Back again: published again.
        s.endpoints.retain(|e| e.uuid != here.uuid);
        let w = book.sync(
            &[local("10.0.0.2")],
            [key("10.0.0.2"), key("10.0.0.8")].into(),
            &s,
            "h1",
            &HeldEndpoints::default(),
        );
        assert_eq!(published(&w), ["10.0.0.2"]);
        assert!(w.remove.is_empty());
    }
}
