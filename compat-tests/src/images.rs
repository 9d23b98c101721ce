//! Test images built from Debian's busybox-static, without a daemon or the
//! internet: rootfs tars, OCI image layouts and `docker save` archives.
//!
//! Everything is deterministic (fixed mtimes, sorted entries, uid/gid 0,
//! gzip without a timestamp), so the same builder gives the same digests in
//! every run and on every machine with the same busybox.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use flate2::Compression;
use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};

pub const MEDIA_TYPE_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_TYPE_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_TYPE_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_TYPE_OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Annotation containerd (and `docker save` since 25.0) reads for the full image name.
pub const ANNOTATION_CONTAINERD_IMAGE_NAME: &str = "io.containerd.image.name";
/// OCI annotation for the reference; like `docker save`, it holds the tag.
pub const ANNOTATION_OCI_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// `created` of every image and history entry unless overridden.
pub const DEFAULT_CREATED: &str = "2024-01-01T00:00:00Z";
/// The same instant as [`DEFAULT_CREATED`], used as mtime of every tar entry.
const FIXED_MTIME: u64 = 1_704_067_200;

pub const DEFAULT_PATH_ENV: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where Debian's busybox-static puts the binary (with and without usrmerge).
const BUSYBOX_CANDIDATES: [&str; 2] = ["/usr/bin/busybox", "/bin/busybox"];

const PASSWD: &str =
    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n";
const GROUP: &str = "root:x:0:\nnobody:x:65534:\n";

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The busybox binary on this machine.
///
/// # Panics
/// When busybox is missing or dynamically linked: tests must fail with the
/// fix, never skip.
pub fn busybox_path() -> PathBuf {
    let Some(found) = BUSYBOX_CANDIDATES
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
    else {
        panic!(
            "busybox not found at {BUSYBOX_CANDIDATES:?}: install the Debian package busybox-static \
             (apt-get install busybox-static)"
        );
    };
    match elf_has_interpreter(found) {
        Ok(false) => found.to_path_buf(),
        Ok(true) => panic!(
            "{} is dynamically linked and cannot run inside a test image: install the Debian \
             package busybox-static (apt-get install busybox-static)",
            found.display()
        ),
        Err(e) => panic!("cannot read {}: {e:#}", found.display()),
    }
}

/// Whether an ELF64 little-endian binary asks for a dynamic loader (PT_INTERP).
/// Other formats answer `false`; running them will tell.
fn elf_has_interpreter(path: &Path) -> Result<bool> {
    const PT_INTERP: u32 = 3;
    let bytes = std::fs::read(path)?;
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 || bytes[5] != 1 {
        return Ok(false);
    }
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let mut offset_bytes = [0u8; 8];
    offset_bytes.copy_from_slice(&bytes[0x20..0x28]);
    let phoff = u64::from_le_bytes(offset_bytes) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        let Some(p_type) = bytes.get(at..at + 4) else {
            bail!("truncated program headers")
        };
        if u32::from_le_bytes([p_type[0], p_type[1], p_type[2], p_type[3]]) == PT_INTERP {
            return Ok(true);
        }
    }
    Ok(false)
}

/// One node of a layer's file tree.
#[derive(Clone)]
enum Node {
    Dir { mode: u32 },
    File { mode: u32, data: Arc<[u8]> },
    Symlink { target: String },
}

/// A layer's content: path (relative, no trailing slash) → node. The map's
/// order puts every parent before its children, which tar needs.
type FileTree = BTreeMap<String, Node>;

/// One image layer, kept both uncompressed (docker-archive, rootfs) and
/// gzip-compressed (OCI layout, registry).
pub struct Layer {
    files: FileTree,
    tar: Vec<u8>,
    diff_id: String,
    gzip: Vec<u8>,
    digest: String,
    created_by: String,
}

