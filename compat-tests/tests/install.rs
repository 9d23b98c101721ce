//! Installing berthd and moving a host to it: `packaging/install.sh` into a
//! staging root, the Debian package (`cargo deb`), and the switch-over
//! script of docs/switching-from-dockerd.md run against a reference dockerd
//! and berthd, there and back.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use compat_tests::dockerd::ReferenceDockerd;
use compat_tests::images::BusyboxImage;
use compat_tests::{berthd::berthd_binary, cli, Berthd};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

#[track_caller]
fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed ({}):\n{text}", out.status);
    text
}

// ---------------------------------------------------------------- install script

/// The install script stages the binary, units, docs and an example
/// daemon.json (which berthd accepts), adds the docker group, and keeps an
/// operator's own daemon.json on a second run.
#[test]
fn install_script_stages_binary_units_config_and_group() {
    let stage = tempfile::tempdir().unwrap();
    let root = stage.path();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
    let install = || {
        run_ok(
            Command::new(repo().join("packaging/install.sh"))
                .args(["--destdir", root.to_str().unwrap(), "--binary"])
                .arg(berthd_binary()),
        )
    };
    install();

    let binary = root.join("usr/bin/berthd");
    assert_eq!(std::fs::read(&binary).unwrap(), std::fs::read(berthd_binary()).unwrap());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&binary).unwrap().permissions().mode() & 0o777, 0o755);
    // The log copier built beside it goes beside it.
    let copier = root.join("usr/bin/berthd-log-copier");
    assert_eq!(std::fs::read(&copier).unwrap(), std::fs::read(berthd_binary().with_file_name("berthd-log-copier")).unwrap());
    let service = std::fs::read_to_string(root.join("usr/lib/systemd/system/berthd.service")).unwrap();
    for line in ["ExecStart=/usr/bin/berthd -H fd://", "Type=notify", "KillMode=process", "Delegate=yes", "Requires=berthd.socket"] {
        assert!(service.lines().any(|l| l == line), "{line} missing from berthd.service:\n{service}");
    }
    let socket = std::fs::read_to_string(root.join("usr/lib/systemd/system/berthd.socket")).unwrap();
    assert!(socket.contains("ListenStream=/run/docker.sock") && socket.contains("SocketGroup=docker"), "{socket}");
    assert!(root.join("usr/share/doc/berthd/examples/daemon.json").is_file());
    assert!(root.join("usr/share/doc/berthd/switching-from-dockerd.md").is_file());
    let group = std::fs::read_to_string(root.join("etc/group")).unwrap();
    assert!(group.lines().any(|l| l.starts_with("docker:x:")), "{group}");

    // systemd accepts the units (verified beside a copy naming the staged binary).
    let units = tempfile::tempdir().unwrap();
    std::fs::write(units.path().join("berthd.service"), service.replace("/usr/bin/berthd", binary.to_str().unwrap())).unwrap();
    std::fs::write(units.path().join("berthd.socket"), &socket).unwrap();
    let verify = Command::new("systemd-analyze")
        .current_dir(units.path())
        .arg("verify")
        .args([units.path().join("berthd.socket"), units.path().join("berthd.service")])
        .output()
        .expect("systemd-analyze (package systemd) runs");
    let said = String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success() && said.trim().is_empty(), "systemd-analyze verify: {said}");

    // The example configuration is one berthd starts with.
    let example: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("etc/docker/daemon.json")).unwrap()).unwrap();
    assert_eq!(example, serde_json::from_slice::<serde_json::Value>(&std::fs::read(repo().join("packaging/daemon.json")).unwrap()).unwrap());
    let daemon = Berthd::builder().daemon_json(example).start();
    let live = daemon.docker(&["info", "--format", "{{.LiveRestoreEnabled}}"]).success();
    assert_eq!(live.stdout.trim(), "true");

    // A second run keeps the operator's file and the one docker group.
    std::fs::write(root.join("etc/docker/daemon.json"), "{\"debug\": true}\n").unwrap();
    install();
    assert_eq!(std::fs::read_to_string(root.join("etc/docker/daemon.json")).unwrap(), "{\"debug\": true}\n");
    let group = std::fs::read_to_string(root.join("etc/group")).unwrap();
    assert_eq!(group.lines().filter(|l| l.starts_with("docker:")).count(), 1, "{group}");

    // A prefix other than /usr is what the units then name.
    let other = tempfile::tempdir().unwrap();
    run_ok(
        Command::new(repo().join("packaging/install.sh"))
            .args(["--destdir", other.path().to_str().unwrap(), "--prefix", "/usr/local", "--binary"])
            .arg(berthd_binary()),
    );
    let service = std::fs::read_to_string(other.path().join("usr/local/lib/systemd/system/berthd.service")).unwrap();
    assert!(service.contains("ExecStart=/usr/local/bin/berthd -H fd://"), "{service}");
}

