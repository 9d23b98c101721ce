//! Local image management through the stock CLI and bollard: load (docker
//! archive and OCI layout), list, inspect, history, tag, rmi, prune, save,
//! and the bad-input cases. Every image is really unpacked into containerd.

use std::io::Write;
use std::process::{Command, Stdio};

use compat_tests::containerd::{self, SOCKET};
use compat_tests::images::{BuiltImage, BusyboxImage};
use compat_tests::Berthd;
use serde_json::Value;

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime").block_on(future)
}

fn ctr(namespace: &str, args: &[&str]) -> compat_tests::CmdOutput {
    let mut cmd = Command::new("ctr");
    cmd.args(["--address", SOCKET, "-n", namespace]).args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    compat_tests::cli::run(cmd, None)
}

fn image(reference: &str) -> BuiltImage {
    BusyboxImage::new(reference)
        .cmd(["sh", "-c", "echo hi"])
        .label("org.example.kind", "test")
        .layer_with_file("/hello", b"hello\n")
        .build()
        .expect("building test image")
}

fn load(daemon: &Berthd, archive: &[u8]) -> String {
    daemon.docker_stdin(&["load"], archive).success().stdout
}

fn inspect(daemon: &Berthd, name: &str) -> Value {
    let out = daemon.docker(&["image", "inspect", name]).success();
    let list: Value = serde_json::from_str(&out.stdout).expect("inspect JSON");
    list[0].clone()
}

fn image_ids(daemon: &Berthd) -> Vec<String> {
    let out = daemon.docker(&["images", "-a", "-q", "--no-trunc"]).success();
    out.stdout.lines().map(str::to_string).collect()
}

#[test]
fn docker_archive_loads_lists_inspects_and_runs() {
    let daemon = Berthd::start();
    let img = image("berth-test/bb:1");
    let out = load(&daemon, &img.docker_archive().unwrap());
    assert_eq!(out.trim(), "Loaded image: berth-test/bb:1");

    let listed = daemon.docker(&["images", "--no-trunc", "--format", "{{.Repository}} {{.Tag}} {{.ID}}"]).success();
    assert_eq!(listed.stdout.trim(), format!("berth-test/bb 1 {}", img.id()));

    let info = inspect(&daemon, "berth-test/bb:1");
    assert_eq!(info["Id"], img.id());
    assert_eq!(info["RepoTags"], serde_json::json!(["berth-test/bb:1"]));
    assert_eq!(info["RepoDigests"], serde_json::json!([]));
    assert_eq!(info["Config"]["Cmd"], serde_json::json!(["sh", "-c", "echo hi"]));
    assert_eq!(info["Config"]["Labels"]["org.example.kind"], "test");
    assert_eq!(info["Config"]["Entrypoint"], Value::Null);
    assert_eq!(info["RootFS"]["Type"], "layers");
    assert_eq!(info["RootFS"]["Layers"], serde_json::json!(img.diff_ids()));
    assert_eq!(info["Architecture"], img.platform().architecture);
    assert_eq!(info["Os"], "linux");
    assert_eq!(info["Created"], "2024-01-01T00:00:00Z");
    assert!(info["Size"].as_i64().unwrap() > 500_000, "{info}");

    // Same image by short ID, by full ID and by the fully qualified name.
    let short = &img.id()["sha256:".len()..][..12];
    for name in [short, img.id(), "docker.io/berth-test/bb:1"] {
        assert_eq!(inspect(&daemon, name)["Id"], img.id(), "{name}");
    }

    // Unpacked by containerd: the top snapshot exists and the image runs.
    let snapshots = ctr(&daemon.namespace, &["snapshots", "ls"]).success();
    assert!(snapshots.stdout.lines().count() >= 3, "{}", snapshots.stdout);
    let run = ctr(&daemon.namespace, &["run", "--rm", "docker.io/berth-test/bb:1", "t1", "/bin/sh", "-c", "cat /hello"]);
    assert_eq!(run.success().stdout.trim(), "hello");

    // /info counts distinct images.
    let info = daemon.docker(&["info", "--format", "{{.Images}}"]).success();
    assert_eq!(info.stdout.trim(), "1");
}

