//! Policy checks and the feeds they read: `cargo test --test policy`.
#![allow(clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

mod feeds_loading;
mod feeds_matching;
mod feeds_sync;
mod license;
mod overrides;
mod reputation;
mod typosquat;
