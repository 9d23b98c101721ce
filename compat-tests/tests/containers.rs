//! Containers through the stock CLI: create, start, run, stop, kill, wait,
//! rm, ps, inspect.

use compat_tests::images::BusyboxImage;
use compat_tests::{eventually, Berthd};

#[test]
fn run_prints_output_and_exits_zero() {
    let daemon = Berthd::start_with_busybox();
    let out = daemon.docker(&["run", "--rm", "busybox", "echo", "hello from berthd"]).success();
    assert_eq!(out.stdout, "hello from berthd\n");
}

#[test]
fn run_rm_keeps_the_exit_status_and_leaves_no_container() {
    let daemon = Berthd::start_with_busybox();
    let out = daemon.docker(&["run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 7"]);
    assert_eq!(out.code, 7, "{out:?}");
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.stderr, "err\n");
    let ps = daemon.docker(&["ps", "-aq"]).success();
    assert_eq!(ps.stdout, "");
}

#[test]
fn missing_command_exits_127_with_dockerd_text() {
    let daemon = Berthd::start_with_busybox();
    let out = daemon.docker(&["run", "--rm", "busybox", "nosuchcommand"]);
    assert_eq!(out.code, 127, "{out:?}");
    assert!(out.stderr.contains("executable file not found"), "{}", out.stderr);
}

#[test]
fn detached_container_lifecycle() {
    let daemon = Berthd::start_with_busybox();
    let id = daemon.docker(&["run", "-d", "--name", "sleeper", "busybox", "sleep", "300"]).success().stdout;
    let id = id.trim();
    assert_eq!(id.len(), 64);
    let ps = daemon.docker(&["ps", "--format", "{{.Names}} {{.Status}}"]).success();
    assert!(ps.stdout.starts_with("sleeper Up"), "{}", ps.stdout);
    let running = daemon.docker(&["inspect", "-f", "{{.State.Running}} {{.State.Pid}}", "sleeper"]).success();
    assert!(running.stdout.starts_with("true "), "{}", running.stdout);
    let rm = daemon.docker(&["rm", "sleeper"]).failure();
    assert!(rm.stderr.contains("container is running: stop the container before removing or force remove"), "{}", rm.stderr);
    // sleep as PID 1 ignores SIGTERM, so stop escalates to SIGKILL.
    daemon.docker(&["stop", "-t", "1", "sleeper"]).success();
    let state = daemon.docker(&["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "sleeper"]).success();
    assert_eq!(state.stdout.trim(), "exited 137");
    daemon.docker(&["start", "sleeper"]).success();
    daemon.docker(&["kill", "sleeper"]).success();
    let code = daemon.docker(&["wait", "sleeper"]).success();
    assert_eq!(code.stdout.trim(), "137");
    daemon.docker(&["rm", "sleeper"]).success();
    let gone = daemon.docker(&["container", "inspect", "sleeper"]).failure();
    assert!(gone.stderr.contains("No such container: sleeper"), "{}", gone.stderr);
}

/// dockerd's process environment: PATH, HOSTNAME, TERM=xterm with a TTY,
/// then the container's own variables, which replace those in place; an
/// exec gets the same, with its own `-e` on top. (runc adds HOME.)
#[test]
fn processes_get_dockerds_environment() {
    let daemon = Berthd::start_with_busybox();
    let id = daemon.docker(&["create", "-t", "busybox", "env"]).success().stdout.trim().to_string();
    let out = daemon.docker(&["start", "-a", &id]).success();
    let short = &id[..12];
    let path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    assert_eq!(out.stdout.replace('\r', ""), format!("{path}\nHOSTNAME={short}\nTERM=xterm\nHOME=/root\n"));
    let out = daemon.docker(&["run", "--rm", "-h", "hh", "-e", "HOSTNAME=mine", "-e", "A=1", "busybox", "env"]).success();
    assert_eq!(out.stdout, format!("{path}\nHOSTNAME=mine\nA=1\nHOME=/root\n"));
    // The stored config keeps only what was asked for.
    let env = daemon.inspect_format("{{json .Config.Env}}", &id);
    assert_eq!(env, format!("[\"{path}\"]"));

    // One variable per command: the CLI (28) may send several `-e` out of
    // order under load, to dockerd as well.
    daemon.docker(&["run", "-d", "--name", "envx", "-e", "A=1", "busybox", "sleep", "300"]).success();
    let host = daemon.inspect_format("{{.Config.Hostname}}", "envx");
    let out = daemon.docker(&["exec", "-e", "A=3", "envx", "env"]).success();
    assert_eq!(out.stdout, format!("{path}\nHOSTNAME={host}\nA=3\nHOME=/root\n"));
    let out = daemon.docker(&["exec", "-e", "C=4", "envx", "env"]).success();
    assert_eq!(out.stdout, format!("{path}\nHOSTNAME={host}\nA=1\nC=4\nHOME=/root\n"));
    let out = daemon.docker(&["exec", "-t", "envx", "env"]).success();
    assert!(out.stdout.replace('\r', "").contains(&format!("HOSTNAME={host}\nTERM=xterm\n")), "{}", out.stdout);
}

#[test]
fn duplicate_names_conflict() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["create", "--name", "twin", "busybox", "true"]).success();
    let out = daemon.docker(&["create", "--name", "twin", "busybox", "true"]).failure();
    assert!(
        out.stderr.contains("Conflict. The container name \"/twin\" is already in use by container"),
        "{}",
        out.stderr
    );
}

