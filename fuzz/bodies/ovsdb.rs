// The checks of the OVSDB fuzz targets: what a server or a relay sends is
// untrusted. Shared, by `include!`, by the cargo-fuzz targets
// (`fuzz/fuzz_targets/ovsdb_*.rs`) and by the bounded run in the test
// suite (`tests/fuzz_bounded.rs`), so both check the same thing.

/// Bytes from a peer, arriving in two reads cut anywhere (the first byte
/// chooses where): the framing yields messages or an error, never a panic,
/// and each message it yields encodes to bytes that decode again and
/// encode the same.
pub fn ovsdb_frames(data: &[u8]) {
    use tokio_util::codec::Decoder;
    let cut = data.first().map_or(0, |b| usize::from(*b)) % (data.len() + 1);
    let mut codec = ovsnet::ovsdb::framing::JsonCodec::new(64 * 1024);
    let mut buf = bytes::BytesMut::from(&data[..cut]);
    let mut messages = Vec::new();
    let mut failed = false;
    while let Ok(Some(m)) = codec.decode(&mut buf).inspect_err(|_| failed = true) {
        messages.push(m);
    }
    if !failed {
        buf.extend_from_slice(&data[cut..]);
        while let Ok(Some(m)) = codec.decode_eof(&mut buf) {
            messages.push(m);
        }
    }
    for m in messages {
        let once = m.to_vec();
        let again = ovsnet::ovsdb::rpc::Message::from_slice(&once).expect("our own encoding must decode");
        assert_eq!(again.to_vec(), once, "encoding is not stable");
    }
}

/// A monitor's table updates (`update`, `update2`, the updates of an
/// `update3` or of a `monitor_cond_since` reply) and the notation inside
/// them, as a peer may send them: parsed or refused, never a panic; what
/// parses applies to a cache of the ovsnet schema, or is refused; a datum
/// that parses prints and parses back to itself.
pub fn ovsdb_updates(data: &[u8]) {
    use ovsnet::ovsdb::{Atom, Cache, Datum, DatabaseSchema, TableUpdates};
    thread_local! {
        static SCHEMA: std::sync::Arc<DatabaseSchema> =
            std::sync::Arc::new(DatabaseSchema::parse(ovsnet::cluster::SCHEMA).expect("built-in schema"));
    }
    for u in [TableUpdates::from_update2_slice(data), TableUpdates::from_update_slice(data)].into_iter().flatten() {
        let mut cache = SCHEMA.with(|s| Cache::new(s.clone()));
        let _ = cache.apply(&u);
        let _ = cache.apply(&u);
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(d) = Datum::from_json(&v) {
            assert_eq!(Datum::from_json(&d.to_json()).expect("a printed datum must parse"), d);
        }
        let _ = Atom::from_json(&v);
    }
}
