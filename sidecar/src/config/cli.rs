//! Command-line flags. Each everyday setting is a flag (and a `PROXLET_*` environment variable)
//! so that one line runs a proxy; flags override the file.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

use super::plugins;
use super::raw::{self, LogFormat, UpstreamProtocol};

/// `--plugin-config` value: JSON (kept as a string if it is not JSON), or `@FILE`.
fn plugin_config(value: &str) -> Result<serde_json::Value, super::ConfigError> {
    let text = match value.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).map_err(|e| {
            super::ConfigError::invalid("--plugin-config", format!("cannot read {path}: {e}"))
        })?,
        None => value.to_owned(),
    };
    Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
}

#[derive(Debug, Default, Parser)]
#[command(name = "proxlet-sidecar", version, about = "Proxlet's sidecar proxy")]
pub struct Cli {
    /// YAML configuration file.
    #[arg(long, env = "PROXLET_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to accept workload traffic on (listener.address).
    #[arg(long, env = "PROXLET_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// The workload's address (upstream.address).
    #[arg(long, env = "PROXLET_UPSTREAM")]
    pub upstream: Option<SocketAddr>,
    /// Protocol towards the workload (upstream.protocol).
    #[arg(long, env = "PROXLET_UPSTREAM_PROTOCOL", value_enum)]
    pub upstream_protocol: Option<UpstreamProtocol>,
    /// Admin server address (admin.address).
    #[arg(long, env = "PROXLET_ADMIN")]
    pub admin: Option<SocketAddr>,
    /// PEM certificate chain for TLS on the listener (listener.tls.cert).
    #[arg(long, env = "PROXLET_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS on the listener (listener.tls.key).
    #[arg(long, env = "PROXLET_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Worker threads; 0 means one per available core (workers).
    #[arg(long, env = "PROXLET_WORKERS")]
    pub workers: Option<usize>,
    /// Log format (log.format).
    #[arg(long, env = "PROXLET_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// A Proxy-Wasm plugin module; repeat for more plugins. The `--plugin-*` flags after it
    /// apply to it.
    #[arg(long = "plugin", value_name = "FILE.wasm")]
    pub plugin: Vec<PathBuf>,
    /// Configuration for the preceding --plugin: JSON, or @FILE to read it from a file.
    #[arg(long = "plugin-config", value_name = "JSON|@FILE")]
    pub plugin_config: Vec<String>,
    /// Root id for the preceding --plugin (default: empty, as in Envoy).
    #[arg(long = "plugin-root-id", value_name = "ID")]
    pub plugin_root_id: Vec<String>,
    /// Vm id for the preceding --plugin: plugins with the same one share shared data and
    /// queues (default: the plugin's name).
    #[arg(long = "plugin-vm-id", value_name = "ID")]
    pub plugin_vm_id: Vec<String>,
    /// Kind of the preceding --plugin: `request` (default) or `background`.
    #[arg(long = "plugin-kind", value_name = "KIND")]
    pub plugin_kind: Vec<plugins::PluginKind>,
    /// Lets the preceding --plugin see and change bodies (permissions.body).
    #[arg(long = "plugin-body", action = clap::ArgAction::Count)]
    pub plugin_body: u8,
    /// Lets the preceding --plugin call CLUSTER (permissions.http_calls); repeat for more.
    #[arg(long = "plugin-http-call", value_name = "CLUSTER")]
    pub plugin_http_call: Vec<String>,
    /// Lets the preceding --plugin use shared data and shared queues (permissions.shared_data).
    #[arg(long = "plugin-shared-data", action = clap::ArgAction::Count)]
    pub plugin_shared_data: u8,
    /// A cluster plugins may call, `NAME=HOST:PORT` (clusters.NAME.address); repeat for more.
    #[arg(long = "cluster", value_name = "NAME=HOST:PORT")]
    pub cluster: Vec<String>,
    /// The plugin flags in command-line order (clap keeps each flag's values apart).
    #[arg(skip)]
    pub plugin_flags: Vec<PluginFlag>,
}

/// One plugin flag, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginFlag {
    Plugin(PathBuf),
    Config(String),
    RootId(String),
    VmId(String),
    Kind(String),
    Body,
    HttpCall(String),
    SharedData,
}

/// Picks the plugin flags out of the command line, in order (`--flag value` or `--flag=value`).
pub fn plugin_flags(args: impl IntoIterator<Item = String>) -> Vec<PluginFlag> {
    let mut out = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (arg, None),
        };
        match flag.as_str() {
            "--plugin-body" => out.push(PluginFlag::Body),
            "--plugin-shared-data" => out.push(PluginFlag::SharedData),
            _ => {}
        }
        let make: fn(String) -> PluginFlag = match flag.as_str() {
            "--plugin" => |v| PluginFlag::Plugin(PathBuf::from(v)),
            "--plugin-config" => PluginFlag::Config,
            "--plugin-root-id" => PluginFlag::RootId,
            "--plugin-vm-id" => PluginFlag::VmId,
            "--plugin-kind" => PluginFlag::Kind,
            "--plugin-http-call" => PluginFlag::HttpCall,
            _ => continue,
        };
        if let Some(v) = inline.or_else(|| args.next()) {
            out.push(make(v));
        }
    }
    out
}

