//! Resolving CONTAINER in all four forms, Docker through a private engine.

mod common_attach;

use std::os::fd::AsFd;

use common_attach::*;
use ovsnet::container::{ContainerError, ContainerRef, Resolver};

fn ns_inode(path: &str) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).expect("stat namespace").ino()
}

#[test]
fn docker_by_name_and_id() {
    let Some(host) = docker() else { return };
    let c = Container::sleeper("res");
    let resolver = Resolver::with_docker_host(&host);
    rt().block_on(async {
        let by_name = resolver.resolve(&ContainerRef::parse(&c.name).expect("parse")).await.expect("resolve by name");
        let pid = c.pid();
        assert_eq!(by_name.identity.pid, Some(pid as u32));
        assert_eq!(by_name.identity.id, c.id);
        assert_eq!(by_name.identity.name.as_deref(), Some(c.name.as_str()));
        assert_eq!(by_name.identity.netns.ino, ns_inode(&format!("/proc/{pid}/ns/net")));
        let by_id =
            resolver.resolve(&ContainerRef::parse(&c.id[..12]).expect("parse")).await.expect("resolve by short id");
        assert_eq!(by_id.identity.netns, by_name.identity.netns);
        assert_eq!(by_id.identity.id, c.id);

        // A stopped container is "not running"; an unknown one "no such container".
        with_engine(|e| e.run_cli(&["kill", &c.name])).expect("docker kill");
        let err = resolver.resolve(&ContainerRef::Docker(c.name.clone())).await.expect_err("stopped");
        assert_eq!(err.to_string(), format!("container {}: not running", c.name));
        assert_eq!(resolver.current_netns(&ContainerRef::Docker(c.name.clone())).await.expect("liveness"), None);
        let err = resolver.resolve(&ContainerRef::Docker("nosuch_ctr".into())).await.expect_err("missing");
        assert_eq!(err.to_string(), "container nosuch_ctr: no such container");
    });
}

#[test]
fn docker_unreachable_is_named() {
    let resolver = Resolver::with_docker_host("unix:///nonexistent/docker.sock");
    let err = rt().block_on(resolver.resolve(&ContainerRef::Docker("web_worker".into()))).expect_err("no engine");
    assert!(matches!(err, ContainerError::Unreachable { .. }));
    assert!(err.to_string().starts_with("docker: cannot reach unix:///nonexistent/docker.sock: "), "{err}");
    // "Cannot tell" is an error, never "gone".
    assert!(rt().block_on(resolver.current_netns(&ContainerRef::Docker("x".into()))).is_err());
    let tcp = Resolver::with_docker_host("tcp://127.0.0.1:2375");
    let err = rt().block_on(tcp.resolve(&ContainerRef::Docker("x".into()))).expect_err("tcp");
    assert!(matches!(err, ContainerError::NotUnix { .. }), "{err}");
}

#[test]
fn pid_netns_and_path() {
    let resolver = Resolver::with_docker_host("unix:///nonexistent/docker.sock");
    let mut p = NsProcess::start();
    let ns = Ns::new("res");
    rt().block_on(async {
        let r = resolver.resolve(&ContainerRef::parse(&format!("pid:{}", p.pid())).expect("parse")).await.expect("pid");
        assert_eq!(r.identity.netns.ino, ns_inode(&format!("/proc/{}/ns/net", p.pid())));
        assert_eq!(r.identity.id, format!("pid:{}", p.pid()));
        assert_ne!(r.identity.netns.ino, ns_inode("/proc/self/ns/net"));

        let n =
            resolver.resolve(&ContainerRef::parse(&format!("netns:{}", ns.0)).expect("parse")).await.expect("netns");
        assert_eq!(n.identity.netns.ino, ns_inode(&format!("/run/netns/{}", ns.0)));

        let path = format!("/run/netns/{}", ns.0);
        let by_path = resolver.resolve(&ContainerRef::parse(&path).expect("parse")).await.expect("path");
        assert_eq!(by_path.identity.netns, n.identity.netns);
        // The fd really is that namespace: a link made there shows there.
        let nl = ovsnet::netlink::Netlink::open_in(&by_path.netns).expect("netlink");
        let links = nl.links().await.expect("links");
        assert_eq!(links.len(), 1, "a fresh namespace has only lo");
        let _ = by_path.netns.as_fd();

        // Not a namespace file; missing ones; a process that died.
        let err = resolver.resolve(&ContainerRef::Path("/etc/hostname".into())).await.expect_err("not ns");
        assert_eq!(err.to_string(), "container /etc/hostname: not a network namespace file");
        let err = resolver.resolve(&ContainerRef::Netns("nosuch-ns-x".into())).await.expect_err("missing");
        assert_eq!(err.to_string(), "container netns:nosuch-ns-x: no such network namespace");
        let pid = p.pid();
        p.kill();
        let err = resolver.resolve(&ContainerRef::Pid(pid)).await.expect_err("dead");
        assert_eq!(err.to_string(), format!("container pid:{pid}: no such process"));
    });
}
