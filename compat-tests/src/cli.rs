//! The stock docker CLI, bound to one daemon's socket.

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// What a user sees from one command.
#[derive(Debug, Clone)]
pub struct CmdOutput {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

impl CmdOutput {
    /// Panics with both streams when the command failed.
    #[track_caller]
    pub fn success(self) -> Self {
        assert_eq!(self.code, 0, "command failed:\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        self
    }

    /// Panics unless the command failed.
    #[track_caller]
    pub fn failure(self) -> Self {
        assert_ne!(self.code, 0, "command unexpectedly succeeded:\nstdout: {}", self.stdout);
        self
    }
}

/// The docker CLI at `/usr/local/bin/docker` (or `$DOCKER_CLI`).
pub fn docker_binary() -> PathBuf {
    let path = std::env::var_os("DOCKER_CLI").map(PathBuf::from).unwrap_or_else(|| "/usr/local/bin/docker".into());
    assert!(path.exists(), "the stock docker CLI is missing at {}", path.display());
    path
}

/// Run `docker ARGS` against `host` with an isolated client config.
pub fn docker(host: &str, config_dir: &std::path::Path, args: &[&str], stdin: Option<&[u8]>) -> CmdOutput {
    let mut cmd = docker_command(host, config_dir, args);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    run(cmd, stdin)
}

/// `docker ARGS` against `host` with an isolated client config, not started.
pub fn docker_command(host: &str, config_dir: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(docker_binary());
    cmd.args(args)
        .env("DOCKER_HOST", host)
        .env("DOCKER_CONFIG", config_dir)
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_API_VERSION")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH");
    cmd
}

/// Run a prepared command capturing its output.
pub fn run_piped(mut cmd: Command, stdin: Option<&[u8]>) -> CmdOutput {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    run(cmd, stdin)
}

/// Run a prepared command, feeding `stdin` if given.
pub fn run(mut cmd: Command, stdin: Option<&[u8]>) -> CmdOutput {
    use std::io::Write;
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        pipe.write_all(input).expect("writing stdin");
    }
    let out = child.wait_with_output().expect("waiting for command");
    CmdOutput {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
    }
}
