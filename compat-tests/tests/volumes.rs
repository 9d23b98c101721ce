//! Volumes through the stock CLI and bollard: create, ls, inspect, rm,
//! prune, named and anonymous volumes in containers, copy-up, `rm -v`.

use compat_tests::images::BusyboxImage;
use compat_tests::Berthd;

fn volume_names(daemon: &Berthd) -> Vec<String> {
    let out = daemon.docker(&["volume", "ls", "-q"]).success();
    let mut names: Vec<String> = out.stdout.lines().map(str::to_string).collect();
    names.sort();
    names
}

#[test]
fn create_ls_inspect_rm_through_the_cli() {
    let daemon = Berthd::start();
    let out = daemon.docker(&["volume", "create", "--label", "team=a", "myvol"]).success();
    assert_eq!(out.stdout, "myvol\n");
    daemon.docker(&["volume", "create", "other"]).success();
    let ls = daemon.docker(&["volume", "ls"]).success();
    assert_eq!(ls.stdout, "DRIVER    VOLUME NAME\nlocal     myvol\nlocal     other\n");
    let filtered = daemon.docker(&["volume", "ls", "-q", "--filter", "label=team=a"]).success();
    assert_eq!(filtered.stdout, "myvol\n");
    let inspect = daemon.docker(&["volume", "inspect", "myvol"]).success();
    let v: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
    let v = &v[0];
    let mountpoint = daemon.data_root.join("volumes/myvol/_data");
    assert_eq!(v["Mountpoint"], mountpoint.display().to_string());
    assert!(mountpoint.is_dir());
    assert_eq!((v["Name"].as_str(), v["Driver"].as_str(), v["Scope"].as_str()), (Some("myvol"), Some("local"), Some("local")));
    assert_eq!(v["Labels"], serde_json::json!({"team": "a"}));
    assert!(v["CreatedAt"].as_str().unwrap().ends_with('Z'), "{v}");
    let rm = daemon.docker(&["volume", "rm", "myvol"]).success();
    assert_eq!(rm.stdout, "myvol\n");
    assert!(!mountpoint.exists());
    let gone = daemon.docker(&["volume", "inspect", "myvol"]).failure();
    assert_eq!(gone.code, 1);
    assert!(gone.stderr.to_lowercase().contains("no such volume"), "{}", gone.stderr);
    let rm = daemon.docker(&["volume", "rm", "myvol"]).failure();
    assert!(rm.stderr.contains("get myvol: no such volume"), "{}", rm.stderr);
    daemon.docker(&["volume", "rm", "-f", "myvol"]).success();
}

#[test]
fn bad_names_and_drivers_get_dockerd_text() {
    let daemon = Berthd::start();
    let out = daemon.docker(&["volume", "create", "bad/name"]).failure();
    assert_eq!(
        out.stderr.trim_end(),
        "Error response from daemon: create bad/name: \"bad/name\" includes invalid characters for a local volume name, \
         only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
    );
    let out = daemon.docker(&["volume", "create", "x"]).failure();
    assert!(out.stderr.contains("volume name is too short, names should be at least two alphanumeric characters"), "{}", out.stderr);
    let out = daemon.docker(&["volume", "create", "-d", "nosuch", "vol"]).failure();
    assert!(out.stderr.contains("error looking up volume plugin nosuch: plugin \"nosuch\" not found"), "{}", out.stderr);
    assert!(volume_names(&daemon).is_empty());
}

#[test]
fn named_volume_keeps_data_across_containers() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["run", "--rm", "-v", "data:/data", "busybox", "sh", "-c", "echo kept > /data/f"]).success();
    assert_eq!(volume_names(&daemon), ["data"]);
    let out = daemon.docker(&["run", "--rm", "-v", "data:/mnt:ro", "busybox", "cat", "/mnt/f"]).success();
    assert_eq!(out.stdout, "kept\n");
    let ro = daemon.docker(&["run", "--rm", "-v", "data:/mnt:ro", "busybox", "touch", "/mnt/g"]).failure();
    assert!(ro.stderr.contains("Read-only file system"), "{}", ro.stderr);
    daemon.docker(&["create", "--name", "user", "-v", "data:/data", "busybox", "true"]).success();
    let mounts = daemon.docker(&["inspect", "-f", "{{json .Mounts}}", "user"]).success();
    let mounts: serde_json::Value = serde_json::from_str(&mounts.stdout).unwrap();
    let source = daemon.data_root.join("volumes/data/_data").display().to_string();
    assert_eq!(
        mounts,
        serde_json::json!([{"Type": "volume", "Name": "data", "Source": source, "Destination": "/data",
            "Driver": "local", "Mode": "z", "RW": true, "Propagation": ""}])
    );
}

#[test]
fn new_volume_is_filled_from_the_image() {
    let daemon = Berthd::start_with_busybox();
    let out = daemon.docker(&["run", "--rm", "-v", "etc:/etc", "busybox", "cat", "/etc/passwd"]).success();
    assert!(out.stdout.starts_with("root:"), "{}", out.stdout);
    // berthd's own /etc/hostname is mounted over the volume, not hidden by it.
    let out = daemon.docker(&["run", "--rm", "-v", "etc:/etc", "--hostname", "volhost", "busybox", "cat", "/etc/hostname"]).success();
    assert_eq!(out.stdout, "volhost\n");
    let out = daemon.docker(&["run", "--rm", "-v", "etc:/mnt", "busybox", "cat", "/mnt/group"]).success();
    assert!(out.stdout.starts_with("root:"), "{}", out.stdout);
    // nocopy leaves a new volume empty.
    let out = daemon.docker(&["run", "--rm", "-v", "empty:/etc:nocopy", "busybox", "ls", "/etc"]).success();
    assert!(!out.stdout.contains("passwd"), "{}", out.stdout);
}

