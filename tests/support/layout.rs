//! The URL layout shared by the registries that stand in for npm, PyPI and crates.io on
//! 127.0.0.1: the hermetic fixture registry of the tests (`registry.rs`) and the
//! recorded mirror of the proxy benchmark (`benches/support/mirror.rs`).
//!
//! One host serves all three ecosystems; depfw's `[upstream]` section for it comes from
//! [`upstream_toml`], so both stand-ins are configured, and routed, the same way.
#![allow(dead_code)]

/// PEP 691 JSON, what the fixture's PyPI pages are served as unless recorded as HTML.
pub const PYPI_JSON: &str = "application/vnd.pypi.simple.v1+json";

/// What a request path (without its leading `/`, percent-decoded) asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// `pypi/simple/<project>/`
    PypiPage(&'a str),
    /// `pypi-files/…/<file>`: the file name is the last segment.
    PypiFile(&'a str),
    /// `cargo-index/config.json`
    CargoConfig,
    /// `cargo-index/<prefix dirs>/<crate>`: the crate name is the last segment.
    CargoIndex(&'a str),
    /// `crates/<crate>/<file>`
    Crate(&'a str),
    /// `<name>/-/<file>`
    NpmTarball { name: &'a str, file: &'a str },
    /// Anything else: an npm packument.
    Packument(&'a str),
}

fn last_segment(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or_default()
}

pub fn route(rel: &str) -> Route<'_> {
    if let Some(project) = rel.strip_prefix("pypi/simple/") {
        return Route::PypiPage(project.trim_end_matches('/'));
    }
    if let Some(path) = rel.strip_prefix("pypi-files/") {
        return Route::PypiFile(last_segment(path));
    }
    if rel == "cargo-index/config.json" {
        return Route::CargoConfig;
    }
    if let Some(path) = rel.strip_prefix("cargo-index/") {
        return Route::CargoIndex(last_segment(path));
    }
    if let Some(path) = rel.strip_prefix("crates/") {
        return Route::Crate(last_segment(path));
    }
    if let Some((name, file)) = rel.split_once("/-/") {
        return Route::NpmTarball { name, file };
    }
    Route::Packument(rel)
}

/// Where PyPI file URLs on the host's pages point (the path after it is kept as is).
pub fn pypi_files_base(base: &str) -> String {
    format!("{base}/pypi-files/")
}

/// The sparse index's `config.json`: downloads from `crates/`.
pub fn cargo_config(base: &str) -> String {
    serde_json::json!({ "dl": format!("{base}/crates/{{crate}}/{{crate}}-{{version}}.crate") })
        .to_string()
}

/// depfw's `[upstream.*]` tables for the host at `base`, ending in `[upstream]` so that
/// callers can append shared upstream keys.
pub fn upstream_toml(base: &str) -> String {
    format!(
        "[upstream.npm]\nregistry = \"{base}/\"\n\
         [upstream.pypi]\nindex = \"{base}/pypi/simple/\"\nfiles = \"{}\"\n\
         [upstream.cargo]\nindex = \"{base}/cargo-index/\"\n[upstream]\n",
        pypi_files_base(base)
    )
}
