//! The network driver: Linux bridges, veth pairs into container network
//! namespaces (`bridge.rs`), address management (`ipam.rs`), firewall
//! rules (`iptables.rs`), the in-process port proxy (`proxy.rs`) and the
//! embedded DNS server at 127.0.0.11 (`dns.rs`).
//!
//! What every container start does (namespace, veth, addresses, routes)
//! speaks netlink in-process (`netlink.rs`, a few hundred lines rather
//! than an rtnetlink crate stack); bridge creation, which happens once per
//! network, still runs iproute2's `ip`.

pub mod bridge;
pub mod dns;
pub mod ipam;
pub mod ipam6;
pub mod iptables;
mod netlink;
pub mod proxy;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NetworkError(pub String);