impl PluginFlag {
    /// The flag as written.
    fn flag(&self) -> &'static str {
        match self {
            Self::Plugin(_) => "--plugin",
            Self::Config(_) => "--plugin-config",
            Self::RootId(_) => "--plugin-root-id",
            Self::VmId(_) => "--plugin-vm-id",
            Self::Kind(_) => "--plugin-kind",
            Self::Body => "--plugin-body",
            Self::HttpCall(_) => "--plugin-http-call",
            Self::SharedData => "--plugin-shared-data",
        }
    }

    /// Sets what this flag says on the plugin it follows.
    fn apply(self, entry: &mut plugins::PluginEntry) -> Result<(), super::ConfigError> {
        match self {
            Self::Plugin(_) => {}
            Self::Config(value) => entry.config = Some(plugin_config(&value)?),
            Self::RootId(id) => entry.root_id = Some(id),
            Self::VmId(id) => entry.vm_id = Some(id),
            Self::Kind(kind) => {
                entry.kind = kind
                    .parse()
                    .map_err(|e: String| super::ConfigError::invalid("--plugin-kind", e))?;
            }
            Self::Body => entry.permissions.body = true,
            Self::HttpCall(cluster) => entry.permissions.http_calls.push(cluster),
            Self::SharedData => entry.permissions.shared_data = true,
        }
        Ok(())
    }
}

impl Cli {
    /// The plugins given with `--plugin`, as file entries.
    pub(super) fn plugin_entries(&self) -> Result<Vec<plugins::PluginEntry>, super::ConfigError> {
        let flags = if self.plugin_flags.is_empty() {
            // Parsed without the raw arguments (tests): plugins in order, no per-plugin flags.
            self.plugin
                .iter()
                .cloned()
                .map(PluginFlag::Plugin)
                .collect()
        } else {
            self.plugin_flags.clone()
        };
        let mut entries: Vec<plugins::PluginEntry> = Vec::new();
        for flag in flags {
            match flag {
                PluginFlag::Plugin(path) => {
                    let stem = path
                        .file_stem()
                        .map(|s| s.to_string_lossy().replace('_', "-"))
                        .unwrap_or_else(|| "plugin".into());
                    let mut name = stem.clone();
                    let mut n = 2;
                    while entries.iter().any(|e| e.name == name) {
                        name = format!("{stem}-{n}");
                        n += 1;
                    }
                    entries.push(plugins::PluginEntry::from_path(name, path));
                }
                other => {
                    let entry = entries.last_mut().ok_or_else(|| {
                        super::ConfigError::invalid(other.flag(), "must follow a --plugin")
                    })?;
                    other.apply(entry)?;
                }
            }
        }
        Ok(entries)
    }

    /// Writes every flag that was given into the file's structure.
    pub(super) fn apply(&self, file: &mut raw::File) -> Result<(), super::ConfigError> {
        for c in &self.cluster {
            let bad = || {
                super::ConfigError::invalid("--cluster", format!("{c:?}: expected NAME=HOST:PORT"))
            };
            let (name, address) = c.split_once('=').ok_or_else(bad)?;
            let address: SocketAddr = address.parse().map_err(|_| bad())?;
            if name.is_empty() {
                return Err(bad());
            }
            file.clusters
                .insert(name.to_owned(), plugins::ClusterEntry { address });
        }
        if let Some(address) = self.listen {
            match &mut file.listener {
                Some(l) => l.address = address,
                None => file.listener = Some(raw::Listener { address, tls: None }),
            }
        }
        if let (Some(cert), Some(key), Some(l)) =
            (&self.tls_cert, &self.tls_key, &mut file.listener)
        {
            l.tls = Some(raw::Tls {
                cert: cert.clone(),
                key: key.clone(),
            });
        }
        if let Some(address) = self.upstream {
            match &mut file.upstream {
                Some(u) => u.address = address,
                None => file.upstream = Some(raw::Upstream::at(address)),
            }
        }
        if let (Some(p), Some(u)) = (self.upstream_protocol, &mut file.upstream) {
            u.protocol = p;
        }
        if let Some(address) = self.admin {
            file.admin = Some(raw::Admin { address });
        }
        if let Some(w) = self.workers {
            file.workers = w;
        }
        if let Some(format) = self.log_format {
            file.log = Some(raw::Log { format });
        }
        Ok(())
    }
}
