//! Property tests of the pure OVSDB layers: notation round-trips through
//! JSON, and the framing decoder never panics and splits any concatenation
//! of messages back into the same messages, wherever the reads fall.

use bytes::BytesMut;
use ovsnet::ovsdb::framing::JsonCodec;
use ovsnet::ovsdb::rpc::Message;
use ovsnet::ovsdb::{Atom, Datum, Uuid};
use proptest::prelude::*;
use serde_json::json;
use tokio_util::codec::Decoder;

fn atom() -> impl Strategy<Value = Atom> {
    prop_oneof![
        any::<i64>().prop_map(Atom::Integer),
        (-1e12f64..1e12).prop_filter("fractional", |r| r.fract() != 0.0).prop_map(Atom::Real),
        any::<bool>().prop_map(Atom::Boolean),
        ".{0,12}".prop_map(Atom::String),
        any::<u128>().prop_map(|u| Atom::Uuid(Uuid(uuid::Uuid::from_u128(u)))),
        "[a-z][a-z0-9_]{0,8}".prop_map(Atom::NamedUuid),
    ]
}

fn datum() -> impl Strategy<Value = Datum> {
    prop_oneof![
        prop::collection::vec(atom(), 0..6).prop_map(Datum::set),
        prop::collection::vec((atom(), atom()), 0..6).prop_map(Datum::map),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn datum_json_round_trip(d in datum()) {
        let j = serde_json::to_string(&d).expect("serialize");
        let back: Datum = serde_json::from_str(&j).expect("deserialize");
        // An empty map and an empty set are both "empty"; everything else is exact.
        if d.is_empty() {
            prop_assert!(back.is_empty());
        } else {
            prop_assert_eq!(back, d);
        }
    }

    #[test]
    fn decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512), cut in 0usize..512) {
        let mut codec = JsonCodec::new(256);
        let cut = cut.min(bytes.len());
        let mut buf = BytesMut::from(&bytes[..cut]);
        // Garbage gives messages, "need more" or an error: never a panic,
        // and never a buffer past the limit without an error.
        while let Ok(Some(_)) = codec.decode(&mut buf) {}
        buf.extend_from_slice(&bytes[cut..]);
        let end = loop {
            match codec.decode(&mut buf) {
                Ok(Some(_)) => {}
                other => break other,
            }
        };
        if end.is_ok() {
            prop_assert!(buf.len() <= 256, "{} bytes buffered without an error", buf.len());
        }
    }

    #[test]
    fn any_split_gives_the_same_messages(
        texts in prop::collection::vec(".{0,20}", 1..5),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let msgs: Vec<Message> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| Message::request(i as u64, "echo", json!([t, {"k": [t]}])))
            .collect();
        let wire: Vec<u8> = msgs.iter().flat_map(Message::to_vec).collect();
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(wire.len() + 1)).collect();
        points.push(wire.len());
        points.sort();
        let mut codec = JsonCodec::default();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut from = 0;
        for p in points {
            buf.extend_from_slice(&wire[from..p]);
            from = p;
            while let Some(m) = codec.decode(&mut buf).expect("decode") {
                got.push(m);
            }
        }
        prop_assert_eq!(got, msgs);
    }
}
