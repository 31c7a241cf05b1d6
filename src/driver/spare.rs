//! Ports plugged ahead of need (*I/O*, with its names pure).
//!
//! Most of a `Join`'s time was `ovs-vswitchd` adding the port and
//! assigning its ofport, a cost that grows with the ports on the bridge
//! (`docs/BENCHMARKS.md`, the Docker section). So the driver keeps a few
//! spare veth pairs already on the bridge, their ofports assigned: a port
//! whose `Interface` and `Port` carry only [`SPARE_KEY`], which the agent
//! programs nothing for. A `Join` claims one: the container end gets the
//! endpoint's MAC (and MTU), and one transaction gives the port the
//! endpoint's `external_ids` in place of the mark, on the condition that
//! it is still a spare. The agent then programs it as it would a new port,
//! with its ofport already known. New spares are made in the background,
//! all that are missing in one transaction; a pool found empty (a burst
//! of starts) doubles its size, up to [`MAX_SPARES`], so that the next
//! burst finds spares and their ports share transactions.
//!
//! Spares left by an earlier run (the agent restarted, the host rebooted)
//! are removed when the driver starts, and new ones made.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::netlink::{Netlink, VethEnd};
use crate::ovsdb::{Client, Condition, Datum, Function, Operation, Row};
use crate::vswitch::{PortSpec, Vswitch};

/// The `external_ids` mark of a spare port.
pub const SPARE_KEY: &str = "ovsnet-spare";

/// How many spares the driver keeps at first.
pub const SPARES: usize = 2;

/// How many spares a pool grows to at most: a Compose file's burst of
/// starts then finds spares (with 8, Compose of 50 services was 1.13x the
/// bridge driver, with 32 0.97x; `BENCHMARKS.md`). Idle spares cost a
/// veth pair and a port each, with no flows.
pub const MAX_SPARES: usize = 32;

/// The two ends of a spare: on the bridge, and for the engine to move
/// into a container (15 characters each).
pub fn spare_names(seed: u64) -> (String, String) {
    let tag = seed & 0xffff_ffff_ffff;
    (format!("ovp{tag:012x}"), format!("ovq{tag:012x}"))
}

/// The container end of a spare's bridge end.
pub fn container_end(host_end: &str) -> Option<String> {
    host_end.strip_prefix("ovp").map(|tag| format!("ovq{tag}"))
}

fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    h.finish()
}

fn spare_mark() -> Condition {
    Condition::new("external_ids", Function::Includes, Datum::map([(SPARE_KEY, "true")]))
}

/// The pool's size after it was found empty while holding `want`.
pub fn grown(want: usize) -> usize {
    (want * 2).clamp(SPARES, MAX_SPARES)
}

/// The spares ready to be claimed, kept full by a background task.
pub struct Spares {
    ready: tokio::sync::Mutex<Vec<String>>,
    /// How many the pool holds when full.
    want: std::sync::atomic::AtomicUsize,
    refill: tokio::sync::Notify,
}

