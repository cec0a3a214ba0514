//! The sidecar's wasmtime engine (one per process, on the shared settings of `proxlet-engine`),
//! its linker with the host functions, module loading, and the compiled module cache: in memory
//! and on disk, keyed by the module's SHA-256 digest and the engine's fingerprint, so a restart
//! or a reload does not compile the same module again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::{InstancePre, Linker, Module};

use super::host::HostState;
use super::ticker::Ticker;

/// How often the epoch advances: the resolution of hook time caps.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

pub use proxlet_engine::{AbiVersion, LoadError};

/// Where a loaded module's machine code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompiledFrom {
    /// Compiled now (with the engine's parallel compilation).
    Compiler,
    /// Already compiled in this process.
    Memory,
    /// From `module_cache_dir`.
    Disk,
}

impl CompiledFrom {
    pub fn label(self) -> &'static str {
        match self {
            Self::Compiler => "compiled",
            Self::Memory => "memory-cache",
            Self::Disk => "disk-cache",
        }
    }
}

/// How a module was had, and how long it took.
#[derive(Debug, Clone, Copy)]
pub struct Compiled {
    pub from: CompiledFrom,
    pub took: Duration,
}

/// A compiled, validated module.
#[derive(Clone)]
pub struct Loaded {
    pub digest: String,
    pub abi: AbiVersion,
    pub compiled: Compiled,
    pub pre: InstancePre<HostState>,
    /// The engine's epoch ticker, which the module's callbacks keep going.
    pub ticker: Arc<Ticker>,
}

pub struct Engine {
    engine: wasmtime::Engine,
    linker: Linker<HostState>,
    settings: String,
    cache_dir: Option<PathBuf>,
    compiled: Mutex<HashMap<String, Module>>,
    ticker: Arc<Ticker>,
}

impl Engine {
    /// Builds the engine; `cache_dir` keeps compiled modules across restarts.
    pub fn new(cache_dir: Option<PathBuf>) -> Result<Self, LoadError> {
        let engine = proxlet_engine::engine()?;
        let mut linker = Linker::new(&engine);
        super::abi::add_to_linker(&mut linker).map_err(|e| LoadError::Engine(e.to_string()))?;
        super::wasi::add_to_linker(&mut linker).map_err(|e| LoadError::Engine(e.to_string()))?;
        linker
            .func_wrap("env", "emscripten_notify_memory_growth", |_: i32| {})
            .and_then(|l| l.func_wrap("env", "pthread_equal", |a: i32, b: i32| i32::from(a == b)))
            .map_err(|e| LoadError::Engine(e.to_string()))?;
        let settings = proxlet_engine::fingerprint(&engine);
        let ticker = Ticker::spawn(&engine);
        if let Some(dir) = &cache_dir
            && let Err(e) = std::fs::create_dir_all(dir)
        {
            tracing::warn!(dir = %dir.display(), error = %e, "module cache directory unusable; compiling in memory only");
        }
        Ok(Self {
            engine,
            linker,
            settings,
            cache_dir,
            compiled: Mutex::new(HashMap::new()),
            ticker,
        })
    }

    pub fn wasmtime(&self) -> &wasmtime::Engine {
        &self.engine
    }

    /// Compiles (or finds in the cache), validates and links a module.
    pub fn load(&self, bytes: &[u8]) -> Result<Loaded, LoadError> {
        let started = std::time::Instant::now();
        let digest = hex::encode(Sha256::digest(bytes));
        let (module, from) = self.module(&digest, bytes)?;
        let compiled = Compiled {
            from,
            took: started.elapsed(),
        };
        let abi = proxlet_engine::abi_version(&module)?;
        let pre = self.link(&module)?;
        Ok(Loaded {
            digest,
            abi,
            compiled,
            pre,
            ticker: self.ticker.clone(),
        })
    }

    /// What compiled artifacts of this engine are bound to.
    pub fn fingerprint(&self) -> &str {
        &self.settings
    }

    fn module(&self, digest: &str, bytes: &[u8]) -> Result<(Module, CompiledFrom), LoadError> {
        if let Some(m) = self.lock_compiled().get(digest) {
            return Ok((m.clone(), CompiledFrom::Memory));
        }
        let path = self.cache_path(digest);
        let (module, from) = match path.as_deref().and_then(|p| self.read_cached(p)) {
            Some(m) => (m, CompiledFrom::Disk),
            None => {
                let m = proxlet_engine::compile(&self.engine, bytes)?;
                if let Some(p) = &path {
                    self.write_cached(p, &m);
                }
                (m, CompiledFrom::Compiler)
            }
        };
        self.lock_compiled()
            .insert(digest.to_owned(), module.clone());
        Ok((module, from))
    }

    fn lock_compiled(&self) -> std::sync::MutexGuard<'_, HashMap<String, Module>> {
        self.compiled.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cache_path(&self, digest: &str) -> Option<PathBuf> {
        let dir = self.cache_dir.as_ref()?;
        Some(dir.join(format!("{digest}-{}.cwasm", self.settings)))
    }

    #[allow(unsafe_code)]
    fn read_cached(&self, path: &Path) -> Option<Module> {
        if !path.is_file() {
            return None;
        }
        // SAFETY: the file is in the sidecar's own cache directory and was written by
        // `write_cached` below from a module this engine compiled; its name binds it to the source
        // digest and to these engine settings, and wasmtime checks the header on load.
        match unsafe { Module::deserialize_file(&self.engine, path) } {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring unusable cached module");
                None
            }
        }
    }

    fn write_cached(&self, path: &Path, module: &Module) {
        let write = || -> std::io::Result<()> {
            let bytes = module.serialize().map_err(std::io::Error::other)?;
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, path)
        };
        if let Err(e) = write() {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the compiled module cache");
        }
    }

    /// Links a module: its `env` imports are checked against the host's list (the one the
    /// operator validates with); WASI imports the host lacks become `ENOSYS` stubs.
    fn link(&self, module: &Module) -> Result<InstancePre<HostState>, LoadError> {
        proxlet_engine::imports::check(module)?;
        let mut linker = self.linker.clone();
        super::wasi::stub_missing(&mut linker, module)
            .map_err(|e| LoadError::Link(e.to_string()))?;
        // The env imports were checked above and WASI ones stubbed, so what fails here is an
        // import whose signature differs from the host's.
        linker
            .instantiate_pre(module)
            .map_err(|e| LoadError::Link(format!("{e:#}")))
    }
}
