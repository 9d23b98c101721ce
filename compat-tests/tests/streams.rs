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

/// As dockerd (moby's ReplaceOrAppendEnvValues): `exec -e NAME` with NAME
/// unset on the client unsets it, `NAME=v` replaces in place; a command that
/// cannot start is named once, in runc's words.
#[test]
fn exec_env_names_alone_unset_and_failures_read_as_dockerd() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["run", "-d", "--name", "box", "-e", "B_SWEEP_UNSET=1", "-e", "C=2", "busybox", "sleep", "300"]).success();
    let out = daemon.docker(&["exec", "-e", "B_SWEEP_UNSET", "-e", "C=3", "-e", "D=4", "box", "env"]).success();
    let vars: Vec<&str> = out.stdout.lines().filter(|l| !l.starts_with("HOME=") && !l.starts_with("PATH=") && !l.starts_with("HOSTNAME=")).collect();
    assert_eq!(vars, ["C=3", "D=4"], "{}", out.stdout);
    let missing = daemon.docker(&["exec", "-d", "box", "nosuchcommand"]).failure();
    let words = "Error response from daemon: OCI runtime exec failed: exec failed: unable to start container process: exec: \"nosuchcommand\": executable file not found in $PATH";
    assert!(missing.stderr.contains(words), "{}", missing.stderr);
    assert_eq!(missing.stderr.matches("OCI runtime exec failed").count(), 1, "{}", missing.stderr);
}

#[test]
fn exec_in_a_stopped_container_is_refused() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["create", "--name", "idle", "busybox", "true"]).success();
    let out = daemon.docker(&["exec", "idle", "true"]).failure();
    assert!(out.stderr.contains("is not running"), "{}", out.stderr);
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
        .docker(&["events", "--since", "0", "--until", &compat_tests::now_stamp(), "--filter", "container=tty", "--format", "{{.Action}}"])
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

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::UnixStream>;

/// A websocket on the daemon's socket for `path`, or why the handshake failed.
async fn websocket(daemon: &Berthd, path: &str) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let socket = tokio::net::UnixStream::connect(daemon.host().trim_start_matches("unix://")).await.unwrap();
    tokio_tungstenite::client_async(format!("ws://localhost{path}"), socket).await.map(|(ws, _)| ws)
}

/// Messages until their text contains every needle (or the socket closes,
/// with `None` needles); panics after 20 s.
async fn ws_read_until(ws: &mut Ws, needles: &[&str]) -> (String, Vec<tokio_tungstenite::tungstenite::Message>) {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let mut seen = String::new();
    let mut messages = Vec::new();
    let read = async {
        while needles.is_empty() || !needles.iter().all(|n| seen.contains(n)) {
            match ws.next().await {
                Some(Ok(Message::Close(_))) | None => {
                    assert!(needles.is_empty(), "closed before {needles:?}; saw {seen:?}");
                    return;
                }
                Some(Ok(m)) => {
                    if let Message::Text(_) | Message::Binary(_) = &m {
                        seen.push_str(&String::from_utf8_lossy(&m.clone().into_data()));
                        messages.push(m);
                    }
                }
                Some(Err(e)) => panic!("websocket failed: {e}; saw {seen:?}"),
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), read).await.unwrap_or_else(|_| panic!("no {needles:?} in {seen:?}"));
    (seen, messages)
}

#[test]
fn websocket_attach_carries_raw_output_and_input() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let daemon = Berthd::start_with_busybox();
    let script = "while read l; do echo \"got $l\"; echo \"err $l\" >&2; done";
    daemon.docker(&["run", "-di", "--name", "echo", "busybox", "sh", "-c", script]).success();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        // From API 1.28: binary messages, both streams, no frame headers.
        let mut ws = websocket(&daemon, "/v1.45/containers/echo/attach/ws?stream=1&stdin=1&stdout=1&stderr=1").await.unwrap();
        ws.send(Message::Binary("one\n".into())).await.unwrap();
        let (seen, messages) = ws_read_until(&mut ws, &["got one\n", "err one\n"]).await;
        assert!(messages.iter().all(|m| matches!(m, Message::Binary(_))), "{messages:?}");
        assert!(seen.starts_with("got one\n") || seen.starts_with("err one\n"), "{seen:?}");
        ws.close(None).await.unwrap();
        // Before 1.28: text messages; only the streams asked for.
        let mut ws = websocket(&daemon, "/v1.27/containers/echo/attach/ws?stream=1&stdin=1&stdout=1").await.unwrap();
        ws.send(Message::Text("two\n".into())).await.unwrap();
        ws.send(Message::Text("three\n".into())).await.unwrap();
        let (seen, messages) = ws_read_until(&mut ws, &["got three\n"]).await;
        assert!(messages.iter().all(|m| matches!(m, Message::Text(_))), "{messages:?}");
        assert_eq!(seen, "got two\ngot three\n");
        ws.close(None).await.unwrap();
    });
    // Closing the websocket is not the end of the container's input.
    assert_eq!(daemon.inspect_format("{{.State.Status}}", "echo"), "running");
}

