//! Watching containers: `docker top`, `docker stats`, health checks, as the
//! stock CLI and bollard see them.

use std::time::Duration;

use compat_tests::{eventually, Berthd};

/// Now as `seconds.nanoseconds`, the form `--since`/`--until` take.

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
        .docker(&["events", "--since", "1", "--until", &compat_tests::now_stamp(), "--filter", "event=top", "--format", "{{.Actor.Attributes.name}}"])
        .success();
    assert_eq!(events.stdout.trim(), "topped");
}

/// `12.34%` → 12.34.
fn percent(text: &str) -> f64 {
    text.trim().trim_end_matches('%').parse().unwrap_or_else(|_| panic!("not a percentage: {text}"))
}

/// `48.2MiB / 23.4GiB` → the usage in MiB.
fn mem_usage_mib(text: &str) -> f64 {
    let usage = text.split('/').next().unwrap().trim();
    let (number, unit) = usage.split_at(usage.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(usage.len()));
    let n: f64 = number.parse().unwrap_or_else(|_| panic!("not a size: {text}"));
    match unit {
        "B" => n / 1024.0 / 1024.0,
        "KiB" | "kB" => n / 1024.0,
        "MiB" | "MB" => n,
        "GiB" | "GB" => n * 1024.0,
        other => panic!("unit {other} in {text}"),
    }
}

#[test]
fn stats_no_stream_shows_cpu_and_memory_of_busy_containers() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["run", "-d", "--name", "burner", "busybox", "sh", "-c", "while :; do :; done"]).success();
    daemon
        .docker(&["run", "-d", "--name", "filler", "busybox", "sh", "-c", "dd if=/dev/zero of=/dev/shm/fill bs=1M count=48 && sleep 300"])
        .success();
    daemon.docker(&["run", "-d", "--name", "stopped", "busybox", "true"]).success();
    eventually(30, "the filler to fill /dev/shm", || {
        let out = daemon.docker(&["exec", "filler", "ls", "-l", "/dev/shm/fill"]).stdout;
        out.contains("50331648").then_some(())
    });
    let format = "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.PIDs}}";
    let out = daemon.docker(&["stats", "--no-stream", "--format", format, "burner", "filler", "stopped"]).success();
    let rows: std::collections::HashMap<&str, Vec<&str>> =
        out.stdout.lines().map(|l| (l.split('|').next().unwrap(), l.split('|').skip(1).collect())).collect();
    let burner = &rows["burner"];
    // A busy loop on a shared machine: clearly busy, never above all CPUs.
    // (On a machine loaded 10x over its cores it gets only a few percent.)
    assert!(percent(burner[0]) > 2.0 && percent(burner[0]) < 150.0, "{out:?}");
    assert_eq!(burner[2], "1", "{out:?}");
    let filler = &rows["filler"];
    assert!(percent(filler[0]) < 50.0, "{out:?}");
    let mib = mem_usage_mib(filler[1]);
    assert!((45.0..200.0).contains(&mib), "48 MiB in /dev/shm counts as memory: {out:?}");
    let stopped = &rows["stopped"];
    assert_eq!(stopped[0], "0.00%", "{out:?}");
    assert_eq!(stopped[1], "0B / 0B", "{out:?}");
}

#[test]
fn stats_no_stream_over_twenty_containers() {
    let daemon = Berthd::start_with_busybox();
    for i in 0..20 {
        daemon.docker(&["run", "-d", "--name", &format!("many{i}"), "busybox", "sleep", "320"]).success();
    }
    let out = daemon.docker(&["stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}"]).success();
    let rows: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(rows.len(), 20, "{}", out.stdout);
    for row in rows {
        let f: Vec<&str> = row.split_whitespace().collect();
        assert!(f[0].starts_with("many"), "{row}");
        assert!(percent(f[1]) < 50.0, "an idle sleep: {row}");
        assert!(mem_usage_mib(f[2]) > 0.0, "{row}");
        assert_eq!(f.last(), Some(&"1"), "{row}");
    }
}

