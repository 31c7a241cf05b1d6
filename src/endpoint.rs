//! Endpoints of cluster networks, end to end: a container attached on
//! this host ([`crate::attach`]) and recorded as an `Endpoint` row in the
//! cluster database ([`crate::cluster`]), made and removed as one unit.
//!
//! This is where the two meet, so that the command line (and any other
//! front end) only parses, calls and prints: the address is allocated in
//! the cluster (or the given one published), the container attached, and
//! if the attach fails the row is removed again, so a failure leaves
//! nothing behind.

use std::net::{IpAddr, Ipv4Addr};

use crate::attach::{AttachError, AttachReport, AttachRequest, Attacher, Attachment, Route};
use crate::cluster::{ClusterDb, ClusterError, EndpointSpec};
use crate::container::ContainerRef;
use crate::net::Mac;

#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error(transparent)]
    Attach(#[from] AttachError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("the Endpoint row of {ip} in network {network} vanished while attaching; try again")]
    Vanished { ip: IpAddr, network: String },
    #[error("{ip} is not an IPv4 address; only IPv4 endpoints can be attached")]
    NotIpv4 { ip: IpAddr },
    #[error("network {0} is internal (no way out of the hosts): nothing can be published on it")]
    InternalPublish(String),
    #[error("alias {0:?} is not a DNS name (labels of letters, digits, '-' and '_', joined by '.')")]
    BadAlias(String),
}

/// An address the user gave: `IP/PREFIX[@GATEWAY]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GivenAddress {
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
}

/// What to attach into a cluster network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkAttach {
    /// The cluster network (its name).
    pub network: String,
    /// This host's name in the cluster.
    pub host: String,
    pub bridge: String,
    pub container: ContainerRef,
    /// `None`: the cluster allocates one (the network's prefix and
    /// gateway go with it).
    pub address: Option<GivenAddress>,
    pub ifname: String,
    pub mac: Option<Mac>,
    /// Default: the network's MTU, else the bridge's less the tunnels'
    /// overhead.
    pub mtu: Option<u32>,
    pub routes: Vec<Route>,
    /// Ports published on the host's addresses (the network must have a
    /// way out: not `--internal`).
    pub published: Vec<crate::net::PublishedPort>,
    /// More names the container answers to in the network's DNS (besides
    /// its own name), recorded in its Endpoint row.
    pub aliases: Vec<String>,
}

/// What [`attach_in_network`] did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NetworkAttachReport {
    #[serde(flatten)]
    pub report: AttachReport,
    pub network: String,
    pub host: String,
}

impl NetworkAttach {
    /// Checks everything that can be checked without the cluster or the
    /// switch.
    pub fn check(&self) -> Result<(), EndpointError> {
        if let Some(bad) = self.aliases.iter().find(|a| !crate::net::is_dns_name(a)) {
            return Err(EndpointError::BadAlias(bad.clone()));
        }
        Ok(self.check_attach()?)
    }

    fn check_attach(&self) -> Result<(), AttachError> {
        match self.address {
            Some(a) => self.request(a.ip, a.prefix, a.gateway, None).check(),
            None => {
                crate::attach::check_options(&self.bridge, &self.ifname, self.mtu, self.mac, Some(&self.network))?;
                crate::attach::check_published(&self.published)
            }
        }
    }

    /// The attach request once the address is known.
    fn request(&self, ip: Ipv4Addr, prefix: u8, gateway: Option<Ipv4Addr>, mtu: Option<u32>) -> AttachRequest {
        AttachRequest {
            bridge: self.bridge.clone(),
            container: self.container.clone(),
            ip,
            prefix,
            gateway,
            ifname: self.ifname.clone(),
            mac: self.mac,
            mtu: self.mtu.or(mtu),
            routes: self.routes.clone(),
            network: Some(self.network.clone()),
            published: self.published.clone(),
        }
    }

    /// The Endpoint row to publish for a given address.
    fn spec(&self, ip: Ipv4Addr) -> EndpointSpec {
        EndpointSpec {
            network: self.network.clone(),
            host: self.host.clone(),
            ip: ip.into(),
            mac: self.mac.map(|m| m.to_string()),
            container: self.container.to_string(),
            interface: self.ifname.clone(),
            external_ids: self.names(),
        }
    }