// ---------------------------------------------------------------- debian package

/// `cargo deb` (scripts/setup.sh --tests installs it) packages the binary
/// already built (no second build): its control fields and file list are
/// what packaging/ and daemon/Cargo.toml say, and dpkg unpacks it.
#[test]
fn debian_package_holds_binary_units_and_example_config() {
    let out_dir = tempfile::tempdir().unwrap();
    let binary = berthd_binary();
    // The profile whose binary the tests use (target/debug or target/release).
    let profile = if binary.parent().and_then(|p| p.file_name()).is_some_and(|n| n == "release") { "release" } else { "dev" };
    let target_dir = binary.parent().unwrap().parent().unwrap();
    let out = Command::new("cargo")
        .current_dir(repo())
        .env("CARGO_TARGET_DIR", target_dir)
        .args(["deb", "-p", "berthd", "--no-build", "--no-strip", "--fast", "--profile", profile, "--output"])
        .arg(out_dir.path())
        .output()
        .expect("running cargo deb");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "cargo deb failed (install it: cargo install cargo-deb; scripts/setup.sh --tests does):\n{text}");
    let deb = std::fs::read_dir(out_dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .unwrap_or_else(|| panic!("no .deb written:\n{text}"));

    let info = run_ok(Command::new("dpkg-deb").arg("-I").arg(&deb));
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.trim_start().strip_prefix(&format!("{name}: ")).map(str::to_string))
            .unwrap_or_else(|| panic!("no {name} in:\n{info}"))
    };
    assert_eq!(field("Package"), "berthd");
    let depends = field("Depends");
    for dep in ["containerd (>= 1.6)", "runc", "iptables", "libc6"] {
        assert!(depends.contains(dep), "Depends lacks {dep}: {depends}");
    }
    // It installs beside docker.io: no Conflicts, Replaces or Provides.
    for absent in ["Conflicts:", "Replaces:", "Provides:", "Breaks:"] {
        assert!(!info.contains(absent), "{absent} in:\n{info}");
    }
    assert!(info.contains(" postinst"), "no postinst:\n{info}");

    let listing = run_ok(Command::new("dpkg-deb").arg("-c").arg(&deb));
    let files: Vec<&str> = listing.lines().filter_map(|l| l.split_whitespace().last()).collect();
    for want in [
        "./usr/bin/berthd",
        "./usr/bin/berthd-log-copier",
        "./usr/lib/systemd/system/berthd.service",
        "./usr/lib/systemd/system/berthd.socket",
        "./usr/share/doc/berthd/examples/daemon.json",
        "./usr/share/doc/berthd/switching-from-dockerd.md",
        "./usr/share/doc/berthd/copyright",
    ] {
        assert!(files.iter().any(|f| f.trim_end_matches('/') == want), "{want} missing from the package:\n{listing}");
    }

    // It shares no file with docker.io (setup.sh --tests installs it), so
    // both install side by side.
    let docker_io = run_ok(Command::new("dpkg").args(["-L", "docker.io"]));
    let theirs: std::collections::HashSet<&str> = docker_io.lines().collect();
    let shared: Vec<&&str> = files
        .iter()
        .filter(|f| !f.ends_with('/'))
        .filter(|f| theirs.contains(f.trim_start_matches('.')))
        .collect();
    assert!(shared.is_empty(), "files docker.io also ships: {shared:?}");

    // dpkg takes it into a root of its own (unpacked: configuring would run
    // postinst on this host).
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("var/lib/dpkg/info")).unwrap();
    std::fs::create_dir_all(root.path().join("var/lib/dpkg/updates")).unwrap();
    std::fs::write(root.path().join("var/lib/dpkg/status"), "").unwrap();
    run_ok(Command::new("dpkg").arg(format!("--root={}", root.path().display())).args(["--force-depends", "--unpack"]).arg(&deb));
    let status = std::fs::read_to_string(root.path().join("var/lib/dpkg/status")).unwrap();
    assert!(status.contains("Package: berthd\nStatus: install ok unpacked"), "{status}");
    assert!(root.path().join("usr/bin/berthd").is_file());

    // Unpacked, the binary is the one built and the units are packaging/'s.
    let unpacked = tempfile::tempdir().unwrap();
    run_ok(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(unpacked.path()));
    assert_eq!(std::fs::read(unpacked.path().join("usr/bin/berthd")).unwrap(), std::fs::read(&binary).unwrap());
    assert_eq!(
        std::fs::read(unpacked.path().join("usr/lib/systemd/system/berthd.service")).unwrap(),
        std::fs::read(repo().join("packaging/berthd.service")).unwrap()
    );
}

