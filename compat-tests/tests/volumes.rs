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

fn mounts_by_destination(daemon: &Berthd, container: &str) -> Vec<serde_json::Value> {
    let out = daemon.docker(&["inspect", "-f", "{{json .Mounts}}", container]).success();
    let mut mounts: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    mounts.sort_by(|a, b| a["Destination"].as_str().cmp(&b["Destination"].as_str()));
    mounts
}

#[test]
fn mount_flag_bind_volume_and_tmpfs_as_dockerd_reports_them() {
    let daemon = Berthd::start_with_busybox();
    let host = daemon.dir().join("hostdir");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("from-host"), "hello\n").unwrap();
    let h = host.display().to_string();
    daemon
        .docker(&[
            "create", "--name", "mnt",
            "--mount", &format!("type=bind,src={h},dst=/b"),
            "--mount", &format!("type=bind,src={h},dst=/bro,readonly,bind-propagation=rslave"),
            "--mount", "type=volume,src=vv,dst=/v,volume-label=team=a",
            "--mount", "type=volume,src=vro,dst=/vro,ro,volume-nocopy",
            "--mount", "type=volume,dst=/anon",
            "--mount", "type=tmpfs,dst=/t,tmpfs-size=64m,tmpfs-mode=1700",
            "-v", &format!("{h}:/bv:ro"),
            "busybox", "sh", "-c",
            "cat /b/from-host; touch /bro/x 2>&1; touch /vro/x 2>&1; echo w > /v/f; \
             mount | grep ' /t '; df -k /t | tail -n 1; true",
        ])
        .success();
    let mounts = mounts_by_destination(&daemon, "mnt");
    let anon = mounts[0]["Name"].as_str().unwrap().to_string();
    assert_eq!(anon.len(), 64, "{mounts:?}");
    let vol = |name: &str| daemon.data_root.join(format!("volumes/{name}/_data")).display().to_string();
    assert_eq!(
        mounts,
        vec![
            serde_json::json!({"Type": "volume", "Name": anon, "Source": vol(&anon), "Destination": "/anon",
                "Driver": "local", "Mode": "z", "RW": true, "Propagation": ""}),
            serde_json::json!({"Type": "bind", "Source": h, "Destination": "/b", "Mode": "", "RW": true, "Propagation": "rprivate"}),
            serde_json::json!({"Type": "bind", "Source": h, "Destination": "/bro", "Mode": "", "RW": false, "Propagation": "rslave"}),
            serde_json::json!({"Type": "bind", "Source": h, "Destination": "/bv", "Mode": "ro", "RW": false, "Propagation": "rprivate"}),
            serde_json::json!({"Type": "tmpfs", "Source": "", "Destination": "/t", "Mode": "", "RW": true, "Propagation": ""}),
            serde_json::json!({"Type": "volume", "Name": "vv", "Source": vol("vv"), "Destination": "/v",
                "Driver": "local", "Mode": "z", "RW": true, "Propagation": ""}),
            serde_json::json!({"Type": "volume", "Name": "vro", "Source": vol("vro"), "Destination": "/vro",
                "Driver": "local", "Mode": "z", "RW": false, "Propagation": ""}),
        ]
    );
    // HostConfig.Mounts is echoed as the CLI sent it.
    let sent = daemon.docker(&["inspect", "-f", "{{json .HostConfig.Mounts}}", "mnt"]).success();
    let sent: serde_json::Value = serde_json::from_str(&sent.stdout).unwrap();
    assert_eq!(sent[5], serde_json::json!({"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 67108864, "Mode": 960}}));
    // `docker ps` lists the same mount points.
    let listed = daemon.docker(&["ps", "-a", "--filter", "volume=vv", "--format", "{{.Names}} {{.Mounts}}"]).success();
    assert!(listed.stdout.starts_with("mnt ") && listed.stdout.contains("vv"), "{}", listed.stdout);
    let labels = daemon.docker(&["volume", "inspect", "-f", "{{json .Labels}}", "vv"]).success();
    assert_eq!(labels.stdout.trim(), r#"{"team":"a"}"#);
    let out = daemon.docker(&["start", "-a", "mnt"]).success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "hello");
    assert!(lines[1].contains("Read-only file system") && lines[2].contains("Read-only file system"), "{}", out.stdout);
    assert!(lines[3].starts_with("tmpfs on /t type tmpfs (rw,nosuid,nodev,noexec") && lines[3].contains("size=65536k,mode=1700"), "{}", out.stdout);
    assert!(lines[4].split_whitespace().nth(1) == Some("65536"), "{}", out.stdout);
    let out = daemon.docker(&["run", "--rm", "-v", "vv:/data", "busybox", "cat", "/data/f"]).success();
    assert_eq!(out.stdout, "w\n");
    // The anonymous volume is labelled and goes with `rm -v`.
    daemon.docker(&["rm", "-v", "mnt"]).success();
    assert_eq!(volume_names(&daemon), ["vro", "vv"]);
}

#[test]
fn tmpfs_flag_mounts_with_its_size() {
    let daemon = Berthd::start_with_busybox();
    let out = daemon
        .docker(&["run", "--rm", "--tmpfs", "/run:size=32m", "--tmpfs", "/scratch", "busybox", "sh", "-c",
            "df -k /run | tail -n 1; mount | grep -E ' /(run|scratch) '; echo x > /scratch/f && cat /scratch/f"])
        .success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0].split_whitespace().nth(1), Some("32768"), "{}", out.stdout);
    assert!(out.stdout.contains("tmpfs on /run type tmpfs (rw,nosuid,nodev,noexec,relatime,size=32768k)"), "{}", out.stdout);
    assert!(out.stdout.contains("tmpfs on /scratch type tmpfs (rw,nosuid,nodev,noexec,relatime)"), "{}", out.stdout);
    assert!(out.stdout.ends_with("x\n"), "{}", out.stdout);
    daemon.docker(&["create", "--name", "tmp", "--tmpfs", "/run:size=32m", "busybox"]).success();
    let tmpfs = daemon.docker(&["inspect", "-f", "{{json .HostConfig.Tmpfs}}", "tmp"]).success();
    assert_eq!(tmpfs.stdout.trim(), r#"{"/run":"size=32m"}"#);
}

#[test]
fn bad_mounts_are_refused_with_dockerd_text_and_create_nothing() {
    let daemon = Berthd::start_with_busybox();
    let cases: &[(&[&str], &str)] = &[
        (&["--mount", "type=bind,src=/nonexistent-berthd-src,dst=/x"],
            "invalid mount config for type \"bind\": bind source path does not exist: /nonexistent-berthd-src"),
        (&["--mount", "type=bind,src=/tmp,dst=x"],
            "invalid mount config for type \"bind\": invalid mount path: 'x' mount path must be absolute"),
        (&["--mount", "type=volume,src=fine,dst=rel"],
            "invalid mount config for type \"volume\": invalid mount path: 'rel' mount path must be absolute"),
        (&["--mount", "type=bind,src=/tmp,dst=/"], "invalid mount config for type \"bind\": invalid specification: destination can't be '/'"),
        (&["--mount", "type=volume,src=one,dst=/x", "-v", "two:/x"], "Duplicate mount point: /x"),
        (&["-v", "one:/x", "-v", "/tmp:/x/"], "Duplicate mount point: /x"),
        (&["--tmpfs", "/x", "-v", "/tmp:/x"], "Duplicate mount point: /x"),
        (&["--tmpfs", "rel"], "invalid mount path: 'rel' mount path must be absolute"),
        (&["--mount", "type=volume,src=/abs,dst=/x"], "create /abs: \"/abs\" includes invalid characters for a local volume name"),
        (&["--mount", "type=volume,dst=/x,readonly"],
            "invalid mount config for type \"volume\": must not set ReadOnly mode when using anonymous volumes"),
    ];
    for (args, expected) in cases {
        let mut all = vec!["create"];
        all.extend_from_slice(args);
        all.push("busybox");
        let out = daemon.docker(&all).failure();
        assert!(out.stderr.contains(&format!("Error response from daemon: {expected}")), "{args:?}: {}", out.stderr);
    }
    let raw = daemon.request("POST", "/containers/create", Some(br#"{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"foo","Target":"/x"}]}}"#));
    assert_eq!(raw.status, 400);
    assert_eq!(raw.json()["message"], "invalid mount config for type \"foo\": mount type unknown");
    assert_eq!(daemon.docker(&["ps", "-aq"]).success().stdout, "");
    assert!(volume_names(&daemon).is_empty(), "{:?}", volume_names(&daemon));
}

#[test]
fn volumes_from_shares_volumes_and_binds_read_only_on_request() {
    let daemon = Berthd::start_with_busybox();
    let host = daemon.dir().join("shared");
    std::fs::create_dir_all(&host).unwrap();
    let h = host.display().to_string();
    daemon
        .docker(&["create", "--name", "src", "-v", "data:/data", "-v", "/anon", "-v", &format!("{h}:/hb"), "busybox", "true"])
        .success();
    daemon.docker(&["run", "--rm", "--volumes-from", "src", "busybox", "sh", "-c", "echo one > /data/f; echo two > /anon/g; echo three > /hb/h"]).success();
    assert_eq!(std::fs::read_to_string(host.join("h")).unwrap(), "three\n");
    let out = daemon
        .docker(&["run", "--name", "reader", "--volumes-from", "src:ro", "busybox", "sh", "-c", "cat /data/f /anon/g /hb/h; touch /data/x /hb/x 2>&1; true"])
        .success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(&lines[..3], ["one", "two", "three"]);
    assert!(lines[3].contains("Read-only file system") && lines[4].contains("Read-only file system"), "{}", out.stdout);
    let mounts = mounts_by_destination(&daemon, "reader");
    let summary: Vec<(String, String, bool)> = mounts
        .iter()
        .map(|m| (m["Type"].as_str().unwrap().into(), m["Destination"].as_str().unwrap().into(), m["RW"].as_bool().unwrap()))
        .collect();
    assert_eq!(summary, [("volume".into(), "/anon".into(), false), ("volume".into(), "/data".into(), false), ("bind".into(), "/hb".into(), false)]);
    assert!(mounts.iter().all(|m| m["Mode"] == ""), "{mounts:?}");
    let vf = daemon.docker(&["inspect", "-f", "{{json .HostConfig.VolumesFrom}}", "reader"]).success();
    assert_eq!(vf.stdout.trim(), r#"["src:ro"]"#);
    // The source's anonymous volume is still in use by the reader.
    daemon.docker(&["rm", "-v", "src"]).success();
    let out = daemon.docker(&["start", "-a", "reader"]).success();
    assert!(out.stdout.starts_with("one\ntwo\n"), "{}", out.stdout);
    let out = daemon.docker(&["create", "--volumes-from", "nosuch", "busybox"]).failure();
    assert!(out.stderr.contains("Error response from daemon: No such container: nosuch"), "{}", out.stderr);
    let out = daemon.docker(&["create", "--volumes-from", "reader:xx", "busybox"]).failure();
    assert!(out.stderr.contains("Error response from daemon: invalid mode: xx"), "{}", out.stderr);
}

/// `-v` options dockerd refuses (moby's parseMountRaw: unknown or repeated
/// kinds of option, a bind with `nocopy`, a volume with a propagation, a
/// relative or `/` destination) are refused in its words, for named volumes
/// too; no container and no volume is made.
#[test]
fn bad_bind_and_volume_specs_are_refused_as_dockerd_refuses_them() {
    let daemon = Berthd::start_with_busybox();
    let cases = [
        ("vol1:/x:bogus", "invalid mode: bogus".to_string()),
        ("/tmp:/x:ro,rw", "invalid mode: ro,rw".into()),
        ("vol1:/x:z,Z", "invalid mode: z,Z".into()),
        ("vol1:/x:cached,delegated", "invalid mode: cached,delegated".into()),
        ("/tmp:/x:nocopy", r#"invalid volume specification: '/tmp:/x:nocopy': invalid mount config for type "bind": field VolumeOptions must not be specified"#.into()),
        ("vol1:/x:shared", r#"invalid volume specification: 'vol1:/x:shared': invalid mount config for type "volume": field BindOptions must not be specified"#.into()),
        ("vol1:/", r#"invalid volume specification: 'vol1:/': invalid mount config for type "volume": invalid specification: destination can't be '/'"#.into()),
        ("/tmp:relative", r#"invalid volume specification: '/tmp:relative': invalid mount config for type "bind": invalid mount path: 'relative' mount path must be absolute"#.into()),
    ];
    for (spec, words) in cases {
        let out = daemon.docker(&["create", "-v", spec, "busybox", "true"]).failure();
        assert!(out.stderr.contains(&format!("Error response from daemon: {words}")), "{spec}: {}", out.stderr);
    }
    assert_eq!(daemon.docker(&["ps", "-aq"]).success().stdout.trim(), "");
    assert!(volume_names(&daemon).is_empty());
    daemon.docker(&["create", "-v", "vol1:/x:nocopy,ro,z,cached", "-v", "/tmp:/y:ro,Z,rshared", "busybox", "true"]).success();
}

#[test]
fn volume_events_follow_create_mount_unmount_destroy_and_prune() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["volume", "create", "evvol"]).success();
    daemon.docker(&["run", "--name", "user", "-v", "evvol:/data:ro", "busybox", "true"]).success();
    daemon.docker(&["rm", "user"]).success();
    daemon.docker(&["volume", "rm", "evvol"]).success();
    daemon.docker(&["volume", "prune", "-f"]).success();
    let until = compat_tests::now_stamp();
    // `docker run` returns once the exit (and so the unmount) is recorded.
    let out = daemon
        .docker(&["events", "--since", "0", "--until", &until, "--filter", "type=volume",
            "--format", "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.driver}} {{index .Actor.Attributes \"read/write\"}}"])
        .success()
        .stdout;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, ["create evvol local ", "mount evvol local false", "unmount evvol local ", "destroy evvol local ", "prune  <no value> "], "{out}");
}

fn mounted_at(path: &std::path::Path) -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let wanted = path.display().to_string();
    info.lines().find(|l| l.split(' ').nth(4) == Some(wanted.as_str())).map(str::to_string)
}

#[test]
fn local_driver_options_mount_on_first_use_and_unmount_after_the_last() {
    let daemon = Berthd::start_with_busybox();
    for (args, text) in [
        (vec!["-o", "type=tmpfs"], r#"create v1: missing required option: "device""#),
        (vec!["-o", "foo=bar"], r#"create v1: invalid option: "foo""#),
        (vec!["-o", "o=size=1m", "-o", "type=tmpfs"], r#"create v1: missing required option: "device""#),
        (vec!["-o", "size=1m"], "create v1: quota size requested but no quota support"),
    ] {
        let mut cmd = vec!["volume", "create"];
        cmd.extend(args);
        cmd.push("v1");
        let out = daemon.docker(&cmd).failure();
        assert!(out.stderr.contains(text), "{cmd:?}: {}", out.stderr);
    }
    assert!(volume_names(&daemon).is_empty());

    // tmpfs: mounted while a container uses it, shared, gone after the last.
    daemon.docker(&["volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=10m,uid=1000", "tv"]).success();
    let options = daemon.docker(&["volume", "inspect", "-f", "{{json .Options}}", "tv"]).success();
    assert_eq!(options.stdout.trim(), r#"{"device":"tmpfs","o":"size=10m,uid=1000","type":"tmpfs"}"#);
    let data = daemon.data_root.join("volumes/tv/_data");
    assert_eq!(mounted_at(&data), None);
    daemon.docker(&["run", "-d", "--name", "user-a", "-v", "tv:/data", "busybox", "sleep", "300"]).success();
    let line = mounted_at(&data).expect("the volume's tmpfs is mounted while a container runs");
    assert!(line.contains(" - tmpfs tmpfs ") && line.contains("size=10240k") && line.contains("uid=1000"), "{line}");
    daemon.docker(&["run", "--rm", "-v", "tv:/data", "busybox", "sh", "-c", "echo shared > /data/f"]).success();
    assert_eq!(daemon.docker(&["exec", "user-a", "cat", "/data/f"]).success().stdout, "shared\n");
    assert!(mounted_at(&data).is_some(), "still used by user-a");
    assert!(!std::fs::read_dir(&data).unwrap().next().is_none());
    daemon.docker(&["rm", "-f", "user-a"]).success();
    compat_tests::eventually(20, "the tmpfs unmounted after its last user", || mounted_at(&data).is_none().then_some(()));
    assert!(std::fs::read_dir(&data).unwrap().next().is_none(), "the tmpfs content went with it");

    // A bind of a host directory (type=none, o=bind).
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("f"), "from the host\n").unwrap();
    let device = format!("device={}", host.path().display());
    daemon.docker(&["volume", "create", "-o", "type=none", "-o", &device, "-o", "o=bind", "bv"]).success();
    let out = daemon.docker(&["run", "--rm", "-v", "bv:/data", "busybox", "sh", "-c", "cat /data/f; echo back > /data/g"]).success();
    assert_eq!(out.stdout, "from the host\n");
    assert_eq!(std::fs::read_to_string(host.path().join("g")).unwrap(), "back\n");
    let bv = daemon.data_root.join("volumes/bv/_data");
    compat_tests::eventually(20, "the bind unmounted", || mounted_at(&bv).is_none().then_some(()));

    // A device that is not there: the start fails with dockerd's words.
    let missing = format!("device={}/nope", host.path().display());
    daemon.docker(&["volume", "create", "-o", "type=none", "-o", &missing, "-o", "o=bind", "gone"]).success();
    let out = daemon.docker(&["run", "--rm", "-v", "gone:/data", "busybox", "true"]).failure();
    let path = daemon.data_root.join("volumes/gone/_data");
    let text = format!(
        "error while mounting volume '{}': failed to mount local volume: mount {}/nope:{}, flags: 0x1000: no such file or directory",
        path.display(),
        host.path().display(),
        path.display()
    );
    assert!(out.stderr.contains(&text), "{}", out.stderr);
    daemon.docker(&["volume", "rm", "tv", "bv", "gone"]).success();
    assert!(volume_names(&daemon).is_empty());
}

#[test]
fn binds_from_the_data_root_get_rslave_or_are_refused() {
    let daemon = Berthd::start_with_busybox();
    let root = daemon.data_root.display().to_string();
    let refused = format!("type=bind,src={root},dst=/r,bind-propagation=rprivate");
    let out = daemon.docker(&["create", "--mount", &refused, "busybox"]).failure();
    let text = format!(
        r#"invalid mount config: must use either propagation mode "rslave" or "rshared" when mount source is within the daemon root, daemon root: "{root}", bind mount source: "{root}", propagation: "rprivate""#
    );
    assert!(out.stderr.contains(&text), "{}", out.stderr);
    let before = daemon.docker(&["ps", "-aq"]).success().stdout;
    assert_eq!(before, "");

    daemon.docker(&["volume", "create", "inside"]).success();
    let volumes = format!("type=bind,src={root}/volumes,dst=/r");
    let id = daemon.docker(&["create", "--mount", &volumes, "busybox", "ls", "/r"]).success().stdout.trim().to_string();
    assert_eq!(daemon.inspect_format("{{(index .Mounts 0).Propagation}}", &id), "rslave");
    let listed = daemon.docker(&["start", "-a", &id]).success();
    assert!(listed.stdout.contains("inside"), "{}", listed.stdout);
    let shared = format!("type=bind,src={root}/volumes,dst=/r,bind-propagation=rshared");
    let id = daemon.docker(&["create", "--mount", &shared, "busybox"]).success().stdout.trim().to_string();
    assert_eq!(daemon.inspect_format("{{(index .Mounts 0).Propagation}}", &id), "rshared");
}

#[test]
fn volume_options_through_mount() {
    let daemon = Berthd::start_with_busybox();
    let spec = "type=volume,src=viamount,dst=/data,volume-opt=type=tmpfs,volume-opt=device=tmpfs,volume-opt=o=size=1m";
    let out = daemon.docker(&["run", "--rm", "--mount", spec, "busybox", "sh", "-c", "grep ' /data ' /proc/mounts"]).success();
    assert!(out.stdout.starts_with("tmpfs /data tmpfs ") && out.stdout.contains("size=1024k"), "{}", out.stdout);
    let options = daemon.docker(&["volume", "inspect", "-f", "{{json .Options}}", "viamount"]).success();
    assert_eq!(options.stdout.trim(), r#"{"device":"tmpfs","o":"size=1m","type":"tmpfs"}"#);
}

#[test]
fn volume_subpath_mounts_part_of_a_volume_and_never_leaves_it() {
    let daemon = Berthd::start_with_busybox();
    let fill = "mkdir -p /v/dir/in && echo part > /v/dir/in/f && echo one > /v/file && ln -s /etc /v/abs \
                && ln -s ../.. /v/up && ln -s dir /v/rel";
    daemon.docker(&["run", "--rm", "-v", "vs:/v", "busybox", "sh", "-c", fill]).success();
    let sub = |subpath: &str, dst: &str| format!("type=volume,src=vs,dst={dst},volume-subpath={subpath}");

    let out = daemon.docker(&["run", "--rm", "--mount", &sub("dir", "/data"), "busybox", "sh", "-c", "cat /data/in/f; ls /data; echo w > /data/w"]).success();
    assert_eq!(out.stdout, "part\nin\n");
    let out = daemon.docker(&["run", "--rm", "-v", "vs:/v", "busybox", "cat", "/v/dir/w"]).success();
    assert_eq!(out.stdout, "w\n");
    // A symlink that stays inside is followed; a file can be the subpath.
    let out = daemon.docker(&["run", "--rm", "--mount", &sub("rel", "/data"), "--mount", &sub("file", "/one"), "busybox", "sh", "-c", "ls /data; cat /one"]).success();
    assert_eq!(out.stdout, "in\nw\none\n");

    // A link by its host path back into the volume is followed, as moby
    // resolves links as the host sees them.
    let mountpoint = daemon.docker(&["volume", "inspect", "-f", "{{.Mountpoint}}", "vs"]).success().stdout.trim().to_string();
    daemon.docker(&["run", "--rm", "-v", "vs:/v", "busybox", "ln", "-s", &format!("{mountpoint}/dir/in"), "/v/hostabs"]).success();
    let out = daemon.docker(&["run", "--rm", "--mount", &sub("hostabs", "/data"), "busybox", "cat", "/data/f"]).success();
    assert_eq!(out.stdout, "part\n");

    // Symlinks out of the volume are refused at start, as moby's safepath.
    for escape in ["abs", "up", "abs/passwd"] {
        let out = daemon.docker(&["run", "--rm", "--mount", &sub(escape, "/data"), "busybox", "true"]).failure();
        assert!(out.stderr.contains("path concatenation escapes the base directory"), "{escape}: {}", out.stderr);
    }
    let out = daemon.docker(&["run", "--rm", "--mount", &sub("missing", "/data"), "busybox", "true"]).failure();
    assert!(out.stderr.contains("cannot access path ") && out.stderr.contains("/missing: no such file or directory"), "{}", out.stderr);

    // Lexical checks at create, with dockerd's texts.
    let out = daemon.docker(&["create", "--mount", &sub("../x", "/data"), "busybox"]).failure();
    assert!(out.stderr.contains(r#"invalid mount config for type "volume": subpath must be a relative path within the volume"#), "{}", out.stderr);
    let out = daemon.docker(&["create", "--mount", "type=volume,dst=/data,volume-subpath=dir", "busybox"]).failure();
    assert!(out.stderr.contains(r#"invalid mount config for type "volume": must not set Subpath when using anonymous volumes"#), "{}", out.stderr);
    let body = br#"{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"volume","Source":"vs","Target":"/d","VolumeOptions":{"Subpath":"dir"}}]}}"#;
    let old = daemon.request("POST", "/v1.44/containers/create", Some(body));
    assert_eq!(old.status, 400, "{}", old.text());
    assert_eq!(old.json()["message"], "VolumeOptions.Subpath needs API v1.45 or newer");

    // docker cp through a stopped container's subpath; removing running
    // and stopped containers leaves the volume's data alone.
    daemon.docker(&["create", "--name", "stopped", "--mount", &sub("dir", "/data"), "busybox"]).success();
    let out = daemon.docker(&["cp", "stopped:/data/in/f", "-"]).success();
    assert!(out.stdout.contains("part\n"), "{}", out.stdout);
    daemon.docker(&["run", "-d", "--name", "running", "--mount", &sub("dir", "/data"), "busybox", "sleep", "1000"]).success();
    daemon.docker(&["rm", "-f", "running", "stopped"]).success();
    let out = daemon.docker(&["run", "--rm", "-v", "vs:/v", "busybox", "cat", "/v/dir/in/f", "/v/file"]).success();
    assert_eq!(out.stdout, "part\none\n");
    assert_eq!(daemon.docker(&["ps", "-aq"]).success().stdout, "");
}

#[test]
fn volume_subpath_gets_the_image_content_when_empty_as_dockerd() {
    let daemon = Berthd::start_with_busybox();
    let fill = "mkdir -p /v/empty /v/full /v/nocopy && echo mine > /v/full/only && ln -s /etc /v/abs";
    daemon.docker(&["run", "--rm", "-v", "vc:/v", "busybox", "sh", "-c", fill]).success();
    let sub = |subpath: &str, dst: &str| format!("type=volume,src=vc,dst={dst},volume-subpath={subpath}");

    // An empty subpath gets the image's directory at create (moby's
    // populateVolume); one with content, or nocopy, keeps its own.
    daemon.docker(&["create", "--name", "ce", "--mount", &sub("empty", "/etc"), "busybox"]).success();
    daemon.docker(&["create", "--name", "cf", "--mount", &sub("full", "/etc"), "busybox"]).success();
    daemon.docker(&["create", "--name", "cn", "--mount", &format!("{},volume-nocopy", sub("nocopy", "/etc")), "busybox"]).success();
    let out = daemon.docker(&["run", "--rm", "-v", "vc:/v", "busybox", "sh", "-c", "cat /v/empty/group | head -1; ls /v/full; ls /v/nocopy | wc -l"]).success();
    assert_eq!(out.stdout, "root:x:0:\nonly\n0\n");

    // A subpath that is not there yet is left to start, which refuses it.
    daemon.docker(&["create", "--name", "cm", "--mount", &sub("later", "/etc"), "busybox"]).success();
    let out = daemon.docker(&["start", "cm"]).failure();
    assert!(out.stderr.contains("/later: no such file or directory"), "{}", out.stderr);

    // Over an image directory, an escaping subpath fails the create itself
    // (where the image has nothing, only the start does).
    let out = daemon.docker(&["create", "--name", "cx", "--mount", &sub("abs", "/etc"), "busybox"]).failure();
    assert!(out.stderr.contains("failed to populate volume: path concatenation escapes the base directory"), "{}", out.stderr);
    let gone = daemon.docker(&["container", "inspect", "cx"]).failure();
    assert!(gone.stderr.contains("No such container: cx"), "{}", gone.stderr);
    daemon.docker(&["create", "--name", "cy", "--mount", &sub("abs", "/nothing-here"), "busybox"]).success();
}
