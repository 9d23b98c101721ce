//! Per-registry TLS material from `/etc/docker/certs.d/<host[:port]>/`, as
//! dockerd reads it: `*.crt` are extra CA roots, `*.cert` + `*.key` (same
//! base name) a client certificate.

use std::path::{Path, PathBuf};

use super::error::{ErrorKind, RegistryError};

/// Where dockerd looks on Linux.
pub const DEFAULT_CERTS_DIR: &str = "/etc/docker/certs.d";

/// What a host's directory holds, as PEM.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HostCerts {
    pub roots: Vec<Vec<u8>>,
    /// Certificate chain followed by its private key (reqwest's
    /// `Identity::from_pem` layout).
    pub identity: Option<Vec<u8>>,
}

fn invalid(message: String) -> RegistryError {
    RegistryError::new(ErrorKind::Invalid, message)
}

/// Reads `<dir>/<host>/`; `None` when there is no such directory.
/// Errors carry dockerd's texts for unpaired keys and certificates.
pub async fn read_host_certs(dir: &Path, host: &str) -> Result<Option<HostCerts>, RegistryError> {
    // A host never contains a path separator; refuse rather than escape.
    if host.is_empty() || host.contains('/') || host == "." || host == ".." {
        return Ok(None);
    }
    let host_dir = dir.join(host);
    let mut entries = match tokio::fs::read_dir(&host_dir).await {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(invalid(format!("reading {}: {e}", host_dir.display()))),
    };
    let mut names: Vec<PathBuf> = Vec::new();
    while let Some(entry) = entries
        .next_entry()
        .await
        .map_err(|e| invalid(format!("reading {}: {e}", host_dir.display())))?
    {
        names.push(entry.path());
    }
    names.sort();
    let read = |p: PathBuf| async move {
        tokio::fs::read(&p).await.map_err(|e| invalid(format!("reading {}: {e}", p.display())))
    };
    let mut certs = HostCerts::default();
    for path in &names {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.ends_with(".crt") {
            certs.roots.push(read(path.clone()).await?);
        } else if let Some(base) = name.strip_suffix(".cert") {
            let key = host_dir.join(format!("{base}.key"));
            if !names.contains(&key) {
                return Err(invalid(format!(
                    "missing key {base}.key for client certificate {name}. CA certificates must use the extension .crt"
                )));
            }
            let mut pem = read(path.clone()).await?;
            pem.push(b'\n');
            pem.extend(read(key).await?);
            certs.identity = Some(pem);
        } else if let Some(base) = name.strip_suffix(".key") {
            if !names.contains(&host_dir.join(format!("{base}.cert"))) {
                return Err(invalid(format!("missing client certificate {base}.cert for key {name}")));
            }
        }
    }
    Ok(Some(certs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_cas_and_paired_client_certificates() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_host_certs(dir.path(), "reg:5000").await.unwrap(), None);
        let host = dir.path().join("reg:5000");
        std::fs::create_dir(&host).unwrap();
        std::fs::write(host.join("ca.crt"), "CA").unwrap();
        std::fs::write(host.join("client.cert"), "CERT").unwrap();
        std::fs::write(host.join("client.key"), "KEY").unwrap();
        let certs = read_host_certs(dir.path(), "reg:5000").await.unwrap().unwrap();
        assert_eq!(certs.roots, vec![b"CA".to_vec()]);
        assert_eq!(certs.identity.as_deref(), Some(&b"CERT\nKEY"[..]));
        assert_eq!(read_host_certs(dir.path(), "../etc").await.unwrap(), None);
    }

    #[tokio::test]
    async fn unpaired_keys_and_certificates_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("a");
        std::fs::create_dir(&host).unwrap();
        std::fs::write(host.join("client.cert"), "CERT").unwrap();
        let e = read_host_certs(dir.path(), "a").await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "missing key client.key for client certificate client.cert. CA certificates must use the extension .crt"
        );
        std::fs::remove_file(host.join("client.cert")).unwrap();
        std::fs::write(host.join("client.key"), "KEY").unwrap();
        let e = read_host_certs(dir.path(), "a").await.unwrap_err();
        assert_eq!(e.to_string(), "missing client certificate client.cert for key client.key");
    }
}
