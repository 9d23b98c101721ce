//! `docker stop` and `docker kill`: signals, with SIGKILL after the timeout.

use std::time::Duration;

use super::{ContainerService, Entry};
use crate::services::ServiceError;

/// dockerd's default stop timeout.
pub(super) const DEFAULT_STOP_TIMEOUT: i64 = 10;

impl ContainerService {
    /// dockerd reads the signal first, then prefixes every other refusal
    /// with "Cannot kill container: <name>".
    pub async fn kill(&self, name: &str, signal: Option<&str>) -> Result<(), ServiceError> {
        let signal = parse_signal(signal.unwrap_or("KILL"))?;
        self.signal_container(name, signal).await.map_err(|e| e.wrapped(&format!("Cannot kill container: {name}")))
    }

    async fn signal_container(&self, name: &str, signal: u32) -> Result<(), ServiceError> {
        let entry = self.lookup(name)?;
        let mut record = entry.record.lock().await;
        if !record.state.status.is_live() {
            return Err(ServiceError::Conflict(format!("Container {} is not running", record.id)));
        }
        if self.cancel_restart(&entry, &mut record) {
            return Ok(());
        }
        // dockerd: SIGKILL, or the container's own stop signal (any signal
        // when it has none), means the user wants it to stay down.
        let stop_signal = record.config.stop_signal.as_deref().map(parse_signal).transpose()?;
        if signal == libc::SIGKILL as u32 || stop_signal.is_none_or(|s| s == signal) {
            record.manually_stopped = true;
            self.save(&record)?;
        }
        self.containerd.task_kill(&record.id, signal).await?;
        self.emit(&record, "kill", &[("signal", signal.to_string())]);
        Ok(())
    }

    pub async fn stop(&self, name: &str, signal: Option<&str>, timeout: Option<i64>) -> Result<(), ServiceError> {
        let entry = self.lookup(name)?;
        let (id, stop_signal, wait) = {
            let mut record = entry.record.lock().await;
            if !record.state.status.is_live() {
                return Err(ServiceError::NotModified);
            }
            if self.cancel_restart(&entry, &mut record) {
                return Ok(());
            }
            record.manually_stopped = true;
            self.save(&record)?;
            let signal = signal.map(str::to_string).or_else(|| record.config.stop_signal.clone());
            let timeout = timeout.or(record.config.stop_timeout).unwrap_or(DEFAULT_STOP_TIMEOUT);
            (record.id.clone(), parse_signal(signal.as_deref().unwrap_or("TERM"))?, timeout)
        };
        self.stop_task(&entry, &id, stop_signal, wait).await?;
        self.emit(&*entry.record.lock().await, "stop", &[]);
        Ok(())
    }

    /// Signal the task and publish `kill`, holding the record so that the
    /// `die` this may cause comes after it.
    async fn kill_task(&self, entry: &Entry, id: &str, signal: u32) -> Result<(), ServiceError> {
        let record = entry.record.lock().await;
        self.containerd.task_kill(id, signal).await?;
        self.emit(&record, "kill", &[("signal", signal.to_string())]);
        Ok(())
    }

    /// Signal, wait up to `timeout` seconds (negative: forever), then SIGKILL.
    pub(super) async fn stop_task(&self, entry: &Entry, id: &str, signal: u32, timeout: i64) -> Result<(), ServiceError> {
        let mut changes = entry.changed.subscribe();
        let stopped = || async { !entry.record.lock().await.state.status.is_live() };
        if let Err(e) = self.kill_task(entry, id, signal).await {
            if stopped().await {
                return Ok(());
            }
            return Err(e);
        }
        let wait_exit = async {
            while !stopped().await {
                if changes.changed().await.is_err() {
                    return;
                }
            }
        };
        let exited = if timeout < 0 {
            wait_exit.await;
            true
        } else {
            tokio::time::timeout(Duration::from_secs(timeout as u64), wait_exit).await.is_ok()
        };
        if !exited {
            tracing::info!(container.id = %id, "container did not stop in time; sending SIGKILL");
            let _ = self.kill_task(entry, id, libc::SIGKILL as u32).await;
            let wait_exit = async {
                while !stopped().await {
                    if changes.changed().await.is_err() {
                        return;
                    }
                }
            };
            if tokio::time::timeout(Duration::from_secs(30), wait_exit).await.is_err() {
                return Err(ServiceError::Internal(format!("container {id} did not exit after SIGKILL")));
            }
        }
        Ok(())
    }
}

/// A signal by name (`TERM`, `SIGTERM`, `sigterm`) or number.
pub fn parse_signal(text: &str) -> Result<u32, ServiceError> {
    if let Ok(n) = text.parse::<u32>() {
        if n > 0 && n < 65 {
            return Ok(n);
        }
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let number = match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "ILL" => libc::SIGILL,
        "TRAP" => libc::SIGTRAP,
        "ABRT" | "IOT" => libc::SIGABRT,
        "BUS" => libc::SIGBUS,
        "FPE" => libc::SIGFPE,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "SEGV" => libc::SIGSEGV,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "STKFLT" => libc::SIGSTKFLT,
        "CHLD" => libc::SIGCHLD,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "TSTP" => libc::SIGTSTP,
        "TTIN" => libc::SIGTTIN,
        "TTOU" => libc::SIGTTOU,
        "URG" => libc::SIGURG,
        "XCPU" => libc::SIGXCPU,
        "XFSZ" => libc::SIGXFSZ,
        "VTALRM" => libc::SIGVTALRM,
        "PROF" => libc::SIGPROF,
        "WINCH" => libc::SIGWINCH,
        "IO" | "POLL" => libc::SIGIO,
        "PWR" => libc::SIGPWR,
        "SYS" => libc::SIGSYS,
        "RTMIN" => SIGRTMIN,
        "RTMAX" => SIGRTMAX,
        // Go's table names RTMIN+1..RTMIN+15 and RTMAX-14..RTMAX-1.
        _ => {
            let offset = |prefix: &str, most: i32| {
                name.strip_prefix(prefix).and_then(|n| n.parse::<i32>().ok()).filter(|n| (1..=most).contains(n))
            };
            match (offset("RTMIN+", 15), offset("RTMAX-", 14)) {
                (Some(n), _) => SIGRTMIN + n,
                (_, Some(n)) => SIGRTMAX - n,
                _ => return Err(ServiceError::InvalidParameter(format!("Invalid signal: {text}"))),
            }
        }
    };
    Ok(number as u32)
}

/// Linux's real-time signal range as Go's signal table has it (glibc's
/// SIGRTMIN is 34, two being kept for threads).
const SIGRTMIN: i32 = 34;
const SIGRTMAX: i32 = 64;

/// dockerd's check of a container's stop signal at create (moby's
/// `signal.ParseSignal`): any number but 0, else a name it knows.
pub(super) fn check_stop_signal(text: &str) -> Result<(), ServiceError> {
    if text.is_empty() || text.parse::<i64>().is_ok_and(|n| n != 0) {
        return Ok(());
    }
    parse_signal(text).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("TERM").unwrap(), 15);
        assert_eq!(parse_signal("sigkill").unwrap(), 9);
        assert_eq!(parse_signal("1").unwrap(), 1);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("0").is_err());
        assert_eq!(parse_signal("SIGRTMIN+3").unwrap(), 37);
        assert_eq!(parse_signal("rtmax-1").unwrap(), 63);
        assert!(parse_signal("RTMIN+16").is_err());
        assert!(check_stop_signal("99").is_ok());
        assert!(check_stop_signal("0").is_err());
        assert!(check_stop_signal("BOGUS").is_err());
    }
}
