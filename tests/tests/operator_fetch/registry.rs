//! The three layouts, credentials, and what a registry can answer.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn the_three_layouts_resolve_to_the_module_digest() -> Result<()> {
    let registry = Registry::start().await?;
    let op = Op::new()?;
    let (path, bytes) = module("header-modifier")?;
    for (flag, format) in [("cncf", "Cncf"), ("solo", "Solo"), ("compat", "Compat")] {
        let image = registry.image(&format!("plugins/header-modifier:{flag}"));
        let published = op.publish(&path, &image, flag).await?;
        ensure!(
            published.json()?["digest"] == digest(&bytes),
            "{published:?}"
        );
        let fetched = op.fetch_from(&registry, &image, &[]).await?;
        let out = fetched.json()?;
        ensure!(out["digest"] == digest(&bytes), "{flag}: {out}");
        ensure!(out["size"] == bytes.len(), "{flag}: {out}");
        ensure!(out["format"] == format, "{flag}: {out}");
        ensure!(out["abi"] == "0.2.1", "{flag}: {out}");
        ensure!(out["cached"] == false, "{flag}: {out}");
        ensure!(
            out["manifestDigest"]
                .as_str()
                .is_some_and(|d| d.starts_with("sha256:"))
        );
    }
    ensure!(
        op.cached()? == [cache_name(&bytes)],
        "one module, cached once"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cncf_layout_is_what_the_spec_describes() -> Result<()> {
    let registry = Registry::start().await?;
    let op = Op::new()?;
    let (path, bytes) = module("noop")?;
    let image = registry.image("plugins/noop:v1");
    op.publish(&path, &image, "cncf").await?.json()?;
    let get = |path: String, accept: &'static str| {
        let addr = registry.host().parse();
        async move {
            let mut conn = proxlet_tests::support::client::Connection::http1(addr?).await?;
            let request = http::Request::get(path)
                .header("accept", accept)
                .body(proxlet_tests::support::body::empty())?;
            anyhow::Ok(conn.send(request).await?.body)
        }
    };
    let manifest: Value = serde_json::from_slice(
        &get(
            "/v2/plugins/noop/manifests/v1".into(),
            "application/vnd.oci.image.manifest.v1+json",
        )
        .await?,
    )?;
    ensure!(manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json");
    ensure!(manifest["config"]["mediaType"] == "application/vnd.wasm.config.v0+json");
    let layers = manifest["layers"].as_array().context("layers")?;
    ensure!(
        layers.len() == 1 && layers[0]["mediaType"] == "application/wasm",
        "{manifest}"
    );
    ensure!(layers[0]["digest"] == digest(&bytes));
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .context("config digest")?;
    let config: Value = serde_json::from_slice(
        &get(format!("/v2/plugins/noop/blobs/{config_digest}"), "*/*").await?,
    )?;
    ensure!(
        config["architecture"] == "wasm" && config["os"] == "wasip1",
        "{config}"
    );
    ensure!(
        config["layerDigests"] == json!([digest(&bytes)]),
        "{config}"
    );
    ensure!(
        config["created"].as_str().is_some_and(|c| c.ends_with('Z')),
        "{config}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_htpasswd_registry_needs_the_right_credentials() -> Result<()> {
    let registry = Registry::builder()
        .htpasswd("alice", "wonderland")
        .start()
        .await?;
    let op = Op::new()?;
    let (path, bytes) = module("header-modifier")?;
    let image = registry.image("private/header-modifier:v1");

    op.publish(&path, &image, "cncf")
        .await?
        .fails_with("Unauthorized", "401")?;
    op.login(&registry.host(), "alice", "wonderland")?;
    op.publish(&path, &image, "cncf").await?.json()?;

    let secrets = tempfile::tempdir()?;
    let secret = |name: &str, value: Value| -> Result<String> {
        let path = secrets.path().join(name);
        std::fs::write(&path, value.to_string())?;
        Ok(path.display().to_string())
    };
    let right = secret(
        "right.json",
        dockerconfigjson(&registry.host(), "alice", "wonderland"),
    )?;
    let wrong = secret(
        "wrong.json",
        dockerconfigjson(&registry.host(), "alice", "guess"),
    )?;
    let other = secret(
        "other.json",
        dockerconfigjson("elsewhere.example", "alice", "wonderland"),
    )?;
    let invalid = secret("invalid.json", json!({"not": "a docker config"}))?;
    let missing = secrets.path().join("missing.json").display().to_string();

    let fetch = |secret: Option<&str>| {
        let args: Vec<String> = secret
            .map(|s| vec!["--pull-secret".to_owned(), s.to_owned()])
            .unwrap_or_default();
        let (op, registry, image) = (&op, &registry, &image);
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            op.fetch_from(registry, image, &args).await
        }
    };
    let ok = fetch(Some(&right)).await?;
    ensure!(ok.json()?["digest"] == digest(&bytes), "{ok:?}");
    std::fs::remove_dir_all(op.cache.path())?;
    fetch(Some(&wrong))
        .await?
        .fails_with("Unauthorized", "check the credentials")?;
    fetch(None)
        .await?
        .fails_with("Unauthorized", &registry.host())?;
    fetch(Some(&other))
        .await?
        .fails_with("Unauthorized", "401")?;
    fetch(Some(&invalid))
        .await?
        .fails_with("PullSecretInvalid", "no \"auths\"")?;
    fetch(Some(&missing))
        .await?
        .fails_with("PullSecretMissing", "missing.json")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn registry_answers_are_classified() -> Result<()> {
    let registry = Registry::start().await?;
    let op = Op::new()?;
    let (path, _) = module("noop")?;
    op.publish(&path, &registry.image("plugins/noop:v1"), "cncf")
        .await?
        .json()?;

    let unknown_tag = op
        .fetch_from(&registry, &registry.image("plugins/noop:v2"), &[])
        .await?;
    unknown_tag.fails_with("ImageNotFound", "plugins/noop:v2")?;
    let unknown_repo = op
        .fetch_from(&registry, &registry.image("plugins/nope:v1"), &[])
        .await?;
    unknown_repo.fails_with("ImageNotFound", "plugins/nope")?;
    let missing_digest = registry.image(&format!("plugins/noop@sha256:{}", "0".repeat(64)));
    op.fetch_from(&registry, &missing_digest, &[])
        .await?
        .fails_with("ImageNotFound", "noop")?;

    let dead = format!("oci://{}/plugins/noop:v1", dead_host()?);
    let host = dead
        .trim_start_matches("oci://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let unreachable = op.fetch(&dead, &["--insecure-registry", &host]).await?;
    unreachable.fails_with("RegistryUnreachable", &host)?;
    // Without --insecure-registry the operator speaks TLS to a plain-HTTP registry: refused.
    let tls = op.fetch(&registry.image("plugins/noop:v1"), &[]).await?;
    tls.fails_with("RegistryUnreachable", &registry.host())?;

    op.fetch("oci://Registry.example/Plugin:v1", &[])
        .await?
        .fails_with("InvalidReference", "lowercase")?;
    op.fetch("ftp://example.com/p.wasm", &[])
        .await?
        .fails_with("InvalidReference", "unknown scheme")?;
    ensure!(op.cached()?.is_empty());
    Ok(())
}
