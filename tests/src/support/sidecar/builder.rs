//! Building a sidecar's command line, configuration file and environment, and starting it.

use std::{
    ffi::OsString,
    net::{SocketAddr, TcpListener},
    path::Path,
    process::{Output, Stdio},
    time::Duration,
};

use anyhow::{Context, Result};
use serde_yaml::Value;
use tokio::process::Command;

use super::{ConfigTree, Sidecar, binary};
use crate::support::{plugins::Plugin, tls::TestCerts};

/// How the listener, admin and upstream addresses reach the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Launch {
    /// A YAML file passed with `--config`.
    File,
    /// `--listen`, `--admin`, `--upstream`, no file.
    Flags,
    /// `PROXLET_LISTEN`, `PROXLET_ADMIN`, `PROXLET_UPSTREAM`, no file.
    Env,
}

/// A sidecar to start.
#[derive(Clone, Debug)]
pub struct SidecarBuilder {
    upstream: SocketAddr,
    config: ConfigTree,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    launch: Launch,
    tls: Option<TestCerts>,
}

impl SidecarBuilder {
    /// A sidecar in front of `upstream`, configured by a file.
    pub fn new(upstream: SocketAddr) -> Self {
        Self {
            upstream,
            config: ConfigTree::default(),
            args: Vec::new(),
            env: vec![("RUST_LOG".into(), "info".into())],
            launch: Launch::File,
            tls: None,
        }
    }

    /// Sets a configuration field by dotted path, e.g. `set("limits.max_connections", 1)`.
    pub fn set(mut self, path: &str, value: impl Into<Value>) -> Self {
        self.config.set(path, value.into());
        self
    }

    /// Adds `plugin` to the file's `plugins:` list (the sidecar orders the chain itself).
    pub fn plugin(mut self, plugin: &Plugin) -> Self {
        self.config.push("plugins", plugin.to_value());
        self
    }

    /// Defines the cluster `name` at `address`, for plugins' HTTP calls (`clusters.NAME`).
    pub fn cluster(self, name: &str, address: SocketAddr) -> Self {
        self.set(&format!("clusters.{name}.address"), address.to_string())
    }

    /// Serves TLS on the listener with `certs` (`listener.tls` in the file, `--tls-cert` and
    /// `--tls-key` with flags, `PROXLET_TLS_CERT` and `PROXLET_TLS_KEY` with the environment).
    pub fn tls(mut self, certs: &TestCerts) -> Self {
        self.tls = Some(certs.clone());
        self
    }

    /// Adds command-line arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for the process.
    pub fn env(mut self, name: &str, value: impl Into<OsString>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Passes the addresses as flags, with no configuration file.
    pub fn flags_only(mut self) -> Self {
        self.launch = Launch::Flags;
        self
    }

    /// Passes the addresses as `PROXLET_*` environment variables, with no configuration file.
    pub fn env_only(mut self) -> Self {
        self.launch = Launch::Env;
        self
    }

    /// Starts the process and waits until it is ready. Retries with other ports when the picked
    /// ones were taken in between.
    pub async fn start(&self) -> Result<Sidecar> {
        let binary = binary()?;
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.try_start(&binary).await? {
                Ok(sidecar) => return Ok(sidecar),
                Err(error) if attempts < 3 => eprintln!("retrying sidecar start: {error:#}"),
                Err(error) => return Err(error),
            }
        }
    }

    /// Starts the process and waits for it to exit by itself, for configurations it must refuse
    /// at start-up. Fails when it is still running after `timeout`. Stdout and stderr are
    /// captured apart.
    pub async fn run_to_exit(&self, timeout: Duration) -> Result<Output> {
        let binary = binary()?;
        let dir = tempfile::tempdir()?;
        let mut command = Command::new(&binary);
        self.launch_args(&mut command, dir.path(), free_port()?, free_port()?)?;
        let child = command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawn {}", binary.display()))?;
        tokio::time::timeout(timeout, child.wait_with_output())
            .await
            .with_context(|| format!("proxlet-sidecar still running after {timeout:?}"))?
            .context("wait for proxlet-sidecar")
    }

    /// `Ok(Err(_))` when the ports were taken (worth a retry), `Err(_)` for any other failure.
    async fn try_start(&self, binary: &Path) -> Result<Result<Sidecar>> {
        let dir = tempfile::tempdir()?;
        let (listen, admin) = (free_port()?, free_port()?);
        let log_path = dir.path().join("sidecar.log");
        let log = std::fs::File::create(&log_path)?;
        let mut command = Command::new(binary);
        self.launch_args(&mut command, dir.path(), listen, admin)?;
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        let child = command
            .spawn()
            .with_context(|| format!("spawn {}", binary.display()))?;
        let pid = child.id().context("sidecar has no pid")?;
        let https = self.tls.is_some();
        let mut sidecar = Sidecar {
            child,
            pid,
            listen,
            admin,
            log_path,
            https,
            _dir: dir,
        };
        match sidecar.wait_ready().await {
            Ok(()) => Ok(Ok(sidecar)),
            Err(error) if port_taken(&sidecar.log()) => Ok(Err(error)),
            Err(error) => Err(error),
        }
    }

    fn launch_args(
        &self,
        command: &mut Command,
        dir: &Path,
        listen: SocketAddr,
        admin: SocketAddr,
    ) -> Result<()> {
        let (listen, admin, upstream) = (
            listen.to_string(),
            admin.to_string(),
            self.upstream.to_string(),
        );
        let tls = self
            .tls
            .as_ref()
            .map(|c| (c.cert.display().to_string(), c.key.display().to_string()));
        match self.launch {
            Launch::File => {
                let mut config = self.config.clone();
                if let Some((cert, key)) = tls {
                    config.set("listener.tls.cert", cert.into());
                    config.set("listener.tls.key", key.into());
                }
                config.set("listener.address", listen.into());
                config.set("admin.address", admin.into());
                if config.get("upstream.address").is_none() {
                    config.set("upstream.address", upstream.into());
                }
                let path = dir.join("config.yaml");
                std::fs::write(&path, config.to_yaml()?)?;
                command.arg("--config").arg(path);
            }
            Launch::Flags => {
                command.args([
                    "--listen",
                    &listen,
                    "--admin",
                    &admin,
                    "--upstream",
                    &upstream,
                ]);
                if let Some((cert, key)) = tls {
                    command.args(["--tls-cert", &cert, "--tls-key", &key]);
                }
            }
            Launch::Env => {
                command
                    .env("PROXLET_LISTEN", listen)
                    .env("PROXLET_ADMIN", admin)
                    .env("PROXLET_UPSTREAM", upstream);
                if let Some((cert, key)) = tls {
                    command
                        .env("PROXLET_TLS_CERT", cert)
                        .env("PROXLET_TLS_KEY", key);
                }
            }
        }
        Ok(())
    }
}

fn free_port() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("bind 127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

fn port_taken(log: &str) -> bool {
    let log = log.to_ascii_lowercase();
    log.contains("address already in use") || log.contains("os error 98")
}
