//! The AssemblyScript plugins under `plugins/sdk/`: each an npm project whose packages are
//! installed with `npm ci` (skipped while `node_modules` matches the lockfile) and which builds
//! into `build/plugin.wasm` (skipped while the module is newer than everything it is built
//! from).
//!
//! - `assemblyscript`: the example plugin (`@solo-io/proxy-runtime` 0.1.8, assemblyscript 0.17);
//! - `assemblyscript-0.14`: the SDK's own hello-world built with the toolchain its README names
//!   (assemblyscript 0.14 and its default runtime), a test plugin.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::{deps, fresh, root, sh};

/// The plugins' directories, from the repository root.
const DIRS: [&str; 2] = [
    "plugins/sdk/assemblyscript",
    "plugins/sdk/assemblyscript-0.14",
];

/// The module the build writes (asconfig.json's `binaryFile`).
const OUTPUT: &str = "build/plugin.wasm";

/// A copy of the lockfile `npm ci` last installed, so that an unchanged lockfile skips it.
const INSTALLED: &str = "node_modules/.installed-package-lock.json";

/// Installs each plugin's npm packages if needed, then builds it if needed.
pub fn build() -> Result<()> {
    deps::ensure(&deps::NODE)?;
    for rel in DIRS {
        let dir = root().join(rel);
        install(&dir, rel)?;
        let inputs = ["asconfig.json", "package.json", INSTALLED, "assembly"].map(|f| dir.join(f));
        if fresh::up_to_date(&dir.join(OUTPUT), &inputs)? {
            eprintln!("{rel}/{OUTPUT} is up to date");
            continue;
        }
        sh(Command::new("npm")
            .args(["run", "--silent", "build"])
            .current_dir(&dir))?;
    }
    Ok(())
}

fn install(dir: &Path, rel: &str) -> Result<()> {
    let lock = std::fs::read(dir.join("package-lock.json"))
        .with_context(|| format!("reading {rel}/package-lock.json"))?;
    if std::fs::read(dir.join(INSTALLED)).is_ok_and(|installed| installed == lock) {
        return Ok(());
    }
    sh(Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir))?;
    std::fs::write(dir.join(INSTALLED), lock).with_context(|| format!("writing {rel}/{INSTALLED}"))
}
