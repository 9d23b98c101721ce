//! Faults around berthd: containerd going away and coming back, a full
//! disk under the data-root, load with a stalled reader.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use compat_tests::containerd::PrivateContainerd;
use compat_tests::{eventually, Berthd};

/// Run `f` on a thread; panics if it has not returned within `secs` (a hang).
#[track_caller]
fn within<T: Send + 'static>(secs: u64, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs)).unwrap_or_else(|_| panic!("{what} hung for {secs}s"))
}

#[test]
fn containerd_restart_is_survived_without_restarting_berthd() {
    let mut ctd = PrivateContainerd::start();
    let daemon = Berthd::builder().containerd(&ctd.socket()).start_with_busybox();
    let berthd_pid = daemon.pid();
    daemon.docker(&["run", "-d", "--name", "keeps", "busybox", "sleep", "1000"]).success();
    daemon.docker(&["run", "-d", "--name", "dies", "busybox", "sleep", "1000"]).success();
    let keeps_pid = daemon.inspect_format("{{.State.Pid}}", "keeps");
    let dies_pid: i32 = daemon.inspect_format("{{.State.Pid}}", "dies").parse().expect("pid");

    ctd.kill();

    // During the outage: what berthd keeps itself still answers; what needs
    // containerd fails quickly with a 503 naming containerd, not a hang.
    let socket = daemon.socket.clone();
    let ps = within(30, "GET /containers/json", move || {
        compat_tests::client::raw_request(&socket, "GET", "/containers/json", &[], None)
    });
    assert_eq!(ps.status, 200, "{}", ps.text());
    let socket = daemon.socket.clone();
    let started = Instant::now();
    let create = within(30, "POST /containers/create", move || {
        compat_tests::client::raw_request(
            &socket,
            "POST",
            "/containers/create?name=during",
            &[],
            Some(br#"{"Image":"busybox","Cmd":["true"]}"#),
        )
    });
    println!("create during the outage: {} in {:?}: {}", create.status, started.elapsed(), create.text());
    assert_eq!(create.status, 503, "{}", create.text());
    assert!(create.text().contains("containerd"), "{}", create.text());
    let socket = daemon.socket.clone();
    let kill = within(30, "POST /containers/keeps/kill", move || {
        compat_tests::client::raw_request(&socket, "POST", "/containers/keeps/kill?signal=SIGUSR1", &[], None)
    });
    assert_eq!(kill.status, 503, "{}", kill.text());
    assert!(kill.text().contains("containerd"), "{}", kill.text());
    // A task exits while nobody listens for events.
    // SAFETY: kill(2) on the container's process, found by its pid.
    assert_eq!(unsafe { libc::kill(dies_pid, libc::SIGKILL) }, 0, "kill {dies_pid}");

    ctd.restart();

    // The missed exit is caught up, without restarting berthd.
    eventually(60, "the exit missed during the outage to be recorded", || {
        let state = daemon.inspect_format("{{.State.Status}} {{.State.ExitCode}}", "dies");
        (state == "exited 137").then_some(())
    });
    assert_eq!(daemon.pid(), berthd_pid);
    assert_eq!(daemon.inspect_format("{{.State.Status}}", "keeps"), "running");
    assert_eq!(daemon.inspect_format("{{.State.Pid}}", "keeps"), keeps_pid);
    // Calls work again, and so do events: a new exit is heard.
    let out = daemon.docker(&["exec", "keeps", "echo", "hello"]).success();
    assert_eq!(out.stdout.trim(), "hello");
    let out = daemon.docker(&["run", "--rm", "busybox", "sh", "-c", "echo ran; exit 3"]);
    assert_eq!((out.code, out.stdout.trim()), (3, "ran"), "{}", out.stderr);
    daemon.docker(&["start", "dies"]).success();
    daemon.docker(&["stop", "-t", "1", "keeps"]).success();
    assert_eq!(daemon.inspect_format("{{.State.Status}}", "keeps"), "exited");

    // A second outage while a container exits by itself is caught up too.
    daemon.docker(&["run", "-d", "--name", "short", "busybox", "sh", "-c", "sleep 3; exit 5"]).success();
    ctd.kill();
    let short_pid: i32 = daemon.inspect_format("{{.State.Pid}}", "short").parse().expect("pid");
    eventually(30, "the short container's process to end", || {
        // SAFETY: signal 0 only checks the pid exists.
        (unsafe { libc::kill(short_pid, 0) } != 0).then_some(())
    });
    ctd.restart();
    eventually(60, "the second missed exit to be recorded", || {
        let state = daemon.inspect_format("{{.State.Status}} {{.State.ExitCode}}", "short");
        (state == "exited 5").then_some(())
    });
    assert_eq!(daemon.pid(), berthd_pid);
}
