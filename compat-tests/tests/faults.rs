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
    // An exec cannot start: as dockerd, the connection is hijacked and the
    // error comes down the exec's own stream (stdout), exit code 126;
    // detached, it is the request's error.
    let (host, config) = (daemon.host(), daemon.dir().join("docker-config"));
    let exec = within(60, "docker exec", move || {
        let attached = compat_tests::cli::docker(&host, &config, &["exec", "keeps", "echo", "hi"], None);
        let detached = compat_tests::cli::docker(&host, &config, &["exec", "-d", "keeps", "true"], None);
        (attached, detached)
    });
    let (attached, detached) = exec;
    assert_eq!(attached.code, 126, "{attached:?}");
    assert!(attached.stdout.contains("containerd"), "{attached:?}");
    assert_eq!(attached.stderr, "", "{attached:?}");
    assert_eq!(detached.code, 1, "{detached:?}");
    assert!(detached.stderr.contains("Error response from daemon") && detached.stderr.contains("containerd"), "{detached:?}");
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
}

#[test]
fn an_exec_start_that_fails_says_why_in_its_stream_as_dockerd() {
    use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
    use futures_util::StreamExt;
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["run", "-d", "--name", "box", "busybox", "sleep", "300"]).success();
    // A command that is not there: the reason on stdout, 127.
    let missing = daemon.docker(&["exec", "box", "nosuchcommand"]);
    assert_eq!(missing.code, 127, "{missing:?}");
    assert!(missing.stdout.contains("OCI runtime exec failed") && missing.stdout.contains("nosuchcommand"), "{missing:?}");
    assert_eq!(missing.stderr, "", "{missing:?}");
    let detached = daemon.docker(&["exec", "-d", "box", "nosuchcommand"]);
    assert!(detached.code != 0 && detached.stderr.contains("Error response from daemon: OCI runtime exec failed"), "{detached:?}");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let docker = daemon.client();
        let opts = CreateExecOptions { cmd: Some(vec!["sleep", "300"]), attach_stdout: Some(true), attach_stderr: Some(true), ..Default::default() };
        let id = docker.create_exec("box", opts).await.unwrap().id;
        let detach = StartExecOptions { detach: true, ..Default::default() };
        assert!(matches!(docker.start_exec(&id, Some(detach.clone())).await.unwrap(), StartExecResults::Detached));
        // Started twice, attached: hijacked, and the conflict in the stream.
        let StartExecResults::Attached { mut output, .. } = docker.start_exec(&id, None).await.unwrap() else {
            panic!("an attached start answered detached")
        };
        let mut said = String::new();
        while let Some(Ok(chunk)) = output.next().await {
            said.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        assert_eq!(said, format!("Error: Exec command {id} is already running\r\n"));
        // Detached, the conflict is the answer; the exec runs on untouched.
        let err = docker.start_exec(&id, Some(detach)).await.err().expect("a second detached start succeeded");
        assert!(matches!(err, bollard::errors::Error::DockerResponseServerError { status_code: 409, .. }), "{err:?}");
        let inspect = docker.inspect_exec(&id).await.unwrap();
        assert_eq!((inspect.running, inspect.exit_code), (Some(true), None));
    });
}

/// An exec request on the socket: (status, JSON answer).
fn exec_call(daemon: &Berthd, method: &str, path: &str, body: Option<&str>) -> (u16, serde_json::Value) {
    let socket = std::path::PathBuf::from(daemon.host().trim_start_matches("unix://"));
    let headers: &[(&str, &str)] = if body.is_some() { &[("Content-Type", "application/json")] } else { &[] };
    let resp = compat_tests::client::raw_request(&socket, method, path, headers, body.map(str::as_bytes));
    (resp.status, serde_json::from_slice(&resp.body).unwrap_or(serde_json::Value::Null))
}

