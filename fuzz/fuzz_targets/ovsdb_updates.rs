#![no_main]
//! `ovsdb_updates` of `fuzz/bodies/ovsdb.rs`: what an OVSDB server or relay
//! sends is untrusted.

use libfuzzer_sys::fuzz_target;

include!("../bodies/ovsdb.rs");

fuzz_target!(|data: &[u8]| ovsdb_updates(data));
