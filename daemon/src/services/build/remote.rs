//! Remote build contexts (`remote=`): a git repository (`git://`, `git@`,
//! `github.com/`, or an http(s) URL ending in `.git`, with `#ref:subdir`)
//! cloned with the host's git, or an http(s) URL whose body is a tar
//! (plain or gzip) or, otherwise, the Dockerfile itself. Failures are
//! dockerd's `unable to prepare context: ...` errors.

use std::path::{Path, PathBuf};

use super::context::Context;
use crate::services::ServiceError;

fn prepare_error(message: impl std::fmt::Display) -> ServiceError {
    ServiceError::InvalidParameter(format!("unable to prepare context: {message}"))
}

/// moby's `urlutil.IsGitURL`.
fn is_git_url(remote: &str) -> bool {
    let url_part = remote.split('#').next().unwrap_or_default();
    remote.starts_with("git://")
        || remote.starts_with("git@")
        || remote.starts_with("github.com/")
        || ((remote.starts_with("http://") || remote.starts_with("https://")) && url_part.ends_with(".git"))
}

/// Fetch `remote` into a new context directory under `parent`.
/// `dockerfile` is the name a plain-text download is stored under.
pub async fn fetch(remote: &str, parent: &Path, upload: &Path, dockerfile: &str) -> Result<Context, ServiceError> {
    if is_git_url(remote) {
        return clone(remote, parent).await;
    }
    if !(remote.starts_with("http://") || remote.starts_with("https://")) {
        return Err(prepare_error(format!("remote context {remote} is neither a git repository nor an http(s) URL")));
    }
    let body = download(remote).await?;
    let is_tar = body.starts_with(&[0x1f, 0x8b]) || body.get(257..262) == Some(b"ustar");
    if is_tar {
        tokio::fs::write(upload, &body).await.map_err(|e| ServiceError::Internal(format!("storing the context: {e}")))?;
        let (upload, parent) = (upload.to_path_buf(), parent.to_path_buf());
        return tokio::task::spawn_blocking(move || Context::unpack(&upload, &parent))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
    }
    let ctx = Context::empty(parent)?;
    let name = if dockerfile.is_empty() { "Dockerfile" } else { dockerfile };
    let path = ctx.path(name);
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await.map_err(|e| ServiceError::Internal(format!("creating {}: {e}", dir.display())))?;
    }
    tokio::fs::write(&path, &body).await.map_err(|e| ServiceError::Internal(format!("storing the Dockerfile: {e}")))?;
    Ok(ctx)
}

async fn download(url: &str) -> Result<Vec<u8>, ServiceError> {
    let failed = |e: &dyn std::fmt::Display| prepare_error(format!("unable to download remote context {url}: {e}"));
    let resp = reqwest::get(url).await.map_err(|e| failed(&error_chain(&e)))?;
    if !resp.status().is_success() {
        return Err(failed(&format!("{} {}", resp.status().as_u16(), resp.status().canonical_reason().unwrap_or(""))));
    }
    Ok(resp.bytes().await.map_err(|e| failed(&error_chain(&e)))?.to_vec())
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// `git clone` of `url#ref:subdir`; the context is the subdirectory.
async fn clone(remote: &str, parent: &Path) -> Result<Context, ServiceError> {
    let (url, fragment) = remote.split_once('#').unwrap_or((remote, ""));
    let (reference, subdir) = fragment.split_once(':').unwrap_or((fragment, ""));
    let url = if url.starts_with("github.com/") { format!("https://{url}") } else { url.to_string() };
    let mut ctx = Context::empty(parent)?;
    let checkout: PathBuf = ctx.root.join(".git-checkout");
    let mut cmd = tokio::process::Command::new("git");
    cmd.args(["clone", "--quiet", "--recurse-submodules", "--depth", "1"]);
    if !reference.is_empty() {
        cmd.args(["--branch", reference]);
    }
    cmd.arg(&url).arg(&checkout).env("GIT_TERMINAL_PROMPT", "0").stdin(std::process::Stdio::null());
    let out = cmd
        .output()
        .await
        .map_err(|e| prepare_error(format!("unable to 'git clone' to temporary context directory: running git: {e}")))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(prepare_error(format!("unable to 'git clone' to temporary context directory: error fetching: {stderr}")));
    }
    let wanted = crate::services::dockerfile::clean_path(&format!("/{subdir}"));
    let source = checkout.join(wanted.trim_start_matches('/'));
    if !source.starts_with(&checkout) || !tokio::fs::metadata(&source).await.is_ok_and(|m| m.is_dir()) {
        return Err(prepare_error(format!("subdirectory {subdir} not found in {url}")));
    }
    // The context is the (sub)directory, without the repository's .git.
    let root = ctx.root.clone();
    let moved = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        for entry in std::fs::read_dir(&source)? {
            let entry = entry?;
            if entry.file_name() == ".git" {
                continue;
            }
            std::fs::rename(entry.path(), root.join(entry.file_name()))?;
        }
        std::fs::remove_dir_all(root.join(".git-checkout"))
    })
    .await
    .map_err(|e| ServiceError::Internal(e.to_string()))?;
    moved.map_err(|e| ServiceError::Internal(format!("preparing the git context: {e}")))?;
    ctx.reload_ignore();
    Ok(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_urls() {
        assert!(is_git_url("git://host/repo"));
        assert!(is_git_url("git@github.com:a/b.git"));
        assert!(is_git_url("github.com/a/b"));
        assert!(is_git_url("https://host/a/b.git#main:dir"));
        assert!(!is_git_url("https://host/a/b.tar.gz"));
        assert!(!is_git_url("http://host/Dockerfile"));
    }
}
