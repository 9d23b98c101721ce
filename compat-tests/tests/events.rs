//! `docker events`: live, replayed (`--since`/`--until`) and filtered,
//! through the stock CLI; bollard's `events()` as a schema check.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use compat_tests::{cli, Berthd};
use serde_json::Value;

/// Now as `seconds.nanoseconds`, the form `--since`/`--until` take.

/// `docker events --format '{{json .}}' ARGS` running in the background,
/// its stdout read line by line.
struct EventStream {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl EventStream {
    fn spawn(daemon: &Berthd, args: &[&str]) -> Self {
        let config = daemon.dir().join("events-cli");
        std::fs::create_dir_all(&config).unwrap();
        let mut child = Command::new(cli::docker_binary())
            .args(["events", "--format", "{{json .}}"])
            .args(args)
            .env("DOCKER_HOST", daemon.host())
            .env("DOCKER_CONFIG", &config)
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning docker events");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// The next event, or a panic after a generous wait.
    #[track_caller]
    fn next(&self) -> Value {
        let line = self.lines.recv_timeout(Duration::from_secs(60)).expect("no event arrived");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    /// The next event, which must be `action`.
    #[track_caller]
    fn expect(&self, action: &str) -> Value {
        let ev = self.next();
        assert_eq!(ev["Action"], action, "{ev}");
        ev
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse_lines(stdout: &str) -> Vec<Value> {
    stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect()
}

fn actions(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| e["Action"].as_str().unwrap_or_default().to_string()).collect()
}

#[test]
fn live_events_follow_a_scripted_sequence_with_dockers_attributes() {
    let daemon = Berthd::start_with_busybox();
    // From a moment before the script: whatever happens before the stream
    // is connected is replayed, so nothing waits on timing.
    let since = compat_tests::now_stamp();
    let stream = EventStream::spawn(&daemon, &["--since", &since, "--filter", "label=suite=events"]);

    let id = daemon
        .docker(&["create", "--name", "ev-life", "--label", "suite=events", "busybox", "sh", "-c", "exit 3"])
        .success()
        .stdout
        .trim()
        .to_string();
    // Not labelled: must not show up in the filtered stream.
    daemon.docker(&["create", "--name", "ev-other", "busybox", "true"]).success();
    daemon.docker(&["start", "ev-life"]).success();
    daemon.docker(&["wait", "ev-life"]).success();
    daemon.docker(&["rm", "ev-life"]).success();

    let create = stream.expect("create");
    assert_eq!(create["Type"], "container");
    assert_eq!(create["Actor"]["ID"], id.as_str());
    assert_eq!(create["Actor"]["Attributes"]["name"], "ev-life");
    assert_eq!(create["Actor"]["Attributes"]["image"], "busybox");
    assert_eq!(create["Actor"]["Attributes"]["suite"], "events");
    assert_eq!((&create["status"], &create["id"], &create["from"]), (&create["Action"], &create["Actor"]["ID"], &Value::from("busybox")));
    assert_eq!(create["scope"], "local");
    let nanos = create["timeNano"].as_i64().unwrap();
    assert_eq!(create["time"].as_i64().unwrap(), nanos / 1_000_000_000);
    stream.expect("start");
    let die = stream.expect("die");
    assert_eq!(die["Actor"]["Attributes"]["exitCode"], "3");
    stream.expect("destroy");

    daemon
        .docker(&["run", "-d", "--name", "ev-exec", "--label", "suite=events", "busybox", "sleep", "300"])
        .success();
    daemon.docker(&["exec", "ev-exec", "sh", "-c", "exit 5"]);
    daemon.docker(&["kill", "ev-exec"]).success();
    daemon.docker(&["wait", "ev-exec"]).success();
    daemon.docker(&["rename", "ev-exec", "ev-renamed"]).success();
    daemon.docker(&["rm", "ev-renamed"]).success();

    stream.expect("create");
    stream.expect("start");
    let exec_create = stream.expect("exec_create: sh -c exit 5");
    let exec_id = exec_create["Actor"]["Attributes"]["execID"].as_str().unwrap().to_string();
    assert_eq!(exec_id.len(), 64, "{exec_create}");
    let exec_start = stream.expect("exec_start: sh -c exit 5");
    assert_eq!(exec_start["Actor"]["Attributes"]["execID"], exec_id.as_str());
    let exec_die = stream.expect("exec_die");
    assert_eq!(exec_die["Actor"]["Attributes"]["execID"], exec_id.as_str());
    assert_eq!(exec_die["Actor"]["Attributes"]["exitCode"], "5");
    let kill = stream.expect("kill");
    assert_eq!(kill["Actor"]["Attributes"]["signal"], "9");
    assert_eq!(stream.expect("die")["Actor"]["Attributes"]["exitCode"], "137");
    let rename = stream.expect("rename");
    assert_eq!(rename["Actor"]["Attributes"]["name"], "ev-renamed");
    assert_eq!(rename["Actor"]["Attributes"]["oldName"], "/ev-exec");
    assert_eq!(stream.expect("destroy")["Actor"]["Attributes"]["name"], "ev-renamed");
}

#[test]
fn since_and_until_replay_past_events_with_filters() {
    let daemon = Berthd::start_with_busybox();
    let since = compat_tests::now_stamp();
    daemon.docker(&["run", "--name", "ev-a", "busybox", "true"]).success();
    daemon.docker(&["run", "-d", "--name", "ev-b", "--label", "team=blue", "busybox", "sleep", "300"]).success();
    daemon.docker(&["stop", "-t", "0", "ev-b"]).success();
    daemon.docker(&["tag", "busybox", "ev-tagged:1"]).success();
    let until = compat_tests::now_stamp();
    // Nothing after `until` may appear.
    daemon.docker(&["start", "ev-a"]).success();

    let replay = |filters: &[&str]| {
        let mut args = vec!["events", "--since", &since, "--until", &until, "--format", "{{json .}}"];
        args.extend_from_slice(filters);
        parse_lines(&daemon.docker(&args).success().stdout)
    };

    let all = replay(&[]);
    let containers: Vec<&Value> = all.iter().filter(|e| e["Type"] == "container").collect();
    let seen: Vec<(String, String)> = containers
        .iter()
        .map(|e| (e["Actor"]["Attributes"]["name"].as_str().unwrap().into(), e["Action"].as_str().unwrap().into()))
        .collect();
    let want: Vec<(String, String)> = [
        ("ev-a", "create"),
        ("ev-a", "attach"),
        ("ev-a", "start"),
        ("ev-a", "die"),
        ("ev-b", "create"),
        ("ev-b", "start"),
        ("ev-b", "kill"),
        ("ev-b", "kill"),
        ("ev-b", "die"),
        ("ev-b", "stop"),
    ]
    .iter()
    .map(|(n, a)| (n.to_string(), a.to_string()))
    .collect();
    assert_eq!(seen, want, "{all:#?}");
    let kills: Vec<&Value> = containers.iter().copied().filter(|e| e["Action"] == "kill").collect();
    assert_eq!(kills[0]["Actor"]["Attributes"]["signal"], "15");
    assert_eq!(kills[1]["Actor"]["Attributes"]["signal"], "9");
    let tag = all.iter().find(|e| e["Type"] == "image").expect("an image event");
    assert_eq!(tag["Action"], "tag");
    assert_eq!(tag["Actor"]["Attributes"]["name"], "ev-tagged:1");
    assert!(tag["Actor"]["ID"].as_str().unwrap().starts_with("sha256:"), "{tag}");

    let starts = replay(&["--filter", "event=start"]);
    assert_eq!(actions(&starts), ["start", "start"]);
    let by_name = replay(&["--filter", "container=ev-a"]);
    assert_eq!(actions(&by_name), ["create", "attach", "start", "die"]);
    let by_label = replay(&["--filter", "label=team=blue", "--filter", "event=die"]);
    assert_eq!(by_label.len(), 1, "{by_label:#?}");
    assert_eq!(by_label[0]["Actor"]["Attributes"]["name"], "ev-b");
    let images = replay(&["--filter", "type=image", "--filter", "image=ev-tagged"]);
    assert_eq!(actions(&images), ["tag"]);
}

#[test]
fn bollard_reads_the_event_stream() {
    use futures_util::StreamExt;

    let daemon = Berthd::start_with_busybox();
    let since = compat_tests::now_stamp();
    daemon.docker(&["create", "--name", "ev-bollard", "--label", "a=b", "busybox", "true"]).success();
    let until = compat_tests::now_stamp();
    let client = daemon.client();
    let events: Vec<_> = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
        let filters = std::collections::HashMap::from([("container", vec!["ev-bollard"])]);
        let options = bollard::query_parameters::EventsOptionsBuilder::default()
            .since(&since)
            .until(&until)
            .filters(&filters)
            .build();
        client.events(Some(options)).collect::<Vec<_>>().await
    });
    assert_eq!(events.len(), 1, "{events:?}");
    let event = events.into_iter().next().unwrap().expect("a well-formed event");
    assert_eq!(event.typ, Some(bollard::models::EventMessageTypeEnum::CONTAINER));
    assert_eq!(event.action.as_deref(), Some("create"));
    assert_eq!(event.scope, Some(bollard::models::EventMessageScopeEnum::LOCAL));
    let actor = event.actor.expect("an actor");
    let attributes = actor.attributes.expect("attributes");
    assert_eq!(attributes.get("name").map(String::as_str), Some("ev-bollard"));
    assert_eq!(attributes.get("a").map(String::as_str), Some("b"));
    assert!(event.time_nano.unwrap() > 0);
}

#[test]
fn headers_arrive_before_any_event_and_events_follow_live() {
    use std::io::{Read, Write};

    let daemon = Berthd::start_with_busybox();
    let mut conn = std::os::unix::net::UnixStream::connect(&daemon.socket).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    conn.write_all(b"GET /v1.47/events?filters=%7B%22event%22%3A%5B%22tag%22%5D%7D HTTP/1.1\r\nHost: docker\r\n\r\n").unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    // Nothing has happened yet: the status line and headers come anyway.
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf).expect("headers did not arrive");
        assert!(n > 0, "connection closed: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&seen).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-type: application/json"), "{head}");
    daemon.docker(&["tag", "busybox", "ev-live:1"]).success();
    while !String::from_utf8_lossy(&seen).contains("ev-live:1") {
        let n = conn.read(&mut buf).expect("the event did not arrive");
        assert!(n > 0, "connection closed: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&seen).contains(r#""Action":"tag""#));
}
