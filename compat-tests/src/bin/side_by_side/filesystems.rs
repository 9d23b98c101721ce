//! Filesystem workloads: `docker cp` out of and into a container, `docker
//! export`, and `docker system df`.

use anyhow::{ensure, Result};

use crate::daemons::{Daemon, Kind};
use crate::report::Better;
use crate::Bench;

impl Bench {
    /// 7 (filesystems). On a container of the multi-layer image (loaded by
    /// the image workloads): cp of its `/data` out, cp of a file in, export.
    pub(crate) fn filesystems(&mut self, image: &str, size: &str) -> Result<()> {
        let names = ["bench-fs-b", "bench-fs-d"];
        let name_of = |d: &Daemon| names[usize::from(d.kind == Kind::Dockerd)];
        for d in &self.daemons {
            d.docker(&["create", "--name", name_of(d), image, "true"])?;
        }
        let scratch = tempfile::Builder::new().prefix("berth-bench-cp-").tempdir()?;
        let incoming = scratch.path().join("incoming");
        std::fs::write(&incoming, vec![7u8; 20 << 20])?;

        let out_dir = scratch.path().join("out");
        let series = self.alternate("docker cp out", self.plan.fs, [None, None], |d, p| {
            let _ = std::fs::remove_dir_all(&out_dir);
            let source = format!("{}:/data", name_of(d));
            p.start()?;
            d.docker(&["cp", "-q", &source, &out_dir.display().to_string()])?;
            p.stop()?;
            let copied = std::fs::read_dir(&out_dir)?.count();
            ensure!(copied > 0, "docker cp copied nothing");
            Ok(())
        })?;
        self.push(&format!("`docker cp` of /data ({size}) out of a container"), "ms", Better::Lower, &series, |ms| ms);

        let series = self.alternate("docker cp in", self.plan.fs, [None, None], |d, p| {
            let target = format!("{}:/tmp/incoming", name_of(d));
            p.start()?;
            d.docker(&["cp", "-q", &incoming.display().to_string(), &target])?;
            p.stop()
        })?;
        self.push("`docker cp` of a 20 MiB file into a container", "ms", Better::Lower, &series, |ms| ms);

        let series = self.alternate("docker export", self.plan.fs, [None, None], |d, p| {
            p.start()?;
            d.docker_discard(&["export", name_of(d)])?;
            p.stop()
        })?;
        self.push(&format!("`docker export` of a container ({size} + busybox) to a pipe"), "ms", Better::Lower, &series, |ms| ms);

        let series = self.alternate("docker system df", self.plan.cli, [None, None], |d, p| {
            p.start()?;
            d.docker_discard(&["system", "df"])?;
            p.stop()
        })?;
        self.push("`docker system df` (CLI)", "ms", Better::Lower, &series, |ms| ms);
        Ok(())
    }
}
