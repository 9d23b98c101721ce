//! A command in a real pseudo-terminal, as a user at a terminal runs it:
//! the child gets the terminal as its controlling TTY, the test types into
//! the master side and reads what the terminal shows.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Terminal {
    master: File,
    child: Child,
    /// Everything the terminal has shown so far.
    screen: Arc<Mutex<Vec<u8>>>,
    /// How much of `screen` `expect` has already consumed.
    seen: usize,
}

fn winsize(rows: u16, cols: u16) -> libc::winsize {
    libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 }
}

impl Terminal {
    /// Start `cmd` on a new terminal of `rows` x `cols`.
    pub fn spawn(mut cmd: Command, rows: u16, cols: u16) -> Terminal {
        let (mut master, mut slave) = (0, 0);
        let size = winsize(rows, cols);
        // SAFETY: openpty fills two fds; name and termios may be null.
        let rc = unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), &size) };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both fds were just opened and are owned here.
        let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let stdio = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup pty"));
        cmd.stdin(stdio(&slave)).stdout(stdio(&slave)).stderr(stdio(&slave));
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawning {cmd:?} on a pty: {e}"));
        drop(slave);
        let master = File::from(master);
        let screen = Arc::new(Mutex::new(Vec::new()));
        let mut reader = master.try_clone().expect("dup pty master");
        let sink = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once the child side is closed.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Terminal { master, child, screen, seen: 0 }
    }

    /// Type `bytes`.
    pub fn send(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).expect("writing to the terminal");
    }

    /// Everything shown so far, lossily as text.
    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().unwrap()).into_owned()
    }

    /// Wait until `needle` appears after what earlier calls matched; returns
    /// the text up to and including it.
    #[track_caller]
    pub fn expect(&mut self, needle: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            {
                let screen = self.screen.lock().unwrap();
                let rest = &screen[self.seen..];
                if let Some(at) = rest.windows(needle.len()).position(|w| w == needle.as_bytes()) {
                    let upto = String::from_utf8_lossy(&rest[..at + needle.len()]).into_owned();
                    self.seen += at + needle.len();
                    return upto;
                }
            }
            assert!(Instant::now() < deadline, "timed out waiting for {needle:?}; the terminal shows:\n{:?}", self.screen());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Change the terminal's size (the foreground process gets SIGWINCH).
    pub fn resize(&mut self, rows: u16, cols: u16) {
        let size = winsize(rows, cols);
        // SAFETY: TIOCSWINSZ reads one winsize from a valid pointer.
        let rc = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
        assert_eq!(rc, 0, "TIOCSWINSZ: {}", std::io::Error::last_os_error());
    }

    /// Type detach `keys` until the command ends (up to `secs`); its exit
    /// code. Keys typed while the CLI is busy writing the shell's output
    /// were seen to get lost about once in five runs on a loaded machine,
    /// so they are typed again every few seconds.
    #[track_caller]
    pub fn detach(&mut self, keys: &[u8], secs: u64) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            self.send(keys);
            let retry = Instant::now() + Duration::from_secs(3);
            while Instant::now() < retry {
                if let Some(status) = self.child.try_wait().expect("waiting for the command") {
                    return status.code().unwrap_or(-1);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            assert!(Instant::now() < deadline, "the detach keys did not end the command; the terminal shows:\n{:?}", self.screen());
        }
    }

    /// Wait for the command to end; its exit code.
    #[track_caller]
    pub fn wait(&mut self, secs: u64) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for the command") {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "the command did not end; the terminal shows:\n{:?}", self.screen());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
