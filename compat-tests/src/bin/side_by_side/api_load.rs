//! `GET /_ping` and `GET /version` requests per second: a small HTTP/1.1
//! load generator over the unix socket, with keep-alive connections.

use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::report::Better;
use crate::Bench;

/// Keep-alive connections sending requests back to back.
const CONNECTIONS: usize = 10;

impl Bench {
    /// 5. Requests per second at a fixed concurrency.
    pub(crate) fn api_load(&mut self) -> Result<()> {
        let total = self.plan.api_requests;
        for path in ["/_ping", "/v1.41/version"] {
            let rt = &self.rt;
            let series = self.alternate(&format!("GET {path}"), self.plan.listing, [None, None], |d, p| {
                p.start()?;
                rt.block_on(load(&d.socket, path, total))?;
                p.stop()
            })?;
            self.push(
                &format!("GET {path}, {total} requests over {CONNECTIONS} keep-alive connections"),
                "requests/s",
                Better::Higher,
                &series,
                |ms| total as f64 / (ms / 1e3),
            );
        }
        Ok(())
    }
}

/// Sends `total` GETs of `path`, spread over `CONNECTIONS` connections;
/// every answer must be a 200.
async fn load(socket: &Path, path: &str, total: usize) -> Result<()> {
    let mut tasks = Vec::new();
    for c in 0..CONNECTIONS {
        let share = total / CONNECTIONS + usize::from(c < total % CONNECTIONS);
        let socket = socket.to_owned();
        let path = path.to_owned();
        tasks.push(tokio::spawn(async move { one_connection(&socket, &path, share).await }));
    }
    for task in tasks {
        task.await.context("load task panicked")??;
    }
    Ok(())
}

async fn one_connection(socket: &Path, path: &str, requests: usize) -> Result<()> {
    let mut stream = UnixStream::connect(socket).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: berth-bench\r\n\r\n");
    let mut buf = Vec::with_capacity(8192);
    for _ in 0..requests {
        stream.write_all(request.as_bytes()).await?;
        read_response(&mut stream, &mut buf).await?;
    }
    Ok(())
}

/// Reads one response (Content-Length or chunked body) into `buf`, which
/// may already hold bytes of it; leaves any bytes after it in `buf`.
pub(crate) async fn read_response(stream: &mut UnixStream, buf: &mut Vec<u8>) -> Result<()> {
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        fill(stream, buf).await?;
    };
    let head = std::str::from_utf8(&buf[..head_end]).context("response head is not UTF-8")?.to_owned();
    let status = head.split(' ').nth(1).unwrap_or("");
    ensure!(status == "200", "status {status}: {}", head.lines().next().unwrap_or(""));
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    };
    buf.drain(..head_end);
    if let Some(len) = header("content-length") {
        let len: usize = len.parse().context("bad Content-Length")?;
        while buf.len() < len {
            fill(stream, buf).await?;
        }
        buf.drain(..len);
    } else if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let line_end = loop {
                if let Some(i) = find(buf, b"\r\n") {
                    break i;
                }
                fill(stream, buf).await?;
            };
            let size_text = std::str::from_utf8(&buf[..line_end])?.split(';').next().unwrap_or("").trim().to_owned();
            let size = usize::from_str_radix(&size_text, 16).context("bad chunk size")?;
            while buf.len() < line_end + 2 + size + 2 {
                fill(stream, buf).await?;
            }
            buf.drain(..line_end + 2 + size + 2);
            if size == 0 {
                break;
            }
        }
    } else {
        bail!("response without a length on a keep-alive connection");
    }
    Ok(())
}

async fn fill(stream: &mut UnixStream, buf: &mut Vec<u8>) -> Result<()> {
    let mut chunk = [0u8; 8192];
    let n = stream.read(&mut chunk).await?;
    ensure!(n > 0, "connection closed mid-response");
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
