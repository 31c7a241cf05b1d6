//! The kernel's NAT for the containers' way out, through nf_tables netlink
//! messages (libnftnl builds them, a libmnl socket carries them): never by
//! running `nft` or `iptables`.
//!
//! It is also the way in: ports published on the host's addresses are
//! translated to a container's address and port.
//!
//! [`apply`] replaces the whole table `ip ovsnet` in one atomic nftables
//! batch. Listed with `nft list table ip ovsnet`, it reads:
//!
//! ```text
//! table ip ovsnet {
//!     chain postrouting {
//!         type nat hook postrouting priority srcnat; policy accept;
//!         ip saddr 10.20.0.0/24 oifname != "obr0" masquerade
//!     }
//!     chain prerouting {
//!         type nat hook prerouting priority dstnat; policy accept;
//!         iifname != "obr0" fib daddr type local tcp dport 8080 dnat to 10.20.0.5:80
//!     }
//!     chain output {
//!         type nat hook output priority dstnat; policy accept;
//!         ip daddr != 127.0.0.0/8 fib daddr type local tcp dport 8080 dnat to 10.20.0.5:80
//!     }
//!     chain forward {
//!         type filter hook forward priority filter; policy accept;
//!         iifname "obr0" oifname "obr0" drop
//!         oifname "obr0" ct state established,related accept
//!         oifname "obr0" ct status dnat accept
//!         oifname "obr0" drop
//!     }
//! }
//! ```
//!
//! `postrouting` rewrites the source address of packets from the
//! containers' networks that leave the host through any interface but the
//! bridge. `prerouting` and `output` send connections to a published port
//! of the host (from another machine, or from the host itself) to the
//! container; the replies are translated back by connection tracking.
//! `forward` keeps the host from routing between the networks on the
//! bridge (containers reach each other only as the bridge's flows allow),
//! and lets nothing from outside reach a container but replies and
//! published ports.
//!
//! Every function acts in the network namespace of the calling thread
//! (nf_tables and `/proc/sys/net` are per namespace); the `*_in` variants
//! act in another one, entering it only to open their socket or file. All
//! of them block until the kernel has answered.
//!
//! What goes into a batch is decided by pure code ([`EgressRules`],
//! [`Cidr`], [`prefix_mask`], [`ifname_key`], [`parse_acks`]), apart from
//! the I/O.

use std::collections::BTreeSet;
use std::ffi::CStr;
use std::fmt;
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Duration;

use nftnl::{Batch, Chain, ChainType, FinalizedBatch, Hook, MsgType, Policy, ProtoFamily, Rule, Table, nft_expr};

use nftnl::expr::{Expression, Immediate, Nat, NatType, Register};
use nftnl::nftnl_sys as sys;

use crate::net::{PublishedPort, Transport};
use crate::netns::{self, NetnsError};

/// The name of the table (family `ip`) that ovsnet owns.
pub const TABLE: &str = "ovsnet";
/// The chain of the table that masquerades the containers' traffic.
pub const POSTROUTING_CHAIN: &str = "postrouting";
/// The chains of the table that translate published ports, for packets
/// that arrive and for the host's own.
pub const PREROUTING_CHAIN: &str = "prerouting";
pub const OUTPUT_CHAIN: &str = "output";
/// The chain of the table that keeps the host from routing between the
/// containers' networks, and the outside from reaching them unasked.
pub const FORWARD_CHAIN: &str = "forward";
/// The priority of the masquerading chain (`srcnat`).
pub const SRCNAT_PRIORITY: i32 = 100;
/// The priority of the published ports' chains (`dstnat`).
pub const DSTNAT_PRIORITY: i32 = -100;
/// The priority of the forward chain (`filter`).
pub const FILTER_PRIORITY: i32 = 0;
/// The length of the kernel's interface names with their zero padding
/// (`IFNAMSIZ`): what `meta iifname`/`oifname` load into a register.
pub const IFNAMSIZ: usize = 16;
/// The file that turns IPv4 forwarding on or off in a network namespace.
pub const IP_FORWARD_PATH: &str = "/proc/sys/net/ipv4/ip_forward";

const TABLE_C: &CStr = c"ovsnet";
const POSTROUTING_C: &CStr = c"postrouting";
const FORWARD_C: &CStr = c"forward";
const PREROUTING_C: &CStr = c"prerouting";
const OUTPUT_C: &CStr = c"output";

/// How long to wait for the kernel's answer to a batch. The kernel answers
/// as soon as it has processed the batch, so this only guards against a
/// lost answer.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// The receive buffer: more than the largest netlink message the kernel
/// sends back (an error echoes the refused message, at most 64 KiB, plus a
/// page).
const RECV_BUFFER: usize = 1 << 17;
/// Socket buffer room asked for each message of a batch (its answer is
/// about 300 bytes of kernel memory; the message itself up to a few
/// hundred bytes).
const BUFFER_PER_MESSAGE: usize = 1024;

