//! The Kubernetes API test server (`kube-test-server`, from `tests/kube-server`) as a process,
//! and the real `kubectl` pointed at it.
//!
//! The server listens on a loopback port it picks, writes a kubeconfig into a temporary
//! directory, and stops when its stdin closes: dropping [`KubeServer`] closes it (and kills the
//! process for good measure).

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

use crate::support::bin;

const START_TIMEOUT: Duration = Duration::from_secs(20);
const KUBECTL_TIMEOUT: Duration = Duration::from_secs(60);

/// A running API server; stops when dropped.
pub struct KubeServer {
    child: Child,
    _stdin: ChildStdin,
    url: String,
    dir: TempDir,
}

impl KubeServer {
    /// Starts a server with no resources but the built-in ones.
    pub async fn start() -> Result<Self> {
        Self::start_with(&[]).await
    }

    /// Starts a server with extra flags, e.g. `["--forbid", "list:proxyplugins"]`.
    pub async fn start_with(flags: &[&str]) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let kubeconfig = dir.path().join("kubeconfig");
        let log = std::fs::File::create(dir.path().join("server.log"))?;
        let mut child = Command::new(bin::path("kube-test-server", "PROXLET_KUBE_SERVER_BIN")?)
            .args(["--listen", "127.0.0.1:0", "--kubeconfig"])
            .arg(&kubeconfig)
            .args(flags)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting kube-test-server")?;
        let stdin = child.stdin.take().context("server stdin")?;
        let stdout = child.stdout.take().context("server stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(START_TIMEOUT, lines.next_line())
            .await
            .context("kube-test-server did not announce its address")??
            .context("kube-test-server exited before it listened")?;
        let url = line
            .strip_prefix("listening on ")
            .with_context(|| format!("unexpected first line {line:?}"))?
            .to_owned();
        Ok(Self {
            child,
            _stdin: stdin,
            url,
            dir,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The kubeconfig the server wrote (for kubectl and for the operator's `KUBECONFIG`).
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// The server's own log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Runs `kubectl ARGS` against the server; the output whatever the exit status.
    pub async fn kubectl(&self, args: &[&str]) -> Result<Output> {
        self.kubectl_input(args, None).await
    }

    /// Runs `kubectl ARGS`, failing with its stderr unless it succeeds; returns stdout.
    pub async fn kubectl_ok(&self, args: &[&str]) -> Result<String> {
        let out = self.kubectl(args).await?;
        ensure!(
            out.status.success(),
            "kubectl {} failed ({}): {}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout),
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `kubectl apply -f -` with `yaml` on stdin; the output whatever the exit status.
    pub async fn apply(&self, yaml: &str) -> Result<Output> {
        self.kubectl_input(&["apply", "-f", "-"], Some(yaml)).await
    }

    /// `kubectl apply -f -`, failing unless it succeeds.
    pub async fn apply_ok(&self, yaml: &str) -> Result<String> {
        let out = self.apply(yaml).await?;
        if !out.status.success() {
            bail!(
                "kubectl apply failed ({}): {}\n{yaml}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `kubectl apply -f crds/`: the repository's generated CRDs, as a user installs them.
    pub async fn install_crds(&self) -> Result<()> {
        let dir = bin::repo_root().join("crds");
        let dir = dir.to_str().context("crds path is not UTF-8")?;
        self.kubectl_ok(&["apply", "-f", dir]).await?;
        self.kubectl_ok(&[
            "wait",
            "--for=condition=Established",
            "crd/proxyplugins.proxlet.dev",
            "--timeout=20s",
        ])
        .await?;
        Ok(())
    }

    async fn kubectl_input(&self, args: &[&str], input: Option<&str>) -> Result<Output> {
        let mut cmd = Command::new("kubectl");
        cmd.args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .env("HOME", self.dir.path())
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().context("running kubectl (is it installed?)")?;
        if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin.write_all(text.as_bytes()).await?;
        }
        tokio::time::timeout(KUBECTL_TIMEOUT, child.wait_with_output())
            .await
            .with_context(|| format!("kubectl {} did not finish", args.join(" ")))?
            .context("kubectl")
    }

    /// The kubeconfig's directory (a scratch place that lives as long as the server).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for KubeServer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
