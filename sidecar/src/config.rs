//! Configuration: the YAML file and command-line flags, in two stages.
//!
//! [`raw`] holds the serde structs exactly as a user writes them (unknown fields are errors,
//! every default documented there). [`Config::build`] merges flags over the file and turns the
//! result into validated values of real types; every error names the field it is about, so a bad
//! file stops start-up with a message a user can act on.

mod cli;
pub mod plugins;
pub mod raw;

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use cli::{Cli, plugin_flags};
pub use raw::{LogFormat, UpstreamProtocol};

/// A configuration error: which field, and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// serde_yaml names the path of the field (`upstream.protocol: unknown variant …`).
    #[error("{0}")]
    Parse(#[from] serde_yaml::Error),
    #[error("plugins[{index}].{field}: {message}")]
    Plugin {
        index: usize,
        field: &'static str,
        message: String,
    },
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

impl ConfigError {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }
}

/// The validated configuration the sidecar runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub admin: SocketAddr,
    pub listener: ListenerConfig,
    pub upstream: UpstreamConfig,
    pub limits: Limits,
    pub forwarded: raw::Forwarded,
    pub grace_period: Duration,
    pub log_format: LogFormat,
    pub workers: NonZeroUsize,
    pub plugins: Vec<plugins::PluginEntry>,
    pub clusters: std::collections::BTreeMap<String, plugins::ClusterEntry>,
    pub module_cache_dir: Option<PathBuf>,
    pub plugin_metrics: plugins::PluginMetrics,
}

#[derive(Debug, Clone)]
pub struct ListenerConfig {
    pub address: SocketAddr,
    pub tls: Option<TlsFiles>,
}

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub address: SocketAddr,
    pub protocol: UpstreamProtocol,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    pub idle_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub max_concurrent_streams: u32,
    pub max_requests_in_flight: usize,
    pub max_buffered_body_bytes: usize,
}

impl Config {
    /// Reads the file named by `--config` (if any), applies the flags over it and validates.
    pub fn load(cli: &Cli) -> Result<Self, ConfigError> {
        let file = match &cli.config {
            Some(path) => Some(read_file(path)?),
            None => None,
        };
        Self::build(file.unwrap_or_default(), cli)
    }

    /// Parses a YAML document; the error names the path of the offending field.
    pub fn parse_yaml(text: &str) -> Result<raw::File, ConfigError> {
        Ok(serde_yaml::from_str(text)?)
    }

    /// Merges the flags over the file and validates the result.
    pub fn build(mut file: raw::File, cli: &Cli) -> Result<Self, ConfigError> {
        cli.apply(&mut file)?;
        file.plugins.extend(cli.plugin_entries()?);
        let listener = file
            .listener
            .ok_or_else(|| ConfigError::invalid("listener.address", "required (or --listen)"))?;
        let upstream = file
            .upstream
            .ok_or_else(|| ConfigError::invalid("upstream.address", "required (or --upstream)"))?;
        let admin = file.admin.unwrap_or_default();
        let limits = file.limits.unwrap_or_default();
        validate_plugins(&file.plugins, &file.clusters)?;
        validate_tags(&file.plugin_metrics)?;
        Ok(Self {
            admin: admin.address,
            listener: ListenerConfig {
                address: listener.address,
                tls: listener.tls.map(validate_tls).transpose()?,
            },
            upstream: UpstreamConfig {
                address: upstream.address,
                protocol: upstream.protocol,
                connect_timeout: positive("upstream.connect_timeout", upstream.connect_timeout)?,
                response_timeout: positive("upstream.response_timeout", upstream.response_timeout)?,
                idle_timeout: upstream.idle_timeout,
            },
            limits: validate_limits(&limits)?,
            forwarded: file.forwarded.unwrap_or_default(),
            grace_period: file.shutdown.unwrap_or_default().grace_period,
            log_format: file.log.unwrap_or_default().format,
            workers: match file.workers {
                0 => std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN),
                n => NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN),
            },
            plugins: file.plugins,
            clusters: file.clusters,
            module_cache_dir: file.module_cache_dir,
            plugin_metrics: file.plugin_metrics,
        })
    }
}

fn read_file(path: &Path) -> Result<raw::File, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    Config::parse_yaml(&text)
}