#[test]
fn unknown_image_is_no_such_image() {
    let daemon = Berthd::start();
    let out = daemon.docker(&["create", "--pull", "never", "nosuchimage"]).failure();
    assert!(out.stderr.contains("No such image: nosuchimage:latest"), "{}", out.stderr);
}

#[test]
fn stop_sends_the_stop_signal_first() {
    let daemon = Berthd::start_with_busybox();
    let script = "trap 'exit 3' TERM; echo ready; while true; do sleep 0.1; done";
    daemon.docker(&["run", "-d", "--name", "polite", "busybox", "sh", "-c", script]).success();
    daemon.docker(&["stop", "polite"]).success();
    let state = daemon.docker(&["inspect", "-f", "{{.State.ExitCode}}", "polite"]).success();
    assert_eq!(state.stdout.trim(), "3");
    let again = daemon.docker(&["start", "polite"]).success();
    assert_eq!(again.stdout.trim(), "polite");
}

/// dockerd refuses a stop signal it cannot name at create ("Invalid signal:
/// BOGUS", 400) and creates nothing; Go's real-time names are signals too.
#[test]
fn a_bad_stop_signal_is_refused_at_create() {
    let daemon = Berthd::start_with_busybox();
    for signal in ["BOGUS", "0", "RTMIN+16"] {
        let out = daemon.docker(&["create", "--stop-signal", signal, "busybox", "true"]).failure();
        assert!(out.stderr.contains(&format!("Error response from daemon: Invalid signal: {signal}")), "{}", out.stderr);
    }
    assert_eq!(daemon.docker(&["ps", "-aq"]).success().stdout.trim(), "");
    let script = "trap 'exit 5' 37; echo ready; while true; do sleep 0.1; done";
    daemon.docker(&["run", "-d", "--name", "rt", "--stop-signal", "SIGRTMIN+3", "busybox", "sh", "-c", script]).success();
    eventually(30, "the trap is set", || daemon.docker(&["logs", "rt"]).stdout.contains("ready").then_some(()));
    daemon.docker(&["stop", "rt"]).success();
    let state = daemon.docker(&["inspect", "-f", "{{.State.ExitCode}}", "rt"]).success();
    assert_eq!(state.stdout.trim(), "5");
}

/// dockerd reads kill's signal first, then words every other refusal
/// "Cannot kill container: <name>: …" with its status kept.
#[test]
fn kill_refusals_are_worded_as_dockerd_words_them() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["create", "--name", "idle", "busybox", "true"]).success();
    let id = inspect(&daemon, "{{.Id}}", "idle");
    let out = daemon.docker(&["kill", "idle"]).failure();
    assert!(out.stderr.contains(&format!("Error response from daemon: Cannot kill container: idle: Container {id} is not running")), "{}", out.stderr);
    let out = daemon.docker(&["kill", "nosuch"]).failure();
    assert!(out.stderr.contains("Error response from daemon: Cannot kill container: nosuch: No such container: nosuch"), "{}", out.stderr);
    let out = daemon.docker(&["kill", "-s", "BOGUS", "nosuch"]).failure();
    assert!(out.stderr.contains("Error response from daemon: Invalid signal: BOGUS"), "{}", out.stderr);
    assert_eq!(inspect(&daemon, "{{.State.Status}}", "idle"), "created");
}

#[test]
fn ps_filters_and_inspect_shape() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["run", "-d", "--name", "up", "--label", "tier=web", "busybox", "sleep", "300"]).success();
    daemon.docker(&["create", "--name", "idle", "busybox", "true"]).success();
    let running = daemon.docker(&["ps", "--format", "{{.Names}}"]).success();
    assert_eq!(running.stdout, "up\n");
    let all = daemon.docker(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]).success();
    assert_eq!(all.stdout, "idle created\nup running\n");
    let labelled = daemon.docker(&["ps", "-a", "--filter", "label=tier=web", "--format", "{{.Names}}"]).success();
    assert_eq!(labelled.stdout, "up\n");
    let created = daemon.docker(&["ps", "-a", "--filter", "status=created", "-q"]).success();
    assert_eq!(created.stdout.lines().count(), 1);
    let bad = daemon.docker(&["ps", "--filter", "bogus=1"]).failure();
    assert!(bad.stderr.contains("invalid filter 'bogus'"), "{}", bad.stderr);
    let inspect = daemon.docker(&["inspect", "up"]).success();
    let v: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
    let c = &v[0];
    assert_eq!(c["Name"], "/up");
    assert_eq!(c["Config"]["Labels"]["tier"], "web");
    assert_eq!(c["Config"]["Cmd"], serde_json::json!(["sleep", "300"]));
    assert_eq!(c["HostConfig"]["NetworkMode"], "bridge");
    assert!(c["Created"].as_str().unwrap().contains('.'), "Created has nanoseconds");
    assert_eq!(c["State"]["Status"], "running");
    daemon.docker(&["rm", "-f", "up"]).success();
    assert_eq!(daemon.docker(&["ps", "-aq", "--filter", "name=up"]).success().stdout, "");
}

