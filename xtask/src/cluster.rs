//! The Kubernetes control plane and the CLIs the tests drive it with, built from the Go module in
//! `tests/cluster`: `proxlet-cluster` (etcd and the real kube-apiserver), and `kubectl` and `helm`
//! of the same Kubernetes release. They go to `target/go/bin`; Go's module and build caches live
//! in `target/go` too, and the build is skipped while its inputs (the module's files and the Go
//! version) are those of the last build.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::{root, sh};

/// The Go module, from the repository root.
const MODULE: &str = "tests/cluster";

/// The tools, as `(output name, package)`; `.` is the module's own program.
const TOOLS: [(&str, &str); 3] = [
    ("proxlet-cluster", "."),
    ("kubectl", "k8s.io/kubernetes/cmd/kubectl"),
    ("helm", "helm.sh/helm/v4/cmd/helm"),
];

/// `target/go`: caches and binaries.
pub fn go_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
        .join("go")
}

/// A `go` command whose module and build caches are under `target/go`, using the machine's Go
/// as it is (no toolchain download).
pub fn go() -> Command {
    let dir = go_dir();
    let mut cmd = Command::new("go");
    cmd.env("GOMODCACHE", dir.join("mod"))
        .env("GOCACHE", dir.join("cache"))
        // Writable module files, so that `cargo clean` can remove them.
        .env("GOFLAGS", "-modcacherw -trimpath")
        .env("GOTOOLCHAIN", "local")
        .env("CGO_ENABLED", "0");
    cmd
}

/// Builds the tools unless the last build had the same inputs.
pub fn build() -> Result<()> {
    let module = root().join(MODULE);
    let bin = go_dir().join("bin");
    let stamp = bin.join(".inputs");
    let inputs = fingerprint(&module)?;
    let built = TOOLS.iter().all(|(name, _)| bin.join(name).is_file());
    if built && std::fs::read_to_string(&stamp).is_ok_and(|s| s == inputs) {
        eprintln!("{MODULE}: the control plane, kubectl and helm are up to date");
        return Ok(());
    }
    std::fs::create_dir_all(&bin)?;
    let kube = module_version(&module, "k8s.io/kubernetes")?;
    let helm = module_version(&module, "helm.sh/helm/v4")?;
    let started = std::time::Instant::now();
    for (name, package) in TOOLS {
        let ldflags = if package.starts_with("helm.sh/") {
            helm_ldflags(&helm)
        } else {
            kube_ldflags(&kube)?
        };
        sh(go()
            .args(["build", "-ldflags", &ldflags, "-o"])
            .arg(bin.join(name))
            .arg(package)
            .current_dir(&module))?;
    }
    eprintln!(
        "{MODULE}: built Kubernetes {kube} and helm {helm} in {:.0?}",
        started.elapsed()
    );
    std::fs::write(&stamp, inputs).context("writing the build stamp")
}

/// What the build depends on: the Go version and every file of the module.
fn fingerprint(module: &Path) -> Result<String> {
    let version = Command::new("go")
        .arg("version")
        .env("GOTOOLCHAIN", "local")
        .output()
        .context("running `go version`: Go is needed to build the test control plane")?;
    if !version.status.success() {
        bail!("`go version` failed");
    }
    let mut hash = Sha256::new();
    hash.update(&version.stdout);
    let mut files: Vec<PathBuf> = std::fs::read_dir(module)?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    files.sort();
    for file in files.iter().filter(|f| f.is_file()) {
        hash.update(file.to_string_lossy().as_bytes());
        hash.update(std::fs::read(file)?);
    }
    Ok(format!("{:x}\n", hash.finalize()))
}

/// The version of `path` the module requires (`go list -m`).
fn module_version(module: &Path, path: &str) -> Result<String> {
    let out = go()
        .args(["list", "-m", "-f", "{{.Version}}", path])
        .current_dir(module)
        .output()
        .with_context(|| format!("go list -m {path}"))?;
    if !out.status.success() {
        bail!(
            "go list -m {path} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The version stamps Kubernetes' own build sets, so that `kubectl version`, the API server's
/// `/version` and Helm's `kubeVersion` checks see the real release.
fn kube_ldflags(version: &str) -> Result<String> {
    let mut parts = version.trim_start_matches('v').split('.');
    let (major, minor) = match (parts.next(), parts.next()) {
        (Some(major), Some(minor)) => (major, minor),
        _ => bail!("unexpected Kubernetes version {version:?}"),
    };
    let mut flags = vec!["-s".to_owned(), "-w".to_owned()];
    for (key, value) in [
        ("gitVersion", version),
        ("gitMajor", major),
        ("gitMinor", minor),
        ("gitTreeState", "clean"),
        ("buildDate", "1970-01-01T00:00:00Z"),
    ] {
        for package in [
            "k8s.io/component-base/version",
            "k8s.io/client-go/pkg/version",
        ] {
            flags.push(format!("-X {package}.{key}={value}"));
        }
    }
    Ok(flags.join(" "))
}

fn helm_ldflags(version: &str) -> String {
    format!(
        "-s -w -X helm.sh/helm/v4/internal/version.version={version} \
         -X helm.sh/helm/v4/internal/version.gitTreeState=clean"
    )
}