// ---------------------------------------------------------------- switching

/// The test plays systemctl for the script: the script's `systemctl ARGS`
/// (a shim) writes ARGS to `request` and waits for `reply`, which the test
/// writes once it has stopped or started the daemon asked for.
const SYSTEMCTL_SHIM: &str = r#"#!/bin/sh
dir=$(dirname "$0")
echo "$*" >"$dir/request.tmp" && mv "$dir/request.tmp" "$dir/request"
while [ ! -e "$dir/reply" ]; do sleep 0.05; done
reply=$(cat "$dir/reply"); rm -f "$dir/reply"
[ "$reply" = ok ] || { echo "systemctl: $reply" >&2; exit 1; }
"#;

/// Run the switch script in `direction`, answering its systemctl calls with
/// `act`; answers the script's output.
fn switch(dir: &Path, env: &[(&str, String)], direction: &str, mut act: impl FnMut(&str) -> Result<(), String>) -> String {
    let log = dir.join(format!("switch-{direction}.log"));
    let file = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(repo().join("scripts/switch-from-dockerd.sh"))
        .arg(direction)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    let (request, reply) = (dir.join("request"), dir.join("reply"));
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if let Ok(args) = std::fs::read_to_string(&request) {
            std::fs::remove_file(&request).unwrap();
            let answer = match act(args.trim()) {
                Ok(()) => "ok".to_string(),
                Err(e) => e,
            };
            std::fs::write(dir.join("reply.tmp"), answer).unwrap();
            std::fs::rename(dir.join("reply.tmp"), &reply).unwrap();
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the switch script did not finish; output:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "switch {direction} failed ({status}):\n{output}");
    output
}

