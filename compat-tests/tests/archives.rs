//! Hostile tars through every way in: `PUT /containers/{id}/archive`, the
//! build context, `ADD` of a local tar, `docker load` and `docker import`.
//! Names that climb out with `..`, absolute names, symlinks and hard links
//! to the host's files, device nodes and header entries that promise
//! gigabytes, also inside gzip (zip bombs, in pulled layers too): refused
//! with a clear error or kept inside their target, and the host is checked
//! afterwards.

use std::path::{Path, PathBuf};

use compat_tests::berthd::unique_name;
use compat_tests::Berthd;

/// One raw tar entry; names and link targets are written as given (the tar
/// crate's own setters refuse `..`).
struct Entry<'a> {
    kind: tar::EntryType,
    name: &'a str,
    link: &'a str,
    data: &'a [u8],
}

fn file<'a>(name: &'a str, data: &'a [u8]) -> Entry<'a> {
    Entry { kind: tar::EntryType::Regular, name, link: "", data }
}
fn symlink<'a>(name: &'a str, target: &'a str) -> Entry<'a> {
    Entry { kind: tar::EntryType::Symlink, name, link: target, data: b"" }
}
fn hardlink<'a>(name: &'a str, target: &'a str) -> Entry<'a> {
    Entry { kind: tar::EntryType::Link, name, link: target, data: b"" }
}

fn tar_of(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let mut h = tar::Header::new_gnu();
        {
            let gnu = h.as_gnu_mut().unwrap();
            gnu.name[..e.name.len()].copy_from_slice(e.name.as_bytes());
            gnu.linkname[..e.link.len()].copy_from_slice(e.link.as_bytes());
        }
        h.set_entry_type(e.kind);
        h.set_size(e.data.len() as u64);
        h.set_mode(if e.kind == tar::EntryType::Directory { 0o755 } else { 0o644 });
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        if matches!(e.kind, tar::EntryType::Char | tar::EntryType::Block) {
            h.set_device_major(1).unwrap();
            h.set_device_minor(1).unwrap();
        }
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(e.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0; 1024]);
    out
}

/// A tar whose first entry is a PAX header claiming 4 GiB (only its header
/// block is sent).
fn oversize_pax_header() -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.set_path("PaxHeaders/x").unwrap();
    h.set_entry_type(tar::EntryType::XHeader);
    h.set_size(4 << 30);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(&[b'9'; 64 * 1024]);
    out
}

/// A directory on the host that nothing may create: every hostile tar
/// below aims at it.
struct HostTarget(PathBuf);

impl HostTarget {
    fn new() -> Self {
        Self(PathBuf::from(format!("/tmp/{}", unique_name("berth-escape"))))
    }
    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
    #[track_caller]
    fn assert_untouched(&self) {
        assert!(!self.0.exists(), "{} was created on the host", self.0.display());
    }
}

impl Drop for HostTarget {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn links_of(path: &Path) -> u64 {
    std::os::unix::fs::MetadataExt::nlink(&std::fs::metadata(path).unwrap())
}

fn put_archive(daemon: &Berthd, container: &str, dest: &str, tar: &[u8]) -> (u16, String) {
    let path = format!("/v1.51/containers/{container}/archive?path={dest}");
    let resp = daemon.request("PUT", &path, Some(tar));
    (resp.status, String::from_utf8_lossy(&resp.body).into_owned())
}

#[test]
fn archive_put_stays_inside_the_container() {
    let daemon = Berthd::start_with_busybox();
    let target = HostTarget::new();
    let t = target.path();
    let name = unique_name("arch");
    daemon.docker(&["run", "-d", "--name", &name, "busybox", "sleep", "300"]).success();
    let passwd_links = links_of(Path::new("/etc/passwd"));

    // Climbing out of the destination is refused, nothing is written.
    let climb = format!("../../../../../..{t}/climbed");
    let (status, body) = put_archive(&daemon, &name, "/tmp", &tar_of(&[file(&climb, b"x")]));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("is outside of"), "{body}");