/// `NLMSG_ERROR`: an acknowledgement (error 0) or a refusal.
const NLMSG_ERROR: u16 = 2;
/// The size of a netlink message header.
const NLMSG_HDRLEN: usize = 16;

/// Why a NAT operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NatError {
    /// The bridge name is not a valid interface name.
    #[error("bridge name {0:?}: must be 1-15 bytes, no '/', ':', whitespace or NUL")]
    BadBridge(String),
    /// A source network's prefix length is over 32.
    #[error("source network {addr}/{prefix}: the prefix length must be 0-32")]
    BadPrefix { addr: Ipv4Addr, prefix: u8 },
    #[error(transparent)]
    Netns(#[from] NetnsError),
    /// The netfilter netlink socket could not be opened or set up.
    #[error("open netfilter netlink socket: {0}")]
    Socket(#[source] std::io::Error),
    #[error("send nftables batch: {0}")]
    Send(#[source] std::io::Error),
    #[error("receive the kernel's answer to an nftables batch: {0}")]
    Receive(#[source] std::io::Error),
    /// The kernel refused a message of the batch; nothing of the batch
    /// was applied.
    #[error("nftables {op}: {}", super::errno_text(*errno))]
    Kernel { op: String, errno: i32 },
    /// A port published on a loopback address: the kernel does not route
    /// such connections to another interface.
    #[error("published port {0}: a loopback host address cannot reach a container")]
    LoopbackPublish(PublishedPort),
    /// The kernel's answer could not be read (truncated, or not what a
    /// batch is answered with).
    #[error("nftables: {0}")]
    Protocol(String),
    /// Reading or writing a file under `/proc/sys`.
    #[error("{path}: {source}")]
    Sysctl {
        path: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl NatError {
    /// The errno of a kernel refusal.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NatError::Kernel { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

/// The containers' way out of a host and way in: the bridge they are
/// attached to, the networks whose addresses may leave the host,
/// masqueraded, and the ports published on the host's addresses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Egress {
    /// The bridge the containers' networks are on (`obr0`).
    pub bridge: String,
    /// The networks allowed out, as (address, prefix length): the address
    /// may have host bits set, they are cleared.
    pub sources: Vec<(Ipv4Addr, u8)>,
    /// The published ports, in the order their rules are tried.
    pub published: Vec<Dnat>,
}

/// A published port's translation: connections to the host's address (or
/// every local address) and port go to a container's address and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dnat {
    pub port: PublishedPort,
    /// The container's address.
    pub to: Ipv4Addr,
}

/// An IPv4 network: its address with the host bits cleared, and its
/// prefix length (0-32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    network: Ipv4Addr,
    prefix: u8,
}

impl Cidr {
    /// The network of `addr` with `prefix` bits (host bits cleared);
    /// refuses a prefix over 32.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Cidr, NatError> {
        let mask = prefix_mask(prefix).ok_or(NatError::BadPrefix { addr, prefix })?;
        let bits = u32::from(addr) & u32::from_be_bytes(mask);
        Ok(Cidr { network: Ipv4Addr::from(bits), prefix })
    }

    /// The network address (host bits zero).
    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The netmask, in network byte order.
    pub fn mask(&self) -> [u8; 4] {
        // A Cidr is only ever made with a prefix of at most 32.
        prefix_mask(self.prefix).unwrap_or([0xff; 4])
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The netmask of a prefix length, in network byte order (`24` gives
/// `[255, 255, 255, 0]`); `None` over 32.
pub fn prefix_mask(prefix: u8) -> Option<[u8; 4]> {
    match prefix {
        0 => Some([0; 4]),
        1..=32 => Some((u32::MAX << (32 - u32::from(prefix))).to_be_bytes()),
        _ => None,
    }
}

/// An interface name as `meta iifname`/`oifname` load it: its bytes,
/// zero-padded to [`IFNAMSIZ`]. Comparing all 16 bytes matches that name
/// exactly, as `nft` does for a name without a wildcard.
pub fn ifname_key(name: &str) -> Result<[u8; IFNAMSIZ], NatError> {
    super::validate_ifname(name).map_err(|_| NatError::BadBridge(name.to_owned()))?;
    let mut key = [0u8; IFNAMSIZ];
    // validate_ifname allows at most IFNAMSIZ - 1 bytes.
    key[..name.len()].copy_from_slice(name.as_bytes());
    Ok(key)
}

/// The checked contents of the table [`apply`] installs: what its batch is
/// built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressRules {
    bridge: String,
    bridge_key: [u8; IFNAMSIZ],
    masquerade: Vec<Cidr>,
    published: Vec<Dnat>,
}

impl EgressRules {
    /// Checks an [`Egress`]: the bridge must be a valid interface name and
    /// every prefix at most 32, no published port on a loopback address.
    /// The sources become networks (host bits cleared) in their order,
    /// each once.
    pub fn new(egress: &Egress) -> Result<EgressRules, NatError> {
        let bridge_key = ifname_key(&egress.bridge)?;
        let mut seen = BTreeSet::new();
        let mut masquerade = Vec::new();
        for &(addr, prefix) in &egress.sources {
            let cidr = Cidr::new(addr, prefix)?;
            if seen.insert(cidr) {
                masquerade.push(cidr);
            }
        }
        for d in &egress.published {
            if d.port.host_ip.is_some_and(|ip| ip.is_loopback()) {
                return Err(NatError::LoopbackPublish(d.port));
            }
        }
        Ok(EgressRules { bridge: egress.bridge.clone(), bridge_key, masquerade, published: egress.published.clone() })
    }

    /// The bridge.
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// The networks masqueraded, one rule each, in this order.
    pub fn masquerade(&self) -> &[Cidr] {
        &self.masquerade
    }

    /// The published ports' translations, one rule each per chain.
    pub fn published(&self) -> &[Dnat] {
        &self.published
    }

    /// The rules in `nft` syntax, one line each, as `nft list` shows them
    /// (for logs and messages).
    pub fn describe(&self) -> Vec<String> {
        let b = &self.bridge;
        let dnat = |d: &Dnat| {
            let p = &d.port;
            format!("{} dport {} dnat to {}:{}", p.transport.name(), p.host_port, d.to, p.container_port)
        };
        let daddr = |d: &Dnat| match d.port.host_ip {
            Some(ip) => format!("ip daddr {ip}"),
            None => "fib daddr type local".to_owned(),
        };
        let mut lines: Vec<String> = self
            .masquerade
            .iter()
            .map(|c| match c.prefix {
                0 => format!("{POSTROUTING_CHAIN}: oifname != \"{b}\" masquerade"),
                32 => format!("{POSTROUTING_CHAIN}: ip saddr {} oifname != \"{b}\" masquerade", c.network),
                _ => format!("{POSTROUTING_CHAIN}: ip saddr {c} oifname != \"{b}\" masquerade"),
            })
            .collect();
        for d in &self.published {
            lines.push(format!("{PREROUTING_CHAIN}: iifname != \"{b}\" {} {}", daddr(d), dnat(d)));
        }
        for d in &self.published {
            let local = if d.port.host_ip.is_none() { "ip daddr != 127.0.0.0/8 " } else { "" };
            lines.push(format!("{OUTPUT_CHAIN}: {local}{} {}", daddr(d), dnat(d)));
        }
        lines.push(format!("{FORWARD_CHAIN}: iifname \"{b}\" oifname \"{b}\" drop"));
        lines.push(format!("{FORWARD_CHAIN}: oifname \"{b}\" ct state established,related accept"));
        lines.push(format!("{FORWARD_CHAIN}: oifname \"{b}\" ct status dnat accept"));
        lines.push(format!("{FORWARD_CHAIN}: oifname \"{b}\" drop"));
        lines
    }
}

/// One acknowledgement from the kernel: the sequence number of the message
/// it answers and its errno (0: done).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    pub seq: u32,
    pub errno: i32,
}

/// The acknowledgements (`NLMSG_ERROR` messages) in a datagram the kernel
/// sent; other messages are skipped. Refuses a truncated datagram.
pub fn parse_acks(buf: &[u8]) -> Result<Vec<Ack>, NatError> {
    let u32_at = |at: usize| -> Option<u32> { Some(u32::from_ne_bytes(buf.get(at..at + 4)?.try_into().ok()?)) };
    let u16_at = |at: usize| -> Option<u16> { Some(u16::from_ne_bytes(buf.get(at..at + 2)?.try_into().ok()?)) };
    let truncated = |at: usize| NatError::Protocol(format!("truncated netlink message at byte {at} of {}", buf.len()));
    let mut acks = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let len = u32_at(at).ok_or_else(|| truncated(at))? as usize;
        if len < NLMSG_HDRLEN || at + len > buf.len() {
            return Err(truncated(at));
        }
        let kind = u16_at(at + 4).ok_or_else(|| truncated(at))?;
        let seq = u32_at(at + 8).ok_or_else(|| truncated(at))?;
        if kind == NLMSG_ERROR {
            let code = u32_at(at + NLMSG_HDRLEN).ok_or_else(|| truncated(at))? as i32;
            acks.push(Ack { seq, errno: code.checked_neg().unwrap_or(i32::MAX) });
        }
        // NLMSG_ALIGN: messages start on 4-byte boundaries.
        at += (len + 3) & !3;
    }
    Ok(acks)
}

/// A finalized batch and what each of its messages does, for errors.
struct Labeled {
    batch: FinalizedBatch,
    labels: Vec<String>,
}

impl Labeled {
    /// Finalizes `batch`, whose messages were added in the order of `labels`.
    fn new(batch: Batch, mut labels: Vec<String>) -> Labeled {
        let batch = batch.finalize();
        // Kernels that acknowledge the batch's begin and end messages get
        // a sequence number for each of them too.
        if batch.sequence_numbers().len() == labels.len() + 2 {
            labels.insert(0, "batch begin".to_owned());
            labels.push("batch end".to_owned());
        }
        Labeled { batch, labels }
    }

    fn label(&self, seq: u32) -> String {
        let seqs = self.batch.sequence_numbers();
        seqs.contains(&seq)
            .then(|| self.labels.get((seq - seqs.start) as usize).cloned())
            .flatten()
            .unwrap_or_else(|| "batch".to_owned())
    }
}

fn table() -> Table {
    Table::new(TABLE_C, ProtoFamily::Ipv4)
}

/// The batch that replaces the table with `rules`: add the table (a no-op
/// when it exists), delete it with all it holds, and make it anew. The
/// kernel applies a batch whole or not at all.
fn apply_batch(rules: &EgressRules) -> Labeled {
    let mut batch = Batch::new();
    let mut labels = Vec::new();
    let table = table();
    batch.add(&table, MsgType::Add);
    labels.push(format!("add table ip {TABLE}"));
    batch.add(&table, MsgType::Del);
    labels.push(format!("delete table ip {TABLE}"));
    batch.add(&table, MsgType::Add);
    labels.push(format!("add table ip {TABLE}"));

    let mut postrouting = Chain::new(POSTROUTING_C, &table);
    postrouting.set_type(ChainType::Nat);
    postrouting.set_hook(Hook::PostRouting, SRCNAT_PRIORITY);
    postrouting.set_policy(Policy::Accept);
    batch.add(&postrouting, MsgType::Add);
    labels.push(format!("add chain {POSTROUTING_CHAIN}"));

    let mut prerouting = Chain::new(PREROUTING_C, &table);
    prerouting.set_type(ChainType::Nat);
    prerouting.set_hook(Hook::PreRouting, DSTNAT_PRIORITY);
    prerouting.set_policy(Policy::Accept);
    batch.add(&prerouting, MsgType::Add);
    labels.push(format!("add chain {PREROUTING_CHAIN}"));

    let mut output = Chain::new(OUTPUT_C, &table);
    output.set_type(ChainType::Nat);
    output.set_hook(Hook::Out, DSTNAT_PRIORITY);
    output.set_policy(Policy::Accept);
    batch.add(&output, MsgType::Add);
    labels.push(format!("add chain {OUTPUT_CHAIN}"));

    let mut forward = Chain::new(FORWARD_C, &table);
    forward.set_type(ChainType::Filter);
    forward.set_hook(Hook::Forward, FILTER_PRIORITY);
    forward.set_policy(Policy::Accept);
    batch.add(&forward, MsgType::Add);
    labels.push(format!("add chain {FORWARD_CHAIN}"));

    let bridge: &[u8] = &rules.bridge_key;
    for cidr in &rules.masquerade {
        let mut rule = Rule::new(&postrouting);
        // `ip saddr CIDR`: nothing to match for /0, no mask for /32.
        if cidr.prefix > 0 {
            rule.add_expr(&nft_expr!(payload ipv4 saddr));
            if cidr.prefix < 32 {
                let mask: &[u8] = &cidr.mask();
                let xor: &[u8] = &[0; 4];
                rule.add_expr(&nft_expr!(bitwise mask mask, xor xor));
            }
            rule.add_expr(&nft_expr!(cmp == cidr.network));
        }
        // `oifname != BRIDGE masquerade`
        rule.add_expr(&nft_expr!(meta oifname));
        rule.add_expr(&nft_expr!(cmp != bridge));
        rule.add_expr(&nft_expr!(masquerade));
        batch.add(&rule, MsgType::Add);
        labels.push(format!("add rule {POSTROUTING_CHAIN} masquerade {cidr}"));
    }

    for d in &rules.published {
        // `iifname != BRIDGE DADDR PROTO dport N dnat to IP:PORT`: what
        // containers send to the host's address is the host's.
        let mut rule = Rule::new(&prerouting);
        rule.add_expr(&nft_expr!(meta iifname));
        rule.add_expr(&nft_expr!(cmp != bridge));
        add_dnat(&mut rule, d);
        batch.add(&rule, MsgType::Add);
        labels.push(format!("add rule {PREROUTING_CHAIN} {}", d.port));

        // The host's own connections, but not to loopback addresses (the
        // kernel would not route their source out of the host).
        let mut rule = Rule::new(&output);
        if d.port.host_ip.is_none() {
            let mask: &[u8] = &[255, 0, 0, 0];
            let xor: &[u8] = &[0; 4];
            rule.add_expr(&nft_expr!(payload ipv4 daddr));
            rule.add_expr(&nft_expr!(bitwise mask mask, xor xor));
            rule.add_expr(&nft_expr!(cmp != Ipv4Addr::new(127, 0, 0, 0)));
        }
        add_dnat(&mut rule, d);
        batch.add(&rule, MsgType::Add);
        labels.push(format!("add rule {OUTPUT_CHAIN} {}", d.port));
    }

    // `iifname BRIDGE oifname BRIDGE drop`
    let mut isolate = Rule::new(&forward);
    isolate.add_expr(&nft_expr!(meta iifname));
    isolate.add_expr(&nft_expr!(cmp == bridge));
    isolate.add_expr(&nft_expr!(meta oifname));
    isolate.add_expr(&nft_expr!(cmp == bridge));
    isolate.add_expr(&nft_expr!(verdict drop));
    batch.add(&isolate, MsgType::Add);
    labels.push(format!("add rule {FORWARD_CHAIN} drop {} to {}", rules.bridge, rules.bridge));

    // `oifname BRIDGE ct state established,related accept`
    let mut replies = Rule::new(&forward);
    replies.add_expr(&nft_expr!(meta oifname));
    replies.add_expr(&nft_expr!(cmp == bridge));
    replies.add_expr(&nft_expr!(ct state));
    let states = (nftnl::expr::States::ESTABLISHED | nftnl::expr::States::RELATED).bits();
    replies.add_expr(&nft_expr!(bitwise mask states, xor 0u32));
    replies.add_expr(&nft_expr!(cmp != 0u32));
    replies.add_expr(&nft_expr!(verdict accept));
    batch.add(&replies, MsgType::Add);
    labels.push(format!("add rule {FORWARD_CHAIN} accept replies to {}", rules.bridge));

    // `oifname BRIDGE ct status dnat accept`
    let mut published = Rule::new(&forward);
    published.add_expr(&nft_expr!(meta oifname));
    published.add_expr(&nft_expr!(cmp == bridge));
    published.add_expr(&nft_expr!(ct status));
    let dnat = nftnl::expr::ConntrackStatus::DST_NAT.bits();
    published.add_expr(&nft_expr!(bitwise mask dnat, xor 0u32));
    published.add_expr(&nft_expr!(cmp != 0u32));
    published.add_expr(&nft_expr!(verdict accept));
    batch.add(&published, MsgType::Add);
    labels.push(format!("add rule {FORWARD_CHAIN} accept published ports on {}", rules.bridge));

    // `oifname BRIDGE drop`
    let mut unasked = Rule::new(&forward);
    unasked.add_expr(&nft_expr!(meta oifname));
    unasked.add_expr(&nft_expr!(cmp == bridge));
    unasked.add_expr(&nft_expr!(verdict drop));
    batch.add(&unasked, MsgType::Add);
    labels.push(format!("add rule {FORWARD_CHAIN} drop the rest to {}", rules.bridge));

    Labeled::new(batch, labels)
}

/// Adds `DADDR PROTO dport N dnat to IP:PORT` to a rule: the host address
/// (or any local one), the protocol and port, and the translation.
fn add_dnat(rule: &mut Rule<'_>, d: &Dnat) {
    match d.port.host_ip {
        Some(ip) => {
            rule.add_expr(&nft_expr!(payload ipv4 daddr));
            rule.add_expr(&nft_expr!(cmp == ip));
        }
        None => {
            rule.add_expr(&FibDaddrType);
            rule.add_expr(&nft_expr!(cmp == u32::from(libc::RTN_LOCAL)));
        }
    }
    rule.add_expr(&nft_expr!(meta l4proto));
    rule.add_expr(&nft_expr!(cmp == d.port.transport.ip_proto()));
    match d.port.transport {
        Transport::Tcp => rule.add_expr(&nft_expr!(payload tcp dport)),
        Transport::Udp => rule.add_expr(&nft_expr!(payload udp dport)),
    }
    rule.add_expr(&nft_expr!(cmp == d.port.host_port.to_be()));
    // The translation reads the address from register 1 and the port
    // (network byte order) from register 2.
    rule.add_expr(&Immediate::new(d.to.octets(), Register::Reg1));
    rule.add_expr(&Immediate::new(d.port.container_port.to_be_bytes(), Register::Reg2));
    rule.add_expr(&Nat {
        nat_type: NatType::DNat,
        family: ProtoFamily::Ipv4,
        ip_register: Register::Reg1,
        port_register: Some(Register::Reg2),
    });
}

/// `fib daddr type`: the kernel's routing type of the packet's destination
/// address (`RTN_LOCAL` for an address of this host), into register 1.
/// The crate has no expression for it.
struct FibDaddrType;

/// `NFTA_FIB_F_DADDR`: look the destination address up.
const FIB_F_DADDR: u32 = 1 << 1;
/// `NFT_FIB_RESULT_ADDRTYPE`: the result is the address's route type.
const FIB_RESULT_ADDRTYPE: u32 = 3;

impl Expression for FibDaddrType {
    fn to_expr(&self, _rule: &Rule<'_>) -> std::ptr::NonNull<sys::nftnl_expr> {
        // SAFETY: the name is a valid C string; the attributes set are the
        // fib expression's, with the value types libnftnl expects for them.
        unsafe {
            let expr = sys::nftnl_expr_alloc(c"fib".as_ptr());
            let Some(expr) = std::ptr::NonNull::new(expr) else {
                std::alloc::handle_alloc_error(std::alloc::Layout::new::<u64>())
            };
            sys::nftnl_expr_set_u32(expr.as_ptr(), sys::NFTNL_EXPR_FIB_DREG as u16, Register::Reg1.to_raw());
            sys::nftnl_expr_set_u32(expr.as_ptr(), sys::NFTNL_EXPR_FIB_RESULT as u16, FIB_RESULT_ADDRTYPE);
            sys::nftnl_expr_set_u32(expr.as_ptr(), sys::NFTNL_EXPR_FIB_FLAGS as u16, FIB_F_DADDR);
            expr
        }
    }
}

/// The batch that deletes the table whether or not it exists: add it (a
/// no-op when it exists), then delete it.
fn remove_batch() -> Labeled {
    let mut batch = Batch::new();
    let table = table();
    batch.add(&table, MsgType::Add);
    batch.add(&table, MsgType::Del);
    Labeled::new(batch, vec![format!("add table ip {TABLE}"), format!("delete table ip {TABLE}")])
}

/// A netfilter netlink socket, opened in the calling thread's namespace
/// (it stays bound to that namespace).
fn open_socket() -> Result<mnl::Socket, NatError> {
    let socket = mnl::Socket::new(mnl::Bus::Netfilter).map_err(NatError::Socket)?;
    nix::sys::socket::setsockopt(
        &socket_fd(&socket),
        nix::sys::socket::sockopt::ReceiveTimeout,
        &nix::sys::time::TimeVal::new(REPLY_TIMEOUT.as_secs() as _, 0),
    )
    .map_err(|e| NatError::Socket(e.into()))?;
    Ok(socket)
}

fn socket_fd(socket: &mnl::Socket) -> BorrowedFd<'_> {
    // SAFETY: the descriptor belongs to `socket`, which outlives the
    // borrow and closes it only when dropped.
    unsafe { BorrowedFd::borrow_raw(socket.as_raw_fd()) }
}

/// Makes the socket's buffers hold a batch of `bytes` bytes and the
/// answers to its `messages` messages, when the defaults may not. As root
/// the limits of `net.core.[rw]mem_max` do not apply (`SO_*BUFFORCE`);
/// otherwise the request is capped by them.
fn size_buffers(socket: &mnl::Socket, bytes: usize, messages: usize) -> Result<(), NatError> {
    use nix::sys::socket::{getsockopt, setsockopt, sockopt};
    let fd = socket_fd(socket);
    let want = bytes.max(messages.saturating_mul(BUFFER_PER_MESSAGE)).saturating_add(RECV_BUFFER);
    let sock_err = |e: nix::Error| NatError::Socket(e.into());
    if getsockopt(&fd, sockopt::SndBuf).map_err(sock_err)? < want {
        setsockopt(&fd, sockopt::SndBufForce, &want)
            .or_else(|_| setsockopt(&fd, sockopt::SndBuf, &want))
            .map_err(sock_err)?;
    }
    if getsockopt(&fd, sockopt::RcvBuf).map_err(sock_err)? < want {
        setsockopt(&fd, sockopt::RcvBufForce, &want)
            .or_else(|_| setsockopt(&fd, sockopt::RcvBuf, &want))
            .map_err(sock_err)?;
    }
    Ok(())
}

/// Sends a batch in one datagram (the kernel takes a batch as one unit
/// only when it arrives whole) and waits until the kernel has acknowledged
/// every message of it, or refused one.
fn send(socket: &mnl::Socket, labeled: &Labeled) -> Result<(), NatError> {
    let bytes: Vec<u8> = labeled.batch.iter().flatten().copied().collect();
    let mut pending: BTreeSet<u32> = labeled.batch.sequence_numbers().collect();
    size_buffers(socket, bytes.len(), pending.len())?;
    let sent = socket.send(&bytes).map_err(NatError::Send)?;
    if sent < bytes.len() {
        return Err(NatError::Send(std::io::Error::other(format!("sent {sent} of {} bytes", bytes.len()))));
    }

    /// A receive buffer aligned for netlink headers.
    #[repr(C, align(8))]
    struct Buffer([u8; RECV_BUFFER]);
    let mut buffer = Box::new(Buffer([0; RECV_BUFFER]));
    while !pending.is_empty() {
        let n = match socket.recv_raw(&mut buffer.0) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Err(NatError::Receive(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer for {} message(s) within {}s", pending.len(), REPLY_TIMEOUT.as_secs()),
                )));
            }
            Err(e) => return Err(NatError::Receive(e)),
        };
        for ack in parse_acks(&buffer.0[..n])? {
            if ack.errno != 0 {
                return Err(NatError::Kernel { op: labeled.label(ack.seq), errno: ack.errno });
            }
            pending.remove(&ack.seq);
        }
    }
    Ok(())
}

