//! `docker build` with the classic builder (`DOCKER_BUILDKIT=0`, as the
//! stock CLI without a buildx plugin): instructions, the step output,
//! the layer cache, multi-stage builds, `.dockerignore`, build args,
//! failures, `-q`, and `docker builder prune`.

use std::path::Path;
use std::process::Command;

use compat_tests::{Berthd, CmdOutput};

/// `docker build ARGS` with the classic builder, from `dir`.
fn build(daemon: &Berthd, dir: &Path, args: &[&str]) -> CmdOutput {
    let mut cmd = Command::new(compat_tests::cli::docker_binary());
    cmd.arg("build")
        .args(args)
        .arg(dir)
        .env("DOCKER_HOST", daemon.host())
        .env("DOCKER_CONFIG", daemon.dir().join("docker-config"))
        .env("DOCKER_BUILDKIT", "0")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_API_VERSION")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    compat_tests::cli::run(cmd, None)
}

/// A context directory with `files` (path, content).
fn context(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    dir
}

fn inspect(daemon: &Berthd, what: &str) -> serde_json::Value {
    let out = daemon.docker(&["image", "inspect", what]).success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    v[0].clone()
}

fn steps_using_cache(out: &str) -> usize {
    out.lines().filter(|l| *l == " ---> Using cache").count()
}

#[test]
fn instructions_output_and_config() {
    let daemon = Berthd::start_with_busybox();
    let dockerfile = r#"# a comment
FROM busybox
LABEL maintainer.team="build team" version=1
ENV GREETING=hello \
    TARGET=world
WORKDIR /app
COPY hello.txt ./
COPY dir/ /app/dir/
RUN echo "$GREETING $TARGET" > /app/out.txt && echo to-stderr >&2
USER 1000:1000
EXPOSE 8080/tcp 53/udp
VOLUME ["/data"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --retries=2 CMD ["true"]
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /app/out.txt /app/hello.txt /app/dir/nested.txt"]
"#;
    let ctx = context(&[("Dockerfile", dockerfile), ("hello.txt", "from the context\n"), ("dir/nested.txt", "nested\n")]);
    let out = build(&daemon, ctx.path(), &["-t", "built:1", "-t", "built:latest"]).success();
    assert!(out.stdout.contains("Step 1/14 : FROM busybox\n ---> "), "{}", out.stdout);
    assert!(out.stdout.contains("Step 7/14 : RUN echo \"$GREETING $TARGET\" > /app/out.txt && echo to-stderr >&2\n ---> Running in "), "{}", out.stdout);
    assert!(out.stdout.contains("to-stderr"), "{}", out.stdout);
    assert!(out.stdout.contains("Removing intermediate container "), "{}", out.stdout);
    assert!(out.stdout.contains("Successfully tagged built:1\nSuccessfully tagged built:latest\n"), "{}", out.stdout);
    let built = out.stdout.lines().find_map(|l| l.strip_prefix("Successfully built ")).unwrap().to_string();

    let img = inspect(&daemon, "built:1");
    assert!(img["Id"].as_str().unwrap().trim_start_matches("sha256:").starts_with(&built));
    let c = &img["Config"];
    assert_eq!(c["Labels"]["maintainer.team"], "build team");
    assert_eq!(c["Labels"]["version"], "1");
    assert!(c["Env"].as_array().unwrap().iter().any(|e| e == "GREETING=hello"), "{c}");
    assert!(c["Env"].as_array().unwrap().iter().any(|e| e == "TARGET=world"), "{c}");
    assert_eq!(c["WorkingDir"], "/app");
    assert_eq!(c["User"], "1000:1000");
    assert!(c["ExposedPorts"]["8080/tcp"].is_object() && c["ExposedPorts"]["53/udp"].is_object(), "{c}");
    assert!(c["Volumes"]["/data"].is_object(), "{c}");
    assert_eq!(c["StopSignal"], "SIGTERM");
    assert_eq!(c["Healthcheck"]["Test"], serde_json::json!(["CMD", "true"]));
    assert_eq!(c["Healthcheck"]["Interval"], 5_000_000_000i64);
    assert_eq!(c["Healthcheck"]["Retries"], 2);
    assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));

    let run = daemon.docker(&["run", "--rm", "built:1"]).success();
    assert_eq!(run.stdout, "hello world\nfrom the context\nnested\n");
    // Only the tagged image is listed; the steps show with -a.
    let listed = daemon.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]).success();
    let mut names: Vec<&str> = listed.stdout.lines().collect();
    names.sort();
    assert_eq!(names, ["built:1", "built:latest", "busybox:latest"]);
    let all = daemon.docker(&["images", "-a", "-q"]).success();
    assert!(all.stdout.lines().count() > 3, "{}", all.stdout);
    // No build container is left behind.
    let ps = daemon.docker(&["ps", "-aq"]).success();
    assert_eq!(ps.stdout, "");
    let history = daemon.docker(&["history", "--no-trunc", "--format", "{{.CreatedBy}}", "built:1"]).success();
    assert!(history.stdout.contains("/bin/sh -c echo \"$GREETING $TARGET\" > /app/out.txt && echo to-stderr >&2"), "{}", history.stdout);
}

