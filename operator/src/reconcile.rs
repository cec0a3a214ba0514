//! One `ProxyPlugin` reconcile: read the pull secret, run the module pipeline, write the status
//! by server-side apply, publish an Event on each transition, offer or withdraw the module, and
//! say when to look again. Deletion runs behind a finalizer so the module is withdrawn from the
//! sidecars before the resource goes.
//!
//! A pipeline failure is not a reconcile error: it is the resource's state, reported in its
//! conditions, and retried with a per-object backoff when retrying can help. Only failures to
//! talk to the Kubernetes API are errors (see [`Error`]).

mod backoff;
pub mod events;

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{self, Event as Finalized, finalizer};
use kube::{Client, Resource, ResourceExt};
use proxlet_crds::{Digest, ProxyPlugin, ProxyPluginStatus, PullPolicy};

pub use self::backoff::Backoff;
use self::events::Events;
use crate::metrics::Metrics;
use crate::pipeline::{
    ModuleRequest, Pipeline, PipelineError, PullSecret, Reason, Resolved, Stage,
};
use crate::sets::{ConfigMaps, Sets};
use crate::status::{self, Outcome};

/// The finalizer that withdraws a deleted plugin from the sidecars first.
pub const FINALIZER: &str = "proxlet.dev/offered";
/// The field manager of the operator's writes.
pub const MANAGER: &str = "proxlet-operator";
/// The field manager of `status.sidecars`, which the report folding writes.
pub const SIDECARS_MANAGER: &str = "proxlet-operator-sidecars";
const SECRET_KEY: &str = ".dockerconfigjson";
const SECRET_TYPE: &str = "kubernetes.io/dockerconfigjson";

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub pipeline: Arc<Pipeline>,
    pub metrics: Arc<Metrics>,
    /// The plugin sets, to withdraw a deleted plugin from its namespace's ConfigMap.
    pub sets: Arc<Sets>,
    pub config_maps: ConfigMaps,
    pub events: Events,
    pub backoff: Backoff,
    /// How often a tag under `imagePullPolicy: Always` is resolved again.
    pub resync: Duration,
}

impl Context {
    pub fn new(
        client: Client,
        pipeline: Arc<Pipeline>,
        metrics: Arc<Metrics>,
        sets: Arc<Sets>,
        resync: Duration,
    ) -> Self {
        Self {
            events: Events::new(client.clone()),
            config_maps: ConfigMaps::new(client.clone()),
            client,
            pipeline,
            metrics,
            sets,
            backoff: Backoff::default(),
            resync,
        }
    }
}

/// A reconcile that could not finish: the API server refused or failed a call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Finalizer(#[source] Box<finalizer::Error<Error>>),
    #[error("ProxyPlugin without a namespace")]
    NoNamespace,
}

