//! A throwaway local registry (Debian's `docker-registry`, distribution v2)
//! on 127.0.0.1, and a small blocking client to push test images into it.
//!
//! The client is hand-written HTTP/1.1 over `TcpStream` (one request per
//! connection, `Connection: close`): the registry is plain HTTP on loopback
//! and the tests need only a handful of calls, so no HTTP crate is pulled in.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

pub use crate::http::{http_request, HttpResponse};
use crate::images::{
    sha256_digest, BuiltImage, BusyboxImage, OciIndex, MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_OCI_MANIFEST,
};

const REGISTRY_BINARY: &str = "/usr/bin/docker-registry";
const HTPASSWD_BINARY: &str = "/usr/bin/htpasswd";
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Ports picked by binding port 0 can be taken again before the registry
/// binds them; that many fresh ports are tried.
const PORT_ATTEMPTS: usize = 5;

/// A running `docker-registry serve`, killed and its storage removed on drop.
pub struct Registry {
    child: Child,
    addr: String,
    credentials: Option<(String, String)>,
    log_path: PathBuf,
    /// Config, htpasswd, log and storage; removed after Drop killed the child.
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Starts an anonymous registry with deletes enabled.
    ///
    /// # Panics
    /// When `/usr/bin/docker-registry` is missing.
    pub fn start() -> Result<Registry> {
        Self::start_inner(None)
    }

    /// Starts a registry that requires HTTP basic auth as `user`/`password`.
    ///
    /// # Panics
    /// When `/usr/bin/docker-registry` or `/usr/bin/htpasswd` is missing.
    pub fn start_with_htpasswd(user: &str, password: &str) -> Result<Registry> {
        Self::start_inner(Some((user.to_owned(), password.to_owned())))
    }

    fn start_inner(credentials: Option<(String, String)>) -> Result<Registry> {
        require_binary(REGISTRY_BINARY, "docker-registry");
        let dir = tempfile::Builder::new()
            .prefix("berth-registry-")
            .tempdir()?;
        let storage = dir.path().join("storage");
        std::fs::create_dir(&storage)?;
        let htpasswd = match &credentials {
            Some((user, password)) => Some(write_htpasswd(dir.path(), user, password)?),
            None => None,
        };

        let mut last_error = None;
        for attempt in 1..=PORT_ATTEMPTS {
            let addr = format!("127.0.0.1:{}", free_port()?);
            let config_path = dir.path().join("config.yml");
            std::fs::write(
                &config_path,
                registry_config(&addr, &storage, htpasswd.as_deref()),
            )?;
            let log_path = dir.path().join(format!("registry-{attempt}.log"));
            let log = File::create(&log_path)?;
            let mut child = Command::new(REGISTRY_BINARY)
                .arg("serve")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .with_context(|| format!("starting {REGISTRY_BINARY}"))?;
            let expected_status = if credentials.is_some() { 401 } else { 200 };
            match wait_until_ready(&mut child, &addr, expected_status, &log_path) {
                Ok(()) => {
                    return Ok(Registry {
                        child,
                        addr,
                        credentials,
                        log_path,
                        _dir: dir,
                    })
                }
                Err(e) => {
                    stop(&mut child);
                    if !read_log(&log_path).contains("address already in use") {
                        return Err(e);
                    }
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("docker-registry did not start")))
    }

    /// `127.0.0.1:PORT`, also the registry part of image references.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The port on 127.0.0.1 (see `Berthd::reach_host_port`).
    pub fn port(&self) -> u16 {
        self.addr.rsplit(':').next().and_then(|p| p.parse().ok()).expect("registry port")
    }

    /// `127.0.0.1:PORT/<name>:<tag>`, what `docker pull` takes.
    pub fn reference(&self, name: &str, tag: &str) -> String {
        format!("{}/{name}:{tag}", self.addr)
    }

    /// The user and password, for a registry started with htpasswd.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// Everything the registry wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        read_log(&self.log_path)
    }

