//! Pull, push, login and the registry-facing endpoints through the stock CLI
//! and bollard, against a local `docker-registry` (plain and htpasswd), a
//! registry mirror, and a lying registry for corrupt content. Each test has
//! its own registry and daemon.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};

use compat_tests::images::{BuiltImage, BusyboxImage};
use compat_tests::registry::Registry;
use compat_tests::Berthd;
use futures_util::StreamExt;
use serde_json::{json, Value};

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime").block_on(future)
}

fn image(name: &str) -> BuiltImage {
    BusyboxImage::new(name)
        .cmd(["sh", "-c", "echo hi"])
        .layer_with_file("/hello", format!("hello from {name}\n"))
        .build()
        .expect("building test image")
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().map(str::trim).collect()
}

fn inspect(daemon: &Berthd, name: &str) -> Value {
    let out = daemon.docker(&["image", "inspect", name]).success();
    serde_json::from_str::<Value>(&out.stdout).expect("inspect JSON")[0].clone()
}

#[test]
fn pull_by_tag_shows_dockerd_progress_runs_and_is_then_up_to_date() {
    let registry = Registry::start().unwrap();
    let img = image("berth/pull:v1");
    let digest = registry.push_oci(&img, "berth/pull", "v1").unwrap();
    let reference = registry.reference("berth/pull", "v1");
    let daemon = Berthd::start();
    daemon.reach_host_port(registry.port());

    let out = daemon.docker(&["pull", &reference]).success();
    let shown = lines(&out.stdout);
    assert_eq!(shown[0], "v1: Pulling from berth/pull", "{}", out.stdout);
    for layer in img.layer_digests() {
        let short = &layer[7..19];
        assert!(shown.contains(&format!("{short}: Pull complete").as_str()), "{short}: {}", out.stdout);
    }
    assert!(shown.contains(&format!("Digest: {digest}").as_str()), "{}", out.stdout);
    assert!(shown.contains(&format!("Status: Downloaded newer image for {reference}").as_str()), "{}", out.stdout);
    assert_eq!(shown.last(), Some(&reference.as_str()));

    let info = inspect(&daemon, &reference);
    assert_eq!(info["Id"], img.id());
    assert_eq!(info["RepoTags"], json!([reference]));
    assert_eq!(info["RepoDigests"], json!([format!("{}/berth/pull@{digest}", registry.addr())]));

    let ran = daemon.docker(&["run", "--rm", &reference, "cat", "/hello"]).success();
    assert_eq!(ran.stdout, "hello from berth/pull:v1\n");

    let again = daemon.docker(&["pull", &reference]).success();
    assert_eq!(
        lines(&again.stdout),
        [
            "v1: Pulling from berth/pull".to_string(),
            format!("Digest: {digest}"),
            format!("Status: Image is up to date for {reference}"),
            reference.clone()
        ]
    );
}

#[test]
fn pull_by_digest_and_of_an_index_picks_this_platform() {
    let registry = Registry::start().unwrap();
    let img = image("berth/multi:v1");
    let pushed = registry.push_multi_platform(&img, "berth/multi", "v1").unwrap();
    let daemon = Berthd::start();
    daemon.reach_host_port(registry.port());

    let by_digest = format!("{}/berth/multi@{}", registry.addr(), pushed.index_digest);
    let out = daemon.docker(&["pull", &by_digest]).success();
    assert_eq!(lines(&out.stdout)[0], format!("{}: Pulling from berth/multi", pushed.index_digest));
    assert!(out.stdout.contains(&format!("Status: Downloaded newer image for {by_digest}")), "{}", out.stdout);
    let info = inspect(&daemon, &by_digest);
    assert_eq!(info["Id"], img.id());
    assert_eq!(info["Architecture"], "amd64");
    assert_eq!(info["RepoTags"], json!([]));

    let reference = registry.reference("berth/multi", "v1");
    let out = daemon.docker(&["pull", &reference]).success();
    assert!(out.stdout.contains(&format!("Digest: {}", pushed.index_digest)), "{}", out.stdout);
    let ran = daemon
        .docker(&["run", "--rm", &reference, "sh", "-c", "test -e /etc/platform && echo arm64 || echo host"])
        .success();
    assert_eq!(ran.stdout, "host\n");
}

