//! Classifying what registries and HTTP servers answer into [`PipelineError`] reasons, once,
//! here: 401/403 and `UNAUTHORIZED`/`DENIED` are `Unauthorized`; 404 and the `*_UNKNOWN` codes
//! are `ImageNotFound`; digest failures are `DigestMismatch`; connection failures, timeouts, TLS
//! failures, 429 and 5xx are `RegistryUnreachable`.

use std::error::Error;

use oci_client::Reference;
use oci_client::errors::{DigestError, OciDistributionError, OciErrorCode};

use crate::pipeline::{Mismatch, PipelineError};

/// Classifies an `oci-client` error for `reference`.
pub fn classify_oci(error: OciDistributionError, reference: &Reference) -> PipelineError {
    let registry = reference.registry().to_owned();
    let image = reference.whole();
    match error {
        OciDistributionError::UnauthorizedError { .. } => PipelineError::Unauthorized {
            registry,
            detail: "401 Unauthorized".to_owned(),
        },
        OciDistributionError::AuthenticationFailure(reason) => PipelineError::Unauthorized {
            registry,
            detail: format!("token request failed: {}", reason.trim()),
        },
        OciDistributionError::RegistryError { envelope, .. } => {
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            let detail = envelope
                .errors
                .iter()
                .map(|e| format!("{:?}: {}", e.code, e.message))
                .collect::<Vec<_>>()
                .join("; ");
            by_code(&codes, registry, image, detail)
        }
        OciDistributionError::ServerError { code, message, .. } => by_status(
            code,
            registry,
            image,
            &message.trim().chars().take(200).collect::<String>(),
        ),
        OciDistributionError::ImageManifestNotFoundError(detail) => {
            PipelineError::ImageNotFound { image, detail }
        }
        OciDistributionError::DigestError(e) => digest(&e),
        OciDistributionError::ManifestParsingError(detail)
        | OciDistributionError::VersionedParsingError(detail)
        | OciDistributionError::UnsupportedMediaTypeError(detail) => {
            PipelineError::unsupported(format!("unusable manifest: {detail}"))
        }
        OciDistributionError::UnsupportedSchemaVersionError(v) => {
            PipelineError::unsupported(format!("manifest schema version {v}"))
        }
        other => PipelineError::RegistryUnreachable {
            registry,
            detail: chain(&other),
        },
    }
}

/// Classifies an error met while a blob streams (the verifying stream reports a digest mismatch
/// as an I/O error wrapping a [`DigestError`]).
pub fn from_stream_error(error: &std::io::Error, reference: &Reference) -> PipelineError {
    if let Some(e) = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<DigestError>())
    {
        return digest(e);
    }
    PipelineError::RegistryUnreachable {
        registry: reference.registry().to_owned(),
        detail: format!("while downloading: {}", chain(error)),
    }
}

/// Classifies an HTTP status from a registry or an `https://` server.
pub fn by_status(code: u16, host: String, image: String, detail: &str) -> PipelineError {
    let detail = if detail.is_empty() {
        format!("HTTP {code}")
    } else {
        format!("HTTP {code}: {detail}")
    };
    match code {
        401 | 403 => PipelineError::Unauthorized {
            registry: host,
            detail,
        },
        404 | 410 => PipelineError::ImageNotFound { image, detail },
        _ => PipelineError::RegistryUnreachable {
            registry: host,
            detail,
        },
    }
}

fn by_code(
    codes: &[&OciErrorCode],
    registry: String,
    image: String,
    detail: String,
) -> PipelineError {
    let any = |wanted: &[OciErrorCode]| codes.iter().any(|c| wanted.contains(c));
    if any(&[OciErrorCode::Unauthorized, OciErrorCode::Denied]) {
        PipelineError::Unauthorized { registry, detail }
    } else if any(&[
        OciErrorCode::ManifestUnknown,
        OciErrorCode::NameUnknown,
        OciErrorCode::BlobUnknown,
        OciErrorCode::ManifestBlobUnknown,
        OciErrorCode::NotFound,
    ]) {
        PipelineError::ImageNotFound { image, detail }
    } else if any(&[OciErrorCode::NameInvalid, OciErrorCode::TagInvalid]) {
        PipelineError::InvalidReference {
            image,
            problem: detail,
        }
    } else {
        PipelineError::RegistryUnreachable { registry, detail }
    }
}

fn digest(error: &DigestError) -> PipelineError {
    match error {
        DigestError::VerificationError { expected, actual } => PipelineError::DigestMismatch {
            what: Mismatch::Blob,
            expected: expected.clone(),
            actual: actual.clone(),
        },
        other => PipelineError::unsupported(format!("digest: {other}")),
    }
}

/// An error and its sources, `: `-separated (reqwest hides the useful part in the sources).
pub fn chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let next = e.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Reason;

    fn reference() -> Reference {
        "r.io/p:v1".parse().unwrap()
    }

    #[test]
    fn registry_codes_and_statuses() {
        let envelope = |code: &str| {
            let json = format!(r#"{{"errors":[{{"code":"{code}","message":"m"}}]}}"#);
            OciDistributionError::RegistryError {
                envelope: serde_json::from_str(&json).unwrap(),
                url: String::new(),
            }
        };
        let reason = |e| classify_oci(e, &reference()).reason();
        assert_eq!(reason(envelope("DENIED")), Reason::Unauthorized);
        assert_eq!(reason(envelope("MANIFEST_UNKNOWN")), Reason::ImageNotFound);
        assert_eq!(reason(envelope("NAME_UNKNOWN")), Reason::ImageNotFound);
        assert_eq!(
            reason(envelope("TOOMANYREQUESTS")),
            Reason::RegistryUnreachable
        );
        let status = |code| {
            reason(OciDistributionError::ServerError {
                code,
                url: String::new(),
                message: String::new(),
            })
        };
        assert_eq!(status(403), Reason::Unauthorized);
        assert_eq!(status(404), Reason::ImageNotFound);
        assert_eq!(status(503), Reason::RegistryUnreachable);
        let unauthorized = OciDistributionError::UnauthorizedError { url: String::new() };
        assert_eq!(reason(unauthorized), Reason::Unauthorized);
    }
}
