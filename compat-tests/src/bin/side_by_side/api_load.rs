//! `GET /_ping` and `GET /version` requests per second: a small HTTP/1.1
//! load generator over the unix socket, with keep-alive connections, one
//! request in flight per connection (docker clients do not pipeline).
//!
//! The generator shares the machine's cores with the daemon, so it is the
//! same for both daemons, kept light and measured: one thread with a
//! current-thread runtime (one epoll wait serves all connections, no
//! cross-thread wakes), no allocation per response, and its CPU time is a
//! row of its own. Most of that CPU is the socket syscalls (about 7 ms per
//! 1000 requests against berthd); blocking threads, one per connection,
//! cost twice as much.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::report::{self, Better, Outcome, Row};
use crate::Bench;

/// Keep-alive connections sending requests back to back.
const CONNECTIONS: usize = 10;

/// `/_ping` requests per repetition: enough for the run to last around half
/// a second or more on either daemon, so that the daemon's CPU, counted in
/// 10 ms clock ticks, means something.
const PING_REQUESTS: usize = 30_000;

impl Bench {
    /// 5. Requests per second at a fixed concurrency.
    pub(crate) fn api_load(&mut self) -> Result<()> {
        // dockerd answers /version at a few hundred per second: the plan's
        // count keeps that row's run time sane.
        for (path, total) in [("/_ping", PING_REQUESTS), ("/v1.41/version", self.plan.api_requests)] {
            // The generator's own CPU per repetition, per daemon (warm-up included).
            let mut generator_ms: [Vec<f64>; 2] = Default::default();
            let series = self.alternate(&format!("GET {path}"), self.plan.listing, [None, None], |d, p| {
                let cpu = std::thread::scope(|s| s.spawn(|| load(&d.socket, path, total, p)).join())
                    .map_err(|_| anyhow::anyhow!("load generator panicked"))??;
                generator_ms[usize::from(d.label() != "berthd")].push(cpu.as_secs_f64() * 1e3);
                Ok(())
            })?;
            let name = format!("GET {path}, {total} requests over {CONNECTIONS} keep-alive connections");
            self.push(&name, "requests/s", Better::Higher, &series, |ms| total as f64 / (ms / 1e3));
            // Per 1000 requests: comparable across request counts.
            let warmup = self.plan.warmup;
            let [berthd, dockerd] = [0, 1].map(|i| {
                let per_k: Vec<f64> = generator_ms[i].iter().skip(warmup).map(|ms| ms * 1000.0 / total as f64).collect();
                Outcome::from_stats(report::Stats::mean_of(&per_k), series[i].error.clone())
            });
            let unit = "ms per 1000 requests, mean";
            self.rows.push(Row::new(&format!("load generator CPU during: {name}"), unit, Better::Lower, berthd, dockerd));
        }
        Ok(())
    }
}

/// Sends `total` GETs of `path`, spread over `CONNECTIONS` connections,
/// timed by `probe` from the first request to the last answer; every answer
/// must be a 200. Runs on the calling thread; returns that thread's CPU time.
fn load(socket: &Path, path: &str, total: usize, probe: &mut crate::Probe<'_>) -> Result<Duration> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let mut streams = Vec::new();
        for _ in 0..CONNECTIONS {
            streams.push(UnixStream::connect(socket).await.context("connecting to the daemon")?);
        }
        let cpu0 = thread_cpu()?;
        probe.start()?;
        let request = get_request(path);
        let mut tasks = tokio::task::JoinSet::new();
        for (c, stream) in streams.into_iter().enumerate() {
            let share = total / CONNECTIONS + usize::from(c < total % CONNECTIONS);
            let request = request.clone();
            tasks.spawn(async move { one_connection(stream, &request, share).await });
        }
        while let Some(done) = tasks.join_next().await {
            done.context("load task panicked")??;
        }
        probe.stop()?;
        Ok(thread_cpu()? - cpu0)
    })
}

async fn one_connection(mut stream: UnixStream, request: &str, requests: usize) -> Result<()> {
    let mut buf = Vec::with_capacity(8192);
    for _ in 0..requests {
        stream.write_all(request.as_bytes()).await?;
        read_response(&mut stream, &mut buf).await?;
    }
    Ok(())
}

