//! The contract between proxlet's operator and its sidecars: the `ProxyPlugin` custom resource
//! (spec, status and the conditions the operator sets), the CRD manifests generated from it, and
//! the resolved plugin set the operator serves to sidecars with the reports they send back; with
//! the rules both sides must read alike (digests, sizes and durations, label selectors).
//!
//! Types and pure functions only: no I/O and no client. Both binaries depend on this crate, so no type of the
//! contract is defined twice; `crds/*.yaml` is rendered from these types by `cargo xtask
//! generate`, and a test fails when the committed YAML is stale.

pub mod condition;
pub mod digest;
pub mod manifest;
pub mod plugin;
pub mod plugin_set;
pub mod quantity;
pub mod selector;

pub use condition::{ConditionType, Reason};
pub use digest::Digest;
pub use plugin::{
    ArtifactFormat, FailurePolicy, Limits, MatchRule, Permissions, Phase, PluginKind, ProxyPlugin,
    ProxyPluginSpec, ProxyPluginStatus, PullPolicy, SidecarFailure, Sidecars,
};
pub use plugin_set::{LoadFailure, LoadState, PluginReport, PluginSet, SetPlugin, SidecarReport};

/// The API group of proxlet's resources.
pub const GROUP: &str = "proxlet.dev";
