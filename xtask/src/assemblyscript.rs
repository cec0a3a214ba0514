//! The AssemblyScript plugin in `plugins/sdk/assemblyscript`: its npm packages (`npm ci`, skipped
//! while `node_modules` matches the lockfile) and its build into `build/plugin.wasm` (skipped
//! while the module is newer than everything it is built from).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{Context, Result};

use crate::{deps, root, sh};

/// The plugin's directory, from the repository root.
const DIR: &str = "plugins/sdk/assemblyscript";

/// The module the build writes (asconfig.json's `binaryFile`).
const OUTPUT: &str = "build/plugin.wasm";

/// A copy of the lockfile `npm ci` last installed, so that an unchanged lockfile skips it.
const INSTALLED: &str = "node_modules/.installed-package-lock.json";

/// Installs the plugin's npm packages if needed, then builds it if needed.
pub fn build() -> Result<()> {
    deps::ensure(&deps::NODE)?;
    let dir = root().join(DIR);
    install(&dir)?;
    if up_to_date(&dir)? {
        eprintln!("{DIR}/{OUTPUT} is up to date");
        return Ok(());
    }
    sh(Command::new("npm")
        .args(["run", "--silent", "build"])
        .current_dir(&dir))
}

fn install(dir: &Path) -> Result<()> {
    let lock = std::fs::read(dir.join("package-lock.json"))
        .with_context(|| format!("reading {DIR}/package-lock.json"))?;
    if std::fs::read(dir.join(INSTALLED)).is_ok_and(|installed| installed == lock) {
        return Ok(());
    }
    sh(Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir))?;
    std::fs::write(dir.join(INSTALLED), lock).with_context(|| format!("writing {DIR}/{INSTALLED}"))
}

/// Whether the module is newer than the sources, the build settings and the installed packages.
fn up_to_date(dir: &Path) -> Result<bool> {
    let Ok(built) = modified(&dir.join(OUTPUT)) else {
        return Ok(false);
    };
    let mut inputs: Vec<PathBuf> = ["asconfig.json", "package.json", INSTALLED]
        .iter()
        .map(|f| dir.join(f))
        .collect();
    for entry in std::fs::read_dir(dir.join("assembly")).context("listing assembly/")? {
        inputs.push(entry?.path());
    }
    for input in inputs {
        if modified(&input)? > built {
            return Ok(false);
        }
    }
    Ok(true)
}

fn modified(path: &Path) -> Result<SystemTime> {
    let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
    Ok(meta.modified()?)
}
