//! The reconciler, pure: it owns the desired flows and its mirror of what
//! the switch holds (OVN's desired and installed flow tables), takes the
//! agent's events and returns what to send. No sockets, no runtime, no
//! clock: [`super::ofconn`] carries the messages and brings the replies
//! back; the tests here play the switch with an in-memory flow table.
//!
//! - [`Reconciler::desired_changed`]: new desired flows; with a switch,
//!   the [`Plan`] that makes it hold them (the diff against the mirror);
//! - [`Reconciler::switch_connected`]: the flow-stats request that reads
//!   the new connection's flows back, and a [`ReadBack`] that compares
//!   each reply part with the desired flows as it comes; its
//!   [`ReadBack::finish`] gives the plan, so a switch that already holds
//!   the desired flows is sent nothing;
//! - [`Reconciler::committed`]: the switch applied the plan (or it was
//!   empty): the desired flows are the mirror now (one copy, not two);
//! - [`Reconciler::bundle_failed`]: the switch refused the plan: the
//!   mirror is read again ([`Reconciler::reread`]) and the desired flows
//!   stay to be sent again;
//! - [`Reconciler::disconnected`]: no switch; desired flows are kept for
//!   the next connection.
//!
//! A plan's FLOW_MODs (deletes first, then adds, in bundle order) are
//! encoded by the OpenFlow codec ([`Plan::flow_mods`]) and borrow the
//! flows: tens of thousands of flows are installed or verified without a
//! second copy of them.

use crate::openflow::FlowStats;
use crate::openflow::Message;
use crate::openflow::multipart::{FlowStatsRequest, MultipartRequest, MultipartRequestBody};
use crate::pipeline::FlowSet;
use crate::pipeline::diff::{self, Changes, Diff, add_stats, changes};

/// The request that reads every flow of every table back.
pub fn flow_stats_request() -> Message {
    Message::MultipartRequest(MultipartRequest::new(MultipartRequestBody::Flow(FlowStatsRequest::default())))
}

/// Desired flows, the mirror of the switch's, and whether a switch is
/// connected.
#[derive(Debug)]
pub struct Reconciler {
    /// The pipeline's tables: flows elsewhere are someone else's.
    tables: Vec<u8>,
    /// What the switch holds in our tables, as far as we know.
    installed: FlowSet,
    /// The desired flows, when they are not simply `installed` (`None`:
    /// the switch held them after the last plan, nothing changed since).
    desired: Option<FlowSet>,
    connected: bool,
    /// The counts of the plan last handed out, until it is done.
    pending: Option<Sent>,
}

/// What a plan sends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sent {
    /// FLOW_MODs in the plan (adds and deletes).
    pub flow_mods: usize,
    pub adds: usize,
    pub deletes: usize,
    /// Flows of our tables read back first (a new connection).
    pub read_back: Option<usize>,
}

impl Sent {
    fn of(c: &Changes<'_>, read_back: Option<usize>) -> Sent {
        Sent { flow_mods: c.len(), adds: c.add.len(), deletes: c.delete.len(), read_back }
    }
}

/// A plan applied: what it sent, and the flows wanted and held now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    pub sent: Sent,
    pub desired: usize,
    pub installed: usize,
}

/// A plan the switch refused: how many FLOW_MODs it had, and the request
/// that reads the switch's flows again (answer with [`Reconciler::reread`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub flow_mods: usize,
    pub request: Message,
}

/// The FLOW_MODs that make the switch hold the desired flows, borrowing
/// them. Send them in one bundle (atomic, ordered), then tell the
/// reconciler: [`Reconciler::committed`] or [`Reconciler::bundle_failed`].
#[derive(Debug)]
pub struct Plan<'a> {
    changes: Changes<'a>,
}

impl Plan<'_> {
    /// Nothing to send (the switch holds the desired flows).
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
    pub fn len(&self) -> usize {
        self.changes.len()
    }
    /// The FLOW_MOD messages (xid 0, for a bundle to rewrite), deletes
    /// first, then adds.
    pub fn flow_mods(&self) -> impl Iterator<Item = Vec<u8>> + '_ {
        self.changes.messages()
    }
    /// An owned copy (for printing and tests).
    pub fn to_diff(&self) -> Diff {
        self.changes.to_diff()
    }
}

/// A new connection's flows, read back one reply part at a time and
/// compared with the desired flows as they come.
#[derive(Debug)]
pub struct ReadBack<'a> {
    inner: diff::ReadBack<'a>,
    pending: &'a mut Option<Sent>,
}