#[test]
fn bollard_sees_the_same_containers() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["create", "--name", "seen", "busybox", "true"]).success();
    let client = daemon.client();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let list = client
            .list_containers(Some(bollard::query_parameters::ListContainersOptions { all: true, ..Default::default() }))
            .await
            .unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].names.as_deref(), Some(&["/seen".to_string()][..]));
        let inspect = client.inspect_container("seen", None).await.unwrap();
        assert_eq!(inspect.name.as_deref(), Some("/seen"));
        assert_eq!(inspect.state.unwrap().running, Some(false));
    });
}

fn inspect(daemon: &Berthd, format: &str, name: &str) -> String {
    daemon.docker(&["inspect", "-f", format, name]).success().stdout.trim().to_string()
}


fn ctr(namespace: &str, args: &[&str]) -> String {
    let out = std::process::Command::new("ctr")
        .args(["--address", compat_tests::containerd::SOCKET, "-n", namespace])
        .args(args)
        .output()
        .expect("ctr");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A shell loop that exits with `code` on SIGTERM.
fn trap_term(code: u8) -> String {
    format!("trap 'exit {code}' TERM; while true; do sleep 0.1; done")
}

#[test]
fn on_failure_restarts_up_to_its_limit() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["run", "-d", "--name", "flaky", "--restart", "on-failure:3", "busybox", "sh", "-c", "exit 3"]).success();
    // Backoff 100 + 200 + 400 ms, then the limit holds it down.
    eventually(20, "three restarts", || {
        (inspect(&daemon, "{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}", "flaky") == "exited 3 3").then_some(())
    });
    // A fourth restart would come 800 ms later; it must not.
    std::thread::sleep(std::time::Duration::from_millis(1200));
    assert_eq!(inspect(&daemon, "{{.State.Status}} {{.RestartCount}}", "flaky"), "exited 3");
    let policy = inspect(&daemon, "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}", "flaky");
    assert_eq!(policy, "on-failure:3");
    // A clean exit is not a failure.
    daemon.docker(&["run", "-d", "--name", "fine", "--restart", "on-failure", "busybox", "true"]).success();
    eventually(10, "clean exit", || (inspect(&daemon, "{{.State.Status}}", "fine") == "exited").then_some(()));
    assert_eq!(inspect(&daemon, "{{.RestartCount}}", "fine"), "0");
}

#[test]
fn always_shows_restarting_backs_off_and_stops_for_good_on_stop() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["run", "-d", "--name", "bouncy", "--restart", "always", "busybox", "sh", "-c", "exit 2"]).success();
    // After a few exits the backoff is long enough to see the state.
    // ps and inspect are two requests: the restart may land between them, so
    // poll until both saw the same backoff window.
    let status = eventually(20, "Restarting in ps and inspect", || {
        let ps = daemon.docker(&["ps", "--format", "{{.Names}} {{.Status}}"]).success().stdout;
        let state = inspect(&daemon, "{{.State.Status}} {{.State.Restarting}} {{.State.Running}} {{.State.Pid}}", "bouncy");
        (ps.starts_with("bouncy Restarting (2)") && state == "restarting true true 0").then_some(ps)
    });
    assert!(status.contains("ago"), "{status}");
    let count: i64 = inspect(&daemon, "{{.RestartCount}}", "bouncy").parse().unwrap();
    assert!(count >= 1, "{count}");
    let rm = daemon.docker(&["rm", "bouncy"]).failure();
    // Restarting or, a moment later, running again: either way it stays.
    assert!(rm.stderr.contains("stop the container before removing or force remove"), "{}", rm.stderr);
    daemon.docker(&["stop", "bouncy"]).success();
    assert_eq!(inspect(&daemon, "{{.State.Status}}", "bouncy"), "exited");
    let count_after_stop = inspect(&daemon, "{{.RestartCount}}", "bouncy");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(inspect(&daemon, "{{.State.Status}} {{.RestartCount}}", "bouncy"), format!("exited {count_after_stop}"));
    // `docker start` begins afresh.
    daemon.docker(&["run", "-d", "--name", "steady", "--restart", "always", "busybox", "sh", "-c", &trap_term(0)]).success();
    daemon.docker(&["kill", "steady"]).success();
    daemon.docker(&["wait", "steady"]).success();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(inspect(&daemon, "{{.State.Status}} {{.RestartCount}}", "steady"), "exited 0", "no restart after kill");
}

