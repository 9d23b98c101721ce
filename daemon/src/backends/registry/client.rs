//! The OCI Distribution client: resolve a reference to a manifest
//! descriptor, fetch manifests and blobs verified against their digests
//! (blobs as a stream, never whole in memory), check, mount and upload
//! blobs, put manifests. Endpoint choice and fallback follow dockerd;
//! concurrency limits are the caller's.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use api_types::reference::{Digest, Reference};
use bytes::{Bytes, BytesMut};
use futures_util::stream::{Stream, StreamExt};
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use reqwest::{Method, Url};
use sha2::{Digest as _, Sha256};
use tracing::debug;

use super::auth::{self, repository_scope, Authorizer, Credentials};
use super::certs::{read_host_certs, DEFAULT_CERTS_DIR};
use super::endpoints::{Endpoint, EndpointConfig, DOCKER_HUB_REGISTRY};
use super::error::{ErrorKind, RegistryError};
use super::manifest::{
    detect_media_type, is_index_type, is_manifest_type, Descriptor, ImageManifest, Manifest, PlatformMatcher,
    MANIFEST_ACCEPT, MAX_MANIFEST_SIZE,
};

/// How long to wait for a TCP connection (dockerd dials with 30 s).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// A transfer that makes no progress this long has failed.
const READ_TIMEOUT: Duration = Duration::from_secs(120);
/// Error bodies are read up to this size for their JSON.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Indexes nest at most this deep.
const MAX_INDEX_DEPTH: usize = 4;

const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";

/// A registry client for the whole daemon: cheap to clone; one connection
/// pool for verified TLS and one for insecure registries.
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    // Built on first use: building loads the system's CA store (hundreds
    // of files), which a daemon start that pulls nothing should not pay.
    verified: tokio::sync::OnceCell<reqwest::Client>,
    unverified: tokio::sync::OnceCell<reqwest::Client>,
    endpoints: EndpointConfig,
    /// `/etc/docker/certs.d`: per-host CAs and client certificates.
    certs_dir: Option<PathBuf>,
}

/// A repository on one endpoint, with its own authorization (token scope
/// `pull` or `pull,push`). Cheap to clone; clones share the token.
#[derive(Clone)]
pub struct Repository {
    inner: Arc<RepoInner>,
}

struct RepoInner {
    http: reqwest::Client,
    endpoint: Endpoint,
    path: String,
    auth: Authorizer,
}

impl std::fmt::Debug for Repository {
    /// Endpoint and path only: the authorization state stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository").field("endpoint", &self.inner.endpoint).field("path", &self.inner.path).finish()
    }
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient").field("endpoints", &self.inner.endpoints).finish()
    }
}

/// What [`Repository::push_blob`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobPush {
    /// The repository had it already ("Layer already exists").
    Exists,
    /// Mounted from another repository of the same registry.
    Mounted,
    /// Uploaded.
    Uploaded,
}

/// A manifest chosen for one platform, with the index it came from.
#[derive(Debug, Clone)]
pub struct PlatformManifest {
    /// The index (or manifest list) chain walked to get here, outermost
    /// first, each with its verified bytes.
    pub indexes: Vec<(Descriptor, Bytes)>,
    pub descriptor: Descriptor,
    /// The manifest's verified bytes, as stored in the registry.
    pub bytes: Bytes,
    pub manifest: ImageManifest,
}

/// A successful login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// A refresh token the token service issued, for the client to keep
    /// (`IdentityToken` in `POST /auth`'s answer).
    pub identity_token: Option<String>,
}

fn http_builder(verify: bool) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(user_agent())
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .danger_accept_invalid_certs(!verify)
}

fn build_error(e: reqwest::Error) -> RegistryError {
    RegistryError::new(ErrorKind::Other, format!("building the registry HTTP client: {e}"))
}

/// Building loads the system's CA store from disk: off the runtime.
async fn build(builder: reqwest::ClientBuilder) -> Result<reqwest::Client, RegistryError> {
    tokio::task::spawn_blocking(move || builder.build().map_err(build_error))
        .await
        .map_err(|e| RegistryError::new(ErrorKind::Other, format!("building the registry HTTP client: {e}")))?
}

