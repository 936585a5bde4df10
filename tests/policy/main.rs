//! Policy checks, the feeds they read and the finding codes they report: `cargo test --test policy`.
#![allow(clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

mod codes;
mod content;
mod feeds_loading;
mod feeds_matching;
mod feeds_sync;
mod license;
mod overrides;
mod refusals;
mod reputation;
mod signals;
mod typosquat;
