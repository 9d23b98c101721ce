//! `docker cp` in and out of running and stopped containers, `docker
//! export` and `docker diff`, through the stock CLI and the raw API.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;

use compat_tests::Berthd;

fn tar_entries(data: &[u8]) -> Vec<(String, u64, u64, u32, String)> {
    let mut archive = tar::Archive::new(data);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            let link = e.link_name().unwrap().map(|l| l.display().to_string()).unwrap_or_default();
            (e.path().unwrap().display().to_string(), h.uid().unwrap(), h.gid().unwrap(), h.mode().unwrap(), link)
        })
        .collect()
}

const SETUP: &str = "mkdir -p /d/sub && echo hi > /d/sub/f && chmod 750 /d/sub && chown 1234:5678 /d/sub/f \
                     && ln -s /d/sub /d/link && ln -s ../etc/passwd /d/rel";

/// Now, to the nanosecond, for `docker events --until`.

#[test]
fn cp_out_of_running_and_stopped_containers_keeps_modes_owners_and_links() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["run", "-d", "--name", "src", "busybox", "sh", "-c", &format!("{SETUP} && sleep 300")]).success();
    let host = daemon.dir().join("out");
    std::fs::create_dir_all(&host).unwrap();
    for round in ["running", "stopped"] {
        // The setup may still be running on the first round.
        let out = (0..100)
            .map(|_| daemon.docker(&["cp", "src:/d", "-"]))
            .find(|o| o.code == 0 && tar_entries(o.stdout.as_bytes()).len() == 5)
            .unwrap_or_else(|| panic!("{round}: /d never complete"));
        let entries = tar_entries(out.stdout.as_bytes());
        assert_eq!(
            entries,
            [
                ("d/".into(), 0, 0, 0o755, String::new()),
                ("d/link".into(), 0, 0, 0o777, "/d/sub".into()),
                ("d/rel".into(), 0, 0, 0o777, "../etc/passwd".into()),
                ("d/sub/".into(), 0, 0, 0o750, String::new()),
                ("d/sub/f".into(), 1234, 5678, 0o644, String::new()),
            ],
            "{round}"
        );
        let dest = host.join(round);
        daemon.docker(&["cp", "src:/d", &dest.display().to_string()]).success();
        assert_eq!(std::fs::read_to_string(dest.join("sub/f")).unwrap(), "hi\n", "{round}");
        assert_eq!(std::fs::metadata(dest.join("sub")).unwrap().permissions().mode() & 0o777, 0o750);
        assert_eq!(std::fs::read_link(dest.join("link")).unwrap().display().to_string(), "/d/sub");
        // A trailing `/.` copies the contents; a symlink is copied as a link,
        // and followed with a trailing slash.
        let dot = tar_entries(daemon.docker(&["cp", "src:/d/.", "-"]).success().stdout.as_bytes());
        assert_eq!(dot[0].0, "./");
        let link = tar_entries(daemon.docker(&["cp", "src:/d/link", "-"]).success().stdout.as_bytes());
        assert_eq!(link, [("link".into(), 0, 0, 0o777, "/d/sub".into())]);
        let followed = tar_entries(daemon.docker(&["cp", "src:/d/link/", "-"]).success().stdout.as_bytes());
        assert_eq!(followed.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(), ["link/", "link/f"]);
        daemon.docker(&["stop", "-t", "0", "src"]).success();
    }
    // The stat header, base64 JSON, as dockerd sends it.
    let head = daemon.request("HEAD", "/containers/src/archive?path=/d/rel", None);
    assert_eq!(head.status, 200);
    let stat = head.header("X-Docker-Container-Path-Stat").unwrap().to_string();
    let stat: serde_json::Value = serde_json::from_slice(&base64_decode(&stat)).unwrap();
    assert_eq!((stat["name"].as_str(), stat["linkTarget"].as_str(), stat["mode"].as_u64()), (Some("rel"), Some("/etc/passwd"), Some(134218239)));
    assert!(stat["mtime"].as_str().unwrap().ends_with('Z'), "{stat}");
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

