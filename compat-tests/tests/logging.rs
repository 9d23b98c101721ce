//! Log drivers through the stock CLI: json-file rotation (max-size,
//! max-file, compress), long lines, `local` and `none`, daemon defaults
//! (log-driver, log-opts), and `docker logs` (-f) across rotations.

use std::path::{Path, PathBuf};

use compat_tests::Berthd;

/// A shell loop printing `line 0` … `line N-1`.
fn print_lines(n: usize) -> String {
    format!("i=0; while [ $i -lt {n} ]; do echo line $i; i=$((i+1)); done")
}

/// The log files next to `log_path` (the live one and the rotated ones).
fn log_files(log_path: &Path) -> Vec<PathBuf> {
    let name = log_path.file_name().unwrap().to_string_lossy().into_owned();
    let mut files: Vec<PathBuf> = std::fs::read_dir(log_path.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(&name))
        .collect();
    files.sort();
    files
}

/// `docker logs` output is a contiguous run of lines ending at `last`.
fn assert_contiguous_tail(stdout: &str, last: usize) -> usize {
    let numbers: Vec<usize> = stdout.lines().map(|l| l.trim_start_matches("line ").parse().unwrap()).collect();
    let first = numbers[0];
    assert_eq!(numbers, (first..=last).collect::<Vec<_>>());
    first
}

#[test]
fn json_file_rotates_and_logs_reads_across_files() {
    let daemon = Berthd::start_with_busybox();
    for compress in ["false", "true"] {
        let name = format!("rot-{compress}");
        let compress_opt = format!("compress={compress}");
        daemon
            .docker(&["run", "--name", &name, "--log-opt", "max-size=1k", "--log-opt", "max-file=3", "--log-opt", &compress_opt,
                      "busybox", "sh", "-c", &print_lines(200)])
            .success();
        let log_path = daemon.docker(&["inspect", "-f", "{{.LogPath}}", &name]).success().stdout;
        let files = log_files(Path::new(log_path.trim()));
        assert_eq!(files.len(), 3, "{files:?}");
        assert_eq!(files.iter().any(|f| f.extension().is_some_and(|e| e == "gz")), compress == "true", "{files:?}");
        let logs = daemon.docker(&["logs", &name]).success();
        let first = assert_contiguous_tail(&logs.stdout, 199);
        assert!(first > 0, "nothing was rotated away");
        let tail = daemon.docker(&["logs", "--tail", "5", &name]).success();
        assert_eq!(tail.stdout, (195..200).map(|i| format!("line {i}\n")).collect::<String>());
    }
}