/// The daemon-wide client with (or without) TLS verification, built once.
async fn shared(cell: &tokio::sync::OnceCell<reqwest::Client>, verify: bool) -> Result<reqwest::Client, RegistryError> {
    cell.get_or_try_init(|| build(http_builder(verify))).await.cloned()
}

fn user_agent() -> String {
    format!("berthd/{} ({}; {})", env!("CARGO_PKG_VERSION"), std::env::consts::OS, std::env::consts::ARCH)
}

impl RegistryClient {
    /// A client for daemon.json's `registry-mirrors` and
    /// `insecure-registries`; errors carry dockerd's texts.
    /// Per-host TLS material comes from `/etc/docker/certs.d`.
    pub fn new(mirrors: &[String], insecure_registries: &[String]) -> Result<Self, RegistryError> {
        Self::with_endpoints(EndpointConfig::new(mirrors, insecure_registries)?, Some(PathBuf::from(DEFAULT_CERTS_DIR)))
    }

    /// `certs_dir`: where `<host[:port]>/{*.crt,*.cert,*.key}` live, or
    /// `None` for system roots only.
    pub fn with_endpoints(endpoints: EndpointConfig, certs_dir: Option<PathBuf>) -> Result<Self, RegistryError> {
        Ok(Self {
            inner: Arc::new(ClientInner {
                verified: tokio::sync::OnceCell::new(),
                unverified: tokio::sync::OnceCell::new(),
                endpoints,
                certs_dir,
            }),
        })
    }

    pub fn endpoints(&self) -> &EndpointConfig {
        &self.inner.endpoints
    }