#[test]
fn cp_into_running_and_stopped_containers_and_volumes() {
    let daemon = Berthd::start_with_busybox();
    let host = daemon.dir().join("in");
    std::fs::create_dir_all(host.join("tree/deeper")).unwrap();
    std::fs::write(host.join("tree/deeper/file"), "payload\n").unwrap();
    std::fs::set_permissions(host.join("tree/deeper/file"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(host.join("single"), "one\n").unwrap();
    let tree = host.join("tree").display().to_string();
    let single = host.join("single").display().to_string();

    daemon.docker(&["run", "-d", "--name", "live", "-v", "vol:/data", "busybox", "sleep", "300"]).success();
    daemon.docker(&["cp", &tree, "live:/copied"]).success();
    daemon.docker(&["cp", &single, "live:/tmp/"]).success();
    daemon.docker(&["cp", &single, "live:/data/in-volume"]).success();
    let out = daemon.docker(&["exec", "live", "sh", "-c", "cat /copied/deeper/file /tmp/single /data/in-volume; stat -c %a /copied/deeper/file"]).success();
    assert_eq!(out.stdout, "payload\none\none\n600\n");

    daemon.docker(&["create", "--name", "cold", "-v", "vol:/data", "-v", "/anon", "busybox", "sh", "-c",
        "cat /copied/deeper/file /data/cold /anon/a"]).success();
    daemon.docker(&["cp", &tree, "cold:/copied"]).success();
    daemon.docker(&["cp", &single, "cold:/data/cold"]).success();
    daemon.docker(&["cp", &single, "cold:/anon/a"]).success();
    let out = daemon.docker(&["start", "-a", "cold"]).success();
    assert_eq!(out.stdout, "payload\none\none\n");
    // What went into the volume through the stopped container is in the volume.
    let out = daemon.docker(&["exec", "live", "cat", "/data/cold"]).success();
    assert_eq!(out.stdout, "one\n");
    // A tar on stdin, extracted as is.
    let mut builder = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(4);
    h.set_mode(0o640);
    h.set_uid(42);
    h.set_gid(43);
    h.set_cksum();
    builder.append_data(&mut h, "from-stdin", &b"tar\n"[..]).unwrap();
    let data = builder.into_inner().unwrap();
    daemon.docker_stdin(&["cp", "-", "live:/tmp"], &data).success();
    let out = daemon.docker(&["exec", "live", "sh", "-c", "cat /tmp/from-stdin; stat -c '%u:%g %a' /tmp/from-stdin"]).success();
    assert_eq!(out.stdout, "tar\n42:43 640\n");
    // `-a` gives the container's user the files.
    daemon.docker(&["create", "--name", "owned", "--user", "1234:5678", "busybox", "stat", "-c", "%u:%g", "/tmp/single"]).success();
    daemon.docker(&["cp", "-a", &single, "owned:/tmp/"]).success();
    assert_eq!(daemon.docker(&["start", "-a", "owned"]).success().stdout, "1234:5678\n");
    let events = daemon
        .docker(&["events", "--since", "0", "--until", &compat_tests::now_stamp(), "--filter", "type=container", "--format", "{{.Action}}"])
        .success();
    assert!(events.stdout.contains("extract-to-dir\n"), "{}", events.stdout);
}

#[test]
fn cp_errors_are_dockerds() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["create", "--name", "box", "-v", "rovol:/ro:ro", "busybox", "true"]).success();
    daemon.docker(&["create", "--name", "frozen", "--read-only", "busybox", "true"]).success();
    let host = daemon.dir().join("f");
    std::fs::write(&host, "x").unwrap();
    let f = host.display().to_string();
    let out = daemon.docker(&["cp", "box:/nope", &daemon.dir().join("x").display().to_string()]).failure();
    assert_eq!(out.stderr.trim_end(), "Error response from daemon: Could not find the file /nope in container box");
    let out = daemon.docker(&["cp", &f, "nosuch:/tmp"]).failure();
    assert!(out.stderr.contains("No such container: nosuch"), "{}", out.stderr);
    let out = daemon.docker(&["cp", &f, "box:/ro/"]).failure();
    assert!(out.stderr.contains("Error response from daemon: mounted volume is marked read-only"), "{}", out.stderr);
    let out = daemon.docker(&["cp", &f, "frozen:/tmp/"]).failure();
    assert!(out.stderr.contains("Error response from daemon: container rootfs is marked read-only"), "{}", out.stderr);
    let raw = daemon.request("GET", "/containers/box/archive", None);
    assert_eq!(raw.status, 400);
    let raw = daemon.request("PUT", "/containers/box/archive?path=/etc/passwd", Some(b""));
    assert_eq!((raw.status, raw.json()["message"].as_str()), (400, Some("extraction point is not a directory")));
    let raw = daemon.request("GET", "/containers/box/archive?path=/nope", None);
    assert_eq!(raw.status, 404);
}

