//! A container's stdio: FIFOs the shim writes to, a copier that feeds the
//! log driver and every attached client, and the stdin pipe.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::{broadcast, watch, Mutex};

use crate::backends::containerd::Containerd;
use crate::backends::logging::copier;
use crate::backends::logging::json_file::{JsonFileWriter, LogFile, Stream};

/// Output as attached clients receive it.
#[derive(Debug, Clone)]
pub enum Output {
    Data(Stream, Bytes),
    /// The task's output is finished (it exited).
    End,
}

/// Chunks kept for a slow attached client before it starts losing output.
/// The buffer is allocated up front (~300 KiB), so it exists only while
/// someone is attached.
const ATTACH_BUFFER: usize = 4096;

/// Per-container stdio plumbing, alive as long as the container exists so
/// clients can attach before it starts.
pub struct ContainerIo {
    /// Live output for attached clients; `None` while nobody listens.
    output: std::sync::Mutex<Option<broadcast::Sender<Output>>>,
    stdin: Mutex<Option<pipe::Sender>>,
    /// The process whose stdin `close_stdin` ends: (container, exec ID).
    stdin_owner: Mutex<Option<(Containerd, String, String)>>,
    /// Bumped when a stdin pipe opens: input from a client that attached
    /// before the start waits for it.
    stdin_opened: watch::Sender<u64>,
    /// What log followers wait on: they read the log file itself, so they
    /// need a wake-up, not the data.
    progress: watch::Sender<Progress>,
}

/// Output of the current task, for log followers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// Chunks written so far (a change means there is more to read).
    pub chunks: u64,
    /// The task's output is finished.
    pub ended: bool,
}

impl Default for ContainerIo {
    fn default() -> Self {
        Self {
            output: std::sync::Mutex::new(None),
            stdin: Mutex::new(None),
            stdin_owner: Mutex::new(None),
            stdin_opened: watch::channel(0).0,
            progress: watch::channel(Progress::default()).0,
        }
    }
}

/// The FIFO paths handed to containerd for one task.
pub struct Fifos {
    pub stdin: Option<PathBuf>,
    pub stdout: PathBuf,
    pub stderr: Option<PathBuf>,
}

impl Fifos {
    /// The paths for process `prefix` (`init`, `exec-<id>`) under `dir`.
    pub fn at(dir: &Path, prefix: &str, tty: bool, open_stdin: bool) -> Self {
        Self {
            stdin: open_stdin.then(|| dir.join(format!("{prefix}-stdin"))),
            stdout: dir.join(format!("{prefix}-stdout")),
            // With a TTY, stdout and stderr are the same terminal.
            stderr: (!tty).then(|| dir.join(format!("{prefix}-stderr"))),
        }
    }
}

async fn open_reader(path: PathBuf) -> Option<pipe::Receiver> {
    let file = tokio::task::spawn_blocking(move || std::fs::File::open(&path)).await.ok()?.ok()?;
    pipe::Receiver::from_file(file).ok()
}

