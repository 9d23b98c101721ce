//! The embedded DNS server dockerd runs at 127.0.0.11 for containers on
//! user-defined networks. No process per container: a short-lived thread
//! enters the container's network namespace, binds one UDP and one TCP
//! socket at 127.0.0.11:53 and leaves; berthd's runtime then serves them.
//! Names the caller knows ([`Names`]) are answered here; every other
//! query is relayed as-is to the upstream resolvers from berthd's own
//! namespace, so a resolver on the host's loopback still works.
//!
//! The wire format is written by hand rather than with `hickory-proto`:
//! the server reads a header and one question and writes A, AAAA and PTR
//! records, and relays everything else as bytes. That is a couple of
//! hundred lines against a library that brings a dozen crates along.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinSet;

use super::NetworkError;

/// Where containers find the server, as with dockerd.
pub const ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);

pub const TYPE_A: u16 = 1;
pub const TYPE_PTR: u16 = 12;
pub const TYPE_MX: u16 = 15;
pub const TYPE_AAAA: u16 = 28;
const RCODE_FORMERR: u8 = 1;
const RCODE_SERVFAIL: u8 = 2;
const RCODE_REFUSED: u8 = 5;
/// dockerd's TTL for the names it answers.
const TTL: u32 = 600;
/// A reply over UDP to a client that did not ask for more.
const UDP_LIMIT: usize = 512;
/// dockerd's wait for one upstream server.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(4);
/// How long an idle TCP client may hold its connection.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// Queries in flight per container before new ones get SERVFAIL, as
/// dockerd's limit of 100 concurrent forwards.
const MAX_IN_FLIGHT: usize = 100;

/// The one question of a query; `name` in lower case without the final dot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub name: String,
    pub qtype: u16,
}

pub enum Record {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    /// A fully qualified name, final dot optional.
    Ptr(String),
}

pub enum Lookup {
    /// The name is ours: these records (none: the name exists, the type not).
    Answer(Vec<Record>),
    /// Not ours: ask the upstream resolvers.
    Forward,
}

/// The names one container may resolve.
pub trait Names: Send + Sync + 'static {
    fn lookup(&self, container_id: &str, question: &Question) -> Lookup;
}

struct Query<'a> {
    bytes: &'a [u8],
    id: u16,
    question: Question,
    /// Where the question section ends.
    end: usize,
}

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
}

/// A standard query with exactly one question; `None` for anything else.
fn parse_query(bytes: &[u8]) -> Option<Query<'_>> {
    let id = be16(bytes, 0)?;
    let flags = *bytes.get(2)?;
    // A response, or an opcode other than QUERY.
    if flags & 0x80 != 0 || flags & 0x78 != 0 || be16(bytes, 4)? != 1 {
        return None;
    }
    let mut pos = 12;
    let mut labels: Vec<String> = Vec::new();
    loop {
        let len = usize::from(*bytes.get(pos)?);
        pos += 1;
        if len == 0 {
            break;
        }
        // Compression pointers have no place in a question.
        if len & 0xC0 != 0 || pos + len > 12 + 255 {
            return None;
        }
        labels.push(String::from_utf8_lossy(bytes.get(pos..pos + len)?).to_ascii_lowercase());
        pos += len;
    }
    let qtype = be16(bytes, pos)?;
    be16(bytes, pos + 2)?;
    Some(Query { bytes, id, question: Question { name: labels.join("."), qtype }, end: pos + 4 })
}

/// `a.b.c` in wire form; `None` when a label or the whole is too long.
fn encode_name(name: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(name.len() + 2);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        if label.len() > 63 {
            return None;
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    (out.len() <= 255).then_some(out)
}

/// The reply to `q`: its question, then `records` named by a pointer to
/// it. Past `limit` bytes the answer is cut and marked truncated.
fn reply(q: &Query<'_>, rcode: u8, records: &[Record], limit: Option<usize>) -> Vec<u8> {
    let mut out = Vec::with_capacity(UDP_LIMIT);
    out.extend_from_slice(&q.id.to_be_bytes());
    // QR, the query's opcode and RD; RA as dockerd sets it.
    out.push(0x80 | (q.bytes[2] & 0x79));
    out.push(0x80 | rcode);
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&q.bytes[12..q.end]);
    let mut count: u16 = 0;
    for record in records {
        let (rtype, rdata) = match record {
            Record::A(ip) => (TYPE_A, ip.octets().to_vec()),
            Record::Aaaa(ip) => (TYPE_AAAA, ip.octets().to_vec()),
            Record::Ptr(name) => match encode_name(name) {
                Some(wire) => (TYPE_PTR, wire),
                None => continue,
            },
        };
        let mut rr = vec![0xC0, 0x0C];
        rr.extend_from_slice(&rtype.to_be_bytes());
        rr.extend_from_slice(&1u16.to_be_bytes());
        rr.extend_from_slice(&TTL.to_be_bytes());
        rr.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        rr.extend_from_slice(&rdata);
        if limit.is_some_and(|limit| out.len() + rr.len() > limit) {
            out[2] |= 0x02;
            break;
        }
        out.extend_from_slice(&rr);
        count += 1;
    }
    out[6..8].copy_from_slice(&count.to_be_bytes());
    out
}

