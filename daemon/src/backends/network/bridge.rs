//! Linux bridges and the veth pairs that join container network
//! namespaces to them. What runs on every container start (namespaces,
//! veths, addresses, routes) goes through netlink in-process
//! (`netlink.rs`); the rare bridge set-up still runs iproute2.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::path::Path;

use tokio::process::Command;

use super::netlink::{self, in_netns, Netlink};
use super::NetworkError;

pub(super) async fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<(), NetworkError> {
    use tokio::io::AsyncWriteExt;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(if stdin.is_some() { std::process::Stdio::piped() } else { std::process::Stdio::null() })
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| NetworkError(format!("running {program}: {e}")))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes()).await.map_err(|e| NetworkError(format!("writing to {program}: {e}")))?;
    }
    let out = child.wait_with_output().await.map_err(|e| NetworkError(format!("running {program}: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NetworkError(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

pub async fn link_exists(name: &str) -> bool {
    run("ip", &["link", "show", "dev", name], None).await.is_ok()
}

/// Create (or take over) the bridge with the gateway address and MTU, and
/// bring it up.
pub async fn ensure_bridge(
    name: &str,
    gateway: Ipv4Addr,
    prefix: u8,
    mtu: u32,
    v6: Option<(Ipv6Addr, u8)>,
    route_localnet: bool,
) -> Result<(), NetworkError> {
    if !link_exists(name).await {
        run("ip", &["link", "add", "name", name, "mtu", &mtu.to_string(), "type", "bridge"], None).await?;
    }
    run("ip", &["addr", "replace", &format!("{gateway}/{prefix}"), "dev", name], None).await?;
    if route_localnet {
        // Loopback-sourced packets DNATed to a container may leave here.
        std::fs::write(format!("/proc/sys/net/ipv4/conf/{name}/route_localnet"), "1")
            .map_err(|e| NetworkError(format!("setting route_localnet on {name}: {e}")))?;
    }
    if let Some((gateway6, prefix6)) = v6 {
        let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6"), "0");
        run("ip", &["-6", "addr", "replace", &format!("{gateway6}/{prefix6}"), "dev", name, "nodad"], None).await?;
    }
    run("ip", &["link", "set", "dev", name, "up"], None).await
}

/// `/proc/sys/net` shows the namespace of the thread that opens it.
fn write_sysctls(values: &[(String, &'static str)]) -> Result<(), String> {
    for (key, value) in values {
        let path = format!("/proc/sys/net/{key}");
        std::fs::write(&path, value).map_err(|e| format!("writing {path}: {e}"))?;
    }
    Ok(())
}

/// The sysctls that turn IPv6 off in a new namespace, as dockerd leaves
/// it: interfaces turn it on only on networks with IPv6. A kernel without
/// IPv6 has nothing to turn off.
fn ipv6_off() -> Vec<(String, &'static str)> {
    if !Path::new("/proc/sys/net/ipv6").exists() {
        return Vec::new();
    }
    vec![("ipv6/conf/all/disable_ipv6".into(), "1"), ("ipv6/conf/default/disable_ipv6".into(), "1")]
}

/// Run blocking netlink work in berthd's own namespace, off the runtime's
/// threads.
async fn in_own_netns<T: Send + 'static>(work: impl FnOnce() -> Result<T, String> + Send + 'static) -> Result<T, NetworkError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| NetworkError(format!("netlink work failed: {e}")))?
        .map_err(NetworkError)
}

/// Delete a link; one that is already gone is fine.
pub async fn delete_link(name: &str) -> Result<(), NetworkError> {
    let name = name.to_string();
    in_own_netns(move || match Netlink::open().and_then(|mut nl| nl.delete_link(&name)) {
        // Gone already (its namespace went first) is what was asked for.
        Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(()),
        Err(e) => Err(format!("deleting link {name}: {e}")),
        Ok(()) => Ok(()),
    })
    .await
}

/// A persistent network namespace bind-mounted at `path`, with loopback
/// up and IPv6 off: made by a thread that unshares into it, pins it and
/// configures it before it ends.
pub async fn create_netns(path: &Path) -> Result<(), NetworkError> {
    delete_netns(path)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| NetworkError(format!("creating {}: {e}", dir.display())))?;
    }
    std::fs::File::create(path).map_err(|e| NetworkError(format!("creating {}: {e}", path.display())))?;
    let target = path.to_path_buf();
    let made = in_netns(None, move || {
        bind_mount(Path::new("/proc/thread-self/ns/net"), &target)?;
        write_sysctls(&ipv6_off())?;
        let mut nl = Netlink::open().map_err(|e| format!("opening netlink: {e}"))?;
        netlink::link_index("lo").and_then(|lo| nl.set_up(lo)).map_err(|e| format!("bringing loopback up: {e}"))
    })
    .await;
    if let Err(e) = made {
        let _ = delete_netns(path);
        return Err(NetworkError(e));
    }
    Ok(())
}

