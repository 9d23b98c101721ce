//! Binding the `-H` addresses: unix sockets (mode 0660, owned by the socket
//! group), TCP (with or without TLS) and systemd-activated `fd://` sockets.

use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::net::{TcpListener, UnixListener};
use tokio_rustls::TlsAcceptor;

use crate::config::hosts::{self, ListenAddr};
use crate::config::Config;

pub enum Listener {
    Unix { listener: UnixListener, path: Option<PathBuf> },
    Tcp { listener: TcpListener, tls: Option<TlsAcceptor>, addr: String },
}

impl Listener {
    pub fn describe(&self) -> String {
        match self {
            Listener::Unix { path: Some(p), .. } => format!("unix://{}", p.display()),
            Listener::Unix { path: None, .. } => "fd://".to_string(),
            Listener::Tcp { addr, tls: Some(_), .. } => format!("tcp://{addr} (TLS)"),
            Listener::Tcp { addr, tls: None, .. } => format!("tcp://{addr}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("{0}")]
    Address(String),
    #[error("can't create unix socket {}: {source}", .path.display())]
    Unix { path: PathBuf, source: std::io::Error },
    #[error("failed to listen on {addr}: {source}")]
    Tcp { addr: String, source: std::io::Error },
    #[error("group {0} not found")]
    GroupNotFound(String),
    #[error("no sockets found via socket activation: make sure the service was started by systemd")]
    NoActivatedSockets,
    #[error(transparent)]
    Tls(#[from] super::tls::TlsError),
}

pub async fn bind_all(config: &Config) -> Result<Vec<Listener>, ListenError> {
    let gid = socket_gid(config.group.as_deref())?;
    let tls = match &config.tls {
        Some(t) => Some(super::tls::acceptor(t)?),
        None => None,
    };
    let mut listeners = Vec::new();
    for host in &config.hosts {
        match hosts::parse(host, tls.is_some()).map_err(ListenError::Address)? {
            ListenAddr::Unix(path) => listeners.push(bind_unix(&path, gid)?),
            ListenAddr::Tcp { host, port } => {
                let addr = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
                let listener = TcpListener::bind(&addr)
                    .await
                    .map_err(|source| ListenError::Tcp { addr: addr.clone(), source })?;
                if tls.is_none() {
                    tracing::warn!(
                        "API is accessible on http://{addr} without encryption: anyone who can reach \
                         it has root on this host"
                    );
                }
                listeners.push(Listener::Tcp { listener, tls: tls.clone(), addr });
            }
            ListenAddr::Fd(which) => listeners.extend(activated_sockets(&which, tls.clone())?),
        }
    }
    Ok(listeners)
}

/// The socket group's ID: the named group (which must exist), else `docker`
/// when it exists, else root.
fn socket_gid(group: Option<&str>) -> Result<u32, ListenError> {
    match group {
        Some(name) => lookup_group(name).ok_or_else(|| ListenError::GroupNotFound(name.to_string())),
        None => Ok(lookup_group("docker").unwrap_or(0)),
    }
}

fn lookup_group(name: &str) -> Option<u32> {
    if let Ok(gid) = name.parse::<u32>() {
        return Some(gid);
    }
    let cname = std::ffi::CString::new(name).ok()?;
    // SAFETY: getgrnam reads a NUL-terminated string and returns a pointer to
    // static storage or null; the gid is copied out before any other call.
    let entry = unsafe { libc::getgrnam(cname.as_ptr()) };
    if entry.is_null() {
        None
    } else {
        // SAFETY: entry is non-null and points to a valid group record.
        Some(unsafe { (*entry).gr_gid })
    }
}

fn bind_unix(path: &Path, gid: u32) -> Result<Listener, ListenError> {
    let err = |source| ListenError::Unix { path: path.to_path_buf(), source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    let listener = UnixListener::bind(path).map_err(err)?;
    std::os::unix::fs::chown(path, Some(0), Some(gid)).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(err)?;
    Ok(Listener::Unix { listener, path: Some(path.to_path_buf()) })
}

/// The sockets systemd passed (fds 3.., with their `LISTEN_FDNAMES` names).
static ACTIVATED: std::sync::OnceLock<Vec<(RawFd, String)>> = std::sync::OnceLock::new();

/// Take the sockets systemd passed, as go-systemd's `activation.Files` does:
/// only when `LISTEN_PID` is ours; the `LISTEN_*` variables are removed so
/// that processes berthd starts do not think they were activated, and the
/// fds are marked close-on-exec. Call once, before any thread starts.
pub fn take_activated_sockets() {
    let pid_matches = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        .is_some_and(|p| p == std::process::id());
    let count: RawFd = std::env::var("LISTEN_FDS").ok().and_then(|n| n.parse().ok()).unwrap_or(0);
    let names = std::env::var("LISTEN_FDNAMES").unwrap_or_default();
    for var in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(var);
    }
    let mut fds = Vec::new();
    if pid_matches && count > 0 {
        let mut names = names.split(':');
        for fd in 3..3 + count {
            // SAFETY: fcntl on an fd systemd handed us; no memory involved.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            fds.push((fd, names.next().unwrap_or("unknown").to_string()));
        }
    }
    let _ = ACTIVATED.set(fds);
}

/// The activated sockets `fd://` (all of them) or `fd://N` (fd N only)
/// selects, with dockerd's errors.
fn activated_sockets(which: &str, tls: Option<TlsAcceptor>) -> Result<Vec<Listener>, ListenError> {
    let all = ACTIVATED.get().map(Vec::as_slice).unwrap_or_default();
    if all.is_empty() {
        return Err(ListenError::NoActivatedSockets);
    }
    let chosen: Vec<&(RawFd, String)> = match which {
        "" | "*" => all.iter().collect(),
        n => {
            let fd: RawFd = n.parse().map_err(|_| {
                ListenError::Address(format!("failed to parse systemd fd address: should be a number: {n}"))
            })?;
            let found = all.iter().find(|(f, _)| *f == fd).ok_or_else(|| {
                ListenError::Address("too few socket activated files passed in by systemd".to_string())
            })?;
            // As dockerd: the sockets not chosen are closed.
            for (other, _) in all.iter().filter(|(f, _)| *f != fd) {
                // SAFETY: an activated fd that no listener took ownership of.
                unsafe { libc::close(*other) };
            }
            vec![found]
        }
    };
    let mut listeners = Vec::new();
    for (fd, name) in chosen {
        let fd = *fd;
        let io_err = |source| ListenError::Unix { path: PathBuf::from(format!("fd://{fd}")), source };
        tracing::debug!(fd, name = %name, "socket from systemd");
        if is_unix_socket(fd) {
            // SAFETY: systemd hands us ownership of fds 3..3+LISTEN_FDS, and
            // each is taken at most once (bind_all runs once).
            let std_listener = unsafe { std::os::unix::net::UnixListener::from_raw_fd(fd) };
            std_listener.set_nonblocking(true).map_err(io_err)?;
            let listener = UnixListener::from_std(std_listener).map_err(io_err)?;
            listeners.push(Listener::Unix { listener, path: None });
        } else {
            // SAFETY: as above.
            let std_listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
            std_listener.set_nonblocking(true).map_err(io_err)?;
            let addr = std_listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
            let listener = TcpListener::from_std(std_listener).map_err(io_err)?;
            listeners.push(Listener::Tcp { listener, tls: tls.clone(), addr });
        }
    }
    Ok(listeners)
}

fn is_unix_socket(fd: RawFd) -> bool {
    // SAFETY: sockaddr_storage is plain data large enough for any address.
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: addr and len are valid for writes of the given size.
    let rc = unsafe { libc::getsockname(fd, &mut addr as *mut _ as *mut libc::sockaddr, &mut len) };
    rc == 0 && addr.ss_family as i32 == libc::AF_UNIX
}

/// Remove the socket files we created.
pub fn remove_sockets(paths: &[PathBuf]) {
    for path in paths {
        if let Err(e) = std::fs::remove_file(path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %path.display(), error = %e, "could not remove socket");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_lookup() {
        assert_eq!(lookup_group("root"), Some(0));
        assert_eq!(lookup_group("0"), Some(0));
        assert_eq!(lookup_group("no-such-group-berth"), None);
        assert!(matches!(socket_gid(Some("no-such-group-berth")), Err(ListenError::GroupNotFound(_))));
    }
}