#[test]
fn websocket_attach_to_a_missing_container_is_refused_before_the_handshake() {
    let daemon = Berthd::start();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let refused = rt.block_on(websocket(&daemon, "/containers/nope/attach/ws?stream=1&stdout=1")).err().expect("a websocket to no container");
    let tokio_tungstenite::tungstenite::Error::Http(response) = refused else { panic!("{refused:?}") };
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
    assert_eq!(body["message"], "No such container: nope");
}

#[test]
fn attach_with_logs_replays_the_history_first() {
    use bollard::query_parameters::AttachContainerOptionsBuilder;
    use futures_util::StreamExt;
    use tokio::io::AsyncWriteExt;
    let daemon = Berthd::start_with_busybox();
    let script = "echo first; echo second >&2; while read l; do echo \"got $l\"; done";
    daemon.docker(&["run", "-di", "--name", "talk", "busybox", "sh", "-c", script]).success();
    let mut tries = 0;
    while !daemon.docker(&["logs", "talk"]).stderr.contains("second") {
        tries += 1;
        assert!(tries < 200, "the container did not write its first lines");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let docker = daemon.client();
        // logs=1 without stream: the history in its streams, then the end.
        let opts = AttachContainerOptionsBuilder::default().stdout(true).stderr(true).logs(true).stream(false).build();
        let attached = docker.attach_container("talk", Some(opts)).await.unwrap();
        let all = tokio::time::timeout(std::time::Duration::from_secs(20), attached.output.collect::<Vec<_>>())
            .await
            .expect("a logs-only attach did not end");
        // (The two streams are separate pipes: either may have come first.)
        let mut all: Vec<String> = all.into_iter().map(|o| format!("{:?}", o.unwrap())).collect();
        all.sort();
        assert_eq!(all, ["StdErr { message: b\"second\\n\" }", "StdOut { message: b\"first\\n\" }"]);
        // With stream too: the history, then live output and input.
        let opts = AttachContainerOptionsBuilder::default().stdin(true).stdout(true).logs(true).stream(true).build();
        let mut attached = docker.attach_container("talk", Some(opts)).await.unwrap();
        attached.input.write_all(b"live\n").await.unwrap();
        attached.input.flush().await.unwrap();
        let seen = read_until(&mut attached.output, "got live\n").await;
        assert_eq!(seen, "first\ngot live\n");
        // Over a websocket: the same history, one raw message per line.
        let mut ws = websocket(&daemon, "/containers/talk/attach/ws?logs=1&stdout=1&stderr=1").await.unwrap();
        let (seen, _) = ws_read_until(&mut ws, &[]).await;
        let mut lines: Vec<&str> = seen.lines().collect();
        lines.sort();
        assert_eq!(lines, ["first", "got live", "second"]);
    });
    // A container without a readable log: dockerd's text, then the end.
    daemon.docker(&["run", "-d", "--name", "quiet", "--log-driver", "none", "busybox", "sleep", "1000"]).success();
    let resp = daemon.request("POST", "/containers/quiet/attach?logs=1&stdout=1", None);
    assert_eq!(resp.status, 200);
    assert_eq!(&resp.body[8..], b"Error attaching: configured logging driver does not support reading\n");
}

#[test]
fn logs_since_and_until_are_inclusive_bounds_as_dockerd() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["run", "--name", "clock", "busybox", "sh", "-c", "echo a; sleep 0.2; echo b; sleep 0.2; echo c"]).success();
    let stamped = daemon.docker(&["logs", "-t", "clock"]).success().stdout;
    let times: Vec<&str> = stamped.lines().filter_map(|l| l.split_once(' ').map(|(t, _)| t)).collect();
    assert_eq!(times.len(), 3, "{stamped}");
    let since = daemon.docker(&["logs", "--since", times[1], "clock"]).success();
    assert_eq!(since.stdout, "b\nc\n");
    let until = daemon.docker(&["logs", "--until", times[1], "clock"]).success();
    assert_eq!(until.stdout, "a\nb\n");
    let between = daemon.docker(&["logs", "--since", times[1], "--until", times[1], "clock"]).success();
    assert_eq!(between.stdout, "b\n");
}

