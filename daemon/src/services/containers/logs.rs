//! `docker logs`: lines from the json-file log, filtered, and with
//! `follow`, new lines as the container writes them.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use api_types::container::HostConfig;

use bytes::Bytes;
use futures_util::Stream as FutureStream;
use tokio::sync::watch;
use tokio::sync::{mpsc, Semaphore};

use super::io::{Fifos, Progress};
use super::record::Container;
use super::{ContainerService, Entry};
use crate::backends::logging::attrs::{details, extra_attributes, LogInfo};
use crate::backends::logging::copier::{self, CopierConfig};
use crate::backends::logging::driver::LogDriver;
use crate::backends::logging::json_file::{LogEntry, LogFile, LogReader, Stream};
use crate::backends::memory;
use crate::services::ServiceError;

#[derive(Debug, Clone, Copy, Default)]
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
    /// Each line's attributes (`k=v,…`) before it.
    pub details: bool,
}

/// Where a container's copier process is started from and serves.
pub(super) struct CopierPlan {
    pub uri: String,
    pub socket: PathBuf,
    /// berthd starts the copier on the task's FIFOs (`Some(program,
    /// config)`), rather than the shim through `uri`.
    pub spawn: Option<(PathBuf, PathBuf)>,
}

/// The copier's live-output socket in the container's FIFO directory;
/// its presence says a running task's output goes through a copier.
pub(super) const COPIER_SOCKET: &str = "init-copier.sock";

/// One line ready to send.
#[derive(Debug, Clone)]
pub struct LogLine {
    pub stream: Stream,
    pub data: Bytes,
}

impl ContainerService {
    /// The daemon's log driver for a container that names none, with the
    /// daemon's options under its own (as dockerd); then dockerd's checks.
    pub(super) fn settle_log_config(&self, hc: &mut HostConfig) -> Result<(), ServiceError> {
        let log = &mut hc.log_config;
        if log.kind.is_empty() {
            log.kind = self.defaults().log_driver.clone();
        }
        if log.kind == self.defaults().log_driver {
            for (k, v) in &self.defaults().log_opts {
                log.config.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        LogDriver::parse(&log.kind, &log.config).map(|_| ()).map_err(ServiceError::InvalidParameter)
    }

    /// Where and how the container's output is kept; `None` for `none`.
    /// Errors (a bad `tag` template or regexp) are dockerd's start errors.
    pub(super) fn log_file(&self, record: &Container) -> Result<Option<LogFile>, ServiceError> {
        let log = &record.host_config.log_config;
        let kind = if log.kind.is_empty() { "json-file" } else { log.kind.as_str() };
        let init = |e: String| ServiceError::InvalidParameter(format!("failed to initialize logging driver: {e}"));
        Ok(match LogDriver::parse(kind, &log.config) {
            Ok(LogDriver::JsonFile(rotation)) => {
                let info = LogInfo {
                    id: &record.id,
                    name: record.bare_name(),
                    image_name: &record.config.image,
                    image_id: &record.image_id,
                    command: std::iter::once(record.path.as_str()).chain(record.args.iter().map(String::as_str)).collect(),
                    labels: &record.config.labels,
                    env: record.config.env.as_deref().unwrap_or_default(),
                };
                let attrs = extra_attributes(&log.config, &info).map_err(init)?;
                Some(LogFile { path: record.log_path.clone().into(), rotation, attrs })
            }
            Ok(LogDriver::Local(rotation)) => Some(LogFile {
                path: self.container_dir(&record.id).join("local-logs").join("container.log"),
                rotation,
                attrs: Default::default(),
            }),
            Ok(LogDriver::None) => None,
            Err(e) => return Err(ServiceError::InvalidParameter(e)),
        })
    }

    /// How a container's output is kept when it goes to a copier process
    /// (see `copier.rs`): containers with a log file. The shim starts it
    /// (binary://), except for containers with stdin and no TTY (binary://
    /// gives their process no stdin; with a TTY the shim's console copy
    /// reads a stdin FIFO): berthd starts theirs on the task's FIFOs.
    /// Writes the copier's configuration next to the task's FIFOs.
    pub(super) fn log_copier(&self, record: &Container, log: Option<&LogFile>) -> std::io::Result<Option<CopierPlan>> {
        let tty = record.config.tty;
        let Some(log) = log else { return Ok(None) };
        // Our binary replaced or removed under us (a package upgrade):
        // nothing for the shim to start, so berthd copies the output itself.
        let Some(exe) = std::env::current_exe().ok().filter(|p| p.is_file()) else { return Ok(None) };
        let exe = copier::program(&exe);
        let dir = self.fifo_dir(&record.id);
        std::fs::create_dir_all(&dir)?;
        // FIFOs of an earlier run would be mistaken for this run's.
        for stale in ["init-stdout", "init-stderr"] {
            let _ = std::fs::remove_file(dir.join(stale));
        }
        let socket = dir.join(COPIER_SOCKET);
        let config = dir.join("init-copier.json");
        let on_fifos = !tty && record.config.open_stdin;
        let fifos = on_fifos.then(|| {
            let streams = Fifos::at(&dir, "init", false, true);
            (streams.stdout, streams.stderr.unwrap_or_default())
        });
        let copier_config = CopierConfig { log: log.clone(), socket: socket.clone(), tty, fifos };
        std::fs::write(&config, serde_json::to_vec(&copier_config).map_err(std::io::Error::other)?)?;
        let uri = copier::uri(&exe, &config);
        Ok(Some(CopierPlan { uri, socket, spawn: on_fifos.then_some((exe, config)) }))
    }

    /// The container's TTY flag (raw vs multiplexed) and its log lines, in
    /// batches as they are read (one message and one write per batch, not
    /// per line: a follower's cost is per burst of output).
    pub async fn logs(
        &self,
        name: &str,
        opts: LogsOptions,
    ) -> Result<(bool, impl FutureStream<Item = Vec<LogLine>> + Send + 'static), ServiceError> {
        if !opts.stdout && !opts.stderr {
            return Err(ServiceError::InvalidParameter(
                "Bad parameters: you must choose at least one stream".into(),
            ));
        }
        let entry = self.lookup(name)?;
        let (tty, log) = {
            let r = entry.record.lock().await;
            (r.config.tty, self.log_file(&r).ok().flatten())
        };
        let log = log.ok_or_else(|| ServiceError::NotImplemented("configured logging driver does not support reading".into()))?;
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(follow_log(entry, log, opts, tx));
        Ok((tty, tokio_stream_from(rx)))
    }
}

fn tokio_stream_from(rx: mpsc::Receiver<Vec<LogLine>>) -> impl FutureStream<Item = Vec<LogLine>> + Send + 'static {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|batch| (batch, rx)) })
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
    if opts.since.is_some() || opts.until.is_some() {
        let at = nanos(&entry.time);
        if opts.since.is_some_and(|s| at < s) || opts.until.is_some_and(|u| at > u) {
            return None;
        }
    }
    let mut data = String::with_capacity(entry.log.len() + 40);
    if opts.timestamps {
        data.push_str(&entry.time);
        data.push(' ');
    }
    if opts.details {
        data.push_str(&details(&entry.attrs));
        data.push(' ');
    }
    data.push_str(&entry.log);
    Some(LogLine { stream, data: Bytes::from(data) })
}

/// Stored entries read at a time by `docker logs`.
const HISTORY_BATCH: usize = 1024;

/// A reader that sent this much leaves as much freed behind it.
const TRIM_AFTER: usize = 8 << 20;

/// What a reader sent; when a big read ends, the memory its batches
/// passed through goes back to the system.
struct Sent(usize);

impl Drop for Sent {
    fn drop(&mut self) {
        if self.0 >= TRIM_AFTER {
            memory::release_freed_soon();
        }
    }
}

async fn follow_log(entry: Arc<Entry>, log: LogFile, opts: LogsOptions, tx: mpsc::Sender<Vec<LogLine>>) {
    // Watch before reading, so nothing written meanwhile is missed; the
    // files are the source of truth, the watch only wakes us.
    let mut progress = entry.io.watch_progress();
    let mut sent = Sent(0);
    // The history in batches: sent as read, or only the last `tail` kept.
    let mut reader = LogReader::start(&log.path);
    let mut last: VecDeque<LogLine> = VecDeque::new();
    loop {
        let Some((back, lines, more)) = next_batch(reader, opts, Read::History).await else { return };
        reader = back;
        match opts.tail {
            Some(0) => {}
            Some(n) => {
                for line in lines {
                    if last.len() == n {
                        last.pop_front();
                    }
                    last.push_back(line);
                }
            }
            None => {
                if !send(&tx, lines, &mut sent).await {
                    return;
                }
            }
        }
        if !more {
            break;
        }
    }
    let mut last = Vec::from(last);
    while !last.is_empty() {
        let rest = last.split_off(last.len().min(HISTORY_BATCH));
        if !send(&tx, last, &mut sent).await {
            return;
        }
        last = rest;
    }
    if !opts.follow {
        return;
    }
    loop {
        let live = entry.record.lock().await.state.status.is_live();
        let ended = !live || output_ended(&mut progress).await;
        loop {
            let Some((back, lines, more)) = next_batch(reader, opts, Read::New).await else { return };
            reader = back;
            if !send(&tx, lines, &mut sent).await {
                return;
            }
            if !more {
                break;
            }
        }
        if ended || opts.until.is_some_and(|u| u < chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)) {
            return;
        }
    }
}

