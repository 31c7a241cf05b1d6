#![no_main]
//! Decodes arbitrary bytes as an OpenFlow message; whatever decodes must
//! re-encode, re-decode to the same value, and print without panicking.

use libfuzzer_sys::fuzz_target;
use ovsnet::openflow::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok((h, m)) = Message::decode(data) {
        let again = m.encode(h.xid);
        let (_, m2) = Message::decode(&again).expect("own encoding must decode");
        assert_eq!(m, m2);
        let _ = ovsnet::openflow::text::format_message(&m);
    }
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(fm) = ovsnet::openflow::text::parse_flow(s) {
            let _ = ovsnet::openflow::text::format_flow(&fm);
        }
    }
});
