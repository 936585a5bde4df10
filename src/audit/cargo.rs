//! `Cargo.lock` for `depfw audit`.
//!
//! `depfw audit Cargo.lock` checks every crate a Rust project pins, in all four lockfile
//! versions (v1 with `[root]` and its checksums under `[metadata]`, v2's inline checksums,
//! v3, and v4's percent-encoded git references). One span-aware TOML pass reads each
//! package's name, version and source, with its line; `cargo-lock`'s `SourceId` parses the
//! source URLs. `cargo-lock`'s whole-lockfile parser is not used: it resolves every
//! dependency by a linear search over all packages (quadratic in the lockfile's size), and
//! an audit needs only the packages, not the graph between them.
//!
//! Workspace members and `path` dependencies have no `source` in `Cargo.lock` and become
//! [`PackageSource::Workspace`] with an empty `path`: the lockfile does not record where
//! they live.

use std::path::Path;

use cargo_lock::package::SourceKind;
use cargo_lock::SourceId;
use serde::Deserialize;
use toml::Spanned;

use super::support::{from_toml, LineIndex};
use super::{LockedPackage, PackageSource, ParseError};
use crate::package::Ecosystem;

/// Only what is needed to find each entry's line and report bad fields by line.
#[derive(Deserialize)]
struct RawLock {
    /// The lockfile format: absent in v1 and v2, `3` or `4` since.
    version: Option<Spanned<u32>>,
    #[serde(default)]
    package: Vec<RawPackage>,
    root: Option<RawPackage>,
}

#[derive(Deserialize)]
struct RawPackage {
    name: Spanned<String>,
    version: Spanned<String>,
    source: Option<Spanned<String>>,
    checksum: Option<Spanned<String>>,
}

pub(crate) fn parse(path: &Path, text: &str) -> Result<Vec<LockedPackage>, ParseError> {
    let raw: RawLock = from_toml(path, text)?;
    let lines = LineIndex::new(text);
    if let Some(format) = &raw.version {
        if !(1..=4).contains(format.get_ref()) {
            return Err(ParseError::new(
                path,
                Some(lines.line_of(format.span().start)),
                format!(
                    "unsupported Cargo.lock version {} (expected 1 to 4)",
                    format.get_ref()
                ),
            ));
        }
    }
    let mut packages = Vec::with_capacity(raw.package.len() + 1);
    for pkg in raw.root.iter().chain(&raw.package) {
        let line = lines.line_of(pkg.name.span().start);
        let version = semver::Version::parse(pkg.version.get_ref()).map_err(|err| {
            ParseError::new(
                path,
                Some(lines.line_of(pkg.version.span().start)),
                format!("`{}` is not a semver version: {err}", pkg.version.get_ref()),
            )
        })?;
        if let Some(checksum) = &pkg.checksum {
            let digest = checksum.get_ref();
            if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ParseError::new(
                    path,
                    Some(lines.line_of(checksum.span().start)),
                    "a checksum must be 64 hexadecimal digits (SHA-256)",
                ));
            }
        }
        let source = match &pkg.source {
            None => None,
            Some(raw_source) => Some(SourceId::from_url(raw_source.get_ref()).map_err(|err| {
                ParseError::new(
                    path,
                    Some(lines.line_of(raw_source.span().start)),
                    format!("invalid source `{}`: {err}", raw_source.get_ref()),
                )
            })?),
        };
        packages.push(LockedPackage {
            ecosystem: Ecosystem::CratesIo,
            name: pkg.name.get_ref().clone(),
            version: version.to_string(),
            source: classify(source.as_ref()),
            line: Some(line),
            metadata: None,
        });
    }
    Ok(super::support::dedup(packages))
}

fn classify(source: Option<&SourceId>) -> PackageSource {
    let Some(source) = source else {
        return PackageSource::Workspace {
            path: String::new(),
        };
    };
    if source.is_default_registry() {
        return PackageSource::Registry { url: None };
    }
    match source.kind() {
        SourceKind::Git(_) => PackageSource::Git {
            url: match source.precise() {
                Some(commit) => format!("{}#{commit}", source.url()),
                None => source.url().to_string(),
            },
        },
        SourceKind::Path => PackageSource::Path {
            path: source.url().to_string(),
        },
        // Alternative, local and vendored (`directory+`) registries are all registries;
        // the URL tells the report which one.
        _ => PackageSource::Registry {
            url: Some(source.url().to_string()),
        },
    }
}