#[test]
fn rebuild_uses_the_cache_until_something_changes() {
    let daemon = Berthd::start_with_busybox();
    let ctx = context(&[
        ("Dockerfile", "FROM busybox\nENV A=1\nCOPY f.txt /f.txt\nRUN cat /f.txt > /copy.txt\nCMD [\"cat\", \"/copy.txt\"]\n"),
        ("f.txt", "one\n"),
    ]);
    let first = build(&daemon, ctx.path(), &["-t", "cached"]).success();
    assert_eq!(steps_using_cache(&first.stdout), 0, "{}", first.stdout);
    let id1 = inspect(&daemon, "cached")["Id"].clone();
    let second = build(&daemon, ctx.path(), &["-t", "cached"]).success();
    assert_eq!(steps_using_cache(&second.stdout), 4, "{}", second.stdout);
    assert!(!second.stdout.contains("Running in"), "{}", second.stdout);
    assert_eq!(inspect(&daemon, "cached")["Id"], id1);
    // A changed file invalidates its COPY and what follows.
    std::fs::write(ctx.path().join("f.txt"), "two\n").unwrap();
    let third = build(&daemon, ctx.path(), &["-t", "cached"]).success();
    assert_eq!(steps_using_cache(&third.stdout), 1, "{}", third.stdout);
    assert_eq!(daemon.docker(&["run", "--rm", "cached"]).success().stdout, "two\n");
    // --no-cache runs everything again.
    let fourth = build(&daemon, ctx.path(), &["--no-cache", "-t", "cached"]).success();
    assert_eq!(steps_using_cache(&fourth.stdout), 0, "{}", fourth.stdout);
    assert!(fourth.stdout.contains("Running in"), "{}", fourth.stdout);
}

#[test]
fn multi_stage_with_target_and_copy_from() {
    let daemon = Berthd::start_with_busybox();
    let dockerfile = "ARG BASE=busybox\nFROM ${BASE} AS builder\nRUN mkdir -p /out && echo built-artifact > /out/artifact\n\
                      FROM busybox AS tester\nRUN echo tester > /t\n\
                      FROM scratch\nCOPY --from=builder /out/artifact /artifact\nCOPY --from=0 /bin/busybox /bin/busybox\nCMD [\"/bin/busybox\", \"cat\", \"/artifact\"]\n";
    let ctx = context(&[("Dockerfile", dockerfile)]);
    let out = build(&daemon, ctx.path(), &["-t", "multi"]).success();
    assert!(out.stdout.contains("Step 8/8 : CMD"), "{}", out.stdout);
    assert_eq!(daemon.docker(&["run", "--rm", "multi"]).success().stdout, "built-artifact\n");
    // Only busybox and the two copied files: two layers.
    assert_eq!(inspect(&daemon, "multi")["RootFS"]["Layers"].as_array().unwrap().len(), 2);
    let target = build(&daemon, ctx.path(), &["--target", "tester", "-t", "stage"]).success();
    assert!(target.stdout.contains("Step 4/4 : RUN echo tester > /t"), "{}", target.stdout);
    assert_eq!(daemon.docker(&["run", "--rm", "stage", "cat", "/t"]).success().stdout, "tester\n");
    let bad = build(&daemon, ctx.path(), &["--target", "nosuch"]).failure();
    assert!(bad.stderr.contains("failed to reach build target nosuch in Dockerfile"), "{}", bad.stderr);
}

#[test]
fn dockerignore_and_build_args() {
    let daemon = Berthd::start_with_busybox();
    let ctx = context(&[
        ("Dockerfile", "FROM busybox\nARG WHO=nobody\nARG UNSET\nCOPY . /ctx/\nRUN echo \"hi $WHO ${UNSET:-dflt}${WHO:+ (set)}${UNSET:+never}\" > /who\n"),
        (".dockerignore", "*.log\nsecret\n!keep.log\n**/*.tmp\n"),
        ("a.log", "x"),
        ("keep.log", "kept"),
        ("secret/key", "k"),
        ("src/main.txt", "m"),
        ("src/deep/er/scratch.tmp", "t"),
        ("top.tmp", "t"),
    ]);
    let out = build(&daemon, ctx.path(), &["--build-arg", "WHO=you", "--build-arg", "EXTRA=1", "--label", "via=option", "--label", "note=a $B 'c'", "-t", "args"]).success();
    assert!(out.stdout.contains("[Warning] One or more build-args [EXTRA] were not consumed"), "{}", out.stdout);
    // Each `--label` is one more LABEL step at the end, sorted, taken literally.
    assert!(out.stdout.contains("Step 6/7 : LABEL note=a $B 'c'\n"), "{}", out.stdout);
    assert!(out.stdout.contains("Step 7/7 : LABEL via=option\n"), "{}", out.stdout);
    assert_eq!(inspect(&daemon, "args")["Config"]["Labels"]["via"], "option");
    assert_eq!(inspect(&daemon, "args")["Config"]["Labels"]["note"], "a $B 'c'");
    let files = daemon.docker(&["run", "--rm", "args", "sh", "-c", "cd /ctx && find . -type f | sort && cat /who"]).success();
    assert_eq!(files.stdout, "./.dockerignore\n./Dockerfile\n./keep.log\n./src/main.txt\nhi you dflt (set)\n");
}

