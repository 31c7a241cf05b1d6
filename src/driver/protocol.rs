//! Docker's remote network driver and remote IPAM driver protocols, as
//! messages (pure). The engine POSTs JSON to `/Plugin.Activate`,
//! `/NetworkDriver.*` and `/IpamDriver.*`; [`Call::parse`] turns a path and
//! a body into one typed, checked call (or `None` for a path the protocol
//! does not define here, which the server answers with 404, "not
//! supported"), and the reply types serialize to the JSON the engine
//! reads. A failure is `{"Err": "..."}` ([`error_body`]), which `docker`
//! prints as it is.
//!
//! Field names are the engine's (`NetworkID`, `IPv4Data`, ...); unknown
//! fields are ignored, as the engine adds some across versions.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::net::{IpNet, Mac, PublishedPort, Transport};

/// The `Content-Type` of the engine's plugin API.
pub const CONTENT_TYPE: &str = "application/vnd.docker.plugins.v1.2+json";

/// The option key under which `docker network create -o K=V` options arrive.
pub const GENERIC_OPTIONS: &str = "com.docker.network.generic";

/// The `RequestAddress` option that marks the gateway's request.
pub const REQUEST_ADDRESS_TYPE: &str = "RequestAddressType";
pub const GATEWAY_REQUEST: &str = "com.docker.network.gateway";

/// A malformed request: one line naming what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{call}: {message}")]
pub struct ProtocolError {
    pub call: &'static str,
    pub message: String,
}

/// One request from the engine, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    Activate,
    NetworkCapabilities,
    CreateNetwork(CreateNetwork),
    DeleteNetwork { network_id: String },
    CreateEndpoint(CreateEndpoint),
    EndpointOperInfo(EndpointRef),
    DeleteEndpoint(EndpointRef),
    Join(Join),
    Leave(EndpointRef),
    DiscoverNew,
    DiscoverDelete,
    ProgramExternalConnectivity(ExternalConnectivity),
    RevokeExternalConnectivity(EndpointRef),
    IpamCapabilities,
    DefaultAddressSpaces,
    RequestPool(RequestPool),
    ReleasePool { pool_id: String },
    RequestAddress(RequestAddress),
    ReleaseAddress { pool_id: String, address: IpAddr },
}

/// A network and one of its endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointRef {
    pub network_id: String,
    pub endpoint_id: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreateNetwork {
    pub network_id: String,
    /// `-o K=V` of `docker network create`.
    pub generic: BTreeMap<String, String>,
    /// The engine's other options (`com.docker.network.enable_ipv6`, ...).
    pub options: BTreeMap<String, Value>,
    /// The IPv4 pools with their gateways (one per `--subnet`).
    pub ipv4: Vec<PoolData>,
    /// Whether `--ipv6` pools were given (refused: IPv4 only today).
    pub has_ipv6: bool,
}