impl Layer {
    fn from_tree(files: FileTree, level: Compression, created_by: String) -> Result<Layer> {
        let tar = write_tree_tar(&files)?;
        let mut gz = flate2::GzBuilder::new().mtime(0).write(Vec::new(), level);
        gz.write_all(&tar)?;
        let gzip = gz.finish()?;
        Ok(Layer {
            files,
            diff_id: sha256_digest(&tar),
            digest: sha256_digest(&gzip),
            tar,
            gzip,
            created_by,
        })
    }

    /// The uncompressed layer tar.
    pub fn tar(&self) -> &[u8] {
        &self.tar
    }

    /// `sha256:` of the uncompressed tar, as in the config's `rootfs.diff_ids`.
    pub fn diff_id(&self) -> &str {
        &self.diff_id
    }

    /// The gzip-compressed tar, as stored in a registry or OCI layout.
    pub fn compressed(&self) -> &[u8] {
        &self.gzip
    }

    /// `sha256:` of the compressed tar, as in the manifest.
    pub fn digest(&self) -> &str {
        &self.digest
    }
}

fn write_tree_tar(files: &FileTree) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, node) in files {
        let mut header = tar::Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(FIXED_MTIME);
        match node {
            Node::Dir { mode } => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(*mode);
                header.set_size(0);
                builder.append_data(&mut header, format!("{path}/"), io::empty())?;
            }
            Node::File { mode, data } => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(*mode);
                header.set_size(data.len() as u64);
                builder.append_data(&mut header, path, &data[..])?;
            }
            Node::Symlink { target } => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                builder.append_link(&mut header, path, target)?;
            }
        }
    }
    Ok(builder.into_inner()?)
}

/// The busybox base layer, built once per process and shared by every image.
///
/// # Panics
/// When busybox-static is missing (see [`busybox_path`]).
pub fn busybox_layer() -> Result<Arc<Layer>> {
    static BASE: OnceLock<std::result::Result<Arc<Layer>, String>> = OnceLock::new();
    BASE.get_or_init(|| {
        build_busybox_layer()
            .map(Arc::new)
            .map_err(|e| format!("{e:#}"))
    })
    .clone()
    .map_err(anyhow::Error::msg)
}

/// Builds the busybox base layer from scratch, bypassing the cache:
/// `/bin/busybox`, `/bin/<applet>` → `busybox` for every applet, passwd and
/// group with root and nobody, and the usual empty directories.
pub fn build_busybox_layer() -> Result<Layer> {
    let busybox = busybox_path();
    let binary =
        std::fs::read(&busybox).with_context(|| format!("reading {}", busybox.display()))?;
    let listing = Command::new(&busybox)
        .arg("--list")
        .output()
        .with_context(|| format!("running {} --list", busybox.display()))?;
    ensure!(
        listing.status.success(),
        "{} --list failed: {}",
        busybox.display(),
        listing.status
    );
    let applets = String::from_utf8(listing.stdout).context("busybox --list is not UTF-8")?;

    let mut files = FileTree::new();
    for dir in ["bin", "dev", "etc", "home", "proc", "root", "sys", "var"] {
        files.insert(dir.to_owned(), Node::Dir { mode: 0o755 });
    }
    files.insert("root".to_owned(), Node::Dir { mode: 0o700 });
    files.insert("tmp".to_owned(), Node::Dir { mode: 0o1777 });
    files.insert(
        "bin/busybox".to_owned(),
        Node::File {
            mode: 0o755,
            data: binary.into(),
        },
    );
    for applet in applets.lines().map(str::trim) {
        // `busybox` lists itself; the binary is already there.
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        files.insert(
            format!("bin/{applet}"),
            Node::Symlink {
                target: "busybox".to_owned(),
            },
        );
    }
    ensure!(
        files.contains_key("bin/sh"),
        "{} has no sh applet",
        busybox.display()
    );
    files.insert(
        "etc/passwd".to_owned(),
        Node::File {
            mode: 0o644,
            data: PASSWD.as_bytes().into(),
        },
    );
    files.insert(
        "etc/group".to_owned(),
        Node::File {
            mode: 0o644,
            data: GROUP.as_bytes().into(),
        },
    );
    Layer::from_tree(
        files,
        Compression::default(),
        "busybox-static rootfs".to_owned(),
    )
}

