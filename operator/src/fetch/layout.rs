//! The three packagings of a Wasm module in an OCI registry, told apart by media types:
//!
//! - `Cncf`: the CNCF TAG Runtime "Wasm OCI Artifact layout": config
//!   `application/vnd.wasm.config.v0+json` and exactly one `application/wasm` layer (a component
//!   split across several layers is not a Proxy-Wasm module and is refused);
//! - `Solo`: the older layout with one `application/vnd.module.wasm.content.layer.v1+wasm` layer
//!   (config `application/vnd.module.wasm.config.v1+json`);
//! - `Compat`: an ordinary image (Istio's "compat" variant) whose last layer is a tar, usually
//!   gzipped, holding `plugin.wasm`.
//!
//! Anything else is refused with the media types found.

use oci_client::manifest::{
    IMAGE_DOCKER_LAYER_GZIP_MEDIA_TYPE, IMAGE_DOCKER_LAYER_TAR_MEDIA_TYPE,
    IMAGE_LAYER_GZIP_MEDIA_TYPE, IMAGE_LAYER_MEDIA_TYPE, OciDescriptor, OciImageManifest,
};
use proxlet_crds::ArtifactFormat;

use crate::pipeline::PipelineError;

/// Config media type of the CNCF layout.
pub const CNCF_CONFIG: &str = "application/vnd.wasm.config.v0+json";
/// Layer media type of the CNCF layout.
pub const CNCF_LAYER: &str = "application/wasm";
/// Config media type of the Solo layout.
pub const SOLO_CONFIG: &str = "application/vnd.module.wasm.config.v1+json";
/// Layer media type of the Solo layout.
pub const SOLO_LAYER: &str = "application/vnd.module.wasm.content.layer.v1+wasm";
/// The file a compat image's layer holds.
pub const COMPAT_FILE: &str = "plugin.wasm";
/// The manifest annotation that marks a compat image (optional when reading).
pub const COMPAT_ANNOTATION: (&str, &str) = ("module.wasm.image/variant", "compat");

/// How the module sits in its layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packing {
    /// The layer is the module.
    Raw,
    /// The layer is a tar holding [`COMPAT_FILE`], gzipped or not.
    Tar { gzip: bool },
}

/// The layout of an image manifest: which layer holds the module and how.
#[derive(Clone, Debug)]
pub struct Layout {
    pub format: ArtifactFormat,
    pub layer: OciDescriptor,
    pub packing: Packing,
}

/// Recognises the layout of `manifest`.
pub fn detect(manifest: &OciImageManifest) -> Result<Layout, PipelineError> {
    let layers = &manifest.layers;
    if manifest.config.media_type == CNCF_CONFIG {
        return match layers.as_slice() {
            [layer] if layer.media_type == CNCF_LAYER => Ok(raw(ArtifactFormat::Cncf, layer)),
            _ => Err(PipelineError::unsupported(format!(
                "a CNCF Wasm artifact must have exactly one {CNCF_LAYER} layer; found {}",
                describe(manifest)
            ))),
        };
    }
    let solo: Vec<_> = layers
        .iter()
        .filter(|l| l.media_type == SOLO_LAYER)
        .collect();
    match solo.as_slice() {
        [layer] => return Ok(raw(ArtifactFormat::Solo, layer)),
        [] => {}
        _ => {
            return Err(PipelineError::unsupported(format!(
                "{} {SOLO_LAYER} layers; expected one",
                solo.len()
            )));
        }
    }
    if let Some(layer) = layers.last()
        && let Some(gzip) = tar_layer(&layer.media_type)
    {
        return Ok(Layout {
            format: ArtifactFormat::Compat,
            layer: layer.clone(),
            packing: Packing::Tar { gzip },
        });
    }
    Err(PipelineError::unsupported(format!(
        "no Wasm module layout matches {}; expected config {CNCF_CONFIG} with one \
         {CNCF_LAYER} layer, one {SOLO_LAYER} layer, or an image whose last layer is a tar \
         holding {COMPAT_FILE}",
        describe(manifest)
    )))
}

fn raw(format: ArtifactFormat, layer: &OciDescriptor) -> Layout {
    Layout {
        format,
        layer: layer.clone(),
        packing: Packing::Raw,
    }
}

/// `Some(gzip)` for the tar layer media types of OCI and Docker images.
fn tar_layer(media_type: &str) -> Option<bool> {
    match media_type {
        IMAGE_LAYER_GZIP_MEDIA_TYPE | IMAGE_DOCKER_LAYER_GZIP_MEDIA_TYPE => Some(true),
        IMAGE_LAYER_MEDIA_TYPE | IMAGE_DOCKER_LAYER_TAR_MEDIA_TYPE => Some(false),
        _ => None,
    }
}

/// `config <type>, layers [<type>, …]` for error messages.
fn describe(manifest: &OciImageManifest) -> String {
    let layers: Vec<&str> = manifest
        .layers
        .iter()
        .map(|l| l.media_type.as_str())
        .collect();
    format!(
        "config {}, layers [{}]",
        manifest.config.media_type,
        layers.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Reason;

    fn manifest(config: &str, layers: &[&str]) -> OciImageManifest {
        let descriptor = |media_type: &str| OciDescriptor {
            media_type: media_type.to_owned(),
            digest: format!("sha256:{}", "0".repeat(64)),
            size: 1,
            ..OciDescriptor::default()
        };
        OciImageManifest {
            config: descriptor(config),
            layers: layers.iter().map(|l| descriptor(l)).collect(),
            ..OciImageManifest::default()
        }
    }

    fn format(config: &str, layers: &[&str]) -> Result<(ArtifactFormat, Packing), String> {
        detect(&manifest(config, layers))
            .map(|l| (l.format, l.packing))
            .map_err(|e| {
                assert_eq!(e.reason(), Reason::UnsupportedArtifact);
                e.to_string()
            })
    }

    #[test]
    fn the_three_layouts() {
        assert_eq!(
            format(CNCF_CONFIG, &[CNCF_LAYER]),
            Ok((ArtifactFormat::Cncf, Packing::Raw))
        );
        assert_eq!(
            format(SOLO_CONFIG, &[SOLO_LAYER]),
            Ok((ArtifactFormat::Solo, Packing::Raw))
        );
        assert_eq!(
            format(
                "application/vnd.oci.image.config.v1+json",
                &[IMAGE_LAYER_GZIP_MEDIA_TYPE]
            ),
            Ok((ArtifactFormat::Compat, Packing::Tar { gzip: true }))
        );
        assert_eq!(
            format(
                "application/vnd.docker.container.image.v1+json",
                &[
                    IMAGE_DOCKER_LAYER_GZIP_MEDIA_TYPE,
                    IMAGE_DOCKER_LAYER_TAR_MEDIA_TYPE
                ]
            ),
            Ok((ArtifactFormat::Compat, Packing::Tar { gzip: false }))
        );
    }

    #[test]
    fn refusals_name_the_media_types() {
        let e = format(CNCF_CONFIG, &[CNCF_LAYER, CNCF_LAYER]).unwrap_err();
        assert!(e.contains("exactly one application/wasm"), "{e}");
        let e = format("application/x-unknown", &["application/x-blob"]).unwrap_err();
        assert!(
            e.contains("config application/x-unknown, layers [application/x-blob]"),
            "{e}"
        );
        let e = format("application/vnd.oci.image.config.v1+json", &[]).unwrap_err();
        assert!(e.contains("layers []"), "{e}");
    }
}