    /// The HTTP client for an endpoint: unverified TLS for insecure
    /// registries; system roots plus the host's certs.d CAs and client
    /// certificate for secure ones, as dockerd's `newTLSConfig` (the
    /// directory is read on each call, so changes apply without restart).
    async fn http(&self, endpoint: &Endpoint) -> Result<reqwest::Client, RegistryError> {
        if !endpoint.tls_verify {
            return shared(&self.inner.unverified, false).await;
        }
        let official = !endpoint.mirror && endpoint.host == DOCKER_HUB_REGISTRY;
        let Some(dir) = self.inner.certs_dir.as_deref().filter(|_| endpoint.is_https() && !official) else {
            return shared(&self.inner.verified, true).await;
        };
        let Some(certs) = read_host_certs(dir, &endpoint.host).await? else {
            return shared(&self.inner.verified, true).await;
        };
        let mut builder = http_builder(true);
        for pem in &certs.roots {
            let bundle = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| RegistryError::invalid(format!("CA certificate for {} in {}: {e}", endpoint.host, dir.display())))?;
            for cert in bundle {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some(pem) = &certs.identity {
            let identity = reqwest::Identity::from_pem(pem).map_err(|e| {
                RegistryError::invalid(format!("client certificate for {} in {}: {e}", endpoint.host, dir.display()))
            })?;
            builder = builder.identity(identity);
        }
        build(builder).await
    }

    /// A repository handle on one given endpoint (no request sent yet).
    pub async fn repository(
        &self,
        endpoint: Endpoint,
        path: &str,
        credentials: &Credentials,
        push: bool,
    ) -> Result<Repository, RegistryError> {
        Ok(Repository {
            inner: Arc::new(RepoInner {
                http: self.http(&endpoint).await?,
                auth: Authorizer::new(credentials.clone(), vec![repository_scope(path, push)]),
                endpoint,
                path: path.to_owned(),
            }),
        })
    }

    /// Resolves `reference` (its digest, else its tag, else `latest`) for
    /// pulling. Endpoints are tried as dockerd tries them: Docker Hub
    /// mirrors in order, then the registry itself; https then http for
    /// insecure registries. Any failure on a mirror moves on; on the
    /// registry itself only failures without a registry answer do. The
    /// repository returned is bound to the endpoint that answered.
    pub async fn resolve(
        &self,
        reference: &Reference,
        credentials: &Credentials,
    ) -> Result<(Repository, Descriptor), RegistryError> {
        let target = reference
            .digest
            .clone()
            .or_else(|| reference.tag.clone())
            .unwrap_or_else(|| api_types::reference::DEFAULT_TAG.to_owned());
        let mut last_error = None;
        for endpoint in self.inner.endpoints.pull_endpoints(&reference.domain).await {
            let mirror = endpoint.mirror;
            let base = endpoint.base.clone();
            let resolved = match self.repository(endpoint, &reference.path, credentials, false).await {
                Ok(repo) => repo.resolve(&target).await.map(|desc| (repo, desc)),
                Err(e) => Err(e),
            };
            match resolved {
                Ok(found) => return Ok(found),
                Err(e) => {
                    // dockerd's continueOnError: a mirror may fail in any
                    // way; the registry itself only without an error code.
                    let fall_back = mirror || !e.has_error_code();
                    debug!(endpoint = %base, error = %e, fall_back, "registry: resolve failed");
                    if !fall_back {
                        return Err(e);
                    }
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| {
            RegistryError::new(ErrorKind::Unavailable, format!("no endpoints found for {}", reference.name()))
        }))
    }

    /// Opens `reference`'s repository for pushing on the first push
    /// endpoint that answers `GET /v2/` (https, then http for insecure
    /// registries; never a mirror). A 401 there is an answer: the
    /// challenge is remembered and credentials are used from then on.
    pub async fn open_for_push(
        &self,
        reference: &Reference,
        credentials: &Credentials,
    ) -> Result<Repository, RegistryError> {
        let mut last_error = None;
        for endpoint in self.inner.endpoints.push_endpoints(&reference.domain).await {
            let repo = self.repository(endpoint, &reference.path, credentials, true).await?;
            match repo.ping().await {
                Ok(()) => return Ok(repo),
                Err(e) if e.kind() == ErrorKind::Unavailable || e.status().is_none() => last_error = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| {
            RegistryError::new(ErrorKind::Unavailable, format!("no endpoints found for {}", reference.name()))
        }))
    }

    /// Checks credentials against a registry (`docker login`): `GET /v2/`
    /// authenticated with basic auth or a token fetched with
    /// `offline_token=true`, as dockerd's `loginV2`. `domain` is a
    /// reference domain (`docker.io`, `localhost:5000`).
    pub async fn login(&self, domain: &str, credentials: &Credentials) -> Result<Login, RegistryError> {
        let mut last_error = None;
        for endpoint in self.inner.endpoints.push_endpoints(domain).await {
            let http = self.http(&endpoint).await?;
            match login_on(&http, &endpoint, credentials).await {
                Ok(login) => return Ok(login),
                Err(e) if e.status().is_none() => last_error = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_error
            .unwrap_or_else(|| RegistryError::new(ErrorKind::Unavailable, format!("no endpoints found for {domain}"))))
    }
}

async fn login_on(http: &reqwest::Client, endpoint: &Endpoint, credentials: &Credentials) -> Result<Login, RegistryError> {
    let url = endpoint.url("");
    let what = format!("Get \"{url}\"");
    let resp = http.get(&url).send().await.map_err(|e| RegistryError::transport(&what, &e))?;
    match resp.status().as_u16() {
        200 => return Ok(Login { identity_token: None }),
        401 => {}
        status => return Err(error_from(resp, status, &what).await),
    }
    let challenges = challenges_of(resp.headers());
    let (header, identity_token) = if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
        let token = auth::fetch_token(http, bearer, &[], credentials, true).await?;
        let refresh = Some(token.refresh_token).filter(|t| !t.is_empty());
        (format!("Bearer {}", token.token), refresh)
    } else if challenges.iter().any(|c| c.scheme == "basic") {
        let raw = format!("{}:{}", credentials.username, credentials.password);
        (format!("Basic {}", base64::Engine::encode(&base64::engine::general_purpose::STANDARD, raw)), None)
    } else {
        return Err(RegistryError::new(ErrorKind::Unauthorized, format!("{what}: no supported authentication challenge")));
    };
    let resp = http.get(&url).header(AUTHORIZATION, header).send().await.map_err(|e| RegistryError::transport(&what, &e))?;
    match resp.status().as_u16() {
        200 => Ok(Login { identity_token }),
        401 => Err(RegistryError::new(
            ErrorKind::Unauthorized,
            format!("login attempt to {url} failed with status: 401 Unauthorized"),
        )),
        status => Err(error_from(resp, status, &what).await),
    }
}

fn challenges_of(headers: &HeaderMap) -> Vec<auth::Challenge> {
    headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(auth::parse_challenges)
        .collect()
}

/// Reads (a bounded part of) an error answer into a [`RegistryError`].
async fn error_from(resp: reqwest::Response, status: u16, what: &str) -> RegistryError {
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        body.extend_from_slice(&chunk);
        if body.len() >= MAX_ERROR_BODY {
            break;
        }
    }
    RegistryError::from_response(status, &body, what)
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn sha256_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Go's request description: `Get "https://…"`.
fn describe(method: &Method, url: &Url) -> String {
    let m = method.as_str();
    let mut name = m[..1].to_owned();
    name.push_str(&m[1..].to_ascii_lowercase());
    format!("{name} \"{}\"", auth::strip_query(url))
}

impl Repository {
    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    /// The repository path on the registry: `library/busybox`.
    pub fn path(&self) -> &str {
        &self.inner.path
    }

    /// Credentials go only to the endpoint's own host, never to a CDN or
    /// upload service elsewhere.
    fn is_endpoint_host(&self, url: &Url) -> bool {
        url.host_str().is_some_and(|h| {
            let host = match url.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_owned(),
            };
            host == self.inner.endpoint.host
        })
    }

    fn url(&self, rest: &str) -> Result<Url, RegistryError> {
        let raw = self.inner.endpoint.url(&format!("{}/{rest}", self.inner.path));
        Url::parse(&raw).map_err(|e| RegistryError::invalid(format!("invalid registry URL {raw}: {e}")))
    }

    /// Sends a request with authorization, answering one 401 challenge.
    /// `body` must be cheap to clone (it may be sent twice).
    async fn send(
        &self,
        method: Method,
        url: Url,
        headers: &[(reqwest::header::HeaderName, &str)],
        body: Option<Bytes>,
    ) -> Result<reqwest::Response, RegistryError> {
        let what = describe(&method, &url);
        let http = &self.inner.http;
        let same_host = self.is_endpoint_host(&url);
        let mut retried = false;
        loop {
            let authorization = if same_host { self.inner.auth.header(http).await? } else { None };
            let mut req = http.request(method.clone(), url.clone());
            for (name, value) in headers {
                req = req.header(name, *value);
            }
            if let Some(a) = &authorization {
                req = req.header(AUTHORIZATION, a);
            }
            if let Some(b) = &body {
                req = req.body(b.clone());
            }
            debug!(method = %method, url = %auth::strip_query(&url), "registry: request");
            let resp = req.send().await.map_err(|e| RegistryError::transport(&what, &e))?;
            if resp.status().as_u16() == 401 && !retried && same_host {
                let challenges = challenges_of(resp.headers());
                if self.inner.auth.on_unauthorized(http, &challenges, authorization.as_deref()).await? {
                    retried = true;
                    continue;
                }
            }
            return Ok(resp);
        }
    }

    /// `GET /v2/`: is this endpoint a registry? Learns the auth challenge.
    pub async fn ping(&self) -> Result<(), RegistryError> {
        let raw = self.inner.endpoint.url("");
        let url = Url::parse(&raw).map_err(|e| RegistryError::invalid(format!("invalid registry URL {raw}: {e}")))?;
        let what = describe(&Method::GET, &url);
        let resp = self.send(Method::GET, url, &[], None).await?;
        match resp.status().as_u16() {
            200..=299 => Ok(()),
            status => Err(error_from(resp, status, &what).await),
        }
    }

    /// Resolves a tag or digest to the manifest's descriptor: `HEAD` with
    /// every manifest type accepted, then `GET` when the registry leaves out
    /// the digest or the type (or to read why a `HEAD` failed).
    pub async fn resolve(&self, tag_or_digest: &str) -> Result<Descriptor, RegistryError> {
        let by_digest = match tag_or_digest.contains(':') {
            true => Some(Digest::parse(tag_or_digest).map_err(|e| RegistryError::invalid(e.to_string()))?),
            false => None,
        };
        let url = self.url(&format!("manifests/{tag_or_digest}"))?;
        let resp = self.send(Method::HEAD, url.clone(), &[(ACCEPT, MANIFEST_ACCEPT)], None).await?;
        if resp.status().is_success() {
            let headers = resp.headers();
            let content_type = header_str(headers, CONTENT_TYPE.as_str()).map(|c| c.split(';').next().unwrap_or_default().trim());
            let digest = header_str(headers, DOCKER_CONTENT_DIGEST).map(str::to_owned);
            let size = header_str(headers, CONTENT_LENGTH.as_str()).and_then(|s| s.parse::<u64>().ok());
            let known_type = content_type.filter(|t| is_index_type(t) || is_manifest_type(t));
            let digest = match (&by_digest, digest) {
                (Some(d), _) => Some(d.to_string()),
                (None, Some(d)) if Digest::parse(&d).is_ok() => Some(d),
                _ => None,
            };
            if let (Some(media_type), Some(digest), Some(size)) = (known_type, digest, size) {
                return Ok(Descriptor {
                    media_type: media_type.to_owned(),
                    digest,
                    size,
                    urls: vec![],
                    annotations: Default::default(),
                    platform: None,
                });
            }
        }
        // GET: the registry omitted something, or HEAD failed and the body
        // of a GET says why.
        let what = describe(&Method::GET, &url);
        let resp = self.send(Method::GET, url, &[(ACCEPT, MANIFEST_ACCEPT)], None).await?;
        let status = resp.status().as_u16();
        if !resp.status().is_success() {
            return Err(error_from(resp, status, &what).await);
        }
        let content_type = header_str(resp.headers(), CONTENT_TYPE.as_str()).map(str::to_owned);
        let header_digest = header_str(resp.headers(), DOCKER_CONTENT_DIGEST).map(str::to_owned);
        let body = read_limited(resp, MAX_MANIFEST_SIZE, &what).await?;
        let computed = sha256_of(&body);
        if let Some(d) = &by_digest {
            if d.is_sha256() && d.as_str() != computed {
                return Err(RegistryError::invalid(format!("manifest verification failed for digest {d}")));
            }
        }
        let digest = match (&by_digest, header_digest) {
            (Some(d), _) => d.to_string(),
            // A registry may name a manifest by a non-sha256 digest.
            (None, Some(h)) if Digest::parse(&h).is_ok_and(|d| !d.is_sha256()) => h,
            _ => computed,
        };
        let media_type = detect_media_type(content_type.as_deref(), &body)?;
        Ok(Descriptor {
            media_type,
            digest,
            size: body.len() as u64,
            urls: vec![],
            annotations: Default::default(),
            platform: None,
        })
    }

    /// Fetches a manifest or index by its descriptor and verifies size and
    /// digest before returning the bytes.
    pub async fn fetch_manifest(&self, desc: &Descriptor) -> Result<Bytes, RegistryError> {
        let digest = Digest::parse(&desc.digest).map_err(|e| RegistryError::invalid(format!("{}: {e}", desc.digest)))?;
        if desc.size > MAX_MANIFEST_SIZE {
            return Err(RegistryError::invalid(format!("manifest {digest} is too large ({} bytes)", desc.size)));
        }
        let url = self.url(&format!("manifests/{digest}"))?;
        let what = describe(&Method::GET, &url);
        let accept = if desc.media_type.is_empty() { MANIFEST_ACCEPT.to_owned() } else { format!("{}, {MANIFEST_ACCEPT}", desc.media_type) };
        let resp = self.send(Method::GET, url, &[(ACCEPT, &accept)], None).await?;
        let status = resp.status().as_u16();
        if !resp.status().is_success() {
            return Err(error_from(resp, status, &what).await);
        }
        let body = read_limited(resp, desc.size.clamp(1, MAX_MANIFEST_SIZE), &what).await?;
        verify(&digest, desc.size, &body).map_err(|_| {
            RegistryError::invalid(format!("manifest verification failed for digest {digest}"))
        })?;
        Ok(body)
    }

    /// From a resolved descriptor to the image manifest for `platform`:
    /// walks indexes (picking as containerd's `platforms.Only`), fetching
    /// and verifying each document on the way.
    pub async fn fetch_platform_manifest(
        &self,
        desc: &Descriptor,
        platform: &PlatformMatcher,
    ) -> Result<PlatformManifest, RegistryError> {
        let mut indexes = Vec::new();
        let mut current = desc.clone();
        for _ in 0..=MAX_INDEX_DEPTH {
            let bytes = self.fetch_manifest(&current).await?;
            let media_type = if current.media_type.is_empty() {
                detect_media_type(None, &bytes)?
            } else {
                current.media_type.clone()
            };
            match Manifest::parse(&media_type, &bytes)? {
                Manifest::Image(manifest) => {
                    return Ok(PlatformManifest { indexes, descriptor: current, bytes, manifest: *manifest });
                }
                Manifest::Index(index) => {
                    let Some(next) = platform.select(&index.manifests).cloned() else {
                        let wanted = platform.preferred().map(|p| p.format()).unwrap_or_default();
                        return Err(RegistryError::new(
                            ErrorKind::NotFound,
                            format!("no matching manifest for {wanted} in the manifest list entries"),
                        ));
                    };
                    indexes.push((current, bytes));
                    current = next;
                }
            }
        }
        Err(RegistryError::invalid(format!("manifest indexes nest deeper than {MAX_INDEX_DEPTH}")))
    }

    /// Streams a blob, verifying size and digest as it goes: the stream
    /// ends with an error instead of `None` if the content is corrupt or
    /// cut short, so a consumer must only commit what it wrote after the
    /// stream ended cleanly. Redirects (CDNs) are followed without
    /// forwarding credentials to other hosts.
    pub async fn fetch_blob(&self, desc: &Descriptor) -> Result<BlobStream, RegistryError> {
        let digest = Digest::parse(&desc.digest).map_err(|e| RegistryError::invalid(format!("{}: {e}", desc.digest)))?;
        if !digest.is_sha256() {
            return Err(RegistryError::invalid(format!("unsupported digest algorithm for {digest}")));
        }
        let url = self.url(&format!("blobs/{digest}"))?;
        let what = describe(&Method::GET, &url);
        let resp = self.send(Method::GET, url, &[], None).await?;
        let status = resp.status().as_u16();
        if !resp.status().is_success() {
            return Err(error_from(resp, status, &what).await);
        }
        if let Some(len) = resp.content_length() {
            if len != desc.size {
                return Err(RegistryError::invalid(format!(
                    "{what}: blob {digest} is {len} bytes, expected {}",
                    desc.size
                )));
            }
        }
        Ok(BlobStream {
            inner: Box::pin(resp.bytes_stream()),
            hasher: Sha256::new(),
            digest,
            expected: desc.size,
            received: 0,
            what,
            done: false,
        })
    }

    /// Whether the repository has a blob; its size when it does.
    pub async fn blob_exists(&self, digest: &Digest) -> Result<Option<u64>, RegistryError> {
        let url = self.url(&format!("blobs/{digest}"))?;
        let what = describe(&Method::HEAD, &url);
        let resp = self.send(Method::HEAD, url, &[], None).await?;
        match resp.status().as_u16() {
            // The header, not reqwest's `content_length()`: a HEAD answer
            // has an empty body whatever size it announces.
            200..=299 => Ok(Some(
                header_str(resp.headers(), CONTENT_LENGTH.as_str()).and_then(|l| l.parse().ok()).unwrap_or(0),
            )),
            404 => Ok(None),
            status => Err(error_from(resp, status, &what).await),
        }
    }

    /// Pushes one blob unless the repository has it: a cross-repository
    /// mount from `mount_from` (a repository path on the same registry)
    /// first, then `POST` an upload session and `PUT` the content with its
    /// digest. `body` is only polled when an upload happens, so it should
    /// open its source lazily; it must yield exactly `desc.size` bytes.
    pub async fn push_blob<S>(
        &self,
        desc: &Descriptor,
        mount_from: Option<&str>,
        body: S,
    ) -> Result<BlobPush, RegistryError>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
    {
        let digest = Digest::parse(&desc.digest).map_err(|e| RegistryError::invalid(format!("{}: {e}", desc.digest)))?;
        if self.blob_exists(&digest).await?.is_some() {
            return Ok(BlobPush::Exists);
        }
        let mut url = self.url("blobs/uploads/")?;
        if let Some(from) = mount_from.filter(|f| *f != self.inner.path) {
            self.inner.auth.add_scope(&self.inner.http, repository_scope(from, false)).await?;
            url.query_pairs_mut().append_pair("mount", digest.as_str()).append_pair("from", from);
        }
        let what = describe(&Method::POST, &url);
        let resp = self.send(Method::POST, url, &[], Some(Bytes::new())).await?;
        let location = match resp.status().as_u16() {
            201 => return Ok(BlobPush::Mounted),
            202 => upload_location(&resp, &what)?,
            status => return Err(error_from(resp, status, &what).await),
        };
        let mut put_url = location;
        put_url.query_pairs_mut().append_pair("digest", digest.as_str());
        let what = describe(&Method::PUT, &put_url);
        let same_host = self.is_endpoint_host(&put_url);
        let mut req = self
            .inner
            .http
            .put(put_url)
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, desc.size.to_string())
            .body(reqwest::Body::wrap_stream(body));
        if same_host {
            if let Some(a) = self.inner.auth.header(&self.inner.http).await? {
                req = req.header(AUTHORIZATION, a);
            }
        }
        let resp = req.send().await.map_err(|e| RegistryError::transport(&what, &e))?;
        let status = resp.status().as_u16();
        if status != 201 {
            return Err(error_from(resp, status, &what).await);
        }
        if let Some(reported) = header_str(resp.headers(), DOCKER_CONTENT_DIGEST) {
            if reported != digest.as_str() {
                return Err(RegistryError::invalid(format!("{what}: registry stored {reported}, expected {digest}")));
            }
        }
        Ok(BlobPush::Uploaded)
    }