/// A container health check in image config form.
#[derive(Clone, Debug, Default)]
pub struct Healthcheck {
    /// `["CMD", ...]`, `["CMD-SHELL", "..."]` or `["NONE"]`.
    pub test: Vec<String>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub start_period: Option<Duration>,
    pub retries: Option<u32>,
}

impl Serialize for Healthcheck {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        // The image config stores durations as integer nanoseconds.
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Wire<'a> {
            test: &'a [String],
            #[serde(skip_serializing_if = "Option::is_none")]
            interval: Option<u128>,
            #[serde(skip_serializing_if = "Option::is_none")]
            timeout: Option<u128>,
            #[serde(skip_serializing_if = "Option::is_none")]
            start_period: Option<u128>,
            #[serde(skip_serializing_if = "Option::is_none")]
            retries: Option<u32>,
        }
        Wire {
            test: &self.test,
            interval: self.interval.map(|d| d.as_nanos()),
            timeout: self.timeout.map(|d| d.as_nanos()),
            start_period: self.start_period.map(|d| d.as_nanos()),
            retries: self.retries,
        }
        .serialize(serializer)
    }
}

/// `{}`, the value type of `ExposedPorts` and `Volumes`.
#[derive(Clone, Debug, Default, Serialize)]
struct Empty {}

/// The `config` object of an image config (what a container inherits).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct RunConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    exposed_ports: BTreeMap<String, Empty>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    env: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entrypoint: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cmd: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    healthcheck: Option<Healthcheck>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    volumes: BTreeMap<String, Empty>,
    #[serde(skip_serializing_if = "Option::is_none")]
    working_dir: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_signal: Option<String>,
}

/// What an extra layer holds, turned into a [`Layer`] at build time.
#[derive(Clone)]
enum LayerSpec {
    Files(Vec<(String, Arc<[u8]>)>),
    Random {
        path: String,
        size_bytes: usize,
        seed: u64,
    },
}

/// Builder for a busybox image: the shared base layer, optional extra
/// layers, and the image config.
///
/// ```text
/// let image = BusyboxImage::new("berth-test/hello:1")
///     .cmd(["sh", "-c", "cat /hello"])
///     .layer_with_file("/hello", b"hi\n")
///     .build()?;
/// ```
#[derive(Clone)]
pub struct BusyboxImage {
    reference: String,
    created: String,
    os: String,
    architecture: String,
    variant: Option<String>,
    run_config: RunConfig,
    extra_layers: Vec<LayerSpec>,
}

/// Docker's name for the host architecture, so the busybox binary matches.
fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

fn strings<I, S>(items: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    items.into_iter().map(Into::into).collect()
}

impl BusyboxImage {
    /// An image named `reference` (e.g. `berth-test/busybox:latest`; no tag
    /// means `latest`), with Cmd `["sh"]` and the default PATH.
    pub fn new(reference: impl Into<String>) -> Self {
        BusyboxImage {
            reference: reference.into(),
            created: DEFAULT_CREATED.to_owned(),
            os: "linux".to_owned(),
            architecture: host_architecture().to_owned(),
            variant: None,
            run_config: RunConfig {
                user: None,
                exposed_ports: BTreeMap::new(),
                env: vec![DEFAULT_PATH_ENV.to_owned()],
                entrypoint: None,
                cmd: Some(vec!["sh".to_owned()]),
                healthcheck: None,
                volumes: BTreeMap::new(),
                working_dir: None,
                labels: BTreeMap::new(),
                stop_signal: None,
            },
            extra_layers: Vec::new(),
        }
    }

    /// Renames the image (the content and so the ID stay the same).
    pub fn reference(mut self, reference: impl Into<String>) -> Self {
        self.reference = reference.into();
        self
    }

    /// `created` in RFC 3339; changing it changes the image ID.
    pub fn created(mut self, rfc3339: impl Into<String>) -> Self {
        self.created = rfc3339.into();
        self
    }