impl<'a> ReadBack<'a> {
    /// One part of the flow-stats reply.
    pub fn part(&mut self, stats: &[FlowStats]) {
        self.inner.add_stats(stats);
    }
    /// Flows of our tables read back so far.
    pub fn read(&self) -> usize {
        self.inner.read()
    }
    /// The whole reply is in: what to send.
    pub fn finish(self) -> Plan<'a> {
        let read = self.inner.read();
        let changes = self.inner.finish();
        *self.pending = Some(Sent::of(&changes, Some(read)));
        Plan { changes }
    }
}

impl Reconciler {
    /// No switch yet; `desired` are the flows wanted now.
    pub fn new(tables: Vec<u8>, desired: FlowSet) -> Self {
        Reconciler { tables, installed: FlowSet::default(), desired: Some(desired), connected: false, pending: None }
    }

    /// The flows wanted now.
    pub fn desired(&self) -> &FlowSet {
        self.desired.as_ref().unwrap_or(&self.installed)
    }
    /// What the switch holds in our tables, as far as we know.
    pub fn installed(&self) -> &FlowSet {
        &self.installed
    }
    /// The switch held the desired flows after the last plan, and they
    /// have not changed since.
    pub fn desired_is_installed(&self) -> bool {
        self.desired.is_none()
    }
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// New desired flows (the database or the cluster changed). With a
    /// switch, the plan that makes it hold them.
    pub fn desired_changed(&mut self, flows: FlowSet) -> Option<Plan<'_>> {
        self.desired = Some(flows);
        if !self.connected {
            return None;
        }
        let changes = match &self.desired {
            Some(d) => changes(d, &self.installed),
            None => Changes::default(),
        };
        self.pending = Some(Sent::of(&changes, None));
        Some(Plan { changes })
    }

    /// A switch connected (handshake done): send the request, hand each
    /// reply part to the [`ReadBack`], then send what it finishes with.
    pub fn switch_connected(&mut self) -> (Message, ReadBack<'_>) {
        self.connected = true;
        // What a new connection holds is known only once read; what the
        // last one held is still what is desired.
        let desired = match self.desired.take() {
            Some(d) => {
                self.installed = FlowSet::default();
                d
            }
            None => std::mem::take(&mut self.installed),
        };
        let desired = self.desired.insert(desired);
        let inner = diff::ReadBack::new(desired, &self.tables);
        self.pending = None;
        (flow_stats_request(), ReadBack { inner, pending: &mut self.pending })
    }

    /// The switch applied the last plan (or it was empty): it holds the
    /// desired flows.
    pub fn committed(&mut self) -> Report {
        let sent = self.pending.take().unwrap_or_default();
        if let Some(desired) = self.desired.take() {
            self.installed = desired;
        }
        Report { sent, desired: self.installed.len(), installed: self.installed.len() }
    }

    /// The switch refused the last plan (nothing of it applied, or, not
    /// knowing, whatever it says): read its flows again; the desired
    /// flows stay to be sent again.
    pub fn bundle_failed(&mut self) -> Refused {
        let sent = self.pending.take().unwrap_or_default();
        if self.desired.is_none() {
            // Cannot be (an empty plan is not sent), but keep the flows.
            self.desired = Some(std::mem::take(&mut self.installed));
        }
        self.installed = FlowSet::default();
        Refused { flow_mods: sent.flow_mods, request: flow_stats_request() }
    }

    /// One part of the reply to [`Refused::request`].
    pub fn reread(&mut self, stats: &[FlowStats]) {
        add_stats(&mut self.installed, stats, &self.tables);
    }

    /// The switch went away. The desired flows stay for the next one.
    pub fn disconnected(&mut self) {
        self.connected = false;
        self.pending = None;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::openflow::message::{OFPFC_ADD, OFPFC_DELETE_STRICT};
    use crate::openflow::text::parse_flow;
    use crate::pipeline::{FlowKey, FlowValue};

    /// A switch's flow table, in memory: FLOW_MODs go in, flow stats come
    /// out. Its flows are kept as the switch would give them back.
    #[derive(Default)]
    struct FakeSwitch {
        flows: HashMap<FlowKey, FlowValue>,
        /// Refuse the next bundle (nothing of it is applied).
        refuse_next: bool,
        bundles: usize,
        flow_mods: usize,
    }

    impl FakeSwitch {
        fn add(&mut self, text: &str) {
            let fm = parse_flow(text).unwrap();
            let (k, v) = crate::pipeline::normalize(&fm);
            self.flows.insert(k, v);
        }
        /// Applies a plan as a bundle (all or nothing); false if refused.
        fn bundle(&mut self, plan: &Plan<'_>) -> bool {
            if plan.is_empty() {
                return true;
            }
            self.bundles += 1;
            if std::mem::take(&mut self.refuse_next) {
                return false;
            }
            for frame in plan.flow_mods() {
                let Message::FlowMod(fm) = Message::decode(&frame).unwrap().1 else { panic!("not a FLOW_MOD") };
                self.flow_mods += 1;
                let (k, v) = crate::pipeline::normalize(&fm);
                match fm.command {
                    OFPFC_ADD => {
                        self.flows.insert(k, v);
                    }
                    OFPFC_DELETE_STRICT => {
                        self.flows.remove(&k);
                    }
                    c => panic!("command {c}"),
                }
            }
            true
        }
        /// The flow-stats reply to `request`, in parts of `n` flows.
        fn dump(&self, request: &Message, n: usize) -> Vec<Vec<FlowStats>> {
            assert_eq!(*request, flow_stats_request());
            let all: Vec<FlowStats> = self
                .flows
                .iter()
                .map(|(k, v)| FlowStats {
                    table_id: k.table,
                    duration_sec: 1,
                    duration_nsec: 0,
                    priority: k.priority,
                    idle_timeout: 0,
                    hard_timeout: 0,
                    flags: 0,
                    cookie: v.cookie,
                    packet_count: 3,
                    byte_count: 300,
                    r#match: k.r#match(),
                    instructions: v.instructions(),
                })
                .collect();
            all.chunks(n.max(1)).map(<[FlowStats]>::to_vec).collect()
        }
        /// The flows of `tables`, as a flow set.
        fn ours(&self, tables: &[u8]) -> FlowSet {
            FlowSet {
                flows: self
                    .flows
                    .iter()
                    .filter(|(k, _)| tables.contains(&k.table))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            }
        }
    }

    /// The adapter, as the agent drives it: connect, read back in parts,
    /// send the plan, say how it went (a refusal: the FLOW_MODs refused).
    fn connect(rec: &mut Reconciler, sw: &mut FakeSwitch) -> Result<Report, usize> {
        let (request, mut rb) = rec.switch_connected();
        for part in sw.dump(&request, 2) {
            rb.part(&part);
        }
        let plan = rb.finish();
        let ok = sw.bundle(&plan);
        drop(plan);
        finish(rec, sw, ok)
    }

    fn change(rec: &mut Reconciler, sw: &mut FakeSwitch, desired: FlowSet) -> Option<Result<Report, usize>> {
        let plan = rec.desired_changed(desired)?;
        let ok = sw.bundle(&plan);
        drop(plan);
        Some(finish(rec, sw, ok))
    }

    fn finish(rec: &mut Reconciler, sw: &FakeSwitch, ok: bool) -> Result<Report, usize> {
        if ok {
            return Ok(rec.committed());
        }
        let refused = rec.bundle_failed();
        for part in sw.dump(&refused.request, 2) {
            rec.reread(&part);
        }
        Err(refused.flow_mods)
    }

    const TABLES: [u8; 2] = [0, 10];
    const A: &str = "table=0,priority=100,in_port=1,cookie=0x1,actions=goto_table:10";
    const B: &str = "table=10,priority=50,ip,nw_dst=10.0.0.2,cookie=0x2,actions=output:1";
    const B2: &str = "table=10,priority=50,ip,nw_dst=10.0.0.2,cookie=0x2,actions=output:2";
    const C: &str = "table=10,priority=10,cookie=0x3,actions=drop";
    const D: &str = "table=10,priority=50,ip,nw_dst=10.0.0.3,cookie=0x4,actions=output:3";

    fn set(flows: &[&str]) -> FlowSet {
        let mut s = FlowSet::default();
        for f in flows {
            s.insert(&parse_flow(f).unwrap());
        }
        s
    }

    fn reconciler(flows: &[&str]) -> Reconciler {
        Reconciler::new(TABLES.to_vec(), set(flows))
    }

    #[test]
    fn without_a_switch_changes_are_kept_for_the_next_one() {
        let mut rec = reconciler(&[A]);
        assert!(rec.desired_changed(set(&[A, B])).is_none());
        assert!(!rec.is_connected());
        let mut sw = FakeSwitch::default();
        let r = connect(&mut rec, &mut sw).unwrap();
        assert_eq!(r.sent, Sent { flow_mods: 2, adds: 2, deletes: 0, read_back: Some(0) });
        assert_eq!(sw.ours(&TABLES), set(&[A, B]));
        assert!(rec.desired_is_installed());
        assert_eq!(*rec.installed(), set(&[A, B]));
    }

    #[test]
    fn reconnecting_to_a_switch_with_the_same_flows_sends_nothing() {
        let mut rec = reconciler(&[A, B, C]);
        let mut sw = FakeSwitch::default();
        connect(&mut rec, &mut sw).unwrap();
        let bundles = sw.bundles;
        rec.disconnected();
        // Again, and again with the switch's flows read in other parts.
        for _ in 0..2 {
            let r = connect(&mut rec, &mut sw).unwrap();
            assert_eq!(r.sent, Sent { flow_mods: 0, adds: 0, deletes: 0, read_back: Some(3) });
            assert_eq!(r.installed, 3);
            rec.disconnected();
        }
        assert_eq!(sw.bundles, bundles, "no bundle sent");
        // A second reconcile against an unchanged switch sends nothing.
        let r = change(&mut rec, &mut sw, set(&[A, B, C]));
        assert!(r.is_none(), "disconnected");
        let r = connect(&mut rec, &mut sw).unwrap();
        assert_eq!(r.sent.flow_mods, 0);
        let r = change(&mut rec, &mut sw, set(&[A, B, C])).unwrap().unwrap();
        assert_eq!(r.sent.flow_mods, 0);
    }

    #[test]
    fn a_changed_endpoint_sends_exactly_the_diff() {
        let mut rec = reconciler(&[A, B, C]);
        let mut sw = FakeSwitch::default();
        connect(&mut rec, &mut sw).unwrap();
        let before = sw.flow_mods;
        // B's actions change, D is new.
        let plan = rec.desired_changed(set(&[A, B2, C, D])).unwrap();
        let d = plan.to_diff();
        assert_eq!(d.add.len(), 2);
        assert!(d.delete.is_empty());
        assert!(sw.bundle(&plan));
        drop(plan);
        let r = rec.committed();
        assert_eq!(r.sent, Sent { flow_mods: 2, adds: 2, deletes: 0, read_back: None });
        assert_eq!(sw.flow_mods - before, 2);
        assert_eq!(sw.ours(&TABLES), set(&[A, B2, C, D]));
        // D goes: one strict delete.
        let r = change(&mut rec, &mut sw, set(&[A, B2, C])).unwrap().unwrap();
        assert_eq!(r.sent, Sent { flow_mods: 1, adds: 0, deletes: 1, read_back: None });
        assert_eq!(sw.ours(&TABLES), set(&[A, B2, C]));
        assert_eq!(*rec.installed(), set(&[A, B2, C]));
    }

    #[test]
    fn strangers_flows_in_our_tables_go_and_other_tables_are_left_alone() {
        let mut sw = FakeSwitch::default();
        sw.add(A);
        // In our table, someone else's cookie: a different flow deleted, the
        // same flow with another cookie replaced.
        sw.add("table=10,priority=7,cookie=0x99,actions=drop");
        sw.add("table=10,priority=50,ip,nw_dst=10.0.0.2,cookie=0x99,actions=output:1");
        // Not our table.
        sw.add("table=200,priority=1,cookie=0x99,actions=drop");
        let mut rec = reconciler(&[A, B]);
        let r = connect(&mut rec, &mut sw).unwrap();
        assert_eq!(r.sent, Sent { flow_mods: 2, adds: 1, deletes: 1, read_back: Some(3) });
        assert_eq!(sw.ours(&TABLES), set(&[A, B]));
        assert_eq!(sw.flows.len(), 3, "table 200's flow stays");
    }

    #[test]
    fn a_refused_bundle_leaves_the_mirror_as_the_switch_says_and_is_sent_again() {
        let mut rec = reconciler(&[A, B]);
        let mut sw = FakeSwitch::default();
        connect(&mut rec, &mut sw).unwrap();
        sw.refuse_next = true;
        let refused = change(&mut rec, &mut sw, set(&[A, B2, D])).unwrap().unwrap_err();
        assert_eq!(refused, 2, "FLOW_MODs in the refused bundle");
        // Nothing applied; the mirror is what the switch holds.
        assert_eq!(sw.ours(&TABLES), set(&[A, B]));
        assert_eq!(*rec.installed(), set(&[A, B]));
        assert!(!rec.desired_is_installed());
        assert_eq!(*rec.desired(), set(&[A, B2, D]));
        // The agent drops the connection; the next one sends the same diff.
        rec.disconnected();
        let r = connect(&mut rec, &mut sw).unwrap();
        assert_eq!(r.sent, Sent { flow_mods: 2, adds: 2, deletes: 0, read_back: Some(2) });
        assert_eq!(sw.ours(&TABLES), set(&[A, B2, D]));
        // Refused on a new connection too: the same again after.
        let mut rec = reconciler(&[A, C]);
        sw.refuse_next = true;
        let refused = connect(&mut rec, &mut sw).unwrap_err();
        assert_eq!(refused, 3, "C added, B2 and D deleted");
        assert_eq!(*rec.installed(), set(&[A, B2, D]));
        rec.disconnected();
        connect(&mut rec, &mut sw).unwrap();
        assert_eq!(sw.ours(&TABLES), set(&[A, C]));
    }

    #[test]
    fn a_switch_that_lost_its_flows_gets_them_all_again() {
        let mut rec = reconciler(&[A, B, C]);
        let mut sw = FakeSwitch::default();
        connect(&mut rec, &mut sw).unwrap();
        rec.disconnected();
        let mut fresh = FakeSwitch::default();
        let r = connect(&mut rec, &mut fresh).unwrap();
        assert_eq!(r.sent, Sent { flow_mods: 3, adds: 3, deletes: 0, read_back: Some(0) });
        assert_eq!(fresh.ours(&TABLES), set(&[A, B, C]));
    }

    #[test]
    fn a_read_back_cut_short_keeps_the_desired_flows() {
        let mut rec = reconciler(&[A, B]);
        let mut sw = FakeSwitch::default();
        connect(&mut rec, &mut sw).unwrap();
        rec.disconnected();
        // The connection drops in the middle of the read-back.
        {
            let (request, mut rb) = rec.switch_connected();
            rb.part(&sw.dump(&request, 1)[0]);
            assert_eq!(rb.read(), 1);
        }
        rec.disconnected();
        assert_eq!(*rec.desired(), set(&[A, B]));
        let r = connect(&mut rec, &mut sw).unwrap();
        assert_eq!(r.sent.flow_mods, 0);
    }

    /// With the real pipeline: a packet from a to b goes out b's port;
    /// b moving to another port changes only flows b (or its network's
    /// flood list) owns, and the packet follows it.
    #[test]
    fn an_endpoint_that_moves_port_is_followed_by_its_flows_only() {
        use crate::pipeline::{LocalEndpoint, Packet, Pipeline, State, cookie_for, desired_flows};
        let mac_from_ip = crate::net::Mac::from_ipv4;
        let ip = |s: &str| s.parse::<std::net::Ipv4Addr>().unwrap();
        let ep = |id: &str, ofport: u32, addr: &str| LocalEndpoint {
            id: id.into(),
            network: "red".into(),
            ofport,
            ip: ip(addr),
            mac: mac_from_ip(ip(addr)),
        };
        let pipeline = Pipeline::builtin().unwrap();
        let tables = pipeline.table_ids();
        let flows = |b_port: u32| {
            let mut st = State::default();
            st.ensure_network("red", crate::net::IpNet::parse_network("10.1.0.0/24").unwrap());
            st.local_endpoints = vec![ep("a", 1, "10.1.0.2"), ep("b", b_port, "10.1.0.3")];
            desired_flows(&pipeline, &st).unwrap().flows
        };
        let a_to_b =
            Packet::ipv4(1, mac_from_ip(ip("10.1.0.2")), mac_from_ip(ip("10.1.0.3")), ip("10.1.0.2"), ip("10.1.0.3"));
        let mut rec = Reconciler::new(tables.clone(), flows(2));
        let mut sw = FakeSwitch::default();
        connect(&mut rec, &mut sw).unwrap();
        let table = crate::pipeline::FlowTable::from_set(&sw.ours(&tables));
        assert_eq!(table.trace(&a_to_b).ports(), vec![2]);

        let plan = rec.desired_changed(flows(5)).unwrap();
        let d = plan.to_diff();
        let owners = [cookie_for("endpoint:b"), cookie_for("network:red/flood:0")];
        assert!(!d.add.is_empty());
        assert!(d.add.iter().all(|(_, v)| owners.contains(&v.cookie)), "{:?}", plan.to_diff());
        assert!(!d.add.iter().any(|(_, v)| v.cookie == cookie_for("endpoint:a")));
        assert!(sw.bundle(&plan));
        drop(plan);
        rec.committed();
        let table = crate::pipeline::FlowTable::from_set(&sw.ours(&tables));
        assert_eq!(table.trace(&a_to_b).ports(), vec![5]);
        assert_eq!(sw.ours(&tables), flows(5));
    }
}
