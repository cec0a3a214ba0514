//! The operator's module pipeline against a real registry (Debian's `docker-registry`), driven
//! through the real `proxlet-operator fetch` and `publish` commands: the three layouts, auth,
//! every failure reason a user can meet, the cache (hits, restarts, the bound), `https://` and
//! `file://` sources, and a tar bomb that must not cost memory or disk.
//!
//! `proxlet-operator` is `$PROXLET_OPERATOR_BIN` or the binary beside the test executable's
//! target directory (`cargo build -p proxlet-operator` first); the modules are the example
//! plugins (`cargo xtask plugins`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use proxlet_tests::support::registry::{Registry, digest, free_addr};
use proxlet_tests::support::{bin, plugins};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::process::Command;

#[path = "operator_fetch/cache.rs"]
mod cache;
#[path = "operator_fetch/content.rs"]
mod content;
#[path = "operator_fetch/registry.rs"]
mod registry;
#[path = "operator_fetch/sources.rs"]
mod sources;

/// The `proxlet-operator` binary.
fn binary() -> Result<PathBuf> {
    bin::path("proxlet-operator", "PROXLET_OPERATOR_BIN")
}

/// What one command run printed.
#[derive(Debug)]
pub struct Run {
    pub ok: Option<Value>,
    pub stderr: String,
}

impl Run {
    /// The JSON printed on success, or an error with what went wrong.
    pub fn json(&self) -> Result<&Value> {
        self.ok
            .as_ref()
            .with_context(|| format!("command failed: {}", self.stderr))
    }

    /// The reason of the `error: <Reason>: <message>` line.
    pub fn reason(&self) -> Result<&str> {
        ensure!(self.ok.is_none(), "command succeeded: {:?}", self.ok);
        let line = self
            .stderr
            .lines()
            .find_map(|l| l.strip_prefix("error: "))
            .with_context(|| format!("no error line in {:?}", self.stderr))?;
        Ok(line.split(':').next().unwrap_or_default())
    }

    /// Asserts the reason and that the message contains `words`.
    pub fn fails_with(&self, reason: &str, words: &str) -> Result<()> {
        ensure!(
            self.reason()? == reason,
            "expected {reason}, got: {}",
            self.stderr
        );
        ensure!(
            self.stderr.contains(words),
            "expected {words:?} in: {}",
            self.stderr
        );
        Ok(())
    }
}

/// A workspace for one test: a module cache and an empty Docker config directory.
pub struct Op {
    pub cache: TempDir,
    docker: TempDir,
}

impl Op {
    pub fn new() -> Result<Self> {
        Ok(Self {
            cache: tempfile::tempdir()?,
            docker: tempfile::tempdir()?,
        })
    }

    /// Writes the Docker config `publish` reads (`$DOCKER_CONFIG/config.json`).
    pub fn login(&self, registry: &str, user: &str, password: &str) -> Result<()> {
        std::fs::write(
            self.docker.path().join("config.json"),
            dockerconfigjson(registry, user, password).to_string(),
        )?;
        Ok(())
    }

    /// `proxlet-operator ARGS`, with a timeout.
    pub async fn run(&self, args: &[&str]) -> Result<Run> {
        self.run_with(Command::new(binary()?).args(args)).await
    }

    pub async fn run_with(&self, command: &mut Command) -> Result<Run> {
        let child = command
            .env("DOCKER_CONFIG", self.docker.path())
            .env_remove("REGISTRY_AUTH_FILE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .context("proxlet-operator still running after 60s")??;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let ok = match out.status.success() {
            true => {
                Some(serde_json::from_str(stdout.trim()).with_context(|| format!("{stdout:?}"))?)
            }
            false => None,
        };
        Ok(Run {
            ok,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// `publish FILE IMAGE --insecure --format FORMAT`.
    pub async fn publish(&self, file: &Path, image: &str, format: &str) -> Result<Run> {
        let file = file.to_string_lossy();
        self.run(&["publish", &file, image, "--insecure", "--format", format])
            .await
    }

    /// `fetch IMAGE --cache-dir … EXTRA…`.
    pub async fn fetch(&self, image: &str, extra: &[&str]) -> Result<Run> {
        let cache = self.cache.path().to_string_lossy().into_owned();
        let mut args = vec!["fetch", image, "--cache-dir", &cache];
        args.extend_from_slice(extra);
        self.run(&args).await
    }

    /// `fetch` from an insecure `registry`.
    pub async fn fetch_from(
        &self,
        registry: &Registry,
        image: &str,
        extra: &[&str],
    ) -> Result<Run> {
        let host = registry.host();
        let mut args = vec!["--insecure-registry", host.as_str()];
        args.extend_from_slice(extra);
        self.fetch(image, &args).await
    }

    /// The modules in the cache directory, by file name.
    pub fn cached(&self) -> Result<Vec<String>> {
        let dir = self.cache.path().join("sha256");
        let mut names = Vec::new();
        if dir.exists() {
            for entry in std::fs::read_dir(dir)? {
                names.push(entry?.file_name().to_string_lossy().into_owned());
            }
        }
        names.sort();
        Ok(names)
    }
}

/// A `.dockerconfigjson` document with one registry's credentials.
pub fn dockerconfigjson(registry: &str, user: &str, password: &str) -> Value {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    json!({ "auths": { registry: { "auth": auth } } })
}

/// An example plugin module and its bytes.
pub fn module(name: &str) -> Result<(PathBuf, Vec<u8>)> {
    let path = plugins::wasm(name)?;
    let bytes = std::fs::read(&path)?;
    Ok((path, bytes))
}

/// The cache file name of `bytes`.
pub fn cache_name(bytes: &[u8]) -> String {
    format!("{}.wasm", digest(bytes).trim_start_matches("sha256:"))
}

/// A loopback `host:port` where nothing listens.
pub fn dead_host() -> Result<String> {
    Ok(free_addr()?.to_string())
}
