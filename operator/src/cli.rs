//! The command line: `proxlet-operator <run|fetch|publish>`.
//!
//! - `run`: the operator itself (controller, plugin-set server, webhook);
//! - `fetch IMAGE`: runs the module pipeline once, as the operator would for a `ProxyPlugin`
//!   with this image, and prints what it resolved to as JSON: a plugin author's check;
//! - `publish FILE IMAGE`: pushes a module in one of the layouts the operator reads, with the
//!   user's registry credentials (`$REGISTRY_AUTH_FILE`, `$DOCKER_CONFIG/config.json` or
//!   `~/.docker/config.json`).
//!
//! A failure is one line, `<Reason>: <message>`, with the reason a `ProxyPlugin` would show.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};
use proxlet_crds::{ArtifactFormat, Digest, PullPolicy};
use serde::Serialize;

use crate::fetch::Credentials;
use crate::pipeline::{ModuleRequest, Pipeline, PipelineConfig, PipelineError, PullSecret};
use crate::publish::{self, Layout, PublishRequest, Published};

/// The proxlet operator.
#[derive(Debug, Parser)]
#[command(name = "proxlet-operator", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the operator: reconcile ProxyPlugins and serve plugin sets to sidecars.
    Run(RunArgs),
    /// Fetch, verify and validate one module as the operator would, and print the result.
    Fetch(FetchArgs),
    /// Push a Wasm module to an OCI registry.
    Publish(PublishArgs),
}

pub use crate::run::RunArgs;

/// Where modules are cached and what the pipeline accepts (`run` and `fetch`).
#[derive(Debug, Args)]
pub struct PipelineArgs {
    /// The module cache (default: `$XDG_CACHE_HOME/proxlet/modules` or `~/.cache/proxlet/modules`).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// The cache's bound, in bytes or with a Ki/Mi/Gi suffix.
    #[arg(long, value_parser = parse_size, default_value = "1Gi")]
    pub cache_max_bytes: u64,
    /// The largest module accepted, in bytes or with a Ki/Mi/Gi suffix.
    #[arg(long, value_parser = parse_size, default_value = "64Mi")]
    pub max_module_bytes: u64,
    /// A registry (`HOST[:PORT]`) reached over plain HTTP; repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registries: Vec<String>,
    /// A PEM file of CA certificates trusted for registries; repeatable.
    #[arg(long = "registry-ca", value_name = "FILE")]
    pub registry_ca: Vec<PathBuf>,
}

impl PipelineArgs {
    /// The pipeline's configuration, reading the CA files.
    pub fn config(&self) -> Result<PipelineConfig, CommandError> {
        let cache_dir = match &self.cache_dir {
            Some(dir) => dir.clone(),
            None => default_cache_dir()?,
        };
        let mut config = PipelineConfig::new(cache_dir);
        config.cache_max_bytes = self.cache_max_bytes;
        config.max_module_bytes = self.max_module_bytes;
        config.insecure_registries = self.insecure_registries.clone();
        config.extra_roots_pem = self
            .registry_ca
            .iter()
            .map(|p| read(p))
            .collect::<Result<_, _>>()?;
        Ok(config)
    }
}

/// Flags of `fetch`.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// `oci://registry/repo:tag`, `oci://…@sha256:…`, `https://…` (with --sha256) or `file:///…`.
    pub image: String,
    /// The expected SHA-256 of the module (64 hex digits).
    #[arg(long)]
    pub sha256: Option<String>,
    /// `IfNotPresent` answers from the cache when it can; `Always` resolves the reference again.
    #[arg(long, value_enum, default_value_t = Policy::IfNotPresent)]
    pub pull_policy: Policy,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// A `.dockerconfigjson` file (the data of an image pull secret) with registry credentials.
    #[arg(long, value_name = "FILE")]
    pub pull_secret: Option<PathBuf>,
}

/// `--pull-policy` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "verbatim")]
pub enum Policy {
    IfNotPresent,
    Always,
}

/// Flags of `publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The module to push.
    pub file: PathBuf,
    /// Where: `oci://registry/repo:tag`.
    pub image: String,
    /// Talk plain HTTP to the registry.
    #[arg(long)]
    pub insecure: bool,
    /// A PEM file of CA certificates trusted for the registry; repeatable.
    #[arg(long = "registry-ca", value_name = "FILE")]
    pub registry_ca: Vec<PathBuf>,
    /// The layout to push in.
    #[arg(long, value_enum, default_value_t = Format::Cncf)]
    pub format: Format,
}

/// `--format` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Cncf,
    Solo,
    Compat,
}

