//! Gratuitous ARP: a pure packet builder and a sender over an `AF_PACKET`
//! socket (the socket decides the namespace, not the thread that sends).

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};

/// Ethernet header (14) + ARP for IPv4 over Ethernet (28).
pub const GARP_LEN: usize = 42;

/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;

/// Builds a gratuitous ARP: an ARP *request* for the sender's own address,
/// broadcast, with the target hardware address zero (RFC 5227 §3 calls
/// this an ARP announcement; Linux and `arping -U` send the same).
pub fn gratuitous_arp(mac: [u8; 6], ip: Ipv4Addr) -> [u8; GARP_LEN] {
    let mut p = [0u8; GARP_LEN];
    let ip = ip.octets();
    p[0..6].copy_from_slice(&[0xff; 6]); // destination: broadcast
    p[6..12].copy_from_slice(&mac); // source
    p[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    p[14..16].copy_from_slice(&1u16.to_be_bytes()); // htype: Ethernet
    p[16..18].copy_from_slice(&0x0800u16.to_be_bytes()); // ptype: IPv4
    p[18] = 6; // hlen
    p[19] = 4; // plen
    p[20..22].copy_from_slice(&1u16.to_be_bytes()); // op: request
    p[22..28].copy_from_slice(&mac); // sender hardware address
    p[28..32].copy_from_slice(&ip); // sender protocol address
    // target hardware address stays zero
    p[38..42].copy_from_slice(&ip); // target protocol address: our own
    p
}

/// Opens an `AF_PACKET` raw socket that receives nothing (protocol 0) and
/// sends on whatever interface `sendto` names. It belongs to the network
/// namespace of the thread that opens it.
pub(crate) fn open_packet_socket() -> std::io::Result<OwnedFd> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    // Protocol 0: the socket receives nothing, it only sends.
    Ok(socket(AddressFamily::Packet, SockType::Raw, SockFlag::SOCK_CLOEXEC, None)?)
}

/// Sends one Ethernet frame out of interface `ifindex` through `sock`.
pub(crate) fn send_frame(sock: &OwnedFd, ifindex: u32, frame: &[u8]) -> std::io::Result<()> {
    if frame.len() < 14 {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "frame shorter than an Ethernet header"));
    }
    // SAFETY: sockaddr_ll is plain old data; zero is a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = u16::from_be_bytes([frame[12], frame[13]]).to_be();
    addr.sll_ifindex = ifindex as i32;
    addr.sll_halen = 6;
    addr.sll_addr[..6].copy_from_slice(&frame[0..6]);
    // SAFETY: the buffer and address are valid for the lengths given.
    let n = unsafe {
        libc::sendto(
            sock.as_raw_fd(),
            frame.as_ptr().cast(),
            frame.len(),
            0,
            (&addr as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garp_bytes() {
        let frame = gratuitous_arp([0x0a, 0x58, 172, 16, 42, 10], Ipv4Addr::new(172, 16, 42, 10));
        #[rustfmt::skip]
        let expected: [u8; GARP_LEN] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // eth dst: broadcast
            0x0a, 0x58, 0xac, 0x10, 0x2a, 0x0a, // eth src
            0x08, 0x06,                         // ethertype ARP
            0x00, 0x01,                         // htype Ethernet
            0x08, 0x00,                         // ptype IPv4
            0x06, 0x04,                         // hlen, plen
            0x00, 0x01,                         // op request
            0x0a, 0x58, 0xac, 0x10, 0x2a, 0x0a, // sha
            0xac, 0x10, 0x2a, 0x0a,             // spa 172.16.42.10
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // tha zero
            0xac, 0x10, 0x2a, 0x0a,             // tpa = spa
        ];
        assert_eq!(frame, expected);
    }
}
