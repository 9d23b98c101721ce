//! `-H` addresses: `unix://PATH`, `tcp://HOST:PORT`, `fd://[NAME]`, parsed as
//! dockerd's `ParseDaemonHost` does.

use std::path::PathBuf;

/// Where a listener binds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    Unix(PathBuf),
    Tcp { host: String, port: u16 },
    /// Systemd socket activation: all sockets (`fd://`, `fd://*`) or the
    /// one with that fd number (`fd://3`), as dockerd.
    Fd(String),
}

const DEFAULT_UNIX_SOCKET: &str = "/var/run/docker.sock";
const DEFAULT_TCP_HOST: &str = "127.0.0.1";
pub const DEFAULT_HTTP_PORT: u16 = 2375;
pub const DEFAULT_TLS_PORT: u16 = 2376;

pub fn parse(addr: &str, tls: bool) -> Result<ListenAddr, String> {
    let invalid = || format!("Invalid bind address format: {addr}");
    let trimmed = addr.trim();
    let (proto, rest) = match trimmed.split_once("://") {
        Some(parts) => parts,
        None if !trimmed.is_empty() => ("tcp", trimmed),
        None => return Ok(ListenAddr::Unix(DEFAULT_UNIX_SOCKET.into())),
    };
    match proto {
        "unix" => Ok(ListenAddr::Unix(if rest.is_empty() { DEFAULT_UNIX_SOCKET } else { rest }.into())),
        "fd" => Ok(ListenAddr::Fd(rest.to_string())),
        "tcp" => {
            let rest = rest.split('/').next().unwrap_or_default();
            let default_port = if tls { DEFAULT_TLS_PORT } else { DEFAULT_HTTP_PORT };
            let (host, port) = split_host_port(rest).ok_or_else(invalid)?;
            let host = if host.is_empty() { DEFAULT_TCP_HOST.to_string() } else { host };
            let port = match port {
                None | Some("") => default_port,
                Some(p) => p.parse().map_err(|_| invalid())?,
            };
            Ok(ListenAddr::Tcp { host, port })
        }
        _ => Err(invalid()),
    }
}

/// `host`, `host:port`, `[v6]:port` → (host, port).
fn split_host_port(s: &str) -> Option<(String, Option<&str>)> {
    if let Some(v6) = s.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        return Some((host.to_string(), port));
    }
    match s.rsplit_once(':') {
        Some((h, _)) if h.contains(':') => None,
        Some((h, p)) => Some((h.to_string(), Some(p))),
        None => Some((s.to_string(), None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        assert_eq!(parse("unix:///tmp/a.sock", false), Ok(ListenAddr::Unix("/tmp/a.sock".into())));
        assert_eq!(parse("unix://", false), Ok(ListenAddr::Unix("/var/run/docker.sock".into())));
        assert_eq!(parse("fd://", false), Ok(ListenAddr::Fd(String::new())));
        assert_eq!(parse("fd://4", false), Ok(ListenAddr::Fd("4".into())));
        assert_eq!(
            parse("tcp://0.0.0.0:2380", false),
            Ok(ListenAddr::Tcp { host: "0.0.0.0".into(), port: 2380 })
        );
        assert_eq!(parse("tcp://", true), Ok(ListenAddr::Tcp { host: "127.0.0.1".into(), port: 2376 }));
        assert_eq!(parse("tcp://[::1]:5", false), Ok(ListenAddr::Tcp { host: "::1".into(), port: 5 }));
        assert_eq!(parse("localhost:7", false), Ok(ListenAddr::Tcp { host: "localhost".into(), port: 7 }));
    }

    #[test]
    fn invalid() {
        for bad in ["udp://x:1", "tcp://h:notaport", "tcp://h:99999"] {
            assert_eq!(parse(bad, false), Err(format!("Invalid bind address format: {bad}")), "{bad}");
        }
    }
}
