//! Installs what the commands need when it is missing: Debian packages, by the command they
//! provide.

use std::process::Command;

use anyhow::{Result, bail};

/// A command the tooling runs, and the Debian package that provides it.
pub struct Tool {
    pub command: &'static str,
    pub package: &'static str,
}

const fn tool(command: &'static str, package: &'static str) -> Tool {
    Tool { command, package }
}

/// What `demo` needs.
pub const DEMO: [Tool; 1] = [tool("curl", "curl")];

/// What the test suite needs: clients (curl, h2load), `promtool`, an OCI registry, and
/// `/usr/bin/time` (peak memory of a process). kubectl and helm come from `tests/cluster`, built
/// at the control plane's release ([`crate::cluster`]).
pub const TEST: [Tool; 5] = [
    tool("curl", "curl"),
    tool("h2load", "nghttp2-client"),
    tool("promtool", "prometheus"),
    tool("docker-registry", "docker-registry"),
    tool("time", "time"),
];

/// What the AssemblyScript plugin's build needs: npm (its packages and `asc` come from npm).
pub const NODE: [Tool; 2] = [tool("node", "nodejs"), tool("npm", "npm")];

/// What the benchmark needs: the peers and the load generators.
pub const BENCH: [Tool; 6] = [
    tool("curl", "curl"),
    tool("h2load", "nghttp2-client"),
    tool("wrk", "wrk"),
    tool("nginx", "nginx"),
    tool("haproxy", "haproxy"),
    tool("taskset", "util-linux"),
];

fn have(command: &str) -> bool {
    let found = |dir: &std::path::Path| dir.join(command).is_file();
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| found(&d)))
        .unwrap_or(false)
        || ["/usr/sbin", "/sbin"]
            .iter()
            .any(|d| found(std::path::Path::new(d)))
}

/// Installs the packages of every missing tool with apt-get (as root, or through sudo).
pub fn ensure(tools: &[Tool]) -> Result<()> {
    let mut missing: Vec<&str> = tools
        .iter()
        .filter(|t| !have(t.command))
        .map(|t| t.package)
        .collect();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("installing missing packages: {}", missing.join(" "));
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false);
    let apt = |args: &[&str]| -> Result<()> {
        let mut cmd = if root {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.arg("apt-get");
            c
        };
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        let status = cmd.status()?;
        if !status.success() {
            bail!("apt-get {} failed with {status}", args.join(" "));
        }
        Ok(())
    };
    apt(&["update", "-qq"])?;
    let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
    install.extend(&missing);
    apt(&install)?;
    if let Some(t) = tools.iter().find(|t| !have(t.command)) {
        bail!(
            "{} is still missing after installing {}",
            t.command,
            t.package
        );
    }
    Ok(())
}

/// Adds the `wasm32-wasip1` target with rustup when the toolchain lacks it.
pub fn ensure_wasm_target() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(crate::root())
        .output()?;
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|l| l.trim() == "wasm32-wasip1")
    {
        return Ok(());
    }
    eprintln!("adding the wasm32-wasip1 target");
    let status = Command::new("rustup")
        .args(["target", "add", "wasm32-wasip1"])
        .current_dir(crate::root())
        .status()?;
    if !status.success() {
        bail!("rustup target add wasm32-wasip1 failed with {status}");
    }
    Ok(())
}
