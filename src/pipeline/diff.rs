//! Desired against installed: the flow_mods that make the switch equal to
//! the desired flows, and nothing more.
//!
//! [`changes`] and [`ReadBack`] borrow the desired flows instead of copying
//! them: an agent with 40,000 flows sends a first install, or verifies a
//! switch that already holds them, without a second copy of the set.

use std::borrow::Cow;
use std::collections::HashSet;

use super::render::{FlowKey, FlowSet, FlowValue, flow_mod, flow_mod_bytes};
use crate::openflow::message::{OFPFC_ADD, OFPFC_DELETE_STRICT};
use crate::openflow::{FlowMod, FlowStats};

/// The changes between two flow sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// Flows to add, or to replace (same key, other cookie or actions).
    pub add: Vec<(FlowKey, FlowValue)>,
    /// Flows to delete (installed, not desired), as strict deletes.
    pub delete: Vec<FlowKey>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.delete.is_empty()
    }
    pub fn len(&self) -> usize {
        self.add.len() + self.delete.len()
    }
    /// The FLOW_MOD messages (xid 0), deletes first, then adds: the order
    /// they go in a bundle.
    pub fn messages(&self) -> impl Iterator<Item = Vec<u8>> + '_ {
        bundle_messages(self.delete.iter(), self.add.iter().map(|(k, v)| (k, v)))
    }
    /// The same, decoded (for printing and tests).
    pub fn flow_mods(&self) -> Vec<FlowMod> {
        self.delete.iter().map(delete_strict).chain(self.add.iter().map(|(k, v)| flow_mod(k, v))).collect()
    }
}

/// The same changes as [`Diff`], borrowing the flows to add from the
/// desired set (deletes borrow too when they come from a flow set, and are
/// owned when they come from a read-back).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes<'a> {
    /// Flows to add, or to replace, in bundle order.
    pub add: Vec<(&'a FlowKey, &'a FlowValue)>,
    /// Flows to delete, in bundle order.
    pub delete: Vec<Cow<'a, FlowKey>>,
}

impl Changes<'_> {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.delete.is_empty()
    }
    pub fn len(&self) -> usize {
        self.add.len() + self.delete.len()
    }
    /// The FLOW_MOD messages (xid 0), deletes first, then adds.
    pub fn messages(&self) -> impl Iterator<Item = Vec<u8>> + '_ {
        bundle_messages(self.delete.iter().map(|k| k.as_ref()), self.add.iter().copied())
    }
    /// An owned copy.
    pub fn to_diff(&self) -> Diff {
        Diff {
            add: self.add.iter().map(|(k, v)| ((*k).clone(), (*v).clone())).collect(),
            delete: self.delete.iter().map(|k| k.as_ref().clone()).collect(),
        }
    }
}

/// Strict deletes, then adds, as FLOW_MOD messages (xid 0): the order
/// they go in a bundle.
fn bundle_messages<'a>(
    delete: impl Iterator<Item = &'a FlowKey> + 'a,
    add: impl Iterator<Item = (&'a FlowKey, &'a FlowValue)> + 'a,
) -> impl Iterator<Item = Vec<u8>> + 'a {
    delete
        .map(|k| flow_mod_bytes(k, None, OFPFC_DELETE_STRICT))
        .chain(add.map(|(k, v)| flow_mod_bytes(k, Some(v), OFPFC_ADD)))
}

/// A strict delete of exactly this flow, whoever's cookie it carries.
pub fn delete_strict(key: &FlowKey) -> FlowMod {
    FlowMod {
        command: OFPFC_DELETE_STRICT,
        table_id: key.table,
        priority: key.priority,
        r#match: key.r#match(),
        ..FlowMod::default()
    }
}

/// Bundle order: by table, then descending priority, then match bytes.
fn order(a: &FlowKey, b: &FlowKey) -> std::cmp::Ordering {
    (a.table, std::cmp::Reverse(a.priority), a).cmp(&(b.table, std::cmp::Reverse(b.priority), b))
}