#[test]
fn restart_policies_apply_when_the_daemon_starts() {
    let mut first = Berthd::start_with_busybox();
    let run = |name: &str, policy: &str| {
        first.docker(&["run", "-d", "--name", name, "--restart", policy, "busybox", "sh", "-c", &trap_term(0)]).success();
    };
    run("always", "always");
    run("unless", "unless-stopped");
    run("unless-stopped-by-user", "unless-stopped");
    run("always-stopped-by-user", "always");
    run("never", "no");
    first.docker(&["stop", "unless-stopped-by-user", "always-stopped-by-user"]).success();
    let status = first.stop().expect("first daemon");
    assert!(status.success(), "{status}");
    let second = first.successor(serde_json::json!({}));
    let states = second.docker(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]).success().stdout;
    let mut states: Vec<&str> = states.lines().collect();
    states.sort();
    // dockerd starts `always` containers even after an explicit stop.
    assert_eq!(
        states,
        ["always running", "always-stopped-by-user running", "never exited", "unless running", "unless-stopped-by-user exited"]
    );
}

#[test]
fn shutdown_stops_containers_with_their_stop_signal() {
    let mut first = Berthd::start_with_busybox();
    first.docker(&["run", "-d", "--name", "term", "busybox", "sh", "-c", &trap_term(3)]).success();
    let usr1 = "trap 'exit 4' USR1; while true; do sleep 0.1; done";
    first.docker(&["run", "-d", "--name", "usr1", "--stop-signal", "USR1", "busybox", "sh", "-c", usr1]).success();
    let pid = inspect(&first, "{{.State.Pid}}", "term");
    assert!(first.stop().expect("daemon").success());
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "container process survived shutdown");
    let second = first.successor(serde_json::json!({}));
    assert_eq!(inspect(&second, "{{.State.Status}} {{.State.ExitCode}}", "term"), "exited 3");
    assert_eq!(inspect(&second, "{{.State.Status}} {{.State.ExitCode}}", "usr1"), "exited 4");
}

#[test]
fn shutdown_timeout_is_a_daemon_json_key() {
    let daemon = Berthd::builder().daemon_json(serde_json::json!({"shutdown-timeout": 3})).start();
    assert!(!daemon.log().contains("shutdown-timeout"), "{}", daemon.log());
    let out = Berthd::builder().daemon_json(serde_json::json!({"shutdown-timeout": 3})).arg("--shutdown-timeout=4").run_to_exit();
    assert!(out.stderr.contains("shutdown-timeout: (from flag: 4, from file: 3)"), "{}", out.stderr);
}

#[test]
fn live_restore_keeps_containers_and_notices_exits_while_down() {
    let live = serde_json::json!({"live-restore": true});
    let mut first = Berthd::builder().daemon_json(live.clone()).start();
    let archive = BusyboxImage::new("busybox:latest").build().unwrap().docker_archive().unwrap();
    first.docker_stdin(&["load"], &archive).success();
    let counter = "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.05; done";
    first.docker(&["run", "-d", "--name", "keep", "busybox", "sh", "-c", counter]).success();
    let ending = first.docker(&["run", "-d", "--name", "ending", "busybox", "sleep", "300"]).success().stdout;
    let removed = first.docker(&["run", "-d", "--rm", "--name", "removed", "busybox", "sleep", "300"]).success().stdout;
    let restarts =
        first.docker(&["run", "-d", "--name", "restarts", "--restart", "on-failure", "busybox", "sleep", "300"]).success().stdout;
    let pid = inspect(&first, "{{.State.Pid}}", "keep");
    let log_path = inspect(&first, "{{.LogPath}}", "keep");
    assert!(first.stop().expect("daemon").success());
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists(), "container died with the daemon");
    // Exits while no daemon listens.
    for id in [&ending, &removed, &restarts] {
        ctr(&first.namespace, &["tasks", "kill", "-s", "SIGKILL", id.trim()]);
    }
    eventually(10, "tasks to stop", || {
        let tasks = ctr(&first.namespace, &["tasks", "ls"]);
        (tasks.lines().filter(|l| l.contains("STOPPED")).count() == 3).then_some(())
    });
    let lines_before = std::fs::read_to_string(&log_path).unwrap().lines().count();
    let second = first.successor(live);
    assert_eq!(inspect(&second, "{{.State.Status}} {{.State.Pid}}", "keep"), format!("running {pid}"));
    let ps = second.docker(&["ps", "--format", "{{.Names}} {{.Status}}", "--filter", "name=keep"]).success().stdout;
    assert!(ps.starts_with("keep Up"), "{ps}");
    assert_eq!(inspect(&second, "{{.State.Status}} {{.State.ExitCode}}", "ending"), "exited 137");
    let gone = second.docker(&["container", "inspect", "removed"]).failure();
    assert!(gone.stderr.contains("No such container: removed"), "{}", gone.stderr);
    eventually(10, "restart policy applied", || {
        (inspect(&second, "{{.State.Status}} {{.RestartCount}}", "restarts") == "running 1").then_some(())
    });
    // Output keeps reaching the log, nothing lost across the gap.
    let numbers = eventually(10, "new log lines", || {
        let log = std::fs::read_to_string(&log_path).unwrap();
        let numbers: Vec<u64> = log
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["log"].as_str()?.trim().strip_prefix("line ")?.parse().ok())
            .collect();
        (numbers.len() > lines_before + 20).then_some(numbers)
    });
    assert!(numbers.iter().enumerate().all(|(i, n)| *n == i as u64), "gap in the log: {numbers:?}");
}

