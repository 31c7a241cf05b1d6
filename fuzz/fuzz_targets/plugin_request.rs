#![no_main]
//! Parses arbitrary bodies as Docker plugin calls: the first byte picks the
//! call's path, the rest is the body. Whatever the bytes, parsing returns a
//! call or a one-line error (never a panic), and the error's reply body is
//! the JSON `{"Err": ...}` the engine reads. A request that does not parse
//! never reaches the driver, so it changes nothing.

use libfuzzer_sys::fuzz_target;
use ovsnet::driver::protocol::{Call, error_body};

const PATHS: &[&str] = &[
    "/Plugin.Activate",
    "/NetworkDriver.GetCapabilities",
    "/NetworkDriver.CreateNetwork",
    "/NetworkDriver.DeleteNetwork",
    "/NetworkDriver.CreateEndpoint",
    "/NetworkDriver.EndpointOperInfo",
    "/NetworkDriver.DeleteEndpoint",
    "/NetworkDriver.Join",
    "/NetworkDriver.Leave",
    "/NetworkDriver.DiscoverNew",
    "/NetworkDriver.DiscoverDelete",
    "/NetworkDriver.ProgramExternalConnectivity",
    "/NetworkDriver.RevokeExternalConnectivity",
    "/IpamDriver.GetCapabilities",
    "/IpamDriver.GetDefaultAddressSpaces",
    "/IpamDriver.RequestPool",
    "/IpamDriver.ReleasePool",
    "/IpamDriver.RequestAddress",
    "/IpamDriver.ReleaseAddress",
    "/NetworkDriver.AllocateNetwork",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else { return };
    let path = PATHS[usize::from(pick) % PATHS.len()];
    if let Err(e) = Call::parse(path, body) {
        let line = e.to_string();
        assert!(!line.contains('\n'), "{line}");
        let reply: serde_json::Value = serde_json::from_slice(&error_body(&line)).expect("JSON");
        assert!(reply["Err"].is_string());
    }
});
