//! The module pipeline the controller calls: parse the reference, consult the cache, fetch,
//! verify the pin, validate, cache. One [`Pipeline`] per process, shared (`Arc`).
//!
//! ```ignore
//! let pipeline = Pipeline::new(PipelineConfig::new(cache_dir))?;
//! let resolved = pipeline.resolve(&ModuleRequest {
//!     image: spec.image.clone(),
//!     sha256: spec.sha256.clone(),
//!     pull_policy: spec.image_pull_policy.unwrap_or(PullPolicy::IfNotPresent),
//!     pull_secret: secret.map(|bytes| PullSecret { name, dockerconfigjson: bytes }),
//! }).await?;
//! ```
//!
//! Pull policies:
//! - `IfNotPresent`: a reference resolved before is answered from the cache without contacting
//!   the registry, tags included (as Istio does: the module cached for that tag is used until
//!   the policy is `Always` or the cache drops it). A reference by manifest digest, and a
//!   `sha256` pin, are also answered from the cache when it holds that content under any name.
//! - `Always`: the reference is resolved again (a manifest request); the module is downloaded
//!   only when the manifest digest is new to the cache.
//! - `file://` is read every time (development: edits take effect).
//!
//! A module pulled with credentials is never answered from the cache alone: each resolve asks the
//! registry for the manifest with the request's own credentials (one small request; the module is
//! not downloaded again), so a `ProxyPlugin` with wrong or no credentials cannot borrow a private
//! module another one pulled. Public modules are answered from the cache.

mod compiled;
mod error;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use proxlet_crds::plugin_set::Compiled;
use proxlet_crds::{ArtifactFormat, Digest, PullPolicy};
use proxlet_engine::{AbiVersion, LoadError};

use self::compiled::CompiledStore;
pub use self::error::{Mismatch, PipelineError, Reason, Stage};
use crate::cache::{CacheStats, ModuleCache, Record};
use crate::fetch::{self, Credentials, FetchSettings, Fetched, oci};
use crate::reference::{Pin, Source};
use crate::validate::Validator;

/// How the pipeline is set up.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    pub cache_dir: PathBuf,
    /// The cache's bound; least recently used modules go past it.
    pub cache_max_bytes: u64,
    /// The largest module accepted (and the base of the compat layer limits).
    pub max_module_bytes: u64,
    /// `host[:port]` of registries (and `http://` hosts) reached over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// PEM certificates of private registry CAs, trusted besides the system roots.
    pub extra_roots_pem: Vec<Vec<u8>>,
}

impl PipelineConfig {
    /// Defaults: a 1 GiB cache, 64 MiB modules, TLS everywhere.
    pub fn new(cache_dir: PathBuf) -> Self {
        Self {
            cache_dir,
            cache_max_bytes: 1 << 30,
            max_module_bytes: FetchSettings::default().max_module_bytes,
            insecure_registries: Vec::new(),
            extra_roots_pem: Vec::new(),
        }
    }
}

/// Why the pipeline cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("module cache {dir}: {source}")]
    Cache {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("wasm engine: {0}")]
    Engine(#[from] LoadError),
    #[error("HTTP client: {0}")]
    Http(String),
}

/// One module to resolve: a `ProxyPlugin`'s `spec.image` and what goes with it.
#[derive(Clone, Debug)]
pub struct ModuleRequest {
    pub image: String,
    pub sha256: Option<String>,
    pub pull_policy: PullPolicy,
    pub pull_secret: Option<PullSecret>,
}

/// The `.dockerconfigjson` of the `imagePullSecret`, read by the caller.
#[derive(Clone)]
pub struct PullSecret {
    /// For messages.
    pub name: String,
    pub dockerconfigjson: Vec<u8>,
}

impl std::fmt::Debug for PullSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullSecret")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A module fetched, verified, validated and in the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The module's digest: the name sidecars fetch it by.
    pub digest: Digest,
    pub size: u64,
    pub format: ArtifactFormat,
    pub abi: AbiVersion,
    /// The module compiled by this operator, for sidecars of its build.
    pub compiled: Option<Compiled>,
    /// False when served from the cache.
    pub pulled: bool,
    /// The manifest digest the OCI reference resolved to.
    pub manifest_digest: Option<String>,
    /// Set when a source was contacted: bytes received and time taken (for metrics).
    pub transfer: Option<Transfer>,
}