    /// A client with this registry's credentials, if any.
    pub fn client(&self) -> RegistryClient {
        RegistryClient {
            addr: self.addr.clone(),
            credentials: self.credentials.clone(),
        }
    }

    /// A client that sends no credentials.
    pub fn anonymous_client(&self) -> RegistryClient {
        RegistryClient {
            addr: self.addr.clone(),
            credentials: None,
        }
    }

    /// Pushes `image` as `name:tag`; returns the manifest digest.
    pub fn push_oci(&self, image: &BuiltImage, name: &str, tag: &str) -> Result<String> {
        self.client().push_oci(image, name, tag)
    }

    /// Pushes an OCI index of `images` (each under its own platform) as `name:tag`.
    pub fn push_index(&self, images: &[&BuiltImage], name: &str, tag: &str) -> Result<String> {
        self.client().push_index(images, name, tag)
    }

    /// Pushes `image` plus a placeholder `linux/arm64/v8` image under one
    /// index, for platform resolution tests.
    pub fn push_multi_platform(
        &self,
        image: &BuiltImage,
        name: &str,
        tag: &str,
    ) -> Result<MultiPlatformPush> {
        self.client().push_multi_platform(image, name, tag)
    }
}

impl Registry {
    /// Kill the registry (its storage stays), e.g. for an outage.
    pub fn kill(&mut self) {
        stop(&mut self.child);
    }

    /// Start it again on the same address and storage after [`Self::kill`].
    pub fn restart(&mut self) -> Result<()> {
        stop(&mut self.child);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log_path)?;
        self.child = Command::new(REGISTRY_BINARY)
            .arg("serve")
            .arg(self._dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {REGISTRY_BINARY}"))?;
        let expected_status = if self.credentials.is_some() { 401 } else { 200 };
        wait_until_ready(&mut self.child, &self.addr, expected_status, &self.log_path)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

fn stop(child: &mut Child) {
    // The child may already have exited; both errors mean "not running".
    let _ = child.kill();
    let _ = child.wait();
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| format!("(cannot read {}: {e})", path.display()))
}

/// Polls `GET /v2/` with a short backoff until the registry answers with
/// `expected_status` (200 anonymous, 401 with htpasswd).
fn wait_until_ready(
    child: &mut Child,
    addr: &str,
    expected_status: u16,
    log_path: &Path,
) -> Result<()> {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    let mut backoff = Duration::from_millis(20);
    loop {
        if let Some(status) = child.try_wait()? {
            bail!(
                "docker-registry exited with {status} on {addr}; its log:\n{}",
                read_log(log_path)
            );
        }
        if let Ok(response) = http_request(addr, "GET", "/v2/", &[], &[]) {
            ensure!(
                response.status == expected_status,
                "docker-registry on {addr} answered GET /v2/ with {} instead of {expected_status}; its log:\n{}",
                response.status,
                read_log(log_path)
            );
            // Another process could own the port; make sure ours is alive.
            if let Some(status) = child.try_wait()? {
                bail!(
                    "docker-registry exited with {status} on {addr}; its log:\n{}",
                    read_log(log_path)
                );
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "docker-registry did not answer GET http://{addr}/v2/ within {STARTUP_TIMEOUT:?}; its log:\n{}",
                read_log(log_path)
            );
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_millis(250));
    }
}

/// What [`Registry::push_multi_platform`] pushed.
pub struct MultiPlatformPush {
    pub index_digest: String,
    pub index_json: Vec<u8>,
    /// The manifest digest of the image that was passed in.
    pub host_manifest_digest: String,
    /// The placeholder arm64 image; its `/etc/platform` reads `linux/arm64/v8`.
    pub arm64: BuiltImage,
}

/// # Panics
/// When `path` is missing, naming the Debian package that provides it.
fn require_binary(path: &str, debian_package: &str) {
    assert!(
        Path::new(path).is_file(),
        "{path} not found: install the Debian package {debian_package} (apt-get install {debian_package})"
    );
}

/// A port that was free a moment ago.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Writes a bcrypt htpasswd file (the only hash distribution accepts).
fn write_htpasswd(dir: &Path, user: &str, password: &str) -> Result<PathBuf> {
    require_binary(HTPASSWD_BINARY, "apache2-utils");
    let output = Command::new(HTPASSWD_BINARY)
        .args(["-Bbn", user, password])
        .output()
        .with_context(|| format!("running {HTPASSWD_BINARY}"))?;
    ensure!(
        output.status.success(),
        "htpasswd -Bbn failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let path = dir.join("htpasswd");
    std::fs::write(&path, &output.stdout)?;
    Ok(path)
}

/// The registry's config.yml. `http.secret` is fixed so the registry does
/// not warn; health checks are off so the log stays quiet.
fn registry_config(addr: &str, storage: &Path, htpasswd: Option<&Path>) -> String {
    let mut config = format!(
        "version: 0.1\n\
         log:\n  level: info\n\
         storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n  \
         maintenance:\n    uploadpurging:\n      enabled: false\n\
         http:\n  addr: {addr}\n  secret: berth-compat-tests\n  headers:\n    X-Content-Type-Options: [nosniff]\n",
        storage = storage.display(),
    );
    if let Some(htpasswd) = htpasswd {
        config.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: berth-compat-tests\n    path: {}\n",
            htpasswd.display()
        ));
    }
    config
}