#[test]
fn hostile_tars_and_symlinks_cannot_leave_the_container() {
    let daemon = Berthd::start_with_busybox();
    let outside = daemon.dir().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let o = outside.display().to_string();
    // Links in the container that point at the host's paths.
    daemon.docker(&["run", "--name", "evil", "busybox", "sh", "-c", &format!("ln -s / /rootlink && ln -s {o} /hostdir && mkdir -p {o}")]).success();
    let host = daemon.dir().join("payload");
    std::fs::write(&host, "pwn").unwrap();
    daemon.docker(&["cp", &host.display().to_string(), "evil:/hostdir/"]).success();
    daemon.docker(&["cp", &host.display().to_string(), "evil:/rootlink/tmp/"]).success();
    assert!(!outside.join("payload").exists(), "cp followed a container symlink onto the host");
    // A tar that climbs out of the destination is refused.
    let mut builder = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..18].copy_from_slice(b"../../../../../pwn");
    h.set_size(3);
    h.set_mode(0o644);
    h.set_cksum();
    builder.append(&h, &b"pwn"[..]).unwrap();
    let data = builder.into_inner().unwrap();
    let raw = daemon.request("PUT", "/containers/evil/archive?path=/tmp", Some(&data));
    assert_eq!(raw.status, 400, "{}", raw.text());
    // Reading through a link resolves inside the container too.
    let out = daemon.docker(&["cp", "evil:/hostdir/", "-"]).success();
    assert!(tar_entries(out.stdout.as_bytes()).iter().all(|e| e.0.starts_with("hostdir/")), "{}", out.stdout.len());
    let out = daemon.docker(&["cp", "evil:/tmp/payload", "-"]).success();
    assert_eq!(tar_entries(out.stdout.as_bytes())[0].0, "payload");
}

