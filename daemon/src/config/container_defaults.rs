//! Daemon-wide defaults for new containers: `default-ulimits`, `init`,
//! `init-path`, `default-ipc-mode`, `default-cgroupns-mode`,
//! `default-shm-size`, from flags or daemon.json.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One resource limit, in Docker's spelling (`nofile`, `nproc`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// The resource names Docker accepts, as the kernel's `RLIMIT_*`.
pub const ULIMIT_NAMES: &[(&str, &str)] = &[
    ("core", "RLIMIT_CORE"),
    ("cpu", "RLIMIT_CPU"),
    ("data", "RLIMIT_DATA"),
    ("fsize", "RLIMIT_FSIZE"),
    ("locks", "RLIMIT_LOCKS"),
    ("memlock", "RLIMIT_MEMLOCK"),
    ("msgqueue", "RLIMIT_MSGQUEUE"),
    ("nice", "RLIMIT_NICE"),
    ("nofile", "RLIMIT_NOFILE"),
    ("nproc", "RLIMIT_NPROC"),
    ("rss", "RLIMIT_RSS"),
    ("rtprio", "RLIMIT_RTPRIO"),
    ("rttime", "RLIMIT_RTTIME"),
    ("sigpending", "RLIMIT_SIGPENDING"),
    ("stack", "RLIMIT_STACK"),
];

impl Ulimit {
    /// `nofile=1024:2048` or `nofile=1024` (soft = hard), as the CLI and
    /// dockerd's `--default-ulimit` take it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (name, limits) = text.split_once('=').ok_or_else(|| format!("invalid ulimit argument: {text}"))?;
        if !ULIMIT_NAMES.iter().any(|(n, _)| *n == name) {
            return Err(format!("invalid ulimit type: {name}"));
        }
        let number = |s: &str| s.parse::<i64>().map_err(|_| format!("invalid ulimit argument: {text}"));
        let (soft, hard) = match limits.split_once(':') {
            Some((s, h)) => (number(s)?, number(h)?),
            None => (number(limits)?, number(limits)?),
        };
        let u = Ulimit { name: name.to_string(), soft, hard };
        u.check()?;
        Ok(u)
    }

    /// dockerd's checks on a limit however it arrived.
    pub fn check(&self) -> Result<(), String> {
        if !ULIMIT_NAMES.iter().any(|(n, _)| *n == self.name) {
            return Err(format!("invalid ulimit type: {}", self.name));
        }
        if self.soft > self.hard {
            return Err(format!(
                "ulimit soft limit must be less than or equal to hard limit: {} > {}",
                self.soft, self.hard
            ));
        }
        Ok(())
    }

    pub fn rlimit_type(&self) -> &'static str {
        ULIMIT_NAMES.iter().find(|(n, _)| *n == self.name).map(|(_, r)| *r).unwrap_or("RLIMIT_NOFILE")
    }
}

/// An OCI runtime from daemon.json `runtimes` (or `--add-runtime`), run
/// through containerd's runc shim with this binary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuntimeConfig {
    pub path: String,
    #[serde(default)]
    pub runtime_args: Vec<String>,
}

/// The runtime every dockerd knows; it cannot be redefined.
pub const RUNC: &str = "runc";
/// containerd's name for the runc shim, which dockerd also accepts.
pub const RUNC_SHIM: &str = "io.containerd.runc.v2";

/// What every new container gets unless its own config says otherwise.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContainerDefaults {
    /// By name; a container's own `Ulimits` replace these name by name.
    pub ulimits: BTreeMap<String, Ulimit>,
    /// Run an init as PID 1 when the container does not say.
    pub init: bool,
    /// The init binary (`docker-init`, else tini) on the host.
    pub init_path: Option<PathBuf>,
    /// `private` (dockerd's default) or `shareable`.
    pub ipc_mode: String,
    /// `host` or `private`; empty means the host's default (host on cgroup
    /// v1, private on v2, as dockerd).
    pub cgroupns_mode: String,
    /// `/dev/shm` size in bytes; 0 is dockerd's 64 MiB.
    pub shm_size: i64,
    /// `log-driver`: `json-file` unless configured.
    pub log_driver: String,
    /// `log-opts` for the default driver.
    pub log_opts: BTreeMap<String, String>,
    /// Configured runtimes by name (besides `runc`).
    pub runtimes: BTreeMap<String, RuntimeConfig>,
    /// `default-runtime`: `runc` unless configured.
    pub default_runtime: String,
}

impl ContainerDefaults {
    /// The binary for a runtime name; `None` for runc itself, `Err` for
    /// names nobody configured (dockerd's text).
    pub fn runtime_binary(&self, name: &str) -> Result<Option<&RuntimeConfig>, String> {
        match name {
            "" => self.runtime_binary(&self.default_runtime),
            RUNC | RUNC_SHIM => Ok(None),
            other => self.runtimes.get(other).map(Some).ok_or_else(|| format!("Unknown runtime specified {other}")),
        }
    }
}

/// dockerd's checks on `runtimes` and `default-runtime`.
pub fn check_runtimes(runtimes: &BTreeMap<String, RuntimeConfig>, default: &str) -> Result<(), String> {
    for (name, runtime) in runtimes {
        if name == RUNC || name == RUNC_SHIM {
            return Err(format!("runtime name '{name}' is reserved"));
        }
        if runtime.path.is_empty() {
            return Err(format!("runtime {name}: path is required"));
        }
    }
    if default != RUNC && default != RUNC_SHIM && !runtimes.contains_key(default) {
        return Err(format!("specified default runtime '{default}' does not exist"));
    }
    Ok(())
}

/// Sizes as dockerd takes them: `64m`, `1g`, `512k`, plain bytes.
pub fn parse_size(text: &str) -> Result<i64, String> {
    let t = text.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit() && *c != '.') {
        Some((i, _)) => (&t[..i], &t[i..]),
        None => (t, ""),
    };
    let value: f64 = digits.parse().map_err(|_| format!("invalid size: '{text}'"))?;
    let factor: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0_f64.powi(4),
        _ => return Err(format!("invalid size: '{text}'")),
    };
    Ok((value * factor) as i64)
}

pub fn check_ipc_mode(mode: &str) -> Result<(), String> {
    match mode {
        "" | "private" | "shareable" => Ok(()),
        other => Err(format!("invalid default IPC mode: {other}")),
    }
}

pub fn check_cgroupns_mode(mode: &str) -> Result<(), String> {
    match mode {
        "" | "host" | "private" => Ok(()),
        other => Err(format!("invalid default cgroup namespace mode: {other}")),
    }
}

/// The init binary dockerd would use: `docker-init` on the PATH, else tini.
pub fn find_init() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    ["docker-init", "tini-static", "tini"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulimits_parse_like_the_cli() {
        assert_eq!(Ulimit::parse("nofile=1024:2048").unwrap(), Ulimit { name: "nofile".into(), soft: 1024, hard: 2048 });
        assert_eq!(Ulimit::parse("nproc=10").unwrap(), Ulimit { name: "nproc".into(), soft: 10, hard: 10 });
        assert_eq!(Ulimit::parse("bogus=3:4").unwrap_err(), "invalid ulimit type: bogus");
        assert_eq!(
            Ulimit::parse("nofile=300:200").unwrap_err(),
            "ulimit soft limit must be less than or equal to hard limit: 300 > 200"
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64m").unwrap(), 64 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("512").unwrap(), 512);
        assert!(parse_size("lots").is_err());
    }
}
