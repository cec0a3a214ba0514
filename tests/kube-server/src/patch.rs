//! PATCH bodies applied to an object: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and
//! strategic merge patch. Server-side apply is in `apply`.

pub mod json_patch;
pub mod merge;
pub mod strategic;

use serde_json::Value;

/// The patch formats, by request `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    Json,
    Strategic,
    Apply,
}

pub const ACCEPTED: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];

impl PatchType {
    pub fn from_content_type(ct: &str) -> Option<Self> {
        match ct.split(';').next().unwrap_or_default().trim() {
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/json-patch+json" => Some(PatchType::Json),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => {
                Some(PatchType::Apply)
            }
            _ => None,
        }
    }
}

/// Why a patch could not be applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PatchError {
    /// The body is not a patch of this type (400).
    #[error("{0}")]
    Malformed(String),
    /// The patch is well formed but does not apply to this object (422).
    #[error("{0}")]
    Rejected(String),
}

/// Applies a merge, JSON or strategic patch to `target`.
pub fn apply(
    kind: PatchType,
    target: &Value,
    body: &[u8],
    structure: &Value,
) -> Result<Value, PatchError> {
    let patch: Value = serde_json::from_slice(body)
        .map_err(|e| PatchError::Malformed(format!("error decoding patch: {e}")))?;
    match kind {
        PatchType::Merge => {
            if !patch.is_object() {
                return Err(PatchError::Malformed(
                    "couldn't get version/kind; json parse error: a merge patch must be a JSON object"
                        .to_string(),
                ));
            }
            Ok(merge::merge(target, &patch))
        }
        PatchType::Json => json_patch::apply(target, &patch),
        PatchType::Strategic => strategic::apply(target, &patch, structure),
        PatchType::Apply => Err(PatchError::Malformed(
            "apply patches are handled by server-side apply".to_string(),
        )),
    }
}