#[test]
fn failing_run_reports_the_exit_code() {
    let daemon = Berthd::start_with_busybox();
    let ctx = context(&[("Dockerfile", "FROM busybox\nRUN echo before && exit 3\nRUN echo never\n")]);
    let out = build(&daemon, ctx.path(), &["-t", "broken"]).failure();
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("The command '/bin/sh -c echo before && exit 3' returned a non-zero code: 3"), "{}", out.stderr);
    assert!(out.stdout.contains("before\n"), "{}", out.stdout);
    assert!(!out.stdout.contains("Step 3/3"), "{}", out.stdout);
    assert_eq!(daemon.docker(&["images", "-q", "broken"]).success().stdout, "");
    let missing = build(&daemon, &context(&[("Dockerfile", "FROM busybox\nCOPY nosuch /x\n")]).path(), &[]).failure();
    assert!(missing.stderr.contains("COPY failed: file not found in build context or excluded by .dockerignore: stat nosuch: file does not exist"), "{}", missing.stderr);
    let unknown = build(&daemon, &context(&[("Dockerfile", "FROM busybox\nBOGUS x\n")]).path(), &[]).failure();
    assert!(unknown.stderr.contains("unknown instruction: BOGUS"), "{}", unknown.stderr);
}

#[test]
fn quiet_build_prints_the_id_and_prune_clears_the_cache() {
    let daemon = Berthd::start_with_busybox();
    let ctx = context(&[("Dockerfile", "FROM busybox\nRUN echo layer > /l\nENV X=1\n")]);
    let out = build(&daemon, ctx.path(), &["-q"]).success();
    let id = out.stdout.trim();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{}", out.stdout);
    assert_eq!(inspect(&daemon, id)["Id"], id);
    let again = build(&daemon, ctx.path(), &["-q"]).success();
    assert_eq!(again.stdout.trim(), id);
    let prune = daemon.docker(&["builder", "prune", "-f"]).success();
    assert!(prune.stdout.contains("Total reclaimed space"), "{}", prune.stdout);
    let gone = daemon.docker(&["image", "inspect", id]).failure();
    assert!(gone.stderr.contains("No such image"), "{}", gone.stderr);
    // The next build runs the steps again.
    let rebuilt = build(&daemon, ctx.path(), &[]).success();
    assert_eq!(steps_using_cache(&rebuilt.stdout), 0, "{}", rebuilt.stdout);
}

#[test]
fn copy_ownership_modes_add_tar_shell_escape_and_dockerfile_path() {
    let daemon = Berthd::start_with_busybox();
    // A tar for ADD to unpack, gzipped.
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    let mut header = tar::Header::new_gnu();
    let content = b"from the archive\n";
    header.set_size(content.len() as u64);
    header.set_mode(0o640);
    header.set_uid(7);
    header.set_gid(8);
    header.set_cksum();
    tar.append_data(&mut header, "inner/file.txt", &content[..]).unwrap();
    let archive = tar.into_inner().unwrap().finish().unwrap();
    let dockerfile = "# escape=`\nFROM busybox\nSHELL [\"/bin/sh\", \"-e\", \"-c\"]\n\
                      COPY --chown=1234:5678 --chmod=600 owned.txt /owned.txt\n\
                      COPY --chown=root f*.txt /globbed/\n\
                      ADD bundle.tar.gz /unpacked/\n\
                      RUN echo one `\n    two > /joined\n";
    let ctx = context(&[("build/Custom.dockerfile", dockerfile), ("owned.txt", "o"), ("f1.txt", "1"), ("f2.txt", "2"), ("g.txt", "g")]);
    std::fs::write(ctx.path().join("bundle.tar.gz"), archive).unwrap();
    let dockerfile_path = ctx.path().join("build/Custom.dockerfile");
    build(&daemon, ctx.path(), &["-f", dockerfile_path.to_str().unwrap(), "-t", "owned"]).success();
    let out = daemon
        .docker(&[
            "run", "--rm", "owned", "sh", "-c",
            "stat -c '%u:%g %a %n' /owned.txt /unpacked/inner/file.txt; ls /globbed; cat /unpacked/inner/file.txt /joined",
        ])
        .success();
    assert_eq!(
        out.stdout,
        "1234:5678 600 /owned.txt\n7:8 640 /unpacked/inner/file.txt\nf1.txt\nf2.txt\nfrom the archive\none two\n"
    );
    assert_eq!(inspect(&daemon, "owned")["Config"]["Shell"], serde_json::json!(["/bin/sh", "-e", "-c"]));
}

