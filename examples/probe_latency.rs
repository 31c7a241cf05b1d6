use std::time::Instant;
use ovsnet::ovsdb::{Client, ConnectOptions, Operation};
use ovsnet::sandbox::{OvsSandbox, SandboxOptions};
use ovsnet::vswitch::{BridgeSpec, DatapathType, PortSpec, Vswitch};
fn main() {
    let mut sbx = OvsSandbox::start(SandboxOptions::default()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let c = Client::connect(&sbx.db_remote(), &ConnectOptions::default()).await.unwrap();
        let vs = Vswitch::new(c.clone());
        let mut spec = BridgeSpec::new("obr0").unwrap(); spec.datapath = Some(DatapathType::Netdev);
        vs.add_bridge(&spec).await.unwrap();
        sbx.stop_vswitchd();
        let vs = vs.with_wait(None);
        let t = Instant::now();
        for _ in 0..100 { c.transact("Open_vSwitch", vec![Operation::comment("x")]).await.unwrap(); }
        println!("comment txn: {:?}", t.elapsed() / 100);
        let t = Instant::now();
        for _ in 0..100 { vs.snapshot().await.unwrap(); }
        println!("snapshot: {:?}", t.elapsed() / 100);
        let snap = vs.snapshot().await.unwrap();
        let root = snap.root;
        use ovsnet::ovsdb::{Condition, Mutation, Mutator};
        let t = Instant::now();
        for _ in 0..50 { c.transact("Open_vSwitch", vec![Operation::mutate("Open_vSwitch", vec![Condition::uuid(root)], vec![Mutation::new("next_cfg", Mutator::Add, 1i64)])]).await.unwrap(); }
        println!("mutate next_cfg: {:?}", t.elapsed() / 50);
        let t = Instant::now();
        for i in 0..50 { c.transact("Open_vSwitch", vec![Operation::mutate("Open_vSwitch", vec![Condition::uuid(root)], vec![Mutation::new("external_ids", Mutator::Insert, ovsnet::ovsdb::Datum::map([(format!("k{i}"), "v")]))])]).await.unwrap(); }
        println!("mutate external_ids: {:?}", t.elapsed() / 50);
        let br = snap.bridge("obr0").unwrap().uuid;
        let t = Instant::now();
        for i in 0..50 {
            let ops = ovsnet::vswitch::txn::add_ports(&snap, br, "obr0", &[PortSpec { name: format!("q{i}"), kind: "internal".into(), ..Default::default() }], "c");
            c.transact("Open_vSwitch", ops).await.unwrap();
        }
        println!("raw add_ports txn: {:?}", t.elapsed() / 50);
        let t = Instant::now();
        for i in 0..50 {
            let mut ops = ovsnet::vswitch::txn::add_ports(&snap, br, "obr0", &[PortSpec { name: format!("r{i}"), kind: "internal".into(), ..Default::default() }], "c");
            ops.retain(|o| !matches!(o, Operation::Wait{..}));
            c.transact("Open_vSwitch", ops).await.unwrap();
        }
        println!("add_ports txn without waits: {:?}", t.elapsed() / 50);
        let t = Instant::now();
        for i in 0..100 { vs.add_ports("obr0", &[PortSpec { name: format!("p{i}"), kind: "internal".into(), ..Default::default() }]).await.unwrap(); }
        println!("add_port: {:?}", t.elapsed() / 100);
        let t = Instant::now();
        for _ in 0..20 { vs.snapshot().await.unwrap(); }
        println!("snapshot with 200 ports: {:?}", t.elapsed() / 20);
        let t = Instant::now();
        for _ in 0..20 { c.transact("Open_vSwitch", ovsnet::vswitch::Snapshot::read_ops()).await.unwrap(); }
        println!("snapshot transact only: {:?}", t.elapsed() / 20);
    });
}