    /// Claims another architecture in the config (e.g. a placeholder `arm64`
    /// entry of a multi-platform index). The content stays host busybox.
    pub fn architecture(mut self, architecture: impl Into<String>) -> Self {
        self.architecture = architecture.into();
        self
    }

    pub fn variant(mut self, variant: impl Into<String>) -> Self {
        self.variant = Some(variant.into());
        self
    }

    /// `Cmd`; an empty list leaves the image without one.
    pub fn cmd<I: IntoIterator<Item = S>, S: Into<String>>(mut self, cmd: I) -> Self {
        let cmd = strings(cmd);
        self.run_config.cmd = (!cmd.is_empty()).then_some(cmd);
        self
    }

    /// `Entrypoint`; an empty list leaves the image without one.
    pub fn entrypoint<I: IntoIterator<Item = S>, S: Into<String>>(mut self, entrypoint: I) -> Self {
        let entrypoint = strings(entrypoint);
        self.run_config.entrypoint = (!entrypoint.is_empty()).then_some(entrypoint);
        self
    }

    /// Sets `key=value` in `Env`, replacing an earlier value of `key` (PATH too).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        let prefix = format!("{key}=");
        self.run_config.env.retain(|e| !e.starts_with(&prefix));
        self.run_config.env.push(format!("{key}={value}"));
        self
    }

    pub fn working_dir(mut self, dir: impl Into<String>) -> Self {
        self.run_config.working_dir = Some(dir.into());
        self
    }

    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.run_config.labels.insert(key.into(), value.into());
        self
    }

    /// Adds to `ExposedPorts`, e.g. `"80/tcp"` or `"53/udp"`.
    pub fn expose(mut self, port_proto: impl Into<String>) -> Self {
        self.run_config
            .exposed_ports
            .insert(port_proto.into(), Empty {});
        self
    }

    /// Adds to `Volumes`, e.g. `"/data"`.
    pub fn volume(mut self, path: impl Into<String>) -> Self {
        self.run_config.volumes.insert(path.into(), Empty {});
        self
    }

    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.run_config.user = Some(user.into());
        self
    }

    pub fn stop_signal(mut self, signal: impl Into<String>) -> Self {
        self.run_config.stop_signal = Some(signal.into());
        self
    }

    pub fn healthcheck(mut self, healthcheck: Healthcheck) -> Self {
        self.run_config.healthcheck = Some(healthcheck);
        self
    }

    /// Adds a layer holding one file (mode 0644) at absolute `path`.
    pub fn layer_with_file(self, path: impl Into<String>, contents: impl AsRef<[u8]>) -> Self {
        self.layer_with_files([(path, contents)])
    }

    /// Adds one layer holding all of `files` (mode 0644 each).
    pub fn layer_with_files<I, P, C>(mut self, files: I) -> Self
    where
        I: IntoIterator<Item = (P, C)>,
        P: Into<String>,
        C: AsRef<[u8]>,
    {
        let files = files
            .into_iter()
            .map(|(p, c)| (p.into(), Arc::from(c.as_ref())))
            .collect();
        self.extra_layers.push(LayerSpec::Files(files));
        self
    }

    /// Adds a layer holding one file of `size_bytes` pseudo-random bytes drawn
    /// from `seed`: incompressible, yet the same digest every run (for pull
    /// and push benchmarks). Stored without compression, which would only
    /// cost time on random data.
    pub fn layer_with_random_file(
        mut self,
        path: impl Into<String>,
        size_bytes: usize,
        seed: u64,
    ) -> Self {
        self.extra_layers.push(LayerSpec::Random {
            path: path.into(),
            size_bytes,
            seed,
        });
        self
    }

    /// Builds the layers, config and manifest.
    ///
    /// # Panics
    /// When busybox-static is missing (see [`busybox_path`]).
    pub fn build(&self) -> Result<BuiltImage> {
        let base = busybox_layer()?;
        let mut layers = vec![base.clone()];
        for spec in &self.extra_layers {
            layers.push(Arc::new(build_extra_layer(spec, &base.files)?));
        }
        self.assemble(layers)
    }

    fn assemble(&self, layers: Vec<Arc<Layer>>) -> Result<BuiltImage> {
        #[derive(Serialize)]
        struct RootFs<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            diff_ids: Vec<&'a str>,
        }
        #[derive(Serialize)]
        struct History<'a> {
            created: &'a str,
            created_by: &'a str,
        }
        #[derive(Serialize)]
        struct ImageConfig<'a> {
            architecture: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            variant: Option<&'a str>,
            os: &'a str,
            created: &'a str,
            config: &'a RunConfig,
            rootfs: RootFs<'a>,
            history: Vec<History<'a>>,
        }
        let config = ImageConfig {
            architecture: &self.architecture,
            variant: self.variant.as_deref(),
            os: &self.os,
            created: &self.created,
            config: &self.run_config,
            rootfs: RootFs {
                kind: "layers",
                diff_ids: layers.iter().map(|l| l.diff_id()).collect(),
            },
            history: layers
                .iter()
                .map(|l| History {
                    created: &self.created,
                    created_by: &l.created_by,
                })
                .collect(),
        };
        let config_json = serde_json::to_vec(&config)?;
        let config_digest = sha256_digest(&config_json);

        let manifest = OciManifest {
            schema_version: 2,
            media_type: MEDIA_TYPE_OCI_MANIFEST,
            config: Descriptor::of(MEDIA_TYPE_OCI_CONFIG, &config_json),
            layers: layers
                .iter()
                .map(|l| Descriptor {
                    media_type: MEDIA_TYPE_OCI_LAYER_GZIP,
                    digest: l.digest.clone(),
                    size: l.gzip.len() as u64,
                    ..Descriptor::default()
                })
                .collect(),
        };
        let manifest_json = serde_json::to_vec(&manifest)?;
        Ok(BuiltImage {
            reference: self.reference.clone(),
            platform: Platform {
                os: self.os.clone(),
                architecture: self.architecture.clone(),
                variant: self.variant.clone(),
            },
            manifest_digest: sha256_digest(&manifest_json),
            manifest_json,
            config_digest,
            config_json,
            layers,
        })
    }
}