    /// Puts a manifest or index under a tag or digest; returns its digest
    /// after checking the registry's `Docker-Content-Digest` agrees.
    pub async fn put_manifest(&self, tag_or_digest: &str, media_type: &str, body: Bytes) -> Result<Digest, RegistryError> {
        let url = self.url(&format!("manifests/{tag_or_digest}"))?;
        let what = describe(&Method::PUT, &url);
        let digest = Digest::parse(&sha256_of(&body)).map_err(|e| RegistryError::invalid(e.to_string()))?;
        let resp = self.send(Method::PUT, url, &[(CONTENT_TYPE, media_type)], Some(body)).await?;
        let status = resp.status().as_u16();
        if !resp.status().is_success() {
            return Err(error_from(resp, status, &what).await);
        }
        if let Some(reported) = header_str(resp.headers(), DOCKER_CONTENT_DIGEST) {
            if reported != digest.as_str() && Digest::parse(reported).is_ok_and(|d| d.is_sha256()) {
                return Err(RegistryError::invalid(format!("{what}: registry stored {reported}, expected {digest}")));
            }
        }
        Ok(digest)
    }
}

/// The absolute upload URL from a 202's `Location` (often relative).
fn upload_location(resp: &reqwest::Response, what: &str) -> Result<Url, RegistryError> {
    let location = header_str(resp.headers(), LOCATION.as_str())
        .ok_or_else(|| RegistryError::invalid(format!("{what}: upload started without a Location")))?;
    resp.url()
        .join(location)
        .map_err(|e| RegistryError::invalid(format!("{what}: invalid upload Location {location:?}: {e}")))
}