#[test]
fn kill_9_of_the_daemon_leaves_a_state_the_next_start_reconciles() {
    let mut first = Berthd::start_with_busybox();
    let made = first.docker(&["create", "--name", "made", "busybox", "echo", "made it"]).success().stdout.trim().to_string();
    let half_removed = first.docker(&["create", "--name", "half-removed", "busybox", "true"]).success().stdout.trim().to_string();
    let unrecorded = first.docker(&["create", "--name", "unrecorded", "busybox", "true"]).success().stdout.trim().to_string();
    first.signal(libc::SIGKILL);
    first.stop();
    // A remove cut short after containerd's side went: the record remains.
    ctr(&first.namespace, &["containers", "rm", &half_removed]);
    // containerd's container without a record (a create cut short).
    std::fs::remove_dir_all(first.data_root.join("containers").join(&unrecorded)).unwrap();
    let second = first.successor(serde_json::json!({}));
    let names = second.docker(&["ps", "-a", "--format", "{{.Names}}"]).success().stdout;
    assert_eq!(names, "made\n");
    assert_eq!(compat_tests::containerd::container_ids(&first.namespace), [made.clone()]);
    let snapshots = compat_tests::containerd::snapshot_keys(&first.namespace);
    assert!(snapshots.contains(&made), "{snapshots:?}");
    assert!(!snapshots.contains(&half_removed) && !snapshots.contains(&unrecorded), "{snapshots:?}");
    let out = second.docker(&["start", "-a", "made"]).success();
    assert_eq!(out.stdout, "made it\n");
    second.docker(&["create", "--name", "half-removed", "busybox", "true"]).success();
    second.docker(&["create", "--name", "unrecorded", "busybox", "true"]).success();
}

#[test]
fn rename_moves_the_name_and_guards_conflicts() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["create", "--name", "old", "busybox", "true"]).success();
    daemon.docker(&["create", "--name", "taken", "busybox", "true"]).success();
    daemon.docker(&["rename", "old", "new"]).success();
    assert_eq!(inspect(&daemon, "{{.Name}}", "new"), "/new");
    let gone = daemon.docker(&["container", "inspect", "old"]).failure();
    assert!(gone.stderr.contains("No such container: old"), "{}", gone.stderr);
    // dockerd's words: the name's refusals are "Error when allocating new
    // name: …" with the slash; an unknown container is named before a bad name.
    let clash = daemon.docker(&["rename", "new", "taken"]).failure();
    let words = "Error response from daemon: Error when allocating new name: Conflict. The container name \"/taken\" is already in use by container";
    assert!(clash.stderr.contains(words), "{}", clash.stderr);
    let same = daemon.docker(&["rename", "new", "/new"]).failure();
    assert!(same.stderr.contains("Renaming a container with the same name as its current name"), "{}", same.stderr);
    let bad = daemon.docker(&["rename", "new", "b@d"]).failure();
    let words = "Error response from daemon: Error when allocating new name: Invalid container name (/b@d), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed";
    assert!(bad.stderr.contains(words), "{}", bad.stderr);
    let missing = daemon.docker(&["rename", "nosuch", "b@d"]).failure();
    assert!(missing.stderr.contains("Error response from daemon: No such container: nosuch"), "{}", missing.stderr);
    assert_eq!(inspect(&daemon, "{{.Name}}", "new"), "/new");
    // The old name is free again.
    daemon.docker(&["create", "--name", "old", "busybox", "true"]).success();
}

#[test]
fn update_changes_limits_of_a_running_container_and_its_restart_policy() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["run", "-d", "--name", "limited", "--memory", "64m", "busybox", "sleep", "300"]).success();
    let cgroup_limit = |d: &Berthd| -> String {
        let pid = inspect(d, "{{.State.Pid}}", "limited");
        let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        let path = cgroup.lines().find_map(|l| l.split_once(":memory:").map(|(_, p)| p.to_string())).unwrap();
        std::fs::read_to_string(format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes")).unwrap().trim().to_string()
    };
    assert_eq!(cgroup_limit(&daemon), (64u64 << 20).to_string());
    daemon.docker(&["update", "--memory", "128m", "--memory-swap", "256m", "--restart", "on-failure:2", "limited"]).success();
    assert_eq!(cgroup_limit(&daemon), (128u64 << 20).to_string());
    assert_eq!(inspect(&daemon, "{{.HostConfig.Memory}} {{.HostConfig.RestartPolicy.Name}}", "limited"), format!("{} on-failure", 128u64 << 20));
    // The next run starts with the new limit too.
    daemon.docker(&["restart", "-t", "0", "limited"]).success();
    assert_eq!(cgroup_limit(&daemon), (128u64 << 20).to_string());
    let out = daemon.docker(&["update", "--memory", "1k", "limited"]).failure();
    assert!(out.stderr.contains("Minimum memory limit allowed is 6MB"), "{}", out.stderr);
}

