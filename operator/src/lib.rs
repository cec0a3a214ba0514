//! The proxlet operator: reconciles ProxyPlugins (fetch, verify, validate, status), serves each
//! namespace's plugin set and modules to its sidecars, writes the sets into ConfigMaps, and folds
//! the sidecars' reports into the ProxyPlugins' status.
pub mod admin;
pub mod cache;
pub mod cli;
pub mod controller;
pub mod fetch;
pub mod leader;
pub mod metrics;
pub mod pipeline;
pub mod publish;
pub mod reconcile;
pub mod reference;
pub mod reports;
pub mod run;
pub mod serve;
pub mod sets;
pub mod sidecar_status;
pub mod status;
pub mod tls;
pub mod validate;