    /// The names the endpoint answers to in the network's DNS, as its
    /// Endpoint row records them: the container's name (a Docker
    /// container's as given, a named namespace's name) and the aliases.
    fn names(&self) -> std::collections::BTreeMap<String, String> {
        use crate::cluster::endpoint_keys;
        let mut ids = std::collections::BTreeMap::new();
        let name = match &self.container {
            ContainerRef::Docker(n) => Some(n.trim_start_matches('/')),
            ContainerRef::Netns(n) => Some(n.as_str()),
            _ => None,
        };
        if let Some(n) = name.filter(|n| crate::net::is_dns_name(n)) {
            ids.insert(endpoint_keys::CONTAINER_NAME.to_owned(), n.to_owned());
        }
        if !self.aliases.is_empty() {
            ids.insert(endpoint_keys::ALIASES.to_owned(), self.aliases.join(","));
        }
        ids
    }
}

/// Attaches a container into a cluster network: the given address is
/// published as this host's endpoint (or one is allocated), then the
/// container is attached; if the attach fails, the endpoint this call made
/// is removed again. Attaching again what is already attached here is not
/// an error.
pub async fn attach_in_network(
    cluster: &ClusterDb,
    attacher: &Attacher,
    req: &NetworkAttach,
) -> Result<NetworkAttachReport, EndpointError> {
    req.check()?;
    let net = cluster.network(&req.network).await?;
    if net.internal && !req.published.is_empty() {
        return Err(EndpointError::InternalPublish(req.network.clone()));
    }
    let (ip, new_row) = match req.address {
        Some(given) => match cluster.publish_endpoint(&req.spec(given.ip)).await {
            Ok(_) => (given.ip, true),
            Err(ClusterError::IpInUse { host, container, .. })
                if host == req.host && container == req.container.to_string() =>
            {
                let state = cluster.state().await?;
                let ip = IpAddr::V4(given.ip);
                if !state.endpoints.iter().any(|e| e.ip == ip && e.network == net.uuid) {
                    return Err(EndpointError::Vanished { ip, network: req.network.clone() });
                }
                (given.ip, false)
            }
            Err(e) => return Err(e.into()),
        },
        None => {
            let e = cluster
                .allocate_named(&req.network, &req.host, &req.container.to_string(), &req.ifname, req.names())
                .await?;
            match e.ip {
                IpAddr::V4(v4) => (v4, true),
                ip => {
                    let _ = cluster.remove_endpoint(&req.network, ip).await;
                    return Err(EndpointError::NotIpv4 { ip });
                }
            }
        }
    };
    let attach = match req.address {
        Some(given) => req.request(ip, given.prefix, given.gateway.or(net.gateway), net.mtu),
        None => req.request(ip, net.cidr.prefix, net.gateway, net.mtu),
    };
    match attacher.attach(&attach).await {
        Ok(report) => Ok(NetworkAttachReport { report, network: req.network.clone(), host: req.host.clone() }),
        Err(e) => {
            if new_row {
                let _ = cluster.remove_endpoint(&req.network, IpAddr::V4(ip)).await;
            }
            Err(e.into())
        }
    }
}

/// The Endpoint rows of removed attachments: those made in a network.
pub fn rows_of(removed: &[Attachment]) -> Vec<(String, IpAddr)> {
    removed.iter().filter_map(|a| Some((a.network.clone()?, a.ip.addr))).collect()
}

/// The Endpoint rows that could not be removed, and why.
#[derive(Debug, thiserror::Error)]
#[error(
    "the port is gone, but the Endpoint row of {} remains in the cluster database ({}); the agent on {host} removes it",
    .rows.iter().map(|(n, ip)| format!("{ip} in {n}")).collect::<Vec<_>>().join(", "),
    .source.to_string().replace('\n', " ")
)]
pub struct RowsRemain {
    pub rows: Vec<(String, IpAddr)>,
    pub host: String,
    pub source: ClusterError,
}

/// After `detach` or `gc` removed attachments (their ports are gone):
/// removes this host's Endpoint rows of those in a network ([`rows_of`]).
/// Returns how many rows went; an error names the rows that remain (the
/// host's agent removes them once it sees the ports gone).
pub async fn remove_rows(
    remotes: &str,
    connect: &crate::ovsdb::ConnectOptions,
    host: &str,
    rows: Vec<(String, IpAddr)>,
) -> Result<usize, RowsRemain> {
    if rows.is_empty() {
        return Ok(0);
    }
    let done = async {
        let cdb = ClusterDb::connect(remotes, connect).await?;
        remove_rows_in(&cdb, host, &rows).await
    }
    .await;
    done.map_err(|source| RowsRemain { rows, host: host.to_owned(), source })
}

