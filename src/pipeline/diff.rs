//! Desired against installed: the flow_mods that make the switch equal to
//! the desired flows, and nothing more.

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
        self.delete
            .iter()
            .map(|k| flow_mod_bytes(k, None, OFPFC_DELETE_STRICT))
            .chain(self.add.iter().map(|(k, v)| flow_mod_bytes(k, Some(v), OFPFC_ADD)))
    }
    /// The same, decoded (for printing and tests).
    pub fn flow_mods(&self) -> Vec<FlowMod> {
        self.delete.iter().map(delete_strict).chain(self.add.iter().map(|(k, v)| flow_mod(k, v))).collect()
    }
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

fn order(k: &FlowKey) -> (u8, std::cmp::Reverse<u16>, FlowKey) {
    (k.table, std::cmp::Reverse(k.priority), k.clone())
}

/// What turns `installed` into `desired`.
pub fn diff(desired: &FlowSet, installed: &FlowSet) -> Diff {
    let mut d = Diff::default();
    for (k, v) in &desired.flows {
        if installed.flows.get(k) != Some(v) {
            d.add.push((k.clone(), v.clone()));
        }
    }
    for k in installed.flows.keys() {
        if !desired.flows.contains_key(k) {
            d.delete.push(k.clone());
        }
    }
    d.add.sort_by_cached_key(|(k, _)| order(k));
    d.delete.sort_by_cached_key(order);
    d
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
            set.flows.insert(FlowKey::new(f.table_id, f.priority, &f.r#match), FlowValue::new(f.cookie, &f.instructions));
        }
    }
}

/// The installed flows of the given tables, from a flow-stats reply.
pub fn installed_from_stats<'a>(stats: impl IntoIterator<Item = &'a FlowStats>, tables: &[u8]) -> FlowSet {
    let mut set = FlowSet::default();
    add_stats(&mut set, stats, tables);
    set
}