#[test]
fn the_api_through_bollard_and_buildkit_probes() {
    let daemon = Berthd::start_with_busybox();
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    let dockerfile = b"FROM busybox\nARG V\nLABEL from=bollard v=$V\n";
    let mut header = tar::Header::new_gnu();
    header.set_size(dockerfile.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "Dockerfile", &dockerfile[..]).unwrap();
    let body = tar.into_inner().unwrap().finish().unwrap();
    let docker = daemon.client();
    let messages: Vec<bollard::models::BuildInfo> = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
        use futures_util::StreamExt;
        let options = bollard::query_parameters::BuildImageOptionsBuilder::default()
            .dockerfile("Dockerfile")
            .t("via-bollard:v1")
            .buildargs(&std::collections::HashMap::from([("V".to_string(), "2".to_string())]))
            .build();
        docker.build_image(options, None, Some(bollard::body_full(body.into()))).map(|m| m.expect("build message")).collect().await
    });
    let aux = messages.iter().find_map(|m| m.aux.as_ref().and_then(|a| a.id.clone())).expect("an aux ID message");
    assert_eq!(inspect(&daemon, "via-bollard:v1")["Id"], aux.as_str());
    assert_eq!(inspect(&daemon, "via-bollard:v1")["Config"]["Labels"], serde_json::json!({"from": "bollard", "v": "2"}));
    // BuildKit's endpoints say it is not here.
    let session = daemon.request("POST", "/session", None);
    assert_eq!(session.status, 501, "{session:?}");
    assert!(session.text().contains("BuildKit is not available"), "{session:?}");
    let grpc = daemon.request("POST", "/grpc", None);
    assert_eq!(grpc.status, 501, "{grpc:?}");
    assert!(grpc.text().contains("BuildKit is not available"), "{grpc:?}");
}

#[test]
fn a_client_that_hangs_up_stops_the_running_step() {
    let daemon = Berthd::start_with_busybox();
    let ctx = context(&[("Dockerfile", "FROM busybox\nRUN echo started && sleep 300\n")]);
    let mut cmd = Command::new(compat_tests::cli::docker_binary());
    cmd.arg("build")
        .arg(ctx.path())
        .env("DOCKER_HOST", daemon.host())
        .env("DOCKER_CONFIG", daemon.dir().join("docker-config"))
        .env("DOCKER_BUILDKIT", "0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    // Wait for the step to be running, then hang up.
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    while !seen.lines().any(|l| l == "started") {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut stdout, &mut line).unwrap() == 0 {
            panic!("build ended early: {seen}");
        }
        seen.push_str(&line);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdout);
    // The step's container goes away.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let ps = daemon.docker(&["ps", "-aq"]).success();
        if ps.stdout.is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "build container left behind: {}", ps.stdout);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn run_steps_get_the_network_mode_and_limits() {
    let daemon = Berthd::start_with_busybox();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN ls /sys/class/net > /net && (cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes) > /mem\n",
    )]);
    build(&daemon, ctx.path(), &["--network", "none", "--memory", "64m", "-t", "limited"]).success();
    let out = daemon.docker(&["run", "--rm", "limited", "cat", "/net", "/mem"]).success();
    assert_eq!(out.stdout, "lo\n67108864\n");
}

#[test]
fn rmi_of_a_built_image_deletes_its_untagged_steps() {
    let daemon = Berthd::start_with_busybox();
    let ctx = context(&[("Dockerfile", "FROM busybox\nRUN echo a > /a\nENV B=1\nCMD [\"cat\", \"/a\"]\n")]);
    build(&daemon, ctx.path(), &["-t", "steps"]).success();
    let before = daemon.docker(&["images", "-a", "-q"]).success();
    assert_eq!(before.stdout.lines().count(), 4, "{}", before.stdout);
    let out = daemon.docker(&["rmi", "steps"]).success();
    assert!(out.stdout.starts_with("Untagged: steps:latest\n"), "{}", out.stdout);
    assert_eq!(out.stdout.lines().filter(|l| l.starts_with("Deleted: ")).count() >= 3, true, "{}", out.stdout);
    let after = daemon.docker(&["images", "-a", "--format", "{{.Repository}}"]).success();
    assert_eq!(after.stdout, "busybox\n");
}

