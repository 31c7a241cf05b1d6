//! Address management as pure arithmetic: Fan blocks, pool blocks, the
//! lowest free address of a block, the lowest free VNI. No I/O: the
//! database calls these with what it read, and its unique indexes settle
//! any race between two hosts that computed the same answer.
//!
//! IPv4 only (Fan and per-host blocks are IPv4 ideas; an IPv6 network
//! would use static addresses).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use crate::net::{IpNet, v4_mask};

/// The largest VXLAN/Geneve VNI (24 bits); GRE keys are wider, so this
/// range fits every tunnel type.
pub const MAX_VNI: u32 = 0x00ff_ffff;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    #[error("{0} is not an IPv4 network: address management here is IPv4 only")]
    NotIpv4(IpNet),
    #[error(
        "Fan: the overlay {overlay} and underlay {underlay} leave no room: overlay prefix + (32 - underlay prefix) = {block_prefix} must be at most 30"
    )]
    FanTooSmall { overlay: IpNet, underlay: IpNet, block_prefix: u8 },
    #[error("Fan: host address {host} is not in the underlay {underlay}")]
    FanOutside { host: Ipv4Addr, underlay: IpNet },
    #[error("Fan: host address {host} is the underlay's network or broadcast address")]
    FanReserved { host: Ipv4Addr },
    #[error("block prefix /{block_prefix} does not fit network {cidr}: it must be between /{} and /30", cidr.prefix)]
    BadBlockPrefix { cidr: IpNet, block_prefix: u8 },
    #[error("network {0} has no free block left")]
    NoFreeBlock(IpNet),
    #[error("block {0} has no free address left")]
    NoFreeAddress(IpNet),
    #[error("no free VNI left")]
    NoFreeVni,
}

fn v4(net: IpNet) -> Result<(u32, u8), IpamError> {
    match net.addr {
        IpAddr::V4(a) => Ok((u32::from(a) & v4_mask(net.prefix), net.prefix)),
        IpAddr::V6(_) => Err(IpamError::NotIpv4(net)),
    }
}

fn net4(addr: u32, prefix: u8) -> IpNet {
    IpNet { addr: IpAddr::V4(Ipv4Addr::from(addr)), prefix }
}

/// The Fan block of a host: the host part of its underlay address, placed
/// after the overlay's prefix. Ubuntu's Fan maps an overlay /8 onto an
/// underlay /16, so host 172.30.0.28 in 172.30.0.0/16 serves
/// 250.0.28.0/24 of 250.0.0.0/8. Any prefixes work whose sum leaves at
/// least two host bits: block prefix = overlay prefix + (32 - underlay prefix).
pub fn fan_block(overlay: IpNet, underlay: IpNet, host: Ipv4Addr) -> Result<IpNet, IpamError> {
    let (o, op) = v4(overlay)?;
    let (u, up) = v4(underlay)?;
    let block_prefix = u32::from(op) + (32 - u32::from(up));
    if block_prefix > 30 {
        return Err(IpamError::FanTooSmall { overlay, underlay, block_prefix: block_prefix.min(255) as u8 });
    }
    let block_prefix = block_prefix as u8;
    let h = u32::from(host);
    if h & v4_mask(up) != u {
        return Err(IpamError::FanOutside { host, underlay });
    }
    let host_bits = h & !v4_mask(up);
    if host_bits == 0 || host_bits == !v4_mask(up) {
        return Err(IpamError::FanReserved { host });
    }
    // up >= 2 here (block_prefix <= 30), so the shift is below 32.
    Ok(net4(o | (host_bits << (32 - u32::from(block_prefix))), block_prefix))
}

/// Checks a pool's block size against its network.
pub fn check_block_prefix(cidr: IpNet, block_prefix: u8) -> Result<(), IpamError> {
    let (_, p) = v4(cidr)?;
    if block_prefix < p || block_prefix > 30 {
        return Err(IpamError::BadBlockPrefix { cidr, block_prefix });
    }
    Ok(())
}

/// The first block of `/block_prefix` in `cidr` that no other host holds.
/// `taken` may hold anything: blocks outside `cidr` or of another size are
/// compared by overlap, so a taken /24 also rules out the /26s inside it.
pub fn first_free_block(cidr: IpNet, block_prefix: u8, taken: &[IpNet]) -> Result<IpNet, IpamError> {
    check_block_prefix(cidr, block_prefix)?;
    let (base, p) = v4(cidr)?;
    let count: u64 = 1u64 << (block_prefix - p);
    let size: u64 = 1u64 << (32 - block_prefix);
    let taken: Vec<(u64, u64)> = taken
        .iter()
        .filter_map(|t| v4(*t).ok())
        .map(|(a, tp)| (u64::from(a), u64::from(a) + (1u64 << (32 - tp)) - 1))
        .collect();
    for i in 0..count {
        let start = u64::from(base) + i * size;
        let end = start + size - 1;
        if !taken.iter().any(|&(ts, te)| ts <= end && start <= te) {
            // start fits in u32: it lies inside cidr.
            return Ok(net4(start as u32, block_prefix));
        }
    }
    Err(IpamError::NoFreeBlock(cidr))
}

