//! What a user asks for, checked before anything is sent: names, bridge
//! settings and tunnel settings. Pure.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::net::IpNet;

use super::VswitchError;

/// Linux interface names hold at most 15 bytes (IFNAMSIZ less the NUL).
pub const IFNAMSIZ_MAX: usize = 15;

/// Checks a bridge, port or interface name as Linux checks a device name
/// (OVS makes a device of that name for internal ports and bridges).
pub fn check_name(kind: &'static str, name: &str) -> Result<(), VswitchError> {
    let bad = |why: String| VswitchError::BadName { kind, name: name.to_owned(), why };
    if name.is_empty() {
        return Err(bad("it is empty".into()));
    }
    if name.len() > IFNAMSIZ_MAX {
        return Err(bad(format!("{} bytes, at most {IFNAMSIZ_MAX}", name.len())));
    }
    if name == "." || name == ".." {
        return Err(bad("it is not a valid interface name".into()));
    }
    if let Some(c) = name.chars().find(|c| *c == '/' || *c == ':' || c.is_whitespace() || c.is_control()) {
        return Err(bad(format!("it contains {c:?}")));
    }
    Ok(())
}

/// The datapath a bridge runs on (the Bridge `datapath_type` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatapathType {
    /// The kernel module (`system`, which OVS also spells as "").
    System,
    /// The userspace datapath.
    Netdev,
}

impl DatapathType {
    pub fn as_str(self) -> &'static str {
        match self {
            DatapathType::System => "system",
            DatapathType::Netdev => "netdev",
        }
    }

    /// Reads the column: OVS treats "" as `system`.
    pub fn from_column(s: &str) -> Option<Self> {
        match s {
            "" | "system" => Some(DatapathType::System),
            "netdev" => Some(DatapathType::Netdev),
            _ => None,
        }
    }

    /// `system` where the kernel's openvswitch module is loaded, else
    /// `netdev` (as on machines without the module).
    pub fn detect() -> Self {
        if std::path::Path::new("/sys/module/openvswitch").exists() {
            DatapathType::System
        } else {
            DatapathType::Netdev
        }
    }
}

impl fmt::Display for DatapathType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a bridge does while no controller is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    Secure,
    Standalone,
}

impl FailMode {
    pub fn as_str(self) -> &'static str {
        match self {
            FailMode::Secure => "secure",
            FailMode::Standalone => "standalone",
        }
    }
}

/// `bridge add`.
#[derive(Debug, Clone, PartialEq)]
pub struct BridgeSpec {
    pub name: String,
    /// `None`: no preference (auto-detected for a new bridge, and any
    /// datapath accepted for an existing one).
    pub datapath: Option<DatapathType>,
    pub fail_mode: Option<FailMode>,
    /// `mtu_request` of the bridge's internal interface.
    pub mtu: Option<u32>,
    /// Address for the bridge's internal interface.
    pub cidr: Option<IpNet>,
}

impl BridgeSpec {
    pub fn new(name: &str) -> Result<Self, VswitchError> {
        check_name("bridge", name)?;
        Ok(BridgeSpec { name: name.to_owned(), datapath: None, fail_mode: None, mtu: None, cidr: None })
    }

    pub fn check(&self) -> Result<(), VswitchError> {
        check_name("bridge", &self.name)?;
        if let Some(mtu) = self.mtu {
            check_mtu(mtu)?;
        }
        Ok(())
    }
}

/// Ethernet MTUs Linux and OVS accept on these interfaces.
pub const MTU_RANGE: std::ops::RangeInclusive<u32> = 68..=65535;

pub fn check_mtu(mtu: u32) -> Result<(), VswitchError> {
    if MTU_RANGE.contains(&mtu) {
        Ok(())
    } else {
        Err(VswitchError::BadValue(format!(
            "bad MTU {mtu}: must be between {} and {}",
            MTU_RANGE.start(),
            MTU_RANGE.end()
        )))
    }
}

/// The tunnel types ovsnet manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TunnelType {
    Gre,
    Vxlan,
    Geneve,
}

impl TunnelType {
    pub const ALL: [TunnelType; 3] = [TunnelType::Gre, TunnelType::Vxlan, TunnelType::Geneve];

    pub fn as_str(self) -> &'static str {
        match self {
            TunnelType::Gre => "gre",
            TunnelType::Vxlan => "vxlan",
            TunnelType::Geneve => "geneve",
        }
    }

    pub fn from_column(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The largest key (GRE key, VXLAN or Geneve VNI) the header carries.
    pub fn max_key(self) -> u64 {
        match self {
            TunnelType::Gre => u64::from(u32::MAX),
            TunnelType::Vxlan | TunnelType::Geneve => (1 << 24) - 1,
        }
    }

    /// Whether the encapsulation runs over UDP (and so has a port).
    pub fn has_udp_port(self) -> bool {
        !matches!(self, TunnelType::Gre)
    }

    /// Bytes the encapsulation adds over IPv4, counting the inner Ethernet
    /// header: what a container's MTU must leave for it.
    pub fn overhead_ipv4(self) -> u32 {
        match self {
            // outer IPv4 20 + GRE with key 8 + inner Ethernet 14
            TunnelType::Gre => 42,
            // outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14
            TunnelType::Vxlan => 50,
            // outer IPv4 20 + UDP 8 + Geneve 8 (no options) + inner Ethernet 14
            TunnelType::Geneve => 50,
        }
    }
}

impl fmt::Display for TunnelType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TunnelType {
    type Err = VswitchError;
    fn from_str(s: &str) -> Result<Self, VswitchError> {
        Self::from_column(s)
            .ok_or_else(|| VswitchError::BadValue(format!("unknown tunnel type {s:?}: use gre, vxlan or geneve")))
    }
}