impl Spares {
    /// Starts the task that removes old spares and keeps the pool full.
    pub fn start(client: Client, bridge: String) -> Result<Arc<Spares>, crate::netlink::NetlinkError> {
        let spares = Arc::new(Spares {
            ready: Default::default(),
            want: std::sync::atomic::AtomicUsize::new(SPARES),
            refill: Default::default(),
        });
        let netlink = Netlink::open_without_packet()?;
        // Spares are handed out only once ovs-vswitchd has given them an ofport.
        let vswitch = Vswitch::new(client.clone()).with_wait(Some(Duration::from_secs(10)));
        let task = spares.clone();
        tokio::spawn(async move {
            remove_old(&client, &vswitch, &netlink, &bridge).await;
            loop {
                let want = task.want.load(std::sync::atomic::Ordering::Relaxed);
                let missing = want.saturating_sub(task.ready.lock().await.len());
                if missing == 0 {
                    task.refill.notified().await;
                    continue;
                }
                match make(&vswitch, &netlink, &bridge, missing).await {
                    Ok(names) => {
                        tracing::info!(ports = names.len(), "driver spares made together");
                        task.ready.lock().await.extend(names);
                    }
                    Err(e) => {
                        tracing::warn!("making spare ports: {e}");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        Ok(spares)
    }

    /// A spare's bridge end, if one is ready. Call [`Self::refill`] once
    /// the `Join` that took it is done: making spares keeps
    /// `ovs-vswitchd` busy for a while, and the `Join`'s flow bundle would
    /// wait behind it (measured: the flows stage's p50 was 18 ms with the
    /// refill at once). A pool found empty grows ([`grown`]) for the next
    /// refill.
    pub async fn take(&self) -> Option<String> {
        let taken = self.ready.lock().await.pop();
        if taken.is_none() {
            let _ = self.want.fetch_update(
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
                |w| Some(grown(w)),
            );
        }
        taken
    }

    /// Makes the spares taken so far again, in the background.
    pub fn refill(&self) {
        self.refill.notify_one();
    }
}

/// Removes the spares an earlier run left: their rows and links, and the
/// links of a spare it was still making (a veth with no port).
async fn remove_old(client: &Client, vswitch: &Vswitch, netlink: &Netlink, bridge: &str) {
    let found = client
        .transact(
            crate::vswitch::DB,
            vec![
                Operation::select("Interface", vec![spare_mark()]).columns(["name"]),
                Operation::select("Interface", vec![]).columns(["name"]),
            ],
        )
        .await;
    let names_of = |r: Option<&crate::ovsdb::OpResult>| -> Vec<String> {
        r.and_then(|r| r.rows.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|row| row.get("name").and_then(Datum::as_str).map(str::to_owned))
            .collect()
    };
    let (names, all) = match found {
        Ok(r) => (names_of(r.first()), names_of(r.get(1))),
        Err(e) => {
            tracing::warn!("looking for old spare ports: {e}");
            return;
        }
    };
    if let Ok(links) = netlink.links().await {
        for link in links.iter().filter(|l| l.name.starts_with("ovp") && !all.contains(&l.name)) {
            let _ = netlink.delete_link(link).await;
        }
    }
    for name in names {
        if let Err(e) = vswitch.del_port(bridge, &name, true, false).await {
            tracing::warn!("removing old spare port {name}: {e}");
        }
        let _ = netlink.delete_link_by_name(&name).await;
    }
}

/// Makes `n` spares: the veths, then their ports in one transaction,
/// waiting for their ofports. On a failure none is left.
async fn make(vswitch: &Vswitch, netlink: &Netlink, bridge: &str, n: usize) -> Result<Vec<String>, String> {
    let mut made = Vec::new();
    let mut failed = None;
    for _ in 0..n {
        let (host_end, peer) = spare_names(seed());
        let veth = netlink
            .create_veth(
                &VethEnd { name: host_end.clone(), up: true, ..VethEnd::named(host_end.clone()) },
                &VethEnd::named(peer),
            )
            .await;
        match veth {
            Ok(_) => made.push(host_end),
            Err(e) => {
                failed = Some(e.to_string());
                break;
            }
        }
    }
    if failed.is_none() {
        let ports: Vec<PortSpec> = made
            .iter()
            .map(|name| PortSpec {
                name: name.clone(),
                external_ids: BTreeMap::from([(SPARE_KEY.to_owned(), "true".to_owned())]),
                ..PortSpec::default()
            })
            .collect();
        if let Err(e) = vswitch.add_ports(bridge, &ports).await {
            failed = Some(e.to_string());
            for name in &made {
                let _ = vswitch.del_port(bridge, name, true, false).await;
            }
        }
    }
    match failed {
        None => Ok(made),
        Some(e) => {
            for name in &made {
                let _ = netlink.delete_link_by_name(name).await;
            }
            Err(e)
        }
    }
}

/// The operations that make a spare an endpoint's port: its `Interface`
/// and `Port` get `ids` in place of the mark, if it is still a spare.
pub fn claim_ops(host_end: &str, ids: &BTreeMap<String, String>) -> Vec<Operation> {
    let map = || Datum::map(ids.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let mut iface = Row::new();
    iface.insert("external_ids".into(), map());
    let mut port = Row::new();
    port.insert("external_ids".into(), map());
    vec![
        Operation::update("Interface", vec![Condition::eq("name", host_end), spare_mark()], iface),
        Operation::update("Port", vec![Condition::eq("name", host_end), spare_mark()], port),
    ]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn spare_names_fit_an_interface_name_and_pair_up() {
        let (a, b) = spare_names(u64::MAX);
        assert_eq!((a.as_str(), b.as_str()), ("ovpffffffffffff", "ovqffffffffffff"));
        assert!(a.len() <= 15 && b.len() <= 15);
        assert_eq!(container_end(&a).as_deref(), Some(b.as_str()));
        assert_eq!(container_end("ovd1234"), None);
        assert_ne!(spare_names(seed()).0, spare_names(seed()).0);
    }

    #[test]
    fn a_pool_found_empty_doubles_up_to_its_bound() {
        assert_eq!(grown(SPARES), 2 * SPARES);
        assert_eq!(grown(0), SPARES);
        assert_eq!(grown(MAX_SPARES - 1), MAX_SPARES);
        assert_eq!(grown(MAX_SPARES), MAX_SPARES);
    }

    #[test]
    fn a_claim_replaces_the_mark_only_on_a_port_still_spare() {
        let ids = BTreeMap::from([("ovsnet-ip".to_owned(), "10.40.0.2/16".to_owned())]);
        let ops = claim_ops("ovp000000000001", &ids);
        let text = serde_json::to_string(&ops).unwrap();
        assert_eq!(
            text,
            r#"[{"op":"update","row":{"external_ids":["map",[["ovsnet-ip","10.40.0.2/16"]]]},"table":"Interface","where":[["name","==","ovp000000000001"],["external_ids","includes",["map",[["ovsnet-spare","true"]]]]]},{"op":"update","row":{"external_ids":["map",[["ovsnet-ip","10.40.0.2/16"]]]},"table":"Port","where":[["name","==","ovp000000000001"],["external_ids","includes",["map",[["ovsnet-spare","true"]]]]]}]"#
        );
    }
}
