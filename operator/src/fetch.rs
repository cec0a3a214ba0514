//! Getting a module's bytes from where `spec.image` points: an OCI registry (three layouts), an
//! `https://` URL or a `file://` path. Every size is bounded before and while reading; every
//! registry blob's digest is verified. No retries here: errors are classified
//! ([`PipelineError::retryable`]) and the controller decides when to try again.
//!
//! Plain HTTP is used only for hosts listed in [`FetchSettings::insecure_hosts`]
//! (`--insecure-registry HOST[:PORT]`), for registries and `http://` URLs alike.
//!
//! TLS: `oci-client` and `reqwest` are built without a bundled crypto provider; the process
//! installs ring with [`install_crypto`] (the pipeline does it too, so library users cannot
//! forget), the same provider the sidecar and kube use.

pub mod auth;
pub mod error;
pub mod file;
pub mod https;
pub mod layout;
pub mod oci;
pub mod tarball;

use std::time::Duration;

use bytes::Bytes;
use proxlet_crds::ArtifactFormat;

pub use self::auth::Credentials;

/// Room for tar headers and other files next to `plugin.wasm` in a compat layer: the layer may
/// be this much larger than the module limit, compressed or not.
pub const TAR_OVERHEAD_BYTES: u64 = 1 << 20;

/// Installs ring as the process's rustls crypto provider, unless one is installed already.
/// Call it first thing in `main` (and in tests that build TLS clients).
pub fn install_crypto() {
    // An error means a provider is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// What fetching may do.
#[derive(Clone, Debug)]
pub struct FetchSettings {
    /// `host[:port]` reached over plain HTTP.
    pub insecure_hosts: Vec<String>,
    /// PEM certificates trusted besides the system roots (private registry CAs).
    pub extra_roots_pem: Vec<Vec<u8>>,
    /// The largest module accepted.
    pub max_module_bytes: u64,
    pub connect_timeout: Duration,
    /// The longest pause while reading a response.
    pub read_timeout: Duration,
}

impl Default for FetchSettings {
    fn default() -> Self {
        Self {
            insecure_hosts: Vec::new(),
            extra_roots_pem: Vec::new(),
            max_module_bytes: 64 << 20,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
        }
    }
}

/// A module's bytes as fetched, not yet verified against a pin nor validated.
#[derive(Clone, Debug)]
pub struct Fetched {
    pub bytes: Bytes,
    pub format: ArtifactFormat,
    /// The manifest digest the reference resolved to (OCI only).
    pub manifest_digest: Option<String>,
    /// Bytes received from the source (manifests and blobs).
    pub transferred: u64,
}
