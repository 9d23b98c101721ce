//! The fixtures other compat tests stand on: busybox images, their OCI and
//! docker-archive forms, the local registry, and that the image really runs
//! on containerd.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use compat_tests::images::{
    build_busybox_layer, busybox_layer, sha256_digest, BuiltImage, BusyboxImage, Healthcheck,
    MEDIA_TYPE_OCI_CONFIG, MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_LAYER_GZIP,
    MEDIA_TYPE_OCI_MANIFEST,
};
use compat_tests::registry::{Registry, RegistryClient};
use serde_json::Value;

/// Path → (entry type, link target, contents) of every entry in a tar.
fn tar_entries(tar: &[u8]) -> BTreeMap<String, (tar::EntryType, Option<String>, Vec<u8>)> {
    let mut archive = tar::Archive::new(tar);
    let mut entries = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let kind = entry.header().entry_type();
        let link = entry
            .link_name()
            .unwrap()
            .map(|l| l.to_string_lossy().into_owned());
        let mut contents = Vec::new();
        entry.read_to_end(&mut contents).unwrap();
        entries.insert(path, (kind, link, contents));
    }
    entries
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A name no other test (or concurrent test run) uses.
fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

#[test]
fn rootfs_has_busybox_applets_and_base_files() {
    let image = BusyboxImage::new("berth-test/busybox").build().unwrap();
    let entries = tar_entries(&image.rootfs_tar().unwrap());

    let (kind, target, _) = &entries["bin/sh"];
    assert_eq!(*kind, tar::EntryType::Symlink);
    assert_eq!(target.as_deref(), Some("busybox"));
    assert_eq!(entries["bin/busybox"].0, tar::EntryType::Regular);
    assert!(entries.contains_key("bin/ls") && entries.contains_key("bin/wget"));
    let passwd = String::from_utf8(entries["etc/passwd"].2.clone()).unwrap();
    assert!(
        passwd.starts_with("root:x:0:0:") && passwd.contains("nobody:x:65534:"),
        "{passwd}"
    );
    for dir in [
        "tmp/", "root/", "proc/", "sys/", "dev/", "etc/", "var/", "home/",
    ] {
        assert_eq!(entries[dir].0, tar::EntryType::Directory, "{dir}");
    }

    let mut archive = tar::Archive::new(image.layers()[0].tar());
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let header = entry.header();
        assert_eq!((header.uid().unwrap(), header.gid().unwrap()), (0, 0));
        if entry.path().unwrap() == Path::new("tmp/") {
            assert_eq!(header.mode().unwrap(), 0o1777);
        }
    }
}

#[test]
fn busybox_layer_is_deterministic() {
    let fresh = build_busybox_layer().unwrap();
    let cached = busybox_layer().unwrap();
    assert_eq!(fresh.diff_id(), cached.diff_id());
    assert_eq!(fresh.digest(), cached.digest());
    assert_eq!(fresh.diff_id(), sha256_digest(fresh.tar()));
    assert_eq!(fresh.digest(), sha256_digest(fresh.compressed()));
    assert_eq!(gunzip(fresh.compressed()), fresh.tar());

    let build = || {
        BusyboxImage::new("berth-test/det:1")
            .layer_with_file("/etc/motd", "hello\n")
            .layer_with_random_file("/data/blob", 100_000, 7)
            .label("k", "v")
            .build()
            .unwrap()
    };
    let (first, second) = (build(), build());
    assert_eq!(first.id(), second.id());
    assert_eq!(first.manifest_digest(), second.manifest_digest());
    assert_eq!(first.oci_archive().unwrap(), second.oci_archive().unwrap());
    assert_eq!(
        first.docker_archive().unwrap(),
        second.docker_archive().unwrap()
    );
    let other_seed = BusyboxImage::new("x")
        .layer_with_random_file("/data/blob", 100_000, 8)
        .build()
        .unwrap();
    assert_ne!(
        other_seed.layers()[1].diff_id(),
        first.layers()[2].diff_id()
    );
}