/// A tunnel endpoint: a fixed address, or `flow` (set per packet by flows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowOr<T> {
    Value(T),
    Flow,
}

impl<T: fmt::Display> fmt::Display for FlowOr<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlowOr::Value(v) => v.fmt(f),
            FlowOr::Flow => f.write_str("flow"),
        }
    }
}

/// Parses `flow` or an IP address.
pub fn parse_endpoint(what: &str, s: &str) -> Result<FlowOr<IpAddr>, VswitchError> {
    if s == "flow" {
        return Ok(FlowOr::Flow);
    }
    IpAddr::from_str(s)
        .map(FlowOr::Value)
        .map_err(|_| VswitchError::BadValue(format!("bad {what} {s:?}: expected an IP address or \"flow\"")))
}

/// Parses `flow` or a key (decimal or 0x hex).
pub fn parse_key(s: &str) -> Result<FlowOr<u64>, VswitchError> {
    if s == "flow" {
        return Ok(FlowOr::Flow);
    }
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse::<u64>(),
    };
    parsed
        .map(FlowOr::Value)
        .map_err(|_| VswitchError::BadValue(format!("bad key {s:?}: expected a number or \"flow\"")))
}

/// `tunnel add`.
#[derive(Debug, Clone, PartialEq)]
pub struct TunnelSpec {
    pub bridge: String,
    pub name: String,
    pub kind: TunnelType,
    pub remote: FlowOr<IpAddr>,
    pub local: Option<FlowOr<IpAddr>>,
    pub key: Option<FlowOr<u64>>,
    pub dst_port: Option<u16>,
}

impl TunnelSpec {
    /// Checks names, the key against the header's width, the port, and
    /// that both endpoints are of one address family.
    pub fn check(&self) -> Result<(), VswitchError> {
        check_name("bridge", &self.bridge)?;
        check_name("port", &self.name)?;
        if let Some(FlowOr::Value(key)) = self.key {
            if key > self.kind.max_key() {
                return Err(VswitchError::BadValue(format!(
                    "key {key} out of range for {}: at most {}",
                    self.kind,
                    self.kind.max_key()
                )));
            }
        }
        if let Some(port) = self.dst_port {
            if !self.kind.has_udp_port() {
                return Err(VswitchError::BadValue(format!("--dst-port does not apply to {}", self.kind)));
            }
            if port == 0 {
                return Err(VswitchError::BadValue("bad destination port 0".into()));
            }
        }
        if let (FlowOr::Value(r), Some(FlowOr::Value(l))) = (self.remote, self.local) {
            if r.is_ipv4() != l.is_ipv4() {
                return Err(VswitchError::BadValue(format!(
                    "remote {r} and local {l} are of different address families"
                )));
            }
        }
        if let FlowOr::Value(r) = self.remote {
            if r.is_unspecified() || r.is_multicast() {
                return Err(VswitchError::BadValue(format!("bad remote {r}: not a unicast address")));
            }
        }
        Ok(())
    }

    /// The Interface `options` column, as `ovs-vsctl ... options:K=V` sets it.
    pub fn options(&self) -> BTreeMap<String, String> {
        let mut o = BTreeMap::new();
        o.insert("remote_ip".to_owned(), self.remote.to_string());
        if let Some(local) = self.local {
            o.insert("local_ip".to_owned(), local.to_string());
        }
        if let Some(key) = self.key {
            o.insert("key".to_owned(), key.to_string());
        }
        if let Some(port) = self.dst_port {
            o.insert("dst_port".to_owned(), port.to_string());
        }
        o
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("bridge", "obr0").is_ok());
        assert!(check_name("bridge", "a23456789012345").is_ok());
        for bad in ["", "a234567890123456", "a/b", "a b", "a:b", ".", "..", "a\tb"] {
            let e = check_name("bridge", bad).unwrap_err().to_string();
            assert!(e.starts_with("bad bridge name"), "{e}");
        }
    }

    fn spec(kind: TunnelType) -> TunnelSpec {
        TunnelSpec {
            bridge: "obr0".into(),
            name: "t0".into(),
            kind,
            remote: FlowOr::Value("192.0.2.2".parse().unwrap()),
            local: None,
            key: None,
            dst_port: None,
        }
    }

    #[test]
    fn keys_fit_the_header() {
        let mut s = spec(TunnelType::Vxlan);
        s.key = Some(FlowOr::Value(1 << 24));
        assert!(s.check().unwrap_err().to_string().contains("out of range for vxlan"));
        s.key = Some(FlowOr::Value((1 << 24) - 1));
        assert!(s.check().is_ok());
        let mut g = spec(TunnelType::Gre);
        g.key = Some(FlowOr::Value(u64::from(u32::MAX)));
        assert!(g.check().is_ok());
        g.key = Some(FlowOr::Value(u64::from(u32::MAX) + 1));
        assert!(g.check().is_err());
        g.key = None;
        g.dst_port = Some(4789);
        assert!(g.check().unwrap_err().to_string().contains("does not apply to gre"));
    }

    #[test]
    fn options_are_what_ovs_vsctl_sets() {
        let mut s = spec(TunnelType::Vxlan);
        s.key = Some(FlowOr::Flow);
        s.local = Some(FlowOr::Value("192.0.2.1".parse().unwrap()));
        s.dst_port = Some(4790);
        let o = s.options();
        assert_eq!(o["remote_ip"], "192.0.2.2");
        assert_eq!(o["local_ip"], "192.0.2.1");
        assert_eq!(o["key"], "flow");
        assert_eq!(o["dst_port"], "4790");
        assert_eq!(parse_key("0x10").unwrap(), FlowOr::Value(16));
        assert!(parse_key("-1").is_err());
        assert!(parse_endpoint("remote", "nope").is_err());
    }
}
