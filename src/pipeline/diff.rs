//! Desired against installed: the flow_mods that make the switch equal to
//! the desired flows, and nothing more.

use super::render::{FlowKey, FlowSet, FlowValue, flow_mod, sort_flow_mods};
use crate::openflow::message::{OFPFC_ADD, OFPFC_DELETE_STRICT, OFPG_ANY};
use crate::openflow::action::OFPP_ANY;
use crate::openflow::{FlowMod, FlowStats};

/// The changes between two flow sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// Flows to add, or to replace (same key, other cookie or actions).
    pub add: Vec<FlowMod>,
    /// Flows to delete (installed, not desired), as strict deletes.
    pub delete: Vec<FlowMod>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.delete.is_empty()
    }
    pub fn len(&self) -> usize {
        self.add.len() + self.delete.len()
    }
    /// Deletes first, then adds: the order they go in a bundle.
    pub fn flow_mods(&self) -> impl Iterator<Item = &FlowMod> {
        self.delete.iter().chain(self.add.iter())
    }
}

/// A strict delete of exactly this flow, whoever's cookie it carries.
pub fn delete_strict(key: &FlowKey) -> FlowMod {
    FlowMod {
        command: OFPFC_DELETE_STRICT,
        table_id: key.table,
        priority: key.priority,
        r#match: key.r#match.clone(),
        out_port: OFPP_ANY,
        out_group: OFPG_ANY,
        ..FlowMod::default()
    }
}

/// What turns `installed` into `desired`.
pub fn diff(desired: &FlowSet, installed: &FlowSet) -> Diff {
    let mut d = Diff::default();
    for (k, v) in &desired.flows {
        if installed.flows.get(k) != Some(v) {
            let mut fm = flow_mod(k, v);
            fm.command = OFPFC_ADD;
            d.add.push(fm);
        }
    }
    for k in installed.flows.keys() {
        if !desired.flows.contains_key(k) {
            d.delete.push(delete_strict(k));
        }
    }
    sort_flow_mods(&mut d.add);
    sort_flow_mods(&mut d.delete);
    d
}

/// Applies a diff to a mirror of the switch (what it holds once the
/// bundle commits).
pub fn apply(installed: &mut FlowSet, d: &Diff) {
    for fm in &d.delete {
        let key = FlowKey { table: fm.table_id, priority: fm.priority, r#match: fm.r#match.canonical() };
        installed.flows.remove(&key);
    }
    for fm in &d.add {
        installed.insert(fm);
    }
}

/// The installed flows of the given tables, from a flow-stats reply.
pub fn installed_from_stats<'a>(stats: impl IntoIterator<Item = &'a FlowStats>, tables: &[u8]) -> FlowSet {
    let mut set = FlowSet::default();
    for f in stats {
        if !tables.contains(&f.table_id) {
            continue;
        }
        set.flows.insert(
            FlowKey { table: f.table_id, priority: f.priority, r#match: f.r#match.canonical() },
            FlowValue { cookie: f.cookie, instructions: f.instructions.clone() },
        );
    }
    set
}
