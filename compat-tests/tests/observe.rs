//! Watching containers: `docker top`, `docker stats`, health checks, as the
//! stock CLI and bollard see them.

use std::time::{Duration, Instant};

use compat_tests::Berthd;

/// Poll `f` every 50 ms until it answers `Some`, for up to `secs` seconds.
#[track_caller]
fn eventually<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Now as `seconds.nanoseconds`, the form `--since`/`--until` take.
fn now_stamp() -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}

fn inspect(daemon: &Berthd, format: &str, name: &str) -> String {
    daemon.docker(&["inspect", "-f", format, name]).success().stdout.trim().to_string()
}

#[test]
fn top_lists_the_container_processes_with_ps_ef_columns() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["run", "-d", "--name", "busy", "busybox", "sh", "-c", "sleep 301 & sleep 302"]).success();
    let pid = inspect(&daemon, "{{.State.Pid}}", "busy");
    // The background sleep may need a moment to appear.
    let out = eventually(10, "both sleeps in docker top", || {
        let out = daemon.docker(&["top", "busy"]).success().stdout;
        (out.contains("sleep 301") && out.contains("sleep 302")).then_some(out)
    });
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"], "{out}");
    let rows: Vec<&str> = lines.collect();
    // busybox sh execs its last command: the init process is `sleep 302`.
    assert_eq!(rows.len(), 2, "the two sleeps and nothing from the host: {out}");
    let init = rows.iter().find(|r| r.split_whitespace().nth(1) == Some(pid.as_str())).expect("init pid listed");
    assert!(init.ends_with("sleep 302"), "{out}");
    assert!(rows.iter().all(|r| r.starts_with("root")), "{out}");
}

#[test]
fn top_with_ps_args_and_over_the_api() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["run", "-d", "--name", "one", "busybox", "sleep", "303"]).success();
    let out = daemon.docker(&["top", "one", "-o", "pid,comm"]).success().stdout;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0].split_whitespace().collect::<Vec<_>>(), ["PID", "COMMAND"], "{out}");
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[1].ends_with("sleep"), "{out}");

    let client = daemon.client();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let top = rt
        .block_on(client.top_processes("one", Some(bollard::query_parameters::TopOptions { ps_args: "aux".into() })))
        .unwrap();
    let titles = top.titles.unwrap();
    assert_eq!(titles.first().map(String::as_str), Some("USER"), "{titles:?}");
    assert!(titles.contains(&"%CPU".to_string()), "{titles:?}");
    let processes = top.processes.unwrap();
    assert_eq!(processes.len(), 1, "{processes:?}");
    assert_eq!(processes[0].len(), titles.len());
    assert_eq!(processes[0].last().unwrap(), "sleep 303");

    let bad = daemon.docker(&["top", "one", "-o", "foo=PID"]).failure();
    assert!(bad.stderr.contains("specifying \"foo=PID\" is not allowed"), "{}", bad.stderr);
}

#[test]
fn top_of_a_stopped_container_conflicts_and_top_is_an_event() {
    let daemon = Berthd::start_with_busybox();
    let id = daemon.docker(&["create", "--name", "idle", "busybox", "true"]).success().stdout.trim().to_string();
    let resp = daemon.request("GET", "/containers/idle/top", None);
    assert_eq!(resp.status, 409, "{}", resp.text());
    assert_eq!(resp.json()["message"], format!("container {id} is not running"));
    let out = daemon.docker(&["top", "idle"]).failure();
    assert!(out.stderr.contains(&format!("container {id} is not running")), "{}", out.stderr);

    daemon.docker(&["start", "idle"]).success();
    daemon.docker(&["run", "-d", "--name", "topped", "busybox", "sleep", "304"]).success();
    daemon.docker(&["top", "topped"]).success();
    let events = daemon
        .docker(&["events", "--since", "1", "--until", &now_stamp(), "--filter", "event=top", "--format", "{{.Actor.Attributes.name}}"])
        .success();
    assert_eq!(events.stdout.trim(), "topped");
}