/// Replaces the table `ip ovsnet` of the calling thread's network
/// namespace with the rules of `egress`, in one atomic batch: a
/// masquerading rule per source network for packets that leave through
/// any interface but the bridge, and a rule that drops what the host would
/// route from the bridge back to it. Applying the same `egress` again
/// gives the same ruleset; no source networks give the table with its two
/// chains and the forward rule only.
pub fn apply(egress: &Egress) -> Result<(), NatError> {
    let rules = EgressRules::new(egress)?;
    send(&open_socket()?, &apply_batch(&rules))
}

/// [`apply`] in the network namespace `ns` (the calling thread enters it
/// only to open the socket).
pub fn apply_in(ns: impl AsFd, egress: &Egress) -> Result<(), NatError> {
    let rules = EgressRules::new(egress)?;
    let socket = netns::with(ns, open_socket)??;
    send(&socket, &apply_batch(&rules))
}

/// Deletes the table `ip ovsnet` of the calling thread's network namespace
/// with all its rules; nothing to do, and no error, when there is none.
pub fn remove() -> Result<(), NatError> {
    send(&open_socket()?, &remove_batch())
}

/// [`remove`] in the network namespace `ns`.
pub fn remove_in(ns: impl AsFd) -> Result<(), NatError> {
    let socket = netns::with(ns, open_socket)??;
    send(&socket, &remove_batch())
}

