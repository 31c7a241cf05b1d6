//! ovsnet: Open vSwitch control for container networking.
//!
//! Layers, from the wire up:
//! - [`ovsdb`]: an RFC 7047 client (JSON-RPC 1.0 framing, notation, schemas,
//!   transactions, monitors, a pure monitor cache).
//! - [`openflow`]: a pure OpenFlow 1.3 codec with the Nicira extensions and
//!   the ovs-ofctl flow syntax.
//! - [`netlink`] and [`netns`]: links, addresses and namespaces through
//!   rtnetlink, never through `ip`.
//! - [`vswitch`]: the `Open_vSwitch` database in OVS terms (bridges, ports,
//!   interfaces, tunnels), as transactions built purely and sent once.
//! - [`sandbox`]: private `ovsdb-server` + `ovs-vswitchd` instances, for
//!   tests, the demo and the lab.
//! - [`config`]: the configuration file and `OVSNET_*` variables, resolved
//!   with the flags into values with their sources.
//! - [`cli`]: the `ovsnet` command line.

pub mod agent;
pub mod attach;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod container;
pub mod endpoint;
pub mod lab;
pub mod net;
pub mod netlink;
pub mod netns;
pub mod openflow;
pub mod ovsdb;
pub mod pipeline;
pub mod process;
pub mod sandbox;
pub mod vswitch;