/// One `IPv4Data` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolData {
    pub address_space: String,
    pub pool: IpNet,
    /// The gateway as the engine gives it, `IP/PREFIX`.
    pub gateway: Option<IpNet>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreateEndpoint {
    pub endpoint: EndpointRef,
    /// The address IPAM gave it, `IP/PREFIX`.
    pub address: Option<IpNet>,
    pub mac: Option<Mac>,
    pub options: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Join {
    pub endpoint: EndpointRef,
    /// The container's network namespace (a path).
    pub sandbox_key: String,
    pub options: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExternalConnectivity {
    pub endpoint: EndpointRef,
    pub options: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPool {
    pub address_space: String,
    /// `--subnet`; `None` when the engine asks the driver to choose.
    pub pool: Option<IpNet>,
    pub sub_pool: Option<IpNet>,
    pub options: BTreeMap<String, String>,
    pub v6: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestAddress {
    pub pool_id: String,
    /// The address asked for (`--ip`, `--gateway`); `None`: any.
    pub address: Option<IpAddr>,
    /// Whether this is the request for the network's gateway.
    pub gateway: bool,
    pub options: BTreeMap<String, String>,
}

// The engine's JSON, as it spells it.

#[derive(Deserialize)]
struct RawNetworkRef {
    #[serde(rename = "NetworkID", default)]
    network_id: String,
}

#[derive(Deserialize)]
struct RawEndpointRef {
    #[serde(rename = "NetworkID", default)]
    network_id: String,
    #[serde(rename = "EndpointID", default)]
    endpoint_id: String,
    #[serde(rename = "Options", default)]
    options: Option<BTreeMap<String, Value>>,
}

#[derive(Deserialize)]
struct RawPoolData {
    #[serde(rename = "AddressSpace", default)]
    address_space: String,
    #[serde(rename = "Pool", default)]
    pool: String,
    #[serde(rename = "Gateway", default)]
    gateway: String,
}

#[derive(Deserialize)]
struct RawCreateNetwork {
    #[serde(rename = "NetworkID", default)]
    network_id: String,
    #[serde(rename = "Options", default)]
    options: Option<BTreeMap<String, Value>>,
    #[serde(rename = "IPv4Data", default)]
    ipv4: Option<Vec<RawPoolData>>,
    #[serde(rename = "IPv6Data", default)]
    ipv6: Option<Vec<RawPoolData>>,
}

#[derive(Deserialize, Default)]
struct RawInterface {
    #[serde(rename = "Address", default)]
    address: String,
    #[serde(rename = "AddressIPv6", default)]
    address_ipv6: String,
    #[serde(rename = "MacAddress", default)]
    mac_address: String,
}

#[derive(Deserialize)]
struct RawCreateEndpoint {
    #[serde(rename = "NetworkID", default)]
    network_id: String,
    #[serde(rename = "EndpointID", default)]
    endpoint_id: String,
    #[serde(rename = "Interface", default)]
    interface: Option<RawInterface>,
    #[serde(rename = "Options", default)]
    options: Option<BTreeMap<String, Value>>,
}

#[derive(Deserialize)]
struct RawJoin {
    #[serde(rename = "NetworkID", default)]
    network_id: String,
    #[serde(rename = "EndpointID", default)]
    endpoint_id: String,
    #[serde(rename = "SandboxKey", default)]
    sandbox_key: String,
    #[serde(rename = "Options", default)]
    options: Option<BTreeMap<String, Value>>,
}

#[derive(Deserialize)]
struct RawRequestPool {
    #[serde(rename = "AddressSpace", default)]
    address_space: String,
    #[serde(rename = "Pool", default)]
    pool: String,
    #[serde(rename = "SubPool", default)]
    sub_pool: String,
    #[serde(rename = "Options", default)]
    options: Option<BTreeMap<String, String>>,
    #[serde(rename = "V6", default)]
    v6: bool,
}

#[derive(Deserialize)]
struct RawPoolRef {
    #[serde(rename = "PoolID", default)]
    pool_id: String,
}

#[derive(Deserialize)]
struct RawRequestAddress {
    #[serde(rename = "PoolID", default)]
    pool_id: String,
    #[serde(rename = "Address", default)]
    address: String,
    #[serde(rename = "Options", default)]
    options: Option<BTreeMap<String, String>>,
}

fn bad(call: &'static str, message: impl Into<String>) -> ProtocolError {
    ProtocolError { call, message: message.into() }
}

fn body<'a, T: Deserialize<'a>>(call: &'static str, bytes: &'a [u8]) -> Result<T, ProtocolError> {
    serde_json::from_slice(bytes).map_err(|e| bad(call, format!("malformed JSON body: {e}")))
}

/// An ID the engine made (64 hex digits today): non-empty, at most 128
/// characters, letters and digits only, so it can name rows and ports.
fn check_id(call: &'static str, what: &str, id: String) -> Result<String, ProtocolError> {
    if id.is_empty() {
        return Err(bad(call, format!("no {what}")));
    }
    if id.len() > 128 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        let shown: String = id.chars().take(40).collect();
        return Err(bad(call, format!("bad {what} {shown:?}: expected letters and digits")));
    }
    Ok(id)
}

fn endpoint_ref(call: &'static str, network_id: String, endpoint_id: String) -> Result<EndpointRef, ProtocolError> {
    Ok(EndpointRef {
        network_id: check_id(call, "NetworkID", network_id)?,
        endpoint_id: check_id(call, "EndpointID", endpoint_id)?,
    })
}

fn optional<T>(
    call: &'static str,
    what: &str,
    s: &str,
    parse: impl Fn(&str) -> Result<T, crate::net::AddrError>,
) -> Result<Option<T>, ProtocolError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    parse(s).map(Some).map_err(|e| bad(call, format!("bad {what} {s:?}: {e}")))
}

/// Bodies of calls that carry none may be empty, `{}` or `null`.
fn no_body(call: &'static str, bytes: &[u8]) -> Result<(), ProtocolError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(_) | Value::Null) => Ok(()),
        Ok(_) => Err(bad(call, "expected a JSON object")),
        Err(e) => Err(bad(call, format!("malformed JSON body: {e}"))),
    }
}

impl Call {
    /// The call a path names, with its body checked. `Ok(None)`: a path
    /// this driver does not implement (the engine then gets 404).
    pub fn parse(path: &str, bytes: &[u8]) -> Result<Option<Call>, ProtocolError> {
        let call = match path.trim_start_matches('/') {
            "Plugin.Activate" => {
                no_body("Plugin.Activate", bytes)?;
                Call::Activate
            }
            "NetworkDriver.GetCapabilities" => {
                no_body("NetworkDriver.GetCapabilities", bytes)?;
                Call::NetworkCapabilities
            }
            "NetworkDriver.CreateNetwork" => {
                const C: &str = "CreateNetwork";
                let r: RawCreateNetwork = body(C, bytes)?;
                let mut options = r.options.unwrap_or_default();
                let generic = match options.remove(GENERIC_OPTIONS) {
                    None | Some(Value::Null) => BTreeMap::new(),
                    Some(Value::Object(m)) => m
                        .into_iter()
                        .map(|(k, v)| match v {
                            Value::String(s) => Ok((k, s)),
                            other => Ok((k, other.to_string())),
                        })
                        .collect::<Result<_, ProtocolError>>()?,
                    Some(_) => return Err(bad(C, format!("{GENERIC_OPTIONS} is not an object"))),
                };
                let mut ipv4 = Vec::new();
                for p in r.ipv4.unwrap_or_default() {
                    let pool = optional(C, "IPv4Data Pool", &p.pool, IpNet::parse_network)?
                        .ok_or_else(|| bad(C, "an IPv4Data entry without a Pool"))?;
                    let gateway = optional(C, "IPv4Data Gateway", &p.gateway, IpNet::parse_interface)?;
                    ipv4.push(PoolData { address_space: p.address_space, pool, gateway });
                }
                Call::CreateNetwork(CreateNetwork {
                    network_id: check_id(C, "NetworkID", r.network_id)?,
                    generic,
                    options,
                    ipv4,
                    has_ipv6: r.ipv6.is_some_and(|v| !v.is_empty()),
                })
            }
            "NetworkDriver.DeleteNetwork" => {
                let r: RawNetworkRef = body("DeleteNetwork", bytes)?;
                Call::DeleteNetwork { network_id: check_id("DeleteNetwork", "NetworkID", r.network_id)? }
            }
            "NetworkDriver.CreateEndpoint" => {
                const C: &str = "CreateEndpoint";
                let r: RawCreateEndpoint = body(C, bytes)?;
                let i = r.interface.unwrap_or_default();
                if !i.address_ipv6.trim().is_empty() {
                    return Err(bad(C, "IPv6 addresses are not supported yet"));
                }
                Call::CreateEndpoint(CreateEndpoint {
                    endpoint: endpoint_ref(C, r.network_id, r.endpoint_id)?,
                    address: optional(C, "Interface Address", &i.address, IpNet::parse_interface)?,
                    mac: optional(C, "Interface MacAddress", &i.mac_address, Mac::parse_unicast)?,
                    options: r.options.unwrap_or_default(),
                })
            }
            "NetworkDriver.EndpointOperInfo" => {
                let r: RawEndpointRef = body("EndpointOperInfo", bytes)?;
                Call::EndpointOperInfo(endpoint_ref("EndpointOperInfo", r.network_id, r.endpoint_id)?)
            }
            "NetworkDriver.DeleteEndpoint" => {
                let r: RawEndpointRef = body("DeleteEndpoint", bytes)?;
                Call::DeleteEndpoint(endpoint_ref("DeleteEndpoint", r.network_id, r.endpoint_id)?)
            }
            "NetworkDriver.Join" => {
                const C: &str = "Join";
                let r: RawJoin = body(C, bytes)?;
                if r.sandbox_key.trim().is_empty() || !r.sandbox_key.starts_with('/') {
                    return Err(bad(C, format!("bad SandboxKey {:?}: expected a namespace path", r.sandbox_key)));
                }
                Call::Join(Join {
                    endpoint: endpoint_ref(C, r.network_id, r.endpoint_id)?,
                    sandbox_key: r.sandbox_key,
                    options: r.options.unwrap_or_default(),
                })
            }
            "NetworkDriver.Leave" => {
                let r: RawEndpointRef = body("Leave", bytes)?;
                Call::Leave(endpoint_ref("Leave", r.network_id, r.endpoint_id)?)
            }
            "NetworkDriver.DiscoverNew" => {
                no_body("DiscoverNew", bytes)?;
                Call::DiscoverNew
            }
            "NetworkDriver.DiscoverDelete" => {
                no_body("DiscoverDelete", bytes)?;
                Call::DiscoverDelete
            }
            "NetworkDriver.ProgramExternalConnectivity" => {
                const C: &str = "ProgramExternalConnectivity";
                let r: RawEndpointRef = body(C, bytes)?;
                Call::ProgramExternalConnectivity(ExternalConnectivity {
                    endpoint: endpoint_ref(C, r.network_id, r.endpoint_id)?,
                    options: r.options.unwrap_or_default(),
                })
            }
            "NetworkDriver.RevokeExternalConnectivity" => {
                let r: RawEndpointRef = body("RevokeExternalConnectivity", bytes)?;
                Call::RevokeExternalConnectivity(endpoint_ref(
                    "RevokeExternalConnectivity",
                    r.network_id,
                    r.endpoint_id,
                )?)
            }
            "IpamDriver.GetCapabilities" => {
                no_body("IpamDriver.GetCapabilities", bytes)?;
                Call::IpamCapabilities
            }
            "IpamDriver.GetDefaultAddressSpaces" => {
                no_body("GetDefaultAddressSpaces", bytes)?;
                Call::DefaultAddressSpaces
            }
            "IpamDriver.RequestPool" => {
                const C: &str = "RequestPool";
                let r: RawRequestPool = body(C, bytes)?;
                Call::RequestPool(RequestPool {
                    address_space: r.address_space,
                    pool: optional(C, "Pool", &r.pool, IpNet::parse_network)?,
                    sub_pool: optional(C, "SubPool", &r.sub_pool, IpNet::parse_network)?,
                    options: r.options.unwrap_or_default(),
                    v6: r.v6,
                })
            }
            "IpamDriver.ReleasePool" => {
                let r: RawPoolRef = body("ReleasePool", bytes)?;
                if r.pool_id.trim().is_empty() {
                    return Err(bad("ReleasePool", "no PoolID"));
                }
                Call::ReleasePool { pool_id: r.pool_id }
            }
            "IpamDriver.RequestAddress" => {
                const C: &str = "RequestAddress";
                let r: RawRequestAddress = body(C, bytes)?;
                if r.pool_id.trim().is_empty() {
                    return Err(bad(C, "no PoolID"));
                }
                let options = r.options.unwrap_or_default();
                Call::RequestAddress(RequestAddress {
                    gateway: options.get(REQUEST_ADDRESS_TYPE).map(String::as_str) == Some(GATEWAY_REQUEST),
                    address: optional(C, "Address", &r.address, crate::net::parse_ip)?,
                    pool_id: r.pool_id,
                    options,
                })
            }
            "IpamDriver.ReleaseAddress" => {
                const C: &str = "ReleaseAddress";
                let r: RawRequestAddress = body(C, bytes)?;
                if r.pool_id.trim().is_empty() {
                    return Err(bad(C, "no PoolID"));
                }
                let address =
                    optional(C, "Address", &r.address, crate::net::parse_ip)?.ok_or_else(|| bad(C, "no Address"))?;
                Call::ReleaseAddress { pool_id: r.pool_id, address }
            }
            _ => return Ok(None),
        };
        Ok(Some(call))
    }
}

/// The body of a failure: `{"Err": "..."}`.
pub fn error_body(message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "Err": message })).unwrap_or_else(|_| b"{\"Err\":\"error\"}".to_vec())
}