#[test]
fn config_carries_every_option() {
    let image = BusyboxImage::new("berth-test/configured:2")
        .cmd(["echo", "hi"])
        .entrypoint(["/bin/sh", "-c"])
        .env("FOO", "bar")
        .working_dir("/tmp")
        .label("org.example.a", "1")
        .expose("80/tcp")
        .volume("/data")
        .user("nobody")
        .stop_signal("SIGINT")
        .healthcheck(Healthcheck {
            test: vec!["CMD-SHELL".into(), "true".into()],
            interval: Some(Duration::from_secs(1)),
            retries: Some(3),
            ..Healthcheck::default()
        })
        .layer_with_file("/tmp/sub/file", "x")
        .build()
        .unwrap();
    let config: Value = serde_json::from_slice(image.config_json()).unwrap();
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["os"], "linux");
    assert!(config["created"].as_str().unwrap().ends_with('Z'));
    let run = &config["config"];
    assert_eq!(run["Cmd"], serde_json::json!(["echo", "hi"]));
    assert_eq!(run["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
    assert_eq!(
        run["Env"],
        serde_json::json!([
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "FOO=bar"
        ])
    );
    assert_eq!(run["WorkingDir"], "/tmp");
    assert_eq!(run["Labels"]["org.example.a"], "1");
    assert_eq!(run["ExposedPorts"], serde_json::json!({"80/tcp": {}}));
    assert_eq!(run["Volumes"], serde_json::json!({"/data": {}}));
    assert_eq!(run["User"], "nobody");
    assert_eq!(run["StopSignal"], "SIGINT");
    assert_eq!(
        run["Healthcheck"],
        serde_json::json!({"Test": ["CMD-SHELL", "true"], "Interval": 1_000_000_000u64, "Retries": 3})
    );
    assert_eq!(config["rootfs"]["type"], "layers");
    assert_eq!(
        config["rootfs"]["diff_ids"],
        serde_json::json!(image.diff_ids())
    );
    assert_eq!(config["history"].as_array().unwrap().len(), 2);

    // The extra layer lists its parents and keeps /tmp sticky.
    let mut archive = tar::Archive::new(image.layers()[1].tar());
    let modes: BTreeMap<String, u32> = archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.path().unwrap().to_string_lossy().into_owned(),
                e.header().mode().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        modes,
        BTreeMap::from([
            ("tmp/".into(), 0o1777),
            ("tmp/sub/".into(), 0o755),
            ("tmp/sub/file".into(), 0o644)
        ])
    );

    let defaults: Value =
        serde_json::from_slice(BusyboxImage::new("d").build().unwrap().config_json()).unwrap();
    assert_eq!(defaults["config"]["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(defaults["history"].as_array().unwrap().len(), 1);
}

#[test]
fn flattened_rootfs_has_every_layer() {
    let image = BusyboxImage::new("berth-test/flat")
        .layer_with_file("/etc/passwd", "root:x:0:0::/root:/bin/sh\n")
        .layer_with_files([("/srv/a", "a"), ("/srv/b", "b")])
        .build()
        .unwrap();
    let entries = tar_entries(&image.rootfs_tar().unwrap());
    assert_eq!(entries["etc/passwd"].2, b"root:x:0:0::/root:/bin/sh\n");
    assert_eq!(entries["srv/a"].2, b"a");
    assert_eq!(entries["srv/b"].2, b"b");
    assert!(entries.contains_key("bin/sh"));
}

/// Checks that `dir/blobs/sha256/<hex>` exists, hashes to its name and has `size`.
fn verified_blob(dir: &Path, digest: &str, size: u64) -> Vec<u8> {
    let bytes = std::fs::read(
        dir.join("blobs/sha256")
            .join(digest.strip_prefix("sha256:").unwrap()),
    )
    .unwrap();
    assert_eq!(sha256_digest(&bytes), digest);
    assert_eq!(bytes.len() as u64, size);
    bytes
}

#[test]
fn oci_layout_digests_verify() {
    let image = BusyboxImage::new("berth-test/oci:v1")
        .layer_with_file("/hello", "hi\n")
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    image.write_oci_layout(dir.path()).unwrap();

    assert_eq!(
        read_json(&dir.path().join("oci-layout"))["imageLayoutVersion"],
        "1.0.0"
    );
    let index = read_json(&dir.path().join("index.json"));
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], MEDIA_TYPE_OCI_INDEX);
    let entry = &index["manifests"][0];
    assert_eq!(entry["mediaType"], MEDIA_TYPE_OCI_MANIFEST);
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.ref.name"],
        "v1"
    );
    assert_eq!(
        entry["annotations"]["io.containerd.image.name"],
        "docker.io/berth-test/oci:v1"
    );
    assert_eq!(entry["digest"], image.manifest_digest());

    let manifest_bytes = verified_blob(
        dir.path(),
        entry["digest"].as_str().unwrap(),
        entry["size"].as_u64().unwrap(),
    );
    let manifest: Value = serde_json::from_slice(&manifest_bytes).unwrap();
    assert_eq!(manifest["config"]["mediaType"], MEDIA_TYPE_OCI_CONFIG);
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    assert_eq!(config_digest, image.id());
    let config_bytes = verified_blob(
        dir.path(),
        config_digest,
        manifest["config"]["size"].as_u64().unwrap(),
    );
    let config: Value = serde_json::from_slice(&config_bytes).unwrap();

    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    for (layer, diff_id) in layers
        .iter()
        .zip(config["rootfs"]["diff_ids"].as_array().unwrap())
    {
        assert_eq!(layer["mediaType"], MEDIA_TYPE_OCI_LAYER_GZIP);
        let compressed = verified_blob(
            dir.path(),
            layer["digest"].as_str().unwrap(),
            layer["size"].as_u64().unwrap(),
        );
        assert_eq!(
            sha256_digest(&gunzip(&compressed)),
            diff_id.as_str().unwrap()
        );
    }

    // The tar form holds exactly the same files.
    let archived = tar_entries(&image.oci_archive().unwrap());
    for name in ["oci-layout", "index.json"] {
        assert_eq!(
            archived[name].2,
            std::fs::read(dir.path().join(name)).unwrap()
        );
    }
    let blob_count = archived
        .keys()
        .filter(|k| k.starts_with("blobs/sha256/") && k.len() > 13)
        .count();
    assert_eq!(blob_count, 4, "manifest, config and two layers");
}