/// Normalizes a user path to a tar path: no leading slash, no `.`/`..`.
fn tar_path(path: &str) -> Result<String> {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    ensure!(!parts.is_empty(), "layer path {path:?} names no file");
    ensure!(
        !parts.contains(&".."),
        "layer path {path:?} must not contain .."
    );
    Ok(parts.join("/"))
}

fn build_extra_layer(spec: &LayerSpec, base: &FileTree) -> Result<Layer> {
    let (files, level, created_by) = match spec {
        LayerSpec::Files(files) => {
            let paths: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
            (
                files.clone(),
                Compression::default(),
                format!("ADD {}", paths.join(" ")),
            )
        }
        LayerSpec::Random {
            path,
            size_bytes,
            seed,
        } => {
            let data = seeded_random_bytes(*size_bytes, *seed);
            let created_by = format!("ADD {path} ({size_bytes} random bytes, seed {seed})");
            (
                vec![(path.clone(), Arc::from(data))],
                Compression::none(),
                created_by,
            )
        }
    };
    let mut tree = FileTree::new();
    for (path, data) in files {
        let path = tar_path(&path)?;
        // Parents are listed too, as `docker build` does; they keep the base
        // layer's mode so e.g. /tmp stays 1777.
        let mut parent = path.as_str();
        while let Some((dir, _)) = parent.rsplit_once('/') {
            let mode = match base.get(dir) {
                Some(Node::Dir { mode }) => *mode,
                _ => 0o755,
            };
            tree.insert(dir.to_owned(), Node::Dir { mode });
            parent = dir;
        }
        tree.insert(path, Node::File { mode: 0o644, data });
    }
    Layer::from_tree(tree, level, created_by)
}

