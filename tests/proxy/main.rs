//! `depfw serve` as a router (`oneshot`, fixture registry on 127.0.0.1), its protocol parsers
//! and the decision log: `cargo test --test proxy`.
#![allow(clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

mod agent_api;
mod agents;
mod approvals;
mod bounds;
mod cargo;
mod content;
mod hardening;
mod monitor;
mod observe;
mod private;
mod provenance;
mod publish_times;
mod pypi;
mod registry_cargo;
mod registry_pypi;
mod router;
mod signals;
mod signed_log;
mod urgent_fix;