#[test]
fn oci_archive_loads_and_shows_history() {
    let daemon = Berthd::start();
    let img = BusyboxImage::new("localhost:5000/team/app:v2")
        .layer_with_file("/a", b"a")
        .layer_with_file("/b", b"b")
        .build()
        .unwrap();
    let out = load(&daemon, &img.oci_archive().unwrap());
    assert_eq!(out.trim(), "Loaded image: localhost:5000/team/app:v2");
    let info = inspect(&daemon, "localhost:5000/team/app:v2");
    assert_eq!(info["Id"], img.id());
    assert_eq!(info["RootFS"]["Layers"].as_array().unwrap().len(), 3);

    let history = daemon
        .docker(&["history", "--no-trunc", "--format", "{{.ID}}|{{.CreatedBy}}", "localhost:5000/team/app:v2"])
        .success();
    let lines: Vec<&str> = history.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", history.stdout);
    assert!(lines[0].starts_with(&format!("{}|", img.id())), "{}", history.stdout);
    assert!(lines[1].starts_with("<missing>|"), "{}", history.stdout);

    let snapshots = ctr(&daemon.namespace, &["snapshots", "ls"]).success();
    assert_eq!(snapshots.stdout.lines().count(), 4, "{}", snapshots.stdout);
}

#[test]
fn tag_and_rmi_untag_or_delete_as_dockerd() {
    let daemon = Berthd::start();
    let img = image("berth-test/rm:1");
    load(&daemon, &img.docker_archive().unwrap());
    daemon.docker(&["tag", "berth-test/rm:1", "other/name:2"]).success();
    let tags = inspect(&daemon, img.id())["RepoTags"].clone();
    assert_eq!(tags, serde_json::json!(["berth-test/rm:1", "other/name:2"]));

    // By ID with two repositories: a conflict, unless forced.
    let short = &img.id()["sha256:".len()..][..12];
    let refused = daemon.docker(&["rmi", short]).failure();
    assert!(
        refused.stderr.contains(&format!(
            "conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories"
        )),
        "{}",
        refused.stderr
    );
    let status = daemon.request("DELETE", &format!("/images/{short}"), None).status;
    assert_eq!(status, 409);

    // By name: only that name goes.
    let out = daemon.docker(&["rmi", "other/name:2"]).success();
    assert_eq!(out.stdout.trim(), "Untagged: other/name:2");
    assert_eq!(image_ids(&daemon), vec![img.id().to_string()]);

    // The last name: the image goes, layers with it.
    daemon.docker(&["tag", "berth-test/rm:1", "other/name:3"]).success();
    let out = daemon.docker(&["rmi", "-f", short]).success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines.contains(&"Untagged: berth-test/rm:1"), "{}", out.stdout);
    assert!(lines.contains(&"Untagged: other/name:3"), "{}", out.stdout);
    assert!(lines.contains(&format!("Deleted: {}", img.id()).as_str()), "{}", out.stdout);
    assert!(image_ids(&daemon).is_empty());
    let snapshots = ctr(&daemon.namespace, &["snapshots", "ls"]).success();
    assert_eq!(snapshots.stdout.lines().count(), 1, "{}", snapshots.stdout);

    let missing = daemon.docker(&["rmi", "berth-test/rm:1"]).failure();
    assert!(missing.stderr.contains("No such image: berth-test/rm:1"), "{}", missing.stderr);
}

