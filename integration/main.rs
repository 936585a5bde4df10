//! The tests that need what is outside this repository: the real package-manager clients
//! (npm, pnpm, yarn, bun, pip, uv, poetry, cargo) installing through depfw from the
//! hermetic fixture registry, headless Chromium driving the admin page, the real binary
//! killed mid-burst, depfw over TCP in front of hostile upstreams (`faults.rs`), and
//! measurements on the shared public data set (`../shared/data`), and `depfw mcp` driven by
//! the official MCP Python SDK, and the container files' two-replica topology run as
//! processes (`container.rs`).
//!
//! `cargo test --test integration` (part of `cargo test`). A test whose client, browser or
//! data is missing is reported as ignored, and under CI as failed (`require.rs`);
//! `.ci/install-clients.sh` installs the pinned clients.
#![allow(clippy::unwrap_used)]

use std::process::ExitCode;

#[path = "../tests/support/mod.rs"]
mod support;

mod client;
mod require;

mod admin_browser;
mod approvals;
mod cargo;
mod container;
mod cooldowns;
mod crash;
mod deploy;
mod faults;
mod harness_self_test;
mod mcp;
mod npm;
mod private;
mod pypi;
mod real_data;
mod reasons;
mod replicas;
mod tls;
mod tokens;

fn main() -> ExitCode {
    require::install_panic_hook();
    let args = libtest_mimic::Arguments::from_args();
    let trials = [
        npm::trials(),
        approvals::trials(),
        pypi::trials(),
        private::trials(),
        cargo::trials(),
        cooldowns::trials(),
        crash::trials(),
        container::trials(),
        deploy::trials(),
        faults::trials(),
        admin_browser::trials(),
        real_data::trials(),
        reasons::trials(),
        replicas::trials(),
        tokens::trials(),
        tls::trials(),
        mcp::trials(),
        harness_self_test::trials(),
    ]
    .into_iter()
    .flatten()
    .collect();
    libtest_mimic::run(&args, trials).exit_code()
}
