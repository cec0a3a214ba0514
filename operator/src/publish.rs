//! Pushing a module to an OCI registry in any of the three layouts the operator reads, for plugin
//! authors (`proxlet-operator publish`) and for tests that need all three.
//!
//! - `Cncf` (the default), after the CNCF TAG Runtime Wasm OCI artifact layout: an image manifest
//!   whose config has media type `application/vnd.wasm.config.v0+json` and holds `created`
//!   (RFC 3339), `architecture: "wasm"`, `os: "wasip1"` (a core module; `component` is only for
//!   `wasip2` components, so it is left out) and `layerDigests` (the layer digests in manifest
//!   order); one `application/wasm` layer, titled with the file name.
//! - `Solo`: one `application/vnd.module.wasm.content.layer.v1+wasm` layer and an empty
//!   `application/vnd.module.wasm.config.v1+json` config.
//! - `Compat`: an OCI image whose one `tar+gzip` layer holds `plugin.wasm`, with an image config
//!   (`wasm`/`wasip1`, the layer's diff id) and the `module.wasm.image/variant: compat`
//!   annotation.
//!
//! The bytes are pushed as given (checking them is `fetch`'s job). Blobs go first, then the
//! manifest, serialised here so that the digest reported is the digest of the bytes sent.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::SystemTime;

use flate2::{Compression, write::GzEncoder};
use oci_client::manifest::{
    IMAGE_CONFIG_MEDIA_TYPE, IMAGE_LAYER_GZIP_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE, OciDescriptor,
    OciImageManifest,
};
use oci_client::{Client, Reference};
use proxlet_crds::ArtifactFormat;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::fetch::error::classify_oci;
use crate::fetch::layout::{
    CNCF_CONFIG, CNCF_LAYER, COMPAT_ANNOTATION, COMPAT_FILE, SOLO_CONFIG, SOLO_LAYER,
};
use crate::fetch::{self, Credentials, FetchSettings, oci};
use crate::pipeline::PipelineError;
use crate::reference::Source;

const TITLE: &str = "org.opencontainers.image.title";
const CREATED: &str = "org.opencontainers.image.created";

/// The layout to publish in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    Cncf,
    Solo,
    Compat,
}

/// One module to push.
#[derive(Clone, Debug)]
pub struct PublishRequest {
    pub module: Vec<u8>,
    /// The module's file name, for the layer's title annotation.
    pub file_name: String,
    /// `oci://host/repo:tag`.
    pub image: String,
    pub layout: Layout,
    /// Plain HTTP to the registry.
    pub insecure: bool,
    /// PEM certificates of private registry CAs.
    pub extra_roots_pem: Vec<Vec<u8>>,
    pub credentials: Credentials,
}

/// What was pushed.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Published {
    pub image: String,
    /// The manifest's digest: `oci://host/repo@<manifest_digest>` names exactly this push.
    pub manifest_digest: String,
    /// `sha256:<hex>` of the module.
    pub digest: String,
    pub size: u64,
    pub format: ArtifactFormat,
}

struct Blob {
    media_type: &'static str,
    data: Vec<u8>,
    annotations: Option<BTreeMap<String, String>>,
}