    // Absolute names, absolute and climbing symlinks, and a hard link to
    // "/etc/passwd" all resolve inside the container's root, as dockerd's
    // chrooted untar does.
    let abs = format!("{t}/absolute");
    let via_link = "esc/via-symlink".to_string();
    let via_up = format!("up{t}/via-up");
    let tar = tar_of(&[
        file(&abs, b"a"),
        symlink("esc", t),
        file(&via_link, b"b"),
        symlink("up", "../../../../../../.."),
        file(&via_up, b"c"),
        hardlink("passwd-link", "/etc/passwd"),
        Entry { kind: tar::EntryType::Char, name: "mem", link: "", data: b"" },
    ]);
    let (status, body) = put_archive(&daemon, &name, "/", &tar);
    assert_eq!(status, 200, "{body}");
    target.assert_untouched();
    assert_eq!(links_of(Path::new("/etc/passwd")), passwd_links);
    let inside = daemon
        .docker(&["exec", &name, "sh", "-c", &format!("cat {t}/absolute {t}/via-symlink {t}/via-up; stat -c %h /etc/passwd")])
        .success();
    assert_eq!(inside.stdout, "abc2\n");
    // The device node exists in the container, but its device cgroup keeps
    // the host's memory out of reach.
    let mem = daemon.docker(&["exec", &name, "head", "-c1", "/mem"]).failure();
    assert!(mem.stderr.contains("Operation not permitted"), "{}", mem.stderr);

    // A header entry promising 4 GiB is refused before it is read.
    let (status, body) = put_archive(&daemon, &name, "/tmp", &oversize_pax_header());
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("header field too long"), "{body}");
    target.assert_untouched();
    daemon.docker(&["rm", "-f", &name]).success();
}

fn build_with(daemon: &Berthd, context: &[u8]) -> (u16, String) {
    let resp = compat_tests::client::raw_request(
        Path::new(daemon.host().trim_start_matches("unix://")),
        "POST",
        "/v1.51/build?t=hostile",
        &[("Content-Type", "application/x-tar")],
        Some(context),
    );
    (resp.status, String::from_utf8_lossy(&resp.body).into_owned())
}

/// Whether the build failed with `needle` (in the status or the stream).
fn build_failed(answer: &(u16, String), needle: &str) -> bool {
    (answer.0 >= 400 || answer.1.contains("errorDetail")) && answer.1.contains(needle)
}

#[test]
fn build_contexts_and_add_cannot_write_outside() {
    let daemon = Berthd::start_with_busybox();
    let target = HostTarget::new();
    let t = target.path();
    let dockerfile = b"FROM busybox\nCOPY . /ctx/\n";
    let passwd_links = links_of(Path::new("/etc/passwd"));

    // A symlink to a host directory, then a file through it.
    let through = "esc/evil".to_string();
    // (The tar crate's check canonicalizes the link: a missing host
    // directory fails that way, an existing one as "outside of destination".)
    let answer = build_with(&daemon, &tar_of(&[file("Dockerfile", dockerfile), symlink("esc", t), file(&through, b"x")]));
    assert!(build_failed(&answer, "failed to read the build context"), "{answer:?}");
    target.assert_untouched();
    let answer = build_with(&daemon, &tar_of(&[file("Dockerfile", dockerfile), symlink("esc", "/tmp"), file(&through, b"x")]));
    assert!(build_failed(&answer, "outside of destination"), "{answer:?}");
    assert!(!Path::new("/tmp/evil").exists());
    target.assert_untouched();
    // A hard link to a host file.
    let answer = build_with(&daemon, &tar_of(&[file("Dockerfile", dockerfile), hardlink("pw", "/etc/passwd")]));
    assert!(build_failed(&answer, "outside of destination"), "{answer:?}");
    assert_eq!(links_of(Path::new("/etc/passwd")), passwd_links);
    // `..` names are dropped (as bsdtar does), absolute ones land inside.
    let climb = format!("../../../../../..{t}/climbed");
    let abs = format!("{t}/absolute");
    let answer = build_with(&daemon, &tar_of(&[file("Dockerfile", dockerfile), file(&climb, b"x"), file(&abs, b"y")]));
    assert!(answer.0 == 200 && !answer.1.contains("errorDetail"), "{answer:?}");
    target.assert_untouched();
    let listed = daemon.docker(&["run", "--rm", "hostile", "find", "/ctx", "-type", "f"]).success();
    let mut files: Vec<&str> = listed.stdout.lines().collect();
    files.sort();
    assert_eq!(files, ["/ctx/Dockerfile", &format!("/ctx{t}/absolute")[..]]);
    // A header that promises 4 GiB.
    let answer = build_with(&daemon, &oversize_pax_header());
    assert!(build_failed(&answer, "header field too long"), "{answer:?}");

    // ADD of a local tar that carries a symlink out of the image and a file
    // through it: the file stays in the image.
    let inner = tar_of(&[symlink("link", t), file("link/through", b"z")]);
    let mut outer = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        outer.append_data(&mut h, name, data).unwrap();
    };
    add("Dockerfile", b"FROM busybox\nADD layer.tar /unpacked/\n");
    add("layer.tar", &inner);
    let answer = build_with(&daemon, &outer.into_inner().unwrap());
    target.assert_untouched();
    assert!(answer.0 == 200 || build_failed(&answer, "outside of destination"), "{answer:?}");
}

