//! Rules about hosts that every front end shares: this host's default
//! name, when a host counts as gone, and forgetting one that is.

use std::time::Duration;

use super::{ClusterDb, ClusterError, HostRemoval};

/// This host's name in the cluster: the one given, else the system's
/// (`/proc/sys/kernel/hostname`).
pub fn local_host_name(given: Option<&str>) -> Result<String, ClusterError> {
    match given {
        Some(h) => Ok(h.to_owned()),
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .ok_or_else(|| ClusterError::BadInput("no host name given and the system has none".into())),
    }
}

/// The address this host reaches the cluster from: the source address the
/// kernel would use towards the first `tcp:` or `ssl:` member of
/// `remotes` (a route lookup, as `ip route get` makes).
pub async fn underlay_toward(remotes: &str) -> Result<std::net::IpAddr, ClusterError> {
    let members = crate::ovsdb::Remote::parse(remotes)?;
    let first = members.iter().find_map(|r| match r {
        crate::ovsdb::Remote::Tcp { host, .. } | crate::ovsdb::Remote::Ssl { host, .. } => Some(host.clone()),
        crate::ovsdb::Remote::Unix(_) => None,
    });
    let Some(host) = first else {
        return Err(ClusterError::BadInput(format!(
            "no underlay address: the cluster database {remotes} has no tcp: or ssl: member to route to; give one"
        )));
    };
    let ip: std::net::IpAddr = host
        .trim_matches(['[', ']'])
        .parse()
        .map_err(|_| ClusterError::BadInput(format!("cluster member {host} is not an IP address")))?;
    let no_source = || ClusterError::BadInput(format!("no underlay address: the route to {ip} names no source"));
    let nl = crate::netlink::Netlink::open_without_packet()
        .map_err(|e| ClusterError::BadInput(format!("no underlay address: {e}")))?;
    nl.source_address_for(ip)
        .await
        .map_err(|e| ClusterError::BadInput(format!("no underlay address: {e}")))?
        .ok_or_else(no_source)
}

/// The underlay address of a host whose cluster database is its own (a
/// unix socket): the first of `members` (this host's members' listening
/// addresses) that is not a loopback address, else the source address of
/// the default route (*I/O*: a route lookup; nothing is sent).
pub async fn underlay_of_this_host(members: &[std::net::IpAddr]) -> Result<std::net::IpAddr, ClusterError> {
    if let Some(ip) = members.iter().find(|ip| !ip.is_loopback() && !ip.is_unspecified()) {
        return Ok(*ip);
    }
    let nl = crate::netlink::Netlink::open_without_packet()
        .map_err(|e| ClusterError::BadInput(format!("no underlay address: {e}")))?;
    nl.default_route_source()
        .await
        .map_err(|e| ClusterError::BadInput(format!("no underlay address: {e}")))?
        .ok_or_else(|| {
            ClusterError::BadInput("no underlay address: this host has no default route to take one from".into())
        })
}

/// How long a host's heartbeat is watched before it is judged gone: for
/// an agent that answers probes, its promised answer time and a second;
/// for an older agent that beats on a timer, two of its intervals (it
/// beats on a one-second tick) and a second.
pub fn liveness_window(h: &crate::cluster::Host) -> Duration {
    let ms = |v: i64| Duration::from_millis(v.max(0) as u64);
    match h.probe_timeout > 0 {
        true => ms(h.probe_timeout) + Duration::from_secs(1),
        false => ms(h.heartbeat_interval) * 2 + Duration::from_secs(1),
    }
}

/// How [`forget_host`] makes sure the host is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoneCheck {
    /// Probe the host's agent (or, for an older agent, watch its timed
    /// heartbeat) for [`liveness_window`]; refuse if the heartbeat moves,
    /// and remove only if it still has the value seen.
    Watch,
    /// Remove without asking.
    Force,
}

/// Forgets a host that is gone for good: its Endpoint rows, Block rows and
/// Host row, in one transaction. With [`GoneCheck::Watch`] the host's
/// agent is probed ([`ClusterDb::probe_host`]) and a host that answers is
/// refused ([`ClusterError::HostAlive`]) with nothing removed; `watching`
/// is told how long the wait will last before it starts. A host whose agent
/// neither answers probes nor beats, or that has no Host row, is removed
/// without a wait.
pub async fn forget_host(
    cluster: &ClusterDb,
    name: &str,
    check: GoneCheck,
    watching: impl FnOnce(Duration),
) -> Result<HostRemoval, ClusterError> {
    let checked = match cluster.host(name).await {
        Ok(h) if check == GoneCheck::Watch && (h.probe_timeout > 0 || h.heartbeat_interval > 0) => {
            let window = liveness_window(&h);
            // An older agent beats by itself; today's answers when asked.
            let from = match h.probe_timeout > 0 {
                true => cluster.probe_host(name).await?,
                false => h.heartbeat,
            };
            watching(window);
            if let Some(now) = cluster.heartbeat_moves(name, from, window).await? {
                return Err(ClusterError::HostAlive {
                    host: name.to_owned(),
                    observed: format!("from {from} to {now}"),
                });
            }
            Some(from)
        }
        Ok(_) | Err(ClusterError::NoHost(_)) => None,
        Err(e) => return Err(e),
    };
    cluster.remove_host(name, checked).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_host_is_judged_gone_after_its_promised_answer_time_and_a_second() {
        let h = |probe_timeout, heartbeat_interval| crate::cluster::Host {
            probe_timeout,
            heartbeat_interval,
            ..crate::cluster::model::fixtures::host("h1", "192.0.2.1", &["vxlan"])
        };
        assert_eq!(liveness_window(&h(2_000, 0)), Duration::from_secs(3));
        // An older agent's timed heartbeat: two intervals and a second.
        assert_eq!(liveness_window(&h(0, 2_000)), Duration::from_secs(5));
        assert_eq!(liveness_window(&h(0, 0)), Duration::from_secs(1));
        assert_eq!(liveness_window(&h(-5, -5)), Duration::from_secs(1));
    }

    #[test]
    fn a_given_host_name_wins() {
        assert_eq!(local_host_name(Some("h7")).unwrap(), "h7");
    }
}