/// berthd keeps the image records between changes. Another containerd
/// client's changes (here `ctr`'s) still show: a lookup by name at once,
/// the listing as soon as containerd's image event has arrived.
#[test]
fn images_tagged_and_removed_through_containerd_are_seen() {
    let daemon = Berthd::start();
    let img = image("berth-test/seen:1");
    load(&daemon, &img.docker_archive().unwrap());
    let tags = || {
        let out = daemon.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]).success();
        let mut tags: Vec<String> = out.stdout.lines().map(str::to_string).collect();
        tags.sort();
        tags
    };
    assert_eq!(tags(), ["berth-test/seen:1"]);

    let ns = daemon.namespace.as_str();
    ctr(ns, &["images", "tag", "docker.io/berth-test/seen:1", "docker.io/berth-test/seen:2"]).success();
    assert_eq!(inspect(&daemon, "berth-test/seen:2")["Id"], img.id());
    compat_tests::eventually(10, "the tag made through containerd to be listed", || {
        (tags() == ["berth-test/seen:1", "berth-test/seen:2"]).then_some(())
    });

    ctr(ns, &["images", "rm", "docker.io/berth-test/seen:1"]).success();
    compat_tests::eventually(10, "the name removed through containerd to leave the listing", || {
        (tags() == ["berth-test/seen:2"]).then_some(())
    });
    let gone = daemon.docker(&["image", "inspect", "berth-test/seen:1"]).failure();
    assert!(gone.stderr.contains("No such image: berth-test/seen:1"), "{}", gone.stderr);
    assert_eq!(inspect(&daemon, "berth-test/seen:2")["RepoTags"], serde_json::json!(["berth-test/seen:2"]));
}

#[test]
fn rmi_conflicts_with_containers_as_dockerd() {
    let daemon = Berthd::start();
    let img = image("berth-test/use:1");
    load(&daemon, &img.docker_archive().unwrap());
    let short = &img.id()["sha256:".len()..][..12];

    // A stopped container: the last name and the ID are refused unless forced.
    let stopped = daemon.docker(&["create", "berth-test/use:1"]).success().stdout.trim().to_string();
    let refused = daemon.docker(&["rmi", "berth-test/use:1"]).failure();
    assert!(
        refused.stderr.contains(&format!(
            "conflict: unable to remove repository reference \"berth-test/use:1\" (must force) - container {} is using its referenced image {short}",
            &stopped[..12]
        )),
        "{}",
        refused.stderr
    );
    let refused = daemon.docker(&["rmi", short]).failure();
    assert!(
        refused.stderr.contains(&format!(
            "conflict: unable to delete {short} (must be forced) - image is being used by stopped container {}",
            &stopped[..12]
        )),
        "{}",
        refused.stderr
    );
    assert_eq!(daemon.request("DELETE", "/images/berth-test/use:1", None).status, 409);
    daemon.docker(&["rm", &stopped]).success();

    // A running container: the ID cannot be forced; a forced name only untags.
    let running = daemon.docker(&["run", "-d", "berth-test/use:1", "sleep", "300"]).success().stdout.trim().to_string();
    for args in [vec!["rmi", short], vec!["rmi", "-f", short]] {
        let refused = daemon.docker(&args).failure();
        assert!(
            refused.stderr.contains(&format!(
                "conflict: unable to delete {short} (cannot be forced) - image is being used by running container {}",
                &running[..12]
            )),
            "{args:?}: {}",
            refused.stderr
        );
    }
    let out = daemon.docker(&["rmi", "-f", "berth-test/use:1"]).success();
    assert_eq!(out.stdout.trim(), "Untagged: berth-test/use:1");
    assert_eq!(image_ids(&daemon), vec![img.id().to_string()]);
    let dangling = daemon.docker(&["images", "-q", "--no-trunc", "-f", "dangling=true"]).success();
    assert_eq!(dangling.stdout.trim(), img.id());
    // Prune keeps what a container uses, even dangling.
    daemon.docker(&["image", "prune", "-a", "-f"]).success();
    assert_eq!(image_ids(&daemon), vec![img.id().to_string()]);
    assert_eq!(daemon.inspect_format("{{.State.Running}}", &running), "true");
    daemon.docker(&["rm", "-f", &running]).success();

    // A stopped container's image goes when forced; the container stays removable.
    let stopped = daemon.docker(&["create", img.id()]).success().stdout.trim().to_string();
    let out = daemon.docker(&["rmi", "-f", short]).success();
    assert!(out.stdout.contains(&format!("Deleted: {}", img.id())), "{}", out.stdout);
    assert!(image_ids(&daemon).is_empty());
    daemon.docker(&["rm", &stopped]).success();
}

