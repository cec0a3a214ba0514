//! The Go SDK plugins in `plugins/sdk/go` (one Go module, a plugin per directory), built with
//! the standard Go toolchain as the SDK documents: `GOOS=wasip1 GOARCH=wasm go build
//! -buildmode=c-shared`, into `build/go_<name>.wasm`. Go runs as for the tests' control plane
//! ([`cluster::go`]: its caches under `target/go`), so the SDK is fetched once, by `go` itself
//! from the module proxy; a plugin is skipped while its module is newer than its sources.

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{cluster, fresh, root, sh};

const DIR: &str = "plugins/sdk/go";

/// The plugins, by directory.
const PLUGINS: [&str; 3] = ["headers", "ticker", "receiver"];

/// The oldest Go that builds Proxy-Wasm modules (the `wasip1` port with `go:wasmexport`).
const MIN_MINOR: u32 = 24;

/// Fails unless the machine's Go is new enough.
fn check_version() -> Result<()> {
    let out = cluster::go()
        .args(["env", "GOVERSION"])
        .output()
        .context("the Go plugins need Go 1.24 or newer on the PATH")?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let minor = version
        .strip_prefix("go1.")
        .and_then(|v| v.split(['.', 'r', 'b']).next())
        .and_then(|m| m.parse::<u32>().ok())
        .unwrap_or(0);
    if minor < MIN_MINOR {
        bail!("Go is {version:?}: the Go plugins need go1.{MIN_MINOR} or newer");
    }
    Ok(())
}

/// Builds each Go plugin whose module is older than its sources.
pub fn build() -> Result<()> {
    let dir = root().join(DIR);
    let mut checked = false;
    for name in PLUGINS {
        let output = dir.join(format!("build/go_{name}.wasm"));
        let inputs = ["go.mod", "go.sum", name].map(|f| dir.join(f));
        if fresh::up_to_date(&output, &inputs)? {
            eprintln!("{DIR}/build/go_{name}.wasm is up to date");
            continue;
        }
        if !checked {
            check_version()?;
            checked = true;
        }
        let mut go: Command = cluster::go();
        sh(go
            .args(["build", "-buildmode=c-shared", "-o"])
            .arg(&output)
            .arg(format!("./{name}"))
            .current_dir(&dir)
            .env("GOOS", "wasip1")
            .env("GOARCH", "wasm"))?;
    }
    Ok(())
}
