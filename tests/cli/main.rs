//! The `depfw` binary's commands and exit codes, and the README's own commands:
//! `cargo test --test cli`.
#![allow(clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

mod agents;
mod completions;
mod config_errors;
mod data_dir;
mod doctor;
mod exit_codes;
mod feeds;
#[cfg(target_os = "linux")]
mod limits;
mod log;
mod mcp;
mod overrides;
mod probe;
mod readme;
#[cfg(unix)]
mod reload;
#[cfg(unix)]
mod running_server;
#[cfg(unix)]
mod serve;
#[cfg(target_os = "linux")]
mod tls;