#[test]
fn execs_of_a_container_that_stopped_are_gone_as_in_dockerd() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["run", "-d", "--name", "box", "busybox", "sleep", "300"]).success();
    let create = |cmd: &str| {
        let body = format!(r#"{{"Cmd":["sh","-c","{cmd}"],"AttachStdout":true}}"#);
        let (status, v) = exec_call(&daemon, "POST", "/v1.51/containers/box/exec", Some(&body));
        assert_eq!(status, 201, "{v}");
        v["Id"].as_str().unwrap().to_string()
    };
    let start = |id: &str| exec_call(&daemon, "POST", &format!("/v1.51/exec/{id}/start"), Some(r#"{"Detach":true}"#));
    let inspect = |id: &str| exec_call(&daemon, "GET", &format!("/v1.51/exec/{id}/json"), None);
    // One still running, one finished, one never started.
    let running = create("sleep 300");
    assert_eq!(start(&running).0, 200);
    let finished = create("true");
    assert_eq!(start(&finished).0, 200);
    eventually(30, "the finished exec's exit code", || (inspect(&finished).1["ExitCode"] == 0).then_some(()));
    let waiting = create("true");

    daemon.docker(&["kill", "box"]).success();
    assert_eq!(daemon.docker(&["wait", "box"]).success().stdout.trim(), "137");
    // dockerd forgets a container's execs when it stops: 404, not 409.
    let (status, v) = start(&waiting);
    assert_eq!((status, v["message"].as_str().unwrap_or_default()), (404, &*format!("No such exec instance: {waiting}")));
    for id in [&running, &finished, &waiting] {
        let (status, v) = inspect(id);
        assert_eq!((status, v["message"].as_str().unwrap_or_default()), (404, &*format!("No such exec instance: {id}")));
    }
    let (status, _) = exec_call(&daemon, "POST", &format!("/v1.51/exec/{running}/resize?h=10&w=10"), None);
    assert_eq!(status, 404);
    // Started again, the container takes new execs.
    daemon.docker(&["start", "box"]).success();
    assert_eq!(daemon.docker(&["exec", "box", "echo", "again"]).success().stdout, "again\n");
}

/// A small tmpfs mounted for one test, unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    #[track_caller]
    fn mount(size: &str) -> Self {
        let dir = tempfile::Builder::new().prefix("berth-disk-").tempdir().expect("tempdir");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount");
        assert!(status.success(), "mounting a {size} tmpfs failed");
        Self { dir }
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Write a filler file until the filesystem is full.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).expect("filler");
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        // Small writes may still fit in the last partial page.
        while file.write_all(&block[..512]).is_ok() {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// Files a crash-safe write left behind (`.name.<uuid>.tmp`).
fn temporary_files(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = vec![];
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(path);
            } else if path.file_name().is_some_and(|n| n.to_string_lossy().ends_with(".tmp")) {
                found.push(path);
            }
        }
    }
    found
}

/// `docker logs NAME` as lines; every one must be a whole `lineN`.
#[track_caller]
fn counted_lines(daemon: &Berthd, name: &str) -> Vec<u64> {
    let out = daemon.docker(&["logs", name]).success();
    out.stdout
        .lines()
        .map(|l| {
            l.strip_prefix("line")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("a torn or foreign log line {l:?} in:\n{}", out.stdout))
        })
        .collect()
}

