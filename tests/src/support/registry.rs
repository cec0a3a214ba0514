//! A real OCI registry for tests: Debian's `docker-registry` (distribution 2.8) on 127.0.0.1
//! with a configuration written here (filesystem storage in a temporary directory; optionally
//! htpasswd auth with a bcrypt hash made here, and TLS with a self-signed certificate). It is
//! ready when `GET /v2/` answers, and stops when dropped (or [`Registry::stop`]ped).
//!
//! [`Registry::push_raw`] pushes hand-made manifests and blobs over the registry's HTTP API with
//! the test's own client, for artifacts the operator's `publish` would never make.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use base64::Engine as _;
use http::{Method, Request, header};
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use tokio::process::{Child, Command};

use crate::support::{body, client::Connection, tls::TestCerts, wait};

const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// How to start the registry.
#[derive(Clone, Debug, Default)]
pub struct RegistryBuilder {
    htpasswd: Option<(String, String)>,
    tls: bool,
}

impl RegistryBuilder {
    /// Require this user and password (htpasswd, bcrypt).
    pub fn htpasswd(mut self, user: &str, password: &str) -> Self {
        self.htpasswd = Some((user.to_owned(), password.to_owned()));
        self
    }

    /// Serve HTTPS with a fresh self-signed certificate ([`Registry::ca`]).
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Starts the registry and waits until it answers.
    pub async fn start(self) -> Result<Registry> {
        let dir = tempfile::tempdir().context("registry temp dir")?;
        let addr = free_addr()?;
        let certs = if self.tls {
            Some(TestCerts::generate(dir.path())?)
        } else {
            None
        };
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  \
             delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display()
        );
        if let Some(certs) = &certs {
            config += &format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                certs.cert.display(),
                certs.key.display()
            );
        }
        if let Some((user, password)) = &self.htpasswd {
            let hash = bcrypt::hash(password, 4).context("bcrypt")?;
            let path = dir.path().join("htpasswd");
            std::fs::write(&path, format!("{user}:{hash}\n"))?;
            config += &format!(
                "auth:\n  htpasswd:\n    realm: proxlet-test\n    path: {}\n",
                path.display()
            );
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config)?;
        let log = std::fs::File::create(dir.path().join("registry.log"))?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context(
                "spawn docker-registry (apt-get install docker-registry, or cargo xtask test)",
            )?;
        let mut registry = Registry {
            child,
            addr,
            auth: self.htpasswd,
            ca: certs.map(|c| c.cert),
            dir,
        };
        registry.wait_ready().await?;
        Ok(registry)
    }
}

/// A running registry; killed when dropped.
#[derive(Debug)]
pub struct Registry {
    child: Child,
    addr: SocketAddr,
    auth: Option<(String, String)>,
    ca: Option<PathBuf>,
    dir: TempDir,
}

impl Registry {
    /// An anonymous plain-HTTP registry.
    pub async fn start() -> Result<Self> {
        RegistryBuilder::default().start().await
    }

    pub fn builder() -> RegistryBuilder {
        RegistryBuilder::default()
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `oci://127.0.0.1:PORT/{name}`.
    pub fn image(&self, name: &str) -> String {
        format!("oci://{}/{name}", self.addr)
    }

    /// The CA certificate (PEM file) of a TLS registry.
    pub fn ca(&self) -> Option<&PathBuf> {
        self.ca.as_ref()
    }

    /// The registry's storage directory (`docker/registry/v2/…` below it).
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The registry's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Stops the registry and waits for it to exit.
    pub async fn stop(mut self) -> Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }

    /// Pushes `blobs` and then `manifest` (its media type taken from its `mediaType`) under
    /// `repo:tag`, over plain HTTP with the registry's credentials; returns the manifest digest.
    pub async fn push_raw(
        &self,
        repo: &str,
        tag: &str,
        blobs: &[&[u8]],
        manifest: &serde_json::Value,
    ) -> Result<String> {
        ensure!(self.ca.is_none(), "push_raw speaks plain HTTP only");
        for blob in blobs {
            self.push_blob(repo, blob).await?;
        }
        let json = serde_json::to_vec(manifest)?;
        let media_type = manifest["mediaType"]
            .as_str()
            .unwrap_or("application/vnd.oci.image.manifest.v1+json");
        let request = self
            .request(Method::PUT, &format!("/v2/{repo}/manifests/{tag}"))
            .header(header::CONTENT_TYPE, media_type)
            .body(body::full(json.clone()))?;
        let reply = Connection::http1(self.addr).await?.send(request).await?;
        ensure!(
            reply.status == 201,
            "PUT manifest: {} {}",
            reply.status,
            reply.text()
        );
        Ok(digest(&json))
    }

    async fn push_blob(&self, repo: &str, blob: &[u8]) -> Result<()> {
        let start = self
            .request(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
            .body(body::empty())?;
        let reply = Connection::http1(self.addr).await?.send(start).await?;
        ensure!(
            reply.status == 202,
            "start upload: {} {}",
            reply.status,
            reply.text()
        );
        let location = reply.header("location").context("no Location")?.to_owned();
        let path = location
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_owned()))
            .unwrap_or(location);
        let separator = if path.contains('?') { '&' } else { '?' };
        let put = self
            .request(
                Method::PUT,
                &format!("{path}{separator}digest={}", digest(blob)),
            )
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(body::full(blob.to_vec()))?;
        let reply = Connection::http1(self.addr).await?.send(put).await?;
        ensure!(
            reply.status == 201,
            "finish upload: {} {}",
            reply.status,
            reply.text()
        );
        Ok(())
    }

    fn request(&self, method: Method, path: &str) -> http::request::Builder {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, self.host());
        if let Some((user, password)) = &self.auth {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            builder = builder.header(header::AUTHORIZATION, format!("Basic {token}"));
        }
        builder
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let addr = self.addr;
        let child = &mut self.child;
        let tls = self.ca.is_some();
        let ready = wait::until("the registry to accept connections", READY_TIMEOUT, || {
            let exited = child.try_wait().ok().flatten();
            async move {
                if let Some(status) = exited {
                    return Some(Err(status));
                }
                if tls {
                    // A TLS listener: accepting a TCP connection is enough.
                    return tokio::net::TcpStream::connect(addr)
                        .await
                        .ok()
                        .map(|_| Ok(()));
                }
                let reply = crate::support::client::get(addr, "/v2/", Duration::from_secs(1))
                    .await
                    .ok()?;
                matches!(reply.status.as_u16(), 200 | 401).then_some(Ok(()))
            }
        })
        .await;
        match ready {
            Ok(Ok(())) => Ok(()),
            Ok(Err(status)) => bail!("docker-registry exited with {status}; log:\n{}", self.log()),
            Err(e) => bail!("{e:#}; log:\n{}", self.log()),
        }
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A loopback address nothing listens on (bound and released).
pub fn free_addr() -> Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}
