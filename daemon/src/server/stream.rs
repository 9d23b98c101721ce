//! Hijacked connections (attach, exec start) and Docker's stdio framing.

use std::future::Future;

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{CONNECTION, CONTENT_TYPE, UPGRADE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use hyper_util::rt::TokioIo;

use crate::services::containers::{LogLine, Stream};

pub const RAW_STREAM: &str = "application/vnd.docker.raw-stream";
pub const MULTIPLEXED_STREAM: &str = "application/vnd.docker.multiplexed-stream";

/// One frame of multiplexed output: stream byte, three zero bytes, the
/// big-endian length, the payload.
pub fn frame(stream: Stream, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(8 + payload.len());
    put_frame(&mut out, stream, payload);
    out.freeze()
}

fn put_frame(out: &mut BytesMut, stream: Stream, payload: &[u8]) {
    out.put_u8(match stream {
        Stream::Stdout => 1,
        Stream::Stderr => 2,
    });
    out.put_bytes(0, 3);
    out.put_u32(payload.len() as u32);
    out.put_slice(payload);
}

/// A batch of log lines as one chunk of the body: framed, or as they are
/// for a TTY's raw stream.
pub fn log_chunk(lines: Vec<LogLine>, raw: bool) -> Bytes {
    let header = if raw { 0 } else { 8 };
    let mut out = BytesMut::with_capacity(lines.iter().map(|l| header + l.data.len()).sum());
    for line in lines {
        match raw {
            true => out.put_slice(&line.data),
            false => put_frame(&mut out, line.stream, &line.data),
        }
    }
    out.freeze()
}

/// The connection after the handshake: raw bytes both ways.
pub type Hijacked = TokioIo<hyper::upgrade::Upgraded>;

/// Whether the client asked to take the connection over (`Upgrade: tcp`).
pub fn wants_upgrade(req: &Request) -> bool {
    req.headers().get(UPGRADE).is_some()
}

/// Answer `101 UPGRADED` when the client asked for an upgrade (the Go
/// client, docker-py and bollard do) and hand the raw connection to
/// `serve`; otherwise answer 200 and stream what `fallback` yields as the
/// body, which is all a client without an upgrade can read.
pub fn hijack<F, Fut>(mut req: Request, content_type: &'static str, serve: F, fallback: Body) -> Response
where
    F: FnOnce(Hijacked) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    if !wants_upgrade(&req) {
        let mut response = Response::new(fallback);
        response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        return response;
    }
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match upgrade.await {
            Ok(upgraded) => serve(TokioIo::new(upgraded)).await,
            Err(e) => tracing::debug!(error = %e, "hijack failed"),
        }
    });
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(UPGRADE, HeaderValue::from_static("tcp"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_dockers_header() {
        let f = frame(Stream::Stderr, b"hi");
        assert_eq!(&f[..], &[2, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']);
    }
}
