//! Transmit checksum offload through the `SIOCETHTOOL` ioctl
//! (`ETHTOOL_GTXCSUM` / `ETHTOOL_STXCSUM`), what `ethtool -K DEV tx off`
//! does, without the `ethtool` binary. The ioctl acts in the network
//! namespace of the socket it is issued on.

use std::os::fd::{AsRawFd, OwnedFd};

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GTXCSUM: u32 = 0x0000_0016;
const ETHTOOL_STXCSUM: u32 = 0x0000_0017;

/// `struct ethtool_value` from `<linux/ethtool.h>`.
#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// `struct ifreq` with the `ifr_data` member of the union.
#[repr(C)]
struct IfreqData {
    name: [u8; libc::IFNAMSIZ],
    data: *mut EthtoolValue,
    // The kernel's union is 24 bytes; keep the struct as large.
    _pad: [u8; 16],
}

/// A datagram socket to issue interface ioctls on.
pub(crate) fn open_control_socket() -> std::io::Result<OwnedFd> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    Ok(socket(AddressFamily::Inet, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)?)
}

fn ethtool(sock: &OwnedFd, ifname: &str, cmd: u32, data: u32) -> std::io::Result<u32> {
    let bytes = ifname.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "bad interface name"));
    }
    let mut value = EthtoolValue { cmd, data };
    let mut req = IfreqData { name: [0; libc::IFNAMSIZ], data: &mut value, _pad: [0; 16] };
    req.name[..bytes.len()].copy_from_slice(bytes);
    // SAFETY: req and value live across the call; the kernel reads the
    // name and reads/writes `value` through the pointer.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), SIOCETHTOOL as _, &mut req as *mut IfreqData) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(value.data)
}

/// Whether transmit checksum offload is on for `ifname`.
pub(crate) fn tx_checksum(sock: &OwnedFd, ifname: &str) -> std::io::Result<bool> {
    ethtool(sock, ifname, ETHTOOL_GTXCSUM, 0).map(|v| v != 0)
}

/// Turns transmit checksum offload on or off for `ifname`.
pub(crate) fn set_tx_checksum(sock: &OwnedFd, ifname: &str, on: bool) -> std::io::Result<()> {
    ethtool(sock, ifname, ETHTOOL_STXCSUM, u32::from(on)).map(|_| ())
}