#[test]
fn stats_json_shapes_for_running_stopped_and_one_shot() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["run", "-d", "--name", "runner", "busybox", "sleep", "305"]).success();
    let id = inspect(&daemon, "{{.Id}}", "runner");
    let resp = daemon.request("GET", "/containers/runner/stats?stream=false", None);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let v = resp.json();
    assert_eq!(v["id"], id);
    assert_eq!(v["name"], "/runner");
    assert_ne!(v["read"], "0001-01-01T00:00:00Z");
    assert_ne!(v["preread"], "0001-01-01T00:00:00Z");
    assert!(v["read"].as_str() > v["preread"].as_str(), "{v}");
    assert!(v["cpu_stats"]["system_cpu_usage"].as_u64().unwrap() > v["precpu_stats"]["system_cpu_usage"].as_u64().unwrap());
    assert!(v["cpu_stats"]["online_cpus"].as_u64().unwrap() >= 1);
    assert!(v["cpu_stats"]["cpu_usage"]["total_usage"].as_u64().unwrap() > 0, "{v}");
    assert!(v["cpu_stats"]["throttling_data"].is_object());
    assert!(v["memory_stats"]["usage"].as_u64().unwrap() > 0, "{v}");
    assert!(v["memory_stats"]["limit"].as_u64().unwrap() > 0, "{v}");
    assert!(v["memory_stats"]["stats"].is_object(), "{v}");
    assert_eq!(v["pids_stats"]["current"], 1);
    assert!(v["blkio_stats"].is_object());
    assert_eq!(v["num_procs"], 0);
    // The default bridge gives it eth0; loopback is not reported.
    let networks = v["networks"].as_object().expect("networks");
    assert_eq!(networks.keys().collect::<Vec<_>>(), ["eth0"], "{v}");
    assert!(networks["eth0"]["rx_bytes"].is_u64() && networks["eth0"]["tx_dropped"].is_u64());
    daemon.docker(&["run", "-d", "--network", "none", "--name", "isolated", "busybox", "sleep", "319"]).success();
    let isolated = daemon.request("GET", "/containers/isolated/stats?stream=false&one-shot=true", None).json();
    assert!(isolated.get("networks").is_none(), "{isolated}");

    // Asked again within half a second, the same answer is shared; the
    // next fresh one measures from it instead of waiting for a new pair
    // of samples.
    let next = eventually(10, "a fresh stats sample", || {
        let next = daemon.request("GET", "/containers/runner/stats?stream=false", None).json();
        (next["read"] != v["read"]).then_some(next)
    });
    assert_eq!(next["preread"], v["read"], "{next}");
    assert_eq!(next["precpu_stats"], v["cpu_stats"], "{next}");

    let one = daemon.request("GET", "/containers/runner/stats?stream=false&one-shot=true", None).json();
    assert_eq!(one["preread"], "0001-01-01T00:00:00Z");
    assert!(one["precpu_stats"].get("system_cpu_usage").is_none(), "{one}");
    assert!(one["cpu_stats"]["system_cpu_usage"].as_u64().unwrap() > 0);

    daemon.docker(&["create", "--name", "never", "busybox", "true"]).success();
    let never_id = inspect(&daemon, "{{.Id}}", "never");
    let empty = daemon.request("GET", "/containers/never/stats?stream=false", None).json();
    assert_eq!(empty["id"], never_id);
    assert_eq!(empty["read"], "0001-01-01T00:00:00Z");
    assert_eq!(empty["memory_stats"], serde_json::json!({}));
    assert_eq!(empty["pids_stats"], serde_json::json!({}));
    assert_eq!(empty["cpu_stats"]["cpu_usage"]["total_usage"], 0);

    let missing = daemon.request("GET", "/containers/nope/stats?stream=false", None);
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["message"], "No such container: nope");
}

#[test]
fn streaming_stats_over_bollard_sends_a_sample_a_second() {
    use futures_util::StreamExt;
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["run", "-d", "--name", "streamer", "busybox", "sleep", "306"]).success();
    let client = daemon.client();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let samples = rt.block_on(async {
        let options = bollard::query_parameters::StatsOptions { stream: true, one_shot: false };
        let stream = client.stats("streamer", Some(options)).take(3);
        tokio::time::timeout(Duration::from_secs(20), stream.collect::<Vec<_>>()).await.expect("three samples in time")
    });
    let samples: Vec<_> = samples.into_iter().map(|s| s.expect("a stats sample")).collect();
    assert_eq!(samples.len(), 3);
    for pair in samples.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert_eq!(b.preread, a.read, "each sample measures from the one before");
        assert_eq!(b.precpu_stats, a.cpu_stats);
        assert!(b.read > a.read);
        // One sample a second, by the daemon's own read times.
        let (earlier, later) = (seconds_of_day(a.read.as_deref()), seconds_of_day(b.read.as_deref()));
        assert!((later - earlier).rem_euclid(86_400.0) >= 0.9, "{:?} then {:?}", a.read, b.read);
    }
    let last = samples.last().unwrap();
    assert_eq!(last.name.as_deref(), Some("/streamer"));
    assert!(last.memory_stats.as_ref().and_then(|m| m.usage).unwrap_or(0) > 0);
}

