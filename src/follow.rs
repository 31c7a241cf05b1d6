//! Containers followed through the Docker engine's events (*I/O* around a
//! pure core).
//!
//! - An attachment made the pipework way (`ovsnet attach obr0 web
//!   IP/PREFIX`) is plugged again when Docker starts its container again
//!   (`docker restart`, `--restart=always`, an engine restart): the
//!   container is in a new namespace and its old veth went with the old
//!   one. It is removed, with its Endpoint row, when Docker destroys the
//!   container (`docker rm`), so `ovsnet gc` is only a fallback.
//! - An endpoint the driver made gets the container's name and its
//!   `--network-alias`es in its Endpoint row ([`endpoint_keys`]) once the
//!   engine connects the container: the engine passes neither to a driver.
//!
//! What happened while the agent was away is caught up each time the
//! stream opens: a sweep does what the missed events would have done
//! (restarted containers are plugged again, destroyed ones removed; a
//! container whose state cannot be told is left alone).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use crate::attach::{AttachError, AttachRequest, Attacher, AttacherOptions, Attachment, engine::Liveness};
use crate::cluster::{ClusterDb, ClusterError, endpoint_keys};
use crate::container::engine_api::{Event, Inspect};
use crate::container::{ContainerError, ContainerRef};
use crate::ovsdb::{Client, ConnectOptions};

/// The driver's name in the engine's network events (`type`).
pub const DRIVER: &str = "ovsnet";

