//! Content the operator must refuse before anything is cached: wrong pins, tampered blobs,
//! bytes that are not a Proxy-Wasm module, oversized modules, unknown layouts, tar bombs.

use proxlet_tests::support::artifacts::{
    bomb_part, gz, manifest, push_compat, tar_header, zero_block,
};

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn bad_content_is_refused_with_its_reason_and_never_cached() -> Result<()> {
    let registry = Registry::start().await?;
    let op = Op::new()?;
    let files = tempfile::tempdir()?;
    let (path, bytes) = module("header-modifier")?;
    let (_, other) = module("noop")?;
    let image = registry.image("plugins/hm:v1");
    op.publish(&path, &image, "cncf").await?.json()?;

    let other_pin = digest(&other);
    let pinned = op
        .fetch_from(&registry, &image, &["--sha256", &other_pin])
        .await?;
    pinned.fails_with("DigestMismatch", "sha256 pin")?;

    for (name, content, reason, words) in [
        (
            "text",
            b"this is not wasm".to_vec(),
            "NotWasm",
            "instead of the magic",
        ),
        (
            "empty",
            b"\0asm\x01\0\0\0".to_vec(),
            "NoProxyWasmAbi",
            "proxy_abi_version",
        ),
        (
            "component",
            b"\0asm\x0d\0\x01\0".to_vec(),
            "NotWasm",
            "component",
        ),
    ] {
        let file = files.path().join(format!("{name}.wasm"));
        std::fs::write(&file, content)?;
        let image = registry.image(&format!("bad/{name}:v1"));
        op.publish(&file, &image, "solo").await?.json()?;
        op.fetch_from(&registry, &image, &[])
            .await?
            .fails_with(reason, words)?;
    }

    for format in ["cncf", "compat"] {
        let image = registry.image(&format!("plugins/big:{format}"));
        op.publish(&path, &image, format).await?.json()?;
        let small = op
            .fetch_from(&registry, &image, &["--max-module-bytes", "1Ki"])
            .await?;
        small.fails_with(
            "TooLarge",
            &format!("{} bytes, over the limit of 1024", bytes.len()),
        )?;
    }

    let config = b"{}";
    let odd = manifest(
        ("application/vnd.example.config+json", config),
        ("application/x-tar-ish", b"??"),
    );
    registry
        .push_raw("odd/artifact", "v1", &[config, b"??"], &odd)
        .await?;
    let unknown = op
        .fetch_from(&registry, &registry.image("odd/artifact:v1"), &[])
        .await?;
    unknown.fails_with(
        "UnsupportedArtifact",
        "config application/vnd.example.config+json, layers [application/x-tar-ish]",
    )?;
    ensure!(
        op.cached()?.is_empty(),
        "nothing refused is cached: {:?}",
        op.cached()?
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tampered_blob_fails_its_digest() -> Result<()> {
    let registry = Registry::start().await?;
    let op = Op::new()?;
    let (path, bytes) = module("noop")?;
    let image = registry.image("plugins/noop:v1");
    op.publish(&path, &image, "cncf").await?.json()?;
    // Flip one byte of the stored layer: the registry serves it under the old digest.
    let hex = digest(&bytes).trim_start_matches("sha256:").to_owned();
    let data = registry.storage().join(format!(
        "docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ));
    let mut stored = std::fs::read(&data).with_context(|| data.display().to_string())?;
    let last = stored.len() - 1;
    stored[last] ^= 0xff;
    std::fs::write(&data, stored)?;
    op.fetch_from(&registry, &image, &[])
        .await?
        .fails_with("DigestMismatch", "blob digest")?;
    ensure!(op.cached()?.is_empty());
    Ok(())
}

/// Runs `fetch` under `/usr/bin/time`; the result and the peak RSS in KiB.
async fn fetch_measured(op: &Op, registry: &Registry, image: &str) -> Result<(Run, u64)> {
    let report = op.cache.path().with_extension("time");
    let cache = op.cache.path().display().to_string();
    let mut command = Command::new("/usr/bin/time");
    command
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&report)
        .arg(binary()?);
    command.args([
        "fetch",
        image,
        "--cache-dir",
        &cache,
        "--insecure-registry",
        &registry.host(),
    ]);
    let run = op.run_with(&mut command).await?;
    let text = std::fs::read_to_string(&report)?;
    let peak = text.lines().last().unwrap_or_default().trim().parse()?;
    Ok((run, peak))
}

fn dir_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

#[tokio::test(flavor = "multi_thread")]
async fn tar_bombs_cost_neither_memory_nor_disk() -> Result<()> {
    const PEAK_LIMIT_KIB: u64 = 200 * 1024;
    let registry = Registry::start().await?;
    let op = Op::new()?;
    let block = zero_block();

    // One plugin.wasm declared (and inflating) to 4 GiB.
    let mut declared = Vec::new();
    bomb_part(
        &mut declared,
        &tar_header("plugin.wasm", 4 << 30)?,
        4096,
        &block,
    );
    declared.extend_from_slice(&gz(&[0u8; 1024]));
    // 64 files of 64 MiB before a small plugin.wasm: 4 GiB of tar, no header over the limit.
    let mut padded = Vec::new();
    for i in 0..64 {
        bomb_part(
            &mut padded,
            &tar_header(&format!("junk-{i}"), 64 << 20)?,
            64,
            &block,
        );
    }
    let mut tail = tar_header("plugin.wasm", 8)?;
    tail.extend_from_slice(b"\0asm\x01\0\0\0");
    tail.resize(tail.len() + 504 + 1024, 0);
    padded.extend_from_slice(&gz(&tail));

    for (repo, layer, words) in [
        (
            "bombs/declared",
            declared,
            "plugin.wasm in the layer is 4294967296 bytes",
        ),
        (
            "bombs/padded",
            padded,
            "the decompressed layer exceeds the limit",
        ),
    ] {
        ensure!(
            layer.len() < 8 << 20,
            "{repo}: the layer itself is small ({})",
            layer.len()
        );
        let image = push_compat(&registry, repo, &layer).await?;
        let (run, peak_kib) = fetch_measured(&op, &registry, &image).await?;
        run.fails_with("TooLarge", words)?;
        ensure!(peak_kib < PEAK_LIMIT_KIB, "{repo}: peak RSS {peak_kib} KiB");
        let disk = dir_bytes(op.cache.path())?;
        ensure!(
            disk < 1 << 20,
            "{repo}: {disk} bytes written to the cache directory"
        );
    }
    Ok(())
}