#[test]
fn prune_removes_stopped_containers_by_filter() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["run", "--name", "done", "busybox", "sh", "-c", "echo data > /file"]).success();
    daemon.docker(&["create", "--name", "kept", "--label", "keep=yes", "busybox", "true"]).success();
    daemon.docker(&["run", "-d", "--name", "up", "busybox", "sleep", "300"]).success();
    let out = daemon.docker(&["container", "prune", "-f", "--filter", "label!=keep=yes"]).success();
    let done_id = out.stdout.lines().nth(1).unwrap_or_default().to_string();
    assert!(out.stdout.starts_with("Deleted Containers:\n"), "{}", out.stdout);
    assert_eq!(out.stdout.lines().filter(|l| l.len() == 64).count(), 1, "{}", out.stdout);
    assert!(out.stdout.contains("Total reclaimed space:"), "{}", out.stdout);
    assert!(!done_id.is_empty());
    let names = daemon.docker(&["ps", "-a", "--format", "{{.Names}}"]).success().stdout;
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(names, ["kept", "up"]);
    let none = daemon.docker(&["container", "prune", "-f", "--filter", "until=1h"]).success();
    assert_eq!(none.stdout.trim(), "Total reclaimed space: 0B");
    let resp = daemon.request("POST", "/containers/prune", None);
    let body: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(body["ContainersDeleted"][0].as_str().unwrap().len(), 64, "{body}");
    let bad = daemon.docker(&["container", "prune", "-f", "--filter", "bogus=1"]).failure();
    assert!(bad.stderr.contains("invalid filter 'bogus'"), "{}", bad.stderr);
}

/// `docker run --rm busybox ARGS…` on `daemon` with `flags` first; stdout.
fn run_in(daemon: &Berthd, flags: &[&str], args: &[&str]) -> String {
    let mut all = vec!["run", "--rm"];
    all.extend_from_slice(flags);
    all.push("busybox");
    all.extend_from_slice(args);
    daemon.docker(&all).success().stdout
}