fn validate_plugins(
    entries: &[plugins::PluginEntry],
    clusters: &std::collections::BTreeMap<String, plugins::ClusterEntry>,
) -> Result<(), ConfigError> {
    let bad = |index, field, message: String| ConfigError::Plugin {
        index,
        field,
        message,
    };
    for (i, p) in entries.iter().enumerate() {
        if p.name.is_empty() {
            return Err(bad(i, "name", "must not be empty".into()));
        }
        if entries[..i].iter().any(|q| q.name == p.name) {
            return Err(bad(
                i,
                "name",
                format!("{:?} is used by another plugin", p.name),
            ));
        }
        if p.vm_id.as_deref() == Some("") {
            return Err(bad(
                i,
                "vm_id",
                "must not be empty (leave it out for the name)".into(),
            ));
        }
        if let Err(e) = p.limits.memory_bytes() {
            return Err(bad(i, "limits.memory", e.to_string()));
        }
        match p.limits.hook_timeout() {
            Err(e) => return Err(bad(i, "limits.hook_timeout", e.to_string())),
            Ok(d) if d.is_zero() => {
                return Err(bad(
                    i,
                    "limits.hook_timeout",
                    "must be greater than zero".into(),
                ));
            }
            Ok(_) => {}
        }
        if let Some(c) = p
            .permissions
            .http_calls
            .iter()
            .find(|c| !clusters.contains_key(*c))
        {
            return Err(bad(
                i,
                "permissions.http_calls",
                format!("{c:?} is not a cluster defined under clusters"),
            ));
        }
    }
    Ok(())
}

/// Each tag rule names a Prometheus label and has a regex with a capture group.
fn validate_tags(m: &plugins::PluginMetrics) -> Result<(), ConfigError> {
    let label = regex::Regex::new("^[a-zA-Z_][a-zA-Z0-9_]*$")
        .map_err(|e| ConfigError::invalid("plugin_metrics.tags", e.to_string()))?;
    for rule in &m.tags {
        if !label.is_match(&rule.name) || rule.name == "plugin" {
            return Err(ConfigError::invalid(
                "plugin_metrics.tags.name",
                format!("{:?} is not a label name (or is `plugin`)", rule.name),
            ));
        }
        match regex::Regex::new(&rule.regex) {
            Ok(r) if r.captures_len() > 1 => {}
            Ok(_) => {
                return Err(ConfigError::invalid(
                    "plugin_metrics.tags.regex",
                    format!("{:?} has no capture group", rule.regex),
                ));
            }
            Err(e) => {
                return Err(ConfigError::invalid(
                    "plugin_metrics.tags.regex",
                    e.to_string(),
                ));
            }
        }
    }
    Ok(())
}

fn validate_tls(tls: raw::Tls) -> Result<TlsFiles, ConfigError> {
    for (field, path) in [
        ("listener.tls.cert", &tls.cert),
        ("listener.tls.key", &tls.key),
    ] {
        if !path.is_file() {
            return Err(ConfigError::invalid(
                field,
                format!("{} is not a readable file", path.display()),
            ));
        }
    }
    Ok(TlsFiles {
        cert: tls.cert,
        key: tls.key,
    })
}

fn validate_limits(l: &raw::Limits) -> Result<Limits, ConfigError> {
    if l.max_header_bytes < 1024 {
        return Err(ConfigError::invalid(
            "limits.max_header_bytes",
            "must be at least 1024",
        ));
    }
    Ok(Limits {
        header_read_timeout: positive("limits.header_read_timeout", l.header_read_timeout)?,
        max_header_bytes: l.max_header_bytes,
        max_headers: at_least_one("limits.max_headers", l.max_headers)?,
        idle_timeout: positive("limits.idle_timeout", l.idle_timeout)?,
        max_connections: at_least_one("limits.max_connections", l.max_connections)?,
        max_concurrent_streams: u32::try_from(at_least_one(
            "limits.max_concurrent_streams",
            l.max_concurrent_streams,
        )?)
        .map_err(|_| ConfigError::invalid("limits.max_concurrent_streams", "too large"))?,
        max_requests_in_flight: at_least_one(
            "limits.max_requests_in_flight",
            l.max_requests_in_flight,
        )?,
        max_buffered_body_bytes: l.max_buffered_body_bytes,
    })
}

fn positive(field: &'static str, d: Duration) -> Result<Duration, ConfigError> {
    if d.is_zero() {
        Err(ConfigError::invalid(field, "must be greater than zero"))
    } else {
        Ok(d)
    }
}

fn at_least_one(field: &'static str, n: usize) -> Result<usize, ConfigError> {
    if n == 0 {
        Err(ConfigError::invalid(field, "must be at least 1"))
    } else {
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