#[test]
fn replaced_tags_leave_dangling_images_that_prune_removes() {
    let daemon = Berthd::start();
    let old = image("berth-test/p:1");
    let new = BusyboxImage::new("berth-test/p:1").created("2024-02-01T00:00:00Z").build().unwrap();
    load(&daemon, &old.docker_archive().unwrap());
    let out = load(&daemon, &new.docker_archive().unwrap());
    assert!(
        out.contains(&format!(
            "The image berth-test/p:1 already exists, renaming the old one with ID {} to empty string",
            old.id()
        )),
        "{out}"
    );
    let dangling = daemon.docker(&["images", "-q", "--no-trunc", "-f", "dangling=true"]).success();
    assert_eq!(dangling.stdout.trim(), old.id());
    let listed = daemon.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]).success();
    assert!(listed.stdout.contains("<none>:<none>"), "{}", listed.stdout);
    let info = daemon.docker(&["info", "--format", "{{.Images}}"]).success();
    assert_eq!(info.stdout.trim(), "2");

    let pruned = daemon.docker(&["image", "prune", "-f"]).success();
    assert!(pruned.stdout.contains(&format!("deleted: {}", old.id())), "{}", pruned.stdout);
    assert!(pruned.stdout.contains("Total reclaimed space"), "{}", pruned.stdout);
    assert_eq!(image_ids(&daemon), vec![new.id().to_string()]);

    // -a removes tagged images too.
    let pruned = daemon.docker(&["image", "prune", "-a", "-f"]).success();
    assert!(pruned.stdout.contains("untagged: berth-test/p:1"), "{}", pruned.stdout);
    assert!(image_ids(&daemon).is_empty());
}

#[test]
fn save_then_load_keeps_the_id_and_ctr_imports_the_archive() {
    let daemon = Berthd::start();
    let img = image("berth-test/save:1");
    load(&daemon, &img.oci_archive().unwrap());
    let path = daemon.dir().join("saved.tar");
    daemon.docker(&["save", "-o", path.to_str().unwrap(), "berth-test/save:1"]).success();

    let names: Vec<String> = {
        let mut archive = tar::Archive::new(std::fs::File::open(&path).unwrap());
        archive.entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect()
    };
    for wanted in ["manifest.json", "index.json", "oci-layout", "repositories"] {
        assert!(names.iter().any(|n| n == wanted), "{wanted} missing in {names:?}");
    }

    let other = Berthd::start();
    let out = other.docker(&["load", "-i", path.to_str().unwrap()]).success();
    assert_eq!(out.stdout.trim(), "Loaded image: berth-test/save:1");
    assert_eq!(inspect(&other, "berth-test/save:1")["Id"], img.id());

    // The same archive through bollard-free raw HTTP: /images/get?names=.
    let raw = daemon.request("GET", "/images/get?names=berth-test%2Fsave%3A1", None);
    assert_eq!(raw.status, 200);

    // containerd's own importer reads it too.
    let namespace = compat_tests::berthd::unique_name("berth-ctr-import");
    let imported = ctr(&namespace, &["images", "import", path.to_str().unwrap()]);
    let listed = ctr(&namespace, &["images", "ls", "-q"]);
    containerd::remove_namespace(&namespace);
    imported.success();
    assert!(listed.stdout.contains("docker.io/berth-test/save:1"), "{}", listed.stdout);
}