/// `docker image prune` deletes a dangling built image and, as dockerd's
/// ImageDelete with prune, its untagged step images that it leaves without
/// children; a step another image still builds on stays.
#[test]
fn image_prune_cascades_to_step_images_left_dangling() {
    let daemon = Berthd::start_with_busybox();
    let old = context(&[("Dockerfile", "FROM busybox\nRUN echo a > /a\nENV B=1\nCMD [\"cat\", \"/a\"]\n")]);
    build(&daemon, old.path(), &["-t", "chain"]).success();
    let old_top = daemon.inspect_format("{{.Id}}", "chain");
    let old_env = inspect(&daemon, "chain")["Parent"].as_str().unwrap().to_string();
    let old_run = inspect(&daemon, &old_env)["Parent"].as_str().unwrap().to_string();
    // "keep" shares the RUN step (from the cache); the tag moves to a new chain.
    let keep = context(&[("Dockerfile", "FROM busybox\nRUN echo a > /a\nLABEL k=v\n")]);
    let out = build(&daemon, keep.path(), &["-t", "keep"]).success();
    assert_eq!(steps_using_cache(&out.stdout), 1, "{}", out.stdout);
    let new = context(&[("Dockerfile", "FROM busybox\nRUN echo b > /b\n")]);
    build(&daemon, new.path(), &["-t", "chain"]).success();

    let pruned = daemon.docker(&["image", "prune", "-f"]).success().stdout;
    assert!(pruned.contains(&format!("deleted: {}", old_top.trim())), "{pruned}");
    assert!(pruned.contains(&format!("deleted: {old_env}")), "{pruned}");
    assert!(!pruned.contains(&old_run), "the shared step must stay:\n{pruned}");
    let all = daemon.docker(&["images", "-a", "-q", "--no-trunc"]).success().stdout;
    assert!(!all.contains(old_top.trim()) && !all.contains(&old_env), "{all}");
    assert!(all.contains(&old_run), "{all}");
    // Nothing dangling is left for a second pass.
    let again = daemon.docker(&["image", "prune", "-f"]).success().stdout;
    assert!(!again.contains("deleted:"), "{again}");
}

