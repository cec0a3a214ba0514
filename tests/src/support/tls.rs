//! Self-signed certificates for the sidecar's TLS listener.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// A certificate and key for `localhost` and `127.0.0.1`, as PEM files. The certificate is its own
/// CA: pass it to curl with `--cacert`.
#[derive(Clone, Debug)]
pub struct TestCerts {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCerts {
    /// Generates a fresh key and certificate into `dir`.
    pub fn generate(dir: &Path) -> Result<Self> {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let certified =
            rcgen::generate_simple_self_signed(names).context("generate certificate")?;
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, certified.cert.pem()).context("write cert.pem")?;
        std::fs::write(&key, certified.key_pair.serialize_pem()).context("write key.pem")?;
        Ok(Self { cert, key })
    }
}