/// berthd unpacks a docker-archive's layers ahead of its manifest, trusting
/// each layer directory's legacy `json` for the parent. Links that lie (here
/// each layer claims the one above it as parent) must not end up in the
/// image: it loads with the manifest's order, and runs with every layer.
#[test]
fn a_docker_archive_whose_parent_links_lie_loads_in_the_manifests_order() {
    let daemon = Berthd::start();
    let img = BusyboxImage::new("berth-test/lying:1")
        .layer_with_file("/first", b"1\n")
        .layer_with_file("/second", b"2\n")
        .build()
        .expect("building test image");
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    let archive = img.docker_archive().unwrap();
    for entry in tar::Archive::new(&archive[..]).entries().unwrap() {
        let mut entry = entry.unwrap();
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        entries.push((path, data));
    }
    let dirs: Vec<String> = entries.iter().filter_map(|(p, _)| p.strip_suffix("/json").map(str::to_string)).collect();
    assert_eq!(dirs.len(), 3, "{dirs:?}");
    // The archive lists them bottom up; each now names the next as parent.
    for (path, data) in &mut entries {
        if let Some(dir) = path.strip_suffix("/json") {
            let i = dirs.iter().position(|d| d == dir).unwrap();
            let mut json = serde_json::json!({ "id": dir });
            if let Some(above) = dirs.get(i + 1) {
                json["parent"] = serde_json::json!(above);
            }
            *data = serde_json::to_vec(&json).unwrap();
        }
    }
    let refs: Vec<(&str, &[u8])> = entries.iter().map(|(p, d)| (p.as_str(), d.as_slice())).collect();
    let out = load(&daemon, &tar_of(&refs));
    assert_eq!(out.trim(), "Loaded image: berth-test/lying:1");
    assert_eq!(inspect(&daemon, "berth-test/lying:1")["Id"], img.id());
    let seen = daemon.docker(&["run", "--rm", "berth-test/lying:1", "cat", "/first", "/second"]).success();
    assert_eq!(seen.stdout, "1\n2\n");
}

fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (path, data) in entries {
        let mut header = [0u8; 512];
        header[..path.len()].copy_from_slice(path.as_bytes());
        header[100..107].copy_from_slice(b"0000644");
        header[108..115].copy_from_slice(b"0000000");
        header[116..123].copy_from_slice(b"0000000");
        header[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
        header[136..147].copy_from_slice(b"00000000000");
        header[156] = b'0';
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        header[148..156].copy_from_slice(b"        ");
        let sum: u32 = header.iter().map(|b| *b as u32).sum();
        header[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

#[test]
fn bad_archives_and_references_are_refused_and_change_nothing() {
    let daemon = Berthd::start();
    let not_an_image = tar_of(&[("hello.txt", b"hi")]);
    let out = daemon.docker_stdin(&["load"], &not_an_image).failure();
    assert!(out.stderr.contains("unrecognized image format"), "{}", out.stderr);

    let escaping = tar_of(&[("../../etc/passwd", b"root::0:0::/:/bin/sh\n")]);
    let out = daemon.docker_stdin(&["load"], &escaping).failure();
    assert!(out.stderr.contains("escapes the archive root"), "{}", out.stderr);

    // A truncated archive: the layer is cut short.
    let archive = image("berth-test/cut:1").docker_archive().unwrap();
    let out = daemon.docker_stdin(&["load"], &archive[..archive.len() / 2]).failure();
    assert!(!out.stderr.is_empty());

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"definitely not a tar").unwrap();
    daemon.docker_stdin(&["load"], &gz.finish().unwrap()).failure();

    assert!(image_ids(&daemon).is_empty());
    let leases = ctr(&daemon.namespace, &["leases", "ls", "-q"]).success();
    assert_eq!(leases.stdout.trim(), "", "ingestion leases left behind");

    let bad = daemon.docker(&["image", "inspect", "Busybox"]).failure();
    assert!(
        bad.stderr.contains("invalid reference format: repository name (library/Busybox) must be lowercase"),
        "{}",
        bad.stderr
    );
    let raw = daemon.request("GET", "/images/a:b:c/json", None);
    assert_eq!(raw.status, 400);
    let missing = daemon.request("GET", "/images/nosuch/json", None);
    assert_eq!(missing.status, 404);
    assert!(String::from_utf8_lossy(&missing.body).contains("No such image: nosuch:latest"));
    let bad_tag = daemon.docker(&["tag", "nosuch", "UPPER"]).failure();
    assert!(bad_tag.stderr.contains("invalid reference format"), "{}", bad_tag.stderr);
}

#[test]
fn bollard_reads_list_inspect_and_history() {
    let daemon = Berthd::start();
    let img = image("berth-test/bollard:1");
    load(&daemon, &img.docker_archive().unwrap());
    let client = daemon.client();
    block_on(async {
        let list = client
            .list_images(Some(bollard::query_parameters::ListImagesOptionsBuilder::default().all(true).build()))
            .await
            .expect("list_images");
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].id, img.id());
        assert_eq!(list[0].repo_tags, vec!["berth-test/bollard:1".to_string()]);
        assert_eq!(list[0].shared_size, -1);
        let inspected = client.inspect_image("berth-test/bollard:1").await.expect("inspect_image");
        assert_eq!(inspected.id.as_deref(), Some(img.id()));
        let history = client.image_history("berth-test/bollard:1").await.expect("image_history");
        assert_eq!(history[0].id, img.id());
    });
    let raw = daemon.request("GET", "/images/json", None);
    let list: Value = serde_json::from_slice(&raw.body).unwrap();
    for key in ["Containers", "Created", "Id", "Labels", "ParentId", "RepoDigests", "RepoTags", "SharedSize", "Size"] {
        assert!(list[0].get(key).is_some(), "{key} missing: {}", list[0]);
    }
}