/// A gzip tar context with `files`.
fn context_tar(files: &[(&str, &str)]) -> Vec<u8> {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for (path, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, path, content.as_bytes()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

#[test]
fn heredocs_in_run_and_copy() {
    let daemon = Berthd::start_with_busybox();
    let dockerfile = r#"FROM busybox
ARG NAME=world
RUN <<EOF
echo "hello $NAME" > /greeting
mkdir -p /etc/app
EOF
RUN cat <<EOT > /two
line one
EOT
COPY <<conf.txt <<"raw.txt" /etc/app/
name=$NAME
conf.txt
name=$NAME
raw.txt
COPY <<-EOF /etc/single
	single
	EOF
CMD cat /greeting /two /etc/app/conf.txt /etc/app/raw.txt /etc/single
"#;
    let ctx = context(&[("Dockerfile", dockerfile)]);
    let out = build(&daemon, ctx.path(), &["-t", "heredocs"]).success();
    assert!(out.stdout.contains("Step 7/7 : CMD "), "{}", out.stdout);
    let run = daemon.docker(&["run", "--rm", "heredocs"]).success();
    assert_eq!(run.stdout, "hello world\nline one\nname=world\nname=$NAME\nsingle\n");
    // The documents are part of the cache key: same text, all cached;
    // another build arg reruns from the first RUN.
    let again = build(&daemon, ctx.path(), &["-t", "heredocs"]).success();
    assert_eq!(steps_using_cache(&again.stdout), 6, "{}", again.stdout);
    build(&daemon, ctx.path(), &["--build-arg", "NAME=there", "-t", "heredocs"]).success();
    let run = daemon.docker(&["run", "--rm", "heredocs"]).success();
    assert_eq!(run.stdout, "hello there\nline one\nname=there\nname=$NAME\nsingle\n");
    // An unterminated document is a parse error.
    let bad = context(&[("Dockerfile", "FROM busybox\nRUN <<EOF\necho never\n")]);
    let failed = build(&daemon, bad.path(), &[]).failure();
    assert!(failed.stderr.contains("unterminated heredoc EOF"), "{}", failed.stderr);
}

#[test]
fn build_cancel_stops_the_build_with_that_id() {
    let daemon = Berthd::start_with_busybox();
    let body = context_tar(&[("Dockerfile", "FROM busybox\nRUN echo started && sleep 300\nLABEL never=1\n")]);
    let socket = daemon.socket.clone();
    let building = std::thread::spawn(move || {
        compat_tests::client::raw_request(&socket, "POST", "/build?t=cancelled&buildid=b-42", &[("Content-Type", "application/x-tar")], Some(&body))
    });
    compat_tests::eventually(60, "the RUN step running", || {
        let ps = daemon.docker(&["ps", "-q"]).success();
        (!ps.stdout.trim().is_empty()).then_some(())
    });
    // Another ID cancels nothing (and is no error, as with dockerd).
    assert_eq!(daemon.request("POST", "/build/cancel?id=other", None).status, 200);
    assert_eq!(daemon.request("POST", "/build/cancel", None).status, 400);
    let cancel = daemon.request("POST", "/build/cancel?id=b-42", None);
    assert_eq!(cancel.status, 200, "{cancel:?}");
    let answer = building.join().unwrap();
    assert_eq!(answer.status, 200);
    let text = answer.text();
    assert!(text.contains("\"errorDetail\":{\"message\":\"build cancelled\"}"), "{text}");
    assert!(!text.contains("Successfully built"), "{text}");
    compat_tests::eventually(30, "the step's container to go", || {
        daemon.docker(&["ps", "-aq"]).success().stdout.trim().is_empty().then_some(())
    });
    daemon.docker(&["image", "inspect", "cancelled"]).failure();
}

#[test]
fn platforms_of_from_images() {
    let daemon = Berthd::start_with_busybox();
    // A local image under a registry name nothing answers at.
    daemon.docker(&["tag", "busybox", "127.0.0.1:9/bb:1"]).success();
    let ctx = context(&[("Dockerfile", "ARG P=linux/amd64\nFROM --platform=$P 127.0.0.1:9/bb:1\nRUN echo built > /b\n")]);
    // The local image is for this platform: used, nothing pulled.
    build(&daemon, ctx.path(), &["-t", "plat"]).success();
    build(&daemon, ctx.path(), &["--platform", "linux/amd64", "-t", "plat"]).success();
    assert_eq!(inspect(&daemon, "plat")["Architecture"], "amd64");
    // For another platform the local image does not do: it is pulled (and
    // the registry is unreachable here).
    let other = build(&daemon, ctx.path(), &["--build-arg", "P=linux/arm64", "-t", "plat"]).failure();
    let all = format!("{}{}", other.stdout, other.stderr);
    assert!(all.contains("127.0.0.1:9"), "{all}");
    let ctx2 = context(&[("Dockerfile", "FROM 127.0.0.1:9/bb:1\n")]);
    let other = build(&daemon, ctx2.path(), &["--platform", "linux/arm64"]).failure();
    assert!(format!("{}{}", other.stdout, other.stderr).contains("127.0.0.1:9"), "{other:?}");
    let bad = build(&daemon, ctx2.path(), &["--platform", "linux/amd64/v1/x"]).failure();
    assert!(!bad.stderr.is_empty());
}

/// `POST /build?query` with an empty body; answers status and text.
fn api_build(daemon: &Berthd, query: &str) -> (u16, String) {
    let resp = daemon.request("POST", &format!("/build?{query}"), Some(b""));
    (resp.status, resp.text())
}

#[test]
fn remote_contexts_over_http_and_git() {
    let daemon = Berthd::start_with_busybox();
    let ns = daemon.netns().expect("the daemon's network namespace");
    // An HTTP server in the daemon's namespace: a plain Dockerfile and a
    // gzip tar context.
    let www = tempfile::tempdir().unwrap();
    std::fs::write(www.path().join("Dockerfile.txt"), "FROM busybox\nLABEL remote=plain\n").unwrap();
    let tar = context_tar(&[("Dockerfile", "FROM busybox\nCOPY file /file\n"), ("file", "from the tar\n")]);
    std::fs::write(www.path().join("ctx.tar.gz"), tar).unwrap();
    let _httpd = ns.spawn(&["busybox", "httpd", "-f", "-p", "127.0.0.1:8765", "-h", www.path().to_str().unwrap()]);
    compat_tests::eventually(20, "the http server", || (daemon.in_netns(&["curl", "-sf", "http://127.0.0.1:8765/Dockerfile.txt"]).code == 0).then_some(()));

    let (status, text) = api_build(&daemon, "remote=http://127.0.0.1:8765/Dockerfile.txt&t=r1");
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("Successfully tagged r1:latest"), "{text}");
    assert_eq!(inspect(&daemon, "r1")["Config"]["Labels"]["remote"], "plain");
    let (status, text) = api_build(&daemon, "remote=http://127.0.0.1:8765/ctx.tar.gz&t=r2");
    assert_eq!(status, 200, "{text}");
    assert_eq!(daemon.docker(&["run", "--rm", "r2", "cat", "/file"]).success().stdout, "from the tar\n");
    // Failures say what went wrong, before any output.
    let (status, text) = api_build(&daemon, "remote=http://127.0.0.1:8765/missing");
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("unable to prepare context: unable to download remote context http://127.0.0.1:8765/missing: 404"), "{text}");
    let (status, text) = api_build(&daemon, "remote=http://127.0.0.1:9/Dockerfile");
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("unable to download remote context http://127.0.0.1:9/Dockerfile"), "{text}");

    // A git repository (git daemon in the namespace), a branch and a subdirectory.
    let repos = tempfile::tempdir().unwrap();
    let repo = repos.path().join("app");
    std::fs::create_dir_all(repo.join("sub")).unwrap();
    std::fs::write(repo.join("sub/Dockerfile"), "FROM busybox\nCOPY hello /hello\n").unwrap();
    std::fs::write(repo.join("sub/hello"), "from git\n").unwrap();
    let git = |args: &[&str]| {
        let mut cmd = Command::new("git");
        cmd.current_dir(&repo).args(["-c", "user.name=t", "-c", "user.email=t@example.com"]).args(args);
        compat_tests::cli::run_piped(cmd, None).success();
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "."]);
    git(&["commit", "-qm", "context"]);
    let base = repos.path().to_str().unwrap();
    let _gitd = ns.spawn(&["git", "daemon", "--reuseaddr", "--export-all", "--listen=127.0.0.1", "--port=9418", &format!("--base-path={base}"), base]);
    compat_tests::eventually(20, "git daemon", || {
        (daemon.in_netns(&["git", "ls-remote", "git://127.0.0.1:9418/app"]).code == 0).then_some(())
    });
    let (status, text) = api_build(&daemon, "remote=git://127.0.0.1:9418/app%23main:sub&t=g1");
    assert_eq!(status, 200, "{text}");
    assert_eq!(daemon.docker(&["run", "--rm", "g1", "cat", "/hello"]).success().stdout, "from git\n");
    let (status, text) = api_build(&daemon, "remote=git://127.0.0.1:9/nothing");
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("unable to prepare context: unable to 'git clone' to temporary context directory"), "{text}");
}