#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error(transparent)]
    Attach(#[from] AttachError),
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Ovsdb(#[from] crate::ovsdb::Error),
    #[error("the Docker event stream: {0}")]
    Events(#[from] crate::container::engine_api::ApiError),
}

/// What the follower needs to know of its host.
#[derive(Debug, Clone)]
pub struct FollowOptions {
    pub bridge: String,
    /// The `Open_vSwitch` database.
    pub db: String,
    pub connect: ConnectOptions,
    /// How attachments are plugged again (the switch's namespace, the
    /// engine's socket).
    pub attacher: AttacherOptions,
    /// This host's name and the cluster database, when there is one: the
    /// Endpoint rows of removed attachments go, and the driver's get names.
    pub cluster: Option<(String, String)>,
}

/// What one event asks of the follower.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A container started: plug its attachments again if they are stale.
    Replug(String),
    /// A container was destroyed: remove its attachments and their rows.
    Remove(String),
    /// A container was connected to an ovsnet network: record its names.
    Name(String),
}

/// The action an event asks for, if any (pure).
pub fn action_of(e: &Event) -> Option<Action> {
    let id = || Some(e.actor.id.clone()).filter(|i| !i.is_empty());
    match (e.kind.as_str(), e.action.as_str()) {
        ("container", "start") => id().map(Action::Replug),
        ("container", "destroy") => id().map(Action::Remove),
        ("network", "connect") if e.actor.attributes.get("type").map(String::as_str) == Some(DRIVER) => {
            e.actor.attributes.get("container").filter(|c| !c.is_empty()).cloned().map(Action::Name)
        }
        _ => None,
    }
}

/// The names each of a container's endpoints gets, by endpoint ID (pure):
/// the container's name, and its aliases less the ones the engine adds
/// itself (the name and the short ID).
pub fn names_of(inspect: &Inspect) -> Vec<(String, BTreeMap<String, String>)> {
    let name = inspect.name.trim_start_matches('/');
    let short_id: String = inspect.id.chars().take(12).collect();
    let mut out = Vec::new();
    for settings in inspect.network_settings.networks.iter().flat_map(|n| n.values()) {
        if settings.endpoint_id.is_empty() {
            continue;
        }
        let mut aliases: Vec<&str> = Vec::new();
        for a in settings.aliases.iter().chain(settings.dns_names.iter()).flatten() {
            if a != name && *a != short_id && !a.is_empty() && !aliases.contains(&a.as_str()) {
                aliases.push(a);
            }
        }
        let mut ids = BTreeMap::new();
        if !name.is_empty() {
            ids.insert(endpoint_keys::CONTAINER_NAME.to_owned(), name.to_owned());
        }
        if !aliases.is_empty() {
            ids.insert(endpoint_keys::ALIASES.to_owned(), aliases.join(","));
        }
        out.push((settings.endpoint_id.clone(), ids));
    }
    out
}

/// The request that plugs an attachment again as it was recorded (pure).
pub fn replug_request(a: &Attachment) -> Result<AttachRequest, AttachError> {
    let IpAddr::V4(ip) = a.ip.addr else {
        return Err(AttachError::BadInput(format!("{}: not an IPv4 attachment", a.port)));
    };
    let req = AttachRequest {
        bridge: a.bridge.clone(),
        container: ContainerRef::parse(&a.container)?,
        ip,
        prefix: a.ip.prefix,
        gateway: a.gateway,
        ifname: a.ifname.clone(),
        mac: a.mac,
        mtu: a.mtu,
        routes: a.routes.clone(),
        network: a.network.clone(),
        published: a.published.clone(),
    };
    req.check()?;
    Ok(req)
}

fn is_docker(a: &Attachment) -> bool {
    matches!(a.reference(), Some(ContainerRef::Docker(_)))
}

/// Follows the engine's events for one bridge.
pub struct Follower {
    opts: FollowOptions,
    attacher: Attacher,
    cluster: Option<ClusterDb>,
}

impl Follower {
    pub async fn connect(opts: FollowOptions) -> Result<Follower, FollowError> {
        let client = Client::connect(&opts.db, &opts.connect).await?;
        let attacher = Attacher::new(client, opts.attacher.clone())?;
        let cluster = match &opts.cluster {
            Some((_, remotes)) => Some(ClusterDb::connect(remotes, &opts.connect).await?),
            None => None,
        };
        Ok(Follower { opts, attacher, cluster })
    }

    /// Follows for ever: the stream is opened again whenever it ends (the
    /// engine restarted) or cannot be opened (not started yet), after a
    /// pause that grows to 5 s.
    pub async fn run(self) {
        let mut pause = Duration::from_millis(100);
        let mut last_error = String::new();
        loop {
            match self.follow_once().await {
                Ok(()) => {
                    tracing::info!("the Docker event stream ended; opening it again");
                    pause = Duration::from_millis(100);
                }
                Err(e) => {
                    let e = e.to_string();
                    if e != last_error {
                        tracing::warn!("following Docker: {e}");
                        last_error = e;
                    }
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }

    /// Opens the stream, catches up, then acts on each event until the
    /// stream ends.
    async fn follow_once(&self) -> Result<(), FollowError> {
        // Opened before the sweep, so nothing falls between the two.
        let mut events = self.attacher.resolver().events(&["container", "network"]).await?;
        self.sweep().await?;
        while let Some(e) = events.next().await? {
            if let Some(action) = action_of(&e) {
                if let Err(err) = self.act(&action).await {
                    tracing::warn!("{action:?}: {err}");
                }
            }
        }
        Ok(())
    }

    /// What missed events would have done: stale attachments plugged
    /// again, ones of destroyed containers removed.
    pub async fn sweep(&self) -> Result<(), FollowError> {
        for a in self.attacher.attachments(Some(&self.opts.bridge)).await? {
            if !is_docker(&a) {
                continue;
            }
            let done = match self.attacher.liveness(&a).await {
                Liveness::Restarted => self.replug(&a).await,
                Liveness::Gone => self.remove(std::slice::from_ref(&a)).await,
                Liveness::Alive => Ok(()),
                Liveness::Unknown(why) => {
                    tracing::debug!("{}: cannot tell: {why}", a.port);
                    Ok(())
                }
            };
            if let Err(e) = done {
                tracing::warn!("{}: {e}", a.port);
            }
        }
        Ok(())
    }

    /// Carries out one action.
    pub async fn act(&self, action: &Action) -> Result<(), FollowError> {
        match action {
            Action::Replug(id) => {
                for a in self.attachments_of(id).await? {
                    self.replug(&a).await?;
                }
            }
            Action::Remove(id) => {
                let gone = self.attachments_of(id).await?;
                self.remove(&gone).await?;
            }
            Action::Name(id) => self.record_names(id).await?,
        }
        Ok(())
    }

    async fn attachments_of(&self, id: &str) -> Result<Vec<Attachment>, FollowError> {
        let mut all = self.attacher.attachments(Some(&self.opts.bridge)).await?;
        all.retain(|a| is_docker(a) && a.container == id);
        Ok(all)
    }

    async fn replug(&self, a: &Attachment) -> Result<(), FollowError> {
        let req = replug_request(a)?;
        let report = self.attacher.attach(&req).await?;
        tracing::info!(port = report.attachment.port, container = a.shown_container(), change = ?report.change, "followed a container start");
        Ok(())
    }

    async fn remove(&self, gone: &[Attachment]) -> Result<(), FollowError> {
        let mut removed = Vec::new();
        for a in gone {
            removed.extend(self.attacher.detach(&a.bridge, &a.container, &a.ifname, true).await?);
        }
        for a in &removed {
            tracing::info!(port = a.port, container = a.shown_container(), "followed a container's removal");
        }
        if let (Some(cluster), Some((host, _))) = (&self.cluster, &self.opts.cluster) {
            crate::endpoint::remove_rows_in(cluster, host, &crate::endpoint::rows_of(&removed)).await?;
        }
        Ok(())
    }

    async fn record_names(&self, container: &str) -> Result<(), FollowError> {
        let (Some(cluster), Some((host, _))) = (&self.cluster, &self.opts.cluster) else { return Ok(()) };
        let Some(inspect) = self.attacher.resolver().inspect_container(container).await? else { return Ok(()) };
        for (endpoint, ids) in names_of(&inspect) {
            let n = cluster
                .set_endpoint_external_ids(
                    host,
                    &endpoint,
                    &[endpoint_keys::CONTAINER_NAME, endpoint_keys::ALIASES],
                    &ids,
                )
                .await?;
            if n > 0 {
                tracing::info!(endpoint, names = ?ids, "recorded the endpoint's names");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::container::engine_api::{Actor, EndpointSettings, NetworkSettings};

    fn event(kind: &str, action: &str, id: &str, attrs: &[(&str, &str)]) -> Event {
        Event {
            kind: kind.into(),
            action: action.into(),
            actor: Actor {
                id: id.into(),
                attributes: attrs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            },
        }
    }

    #[test]
    fn only_starts_destroys_and_ovsnet_connects_ask_for_anything() {
        assert_eq!(action_of(&event("container", "start", "c1", &[])), Some(Action::Replug("c1".into())));
        assert_eq!(action_of(&event("container", "destroy", "c1", &[])), Some(Action::Remove("c1".into())));
        let connect = |driver| event("network", "connect", "n1", &[("container", "c1"), ("type", driver)]);
        assert_eq!(action_of(&connect("ovsnet")), Some(Action::Name("c1".into())));
        assert_eq!(action_of(&connect("bridge")), None);
        for (k, a) in [("container", "die"), ("container", "stop"), ("image", "pull"), ("network", "disconnect")] {
            assert_eq!(action_of(&event(k, a, "c1", &[])), None, "{k} {a}");
        }
        assert_eq!(action_of(&event("container", "start", "", &[])), None);
    }

    #[test]
    fn names_leave_out_what_the_engine_adds_itself() {
        let settings = |ep: &str, aliases: &[&str]| EndpointSettings {
            network_id: "n".into(),
            endpoint_id: ep.into(),
            aliases: Some(aliases.iter().map(|a| a.to_string()).collect()),
            dns_names: None,
        };
        let inspect = Inspect {
            id: "4f66ad9a0b2e7c1d".into(),
            name: "/web".into(),
            network_settings: NetworkSettings {
                networks: Some(BTreeMap::from([
                    ("blue".to_owned(), settings("e1", &["4f66ad9a0b2e", "api", "web", "api"])),
                    ("green".to_owned(), settings("e2", &[])),
                    ("none-yet".to_owned(), settings("", &["x"])),
                ])),
            },
            ..Inspect::default()
        };
        let names = names_of(&inspect);
        assert_eq!(names.len(), 2);
        assert_eq!(names[0].0, "e1");
        assert_eq!(names[0].1.get(endpoint_keys::CONTAINER_NAME).map(String::as_str), Some("web"));
        assert_eq!(names[0].1.get(endpoint_keys::ALIASES).map(String::as_str), Some("api"));
        assert_eq!(names[1].0, "e2");
        assert_eq!(names[1].1.get(endpoint_keys::ALIASES), None);
    }

    #[test]
    fn a_replug_asks_for_the_recorded_attachment() {
        let a = Attachment {
            bridge: "obr0".into(),
            port: "ovsc1".into(),
            port_uuid: None,
            container: "4f66ad9a0b2e".into(),
            container_name: Some("web".into()),
            container_ns: None,
            ifname: "eth1".into(),
            ip: crate::net::IpNet::parse_interface("172.16.42.10/24").unwrap(),
            mac: None,
            mtu: Some(1450),
            gateway: Some("172.16.42.1".parse().unwrap()),
            network: Some("blue".into()),
            routes: crate::attach::parse_recorded_routes("192.168.0.0/16@172.16.42.1,10.9.0.0/16"),
            published: crate::net::PublishedPort::parse_list("8080:80/tcp").unwrap(),
            ofport: None,
        };
        let r = replug_request(&a).unwrap();
        assert_eq!((r.cidr(), r.ifname.as_str(), r.mtu, r.gateway), (a.ip.to_string(), "eth1", Some(1450), a.gateway));
        assert_eq!(r.routes, a.routes, "the recorded routes are added again");
        assert_eq!(r.routes.len(), 2);
        assert_eq!(r.published, a.published, "the published ports stay published");
        assert_eq!(r.container, ContainerRef::Docker("4f66ad9a0b2e".into()));
        assert!(is_docker(&a));
        let mut ns = a.clone();
        ns.container = "netns:c1".into();
        assert!(!is_docker(&ns));
    }
}
