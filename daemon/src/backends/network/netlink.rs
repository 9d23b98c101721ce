//! Just enough rtnetlink for container plumbing: veth pairs, addresses,
//! default routes and link state, asked of the kernel directly instead of
//! through `ip`. A container start used to spawn `unshare`, `ip` and
//! `nsenter ip` (five execs of other programs); each is a fork and an exec
//! on the start's critical path, and they contend for the CPU when many
//! containers start at once.
//!
//! A socket talks to the network namespace it was opened in, so work in a
//! container's namespace runs on a short-lived thread that enters it first
//! (`in_netns`): no runtime thread ever changes namespace.

use std::ffi::CString;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

const NLMSG_HDR: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_F_NODAD: u8 = 0x02;

const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RTN_UNICAST: u8 = 1;

const IFF_UP: u32 = 0x1;

/// One netlink request under construction: the header, a fixed-size
/// family message, then attributes (nested ones through `nest`).
struct Message {
    buf: Vec<u8>,
}

impl Message {
    fn new(kind: u16, flags: u16) -> Self {
        let mut buf = vec![0u8; NLMSG_HDR];
        buf[4..6].copy_from_slice(&kind.to_ne_bytes());
        buf[6..8].copy_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        Message { buf }
    }

    fn bytes(&mut self, data: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(data);
        self
    }

    /// `struct ifinfomsg`: family, type, index, flags, change mask.
    fn ifinfo(&mut self, index: u32, flags: u32, change: u32) -> &mut Self {
        let mut m = [0u8; 16];
        m[4..8].copy_from_slice(&index.to_ne_bytes());
        m[8..12].copy_from_slice(&flags.to_ne_bytes());
        m[12..16].copy_from_slice(&change.to_ne_bytes());
        self.bytes(&m)
    }

    fn attr(&mut self, kind: u16, data: &[u8]) -> &mut Self {
        let len = 4 + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.buf.resize(self.buf.len().next_multiple_of(4), 0);
        self
    }

    fn attr_str(&mut self, kind: u16, text: &str) -> &mut Self {
        let mut data = text.as_bytes().to_vec();
        data.push(0);
        self.attr(kind, &data)
    }

    fn attr_u32(&mut self, kind: u16, value: u32) -> &mut Self {
        self.attr(kind, &value.to_ne_bytes())
    }

    /// An attribute holding the attributes `fill` adds.
    fn nest(&mut self, kind: u16, fill: impl FnOnce(&mut Self)) -> &mut Self {
        let start = self.buf.len();
        self.attr(kind, &[]);
        fill(self);
        let len = (self.buf.len() - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }

    fn finish(&mut self, seq: u32) -> &[u8] {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        &self.buf
    }
}

/// A blocking rtnetlink socket in the calling thread's network namespace.
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

impl Netlink {
    pub fn open() -> io::Result<Self> {
        // SAFETY: plain socket(2); the fd is owned right away.
        let raw = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: an all-zero sockaddr_nl (pid 0: the kernel picks) is valid.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: addr is a valid sockaddr_nl of the size passed.
        let rc = unsafe {
            libc::bind(fd.as_raw_fd(), &addr as *const _ as *const libc::sockaddr, size_of::<libc::sockaddr_nl>() as u32)
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Netlink { fd, seq: 0 })
    }

