//! An address on a bridge's internal interface (`bridge add --cidr`),
//! through rtnetlink, in the namespace where ovs-vswitchd made the device.

use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use rtnetlink::{Handle, LinkUnspec};

use crate::net::IpNet;
use crate::netns;

#[derive(Debug, thiserror::Error)]
pub enum AddressError {
    #[error(transparent)]
    Netns(#[from] netns::NetnsError),
    #[error("netlink socket: {0}")]
    Socket(std::io::Error),
    #[error("device {0} did not appear within {1:?}")]
    NoDevice(String, Duration),
    #[error("netlink: {0}")]
    Netlink(#[from] rtnetlink::Error),
}

/// Opens an rtnetlink handle whose socket lives in namespace `ns` (or in
/// this one). The socket is made on a short-lived thread that entered
/// the namespace; this thread never changes namespace.
pub async fn handle_in(ns: Option<&str>) -> Result<Handle, AddressError> {
    let (conn, handle, _) = match ns {
        None => rtnetlink::new_connection().map_err(AddressError::Socket)?,
        Some(name) => {
            let fd = netns::open(name)?;
            let rt = tokio::runtime::Handle::current();
            netns::run_in(&fd, move || {
                let _enter = rt.enter();
                rtnetlink::new_connection()
            })?
            .map_err(AddressError::Socket)?
        }
    };
    tokio::spawn(conn);
    Ok(handle)
}

/// Adds `cidr` to device `ifname` (an address already there is fine) and
/// sets it up, waiting briefly for the device to appear.
pub async fn set_interface_address(ns: Option<&str>, ifname: &str, cidr: IpNet) -> Result<(), AddressError> {
    let handle = handle_in(ns).await?;
    let limit = Duration::from_secs(5);
    let start = Instant::now();
    let index = loop {
        let found = handle.link().get().match_name(ifname.to_owned()).execute().try_next().await;
        match found {
            Ok(Some(link)) => break link.header.index,
            Ok(None) | Err(rtnetlink::Error::NetlinkError(_)) if start.elapsed() < limit => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok(None) | Err(rtnetlink::Error::NetlinkError(_)) => {
                return Err(AddressError::NoDevice(ifname.to_owned(), limit));
            }
            Err(e) => return Err(e.into()),
        }
    };
    match handle.address().add(index, cidr.addr, cidr.prefix).execute().await {
        Ok(()) => {}
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EEXIST => {}
        Err(e) => return Err(e.into()),
    }
    handle.link().set(LinkUnspec::new_with_index(index).up().build()).execute().await?;
    Ok(())
}
