//! Linux bridges and the veth pairs that join container network
//! namespaces to them, through iproute2.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::path::Path;

use tokio::process::Command;

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

/// Write `net.*` sysctls inside the namespace at `netns` (`key` relative
/// to /proc/sys/net), from a short-lived thread that enters it: no thread
/// of the runtime changes namespace.
pub async fn netns_sysctls(netns: &Path, values: Vec<(String, &'static str)>) -> Result<(), NetworkError> {
    let netns = netns.to_path_buf();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("berthd-sysctl".into())
        .spawn(move || {
            let done = (|| -> Result<(), String> {
                let file = std::fs::File::open(&netns).map_err(|e| format!("opening {}: {e}", netns.display()))?;
                // SAFETY: setns only changes this thread's namespace; the
                // fd is open for the duration of the call.
                if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return Err(format!("entering {}: {}", netns.display(), std::io::Error::last_os_error()));
                }
                for (key, value) in &values {
                    let path = format!("/proc/sys/net/{key}");
                    std::fs::write(&path, value).map_err(|e| format!("writing {path}: {e}"))?;
                }
                Ok(())
            })();
            let _ = tx.send(done);
        })
        .map_err(|e| NetworkError(format!("starting the sysctl thread: {e}")))?;
    rx.await.map_err(|_| NetworkError("the sysctl thread ended without an answer".into()))?.map_err(NetworkError)
}

/// IPv6 off in a new namespace, as dockerd leaves it: interfaces turn it
/// on only on networks with IPv6. A kernel without IPv6 has nothing to
/// turn off.
async fn ipv6_off(netns: &Path) -> Result<(), NetworkError> {
    if !Path::new("/proc/sys/net/ipv6").exists() {
        return Ok(());
    }
    netns_sysctls(netns, vec![("ipv6/conf/all/disable_ipv6".into(), "1"), ("ipv6/conf/default/disable_ipv6".into(), "1")]).await
}

/// Delete a link; one that is already gone is fine.
pub async fn delete_link(name: &str) -> Result<(), NetworkError> {
    match run("ip", &["link", "del", "dev", name], None).await {
        // Gone already (its namespace went first) is what was asked for.
        Err(e) if e.0.contains("Cannot find device") => Ok(()),
        other => other,
    }
}

/// A persistent, empty network namespace bind-mounted at `path`.
pub async fn create_netns(path: &Path) -> Result<(), NetworkError> {
    delete_netns(path)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| NetworkError(format!("creating {}: {e}", dir.display())))?;
    }
    std::fs::File::create(path).map_err(|e| NetworkError(format!("creating {}: {e}", path.display())))?;
    let arg = format!("--net={}", path.display());
    run("unshare", &[&arg, "true"], None).await?;
    ipv6_off(path).await
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
    let source = std::ffi::CString::new("/proc/self/ns/net").expect("no NUL");
    let target = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| NetworkError(format!("bad path {}", path.display())))?;
    // SAFETY: both are valid NUL-terminated strings that outlive the call.
    let rc = unsafe { libc::mount(source.as_ptr(), target.as_ptr(), std::ptr::null(), libc::MS_BIND, std::ptr::null()) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        let _ = std::fs::remove_file(path);
        return Err(NetworkError(format!("bind-mounting the daemon's network namespace at {}: {e}", path.display())));
    }
    Ok(())
}

/// Bring loopback up in a namespace made by `create_netns` (what a
/// container on `none` gets).
pub async fn loopback_up(path: &Path) -> Result<(), NetworkError> {
    let net = format!("--net={}", path.display());
    run("nsenter", &[&net, "ip", "link", "set", "lo", "up"], None).await
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

/// Point the namespace's default route at `gateway` through `ifname`, or
/// remove it (`None`): the gateway endpoint changed.
pub async fn set_default_route(netns: &Path, route: Option<(Ipv4Addr, &str)>, route6: Option<(Ipv6Addr, &str)>) -> Result<(), NetworkError> {
    let net = format!("--net={}", netns.display());
    match route {
        Some((gateway, ifname)) => {
            let gw = gateway.to_string();
            run("nsenter", &[&net, "ip", "route", "replace", "default", "via", &gw, "dev", ifname], None).await?
        }
        // None there already is fine.
        None => {
            let _ = run("nsenter", &[&net, "ip", "route", "del", "default"], None).await;
        }
    }
    match route6 {
        Some((gateway, ifname)) => {
            let gw = gateway.to_string();
            run("nsenter", &[&net, "ip", "-6", "route", "replace", "default", "via", &gw, "dev", ifname], None).await
        }
        None => {
            let _ = run("nsenter", &[&net, "ip", "-6", "route", "del", "default"], None).await;
            Ok(())
        }
    }
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
/// namespace with its address, MAC and (if asked) the default route;
/// loopback up.
pub async fn attach(a: &Attachment<'_>) -> Result<(), NetworkError> {
    let netns = a.netns.display().to_string();
    let mtu = a.mtu.to_string();
    let mut host = format!(
        "link add name {veth} mtu {mtu} type veth peer name {ifname} mtu {mtu} netns {netns}\nlink set dev {veth} master {bridge} up\n",
        veth = a.host_veth,
        ifname = a.ifname,
        bridge = a.bridge,
    );
    if a.hairpin {
        host.push_str(&format!("link set dev {} type bridge_slave hairpin on\n", a.host_veth));
    }
    let configured = async {
        run("ip", &["-batch", "-"], Some(&host)).await?;
        if a.ip6.is_some() {
            // On for this interface and loopback only, as dockerd.
            let on = vec![(format!("ipv6/conf/{}/disable_ipv6", a.ifname), "0"), ("ipv6/conf/lo/disable_ipv6".into(), "0")];
            netns_sysctls(a.netns, on).await?;
        }
        let mut script = format!(
            "link set lo up\nlink set dev {ifname} address {mac}\naddr add {ip}/{prefix} dev {ifname}\nlink set dev {ifname} up\n",
            ifname = a.ifname,
            mac = a.mac,
            ip = a.ip,
            prefix = a.prefix,
        );
        if let Some((ip6, prefix6, _)) = a.ip6 {
            script.push_str(&format!("addr add {ip6}/{prefix6} dev {} nodad\n", a.ifname));
        }
        if a.default_route {
            script.push_str(&format!("route add default via {}\n", a.gateway));
            if let Some((_, _, gateway6)) = a.ip6 {
                script.push_str(&format!("route add default via {gateway6}\n"));
            }
        }
        let net = format!("--net={netns}");
        run("nsenter", &[&net, "ip", "-batch", "-"], Some(&script)).await
    }
    .await;
    if configured.is_err() {
        let _ = delete_link(a.host_veth).await;
    }
    configured
}
