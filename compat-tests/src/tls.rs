//! Throw-away TLS material for `--tlsverify` tests, made with the `openssl`
//! command line: a CA, a server certificate for 127.0.0.1/localhost and a
//! client certificate, all signed by that CA.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{ensure, Context, Result};

/// A CA with one server and one client certificate, in a temporary
/// directory that goes away on drop. File names follow Docker's
/// conventions (`ca.pem`, `server-cert.pem`, `cert.pem`, ...).
pub struct TlsCerts {
    dir: tempfile::TempDir,
}

impl TlsCerts {
    /// Generate everything (P-256 keys, valid for two days).
    pub fn generate() -> Result<TlsCerts> {
        let dir = tempfile::Builder::new().prefix("berth-tls-").tempdir()?;
        let certs = TlsCerts { dir };
        let d = certs.dir.path();
        openssl(
            d,
            "req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
             -keyout ca-key.pem -out ca.pem -days 2 -subj /CN=berth-test-ca \
             -addext basicConstraints=critical,CA:TRUE \
             -addext keyUsage=critical,keyCertSign,cRLSign",
        )?;
        certs.issue(
            "server",
            "/CN=localhost",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        )?;
        certs.issue(
            "client",
            "/CN=berth-test-client",
            "extendedKeyUsage=clientAuth\n",
        )?;
        // Docker's client-side names.
        std::fs::rename(d.join("client-cert.pem"), d.join("cert.pem"))?;
        std::fs::rename(d.join("client-key.pem"), d.join("key.pem"))?;
        Ok(certs)
    }

    /// `<name>-key.pem` and `<name>-cert.pem`, signed by the CA.
    fn issue(&self, name: &str, subject: &str, extensions: &str) -> Result<()> {
        let d = self.dir.path();
        let (key, csr, cert, ext) = (
            format!("{name}-key.pem"),
            format!("{name}.csr"),
            format!("{name}-cert.pem"),
            format!("{name}.ext"),
        );
        std::fs::write(d.join(&ext), extensions)?;
        openssl(
            d,
            &format!(
                "req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
                 -keyout {key} -out {csr} -subj {subject}"
            ),
        )?;
        openssl(
            d,
            &format!(
                "x509 -req -in {csr} -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
                 -out {cert} -days 2 -extfile {ext}"
            ),
        )?;
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA certificate both sides trust.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn server_cert(&self) -> PathBuf {
        self.dir.path().join("server-cert.pem")
    }

    pub fn server_key(&self) -> PathBuf {
        self.dir.path().join("server-key.pem")
    }

    /// The client certificate (`cert.pem`, as the docker CLI names it).
    pub fn client_cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }

    /// The daemon flags that serve TLS with client verification.
    pub fn daemon_args(&self) -> Vec<String> {
        vec![
            "--tlsverify".into(),
            "--tlscacert".into(),
            self.ca().display().to_string(),
            "--tlscert".into(),
            self.server_cert().display().to_string(),
            "--tlskey".into(),
            self.server_key().display().to_string(),
        ]
    }

    /// The docker CLI flags that present the client certificate.
    pub fn client_args(&self) -> Vec<String> {
        vec![
            "--tlsverify".into(),
            "--tlscacert".into(),
            self.ca().display().to_string(),
            "--tlscert".into(),
            self.client_cert().display().to_string(),
            "--tlskey".into(),
            self.client_key().display().to_string(),
        ]
    }
}

/// `openssl ARGS` in `dir`; `args` is split on whitespace (no argument
/// here contains a space).
fn openssl(dir: &Path, args: &str) -> Result<()> {
    let args: Vec<&str> = args.split_whitespace().collect();
    let out = Command::new("openssl")
        .args(&args)
        .current_dir(dir)
        .output()
        .context("running openssl (install the Debian package openssl)")?;
    ensure!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