/// From a reference dockerd to berthd and back with the documented script:
/// tagged images (save/load) and volumes (moved directories) carry over
/// both ways, data written under berthd included; containers stay with
/// the daemon that made them and are listed for recreation.
#[test]
fn switch_script_moves_images_and_volumes_to_berthd_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (dockerd_root, berthd_root) = (d.join("dockerd-root"), d.join("berthd-root"));
    let (dockerd_sock, berthd_sock) = (d.join("dockerd.sock"), d.join("berthd.sock"));
    std::fs::write(d.join("systemctl"), SYSTEMCTL_SHIM).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(d.join("systemctl"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(d.join("docker-config")).unwrap();
    let env = [
        ("DOCKERD_HOST", format!("unix://{}", dockerd_sock.display())),
        ("BERTHD_HOST", format!("unix://{}", berthd_sock.display())),
        ("DOCKERD_ROOT", dockerd_root.display().to_string()),
        ("BERTHD_ROOT", berthd_root.display().to_string()),
        ("STATE", d.join("state").display().to_string()),
        ("SYSTEMCTL", d.join("systemctl").display().to_string()),
        ("DOCKER", cli::docker_binary().display().to_string()),
        ("DOCKER_CONFIG", d.join("docker-config").display().to_string()),
    ];
    // The script reaches dockerd at a fixed path, as on a host; each
    // dockerd the test starts is linked there.
    let start_dockerd = || {
        let dockerd = ReferenceDockerd::start_on(Some(&dockerd_root));
        let _ = std::fs::remove_file(&dockerd_sock);
        std::os::unix::fs::symlink(dockerd.host().strip_prefix("unix://").unwrap(), &dockerd_sock).unwrap();
        dockerd
    };
    let start_berthd = || {
        Berthd::builder()
            .without_default_host()
            .args(["-H", &format!("unix://{}", berthd_sock.display())])
            .args(["--data-root", berthd_root.to_str().unwrap()])
            .start()
    };

    // dockerd with an image, a volume with data and a container.
    let mut dockerd = Some(start_dockerd());
    let img = BusyboxImage::new("berth-test/switch:1").build().expect("building the test image");
    let reference = dockerd.as_ref().unwrap();
    reference.docker_stdin(&["load"], &img.docker_archive().unwrap()).success();
    reference.docker(&["volume", "create", "keep"]).success();
    reference
        .docker(&["run", "--rm", "--network", "none", "-v", "keep:/data", "berth-test/switch:1", "sh", "-c", "echo from-dockerd >/data/f"])
        .success();
    reference.docker(&["create", "--name", "left-behind", "--network", "none", "berth-test/switch:1"]).success();

    let mut berthd: Option<Berthd> = None;
    let output = switch(d, &env, "to-berthd", |args| match args {
        "disable --now docker.socket docker.service" => {
            dockerd = None;
            Ok(())
        }
        "enable --now berthd.socket berthd.service" => {
            berthd = Some(start_berthd());
            Ok(())
        }
        other => Err(format!("unexpected: {other}")),
    });
    assert!(output.contains("moved volume keep"), "{output}");
    assert!(output.contains("1 containers do not carry over"), "{output}");
    let listed = std::fs::read_to_string(d.join("state/containers.txt")).unwrap();
    assert_eq!(listed.trim(), "left-behind berth-test/switch:1");

    let daemon = berthd.as_ref().expect("berthd started");
    let id = daemon.docker(&["image", "inspect", "-f", "{{.Id}}", "berth-test/switch:1"]).success();
    assert_eq!(id.stdout.trim(), img.id());
    let volumes = daemon.docker(&["volume", "ls", "-q"]).success();
    assert_eq!(volumes.stdout.trim(), "keep");
    let read = daemon.docker(&["run", "--rm", "-v", "keep:/data", "berth-test/switch:1", "cat", "/data/f"]).success();
    assert_eq!(read.stdout.trim(), "from-dockerd");
    // Work done under berthd: more data, a new tag, a new volume.
    daemon
        .docker(&["run", "--rm", "-v", "keep:/data", "-v", "fresh:/fresh", "berth-test/switch:1", "sh", "-c", "echo from-berthd >/data/g; echo new >/fresh/n"])
        .success();
    daemon.docker(&["tag", "berth-test/switch:1", "berth-test/switch:2"]).success();
    assert!(daemon.docker(&["ps", "-aq"]).success().stdout.trim().is_empty());

    // And back.
    let output = switch(d, &env, "to-dockerd", |args| match args {
        "disable --now berthd.socket berthd.service" => {
            berthd = None;
            Ok(())
        }
        "enable --now docker.socket docker.service" => {
            dockerd = Some(start_dockerd());
            Ok(())
        }
        other => Err(format!("unexpected: {other}")),
    });
    assert!(output.contains("moved volume keep") && output.contains("moved volume fresh"), "{output}");
    let reference = dockerd.as_ref().expect("dockerd started again");
    for tag in ["berth-test/switch:1", "berth-test/switch:2"] {
        let id = reference.docker(&["image", "inspect", "-f", "{{.Id}}", tag]).success();
        assert_eq!(id.stdout.trim(), img.id());
    }
    let read = reference
        .docker(&["run", "--rm", "--network", "none", "-v", "keep:/data", "-v", "fresh:/fresh", "berth-test/switch:1", "cat", "/data/f", "/data/g", "/fresh/n"])
        .success();
    assert_eq!(read.stdout, "from-dockerd\nfrom-berthd\nnew\n");
    let names = reference.docker(&["ps", "-a", "--format", "{{.Names}}"]).success();
    assert_eq!(names.stdout.trim(), "left-behind");
    drop(dockerd.take());
}
