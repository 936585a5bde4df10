//! The admin endpoint, agents, breakers and the quarantine queue: `cargo test --test admin`.
#![allow(clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

mod agents;
mod api;
mod breaker;
mod layers;
mod pages;
mod quarantine;
mod recipe;
