//! The real `proxlet-operator run` as a process, against a real API server
//! ([`Cluster`](super::cluster::Cluster)).
//!
//! [`Operator::in_namespace`] runs it as its own service account, bound to the Helm chart's
//! RBAC rules and nothing more, watching one test namespace (and holding its Lease there).
//! [`OperatorBuilder::start`] starts it with its module cache in a temporary directory (kept
//! across restarts of the same [`Operator`]), and returns once `GET /readyz` answers 200. Dropping it kills the process and prints the end of its log
//! (shown by the test harness only when the test fails).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tempfile::TempDir;
use tokio::process::{Child, Command};

use crate::support::cluster::Namespace;
use crate::support::{bin, client, registry, wait};

const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How to start the operator.
#[derive(Clone, Debug, Default)]
pub struct OperatorBuilder {
    kubeconfig: PathBuf,
    namespace: String,
    args: Vec<String>,
}

impl OperatorBuilder {
    /// Adds flags to `proxlet-operator run`.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Reaches `registry` over plain HTTP.
    pub fn insecure_registry(self, host: &str) -> Self {
        self.args(["--insecure-registry", host])
    }

    /// Starts the operator and waits until it is ready.
    pub async fn start(self) -> Result<Operator> {
        let mut op = self.prepare()?;
        op.spawn().await?;
        Ok(op)
    }

    /// Starts the operator without waiting for readiness (for start-up failures).
    pub async fn run_to_exit(self, timeout: Duration) -> Result<(ExitStatus, String)> {
        let mut op = self.prepare()?;
        op.launch()?;
        let status = op.wait_exit(timeout).await?;
        Ok((status, op.log()))
    }
}

impl OperatorBuilder {
    fn prepare(self) -> Result<Operator> {
        Ok(Operator {
            child: None,
            admin: registry::free_addr()?,
            plugin_set: registry::free_addr()?,
            dir: tempfile::tempdir()?,
            builder: self,
            starts: 0,
        })
    }
}

/// A running operator.
pub struct Operator {
    child: Option<Child>,
    admin: SocketAddr,
    plugin_set: SocketAddr,
    dir: TempDir,
    builder: OperatorBuilder,
    starts: u32,
}

impl Operator {
    /// An operator authenticated as namespace `ns`'s operator service account (the chart's
    /// RBAC), watching only `ns` and holding its Lease there.
    pub async fn in_namespace(ns: &Namespace<'_>) -> Result<OperatorBuilder> {
        let kubeconfig = ns.operator_kubeconfig().await?;
        Ok(Operator::builder(&kubeconfig, ns.name()))
    }

    /// An operator using `kubeconfig` (whatever identity it holds), watching `namespace`.
    pub fn builder(kubeconfig: &Path, namespace: &str) -> OperatorBuilder {
        OperatorBuilder {
            kubeconfig: kubeconfig.to_path_buf(),
            namespace: namespace.to_owned(),
            args: Vec::new(),
        }
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    /// The plugin-set server's address.
    pub fn plugin_set_addr(&self) -> SocketAddr {
        self.plugin_set
    }

    /// The module cache directory (survives restarts).
    pub fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// `GET path` on the admin port: status and body.
    pub async fn admin_get(&self, path: &str) -> Result<(u16, String)> {
        let reply = client::get(self.admin, path, Duration::from_secs(5)).await?;
        Ok((
            reply.status.as_u16(),
            String::from_utf8_lossy(&reply.body).into_owned(),
        ))
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> Result<String> {
        let (status, body) = self.admin_get("/metrics").await?;
        if status != 200 {
            bail!("/metrics answered {status}");
        }
        Ok(body)
    }

    /// Everything the operator logged, across restarts.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("operator.log")).unwrap_or_default()
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub async fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await.context("killing the operator")?;
        }
        Ok(())
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) -> Result<()> {
        let pid = self
            .child
            .as_ref()
            .and_then(Child::id)
            .context("operator not running")?;
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()?;
        if !status.success() {
            bail!("kill -TERM {pid} failed");
        }
        Ok(())
    }

    /// Waits for the process to exit.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let child = self.child.as_mut().context("operator not running")?;
        let status = tokio::time::timeout(timeout, child.wait())
            .await
            .context("operator still running")??;
        self.child = None;
        Ok(status)
    }

    /// Starts the process again (after [`kill`](Self::kill)) with the same flags and cache.
    pub async fn restart(&mut self) -> Result<()> {
        self.kill().await?;
        self.spawn().await
    }

    async fn spawn(&mut self) -> Result<()> {
        self.launch()?;
        let admin = self.admin;
        let child = self.child.as_mut().context("operator not running")?;
        let ready = wait::readyz(child, admin, READY_TIMEOUT).await;
        match ready {
            Ok(Ok(())) => Ok(()),
            Ok(Err(status)) => bail!(
                "proxlet-operator exited with {status}; log:\n{}",
                self.log()
            ),
            Err(e) => bail!("{e:#}; log:\n{}", self.log()),
        }
    }

    fn launch(&mut self) -> Result<()> {
        self.starts += 1;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("operator.log"))?;
        let child = Command::new(bin::path("proxlet-operator", "PROXLET_OPERATOR_BIN")?)
            .arg("run")
            .args(["--admin", &self.admin.to_string()])
            .args(["--plugin-set-addr", &self.plugin_set.to_string()])
            .arg("--cache-dir")
            .arg(self.cache_dir())
            .args(&self.builder.args)
            .args(["--namespace", &self.builder.namespace])
            .env("KUBECONFIG", &self.builder.kubeconfig)
            .env("POD_NAMESPACE", &self.builder.namespace)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .env("POD_NAME", format!("proxlet-operator-test-{}", self.starts))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting proxlet-operator")?;
        self.child = Some(child);
        Ok(())
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(60)..].join("\n");
        eprintln!("--- proxlet-operator log (last 60 lines) ---\n{tail}\n---");
    }
}
