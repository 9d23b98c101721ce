//! The network driver: Linux bridges, veth pairs into container network
//! namespaces (`bridge.rs`), address management (`ipam.rs`), firewall
//! rules (`iptables.rs`), the in-process port proxy (`proxy.rs`) and the
//! embedded DNS server at 127.0.0.11 (`dns.rs`).
//!
//! This slice shells out to iproute2 (`ip`) and util-linux (`unshare`,
//! `nsenter`) rather than speaking netlink: every command is one
//! well-understood line, errors come back with the kernel's own text, and
//! the whole plumbing stays reviewable until the NAT, port and DNS work of
//! issue 6 justifies a netlink stack (`rtnetlink`).

pub mod bridge;
pub mod dns;
pub mod ipam;
pub mod ipam6;
pub mod iptables;
pub mod proxy;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NetworkError(pub String);