#[test]
fn docker_archive_manifest_refers_to_files_that_exist() {
    let image = BusyboxImage::new("berth-test/saved:3")
        .layer_with_file("/a", "a")
        .build()
        .unwrap();
    let entries = tar_entries(&image.docker_archive().unwrap());

    let manifest: Value = serde_json::from_slice(&entries["manifest.json"].2).unwrap();
    let only = &manifest.as_array().unwrap()[0];
    assert_eq!(only["RepoTags"], serde_json::json!(["berth-test/saved:3"]));
    let config_file = only["Config"].as_str().unwrap();
    let config = &entries[config_file].2;
    assert_eq!(
        format!("sha256:{config_file}"),
        format!("{}.json", image.id())
    );
    assert_eq!(sha256_digest(config), image.id());

    let layers = only["Layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    for (layer, diff_id) in layers.iter().zip(image.diff_ids()) {
        let layer_tar = &entries[layer.as_str().unwrap()].2;
        assert_eq!(sha256_digest(layer_tar), diff_id);
    }

    let repositories: Value = serde_json::from_slice(&entries["repositories"].2).unwrap();
    let top = repositories["berth-test/saved"]["3"].as_str().unwrap();
    assert_eq!(format!("{top}/layer.tar"), layers[1].as_str().unwrap());
}

/// Fetches `name:tag` and every blob it names, checking each digest.
fn assert_pullable(client: &RegistryClient, image: &BuiltImage, name: &str, tag: &str) {
    let response = client
        .get(
            &format!("/v2/{name}/manifests/{tag}"),
            &[MEDIA_TYPE_OCI_MANIFEST],
        )
        .unwrap();
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(
        response.header("Docker-Content-Digest"),
        Some(image.manifest_digest())
    );
    assert_eq!(
        response.header("Content-Type"),
        Some(MEDIA_TYPE_OCI_MANIFEST)
    );
    assert_eq!(response.body, image.manifest_json());

    let manifest: Value = serde_json::from_slice(&response.body).unwrap();
    let mut digests = vec![manifest["config"]["digest"].as_str().unwrap()];
    digests.extend(
        manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap()),
    );
    for digest in digests {
        let blob = client
            .get(&format!("/v2/{name}/blobs/{digest}"), &[])
            .unwrap();
        assert_eq!(blob.status, 200);
        assert_eq!(sha256_digest(&blob.body), digest);
    }
}

#[test]
fn pushed_image_is_fetchable() {
    let registry = Registry::start().unwrap();
    let image = BusyboxImage::new("berth-test/pushed")
        .layer_with_file("/pushed", "yes")
        .build()
        .unwrap();
    let digest = registry
        .push_oci(&image, "berth-test/pushed", "v1")
        .unwrap();
    assert_eq!(digest, image.manifest_digest());
    assert_pullable(&registry.client(), &image, "berth-test/pushed", "v1");

    // A second push finds every blob already there.
    registry
        .push_oci(&image, "berth-test/pushed", "v2")
        .unwrap();
    assert_pullable(&registry.client(), &image, "berth-test/pushed", "v2");
    assert_eq!(
        registry.reference("berth-test/pushed", "v1"),
        format!("{}/berth-test/pushed:v1", registry.addr())
    );
}

#[test]
fn multi_platform_index_lists_both_platforms() {
    let registry = Registry::start().unwrap();
    let image = BusyboxImage::new("berth-test/multi").build().unwrap();
    let pushed = registry
        .push_multi_platform(&image, "berth-test/multi", "latest")
        .unwrap();

    let client = registry.client();
    let response = client
        .get(
            "/v2/berth-test/multi/manifests/latest",
            &[MEDIA_TYPE_OCI_INDEX],
        )
        .unwrap();
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(
        response.header("Docker-Content-Digest"),
        Some(pushed.index_digest.as_str())
    );
    assert_eq!(response.body, pushed.index_json);
    let index: Value = serde_json::from_slice(&response.body).unwrap();
    let platforms: Vec<(&str, &str)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["platform"]["architecture"].as_str().unwrap(),
                m["digest"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        platforms,
        [
            ("amd64", pushed.host_manifest_digest.as_str()),
            ("arm64", pushed.arm64.manifest_digest())
        ]
    );
    assert_eq!(index["manifests"][1]["platform"]["variant"], "v8");
    assert_pullable(&client, &image, "berth-test/multi", image.manifest_digest());
    assert_pullable(
        &client,
        &pushed.arm64,
        "berth-test/multi",
        pushed.arm64.manifest_digest(),
    );
}

