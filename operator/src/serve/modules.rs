//! The bytes the plugin-set server hands out: modules from the operator's content-addressed
//! cache, and compiled artifacts beside them. A replica that never pulled a module (it was not
//! the leader when it was fetched) gets it from the ProxyPlugin's source, pinned to the digest.

use std::sync::Arc;

use bytes::Bytes;
use kube::Client;
use proxlet_crds::Digest;

use crate::pipeline::Pipeline;
use crate::reconcile;
use crate::sets::Sets;

pub struct Modules {
    pub pipeline: Arc<Pipeline>,
    pub sets: Arc<Sets>,
    pub client: Client,
}

impl Modules {
    /// The module `digest` referenced by `namespace`'s set, if this replica has or can get it.
    pub async fn module(&self, namespace: &str, digest: &Digest) -> Option<Bytes> {
        if let Some(bytes) = self.pipeline.cache().get(digest).await {
            return Some(bytes);
        }
        let plugin = self.sets.source(namespace, digest)?;
        match reconcile::resolve_pinned(&self.client, &self.pipeline, &plugin, digest).await {
            Ok(()) => self.pipeline.cache().get(digest).await,
            Err(e) => {
                tracing::warn!(namespace, %digest, error = %e, "cannot get a module a sidecar asked for");
                None
            }
        }
    }

    /// A compiled artifact, if this replica has it.
    pub async fn compiled(&self, digest: &Digest) -> Option<Bytes> {
        self.pipeline.compiled(digest).await
    }
}
