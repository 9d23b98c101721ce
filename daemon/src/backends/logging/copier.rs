//! `berthd log-copier CONFIG`: the logger containerd's shim starts for a
//! container whose stdout is a `binary://` URI. The shim hands it the
//! container's stdout and stderr pipes (fds 3 and 4) and waits for a byte
//! on fd 5. It writes the log file itself (json-file/local, rotation), so
//! output is captured and the container never blocks while berthd is
//! slow, restarting or down. Live output for attached clients goes to
//! whoever last connected to its unix socket (berthd), on a best-effort
//! basis: a client that does not keep up loses chunks, the file never.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::json_file::{JsonFileWriter, LogFile, Stream};

/// The copier's own program, installed beside berthd.
pub const PROGRAM: &str = "berthd-log-copier";

/// The program the shim should start for a daemon running as `daemon_exe`:
/// the copier installed beside it, else the daemon itself (which has the
/// same subcommand).
pub fn program(daemon_exe: &Path) -> PathBuf {
    daemon_exe
        .parent()
        .map(|dir| dir.join(PROGRAM))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| daemon_exe.to_path_buf())
}

/// The subcommand; containerd turns the URI's query `?log-copier=CONFIG`
/// into the arguments `log-copier CONFIG`.
pub const SUBCOMMAND: &str = "log-copier";

/// Chunks queued for the live connection before new ones are dropped.
const LIVE_QUEUE: usize = 1024;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CopierConfig {
    pub log: LogFile,
    /// Where the copier serves live output.
    pub socket: PathBuf,
    /// The container has a terminal: the shim copies the console to fd 3
    /// and fd 4 is an unused pipe whose write end may never close.
    #[serde(default)]
    pub tty: bool,
    /// Read the output from these FIFOs (stdout, stderr) rather than from
    /// the shim's pipes: berthd starts such a copier itself (`spawn`), for
    /// containers with stdin and no TTY, which binary:// cannot serve.
    #[serde(default)]
    pub fifos: Option<(PathBuf, PathBuf)>,
}

/// Start a copier for a config with `fifos` as a process of its own
/// session, so it outlives berthd (killed, restarted, or stopped with
/// systemd's KillMode=process); returns once it serves its socket.
pub async fn spawn(program: &Path, config: &Path) -> std::io::Result<()> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both fds were just created and are owned here once.
    let (mut ready, ready_w) = unsafe { (File::from_raw_fd(fds[0]), std::os::fd::OwnedFd::from_raw_fd(fds[1])) };
    let w = ready_w.as_raw_fd();
    let mut cmd = tokio::process::Command::new(program);
    cmd.arg(SUBCOMMAND).arg(config).stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 || libc::dup2(w, 5) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    drop(ready_w);
    // Reaped here while berthd lives; after a restart, by init.
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    let mut byte = [0u8; 1];
    match tokio::task::spawn_blocking(move || ready.read(&mut byte)).await.map_err(std::io::Error::other)?? {
        1 => Ok(()),
        _ => Err(std::io::Error::other("the log copier exited before it was ready")),
    }
}

/// The stdout URI that makes the shim start `exe` as this copier.
pub fn uri(exe: &Path, config: &Path) -> String {
    let escape = |p: &Path| {
        let text = p.display().to_string();
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    format!("binary://{}?{SUBCOMMAND}={}", escape(exe), escape(config))
}

/// A unix socket path under `dir` short enough for `sockaddr_un` (108
/// bytes), however deep `dir` is: `/proc/self/fd/N/name` through an open
/// directory. Keep the returned file open while using the path.
pub fn short_path(dir: &Path, name: &str) -> std::io::Result<(File, PathBuf)> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC).open(dir)?;
    let path = PathBuf::from(format!("/proc/self/fd/{}/{name}", dir.as_raw_fd()));
    Ok((dir, path))
}

/// Connect to a copier's live output (berthd's side).
pub fn connect(socket: &Path) -> std::io::Result<UnixStream> {
    let (dir, name) = split(socket)?;
    let (_dir, path) = short_path(dir, name)?;
    UnixStream::connect(path)
}

fn split(socket: &Path) -> std::io::Result<(&Path, &str)> {
    let invalid = || std::io::Error::new(std::io::ErrorKind::InvalidInput, "bad copier socket path");
    let dir = socket.parent().ok_or_else(invalid)?;
    let name = socket.file_name().and_then(|n| n.to_str()).ok_or_else(invalid)?;
    Ok((dir, name))
}

/// One live chunk on the socket: stream byte, big-endian u32 length, data.
pub fn frame_header(stream: Stream, len: usize) -> [u8; 5] {
    let n = (len as u32).to_be_bytes();
    [stream as u8, n[0], n[1], n[2], n[3]]
}

/// Run as the copier; the process's exit status.
pub fn main(config: Option<&std::ffi::OsStr>) -> i32 {
    match run(config) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("berthd log-copier: {e}");
            1
        }
    }
}