/// A TTY container's console goes to its log copier: after berthd is
/// killed and restarted (live-restore), `docker attach` shows new output
/// and its input reaches the shell.
#[test]
fn attach_after_a_daemon_restart_carries_a_tty_containers_output_and_input() {
    use bollard::query_parameters::AttachContainerOptionsBuilder;
    use tokio::io::AsyncWriteExt;
    let live = serde_json::json!({"live-restore": true});
    let mut first = Berthd::builder().daemon_json(live.clone()).start_with_busybox();
    first.docker(&["run", "-dit", "--name", "tty", "busybox", "sh"]).success();
    first.signal(libc::SIGKILL);
    first.stop();
    let second = first.successor(live);
    assert_eq!(second.inspect_format("{{.State.Status}}", "tty"), "running");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let docker = second.client();
        let opts = AttachContainerOptionsBuilder::default().stdin(true).stdout(true).stream(true).build();
        let mut attached = docker.attach_container("tty", Some(opts)).await.unwrap();
        // The echoed input shows the expression, only the shell's answer its value.
        attached.input.write_all(b"echo mark-$((40+2))\r").await.unwrap();
        attached.input.flush().await.unwrap();
        read_until(&mut attached.output, "mark-42").await;
    });
    let logs = second.docker(&["logs", "tty"]).success();
    assert!(logs.stdout.contains("mark-42\r\n"), "{:?}", logs.stdout);
}

/// With stdin and no TTY, berthd's own copier keeps the output while berthd
/// is away; after a restart, `docker attach` feeds stdin and shows output.
#[test]
fn attach_after_a_daemon_restart_feeds_an_open_stdin_container() {
    use bollard::query_parameters::AttachContainerOptionsBuilder;
    use tokio::io::AsyncWriteExt;
    let live = serde_json::json!({"live-restore": true});
    let mut first = Berthd::builder().daemon_json(live.clone()).start_with_busybox();
    first.docker(&["run", "-di", "--name", "cat", "busybox", "cat"]).success();
    first.signal(libc::SIGKILL);
    first.stop();
    let second = first.successor(live);
    assert_eq!(second.inspect_format("{{.State.Status}}", "cat"), "running");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let docker = second.client();
        let opts = AttachContainerOptionsBuilder::default().stdin(true).stdout(true).stream(true).build();
        let mut attached = docker.attach_container("cat", Some(opts)).await.unwrap();
        attached.input.write_all(b"after the restart\n").await.unwrap();
        attached.input.flush().await.unwrap();
        read_until(&mut attached.output, "after the restart\n").await;
    });
    let logs = second.docker(&["logs", "cat"]).success();
    assert_eq!(logs.stdout, "after the restart\n");
}

/// attach logs=1&stream=1 to a container writing all along: each line
/// once, in order, none lost or repeated where the replay meets the live
/// output (dockerd has a gap there).
#[test]
fn attach_with_logs_and_stream_neither_loses_nor_repeats_a_line() {
    use bollard::query_parameters::AttachContainerOptionsBuilder;
    use futures_util::StreamExt;
    let daemon = Berthd::start_with_busybox();
    // A long history first (the replay takes a while), then a line every 2 ms.
    let script = "i=0; while true; do echo n $i; i=$((i+1)); [ $i -gt 5000 ] && usleep 2000; done";
    daemon.docker(&["run", "-d", "--name", "counter", "busybox", "sh", "-c", script]).success();
    compat_tests::eventually(60, "the history", || {
        daemon.docker(&["logs", "--tail", "1", "counter"]).stdout.trim().strip_prefix("n ")?.parse::<u64>().ok().filter(|n| *n > 5000)
    });
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let seen = rt.block_on(async {
        let docker = daemon.client();
        let opts = AttachContainerOptionsBuilder::default().stdout(true).logs(true).stream(true).build();
        let mut attached = docker.attach_container("counter", Some(opts)).await.unwrap();
        let mut text = String::new();
        let enough = async {
            // Well past the end of the history: the live part has begun.
            while text.lines().count() < 5500 {
                let chunk = attached.output.next().await.expect("attach ended").unwrap();
                text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(120), enough).await.expect("the attach stalled");
        text
    });
    let numbers: Vec<u64> = seen.lines().filter_map(|l| l.strip_prefix("n ")?.parse().ok()).collect();
    let gap = numbers.iter().enumerate().find(|(i, n)| **n != *i as u64);
    assert!(gap.is_none(), "first gap or repeat at {gap:?} of {} lines", numbers.len());
}
