//! `ProxyPlugin` (`proxlet.dev/v1alpha1`): a Proxy-Wasm module, where to fetch it, how to run it
//! and which pods run it; and its status as the operator reports it.
//!
//! The schema carries the validation a user should hear about from `kubectl apply` rather than
//! from a status condition later: image schemes, the digest pin's shape, ranges and enums, with
//! CEL rules where a plain schema keyword would give an unhelpful message.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::plugin_set::Compiled;
use crate::quantity::{ParseError, parse_bytes, parse_duration};

/// A Proxy-Wasm plugin for the sidecars of the pods it selects.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "proxlet.dev",
    version = "v1alpha1",
    kind = "ProxyPlugin",
    namespaced,
    shortname = "pp",
    category = "proxlet",
    status = "ProxyPluginStatus",
    derive = "PartialEq",
    doc = "A Proxy-Wasm plugin that proxlet sidecars run on the traffic of the pods it selects.",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status","description":"Whether the module is fetched, validated and offered to sidecars"}"#,
    printcolumn = r#"{"name":"Digest","type":"string","jsonPath":".status.shortDigest","description":"The first 12 hex digits of the module's sha256 digest"}"#,
    printcolumn = r#"{"name":"Loaded","type":"string","jsonPath":".status.sidecars.summary","description":"Matching sidecars that run the module in force, of those that match"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].reason","description":"Why the plugin is or is not ready"}"#
)]
#[x_kube(validation = Rule::new("!self.image.startsWith('https://') || has(self.sha256)")
    .message("sha256 is required for https:// images").field_path(".sha256"))]
#[serde(rename_all = "camelCase")]
pub struct ProxyPluginSpec {
    /// Where the module is: `oci://registry/repo:tag` or `oci://registry/repo@sha256:…`,
    /// `https://…` (with `sha256`) or `file:///path` (development).
    #[schemars(length(min = 1, max = 1024))]
    #[x_kube(validation = Rule::new("self.startsWith('oci://') || self.startsWith('https://') || self.startsWith('file://')")
        .message("image must start with oci://, https:// or file://"))]
    pub image: String,

    /// The SHA-256 of the module's bytes (64 lowercase hex digits); a module whose digest
    /// differs is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^[a-f0-9]{64}$')")
        .message("sha256 must be 64 lowercase hexadecimal digits"))]
    #[schemars(length(max = 64))]
    pub sha256: Option<String>,

    /// `IfNotPresent` (the default) never pulls a digest the operator already has; `Always`
    /// re-resolves the tag periodically and follows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<PullPolicy>,

    /// A `kubernetes.io/dockerconfigjson` Secret in this namespace with the registry's
    /// credentials. Only the operator reads it; sidecars never see registry credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub image_pull_secret: Option<String>,

    /// The pods whose sidecars run the plugin; empty selects every injected pod in the
    /// namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,

    /// The root id the module expects (Envoy's `root_id`, Istio's `pluginName`); empty by
    /// default, as in Envoy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub root_id: Option<String>,

    /// `Request` (the default): the plugin runs in the request path. `Background`: one
    /// instance outside it, its root context only (Envoy's singleton service: timers, queues,
    /// outbound calls, shared data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<PluginKind>,

    /// Plugins with the same vm id share shared data and shared queues, as in Envoy; defaults
    /// to the resource's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub vm_id: Option<String>,

    /// Where in the chain the plugin runs: `AUTHN`, `AUTHZ`, `STATS`; unset runs last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,

    /// Order within a phase: higher runs first on requests (and last on responses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= -1000 && self <= 1000")
        .message("priority must be between -1000 and 1000"))]
    pub priority: Option<i32>,

    /// Handed to the plugin's `proxy_on_configure`: a string as is, anything else as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form")]
    pub config: Option<serde_json::Value>,

    /// What a request meets when the plugin traps, times out or cannot load: `FailClosed`
    /// (the default) answers 5xx; `FailOpen` skips the plugin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_policy: Option<FailurePolicy>,

    /// Per-instance resource caps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,

    /// What the plugin may do beyond reading and changing headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Permissions>,

    /// Which traffic the plugin sees; unset sees all of it.
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    pub match_rules: Option<Vec<MatchRule>>,
}

/// Where a plugin runs. (The sidecar's YAML also accepts `request` and `background`.)
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum PluginKind {
    /// In the request path: its HTTP contexts see every request it matches.
    #[default]
    #[serde(alias = "request")]
    Request,
    /// Outside the request path (Envoy's singleton service): one instance, its root context
    /// only, for timers, queues, outbound calls and shared data.
    #[serde(alias = "background")]
    Background,
}

impl PluginKind {
    pub fn label(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Background => "background",
        }
    }
}

impl std::str::FromStr for PluginKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "request" => Ok(Self::Request),
            "background" => Ok(Self::Background),
            _ => Err(format!("{s:?}: expected `request` or `background`")),
        }
    }
}

/// When the operator pulls the module again.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum PullPolicy {
    IfNotPresent,
    Always,
}

/// The plugin's place in the chain (Istio's `PluginPhase`), in chain order.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum Phase {
    #[serde(rename = "AUTHN")]
    Authn,
    #[serde(rename = "AUTHZ")]
    Authz,
    #[serde(rename = "STATS")]
    Stats,
}