/// `Plugin.Activate`'s reply.
pub fn activate_reply() -> Value {
    serde_json::json!({ "Implements": ["NetworkDriver", "IpamDriver"] })
}

/// `NetworkDriver.GetCapabilities`' reply: networks are per host in the
/// engine's eyes (`local`: no swarm store needed); ovsnet shares them
/// through its own database.
pub fn network_capabilities_reply() -> Value {
    serde_json::json!({ "Scope": "local", "ConnectivityScope": "global" })
}

/// `IpamDriver.GetCapabilities`' reply.
pub fn ipam_capabilities_reply() -> Value {
    serde_json::json!({ "RequiresMACAddress": false })
}

/// The address spaces ovsnet's IPAM names (one of each).
pub const LOCAL_ADDRESS_SPACE: &str = "ovsnet-local";
pub const GLOBAL_ADDRESS_SPACE: &str = "ovsnet-global";

pub fn default_address_spaces_reply() -> Value {
    serde_json::json!({
        "LocalDefaultAddressSpace": LOCAL_ADDRESS_SPACE,
        "GlobalDefaultAddressSpace": GLOBAL_ADDRESS_SPACE,
    })
}

/// `RequestPool`'s reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolReply {
    #[serde(rename = "PoolID")]
    pub pool_id: String,
    #[serde(rename = "Pool")]
    pub pool: String,
    #[serde(rename = "Data")]
    pub data: BTreeMap<String, String>,
}

