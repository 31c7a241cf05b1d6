//! Tunnel next hops resolved before a container's first packet needs them
//! (pure: which destinations, and the packet that primes one).
//!
//! In the userspace (netdev) datapath, `ovs-vswitchd` resolves the
//! underlay next hop of a tunnel packet itself, from its own neighbour
//! cache (`ovs-appctl tnl/neigh/show`): the first packet toward a remote
//! host whose MAC it has not learnt yet is dropped while it sends an ARP
//! request (measured here: a new container's first ping to another host
//! was lost, the second went through). So the agent sends one packet-out
//! to each remote host's underlay address as soon as a flow may tunnel to
//! it, and again on each new connection to the switch: a frame on tunnel
//! key 0, which no network has (VNIs start at 1), so the remote host's
//! `classify` table drops it. Its only effect is the ARP exchange that
//! fills the cache. The kernel datapath queues a packet on a neighbour
//! miss instead; there the probe costs one dropped frame per remote host.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use crate::openflow::action::OFPP_CONTROLLER;
use crate::openflow::message::{OFP_NO_BUFFER, PacketOut};
use crate::openflow::{Action, Field, OxmField};
use crate::pipeline::State;

/// The tunnel key of a probe: no network's.
pub const PROBE_TUN_ID: u64 = 0;

/// The probe's EtherType: IEEE 802 local experimental.
const PROBE_ETHERTYPE: u16 = 0x88b5;

/// Every (underlay address, tunnel ofport) a desired flow may send to.
pub fn destinations(state: &State) -> BTreeSet<(Ipv4Addr, u32)> {
    let port = |t| state.tunnel_ofports.get(&t).copied();
    let blocks = state.remote_blocks.iter().filter_map(|b| Some((b.tun_dst, port(b.tunnel)?)));
    let endpoints = state.remote_endpoints.iter().filter_map(|e| Some((e.tun_dst, port(e.tunnel)?)));
    blocks.chain(endpoints).collect()
}

/// The packet-out that makes the switch resolve `tun_dst`'s next hop: a
/// minimal frame sent out of the tunnel port on key [`PROBE_TUN_ID`].
pub fn probe(tun_dst: Ipv4Addr, tunnel_ofport: u32) -> PacketOut {
    let mut frame = Vec::with_capacity(60);
    frame.extend_from_slice(&[0xff; 6]);
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 0]);
    frame.extend_from_slice(&PROBE_ETHERTYPE.to_be_bytes());
    frame.resize(60, 0);
    PacketOut {
        buffer_id: OFP_NO_BUFFER,
        in_port: OFPP_CONTROLLER,
        actions: vec![
            Action::SetField(OxmField::exact(Field::TunDst, &tun_dst.octets())),
            Action::SetField(OxmField::exact(Field::TunId, &PROBE_TUN_ID.to_be_bytes())),
            Action::Output { port: tunnel_ofport, max_len: 0 },
        ],
        data: frame,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::net::Mac;
    use crate::pipeline::state::{RemoteBlock, RemoteEndpoint};
    use crate::vswitch::spec::TunnelType;

    #[test]
    fn each_remote_host_once_and_only_through_a_port_that_exists() {
        let mut st = State::default();
        st.tunnel_ofports.insert(TunnelType::Vxlan, 7);
        let h2: Ipv4Addr = "172.30.0.2".parse().unwrap();
        let h3: Ipv4Addr = "172.30.0.3".parse().unwrap();
        st.remote_blocks.push(RemoteBlock {
            network: "blue".into(),
            cidr: crate::net::IpNet::parse_network("192.168.1.0/24").unwrap(),
            tun_dst: h2,
            tunnel: TunnelType::Vxlan,
        });
        for (ip, dst, tunnel) in [("10.0.2.1", h2, TunnelType::Vxlan), ("10.0.3.1", h3, TunnelType::Gre)] {
            let ip: Ipv4Addr = ip.parse().unwrap();
            st.remote_endpoints.push(RemoteEndpoint {
                network: "lab".into(),
                ip,
                mac: Mac::from_ipv4(ip),
                tun_dst: dst,
                tunnel,
            });
        }
        // h3 only through GRE, which this switch has no port for.
        assert_eq!(destinations(&st), BTreeSet::from([(h2, 7)]));
    }

    #[test]
    fn the_probe_is_a_minimal_frame_on_key_0_out_of_the_tunnel_port() {
        let p = probe("172.30.0.2".parse().unwrap(), 7);
        assert_eq!(p.data.len(), 60);
        assert_eq!(&p.data[..14], &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0, 0x88, 0xb5]);
        assert_eq!(
            crate::openflow::text::format_actions(&p.actions),
            "set_field:172.30.0.2->tun_dst,set_field:0->tun_id,output:7"
        );
        assert_eq!((p.buffer_id, p.in_port), (OFP_NO_BUFFER, OFPP_CONTROLLER));
    }
}
