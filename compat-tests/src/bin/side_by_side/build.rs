//! Build workloads: the classic builder (`DOCKER_BUILDKIT=0`), from scratch
//! and fully cached.

use std::process::Stdio;

use anyhow::Result;

use crate::daemons::Daemon;
use crate::report::Better;
use crate::Bench;

const DOCKERFILE: &str = "FROM busybox\n\
RUN echo built > /built && mkdir -p /app\n\
COPY payload /app/payload\n\
ENV BENCH=1\n\
WORKDIR /app\n\
RUN wc -c payload > size\n\
CMD [\"cat\", \"/app/size\"]\n";

impl Bench {
    pub(crate) fn build(&mut self) -> Result<()> {
        let context = tempfile::Builder::new().prefix("berth-bench-build-").tempdir()?;
        std::fs::write(context.path().join("Dockerfile"), DOCKERFILE)?;
        std::fs::write(context.path().join("payload"), vec![42u8; 4 << 20])?;
        let dir = context.path().display().to_string();

        let series = self.alternate("docker build --no-cache", self.plan.build, [None, None], |d, p| {
            p.start()?;
            classic_build(d, &["build", "-q", "--no-cache", "-t", "bench/build:1", &dir])?;
            p.stop()
        })?;
        self.push("`docker build --no-cache` (classic builder, 2 RUN + COPY 4 MiB)", "ms", Better::Lower, &series, |ms| ms);

        let series = self.alternate("docker build (cached)", self.plan.build, [None, None], |d, p| {
            p.start()?;
            classic_build(d, &["build", "-q", "-t", "bench/build:1", &dir])?;
            p.stop()
        })?;
        self.push("`docker build` again, every step cached", "ms", Better::Lower, &series, |ms| ms);
        Ok(())
    }
}

fn classic_build(d: &Daemon, args: &[&str]) -> Result<()> {
    d.checked(args, d.docker_command(args).env("DOCKER_BUILDKIT", "0").stdin(Stdio::null()).output()?)?;
    Ok(())
}
