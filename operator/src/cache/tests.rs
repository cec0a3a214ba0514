use std::time::Duration;

use proxlet_crds::ArtifactFormat;

use super::*;

fn module(fill: u8, len: usize) -> Bytes {
    Bytes::from(vec![fill; len])
}

fn record(digest: &Digest) -> Record {
    Record {
        digest: digest.clone(),
        format: ArtifactFormat::Cncf,
        manifest_digest: Some("sha256:m".to_owned()),
        private: false,
    }
}

#[tokio::test]
async fn stores_by_digest_and_verifies_on_read() {
    let dir = tempfile::tempdir().unwrap();
    let cache = ModuleCache::open(dir.path(), 1 << 20).unwrap();
    let digest = cache.insert(module(1, 100)).await.unwrap();
    assert_eq!(digest, Digest::of(&[1u8; 100]));
    let hex = digest.hex();
    assert!(dir.path().join(format!("sha256/{hex}.wasm")).is_file());
    assert_eq!(cache.get(&digest).await, Some(module(1, 100)));
    assert_eq!(
        cache.stats(),
        CacheStats {
            entries: 1,
            bytes: 100
        }
    );

    std::fs::write(cache.path(&digest).unwrap(), b"tampered").unwrap();
    assert_eq!(cache.get(&digest).await, None);
    assert!(!cache.contains(&digest));
    assert_eq!(cache.stats(), CacheStats::default());
}

#[tokio::test]
async fn evicts_the_least_recently_used_past_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let cache = ModuleCache::open(dir.path(), 250).unwrap();
    let a = cache.insert(module(1, 100)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let b = cache.insert(module(2, 100)).await.unwrap();
    cache
        .remember("oci://r/b:v1".into(), record(&b))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(cache.get(&a).await.is_some()); // a is now more recent than b
    tokio::time::sleep(Duration::from_millis(5)).await;
    let c = cache.insert(module(3, 100)).await.unwrap();
    assert!(cache.contains(&a) && cache.contains(&c));
    assert!(!cache.contains(&b), "the least recently used module goes");
    assert!(cache.path(&b).is_none());
    assert_eq!(
        cache.lookup("oci://r/b:v1"),
        None,
        "its record goes with it"
    );
    assert_eq!(
        cache.stats(),
        CacheStats {
            entries: 2,
            bytes: 200
        }
    );

    let huge = cache.insert(module(4, 300)).await.unwrap();
    assert!(
        cache.contains(&huge),
        "a module larger than the bound is still kept"
    );
    assert_eq!(cache.stats().entries, 1);
}

#[tokio::test]
async fn survives_a_restart_with_records_and_access_order() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = {
        let cache = ModuleCache::open(dir.path(), 1000).unwrap();
        let a = cache.insert(module(1, 100)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let b = cache.insert(module(2, 100)).await.unwrap();
        cache
            .remember("oci://r/a:v1".into(), record(&a))
            .await
            .unwrap();
        (a, b)
    };
    std::fs::write(dir.path().join("tmp/leftover.part"), b"x").unwrap();
    let cache = ModuleCache::open(dir.path(), 1000).unwrap();
    assert_eq!(
        cache.stats(),
        CacheStats {
            entries: 2,
            bytes: 200
        }
    );
    assert_eq!(cache.lookup("oci://r/a:v1"), Some(record(&a)));
    assert_eq!(cache.by_manifest("sha256:m"), Some(record(&a)));
    assert_eq!(cache.by_digest(&a), Some(record(&a)));
    assert!(!dir.path().join("tmp/leftover.part").exists());

    // Reopened with a smaller bound, the older module (by file time) goes first.
    drop(cache);
    let cache = ModuleCache::open(dir.path(), 150).unwrap();
    assert!(!cache.contains(&a) && cache.contains(&b));
}