    /// Send one request and wait for the kernel's acknowledgement.
    fn request(&mut self, message: &mut Message) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let data = message.finish(seq);
        // SAFETY: sending from a live buffer of the given length.
        let sent = unsafe { libc::send(self.fd.as_raw_fd(), data.as_ptr().cast(), data.len(), 0) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            // SAFETY: receiving into a live buffer of the given length.
            let n = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let mut rest = &buf[..n as usize];
            while rest.len() >= NLMSG_HDR {
                let len = u32::from_ne_bytes(rest[0..4].try_into().unwrap()) as usize;
                let kind = u16::from_ne_bytes(rest[4..6].try_into().unwrap());
                let got = u32::from_ne_bytes(rest[8..12].try_into().unwrap());
                if len < NLMSG_HDR || len > rest.len() {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "truncated netlink answer"));
                }
                if kind == NLMSG_ERROR && got == seq && len >= NLMSG_HDR + 4 {
                    let code = i32::from_ne_bytes(rest[NLMSG_HDR..NLMSG_HDR + 4].try_into().unwrap());
                    return if code == 0 { Ok(()) } else { Err(io::Error::from_raw_os_error(-code)) };
                }
                rest = &rest[len.next_multiple_of(4).min(rest.len())..];
            }
        }
    }

    /// A veth pair: `host` in this namespace, enslaved to `master` and up;
    /// its peer `peer` in the namespace `peer_netns`, with `mac`.
    pub fn add_veth(&mut self, host: &str, peer: &str, mtu: u32, master: u32, peer_netns: RawFd, mac: [u8; 6]) -> io::Result<()> {
        let mut m = Message::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        m.ifinfo(0, IFF_UP, IFF_UP).attr_str(IFLA_IFNAME, host).attr_u32(IFLA_MTU, mtu).attr_u32(IFLA_MASTER, master);
        m.nest(IFLA_LINKINFO, |m| {
            m.attr_str(IFLA_INFO_KIND, "veth");
            m.nest(IFLA_INFO_DATA, |m| {
                m.nest(VETH_INFO_PEER, |m| {
                    m.ifinfo(0, 0, 0)
                        .attr_str(IFLA_IFNAME, peer)
                        .attr_u32(IFLA_MTU, mtu)
                        .attr_u32(IFLA_NET_NS_FD, peer_netns as u32)
                        .attr(IFLA_ADDRESS, &mac);
                });
            });
        });
        self.request(&mut m)
    }

    /// Delete the link named `name`.
    pub fn delete_link(&mut self, name: &str) -> io::Result<()> {
        let mut m = Message::new(RTM_DELLINK, 0);
        m.ifinfo(0, 0, 0).attr_str(IFLA_IFNAME, name);
        self.request(&mut m)
    }

    pub fn set_up(&mut self, index: u32) -> io::Result<()> {
        let mut m = Message::new(RTM_NEWLINK, 0);
        m.ifinfo(index, IFF_UP, IFF_UP);
        self.request(&mut m)
    }

    /// Add `address/prefix` to the link; IPv6 ones skip duplicate address
    /// detection (the addresses come from our own allocator).
    pub fn add_address(&mut self, index: u32, address: IpAddr, prefix: u8) -> io::Result<()> {
        let (family, flags, octets) = match address {
            IpAddr::V4(a) => (libc::AF_INET as u8, 0, a.octets().to_vec()),
            IpAddr::V6(a) => (libc::AF_INET6 as u8, IFA_F_NODAD, a.octets().to_vec()),
        };
        let mut m = Message::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
        let mut ifa = [family, prefix, flags, RT_SCOPE_UNIVERSE, 0, 0, 0, 0];
        ifa[4..8].copy_from_slice(&index.to_ne_bytes());
        m.bytes(&ifa).attr(IFA_LOCAL, &octets).attr(IFA_ADDRESS, &octets);
        self.request(&mut m)
    }

    /// Make (or replace) the default route of `gateway`'s family go through
    /// `gateway`, on `oif` when given.
    pub fn replace_default_route(&mut self, gateway: IpAddr, oif: Option<u32>) -> io::Result<()> {
        let mut m = Message::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE);
        m.bytes(&route_header(family_of(gateway)));
        match gateway {
            IpAddr::V4(a) => m.attr(RTA_GATEWAY, &a.octets()),
            IpAddr::V6(a) => m.attr(RTA_GATEWAY, &a.octets()),
        };
        if let Some(index) = oif {
            m.attr_u32(RTA_OIF, index);
        }
        self.request(&mut m)
    }

    /// Remove the default route of `family` (AF_INET or AF_INET6).
    pub fn delete_default_route(&mut self, family: u8) -> io::Result<()> {
        let mut m = Message::new(RTM_DELROUTE, 0);
        m.bytes(&route_header(family));
        self.request(&mut m)
    }
}

