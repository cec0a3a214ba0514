//! The closed set of reasons a module cannot be resolved: each variant has a fixed CamelCase
//! [`Reason`] (the condition reason on the `ProxyPlugin` and the metric label), says which
//! condition it fails (`Fetched` or `Validated`), whether retrying later can help, and a message
//! that tells the user what to change.

use std::fmt;

/// Why the module could not be fetched or validated.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// `spec.image` or `spec.sha256` cannot be understood.
    #[error("invalid image reference {image:?}: {problem}")]
    InvalidReference { image: String, problem: String },
    /// The registry (or `https://` host) could not be reached or failed to answer.
    #[error("{registry} could not be reached: {detail}")]
    RegistryUnreachable { registry: String, detail: String },
    /// The registry refused the credentials, or asked for some and none were given.
    #[error("{registry} refused access ({detail}): check the credentials in the image pull secret")]
    Unauthorized { registry: String, detail: String },
    /// `spec.imagePullSecret` names a Secret that does not exist.
    #[error("image pull secret {name:?} not found in the plugin's namespace")]
    PullSecretMissing { name: String },
    /// The Secret exists but is not a usable `kubernetes.io/dockerconfigjson` Secret.
    #[error(
        "image pull secret {name:?} is not a usable kubernetes.io/dockerconfigjson Secret: {problem}"
    )]
    PullSecretInvalid { name: String, problem: String },
    /// The registry does not know the repository, tag or digest (or the file/URL is absent).
    #[error("{image} not found: {detail}")]
    ImageNotFound { image: String, detail: String },
    /// Bytes whose digest differs from the one that names them, or from `spec.sha256`.
    #[error("{what} digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: Mismatch,
        expected: String,
        actual: String,
    },
    /// The artifact is not in any layout the operator knows.
    #[error("unsupported artifact: {detail}")]
    UnsupportedArtifact { detail: String },
    /// Something is bigger than the operator accepts.
    #[error("{}", too_large_message(what, *limit, *size))]
    TooLarge {
        what: &'static str,
        limit: u64,
        size: Option<u64>,
    },
    /// The bytes are not a WebAssembly binary module (version 1).
    #[error("not a WebAssembly module: {detail}")]
    NotWasm { detail: String },
    /// The module exports no Proxy-Wasm ABI version the sidecar speaks.
    #[error("not a Proxy-Wasm module: {detail}")]
    NoProxyWasmAbi { detail: String },
    /// The module imports a host function the sidecar does not provide.
    #[error("the module {detail}")]
    UnsupportedImport { detail: String },
    /// The module did not compile (or link) with the sidecar's engine settings.
    #[error("the module does not compile: {detail}")]
    CompileFailed { detail: String },
    /// The operator's own module cache failed (disk full, permissions).
    #[error("module cache: {detail}")]
    CacheFailed { detail: String },
}

fn too_large_message(what: &str, limit: u64, size: Option<u64>) -> String {
    match size {
        Some(size) => format!("{what} is {size} bytes, over the limit of {limit} bytes"),
        None => format!("{what} exceeds the limit of {limit} bytes"),
    }
}

/// What a [`PipelineError::DigestMismatch`] compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// A blob (manifest, layer) against the digest that names it.
    Blob,
    /// The module against `spec.sha256`.
    Pin,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Blob => "blob",
            Self::Pin => "sha256 pin",
        })
    }
}

/// The condition reason and metric label of a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    InvalidReference,
    RegistryUnreachable,
    Unauthorized,
    PullSecretMissing,
    PullSecretInvalid,
    ImageNotFound,
    DigestMismatch,
    UnsupportedArtifact,
    TooLarge,
    NotWasm,
    NoProxyWasmAbi,
    UnsupportedImport,
    CompileFailed,
    CacheFailed,
}

/// The condition a failure sets to `False`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// `Fetched`
    Fetch,
    /// `Validated`
    Validate,
}