fn bind_mount(source: &Path, target: &Path) -> Result<(), String> {
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).map_err(|_| format!("bad path {}", p.display()));
    let (source_c, target_c) = (c(source)?, c(target)?);
    // SAFETY: both are valid NUL-terminated strings that outlive the call.
    let rc = unsafe { libc::mount(source_c.as_ptr(), target_c.as_ptr(), std::ptr::null(), libc::MS_BIND, std::ptr::null()) };
    if rc != 0 {
        return Err(format!("bind-mounting {} at {}: {}", source.display(), target.display(), std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Bind-mount berthd's own network namespace at `path`: what `host` mode
/// containers join, at a path that stays valid across berthd restarts (the
/// spec is written once, at create). Outside a test namespace this is the
/// host's.
pub fn pin_own_netns(path: &Path) -> Result<(), NetworkError> {
    delete_netns(path)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| NetworkError(format!("creating {}: {e}", dir.display())))?;
    }
    std::fs::File::create(path).map_err(|e| NetworkError(format!("creating {}: {e}", path.display())))?;
    bind_mount(Path::new("/proc/self/ns/net"), path).map_err(|e| {
        let _ = std::fs::remove_file(path);
        NetworkError(format!("pinning the daemon's network namespace: {e}"))
    })
}

/// Unmount and remove a namespace file made by `create_netns`; a missing
/// one is fine.
pub fn delete_netns(path: &Path) -> Result<(), NetworkError> {
    if !path.exists() {
        return Ok(());
    }
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| NetworkError(format!("bad path {}", path.display())))?;
    // SAFETY: c_path is a valid NUL-terminated string that outlives the call.
    let rc = unsafe { libc::umount2(c_path.as_ptr(), libc::MNT_DETACH) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINVAL) {
            return Err(NetworkError(format!("unmounting {}: {e}", path.display())));
        }
    }
    std::fs::remove_file(path).map_err(|e| NetworkError(format!("removing {}: {e}", path.display())))
}

/// Point the namespace's default routes at their gateways through the
/// named interfaces, or remove them (`None`): the gateway endpoint changed.
pub async fn set_default_route(netns: &Path, route: Option<(Ipv4Addr, &str)>, route6: Option<(Ipv6Addr, &str)>) -> Result<(), NetworkError> {
    let route = route.map(|(gw, ifname)| (IpAddr::V4(gw), ifname.to_string()));
    let route6 = route6.map(|(gw, ifname)| (IpAddr::V6(gw), ifname.to_string()));
    in_netns(Some(netns), move || {
        let mut nl = Netlink::open().map_err(|e| format!("opening netlink: {e}"))?;
        for (family, route) in [(libc::AF_INET as u8, route), (libc::AF_INET6 as u8, route6)] {
            match route {
                Some((gateway, ifname)) => {
                    let index = netlink::link_index(&ifname).map_err(|e| e.to_string())?;
                    nl.replace_default_route(gateway, Some(index))
                        .map_err(|e| format!("setting the default route via {gateway} dev {ifname}: {e}"))?;
                }
                // None there already is fine.
                None => {
                    let _ = nl.delete_default_route(family);
                }
            }
        }
        Ok(())
    })
    .await
    .map_err(NetworkError)
}