/// The controller's reconcile function.
pub async fn reconcile(plugin: Arc<ProxyPlugin>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = plugin.namespace().ok_or(Error::NoNamespace)?;
    let api: Api<ProxyPlugin> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, FINALIZER, plugin, |event| async {
        match event {
            Finalized::Apply(p) => apply(&p, &ns, &ctx).await,
            Finalized::Cleanup(p) => cleanup(&p, &ns, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

/// The controller's error policy: count it and back off. (kube-runtime hands the object and
/// context over by value.)
#[allow(clippy::needless_pass_by_value)]
pub fn error_policy(plugin: Arc<ProxyPlugin>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(plugin = %plugin.name_any(), namespace = ?plugin.namespace(), %error, "reconcile failed");
    ctx.metrics.api_error();
    Action::requeue(ctx.backoff.failed(&key(&plugin)))
}

async fn apply(plugin: &ProxyPlugin, ns: &str, ctx: &Context) -> Result<Action, Error> {
    let started = Instant::now();
    let result = match pull_secret(plugin, ns, &ctx.client).await? {
        Ok(secret) => ctx.pipeline.resolve(&request(plugin, secret)).await,
        Err(e) => Err(e),
    };
    let prev = plugin.status.as_ref();
    let outcome = match &result {
        Ok(r) => Outcome::Ready(r),
        Err(e) => Outcome::Failed(e),
    };
    let next = status::next_status(prev, plugin.meta().generation, &outcome, Timestamp::now());
    if prev != Some(&next) {
        write_status(plugin, ns, &next, ctx).await?;
    }
    ctx.events.transitions(plugin, prev, &next).await;
    let k = key(plugin);
    let action = match &result {
        Ok(r) => {
            ctx.metrics.pulled(r);
            ctx.backoff.succeeded(&k);
            next_look(plugin, r, ctx.resync)
        }
        Err(e) => {
            if is_pull(e) {
                ctx.metrics.pull_failed();
            }
            let delay = ctx.backoff.failed(&k);
            Action::requeue(if e.retryable() {
                delay
            } else {
                delay.max(NOT_RETRYABLE)
            })
        }
    };
    let failure = result.as_ref().err().map(PipelineError::reason);
    ctx.metrics
        .reconciled(started.elapsed().as_secs_f64(), failure);
    Ok(action)
}

/// A failure retrying cannot fix (a bad module at a tag) is still looked at again now and then:
/// the tag may be pushed again.
const NOT_RETRYABLE: Duration = Duration::from_secs(300);

/// Withdraws a deleted plugin: its namespace's ConfigMap is written without it before the
/// finalizer goes, so no sidecar (re)starting from the ConfigMap loads it again. The served set
/// already left it out when the deletion began.
async fn cleanup(plugin: &ProxyPlugin, ns: &str, ctx: &Context) -> Result<Action, Error> {
    let name = plugin.name_any();
    let current = ctx.sets.current(ns).set;
    let was_offered = current.plugins.iter().any(|p| p.name == name);
    let rest = current
        .plugins
        .iter()
        .filter(|p| p.name != name)
        .cloned()
        .collect();
    ctx.config_maps
        .write(&proxlet_crds::PluginSet::new(ns.to_owned(), rest))
        .await?;
    if was_offered
        || plugin
            .status
            .as_ref()
            .and_then(|s| s.digest.as_ref())
            .is_some()
    {
        ctx.events.withdrawn(plugin).await;
    }
    ctx.backoff.succeeded(&key(plugin));
    tracing::info!(plugin = %name, namespace = %ns, "withdrawn");
    Ok(Action::await_change())
}

/// When to resolve again: tags under `Always` every resync period; everything else only when
/// the resource changes.
fn next_look(plugin: &ProxyPlugin, r: &Resolved, resync: Duration) -> Action {
    let follows_tag = plugin.spec.image_pull_policy == Some(PullPolicy::Always)
        && !plugin.spec.image.contains("@sha256:")
        && r.manifest_digest.is_some();
    if follows_tag {
        Action::requeue(resync)
    } else {
        Action::await_change()
    }
}

fn request(plugin: &ProxyPlugin, pull_secret: Option<PullSecret>) -> ModuleRequest {
    ModuleRequest {
        image: plugin.spec.image.clone(),
        sha256: plugin.spec.sha256.clone(),
        pull_policy: plugin
            .spec
            .image_pull_policy
            .unwrap_or(PullPolicy::IfNotPresent),
        pull_secret,
    }
}

/// The spec's pull secret: `Ok(Err(_))` when it is missing or unusable (the plugin's state),
/// `Err(_)` when the API server could not be asked.
async fn pull_secret(
    plugin: &ProxyPlugin,
    ns: &str,
    client: &Client,
) -> Result<Result<Option<PullSecret>, PipelineError>, Error> {
    let Some(name) = plugin.spec.image_pull_secret.clone() else {
        return Ok(Ok(None));
    };
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let Some(secret) = secrets.get_opt(&name).await? else {
        return Ok(Err(PipelineError::PullSecretMissing { name }));
    };
    if secret.type_.as_deref() != Some(SECRET_TYPE) {
        let problem = format!(
            "its type is {:?}, not {SECRET_TYPE}",
            secret.type_.unwrap_or_default()
        );
        return Ok(Err(PipelineError::PullSecretInvalid { name, problem }));
    }
    match secret.data.and_then(|mut d| d.remove(SECRET_KEY)) {
        Some(bytes) => Ok(Ok(Some(PullSecret {
            name,
            dockerconfigjson: bytes.0,
        }))),
        None => {
            let problem = format!("it has no {SECRET_KEY} key");
            Ok(Err(PipelineError::PullSecretInvalid { name, problem }))
        }
    }
}

/// Fetches `plugin`'s module with digest `digest` into the cache, pinned to it: for a replica
/// asked for a module it did not pull (another replica reconciled the plugin).
pub async fn resolve_pinned(
    client: &Client,
    pipeline: &Pipeline,
    plugin: &ProxyPlugin,
    digest: &Digest,
) -> Result<(), String> {
    let ns = plugin.namespace().unwrap_or_default();
    let secret = match pull_secret(plugin, &ns, client).await {
        Ok(Ok(secret)) => secret,
        Ok(Err(e)) => return Err(e.to_string()),
        Err(e) => return Err(e.to_string()),
    };
    let mut request = request(plugin, secret);
    request.sha256 = Some(digest.hex().to_owned());
    request.pull_policy = PullPolicy::IfNotPresent;
    pipeline
        .resolve(&request)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Writes the status by server-side apply, all but `sidecars`: the report folding owns that
/// field under its own field manager ([`SIDECARS_MANAGER`]).
async fn write_status(
    plugin: &ProxyPlugin,
    ns: &str,
    status: &ProxyPluginStatus,
    ctx: &Context,
) -> Result<(), Error> {
    let api: Api<ProxyPlugin> = Api::namespaced(ctx.client.clone(), ns);
    let mut status = status.clone();
    status.sidecars = None;
    let body = serde_json::json!({
        "apiVersion": ProxyPlugin::api_version(&()),
        "kind": ProxyPlugin::kind(&()),
        "status": status,
    });
    let params = PatchParams::apply(MANAGER).force();
    api.patch_status(&plugin.name_any(), &params, &Patch::Apply(&body))
        .await?;
    Ok(())
}

/// Whether the failure happened while downloading (and so counts as a failed pull).
fn is_pull(e: &PipelineError) -> bool {
    e.stage() == Stage::Fetch
        && !matches!(
            e.reason(),
            Reason::InvalidReference
                | Reason::PullSecretMissing
                | Reason::PullSecretInvalid
                | Reason::CacheFailed
        )
}

fn key(plugin: &ProxyPlugin) -> String {
    format!(
        "{}/{}",
        plugin.namespace().unwrap_or_default(),
        plugin.name_any()
    )
}