/// Events since the daemon started, up to now, as (action, name) pairs.
fn past_events(daemon: &Berthd) -> Vec<(String, String)> {
    let out = daemon
        .docker(&["events", "--since", "1", "--until", &compat_tests::now_stamp(), "--format", "{{.Action}}|{{.Actor.Attributes.name}}"])
        .success();
    out.stdout
        .lines()
        .map(|l| {
            let (action, name) = l.split_once('|').unwrap();
            (action.to_string(), name.to_string())
        })
        .collect()
}

fn health(daemon: &Berthd, name: &str) -> serde_json::Value {
    serde_json::from_str(&inspect(daemon, "{{json .State.Health}}", name)).unwrap()
}

#[track_caller]
fn wait_health(daemon: &Berthd, name: &str, status: &str) -> serde_json::Value {
    eventually(30, &format!("{name} {status}"), || {
        let h = health(daemon, name);
        (h["Status"] == status).then_some(h)
    })
}

#[test]
fn health_goes_starting_healthy_unhealthy_with_events_ps_and_filters() {
    let daemon = Berthd::start_with_busybox();
    daemon
        .docker(&[
            "run", "-d", "--name", "svc", "--health-cmd", "test -e /tmp/ok", "--health-interval", "200ms",
            "--health-retries", "1", "--health-start-period", "60s", "--health-start-interval", "200ms",
            "busybox", "sleep", "307",
        ])
        .success();
    daemon.docker(&["run", "-d", "--name", "plain", "busybox", "sleep", "308"]).success();
    let ps = daemon.docker(&["ps", "--filter", "name=svc", "--format", "{{.Status}}"]).success();
    assert!(ps.stdout.trim().ends_with("(health: starting)"), "{}", ps.stdout);
    // Failing probes inside the start period keep it starting.
    let h = eventually(30, "two failed probes", || {
        let h = health(&daemon, "svc");
        (h["Log"].as_array().unwrap().len() >= 2).then_some(h)
    });
    assert_eq!(h["Status"], "starting", "{h}");
    assert_eq!(h["FailingStreak"], 0, "{h}");
    assert_eq!(h["Log"][0]["ExitCode"], 1, "{h}");

    daemon.docker(&["exec", "svc", "touch", "/tmp/ok"]).success();
    let h = wait_health(&daemon, "svc", "healthy");
    assert_eq!(h["FailingStreak"], 0);
    let log = h["Log"].as_array().unwrap();
    assert!(log.len() <= 5, "{h}");
    assert_eq!(log.last().unwrap()["ExitCode"], 0);
    assert!(log.last().unwrap()["Start"].as_str().unwrap() <= log.last().unwrap()["End"].as_str().unwrap());
    let ps = daemon.docker(&["ps", "--filter", "health=healthy", "--format", "{{.Names}} {{.Status}}"]).success();
    assert_eq!(ps.stdout.lines().count(), 1, "{}", ps.stdout);
    assert!(ps.stdout.starts_with("svc Up ") && ps.stdout.trim().ends_with("(healthy)"), "{}", ps.stdout);
    let none = daemon.docker(&["ps", "--filter", "health=none", "--format", "{{.Names}}"]).success();
    assert_eq!(none.stdout.trim(), "plain");
    let bad = daemon.docker(&["ps", "--filter", "health=great"]).failure();
    assert!(bad.stderr.contains("Unrecognised filter value for health: great"), "{}", bad.stderr);

    daemon.docker(&["exec", "svc", "rm", "/tmp/ok"]).success();
    let h = wait_health(&daemon, "svc", "unhealthy");
    assert_eq!(h["FailingStreak"], 1, "{h}");
    let ps = daemon.docker(&["ps", "--filter", "health=unhealthy", "--format", "{{.Status}}"]).success();
    assert!(ps.stdout.trim().ends_with("(unhealthy)"), "{}", ps.stdout);

    let events = past_events(&daemon);
    let health_events: Vec<&str> =
        events.iter().filter(|(a, n)| n == "svc" && a.starts_with("health_status")).map(|(a, _)| a.as_str()).collect();
    assert_eq!(health_events, ["health_status: healthy", "health_status: unhealthy"], "{events:?}");
    // Each probe is an exec, announced as dockerd does.
    for action in ["exec_create: /bin/sh -c test -e /tmp/ok", "exec_start: /bin/sh -c test -e /tmp/ok", "exec_die"] {
        assert!(events.iter().any(|(a, n)| n == "svc" && a == action), "{action} in {events:?}");
    }
    let filtered = daemon
        .docker(&["events", "--since", "1", "--until", &compat_tests::now_stamp(), "--filter", "event=health_status", "--format", "{{.Action}}"])
        .success();
    assert_eq!(filtered.stdout.lines().count(), 2, "{}", filtered.stdout);
}