/// `RequestAddress`' reply: `IP/PREFIX`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddressReply {
    #[serde(rename = "Address")]
    pub address: String,
    #[serde(rename = "Data")]
    pub data: BTreeMap<String, String>,
}

/// `CreateEndpoint`'s reply: the interface fields the engine did not give
/// (an address the engine gave must not be given back).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EndpointReply {
    #[serde(rename = "Interface", skip_serializing_if = "Option::is_none")]
    pub interface: Option<InterfaceReply>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InterfaceReply {
    #[serde(rename = "Address", skip_serializing_if = "String::is_empty")]
    pub address: String,
    #[serde(rename = "MacAddress", skip_serializing_if = "String::is_empty")]
    pub mac_address: String,
}

/// `Join`'s reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JoinReply {
    #[serde(rename = "InterfaceName")]
    pub interface_name: InterfaceName,
    #[serde(rename = "Gateway", skip_serializing_if = "String::is_empty")]
    pub gateway: String,
    #[serde(rename = "StaticRoutes", skip_serializing_if = "Vec::is_empty")]
    pub static_routes: Vec<StaticRoute>,
    #[serde(rename = "DisableGatewayService")]
    pub disable_gateway_service: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InterfaceName {
    /// The interface the driver made in the engine's namespace.
    #[serde(rename = "SrcName")]
    pub src_name: String,
    /// What the engine names it in the container, plus an index.
    #[serde(rename = "DstPrefix")]
    pub dst_prefix: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaticRoute {
    #[serde(rename = "Destination")]
    pub destination: String,
    /// 0: through `next_hop`; 1: on the link.
    #[serde(rename = "RouteType")]
    pub route_type: u8,
    #[serde(rename = "NextHop", skip_serializing_if = "String::is_empty")]
    pub next_hop: String,
}

/// The option of `ProgramExternalConnectivity` that holds `docker run -p`'s
/// bindings.
pub const PORT_MAP_OPTION: &str = "com.docker.network.portmap";

/// The IPv4 ports to publish from a `ProgramExternalConnectivity`'s
/// options: each binding of [`PORT_MAP_OPTION`] (`{"Proto": 6 or 17,
/// "Port": container port, "HostIP": "" or an address, "HostPort": N,
/// "HostPortEnd": N}`) whose host address is not IPv6. A binding without a
/// host port is refused: the engine leaves choosing one to the bridge
/// driver, and could not learn a port this driver chose. A range gives
/// its first port.
pub fn published_ports(options: &BTreeMap<String, Value>) -> Result<Vec<PublishedPort>, String> {
    let Some(map) = options.get(PORT_MAP_OPTION) else { return Ok(Vec::new()) };
    let bindings = match map {
        Value::Null => return Ok(Vec::new()),
        Value::Array(b) => b,
        other => return Err(format!("{PORT_MAP_OPTION}: expected a list, got {other}")),
    };
    let mut out: Vec<PublishedPort> = Vec::new();
    for b in bindings {
        let field = |k: &str| b.get(k).filter(|v| !v.is_null());
        let number = |k: &str| -> Result<u64, String> {
            match field(k) {
                None => Ok(0),
                Some(v) => v.as_u64().ok_or_else(|| format!("{PORT_MAP_OPTION}: {k} {v} is not a number")),
            }
        };
        let transport = match field("Proto") {
            Some(Value::String(p)) if p == "tcp" => Transport::Tcp,
            Some(Value::String(p)) if p == "udp" => Transport::Udp,
            Some(v) => v
                .as_u64()
                .and_then(|n| u8::try_from(n).ok())
                .and_then(Transport::from_ip_proto)
                .ok_or_else(|| format!("ovsnet publishes tcp and udp ports only, not protocol {v}"))?,
            None => Transport::Tcp,
        };
        let host_ip = match field("HostIP").and_then(Value::as_str).unwrap_or("") {
            "" => None,
            ip => match ip.parse::<IpAddr>() {
                Ok(IpAddr::V4(v4)) if v4.is_unspecified() => None,
                Ok(IpAddr::V4(v4)) => Some(v4),
                // IPv6 bindings (the engine adds `::` beside `0.0.0.0`):
                // ovsnet's networks are IPv4.
                Ok(IpAddr::V6(_)) => continue,
                Err(_) => return Err(format!("{PORT_MAP_OPTION}: bad HostIP {ip:?}")),
            },
        };
        let port = |k: &str| -> Result<u16, String> {
            u16::try_from(number(k)?).map_err(|_| format!("{PORT_MAP_OPTION}: {k} out of range"))
        };
        let container_port = port("Port")?;
        let host_port = port("HostPort")?;
        if container_port == 0 {
            return Err(format!("{PORT_MAP_OPTION}: a binding without a container port"));
        }
        if host_port == 0 {
            return Err(format!(
                "-p {container_port}: give the host port too (-p HOST_PORT:{container_port}); ovsnet does not choose one"
            ));
        }
        let p = PublishedPort { transport, host_ip, host_port, container_port };
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(path: &str, body: &str) -> Call {
        Call::parse(path, body.as_bytes()).unwrap().unwrap()
    }

    fn err(path: &str, body: &str) -> String {
        Call::parse(path, body.as_bytes()).unwrap_err().to_string()
    }

    const NID: &str = "3f1c0a9b2e7d4c6f8a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071";
    const EID: &str = "9b2e7d4c6f8a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60713f1c0a";

    #[test]
    fn the_handshake_takes_empty_bodies() {
        assert_eq!(parse("/Plugin.Activate", ""), Call::Activate);
        assert_eq!(parse("/NetworkDriver.GetCapabilities", "{}"), Call::NetworkCapabilities);
        assert_eq!(parse("/IpamDriver.GetCapabilities", "null"), Call::IpamCapabilities);
        assert_eq!(
            serde_json::to_string(&activate_reply()).unwrap(),
            r#"{"Implements":["NetworkDriver","IpamDriver"]}"#
        );
    }

    #[test]
    fn an_unknown_path_is_none_for_404() {
        assert_eq!(Call::parse("/NetworkDriver.AllocateNetwork", b"{}").unwrap(), None);
        assert_eq!(Call::parse("/nothing", b"garbage").unwrap(), None);
    }

    #[test]
    fn create_network_as_the_engine_sends_it() {
        let body = format!(
            r#"{{"NetworkID":"{NID}","Options":{{"com.docker.network.enable_ipv6":false,
               "com.docker.network.generic":{{"vni":"40","ipam":"pool"}}}},
               "IPv4Data":[{{"AddressSpace":"ovsnet-local","Gateway":"10.40.0.1/16","Pool":"10.40.0.0/16"}}],
               "IPv6Data":[]}}"#
        );
        let Call::CreateNetwork(c) = parse("/NetworkDriver.CreateNetwork", &body) else { panic!() };
        assert_eq!(c.network_id, NID);
        assert_eq!(c.generic.get("vni").map(String::as_str), Some("40"));
        assert_eq!(c.generic.get("ipam").map(String::as_str), Some("pool"));
        assert_eq!(c.ipv4.len(), 1);
        assert_eq!(c.ipv4[0].pool.to_string(), "10.40.0.0/16");
        assert_eq!(c.ipv4[0].gateway.map(|g| g.addr.to_string()).as_deref(), Some("10.40.0.1"));
        assert!(!c.has_ipv6);
        assert!(c.options.contains_key("com.docker.network.enable_ipv6"));
    }

    #[test]
    fn endpoint_calls_check_their_ids_and_addresses() {
        let body = format!(
            r#"{{"NetworkID":"{NID}","EndpointID":"{EID}","Interface":{{"Address":"10.40.0.5/16","AddressIPv6":"","MacAddress":""}},"Options":{{}}}}"#
        );
        let Call::CreateEndpoint(c) = parse("/NetworkDriver.CreateEndpoint", &body) else { panic!() };
        assert_eq!(c.address.unwrap().to_string(), "10.40.0.5/16");
        assert_eq!(c.mac, None);
        let bad_id = r#"{"NetworkID":"../../etc","EndpointID":"x"}"#;
        assert!(err("/NetworkDriver.DeleteEndpoint", bad_id).starts_with("DeleteEndpoint: bad NetworkID"));
        assert_eq!(err("/NetworkDriver.Leave", r#"{"NetworkID":"a"}"#), "Leave: no EndpointID");
        let bad_ip =
            format!(r#"{{"NetworkID":"{NID}","EndpointID":"{EID}","Interface":{{"Address":"10.40.0.500/16"}}}}"#);
        assert!(err("/NetworkDriver.CreateEndpoint", &bad_ip).contains("bad Interface Address"));
        let join = format!(r#"{{"NetworkID":"{NID}","EndpointID":"{EID}","SandboxKey":"/var/run/docker/netns/abc"}}"#);
        let Call::Join(j) = parse("/NetworkDriver.Join", &join) else { panic!() };
        assert_eq!(j.sandbox_key, "/var/run/docker/netns/abc");
        let no_key = format!(r#"{{"NetworkID":"{NID}","EndpointID":"{EID}","SandboxKey":""}}"#);
        assert!(err("/NetworkDriver.Join", &no_key).starts_with("Join: bad SandboxKey"));
    }

    #[test]
    fn ipam_requests() {
        let Call::RequestPool(p) = parse(
            "/IpamDriver.RequestPool",
            r#"{"AddressSpace":"ovsnet-local","Pool":"10.40.0.0/16","SubPool":"","Options":{},"V6":false}"#,
        ) else {
            panic!()
        };
        assert_eq!(p.pool.unwrap().to_string(), "10.40.0.0/16");
        assert_eq!(p.sub_pool, None);
        let Call::RequestAddress(a) = parse(
            "/IpamDriver.RequestAddress",
            r#"{"PoolID":"10.40.0.0/16","Address":"","Options":{"RequestAddressType":"com.docker.network.gateway"}}"#,
        ) else {
            panic!()
        };
        assert!(a.gateway && a.address.is_none());
        assert!(err("/IpamDriver.RequestPool", r#"{"Pool":"10.40.0.1/16"}"#).starts_with("RequestPool: bad Pool"));
        assert_eq!(err("/IpamDriver.ReleaseAddress", r#"{"PoolID":"p"}"#), "ReleaseAddress: no Address");
        let reply = AddressReply { address: "10.40.0.1/16".into(), data: BTreeMap::new() };
        assert_eq!(serde_json::to_string(&reply).unwrap(), r#"{"Address":"10.40.0.1/16","Data":{}}"#);
    }

    #[test]
    fn malformed_bodies_are_one_line_errors() {
        for (path, body) in [
            ("/NetworkDriver.CreateNetwork", "{"),
            ("/NetworkDriver.CreateNetwork", "[1,2]"),
            ("/NetworkDriver.CreateNetwork", r#"{"NetworkID":7}"#),
            ("/Plugin.Activate", "[]"),
            ("/IpamDriver.RequestAddress", r#"{"PoolID":"p","Address":"x"}"#),
            ("/NetworkDriver.CreateNetwork", r#"{"NetworkID":"ab","IPv4Data":[{"Pool":""}]}"#),
        ] {
            let e = err(path, body);
            assert!(!e.contains('\n'), "{e}");
        }
        assert_eq!(error_body("no such network"), br#"{"Err":"no such network"}"#.to_vec());
    }

    proptest::proptest! {
        /// Any body on any path: a call, `None`, or a one-line error;
        /// never a panic.
        #[test]
        fn any_body_parses_or_is_one_line(pick in 0usize..20, body in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let paths = ["/Plugin.Activate", "/NetworkDriver.CreateNetwork", "/NetworkDriver.DeleteNetwork",
                "/NetworkDriver.CreateEndpoint", "/NetworkDriver.Join", "/NetworkDriver.Leave",
                "/NetworkDriver.DeleteEndpoint", "/NetworkDriver.EndpointOperInfo",
                "/NetworkDriver.ProgramExternalConnectivity", "/IpamDriver.RequestPool",
                "/IpamDriver.RequestAddress", "/IpamDriver.ReleaseAddress", "/IpamDriver.ReleasePool",
                "/IpamDriver.GetCapabilities", "/NetworkDriver.GetCapabilities", "/NetworkDriver.DiscoverNew",
                "/IpamDriver.GetDefaultAddressSpaces", "/NetworkDriver.RevokeExternalConnectivity",
                "/NetworkDriver.DiscoverDelete", "/Other"];
            if let Err(e) = Call::parse(paths[pick], &body) {
                proptest::prop_assert!(!e.to_string().contains('\n'));
            }
        }

        /// Well-formed JSON with fields of the wrong types or values.
        #[test]
        fn json_with_wrong_fields_is_refused_in_one_line(
            id in "[ -~]{0,70}", pool in "[ -~]{0,20}", addr in "[ -~]{0,20}", n in proptest::num::i64::ANY,
        ) {
            let bodies = [
                serde_json::json!({"NetworkID": id, "IPv4Data": [{"Pool": pool, "Gateway": addr}]}),
                serde_json::json!({"NetworkID": n, "EndpointID": id, "Interface": {"Address": addr}}),
                serde_json::json!({"PoolID": pool, "Address": addr, "Options": {"RequestAddressType": id}}),
                serde_json::json!({"NetworkID": id, "EndpointID": id, "SandboxKey": addr}),
            ];
            for (path, b) in ["/NetworkDriver.CreateNetwork", "/NetworkDriver.CreateEndpoint",
                "/IpamDriver.RequestAddress", "/NetworkDriver.Join"].iter().zip(bodies) {
                let bytes = serde_json::to_vec(&b).unwrap();
                if let Err(e) = Call::parse(path, &bytes) {
                    proptest::prop_assert!(!e.to_string().contains('\n'));
                }
            }
        }
    }

    #[test]
    fn join_reply_as_the_engine_reads_it() {
        let r = JoinReply {
            interface_name: InterfaceName { src_name: "ovsnt1a2b3c".into(), dst_prefix: "eth".into() },
            gateway: "10.40.0.1".into(),
            static_routes: vec![],
            disable_gateway_service: true,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"InterfaceName":{"SrcName":"ovsnt1a2b3c","DstPrefix":"eth"},"Gateway":"10.40.0.1","DisableGatewayService":true}"#
        );
        assert_eq!(serde_json::to_string(&EndpointReply::default()).unwrap(), "{}");
    }

    #[test]
    fn port_bindings_become_published_ports() {
        let opts = |v: Value| BTreeMap::from([(PORT_MAP_OPTION.to_owned(), v)]);
        let got = published_ports(&opts(json!([
            {"Proto": 6, "IP": "", "Port": 80, "HostIP": "", "HostPort": 8080, "HostPortEnd": 8080},
            {"Proto": 6, "IP": "", "Port": 80, "HostIP": "::", "HostPort": 8080, "HostPortEnd": 8080},
            {"Proto": 17, "Port": 53, "HostIP": "192.0.2.1", "HostPort": 5353, "HostPortEnd": 5360},
            {"Proto": 6, "Port": 80, "HostIP": "0.0.0.0", "HostPort": 8080}
        ])))
        .unwrap();
        let shown: Vec<String> = got.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["8080:80/tcp", "192.0.2.1:5353:53/udp"]);
        assert!(published_ports(&BTreeMap::new()).unwrap().is_empty());
        assert!(published_ports(&opts(Value::Null)).unwrap().is_empty());
        let e = published_ports(&opts(json!([{"Proto": 6, "Port": 80, "HostPort": 0}]))).unwrap_err();
        assert!(e.contains("-p 80: give the host port"), "{e}");
        let e = published_ports(&opts(json!([{"Proto": 132, "Port": 80, "HostPort": 80}]))).unwrap_err();
        assert!(e.contains("tcp and udp"), "{e}");
        assert!(published_ports(&opts(json!({"Proto": 6}))).is_err());
        assert!(published_ports(&opts(json!([{"Port": 80, "HostPort": 70000}]))).is_err());
        assert!(published_ports(&opts(json!([{"Port": 80, "HostIP": "x", "HostPort": 1}]))).is_err());
    }
}
