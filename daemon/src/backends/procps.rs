//! The host's `ps` (procps), which `docker top` runs as dockerd does.

/// Run `ps ARGS`; the error is the first line of its stderr (or why it
/// could not run).
pub async fn ps(args: &[String]) -> Result<Vec<u8>, String> {
    let out = tokio::process::Command::new("ps")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    match stderr.lines().next().filter(|l| !l.is_empty()) {
        Some(line) => Err(line.to_string()),
        None => Err(out.status.to_string()),
    }
}
