//! Hand-made OCI artifacts for tests: manifests around arbitrary bytes, the one-layer compat
//! image, and tar bombs (gzip members that inflate to gigabytes while staying a few MiB).

use std::io::Write;

use anyhow::Result;
use flate2::{Compression, write::GzEncoder};
use serde_json::{Value, json};

use crate::support::registry::{Registry, digest};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";
pub const WASM_LAYER: &str = "application/wasm";

/// `bytes` gzipped.
pub fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder
        .write_all(bytes)
        .and_then(|()| encoder.finish())
        .unwrap_or_default()
}

/// A ustar header for a file `name` of `size` bytes.
pub fn tar_header(name: &str, size: u64) -> Result<Vec<u8>> {
    let mut header = tar::Header::new_ustar();
    header.set_path(name)?;
    header.set_size(size);
    header.set_mode(0o644);
    header.set_cksum();
    Ok(header.as_bytes().to_vec())
}

/// A manifest of `config` (media type, bytes) and one layer.
pub fn manifest(config: (&str, &[u8]), layer: (&str, &[u8])) -> Value {
    let descriptor = |(media_type, bytes): (&str, &[u8])| json!({ "mediaType": media_type, "digest": digest(bytes), "size": bytes.len() });
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(config),
        "layers": [descriptor(layer)],
    })
}

/// Pushes `layer` as the module of a CNCF Wasm artifact at `repo:tag`, whatever its bytes.
pub async fn push_cncf(registry: &Registry, repo: &str, tag: &str, layer: &[u8]) -> Result<String> {
    let config = br#"{"architecture":"wasm","os":"wasip1","layerDigests":[]}"#;
    let manifest = manifest((WASM_CONFIG, config), (WASM_LAYER, layer));
    registry
        .push_raw(repo, tag, &[config, layer], &manifest)
        .await?;
    Ok(registry.image(&format!("{repo}:{tag}")))
}

/// Pushes a compat image (`repo:v1`) whose one layer is `layer` (a gzipped tar).
pub async fn push_compat(registry: &Registry, repo: &str, layer: &[u8]) -> Result<String> {
    let config = br#"{"architecture":"wasm","os":"wasip1"}"#;
    let manifest = manifest(
        ("application/vnd.oci.image.config.v1+json", config),
        (TAR_GZIP, layer),
    );
    registry
        .push_raw(repo, "v1", &[config, layer], &manifest)
        .await?;
    Ok(registry.image(&format!("{repo}:v1")))
}

/// Appends gzip members to `out`: one inflating to `header`, then `zeros_mib` MiB of zeros made
/// of `block` (one compressed 16 MiB member, see [`zero_block`]) repeated.
pub fn bomb_part(out: &mut Vec<u8>, header: &[u8], zeros_mib: usize, block: &[u8]) {
    out.extend_from_slice(&gz(header));
    for _ in 0..zeros_mib / 16 {
        out.extend_from_slice(block);
    }
}

/// 16 MiB of zeros, gzipped: the brick of [`bomb_part`].
pub fn zero_block() -> Vec<u8> {
    gz(&vec![0u8; 16 << 20])
}

/// A compat layer whose `plugin.wasm` declares and inflates to `mib` MiB.
pub fn tar_bomb(mib: usize) -> Result<Vec<u8>> {
    let mut layer = Vec::new();
    let size = u64::try_from(mib)? << 20;
    bomb_part(
        &mut layer,
        &tar_header("plugin.wasm", size)?,
        mib,
        &zero_block(),
    );
    layer.extend_from_slice(&gz(&[0u8; 1024]));
    Ok(layer)
}
