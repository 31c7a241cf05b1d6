//! The `external_ids` keys ovsnet writes on `Port` and `Interface` rows of
//! the `Open_vSwitch` database. They are the vocabulary every layer reads
//! an attachment by: the attach engine writes them, the agent builds its
//! pipeline state from them, the cluster code matches them to Endpoint rows.

/// The bridge the port was attached to (lets a bridge's attachments be
/// selected without reading its `ports`).
pub const BRIDGE: &str = "ovsnet-bridge";
/// The container's stable identity: the full Docker ID, `pid:N`,
/// `netns:NAME`, or a path.
pub const CONTAINER: &str = "ovsnet-container";
/// The Docker name (so `detach NAME` works once the container is gone).
pub const CONTAINER_NAME: &str = "ovsnet-container-name";
/// The container's network namespace, `DEV:INODE`: a restarted
/// container has a new one.
pub const CONTAINER_NS: &str = "ovsnet-container-ns";
/// The interface name inside the container.
pub const IFNAME: &str = "ovsnet-ifname";
/// The address with its prefix, `172.16.42.10/24`.
pub const IP: &str = "ovsnet-ip";
/// The bare address, for the uniqueness guard (`172.16.42.10`).
pub const ADDR: &str = "ovsnet-addr";
pub const MAC: &str = "ovsnet-mac";
pub const MTU: &str = "ovsnet-mtu";
pub const GATEWAY: &str = "ovsnet-gateway";
pub const NETWORK: &str = "ovsnet-network";
/// The routes added inside the container (`attach --route`), each
/// `CIDR[@GATEWAY]`, comma-separated: a re-plug adds them again.
pub const ROUTES: &str = "ovsnet-routes";
/// The ports published on the host's addresses (`attach --publish`,
/// `docker run -p`), each `[HOST_IP:]HOST_PORT:CONTAINER_PORT/PROTO`,
/// comma-separated: the agent has the host's kernel translate them.
pub const PUBLISH: &str = "ovsnet-publish";