/// What one container's interface on a bridge looks like.
pub struct Attachment<'a> {
    pub netns: &'a Path,
    pub bridge: &'a str,
    pub host_veth: &'a str,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub mac: &'a str,
    pub mtu: u32,
    /// The interface's name inside (`eth0`, `eth1` …).
    pub ifname: &'a str,
    /// Whether the default route goes through this interface.
    pub default_route: bool,
    /// The IPv6 address, prefix length and gateway on a network with IPv6.
    pub ip6: Option<(Ipv6Addr, u8, Ipv6Addr)>,
    /// Hairpin mode on the bridge port (`userland-proxy: false`): a
    /// container's traffic to its own published port comes back to it.
    pub hairpin: bool,
}

/// A veth pair: one end on the bridge, the other as `ifname` in the
/// namespace with its address, MAC and (if asked) the default route.
pub async fn attach(a: &Attachment<'_>) -> Result<(), NetworkError> {
    let mac = netlink::parse_mac(a.mac).ok_or_else(|| NetworkError(format!("invalid MAC address {}", a.mac)))?;
    let (netns, bridge, veth, ifname, mtu) =
        (a.netns.to_path_buf(), a.bridge.to_string(), a.host_veth.to_string(), a.ifname.to_string(), a.mtu);
    in_own_netns(move || {
        let ns = std::fs::File::open(&netns).map_err(|e| format!("opening {}: {e}", netns.display()))?;
        let master = netlink::link_index(&bridge).map_err(|e| format!("finding bridge {bridge}: {e}"))?;
        Netlink::open()
            .and_then(|mut nl| nl.add_veth(&veth, &ifname, mtu, master, ns.as_raw_fd(), mac))
            .map_err(|e| format!("creating veth {veth}: {e}"))
    })
    .await?;
    let configured = async {
        if a.hairpin {
            run("ip", &["link", "set", "dev", a.host_veth, "type", "bridge_slave", "hairpin", "on"], None).await?;
        }
        configure_inside(a).await
    }
    .await;
    if configured.is_err() {
        let _ = delete_link(a.host_veth).await;
    }
    configured
}

/// The container's side of an attachment: IPv6 on where the network has
/// it, addresses, the link up, default routes.
async fn configure_inside(a: &Attachment<'_>) -> Result<(), NetworkError> {
    let ifname = a.ifname.to_string();
    let ipv6_on = match a.ip6 {
        // On for this interface and loopback only, as dockerd.
        Some(_) => vec![(format!("ipv6/conf/{ifname}/disable_ipv6"), "0"), ("ipv6/conf/lo/disable_ipv6".into(), "0")],
        None => Vec::new(),
    };
    let mut addresses = vec![(IpAddr::V4(a.ip), a.prefix)];
    let mut gateways = vec![IpAddr::V4(a.gateway)];
    if let Some((ip6, prefix6, gateway6)) = a.ip6 {
        addresses.push((IpAddr::V6(ip6), prefix6));
        gateways.push(IpAddr::V6(gateway6));
    }
    let default_route = a.default_route;
    in_netns(Some(a.netns), move || {
        write_sysctls(&ipv6_on)?;
        let mut nl = Netlink::open().map_err(|e| format!("opening netlink: {e}"))?;
        let index = netlink::link_index(&ifname).map_err(|e| e.to_string())?;
        for (address, prefix) in addresses {
            nl.add_address(index, address, prefix).map_err(|e| format!("adding {address}/{prefix} to {ifname}: {e}"))?;
        }
        nl.set_up(index).map_err(|e| format!("bringing {ifname} up: {e}"))?;
        if default_route {
            for gateway in gateways {
                nl.replace_default_route(gateway, Some(index))
                    .map_err(|e| format!("adding the default route via {gateway}: {e}"))?;
            }
        }
        Ok(())
    })
    .await
    .map_err(NetworkError)
}