#[test]
fn missing_tags_and_bad_references_answer_as_dockerd() {
    let registry = Registry::start().unwrap();
    registry.push_oci(&image("berth/some:v1"), "berth/some", "v1").unwrap();
    let daemon = Berthd::start();
    daemon.reach_host_port(registry.port());

    let missing = registry.reference("berth/some", "nope");
    let out = daemon.docker(&["pull", &missing]).failure();
    assert_eq!(
        out.stderr.trim(),
        format!("Error response from daemon: manifest for {missing} not found: manifest unknown: manifest unknown")
    );

    let bad = daemon.request("POST", "/v1.47/images/create?fromImage=Berth/UPPER&tag=x", None);
    assert_eq!(bad.status, 400);
    assert!(bad.json()["message"].as_str().unwrap().starts_with("invalid reference format"), "{}", bad.text());

    let refused = daemon.docker(&["pull", "127.0.0.1:1/berth/none:v1"]).failure();
    assert!(refused.stderr.to_lowercase().contains("connection refused"), "{}", refused.stderr);

    let nothing = daemon.docker(&["push", &registry.reference("berth/absent", "v1")]).failure();
    assert!(
        nothing.stderr.contains(&format!(
            "An image does not exist locally with the tag: {}/berth/absent",
            registry.addr()
        )),
        "{}",
        nothing.stderr
    );

    let search = daemon.docker(&["search", "busybox"]).failure();
    assert!(search.stderr.contains("index.docker.io"), "{}", search.stderr);
}

#[test]
fn pull_through_a_mirror_for_docker_hub_names() {
    let registry = Registry::start().unwrap();
    let img = image("busybox:latest");
    registry.push_oci(&img, "library/busybox", "latest").unwrap();
    let daemon =
        Berthd::builder().daemon_json(json!({"registry-mirrors": [format!("http://{}", registry.addr())]})).start();
    daemon.reach_host_port(registry.port());

    let out = daemon.docker(&["pull", "busybox"]).success();
    assert!(out.stdout.contains("latest: Pulling from library/busybox"), "{}", out.stdout);
    assert!(out.stdout.contains("Status: Downloaded newer image for busybox:latest"), "{}", out.stdout);
    assert_eq!(lines(&out.stdout).last(), Some(&"docker.io/library/busybox:latest"));
    let ran = daemon.docker(&["run", "--rm", "busybox", "echo", "hi"]).success();
    assert_eq!(ran.stdout, "hi\n");
}

#[test]
fn authenticated_registry_needs_login_then_pull_and_push_work() {
    let registry = Registry::start_with_htpasswd("berth", "s3cret").unwrap();
    registry.push_oci(&image("berth/private:v1"), "berth/private", "v1").unwrap();
    let reference = registry.reference("berth/private", "v1");
    let daemon = Berthd::start();
    daemon.reach_host_port(registry.port());

    let denied = daemon.docker(&["pull", &reference]).failure();
    assert!(
        denied.stderr.contains(&format!(
            "pull access denied for {}/berth/private, repository does not exist or may require 'docker login'",
            registry.addr()
        )),
        "{}",
        denied.stderr
    );

    let wrong = daemon.docker_stdin(&["login", registry.addr(), "-u", "berth", "--password-stdin"], b"wrong\n").failure();
    assert!(wrong.stderr.contains("401 Unauthorized"), "{}", wrong.stderr);
    let login = daemon.docker_stdin(&["login", registry.addr(), "-u", "berth", "--password-stdin"], b"s3cret\n").success();
    assert!(login.stdout.contains("Login Succeeded"), "{}", login.stdout);

    daemon.docker(&["pull", &reference]).success();
    let pushed = registry.reference("berth/copy", "v2");
    daemon.docker(&["tag", &reference, &pushed]).success();
    let out = daemon.docker(&["push", &pushed]).success();
    assert!(out.stdout.contains("v2: digest: sha256:"), "{}", out.stdout);
}

#[test]
fn push_then_pull_into_a_second_daemon() {
    let registry = Registry::start().unwrap();
    let img = image("berth-test/local:1");
    let daemon = Berthd::start();
    daemon.reach_host_port(registry.port());
    daemon.docker_stdin(&["load"], &img.docker_archive().unwrap()).success();
    let reference = registry.reference("berth/pushed", "v1");
    daemon.docker(&["tag", "berth-test/local:1", &reference]).success();

    let out = daemon.docker(&["push", &reference]).success();
    let shown = lines(&out.stdout);
    assert_eq!(shown[0], format!("The push refers to repository [{}/berth/pushed]", registry.addr()));
    // `docker load` keeps a docker-archive's layers uncompressed.
    for layer in img.diff_ids() {
        assert!(shown.contains(&format!("{}: Pushed", &layer[7..19]).as_str()), "{}", out.stdout);
    }
    let last = shown.last().unwrap();
    assert!(last.starts_with("v1: digest: sha256:") && last.contains(" size: "), "{}", out.stdout);

    let again = daemon.docker(&["push", &reference]).success();
    assert!(again.stdout.contains("Layer already exists"), "{}", again.stdout);

    let other = Berthd::start();
    other.reach_host_port(registry.port());
    other.docker(&["pull", &reference]).success();
    assert_eq!(inspect(&other, &reference)["Id"], img.id());
    let ran = other.docker(&["run", "--rm", &reference]).success();
    assert_eq!(ran.stdout, "hi\n");

    let dist = other.request("GET", &format!("/v1.47/distribution/{reference}/json"), None);
    assert_eq!(dist.status, 200, "{}", dist.text());
    let body = dist.json();
    assert_eq!(body["Descriptor"]["digest"], last.split_whitespace().nth(2).unwrap());
    assert_eq!(body["Platforms"], json!([{"architecture": "amd64", "os": "linux"}]));
}