/// The lowest address of `block` that is not in `used` and is none of:
/// the network's and the block's first and last addresses, the gateway.
/// `network` is the whole CIDR the block lies in (for static networks,
/// the block is the network itself).
pub fn lowest_free_address(
    network: IpNet,
    block: IpNet,
    gateway: Option<Ipv4Addr>,
    used: &BTreeSet<Ipv4Addr>,
) -> Result<Ipv4Addr, IpamError> {
    let (n, np) = v4(network)?;
    let (b, bp) = v4(block)?;
    let n_last = n | !v4_mask(np);
    let b_last = b | !v4_mask(bp);
    let mut a = b;
    loop {
        let ip = Ipv4Addr::from(a);
        let reserved = a == n || a == n_last || (bp < 31 && (a == b || a == b_last)) || Some(ip) == gateway;
        if !reserved && !used.contains(&ip) {
            return Ok(ip);
        }
        if a == b_last {
            return Err(IpamError::NoFreeAddress(block));
        }
        a += 1;
    }
}

/// The lowest VNI in 1..=[`MAX_VNI`] not in `used`.
pub fn lowest_free_vni(used: &BTreeSet<u32>) -> Result<u32, IpamError> {
    let mut want = 1u32;
    for &v in used.range(1..=MAX_VNI) {
        if v > want {
            break;
        }
        want = v + 1;
    }
    if want > MAX_VNI { Err(IpamError::NoFreeVni) } else { Ok(want) }
}

/// The MAC ovsnet gives an address by default (`0a:58` + the IPv4 bytes),
/// the same rule as `attach`, so a block of addresses implies its MACs.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    crate::net::Mac::from_ipv4(ip).0
}