#[test]
fn load_and_import_refuse_escapes_and_oversize_headers() {
    let daemon = Berthd::start();
    let target = HostTarget::new();
    // A docker-archive whose manifest names a layer outside the archive,
    // and one whose layer is a symlink to a host file.
    let manifest = br#"[{"Config":"config.json","RepoTags":["evil:1"],"Layers":["../../../../etc/passwd"]}]"#;
    let out = daemon.docker_stdin(&["load"], &tar_of(&[file("manifest.json", manifest), file("config.json", b"{}")])).failure();
    assert!(out.stderr.contains(r#"layer "../../../../etc/passwd" not found in the archive"#), "{}", out.stderr);
    let manifest = br#"[{"Config":"config.json","RepoTags":["evil:1"],"Layers":["layer.tar"]}]"#;
    let out = daemon
        .docker_stdin(&["load"], &tar_of(&[file("manifest.json", manifest), file("config.json", b"{}"), symlink("layer.tar", "/etc/passwd")]))
        .failure();
    assert!(out.stderr.contains("escapes the archive root"), "{}", out.stderr);
    let out = daemon.docker_stdin(&["load"], &oversize_pax_header()).failure();
    assert!(out.stderr.contains("header field too long"), "{}", out.stderr);
    // docker import: the same header, and a layer with a climbing name.
    let out = daemon.docker_stdin(&["import", "-", "evil:2"], &oversize_pax_header()).failure();
    assert!(out.stderr.contains("header field too long"), "{}", out.stderr);
    let climb = format!("../../..{}/x", target.path());
    let out = daemon.docker_stdin(&["import", "-", "evil:3"], &tar_of(&[file(&climb, b"x")])).failure();
    assert!(!out.stderr.is_empty(), "import of a climbing name succeeded");
    target.assert_untouched();
    assert_eq!(daemon.docker(&["images", "-q"]).success().stdout, "");
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, data).unwrap();
    gz.finish().unwrap()
}

/// A gzip-compressed tar holding one file `name` of `size` zero bytes: a
/// few hundred KiB that expand to `size` (compressed by the host's gzip,
/// which is much faster than an unoptimised flate2).
fn zero_bomb(name: &str, size: u64) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut gz = std::process::Command::new("gzip")
        .args(["-c", "-1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip");
    let mut stdout = gz.stdout.take().unwrap();
    let reading = std::thread::spawn(move || {
        let mut out = Vec::new();
        stdout.read_to_end(&mut out).unwrap();
        out
    });
    let mut stdin = gz.stdin.take().unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_path(name).unwrap();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    stdin.write_all(h.as_bytes()).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..size.div_ceil(1 << 20) {
        stdin.write_all(&zeros).unwrap();
    }
    stdin.write_all(&[0; 1024]).unwrap();
    drop(stdin);
    assert!(gz.wait().unwrap().success());
    reading.join().unwrap()
}

/// The most memory berthd has held (VmHWM), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status.lines().find_map(|l| l.strip_prefix("VmHWM:")).unwrap().trim().trim_end_matches(" kB").parse().unwrap()
}

