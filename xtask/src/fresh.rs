//! Whether a build output is newer than everything it is built from, so that builds of plugins
//! with other toolchains (npm, Go) are skipped while nothing changed.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};

/// Whether `output` exists and is newer than each of `inputs` (files, or directories whose
/// files count, not recursively).
pub fn up_to_date(output: &Path, inputs: &[PathBuf]) -> Result<bool> {
    let Ok(built) = modified(output) else {
        return Ok(false);
    };
    for input in inputs {
        let files: Vec<PathBuf> = if input.is_dir() {
            let entries =
                std::fs::read_dir(input).with_context(|| format!("listing {}", input.display()))?;
            entries
                .map(|e| e.map(|e| e.path()))
                .collect::<std::io::Result<_>>()?
        } else {
            vec![input.clone()]
        };
        for file in files {
            if modified(&file)? > built {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

fn modified(path: &Path) -> Result<SystemTime> {
    let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
    Ok(meta.modified()?)
}
