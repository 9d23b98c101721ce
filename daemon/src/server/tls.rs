//! TLS for TCP listeners: server certificate, and client certificates
//! verified against `--tlscacert` when `--tlsverify` is on.

use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::config::TlsConfig;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("invalid TLS configuration: could not load X509 key pair (cert: {cert:?}, key: {key:?}): {reason}")]
    KeyPair { cert: String, key: String, reason: String },
    #[error("invalid TLS configuration: could not read CA certificate {path:?}: {reason}")]
    Ca { path: String, reason: String },
    #[error("could not read {}: {source}", .path.display())]
    Read { path: std::path::PathBuf, source: std::io::Error },
    #[error("no certificate found in {}", .0.display())]
    NoCertificate(std::path::PathBuf),
    #[error("no private key found in {}", .0.display())]
    NoKey(std::path::PathBuf),
    #[error("invalid TLS configuration: {0}")]
    Invalid(String),
}

/// Go's wording for a file that cannot be opened.
fn open_error(e: &TlsError) -> String {
    match e {
        TlsError::Read { path, source } if source.kind() == std::io::ErrorKind::NotFound => {
            format!("open {}: no such file or directory", path.display())
        }
        other => other.to_string(),
    }
}

pub fn acceptor(config: &TlsConfig) -> Result<TlsAcceptor, TlsError> {
    let provider = Arc::new(ring::default_provider());
    let key_pair_error = |e: TlsError| TlsError::KeyPair {
        cert: config.cert.display().to_string(),
        key: config.key.display().to_string(),
        reason: open_error(&e),
    };
    let certs = read_certs(&config.cert).map_err(key_pair_error)?;
    let key = read_key(&config.key).map_err(key_pair_error)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Invalid(e.to_string()))?;
    let builder = if config.verify {
        let mut roots = RootCertStore::empty();
        let ca_certs = read_certs(&config.ca_cert)
            .map_err(|e| TlsError::Ca { path: config.ca_cert.display().to_string(), reason: open_error(&e) })?;
        for ca in ca_certs {
            roots.add(ca).map_err(|e| TlsError::Invalid(format!("{}: {e}", config.ca_cert.display())))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| TlsError::Invalid(e.to_string()))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut server = builder.with_single_cert(certs, key).map_err(|e| TlsError::Invalid(e.to_string()))?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(server)))
}

fn open(path: &Path) -> Result<BufReader<std::fs::File>, TlsError> {
    std::fs::File::open(path)
        .map(BufReader::new)
        .map_err(|source| TlsError::Read { path: path.to_path_buf(), source })
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = rustls_pemfile::certs(&mut open(path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Read { path: path.to_path_buf(), source })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(path.to_path_buf()));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    rustls_pemfile::private_key(&mut open(path)?)
        .map_err(|source| TlsError::Read { path: path.to_path_buf(), source })?
        .ok_or_else(|| TlsError::NoKey(path.to_path_buf()))
}
