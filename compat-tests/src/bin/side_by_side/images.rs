//! Image workloads: load, save, `docker images` with many tags, pull from
//! a local registry.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use anyhow::{ensure, Context, Result};
use compat_tests::images::BuiltImage;
use compat_tests::registry::Registry;

use crate::containers::{floor, CtrNamespace};
use crate::daemons::{self, Kind};
use crate::report::Better;
use crate::Bench;

impl Bench {
    /// 5. load, save, `docker images` with 100 tags, pull from a local registry.
    pub(crate) fn images(&mut self, multi: &Arc<BuiltImage>, multi_tar: &Path, pulled: &Arc<BuiltImage>) -> Result<()> {
        let reference = multi.reference().to_owned();
        let size = format!("{} x {} MiB layers", self.plan.layers, self.plan.layer_mib);
        let r = reference.clone();
        let series = self.alternate("docker load", self.plan.load_save, [None, None], |d, p| {
            p.start()?;
            d.docker_stdin_file(&["load"], multi_tar)?;
            p.stop()?;
            d.docker(&["rmi", &r])?;
            Ok(())
        })?;
        self.push(&format!("`docker load` busybox + {size}"), "ms", Better::Lower, &series, |ms| ms);
        // The floor: containerd itself importing and unpacking the archive.
        let ns = CtrNamespace::empty();
        let tar = multi_tar.display().to_string();
        let load_floor = floor(self.plan.warmup, self.plan.load_save, &format!("ctr images import busybox + {size} (same containerd, unpacked)"), |_| {
            let t0 = std::time::Instant::now();
            ns.ctr(&["images", "import", &tar])?;
            let elapsed = t0.elapsed();
            ns.remove_images()?;
            Ok(elapsed)
        })?;
        self.floors.push(load_floor);

        let mut skip: [Option<String>; 2] = [None, None];
        for (i, d) in self.daemons.iter().enumerate() {
            if let Err(e) = d.docker_stdin_file(&["load"], multi_tar) {
                skip[i] = Some(format!("could not load the image: {e:#}"));
            }
        }
        let r = reference.clone();
        let series = self.alternate("docker save", self.plan.load_save, skip, |d, p| {
            p.start()?;
            d.docker_discard(&["save", &r])?;
            p.stop()
        })?;
        self.push(&format!("`docker save` busybox + {size} to a pipe"), "ms", Better::Lower, &series, |ms| ms);

        // `docker images` with 100 tags of busybox.
        for d in &self.daemons {
            for t in 0..100 {
                let path = format!("/v1.41/images/busybox:latest/tag?repo=bench/tag&tag=t{t}");
                let resp = compat_tests::http::unix_request(&d.socket, "POST", &path, &[], &[])?;
                ensure!(resp.status == 201, "tagging on {}: {} {}", d.label(), resp.status, resp.text());
            }
            let listed = d.docker(&["images", "-q", "--no-trunc"])?.lines().count();
            let tags = d.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"])?.lines().count();
            if tags < 100 {
                eprintln!("  NOTE: docker images on {} lists {tags} rows ({listed} with -q), expected > 100", d.label());
            }
        }
        let series = self.alternate("docker images", self.plan.cli, [None, None], |d, p| {
            p.start()?;
            d.docker_discard(&["images"])?;
            p.stop()
        })?;
        self.push("`docker images` with 100+ tags (CLI)", "ms", Better::Lower, &series, |ms| ms);
        let series = self.raw_get("GET /images/json", [None, None], |_| "/v1.41/images/json".into(), |_, body| {
            let tags: usize = body.as_array().map_or(0, |images| {
                images.iter().map(|i| i["RepoTags"].as_array().map_or(0, Vec::len)).sum()
            });
            ensure!(tags > 100, "images/json listed {tags} tags");
            Ok(())
        })?;
        self.push("GET /images/json with 100+ tags (raw HTTP)", "ms", Better::Lower, &series, |ms| ms);

        self.pull(pulled, &size)
    }

    /// Pull from a local docker-registry started inside each daemon's
    /// network namespace (127.0.0.1 there), pushed with the same image.
    fn pull(&mut self, image: &Arc<BuiltImage>, size: &str) -> Result<()> {
        let mut registries = Vec::new();
        let mut refs = Vec::new();
        let mut skip: [Option<String>; 2] = [None, None];
        for (i, d) in self.daemons.iter().enumerate() {
            let image = Arc::clone(image);
            let registry = daemons::in_netns(&d.netns_path(), move || {
                let registry = Registry::start()?;
                registry.push_oci(&image, "bench/pulled", "1")?;
                Ok(registry)
            })?;
            let reference = registry.reference("bench/pulled", "1");
            // The pull endpoint may not be served yet: say so, don't hide it.
            let (repo, tag) = reference.rsplit_once(':').context("reference without tag")?;
            let path = format!("/v1.41/images/create?fromImage={repo}&tag={tag}");
            let resp = compat_tests::http::unix_request(&d.socket, "POST", &path, &[], &[])?;
            if resp.status == 501 {
                let reason = format!("POST /images/create answered 501: {}", resp.text().trim());
                eprintln!("  pull: {} skipped: {reason}", d.label());
                skip[i] = Some(reason);
            } else if resp.status != 200 || resp.text().contains("\"error") {
                skip[i] = None;
                eprintln!("  pull probe on {}: {} {}", d.label(), resp.status, resp.text().trim());
            } else {
                // The probe pulled it; start each repetition from nothing.
                let _ = d.docker(&["rmi", &reference]);
            }
            registries.push(registry);
            refs.push(reference);
        }
        let series = self.alternate("docker pull", self.plan.pull, skip, |d, p| {
            let reference = &refs[usize::from(d.kind == Kind::Dockerd)];
            p.start()?;
            d.docker(&["pull", "-q", reference])?;
            p.stop()?;
            d.docker(&["rmi", reference])?;
            Ok(())
        })?;
        self.push(&format!("`docker pull` busybox + {size}, local registry"), "ms", Better::Lower, &series, |ms| ms);
        // The floor: containerd's own client pulling and unpacking from the
        // same registry (inside berthd's network namespace).
        let ns = CtrNamespace::empty();
        let netns = format!("--net={}", self.daemons[0].netns_path().display());
        let pull_floor = floor(self.plan.warmup, self.plan.pull, &format!("ctr images pull busybox + {size} (same containerd and registry, unpacked)"), |_| {
            let mut cmd = Command::new("nsenter");
            cmd.arg(&netns).arg("--").arg("ctr").args(ns.command(&["images", "pull", "--plain-http", &refs[0]]).get_args());
            let t0 = std::time::Instant::now();
            daemons::run_checked(&mut cmd)?;
            let elapsed = t0.elapsed();
            ns.remove_images()?;
            Ok(elapsed)
        })?;
        self.floors.push(pull_floor);
        drop(registries);
        Ok(())
    }
}