/// A network's gateway when none is given: its first address (none in a
/// /31 or /32, or an IPv6 network).
pub fn default_gateway(cidr: IpNet) -> Option<Ipv4Addr> {
    match cidr.network().addr {
        std::net::IpAddr::V4(a) if cidr.prefix < 31 => Some(Ipv4Addr::from(u32::from(a) + 1)),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn n(s: &str) -> IpNet {
        IpNet::parse_network(s).unwrap()
    }
    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn fan_maps_like_ubuntu_fan() {
        assert_eq!(fan_block(n("250.0.0.0/8"), n("172.30.0.0/16"), ip("172.30.0.28")).unwrap(), n("250.0.28.0/24"));
        assert_eq!(fan_block(n("250.0.0.0/8"), n("172.30.0.0/16"), ip("172.30.5.7")).unwrap(), n("250.5.7.0/24"));
        // The general form: a /12 overlay onto a /24 underlay gives /20 blocks.
        assert_eq!(fan_block(n("10.16.0.0/12"), n("192.168.7.0/24"), ip("192.168.7.3")).unwrap(), n("10.16.48.0/20"));
    }

    #[test]
    fn fan_refuses_what_does_not_map() {
        assert!(matches!(
            fan_block(n("250.0.0.0/8"), n("172.30.0.0/16"), ip("172.31.0.1")),
            Err(IpamError::FanOutside { .. })
        ));
        assert!(matches!(
            fan_block(n("250.0.0.0/8"), n("172.30.0.0/16"), ip("172.30.0.0")),
            Err(IpamError::FanReserved { .. })
        ));
        assert!(matches!(
            fan_block(n("10.0.0.0/16"), n("172.30.0.0/16"), ip("172.30.0.1")),
            Err(IpamError::FanTooSmall { block_prefix: 32, .. })
        ));
        assert!(matches!(fan_block(n("fd00::/8"), n("172.30.0.0/16"), ip("172.30.0.1")), Err(IpamError::NotIpv4(_))));
    }

    #[test]
    fn pool_blocks_are_first_free() {
        let net = n("10.1.0.0/16");
        assert_eq!(first_free_block(net, 24, &[]).unwrap(), n("10.1.0.0/24"));
        assert_eq!(first_free_block(net, 24, &[n("10.1.0.0/24"), n("10.1.2.0/24")]).unwrap(), n("10.1.1.0/24"));
        // A larger taken block covers the smaller ones inside it.
        assert_eq!(first_free_block(net, 26, &[n("10.1.0.0/24")]).unwrap(), n("10.1.1.0/26"));
        assert!(matches!(first_free_block(n("10.1.0.0/30"), 30, &[n("10.1.0.0/30")]), Err(IpamError::NoFreeBlock(_))));
        assert!(matches!(first_free_block(net, 8, &[]), Err(IpamError::BadBlockPrefix { .. })));
        assert!(matches!(first_free_block(net, 31, &[]), Err(IpamError::BadBlockPrefix { .. })));
    }

    #[test]
    fn addresses_skip_reserved_ones() {
        let net = n("10.1.0.0/16");
        let none = BTreeSet::new();
        // First block: the network address and the block's first are .0.
        assert_eq!(lowest_free_address(net, n("10.1.0.0/24"), None, &none).unwrap(), ip("10.1.0.1"));
        assert_eq!(lowest_free_address(net, n("10.1.0.0/24"), Some(ip("10.1.0.1")), &none).unwrap(), ip("10.1.0.2"));
        let used: BTreeSet<_> = [ip("10.1.1.1"), ip("10.1.1.2")].into();
        assert_eq!(lowest_free_address(net, n("10.1.1.0/24"), None, &used).unwrap(), ip("10.1.1.3"));
        // Static: the block is the network.
        let small = n("192.168.5.0/30");
        assert_eq!(lowest_free_address(small, small, None, &none).unwrap(), ip("192.168.5.1"));
        let full: BTreeSet<_> = [ip("192.168.5.1"), ip("192.168.5.2")].into();
        assert!(matches!(lowest_free_address(small, small, None, &full), Err(IpamError::NoFreeAddress(_))));
    }

    #[test]
    fn vnis_are_lowest_free() {
        assert_eq!(lowest_free_vni(&BTreeSet::new()).unwrap(), 1);
        assert_eq!(lowest_free_vni(&[1, 2, 4].into()).unwrap(), 3);
        assert_eq!(lowest_free_vni(&[2, 3].into()).unwrap(), 1);
        assert_eq!(lowest_free_vni(&[0, 1].into()).unwrap(), 2);
        let all: BTreeSet<u32> = (1..=MAX_VNI).collect();
        assert_eq!(lowest_free_vni(&all), Err(IpamError::NoFreeVni));
    }

    proptest! {
        #[test]
        fn fan_blocks_of_distinct_hosts_never_overlap(a in 1u32..65535, b in 1u32..65535) {
            let o = n("250.0.0.0/8");
            let u = n("172.30.0.0/16");
            let base = u32::from(ip("172.30.0.0"));
            let ba = fan_block(o, u, Ipv4Addr::from(base + a)).unwrap();
            let bb = fan_block(o, u, Ipv4Addr::from(base + b)).unwrap();
            prop_assert!(o.contains(ba.addr));
            prop_assert_eq!(ba.prefix, 24);
            prop_assert_eq!(ba == bb, a == b);
        }

        #[test]
        fn pool_block_is_inside_and_free(taken_idx in proptest::collection::btree_set(0u32..64, 0..63)) {
            let net = n("10.9.0.0/18");
            let taken: Vec<IpNet> = taken_idx.iter().map(|i| net4(u32::from(ip("10.9.0.0")) + i * 256, 24)).collect();
            let b = first_free_block(net, 24, &taken).unwrap();
            prop_assert!(net.contains(b.addr));
            prop_assert!(!taken.contains(&b));
            // It is the lowest free one.
            let want = (0u32..64).find(|i| !taken_idx.contains(i)).unwrap();
            prop_assert_eq!(b, net4(u32::from(ip("10.9.0.0")) + want * 256, 24));
        }

        #[test]
        fn allocated_address_is_free_and_in_block(used_idx in proptest::collection::btree_set(0u32..256, 0..200), gw in proptest::option::of(0u32..256)) {
            let net = n("10.2.0.0/16");
            let block = n("10.2.3.0/24");
            let base = u32::from(ip("10.2.3.0"));
            let used: BTreeSet<Ipv4Addr> = used_idx.iter().map(|i| Ipv4Addr::from(base + i)).collect();
            let gateway = gw.map(|g| Ipv4Addr::from(base + g));
            match lowest_free_address(net, block, gateway, &used) {
                Ok(a) => {
                    prop_assert!(block.contains(a.into()));
                    prop_assert!(!used.contains(&a));
                    prop_assert!(Some(a) != gateway);
                    prop_assert!(a != Ipv4Addr::from(base) && a != Ipv4Addr::from(base + 255));
                }
                Err(IpamError::NoFreeAddress(_)) => {
                    prop_assert!((1..255).all(|i| used_idx.contains(&i) || gw == Some(i)));
                }
                Err(e) => prop_assert!(false, "unexpected {e}"),
            }
        }

        #[test]
        fn vni_is_lowest_free(used in proptest::collection::btree_set(0u32..100, 0..90)) {
            let v = lowest_free_vni(&used).unwrap();
            prop_assert!(!used.contains(&v) && v >= 1);
            prop_assert!((1..v).all(|x| used.contains(&x)));
        }
    }
}
