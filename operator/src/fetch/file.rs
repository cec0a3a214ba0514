//! Reading a module from a `file://` path (development): the size is checked before reading.

use std::path::Path;

use proxlet_crds::ArtifactFormat;

use super::{FetchSettings, Fetched};
use crate::pipeline::PipelineError;

/// Reads the module at `path`.
pub async fn fetch(settings: &FetchSettings, path: &Path) -> Result<Fetched, PipelineError> {
    let shown = path.display().to_string();
    let failed = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => PipelineError::ImageNotFound {
            image: format!("file://{shown}"),
            detail: "no such file".to_owned(),
        },
        std::io::ErrorKind::PermissionDenied => PipelineError::Unauthorized {
            registry: "file".to_owned(),
            detail: format!("{shown}: permission denied"),
        },
        _ => PipelineError::RegistryUnreachable {
            registry: "file".to_owned(),
            detail: format!("{shown}: {e}"),
        },
    };
    let metadata = tokio::fs::metadata(path).await.map_err(failed)?;
    if !metadata.is_file() {
        return Err(PipelineError::unsupported(format!(
            "{shown} is not a regular file"
        )));
    }
    let limit = settings.max_module_bytes;
    if metadata.len() > limit {
        return Err(PipelineError::too_large(
            "the module",
            limit,
            Some(metadata.len()),
        ));
    }
    let bytes = tokio::fs::read(path).await.map_err(failed)?;
    if bytes.len() as u64 > limit {
        return Err(PipelineError::too_large(
            "the module",
            limit,
            Some(bytes.len() as u64),
        ));
    }
    Ok(Fetched {
        transferred: bytes.len() as u64,
        bytes: bytes.into(),
        format: ArtifactFormat::File,
        manifest_digest: None,
    })
}
