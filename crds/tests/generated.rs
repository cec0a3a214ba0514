//! The committed CRD manifests are exactly what the types generate.

use std::path::Path;

#[test]
fn committed_manifests_are_current() -> Result<(), Box<dyn std::error::Error>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    for m in proxlet_crds::manifest::manifests()? {
        let path = dir.join(m.file);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == m.yaml,
            "{} is stale: run `cargo xtask generate` and commit the result",
            path.display()
        );
    }
    Ok(())
}