/// A blocking client for one registry, with optional basic-auth credentials.
#[derive(Clone, Debug)]
pub struct RegistryClient {
    addr: String,
    credentials: Option<(String, String)>,
}

impl RegistryClient {
    pub fn new(addr: impl Into<String>, credentials: Option<(&str, &str)>) -> RegistryClient {
        RegistryClient {
            addr: addr.into(),
            credentials: credentials.map(|(u, p)| (u.to_owned(), p.to_owned())),
        }
    }

    /// Sends one request; `path` starts with `/v2/`. Credentials, if any,
    /// are sent up front (the registry only knows basic auth).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<HttpResponse> {
        let authorization;
        let mut all_headers = headers.to_vec();
        if let Some((user, password)) = &self.credentials {
            authorization = format!(
                "Basic {}",
                base64_encode(format!("{user}:{password}").as_bytes())
            );
            all_headers.push(("Authorization", &authorization));
        }
        http_request(&self.addr, method, path, &all_headers, body)
    }

    pub fn get(&self, path: &str, accept: &[&str]) -> Result<HttpResponse> {
        let accept = accept.join(", ");
        let headers: Vec<(&str, &str)> = if accept.is_empty() {
            vec![]
        } else {
            vec![("Accept", &accept)]
        };
        self.request("GET", path, &headers, &[])
    }

    /// Whether the repository `name` holds blob `digest`.
    pub fn blob_exists(&self, name: &str, digest: &str) -> Result<bool> {
        let response = self.request("HEAD", &format!("/v2/{name}/blobs/{digest}"), &[], &[])?;
        match response.status {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(response.error(&format!("HEAD blob {digest} in {name}"))),
        }
    }

    /// Uploads one blob monolithically (POST, then PUT with the digest),
    /// unless the repository already has it.
    pub fn upload_blob(&self, name: &str, digest: &str, bytes: &[u8]) -> Result<()> {
        if self.blob_exists(name, digest)? {
            return Ok(());
        }
        let started = self.request("POST", &format!("/v2/{name}/blobs/uploads/"), &[], &[])?;
        if started.status != 202 {
            return Err(started.error(&format!("starting upload of {digest} to {name}")));
        }
        let location = started
            .header("Location")
            .context("upload start answered without Location")?;
        // The registry answers an absolute URL; only its path and query matter.
        let mut upload_path = match location.find("://") {
            Some(i) => location[i + 3..]
                .find('/')
                .map_or("/", |j| &location[i + 3 + j..])
                .to_owned(),
            None => location.to_owned(),
        };
        upload_path.push(if upload_path.contains('?') { '&' } else { '?' });
        upload_path.push_str("digest=");
        upload_path.push_str(digest);
        let length = bytes.len().to_string();
        let headers = [
            ("Content-Type", "application/octet-stream"),
            ("Content-Length", &length),
        ];
        let finished = self.request("PUT", &upload_path, &headers, bytes)?;
        if finished.status != 201 {
            return Err(finished.error(&format!("finishing upload of {digest} to {name}")));
        }
        Ok(())
    }

    /// PUTs a manifest or index under `reference` (tag or digest); returns
    /// the digest the registry reports, checked against the body's.
    pub fn put_manifest(
        &self,
        name: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> Result<String> {
        let headers = [("Content-Type", media_type)];
        let response = self.request(
            "PUT",
            &format!("/v2/{name}/manifests/{reference}"),
            &headers,
            body,
        )?;
        if response.status != 201 {
            return Err(response.error(&format!("putting manifest {name}:{reference}")));
        }
        let expected = sha256_digest(body);
        let reported = response.header("Docker-Content-Digest").unwrap_or_default();
        ensure!(
            reported == expected,
            "registry stored {name}:{reference} as {reported:?}, expected {expected}"
        );
        Ok(expected)
    }

    /// Pushes `image`'s blobs and OCI manifest as `name:tag`; returns the
    /// manifest digest.
    pub fn push_oci(&self, image: &BuiltImage, name: &str, tag: &str) -> Result<String> {
        for (digest, bytes) in image.blobs() {
            self.upload_blob(name, digest, bytes)?;
        }
        self.put_manifest(name, tag, MEDIA_TYPE_OCI_MANIFEST, image.manifest_json())
    }

    /// Pushes every image by digest, then an OCI index of them (each entry
    /// under the platform its config claims) as `name:tag`; returns the
    /// index digest.
    pub fn push_index(&self, images: &[&BuiltImage], name: &str, tag: &str) -> Result<String> {
        Ok(self.push_index_json(images, name, tag)?.0)
    }

    fn push_index_json(
        &self,
        images: &[&BuiltImage],
        name: &str,
        tag: &str,
    ) -> Result<(String, Vec<u8>)> {
        let mut manifests = Vec::with_capacity(images.len());
        for image in images {
            // The registry refuses an index whose manifests it does not hold.
            for (digest, bytes) in image.blobs() {
                self.upload_blob(name, digest, bytes)?;
            }
            self.put_manifest(
                name,
                image.manifest_digest(),
                MEDIA_TYPE_OCI_MANIFEST,
                image.manifest_json(),
            )?;
            let mut descriptor = image.manifest_descriptor();
            descriptor.platform = Some(image.platform().clone());
            manifests.push(descriptor);
        }
        let index_json = OciIndex::new(manifests).to_json()?;
        let digest = self.put_manifest(name, tag, MEDIA_TYPE_OCI_INDEX, &index_json)?;
        Ok((digest, index_json))
    }

    /// Pushes `image` plus a placeholder `linux/arm64/v8` image under one
    /// index. The placeholder still holds host busybox; an extra layer with
    /// `/etc/platform` tells which one was pulled.
    pub fn push_multi_platform(
        &self,
        image: &BuiltImage,
        name: &str,
        tag: &str,
    ) -> Result<MultiPlatformPush> {
        let arm64 = BusyboxImage::new(format!("{name}:{tag}"))
            .architecture("arm64")
            .variant("v8")
            .layer_with_file("/etc/platform", "linux/arm64/v8\n")
            .build()?;
        let (index_digest, index_json) = self.push_index_json(&[image, &arm64], name, tag)?;
        Ok(MultiPlatformPush {
            index_digest,
            index_json,
            host_manifest_digest: image.manifest_digest().to_owned(),
            arm64,
        })
    }
}

/// Standard base64 with padding, for the basic-auth header.
fn base64_encode(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64_encode(plain.as_bytes()), encoded);
        }
    }
}
