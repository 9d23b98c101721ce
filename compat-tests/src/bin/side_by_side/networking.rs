//! Network workloads: a run on a user-defined network, and a start with
//! 100 published ports.

use anyhow::Result;

use crate::report::Better;
use crate::{remove_all, Bench};

/// Published ports of the port workload: a contiguous range.
const PORTS: u16 = 100;
const FIRST_PORT: u16 = 20000;

impl Bench {
    pub(crate) fn networking(&mut self) -> Result<()> {
        for d in &self.daemons {
            d.docker(&["network", "create", "bench-net"])?;
        }
        let series = self.alternate("run --rm on a user network", self.plan.run_rm, [None, None], |d, p| {
            p.start()?;
            d.docker(&["run", "--rm", "--network", "bench-net", "busybox", "true"])?;
            p.stop()
        })?;
        self.push("`docker run --rm --network <user bridge> busybox true` (CLI)", "ms", Better::Lower, &series, |ms| ms);

        let ports = format!("{FIRST_PORT}-{}:{FIRST_PORT}-{}", FIRST_PORT + PORTS - 1, FIRST_PORT + PORTS - 1);
        let rt = &self.rt;
        let series = self.alternate("run -d with 100 published ports", self.plan.fs, [None, None], |d, p| {
            p.start()?;
            d.docker(&["run", "-d", "-p", &ports, "busybox", "sleep", "300"])?;
            p.stop()?;
            rt.block_on(remove_all(&d.client()))
        })?;
        self.push(&format!("`docker run -d -p {ports}` ({PORTS} published ports) (CLI)"), "ms", Better::Lower, &series, |ms| ms);
        for d in &self.daemons {
            d.docker(&["network", "rm", "bench-net"])?;
        }
        Ok(())
    }
}
