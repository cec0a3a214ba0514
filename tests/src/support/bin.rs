//! Where the binaries under test are: `$ENV_VAR` when set, else beside the test executable in
//! the cargo target directory it was built into (`target/<profile>/`). The tests do not build
//! them: `cargo build --workspace --bins` (or `cargo xtask test`) must have run first, in the
//! tests' profile.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};

/// The path of binary `name`, or an error saying how to build it.
pub fn path(name: &str, env_var: &str) -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(env_var) {
        let path = PathBuf::from(path);
        ensure!(path.is_file(), "{env_var}={} is not a file", path.display());
        return Ok(path);
    }
    let exe = std::env::current_exe().context("current test executable")?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .context("test executable has no target dir")?;
    let path = profile_dir.join(name);
    ensure!(
        path.is_file(),
        "{name} binary not found at {}: run `cargo build --workspace --bins` first \
         (same profile as the tests), or set {env_var}",
        path.display()
    );
    Ok(path)
}

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The path of a tool built from `tests/cluster` (`proxlet-cluster`, `kubectl`, `helm`):
/// `$ENV_VAR` when set, else `target/go/bin/NAME` of the target directory the tests were built
/// into, where `cargo xtask test` builds them.
pub fn go_tool(name: &str, env_var: &str) -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(env_var) {
        let path = PathBuf::from(path);
        ensure!(path.is_file(), "{env_var}={} is not a file", path.display());
        return Ok(path);
    }
    let exe = std::env::current_exe().context("current test executable")?;
    let target = exe
        .ancestors()
        .nth(3)
        .context("test executable has no target dir")?;
    let path = target.join("go/bin").join(name);
    ensure!(
        path.is_file(),
        "{name} not found at {}: run `cargo xtask test` (it builds tests/cluster), or set {env_var}",
        path.display()
    );
    Ok(path)
}
