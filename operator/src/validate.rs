//! Validating a module before any sidecar sees it: the binary header first (a core WebAssembly
//! module, version 1), then a full compile with the sidecar's engine settings and a check of its
//! imports against the host's list (`proxlet-engine`), which also finds the Proxy-Wasm ABI
//! version it exports.
//!
//! One [`Validator`] (one wasmtime engine) per operator process, shared. Compiling is CPU-heavy,
//! so it runs on the blocking pool, one module at a time (wasmtime already spreads one compile
//! over the cores; several at once would only add memory). The compiled module is kept only as
//! its serialized artifact, which the pipeline stores for sidecars of the same engine build.

use std::sync::Arc;

use bytes::Bytes;
use proxlet_engine::{AbiVersion, LoadError};
use tokio::sync::Semaphore;

use crate::pipeline::PipelineError;

const MAGIC: &[u8; 4] = b"\0asm";
const CORE_VERSION: [u8; 4] = [1, 0, 0, 0];

/// Compiles modules the way the sidecar does.
#[derive(Clone)]
pub struct Validator {
    engine: wasmtime::Engine,
    compiling: Arc<Semaphore>,
}

impl Validator {
    /// Builds the engine (once per process).
    pub fn new() -> Result<Self, LoadError> {
        Ok(Self {
            engine: proxlet_engine::engine()?,
            compiling: Arc::new(Semaphore::new(1)),
        })
    }

    /// The engine's fingerprint, which compiled artifacts are bound to.
    pub fn engine(&self) -> String {
        proxlet_engine::fingerprint(&self.engine)
    }

    /// Checks the header, compiles and links `bytes`; the ABI version it exports and the
    /// compiled artifact.
    pub async fn validate(&self, bytes: Bytes) -> Result<(AbiVersion, Vec<u8>), PipelineError> {
        check_header(&bytes)?;
        let _permit = self
            .compiling
            .acquire()
            .await
            .map_err(|e| PipelineError::CompileFailed {
                detail: format!("the compile queue is closed: {e}"),
            })?;
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || proxlet_engine::precompile(&engine, &bytes))
            .await
            .map_err(|e| PipelineError::CompileFailed {
                detail: format!("the compile task failed: {e}"),
            })?
            .map_err(classify)
    }
}

/// Refuses bytes that are not a core WebAssembly binary module, version 1.
pub fn check_header(bytes: &[u8]) -> Result<(), PipelineError> {
    let not_wasm = |detail: String| Err(PipelineError::NotWasm { detail });
    if bytes.len() < 8 {
        return not_wasm(format!(
            "{} bytes, too short for a module header",
            bytes.len()
        ));
    }
    if &bytes[..4] != MAGIC {
        return not_wasm(format!(
            "it starts with {} instead of the magic 00 61 73 6d (\\0asm)",
            hex_bytes(&bytes[..4])
        ));
    }
    if bytes[4..8] != CORE_VERSION {
        let detail = if bytes[6..8] == [1, 0] {
            "it is a WebAssembly component; Proxy-Wasm plugins are core modules".to_owned()
        } else {
            format!("unknown binary version {}", hex_bytes(&bytes[4..8]))
        };
        return not_wasm(detail);
    }
    Ok(())
}

fn hex_bytes(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn classify(error: LoadError) -> PipelineError {
    let detail = error.to_string();
    match error {
        LoadError::NoAbi { .. } => PipelineError::NoProxyWasmAbi { detail },
        LoadError::UnknownImport { .. } => PipelineError::UnsupportedImport { detail },
        LoadError::Link(link) => PipelineError::UnsupportedImport {
            detail: format!("has an import the sidecar provides with another signature: {link}"),
        },
        LoadError::Compile(compile) => PipelineError::CompileFailed { detail: compile },
        LoadError::Engine(_) => PipelineError::CompileFailed { detail },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Reason;

    fn reason(bytes: &[u8]) -> Option<Reason> {
        check_header(bytes).err().map(|e| e.reason())
    }

    #[test]
    fn headers() {
        assert_eq!(reason(b"\0asm\x01\0\0\0"), None);
        assert_eq!(reason(b"\x7fELF\x02\x01\x01\0"), Some(Reason::NotWasm));
        assert_eq!(reason(b"\0asm"), Some(Reason::NotWasm));
        let component = check_header(b"\0asm\x0d\0\x01\0").unwrap_err();
        assert!(component.to_string().contains("component"), "{component}");
    }

    #[tokio::test]
    async fn compile_verdicts() {
        let validator = Validator::new().unwrap();
        let check = |wat: &str| {
            let bytes = Bytes::from(wat::parse_str(wat).unwrap());
            let validator = validator.clone();
            async move { validator.validate(bytes).await }
        };
        let abi = check(r#"(module (func (export "proxy_abi_version_0_2_1")))"#).await;
        let (abi, artifact) = abi.unwrap();
        assert_eq!(abi, AbiVersion::V0_2_1);
        assert!(
            !artifact.is_empty(),
            "the compiled artifact comes with the verdict"
        );
        let none = check("(module)").await.unwrap_err();
        assert_eq!(none.reason(), Reason::NoProxyWasmAbi);
        let import = check(
            r#"(module (import "env" "launch_missiles" (func))
                       (func (export "proxy_abi_version_0_2_0")))"#,
        )
        .await
        .unwrap_err();
        assert_eq!(import.reason(), Reason::UnsupportedImport);
        assert!(
            import.to_string().contains("env.launch_missiles"),
            "{import}"
        );
        let broken = validator
            .validate(Bytes::from_static(b"\0asm\x01\0\0\0\xff"))
            .await;
        assert_eq!(broken.unwrap_err().reason(), Reason::CompileFailed);
    }
}