/// [`remove_rows`] through a cluster connection the caller holds.
pub async fn remove_rows_in(cdb: &ClusterDb, host: &str, rows: &[(String, IpAddr)]) -> Result<usize, ClusterError> {
    let mut n = 0;
    for (net, ip) in rows {
        if cdb.remove_host_endpoint(net, host, *ip).await? {
            tracing::info!(%ip, network = net, "removed the endpoint from the cluster database");
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn req(address: Option<GivenAddress>) -> NetworkAttach {
        NetworkAttach {
            network: "blue".into(),
            host: "h1".into(),
            bridge: "obr0".into(),
            container: ContainerRef::Netns("c1".into()),
            address,
            ifname: "eth1".into(),
            mac: None,
            mtu: None,
            routes: Vec::new(),
            published: Vec::new(),
            aliases: Vec::new(),
        }
    }

    #[test]
    fn aliases_must_be_dns_names_and_go_into_the_row_with_the_name() {
        let mut r = req(None);
        r.aliases = vec!["api".into(), "web.v1".into()];
        assert!(r.check().is_ok());
        let ids = r.spec(Ipv4Addr::new(10, 0, 0, 2)).external_ids;
        assert_eq!(ids.get("container-name").map(String::as_str), Some("c1"));
        assert_eq!(ids.get("aliases").map(String::as_str), Some("api,web.v1"));
        r.aliases.push("not a name".into());
        assert!(matches!(r.check(), Err(EndpointError::BadAlias(a)) if a == "not a name"));
    }

    #[test]
    fn a_request_without_an_address_checks_only_its_options() {
        assert!(req(None).check().is_ok());
        let mut bad = req(None);
        bad.ifname = "a-very-long-interface".into();
        assert!(bad.check().is_err());
        let mut bad = req(None);
        bad.mac = Some(Mac([1, 0, 0, 0, 0, 1]));
        assert!(bad.check().is_err());
        let mut bad = req(None);
        bad.network = "two words".into();
        assert!(bad.check().is_err());
    }

    #[test]
    fn a_given_address_is_checked_as_an_attach() {
        let given = |ip: &str, prefix, gw: Option<&str>| GivenAddress {
            ip: ip.parse().unwrap(),
            prefix,
            gateway: gw.map(|g| g.parse().unwrap()),
        };
        assert!(req(Some(given("10.0.0.2", 24, Some("10.0.0.1")))).check().is_ok());
        assert!(req(Some(given("10.0.0.2", 24, Some("10.1.0.1")))).check().is_err(), "gateway off-net");
        assert!(req(Some(given("127.0.0.2", 8, None))).check().is_err());
    }

    #[test]
    fn the_attach_takes_the_networks_mtu_unless_one_is_given() {
        let r = req(None);
        let a = r.request("10.0.0.5".parse().unwrap(), 16, Some("10.0.0.1".parse().unwrap()), Some(1400));
        assert_eq!(
            (a.cidr(), a.gateway, a.mtu, a.network.as_deref()),
            ("10.0.0.5/16".into(), a.gateway, Some(1400), Some("blue"))
        );
        let mut r = req(None);
        r.mtu = Some(1300);
        assert_eq!(r.request("10.0.0.5".parse().unwrap(), 16, None, Some(1400)).mtu, Some(1300));
        assert_eq!(r.spec("10.0.0.5".parse().unwrap()).container, "netns:c1");
    }

    #[test]
    fn rows_of_removed_attachments_are_those_in_a_network() {
        let a = |network: Option<&str>, ip: &str| Attachment {
            bridge: "obr0".into(),
            port: "ovs0".into(),
            port_uuid: None,
            container: "netns:c1".into(),
            container_name: None,
            container_ns: None,
            ifname: "eth1".into(),
            ip: crate::net::IpNet::parse_interface(ip).unwrap(),
            mac: None,
            mtu: None,
            gateway: None,
            network: network.map(str::to_owned),
            routes: Vec::new(),
            published: Vec::new(),
            ofport: None,
        };
        let rows = rows_of(&[a(Some("blue"), "10.0.0.2/24"), a(None, "10.0.0.3/24")]);
        assert_eq!(rows, vec![("blue".to_owned(), "10.0.0.2".parse().unwrap())]);
        let e = RowsRemain { rows, host: "h1".into(), source: ClusterError::NoNetwork("blue".into()) };
        assert_eq!(
            e.to_string(),
            "the port is gone, but the Endpoint row of 10.0.0.2 in blue remains in the cluster database (no network blue in the cluster database); the agent on h1 removes it"
        );
    }
}
