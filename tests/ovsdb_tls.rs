//! `ssl:` remotes with `ovs-pki` certificates against a real `ovsdb-server`:
//! mutual TLS works, a wrong CA on either side fails.

mod ovsdb_support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ovsdb_support::{Pki, Server, free_port, have_ovs, schema_path};
use ovsnet::ovsdb::{Client, ConnectOptions, Error};

fn tls_opts(key: &Path, cert: &Path, ca: &Path) -> ConnectOptions {
    ConnectOptions {
        private_key: Some(key.to_path_buf()),
        certificate: Some(cert.to_path_buf()),
        ca_cert: Some(ca.to_path_buf()),
        timeout: Duration::from_secs(3),
        ..ConnectOptions::default()
    }
}

#[tokio::test]
async fn mutual_tls_with_ovs_pki_certificates() {
    if !have_ovs() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let pki = Pki::create(d);
    let db = d.join("conf.db");
    let out = Command::new("ovsdb-tool").arg("create").arg(&db).arg(schema_path()).output().expect("ovsdb-tool");
    assert!(out.status.success());
    let port = free_port();
    let _srv = Server::start(
        d,
        "ovsdb",
        db,
        vec![format!("pssl:{port}:127.0.0.1")],
        vec![
            format!("--private-key={}", pki.server_key.display()),
            format!("--certificate={}", pki.server_cert.display()),
            format!("--ca-cert={}", pki.ca.display()),
        ],
    );
    let remote = format!("ssl:127.0.0.1:{port}");

    // The right CA and a client certificate it signed: works, though the
    // server certificate's name ("ovsdb id:<uuid>") matches no address.
    let c = Client::connect(&remote, &tls_opts(&pki.client_key, &pki.client_cert, &pki.ca)).await.expect("mutual TLS");
    let dbs = c.list_dbs().await.expect("list_dbs over TLS");
    assert!(dbs.contains(&"Open_vSwitch".to_string()));
    let s = c.get_schema("Open_vSwitch").await.expect("schema over TLS");
    assert_eq!(s.version.as_deref(), Some("8.3.1"));

    // A CA that did not sign the server's certificate: refused by us.
    let quick = |o: ConnectOptions| ConnectOptions { timeout: Duration::from_secs(1), ..o };
    match Client::connect(&remote, &quick(tls_opts(&pki.client_key, &pki.client_cert, &pki.other_ca))).await {
        Err(e @ Error::Connect { .. }) => {
            let m = e.to_string();
            assert!(m.contains(&remote) && m.to_lowercase().contains("certificate"), "{m}");
        }
        other => panic!("wrong CA must fail: {other:?}"),
    }

    // A client certificate from the other CA: refused by the server
    // (mutual TLS: it checks ours too).
    let out = Command::new("ovs-pki")
        .current_dir(d)
        .arg(format!("--dir={}", d.join("pki").display()))
        .arg(format!("--log={}", d.join("pki.log").display()))
        .args(["req+sign", "stranger", "switch"])
        .output()
        .expect("ovs-pki");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = Client::connect(
        &remote,
        &quick(tls_opts(&d.join("stranger-privkey.pem"), &d.join("stranger-cert.pem"), &pki.ca)),
    )
    .await;
    assert!(matches!(r, Err(Error::Connect { .. })), "a client certificate from another CA must be refused: {r:?}");

    // Missing files are a TLS error naming what is missing.
    let no_key = ConnectOptions { private_key: None, ..tls_opts(&pki.client_key, &pki.client_cert, &pki.ca) };
    match Client::connect(&remote, &no_key).await {
        Err(Error::Tls(m)) => assert!(m.contains("private key"), "{m}"),
        other => panic!("{other:?}"),
    }
    let bad_ca = tls_opts(&pki.client_key, &pki.client_cert, &d.join("nope.pem"));
    match Client::connect(&remote, &bad_ca).await {
        Err(Error::Tls(m)) => assert!(m.contains("nope.pem"), "{m}"),
        other => panic!("{other:?}"),
    }
}
