//! The compiled-module cache on disk: a sidecar compiles a module once and writes it to
//! `module_cache_dir`; the next sidecar (a restart) loads it from there instead of compiling.

use anyhow::{Result, ensure};
use proxlet_tests::support::{curl::Curl, plugins::Plugin, sidecar::Sidecar, upstream::Upstream};

fn cached_modules(dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "cwasm") {
            found.push(path);
        }
    }
    Ok(found)
}

#[tokio::test(flavor = "multi_thread")]
async fn compiled_modules_survive_a_restart() -> Result<()> {
    let upstream = Upstream::start().await?;
    let cache = tempfile::tempdir()?;
    let plugin = Plugin::new("header-modifier")?
        .config(serde_json::json!({"response": {"set": {"x-cached": "yes"}}}));
    let builder = Sidecar::builder(upstream.addr())
        .plugin(&plugin)
        .set("module_cache_dir", cache.path().display().to_string());

    let first = builder.start().await?;
    let modules = cached_modules(cache.path())?;
    ensure!(
        modules.len() == 1,
        "want one cached module, found {modules:?}"
    );
    let written = std::fs::metadata(&modules[0])?.modified()?;
    drop(first);

    // The restart loads the cached module: the file is reused, not rewritten, and it runs.
    let second = builder.start().await?;
    let reply = Curl::new(second.url("/echo")).run().await?;
    ensure!(
        reply.header("x-cached") == Some("yes"),
        "the cached module does not run"
    );
    let modules = cached_modules(cache.path())?;
    ensure!(
        modules.len() == 1,
        "the restart cached another module: {modules:?}"
    );
    ensure!(
        std::fs::metadata(&modules[0])?.modified()? == written,
        "the restart compiled the module again"
    );
    Ok(())
}