#[derive(Clone, Copy)]
enum Read {
    History,
    New,
}

/// Log reads running on the blocking pool at once, one per core: a burst
/// read by 50 followers queues here rather than starting 50 threads (and
/// as many allocator arenas).
fn read_slots() -> &'static Semaphore {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())))
}

/// The next batch of rendered lines and whether more can be read right
/// away; the reader comes back with them. The file reads and the parsing
/// run on the blocking pool: a burst of output read by many followers at
/// once then does not hold up the workers that answer other requests.
async fn next_batch(mut reader: LogReader, opts: LogsOptions, read: Read) -> Option<(LogReader, Vec<LogLine>, bool)> {
    let _slot = read_slots().acquire().await.ok()?;
    tokio::task::spawn_blocking(move || {
        let mut entries = Vec::new();
        let more = match read {
            Read::History => reader.read_history(&mut entries, HISTORY_BATCH),
            Read::New => reader.read_new(&mut entries, HISTORY_BATCH),
        };
        let lines = entries.into_iter().filter_map(|e| render(e, &opts)).collect();
        (reader, lines, more)
    })
    .await
    .ok()
}

/// Sends a non-empty batch; whether the reader is still there.
async fn send(tx: &mpsc::Sender<Vec<LogLine>>, lines: Vec<LogLine>, sent: &mut Sent) -> bool {
    sent.0 += lines.iter().map(|l| l.data.len()).sum::<usize>();
    lines.is_empty() || tx.send(lines).await.is_ok()
}

/// Waits until more output was written or it ended; whether it ended.
async fn output_ended(progress: &mut watch::Receiver<Progress>) -> bool {
    if progress.borrow().ended {
        return true;
    }
    match progress.changed().await {
        Ok(()) => progress.borrow_and_update().ended,
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(stream: &str, log: &str, time: &str) -> LogEntry {
        LogEntry { log: log.into(), stream: stream.into(), attrs: Default::default(), time: time.into() }
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
}