/// What turns `installed` into `desired`, borrowing both.
pub fn changes<'a>(desired: &'a FlowSet, installed: &'a FlowSet) -> Changes<'a> {
    let mut c = Changes::default();
    for (k, v) in &desired.flows {
        if installed.flows.get(k) != Some(v) {
            c.add.push((k, v));
        }
    }
    for k in installed.flows.keys() {
        if !desired.flows.contains_key(k) {
            c.delete.push(Cow::Borrowed(k));
        }
    }
    c.add.sort_unstable_by(|a, b| order(a.0, b.0));
    c.delete.sort_unstable_by(|a, b| order(a, b));
    c
}

/// What turns `installed` into `desired`.
pub fn diff(desired: &FlowSet, installed: &FlowSet) -> Diff {
    changes(desired, installed).to_diff()
}

/// The switch's flows, read back one flow-stats reply at a time and
/// compared with the desired flows as they come, instead of being kept as
/// a second flow set: only which desired flows the switch holds (as
/// references) and the keys of flows it should not hold are remembered.
#[derive(Debug)]
pub struct ReadBack<'a> {
    desired: &'a FlowSet,
    tables: &'a [u8],
    /// Desired flows the switch holds exactly (same key, cookie, instructions).
    matched: HashSet<&'a FlowKey>,
    /// Flows of our tables the switch holds and the desired set lacks.
    extra: Vec<FlowKey>,
    /// Flows of our tables read back.
    read: usize,
}

impl<'a> ReadBack<'a> {
    /// Compares against `desired`; flows of tables not in `tables` are
    /// someone else's and ignored.
    pub fn new(desired: &'a FlowSet, tables: &'a [u8]) -> Self {
        ReadBack { desired, tables, matched: HashSet::new(), extra: Vec::new(), read: 0 }
    }

    /// One flow-stats reply (or part of one).
    pub fn add_stats<'s>(&mut self, stats: impl IntoIterator<Item = &'s FlowStats>) {
        for f in stats {
            if !self.tables.contains(&f.table_id) {
                continue;
            }
            self.read += 1;
            let key = FlowKey::new(f.table_id, f.priority, &f.r#match);
            match self.desired.flows.get_key_value(&key) {
                Some((k, v)) => {
                    // Same key, other cookie or instructions: not matched,
                    // so `finish` adds it again (an ADD replaces it).
                    if v.cookie == f.cookie && *v == FlowValue::new(f.cookie, &f.instructions) {
                        self.matched.insert(k);
                    }
                }
                None => self.extra.push(key),
            }
        }
    }

    /// Flows of our tables read back so far.
    pub fn read(&self) -> usize {
        self.read
    }

    /// What turns the switch's flows into the desired ones: the same as
    /// [`changes`] against a flow set of everything read back.
    pub fn finish(self) -> Changes<'a> {
        let mut c = Changes::default();
        if self.matched.len() < self.desired.len() {
            c.add = self.desired.flows.iter().filter(|(k, _)| !self.matched.contains(k)).collect();
            c.add.sort_unstable_by(|a, b| order(a.0, b.0));
        }
        let mut extra = self.extra;
        extra.sort_unstable_by(order);
        extra.dedup();
        c.delete = extra.into_iter().map(Cow::Owned).collect();
        c
    }
}

/// Applies a diff to a mirror of the switch (what it holds once the
/// bundle commits).
pub fn apply(installed: &mut FlowSet, d: &Diff) {
    for k in &d.delete {
        installed.flows.remove(k);
    }
    for (k, v) in &d.add {
        installed.flows.insert(k.clone(), v.clone());
    }
}