#[test]
fn image_healthcheck_applies_and_no_healthcheck_disables_it() {
    use compat_tests::images::{BusyboxImage, Healthcheck};
    let daemon = Berthd::start_with_busybox();
    let image = BusyboxImage::new("checked:1")
        .healthcheck(Healthcheck {
            test: vec!["CMD".into(), "true".into()],
            interval: Some(Duration::from_millis(200)),
            retries: Some(2),
            ..Default::default()
        })
        .build()
        .and_then(|i| i.docker_archive())
        .unwrap();
    daemon.docker_stdin(&["load"], &image).success();
    daemon.docker(&["run", "-d", "--name", "checked", "checked:1", "sleep", "309"]).success();
    daemon.docker(&["run", "-d", "--name", "unchecked", "--no-healthcheck", "checked:1", "sleep", "310"]).success();
    let h = wait_health(&daemon, "checked", "healthy");
    assert_eq!(h["Log"][0]["Output"], "");
    let config = inspect(&daemon, "{{json .Config.Healthcheck}}", "checked");
    assert!(config.contains("\"Test\":[\"CMD\",\"true\"]") && config.contains("\"Retries\":2"), "{config}");

    assert_eq!(inspect(&daemon, "{{json .State.Health}}", "unchecked"), "null");
    assert_eq!(inspect(&daemon, "{{json .Config.Healthcheck.Test}}", "unchecked"), "[\"NONE\"]");
    let ps = daemon.docker(&["ps", "--filter", "name=unchecked", "--format", "{{.Status}}"]).success();
    assert!(!ps.stdout.contains('('), "{}", ps.stdout);
    let none = daemon.docker(&["ps", "--filter", "health=none", "--format", "{{.Names}}"]).success();
    assert_eq!(none.stdout.trim(), "unchecked");

    // The CLI checks these itself; the API answers as dockerd.
    let body = br#"{"Image":"busybox","Cmd":["true"],"Healthcheck":{"Test":["CMD","true"],"Interval":10}}"#;
    let json = [("Content-Type", "application/json")];
    let bad = compat_tests::client::raw_request(&daemon.socket, "POST", "/containers/create", &json, Some(body));
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert_eq!(bad.json()["message"], "Interval in Healthcheck cannot be less than 1ms");
}

#[test]
fn probe_output_and_timeouts_are_logged() {
    let daemon = Berthd::start_with_busybox();
    daemon
        .docker(&[
            "run", "-d", "--name", "slow", "--health-cmd", "echo waiting; sleep 10", "--health-interval", "200ms",
            "--health-timeout", "300ms", "--health-retries", "1", "busybox", "sleep", "311",
        ])
        .success();
    let h = wait_health(&daemon, "slow", "unhealthy");
    let entry = &h["Log"][0];
    assert_eq!(entry["ExitCode"], -1, "{h}");
    assert_eq!(entry["Output"], "Health check exceeded timeout (300ms): waiting\n", "{h}");

    daemon.docker(&["run", "-d", "--name", "talker", "--health-cmd", "echo out; echo err >&2; exit 3",
        "--health-interval", "200ms", "--health-retries", "1", "busybox", "sleep", "312"]).success();
    let h = wait_health(&daemon, "talker", "unhealthy");
    assert_eq!(h["Log"][0]["ExitCode"], 3, "{h}");
    let output = h["Log"][0]["Output"].as_str().unwrap();
    assert!(output.contains("out\n") && output.contains("err\n"), "{h}");
}

