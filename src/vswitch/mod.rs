//! The Open_vSwitch database in OVS terms.