/// Adds the flows of the given tables to `set` (from a flow-stats reply).
pub fn add_stats<'a>(set: &mut FlowSet, stats: impl IntoIterator<Item = &'a FlowStats>, tables: &[u8]) {
    for f in stats {
        if tables.contains(&f.table_id) {
            set.flows
                .insert(FlowKey::new(f.table_id, f.priority, &f.r#match), FlowValue::new(f.cookie, &f.instructions));
        }
    }
}

/// The installed flows of the given tables, from a flow-stats reply.
pub fn installed_from_stats<'a>(stats: impl IntoIterator<Item = &'a FlowStats>, tables: &[u8]) -> FlowSet {
    let mut set = FlowSet::default();
    add_stats(&mut set, stats, tables);
    set
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openflow::text::parse_flow;

    fn set(flows: &[&str]) -> FlowSet {
        let mut s = FlowSet::default();
        for f in flows {
            s.insert(&parse_flow(f).expect("flow"));
        }
        s
    }

    fn stats(s: &FlowSet) -> Vec<FlowStats> {
        s.to_flow_mods()
            .into_iter()
            .map(|fm| FlowStats {
                table_id: fm.table_id,
                duration_sec: 1,
                duration_nsec: 0,
                priority: fm.priority,
                idle_timeout: 0,
                hard_timeout: 0,
                flags: 0,
                cookie: fm.cookie,
                packet_count: 7,
                byte_count: 70,
                r#match: fm.r#match,
                instructions: fm.instructions,
            })
            .collect()
    }

    const A: &str = "table=0,priority=100,in_port=1,cookie=0x1,actions=goto_table:10";
    const B: &str = "table=10,priority=50,ip,nw_dst=10.0.0.2,cookie=0x2,actions=output:1";
    const B2: &str = "table=10,priority=50,ip,nw_dst=10.0.0.2,cookie=0x2,actions=output:2";
    const C: &str = "table=10,priority=10,cookie=0x3,actions=drop";
    const OTHER: &str = "table=200,priority=1,cookie=0x9,actions=drop";

    /// The read-back gives what `diff` gives against a set of everything read.
    #[test]
    fn read_back_equals_diff_against_the_read_set() {
        let desired = set(&[A, B, C]);
        let cases: [&[&str]; 5] =
            [&[], &[A, B, C], &[A, B2], &[B, C, "table=0,priority=1,actions=drop"], &[A, B, C, OTHER]];
        let tables = [0u8, 10];
        for installed in cases {
            let installed = set(installed);
            let st = stats(&installed);
            // In two parts, as a multipart reply would come.
            let mut rb = ReadBack::new(&desired, &tables);
            let (p1, p2) = st.split_at(st.len() / 2);
            rb.add_stats(p1);
            rb.add_stats(p2);
            let want = diff(&desired, &installed_from_stats(&st, &tables));
            assert_eq!(rb.finish().to_diff(), want, "installed {installed:?}");
        }
    }

    #[test]
    fn unchanged_switch_gives_nothing_and_counts_only_our_tables() {
        let desired = set(&[A, B, C]);
        let st = stats(&set(&[A, B, C, OTHER]));
        let mut rb = ReadBack::new(&desired, &[0, 10]);
        rb.add_stats(&st);
        assert_eq!(rb.read(), 3);
        assert!(rb.finish().is_empty());
    }

    #[test]
    fn changes_borrow_and_order_deletes_before_adds() {
        let desired = set(&[A, C, B2]);
        let installed = set(&[B, "table=0,priority=1,actions=drop"]);
        let c = changes(&desired, &installed);
        assert_eq!(c.len(), 4);
        assert_eq!(c.delete.len(), 1);
        // Adds by table, then descending priority.
        let order: Vec<(u8, u16)> = c.add.iter().map(|(k, _)| (k.table, k.priority)).collect();
        assert_eq!(order, vec![(0, 100), (10, 50), (10, 10)]);
        let msgs: Vec<Vec<u8>> = c.messages().collect();
        assert_eq!(msgs.len(), 4);
        let first = crate::openflow::Message::decode(&msgs[0]).expect("decode").1;
        assert!(
            matches!(first, crate::openflow::Message::FlowMod(ref fm) if fm.command == OFPFC_DELETE_STRICT),
            "the first message deletes: {first:?}"
        );
        assert_eq!(c.to_diff(), diff(&desired, &installed));
    }
}