fn sysctl_err(source: std::io::Error) -> NatError {
    NatError::Sysctl { path: IP_FORWARD_PATH, source }
}

fn open_ip_forward(write: bool) -> Result<std::fs::File, NatError> {
    std::fs::OpenOptions::new().read(!write).write(write).open(IP_FORWARD_PATH).map_err(sysctl_err)
}

fn write_ip_forward(mut file: std::fs::File, on: bool) -> Result<(), NatError> {
    file.write_all(if on { b"1\n" } else { b"0\n" }).map_err(sysctl_err)
}

fn read_ip_forward(mut file: std::fs::File) -> Result<bool, NatError> {
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(sysctl_err)?;
    match text.trim() {
        "0" => Ok(false),
        "1" => Ok(true),
        other => Err(sysctl_err(std::io::Error::other(format!("unexpected value {other:?}")))),
    }
}

/// Turns IPv4 forwarding on or off in the calling thread's network
/// namespace (`net.ipv4.ip_forward`). The kernel resets the forwarding
/// setting of every interface of the namespace to the same value.
pub fn set_ip_forward(on: bool) -> Result<(), NatError> {
    write_ip_forward(open_ip_forward(true)?, on)
}

/// [`set_ip_forward`] in the network namespace `ns`: the file is opened
/// there (what `/proc/sys/net` shows depends on the namespace of the
/// thread that opens it).
pub fn set_ip_forward_in(ns: impl AsFd, on: bool) -> Result<(), NatError> {
    write_ip_forward(netns::with(ns, || open_ip_forward(true))??, on)
}