#[test]
fn export_and_diff_show_the_container_filesystem() {
    let daemon = Berthd::start_with_busybox();
    daemon
        .docker(&["run", "--name", "changed", "-v", "/vol", "busybox", "sh", "-c",
            "touch /new && mkdir -p /a/b && touch /a/b/c && rm /bin/true && echo x >> /etc/passwd"])
        .success();
    let diff = daemon.docker(&["diff", "changed"]).success();
    let mut lines: Vec<&str> = diff.stdout.lines().collect();
    lines.sort();
    assert_eq!(lines, ["A /a", "A /a/b", "A /a/b/c", "A /new", "A /vol", "C /bin", "C /etc", "C /etc/passwd", "D /bin/true"]);
    let raw = daemon.request("GET", "/containers/changed/changes", None);
    let changes = raw.json();
    assert!(changes.as_array().unwrap().contains(&serde_json::json!({"Path": "/bin/true", "Kind": 2})), "{changes}");
    daemon.docker(&["create", "--name", "pristine", "busybox", "true"]).success();
    assert_eq!(daemon.request("GET", "/containers/pristine/changes", None).text().trim(), "null");

    let out = std::process::Command::new(compat_tests::cli::docker_binary())
        .args(["-H", &daemon.host(), "export", "changed"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let names: Vec<String> = tar_entries(&out.stdout).into_iter().map(|e| e.0).collect();
    for want in ["bin/", "bin/busybox", "new", "a/b/c", "etc/passwd"] {
        assert!(names.iter().any(|n| n == want), "{want} missing from export: {names:?}");
    }
    assert!(!names.iter().any(|n| n == "bin/true"), "deleted file exported");
    let mut passwd = String::new();
    let mut archive = tar::Archive::new(&out.stdout[..]);
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().display().to_string() == "etc/passwd" {
            e.read_to_string(&mut passwd).unwrap();
        }
    }
    assert!(passwd.ends_with("x\n"), "{passwd}");
    let events = daemon
        .docker(&["events", "--since", "0", "--until", &compat_tests::now_stamp(), "--filter", "event=export", "--format", "{{.Actor.Attributes.name}}"])
        .success();
    assert_eq!(events.stdout, "changed\n");
}

#[test]
fn sizes_come_from_the_snapshotter() {
    let daemon = Berthd::start_with_busybox();
    daemon.docker(&["run", "--name", "big", "busybox", "sh", "-c", "dd if=/dev/zero of=/blob bs=1024 count=1024 2>/dev/null"]).success();
    let out = daemon.docker(&["inspect", "--size", "-f", "{{.SizeRw}} {{.SizeRootFs}}", "big"]).success();
    let sizes: Vec<i64> = out.stdout.split_whitespace().map(|s| s.parse().unwrap()).collect();
    assert!(sizes[0] >= 1 << 20 && sizes[0] < 2 << 20, "{sizes:?}");
    assert!(sizes[1] > sizes[0], "{sizes:?}");
    // Without `size` the fields are absent, as dockerd.
    let plain = daemon.request("GET", "/containers/big/json", None).json();
    assert!(plain.get("SizeRw").is_none(), "{plain}");
    let ps = daemon.docker(&["ps", "-a", "-s", "--format", "{{.Names}} {{.Size}}"]).success();
    // 1 MiB and the few files the runtime made; the image's layers besides.
    assert!(ps.stdout.starts_with("big 1.0") && ps.stdout.contains("MB (virtual "), "{}", ps.stdout);
}

/// `security.capability` for `cap_net_raw+ep` (VFS_CAP_REVISION_2).
const CAP_NET_RAW: [u8; 20] = [1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

fn xattr(path: &std::path::Path, name: &str) -> Option<Vec<u8>> {
    let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = [0u8; 256];
    // SAFETY: valid C strings and a buffer of the length given.
    let len = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| buf[..len as usize].to_vec())
}

#[test]
fn cp_keeps_capabilities_xattrs_and_subsecond_mtimes_as_dockerd() {
    let daemon = Berthd::start_with_busybox();
    let host = tempfile::tempdir().unwrap();
    let bind = format!("{}:/data", host.path().display());
    daemon.docker(&["run", "-d", "--name", "xa", "-v", &bind, "busybox", "sleep", "1000"]).success();
    // What GNU tar --xattrs --format=pax writes for such a file.
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([
        ("mtime", &b"1577934245.123456789"[..]),
        ("SCHILY.xattr.security.capability", &CAP_NET_RAW[..]),
        ("SCHILY.xattr.user.x", &b"hello"[..]),
    ])
    .unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_path("f").unwrap();
    h.set_mode(0o755);
    h.set_uid(0);
    h.set_gid(0);
    h.set_size(3);
    h.set_mtime(1577934245);
    h.set_cksum();
    b.append(&h, &b"hi\n"[..]).unwrap();
    let tar = b.into_inner().unwrap();
    daemon.docker_stdin(&["cp", "-", "xa:/data"], &tar).success();
    daemon.docker_stdin(&["cp", "-", "xa:/"], &tar).success();
    // In: the time to the nanosecond and every attribute, as dockerd.
    let times = daemon.docker(&["exec", "xa", "stat", "-c", "%y", "/f", "/data/f"]).success();
    assert_eq!(times.stdout, "2020-01-02 03:04:05.123456789 +0000\n".repeat(2));
    assert_eq!(xattr(&host.path().join("f"), "user.x").as_deref(), Some(&b"hello"[..]));
    assert_eq!(xattr(&host.path().join("f"), "security.capability").as_deref(), Some(&CAP_NET_RAW[..]));

    // Out (a file of the rootfs, then of the bind): dockerd 20.10 writes
    // the capability as a PAX record, no other attribute, whole seconds.
    for path in ["xa:/f", "xa:/data/f"] {
        let out = daemon.docker(&["cp", path, "-"]).success();
        let mut archive = tar::Archive::new(out.stdout.as_bytes());
        let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
        let records: Vec<(String, Vec<u8>)> = entry
            .pax_extensions()
            .unwrap()
            .map(|records| records.map(|r| r.unwrap()).map(|r| (r.key().unwrap().to_string(), r.value_bytes().to_vec())).collect())
            .unwrap_or_default();
        assert_eq!(records, [("SCHILY.xattr.security.capability".to_string(), CAP_NET_RAW.to_vec())], "{path}");
        assert_eq!(entry.header().mtime().unwrap(), 1577934245, "{path}");
        // The CLI puts the capability back on the host.
        let dest = host.path().join("back");
        daemon.docker(&["cp", path, &dest.display().to_string()]).success();
        assert_eq!(xattr(&dest, "security.capability").as_deref(), Some(&CAP_NET_RAW[..]), "{path}");
        std::fs::remove_file(&dest).unwrap();
    }
    // Export carries it too.
    let exported = host.path().join("export.tar");
    daemon.docker(&["export", "-o", &exported.display().to_string(), "xa"]).success();
    let mut archive = tar::Archive::new(std::fs::File::open(&exported).unwrap());
    let mut entry = archive.entries().unwrap().map(Result::unwrap).find(|e| e.path().unwrap().to_str() == Some("f")).unwrap();
    let cap = entry.pax_extensions().unwrap().unwrap().map(Result::unwrap).find(|r| r.key() == Ok("SCHILY.xattr.security.capability")).map(|r| r.value_bytes().to_vec());
    assert_eq!(cap, Some(CAP_NET_RAW.to_vec()));

    // Commit keeps the capability and the time (dockerd to the second).
    daemon.docker(&["commit", "xa", "me/xattrs"]).success();
    daemon.docker(&["create", "--name", "xb", "me/xattrs"]).success();
    let out = daemon.docker(&["cp", "xb:/f", "-"]).success();
    let mut archive = tar::Archive::new(out.stdout.as_bytes());
    let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
    let cap = entry.pax_extensions().unwrap().unwrap().map(Result::unwrap).find(|r| r.key() == Ok("SCHILY.xattr.security.capability")).map(|r| r.value_bytes().to_vec());
    assert_eq!(cap, Some(CAP_NET_RAW.to_vec()));
    let time = daemon.docker(&["run", "--rm", "me/xattrs", "stat", "-c", "%y", "/f"]).success();
    assert_eq!(time.stdout, "2020-01-02 03:04:05.000000000 +0000\n");
}

/// A refused upload much bigger than what the daemon reads of it before
/// answering: the CLI still gets dockerd's error, not a broken pipe (the
/// daemon lingers on close instead of resetting the connection).
#[test]
fn a_big_copy_to_a_missing_container_gets_the_error_not_a_broken_pipe() {
    let daemon = Berthd::start();
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![7u8; 96 << 20]).unwrap();
    let source = big.display().to_string();
    for _ in 0..3 {
        let out = daemon.docker(&["cp", &source, "nosuch:/big.bin"]).failure();
        assert!(out.stderr.contains("No such container: nosuch"), "{}", out.stderr);
        assert!(!out.stderr.contains("broken pipe"), "{}", out.stderr);
    }
}