/// `len` bytes from splitmix64 seeded with `seed`: fast, and stable across
/// versions of any crate.
fn seeded_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The platform an image or index entry claims.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// An OCI content descriptor.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: &'static str,
    pub digest: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    pub fn of(media_type: &'static str, blob: &[u8]) -> Descriptor {
        Descriptor {
            media_type,
            digest: sha256_digest(blob),
            size: blob.len() as u64,
            ..Descriptor::default()
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OciManifest {
    schema_version: u32,
    media_type: &'static str,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

/// An OCI image index (also what `index.json` of a layout is).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OciIndex {
    pub schema_version: u32,
    pub media_type: &'static str,
    pub manifests: Vec<Descriptor>,
}

impl OciIndex {
    pub fn new(manifests: Vec<Descriptor>) -> OciIndex {
        OciIndex {
            schema_version: 2,
            media_type: MEDIA_TYPE_OCI_INDEX,
            manifests,
        }
    }

    pub fn to_json(&self) -> Result<Vec<u8>> {
        Ok(serde_json::to_vec(self)?)
    }
}

/// A built image: config, manifest and layers, ready to write out or push.
pub struct BuiltImage {
    reference: String,
    platform: Platform,
    config_json: Vec<u8>,
    config_digest: String,
    manifest_json: Vec<u8>,
    manifest_digest: String,
    layers: Vec<Arc<Layer>>,
}

impl BuiltImage {
    /// The reference as given to the builder.
    pub fn reference(&self) -> &str {
        &self.reference
    }

    /// The fully qualified name, e.g. `docker.io/library/busybox:latest`.
    pub fn full_name(&self) -> String {
        normalize_reference(&self.reference)
    }

    /// The image ID: the config digest, `sha256:...`.
    pub fn id(&self) -> &str {
        &self.config_digest
    }

    pub fn config_json(&self) -> &[u8] {
        &self.config_json
    }

    /// The OCI manifest as pushed and stored in the layout.
    pub fn manifest_json(&self) -> &[u8] {
        &self.manifest_json
    }

    pub fn manifest_digest(&self) -> &str {
        &self.manifest_digest
    }

    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// The descriptor of the manifest, for indexes.
    pub fn manifest_descriptor(&self) -> Descriptor {
        Descriptor::of(MEDIA_TYPE_OCI_MANIFEST, &self.manifest_json)
    }

    pub fn layers(&self) -> &[Arc<Layer>] {
        &self.layers
    }

    pub fn diff_ids(&self) -> Vec<&str> {
        self.layers.iter().map(|l| l.diff_id()).collect()
    }

    /// Digests of the compressed layers, in manifest order.
    pub fn layer_digests(&self) -> Vec<&str> {
        self.layers.iter().map(|l| l.digest()).collect()
    }

    /// Every blob the manifest refers to, `(digest, bytes)`: config first,
    /// then the compressed layers.
    pub fn blobs(&self) -> Vec<(&str, &[u8])> {
        let mut blobs = vec![(self.config_digest.as_str(), self.config_json.as_slice())];
        blobs.extend(self.layers.iter().map(|l| (l.digest(), l.compressed())));
        blobs
    }

    /// The flattened root filesystem as one tar (for `docker import`); later
    /// layers win over earlier ones.
    pub fn rootfs_tar(&self) -> Result<Vec<u8>> {
        if let [only] = self.layers.as_slice() {
            return Ok(only.tar.clone());
        }
        let mut merged = FileTree::new();
        for layer in &self.layers {
            merged.extend(layer.files.iter().map(|(p, n)| (p.clone(), n.clone())));
        }
        write_tree_tar(&merged)
    }

    pub fn write_rootfs_tar(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.rootfs_tar()?)
            .with_context(|| format!("writing {}", path.display()))
    }

    /// `index.json` of this image's OCI layout: one manifest, named as
    /// `docker save` names it (full name for containerd, tag for OCI).
    fn layout_index_json(&self) -> Result<Vec<u8>> {
        let full_name = self.full_name();
        let mut descriptor = self.manifest_descriptor();
        descriptor.annotations.insert(
            ANNOTATION_CONTAINERD_IMAGE_NAME.to_owned(),
            full_name.clone(),
        );
        descriptor.annotations.insert(
            ANNOTATION_OCI_REF_NAME.to_owned(),
            reference_tag(&full_name).to_owned(),
        );
        OciIndex::new(vec![descriptor]).to_json()
    }

    /// Files of the OCI layout: relative path → bytes, in write order.
    fn layout_files(&self) -> Vec<(String, &[u8])> {
        let mut files: BTreeMap<String, &[u8]> = BTreeMap::new();
        let blob_path =
            |digest: &str| format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
        files.insert(blob_path(&self.manifest_digest), &self.manifest_json);
        for (digest, bytes) in self.blobs() {
            files.insert(blob_path(digest), bytes);
        }
        files.into_iter().collect()
    }

    /// Writes an OCI image layout into `dir` (created if missing).
    pub fn write_oci_layout(&self, dir: &Path) -> Result<()> {
        let write = |rel: &str, bytes: &[u8]| {
            let path = dir.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))
        };
        write("oci-layout", OCI_LAYOUT_FILE.as_bytes())?;
        write("index.json", &self.layout_index_json()?)?;
        for (rel, bytes) in self.layout_files() {
            write(&rel, bytes)?;
        }
        Ok(())
    }

    /// Writes the OCI image layout as a tar stream (what `ctr images import`
    /// and `docker load` read).
    pub fn write_oci_archive<W: Write>(&self, out: W) -> Result<()> {
        let mut archive = ArchiveWriter::new(out);
        archive.file("oci-layout", OCI_LAYOUT_FILE.as_bytes())?;
        archive.file("index.json", &self.layout_index_json()?)?;
        archive.dir("blobs")?;
        archive.dir("blobs/sha256")?;
        for (rel, bytes) in self.layout_files() {
            archive.file(&rel, bytes)?;
        }
        archive.finish()
    }

    pub fn oci_archive(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.write_oci_archive(&mut out)?;
        Ok(out)
    }

    /// Writes a classic `docker save` archive: `manifest.json`,
    /// `repositories`, `<config hex>.json`, and `<layer id>/layer.tar` (+
    /// `VERSION`, `json`) per layer, where the layer id is the chain ID so
    /// equal layers at different depths stay distinct.
    pub fn write_docker_archive<W: Write>(&self, out: W) -> Result<()> {
        let config_file = format!("{}.json", self.config_digest.trim_start_matches("sha256:"));
        let layer_ids = self.chain_ids();
        let layer_files: Vec<String> = layer_ids
            .iter()
            .map(|id| format!("{id}/layer.tar"))
            .collect();

        let (repository, tag) = split_repo_tag(&self.reference);
        let repo_tag = format!("{repository}:{tag}");
        let manifest = serde_json::json!([{
            "Config": config_file,
            "RepoTags": [repo_tag],
            "Layers": layer_files,
        }]);
        let top_layer = layer_ids.last().cloned().unwrap_or_default();
        let repositories = serde_json::json!({ repository: { tag: top_layer } });

        let mut archive = ArchiveWriter::new(out);
        for (i, (layer, id)) in self.layers.iter().zip(&layer_ids).enumerate() {
            let mut v1 = serde_json::json!({ "id": id });
            if i > 0 {
                v1["parent"] = serde_json::Value::String(layer_ids[i - 1].clone());
            }
            archive.dir(id)?;
            archive.file(&format!("{id}/VERSION"), b"1.0")?;
            archive.file(&format!("{id}/json"), &serde_json::to_vec(&v1)?)?;
            archive.file(&format!("{id}/layer.tar"), layer.tar())?;
        }
        archive.file(&config_file, &self.config_json)?;
        archive.file("manifest.json", &serde_json::to_vec(&manifest)?)?;
        archive.file("repositories", &serde_json::to_vec(&repositories)?)?;
        archive.finish()
    }

    pub fn docker_archive(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.write_docker_archive(&mut out)?;
        Ok(out)
    }

    /// OCI chain IDs (hex) of the layers, bottom first.
    fn chain_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let chain = match ids.last() {
                None => layer.diff_id().to_owned(),
                Some(parent) => {
                    sha256_digest(format!("sha256:{parent} {}", layer.diff_id()).as_bytes())
                }
            };
            ids.push(chain.trim_start_matches("sha256:").to_owned());
        }
        ids
    }
}