/// What a request meets when the plugin traps, times out or cannot load.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum FailurePolicy {
    /// Answer the request with a 5xx local response (the default).
    #[default]
    FailClosed,
    /// Skip the plugin for that request, and count the skip.
    FailOpen,
}

/// Resource caps of one plugin instance.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// The longest one hook call may run, e.g. `20ms` (the default); 1ms to 10s.
    #[serde(
        default,
        alias = "hook_timeout",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(length(max = 16))]
    #[x_kube(validation = Rule::new("self.matches('^[0-9]+(us|ms|s)$') && duration(self) >= duration('1ms') && duration(self) <= duration('10s')")
        .message("hookTimeout must be a duration between 1ms and 10s, such as 20ms"))]
    pub hook_timeout: Option<String>,

    /// The most linear memory an instance may have, e.g. `64Mi` (the default); 1Mi to 4Gi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    #[x_kube(validation = Rule::new("self.matches('^[0-9]+(Ki|Mi|Gi)$') && quantity(self).compareTo(quantity('1Mi')) >= 0 && quantity(self).compareTo(quantity('4Gi')) <= 0")
        .message("memory must be a quantity between 1Mi and 4Gi, such as 64Mi"))]
    pub memory: Option<String>,
}

/// Capabilities beyond headers; a host call outside them gets an error status.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Permissions {
    /// Upstreams (clusters) the plugin may call with `proxy_http_call` / `proxy_grpc_call`.
    #[serde(default, alias = "http_calls", skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub http_calls: Vec<String>,
    /// Whether the plugin's body callbacks run and may read or change bodies.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub body: bool,
    /// Whether the plugin may use shared data and shared queues. Default false, as every
    /// permission: grant it when a plugin needs it.
    #[serde(
        default,
        alias = "shared_data",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub shared_data: bool,
}

impl Permissions {
    /// The keys a `permissions` mapping may have (the sidecar's YAML refuses others).
    pub const FIELDS: &[&str] = &[
        "httpCalls",
        "http_calls",
        "body",
        "sharedData",
        "shared_data",
    ];
}

/// A slice of the traffic; a request matches when every field given matches.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct MatchRule {
    /// Listener ports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(validation = Rule::new("self.all(p, p >= 1 && p <= 65535)")
        .message("ports must be between 1 and 65535"))]
    pub ports: Vec<i32>,
    /// Request path prefixes, each starting with `/`.
    #[serde(
        default,
        alias = "path_prefixes",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(length(max = 16))]
    #[x_kube(validation = Rule::new("self.all(p, p.startsWith('/'))")
        .message("path prefixes must start with /"))]
    pub path_prefixes: Vec<String>,
}

/// What the operator observed of a `ProxyPlugin`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProxyPluginStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The module in force: `sha256:` and the digest of its bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// The module compiled by the operator for sidecars of its own build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compiled: Option<Compiled>,
    /// The first 12 hex digits of `digest`, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_digest: Option<String>,
    /// The module's size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    /// How the module was packaged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<ArtifactFormat>,
    /// The Proxy-Wasm ABI version the module exports (`0.2.1` or `0.2.0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abi: Option<String>,
    /// `Fetched`, `Validated` and `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// How the matching sidecars took it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidecars: Option<Sidecars>,
}

/// The packaging a module arrived in.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ArtifactFormat {
    /// The CNCF Wasm OCI artifact: `application/vnd.wasm.config.v0+json` + `application/wasm`.
    Cncf,
    /// The older `application/vnd.module.wasm.content.layer.v1+wasm` layer.
    Solo,
    /// A one-layer image whose tar holds `plugin.wasm`.
    Compat,
    /// An `https://` URL.
    Https,
    /// A `file://` path.
    File,
}

/// The sidecars that match a plugin's selector, and what they did with it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Sidecars {
    /// The module the counts are about (the one in force when they were made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// Sidecars that report to the operator and whose pod the selector matches.
    pub matched: i32,
    /// Of those, the ones that run `digest`.
    pub loaded: i32,
    /// Of those, the ones that could not load it.
    pub failed: i32,
    /// `loaded/matched`, for `kubectl get`.
    #[serde(default)]
    pub summary: String,
    /// Some of the sidecars that failed, with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<SidecarFailure>,
}

/// A sidecar that could not load the plugin.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SidecarFailure {
    pub pod: String,
    pub reason: String,
    pub message: String,
}

fn free_form(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "x-kubernetes-preserve-unknown-fields": true,
        "description": "Handed to the plugin's proxy_on_configure: a string as is, anything else as JSON."
    })
}

impl Limits {
    /// The keys a `limits` mapping may have (the sidecar's YAML refuses others).
    pub const FIELDS: &[&str] = &["hookTimeout", "hook_timeout", "memory"];

    /// A hook call's cap when `hookTimeout` is unset.
    pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_millis(20);
    /// An instance's memory cap when `memory` is unset.
    pub const DEFAULT_MEMORY: u64 = 64 << 20;

    /// `hookTimeout`, or its default.
    pub fn hook_timeout(&self) -> Result<Duration, ParseError> {
        self.hook_timeout
            .as_deref()
            .map_or(Ok(Self::DEFAULT_HOOK_TIMEOUT), parse_duration)
    }

    /// `memory` in bytes, or its default.
    pub fn memory_bytes(&self) -> Result<u64, ParseError> {
        self.memory
            .as_deref()
            .map_or(Ok(Self::DEFAULT_MEMORY), parse_bytes)
    }
}