#[test]
fn cache_from_a_pushed_image_on_a_fresh_daemon() {
    let registry = compat_tests::registry::Registry::start().unwrap();
    let reference = registry.reference("berth/cached", "v1");
    let ctx = context(&[
        ("Dockerfile", "FROM busybox\nENV A=1\nCOPY f.txt /f.txt\nRUN cat /f.txt > /copy.txt\nCMD [\"cat\", \"/copy.txt\"]\n"),
        ("f.txt", "one\n"),
    ]);
    let first = Berthd::start_with_busybox();
    first.reach_host_port(registry.port());
    build(&first, ctx.path(), &["-t", &reference]).success();
    let pushed_id = inspect(&first, &reference)["Id"].clone();
    first.docker(&["push", &reference]).success();
    // The machine that built it reuses its own steps through --cache-from.
    let again = build(&first, ctx.path(), &["--cache-from", &reference, "-t", "again"]).success();
    assert_eq!(steps_using_cache(&again.stdout), 4, "{}", again.stdout);
    assert_eq!(inspect(&first, "again")["Id"], pushed_id);

    let fresh = Berthd::start_with_busybox();
    fresh.reach_host_port(registry.port());
    fresh.docker(&["pull", &reference]).success();
    // Without --cache-from a pulled image is not a cache: its steps are not here.
    let plain = build(&fresh, ctx.path(), &["-t", "plain"]).success();
    assert_eq!(steps_using_cache(&plain.stdout), 0, "{}", plain.stdout);
    assert_ne!(inspect(&fresh, "plain")["Id"], pushed_id);
    // With it, every step comes from the pulled image's history, and the
    // last one is the pulled image itself; twice, with the same answer.
    for _ in 0..2 {
        let cached = build(&fresh, ctx.path(), &["--cache-from", &reference, "-t", "from-cache"]).success();
        assert_eq!(steps_using_cache(&cached.stdout), 4, "{}", cached.stdout);
        assert!(!cached.stdout.contains("Running in"), "{}", cached.stdout);
        assert_eq!(inspect(&fresh, "from-cache")["Id"], pushed_id);
    }
    assert_eq!(fresh.docker(&["run", "--rm", "from-cache"]).success().stdout, "one\n");
    // The steps before the last are images restored from that history.
    let history = fresh.docker(&["history", "-q", "from-cache"]).success();
    let ids: Vec<&str> = history.stdout.lines().collect();
    assert_eq!(ids.len(), 5, "{}", history.stdout);
    // A changed file rebuilds from its COPY on.
    std::fs::write(ctx.path().join("f.txt"), "two\n").unwrap();
    let changed = build(&fresh, ctx.path(), &["--cache-from", &reference, "-t", "changed"]).success();
    assert_eq!(steps_using_cache(&changed.stdout), 1, "{}", changed.stdout);
    assert!(changed.stdout.contains("Running in"), "{}", changed.stdout);
    assert_eq!(fresh.docker(&["run", "--rm", "changed"]).success().stdout, "two\n");
    // A cache-from image that is not there is skipped, not an error; as
    // with dockerd, local steps then count only if they lead to a source.
    let missing = build(&fresh, ctx.path(), &["--cache-from", "absent:nope", "-t", "changed"]).success();
    assert_eq!(steps_using_cache(&missing.stdout), 0, "{}", missing.stdout);
    let local = build(&fresh, ctx.path(), &["-t", "changed"]).success();
    assert_eq!(steps_using_cache(&local.stdout), 4, "{}", local.stdout);
}

