//! Downloading a module from an `https://` URL (or `http://` from a host listed as insecure):
//! a declared length over the limit is refused before the body is read, and the body is
//! refused as soon as it passes the limit. The pin check happens in the pipeline.

use bytes::BytesMut;
use futures_util::StreamExt;
use proxlet_crds::ArtifactFormat;

use super::error::{by_status, chain};
use super::{FetchSettings, Fetched};
use crate::pipeline::PipelineError;
use crate::reference::host_port;

/// Builds the client `https://` downloads share.
pub fn client(settings: &FetchSettings) -> Result<reqwest::Client, String> {
    let roots = settings
        .extra_roots_pem
        .iter()
        .map(|pem| reqwest::Certificate::from_pem(pem).map_err(|e| chain(&e)))
        .collect::<Result<Vec<_>, _>>()?;
    reqwest::Client::builder()
        .connect_timeout(settings.connect_timeout)
        .read_timeout(settings.read_timeout)
        .tls_certs_merge(roots)
        .build()
        .map_err(|e| chain(&e))
}

/// Downloads `url`.
pub async fn fetch(
    client: &reqwest::Client,
    settings: &FetchSettings,
    url: &reqwest::Url,
) -> Result<Fetched, PipelineError> {
    let host = host_port(url);
    if url.scheme() == "http" && !settings.insecure_hosts.contains(&host) {
        return Err(PipelineError::invalid(
            url.as_str(),
            format!("plain http:// is refused unless {host} is listed as an insecure host"),
        ));
    }
    let unreachable = |e: reqwest::Error| PipelineError::RegistryUnreachable {
        registry: host.clone(),
        detail: chain(&e),
    };
    let response = client.get(url.clone()).send().await.map_err(unreachable)?;
    let status = response.status();
    if !status.is_success() {
        return Err(by_status(
            status.as_u16(),
            host.clone(),
            url.to_string(),
            "",
        ));
    }
    let limit = settings.max_module_bytes;
    if let Some(length) = response.content_length()
        && length > limit
    {
        return Err(PipelineError::too_large("the module", limit, Some(length)));
    }
    let mut body = BytesMut::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(unreachable)?;
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(PipelineError::too_large("the module", limit, None));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched {
        transferred: body.len() as u64,
        bytes: body.freeze(),
        format: ArtifactFormat::Https,
        manifest_digest: None,
    })
}
