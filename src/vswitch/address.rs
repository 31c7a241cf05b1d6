//! An address on a bridge's internal interface (`bridge add --cidr`),
//! through rtnetlink, in the namespace where ovs-vswitchd made the device.

use std::time::{Duration, Instant};

use crate::net::IpNet;
use crate::netlink::{Netlink, NetlinkError};

#[derive(Debug, thiserror::Error)]
pub enum AddressError {
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error("device {0} did not appear within {1:?}")]
    NoDevice(String, Duration),
}

/// Adds `cidr` to device `ifname` (an address already there is fine) and
/// sets it up, waiting briefly for ovs-vswitchd to make the device.
pub async fn set_interface_address(ns: Option<&str>, ifname: &str, cidr: IpNet) -> Result<(), AddressError> {
    let nl = match ns {
        Some(name) => Netlink::open_netns(name)?,
        None => Netlink::open()?,
    };
    let limit = Duration::from_secs(5);
    let start = Instant::now();
    let link = loop {
        if let Some(link) = nl.link_by_name(ifname).await? {
            break link;
        }
        if start.elapsed() > limit {
            return Err(AddressError::NoDevice(ifname.to_owned(), limit));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    if !nl.addresses(&link).await?.contains(&(cidr.addr, cidr.prefix)) {
        nl.add_address(&link, cidr.addr, cidr.prefix).await?;
    }
    nl.set_up(&link).await?;
    Ok(())
}
