//! `docker commit`: a container's changes become a new image layer that
//! runs, with `--change`, `-m` and `-a` in its config and history.

use compat_tests::{eventually, Berthd};

fn inspect(daemon: &Berthd, what: &str) -> serde_json::Value {
    let out = daemon.docker(&["image", "inspect", what]).success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    v[0].clone()
}

#[test]
fn commit_with_changes_then_run_the_image() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["run", "--name", "src", "busybox", "sh", "-c", "echo committed > /hello && mkdir -p /data"]).success();
    let out = daemon
        .docker(&[
            "commit",
            "-m",
            "my message",
            "-a",
            "Jane <jane@example.com>",
            "--change",
            "ENV GREETING=hi",
            "--change",
            "CMD [\"cat\", \"/hello\"]",
            "--change",
            "EXPOSE 8080",
            "--change",
            "LABEL team=build",
            "--change",
            "WORKDIR /data",
            "src",
            "me/committed:v1",
        ])
        .success();
    let id = out.stdout.trim();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");

    let run = daemon.docker(&["run", "--rm", "me/committed:v1"]).success();
    assert_eq!(run.stdout, "committed\n");
    let env = daemon.docker(&["run", "--rm", "me/committed:v1", "sh", "-c", "echo $GREETING; pwd"]).success();
    assert_eq!(env.stdout, "hi\n/data\n");

    let img = inspect(&daemon, "me/committed:v1");
    assert_eq!(img["Id"], id);
    assert_eq!(img["Comment"], "my message");
    assert_eq!(img["Author"], "Jane <jane@example.com>");
    assert_eq!(img["Config"]["Cmd"], serde_json::json!(["cat", "/hello"]));
    assert_eq!(img["Config"]["Labels"]["team"], "build");
    assert_eq!(img["Config"]["WorkingDir"], "/data");
    assert!(img["Config"]["ExposedPorts"]["8080/tcp"].is_object(), "{img}");
    assert!(img["Config"]["Env"].as_array().unwrap().iter().any(|e| e == "GREETING=hi"), "{img}");
    let base = inspect(&daemon, "busybox");
    assert_eq!(img["RootFS"]["Layers"].as_array().unwrap().len(), base["RootFS"]["Layers"].as_array().unwrap().len() + 1);
    assert_eq!(img["Parent"], base["Id"]);

    let history = daemon.docker(&["history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Comment}}", "me/committed:v1"]).success();
    let top = history.stdout.lines().next().unwrap();
    assert_eq!(top, "sh -c echo committed > /hello && mkdir -p /data|my message");
    let images = daemon.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}", "me/committed"]).success();
    assert_eq!(images.stdout, "me/committed:v1\n");
}

#[test]
fn commit_of_a_running_container_pauses_it_and_untagged_commit_is_dangling() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["run", "-d", "--name", "live", "busybox", "sh", "-c", "echo x > /made; sleep 300"]).success();
    eventually(30, "the container's file", || (daemon.docker(&["exec", "live", "cat", "/made"]).code == 0).then_some(()));
    let since = compat_tests::now_stamp();
    let id = daemon.docker(&["commit", "live"]).success().stdout.trim().to_string();
    // Still running afterwards.
    let state = daemon.docker(&["inspect", "-f", "{{.State.Status}}", "live"]).success();
    assert_eq!(state.stdout, "running\n");
    let dangling = daemon.docker(&["images", "-q", "--no-trunc", "--filter", "dangling=true"]).success();
    assert_eq!(dangling.stdout.trim(), id);
    let cat = daemon.docker(&["run", "--rm", &id, "cat", "/made"]).success();
    assert_eq!(cat.stdout, "x\n");
    let events = daemon
        .docker(&["events", "--since", &since, "--until", &compat_tests::now_stamp(), "--filter", "container=live", "--format", "{{.Action}}"])
        .success();
    let actions: Vec<&str> = events.stdout.lines().collect();
    let commit_at = actions.iter().position(|a| *a == "commit").unwrap_or_else(|| panic!("{actions:?}"));
    assert!(actions[..commit_at].contains(&"pause"), "{actions:?}");
    assert!(actions[commit_at..].contains(&"unpause"), "{actions:?}");
    daemon.docker(&["rm", "-f", "live"]).success();
}

/// The daemon's clock as `docker events --since` takes it.

#[test]
fn commit_errors_have_dockerd_text() {
    let daemon = Berthd::start_with_busybox();
    let out = daemon.docker(&["commit", "nosuch"]).failure();
    assert!(out.stderr.contains("No such container: nosuch"), "{}", out.stderr);
    daemon.docker(&["create", "--name", "cc", "busybox", "true"]).success();
    let out = daemon.docker(&["commit", "--change", "RUN echo hi", "cc"]).failure();
    assert!(out.stderr.contains("run is not a valid change command"), "{}", out.stderr);
    let out = daemon.docker(&["commit", "cc", "Bad:Name"]).failure();
    assert!(out.stderr.contains("invalid reference format"), "{}", out.stderr);
    // Nothing was made by the failures.
    let images = daemon.docker(&["images", "-q"]).success();
    assert_eq!(images.stdout.lines().count(), 1, "{}", images.stdout);
}

/// Entry names of a tar file.
fn tar_names(bytes: &[u8]) -> Vec<String> {
    tar::Archive::new(bytes).entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect()
}

/// The file `name` inside the tar file at `path`.
fn tar_member(path: &std::path::Path, name: &str) -> Vec<u8> {
    let mut archive = tar::Archive::new(std::fs::File::open(path).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().display().to_string() == name {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut out).unwrap();
            return out;
        }
    }
    panic!("{name} not in {}", path.display());
}

#[test]
fn dockerenv_is_in_the_init_layer_seen_by_export_not_by_diff_or_commit() {
    let daemon = Berthd::start_with_busybox();
    let dir = tempfile::tempdir().unwrap();
    daemon.docker(&["run", "-d", "--name", "ctr", "busybox", "sleep", "1000"]).success();
    // As dockerd: an empty, root-owned 0755 file.
    let ls = daemon.docker(&["exec", "ctr", "stat", "-c", "%A %s %u:%g", "/.dockerenv"]).success();
    assert_eq!(ls.stdout, "-rwxr-xr-x 0 0:0\n");
    daemon.docker(&["exec", "ctr", "touch", "/newfile"]).success();
    assert_eq!(daemon.docker(&["diff", "ctr"]).success().stdout, "A /newfile\n");

    let export = dir.path().join("export.tar");
    daemon.docker(&["export", "-o", export.to_str().unwrap(), "ctr"]).success();
    let names = tar_names(&std::fs::read(&export).unwrap());
    for wanted in [".dockerenv", "etc/hosts", "etc/hostname", "etc/resolv.conf", "dev/console", "newfile"] {
        assert!(names.iter().any(|n| n == wanted), "{wanted} not exported: {names:?}");
    }

    daemon.docker(&["commit", "ctr", "me/init:v1"]).success();
    let saved = dir.path().join("save.tar");
    daemon.docker(&["save", "-o", saved.to_str().unwrap(), "me/init:v1"]).success();
    let manifest: serde_json::Value = serde_json::from_slice(&tar_member(&saved, "manifest.json")).unwrap();
    let top = manifest[0]["Layers"].as_array().unwrap().last().unwrap().as_str().unwrap().to_string();
    assert_eq!(tar_names(&tar_member(&saved, &top)), ["newfile"]);
    // A container of the committed image has its own /.dockerenv again.
    daemon.docker(&["run", "--rm", "me/init:v1", "test", "-f", "/.dockerenv"]).success();
}