fn run(config: Option<&std::ffi::OsStr>) -> std::io::Result<()> {
    let config = config.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "usage: berthd log-copier CONFIG"))?;
    let config: CopierConfig = serde_json::from_slice(&std::fs::read(config)?).map_err(std::io::Error::other)?;
    // The shim sends SIGTERM when the task is deleted, after closing its
    // ends of the pipes: what is left is read to the end, then we exit.
    // SAFETY: setting a signal disposition before any thread exists.
    unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
    let (streams, mut ready) = open_streams(&config);
    let writer = Arc::new(Mutex::new(JsonFileWriter::open(&config.log)?));
    let (dir, name) = split(&config.socket)?;
    let (_dir, path) = short_path(dir, name)?;
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    listener.set_nonblocking(true)?;
    // Bound before the shim goes on: berthd connects before the task starts.
    ready.write_all(b"1")?;
    drop(ready);
    let (tx, rx) = sync_channel::<(Stream, Vec<u8>)>(LIVE_QUEUE);
    let live = std::thread::spawn(move || forward(listener, rx));
    let copiers: Vec<_> = streams
        .into_iter()
        .map(|(pipe, stream)| {
            let (writer, tx) = (writer.clone(), tx.clone());
            std::thread::spawn(move || copy(pipe, stream, &writer, &tx))
        })
        .collect();
    drop(tx);
    for c in copiers {
        let _ = c.join();
    }
    let flushed = writer.lock().map_err(|_| std::io::Error::other("log writer poisoned"))?.flush();
    let _ = live.join();
    let _ = std::fs::remove_file(&path);
    flushed
}

/// Opens one output stream (a FIFO's open waits for its writer).
type Opener = Box<dyn FnOnce() -> std::io::Result<File> + Send>;

/// The output streams to copy and the ready pipe.
fn open_streams(config: &CopierConfig) -> (Vec<(Opener, Stream)>, File) {
    // SAFETY: fd 5 is the ready pipe (the shim's ExtraFiles, or `spawn`'s);
    // fds 3 and 4 are the shim's output pipes when there are no FIFOs.
    // Each is owned here once.
    let ready = unsafe { File::from_raw_fd(5) };
    if let Some((stdout, stderr)) = config.fifos.clone() {
        // Opened by the copying threads: the shim opens its ends only
        // after we are ready, and our blocking open returns then, so an
        // early read cannot mistake "no writer yet" for the end.
        let open = |p: PathBuf| -> Opener { Box::new(move || File::open(p)) };
        return (vec![(open(stdout), Stream::Stdout), (open(stderr), Stream::Stderr)], ready);
    }
    let (stdout, stderr) = unsafe { (File::from_raw_fd(3), File::from_raw_fd(4)) };
    let mut streams: Vec<(Opener, Stream)> = vec![(Box::new(move || Ok(stdout)), Stream::Stdout)];
    if !config.tty {
        streams.push((Box::new(move || Ok(stderr)), Stream::Stderr));
    }
    (streams, ready)
}

fn copy(open: Opener, stream: Stream, writer: &Mutex<JsonFileWriter>, live: &SyncSender<(Stream, Vec<u8>)>) {
    let mut pipe = match open() {
        Ok(pipe) => pipe,
        Err(e) => return eprintln!("berthd log-copier: opening the {stream:?} stream: {e}"),
    };
    let mut buf = vec![0u8; 32 * 1024];
    let mut failing = false;
    loop {
        let n = match pipe.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        if let Ok(mut w) = writer.lock() {
            // Report once per run of failures (a full disk), not per chunk.
            match w.write(stream, &buf[..n]) {
                Err(e) if !failing => {
                    eprintln!("berthd log-copier: writing the log: {e}; output is dropped until this succeeds again");
                    failing = true;
                }
                Ok(()) => failing = false,
                Err(_) => {}
            }
        }
        // Never wait for berthd: a full queue drops the chunk (live only).
        let _ = live.try_send((stream, buf[..n].to_vec()));
    }
}

/// Live chunks to the newest connection; chunks with nobody connected
/// are dropped.
fn forward(listener: UnixListener, rx: Receiver<(Stream, Vec<u8>)>) {
    let mut conn: Option<UnixStream> = None;
    while let Ok((stream, data)) = rx.recv() {
        // A berthd that (re)connected waits in the backlog: take the newest.
        while let Ok((c, _)) = listener.accept() {
            if c.set_nonblocking(false).is_ok() {
                conn = Some(c);
            }
        }
        if let Some(c) = conn.as_mut() {
            let sent = c.write_all(&frame_header(stream, data.len())).and_then(|()| c.write_all(&data));
            if sent.is_err() {
                conn = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uri_names_the_subcommand_and_escapes_paths() {
        let uri = uri(Path::new("/usr/bin/berthd"), Path::new("/run/a b/x?.json"));
        assert_eq!(uri, "binary:///usr/bin/berthd?log-copier=/run/a%20b/x%3F.json");
    }
}
