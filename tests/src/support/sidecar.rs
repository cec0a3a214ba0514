//! Launching the real `proxlet-sidecar` binary.
//!
//! The binary is `$PROXLET_SIDECAR_BIN` or, by default, `proxlet-sidecar` in the cargo target
//! directory the test executable was built into (`target/<profile>/`). The tests do not build it:
//! `cargo build -p proxlet-sidecar` (or `cargo xtask test`) must have run first.
//!
//! [`SidecarBuilder::start`] writes the configuration into a temporary directory, starts the
//! process with its output captured in a log file there, and returns once `GET /readyz` on the
//! admin port answers 200. Dropping the [`Sidecar`] kills the process and prints the end of its
//! log (shown by the test harness only when the test fails).

mod builder;
mod config;

use std::{
    ffi::OsString,
    net::SocketAddr,
    path::PathBuf,
    process::{ExitStatus, Output, Stdio},
    time::Duration,
};

use anyhow::{Context, Result, bail, ensure};
use tempfile::TempDir;
use tokio::process::{Child, Command};

pub use self::{builder::SidecarBuilder, config::ConfigTree};
use crate::support::{
    client::{self, Reply},
    wait,
};

const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// The path of the sidecar binary, or an error saying how to build it.
pub fn binary() -> Result<PathBuf> {
    crate::support::bin::path("proxlet-sidecar", "PROXLET_SIDECAR_BIN")
}

/// Runs the binary with `args` until it exits (for `--version` and configuration errors).
pub async fn run_once<I, S>(args: I, timeout: Duration) -> Result<Output>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let child = Command::new(binary()?)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("spawn proxlet-sidecar")?;
    tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .with_context(|| format!("proxlet-sidecar {args:?} still running after {timeout:?}"))?
        .context("wait for proxlet-sidecar")
}

/// Memory figures from `/proc/PID/status`, in KiB.
#[derive(Clone, Copy, Debug)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss_kib: u64,
    /// `VmHWM`: peak resident since start.
    pub peak_kib: u64,
}

/// A running sidecar; killed when dropped.
#[derive(Debug)]
pub struct Sidecar {
    child: Child,
    pid: u32,
    listen: SocketAddr,
    admin: SocketAddr,
    log_path: PathBuf,
    https: bool,
    _dir: TempDir,
}

impl Sidecar {
    /// A sidecar in front of `upstream`; see [`SidecarBuilder`].
    pub fn builder(upstream: SocketAddr) -> SidecarBuilder {
        SidecarBuilder::new(upstream)
    }

    /// The proxy listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.listen
    }

    /// The admin server's address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// `http://127.0.0.1:PORT{path}` (or `https://` with TLS) on the proxy listener.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.listen)
    }

    /// A GET on the admin port.
    pub async fn admin_get(&self, path: &str) -> Result<Reply> {
        client::get(self.admin, path, Duration::from_secs(5)).await
    }

    /// The status of `GET /readyz`.
    pub async fn readyz(&self) -> Result<u16> {
        Ok(self.admin_get("/readyz").await?.status.as_u16())
    }

    /// The text of `GET /metrics`.
    pub async fn metrics(&self) -> Result<String> {
        let reply = self.admin_get("/metrics").await?;
        ensure!(
            reply.status == 200,
            "GET /metrics answered {}: {}",
            reply.status,
            reply.text()
        );
        Ok(reply.text())
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) -> Result<()> {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()?;
        ensure!(status.success(), "kill -TERM {} failed: {status}", self.pid);
        Ok(())
    }

    /// Waits for the process to exit.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => bail!(
                "sidecar still running {timeout:?} later; log:\n{}",
                self.log_tail(40)
            ),
        }
    }

    /// The process's exit status, if it has exited.
    pub fn try_exit(&mut self) -> Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// Everything the process wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Current and peak resident memory of the process.
    pub fn memory(&self) -> Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .with_context(|| format!("read /proc/{}/status", self.pid))?;
        let field = |name: &str| -> Result<u64> {
            let line = status
                .lines()
                .find(|l| l.starts_with(name))
                .with_context(|| format!("no {name}"))?;
            let kib = line
                .split_whitespace()
                .nth(1)
                .with_context(|| format!("bad line {line:?}"))?;
            Ok(kib.parse()?)
        };
        Ok(Memory {
            rss_kib: field("VmRSS:")?,
            peak_kib: field("VmHWM:")?,
        })
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let admin = self.admin;
        let child = &mut self.child;
        let log_path = self.log_path.clone();
        let ready = wait::readyz(child, admin, READY_TIMEOUT).await;
        match ready {
            Ok(Ok(())) => Ok(()),
            Ok(Err(status)) => {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                bail!("proxlet-sidecar exited with {status} before it was ready; log:\n{log}")
            }
            Err(error) => bail!("{error:#}; log:\n{}", self.log_tail(40)),
        }
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        eprintln!(
            "--- proxlet-sidecar pid {} log ---\n{}\n---",
            self.pid,
            log_excerpt(&self.log())
        );
    }
}

/// The log for a failure message: whole when short, else every panic message, the first lines
/// and the last lines.
fn log_excerpt(log: &str) -> String {
    const HEAD: usize = 40;
    const TAIL: usize = 40;
    let lines: Vec<&str> = log.lines().collect();
    if lines.len() <= HEAD + TAIL {
        return log.to_owned();
    }
    let panics = lines
        .iter()
        .enumerate()
        .filter(|(_, line)| line.contains("panicked at"))
        .flat_map(|(i, _)| lines[i..(i + 2).min(lines.len())].iter().copied());
    let mut out: Vec<&str> = lines[..HEAD].to_vec();
    out.push("[…]");
    out.extend(panics);
    out.push("[…]");
    out.extend_from_slice(&lines[lines.len() - TAIL..]);
    out.join("\n")
}