/// A file served once per connection on the host's loopback, for
/// `docker import URL`; answers 404 for any other path.
fn serve_file(path: &'static str, body: Vec<u8>) -> u16 {
    use std::io::{BufRead, BufReader};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a file server");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            let _ = reader.read_line(&mut request);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            let mut stream = stream;
            if request.split_whitespace().nth(1) == Some(path) {
                let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                let _ = stream.write_all(&body);
            } else {
                let _ = write!(stream, "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot here\n");
            }
        }
    });
    port
}

fn xz(data: &[u8]) -> Vec<u8> {
    let mut child = Command::new("xz")
        .args(["-z", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("xz (xz-utils) is needed for this test");
    let mut stdin = child.stdin.take().unwrap();
    let input = data.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(out.status.success(), "xz failed");
    out.stdout
}

#[test]
fn import_with_changes_message_and_names_then_run() {
    let daemon = Berthd::start();
    let layer = compat_tests::images::busybox_layer().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rootfs.tar");
    std::fs::write(&file, layer.tar()).unwrap();
    let start = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();

    let out = daemon
        .docker(&[
            "import",
            "-c",
            r#"CMD ["echo", "imported"]"#,
            "-c",
            "ENV A=1",
            "--change",
            "WORKDIR /tmp",
            "-m",
            "my msg",
            file.to_str().unwrap(),
            "berth-test/imp:1",
        ])
        .success();
    let id = out.stdout.trim().to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{}", out.stdout);
    let info = inspect(&daemon, "berth-test/imp:1");
    assert_eq!(info["Id"], id.as_str());
    assert_eq!(info["RepoTags"], serde_json::json!(["berth-test/imp:1"]));
    assert_eq!(info["Comment"], "my msg");
    assert_eq!(info["Config"]["Env"], serde_json::json!(["A=1"]));
    assert_eq!(info["Config"]["Cmd"], serde_json::json!(["echo", "imported"]));
    assert_eq!(info["Config"]["WorkingDir"], "/tmp");
    assert_eq!(info["RootFS"]["Layers"], serde_json::json!([layer.diff_id()]));
    assert_eq!(info["Os"], "linux");
    let history = daemon.docker(&["history", "--format", "{{.CreatedBy}}|{{.Comment}}", "berth-test/imp:1"]).success();
    assert_eq!(history.stdout.trim(), "|my msg");
    let run = daemon.docker(&["run", "--rm", "berth-test/imp:1", "sh", "-c", "echo $A $(pwd)"]).success();
    assert_eq!(run.stdout.trim(), "1 /tmp");
    let run = daemon.docker(&["run", "--rm", "berth-test/imp:1"]).success();
    assert_eq!(run.stdout.trim(), "imported");

    // gzip on stdin, xz from a file: the same layer; no name leaves it dangling.
    let out = daemon.docker_stdin(&["import", "-", "berth-test/imp:gz"], layer.compressed()).success();
    let gz = inspect(&daemon, out.stdout.trim());
    assert_eq!(gz["RootFS"]["Layers"], serde_json::json!([layer.diff_id()]));
    assert_eq!(gz["Comment"], "Imported from -");
    std::fs::write(dir.path().join("rootfs.tar.xz"), xz(layer.tar())).unwrap();
    let out = daemon.docker(&["import", dir.path().join("rootfs.tar.xz").to_str().unwrap()]).success();
    let xz_id = out.stdout.trim().to_string();
    assert_eq!(inspect(&daemon, &xz_id)["RootFS"]["Layers"], serde_json::json!([layer.diff_id()]));
    let dangling = daemon.docker(&["images", "-q", "--no-trunc", "-f", "dangling=true"]).success();
    assert_eq!(dangling.stdout.trim(), xz_id);

    // From a URL, with dockerd's progress lines.
    let port = serve_file("/rootfs.tar", layer.tar().to_vec());
    daemon.reach_host_port(port);
    let url = format!("http://127.0.0.1:{port}/rootfs.tar");
    let raw = daemon.request("POST", &format!("/images/create?fromSrc={url}&repo=berth-test/imp:url&platform=linux/amd64"), None);
    assert_eq!(raw.status, 200, "{}", raw.text());
    let text = raw.text();
    assert!(text.contains(&format!(r#"{{"status":"Downloading from {url}"}}"#)), "{text}");
    assert!(text.contains(r#""status":"Importing""#), "{text}");
    let last: Value = serde_json::from_str(text.trim().lines().last().unwrap()).unwrap();
    assert_eq!(inspect(&daemon, "berth-test/imp:url")["Id"], last["status"]);
    assert_eq!(inspect(&daemon, "berth-test/imp:url")["Comment"], format!("Imported from {url}"));

    let until = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 1).to_string();
    let events = daemon
        .docker(&["events", "--since", &start.to_string(), "--until", &until, "--filter", "type=image", "--format", "{{.Action}} {{.Actor.ID}}"])
        .success();
    assert!(events.stdout.contains(&format!("import {id}")), "{}", events.stdout);
    assert!(events.stdout.contains(&format!("tag {id}")), "{}", events.stdout);
}

#[test]
fn import_refuses_bad_input_and_keeps_nothing() {
    let daemon = Berthd::start();
    let layer = compat_tests::images::busybox_layer().unwrap();
    // From a file: the CLI stops reading stdin when the daemon refuses early.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rootfs.tar");
    std::fs::write(&file, layer.tar()).unwrap();
    let file = file.to_str().unwrap();
    let bad = daemon.docker(&["import", "-c", "RUN true", file, "x"]).failure();
    assert!(bad.stderr.contains("run is not a valid change command"), "{}", bad.stderr);
    // Small bodies: the daemon answers before reading them.
    let small = tar_of(&[("a", b"a")]);
    let raw = daemon.request("POST", "/images/create?fromSrc=-&repo=Upper", Some(&small));
    assert_eq!(raw.status, 400);
    assert!(raw.text().contains("invalid reference format: repository name") && raw.text().contains("must be lowercase"), "{}", raw.text());
    let digest = format!("x@sha256:{}", "0".repeat(64));
    let raw = daemon.request("POST", &format!("/images/create?fromSrc=-&repo={digest}"), Some(&small));
    assert_eq!(raw.status, 400);
    assert!(raw.text().contains("cannot import digest reference"), "{}", raw.text());

    let bad = daemon.docker_stdin(&["import", "-", "x"], b"not a tar\n").failure();
    assert!(bad.stderr.contains("Error processing tar file: unexpected EOF"), "{}", bad.stderr);
    let evil = tar_of(&[("../../etc/berth-evil", b"x")]);
    let bad = daemon.docker_stdin(&["import", "-", "x"], &evil).failure();
    assert!(bad.stderr.contains(r#""../../etc/berth-evil" is outside of the image root"#), "{}", bad.stderr);
    assert!(!std::path::Path::new("/etc/berth-evil").exists());

    let bad = daemon.docker(&["import", "http://127.0.0.1:1/rootfs.tar"]).failure();
    assert!(bad.stderr.contains(r#"Get "http://127.0.0.1:1/rootfs.tar": "#), "{}", bad.stderr);
    let port = serve_file("/rootfs.tar", Vec::new());
    daemon.reach_host_port(port);
    let bad = daemon.docker(&["import", &format!("http://127.0.0.1:{port}/missing.tar")]).failure();
    assert!(bad.stderr.contains(&format!("failed to GET http://127.0.0.1:{port}/missing.tar with status 404 Not Found: not here")), "{}", bad.stderr);

    assert!(image_ids(&daemon).is_empty());
}

#[test]
fn archives_cross_load_between_berthd_and_the_reference_dockerd() {
    let daemon = Berthd::start();
    let reference = compat_tests::dockerd::ReferenceDockerd::start();
    let dir = tempfile::tempdir().unwrap();
    let img = image("berth-test/cross:1");
    load(&daemon, &img.docker_archive().unwrap());

    // berthd's save → dockerd's load: same ID, name, history; it runs.
    let from_berthd = dir.path().join("from-berthd.tar");
    daemon.docker(&["save", "-o", from_berthd.to_str().unwrap(), "berth-test/cross:1"]).success();
    let out = reference.docker(&["load", "-i", from_berthd.to_str().unwrap()]).success();
    assert!(out.stdout.contains("Loaded image: berth-test/cross:1"), "{}", out.stdout);
    let id = reference.docker(&["image", "inspect", "-f", "{{.Id}}", "berth-test/cross:1"]).success();
    assert_eq!(id.stdout.trim(), img.id());
    let history = |out: compat_tests::CmdOutput| out.stdout.lines().count();
    let ours = history(daemon.docker(&["history", "-q", "berth-test/cross:1"]).success());
    let theirs = history(reference.docker(&["history", "-q", "berth-test/cross:1"]).success());
    assert_eq!(ours, theirs);
    let run = reference.docker(&["run", "--rm", "--network", "none", "berth-test/cross:1"]).success();
    assert_eq!(run.stdout.trim(), "hi");

    // An image dockerd made (its import), saved by dockerd → berthd's load.
    let layer = compat_tests::images::busybox_layer().unwrap();
    let rootfs = dir.path().join("rootfs.tar");
    std::fs::write(&rootfs, layer.tar()).unwrap();
    let made = reference
        .docker(&["import", "-c", r#"CMD ["echo", "made by dockerd"]"#, rootfs.to_str().unwrap(), "berth-test/made:1"])
        .success();
    let made_id = made.stdout.trim().to_string();
    let from_dockerd = dir.path().join("from-dockerd.tar");
    reference.docker(&["save", "-o", from_dockerd.to_str().unwrap(), "berth-test/made:1"]).success();
    let out = daemon.docker(&["load", "-i", from_dockerd.to_str().unwrap()]).success();
    assert_eq!(out.stdout.trim(), "Loaded image: berth-test/made:1");
    assert_eq!(inspect(&daemon, "berth-test/made:1")["Id"], made_id.as_str());
    let run = daemon.docker(&["run", "--rm", "berth-test/made:1"]).success();
    assert_eq!(run.stdout.trim(), "made by dockerd");
}
