//! Manifests and indexes as registries serve them (Docker schema 2 and OCI),
//! content descriptors, and picking one platform out of a list the way
//! containerd's `platforms.Only` does.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::RegistryError;

pub const MEDIA_TYPE_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MEDIA_TYPE_DOCKER_MANIFEST_LIST: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
pub const MEDIA_TYPE_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_TYPE_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Schema 1, which dockerd no longer pulls.
pub const MEDIA_TYPE_DOCKER_MANIFEST_V1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const MEDIA_TYPE_DOCKER_MANIFEST_V1_SIGNED: &str =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";

pub const MEDIA_TYPE_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const MEDIA_TYPE_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_TYPE_DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const MEDIA_TYPE_DOCKER_LAYER_FOREIGN: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
pub const MEDIA_TYPE_OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_TYPE_OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_TYPE_OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// The `Accept` header for manifest requests: every type we can read,
/// indexes included (as containerd's resolver sends).
pub const MANIFEST_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, */*;q=0.8";

/// Manifests larger than this are refused (containerd uses the same cap).
pub const MAX_MANIFEST_SIZE: u64 = 4 * 1024 * 1024;

/// An OCI content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

/// An OCI platform (`os/architecture[/variant]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(rename = "os.version", default, skip_serializing_if = "String::is_empty")]
    pub os_version: String,
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
}

/// An image manifest (Docker schema 2 or OCI): a config and its layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A manifest list or OCI index: one manifest per platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// What a manifest request returned, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    Image(Box<ImageManifest>),
    Index(ImageIndex),
}

pub fn is_index_type(media_type: &str) -> bool {
    media_type == MEDIA_TYPE_DOCKER_MANIFEST_LIST || media_type == MEDIA_TYPE_OCI_INDEX
}

pub fn is_manifest_type(media_type: &str) -> bool {
    media_type == MEDIA_TYPE_DOCKER_MANIFEST || media_type == MEDIA_TYPE_OCI_MANIFEST
}

/// Only the fields that tell the kinds apart.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    schema_version: u32,
    #[serde(default)]
    media_type: String,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    config: Option<serde_json::Value>,
}

/// The media type a manifest body declares, or what its shape implies when
/// it declares none (OCI makes `mediaType` optional). `content_type` is the
/// HTTP header, used when the body is silent.
pub fn detect_media_type(content_type: Option<&str>, body: &[u8]) -> Result<String, RegistryError> {
    let probe: Probe = serde_json::from_slice(body)
        .map_err(|e| RegistryError::invalid(format!("manifest is not valid JSON: {e}")))?;
    if !probe.media_type.is_empty() {
        return Ok(probe.media_type);
    }
    if probe.schema_version == 1 {
        return Ok(MEDIA_TYPE_DOCKER_MANIFEST_V1_SIGNED.to_owned());
    }
    let header = content_type.map(|c| c.split(';').next().unwrap_or_default().trim());
    if let Some(h) = header.filter(|h| is_index_type(h) || is_manifest_type(h)) {
        return Ok(h.to_owned());
    }
    if probe.manifests.is_some() {
        Ok(MEDIA_TYPE_OCI_INDEX.to_owned())
    } else if probe.config.is_some() {
        Ok(MEDIA_TYPE_OCI_MANIFEST.to_owned())
    } else {
        Err(RegistryError::invalid("manifest has neither config nor manifests"))
    }
}

impl Manifest {
    /// Parses a manifest body of the given media type.
    pub fn parse(media_type: &str, body: &[u8]) -> Result<Self, RegistryError> {
        let bad = |e: serde_json::Error| RegistryError::invalid(format!("invalid manifest ({media_type}): {e}"));
        if is_index_type(media_type) {
            return Ok(Self::Index(serde_json::from_slice(body).map_err(bad)?));
        }
        if is_manifest_type(media_type) {
            let m: ImageManifest = serde_json::from_slice(body).map_err(bad)?;
            if m.schema_version != 2 {
                return Err(RegistryError::invalid(format!(
                    "unsupported manifest schema version {}",
                    m.schema_version
                )));
            }
            return Ok(Self::Image(Box::new(m)));
        }
        if media_type == MEDIA_TYPE_DOCKER_MANIFEST_V1 || media_type == MEDIA_TYPE_DOCKER_MANIFEST_V1_SIGNED {
            // dockerd 28's wording for schema 1.
            return Err(RegistryError::invalid(
                "Docker Image Format v1 and Docker Image manifest version 2, schema 1 support has been \
                 removed. Suggest the author of the image to upgrade the image to the OCI Format or \
                 Docker Image manifest v2, schema 2.",
            ));
        }
        Err(RegistryError::invalid(format!("unsupported manifest media type {media_type}")))
    }
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: &str) -> Self {
        Self {
            os: os.to_owned(),
            architecture: architecture.to_owned(),
            variant: variant.to_owned(),
            ..Self::default()
        }
    }

    /// The host: `linux/<arch>`, in Go's architecture names.
    pub fn host() -> Self {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "riscv64" => "riscv64",
            "s390x" => "s390x",
            "loongarch64" => "loong64",
            other => other,
        };
        Self::new("linux", arch, "").normalized()
    }

    /// Parses a specifier as `docker pull --platform` takes it:
    /// `os`, `arch`, `os/arch`, `os/arch/variant` (containerd's
    /// `platforms.Parse`). A lone known OS means the host architecture; a
    /// lone anything else is an architecture on linux.
    pub fn parse(specifier: &str) -> Result<Self, RegistryError> {
        let bad = || RegistryError::invalid(format!("\"{specifier}\": unknown operating system or architecture: invalid argument"));
        if specifier.contains('*') || specifier.is_empty() {
            return Err(bad());
        }
        let parts: Vec<&str> = specifier.split('/').collect();
        if parts.iter().any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')) {
            return Err(bad());
        }
        let p = match parts.as_slice() {
            [one] => {
                let os = one.to_lowercase();
                if is_known_os(&os) {
                    let host = Self::host();
                    Self::new(&os, &host.architecture, &host.variant)
                } else {
                    Self::new("linux", one, "")
                }
            }
            [os, arch] => Self::new(os, arch, ""),
            [os, arch, variant] => Self::new(os, arch, variant),
            _ => return Err(bad()),
        };
        Ok(p.normalized())
    }

    /// containerd's `platforms.Normalize`: lower case, Go's names
    /// (`x86_64` → `amd64`, `aarch64` → `arm64`), default variants
    /// (`arm` → `v7`; `arm64/v8` → no variant).
    pub fn normalized(&self) -> Self {
        let mut os = self.os.to_lowercase();
        if os.is_empty() {
            os = "linux".to_owned();
        } else if os == "macos" {
            os = "darwin".to_owned();
        }
        let (architecture, variant) = normalize_arch(&self.architecture, &self.variant);
        Self { os, architecture, variant, os_version: self.os_version.clone(), os_features: self.os_features.clone() }
    }

    /// `linux/amd64`, `linux/arm64/v8`.
    pub fn format(&self) -> String {
        let mut s = format!("{}/{}", self.os, self.architecture);
        if !self.variant.is_empty() {
            s.push('/');
            s.push_str(&self.variant);
        }
        s
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.format())
    }
}

fn is_known_os(os: &str) -> bool {
    matches!(
        os,
        "aix" | "android" | "darwin" | "dragonfly" | "freebsd" | "hurd" | "illumos" | "ios" | "js"
            | "linux" | "nacl" | "netbsd" | "openbsd" | "plan9" | "solaris" | "windows" | "zos"
    )
}

fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let arch = arch.to_lowercase();
    let variant = variant.to_lowercase();
    match arch.as_str() {
        "i386" => ("386".into(), String::new()),
        "x86_64" | "x86-64" | "amd64" => ("amd64".into(), if variant == "v1" { String::new() } else { variant }),
        "aarch64" | "arm64" => {
            let variant = match variant.as_str() {
                "8" | "v8" | "v8.0" => String::new(),
                "9" | "9.0" | "v9.0" => "v9".into(),
                _ => variant,
            };
            ("arm64".into(), variant)
        }
        "armhf" => ("arm".into(), "v7".into()),
        "armel" => ("arm".into(), "v6".into()),
        "arm" => {
            let variant = match variant.as_str() {
                "" | "7" => "v7".into(),
                "5" | "6" | "8" => format!("v{variant}"),
                _ => variant,
            };
            ("arm".into(), variant)
        }
        _ => (arch, variant),
    }
}

/// Picks manifests for one platform out of an index, best first, as
/// containerd's `platforms.Only`: the platform itself, then what it can
/// also run (`amd64/v3` → v2, v1, then `386`; `arm64` → `arm/v8`…`v5`;
/// `arm/v7` → v6, v5).
#[derive(Debug, Clone)]
pub struct PlatformMatcher {
    vector: Vec<Platform>,
}

impl PlatformMatcher {
    pub fn only(platform: &Platform) -> Self {
        let p = platform.normalized();
        Self { vector: platform_vector(&p).iter().map(Platform::normalized).collect() }
    }

    /// The host platform (`linux/amd64` here).
    pub fn host() -> Self {
        Self::only(&Platform::host())
    }

    /// The platform asked for (the first choice).
    pub fn preferred(&self) -> Option<&Platform> {
        self.vector.first()
    }

    /// The preference rank of `p` (0 is best), or `None` if it cannot run.
    pub fn rank(&self, p: &Platform) -> Option<usize> {
        let n = p.normalized();
        self.vector
            .iter()
            .position(|m| m.os == n.os && m.architecture == n.architecture && m.variant == n.variant)
    }

    pub fn matches(&self, p: &Platform) -> bool {
        self.rank(p).is_some()
    }

    /// The best entry of an index for this platform. Entries without a
    /// platform are acceptable but come last (containerd's
    /// `LimitManifests`); among equals the index order wins.
    pub fn select<'a>(&self, manifests: &'a [Descriptor]) -> Option<&'a Descriptor> {
        manifests
            .iter()
            .filter(|d| is_index_type(&d.media_type) || is_manifest_type(&d.media_type))
            .filter_map(|d| match &d.platform {
                Some(p) => self.rank(p).map(|r| (r, d)),
                None => Some((usize::MAX, d)),
            })
            .min_by_key(|(rank, _)| *rank)
            .map(|(_, d)| d)
    }
}

fn platform_vector(p: &Platform) -> Vec<Platform> {
    let with_variant = |arch: &str, variant: String| Platform {
        architecture: arch.to_owned(),
        variant,
        ..p.clone()
    };
    let mut vector = vec![p.clone()];
    let version = |v: &str| v.strip_prefix('v').unwrap_or(v).parse::<u32>().ok();
    match p.architecture.as_str() {
        "amd64" => {
            if let Some(n) = version(&p.variant).filter(|n| *n > 1) {
                for lower in (1..n).rev() {
                    vector.push(with_variant("amd64", format!("v{lower}")));
                }
            }
            vector.push(with_variant("386", String::new()));
        }
        "arm" => {
            if let Some(n) = version(&p.variant).filter(|n| *n > 5) {
                for lower in (5..n).rev() {
                    vector.push(with_variant("arm", format!("v{lower}")));
                }
            }
        }
        "arm64" => {
            let mut variant = if p.variant.is_empty() { "v8".to_owned() } else { p.variant.clone() };
            let (major, minor) = match variant.strip_prefix('v').and_then(|v| v.split_once('.')) {
                Some((major, minor)) => (major.parse::<u32>().ok(), minor.parse::<u32>().unwrap_or(0)),
                None => (version(&variant), 0),
            };
            if let Some(mut major) = major.filter(|m| *m >= 8) {
                let mut minor = minor;
                let name = |major: u32, minor: u32| {
                    if minor == 0 {
                        format!("v{major}")
                    } else {
                        format!("v{major}.{minor}")
                    }
                };
                if major == 9 {
                    for lower in (0..minor).rev() {
                        vector.push(with_variant("arm64", name(9, lower)));
                    }
                    // v9.x runs v8.(x+5), up to v8.9
                    minor = (minor + 5).min(9);
                    major = 8;
                    vector.push(with_variant("arm64", format!("v8.{minor}")));
                }
                for lower in (0..minor).rev() {
                    vector.push(with_variant("arm64", name(major, lower)));
                }
            }
            if variant.starts_with("v8.") || variant.starts_with("v9.") {
                variant = "v8".to_owned();
            }
            vector.extend(platform_vector(&with_variant("arm", variant)));
        }
        _ => {}
    }
    vector
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(digest: &str, platform: Option<&str>) -> Descriptor {
        Descriptor {
            media_type: MEDIA_TYPE_OCI_MANIFEST.to_owned(),
            digest: digest.to_owned(),
            size: 1,
            urls: vec![],
            annotations: BTreeMap::new(),
            platform: platform.map(|p| {
                let parts: Vec<&str> = p.split('/').collect();
                Platform::new(parts[0], parts[1], parts.get(2).copied().unwrap_or(""))
            }),
        }
    }

    fn pick(platform: &str, entries: &[Descriptor]) -> Option<String> {
        PlatformMatcher::only(&Platform::parse(platform).unwrap())
            .select(entries)
            .map(|d| d.digest.clone())
    }

    #[test]
    fn amd64_prefers_itself_then_386() {
        let entries = [
            desc("arm64", Some("linux/arm64/v8")),
            desc("386", Some("linux/386")),
            desc("amd64", Some("linux/amd64")),
            desc("attest", Some("unknown/unknown")),
        ];
        assert_eq!(pick("linux/amd64", &entries).as_deref(), Some("amd64"));
        assert_eq!(pick("linux/amd64", &entries[..2]).as_deref(), Some("386"));
        assert_eq!(pick("linux/amd64", &entries[..1]), None);
        assert_eq!(pick("linux/arm64", &entries).as_deref(), Some("arm64"));
        assert_eq!(pick("linux/s390x", &entries), None);
    }

    #[test]
    fn amd64_levels_fall_back_downwards() {
        let entries = [desc("v1", Some("linux/amd64")), desc("v2", Some("linux/amd64/v2")), desc("v4", Some("linux/amd64/v4"))];
        assert_eq!(pick("linux/amd64/v3", &entries).as_deref(), Some("v2"));
        assert_eq!(pick("linux/amd64", &entries).as_deref(), Some("v1"));
        assert_eq!(pick("linux/amd64/v4", &entries).as_deref(), Some("v4"));
    }

    #[test]
    fn arm_variants_default_and_fall_back() {
        let entries = [desc("v6", Some("linux/arm/v6")), desc("v7", Some("linux/arm/v7"))];
        // "arm" means arm/v7
        assert_eq!(pick("linux/arm", &entries).as_deref(), Some("v7"));
        assert_eq!(pick("linux/arm/v6", &entries).as_deref(), Some("v6"));
        assert_eq!(pick("linux/arm/v5", &entries), None);
        // arm64 runs 32-bit arm when nothing better is there
        assert_eq!(pick("linux/arm64", &entries).as_deref(), Some("v7"));
        // an entry "arm" with no variant is v7
        let entries = [desc("plain", Some("linux/arm"))];
        assert_eq!(pick("linux/arm/v7", &entries).as_deref(), Some("plain"));
        assert_eq!(pick("linux/arm/v6", &entries), None);
    }

    #[test]
    fn arm64_variant_spellings_are_one_platform() {
        for spelling in ["linux/arm64", "linux/arm64/v8", "linux/aarch64", "linux/arm64/8"] {
            let entries = [desc("x", Some(spelling))];
            assert_eq!(pick("linux/arm64/v8", &entries).as_deref(), Some("x"), "{spelling}");
            assert_eq!(pick("linux/arm64", &entries).as_deref(), Some("x"), "{spelling}");
        }
        let entries = [desc("v8.2", Some("linux/arm64/v8.2")), desc("v8", Some("linux/arm64"))];
        assert_eq!(pick("linux/arm64/v8.4", &entries).as_deref(), Some("v8.2"));
        assert_eq!(pick("linux/arm64/v9", &entries).as_deref(), Some("v8.2"));
        assert_eq!(pick("linux/arm64", &entries).as_deref(), Some("v8"));
    }

    #[test]
    fn entries_without_platform_come_last_and_foreign_types_are_skipped() {
        let mut other = desc("blob", Some("linux/amd64"));
        other.media_type = "application/vnd.in-toto+json".to_owned();
        let entries = [desc("none", None), other, desc("amd64", Some("linux/amd64"))];
        assert_eq!(pick("linux/amd64", &entries).as_deref(), Some("amd64"));
        assert_eq!(pick("linux/amd64", &entries[..2]).as_deref(), Some("none"));
    }

    #[test]
    fn os_must_match_and_is_normalized() {
        let entries = [desc("win", Some("windows/amd64")), desc("lin", Some("Linux/x86_64"))];
        assert_eq!(pick("linux/amd64", &entries).as_deref(), Some("lin"));
        assert_eq!(pick("windows/amd64", &entries).as_deref(), Some("win"));
    }

    #[test]
    fn specifiers_parse_like_containerd() {
        assert_eq!(Platform::parse("linux/amd64").unwrap().format(), "linux/amd64");
        assert_eq!(Platform::parse("linux/x86_64").unwrap().format(), "linux/amd64");
        assert_eq!(Platform::parse("arm64").unwrap().format(), "linux/arm64");
        assert_eq!(Platform::parse("linux/arm").unwrap().format(), "linux/arm/v7");
        assert_eq!(Platform::parse("linux/arm64/v8").unwrap().format(), "linux/arm64");
        assert_eq!(Platform::parse("linux").unwrap(), Platform::host());
        for bad in ["", "linux/", "a/b/c/d", "linux/*", "li nux/amd64"] {
            assert!(Platform::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Platform::host().os, "linux");
    }

    #[test]
    fn media_types_are_detected_from_body_then_header_then_shape() {
        let m = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{}}"#;
        assert_eq!(detect_media_type(None, m).unwrap(), MEDIA_TYPE_DOCKER_MANIFEST);
        let m = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert_eq!(detect_media_type(Some("application/json"), m).unwrap(), MEDIA_TYPE_OCI_INDEX);
        assert_eq!(
            detect_media_type(Some("application/vnd.docker.distribution.manifest.list.v2+json; charset=utf-8"), m).unwrap(),
            MEDIA_TYPE_DOCKER_MANIFEST_LIST
        );
        let m = br#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"d","size":1},"layers":[]}"#;
        assert_eq!(detect_media_type(None, m).unwrap(), MEDIA_TYPE_OCI_MANIFEST);
        let m = br#"{"schemaVersion":1,"name":"x","fsLayers":[]}"#;
        let t = detect_media_type(None, m).unwrap();
        assert!(Manifest::parse(&t, m).unwrap_err().to_string().contains("schema 1 support has been removed"));
        assert!(detect_media_type(None, b"not json").is_err());
    }

    #[test]
    fn manifests_and_indexes_parse() {
        let m = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:c","size":7},
            "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:l","size":9}]}"#;
        let Manifest::Image(image) = Manifest::parse(MEDIA_TYPE_OCI_MANIFEST, m).unwrap() else { panic!() };
        assert_eq!(image.config.size, 7);
        assert_eq!(image.layers[0].digest, "sha256:l");
        let i = br#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "digest":"sha256:a","size":1,"platform":{"architecture":"amd64","os":"linux"}}]}"#;
        let Manifest::Index(index) = Manifest::parse(MEDIA_TYPE_OCI_INDEX, i).unwrap() else { panic!() };
        assert_eq!(index.manifests[0].platform.as_ref().unwrap().format(), "linux/amd64");
        assert!(Manifest::parse(MEDIA_TYPE_OCI_MANIFEST, br#"{"schemaVersion":2}"#).is_err());
        assert!(Manifest::parse("text/html", b"{}").is_err());
    }
}