/// What `fetch` prints.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FetchReport {
    pub digest: Digest,
    pub size: u64,
    pub format: ArtifactFormat,
    pub abi: &'static str,
    /// True when served from the cache without a download.
    pub cached: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<String>,
}

/// A failed command: a pipeline reason, or a local problem (a file that cannot be read).
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{reason}: {error}", reason = .0.reason(), error = .0)]
    Pipeline(#[from] PipelineError),
    #[error("{0}")]
    Local(String),
}

impl FetchArgs {
    /// Runs the pipeline once.
    pub async fn run(self) -> Result<FetchReport, CommandError> {
        let config = self.pipeline.config()?;
        let pull_secret = self.pull_secret.as_deref().map(read_secret).transpose()?;
        let pipeline = Pipeline::new(config).map_err(|e| CommandError::Local(e.to_string()))?;
        let resolved = pipeline
            .resolve(&ModuleRequest {
                image: self.image,
                sha256: self.sha256,
                pull_policy: match self.pull_policy {
                    Policy::IfNotPresent => PullPolicy::IfNotPresent,
                    Policy::Always => PullPolicy::Always,
                },
                pull_secret,
            })
            .await?;
        Ok(FetchReport {
            digest: resolved.digest,
            size: resolved.size,
            format: resolved.format,
            abi: resolved.abi.label(),
            cached: !resolved.pulled,
            manifest_digest: resolved.manifest_digest,
        })
    }
}

impl PublishArgs {
    /// Pushes the module.
    pub async fn run(self) -> Result<Published, CommandError> {
        let module = read(&self.file)?;
        let credentials = Credentials::from_user_config().map_err(CommandError::Local)?;
        let file_name = self
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let layout = match self.format {
            Format::Cncf => Layout::Cncf,
            Format::Solo => Layout::Solo,
            Format::Compat => Layout::Compat,
        };
        Ok(publish::publish(PublishRequest {
            module,
            file_name,
            image: self.image,
            layout,
            insecure: self.insecure,
            extra_roots_pem: self
                .registry_ca
                .iter()
                .map(|p| read(p))
                .collect::<Result<_, _>>()?,
            credentials,
        })
        .await?)
    }
}

fn read(path: &Path) -> Result<Vec<u8>, CommandError> {
    std::fs::read(path).map_err(|e| CommandError::Local(format!("{}: {e}", path.display())))
}

fn read_secret(path: &Path) -> Result<PullSecret, CommandError> {
    let name = path.display().to_string();
    match std::fs::read(path) {
        Ok(dockerconfigjson) => Ok(PullSecret {
            name,
            dockerconfigjson,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(PipelineError::PullSecretMissing { name }.into())
        }
        Err(e) => Err(CommandError::Local(format!("{name}: {e}"))),
    }
}

fn default_cache_dir() -> Result<PathBuf, CommandError> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .ok_or_else(|| {
            CommandError::Local("no --cache-dir, and neither XDG_CACHE_HOME nor HOME is set".into())
        })?;
    Ok(base.join("proxlet/modules"))
}

/// A size flag: bytes or a quantity such as `64Mi` (the one grammar, [`proxlet_crds::quantity`]).
pub fn parse_size(text: &str) -> Result<u64, String> {
    proxlet_crds::quantity::parse_bytes(text).map_err(|e| e.to_string())
}

/// A duration flag such as `5m` or `15s` (the one grammar, [`proxlet_crds::quantity`]).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    proxlet_crds::quantity::parse_duration(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("64Mi"), Ok(64 << 20));
        assert_eq!(parse_size("1Gi"), Ok(1 << 30));
        assert!(parse_size("1GB").is_err());
        assert!(parse_size("Mi").is_err());
    }

    #[test]
    fn subcommands_parse() {
        let cli = Cli::try_parse_from([
            "proxlet-operator",
            "fetch",
            "oci://r:5000/p:v1",
            "--insecure-registry",
            "r:5000",
            "--pull-policy",
            "Always",
        ])
        .unwrap();
        let Command::Fetch(args) = cli.command else {
            panic!("fetch")
        };
        assert_eq!(args.pipeline.insecure_registries, ["r:5000"]);
        assert_eq!(args.pull_policy, Policy::Always);
        let cli = Cli::try_parse_from([
            "proxlet-operator",
            "publish",
            "p.wasm",
            "oci://r/p:v1",
            "--format",
            "compat",
        ]);
        assert!(matches!(
            cli.map(|c| c.command),
            Ok(Command::Publish(PublishArgs {
                format: Format::Compat,
                ..
            }))
        ));
    }
}
