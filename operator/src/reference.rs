//! Where a module comes from: `spec.image` and `spec.sha256` parsed into a [`Source`] and a
//! [`Pin`], with errors that say what is wrong.
//!
//! Accepted forms:
//! - `oci://registry[:port]/repository[:tag][@sha256:<64 hex>]`. The `oci://` prefix may be left
//!   out, as Istio's `WasmPlugin` allows (the CRD asks for it; the `fetch` command does not). A
//!   name without a registry (`plugin:v1`) means Docker Hub, as with `docker pull`; no tag and no
//!   digest means `:latest`. With both a tag and a digest, the digest is what is pulled.
//! - `https://host/path` (a `sha256` pin is required: a URL names no content), and `http://` for
//!   hosts the operator lists as insecure (checked when fetching).
//! - `file:///absolute/path.wasm`, for development.
//!
//! Nothing here does I/O.

use std::path::PathBuf;

use oci_client::Reference;
use proxlet_crds::Digest;

use crate::pipeline::PipelineError;

const OCI_FORM: &str = "expected oci://registry[:port]/repository[:tag][@sha256:<64 hex digits>]";

/// A parsed `spec.image`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// An OCI registry artifact.
    Oci(Reference),
    /// A module served over `https://` (or `http://` from an insecure host).
    Http(reqwest::Url),
    /// A module on the operator's own file system.
    File(PathBuf),
}

/// A `spec.sha256` pin: the digest the module must have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pin(Digest);

impl Pin {
    /// Parses 64 hex digits, with or without a `sha256:` prefix, in either case.
    pub fn parse(image: &str, pin: &str) -> Result<Self, PipelineError> {
        let hex = pin.strip_prefix("sha256:").unwrap_or(pin);
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(PipelineError::invalid(
                image,
                format!("sha256 {pin:?} is not 64 hexadecimal digits"),
            ));
        }
        Digest::from_hex(&hex.to_ascii_lowercase())
            .map(Self)
            .map_err(|e| PipelineError::invalid(image, e.to_string()))
    }

    /// The 64 lowercase hex digits.
    pub fn hex(&self) -> &str {
        self.0.hex()
    }

    /// The digest the module must have.
    pub fn digest(&self) -> &Digest {
        &self.0
    }
}

impl Source {
    /// Parses `spec.image`.
    pub fn parse(image: &str) -> Result<Self, PipelineError> {
        let trimmed = image.trim();
        if trimmed.is_empty() {
            return Err(PipelineError::invalid(image, "the image is empty"));
        }
        match trimmed.split_once("://") {
            Some(("oci", rest)) => parse_oci(image, rest),
            Some(("https" | "http", _)) => parse_http(image, trimmed),
            Some(("file", _)) => parse_file(image, trimmed),
            Some((scheme, _)) => Err(PipelineError::invalid(
                image,
                format!("unknown scheme {scheme:?}: use oci://, https:// or file://"),
            )),
            None => parse_oci(image, trimmed),
        }
    }

    /// The key under which the operator remembers what this source resolved to.
    pub fn key(&self) -> String {
        match self {
            Self::Oci(reference) => format!("oci://{}", reference.whole()),
            Self::Http(url) => url.to_string(),
            Self::File(path) => format!("file://{}", path.display()),
        }
    }

    /// The host a failure is reported against: registry, URL host or `file`.
    pub fn host(&self) -> String {
        match self {
            Self::Oci(reference) => reference.registry().to_owned(),
            Self::Http(url) => host_port(url),
            Self::File(_) => "file".to_owned(),
        }
    }
}

/// `host[:port]` of a URL, the form insecure hosts are listed in.
pub fn host_port(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

fn parse_oci(image: &str, rest: &str) -> Result<Source, PipelineError> {
    let path = rest.split_once('/').map_or(rest, |(_, path)| path);
    let repository = path.split([':', '@']).next().unwrap_or(path);
    if repository.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(PipelineError::invalid(
            image,
            "the repository name must be lowercase",
        ));
    }
    if let Some((_, digest)) = rest.split_once('@') {
        let hex = digest.strip_prefix("sha256:").unwrap_or_default();
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(PipelineError::invalid(
                image,
                format!("the digest {digest:?} is not sha256: and 64 hexadecimal digits"),
            ));
        }
    }
    let reference = Reference::try_from(rest)
        .map_err(|e| PipelineError::invalid(image, format!("{e} ({OCI_FORM})")))?;
    if reference.repository().is_empty() {
        return Err(PipelineError::invalid(
            image,
            format!("no repository ({OCI_FORM})"),
        ));
    }
    Ok(Source::Oci(reference))
}