fn family_of(address: IpAddr) -> u8 {
    match address {
        IpAddr::V4(_) => libc::AF_INET as u8,
        IpAddr::V6(_) => libc::AF_INET6 as u8,
    }
}

/// `struct rtmsg` for a default (prefix length 0) unicast route in the
/// main table.
fn route_header(family: u8) -> [u8; 12] {
    [family, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0, 0, 0, 0]
}

/// The index of the link `name` in the calling thread's namespace.
pub fn link_index(name: &str) -> io::Result<u32> {
    let c = CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "link name with a NUL byte"))?;
    // SAFETY: c is a valid NUL-terminated string that outlives the call.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => Err(io::Error::new(io::ErrorKind::NotFound, format!("no link named {name}"))),
        index => Ok(index),
    }
}

/// "02:42:ac:11:00:02" as bytes.
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// Run `work` on a new thread inside the network namespace at `netns`
/// (or, with `None`, inside a brand-new one), and hand back its result.
/// The thread ends with the work, taking the namespace change with it.
pub async fn in_netns<T: Send + 'static>(
    netns: Option<&Path>,
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let netns: Option<PathBuf> = netns.map(Path::to_path_buf);
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("berthd-netns".into())
        .spawn(move || {
            let entered = match &netns {
                Some(path) => std::fs::File::open(path)
                    .map_err(|e| format!("opening {}: {e}", path.display()))
                    .and_then(|file| {
                        // SAFETY: setns changes only this thread, which ends
                        // after `work`; the fd is open during the call.
                        match unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } {
                            0 => Ok(()),
                            _ => Err(format!("entering {}: {}", path.display(), io::Error::last_os_error())),
                        }
                    }),
                // SAFETY: as above, for a namespace of this thread's own.
                None => match unsafe { libc::unshare(libc::CLONE_NEWNET) } {
                    0 => Ok(()),
                    _ => Err(format!("creating a network namespace: {}", io::Error::last_os_error())),
                },
            };
            let _ = tx.send(entered.and_then(|()| work()));
        })
        .map_err(|e| format!("starting a namespace thread: {e}"))?;
    rx.await.map_err(|_| "the namespace thread ended without an answer".to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_parse_as_six_hex_bytes() {
        assert_eq!(parse_mac("02:42:ac:11:00:02"), Some([2, 0x42, 0xac, 0x11, 0, 2]));
        assert_eq!(parse_mac("02:42:ac:11:00"), None);
        assert_eq!(parse_mac("02:42:ac:11:00:02:03"), None);
        assert_eq!(parse_mac("zz:42:ac:11:00:02"), None);
    }

    #[test]
    fn attributes_are_padded_and_nests_measure_their_content() {
        let mut m = Message::new(RTM_NEWLINK, 0);
        m.ifinfo(0, 0, 0).nest(IFLA_LINKINFO, |m| {
            m.attr_str(IFLA_INFO_KIND, "veth");
        });
        let bytes = m.finish(7).to_vec();
        assert_eq!(bytes.len(), NLMSG_HDR + 16 + 4 + 12);
        assert_eq!(u32::from_ne_bytes(bytes[0..4].try_into().unwrap()) as usize, bytes.len());
        let nest = NLMSG_HDR + 16;
        // The nest's length covers its header and the padded "veth\0".
        assert_eq!(u16::from_ne_bytes(bytes[nest..nest + 2].try_into().unwrap()), 16);
        // The inner attribute's own length is unpadded: 4 + 5.
        assert_eq!(u16::from_ne_bytes(bytes[nest + 4..nest + 6].try_into().unwrap()), 9);
    }
}
