//! `depfw audit`: lockfile parsers, public lockfiles, --online, reports and the CLI: `cargo test --test audit`.
#![allow(clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

mod cargo_audit_parity;
mod check_online;
mod cli;
mod cyclonedx;
mod lockfile_metadata;
mod mirror;
mod npm_family;
mod online;
mod online_cli;
mod own_lockfile;
mod public_lockfiles;
mod python_cargo;
mod report;
mod report_snapshots;