#[test]
fn follow_crosses_rotations() {
    let daemon = Berthd::start_with_busybox();
    let script = format!("while [ ! -e /tmp/go ]; do sleep 0.1; done; {}", print_lines(300));
    daemon
        .docker(&["run", "-d", "--name", "fol", "--log-opt", "max-size=2k", "--log-opt", "max-file=100", "busybox", "sh", "-c", &script])
        .success();
    let follower = std::process::Command::new(compat_tests::cli::docker_binary())
        .args(["-H", &daemon.host(), "logs", "-f", "fol"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("docker logs -f");
    // Detached: the container exits right after the exec, and (as with
    // dockerd) its exec records go with it, so an attached `docker exec`
    // asking for the exit code afterwards could find none.
    daemon.docker(&["exec", "-d", "fol", "touch", "/tmp/go"]).success();
    let out = follower.wait_with_output().expect("docker logs -f output");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(assert_contiguous_tail(&text, 299), 0);
    let log_path = daemon.docker(&["inspect", "-f", "{{.LogPath}}", "fol"]).success().stdout;
    assert!(log_files(Path::new(log_path.trim())).len() > 2, "the test did not rotate");
}

#[test]
fn long_lines_are_split_into_16k_entries_and_read_back_whole() {
    let daemon = Berthd::start_with_busybox();
    daemon
        .docker(&["run", "--name", "long", "busybox", "sh", "-c", "head -c 40000 /dev/zero | tr '\\0' x; echo"])
        .success();
    let logs = daemon.docker(&["logs", "long"]).success();
    assert_eq!(logs.stdout, format!("{}\n", "x".repeat(40000)));
    let log_path = daemon.docker(&["inspect", "-f", "{{.LogPath}}", "long"]).success().stdout;
    let entries = std::fs::read_to_string(log_path.trim()).unwrap();
    assert_eq!(entries.lines().count(), 3);
}

#[test]
fn daemon_defaults_local_driver_and_none() {
    let daemon = Berthd::builder()
        .daemon_json(serde_json::json!({"log-driver": "local", "log-opts": {"max-size": "10m"}}))
        .start_with_busybox();
    daemon.docker(&["run", "--name", "loc", "busybox", "echo", "kept locally"]).success();
    let config = daemon.docker(&["inspect", "-f", "{{json .HostConfig.LogConfig}} [{{.LogPath}}]", "loc"]).success();
    assert_eq!(config.stdout.trim(), r#"{"Type":"local","Config":{"max-size":"10m"}} []"#);
    assert_eq!(daemon.docker(&["logs", "loc"]).success().stdout, "kept locally\n");
    // Another driver does not take the daemon's options.
    daemon.docker(&["create", "--name", "js", "--log-driver", "json-file", "busybox"]).success();
    let js = daemon.docker(&["inspect", "-f", "{{json .HostConfig.LogConfig}}", "js"]).success();
    assert_eq!(js.stdout.trim(), r#"{"Type":"json-file","Config":{}}"#);
    // `none` keeps nothing, but an attached run still shows the output.
    let run = daemon.docker(&["run", "--name", "quiet", "--log-driver", "none", "busybox", "echo", "hi"]).success();
    assert_eq!(run.stdout, "hi\n");
    let refused = daemon.docker(&["logs", "quiet"]).failure();
    assert!(refused.stderr.contains("configured logging driver does not support reading"), "{}", refused.stderr);
}

#[test]
fn bad_log_configs_are_refused_and_create_nothing() {
    let daemon = Berthd::start_with_busybox();
    for (args, message) in [
        (vec!["--log-driver", "foo"], "error looking up logging plugin foo: plugin \"foo\" not found"),
        (vec!["--log-opt", "foo=bar"], "unknown log opt 'foo' for json-file log driver"),
        (vec!["--log-opt", "max-size=abc"], "failed to initialize logging driver: invalid size: 'abc'"),
        (vec!["--log-opt", "max-size=1k", "--log-opt", "compress=maybe"],
         "failed to initialize logging driver: strconv.ParseBool: parsing \"maybe\": invalid syntax"),
    ] {
        let mut cmd = vec!["create"];
        cmd.extend(args);
        cmd.push("busybox");
        let out = daemon.docker(&cmd).failure();
        assert!(out.stderr.contains(message), "{cmd:?}: {}", out.stderr);
    }
    assert_eq!(daemon.docker(&["ps", "-aq"]).success().stdout, "");
    let bad = Berthd::builder().daemon_json(serde_json::json!({"log-driver": "nope"})).run_to_exit();
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("error looking up logging plugin nope"), "{}", bad.stderr);
}

#[test]
fn json_file_attrs_from_labels_env_and_tag_as_dockerd_writes_them() {
    let daemon = Berthd::start_with_busybox();
    daemon
        .docker(&[
            "run", "--name", "la", "--label", "a=1", "--label", "b=2", "--label", "zz=9", "-e", "FOO=bar", "-e", "FOX=y",
            "-e", "X=z", "--log-opt", "labels=a,zz,missing", "--log-opt", "env=FOO,NOPE", "--log-opt", "env-regex=^FO",
            "--log-opt", "tag={{.Name}}/{{.ImageName}}/{{.DaemonName}}", "busybox", "echo", "hi",
        ])
        .success();
    let log_path = daemon.inspect_format("{{.LogPath}}", "la");
    let stored = std::fs::read_to_string(&log_path).unwrap();
    let (head, time) = stored.trim_end().rsplit_once(",\"time\":").unwrap();
    assert_eq!(
        head,
        r#"{"log":"hi\n","stream":"stdout","attrs":{"FOO":"bar","FOX":"y","a":"1","tag":"la/busybox/docker","zz":"9"}"#
    );
    // Go's RFC 3339 with nanoseconds: trailing zeros dropped.
    assert!(time.starts_with('"') && time.ends_with("Z\"}") && !time.ends_with("0Z\"}"), "{time}");
    let details = daemon.docker(&["logs", "--details", "la"]).success();
    assert_eq!(details.stdout, "FOO=bar,FOX=y,a=1,tag=la%2Fbusybox%2Fdocker,zz=9 hi\n");
    // Timestamps come first, always with nine digits.
    let both = daemon.docker(&["logs", "--details", "-t", "la"]).success();
    let (stamp, rest) = both.stdout.split_once(' ').unwrap();
    assert_eq!(rest, "FOO=bar,FOX=y,a=1,tag=la%2Fbusybox%2Fdocker,zz=9 hi\n");
    assert_eq!(stamp.len(), "2026-01-01T00:00:00.000000000Z".len(), "{stamp}");
    // labels-regex, and no attrs at all without the options.
    daemon.docker(&["run", "--name", "lr", "--label", "app=x", "--log-opt", "labels-regex=^ap", "busybox", "echo", "x"]).success();
    let stored = std::fs::read_to_string(daemon.inspect_format("{{.LogPath}}", "lr")).unwrap();
    assert!(stored.starts_with(r#"{"log":"x\n","stream":"stdout","attrs":{"app":"x"},"time":""#), "{stored}");
}

#[test]
fn json_file_escapes_bytes_as_dockerd() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["run", "--name", "esc", "busybox", "printf", "<a&b> \"q\" \\\\ \\t \\001 \\377\\376 \u{e9}\\n"]).success();
    let stored = std::fs::read_to_string(daemon.inspect_format("{{.LogPath}}", "esc")).unwrap();
    assert!(
        stored.starts_with(r#"{"log":"\u003ca\u0026b\u003e \"q\" \\ \u0009 \u0001 \ufffd\ufffd é\n","stream":"stdout","time":""#),
        "{stored}"
    );
}

#[test]
fn a_bad_tag_or_regexp_fails_the_start_as_dockerd() {
    let daemon = Berthd::start_with_busybox();
    let out = daemon.docker(&["run", "--name", "badtag", "--log-opt", "tag={{.Nope}}", "busybox", "true"]).failure();
    assert!(
        out.stderr.contains(
            "failed to initialize logging driver: template: log-tag:1:2: executing \"log-tag\" at <.Nope>: can't evaluate field Nope in type *logger.Info"
        ),
        "{}",
        out.stderr
    );
    // As dockerd: the container was created, only its start failed.
    assert_eq!(daemon.inspect_format("{{.State.Status}}", "badtag"), "created");
    let out = daemon.docker(&["run", "--log-opt", "env-regex=(", "busybox", "true"]).failure();
    assert!(out.stderr.contains("failed to initialize logging driver: error parsing regexp: missing closing ): `(`"), "{}", out.stderr);
}

/// The counters of `n <i> …` lines in a container's `docker logs`.
fn counters(daemon: &Berthd, name: &str) -> Vec<u64> {
    let logs = daemon.docker(&["logs", name]).success().stdout;
    logs.lines().filter_map(|l| l.strip_prefix("n ")?.split(' ').next()?.parse().ok()).collect()
}

#[test]
fn output_is_logged_while_the_daemon_is_down_and_the_writer_never_blocks() {
    logged_while_the_daemon_is_down(&[]);
}

/// With a TTY, the shim copies the console to the log copier.
#[test]
fn tty_output_is_logged_while_the_daemon_is_down_and_the_writer_never_blocks() {
    logged_while_the_daemon_is_down(&["-t"]);
}

/// With stdin and no TTY, berthd starts the copier on the task's FIFOs.
#[test]
fn open_stdin_output_is_logged_while_the_daemon_is_down_and_the_writer_never_blocks() {
    logged_while_the_daemon_is_down(&["-i"]);
}

/// `docker run -d -t|-i …` writing a counter; berthd killed -9 (live-restore),
/// far more than a pipe holds written while it is down, then restarted:
/// every line once in `docker logs`, and the live view is back.
fn logged_while_the_daemon_is_down(flags: &[&str]) {
    use std::time::Duration;
    let live = serde_json::json!({"live-restore": true});
    let mut first = Berthd::builder().daemon_json(live.clone()).start_with_busybox();
    let trigger = tempfile::tempdir().unwrap();
    let volume = format!("{}:/t", trigger.path().display());
    // One counter throughout: slow lines, then (on /t/go) a burst of 4000
    // lines of 1 KiB, far more than a pipe holds, then slow lines again.
    let script = "i=0; pad=x; for k in 1 2 3 4 5 6 7 8 9 10; do pad=$pad$pad; done; \
                  emit() { echo \"n $i $1\"; i=$((i+1)); }; \
                  while [ ! -e /t/go ]; do emit; sleep 0.05; done; \
                  j=0; while [ $j -lt 4000 ]; do emit $pad; j=$((j+1)); done; touch /t/done; \
                  while true; do emit; sleep 0.05; done";
    let mut args = vec!["run", "-d", "--name", "writer", "-v", &volume];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["busybox", "sh", "-c", script]);
    first.docker(&args).success();
    compat_tests::eventually(20, "the first lines", || (counters(&first, "writer").len() > 5).then_some(()));
    first.signal(libc::SIGKILL);
    first.stop();
    // With no daemon at all, the burst goes through: nothing waits on berthd.
    std::fs::write(trigger.path().join("go"), "").unwrap();
    compat_tests::eventually(60, "the burst to be written with berthd down", || trigger.path().join("done").exists().then_some(()));
    let second = first.successor(live);
    assert_eq!(second.inspect_format("{{.State.Status}}", "writer"), "running");
    let numbers = compat_tests::eventually(30, "lines after the burst", || {
        let numbers = counters(&second, "writer");
        (numbers.len() > 4000 + 30).then_some(numbers)
    });
    // Every line once, in order, across the gap.
    let gap = numbers.iter().enumerate().find(|(i, n)| **n != *i as u64);
    assert!(gap.is_none(), "first gap or duplicate at {gap:?} of {} lines", numbers.len());
    // The live view is back: an attach sees new lines (chunks need not
    // start at a line with a TTY, so read until a whole one came).
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use bollard::query_parameters::AttachContainerOptionsBuilder;
        use futures_util::StreamExt;
        let opts = AttachContainerOptionsBuilder::default().stdout(true).stream(true).build();
        let mut attached = second.client().attach_container("writer", Some(opts)).await.unwrap();
        let mut seen = String::new();
        let whole_line = async {
            while !seen.contains("\nn ") {
                let chunk = attached.output.next().await.expect("attach ended").unwrap();
                seen.push_str(&chunk.to_string());
            }
        };
        tokio::time::timeout(Duration::from_secs(20), whole_line).await.expect("no live output after the restart");
    });
}

/// dockerd takes `mode` and `max-buffer-size` for every driver (its
/// built-in log options) and checks them first; a refused one creates
/// nothing, an accepted one logs as before.
#[test]
fn delivery_mode_options_are_taken_and_checked_as_dockerd_does() {
    let daemon = Berthd::start_with_busybox();
    let cases: [(&[&str], &str); 3] = [
        (&["--log-opt", "mode=bogus"], "logger: logging mode not supported: bogus"),
        (&["--log-opt", "max-buffer-size=1m"], "logger: max-buffer-size option is only supported with 'mode=non-blocking'"),
        (&["--log-opt", "mode=non-blocking", "--log-opt", "max-buffer-size=x"], "error parsing option max-buffer-size: invalid size: 'x'"),
    ];
    for (flags, words) in cases {
        let out = daemon.docker(&[&["create"], flags, &["busybox", "true"]].concat()).failure();
        assert!(out.stderr.contains(&format!("Error response from daemon: {words}")), "{flags:?}: {}", out.stderr);
    }
    assert_eq!(daemon.docker(&["ps", "-aq"]).success().stdout.trim(), "");
    let nb = ["--log-opt", "mode=non-blocking", "--log-opt", "max-buffer-size=1m"];
    daemon.docker(&[&["run", "--name", "nb"], &nb[..], &["busybox", "echo", "kept"]].concat()).success();
    assert_eq!(daemon.docker(&["logs", "nb"]).success().stdout, "kept\n");
    daemon.docker(&[&["create", "--log-driver", "local"], &nb[..], &["busybox", "true"]].concat()).success();
}