fn status_line(daemon: &Berthd, flags: &[&str], field: &str) -> String {
    run_in(daemon, flags, &["grep", &format!("^{field}:"), "/proc/self/status"])
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

#[test]
fn default_seccomp_profile_is_applied_unless_unconfined_or_privileged() {
    let daemon = Berthd::start_with_busybox();
    assert_eq!(status_line(&daemon, &[], "Seccomp"), "2");
    assert_eq!(status_line(&daemon, &["--security-opt", "seccomp=unconfined"], "Seccomp"), "0");
    assert_eq!(status_line(&daemon, &["--privileged"], "Seccomp"), "0");
    // New namespaces need CAP_SYS_ADMIN, in the profile as in the caps.
    let denied = daemon.docker(&["run", "--rm", "busybox", "unshare", "-n", "true"]);
    assert_ne!(denied.code, 0, "{denied:?}");
    assert!(denied.stderr.contains("Operation not permitted"), "{}", denied.stderr);
    daemon.docker(&["run", "--rm", "--privileged", "busybox", "unshare", "-n", "true"]).success();
    // A profile file (the CLI sends its contents).
    let profile = daemon.dir().join("no-mkdir.json");
    let json = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}"#;
    std::fs::write(&profile, json).unwrap();
    let opt = format!("seccomp={}", profile.display());
    let out = daemon.docker(&["run", "--rm", "--security-opt", &opt, "busybox", "mkdir", "/x"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("Operation not permitted"), "{}", out.stderr);
    let info = daemon.docker(&["info", "--format", "{{json .SecurityOptions}}"]).success();
    assert_eq!(info.stdout.trim(), r#"["name=seccomp,profile=builtin"]"#);
}

#[test]
fn capabilities_privileged_and_read_only_rootfs() {
    let daemon = Berthd::start_with_busybox();
    assert_eq!(status_line(&daemon, &[], "CapEff"), "00000000a80425fb");
    assert_eq!(status_line(&daemon, &["--cap-add", "NET_ADMIN"], "CapEff"), "00000000a80435fb");
    assert_eq!(status_line(&daemon, &["--cap-drop", "chown"], "CapEff"), "00000000a80425fa");
    assert_eq!(status_line(&daemon, &["--cap-drop", "ALL", "--cap-add", "KILL"], "CapEff"), "0000000000000020");
    let all = status_line(&daemon, &["--privileged"], "CapEff");
    let bits = u64::from_str_radix(&all, 16).unwrap().count_ones();
    assert!(bits > 30, "privileged CapEff {all}");
    let out = daemon.docker(&["run", "--rm", "--read-only", "busybox", "touch", "/file"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("Read-only file system"), "{}", out.stderr);
    run_in(&daemon, &["--read-only"], &["touch", "/dev/shm/file"]);
}

#[test]
fn user_groups_workdir_env_hostname_and_binds() {
    let daemon = Berthd::start_with_busybox();
    assert_eq!(run_in(&daemon, &["--user", "nobody"], &["id", "-u"]), "65534\n");
    assert_eq!(run_in(&daemon, &["--user", "1000:1000"], &["id", "-u"]), "1000\n");
    assert_eq!(run_in(&daemon, &["--user", "1000:1000"], &["id", "-g"]), "1000\n");
    // The primary group is an additional group too, as dockerd sets it.
    assert_eq!(run_in(&daemon, &["--user", "1000:1000"], &["id", "-G"]), "1000\n");
    assert_eq!(run_in(&daemon, &["--user", "1000"], &["id", "-G"]), "0\n");
    let groups = run_in(&daemon, &["--user", "nobody", "--group-add", "root", "--group-add", "4242"], &["id", "-G"]);
    let groups: Vec<&str> = groups.split_whitespace().collect();
    assert!(groups.contains(&"0") && groups.contains(&"4242"), "{groups:?}");
    let missing = daemon.docker(&["run", "--rm", "--user", "nosuchuser", "busybox", "true"]);
    assert_ne!(missing.code, 0);
    assert!(missing.stderr.contains("nosuchuser"), "{}", missing.stderr);
    assert_eq!(run_in(&daemon, &["--workdir", "/made/for/you"], &["pwd"]), "/made/for/you\n");
    assert_eq!(run_in(&daemon, &["--env", "GREETING=hello there"], &["sh", "-c", "echo $GREETING"]), "hello there\n");
    assert_eq!(run_in(&daemon, &["--hostname", "berth-box"], &["hostname"]), "berth-box\n");
    let host_dir = daemon.dir().join("shared");
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("greeting"), "from the host\n").unwrap();
    let ro = format!("{}:/data:ro", host_dir.display());
    assert_eq!(run_in(&daemon, &["-v", &ro], &["cat", "/data/greeting"]), "from the host\n");
    let write = daemon.docker(&["run", "--rm", "-v", &ro, "busybox", "touch", "/data/new"]);
    assert!(write.stderr.contains("Read-only file system"), "{write:?}");
    let rw = format!("{}:/data", host_dir.display());
    run_in(&daemon, &["-v", &rw], &["sh", "-c", "echo back > /data/reply"]);
    assert_eq!(std::fs::read_to_string(host_dir.join("reply")).unwrap(), "back\n");
}

#[test]
fn memory_and_pids_limits_reach_the_cgroup() {
    let daemon = Berthd::start_with_busybox();
    let limit = run_in(&daemon, &["--memory", "64m"], &["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]);
    assert_eq!(limit.trim(), (64u64 << 20).to_string());
    let pids = run_in(&daemon, &["--pids-limit", "50"], &["cat", "/sys/fs/cgroup/pids/pids.max"]);
    assert_eq!(pids.trim(), "50");
}

#[test]
fn fifty_concurrent_runs_and_twenty_racing_creates() {
    let daemon = Berthd::start_with_busybox();
    let names: Vec<String> = (0..50).map(|i| format!("many-{i}")).collect();
    std::thread::scope(|s| {
        let runs: Vec<_> = names
            .iter()
            .map(|name| {
                let daemon = &daemon;
                s.spawn(move || daemon.docker(&["run", "-d", "--name", name, "busybox", "sleep", "300"]))
            })
            .collect();
        for run in runs {
            run.join().unwrap().success();
        }
    });
    let running = daemon.docker(&["ps", "--format", "{{.Names}}"]).success().stdout;
    let mut running: Vec<&str> = running.lines().collect();
    running.sort();
    let mut expected: Vec<&str> = names.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(running, expected);
    let outcomes: Vec<_> = std::thread::scope(|s| {
        let creates: Vec<_> = (0..20)
            .map(|_| {
                let daemon = &daemon;
                s.spawn(move || daemon.docker(&["create", "--name", "contested", "busybox", "true"]))
            })
            .collect();
        creates.into_iter().map(|c| c.join().unwrap()).collect()
    });
    assert_eq!(outcomes.iter().filter(|o| o.code == 0).count(), 1);
    for lost in outcomes.iter().filter(|o| o.code != 0) {
        assert!(lost.stderr.contains("Conflict. The container name \"/contested\" is already in use"), "{}", lost.stderr);
    }
    assert_eq!(daemon.docker(&["ps", "-aq", "--filter", "name=contested"]).success().stdout.lines().count(), 1);
}

#[test]
fn run_by_short_image_id() {
    let daemon = Berthd::start_with_busybox();
    let id = daemon.docker(&["images", "-q", "busybox"]).success().stdout;
    let out = daemon.docker(&["run", "--rm", id.trim(), "echo", "by id"]).success();
    assert_eq!(out.stdout, "by id\n");
}

/// `docker ps -a`'s row for one container name: status, networks, ports.
fn ps_row(daemon: &Berthd, name: &str) -> Option<String> {
    let out = daemon.docker(&["ps", "-a", "--format", "{{.Names}}|{{.Status}}|{{.Networks}}|{{.Ports}}"]).success();
    out.stdout.lines().find(|l| l.split('|').next() == Some(name)).map(str::to_string)
}

/// Whether plain `docker ps` (running only) lists the name.
fn ps_running_has(daemon: &Berthd, name: &str) -> bool {
    daemon.docker(&["ps", "--format", "{{.Names}}"]).success().stdout.lines().any(|l| l == name)
}

/// The listing is served from a rendering shared between requests: every
/// change a summary shows must be in the very next listing (read your
/// writes), while other clients list and change containers at once.
#[test]
fn ps_shows_each_change_right_after_it_from_concurrent_clients() {
    let daemon = Berthd::start_with_busybox();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        // Keeps listings (and so renderings) going between the changes.
        s.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                daemon.docker(&["ps", "-a", "-q"]).success();
            }
        });
        let workers: Vec<_> = (0..3)
            .map(|i| {
                let daemon = &daemon;
                s.spawn(move || {
                    let (first, renamed, net) = (format!("ps-c{i}"), format!("ps-r{i}"), format!("ps-net{i}"));
                    daemon.docker(&["network", "create", &net]).success();
                    daemon.docker(&["run", "-d", "--name", &first, "busybox", "sleep", "300"]).success();
                    let row = ps_row(daemon, &first).expect("listed after run");
                    assert!(row.starts_with(&format!("{first}|Up ")), "{row}");
                    assert!(ps_running_has(daemon, &first));

                    daemon.docker(&["rename", &first, &renamed]).success();
                    assert_eq!(ps_row(daemon, &first), None, "old name still listed");
                    let row = ps_row(daemon, &renamed).expect("listed under the new name");
                    assert!(row.contains("|bridge|"), "{row}");

                    daemon.docker(&["network", "connect", &net, &renamed]).success();
                    let row = ps_row(daemon, &renamed).unwrap();
                    assert!(row.split('|').nth(2).unwrap().split(',').any(|n| n == net), "{row}");
                    daemon.docker(&["network", "disconnect", &net, &renamed]).success();
                    let row = ps_row(daemon, &renamed).unwrap();
                    assert!(!row.split('|').nth(2).unwrap().split(',').any(|n| n == net), "{row}");

                    daemon.docker(&["pause", &renamed]).success();
                    let row = ps_row(daemon, &renamed).unwrap();
                    assert!(row.contains("(Paused)"), "{row}");
                    daemon.docker(&["unpause", &renamed]).success();
                    let row = ps_row(daemon, &renamed).unwrap();
                    assert!(!row.contains("(Paused)") && row.contains("|Up "), "{row}");

                    daemon.docker(&["stop", "-t", "0", &renamed]).success();
                    assert!(!ps_running_has(daemon, &renamed), "stopped container in plain ps");
                    let row = ps_row(daemon, &renamed).unwrap();
                    assert!(row.contains("|Exited (137) "), "{row}");

                    daemon.docker(&["start", &renamed]).success();
                    assert!(ps_running_has(daemon, &renamed), "started container missing from plain ps");

                    daemon.docker(&["rm", "-f", &renamed]).success();
                    assert_eq!(ps_row(daemon, &renamed), None, "removed container still listed");
                    daemon.docker(&["network", "rm", &net]).success();
                })
            })
            .collect();
        let publisher = s.spawn(|| {
            daemon.docker(&["run", "-d", "--name", "ps-pub", "-p", "80", "busybox", "sleep", "300"]).success();
            let row = ps_row(&daemon, "ps-pub").unwrap();
            assert!(row.contains("->80/tcp"), "{row}");
            daemon.docker(&["stop", "-t", "0", "ps-pub"]).success();
            let row = ps_row(&daemon, "ps-pub").unwrap();
            assert!(row.ends_with('|'), "ports still shown after stop: {row}");
        });
        let checker = s.spawn(|| {
            daemon
                .docker(&[
                    "run", "-d", "--name", "ps-health", "--health-cmd", "test -e /tmp/ok", "--health-interval", "200ms",
                    "--health-retries", "1", "busybox", "sleep", "300",
                ])
                .success();
            for want in ["unhealthy", "healthy"] {
                if want == "healthy" {
                    daemon.docker(&["exec", "ps-health", "touch", "/tmp/ok"]).success();
                }
                eventually(30, want, || (daemon.inspect_format("{{.State.Health.Status}}", "ps-health") == want).then_some(()));
                let row = ps_row(&daemon, "ps-health").unwrap();
                assert!(row.contains(&format!("({want})")), "{row}");
            }
        });
        let results: Vec<_> = workers.into_iter().map(|w| w.join()).chain([publisher.join(), checker.join()]).collect();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for r in results {
            if let Err(e) = r {
                std::panic::resume_unwind(e);
            }
        }
    });
}