fn parse_http(image: &str, url: &str) -> Result<Source, PipelineError> {
    let url = reqwest::Url::parse(url).map_err(|e| PipelineError::invalid(image, e.to_string()))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(PipelineError::invalid(image, "the URL has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(PipelineError::invalid(
            image,
            "credentials do not belong in the URL",
        ));
    }
    Ok(Source::Http(url))
}

fn parse_file(image: &str, url: &str) -> Result<Source, PipelineError> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| PipelineError::invalid(image, e.to_string()))?;
    if parsed
        .host_str()
        .is_some_and(|h| !h.is_empty() && h != "localhost")
    {
        return Err(PipelineError::invalid(
            image,
            "a file:// URL names a local absolute path: file:///path/to/plugin.wasm",
        ));
    }
    let path = parsed
        .to_file_path()
        .map_err(|()| PipelineError::invalid(image, "not an absolute file path"))?;
    Ok(Source::File(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Reason;

    fn oci(image: &str) -> Reference {
        match Source::parse(image) {
            Ok(Source::Oci(r)) => r,
            other => panic!("{image}: {other:?}"),
        }
    }

    fn problem(image: &str) -> String {
        match Source::parse(image) {
            Err(e) => {
                assert_eq!(e.reason(), Reason::InvalidReference);
                e.to_string()
            }
            Ok(s) => panic!("{image} parsed as {s:?}"),
        }
    }

    #[test]
    fn oci_with_port_tag_and_digest() {
        let r = oci("oci://127.0.0.1:5000/plugins/auth:v1");
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "plugins/auth");
        assert_eq!(r.tag(), Some("v1"));
        let digest = format!("sha256:{}", "ab".repeat(32));
        let r = oci(&format!("oci://ghcr.io/acme/auth:v1@{digest}"));
        assert_eq!(r.digest(), Some(digest.as_str()));
        assert_eq!(r.tag(), Some("v1"));
    }

    #[test]
    fn oci_prefix_is_optional_and_defaults_follow_docker() {
        assert_eq!(
            oci("localhost:5000/auth"),
            oci("oci://localhost:5000/auth:latest")
        );
        let r = oci("auth:v2");
        assert_eq!(r.registry(), "docker.io");
        assert_eq!(r.repository(), "library/auth");
    }

    #[test]
    fn bad_oci_references_say_what_is_wrong() {
        assert!(problem("oci://Registry.io/Auth:v1").contains("lowercase"));
        assert!(problem("oci://r.io/auth@sha256:abc").contains("digest"));
        assert!(problem("oci://r.io/auth:bad tag").contains("oci://registry"));
        assert!(problem("").contains("empty"));
        assert!(problem("ftp://host/x.wasm").contains("unknown scheme \"ftp\""));
    }

    #[test]
    fn urls_and_files() {
        let Ok(Source::Http(url)) = Source::parse("https://example.com:8443/p.wasm") else {
            panic!("https");
        };
        assert_eq!(host_port(&url), "example.com:8443");
        assert!(problem("https://user:pw@example.com/p.wasm").contains("credentials"));
        assert_eq!(
            Source::parse("file:///opt/plugins/p.wasm").ok(),
            Some(Source::File(PathBuf::from("/opt/plugins/p.wasm")))
        );
        assert!(problem("file://plugins/p.wasm").contains("absolute"));
    }

    #[test]
    fn pins() {
        let hex = "AB".repeat(32);
        let pin = Pin::parse("i", &format!("sha256:{hex}")).ok();
        assert_eq!(
            pin.map(|p| p.digest().to_string()),
            Some(format!("sha256:{}", "ab".repeat(32)))
        );
        assert!(Pin::parse("i", "abc").is_err());
        assert!(Pin::parse("i", &"zz".repeat(32)).is_err());
    }
}
