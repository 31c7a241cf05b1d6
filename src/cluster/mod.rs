//! The multi-host control plane's shared state: a clustered `ovsdb-server`
//! (Raft) holding the `OVSNET` database of `ovsdb-schemas/ovsnet.ovsschema`.
//!
//! - [`ipam`]: Fan arithmetic, pool blocks, lowest free address and VNI (pure);
//! - [`model`]: typed rows, [`ClusterState`] and [`remote_view`], what a
//!   host's agent needs to reach the others (pure);
//! - [`db`]: [`ClusterDb`], the database over the OVSDB client: hosts,
//!   networks, endpoints, atomic address allocation, and a monitor-kept
//!   [`ClusterWatch`] (I/O);
//! - [`host`]: this host's default name, when a host counts as gone, and
//!   forgetting one that is;
//! - [`server`]: starting and stopping the members (`ovsdb-tool`,
//!   `ovsdb-server`) and asking each about its Raft status (I/O).

pub mod db;
pub mod host;
pub mod ipam;
pub mod model;
pub mod server;

pub use db::{
    ClusterDb, ClusterError, ClusterWatch, EndpointSpec, HOST_COLUMNS_WATCHED, HostRemoval, HostSpec, NetworkSpec,
    OwnRow, ProbeWatch, ServiceSpec,
};
pub use ipam::{IpamError, fan_block, first_free_block, lowest_free_address, lowest_free_vni};
pub use model::{
    Block, COVERED_KEY, COVERED_VALUE, ClusterState, DB, Endpoint, HeldEndpoints, Host, Ipam, Network, RemoteBlock,
    RemoteEndpoint, RemoteView, Router, SCHEMA, Service, covered_by_block, endpoint_keys, is_marked_covered,
    network_keys, remote_view,
};