/// A header-only error for a message we cannot read as a query.
fn format_error(bytes: &[u8]) -> Option<Vec<u8>> {
    if bytes.len() < 12 || bytes[2] & 0x80 != 0 {
        return None;
    }
    let mut out = bytes[..12].to_vec();
    out[2] = 0x80 | (bytes[2] & 0x79);
    out[3] = 0x80 | RCODE_FORMERR;
    out[4..12].fill(0);
    Some(out)
}

/// The IPv4 address a `d.c.b.a.in-addr.arpa` name stands for.
pub fn reverse_v4(name: &str) -> Option<Ipv4Addr> {
    let rest = name.strip_suffix(".in-addr.arpa")?;
    let octets: Vec<u8> = rest.split('.').map(|o| o.parse().ok()).collect::<Option<_>>()?;
    let [d, c, b, a] = octets.try_into().ok()?;
    Some(Ipv4Addr::new(a, b, c, d))
}

/// The IPv6 address a `b.a.9.8….ip6.arpa` name stands for: 32 nibbles,
/// the last first.
pub fn reverse_v6(name: &str) -> Option<Ipv6Addr> {
    let rest = name.strip_suffix(".ip6.arpa")?;
    let nibbles: Vec<u32> = rest.split('.').map(|n| if n.len() == 1 { n.chars().next()?.to_digit(16) } else { None }).collect::<Option<_>>()?;
    if nibbles.len() != 32 {
        return None;
    }
    Some(Ipv6Addr::from(nibbles.iter().rev().fold(0u128, |acc, n| (acc << 4) | u128::from(*n))))
}

/// What one container's server needs to answer.
struct Context {
    container_id: String,
    names: Arc<dyn Names>,
    upstreams: Vec<SocketAddr>,
}

#[derive(Clone, Copy, PartialEq)]
enum Transport {
    Udp,
    Tcp,
}

impl Context {
    async fn answer(&self, bytes: &[u8], transport: Transport) -> Option<Vec<u8>> {
        let Some(q) = parse_query(bytes) else { return format_error(bytes) };
        let limit = (transport == Transport::Udp).then_some(UDP_LIMIT);
        match self.names.lookup(&self.container_id, &q.question) {
            Lookup::Answer(records) => Some(reply(&q, 0, &records, limit)),
            Lookup::Forward => match self.forward(bytes, q.id, transport).await {
                Some(answer) => Some(answer),
                None => Some(reply(&q, RCODE_SERVFAIL, &[], limit)),
            },
        }
    }

    /// The first upstream answer that is neither SERVFAIL nor REFUSED
    /// (dockerd's rule); `None` when every upstream failed.
    async fn forward(&self, query: &[u8], id: u16, transport: Transport) -> Option<Vec<u8>> {
        for upstream in &self.upstreams {
            let asked = match transport {
                Transport::Udp => tokio::time::timeout(UPSTREAM_TIMEOUT, forward_udp(query, id, *upstream)).await,
                Transport::Tcp => tokio::time::timeout(UPSTREAM_TIMEOUT, forward_tcp(query, *upstream)).await,
            };
            match asked {
                Ok(Ok(answer)) if !matches!(answer[3] & 0x0F, RCODE_SERVFAIL | RCODE_REFUSED) => return Some(answer),
                Ok(Ok(_)) => tracing::debug!(%upstream, "upstream DNS server failed the query"),
                Ok(Err(e)) => tracing::debug!(%upstream, error = %e, "upstream DNS server unreachable"),
                Err(_) => tracing::debug!(%upstream, "upstream DNS server timed out"),
            }
        }
        None
    }
}

fn unspecified_for(addr: &SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    }
}

async fn forward_udp(query: &[u8], id: u16, upstream: SocketAddr) -> std::io::Result<Vec<u8>> {
    let socket = UdpSocket::bind(unspecified_for(&upstream)).await?;
    socket.connect(upstream).await?;
    socket.send(query).await?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = socket.recv(&mut buf).await?;
        if n >= 12 && buf[..2] == id.to_be_bytes() && buf[2] & 0x80 != 0 {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

async fn forward_tcp(query: &[u8], upstream: SocketAddr) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(upstream).await?;
    write_framed(&mut stream, query).await?;
    let answer = read_framed(&mut stream).await?;
    if answer.len() < 12 {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "short DNS answer"));
    }
    Ok(answer)
}

