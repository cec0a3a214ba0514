//! The operator's content-addressed module cache on disk: `DIR/sha256/<hex>.wasm`, each file
//! named by the SHA-256 of its bytes, written atomically (a temporary file in `DIR/tmp`, synced,
//! then renamed) and verified again when read. It survives restarts: the index is rebuilt from
//! the directory at start, with file modification times as last-access times. It is bounded in
//! bytes: past the bound, the least recently used modules are removed (never the one just
//! added, so a single module larger than the bound is still kept).
//!
//! Beside the modules it remembers what references resolved to ([`refs`]), so that
//! `IfNotPresent` can answer a tag from the cache, and `Always` can tell that a tag still
//! points at the manifest it already has.
//!
//! The plugin-set server reads modules from here by digest ([`ModuleCache::get`],
//! [`ModuleCache::path`]). Blocking file work runs on the blocking pool; no lock is held across
//! an await.

pub mod refs;

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use bytes::Bytes;
use proxlet_crds::Digest;

pub use self::refs::Record;

/// How many modules and bytes the cache holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub entries: u64,
    pub bytes: u64,
}

/// The module cache; cheap to clone, shared.
#[derive(Clone)]
pub struct ModuleCache {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    max_bytes: u64,
    state: Mutex<State>,
    tmp_seq: AtomicU64,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    total: u64,
    refs: refs::Refs,
}

#[derive(Clone, Copy)]
struct Entry {
    size: u64,
    used: SystemTime,
}

