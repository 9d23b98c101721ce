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
    daemon.docker(&["exec", "fol", "touch", "/tmp/go"]).success();
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