/// Zip bombs: a compressed header entry that promises 4 GiB is refused
/// through every way a compressed tar comes in (archive PUT, load, import,
/// the build context, `ADD` of a .tar.gz, a pulled layer); a layer that
/// expands a thousandfold is streamed to its target, never held in memory.
#[test]
fn compressed_bombs_are_refused_or_streamed_in_bounded_memory() {
    use compat_tests::images::{sha256_digest, MEDIA_TYPE_OCI_CONFIG, MEDIA_TYPE_OCI_LAYER_GZIP, MEDIA_TYPE_OCI_MANIFEST};
    use compat_tests::registry::Registry;
    let daemon = Berthd::start_with_busybox();
    let registry = Registry::start().unwrap();
    daemon.reach_host_port(registry.port());
    // Past Go's 1 MiB, so containerd's own reader refuses it too.
    let mut bomb = oversize_pax_header();
    bomb.resize(bomb.len() + (2 << 20), b'9');
    let gz_bomb = gzip(&bomb);
    assert!(gz_bomb.len() < 16 << 10, "{}", gz_bomb.len());

    let name = unique_name("bomb");
    daemon.docker(&["run", "-d", "--name", &name, "busybox", "sleep", "300"]).success();
    let (status, body) = put_archive(&daemon, &name, "/tmp", &gz_bomb);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("header field too long"), "{body}");
    let out = daemon.docker_stdin(&["load"], &gz_bomb).failure();
    assert!(out.stderr.contains("header field too long"), "{}", out.stderr);
    let out = daemon.docker_stdin(&["import", "-", "bomb:1"], &gz_bomb).failure();
    assert!(out.stderr.contains("header field too long"), "{}", out.stderr);
    let answer = build_with(&daemon, &gz_bomb);
    assert!(build_failed(&answer, "header field too long"), "{answer:?}");
    let mut context = tar::Builder::new(Vec::new());
    for (file, data) in [("Dockerfile", &b"FROM busybox\nADD bomb.tar.gz /unpacked/\n"[..]), ("bomb.tar.gz", &gz_bomb)] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        context.append_data(&mut h, file, data).unwrap();
    }
    let answer = build_with(&daemon, &context.into_inner().unwrap());
    assert!(build_failed(&answer, "header field too long"), "{answer:?}");

    // The same layer in a registry: the pull fails, saying so, and leaves
    // no image.
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}"]}},"config":{{}}}}"#,
        sha256_digest(&bomb)
    );
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{MEDIA_TYPE_OCI_MANIFEST}","config":{{"mediaType":"{MEDIA_TYPE_OCI_CONFIG}","digest":"{}","size":{}}},"layers":[{{"mediaType":"{MEDIA_TYPE_OCI_LAYER_GZIP}","digest":"{}","size":{}}}]}}"#,
        sha256_digest(config.as_bytes()),
        config.len(),
        sha256_digest(&gz_bomb),
        gz_bomb.len()
    );
    let client = registry.client();
    client.upload_blob("berth/bomb", &sha256_digest(config.as_bytes()), config.as_bytes()).unwrap();
    client.upload_blob("berth/bomb", &sha256_digest(&gz_bomb), &gz_bomb).unwrap();
    client.put_manifest("berth/bomb", "v1", MEDIA_TYPE_OCI_MANIFEST, manifest.as_bytes()).unwrap();
    let reference = registry.reference("berth/bomb", "v1");
    let out = daemon.docker(&["pull", &reference]).failure();
    assert!(out.stderr.contains("failed to extract layer") && out.stderr.contains("header field too long"), "{}", out.stderr);
    assert!(daemon.docker(&["images", "-q", &reference]).success().stdout.is_empty());

    // 192 MiB of zeros in about 200 KiB: written inside the container,
    // never held whole in berthd's memory.
    const SIZE: u64 = 192 << 20;
    let expanding = zero_bomb("zeros", SIZE);
    assert!(expanding.len() < 2 << 20, "{}", expanding.len());
    let pid = daemon.pid().unwrap();
    let before = peak_rss_kib(pid);
    let (status, body) = put_archive(&daemon, &name, "/tmp", &expanding);
    assert_eq!(status, 200, "{body}");
    let grown = peak_rss_kib(pid).saturating_sub(before);
    eprintln!("peak RSS before {before} KiB, grew by {grown} KiB while expanding {SIZE} bytes");
    assert!(grown < 48 << 10, "berthd's peak RSS grew by {grown} KiB");
    let size = daemon.docker(&["exec", &name, "stat", "-c", "%s", "/tmp/zeros"]).success();
    assert_eq!(size.stdout.trim(), SIZE.to_string());
    daemon.docker(&["rm", "-f", &name]).success();
}

