//! Published ports as seen from the host itself: one listener per port,
//! served by tokio tasks inside berthd (dockerd runs a `docker-proxy`
//! process per port). Traffic from other hosts takes the DNAT rules and
//! never reaches these sockets; the host's own loopback does. Binding the
//! socket is also what reserves the port: a taken one fails here.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

/// A bound host port, not serving yet.
pub enum Bound {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

impl Bound {
    pub fn local_port(&self) -> u16 {
        match self {
            Bound::Tcp(l) => l.local_addr().map(|a| a.port()).unwrap_or(0),
            Bound::Udp(s) => s.local_addr().map(|a| a.port()).unwrap_or(0),
        }
    }
}

/// Bind `host:port` (`port` 0: the kernel picks from the ephemeral range).
pub async fn bind(proto: &str, host: SocketAddr) -> std::io::Result<Bound> {
    if proto == "udp" {
        Ok(Bound::Udp(UdpSocket::bind(host).await?))
    } else {
        // Not std's bind: SO_REUSEADDR lets a port come back at once after
        // its container stops, as with dockerd.
        let socket = if host.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        socket.set_reuseaddr(true)?;
        socket.bind(host)?;
        Ok(Bound::Tcp(socket.listen(1024)?))
    }
}

/// Whether this namespace can listen on IPv6 at all (dockerd's
/// `IsV6Listenable`): without it, no `[::]` twins are made.
pub fn ipv6_listenable() -> bool {
    std::net::UdpSocket::bind((std::net::Ipv6Addr::LOCALHOST, 0)).is_ok()
}

/// Bind `[addr]:port` for IPv6 only, beside the same port on 0.0.0.0 (as
/// Go's listeners, which dockerd's proxy uses).
pub fn bind_v6only(proto: &str, host: SocketAddr) -> std::io::Result<Bound> {
    use socket2::{Domain, Protocol, Socket, Type};
    let udp = proto == "udp";
    let (ty, protocol) = if udp { (Type::DGRAM, Protocol::UDP) } else { (Type::STREAM, Protocol::TCP) };
    let socket = Socket::new(Domain::IPV6, ty, Some(protocol))?;
    socket.set_only_v6(true)?;
    socket.set_nonblocking(true)?;
    if !udp {
        socket.set_reuse_address(true)?;
    }
    socket.bind(&host.into())?;
    if udp {
        Ok(Bound::Udp(UdpSocket::from_std(socket.into())?))
    } else {
        socket.listen(1024)?;
        Ok(Bound::Tcp(TcpListener::from_std(socket.into())?))
    }
}

/// Serve a bound port by forwarding to `target` until the task is aborted.
pub fn serve(bound: Bound, target: SocketAddr) -> JoinHandle<()> {
    match bound {
        Bound::Tcp(listener) => tokio::spawn(serve_tcp(listener, target)),
        Bound::Udp(socket) => tokio::spawn(serve_udp(Arc::new(socket), target)),
    }
}

/// Keep a bound port reserved without serving it (`userland-proxy:
/// false`: NAT rules carry the traffic) until the task is aborted.
pub fn hold(bound: Bound) -> JoinHandle<()> {
    tokio::spawn(async move {
        let _reserved = bound;
        std::future::pending::<()>().await
    })
}

async fn serve_tcp(listener: TcpListener, target: SocketAddr) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            // Out of descriptors or similar: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        tokio::spawn(async move {
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

/// How long a UDP flow with no traffic keeps its upstream socket.
const UDP_IDLE: Duration = Duration::from_secs(90);

async fn serve_udp(socket: Arc<UdpSocket>, target: SocketAddr) {
    let flows: Arc<tokio::sync::Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>> = Arc::default();
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, client)) = socket.recv_from(&mut buf).await else { continue };
        let upstream = {
            let mut map = flows.lock().await;
            match map.get(&client) {
                Some(u) => u.clone(),
                None => {
                    let bind: SocketAddr = if target.is_ipv4() { "0.0.0.0:0".parse().unwrap() } else { "[::]:0".parse().unwrap() };
                    let Ok(u) = UdpSocket::bind(bind).await else { continue };
                    if u.connect(target).await.is_err() {
                        continue;
                    }
                    let u = Arc::new(u);
                    map.insert(client, u.clone());
                    tokio::spawn(replies(socket.clone(), u.clone(), client, flows.clone()));
                    u
                }
            }
        };
        let _ = upstream.send(&buf[..n]).await;
    }
}

/// Copy a flow's replies back to its client until it goes idle.
async fn replies(
    socket: Arc<UdpSocket>,
    upstream: Arc<UdpSocket>,
    client: SocketAddr,
    flows: Arc<tokio::sync::Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>>,
) {
    let mut buf = vec![0u8; 65536];
    while let Ok(Ok(n)) = tokio::time::timeout(UDP_IDLE, upstream.recv(&mut buf)).await {
        let _ = socket.send_to(&buf[..n], client).await;
    }
    flows.lock().await.remove(&client);
}
