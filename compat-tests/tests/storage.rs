//! `storage-driver`: dockerd's graph driver names map to containerd
//! snapshotters (`overlay2` → overlayfs, `vfs` → native); containers get
//! their root filesystem from the chosen one, images pulled under another
//! driver are unpacked into it on first use, and a driver containerd does
//! not have fails the start as dockerd does.

use compat_tests::Berthd;

/// The root filesystem's type as the container sees it.
fn root_fs_type(daemon: &Berthd) -> String {
    let mounts = daemon.docker(&["run", "--rm", "busybox", "cat", "/proc/self/mountinfo"]).success().stdout;
    let root = mounts
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .unwrap_or_else(|| panic!("no / in mountinfo:\n{mounts}"));
    // After the " - " separator: fs type, source, options.
    root.split(" - ").nth(1).and_then(|rest| rest.split(' ').next()).unwrap_or_default().to_string()
}

#[test]
fn vfs_maps_to_the_native_snapshotter_and_unpacks_images_pulled_under_overlay2() {
    let mut first = Berthd::builder().daemon_json(serde_json::json!({"storage-driver": "overlay2"})).start_with_busybox();
    assert_eq!(first.docker(&["info", "-f", "{{.Driver}}"]).success().stdout.trim(), "overlayfs");
    assert_eq!(root_fs_type(&first), "overlay");
    first.stop();

    // The same images, now with vfs: the layers are unpacked into native
    // when a container first needs them.
    let second = first.successor(serde_json::json!({"storage-driver": "vfs"}));
    assert_eq!(second.docker(&["info", "-f", "{{.Driver}}"]).success().stdout.trim(), "native");
    let fs = root_fs_type(&second);
    assert_ne!(fs, "overlay", "the root filesystem under vfs is a plain directory");
    second.docker(&["create", "--name", "vfsbox", "busybox", "sh", "-c", "echo kept > /file"]).success();
    assert_eq!(second.inspect_format("{{.GraphDriver.Name}}", "vfsbox"), "native");
    second.docker(&["start", "-a", "vfsbox"]).success();
    assert!(second.docker(&["cp", "vfsbox:/file", "-"]).success().stdout.contains("kept"));
    second.docker(&["rm", "vfsbox"]).success();
}

#[test]
fn an_unknown_storage_driver_fails_the_start() {
    let out = Berthd::builder().daemon_json(serde_json::json!({"storage-driver": "bogus"})).run_to_exit();
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("error initializing graphdriver: driver not supported: bogus"), "{}", out.stderr);

    let out = Berthd::builder().arg("--storage-driver=bogus2").run_to_exit();
    assert!(out.stderr.contains("driver not supported: bogus2"), "{}", out.stderr);
}