#[test]
fn a_full_data_root_fails_writes_clearly_corrupts_nothing_and_recovers() {
    let disk = SmallDisk::mount("24m");
    let data_root = disk.path().join("data");
    let daemon = Berthd::builder().args(["--data-root", &data_root.display().to_string()]).start_with_busybox();
    daemon.docker(&["create", "--name", "before", "busybox", "sleep", "1000"]).success();
    daemon.docker(&["volume", "create", "kept"]).success();
    daemon
        .docker(&["run", "--rm", "-v", "kept:/v", "busybox", "sh", "-c", "echo stored > /v/file"])
        .success();
    daemon
        .docker(&[
            "run", "-d", "--name", "logger", "busybox", "sh", "-c",
            "i=0; while true; do i=$((i+1)); echo line$i; sleep 0.02; done",
        ])
        .success();
    eventually(30, "the logger's first lines", || (counted_lines(&daemon, "logger").len() > 5).then_some(()));
    let containers_before = compat_tests::containerd::container_ids(&daemon.namespace).len();

    let filler = disk.fill();

    // Metadata writes fail with the OS's words and change nothing.
    let out = daemon.docker(&["create", "--name", "new", "busybox", "true"]);
    println!("create on a full disk: {}", out.stderr.trim());
    assert_ne!(out.code, 0);
    assert!(out.stderr.to_lowercase().contains("no space left on device"), "{}", out.stderr);
    let out = daemon.docker(&["ps", "-a", "--filter", "name=new", "-q"]).success();
    assert_eq!(out.stdout.trim(), "", "a failed create left a container");
    assert_eq!(compat_tests::containerd::container_ids(&daemon.namespace).len(), containers_before);
    let out = daemon.docker(&["rename", "before", "after"]);
    println!("rename on a full disk: {}", out.stderr.trim());
    assert_ne!(out.code, 0);
    assert!(out.stderr.to_lowercase().contains("no space left on device"), "{}", out.stderr);
    assert_eq!(daemon.inspect_format("{{.Name}}", "before"), "/before");
    let out = daemon.docker(&["volume", "create", "refused"]);
    println!("volume create on a full disk: {}", out.stderr.trim());
    assert_ne!(out.code, 0);
    assert!(out.stderr.to_lowercase().contains("no space left on device"), "{}", out.stderr);
    let out = daemon.docker(&["volume", "ls", "-q"]).success();
    assert!(!out.stdout.contains("refused"), "{}", out.stdout);
    // Starting needs files under the data-root: all or nothing.
    let out = daemon.docker(&["start", "before"]);
    println!("start on a full disk: code {} {}", out.code, out.stderr.trim());
    if out.code != 0 {
        assert!(out.stderr.to_lowercase().contains("no space left on device"), "{}", out.stderr);
        assert_eq!(daemon.inspect_format("{{.State.Status}}", "before"), "created");
    } else {
        assert_eq!(daemon.inspect_format("{{.State.Status}}", "before"), "running");
    }
    // The daemon itself keeps serving, and the logger keeps running.
    daemon.docker(&["ps"]).success();
    assert_eq!(daemon.inspect_format("{{.State.Status}}", "logger"), "running");
    let during = counted_lines(&daemon, "logger");
    assert!(temporary_files(&data_root).is_empty(), "{:?}", temporary_files(&data_root));

    std::fs::remove_file(filler).expect("freeing space");

    // Writes work again; logging resumes with whole lines only.
    let resumed = eventually(30, "log lines after space returned", || {
        let now = counted_lines(&daemon, "logger");
        (now.len() > during.len() + 5).then_some(now)
    });
    assert!(resumed.windows(2).all(|w| w[0] < w[1]), "log lines out of order or repeated");
    let lost = resumed.last().unwrap() - resumed.len() as u64;
    println!("logger: {} lines kept, {lost} dropped while the disk was full", resumed.len());
    daemon.docker(&["create", "--name", "new", "busybox", "true"]).success();
    daemon.docker(&["rename", "before", "after"]).success();
    // A start refused for lack of space left no address or endpoint taken.
    daemon.docker(&["start", "after"]).success();
    assert_eq!(daemon.inspect_format("{{.State.Status}}", "after"), "running");
    assert!(!daemon.inspect_format("{{.NetworkSettings.IPAddress}}", "after").is_empty());
    daemon.docker(&["rm", "-f", "after"]).success();
    daemon.docker(&["volume", "create", "refused"]).success();
    let out = daemon.docker(&["run", "--rm", "-v", "kept:/v", "busybox", "cat", "/v/file"]).success();
    assert_eq!(out.stdout.trim(), "stored");

    // Nothing stored was corrupted: a fresh daemon on the same data-root
    // reads every record.
    drop(daemon.docker(&["stop", "-t", "1", "logger"]));
    let mut daemon = daemon;
    daemon.stop();
    let next = daemon.successor(serde_json::json!({}));
    let out = next.docker(&["ps", "-a", "--format", "{{.Names}}"]).success();
    let mut names: Vec<&str> = out.stdout.lines().collect();
    names.sort();
    assert_eq!(names, ["logger", "new"]);
    let out = next.docker(&["volume", "ls", "-q"]).success();
    let mut volumes: Vec<&str> = out.stdout.lines().collect();
    volumes.sort();
    assert_eq!(volumes, ["kept", "refused"]);
    assert_eq!(counted_lines(&next, "logger").len(), counted_lines(&next, "logger").len());
    assert!(temporary_files(&data_root).is_empty(), "{:?}", temporary_files(&data_root));
}