/// Links and device nodes in an imported layer or a build context: a
/// symlink to a host directory with a file through it, a hard link to
/// "/etc/passwd" and a device node all stay inside the image.
#[test]
fn imported_layers_and_build_contexts_keep_links_and_devices_inside() {
    let daemon = Berthd::start_with_busybox();
    let target = HostTarget::new();
    let t = target.path();
    let passwd_links = links_of(Path::new("/etc/passwd"));
    let through = "esc/through".to_string();
    let layer = tar_of(&[
        Entry { kind: tar::EntryType::Directory, name: "etc/", link: "", data: b"" },
        file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
        symlink("esc", t),
        file(&through, b"t"),
        hardlink("pw", "/etc/passwd"),
        Entry { kind: tar::EntryType::Char, name: "mem", link: "", data: b"" },
    ]);
    daemon.docker_stdin(&["import", "-", "linked:1"], &layer).success();
    // Creating a container unpacks the layer into its snapshot.
    daemon.docker(&["create", "--name", "linked", "linked:1", "/x"]).success();
    let exported = daemon.request("GET", "/v1.51/containers/linked/export", None);
    assert_eq!(exported.status, 200);
    let mut listed = Vec::new();
    let mut archive = tar::Archive::new(&exported.body[..]);
    for e in archive.entries().unwrap() {
        let e = e.unwrap();
        let link = e.link_name().unwrap().map(|l| l.display().to_string()).unwrap_or_default();
        listed.push(format!("{} {:?} {link}", e.path().unwrap().display(), e.header().entry_type()));
    }
    // The file through the symlink landed in the image's own copy of the
    // host path, the hard link points at the image's passwd.
    for want in [format!("esc Symlink {t}"), format!("{}/through Regular ", &t[1..]), "pw Link etc/passwd".into(), "mem Char ".into()] {
        assert!(listed.contains(&want), "{want:?} not in {listed:#?}");
    }
    target.assert_untouched();
    assert_eq!(links_of(Path::new("/etc/passwd")), passwd_links);

    // A device node in a build context: copied in as an empty file.
    let context = tar_of(&[
        file("Dockerfile", b"FROM busybox\nCOPY . /ctx/\nRUN test -f /ctx/mem && ! test -s /ctx/mem\n"),
        Entry { kind: tar::EntryType::Char, name: "mem", link: "", data: b"" },
    ]);
    let answer = build_with(&daemon, &context);
    assert!(answer.0 == 200 && answer.1.contains("Successfully built") && !answer.1.contains("errorDetail"), "{answer:?}");
    target.assert_untouched();
}

#[test]
fn a_pax_time_at_the_edge_of_the_range_is_extracted_and_the_daemon_lives() {
    let daemon = Berthd::start_with_busybox();
    let name = unique_name("paxtime");
    daemon.docker(&["create", "--name", &name, "busybox", "true"]).success();
    // Half a second before i64::MIN seconds: borrowing the second
    // overflowed (a panic in a debug build). Go wraps it; berthd keeps the
    // header's time.
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([("mtime", &b"-9223372036854775808.5"[..])]).unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_size(2);
    h.set_mode(0o644);
    h.set_mtime(1_577_934_245);
    h.set_uid(0);
    h.set_gid(0);
    b.append_data(&mut h, "edge", &b"ok"[..]).unwrap();
    let (status, body) = put_archive(&daemon, &name, "/tmp", &b.into_inner().unwrap());
    assert_eq!(status, 200, "{body}");
    let out = daemon.docker(&["cp", &format!("{name}:/tmp/edge"), "-"]).success();
    assert!(out.stdout.contains("ok"), "{}", out.stdout);
    daemon.docker(&["rm", "-f", &name]).success();
}