const OCI_LAYOUT_FILE: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

/// A tar of plain files and dirs with the same deterministic headers as layers.
struct ArchiveWriter<W: Write> {
    builder: tar::Builder<W>,
}

impl<W: Write> ArchiveWriter<W> {
    fn new(out: W) -> Self {
        ArchiveWriter {
            builder: tar::Builder::new(out),
        }
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(size);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(FIXED_MTIME);
        header
    }

    fn dir(&mut self, path: &str) -> Result<()> {
        let mut header = Self::header(tar::EntryType::Directory, 0o755, 0);
        Ok(self
            .builder
            .append_data(&mut header, format!("{path}/"), io::empty())?)
    }

    fn file(&mut self, path: &str, bytes: &[u8]) -> Result<()> {
        let mut header = Self::header(tar::EntryType::Regular, 0o644, bytes.len() as u64);
        Ok(self.builder.append_data(&mut header, path, bytes)?)
    }

    fn finish(self) -> Result<()> {
        self.builder.into_inner()?.flush()?;
        Ok(())
    }
}

/// Splits `repo[:tag]` into repository and tag (default `latest`); a colon
/// inside the registry host (`127.0.0.1:5000/x`) is not a tag.
pub fn split_repo_tag(reference: &str) -> (&str, &str) {
    let reference = reference.split('@').next().unwrap_or(reference);
    let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[last_slash..].rfind(':') {
        Some(i) => (
            &reference[..last_slash + i],
            &reference[last_slash + i + 1..],
        ),
        None => (reference, "latest"),
    }
}