/// CPU time of the calling thread.
fn thread_cpu() -> Result<Duration> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ensure!(rc == 0, "clock_gettime: {}", std::io::Error::last_os_error());
    Ok(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// A keep-alive `GET` of `path`, as every bench client sends it.
pub(crate) fn get_request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: berth-bench\r\n\r\n")
}

/// Reads one response (Content-Length or chunked body) into `buf`, which
/// may already hold bytes of it; leaves any bytes after it in `buf`.
pub(crate) async fn read_response(stream: &mut UnixStream, buf: &mut Vec<u8>) -> Result<()> {
    loop {
        if let Some(len) = response_len(buf)? {
            consume(buf, len);
            return Ok(());
        }
        fill(stream, buf).await?;
    }
}

/// The length of the whole 200 response at the start of `buf`, or `None`
/// while part of it is still to come. Works on the bytes in place: nothing
/// is allocated per response.
fn response_len(buf: &[u8]) -> Result<Option<usize>> {
    let Some(head_end) = find(buf, b"\r\n\r\n").map(|i| i + 4) else { return Ok(None) };
    let head = &buf[..head_end];
    // "HTTP/1.1 200 OK"
    if !matches!(head.get(8..13), Some(b" 200 " | b" 200\r")) {
        let line = &head[..find(head, b"\r\n").unwrap_or(head.len())];
        bail!("status: {}", String::from_utf8_lossy(line));
    }
    if let Some(len) = header(head, b"content-length") {
        let len = parse_decimal(len).context("bad Content-Length")?;
        return Ok((buf.len() >= head_end + len).then_some(head_end + len));
    }
    if !header(head, b"transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case(b"chunked")) {
        bail!("response without a length on a keep-alive connection");
    }
    let mut at = head_end;
    loop {
        let Some(line_end) = find(&buf[at..], b"\r\n").map(|i| at + i) else { return Ok(None) };
        let size_text = buf[at..line_end].split(|&b| b == b';').next().unwrap_or_default();
        let size = parse_hex(size_text.trim_ascii()).context("bad chunk size")?;
        at = line_end + 2 + size + 2;
        if buf.len() < at {
            return Ok(None);
        }
        if size == 0 {
            return Ok(Some(at));
        }
    }
}

/// The value of header `name` (lower case) in a response head.
fn header<'h>(head: &'h [u8], name: &[u8]) -> Option<&'h [u8]> {
    head.split(|&b| b == b'\n').skip(1).find_map(|line| {
        let colon = line.iter().position(|&b| b == b':')?;
        line[..colon].eq_ignore_ascii_case(name).then(|| line[colon + 1..].trim_ascii())
    })
}

fn parse_decimal(text: &[u8]) -> Option<usize> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

fn parse_hex(text: &[u8]) -> Option<usize> {
    usize::from_str_radix(std::str::from_utf8(text).ok()?, 16).ok()
}

/// Drops the first `n` bytes; with one request in flight there are
/// usually none after them, so this is almost always a truncation.
fn consume(buf: &mut Vec<u8>, n: usize) {
    if n == buf.len() {
        buf.clear();
    } else {
        buf.drain(..n);
    }
}

/// Reads what the socket has into `buf`'s spare capacity.
async fn fill(stream: &mut UnixStream, buf: &mut Vec<u8>) -> Result<()> {
    if buf.capacity() - buf.len() < 4096 {
        buf.reserve(8192);
    }
    let n = stream.read_buf(buf).await?;
    ensure!(n > 0, "connection closed mid-response");
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_measured_in_place() {
        let plain = b"HTTP/1.1 200 OK\r\nApi-Version: 1.51\r\ncontent-length: 2\r\n\r\nOK";
        assert_eq!(response_len(plain).unwrap(), Some(plain.len()));
        assert_eq!(response_len(&plain[..plain.len() - 1]).unwrap(), None);
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nOK\r\n0\r\n\r\nHTTP";
        assert_eq!(response_len(chunked).unwrap(), Some(chunked.len() - 4));
        assert_eq!(response_len(&chunked[..chunked.len() - 6]).unwrap(), None);
        assert!(response_len(b"HTTP/1.1 404 Not Found\r\n\r\n").is_err());
    }
}