/// What a pull cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transfer {
    pub bytes: u64,
    pub duration: Duration,
}

/// The pipeline: cache, fetcher settings and validator.
pub struct Pipeline {
    settings: FetchSettings,
    http: reqwest::Client,
    cache: ModuleCache,
    validator: Validator,
    /// What validating each digest found, once per process.
    validated: Mutex<HashMap<Digest, (AbiVersion, Option<Compiled>)>>,
    compiled: CompiledStore,
    /// One resolve at a time per reference: plugins sharing an image wait for the first pull
    /// and are answered from the cache, so a digest is pulled once, not once per plugin.
    flights: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Pipeline {
    /// Opens the cache and builds the engine and clients (installs the crypto provider).
    pub fn new(config: PipelineConfig) -> Result<Self, SetupError> {
        fetch::install_crypto();
        let settings = FetchSettings {
            insecure_hosts: config.insecure_registries,
            extra_roots_pem: config.extra_roots_pem,
            max_module_bytes: config.max_module_bytes,
            ..FetchSettings::default()
        };
        let cache =
            ModuleCache::open(&config.cache_dir, config.cache_max_bytes).map_err(|source| {
                SetupError::Cache {
                    dir: config.cache_dir.clone(),
                    source,
                }
            })?;
        let validator = Validator::new()?;
        Ok(Self {
            http: fetch::https::client(&settings).map_err(SetupError::Http)?,
            settings,
            cache,
            compiled: CompiledStore::open(&config.cache_dir, &validator.engine()).map_err(
                |source| SetupError::Cache {
                    dir: config.cache_dir.clone(),
                    source,
                },
            )?,
            validator,
            validated: Mutex::new(HashMap::new()),
            flights: Mutex::new(HashMap::new()),
        })
    }

    /// The module cache, for the plugin-set server.
    pub fn cache(&self) -> &ModuleCache {
        &self.cache
    }

    /// Modules and bytes in the cache, for metrics.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// Resolves `request` to a validated module in the cache.
    pub async fn resolve(&self, request: &ModuleRequest) -> Result<Resolved, PipelineError> {
        let image = request.image.as_str();
        let source = Source::parse(image)?;
        let pin = request
            .sha256
            .as_deref()
            .map(|p| Pin::parse(image, p))
            .transpose()?;
        if matches!(source, Source::Http(_)) && pin.is_none() {
            return Err(PipelineError::invalid(
                image,
                "an https:// image needs a sha256 pin",
            ));
        }
        let key = source.key();
        let private = request.pull_secret.is_some() && matches!(source, Source::Oci(_));
        let _flight = self.flight(&key).lock_owned().await;
        if request.pull_policy == PullPolicy::IfNotPresent
            && let Some(hit) = self.cached(&source, &key, pin.as_ref()).await
        {
            return Ok(hit);
        }
        let started = Instant::now();
        let fetched = match &source {
            Source::Oci(reference) => {
                let creds = credentials(request.pull_secret.as_ref())?;
                let auth = creds.for_registry(reference.registry());
                let session = oci::Session::new(&self.settings, reference.clone(), auth)?;
                let resolution = session.resolve().await?;
                if let Some(record) = self.cache.by_manifest(&resolution.digest)
                    && let record_private = record.private
                    && let Some(hit) = self.hit(record, pin.as_ref()).await
                {
                    // The registry just accepted this request's credentials (or none): the
                    // cached bytes are theirs to have.
                    self.remember(key, &hit, private || record_private).await?;
                    return Ok(hit);
                }
                session.pull(resolution, &self.settings).await?
            }
            Source::Http(url) => fetch::https::fetch(&self.http, &self.settings, url).await?,
            Source::File(path) => fetch::file::fetch(&self.settings, path).await?,
        };
        let transfer = Transfer {
            bytes: fetched.transferred,
            duration: started.elapsed(),
        };
        self.accept(key, fetched, pin.as_ref(), transfer, private)
            .await
    }

    /// The lock of reference `key` (entries stay: there are as many as distinct references).
    fn flight(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(flights.entry(key.to_owned()).or_default())
    }

    /// An `IfNotPresent` answer from the cache, if it has one.
    async fn cached(&self, source: &Source, key: &str, pin: Option<&Pin>) -> Option<Resolved> {
        if matches!(source, Source::File(_)) {
            return None;
        }
        let record = self
            .cache
            .lookup(key)
            .or_else(|| pin.and_then(|p| self.cache.by_digest(p.digest())))
            .or_else(|| match source {
                Source::Oci(r) => r.digest().and_then(|d| self.cache.by_manifest(d)),
                _ => None,
            })?;
        if record.private {
            // Credentials are checked by the registry on every resolve of a private module.
            return None;
        }
        self.hit(record, pin).await
    }

    /// The cached module of `record`, when it is still intact and matches the pin.
    async fn hit(&self, record: Record, pin: Option<&Pin>) -> Option<Resolved> {
        if pin.is_some_and(|p| p.digest() != &record.digest) {
            return None;
        }
        let bytes = self.cache.get(&record.digest).await?;
        let (abi, compiled) = self.validate(&record.digest, bytes.clone()).await.ok()?;
        Some(Resolved {
            digest: record.digest,
            size: bytes.len() as u64,
            format: record.format,
            abi,
            compiled,
            pulled: false,
            manifest_digest: record.manifest_digest,
            transfer: None,
        })
    }

    /// Verifies, validates and caches freshly fetched bytes.
    async fn accept(
        &self,
        key: String,
        fetched: Fetched,
        pin: Option<&Pin>,
        transfer: Transfer,
        private: bool,
    ) -> Result<Resolved, PipelineError> {
        let digest = Digest::of(&fetched.bytes);
        if let Some(pin) = pin
            && pin.digest() != &digest
        {
            return Err(PipelineError::DigestMismatch {
                what: Mismatch::Pin,
                expected: pin.digest().to_string(),
                actual: digest.to_string(),
            });
        }
        let (abi, compiled) = self.validate(&digest, fetched.bytes.clone()).await?;
        let size = fetched.bytes.len() as u64;
        self.cache
            .insert(fetched.bytes)
            .await
            .map_err(|e| PipelineError::cache(&e))?;
        let resolved = Resolved {
            digest,
            size,
            format: fetched.format,
            abi,
            compiled,
            pulled: true,
            manifest_digest: fetched.manifest_digest,
            transfer: Some(transfer),
        };
        self.remember(key, &resolved, private).await?;
        Ok(resolved)
    }

    async fn remember(
        &self,
        key: String,
        resolved: &Resolved,
        private: bool,
    ) -> Result<(), PipelineError> {
        let record = Record {
            digest: resolved.digest.clone(),
            format: resolved.format,
            manifest_digest: resolved.manifest_digest.clone(),
            private,
        };
        self.cache
            .remember(key, record)
            .await
            .map_err(|e| PipelineError::cache(&e))
    }

    /// Validates once per digest per process; the verdict is remembered.
    /// Validates once per digest per process, keeping the compiled artifact; the verdict is
    /// remembered. An artifact that cannot be stored only means sidecars compile themselves.
    async fn validate(
        &self,
        digest: &Digest,
        bytes: Bytes,
    ) -> Result<(AbiVersion, Option<Compiled>), PipelineError> {
        if let Some(known) = self.lock_validated().get(digest) {
            return Ok(known.clone());
        }
        let (abi, artifact) = self.validator.validate(bytes).await?;
        let compiled = match self.compiled.put(&artifact) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(%digest, error = %e, "cannot keep the compiled artifact");
                None
            }
        };
        self.lock_validated()
            .insert(digest.clone(), (abi, compiled.clone()));
        Ok((abi, compiled))
    }

    fn lock_validated(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<Digest, (AbiVersion, Option<Compiled>)>> {
        self.validated.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A compiled artifact by its digest, for the plugin-set server.
    pub async fn compiled(&self, digest: &Digest) -> Option<Bytes> {
        self.compiled.get(digest).await
    }
}

fn credentials(secret: Option<&PullSecret>) -> Result<Credentials, PipelineError> {
    match secret {
        None => Ok(Credentials::anonymous()),
        Some(secret) => Credentials::parse(&secret.dockerconfigjson).map_err(|problem| {
            PipelineError::PullSecretInvalid {
                name: secret.name.clone(),
                problem,
            }
        }),
    }
}
