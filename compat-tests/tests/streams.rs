//! Streams through the stock CLI: attach with stdin, logs, exec.

use compat_tests::Berthd;

#[test]
fn piped_stdin_reaches_the_container_and_all_output_comes_back() {
    let daemon = Berthd::start_with_busybox();
    let input: String = (0..2000).map(|i| format!("line {i}\n")).collect();
    let out = daemon.docker_stdin(&["run", "-i", "--rm", "busybox", "cat"], input.as_bytes()).success();
    assert_eq!(out.stdout, input);
}

#[test]
fn logs_show_both_streams_tail_and_timestamps() {
    let daemon = Berthd::start_with_busybox();
    daemon
        .docker(&["run", "--name", "talker", "busybox", "sh", "-c", "echo one; echo two >&2; echo three"])
        .success();
    let out = daemon.docker(&["logs", "talker"]).success();
    assert_eq!(out.stdout, "one\nthree\n");
    assert_eq!(out.stderr, "two\n");
    // stdout and stderr are copied concurrently, so which line is last in
    // the log is not fixed; --tail counts lines of both streams.
    let tail = daemon.docker(&["logs", "--tail", "1", "talker"]).success();
    assert_eq!(tail.stdout.lines().count() + tail.stderr.lines().count(), 1, "{tail:?}");
    let only_out = daemon.docker(&["logs", "--tail", "all", "talker"]).success();
    assert_eq!(only_out.stdout, "one\nthree\n");
    // dockerd reads a tail that is not a count (negative, not a number) as
    // "all" (checked against dockerd 20.10).
    let none = daemon.docker(&["logs", "--tail", "0", "talker"]).success();
    assert_eq!((none.stdout.as_str(), none.stderr.as_str()), ("", ""));
    let negative = daemon.docker(&["logs", "--tail", "-1", "talker"]).success();
    assert_eq!(negative.stdout, "one\nthree\n");
    let resp = daemon.request("GET", "/containers/talker/logs?stdout=1&tail=abc", None);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let stamped = daemon.docker(&["logs", "-t", "talker"]).success();
    let first = stamped.stdout.lines().next().unwrap();
    let (time, text) = first.split_once(' ').unwrap();
    assert_eq!(text, "one");
    assert!(time.ends_with('Z') && time.contains('T'), "{time}");
}

#[test]
fn logs_follow_ends_when_the_container_exits() {
    let daemon = Berthd::start_with_busybox();
    daemon
        .docker(&["run", "-d", "--name", "counter", "busybox", "sh", "-c", "for i in 1 2 3 4 5; do echo $i; sleep 0.2; done"])
        .success();
    let out = daemon.docker(&["logs", "-f", "counter"]).success();
    assert_eq!(out.stdout, "1\n2\n3\n4\n5\n");
}

#[test]
fn logs_need_a_stream_and_a_container() {
    let daemon = Berthd::start_with_busybox();
    let out = daemon.docker(&["logs", "nosuch"]).failure();
    assert!(out.stderr.contains("No such container: nosuch"), "{}", out.stderr);
}

#[test]
fn exec_runs_in_the_container_with_exit_codes() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["run", "-d", "--name", "host", "-e", "GREETING=hello", "busybox", "sleep", "300"]).success();
    let out = daemon.docker(&["exec", "host", "sh", "-c", "echo $GREETING; hostname"]).success();
    let mut lines = out.stdout.lines();
    assert_eq!(lines.next(), Some("hello"));
    assert_eq!(lines.next().map(str::len), Some(12));
    let code = daemon.docker(&["exec", "host", "sh", "-c", "echo err >&2; exit 3"]);
    assert_eq!(code.code, 3);
    assert_eq!(code.stderr, "err\n");
    let env = daemon.docker(&["exec", "-e", "GREETING=bye", "-w", "/tmp", "host", "sh", "-c", "echo $GREETING $PWD"]).success();
    assert_eq!(env.stdout, "bye /tmp\n");
    let piped = daemon.docker_stdin(&["exec", "-i", "host", "cat"], b"through exec\n").success();
    assert_eq!(piped.stdout, "through exec\n");
    let missing = daemon.docker(&["exec", "host", "nosuchcommand"]);
    assert_eq!(missing.code, 127, "{missing:?}");
    let detached = daemon.docker(&["exec", "-d", "host", "touch", "/tmp/made-by-exec"]).success();
    assert_eq!(detached.stdout, "");
    let mut made = false;
    for _ in 0..100 {
        if daemon.docker(&["exec", "host", "test", "-f", "/tmp/made-by-exec"]).code == 0 {
            made = true;
            break;
        }
    }
    assert!(made, "detached exec did not run");
}

