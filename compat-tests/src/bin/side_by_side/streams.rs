//! Stream workloads: output through the json-file log driver, reading and
//! following logs, `docker stats`, and daemon CPU under streaming clients.

use std::io::Read;
use std::process::{Child, Stdio};
use std::time::Duration;

use anyhow::{ensure, Context, Result};

use crate::daemons::{Daemon, Kind};
use crate::report::{Better, Row};
use crate::{check_stop, remove_all, Bench};

/// Bytes each logging container writes: 80-byte lines.
const LOG_BYTES: usize = 100 << 20;
/// Containers running while `docker stats` is measured.
const STATS_CONTAINERS: usize = 20;
/// Clients of each kind streaming during the CPU window.
const STREAM_CLIENTS: usize = 5;
/// The window over which daemon CPU is sampled under streaming clients.
const STREAM_WINDOW: Duration = Duration::from_secs(5);

fn log_writer() -> String {
    // 79 characters and a newline per line.
    let line = "0123456789".repeat(8)[..79].to_owned();
    format!("yes {line} | head -c {LOG_BYTES}")
}

impl Bench {
    /// 7 (streams). 100 MB through json-file, `docker logs` of it, and
    /// `docker logs -f` following another 100 MB as it is written.
    pub(crate) fn logs(&mut self) -> Result<()> {
        let writer = log_writer();
        let names = ["bench-logs-b", "bench-logs-d"];
        let name_of = |d: &Daemon| names[usize::from(d.kind == Kind::Dockerd)];
        let series = self.alternate("100 MB through json-file", self.plan.logs, [None, None], |d, p| {
            let name = name_of(d);
            let _ = d.docker(&["rm", "-f", name]);
            p.start()?;
            d.docker(&["run", "-d", "--name", name, "busybox", "sh", "-c", &writer])?;
            let code = d.docker(&["wait", name])?;
            p.stop()?;
            ensure!(code.trim() == "0", "the writer exited {}", code.trim());
            Ok(())
        })?;
        self.push("100 MB of 80-byte lines through json-file (run -d until wait returns)", "ms", Better::Lower, &series, |ms| ms);

        // The last writer of each daemon is still there: read its log.
        for d in &self.daemons {
            let bytes = count_stdout(d, &["logs", name_of(d)])?;
            if bytes != LOG_BYTES as u64 {
                eprintln!("  NOTE: docker logs on {} returned {bytes} bytes, expected {LOG_BYTES}", d.label());
            }
        }
        let series = self.alternate("docker logs (100 MB)", self.plan.logs, [None, None], |d, p| {
            p.start()?;
            d.docker_discard(&["logs", name_of(d)])?;
            p.stop()
        })?;
        self.push("`docker logs` of 100 MB to a pipe (CLI)", "ms", Better::Lower, &series, |ms| ms);

        let series = self.alternate("logs -f while 100 MB are written", self.plan.logs, [None, None], |d, p| {
            let name = name_of(d);
            let _ = d.docker(&["rm", "-f", name]);
            p.start()?;
            d.docker(&["run", "-d", "--name", name, "busybox", "sh", "-c", &writer])?;
            let bytes = count_stdout(d, &["logs", "-f", name])?;
            p.stop()?;
            ensure!(bytes == LOG_BYTES as u64, "logs -f returned {bytes} bytes, expected {LOG_BYTES}");
            Ok(())
        })?;
        self.push("run -d + `docker logs -f` until 100 MB were followed (CLI)", "ms", Better::Lower, &series, |ms| ms);
        Ok(())
    }

    /// 9 (stats). `docker stats --no-stream` over 20 running containers,
    /// and daemon CPU while 5 `docker stats` and 5 `docker events` clients
    /// stream.
    pub(crate) fn stats(&mut self) -> Result<()> {
        for d in &self.daemons {
            let client = d.client();
            self.rt.block_on(crate::for_each_concurrently(STATS_CONTAINERS, 10, |_| {
                crate::containers::start_sleeper(&client)
            }))?;
        }
        let series = self.alternate("docker stats --no-stream", self.plan.stats, [None, None], |d, p| {
            p.start()?;
            let out = d.docker(&["stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}} {{.MemUsage}}"])?;
            p.stop()?;
            let rows = out.lines().count();
            ensure!(rows == STATS_CONTAINERS, "docker stats listed {rows} containers, expected {STATS_CONTAINERS}");
            Ok(())
        })?;
        self.push(
            &format!("`docker stats --no-stream` over {STATS_CONTAINERS} running (CLI)"),
            "ms",
            Better::Lower,
            &series,
            |ms| ms,
        );

        // CPU only: the window is fixed, its length says nothing.
        let series = self.alternate("streaming clients", self.plan.stats, [None, None], |d, p| {
            let mut clients = StreamingClients::default();
            for _ in 0..STREAM_CLIENTS {
                clients.0.push(spawn_quiet(d, &["stats"])?);
                clients.0.push(spawn_quiet(d, &["events"])?);
            }
            // Let every client connect and get its first samples before
            // the window opens.
            std::thread::sleep(Duration::from_secs(2));
            p.start()?;
            std::thread::sleep(STREAM_WINDOW);
            p.stop()?;
            clients.ensure_running()
        })?;
        let mut row = Row::new(
            &format!(
                "daemon CPU while {STREAM_CLIENTS} `docker stats` + {STREAM_CLIENTS} `docker events` stream, {STATS_CONTAINERS} running ({}s window)",
                STREAM_WINDOW.as_secs()
            ),
            "ms per window, mean",
            Better::Lower,
            series[0].cpu_outcome(),
            series[1].cpu_outcome(),
        );
        row.notes.extend(series[0].note("berthd"));
        row.notes.extend(series[1].note("dockerd"));
        self.rows.push(row);
        for d in &self.daemons {
            self.rt.block_on(remove_all(&d.client()))?;
        }
        check_stop()
    }
}

/// `docker ARGS`, counting the bytes it writes to stdout.
fn count_stdout(d: &Daemon, args: &[&str]) -> Result<u64> {
    let mut child = d.docker_command(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let mut stdout = child.stdout.take().context("no stdout")?;
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = stdout.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    d.checked(args, child.wait_with_output()?)?;
    Ok(total)
}

fn spawn_quiet(d: &Daemon, args: &[&str]) -> Result<Child> {
    Ok(d.docker_command(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn()?)
}

/// Streaming CLI clients, killed on drop.
#[derive(Default)]
struct StreamingClients(Vec<Child>);

impl StreamingClients {
    fn ensure_running(&mut self) -> Result<()> {
        for child in &mut self.0 {
            if let Some(status) = child.try_wait()? {
                anyhow::bail!("a streaming client exited early ({status})");
            }
        }
        Ok(())
    }
}

impl Drop for StreamingClients {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