impl Reason {
    /// Every reason, for registering metric label values up front.
    pub const ALL: [Self; 14] = [
        Self::InvalidReference,
        Self::RegistryUnreachable,
        Self::Unauthorized,
        Self::PullSecretMissing,
        Self::PullSecretInvalid,
        Self::ImageNotFound,
        Self::DigestMismatch,
        Self::UnsupportedArtifact,
        Self::TooLarge,
        Self::NotWasm,
        Self::NoProxyWasmAbi,
        Self::UnsupportedImport,
        Self::CompileFailed,
        Self::CacheFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidReference => "InvalidReference",
            Self::RegistryUnreachable => "RegistryUnreachable",
            Self::Unauthorized => "Unauthorized",
            Self::PullSecretMissing => "PullSecretMissing",
            Self::PullSecretInvalid => "PullSecretInvalid",
            Self::ImageNotFound => "ImageNotFound",
            Self::DigestMismatch => "DigestMismatch",
            Self::UnsupportedArtifact => "UnsupportedArtifact",
            Self::TooLarge => "TooLarge",
            Self::NotWasm => "NotWasm",
            Self::NoProxyWasmAbi => "NoProxyWasmAbi",
            Self::UnsupportedImport => "UnsupportedImport",
            Self::CompileFailed => "CompileFailed",
            Self::CacheFailed => "CacheFailed",
        }
    }

    /// `Validated` for the four reasons about the module's content, `Fetched` otherwise.
    pub fn stage(self) -> Stage {
        match self {
            Self::NotWasm
            | Self::NoProxyWasmAbi
            | Self::UnsupportedImport
            | Self::CompileFailed => Stage::Validate,
            _ => Stage::Fetch,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PipelineError {
    /// The fixed reason: condition reason and metric label.
    pub fn reason(&self) -> Reason {
        match self {
            Self::InvalidReference { .. } => Reason::InvalidReference,
            Self::RegistryUnreachable { .. } => Reason::RegistryUnreachable,
            Self::Unauthorized { .. } => Reason::Unauthorized,
            Self::PullSecretMissing { .. } => Reason::PullSecretMissing,
            Self::PullSecretInvalid { .. } => Reason::PullSecretInvalid,
            Self::ImageNotFound { .. } => Reason::ImageNotFound,
            Self::DigestMismatch { .. } => Reason::DigestMismatch,
            Self::UnsupportedArtifact { .. } => Reason::UnsupportedArtifact,
            Self::TooLarge { .. } => Reason::TooLarge,
            Self::NotWasm { .. } => Reason::NotWasm,
            Self::NoProxyWasmAbi { .. } => Reason::NoProxyWasmAbi,
            Self::UnsupportedImport { .. } => Reason::UnsupportedImport,
            Self::CompileFailed { .. } => Reason::CompileFailed,
            Self::CacheFailed { .. } => Reason::CacheFailed,
        }
    }

    /// The condition this failure sets to `False`.
    pub fn stage(&self) -> Stage {
        self.reason().stage()
    }

    /// Whether the same request may succeed later without a change to the `ProxyPlugin`: the
    /// network, the registry, a Secret or a pushed tag can change; the module's bytes under a
    /// digest cannot. The controller retries these with backoff and the others on spec changes.
    pub fn retryable(&self) -> bool {
        match self {
            Self::RegistryUnreachable { .. }
            | Self::Unauthorized { .. }
            | Self::PullSecretMissing { .. }
            | Self::PullSecretInvalid { .. }
            | Self::ImageNotFound { .. }
            | Self::CacheFailed { .. } => true,
            Self::DigestMismatch { what, .. } => *what == Mismatch::Blob,
            Self::InvalidReference { .. }
            | Self::UnsupportedArtifact { .. }
            | Self::TooLarge { .. }
            | Self::NotWasm { .. }
            | Self::NoProxyWasmAbi { .. }
            | Self::UnsupportedImport { .. }
            | Self::CompileFailed { .. } => false,
        }
    }

    pub(crate) fn invalid(image: &str, problem: impl Into<String>) -> Self {
        Self::InvalidReference {
            image: image.to_owned(),
            problem: problem.into(),
        }
    }

    pub(crate) fn unsupported(detail: impl Into<String>) -> Self {
        Self::UnsupportedArtifact {
            detail: detail.into(),
        }
    }

    pub(crate) fn too_large(what: &'static str, limit: u64, size: Option<u64>) -> Self {
        Self::TooLarge { what, limit, size }
    }

    pub(crate) fn cache(e: &std::io::Error) -> Self {
        Self::CacheFailed {
            detail: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_camel_case_and_distinct() {
        let names: std::collections::HashSet<_> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), Reason::ALL.len());
        for name in names {
            assert!(name.chars().next().is_some_and(|c| c.is_ascii_uppercase()));
            assert!(name.chars().all(|c| c.is_ascii_alphanumeric()));
        }
    }

    #[test]
    fn too_large_names_limit_and_size() {
        let e = PipelineError::too_large("the module", 10, Some(12));
        assert_eq!(
            e.to_string(),
            "the module is 12 bytes, over the limit of 10 bytes"
        );
        let e = PipelineError::too_large("the decompressed layer", 10, None);
        assert_eq!(
            e.to_string(),
            "the decompressed layer exceeds the limit of 10 bytes"
        );
        assert_eq!(e.reason(), Reason::TooLarge);
        assert!(!e.retryable());
    }

    #[test]
    fn content_reasons_fail_validated() {
        assert_eq!(Reason::NoProxyWasmAbi.stage(), Stage::Validate);
        assert_eq!(Reason::NotWasm.stage(), Stage::Validate);
        assert_eq!(Reason::TooLarge.stage(), Stage::Fetch);
    }
}
