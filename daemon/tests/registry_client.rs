//! The registry client against a real local registry (Debian's
//! `docker-registry`) holding busybox-static images, plus a tiny lying
//! HTTP server for corrupt and truncated blobs.

use std::time::{Duration, Instant};

use api_types::reference::{Digest, Reference};
use berthd::backends::registry::manifest::{MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST};
use berthd::backends::registry::{
    BlobPush, Credentials, Descriptor, Endpoint, ErrorKind, Platform, PlatformMatcher, RegistryClient,
    RegistryError, Repository,
};
use bytes::Bytes;
use compat_tests::images::{sha256_digest, BuiltImage, BusyboxImage};
use compat_tests::registry::Registry;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn reference(s: &str) -> Reference {
    Reference::parse_normalized(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn client() -> RegistryClient {
    RegistryClient::new(&[], &[]).expect("default registry client")
}

fn blob_descriptor(media_type: &str, digest: &str, size: usize) -> Descriptor {
    Descriptor {
        media_type: media_type.to_owned(),
        digest: digest.to_owned(),
        size: size as u64,
        urls: vec![],
        annotations: Default::default(),
        platform: None,
    }
}

async fn read_blob(repo: &Repository, desc: &Descriptor) -> Result<Vec<u8>, RegistryError> {
    let mut stream = repo.fetch_blob(desc).await?;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

fn bytes_stream(bytes: &[u8]) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    // Two chunks, so the upload really streams.
    let mid = bytes.len() / 2;
    let chunks = vec![Ok(Bytes::copy_from_slice(&bytes[..mid])), Ok(Bytes::copy_from_slice(&bytes[mid..]))];
    futures_util::stream::iter(chunks)
}

fn image(name: &str) -> BuiltImage {
    BusyboxImage::new(name).layer_with_file("/hello", format!("hello from {name}\n")).build().expect("build image")
}

#[tokio::test]
async fn resolves_by_tag_and_digest_and_streams_verified_blobs() {
    let registry = Registry::start().expect("start registry");
    let img = image("berth/tagged:v1");
    let pushed = registry.push_oci(&img, "berth/tagged", "v1").expect("push");
    let client = client();

    let by_tag = reference(&registry.reference("berth/tagged", "v1"));
    let (repo, desc) = client.resolve(&by_tag, &Credentials::anonymous()).await.expect("resolve by tag");
    assert_eq!(desc.digest, pushed);
    assert_eq!(desc.media_type, MEDIA_TYPE_OCI_MANIFEST);
    assert_eq!(desc.size, img.manifest_json().len() as u64);
    // Loopback is insecure: https failed, plain http answered.
    assert_eq!(repo.endpoint().base, format!("http://{}", registry.addr()));
    assert_eq!(repo.path(), "berth/tagged");

    let by_digest = reference(&format!("{}/berth/tagged@{pushed}", registry.addr()));
    let (_, desc2) = client.resolve(&by_digest, &Credentials::anonymous()).await.expect("resolve by digest");
    assert_eq!(desc2, desc);

    let bytes = repo.fetch_manifest(&desc).await.expect("fetch manifest");
    assert_eq!(&bytes[..], img.manifest_json());

    let chosen = repo.fetch_platform_manifest(&desc, &PlatformMatcher::host()).await.expect("platform manifest");
    assert!(chosen.indexes.is_empty());
    assert_eq!(chosen.descriptor.digest, pushed);
    assert_eq!(chosen.manifest.config.digest, img.id());
    assert_eq!(chosen.manifest.layers.len(), img.layers().len());

    // Every blob streams back byte for byte.
    let config = read_blob(&repo, &chosen.manifest.config).await.expect("config blob");
    assert_eq!(config, img.config_json());
    for (layer_desc, layer) in chosen.manifest.layers.iter().zip(img.layers()) {
        let got = read_blob(&repo, layer_desc).await.expect("layer blob");
        assert_eq!(sha256_digest(&got), layer.digest());
        assert_eq!(got.len(), layer.compressed().len());
    }
    let d = Digest::parse(img.id()).unwrap();
    assert_eq!(repo.blob_exists(&d).await.unwrap(), Some(img.config_json().len() as u64));
}

#[tokio::test]
async fn missing_tags_and_blobs_are_not_found() {
    let registry = Registry::start().expect("start registry");
    registry.push_oci(&image("berth/present:v1"), "berth/present", "v1").expect("push");
    let client = client();

    let missing = reference(&registry.reference("berth/present", "nope"));
    let err = client.resolve(&missing, &Credentials::anonymous()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert_eq!(err.to_string(), "manifest unknown: manifest unknown");

    let unknown_repo = reference(&registry.reference("berth/absent", "v1"));
    let err = client.resolve(&unknown_repo, &Credentials::anonymous()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

    let (repo, _) = client.resolve(&reference(&registry.reference("berth/present", "v1")), &Credentials::anonymous()).await.unwrap();
    let absent = sha256_digest(b"not there");
    assert_eq!(repo.blob_exists(&Digest::parse(&absent).unwrap()).await.unwrap(), None);
    let err = read_blob(&repo, &blob_descriptor("application/octet-stream", &absent, 9)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

#[tokio::test]
async fn index_resolves_to_the_requested_platform() {
    let registry = Registry::start().expect("start registry");
    let img = image("berth/multi:v1");
    let pushed = registry.push_multi_platform(&img, "berth/multi", "v1").expect("push index");
    let client = client();

    let (repo, desc) = client
        .resolve(&reference(&registry.reference("berth/multi", "v1")), &Credentials::anonymous())
        .await
        .expect("resolve index");
    assert_eq!(desc.media_type, MEDIA_TYPE_OCI_INDEX);
    assert_eq!(desc.digest, pushed.index_digest);

    let host = repo.fetch_platform_manifest(&desc, &PlatformMatcher::host()).await.expect("host manifest");
    assert_eq!(host.descriptor.digest, pushed.host_manifest_digest);
    assert_eq!(host.indexes.len(), 1);
    assert_eq!(&host.indexes[0].1[..], &pushed.index_json[..]);
    assert_eq!(&host.bytes[..], img.manifest_json());

    let arm64 = PlatformMatcher::only(&Platform::parse("linux/arm64/v8").unwrap());
    let other = repo.fetch_platform_manifest(&desc, &arm64).await.expect("arm64 manifest");
    assert_eq!(other.descriptor.digest, pushed.arm64.manifest_digest());

    let s390x = PlatformMatcher::only(&Platform::parse("linux/s390x").unwrap());
    let err = repo.fetch_platform_manifest(&desc, &s390x).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.to_string(), "no matching manifest for linux/s390x in the manifest list entries");
}

#[tokio::test]
async fn pushes_blobs_and_manifest_then_reads_them_back() {
    let registry = Registry::start().expect("start registry");
    let img = image("berth/pushed:v1");
    let client = client();

    let target = reference(&registry.reference("berth/pushed", "v1"));
    let repo = client.open_for_push(&target, &Credentials::anonymous()).await.expect("open for push");
    for (digest, bytes) in img.blobs() {
        let desc = blob_descriptor("application/octet-stream", digest, bytes.len());
        assert_eq!(repo.push_blob(&desc, None, bytes_stream(bytes)).await.expect("upload"), BlobPush::Uploaded);
        assert_eq!(repo.push_blob(&desc, None, bytes_stream(bytes)).await.expect("again"), BlobPush::Exists);
    }
    let digest = repo
        .put_manifest("v1", MEDIA_TYPE_OCI_MANIFEST, Bytes::copy_from_slice(img.manifest_json()))
        .await
        .expect("put manifest");
    assert_eq!(digest.as_str(), img.manifest_digest());

    let (pulled, desc) = client.resolve(&target, &Credentials::anonymous()).await.expect("resolve pushed");
    assert_eq!(desc.digest, img.manifest_digest());
    let chosen = pulled.fetch_platform_manifest(&desc, &PlatformMatcher::host()).await.unwrap();
    for layer in &chosen.manifest.layers {
        read_blob(&pulled, layer).await.expect("pushed layer reads back");
    }

    // Another repository on the same registry mounts instead of uploading.
    let other = client
        .open_for_push(&reference(&registry.reference("berth/mounted", "v1")), &Credentials::anonymous())
        .await
        .unwrap();
    let (digest, bytes) = img.blobs()[1];
    let desc = blob_descriptor("application/octet-stream", digest, bytes.len());
    let never_read = futures_util::stream::once(async {
        Err::<Bytes, _>(std::io::Error::other("a mount must not read the body"))
    });
    assert_eq!(other.push_blob(&desc, Some("berth/pushed"), never_read).await.expect("mount"), BlobPush::Mounted);
    assert!(other.blob_exists(&Digest::parse(digest).unwrap()).await.unwrap().is_some());

    // A body that does not match its digest is refused by the registry.
    let liar = blob_descriptor("application/octet-stream", &sha256_digest(b"expected"), 8);
    let err = other.push_blob(&liar, None, bytes_stream(b"mismatch")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
}

#[tokio::test]
async fn htpasswd_registry_takes_basic_credentials() {
    let registry = Registry::start_with_htpasswd("berth", "s3cret").expect("start registry");
    let img = image("berth/private:v1");
    registry.push_oci(&img, "berth/private", "v1").expect("push");
    let client = client();
    let target = reference(&registry.reference("berth/private", "v1"));

    let err = client.resolve(&target, &Credentials::anonymous()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    assert_eq!(err.status(), Some(401));

    let err = client.resolve(&target, &Credentials::basic("berth", "wrong")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");

    let creds = Credentials::basic("berth", "s3cret");
    let (repo, desc) = client.resolve(&target, &creds).await.expect("resolve with credentials");
    assert_eq!(desc.digest, img.manifest_digest());
    let chosen = repo.fetch_platform_manifest(&desc, &PlatformMatcher::host()).await.unwrap();
    read_blob(&repo, &chosen.manifest.layers[0]).await.expect("authenticated blob");

    // Push with credentials too.
    let push = client
        .open_for_push(&reference(&registry.reference("berth/private2", "v1")), &creds)
        .await
        .expect("open for push");
    let (digest, bytes) = img.blobs()[0];
    let desc = blob_descriptor("application/octet-stream", digest, bytes.len());
    assert_eq!(push.push_blob(&desc, None, bytes_stream(bytes)).await.unwrap(), BlobPush::Uploaded);

    // docker login
    let login = client.login(registry.addr(), &creds).await.expect("login");
    assert_eq!(login.identity_token, None);
    let err = client.login(registry.addr(), &Credentials::basic("berth", "nope")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
}

#[tokio::test]
async fn docker_hub_names_go_to_mirrors_in_order() {
    let registry = Registry::start().expect("start registry");
    let img = image("busybox:latest");
    registry.push_oci(&img, "library/busybox", "latest").expect("push");
    let dead = dead_address();
    let mirrors = vec![format!("http://{dead}"), format!("http://{}/", registry.addr())];
    let client = RegistryClient::new(&mirrors, &[]).unwrap();

    let (repo, desc) = client.resolve(&reference("busybox"), &Credentials::anonymous()).await.expect("via mirror");
    assert_eq!(desc.digest, img.manifest_digest());
    assert!(repo.endpoint().mirror);
    assert_eq!(repo.endpoint().base, format!("http://{}", registry.addr()));
    assert_eq!(repo.path(), "library/busybox");
}

#[tokio::test]
async fn unreachable_registry_is_unavailable_quickly() {
    let dead = dead_address();
    let started = Instant::now();
    let err = client()
        .resolve(&reference(&format!("{dead}/x/y:z")), &Credentials::anonymous())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert!(err.to_string().contains(&format!("\"http://{dead}/v2/x/y/manifests/z\"")), "{err}");
}

#[tokio::test]
async fn corrupt_and_truncated_blobs_fail_the_stream() {
    let good = b"the content the digest promises".to_vec();
    let desc = blob_descriptor("application/octet-stream", &sha256_digest(&good), good.len());
    let client = client();

    // Same length, different bytes.
    let mut evil = good.clone();
    evil[0] ^= 0xff;
    let addr = lying_server(evil, None).await;
    let repo = client.repository(http_endpoint(&addr), "x/y", &Credentials::anonymous(), false).await.unwrap();
    let err = read_blob(&repo, &desc).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    assert!(err.to_string().contains("verification failed"), "{err}");

    // Announces the full length, sends half, hangs up.
    let addr = lying_server(good[..10].to_vec(), Some(good.len())).await;
    let repo = client.repository(http_endpoint(&addr), "x/y", &Credentials::anonymous(), false).await.unwrap();
    let err = read_blob(&repo, &desc).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");

    // Announces a different length than the descriptor.
    let addr = lying_server(good[..10].to_vec(), None).await;
    let repo = client.repository(http_endpoint(&addr), "x/y", &Credentials::anonymous(), false).await.unwrap();
    let err = read_blob(&repo, &desc).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");

    // The honest server passes, so the failures above are the lies.
    let addr = lying_server(good.clone(), None).await;
    let repo = client.repository(http_endpoint(&addr), "x/y", &Credentials::anonymous(), false).await.unwrap();
    assert_eq!(read_blob(&repo, &desc).await.unwrap(), good);
}

fn http_endpoint(addr: &str) -> Endpoint {
    Endpoint { base: format!("http://{addr}"), host: addr.to_owned(), mirror: false, tls_verify: false }
}

/// An address nothing listens on.
fn dead_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    addr
}

/// Answers every request with `body`, announcing `content_length` (the
/// body's own length by default) and closing the connection after.
async fn lying_server(body: Vec<u8>, content_length: Option<usize>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else { return };
            let body = body.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    content_length.unwrap_or(body.len())
                );
                let _ = conn.write_all(head.as_bytes()).await;
                let _ = conn.write_all(&body).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    addr
}