async fn read_framed(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let len = stream.read_u16().await?;
    let mut buf = vec![0u8; usize::from(len)];
    stream.read_exact(&mut buf).await?;
    Ok(buf)
}

async fn write_framed(stream: &mut TcpStream, message: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(message.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "DNS message too long"))?;
    let mut framed = Vec::with_capacity(message.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(message);
    stream.write_all(&framed).await
}

/// A running server; dropping it stops it (its sockets close with the
/// tasks, so the namespace can go).
pub struct Server {
    tasks: Vec<tokio::task::AbortHandle>,
}

impl Drop for Server {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Bind 127.0.0.11:53 (UDP and TCP) inside the namespace at `netns` and
/// serve `container_id`'s queries there.
pub async fn start(
    netns: &Path,
    container_id: &str,
    names: Arc<dyn Names>,
    upstreams: Vec<SocketAddr>,
) -> Result<Server, NetworkError> {
    let (udp, tcp) = bind_in(netns.to_path_buf()).await?;
    let udp = UdpSocket::from_std(udp).map_err(|e| NetworkError(format!("DNS socket: {e}")))?;
    let tcp = TcpListener::from_std(tcp).map_err(|e| NetworkError(format!("DNS socket: {e}")))?;
    let context = Arc::new(Context { container_id: container_id.to_string(), names, upstreams });
    let udp_task = tokio::spawn(serve_udp(Arc::new(udp), context.clone()));
    let tcp_task = tokio::spawn(serve_tcp(tcp, context));
    Ok(Server { tasks: vec![udp_task.abort_handle(), tcp_task.abort_handle()] })
}

/// The sockets are made on a thread of their own that enters the
/// namespace and ends: no thread of the runtime ever changes namespace.
async fn bind_in(netns: PathBuf) -> Result<(std::net::UdpSocket, std::net::TcpListener), NetworkError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new().name("berthd-dns-bind".into()).spawn(move || {
        let bound = (|| -> Result<_, String> {
            let file = std::fs::File::open(&netns).map_err(|e| format!("opening {}: {e}", netns.display()))?;
            // SAFETY: setns only changes this thread's namespace; the fd is
            // open for the duration of the call.
            if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(format!("entering {}: {}", netns.display(), std::io::Error::last_os_error()));
            }
            let udp = std::net::UdpSocket::bind((ADDRESS, 53)).map_err(|e| format!("binding {ADDRESS}:53/udp: {e}"))?;
            let tcp = std::net::TcpListener::bind((ADDRESS, 53)).map_err(|e| format!("binding {ADDRESS}:53/tcp: {e}"))?;
            udp.set_nonblocking(true).map_err(|e| e.to_string())?;
            tcp.set_nonblocking(true).map_err(|e| e.to_string())?;
            Ok((udp, tcp))
        })();
        let _ = tx.send(bound);
    });
    spawned.map_err(|e| NetworkError(format!("starting the DNS bind thread: {e}")))?;
    rx.await
        .map_err(|_| NetworkError("the DNS bind thread ended without an answer".into()))?
        .map_err(NetworkError)
}

async fn serve_udp(socket: Arc<UdpSocket>, context: Arc<Context>) {
    // Queries in flight live in the set, so stopping the server stops them.
    let mut in_flight = JoinSet::new();
    let mut buf = vec![0u8; 65535];
    loop {
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                let (n, peer) = match received {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::debug!(error = %e, "DNS receive");
                        continue;
                    }
                };
                let query = buf[..n].to_vec();
                if in_flight.len() >= MAX_IN_FLIGHT {
                    if let Some(q) = parse_query(&query) {
                        let _ = socket.send_to(&reply(&q, RCODE_SERVFAIL, &[], Some(UDP_LIMIT)), peer).await;
                    }
                    continue;
                }
                let (socket, context) = (socket.clone(), context.clone());
                in_flight.spawn(async move {
                    if let Some(answer) = context.answer(&query, Transport::Udp).await {
                        let _ = socket.send_to(&answer, peer).await;
                    }
                });
            }
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
        }
    }
}

async fn serve_tcp(listener: TcpListener, context: Arc<Context>) {
    let mut clients = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                if clients.len() >= MAX_IN_FLIGHT {
                    continue;
                }
                clients.spawn(serve_tcp_client(stream, context.clone()));
            }
            Some(_) = clients.join_next(), if !clients.is_empty() => {}
        }
    }
}

