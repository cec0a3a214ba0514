//! The Wasm engine proxlet's binaries share: the wasmtime settings plugins run under, compiling
//! a module, validating it against the Proxy-Wasm host's imports ([`imports`]) and its ABI
//! version, and the fingerprint that binds a compiled artifact to the engine that made it.
//!
//! The operator validates and compiles modules with it, without the proxy; the sidecar builds its
//! host on the same settings, so a module the operator accepts links in the sidecar and an
//! artifact it compiled loads there when the fingerprints are equal. No host functions live here.

pub mod imports;

use std::hash::{Hash, Hasher};

use wasmtime::{Config, Module, OptLevel};

/// The Proxy-Wasm ABI a module was built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbiVersion {
    V0_2_0,
    V0_2_1,
}

impl AbiVersion {
    pub fn label(self) -> &'static str {
        match self {
            Self::V0_2_0 => "0.2.0",
            Self::V0_2_1 => "0.2.1",
        }
    }
}

/// Why a module cannot run.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("not a WebAssembly module: {0}")]
    Compile(String),
    #[error("exports neither proxy_abi_version_0_2_1 nor proxy_abi_version_0_2_0 ({found})")]
    NoAbi { found: String },
    #[error("imports {module}.{name}, which the sidecar does not provide")]
    UnknownImport { module: String, name: String },
    #[error("cannot link: {0}")]
    Link(String),
    #[error("engine: {0}")]
    Engine(String),
}

/// The settings every plugin engine uses: epoch interruption (the per-hook time cap), optimised
/// code, compiles spread over the cores.
pub fn config() -> Config {
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .parallel_compilation(true)
        .cranelift_opt_level(OptLevel::Speed);
    config
}

/// An engine with [`config`].
pub fn engine() -> Result<wasmtime::Engine, LoadError> {
    wasmtime::Engine::new(&config()).map_err(|e| LoadError::Engine(format!("{e:#}")))
}

/// What a compiled artifact is bound to. wasmtime's compatibility hash covers its version and
/// the engine's settings; equal fingerprints mean an artifact of one engine loads in the other.
pub fn fingerprint(engine: &wasmtime::Engine) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("wasmtime-{:016x}", hasher.finish())
}

/// Compiles `bytes` (a binary module, or text in tests).
pub fn compile(engine: &wasmtime::Engine, bytes: &[u8]) -> Result<Module, LoadError> {
    Module::new(engine, bytes).map_err(|e| LoadError::Compile(format!("{e:#}")))
}

/// Checks what a sidecar checks before it links a module: its ABI version and its imports.
pub fn check(module: &Module) -> Result<AbiVersion, LoadError> {
    let abi = abi_version(module)?;
    imports::check(module)?;
    Ok(abi)
}

/// Compiles and checks `bytes`, and serializes the compiled module: the artifact a sidecar with
/// the same [`fingerprint`] loads without compiling.
pub fn precompile(
    engine: &wasmtime::Engine,
    bytes: &[u8],
) -> Result<(AbiVersion, Vec<u8>), LoadError> {
    let module = compile(engine, bytes)?;
    let abi = check(&module)?;
    let artifact = module
        .serialize()
        .map_err(|e| LoadError::Engine(format!("cannot serialize the compiled module: {e:#}")))?;
    Ok((abi, artifact))
}

/// The ABI version a module exports (`proxy_abi_version_*`; Higress' 0.2.100 counts as 0.2.1).
pub fn abi_version(module: &Module) -> Result<AbiVersion, LoadError> {
    let mut found = Vec::new();
    for export in module.exports() {
        match export.name() {
            "proxy_abi_version_0_2_1" | "proxy_abi_version_0_2_100" => {
                return Ok(AbiVersion::V0_2_1);
            }
            "proxy_abi_version_0_2_0" => return Ok(AbiVersion::V0_2_0),
            n if n.starts_with("proxy_abi_version_") => found.push(n.to_owned()),
            _ => {}
        }
    }
    Err(LoadError::NoAbi {
        found: if found.is_empty() {
            "found no proxy_abi_version_* export".into()
        } else {
            format!("found {}", found.join(", "))
        },
    })
}
