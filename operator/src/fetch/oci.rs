//! Pulling a module from an OCI registry with `oci-client`: resolve the reference to a manifest
//! digest, recognise the layout, then pull the one layer that holds the module.
//!
//! Sizes are checked against the descriptor before a blob is requested and again while it
//! streams; every blob's digest is verified (by `oci-client`'s verifying stream and again here
//! for sha256). An image index is followed one level, to its `wasm`/`wasi*` entry or its only
//! entry. A client is built per pull: `oci-client` keeps the first credentials it sees per
//! registry, and different `ProxyPlugin`s may bring different ones for the same registry.

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::manifest::{
    IMAGE_MANIFEST_LIST_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE,
    OCI_IMAGE_MEDIA_TYPE, OciDescriptor, OciImageManifest,
};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::error::{classify_oci, from_stream_error};
use super::layout::{self, Packing};
use super::{FetchSettings, Fetched, tarball};
use crate::pipeline::{Mismatch, PipelineError};

/// The largest manifest accepted (the limit registries apply to manifest uploads).
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;

const MANIFEST_TYPES: [&str; 4] = [
    OCI_IMAGE_MEDIA_TYPE,
    IMAGE_MANIFEST_MEDIA_TYPE,
    OCI_IMAGE_INDEX_MEDIA_TYPE,
    IMAGE_MANIFEST_LIST_MEDIA_TYPE,
];

/// A resolved manifest: the image manifest and the digest the reference resolved to (the
/// index's digest when the reference names an index).
pub struct Resolution {
    pub manifest: OciImageManifest,
    pub digest: String,
    transferred: u64,
}

/// One pull from one registry with one set of credentials.
pub struct Session {
    client: Client,
    reference: Reference,
    auth: RegistryAuth,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    manifests: Vec<IndexEntry>,
}

#[derive(Deserialize)]
struct IndexEntry {
    digest: String,
    platform: Option<Platform>,
}

#[derive(Deserialize)]
struct Platform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
}

impl Session {
    pub fn new(
        settings: &FetchSettings,
        reference: Reference,
        auth: RegistryAuth,
    ) -> Result<Self, PipelineError> {
        let client = client(settings).map_err(|e| PipelineError::RegistryUnreachable {
            registry: reference.registry().to_owned(),
            detail: format!("cannot build the registry client: {e}"),
        })?;
        Ok(Self {
            client,
            reference,
            auth,
        })
    }

    /// Resolves the reference: the manifest digest and the image manifest it leads to.
    pub async fn resolve(&self) -> Result<Resolution, PipelineError> {
        let (value, digest, mut transferred) = self.manifest_json(&self.reference).await?;
        if value.get("manifests").is_some() {
            let index: Index = serde_json::from_value(value)
                .map_err(|e| PipelineError::unsupported(format!("unreadable image index: {e}")))?;
            let entry = pick(&index)?;
            let by_digest = self.reference.clone_with_digest(entry.to_owned());
            let (inner, _, more) = self.manifest_json(&by_digest).await?;
            transferred += more;
            return Ok(Resolution {
                manifest: image_manifest(inner)?,
                digest,
                transferred,
            });
        }
        Ok(Resolution {
            manifest: image_manifest(value)?,
            digest,
            transferred,
        })
    }

    /// Pulls the module out of a resolved manifest.
    pub async fn pull(
        &self,
        resolution: Resolution,
        settings: &FetchSettings,
    ) -> Result<Fetched, PipelineError> {
        let layout = layout::detect(&resolution.manifest)?;
        let max = settings.max_module_bytes;
        let module = match layout.packing {
            Packing::Raw => self.blob(&layout.layer, max, "the module layer").await?,
            Packing::Tar { gzip } => {
                let total = max.saturating_add(super::TAR_OVERHEAD_BYTES);
                let layer = self.blob(&layout.layer, total, "the image layer").await?;
                let extracted =
                    tokio::task::spawn_blocking(move || tarball::extract(&layer, gzip, max, total))
                        .await
                        .map_err(|e| {
                            PipelineError::unsupported(format!("extracting the layer: {e}"))
                        })??;
                Bytes::from(extracted)
            }
        };
        Ok(Fetched {
            transferred: resolution.transferred + layout.layer.size.max(0).unsigned_abs(),
            bytes: module,
            format: layout.format,
            manifest_digest: Some(resolution.digest),
        })
    }