#[test]
fn image_volumes_are_anonymous_and_rm_v_removes_them() {
    let daemon = Berthd::start_with_busybox();
    let archive = BusyboxImage::new("withvol:latest")
        .volume("/seeded")
        .layer_with_file("/seeded/hello", "from the image\n")
        .build()
        .and_then(|i| i.docker_archive())
        .unwrap();
    daemon.docker_stdin(&["load"], &archive).success();
    daemon.docker(&["create", "--name", "cv", "-v", "/scratch", "withvol", "cat", "/seeded/hello"]).success();
    let names = volume_names(&daemon);
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.iter().all(|n| n.len() == 64), "{names:?}");
    let out = daemon.docker(&["start", "-a", "cv"]).success();
    assert_eq!(out.stdout, "from the image\n");
    let labels = daemon.docker(&["volume", "inspect", "-f", "{{json .Labels}}", &names[0]]).success();
    assert_eq!(labels.stdout.trim(), r#"{"com.docker.volume.anonymous":""}"#);
    let mounts = daemon.docker(&["inspect", "-f", "{{range .Mounts}}{{.Type}} {{.Destination}} {{.Mode}};{{end}}", "cv"]).success();
    assert!(mounts.stdout.contains("volume /scratch ;") && mounts.stdout.contains("volume /seeded ;"), "{}", mounts.stdout);
    daemon.docker(&["rm", "-v", "cv"]).success();
    assert!(volume_names(&daemon).is_empty());
    // `run --rm` removes them too.
    daemon.docker(&["run", "--rm", "-v", "/tmp/x", "busybox", "true"]).success();
    assert!(volume_names(&daemon).is_empty());
}

#[test]
fn volume_in_use_cannot_be_removed() {
    let daemon = Berthd::start_with_busybox();
    let id = daemon.docker(&["create", "--name", "holder", "-v", "used:/x", "busybox", "true"]).success().stdout;
    let id = id.trim();
    let out = daemon.docker(&["volume", "rm", "used"]).failure();
    assert_eq!(out.code, 1);
    assert_eq!(out.stderr.trim_end(), format!("Error response from daemon: remove used: volume is in use - [{id}]"));
    let force = daemon.docker(&["volume", "rm", "-f", "used"]).failure();
    assert!(force.stderr.contains("volume is in use"), "{}", force.stderr);
    let raw = daemon.request("DELETE", "/volumes/used", None);
    assert_eq!(raw.status, 409);
    let df = daemon.request("GET", "/system/df", None);
    let df: serde_json::Value = serde_json::from_slice(&df.body).unwrap();
    assert_eq!(df["Volumes"][0]["Name"], "used");
    assert_eq!(df["Volumes"][0]["UsageData"], serde_json::json!({"Size": 0, "RefCount": 1}));
    let dangling = daemon.docker(&["volume", "ls", "-q", "--filter", "dangling=true"]).success();
    assert_eq!(dangling.stdout, "");
    daemon.docker(&["rm", "holder"]).success();
    daemon.docker(&["volume", "rm", "used"]).success();
}

#[test]
fn prune_takes_anonymous_volumes_unless_all() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["volume", "create", "named"]).success();
    daemon.docker(&["create", "--name", "anon", "-v", "/data", "busybox", "true"]).success();
    daemon.docker(&["create", "--name", "busy", "-v", "/held", "busybox", "true"]).success();
    let anon = daemon.docker(&["inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", "anon"]).success().stdout;
    let held = daemon.docker(&["inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", "busy"]).success().stdout;
    daemon.docker(&["rm", "anon"]).success();
    let out = daemon.docker(&["volume", "prune", "-f"]).success();
    assert!(out.stdout.contains(&format!("Deleted Volumes:\n{}\n", anon.trim())), "{}", out.stdout);
    assert!(out.stdout.contains("Total reclaimed space:"), "{}", out.stdout);
    let mut expected = vec![held.trim().to_string(), "named".to_string()];
    expected.sort();
    assert_eq!(volume_names(&daemon), expected);
    let out = daemon.docker(&["volume", "prune", "-f", "--all"]).success();
    assert!(out.stdout.contains("named"), "{}", out.stdout);
    assert_eq!(volume_names(&daemon), [held.trim()]);
}

#[test]
fn bollard_lists_and_inspects_volumes() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["volume", "create", "seen"]).success();
    let client = daemon.client();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let list = client.list_volumes(None::<bollard::query_parameters::ListVolumesOptions>).await.unwrap();
        let volumes = list.volumes.unwrap();
        assert_eq!(volumes.len(), 1);
        assert_eq!(volumes[0].name, "seen");
        assert_eq!(volumes[0].driver, "local");
        let inspect = client.inspect_volume("seen").await.unwrap();
        assert_eq!(inspect.mountpoint, daemon.data_root.join("volumes/seen/_data").display().to_string());
        let err = client.inspect_volume("nope").await.unwrap_err();
        assert!(err.to_string().contains("no such volume"), "{err}");
    });
    let raw = daemon.request("PUT", "/volumes/seen", Some(b"{}"));
    assert_eq!(raw.status, 503);
}