/// `docker build -t TAG DIR` with the classic builder.
fn classic_build(daemon: &Berthd, dir: &std::path::Path, tag: &str) -> compat_tests::CmdOutput {
    let mut cmd = std::process::Command::new(compat_tests::cli::docker_binary());
    cmd.args(["build", "-t", tag])
        .arg(dir)
        .env("DOCKER_HOST", daemon.host())
        .env("DOCKER_CONFIG", daemon.dir().join("docker-config"))
        .env("DOCKER_BUILDKIT", "0")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_API_VERSION");
    compat_tests::cli::run_piped(cmd, None)
}

#[test]
fn a_full_containerd_root_fails_pulls_clearly_and_recovers() {
    let registry = compat_tests::registry::Registry::start().expect("registry");
    let big = compat_tests::images::BusyboxImage::new("berth/big:v1")
        .layer_with_random_file("/big", 6 * 1024 * 1024, 7)
        .build()
        .expect("building the big image");
    registry.push_oci(&big, "berth/big", "v1").expect("push");
    let reference = registry.reference("berth/big", "v1");
    let disk = SmallDisk::mount("40m");
    let ctd = PrivateContainerd::start_on(&disk.path().join("containerd"));
    let daemon = Berthd::builder()
        .containerd(&ctd.socket())
        .args(["--data-root", &disk.path().join("data").display().to_string()])
        .start_with_busybox();
    daemon.reach_host_port(registry.port());
    let images_before = daemon.docker(&["images", "-q", "--no-trunc"]).success().stdout;

    let filler = disk.fill();

    let out = daemon.docker(&["pull", &reference]);
    println!("pull on a full disk: code {} {}", out.code, out.stderr.trim());
    assert_ne!(out.code, 0);
    assert!(out.stderr.to_lowercase().contains("no space left on device"), "{}", out.stderr);
    assert_eq!(daemon.docker(&["images", "-q", "--no-trunc"]).success().stdout, images_before);
    let leases = compat_tests::containerd::ctr_lines_at(&ctd.socket(), &daemon.namespace, &["leases", "ls", "-q"]);
    assert_eq!(leases, Vec::<String>::new(), "the failed pull left leases");
    // containerd's metadata database may still have room for a tag (bolt
    // preallocates); either way the answer is whole.
    let out = daemon.docker(&["tag", "busybox", "busybox:copy"]);
    println!("tag on a full disk: code {} {}", out.code, out.stderr.trim());
    let tagged = out.code == 0;
    let context = tempfile::tempdir().expect("context");
    std::fs::write(context.path().join("Dockerfile"), "FROM busybox\nRUN head -c 2000000 /dev/urandom > /blob\n").unwrap();
    let out = classic_build(&daemon, context.path(), "built:v1");
    println!("build on a full disk: code {} {}", out.code, out.stderr.trim());
    assert_ne!(out.code, 0);
    assert!(out.stderr.to_lowercase().contains("no space left on device"), "{}", out.stderr);
    daemon.docker(&["ps"]).success();

    std::fs::remove_file(filler).expect("freeing space");

    // What was stored before still works, and the pull now succeeds whole.
    let out = daemon.docker(&["run", "--rm", "busybox", "echo", "still here"]).success();
    assert_eq!(out.stdout.trim(), "still here");
    daemon.docker(&["pull", &reference]).success();
    let out = daemon.docker(&["run", "--rm", &reference, "sh", "-c", "wc -c < /big"]).success();
    assert_eq!(out.stdout.trim(), (6 * 1024 * 1024).to_string());
    daemon.docker(&["rmi", &reference]).success();
    classic_build(&daemon, context.path(), "built:v1").success();
    daemon.docker(&["rmi", "built:v1"]).success();
    if tagged {
        daemon.docker(&["rmi", "busybox:copy"]).success();
    }
    assert_eq!(daemon.docker(&["images", "-q", "--no-trunc"]).success().stdout, images_before);
}

