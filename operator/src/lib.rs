//! The proxlet operator.
pub mod admin;
pub mod cache;
pub mod cli;
pub mod controller;
pub mod fetch;
pub mod leader;
pub mod metrics;
pub mod offers;
pub mod pipeline;
pub mod publish;
pub mod reconcile;
pub mod reference;
pub mod run;
pub mod status;
pub mod validate;
