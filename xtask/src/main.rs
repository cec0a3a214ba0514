//! `cargo xtask <command>`: the project's one entry point.
//!
//! - `demo [--once]`: the sidecar in front of a demo upstream, a few requests over HTTP/1.1 and
//!   HTTP/2, and where to look. `--once` exits after the requests.
//! - `test`: everything CI checks: formatting, clippy, unit and end-to-end tests, the demo. It
//!   builds the tests' Kubernetes control plane, kubectl and helm from `tests/cluster` first.
//! - `plugins`: builds the example plugins and test fixtures in `plugins/` for wasm32-wasip1, the
//!   AssemblyScript plugins in `plugins/sdk/assemblyscript*` with npm, and the Go SDK plugins in
//!   `plugins/sdk/go` with Go.
//! - `generate`: writes the CRD manifests under `crds/` from the `proxlet-crds` types.
//! - `cluster`: builds the tests' control plane, kubectl and helm (`tests/cluster`) if needed.
//! - `bench [ARGS]`: the whole-process benchmark against nginx and haproxy (`bench/run`).
//!
//! Each command installs what it needs when it is missing (Debian packages with apt-get).

// A command-line tool: printing to stdout is what it is for.
#![allow(clippy::print_stdout)]

mod assemblyscript;
mod cluster;
mod demo;
mod deps;
mod fresh;
mod go;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let cmd = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    match cmd.as_str() {
        "demo" => demo::run(rest.iter().any(|a| a == "--once")),
        "test" => test(),
        "bench" => bench(&rest),
        "plugins" => plugins(),
        "generate" => generate(),
        "cluster" => cluster::build(),
        _ => {
            eprintln!(
                "usage: cargo xtask <demo [--once] | test | plugins | generate | cluster | bench [ARGS]>"
            );
            bail!("unknown command {cmd:?}")
        }
    }
}

/// Writes `crds/*.yaml` from the CRD types; `crds/tests/generated.rs` fails when they are stale.
fn generate() -> Result<()> {
    for m in proxlet_crds::manifest::manifests()? {
        let path = root().join("crds").join(m.file);
        std::fs::write(&path, m.yaml).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// The repository root (the parent of this crate).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Runs a command from the repository root, failing with its command line if it fails.
fn sh(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    eprintln!("+ {shown}");
    if cmd.get_current_dir().is_none() {
        cmd.current_dir(root());
    }
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn test() -> Result<()> {
    deps::ensure(&deps::TEST)?;
    sh(cargo().args(["fmt", "--all", "--check"]))?;
    sh(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The plugins' own logic is tested on the host; the end-to-end tests load their modules.
    plugins()?;
    sh(cargo()
        .current_dir(root().join("plugins"))
        .args(["fmt", "--all", "--check"]))?;
    sh(cargo().current_dir(root().join("plugins")).args([
        "test",
        "--workspace",
        "--target",
        HOST_TARGET,
    ]))?;
    // The end-to-end tests start these binaries as processes, and the operator's tests a real
    // Kubernetes control plane with kubectl and helm.
    cluster::build()?;
    sh(cargo().args(["build", "--workspace", "--bins"]))?;
    sh(cargo().args(["test", "--workspace", "--", "--test-threads", "2"]))?;
    demo::run(true)
}

/// The machine's own target, for the plugins' unit tests.
const HOST_TARGET: &str = "x86_64-unknown-linux-gnu";

/// Builds every plugin in `plugins/` (its own workspace; the target comes from its
/// `.cargo/config.toml`), and those written with the AssemblyScript and Go SDKs beside them.
pub fn plugins() -> Result<()> {
    deps::ensure_wasm_target()?;
    sh(cargo()
        .current_dir(root().join("plugins"))
        .args(["build", "--release"]))?;
    assemblyscript::build()?;
    go::build()
}

fn bench(args: &[String]) -> Result<()> {
    deps::ensure(&deps::BENCH)?;
    sh(cargo().args(["build", "--release", "-p", "proxlet-sidecar"]))?;
    sh(Command::new(root().join("bench/run")).args(args))
}