#[test]
fn bollard_create_image_stream_has_dockerd_fields() {
    let registry = Registry::start().unwrap();
    let img = image("berth/bollard:v1");
    registry.push_oci(&img, "berth/bollard", "v1").unwrap();
    let daemon = Berthd::start();
    daemon.reach_host_port(registry.port());
    let client = daemon.client();
    let from = format!("{}/berth/bollard", registry.addr());
    let infos: Vec<_> = block_on(async {
        let options = bollard::query_parameters::CreateImageOptionsBuilder::default().from_image(&from).tag("v1").build();
        client.create_image(Some(options), None, None).collect::<Vec<_>>().await
    });
    let infos: Vec<_> = infos.into_iter().map(|i| i.expect("progress message")).collect();
    assert_eq!(infos[0].status.as_deref(), Some("Pulling from berth/bollard"));
    assert_eq!(infos[0].id.as_deref(), Some("v1"));
    let complete: Vec<_> = infos.iter().filter(|i| i.status.as_deref() == Some("Pull complete")).collect();
    assert_eq!(complete.len(), img.layer_digests().len());
    assert!(complete.iter().all(|i| i.id.as_ref().is_some_and(|id| id.len() == 12) && i.progress_detail.is_some()));
    let downloading = infos.iter().find(|i| i.status.as_deref() == Some("Downloading")).expect("a Downloading message");
    let detail = downloading.progress_detail.as_ref().unwrap();
    assert!(detail.current.unwrap() > 0 && detail.total.unwrap() >= detail.current.unwrap());
    assert_eq!(
        infos.last().unwrap().status.as_deref(),
        Some(format!("Status: Downloaded newer image for {from}:v1").as_str())
    );
}

/// A registry that serves `image` under `x:v1` with its layer corrupted
/// (same size, one byte changed).
fn lying_registry(image: &BuiltImage) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let manifest = image.manifest_json().to_vec();
    let mut blobs: Vec<(String, Vec<u8>)> =
        image.blobs().into_iter().map(|(d, b)| (d.to_string(), b.to_vec())).collect();
    for (digest, bytes) in &mut blobs {
        if image.layer_digests().contains(&digest.as_str()) {
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0xff;
        }
    }
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = serve_one(stream, &manifest, &blobs);
        }
    });
    addr
}

fn serve_one(mut stream: TcpStream, manifest: &[u8], blobs: &[(String, Vec<u8>)]) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
    }
    let mut parts = request.split_whitespace();
    let (method, path) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let (status, content_type, body): (&str, &str, &[u8]) = if path == "/v2/" {
        ("200 OK", "application/json", b"{}")
    } else if path.starts_with("/v2/x/manifests/") {
        ("200 OK", "application/vnd.oci.image.manifest.v1+json", manifest)
    } else if let Some((_, bytes)) = blobs.iter().find(|(d, _)| path == format!("/v2/x/blobs/{d}")) {
        ("200 OK", "application/octet-stream", bytes)
    } else {
        ("404 Not Found", "application/json", br#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}"#)
    };
    let digest = compat_tests::images::sha256_digest(manifest);
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nDocker-Content-Digest: {digest}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if method != "HEAD" {
        stream.write_all(body)?;
    }
    let _ = stream.read(&mut [0u8; 1]);
    Ok(())
}

#[test]
fn corrupted_blob_fails_the_pull_and_leaves_no_image() {
    let img = image("x:v1");
    let addr = lying_registry(&img);
    let daemon = Berthd::start();
    daemon.reach_host_port(addr.rsplit(':').next().unwrap().parse().unwrap());
    let out = daemon.docker(&["pull", &format!("{addr}/x:v1")]).failure();
    assert!(out.stderr.contains("verification failed"), "{}\n{}", out.stdout, out.stderr);
    let listed = daemon.docker(&["images", "-a", "-q"]).success();
    assert_eq!(listed.stdout, "");
}