/// A streaming request on its own connection; the answer is left unread.
fn open_stream(socket: &std::path::Path, path: &str) -> std::os::unix::net::UnixStream {
    use std::io::Write;
    let mut stream = std::os::unix::net::UnixStream::connect(socket).expect("connect");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: berth-compat-tests\r\n\r\n").expect("request");
    stream
}

/// Read `stream` until `stop`, counting bytes; returns the count.
fn drain(
    mut stream: std::os::unix::net::UnixStream,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    use std::io::Read;
    use std::sync::atomic::Ordering;
    std::thread::spawn(move || {
        stream.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        while !stop.load(Ordering::Relaxed) {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => total += n as u64,
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => break,
            }
        }
        total
    })
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// `n` timed `GET /containers/json`, one connection each.
fn list_containers(socket: &std::path::Path, n: usize) -> Vec<Duration> {
    (0..n)
        .map(|_| {
            let start = Instant::now();
            let resp = compat_tests::client::raw_request(socket, "GET", "/containers/json?all=1", &[], None);
            assert_eq!(resp.status, 200, "{}", resp.text());
            start.elapsed()
        })
        .collect()
}

#[test]
fn load_with_a_stalled_reader_keeps_serving_in_bounded_memory() {
    use std::io::Read;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;

    let daemon = Berthd::start_with_busybox();
    let pid = daemon.pid().expect("berthd pid");
    // One loud container (about 4 MB/s of output, rotated so the disk
    // stays small) and a few chatty ones.
    daemon
        .docker(&[
            "run", "-d", "--name", "loud", "--log-opt", "max-size=4m", "--log-opt", "max-file=2", "busybox", "sh",
            "-c", "while true; do head -c 400000 /dev/zero | tr '\\0' a; echo; sleep 0.1; done",
        ])
        .success();
    for i in 0..4 {
        let name = format!("chatty{i}");
        daemon
            .docker(&["run", "-d", "--name", &name, "busybox", "sh", "-c", "while true; do date; sleep 0.2; done"])
            .success();
    }
    let socket = daemon.socket.clone();
    let idle = {
        let mut t = list_containers(&socket, 50);
        t.sort();
        t
    };
    let rss_before = rss_kib(pid);

    // The stalled readers: they ask and never read.
    let stalled_logs = open_stream(&socket, "/containers/loud/logs?follow=1&stdout=1&stderr=1");
    let stalled_events = open_stream(&socket, "/events");

    // 50 streams that do read.
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = vec![];
    for i in 0..20 {
        let name = if i == 0 { "loud".to_string() } else { format!("chatty{}", i % 4) };
        let path = format!("/containers/{name}/logs?follow=1&stdout=1&stderr=1&tail=10");
        readers.push(("logs", drain(open_stream(&socket, &path), stop.clone())));
    }
    for _ in 0..15 {
        readers.push(("events", drain(open_stream(&socket, "/events"), stop.clone())));
    }
    for i in 0..15 {
        let path = format!("/containers/chatty{}/stats?stream=1", i % 4);
        readers.push(("stats", drain(open_stream(&socket, &path), stop.clone())));
    }

    // Memory while it all runs.
    let peak = Arc::new(AtomicU64::new(rss_before));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    // Events for the event streams meanwhile.
    let churn = {
        let socket = socket.clone();
        std::thread::spawn(move || {
            for i in 0..20 {
                let body = br#"{"Image":"busybox","Cmd":["true"]}"#;
                let name = format!("/containers/create?name=churn{i}");
                let resp = compat_tests::client::raw_request(&socket, "POST", &name, &[], Some(body));
                assert_eq!(resp.status, 201, "{}", resp.text());
                let resp = compat_tests::client::raw_request(&socket, "DELETE", &format!("/containers/churn{i}"), &[], None);
                assert_eq!(resp.status, 204, "{}", resp.text());
            }
        })
    };

    // 200 concurrent clients listing containers.
    let barrier = Arc::new(std::sync::Barrier::new(200));
    let listers: Vec<_> = (0..200)
        .map(|_| {
            let (socket, barrier) = (socket.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                list_containers(&socket, 5)
            })
        })
        .collect();
    let mut loaded: Vec<Duration> = listers.into_iter().flat_map(|t| t.join().expect("a lister failed")).collect();
    loaded.sort();
    churn.join().expect("churn failed");
    // Let the loud container write on for a while against the stalled
    // reader: its unread output must not pile up in berthd.
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_secs(10) {
        peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(100));
    }
    let after_load = list_containers(&socket, 50);

    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let mut counts: std::collections::BTreeMap<&str, Vec<u64>> = Default::default();
    for (kind, reader) in readers {
        counts.entry(kind).or_default().push(reader.join().unwrap());
    }
    for (kind, bytes) in &counts {
        assert!(bytes.iter().all(|b| *b > 0), "a {kind} stream got nothing: {bytes:?}");
    }

    // The stalled log reader was only paused: it reads on from where it was.
    let mut stalled_logs = stalled_logs;
    stalled_logs.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    let deadline = Instant::now() + Duration::from_secs(30);
    while got < 8 << 20 && Instant::now() < deadline {
        match stalled_logs.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    assert!(got >= 8 << 20, "the stalled logs reader could not resume: {got} bytes");
    let mut stalled_events = stalled_events;
    stalled_events.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let n = stalled_events.read(&mut buf).expect("the stalled events reader was cut off early");
    assert!(String::from_utf8_lossy(&buf[..n]).contains("churn"), "{}", String::from_utf8_lossy(&buf[..n]));

    let peak = peak.load(Ordering::Relaxed);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut after_load = after_load;
    after_load.sort();
    println!(
        "GET /containers/json: idle p50 {:.1} ms p99 {:.1} ms; under load ({} requests, 200 clients, 50 streams, 2 stalled) p50 {:.1} ms p99 {:.1} ms; after {:.1} ms",
        ms(percentile(&idle, 0.5)),
        ms(percentile(&idle, 0.99)),
        loaded.len(),
        ms(percentile(&loaded, 0.5)),
        ms(percentile(&loaded, 0.99)),
        ms(percentile(&after_load, 0.5)),
    );
    println!(
        "berthd RSS: {} MiB before, {} MiB peak; stream bytes: {:?}",
        rss_before / 1024,
        peak / 1024,
        counts.iter().map(|(k, v)| (k, v.iter().sum::<u64>())).collect::<Vec<_>>()
    );
    assert_eq!(loaded.len(), 1000);
    assert!(peak < rss_before + 200 * 1024, "berthd grew from {rss_before} KiB to {peak} KiB");
}

