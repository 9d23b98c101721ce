//! Network workloads: a run on a user-defined network, and a start with
//! 100 published ports.

use anyhow::Result;

use crate::report::{Better, Outcome, Row};
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
        let none = self.alternate("run --rm without a network", self.plan.run_rm, [None, None], |d, p| {
            p.start()?;
            d.docker(&["run", "--rm", "--network", "none", "busybox", "true"])?;
            p.stop()
        })?;
        self.push("`docker run --rm --network none busybox true` (CLI)", "ms", Better::Lower, &none, |ms| ms);
        // What joining a network adds to a start: the medians' difference.
        let share = [0, 1].map(|i| {
            match (series[i].outcome(|ms| ms).median(), none[i].outcome(|ms| ms).median()) {
                (Some(user), Some(none)) => Outcome::from_samples(&[user - none], None),
                _ => Outcome::Failed { error: "a run failed".into() },
            }
        });
        let [sb, sd] = share;
        self.rows.push(Row::new("networking's share of run --rm (user bridge minus none, medians)", "ms", Better::Lower, sb, sd));

        let ports = format!("{FIRST_PORT}-{}:{FIRST_PORT}-{}", FIRST_PORT + PORTS - 1, FIRST_PORT + PORTS - 1);
        let rt = &self.rt;
        let series = self.alternate("run -d with 100 published ports", self.plan.fs, [None, None], |d, p| {
            p.start()?;
            d.docker(&["run", "-d", "-p", &ports, "busybox", "sleep", "300"])?;
            p.stop()?;
            rt.block_on(remove_all(&d.client()))
        })?;
        self.push(&format!("`docker run -d -p {ports}` ({PORTS} published ports) (CLI)"), "ms", Better::Lower, &series, |ms| ms);
        // Memory with those ports published: it should stay flat. The
        // growth over the RSS just before (earlier workloads have grown it).
        let rss = [0, 1].map(|i| {
            let d = &self.daemons[i];
            let measured = self.rss_samples(d).and_then(|before| {
                d.docker(&["run", "-d", "-p", &ports, "busybox", "sleep", "300"])?;
                std::thread::sleep(std::time::Duration::from_secs(1));
                Ok(self.rss_samples(d)? - before)
            });
            let _ = self.rt.block_on(remove_all(&d.client()));
            match measured {
                Ok(v) => Outcome::from_samples(&[v], None),
                Err(e) => Outcome::Failed { error: format!("{e:#}") },
            }
        });
        let [rb, rd] = rss;
        self.rows.push(Row::new(&format!("RSS growth from a container publishing {PORTS} ports"), "MiB", Better::Lower, rb, rd));
        for d in &self.daemons {
            d.docker(&["network", "rm", "bench-net"])?;
        }
        Ok(())
    }
}