/// Whether IPv4 forwarding is on in the calling thread's network namespace.
pub fn ip_forward() -> Result<bool, NatError> {
    read_ip_forward(open_ip_forward(false)?)
}

/// [`ip_forward`] in the network namespace `ns`.
pub fn ip_forward_in(ns: impl AsFd) -> Result<bool, NatError> {
    read_ip_forward(netns::with(ns, || open_ip_forward(false))??)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_for_prefixes() {
        assert_eq!(prefix_mask(0), Some([0, 0, 0, 0]));
        assert_eq!(prefix_mask(1), Some([0x80, 0, 0, 0]));
        assert_eq!(prefix_mask(8), Some([255, 0, 0, 0]));
        assert_eq!(prefix_mask(20), Some([255, 255, 0xf0, 0]));
        assert_eq!(prefix_mask(24), Some([255, 255, 255, 0]));
        assert_eq!(prefix_mask(31), Some([255, 255, 255, 254]));
        assert_eq!(prefix_mask(32), Some([255, 255, 255, 255]));
        assert_eq!(prefix_mask(33), None);
        assert_eq!(prefix_mask(255), None);
    }

    #[test]
    fn cidrs_clear_host_bits() {
        let c = Cidr::new(Ipv4Addr::new(10, 20, 3, 77), 22).expect("valid");
        assert_eq!(c.network(), Ipv4Addr::new(10, 20, 0, 0));
        assert_eq!(c.to_string(), "10.20.0.0/22");
        assert_eq!(c.mask(), [255, 255, 252, 0]);
        assert_eq!(Cidr::new(Ipv4Addr::new(1, 2, 3, 4), 0).expect("valid").network(), Ipv4Addr::UNSPECIFIED);
        assert!(matches!(Cidr::new(Ipv4Addr::LOCALHOST, 33), Err(NatError::BadPrefix { prefix: 33, .. })));
    }

    #[test]
    fn interface_names_are_padded_to_ifnamsiz() {
        assert_eq!(&ifname_key("obr0").expect("valid"), b"obr0\0\0\0\0\0\0\0\0\0\0\0\0");
        assert_eq!(&ifname_key("ovs0123456789ab").expect("valid"), b"ovs0123456789ab\0");
        for bad in ["", "a/b", "a b", "ovs0123456789abc", "x\0y"] {
            assert!(matches!(ifname_key(bad), Err(NatError::BadBridge(_))), "{bad:?}");
        }
    }

    #[test]
    fn rules_are_checked_and_deduplicated() {
        let egress = Egress {
            bridge: "obr0".into(),
            sources: vec![
                (Ipv4Addr::new(10, 1, 0, 5), 24),
                (Ipv4Addr::new(10, 2, 0, 0), 16),
                (Ipv4Addr::new(10, 1, 0, 0), 24),
                (Ipv4Addr::new(192, 0, 2, 1), 32),
            ],
            published: vec![Dnat { port: "8080:80".parse().expect("port"), to: Ipv4Addr::new(10, 1, 0, 9) }],
        };
        let rules = EgressRules::new(&egress).expect("valid");
        assert_eq!(rules.bridge(), "obr0");
        let shown: Vec<String> = rules.masquerade().iter().map(Cidr::to_string).collect();
        assert_eq!(shown, ["10.1.0.0/24", "10.2.0.0/16", "192.0.2.1/32"]);
        assert_eq!(
            rules.describe(),
            [
                "postrouting: ip saddr 10.1.0.0/24 oifname != \"obr0\" masquerade",
                "postrouting: ip saddr 10.2.0.0/16 oifname != \"obr0\" masquerade",
                "postrouting: ip saddr 192.0.2.1 oifname != \"obr0\" masquerade",
                "prerouting: iifname != \"obr0\" fib daddr type local tcp dport 8080 dnat to 10.1.0.9:80",
                "output: ip daddr != 127.0.0.0/8 fib daddr type local tcp dport 8080 dnat to 10.1.0.9:80",
                "forward: iifname \"obr0\" oifname \"obr0\" drop",
                "forward: oifname \"obr0\" ct state established,related accept",
                "forward: oifname \"obr0\" ct status dnat accept",
                "forward: oifname \"obr0\" drop",
            ]
        );

        let bad =
            Egress { bridge: "obr0".into(), sources: vec![(Ipv4Addr::new(10, 0, 0, 0), 40)], ..Default::default() };
        let e = EgressRules::new(&bad).expect_err("prefix 40");
        assert_eq!(e.to_string(), "source network 10.0.0.0/40: the prefix length must be 0-32");
        let bad = Egress { bridge: "bad name".into(), ..Default::default() };
        assert!(matches!(EgressRules::new(&bad), Err(NatError::BadBridge(_))));
    }

    /// A netlink message: header (len, type, flags, seq, pid) and payload.
    fn message(kind: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let len = NLMSG_HDRLEN + payload.len();
        let mut out = Vec::new();
        out.extend_from_slice(&(len as u32).to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(&0u16.to_ne_bytes());
        out.extend_from_slice(&seq.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes());
        out.extend_from_slice(payload);
        out.resize((len + 3) & !3, 0);
        out
    }

    #[test]
    fn acks_are_parsed() {
        let mut buf = message(NLMSG_ERROR, 7, &0i32.to_ne_bytes());
        // A refusal echoes the refused message's header after the errno.
        let mut refusal = (-libc::ENOENT).to_ne_bytes().to_vec();
        refusal.extend_from_slice(&message(0x0a02, 8, &[]));
        buf.extend(message(NLMSG_ERROR, 8, &refusal));
        // Anything else (here NLMSG_DONE, with an odd-sized payload) is skipped.
        buf.extend(message(3, 9, &[1, 2, 3]));
        assert_eq!(parse_acks(&buf).expect("parses"), [Ack { seq: 7, errno: 0 }, Ack { seq: 8, errno: libc::ENOENT }]);

        assert!(parse_acks(&[]).expect("empty").is_empty());
        assert!(matches!(parse_acks(&buf[..buf.len() - 4]), Err(NatError::Protocol(_))));
        assert!(matches!(parse_acks(&[1, 0, 0, 0]), Err(NatError::Protocol(_))));
        let short_error = message(NLMSG_ERROR, 1, &[]);
        assert!(matches!(parse_acks(&short_error), Err(NatError::Protocol(_))));
    }

    #[test]
    fn refusals_name_the_message() {
        let e = NatError::Kernel { op: "add chain postrouting".into(), errno: libc::ENOENT };
        assert_eq!(e.to_string(), "nftables add chain postrouting: not found (ENOENT)");
        assert_eq!(e.errno(), Some(libc::ENOENT));
    }
}