#[test]
fn htpasswd_registry_needs_credentials() {
    let registry = Registry::start_with_htpasswd("berth", "s3cret pass").unwrap();
    assert_eq!(
        registry.anonymous_client().get("/v2/", &[]).unwrap().status,
        401
    );
    let wrong = RegistryClient::new(registry.addr(), Some(("berth", "wrong")));
    assert_eq!(wrong.get("/v2/", &[]).unwrap().status, 401);
    assert_eq!(registry.client().get("/v2/", &[]).unwrap().status, 200);

    let image = BusyboxImage::new("berth-test/private").build().unwrap();
    assert!(registry
        .anonymous_client()
        .push_oci(&image, "berth-test/private", "v1")
        .is_err());
    registry
        .push_oci(&image, "berth-test/private", "v1")
        .unwrap();
    assert_pullable(&registry.client(), &image, "berth-test/private", "v1");
    let anonymous = registry.anonymous_client().get(
        "/v2/berth-test/private/manifests/v1",
        &[MEDIA_TYPE_OCI_MANIFEST],
    );
    assert_eq!(anonymous.unwrap().status, 401);
}

#[test]
fn registries_run_side_by_side() {
    let registries: Vec<Registry> = (0..3).map(|_| Registry::start().unwrap()).collect();
    let mut addrs: Vec<&str> = registries.iter().map(Registry::addr).collect();
    addrs.sort_unstable();
    addrs.dedup();
    assert_eq!(addrs.len(), 3);
}

#[test]
fn stopped_registry_frees_its_port() {
    let registry = Registry::start().unwrap();
    let addr = registry.addr().to_owned();
    drop(registry);
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "{addr} still answers after drop"
    );
}

const CTR: &str = "/usr/bin/ctr";
const CONTAINERD_SOCKET: &str = "/run/containerd/containerd.sock";

fn ctr(namespace: &str, args: &[&str]) -> std::process::Output {
    Command::new(CTR)
        .args(["-n", namespace])
        .args(args)
        .output()
        .unwrap()
}

/// Removes the test's image and namespace even when the test fails.
struct CtrCleanup {
    namespace: String,
    image: String,
}

impl Drop for CtrCleanup {
    fn drop(&mut self) {
        let _ = ctr(&self.namespace, &["tasks", "kill", "-s", "SIGKILL", "t1"]);
        let _ = ctr(&self.namespace, &["containers", "rm", "t1"]);
        let _ = ctr(&self.namespace, &["images", "rm", "--sync", &self.image]);
        // Content and snapshots go with garbage collection; give it a moment.
        for _ in 0..20 {
            if ctr("default", &["namespaces", "rm", &self.namespace])
                .status
                .success()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        eprintln!("could not remove containerd namespace {}", self.namespace);
    }
}

#[test]
fn oci_archive_imports_and_runs_on_containerd() {
    compat_tests::containerd::ensure_running();
    assert!(Path::new(CTR).exists(), "{CTR} missing: install Debian's containerd package");
    let version = ctr("default", &["version"]);
    assert!(
        version.status.success(),
        "containerd does not answer at {CONTAINERD_SOCKET}: {version:?}"
    );

    let namespace = unique("fixtures-test");
    let image = BusyboxImage::new(format!("berth-test/{namespace}:latest"))
        .build()
        .unwrap();
    let cleanup = CtrCleanup {
        namespace: namespace.clone(),
        image: image.full_name(),
    };
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("image.tar");
    image
        .write_oci_archive(std::fs::File::create(&archive).unwrap())
        .unwrap();

    let import = ctr(&namespace, &["images", "import", archive.to_str().unwrap()]);
    assert!(
        import.status.success(),
        "ctr images import: {}",
        String::from_utf8_lossy(&import.stderr)
    );
    let listed = String::from_utf8(ctr(&namespace, &["images", "ls", "-q"]).stdout).unwrap();
    assert!(
        listed.lines().any(|l| l == cleanup.image),
        "{} not in {listed:?}",
        cleanup.image
    );

    let run = ctr(
        &namespace,
        &[
            "run",
            "--rm",
            &cleanup.image,
            "t1",
            "/bin/sh",
            "-c",
            "echo hi",
        ],
    );
    assert!(
        run.status.success(),
        "ctr run: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&run.stdout).trim(), "hi");
}