/// Pushes `request.module` under `request.image`.
pub async fn publish(request: PublishRequest) -> Result<Published, PipelineError> {
    fetch::install_crypto();
    let Source::Oci(reference) = Source::parse(&request.image)? else {
        return Err(PipelineError::invalid(
            &request.image,
            "publish needs an oci:// image",
        ));
    };
    let settings = FetchSettings {
        insecure_hosts: if request.insecure {
            vec![reference.registry().to_owned()]
        } else {
            Vec::new()
        },
        extra_roots_pem: request.extra_roots_pem.clone(),
        ..FetchSettings::default()
    };
    let client = oci::client(&settings).map_err(|e| classify_oci(e, &reference))?;
    let auth = request.credentials.for_registry(reference.registry());
    client
        .store_auth_if_needed(reference.resolve_registry(), &auth)
        .await;

    let (layer, config) = artifact(&request)?;
    let mut manifest = OciImageManifest {
        media_type: Some(OCI_IMAGE_MEDIA_TYPE.to_owned()),
        config: descriptor(&config),
        layers: vec![descriptor(&layer)],
        annotations: Some(BTreeMap::from([(CREATED.to_owned(), now())])),
        ..OciImageManifest::default()
    };
    if request.layout == Layout::Compat
        && let Some(annotations) = manifest.annotations.as_mut()
    {
        annotations.insert(
            COMPAT_ANNOTATION.0.to_owned(),
            COMPAT_ANNOTATION.1.to_owned(),
        );
    }
    push_blob(&client, &reference, &layer).await?;
    push_blob(&client, &reference, &config).await?;
    let body = serde_json::to_vec(&manifest)
        .map_err(|e| PipelineError::unsupported(format!("manifest: {e}")))?;
    let content_type = http_value(OCI_IMAGE_MEDIA_TYPE);
    client
        .push_manifest_raw(&reference, body.clone(), content_type)
        .await
        .map_err(|e| classify_oci(e, &reference))?;
    Ok(Published {
        image: format!("oci://{}", reference.whole()),
        manifest_digest: sha256(&body),
        digest: sha256(&request.module),
        size: request.module.len() as u64,
        format: match request.layout {
            Layout::Cncf => ArtifactFormat::Cncf,
            Layout::Solo => ArtifactFormat::Solo,
            Layout::Compat => ArtifactFormat::Compat,
        },
    })
}

/// The layer and config blobs of the requested layout.
fn artifact(request: &PublishRequest) -> Result<(Blob, Blob), PipelineError> {
    let module = request.module.clone();
    let blob = |media_type, data, annotations| Blob {
        media_type,
        data,
        annotations,
    };
    Ok(match request.layout {
        Layout::Cncf => {
            let title = BTreeMap::from([(TITLE.to_owned(), request.file_name.clone())]);
            let layer = blob(CNCF_LAYER, module, Some(title));
            let config = json!({
                "created": now(),
                "architecture": "wasm",
                "os": "wasip1",
                "layerDigests": [sha256(&layer.data)],
            });
            (
                layer,
                blob(CNCF_CONFIG, config.to_string().into_bytes(), None),
            )
        }
        Layout::Solo => (
            blob(SOLO_LAYER, module, None),
            blob(SOLO_CONFIG, b"{}".to_vec(), None),
        ),
        Layout::Compat => {
            let tar = tar_of_module(&request.module)
                .map_err(|e| PipelineError::unsupported(format!("building the layer: {e}")))?;
            let config = json!({
                "created": now(),
                "architecture": "wasm",
                "os": "wasip1",
                "config": {},
                "rootfs": { "type": "layers", "diff_ids": [sha256(&tar)] },
            });
            let gz = gzip(&tar)
                .map_err(|e| PipelineError::unsupported(format!("compressing the layer: {e}")))?;
            let config = blob(
                IMAGE_CONFIG_MEDIA_TYPE,
                config.to_string().into_bytes(),
                None,
            );
            (blob(IMAGE_LAYER_GZIP_MEDIA_TYPE, gz, None), config)
        }
    })
}

async fn push_blob(
    client: &Client,
    reference: &Reference,
    blob: &Blob,
) -> Result<(), PipelineError> {
    client
        .push_blob(reference, blob.data.clone(), &sha256(&blob.data))
        .await
        .map(drop)
        .map_err(|e| classify_oci(e, reference))
}

fn descriptor(blob: &Blob) -> OciDescriptor {
    OciDescriptor {
        media_type: blob.media_type.to_owned(),
        digest: sha256(&blob.data),
        size: i64::try_from(blob.data.len()).unwrap_or(i64::MAX),
        annotations: blob.annotations.clone(),
        ..OciDescriptor::default()
    }
}

/// A tar with `plugin.wasm` (mode 0644, owned by root, time 0: the same module gives the same
/// layer).
fn tar_of_module(module: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(module.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    builder.append_data(&mut header, COMPAT_FILE, module)?;
    builder.into_inner()
}

fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes)?;
    encoder.finish()
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

fn http_value(media_type: &'static str) -> reqwest::header::HeaderValue {
    reqwest::header::HeaderValue::from_static(media_type)
}