#[test]
fn onbuild_maintainer_syntax_copy_from_an_image_and_refused_urls() {
    let daemon = Berthd::start_with_busybox();
    let parent = context(&[(
        "Dockerfile",
        "# syntax=docker/dockerfile:1\nFROM busybox\nMAINTAINER Berth Team <team@example.com>\nONBUILD RUN echo triggered > /onbuild\n",
    )]);
    build(&daemon, parent.path(), &["-t", "with-trigger"]).success();
    let img = inspect(&daemon, "with-trigger");
    assert_eq!(img["Author"], "Berth Team <team@example.com>");
    assert_eq!(img["Config"]["OnBuild"], serde_json::json!(["RUN echo triggered > /onbuild"]));
    // A child runs the trigger right after its FROM, and does not pass it on.
    let child = context(&[("Dockerfile", "FROM with-trigger\nCOPY --from=busybox /bin/busybox /copied-busybox\n")]);
    let out = build(&daemon, child.path(), &["-t", "triggered"]).success();
    assert!(out.stdout.contains("# Executing 1 build trigger\n"), "{}", out.stdout);
    let run = daemon.docker(&["run", "--rm", "triggered", "sh", "-c", "cat /onbuild && cmp /bin/busybox /copied-busybox && echo same"]).success();
    assert_eq!(run.stdout, "triggered\nsame\n");
    let onbuild = &inspect(&daemon, "triggered")["Config"]["OnBuild"];
    assert!(onbuild.is_null() || onbuild == &serde_json::json!([]), "{onbuild}");
    // ADD of a URL is refused with a clear error (berthd builds offline).
    let url = context(&[("Dockerfile", "FROM busybox\nADD http://127.0.0.1:9/file /file\n")]);
    let refused = build(&daemon, url.path(), &[]).failure();
    assert!(refused.stderr.contains("source URLs are not supported"), "{}", refused.stderr);
}

#[test]
fn run_step_options_hosts_shm_cpu_host_network_and_container_removal() {
    let daemon = Berthd::start_with_busybox();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN grep myhost /etc/hosts > /hosts && df -k /dev/shm | tail -1 > /shm && ls /sys/class/net > /net && \
         (cat /sys/fs/cgroup/cpu.max 2>/dev/null || echo $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)) > /cpu\n",
    )]);
    build(
        &daemon,
        ctx.path(),
        &["--add-host", "myhost:10.1.2.3", "--shm-size", "32m", "--cpu-period", "100000", "--cpu-quota", "50000", "--network", "host", "-t", "opts"],
    )
    .success();
    let out = daemon.docker(&["run", "--rm", "opts", "sh", "-c", "cat /hosts /cpu; awk '{print $2}' /shm; wc -l < /net"]).success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("10.1.2.3") && lines[0].contains("myhost"), "{}", out.stdout);
    assert_eq!(lines[1], "50000 100000", "{}", out.stdout);
    assert_eq!(lines[2], "32768", "{}", out.stdout);
    // The daemon's own network namespace has more than a loopback.
    assert!(lines[3].trim().parse::<u32>().unwrap() > 1, "{}", out.stdout);
    // --rm=false keeps the step's container; a failed step's container
    // stays unless --force-rm.
    let kept = context(&[("Dockerfile", "FROM busybox\nRUN echo kept > /k\n")]);
    build(&daemon, kept.path(), &["--rm=false"]).success();
    assert_eq!(daemon.docker(&["ps", "-aq"]).success().stdout.lines().count(), 1);
    let failing = context(&[("Dockerfile", "FROM busybox\nRUN exit 1\n")]);
    build(&daemon, failing.path(), &[]).failure();
    assert_eq!(daemon.docker(&["ps", "-aq"]).success().stdout.lines().count(), 2);
    build(&daemon, failing.path(), &["--force-rm"]).failure();
    assert_eq!(daemon.docker(&["ps", "-aq"]).success().stdout.lines().count(), 2);
}

#[test]
fn pull_fetches_a_newer_base_image() {
    let registry = compat_tests::registry::Registry::start().unwrap();
    let base = registry.reference("berth/base", "v1");
    let daemon = Berthd::start_with_busybox();
    daemon.reach_host_port(registry.port());
    // The registry's base has a marker file; the local image of that name does not.
    let marked = context(&[("Dockerfile", "FROM busybox\nRUN echo from-registry > /marker\n")]);
    build(&daemon, marked.path(), &["-t", &base]).success();
    daemon.docker(&["push", &base]).success();
    daemon.docker(&["tag", "busybox", &base]).success();
    let ctx = context(&[("Dockerfile", &format!("FROM {base}\nRUN cat /marker 2>/dev/null || echo local > /marker\nCMD cat /marker\n"))]);
    build(&daemon, ctx.path(), &["-t", "local-base"]).success();
    assert_eq!(daemon.docker(&["run", "--rm", "local-base"]).success().stdout, "local\n");
    let pulled = build(&daemon, ctx.path(), &["--pull", "-t", "pulled-base"]).success();
    assert!(pulled.stdout.contains("Pulling from berth/base"), "{}", pulled.stdout);
    assert_eq!(daemon.docker(&["run", "--rm", "pulled-base"]).success().stdout, "from-registry\n");
}
