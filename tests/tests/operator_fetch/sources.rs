//! Sources other than a plain-HTTP registry: a TLS registry with a private CA, `https://` and
//! `http://` URLs, and `file://` paths.

use bytes::Bytes;
use proxlet_tests::support::{body, server::Server};

use super::*;

/// Serves `module` at `/plugin.wasm` (404 elsewhere).
async fn serve(module: Vec<u8>) -> Result<Server> {
    let module = Bytes::from(module);
    Server::start(move |request| {
        let module = module.clone();
        async move {
            let (status, content) = match request.uri().path() {
                "/plugin.wasm" => (200, module),
                _ => (404, Bytes::new()),
            };
            http::Response::builder()
                .status(status)
                .body(body::full(content))
                .unwrap_or_else(|_| http::Response::new(body::empty()))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn http_urls_need_a_pin_and_an_insecure_host() -> Result<()> {
    let (_, bytes) = module("header-modifier")?;
    let server = serve(bytes.clone()).await?;
    let host = server.addr().to_string();
    let op = Op::new()?;
    let url = format!("http://{host}/plugin.wasm");
    let pin = digest(&bytes);

    let fetched = op
        .fetch(&url, &["--sha256", &pin, "--insecure-registry", &host])
        .await?;
    let out = fetched.json()?;
    ensure!(
        out["digest"] == pin && out["format"] == "Https" && out["cached"] == false,
        "{out}"
    );
    let again = op
        .fetch(&url, &["--sha256", &pin, "--insecure-registry", &host])
        .await?;
    ensure!(again.json()?["cached"] == true, "{again:?}");

    let unpinned = op.fetch(&url, &["--insecure-registry", &host]).await?;
    unpinned.fails_with("InvalidReference", "needs a sha256 pin")?;
    let (_, other) = module("noop")?;
    let wrong = digest(&other);
    let mismatch = op
        .fetch(
            &url,
            &[
                "--sha256",
                &wrong,
                "--insecure-registry",
                &host,
                "--pull-policy",
                "Always",
            ],
        )
        .await?;
    mismatch.fails_with("DigestMismatch", "sha256 pin")?;
    let plain = op
        .fetch(&url, &["--sha256", &pin, "--pull-policy", "Always"])
        .await?;
    plain.fails_with("InvalidReference", "insecure")?;
    let missing = format!("http://{host}/missing.wasm");
    // (IfNotPresent would answer from the cache: it holds content with that pin.)
    let not_found = op
        .fetch(
            &missing,
            &[
                "--sha256",
                &pin,
                "--insecure-registry",
                &host,
                "--pull-policy",
                "Always",
            ],
        )
        .await?;
    not_found.fails_with("ImageNotFound", "404")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn file_urls_are_read_every_time() -> Result<()> {
    let (path, bytes) = module("logger")?;
    let op = Op::new()?;
    let url = format!("file://{}", path.display());
    for _ in 0..2 {
        let out = op.fetch(&url, &[]).await?;
        let out = out.json()?;
        ensure!(
            out["digest"] == digest(&bytes) && out["format"] == "File",
            "{out}"
        );
        ensure!(out["cached"] == false, "file:// is read again: {out}");
    }
    let missing = op.fetch("file:///nonexistent/plugin.wasm", &[]).await?;
    missing.fails_with("ImageNotFound", "no such file")?;
    op.fetch("file://relative/plugin.wasm", &[])
        .await?
        .fails_with("InvalidReference", "absolute")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tls_registry_is_trusted_through_its_ca() -> Result<()> {
    let registry = Registry::builder().tls().start().await?;
    let ca = registry.ca().context("ca")?.display().to_string();
    let op = Op::new()?;
    let (path, bytes) = module("header-modifier")?;
    let image = registry.image("plugins/hm:v1");
    let file = path.display().to_string();
    let published = op
        .run(&["publish", &file, &image, "--registry-ca", &ca])
        .await?;
    published.json()?;

    let untrusted = op.fetch(&image, &[]).await?;
    untrusted.fails_with("RegistryUnreachable", "certificate")?;
    let trusted = op.fetch(&image, &["--registry-ca", &ca]).await?;
    ensure!(trusted.json()?["digest"] == digest(&bytes), "{trusted:?}");

    // The registry's blob URL is an https:// source with real TLS.
    let url = format!(
        "https://{}/v2/plugins/hm/blobs/{}",
        registry.host(),
        digest(&bytes)
    );
    let pin = digest(&bytes);
    let args = [
        "--registry-ca",
        ca.as_str(),
        "--sha256",
        pin.as_str(),
        "--pull-policy",
        "Always",
    ];
    let https = op.fetch(&url, &args).await?;
    ensure!(
        https.json()?["format"] == "Https" && https.json()?["digest"] == pin,
        "{https:?}"
    );
    Ok(())
}
