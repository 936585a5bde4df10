//! depfw: a supply-chain dependency firewall for coding agents.
//!
//! The library behind the `depfw` binary: package identity ([`package`]), feeds
//! ([`feeds`]), the policy engine ([`policy`]), configuration ([`config`]) and the commands.
#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

pub mod admin;
pub mod agents;
pub mod audit;
pub mod cli;
pub mod config;
pub mod diag;
pub mod engine;
pub mod feeds;
pub mod observe;
pub mod package;
pub mod policy;
pub mod registry;
pub mod report;
pub mod server;
pub mod store;
pub(crate) mod when;