/// Reads a whole (small) body, refusing more than `limit` bytes.
async fn read_limited(resp: reqwest::Response, limit: u64, what: &str) -> Result<Bytes, RegistryError> {
    if resp.content_length().is_some_and(|l| l > limit) {
        return Err(RegistryError::invalid(format!("{what}: content larger than {limit} bytes")));
    }
    let mut buf = BytesMut::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| RegistryError::transport(what, &e))?;
        if (buf.len() + chunk.len()) as u64 > limit {
            return Err(RegistryError::invalid(format!("{what}: content larger than {limit} bytes")));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

fn verify(digest: &Digest, size: u64, body: &[u8]) -> Result<(), ()> {
    if size != 0 && body.len() as u64 != size {
        return Err(());
    }
    let computed = match digest.algorithm() {
        "sha256" => hex::encode(Sha256::digest(body)),
        "sha512" => hex::encode(sha2::Sha512::digest(body)),
        "sha384" => hex::encode(sha2::Sha384::digest(body)),
        _ => return Err(()),
    };
    if computed == digest.encoded() {
        Ok(())
    } else {
        Err(())
    }
}

/// A blob's bytes as they arrive, hashed on the way. Yields
/// `Err(kind Invalid)` when the content does not match the digest or size,
/// `Err(kind Unavailable)` when the connection breaks; `None` only after
/// the whole blob verified.
pub struct BlobStream {
    inner: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    hasher: Sha256,
    digest: Digest,
    expected: u64,
    received: u64,
    what: String,
    done: bool,
}

impl BlobStream {
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The size the descriptor announced.
    pub fn size(&self) -> u64 {
        self.expected
    }

    /// Bytes received so far (for progress).
    pub fn received(&self) -> u64 {
        self.received
    }

    fn fail(&mut self, err: RegistryError) -> Poll<Option<Result<Bytes, RegistryError>>> {
        self.done = true;
        Poll::Ready(Some(Err(err)))
    }
}

impl std::fmt::Debug for BlobStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStream")
            .field("digest", &self.digest)
            .field("expected", &self.expected)
            .field("received", &self.received)
            .finish()
    }
}

