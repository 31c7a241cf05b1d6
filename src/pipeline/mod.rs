//! The flow pipeline, pure: the table declaration and flow templates of
//! `flows/pipeline.flows` ([`decl`]), the state flows are computed from
//! ([`state`]), rendering and validation ([`render`]), desired against
//! installed ([`diff`]), and an in-memory flow table that answers "where
//! does this packet go" ([`sim`]). No sockets, no runtime, no clock.
//!
//! ```
//! use ovsnet::pipeline::{Pipeline, State, desired_flows};
//! let p = Pipeline::builtin().unwrap();
//! let flows = desired_flows(&p, &State::default()).unwrap();
//! // One miss flow per table, the router's drop of what it cannot route,
//! // and lb_select's two passes of connections already tracked.
//! assert_eq!(flows.flows.len(), p.tables.len() + 3);
//! ```

pub mod decl;
pub mod diff;
pub mod dns;
pub mod render;
pub mod sim;
pub mod state;

pub use decl::{Kind, Pipeline, TableDecl, Template};
pub use diff::{Diff, diff, installed_from_stats};
pub use render::{
    COOKIE_MASK, COOKIE_TAG, DesiredFlows, FlowKey, FlowSet, FlowValue, cookie_for, desired_flows, dns_meter,
    dns_meters, normalize, service_groups,
};
pub use sim::{FlowTable, Packet, Trace};
pub use state::{
    BridgeLocal, DEFAULT_NETWORK, LocalEndpoint, Network, Published, ROUTER_MAC, RemoteBlock, RemoteEndpoint, Router,
    Service, State, TunnelType, Uplink, vni_for,
};

/// A pipeline that is wrong: it does not parse, or a rendered flow breaks
/// its table's declaration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PipelineError {
    #[error("pipeline line {line}: {why}")]
    Declaration { line: usize, why: String },
    #[error("pipeline line {line}: template: {why}")]
    Template { line: usize, why: String },
    #[error("pipeline line {line}: rendered flow {flow} breaks its table: {why}")]
    Violation { line: usize, flow: String, why: String },
}

/// Flows per local endpoint whose MAC is derived from its IP (classify 1,
/// port security 2, forwarding 1).
pub const FLOWS_PER_ENDPOINT: usize = 4;