impl ModuleCache {
    /// Opens (or creates) the cache in `dir`, bounded to `max_bytes`.
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<Self> {
        std::fs::create_dir_all(dir.join("sha256"))?;
        let tmp = dir.join("tmp");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)?;
        }
        std::fs::create_dir_all(&tmp)?;
        let mut state = State::default();
        for item in std::fs::read_dir(dir.join("sha256"))? {
            let item = item?;
            let name = item.file_name().to_string_lossy().into_owned();
            let Some(hex) = name.strip_suffix(".wasm").filter(|h| is_hex64(h)) else {
                continue;
            };
            let meta = item.metadata()?;
            let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            state.total += meta.len();
            state.entries.insert(
                hex.to_owned(),
                Entry {
                    size: meta.len(),
                    used,
                },
            );
        }
        state.refs = refs::Refs::load(&dir.join(refs::FILE));
        let cache = Self {
            inner: Arc::new(Inner {
                dir: dir.to_owned(),
                max_bytes,
                state: Mutex::new(state),
                tmp_seq: AtomicU64::new(0),
            }),
        };
        cache.inner.evict(None);
        Ok(cache)
    }

    /// Modules and bytes held now.
    pub fn stats(&self) -> CacheStats {
        let state = self.inner.lock();
        CacheStats {
            entries: state.entries.len() as u64,
            bytes: state.total,
        }
    }

    /// Whether the module `digest` is held.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.inner.lock().entries.contains_key(digest.hex())
    }

    /// The file of module `digest`, if held (not verified: [`ModuleCache::get`] verifies).
    pub fn path(&self, digest: &Digest) -> Option<PathBuf> {
        self.contains(digest)
            .then(|| self.inner.module_path(digest.hex()))
    }

    /// The bytes of module `digest`, verified against it; a file that no longer matches is
    /// removed and reported absent. Counts as a use for eviction.
    pub async fn get(&self, digest: &Digest) -> Option<Bytes> {
        if !self.contains(digest) {
            return None;
        }
        let hex = digest.hex().to_owned();
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || inner.read_verified(&hex))
            .await
            .ok()
            .flatten()
    }

    /// Stores `bytes` (a no-op but for the access time when held); returns their digest.
    pub async fn insert(&self, bytes: Bytes) -> io::Result<Digest> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || inner.insert(&bytes))
            .await
            .map_err(io::Error::other)?
    }

    /// What `key` resolved to last, if that module is still held.
    pub fn lookup(&self, key: &str) -> Option<Record> {
        let state = self.inner.lock();
        state
            .refs
            .get(key)
            .filter(|r| state.entries.contains_key(r.digest.hex()))
            .cloned()
    }

    /// A record for a held module resolved through `manifest_digest` (any reference).
    pub fn by_manifest(&self, manifest_digest: &str) -> Option<Record> {
        let state = self.inner.lock();
        state
            .refs
            .find(|r| r.manifest_digest.as_deref() == Some(manifest_digest))
            .filter(|r| state.entries.contains_key(r.digest.hex()))
            .cloned()
    }

    /// A record for the held module `digest` (any reference), for a pinned `IfNotPresent`.
    pub fn by_digest(&self, digest: &Digest) -> Option<Record> {
        let state = self.inner.lock();
        state
            .refs
            .find(|r| &r.digest == digest)
            .filter(|_| state.entries.contains_key(digest.hex()))
            .cloned()
    }

    /// Remembers what `key` resolved to, on disk too.
    pub async fn remember(&self, key: String, record: Record) -> io::Result<()> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let snapshot = {
                let mut state = inner.lock();
                state.refs.insert(key, record);
                state.refs.clone()
            };
            snapshot.save(&inner.dir.join(refs::FILE), &inner.temp_path())
        })
        .await
        .map_err(io::Error::other)?
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn module_path(&self, hex: &str) -> PathBuf {
        self.dir.join("sha256").join(format!("{hex}.wasm"))
    }

    fn temp_path(&self) -> PathBuf {
        let seq = self.tmp_seq.fetch_add(1, Ordering::Relaxed);
        self.dir
            .join("tmp")
            .join(format!("{}-{seq}.part", std::process::id()))
    }

    fn read_verified(&self, hex: &str) -> Option<Bytes> {
        let path = self.module_path(hex);
        let bytes = std::fs::read(&path).ok();
        if let Some(bytes) = bytes.filter(|b| Digest::of(b).hex() == hex) {
            self.touch(hex, &path);
            return Some(bytes.into());
        }
        tracing::warn!(path = %path.display(), "cached module missing or corrupt; dropping it");
        let _ = std::fs::remove_file(&path);
        self.forget(hex);
        None
    }

    fn insert(&self, bytes: &[u8]) -> io::Result<Digest> {
        let digest = Digest::of(bytes);
        let hex = digest.hex().to_owned();
        let path = self.module_path(&hex);
        if self.lock().entries.contains_key(&hex) && path.is_file() {
            self.touch(&hex, &path);
            return Ok(digest);
        }
        let tmp = self.temp_path();
        let written = (|| {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        {
            let mut state = self.lock();
            let entry = Entry {
                size: bytes.len() as u64,
                used: SystemTime::now(),
            };
            if let Some(old) = state.entries.insert(hex.clone(), entry) {
                state.total -= old.size;
            }
            state.total += entry.size;
        }
        self.evict(Some(&hex));
        Ok(digest)
    }

    /// Marks a use: in memory, and as the file's modification time for the next start.
    fn touch(&self, hex: &str, path: &Path) {
        let now = SystemTime::now();
        if let Some(entry) = self.lock().entries.get_mut(hex) {
            entry.used = now;
        }
        if let Ok(file) = std::fs::File::open(path) {
            let _ = file.set_modified(now);
        }
    }

    fn forget(&self, hex: &str) {
        let mut state = self.lock();
        if let Some(old) = state.entries.remove(hex) {
            state.total -= old.size;
        }
    }

    /// Removes least recently used modules until the total fits, sparing `keep`.
    fn evict(&self, keep: Option<&str>) {
        loop {
            let victim = {
                let mut state = self.lock();
                if state.total <= self.max_bytes {
                    return;
                }
                let oldest = state
                    .entries
                    .iter()
                    .filter(|(hex, _)| Some(hex.as_str()) != keep)
                    .min_by_key(|(_, e)| e.used)
                    .map(|(hex, _)| hex.clone());
                let Some(hex) = oldest else { return };
                if let Some(old) = state.entries.remove(&hex) {
                    state.total -= old.size;
                }
                state.refs.retain(|r| r.digest.hex() != hex);
                hex
            };
            tracing::info!(digest = %victim, "evicting module from the cache");
            if let Err(e) = std::fs::remove_file(self.module_path(&victim)) {
                tracing::warn!(digest = %victim, error = %e, "cannot remove evicted module");
            }
        }
    }
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests;
