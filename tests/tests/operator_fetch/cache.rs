//! The module cache seen from the command line: every `fetch` is a new process, so each hit
//! here is also a hit across a restart.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn if_not_present_answers_from_the_cache_even_without_the_registry() -> Result<()> {
    let registry = Registry::start().await?;
    let host = registry.host();
    let op = Op::new()?;
    let (path, bytes) = module("header-modifier")?;
    let image = registry.image("plugins/hm:v1");
    op.publish(&path, &image, "compat").await?.json()?;

    let first = op.fetch_from(&registry, &image, &[]).await?;
    ensure!(first.json()?["cached"] == false, "{first:?}");
    let second = op.fetch_from(&registry, &image, &[]).await?;
    ensure!(second.json()?["cached"] == true, "{second:?}");
    ensure!(second.json()?["format"] == "Compat" && second.json()?["digest"] == digest(&bytes));
    let by_manifest = format!(
        "oci://{host}/plugins/hm@{}",
        first.json()?["manifestDigest"]
            .as_str()
            .context("manifest digest")?
    );

    registry.stop().await?;
    let offline = op.fetch(&image, &["--insecure-registry", &host]).await?;
    ensure!(offline.json()?["cached"] == true, "{offline:?}");
    let pinned = op
        .fetch(&by_manifest, &["--insecure-registry", &host])
        .await?;
    ensure!(pinned.json()?["digest"] == digest(&bytes), "{pinned:?}");
    let always = op
        .fetch(
            &image,
            &["--insecure-registry", &host, "--pull-policy", "Always"],
        )
        .await?;
    always.fails_with("RegistryUnreachable", &host)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn always_follows_a_tag_that_moved() -> Result<()> {
    let registry = Registry::start().await?;
    let op = Op::new()?;
    let (first_path, first) = module("noop")?;
    let (second_path, second) = module("logger")?;
    let image = registry.image("plugins/moving:stable");
    op.publish(&first_path, &image, "cncf").await?.json()?;
    ensure!(op.fetch_from(&registry, &image, &[]).await?.json()?["digest"] == digest(&first));

    op.publish(&second_path, &image, "cncf").await?.json()?;
    let stale = op.fetch_from(&registry, &image, &[]).await?;
    ensure!(
        stale.json()?["digest"] == digest(&first),
        "IfNotPresent keeps the cached tag"
    );
    let always = ["--pull-policy", "Always"];
    let moved = op.fetch_from(&registry, &image, &always).await?;
    ensure!(moved.json()?["digest"] == digest(&second) && moved.json()?["cached"] == false);
    let again = op.fetch_from(&registry, &image, &always).await?;
    ensure!(
        again.json()?["cached"] == true,
        "same manifest, no download: {again:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cache_bound_evicts_the_least_recently_used_module() -> Result<()> {
    let registry = Registry::start().await?;
    let host = registry.host();
    let op = Op::new()?;
    let (a_path, a) = module("header-modifier")?;
    let (b_path, b) = module("logger")?;
    let (c_path, c) = module("noop")?;
    let bound = (a.len() + b.len().max(c.len()) + 1).to_string();
    let mut images = Vec::new();
    for (name, path) in [("a", &a_path), ("b", &b_path), ("c", &c_path)] {
        let image = registry.image(&format!("plugins/{name}:v1"));
        op.publish(path, &image, "cncf").await?.json()?;
        images.push(image);
    }
    let fetch = |image: &str| {
        let args = [
            "--insecure-registry",
            host.as_str(),
            "--cache-max-bytes",
            bound.as_str(),
        ];
        let (op, image) = (&op, image.to_owned());
        async move { op.fetch(&image, &args).await }
    };
    fetch(&images[0]).await?.json()?;
    fetch(&images[1]).await?.json()?;
    // Using a again makes b the least recently used when c arrives.
    ensure!(fetch(&images[0]).await?.json()?["cached"] == true);
    fetch(&images[2]).await?.json()?;
    let mut expected = vec![cache_name(&a), cache_name(&c)];
    expected.sort();
    ensure!(op.cached()? == expected, "cache holds {:?}", op.cached()?);

    registry.stop().await?;
    ensure!(fetch(&images[0]).await?.json()?["cached"] == true);
    ensure!(fetch(&images[2]).await?.json()?["cached"] == true);
    fetch(&images[1])
        .await?
        .fails_with("RegistryUnreachable", &host)?;
    Ok(())
}