#[test]
fn probes_stop_with_the_container_and_resume_on_start() {
    let daemon = Berthd::start_with_busybox();
    daemon
        .docker(&["run", "-d", "--name", "probed", "--health-cmd", "true", "--health-interval", "200ms", "busybox", "sleep", "313"])
        .success();
    wait_health(&daemon, "probed", "healthy");
    daemon.docker(&["stop", "-t", "0", "probed"]).success();
    // As dockerd: a stopped check reads unhealthy.
    let h = health(&daemon, "probed");
    assert_eq!(h["Status"], "unhealthy", "{h}");
    let stopped_log = h["Log"].clone();
    // Another container's probes mark the passing of time: after five of
    // them the stopped one would have probed too.
    daemon
        .docker(&["run", "-d", "--name", "clock", "--health-cmd", "true", "--health-interval", "200ms", "busybox", "sleep", "314"])
        .success();
    eventually(30, "five probes of the clock", || {
        let probes = past_events(&daemon).iter().filter(|(a, n)| n == "clock" && a == "exec_die").count();
        (probes >= 5).then_some(())
    });
    let events = past_events(&daemon);
    let die = events.iter().rposition(|(a, n)| n == "probed" && a == "die").expect("die event");
    // A probe in flight at the stop may still report its exec_die.
    assert!(
        !events[die + 1..].iter().any(|(a, n)| n == "probed" && a.starts_with("exec_create")),
        "no probe after the stop: {events:?}"
    );
    assert_eq!(health(&daemon, "probed")["Log"], stopped_log);

    daemon.docker(&["start", "probed"]).success();
    let ps = daemon.docker(&["ps", "--filter", "name=probed", "--format", "{{.Status}}"]).success();
    assert!(ps.stdout.trim().ends_with("(health: starting)"), "{}", ps.stdout);
    wait_health(&daemon, "probed", "healthy");
}

#[test]
fn health_checks_resume_after_a_live_restore_restart() {
    use compat_tests::images::BusyboxImage;
    let live = serde_json::json!({"live-restore": true});
    let mut first = Berthd::builder().daemon_json(live.clone()).start();
    let archive = BusyboxImage::new("busybox:latest").build().unwrap().docker_archive().unwrap();
    first.docker_stdin(&["load"], &archive).success();
    first
        .docker(&[
            "run", "-d", "--name", "lasting", "--health-cmd", "test -e /tmp/ok", "--health-interval", "200ms",
            "--health-retries", "1", "busybox", "sh", "-c", "touch /tmp/ok; exec sleep 315",
        ])
        .success();
    wait_health(&first, "lasting", "healthy");
    assert!(first.stop().expect("daemon").success());
    let second = first.successor(live);
    assert_eq!(health(&second, "lasting")["Status"], "healthy");
    second.docker(&["exec", "lasting", "rm", "/tmp/ok"]).success();
    wait_health(&second, "lasting", "unhealthy");
    let ps = second.docker(&["ps", "--format", "{{.Status}}"]).success();
    assert!(ps.stdout.trim().ends_with("(unhealthy)"), "{}", ps.stdout);
}

#[test]
fn compose_starts_a_service_once_its_dependency_is_healthy() {
    let daemon = Berthd::start_with_busybox();
    let project = daemon.dir().join("project");
    std::fs::create_dir_all(&project).unwrap();
    let compose = r#"
services:
  db:
    image: busybox
    command: ["sh", "-c", "sleep 1; touch /tmp/ready; exec sleep 316"]
    healthcheck:
      test: ["CMD", "test", "-e", "/tmp/ready"]
      interval: 200ms
      retries: 50
  app:
    image: busybox
    command: ["sleep", "317"]
    depends_on:
      db:
        condition: service_healthy
"#;
    std::fs::write(project.join("compose.yaml"), compose).unwrap();
    let file = project.join("compose.yaml");
    let up = daemon.docker(&["compose", "-p", "waits", "-f", file.to_str().unwrap(), "up", "-d"]);
    assert_eq!(up.code, 0, "{up:?}");
    assert!(up.stderr.contains("Healthy"), "{}", up.stderr);
    let events = past_events(&daemon);
    let healthy = events.iter().position(|(a, n)| n == "waits-db-1" && a == "health_status: healthy").expect("db healthy");
    let app_start = events.iter().position(|(a, n)| n == "waits-app-1" && a == "start").expect("app started");
    assert!(healthy < app_start, "{events:?}");
    let ps = daemon.docker(&["compose", "-p", "waits", "-f", file.to_str().unwrap(), "ps", "--format", "{{.Name}} {{.Status}}"]).success();
    assert!(ps.stdout.contains("waits-db-1 Up") && ps.stdout.contains("(healthy)"), "{}", ps.stdout);
    daemon.docker(&["compose", "-p", "waits", "-f", file.to_str().unwrap(), "down", "-t", "0"]).success();
}

