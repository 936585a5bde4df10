//! Popular-package lists per ecosystem, the data the typosquat check protects.
//!
//! `depfw serve`, `audit` and `check` flag a name that looks like a popular package it is
//! not. The lists in `feeds/popular/` (names, most popular first where ranked) are
//! compiled in, each with the index `depfw feeds popular-index` prebuilt from it; reading
//! and indexing them is the typosquat check's (`crate::policy::typosquat::PopularIndex`).

use crate::package::Ecosystem;

/// A bundled list: the names, whether ranked, and its prebuilt index.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BundledList {
    pub ecosystem: Ecosystem,
    /// One name a line; `#` starts a comment line.
    pub list: &'static str,
    /// Whether the list is in order of popularity (rank 1 first).
    pub ranked: bool,
    pub prebuilt: &'static [u8],
    /// The prebuilt index's file name in `feeds/popular/`.
    pub file: &'static str,
}

pub(crate) const BUNDLED: [BundledList; 3] = [
    BundledList {
        ecosystem: Ecosystem::Npm,
        list: include_str!("../../feeds/popular/npm.txt"),
        ranked: true,
        prebuilt: include_bytes!("../../feeds/popular/npm.idx"),
        file: "npm.idx",
    },
    BundledList {
        ecosystem: Ecosystem::PyPI,
        list: include_str!("../../feeds/popular/pypi.txt"),
        ranked: true,
        prebuilt: include_bytes!("../../feeds/popular/pypi.idx"),
        file: "pypi.idx",
    },
    BundledList {
        ecosystem: Ecosystem::CratesIo,
        list: include_str!("../../feeds/popular/crates-io.txt"),
        ranked: false,
        prebuilt: include_bytes!("../../feeds/popular/crates-io.idx"),
        file: "crates-io.idx",
    },
];