    async fn manifest_json(
        &self,
        reference: &Reference,
    ) -> Result<(serde_json::Value, String, u64), PipelineError> {
        let (body, digest) = self
            .client
            .pull_manifest_raw(reference, &self.auth, &MANIFEST_TYPES)
            .await
            .map_err(|e| classify_oci(e, reference))?;
        let size = body.len() as u64;
        if size > MAX_MANIFEST_BYTES {
            return Err(PipelineError::too_large(
                "the manifest",
                MAX_MANIFEST_BYTES,
                Some(size),
            ));
        }
        let value = serde_json::from_slice(&body)
            .map_err(|e| PipelineError::unsupported(format!("the manifest is not JSON: {e}")))?;
        Ok((value, digest, size))
    }

    /// Streams one blob into memory, refusing it past `limit` and verifying its digest.
    async fn blob(
        &self,
        desc: &OciDescriptor,
        limit: u64,
        what: &'static str,
    ) -> Result<Bytes, PipelineError> {
        let declared = u64::try_from(desc.size)
            .map_err(|_| PipelineError::unsupported(format!("{what} has a negative size")))?;
        if declared > limit {
            return Err(PipelineError::too_large(what, limit, Some(declared)));
        }
        let mut stream = self
            .client
            .pull_blob_stream(&self.reference, desc)
            .await
            .map_err(|e| classify_oci(e, &self.reference))?;
        let mut buf = BytesMut::with_capacity(usize::try_from(declared).unwrap_or(0));
        let mut hasher = Sha256::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| from_stream_error(&e, &self.reference))?;
            if (buf.len() + chunk.len()) as u64 > declared {
                return Err(PipelineError::DigestMismatch {
                    what: Mismatch::Blob,
                    expected: format!("{} ({declared} bytes)", desc.digest),
                    actual: "a longer blob".to_owned(),
                });
            }
            hasher.update(&chunk);
            buf.extend_from_slice(&chunk);
        }
        let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
        if desc.digest.starts_with("sha256:") && actual != desc.digest {
            return Err(PipelineError::DigestMismatch {
                what: Mismatch::Blob,
                expected: desc.digest.clone(),
                actual,
            });
        }
        Ok(buf.freeze())
    }
}

/// A registry client for `settings` (plain HTTP for the insecure hosts).
pub fn client(
    settings: &FetchSettings,
) -> Result<Client, oci_client::errors::OciDistributionError> {
    let config = ClientConfig {
        protocol: ClientProtocol::HttpsExcept(settings.insecure_hosts.clone()),
        extra_root_certificates: settings
            .extra_roots_pem
            .iter()
            .map(|pem| Certificate {
                encoding: CertificateEncoding::Pem,
                data: pem.clone(),
            })
            .collect(),
        connect_timeout: Some(settings.connect_timeout),
        read_timeout: Some(settings.read_timeout),
        platform_resolver: None,
        ..ClientConfig::default()
    };
    Client::try_from(config)
}

fn image_manifest(value: serde_json::Value) -> Result<OciImageManifest, PipelineError> {
    serde_json::from_value(value)
        .map_err(|e| PipelineError::unsupported(format!("unreadable image manifest: {e}")))
}

/// The index entry for Wasm (`architecture: wasm` or `os: wasi*`), or the only entry.
fn pick(index: &Index) -> Result<&str, PipelineError> {
    let wasm = index.manifests.iter().find(|m| {
        m.platform
            .as_ref()
            .is_some_and(|p| p.architecture == "wasm" || p.os.starts_with("wasi"))
    });
    match (wasm, index.manifests.as_slice()) {
        (Some(entry), _) | (None, [entry]) => Ok(&entry.digest),
        (None, entries) => Err(PipelineError::unsupported(format!(
            "an image index with {} entries and none for wasm",
            entries.len()
        ))),
    }
}