fn mkfifo(path: &Path) -> std::io::Result<()> {
    let _ = std::fs::remove_file(path);
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: c is a valid NUL-terminated path.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

impl ContainerIo {
    pub fn subscribe(&self) -> broadcast::Receiver<Output> {
        let mut output = self.output.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        output.get_or_insert_with(|| broadcast::channel(ATTACH_BUFFER).0).subscribe()
    }

    /// Wake-ups for log followers (see `Progress`).
    pub fn watch_progress(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    /// Hand `item` to attached clients; once the last one is gone, or the
    /// output ended, the buffer is freed (a broadcast without receivers
    /// drops items anyway; attached clients get `End`, then the close).
    fn publish(&self, item: Output) {
        let end = matches!(item, Output::End);
        {
            let mut output = self.output.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if output.as_ref().is_some_and(|tx| tx.send(item).is_err()) || end {
                *output = None;
            }
        }
        self.progress.send_modify(|p| if end { p.ended = true } else { p.chunks += 1 });
    }

    /// Create the FIFOs for a new task, open our ends, and start copying
    /// output into the log and to attached clients.
    /// `prefix` names the process (`init`, `exec-<id>`); output goes to the
    /// log only when `log` is given (exec output is not logged).
    pub async fn wire(
        self: &Arc<Self>,
        dir: &Path,
        prefix: &str,
        tty: bool,
        open_stdin: bool,
        log: Option<&LogFile>,
    ) -> std::io::Result<Fifos> {
        let fifos = self.make_fifos(dir, prefix, tty, open_stdin).await?;
        self.progress.send_modify(|p| p.ended = false);
        let log = log.map(JsonFileWriter::open).transpose()?;
        let io = self.clone();
        let (stdout, stderr) = (fifos.stdout.clone(), fifos.stderr.clone());
        tokio::spawn(async move {
            // A blocking open returns once the shim has opened its end, so
            // an early read cannot mistake "no writer yet" for end of output.
            let stdout = open_reader(stdout).await;
            let stderr = match stderr {
                Some(p) => open_reader(p).await,
                None => None,
            };
            match stdout {
                Some(stdout) => io.copy_output(stdout, stderr, log).await,
                None => {
                    io.publish(Output::End);
                }
            }
        });
        Ok(fifos)
    }

    /// Create the FIFOs for a new task and open our end of stdin; the
    /// output is read by `wire` or by a copier process.
    pub async fn make_fifos(&self, dir: &Path, prefix: &str, tty: bool, open_stdin: bool) -> std::io::Result<Fifos> {
        std::fs::create_dir_all(dir)?;
        let fifos = Fifos::at(dir, prefix, tty, open_stdin);
        for path in [Some(&fifos.stdout), fifos.stderr.as_ref(), fifos.stdin.as_ref()].into_iter().flatten() {
            mkfifo(path)?;
        }
        if let Some(p) = &fifos.stdin {
            self.open_stdin(p).await?;
        }
        Ok(fifos)
    }

    /// Create the stdin FIFO of a process whose output goes to a copier
    /// process, and open our end.
    pub async fn wire_stdin(&self, dir: &Path, prefix: &str) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{prefix}-stdin"));
        mkfifo(&path)?;
        self.open_stdin(&path).await?;
        Ok(path)
    }

    async fn open_stdin(&self, path: &Path) -> std::io::Result<()> {
        // Read-write so opening does not wait for the shim to open its end.
        *self.stdin.lock().await = Some(pipe::OpenOptions::new().read_write(true).open_sender(path)?);
        Ok(())
    }

    /// After a daemon restart, our end of a running task's stdin FIFO again
    /// (the shim held its end open meanwhile).
    pub async fn reopen_stdin(&self, fifos: &Fifos) -> std::io::Result<()> {
        match fifos.stdin.as_ref().filter(|p| p.exists()) {
            Some(p) => self.open_stdin(p).await,
            None => Ok(()),
        }
    }

    /// Take the live output from the copier process the shim started
    /// (`binary://` logging: it writes the log file, we only pass its
    /// output on to attached clients and wake log followers). Called
    /// after the task is created and before it starts, so nothing is missed.
    pub async fn follow_copier(self: &Arc<Self>, socket: &Path) -> std::io::Result<()> {
        let path = socket.to_path_buf();
        let conn = tokio::task::spawn_blocking(move || copier::connect(&path)).await.map_err(std::io::Error::other)??;
        conn.set_nonblocking(true)?;
        let mut conn = tokio::net::UnixStream::from_std(conn)?;
        self.progress.send_modify(|p| p.ended = false);
        let io = self.clone();
        tokio::spawn(async move {
            let mut header = [0u8; 5];
            while conn.read_exact(&mut header).await.is_ok() {
                let stream = if header[0] == Stream::Stderr as u8 { Stream::Stderr } else { Stream::Stdout };
                let mut data = vec![0u8; u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize];
                if conn.read_exact(&mut data).await.is_err() {
                    break;
                }
                io.publish(Output::Data(stream, Bytes::from(data)));
            }
            // The copier exits once the task's output is closed and written.
            *io.stdin.lock().await = None;
            io.publish(Output::End);
        });
        Ok(())
    }

    /// Release the copier when the task never came to open the FIFOs.
    pub fn abandon(&self, fifos: &Fifos) {
        if !fifos.stdout.exists() {
            // The task's output went to a copier process (or nowhere yet).
            if let Ok(mut stdin) = self.stdin.try_lock() {
                *stdin = None;
            }
            self.publish(Output::End);
            return;
        }
        for path in [Some(&fifos.stdout), fifos.stderr.as_ref()].into_iter().flatten() {
            // Opening and closing the write end wakes the blocked reader with EOF.
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(path);
        }
    }

    async fn copy_output(self: Arc<Self>, stdout: pipe::Receiver, stderr: Option<pipe::Receiver>, log: Option<JsonFileWriter>) {
        let log = Arc::new(std::sync::Mutex::new(log));
        let out = self.clone().pump(stdout, Stream::Stdout, log.clone());
        match stderr {
            Some(err) => {
                tokio::join!(out, self.clone().pump(err, Stream::Stderr, log.clone()));
            }
            None => out.await,
        }
        if let Ok(mut guard) = log.lock() {
            if let Some(Err(e)) = guard.as_mut().map(JsonFileWriter::flush) {
                tracing::warn!(error = %e, "writing container log");
            }
        }
        *self.stdin.lock().await = None;
        self.publish(Output::End);
    }

    async fn pump(self: Arc<Self>, mut pipe: pipe::Receiver, stream: Stream, log: Arc<std::sync::Mutex<Option<JsonFileWriter>>>) {
        let mut buf = vec![0u8; 32 * 1024];
        // Warn once per run of failed writes (a full disk), not per chunk.
        let mut failing = false;
        loop {
            match pipe.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    let chunk = Bytes::copy_from_slice(&buf[..n]);
                    if let Ok(mut guard) = log.lock() {
                        match guard.as_mut().map(|l| l.write(stream, &chunk)) {
                            Some(Err(e)) if !failing => {
                                tracing::warn!(error = %e, "writing container log; output is dropped until this succeeds again");
                                failing = true;
                            }
                            Some(Ok(())) if failing => {
                                tracing::info!("writing container log again");
                                failing = false;
                            }
                            _ => {}
                        }
                    }
                    self.publish(Output::Data(stream, chunk));
                }
            }
        }
    }

    /// Feed the task's stdin; `close` ends it (StdinOnce, or the client's EOF).
    pub async fn write_stdin(&self, data: &[u8]) -> std::io::Result<()> {
        let mut opened = self.stdin_opened.subscribe();
        loop {
            if let Some(pipe) = self.stdin.lock().await.as_mut() {
                return pipe.write_all(data).await;
            }
            // Not started yet (`docker run -i` attaches first): wait for it.
            if opened.changed().await.is_err() {
                return Err(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "stdin is closed"));
            }
        }
    }

    /// The process is running: release input that waited for it. (Earlier,
    /// an end of input could not yet be passed on to the shim.)
    pub fn stdin_ready(&self) {
        self.stdin_opened.send_modify(|n| *n += 1);
    }

    /// Name the process `close_stdin` should signal EOF to.
    pub async fn set_stdin_owner(&self, containerd: Containerd, container_id: &str, exec_id: &str) {
        *self.stdin_owner.lock().await = Some((containerd, container_id.to_string(), exec_id.to_string()));
    }

    /// The client's input ended: close our end and tell the shim.
    pub async fn close_stdin(&self) {
        *self.stdin.lock().await = None;
        if let Some((containerd, container_id, exec_id)) = self.stdin_owner.lock().await.as_ref() {
            if let Err(e) = containerd.close_stdin(container_id, exec_id).await {
                tracing::debug!(error = %e, "closing stdin");
            }
        }
    }

    pub async fn has_stdin(&self) -> bool {
        self.stdin.lock().await.is_some()
    }

    /// After a daemon restart (live-restore): open our ends of the FIFOs a
    /// running task still writes to (the shim holds its ends open, so output
    /// waits in the pipe meanwhile) and resume copying into the log.
    pub async fn reattach(self: &Arc<Self>, fifos: &Fifos, log: Option<&LogFile>) -> std::io::Result<()> {
        let stdout = pipe::OpenOptions::new().open_receiver(&fifos.stdout)?;
        let stderr = fifos.stderr.as_ref().map(|p| pipe::OpenOptions::new().open_receiver(p)).transpose()?;
        self.reopen_stdin(fifos).await?;
        let log = log.map(JsonFileWriter::open).transpose()?;
        tokio::spawn(self.clone().copy_output(stdout, stderr, log));
        Ok(())
    }
}
