//! ovsnet: Open vSwitch control for container networking.
//!
//! Layers, from the wire up (`docs/ARCHITECTURE.md` has the whole table of
//! which module may use which; `tests/architecture.rs` holds the code to it):
//! - 0: [`net`] (addresses, MACs), [`config`], [`ovsdb`] (RFC 7047),
//!   [`openflow`] (a pure OpenFlow 1.3 codec with the Nicira extensions and
//!   the ovs-ofctl flow syntax), [`netns`], [`process`];
//! - 1: [`netlink`] (links, addresses, routes through rtnetlink, never
//!   through `ip`), [`container`], [`sandbox`] (private OVS instances);
//! - 2: [`vswitch`] (the `Open_vSwitch` database in OVS terms, transactions
//!   built purely and sent once), [`cluster`] (the `OVSNET` database);
//! - 3: [`pipeline`] (desired flows as a function of state, pure);
//! - 4: [`attach`] (the attach engine), [`agent`] (the OpenFlow agent);
//! - 5: [`endpoint`] (attach and cluster as one unit), [`lab`], [`driver`]
//!   (the Docker network and IPAM driver), [`follow`] (containers followed
//!   through the engine's events);
//! - 6: [`cli`], the `ovsnet` command line.

pub mod agent;
pub mod attach;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod container;
pub mod driver;
pub mod endpoint;
pub mod follow;
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
