//! A container's stdio: FIFOs the shim writes to, a copier that feeds the
//! log driver and every attached client, and the stdin pipe.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::{broadcast, Mutex};

use crate::backends::logging::json_file::{JsonFileWriter, Stream};

/// Output as attached clients receive it.
#[derive(Debug, Clone)]
pub enum Output {
    Data(Stream, Bytes),
    /// The task's output is finished (it exited).
    End,
}

/// Chunks kept for a slow attached client before it starts losing output.
const ATTACH_BUFFER: usize = 4096;

/// Per-container stdio plumbing, alive as long as the container exists so
/// clients can attach before it starts.
pub struct ContainerIo {
    output: broadcast::Sender<Output>,
    stdin: Mutex<Option<pipe::Sender>>,
}

impl Default for ContainerIo {
    fn default() -> Self {
        Self { output: broadcast::channel(ATTACH_BUFFER).0, stdin: Mutex::new(None) }
    }
}

/// The FIFO paths handed to containerd for one task.
pub struct Fifos {
    pub stdin: Option<PathBuf>,
    pub stdout: PathBuf,
    pub stderr: Option<PathBuf>,
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
        self.output.subscribe()
    }

    /// Create the FIFOs for a new task, open our ends, and start copying
    /// output into the log and to attached clients.
    pub async fn wire(
        self: &Arc<Self>,
        dir: &Path,
        tty: bool,
        open_stdin: bool,
        log_path: &Path,
    ) -> std::io::Result<Fifos> {
        std::fs::create_dir_all(dir)?;
        let fifos = Fifos {
            stdin: open_stdin.then(|| dir.join("init-stdin")),
            stdout: dir.join("init-stdout"),
            // With a TTY, stdout and stderr are the same terminal.
            stderr: (!tty).then(|| dir.join("init-stderr")),
        };
        for path in [Some(&fifos.stdout), fifos.stderr.as_ref(), fifos.stdin.as_ref()].into_iter().flatten() {
            mkfifo(path)?;
        }
        if let Some(p) = &fifos.stdin {
            // Read-write so opening does not wait for the shim to open its end.
            *self.stdin.lock().await = Some(pipe::OpenOptions::new().read_write(true).open_sender(p)?);
        }
        let log = JsonFileWriter::open(log_path)?;
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
                    let _ = io.output.send(Output::End);
                }
            }
        });
        Ok(fifos)
    }

    /// Release the copier when the task never came to open the FIFOs.
    pub fn abandon(&self, fifos: &Fifos) {
        for path in [Some(&fifos.stdout), fifos.stderr.as_ref()].into_iter().flatten() {
            // Opening and closing the write end wakes the blocked reader with EOF.
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(path);
        }
    }

    async fn copy_output(self: Arc<Self>, stdout: pipe::Receiver, stderr: Option<pipe::Receiver>, log: JsonFileWriter) {
        let log = Arc::new(std::sync::Mutex::new(log));
        let out = self.clone().pump(stdout, Stream::Stdout, log.clone());
        match stderr {
            Some(err) => {
                tokio::join!(out, self.clone().pump(err, Stream::Stderr, log.clone()));
            }
            None => out.await,
        }
        if let Ok(mut log) = log.lock() {
            if let Err(e) = log.flush() {
                tracing::warn!(error = %e, "writing container log");
            }
        }
        *self.stdin.lock().await = None;
        let _ = self.output.send(Output::End);
    }

    async fn pump(self: Arc<Self>, mut pipe: pipe::Receiver, stream: Stream, log: Arc<std::sync::Mutex<JsonFileWriter>>) {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match pipe.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    let chunk = Bytes::copy_from_slice(&buf[..n]);
                    if let Ok(mut log) = log.lock() {
                        if let Err(e) = log.write(stream, &chunk) {
                            tracing::warn!(error = %e, "writing container log");
                        }
                    }
                    let _ = self.output.send(Output::Data(stream, chunk));
                }
            }
        }
    }

    /// Feed the task's stdin; `close` ends it (StdinOnce, or the client's EOF).
    pub async fn write_stdin(&self, data: &[u8]) -> std::io::Result<()> {
        match self.stdin.lock().await.as_mut() {
            Some(pipe) => pipe.write_all(data).await,
            None => Err(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "stdin is closed")),
        }
    }

    pub async fn close_stdin(&self) {
        *self.stdin.lock().await = None;
    }

    pub async fn has_stdin(&self) -> bool {
        self.stdin.lock().await.is_some()
    }
}
