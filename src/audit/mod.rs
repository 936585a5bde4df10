//! Lockfile parsing for `depfw audit`.
//!
//! Agents and people commit lockfiles, and installs from a local cache never reach the
//! proxy; `depfw audit` checks what a project already pins with the same policy as the
//! proxy. This module turns every supported lockfile, and the SBOMs (CycloneDX, SPDX) other
//! tools write, into one list of [`LockedPackage`]s. One submodule per format; each reports
//! non-registry sources (git, path, url) as such rather than dropping them.

pub(crate) mod bun;
pub(crate) mod cargo;
pub mod evaluate;
pub(crate) mod npm;
pub mod online;
pub(crate) mod pdm;
pub(crate) mod pipfile;
pub(crate) mod pnpm;
pub(crate) mod poetry;
pub(crate) mod pylock;
pub(crate) mod report;
pub(crate) mod requirements;
pub mod run;
pub(crate) mod sbom;
mod support;
pub(crate) mod uv;
pub(crate) mod yarn;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::package::Ecosystem;
use crate::policy::VersionMetadata;

/// Every lockfile format depfw reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LockfileKind {
    CargoLock,
    PackageLock,
    NpmShrinkwrap,
    YarnLock,
    PnpmLock,
    BunLock,
    Requirements,
    PoetryLock,
    UvLock,
    PipfileLock,
    PdmLock,
    Pylock,
    /// A CycloneDX SBOM (JSON): the packages its components' purls name.
    #[serde(rename = "cyclonedx")]
    CycloneDx,
    /// An SPDX 2.3 SBOM (JSON): the packages its `PACKAGE-MANAGER` purl references name.
    #[serde(rename = "spdx")]
    Spdx,
}

impl LockfileKind {
    /// Recognises a lockfile by its file name (SBOMs by the names their specs recommend;
    /// [`sbom::sniff`] recognises one by its content).
    pub fn detect(path: &Path) -> Option<LockfileKind> {
        let name = path.file_name()?.to_str()?;
        Some(match name {
            n if n.ends_with(".cdx.json") => LockfileKind::CycloneDx,
            n if n.ends_with(".spdx.json") => LockfileKind::Spdx,
            "Cargo.lock" => LockfileKind::CargoLock,
            "package-lock.json" => LockfileKind::PackageLock,
            "npm-shrinkwrap.json" => LockfileKind::NpmShrinkwrap,
            "yarn.lock" => LockfileKind::YarnLock,
            "pnpm-lock.yaml" => LockfileKind::PnpmLock,
            "bun.lock" => LockfileKind::BunLock,
            "poetry.lock" => LockfileKind::PoetryLock,
            "uv.lock" => LockfileKind::UvLock,
            "Pipfile.lock" => LockfileKind::PipfileLock,
            "pdm.lock" => LockfileKind::PdmLock,
            "pylock.toml" => LockfileKind::Pylock,
            n if n.starts_with("pylock.") && n.ends_with(".toml") => LockfileKind::Pylock,
            n if n.ends_with(".txt") && n.contains("requirements") => LockfileKind::Requirements,
            _ => return None,
        })
    }

    /// The ecosystem of every package in such a file; `None` for SBOMs, which mix them.
    pub fn ecosystem(self) -> Option<Ecosystem> {
        Some(match self {
            LockfileKind::CargoLock => Ecosystem::CratesIo,
            LockfileKind::PackageLock
            | LockfileKind::NpmShrinkwrap
            | LockfileKind::YarnLock
            | LockfileKind::PnpmLock
            | LockfileKind::BunLock => Ecosystem::Npm,
            LockfileKind::Requirements
            | LockfileKind::PoetryLock
            | LockfileKind::UvLock
            | LockfileKind::PipfileLock
            | LockfileKind::PdmLock
            | LockfileKind::Pylock => Ecosystem::PyPI,
            LockfileKind::CycloneDx | LockfileKind::Spdx => return None,
        })
    }
}

/// Where a locked package comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum PackageSource {
    /// A package registry; `url` when the lockfile names one other than the default.
    Registry {
        url: Option<String>,
    },
    Git {
        url: String,
    },
    Path {
        path: String,
    },
    Url {
        url: String,
    },
    /// A workspace member or link to a local package.
    Workspace {
        path: String,
    },
}

impl PackageSource {
    pub(crate) fn is_registry(&self) -> bool {
        matches!(self, PackageSource::Registry { .. })
    }
}

/// One package version pinned by a lockfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockedPackage {
    pub ecosystem: Ecosystem,
    /// The real package name (for npm aliases, the aliased package, not the alias).
    pub name: String,
    /// The exact version; for non-registry sources, whatever the lockfile records.
    pub version: String,
    pub source: PackageSource,
    /// 1-based line of the entry in the lockfile, when the format allows finding it.
    pub line: Option<u32>,
    /// What the lockfile records about the version that registry metadata would otherwise
    /// tell (npm v2/v3: `license`, `hasInstallScript`, `deprecated`), so the license and
    /// reputation checks judge it offline exactly as the proxy does. `None` when the format
    /// records none of it: those checks then stay silent rather than guess.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<VersionMetadata>,
}

/// A lockfile that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    pub file: PathBuf,
    /// 1-based line of the problem, when known.
    pub line: Option<u32>,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file.display(), line, self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl ParseError {
    pub fn new(file: &Path, line: Option<u32>, message: impl Into<String>) -> Self {
        ParseError {
            file: file.to_owned(),
            line,
            message: message.into(),
        }
    }
}

/// A parsed lockfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lockfile {
    pub path: PathBuf,
    pub kind: LockfileKind,
    pub packages: Vec<LockedPackage>,
}

/// Parses `text`, the contents of the lockfile at `path`, as `kind`. `path` is used in
/// errors and, for requirements files, to resolve `-r`/`-c` includes.
pub fn parse_lockfile(path: &Path, kind: LockfileKind, text: &str) -> Result<Lockfile, ParseError> {
    let packages = match kind {
        LockfileKind::CargoLock => cargo::parse(path, text)?,
        LockfileKind::PackageLock | LockfileKind::NpmShrinkwrap => npm::parse(path, text)?,
        LockfileKind::YarnLock => yarn::parse(path, text)?,
        LockfileKind::PnpmLock => pnpm::parse(path, text)?,
        LockfileKind::BunLock => bun::parse(path, text)?,
        LockfileKind::Requirements => requirements::parse(path, text)?,
        LockfileKind::PoetryLock => poetry::parse(path, text)?,
        LockfileKind::UvLock => uv::parse(path, text)?,
        LockfileKind::PipfileLock => pipfile::parse(path, text)?,
        LockfileKind::PdmLock => pdm::parse(path, text)?,
        LockfileKind::Pylock => pylock::parse(path, text)?,
        LockfileKind::CycloneDx => sbom::parse_cyclonedx(path, text)?,
        LockfileKind::Spdx => sbom::parse_spdx(path, text)?,
    };
    Ok(Lockfile {
        path: path.to_owned(),
        kind,
        packages,
    })
}