/// A container that exits just as the daemon stops: the task delete the
/// exit starts runs to its end, so no shim is left behind with its task
/// gone (containerd abandons a delete cancelled midway that way).
#[test]
fn a_container_exiting_as_the_daemon_stops_leaves_no_shim() {
    let live = serde_json::json!({"live-restore": true});
    let socket = std::path::Path::new(compat_tests::containerd::SOCKET);
    // Each round's daemon is a successor on the same state; the earlier
    // ones stay (stopped) until the end, as their drop cleans that state.
    let mut daemons = vec![Berthd::builder().daemon_json(live.clone()).start_with_busybox()];
    let namespace = daemons[0].namespace.clone();
    for round in 0..3 {
        if round > 0 {
            let next = daemons[round - 1].successor(live.clone());
            daemons.push(next);
        }
        let daemon = &mut daemons[round];
        let name = format!("exiting-{round}");
        daemon.docker(&["run", "-dit", "--name", &name, "busybox", "sh"]).success();
        let id = daemon.docker(&["inspect", "-f", "{{.Id}}", &name]).success().stdout.trim().to_string();
        compat_tests::containerd::ctr_lines_at(socket, &namespace, &["tasks", "kill", "-s", "SIGKILL", &id]);
        daemon.signal(libc::SIGTERM);
        daemon.stop();
        // What the next daemon (or an operator) does with a stopped task.
        compat_tests::containerd::ctr_lines_at(socket, &namespace, &["tasks", "rm", "-f", &id]);
        let shims = || compat_tests::containerd::shims_with("-namespace", namespace.as_bytes());
        eventually(10, "the container's shim to exit", || shims().is_empty().then_some(()));
    }
}