async fn serve_tcp_client(mut stream: TcpStream, context: Arc<Context>) {
    while let Ok(Ok(query)) = tokio::time::timeout(TCP_IDLE, read_framed(&mut stream)).await {
        let Some(answer) = context.answer(&query, Transport::Tcp).await else { return };
        if write_framed(&mut stream, &answer).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend(encode_name(name).unwrap());
        q.extend(qtype.to_be_bytes());
        q.extend(1u16.to_be_bytes());
        q
    }

    #[test]
    fn questions_are_read_in_lower_case() {
        let bytes = query("Web.MyNet", TYPE_A);
        let q = parse_query(&bytes).unwrap();
        assert_eq!(q.question, Question { name: "web.mynet".into(), qtype: TYPE_A });
        assert_eq!(q.end, bytes.len());
        let mut response = bytes.clone();
        response[2] |= 0x80;
        assert!(parse_query(&response).is_none());
        assert!(parse_query(&bytes[..bytes.len() - 1]).is_none());
    }

    #[test]
    fn answers_point_at_the_question() {
        let bytes = query("web", TYPE_A);
        let q = parse_query(&bytes).unwrap();
        let out = reply(&q, 0, &[Record::A(Ipv4Addr::new(10, 0, 0, 2))], Some(UDP_LIMIT));
        assert_eq!(&out[..4], &[0x12, 0x34, 0x81, 0x80]);
        assert_eq!(&out[4..12], &[0, 1, 0, 1, 0, 0, 0, 0]);
        assert_eq!(&out[12..bytes.len()], &bytes[12..]);
        assert_eq!(&out[bytes.len()..], &[0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 2, 0x58, 0, 4, 10, 0, 0, 2]);
        let empty = reply(&q, RCODE_SERVFAIL, &[], None);
        assert_eq!(empty[3], 0x82);
        assert_eq!(&empty[6..8], &[0, 0]);
    }

    #[test]
    fn long_udp_answers_are_truncated() {
        let bytes = query("many", TYPE_A);
        let q = parse_query(&bytes).unwrap();
        let records: Vec<Record> = (0..100).map(|i| Record::A(Ipv4Addr::new(10, 0, 0, i))).collect();
        let out = reply(&q, 0, &records, Some(UDP_LIMIT));
        assert!(out.len() <= UDP_LIMIT);
        assert_eq!(out[2] & 0x02, 0x02);
        assert_eq!(reply(&q, 0, &records, None)[7], 100);
    }

    #[test]
    fn reverse_names() {
        assert_eq!(reverse_v4("2.0.18.172.in-addr.arpa"), Some(Ipv4Addr::new(172, 18, 0, 2)));
        assert_eq!(reverse_v4("0.18.172.in-addr.arpa"), None);
        assert_eq!(reverse_v4("example.com"), None);
        let v6 = "3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.0.0.0.0.d.f.ip6.arpa";
        assert_eq!(reverse_v6(v6), Some("fd00:60::3".parse().unwrap()));
        assert_eq!(reverse_v6("3.0.ip6.arpa"), None);
        assert_eq!(reverse_v6(&v6.replacen('3', "g", 1)), None);
    }

    #[test]
    fn garbage_gets_a_format_error() {
        let mut bytes = query("x", TYPE_A);
        bytes[5] = 2;
        let out = format_error(&bytes).unwrap();
        assert_eq!(out[3] & 0x0F, RCODE_FORMERR);
        assert!(format_error(&[1, 2, 3]).is_none());
    }

    /// What a container sends is untrusted: random messages and random
    /// changes to a good query must get an answer or nothing, never a
    /// panic, and every answer must fit its limit and echo the query's ID.
    /// (The parser has no cargo-fuzz target; this runs with every test.)
    #[test]
    fn random_messages_never_panic() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let good = query("web.example.internal", TYPE_A);
        let records = [Record::A(Ipv4Addr::LOCALHOST), Record::Aaaa(Ipv6Addr::LOCALHOST), Record::Ptr("a.b".into())];
        for round in 0..200_000 {
            let bytes: Vec<u8> = if round % 2 == 0 {
                (0..next() % 300).map(|_| next() as u8).collect()
            } else {
                let mut mutated = good.clone();
                for _ in 0..1 + next() % 4 {
                    let at = (next() as usize) % mutated.len();
                    mutated[at] = next() as u8;
                }
                if next() % 4 == 0 {
                    mutated.truncate(next() as usize % good.len());
                }
                mutated
            };
            match parse_query(&bytes) {
                Some(q) => {
                    assert!(q.end <= bytes.len());
                    let name = &q.question.name;
                    let _ = (reverse_v4(name), reverse_v6(name), encode_name(name));
                    let out = reply(&q, 0, &records, Some(UDP_LIMIT));
                    assert!(out.len() <= UDP_LIMIT.max(q.end), "{} bytes", out.len());
                    assert_eq!(out[..2], bytes[..2]);
                }
                None => {
                    if let Some(out) = format_error(&bytes) {
                        assert_eq!((out.len(), &out[..2]), (12, &bytes[..2]));
                    }
                }
            }
        }
    }
}
