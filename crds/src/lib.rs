//! The contract between proxlet's operator and its sidecars: the `ProxyPlugin` custom resource
//! (spec, status and the conditions the operator sets) and the CRD manifests generated from it.
//!
//! Types only: no I/O and no client. Both binaries depend on this crate, so no type of the
//! contract is defined twice; `crds/*.yaml` is rendered from these types by `cargo xtask
//! generate`, and a test fails when the committed YAML is stale.

pub mod condition;
pub mod manifest;
pub mod plugin;

pub use condition::{ConditionType, Reason};
pub use plugin::{
    ArtifactFormat, FailurePolicy, Limits, MatchRule, Permissions, Phase, ProxyPlugin,
    ProxyPluginSpec, ProxyPluginStatus, PullPolicy, SidecarFailure, Sidecars,
};

/// The API group of proxlet's resources.
pub const GROUP: &str = "proxlet.dev";
