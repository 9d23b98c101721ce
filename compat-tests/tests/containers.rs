//! Containers through the stock CLI: create, start, run, stop, kill, wait,
//! rm, ps, inspect.

use compat_tests::images::BusyboxImage;
use compat_tests::Berthd;

/// A daemon with `busybox:latest` loaded.
fn daemon_with_busybox() -> Berthd {
    let daemon = Berthd::start();
    let archive = BusyboxImage::new("busybox:latest").build().unwrap().docker_archive().unwrap();
    daemon.docker_stdin(&["load"], &archive).success();
    daemon
}

#[test]
fn run_prints_output_and_exits_zero() {
    let daemon = daemon_with_busybox();
    let out = daemon.docker(&["run", "--rm", "busybox", "echo", "hello from berthd"]).success();
    assert_eq!(out.stdout, "hello from berthd\n");
}

#[test]
fn run_rm_keeps_the_exit_status_and_leaves_no_container() {
    let daemon = daemon_with_busybox();
    let out = daemon.docker(&["run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 7"]);
    assert_eq!(out.code, 7, "{out:?}");
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.stderr, "err\n");
    let ps = daemon.docker(&["ps", "-aq"]).success();
    assert_eq!(ps.stdout, "");
}

#[test]
fn missing_command_exits_127_with_dockerd_text() {
    let daemon = daemon_with_busybox();
    let out = daemon.docker(&["run", "--rm", "busybox", "nosuchcommand"]);
    assert_eq!(out.code, 127, "{out:?}");
    assert!(out.stderr.contains("executable file not found"), "{}", out.stderr);
}

#[test]
fn detached_container_lifecycle() {
    let daemon = daemon_with_busybox();
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

#[test]
fn duplicate_names_conflict() {
    let daemon = daemon_with_busybox();
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
    let daemon = daemon_with_busybox();
    let script = "trap 'exit 3' TERM; echo ready; while true; do sleep 0.1; done";
    daemon.docker(&["run", "-d", "--name", "polite", "busybox", "sh", "-c", script]).success();
    daemon.docker(&["stop", "polite"]).success();
    let state = daemon.docker(&["inspect", "-f", "{{.State.ExitCode}}", "polite"]).success();
    assert_eq!(state.stdout.trim(), "3");
    let again = daemon.docker(&["start", "polite"]).success();
    assert_eq!(again.stdout.trim(), "polite");
}

#[test]
fn ps_filters_and_inspect_shape() {
    let daemon = daemon_with_busybox();
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
    let daemon = daemon_with_busybox();
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
