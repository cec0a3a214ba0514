//! An in-memory Kubernetes API server for tests.
//!
//! It serves what proxlet's operator, its sidecar and `kubectl` rely on, over plain HTTP on
//! loopback: discovery (plain and aggregated), OpenAPI for kubectl's validation, built-in
//! resources (namespaces, secrets, configmaps, service accounts with TokenRequest, pods,
//! services, events in both groups, leases, CRDs, TokenReview), custom resources for every
//! installed CRD with schema validation, the status subresource, every PATCH flavour including
//! server-side apply, finalizers, list and watch with selectors and resource versions, and
//! Table output.
//!
//! Nothing here is used by the shipped binaries; it depends on no Kubernetes client library,
//! so that it checks those libraries rather than mirroring them.

pub mod app;
pub mod apply;
pub mod auth;
pub mod builtin;
pub mod cli;
pub mod crd;
pub mod discovery;
pub mod events;
pub mod handlers;
pub mod kinds;
pub mod kubeconfig;
pub mod meta;
pub mod openapi;
pub mod patch;
pub mod proto;
pub mod request;
pub mod resources;
pub mod schema;
pub mod selector;
pub mod server;
pub mod status;
pub mod store;
pub mod structure;
pub mod table;
pub mod watch;
