//! What each image reference last resolved to, kept in `DIR/refs.json` beside the modules so
//! it survives restarts: the module digest, its packaging and the manifest digest. Records of
//! evicted modules are dropped with them.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use proxlet_crds::{ArtifactFormat, Digest};
use serde::{Deserialize, Serialize};

/// The file name under the cache directory.
pub const FILE: &str = "refs.json";

/// What a reference resolved to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// The module's digest.
    pub digest: Digest,
    pub format: ArtifactFormat,
    /// The manifest digest the reference resolved to (OCI only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<String>,
    /// Pulled with credentials: served from the cache only to a request whose own credentials
    /// the registry accepts again (a manifest request), never on the strength of the cache.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub private: bool,
}

/// Records by reference key.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Refs(BTreeMap<String, Record>);

impl Refs {
    /// Reads the records; a missing or unreadable file starts empty (the modules are still
    /// there, and references resolve again).
    pub fn load(path: &Path) -> Self {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable reference records");
                Self::default()
            }),
            Err(_) => Self::default(),
        }
    }

    /// Writes the records atomically through `tmp`.
    pub fn save(&self, path: &Path, tmp: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        let mut file = std::fs::File::create(tmp)?;
        file.write_all(&json)?;
        file.sync_all()?;
        std::fs::rename(tmp, path)
    }

    pub fn get(&self, key: &str) -> Option<&Record> {
        self.0.get(key)
    }

    pub fn insert(&mut self, key: String, record: Record) {
        self.0.insert(key, record);
    }

    /// The first record that satisfies `pred`.
    pub fn find(&self, pred: impl Fn(&Record) -> bool) -> Option<&Record> {
        self.0.values().find(|r| pred(r))
    }

    /// Keeps only the records that satisfy `keep`.
    pub fn retain(&mut self, keep: impl Fn(&Record) -> bool) {
        self.0.retain(|_, r| keep(r));
    }
}
