//! Build and compose workloads: the classic builder (`DOCKER_BUILDKIT=0`),
//! from scratch and fully cached; `docker compose up -d` and `down -v` of
//! the compose tests' shop project.

use std::path::Path;
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

    /// The shop project's images are built first, so neither row includes
    /// a build; its `up -d` waits for the database's healthcheck (500 ms
    /// interval) and compose's polling of it, and its `down` for two 1 s
    /// stop grace periods, on both daemons. The plain project has the same
    /// shape without those waits: the daemons' own share.
    pub(crate) fn compose(&mut self) -> Result<()> {
        let shop = crate::workspace_root().join("compat-tests/compose/shop");
        for d in &self.daemons {
            compose(d, &shop, &["build"])?;
        }
        self.compose_up_down(&shop, "the shop project (4 services, 2 networks, 1 volume, healthcheck gate)", "the shop project")?;
        let plain = crate::workspace_root().join("compat-tests/compose/plain");
        self.compose_up_down(&plain, "the plain project (the shop's shape, no waits)", "the plain project")
    }

    fn compose_up_down(&mut self, dir: &Path, long: &str, short: &str) -> Result<()> {
        let series = self.alternate(&format!("compose up -d of {short}"), self.plan.build, [None, None], |d, p| {
            p.start()?;
            compose(d, dir, &["up", "-d"])?;
            p.stop()?;
            compose(d, dir, &["down", "-v"])
        })?;
        self.push(&format!("`docker compose up -d` of {long}"), "ms", Better::Lower, &series, |ms| ms);

        let series = self.alternate(&format!("compose down -v of {short}"), self.plan.build, [None, None], |d, p| {
            compose(d, dir, &["up", "-d"])?;
            p.start()?;
            compose(d, dir, &["down", "-v"])?;
            p.stop()
        })?;
        self.push(&format!("`docker compose down -v` of {short}"), "ms", Better::Lower, &series, |ms| ms);
        Ok(())
    }
}

/// `docker compose -p bench-shop ARGS` in the project's directory.
fn compose(d: &Daemon, dir: &Path, args: &[&str]) -> Result<()> {
    let mut full = vec!["compose", "-p", "bench-shop"];
    full.extend(args);
    let mut cmd = d.docker_command(&full);
    cmd.current_dir(dir).env("DOCKER_BUILDKIT", "0").env_remove("COMPOSE_FILE").env_remove("COMPOSE_PROFILES").stdin(Stdio::null());
    d.checked(&full, cmd.output()?)?;
    Ok(())
}

fn classic_build(d: &Daemon, args: &[&str]) -> Result<()> {
    d.checked(args, d.docker_command(args).env("DOCKER_BUILDKIT", "0").stdin(Stdio::null()).output()?)?;
    Ok(())
}
