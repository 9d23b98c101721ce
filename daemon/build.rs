//! Records the commit, build time and compiler that `/version` reports.

use std::process::Command;

fn main() {
    let run = |cmd: &str, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let commit = run("git", &["rev-parse", "--short=7", "HEAD"]);
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = run(&rustc, &["--version"]);
    let build_time = run("date", &["-u", "+%Y-%m-%dT%H:%M:%S.000000000+00:00"]);
    println!("cargo:rustc-env=BERTHD_GIT_COMMIT={}", if commit.is_empty() { "unknown" } else { &commit });
    println!("cargo:rustc-env=BERTHD_RUSTC_VERSION={rustc_version}");
    println!("cargo:rustc-env=BERTHD_BUILD_TIME={build_time}");
    // Rebuild when the commit changes: watch HEAD and the ref it names.
    // git says where they are (in a worktree `.git` is a file); a path
    // that does not exist would make cargo rerun this on every build.
    let git_path = |name: &str| run("git", &["rev-parse", "--path-format=absolute", "--git-path", name]);
    let head = git_path("HEAD");
    let branch = std::fs::read_to_string(&head).unwrap_or_default();
    let mut watched = vec![head];
    if let Some(name) = branch.trim().strip_prefix("ref: ") {
        watched.push(git_path(name));
        watched.push(git_path("packed-refs"));
    }
    for path in watched.iter().filter(|p| !p.is_empty() && std::path::Path::new(p).exists()) {
        println!("cargo:rerun-if-changed={path}");
    }
}
