//! Compiled artifacts: each module the operator validates is compiled once per cluster, and the
//! artifact is kept beside the module cache (`DIR/compiled/ENGINE/<hex>.cwasm`, named by the
//! artifact's own digest) and served to sidecars whose engine has the same fingerprint, so they
//! load it instead of compiling. Artifacts of other engine builds are removed at start.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;
use proxlet_crds::Digest;
use proxlet_crds::plugin_set::Compiled;

pub struct CompiledStore {
    dir: PathBuf,
    engine: String,
    held: Mutex<HashMap<Digest, u64>>,
}

impl CompiledStore {
    /// Opens `cache_dir/compiled/ENGINE`, dropping the directories of other engines.
    pub fn open(cache_dir: &Path, engine: &str) -> io::Result<Self> {
        let root = cache_dir.join("compiled");
        std::fs::create_dir_all(&root)?;
        for entry in std::fs::read_dir(&root)? {
            let entry = entry?;
            if entry.file_name() != engine {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let dir = root.join(engine);
        std::fs::create_dir_all(&dir)?;
        let mut held = HashMap::new();
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(hex) = name.to_str().and_then(|n| n.strip_suffix(".cwasm")) else {
                continue;
            };
            if let Ok(digest) = Digest::from_hex(hex) {
                held.insert(digest, entry.metadata()?.len());
            }
        }
        Ok(Self {
            dir,
            engine: engine.to_owned(),
            held: Mutex::new(held),
        })
    }

    /// Keeps `artifact`; what a plugin set says of it.
    pub fn put(&self, artifact: &[u8]) -> io::Result<Compiled> {
        let digest = Digest::of(artifact);
        let path = self.path(&digest);
        if !path.is_file() {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, artifact)?;
            std::fs::rename(&tmp, &path)?;
        }
        let size = artifact.len() as u64;
        self.lock().insert(digest.clone(), size);
        Ok(Compiled {
            engine: self.engine.clone(),
            digest,
            size,
        })
    }

    /// The artifact `digest`, verified.
    pub async fn get(&self, digest: &Digest) -> Option<Bytes> {
        if !self.lock().contains_key(digest) {
            return None;
        }
        let bytes = tokio::fs::read(self.path(digest)).await.ok()?;
        (Digest::of(&bytes) == *digest).then(|| Bytes::from(bytes))
    }

    fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(format!("{}.cwasm", digest.hex()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Digest, u64>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }
}