#[test]
fn exec_in_a_stopped_container_is_refused() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["create", "--name", "idle", "busybox", "true"]).success();
    let out = daemon.docker(&["exec", "idle", "true"]).failure();
    assert!(out.stderr.contains("is not running"), "{}", out.stderr);
}

fn now() -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}

/// Read an attach's output until `needle` shows; panics after 20 s.
async fn read_until(
    output: &mut std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<bollard::container::LogOutput, bollard::errors::Error>> + Send>>,
    needle: &str,
) -> String {
    use futures_util::StreamExt;
    let mut seen = String::new();
    tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while !seen.contains(needle) {
            match output.next().await {
                Some(Ok(chunk)) => seen.push_str(&String::from_utf8_lossy(&chunk.into_bytes())),
                other => panic!("output ended before {needle:?} ({other:?}); saw {seen:?}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {needle:?} in {seen:?}"));
    seen
}

#[test]
fn api_detach_keys_end_the_attach_and_leave_the_container_running() {
    use bollard::query_parameters::AttachContainerOptionsBuilder;
    use futures_util::StreamExt;
    use tokio::io::AsyncWriteExt;
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["run", "-dit", "--name", "tty", "busybox", "sh"]).success();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let docker = daemon.client();
        let opts = AttachContainerOptionsBuilder::default().stdin(true).stdout(true).stream(true).detach_keys("ctrl-x,y").build();
        let mut attached = docker.attach_container("tty", Some(opts)).await.unwrap();
        // What comes before the keys in the same write still reaches the shell.
        attached.input.write_all(b"echo one; echo t\\wo\r\x18y").await.unwrap();
        attached.input.flush().await.unwrap();
        let ended = tokio::time::timeout(std::time::Duration::from_secs(20), async {
            while attached.output.next().await.is_some() {}
        });
        ended.await.expect("the attach did not end at the detach keys");
        // The default keys (ctrl-p ctrl-q) on a new attach, in two writes.
        let opts = AttachContainerOptionsBuilder::default().stdin(true).stdout(true).stream(true).build();
        let mut attached = docker.attach_container("tty", Some(opts)).await.unwrap();
        attached.input.write_all(b"echo three\r").await.unwrap();
        attached.input.flush().await.unwrap();
        read_until(&mut attached.output, "\nthree").await;
        attached.input.write_all(b"\x10").await.unwrap();
        attached.input.flush().await.unwrap();
        attached.input.write_all(b"\x11").await.unwrap();
        attached.input.flush().await.unwrap();
        let ended = tokio::time::timeout(std::time::Duration::from_secs(20), async {
            while attached.output.next().await.is_some() {}
        });
        ended.await.expect("the attach did not end at ctrl-p ctrl-q");
    });
    assert_eq!(daemon.inspect_format("{{.State.Status}}", "tty"), "running");
    let logs = daemon.docker(&["logs", "tty"]).success();
    assert!(logs.stdout.contains("one\r\ntwo\r\n"), "{:?}", logs.stdout);
    let events = daemon
        .docker(&["events", "--since", "0", "--until", &now(), "--filter", "container=tty", "--format", "{{.Action}}"])
        .success();
    assert_eq!(events.stdout.matches("detach\n").count(), 2, "{}", events.stdout);
}

#[test]
fn bad_detach_keys_are_refused_as_dockerd_does() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["run", "-dit", "--name", "tty", "busybox", "sh"]).success();
    let resp = daemon.request("POST", "/containers/tty/attach?stream=1&stdin=1&detachKeys=ctrl-A", None);
    assert_eq!(resp.status, 400);
    assert_eq!(resp.header("Content-Type"), Some("application/vnd.docker.raw-stream"));
    assert_eq!(resp.text(), "Invalid detach keys (ctrl-A) provided\r\n");
    let body = br#"{"Cmd":["sh"],"AttachStdin":true,"Tty":true,"DetachKeys":"ctrl-A"}"#;
    let resp = daemon.request("POST", "/containers/tty/exec", Some(body));
    assert_eq!(resp.status, 500);
    assert_eq!(resp.json()["message"], "Invalid escape keys (ctrl-A) provided");
}