/// `1.05MB` (the CLI's decimal units) → bytes.
fn decimal_size(text: &str) -> f64 {
    let (number, unit) = text.split_at(text.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(text.len()));
    let n: f64 = number.parse().unwrap_or_else(|_| panic!("not a size: {text}"));
    n * match unit {
        "B" => 1.0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        other => panic!("unit {other} in {text}"),
    }
}

#[test]
fn ps_size_and_system_df_count_the_writable_layers() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["run", "--name", "writer", "busybox", "dd", "if=/dev/zero", "of=/big", "bs=1024", "count=1024"]).success();
    daemon.docker(&["run", "-d", "--name", "idle", "busybox", "sleep", "321"]).success();
    let ps = daemon.docker(&["ps", "-a", "-s", "--filter", "name=writer", "--format", "{{.Size}}"]).success();
    // `1.05MB (virtual 2.1MB)`
    let (rw, virt) = ps.stdout.trim().split_once(" (virtual ").unwrap_or_else(|| panic!("{}", ps.stdout));
    assert!((1_048_576.0..1_200_000.0).contains(&decimal_size(rw)), "{}", ps.stdout);
    assert!(decimal_size(virt.trim_end_matches(')')) > decimal_size(rw), "{}", ps.stdout);

    let df = daemon.docker(&["system", "df", "--format", "{{.Type}}|{{.TotalCount}}|{{.Active}}|{{.Size}}|{{.Reclaimable}}"]).success();
    let rows: std::collections::HashMap<&str, Vec<&str>> =
        df.stdout.lines().map(|l| (l.split('|').next().unwrap(), l.split('|').skip(1).collect())).collect();
    let containers = &rows["Containers"];
    assert_eq!(&containers[..2], ["2", "1"], "{}", df.stdout);
    assert!(decimal_size(containers[2]) >= 1_048_576.0, "{}", df.stdout);
    assert!(containers[3].starts_with("1.0"), "the exited writer's layer is reclaimable: {}", df.stdout);
    assert_eq!(&rows["Images"][..2], ["1", "1"], "{}", df.stdout);
}

#[test]
fn system_prune_removes_what_is_unused() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["run", "--name", "done", "busybox", "true"]).success();
    daemon.docker(&["run", "-d", "--name", "alive", "busybox", "sleep", "318"]).success();
    daemon.docker(&["network", "create", "spare"]).success();
    let out = daemon.docker(&["system", "prune", "-f"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("Deleted Containers:"), "{}", out.stdout);
    assert!(out.stdout.contains("Deleted Networks:\nspare"), "{}", out.stdout);
    assert!(out.stdout.contains("Total reclaimed space:"), "{}", out.stdout);
    daemon.docker(&["container", "inspect", "done"]).failure();
    daemon.docker(&["network", "inspect", "spare"]).failure();
    let ps = daemon.docker(&["ps", "--format", "{{.Names}}"]).success();
    assert_eq!(ps.stdout.trim(), "alive");
}

/// Seconds since midnight of an RFC 3339 time such as
/// `2026-11-28T03:35:01.123456789Z`.
fn seconds_of_day(time: Option<&str>) -> f64 {
    let time = time.expect("a read time");
    let clock = time.split('T').nth(1).expect("a time of day").trim_end_matches('Z');
    let parts: Vec<f64> = clock.split(':').map(|p| p.parse().expect("a number")).collect();
    parts[0] * 3600.0 + parts[1] * 60.0 + parts[2]
}
