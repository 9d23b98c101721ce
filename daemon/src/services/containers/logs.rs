//! `docker logs`: lines from the json-file log, filtered, and with
//! `follow`, new lines as the container writes them.

use std::collections::VecDeque;
use std::io::{BufRead, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::Stream as FutureStream;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use super::io::Output;
use super::{ContainerService, Entry};
use crate::backends::logging::json_file::{LogEntry, Stream};
use crate::services::ServiceError;

#[derive(Debug, Clone, Default)]
pub struct LogsOptions {
    pub stdout: bool,
    pub stderr: bool,
    pub follow: bool,
    pub timestamps: bool,
    /// Unix time in nanoseconds; entries before are skipped.
    pub since: Option<i64>,
    /// Unix time in nanoseconds; entries after are skipped.
    pub until: Option<i64>,
    /// Only the last N lines (of the history; followed lines all come).
    pub tail: Option<usize>,
}

/// One line ready to send.
#[derive(Debug, Clone)]
pub struct LogLine {
    pub stream: Stream,
    pub data: Bytes,
}

impl ContainerService {
    /// The container's TTY flag (raw vs multiplexed) and its log lines.
    pub async fn logs(
        &self,
        name: &str,
        opts: LogsOptions,
    ) -> Result<(bool, impl FutureStream<Item = LogLine> + Send + 'static), ServiceError> {
        if !opts.stdout && !opts.stderr {
            return Err(ServiceError::InvalidParameter(
                "Bad parameters: you must choose at least one stream".into(),
            ));
        }
        let entry = self.lookup(name)?;
        let (tty, path) = {
            let r = entry.record.lock().await;
            (r.config.tty, PathBuf::from(&r.log_path))
        };
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(follow_log(entry, path, opts, tx));
        Ok((tty, tokio_stream_from(rx)))
    }
}

fn tokio_stream_from(rx: mpsc::Receiver<LogLine>) -> impl FutureStream<Item = LogLine> + Send + 'static {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|line| (line, rx)) })
}

fn nanos(time: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(time).map(|t| t.timestamp_nanos_opt().unwrap_or(0)).unwrap_or(0)
}

/// Turn a stored entry into a line to send, or `None` if filtered out.
fn render(entry: LogEntry, opts: &LogsOptions) -> Option<LogLine> {
    let stream = match entry.stream.as_str() {
        "stdout" if opts.stdout => Stream::Stdout,
        "stderr" if opts.stderr => Stream::Stderr,
        _ => return None,
    };
    let at = nanos(&entry.time);
    if opts.since.is_some_and(|s| at < s) || opts.until.is_some_and(|u| at > u) {
        return None;
    }
    let data = if opts.timestamps { format!("{} {}", entry.time, entry.log) } else { entry.log };
    Some(LogLine { stream, data: Bytes::from(data) })
}

/// Read complete lines from `offset`; returns the new offset.
fn read_from(path: &PathBuf, offset: u64, out: &mut Vec<LogEntry>) -> u64 {
    let Ok(mut file) = std::fs::File::open(path) else { return offset };
    if file.seek(SeekFrom::Start(offset)).is_err() {
        return offset;
    }
    let mut reader = std::io::BufReader::new(file);
    let mut pos = offset;
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return pos,
            Ok(_) if !line.ends_with('\n') => return pos,
            Ok(n) => {
                pos += n as u64;
                if let Ok(entry) = serde_json::from_str::<LogEntry>(&line) {
                    out.push(entry);
                }
            }
        }
    }
}

async fn follow_log(entry: Arc<Entry>, path: PathBuf, opts: LogsOptions, tx: mpsc::Sender<LogLine>) {
    // Subscribe before reading, so nothing written meanwhile is missed; the
    // broadcast only wakes us, the file is the source of truth.
    let mut wake = entry.io.subscribe();
    let mut history = Vec::new();
    let mut offset = read_from(&path, 0, &mut history);
    let mut lines: VecDeque<LogLine> = history.into_iter().filter_map(|e| render(e, &opts)).collect();
    if let Some(n) = opts.tail {
        while lines.len() > n {
            lines.pop_front();
        }
    }
    for line in lines {
        if tx.send(line).await.is_err() {
            return;
        }
    }
    if !opts.follow {
        return;
    }
    loop {
        let live = entry.record.lock().await.state.status.is_live();
        let ended = if live {
            match wake.recv().await {
                Ok(Output::End) | Err(RecvError::Closed) => true,
                Ok(Output::Data(..)) | Err(RecvError::Lagged(_)) => false,
            }
        } else {
            true
        };
        let mut fresh = Vec::new();
        offset = read_from(&path, offset, &mut fresh);
        for line in fresh.into_iter().filter_map(|e| render(e, &opts)) {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        if ended || opts.until.is_some_and(|u| u < chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(stream: &str, log: &str, time: &str) -> LogEntry {
        LogEntry { log: log.into(), stream: stream.into(), time: time.into() }
    }

    #[test]
    fn filters_streams_times_and_timestamps() {
        let opts = LogsOptions { stdout: true, stderr: false, timestamps: true, ..Default::default() };
        let line = render(entry("stdout", "hi\n", "2026-01-01T00:00:00.5Z"), &opts).unwrap();
        assert_eq!(&line.data[..], b"2026-01-01T00:00:00.5Z hi\n");
        assert!(render(entry("stderr", "x\n", "2026-01-01T00:00:00Z"), &opts).is_none());
        let since = LogsOptions { stdout: true, since: Some(nanos("2026-01-01T00:00:01Z")), ..Default::default() };
        assert!(render(entry("stdout", "old\n", "2026-01-01T00:00:00Z"), &since).is_none());
        assert!(render(entry("stdout", "new\n", "2026-01-01T00:00:02Z"), &since).is_some());
    }

    #[test]
    fn partial_lines_wait_for_their_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.log");
        let complete = "{\"log\":\"a\\n\",\"stream\":\"stdout\",\"time\":\"2026-01-01T00:00:00Z\"}\n";
        std::fs::write(&path, format!("{complete}{{\"log\":")).unwrap();
        let mut out = Vec::new();
        let offset = read_from(&path, 0, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(offset, complete.len() as u64);
    }
}
