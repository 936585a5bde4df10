//! `Cargo.lock` for `depfw audit`.
//!
//! `depfw audit Cargo.lock` checks every crate a Rust project pins. The `cargo-lock` crate
//! reads all four lockfile versions (v1 with its `[metadata]` checksums and `[root]`, v2's
//! inline checksums, v3, and v4's percent-encoded git references); this module maps its
//! sources onto [`PackageSource`] and adds line numbers, which `cargo-lock` does not keep,
//! from a second, span-aware pass over the same TOML.
//!
//! Workspace members and `path` dependencies have no `source` in `Cargo.lock` and become
//! [`PackageSource::Workspace`] with an empty `path`: the lockfile does not record where
//! they live.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use cargo_lock::package::SourceKind;
use cargo_lock::{Lockfile, SourceId};
use serde::Deserialize;
use toml::Spanned;

use super::support::{from_toml, LineIndex};
use super::{LockedPackage, PackageSource, ParseError};
use crate::package::Ecosystem;

/// Only what is needed to find each entry's line and report bad fields by line.
#[derive(Deserialize)]
struct RawLock {
    #[serde(default)]
    package: Vec<RawPackage>,
    root: Option<RawPackage>,
}

#[derive(Deserialize)]
struct RawPackage {
    name: Spanned<String>,
    version: Spanned<String>,
    source: Option<Spanned<String>>,
}

/// `cargo-lock` 11.1 slices checksums by byte offset and panics inside a multi-byte
/// character (found by the `cargo_lock` fuzz target), so checksum lines (`checksum = …`,
/// v1's `"checksum … " = …`) must be ASCII before it sees them.
fn reject_non_ascii_checksums(path: &Path, text: &str) -> Result<(), ParseError> {
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start().trim_start_matches('"');
        if trimmed.starts_with("checksum") && !line.is_ascii() {
            return Err(ParseError::new(
                path,
                u32::try_from(index + 1).ok(),
                "a checksum must be hexadecimal ASCII",
            ));
        }
    }
    Ok(())
}

pub fn parse(path: &Path, text: &str) -> Result<Vec<LockedPackage>, ParseError> {
    let raw: RawLock = from_toml(path, text)?;
    let mut lines: HashMap<(String, String, PackageSource), u32> = HashMap::new();
    let text_lines = LineIndex::new(text);
    for pkg in raw.root.iter().chain(&raw.package) {
        let line = text_lines.line_of(pkg.name.span().start);
        let version_line = text_lines.line_of(pkg.version.span().start);
        semver::Version::parse(pkg.version.get_ref()).map_err(|err| {
            ParseError::new(
                path,
                Some(version_line),
                format!("`{}` is not a semver version: {err}", pkg.version.get_ref()),
            )
        })?;
        let source = match &pkg.source {
            None => None,
            Some(raw_source) => Some(SourceId::from_url(raw_source.get_ref()).map_err(|err| {
                ParseError::new(
                    path,
                    Some(text_lines.line_of(raw_source.span().start)),
                    format!("invalid source `{}`: {err}", raw_source.get_ref()),
                )
            })?),
        };
        let key = (
            pkg.name.get_ref().clone(),
            pkg.version.get_ref().clone(),
            classify(source.as_ref()),
        );
        lines.entry(key).or_insert(line);
    }

    reject_non_ascii_checksums(path, text)?;
    // Belt and braces for other panics in the third-party parser: a hostile lockfile must
    // give an error, not abort the audit.
    let lockfile = std::panic::catch_unwind(|| Lockfile::from_str(text))
        .map_err(|_| ParseError::new(path, None, "invalid Cargo.lock: the parser failed"))?
        .map_err(|err| ParseError::new(path, None, format!("invalid Cargo.lock: {err}")))?;
    let packages = lockfile
        .root
        .iter()
        .chain(&lockfile.packages)
        .map(|pkg| {
            let name = pkg.name.as_str().to_owned();
            let version = pkg.version.to_string();
            let source = classify(pkg.source.as_ref());
            let line = lines
                .get(&(name.clone(), version.clone(), source.clone()))
                .copied();
            LockedPackage {
                ecosystem: Ecosystem::CratesIo,
                name,
                version,
                source,
                line,
                metadata: None,
            }
        })
        .collect();
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
