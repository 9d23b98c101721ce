//! A network namespace of a test's own: each test daemon runs in one, so
//! its bridges, addresses, iptables chains and published ports never touch
//! the host's or another test's. Created with `ip netns add` (a bind mount
//! under /var/run/netns), deleted on drop.
//!
//! Daemons are entered with `nsenter --net=…`, not `ip netns exec`: the
//! latter remounts /sys in a new mount namespace, which hides the cgroup
//! tree containerd and berthd share.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::cli::{self, CmdOutput};

#[derive(Debug)]
pub struct NetNs {
    pub name: String,
    /// Set on drop: the forwarders stop accepting.
    closed: Arc<AtomicBool>,
}

impl NetNs {
    /// A fresh namespace with loopback up.
    ///
    /// # Panics
    /// When `ip netns add` fails (the tests need root).
    pub fn create(name: &str) -> NetNs {
        let ns = NetNs { name: name.to_string(), closed: Arc::default() };
        let out = Command::new("ip").args(["netns", "add", name]).output().expect("running ip netns add");
        assert!(out.status.success(), "ip netns add {name}: {}", String::from_utf8_lossy(&out.stderr));
        ns.run(&["ip", "link", "set", "lo", "up"]).success();
        ns
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from("/var/run/netns").join(&self.name)
    }

    /// The `nsenter` prefix that runs a command inside.
    pub fn enter_args(&self) -> Vec<String> {
        vec!["nsenter".into(), format!("--net={}", self.path().display()), "--".into()]
    }

    /// Run a command inside the namespace.
    pub fn run(&self, args: &[&str]) -> CmdOutput {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", self.path().display())).arg("--").args(args);
        cli::run_piped(cmd, None)
    }

    /// Start a long-running command inside (a server); killed on drop of
    /// the returned guard.
    pub fn spawn(&self, args: &[&str]) -> Background {
        let child = Command::new("nsenter")
            .arg(format!("--net={}", self.path().display()))
            .arg("--")
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {args:?}: {e}"));
        Background(child)
    }

    /// A veth pair between this namespace (`local`, e.g. `10.251.0.1/24`)
    /// and `peer` (`remote`): another "host" on a link, to reach published
    /// ports from outside and to see outbound NAT. `peer` gets no route
    /// back to the container subnets, so only masqueraded traffic returns.
    pub fn link_to(&self, peer: &NetNs, local: &str, remote: &str) {
        let name = format!("o{}", &peer.name[peer.name.len().saturating_sub(10)..]);
        let name: String = name.chars().filter(char::is_ascii_alphanumeric).take(15).collect();
        self.run(&["ip", "link", "add", &name, "type", "veth", "peer", "name", "eth-out", "netns", &peer.name]).success();
        self.run(&["ip", "addr", "add", local, "dev", &name]).success();
        self.run(&["ip", "link", "set", &name, "up"]).success();
        peer.run(&["ip", "addr", "add", remote, "dev", "eth-out"]).success();
        peer.run(&["ip", "link", "set", "eth-out", "up"]).success();
    }

    /// Forward `127.0.0.1:port` inside the namespace to `127.0.0.1:port` on
    /// the host, so a daemon inside reaches a server the test runs on the
    /// host's loopback (a local registry). Threads in this process; they
    /// stop when the namespace is dropped.
    pub fn forward_host_port(&self, port: u16) {
        let listener = self.bind_inside(port);
        listener.set_nonblocking(true).expect("nonblocking listener");
        let closed = self.closed.clone();
        std::thread::spawn(move || {
            while !closed.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((inside, _)) => {
                        let _ = inside.set_nonblocking(false);
                        if let Ok(outside) = TcpStream::connect(("127.0.0.1", port)) {
                            splice(inside, outside);
                        }
                    }
                    // Polled so that a dropped namespace ends the thread.
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
    }

    /// A listener on 127.0.0.1:port created inside the namespace: a thread
    /// enters it, binds, and ends (sockets keep their namespace).
    fn bind_inside(&self, port: u16) -> TcpListener {
        let path = self.path();
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
            // SAFETY: setns on a valid namespace fd; it changes only this
            // short-lived thread.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            TcpListener::bind(("127.0.0.1", port)).unwrap_or_else(|e| panic!("binding 127.0.0.1:{port} in the namespace: {e}"))
        })
        .join()
        .expect("binding inside the namespace")
    }
}

/// Copy both ways until each side closes.
fn splice(a: TcpStream, b: TcpStream) {
    fn pump(mut from: TcpStream, mut to: TcpStream) {
        let mut buf = [0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    }
    let (a2, b2) = match (a.try_clone(), b.try_clone()) {
        (Ok(a2), Ok(b2)) => (a2, b2),
        _ => return,
    };
    std::thread::spawn(move || pump(a, b));
    std::thread::spawn(move || pump(b2, a2));
}

/// A process started with `NetNs::spawn`, killed on drop.
pub struct Background(std::process::Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::Relaxed);
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}