impl Stream for BlobStream {
    type Item = Result<Bytes, RegistryError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.inner.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                self.received += chunk.len() as u64;
                if self.received > self.expected {
                    let msg = format!("blob {} is larger than its {} bytes", self.digest, self.expected);
                    return self.fail(RegistryError::invalid(msg));
                }
                self.hasher.update(&chunk);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                let err = RegistryError::transport(&self.what, &e);
                self.fail(err)
            }
            Poll::Ready(None) => {
                if self.received < self.expected {
                    let msg = format!(
                        "{}: unexpected EOF: blob {} ended after {} of {} bytes",
                        self.what, self.digest, self.received, self.expected
                    );
                    return self.fail(RegistryError::new(ErrorKind::Unavailable, msg));
                }
                let computed = hex::encode(std::mem::take(&mut self.hasher).finalize());
                self.done = true;
                if computed != self.digest.encoded() {
                    let msg = format!("blob verification failed for digest {}: got sha256:{computed}", self.digest);
                    return Poll::Ready(Some(Err(RegistryError::invalid(msg))));
                }
                Poll::Ready(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_described_as_go_does() {
        let url = Url::parse("https://r.example/v2/x/manifests/latest?foo=1").unwrap();
        assert_eq!(describe(&Method::HEAD, &url), "Head \"https://r.example/v2/x/manifests/latest\"");
        assert_eq!(describe(&Method::GET, &url), "Get \"https://r.example/v2/x/manifests/latest\"");
    }

    #[test]
    fn verify_checks_size_and_each_algorithm() {
        let body = b"hello";
        let d = Digest::parse(&sha256_of(body)).unwrap();
        assert!(verify(&d, 5, body).is_ok());
        assert!(verify(&d, 0, body).is_ok());
        assert!(verify(&d, 4, body).is_err());
        assert!(verify(&d, 5, b"hellO").is_err());
        let d512 = Digest::parse(&format!("sha512:{}", hex::encode(sha2::Sha512::digest(body)))).unwrap();
        assert!(verify(&d512, 5, body).is_ok());
    }

    fn stream_of(chunks: Vec<Result<Bytes, RegistryError>>, digest: &str, size: u64) -> BlobStream {
        // Errors from the fake source are not reqwest errors; the tests
        // below only feed good chunks.
        let inner = futures_util::stream::iter(chunks.into_iter().map(|c| Ok::<_, reqwest::Error>(c.unwrap_or_default())));
        BlobStream {
            inner: Box::pin(inner),
            hasher: Sha256::new(),
            digest: Digest::parse(digest).unwrap(),
            expected: size,
            received: 0,
            what: "Get \"x\"".into(),
            done: false,
        }
    }

    async fn drain(mut s: BlobStream) -> Result<Vec<u8>, RegistryError> {
        let mut out = Vec::new();
        while let Some(chunk) = s.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn blob_stream_verifies_digest_and_size() {
        let d = sha256_of(b"hello world");
        let ok = stream_of(vec![Ok(Bytes::from_static(b"hello ")), Ok(Bytes::from_static(b"world"))], &d, 11);
        assert_eq!(drain(ok).await.unwrap(), b"hello world");

        let bad = stream_of(vec![Ok(Bytes::from_static(b"hello World"))], &d, 11);
        let e = drain(bad).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid);
        assert!(e.to_string().contains("verification failed"), "{e}");

        let short = stream_of(vec![Ok(Bytes::from_static(b"hello"))], &d, 11);
        let e = drain(short).await.unwrap_err();
        assert!(e.to_string().contains("unexpected EOF"), "{e}");

        let long = stream_of(vec![Ok(Bytes::from_static(b"hello world!"))], &d, 11);
        let e = drain(long).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid);
        assert!(e.to_string().contains("larger"), "{e}");
    }
}