fn reference_tag(reference: &str) -> &str {
    split_repo_tag(reference).1
}

/// `busybox` → `docker.io/library/busybox:latest`, as Docker normalizes names.
pub fn normalize_reference(reference: &str) -> String {
    let (repository, tag) = split_repo_tag(reference);
    let first = repository.split('/').next().unwrap_or_default();
    let has_domain = repository.contains('/')
        && (first.contains('.') || first.contains(':') || first == "localhost");
    let mut name = String::new();
    if !has_domain {
        name.push_str("docker.io/");
        if !repository.contains('/') {
            name.push_str("library/");
        }
    }
    let _ = write!(name, "{repository}:{tag}");
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_and_tag_split_at_the_last_colon_after_the_host() {
        assert_eq!(split_repo_tag("busybox"), ("busybox", "latest"));
        assert_eq!(split_repo_tag("a/b:1"), ("a/b", "1"));
        assert_eq!(split_repo_tag("127.0.0.1:5000/x"), ("127.0.0.1:5000/x", "latest"));
        assert_eq!(split_repo_tag("127.0.0.1:5000/x:v2"), ("127.0.0.1:5000/x", "v2"));
    }

    #[test]
    fn references_normalize_like_docker() {
        assert_eq!(normalize_reference("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(normalize_reference("me/app:1"), "docker.io/me/app:1");
        assert_eq!(normalize_reference("localhost/app"), "localhost/app:latest");
        assert_eq!(normalize_reference("127.0.0.1:5000/a/b:c"), "127.0.0.1:5000/a/b:c");
    }

    #[test]
    fn layer_paths_are_relative_and_stay_inside() {
        assert_eq!(tar_path("/etc//motd").unwrap(), "etc/motd");
        assert_eq!(tar_path("./a/./b").unwrap(), "a/b");
        assert!(tar_path("/").is_err());
        assert!(tar_path("/a/../../etc").is_err());
    }

    #[test]
    fn random_bytes_depend_only_on_seed_and_length() {
        assert_eq!(seeded_random_bytes(13, 1), seeded_random_bytes(13, 1));
        assert_eq!(seeded_random_bytes(13, 1)[..8], seeded_random_bytes(8, 1)[..]);
        assert_ne!(seeded_random_bytes(16, 1), seeded_random_bytes(16, 2));
    }
}
