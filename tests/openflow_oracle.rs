//! ovsnet's FLOW_MOD encoding against Open vSwitch's own: every flow string
//! in `tests/data/of13_flows.txt` is encoded by ovsnet and by
//! `ovs-ofctl -O OpenFlow13 parse-flows`; the bytes must be equal (xid
//! masked), or, where OVS picks another valid encoding, `ovs-ofctl ofp-print`
//! of ovsnet's bytes must print the same flow. ovsnet's own printer must
//! print each flow as ovs-ofctl does.

mod common_ofctl;

use common_ofctl::{compare_with_ovs_ofctl, data_file, have_ovs_ofctl};

#[test]
fn flow_mods_match_ovs_ofctl() {
    if !have_ovs_ofctl() {
        eprintln!("ovs-ofctl not installed: skipped");
        return;
    }
    let c = compare_with_ovs_ofctl(&data_file("of13_flows.txt"));
    assert!(c.flows >= 60, "need at least 60 flows, have {}", c.flows);
    c.assert_clean();
}
