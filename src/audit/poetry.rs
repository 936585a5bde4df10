//! `poetry.lock` for `depfw audit`.
//!
//! Poetry projects pin every package in `poetry.lock`; lock-version 1.x (Poetry 1.0–1.8)
//! and 2.x (Poetry 2) share the `[[package]]` layout read here. A `[package.source]`
//! table marks packages that do not come from PyPI: `legacy` (another index), `git`,
//! `file` (a local archive), `directory` (a local project) and `url` (a remote archive).

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::support::{check_name, dedup, from_toml, line_at, pypi_index, pypi_package, LineIndex};
use super::{LockedPackage, PackageSource, ParseError};
use crate::package::Ecosystem;

#[derive(Deserialize)]
struct PoetryLock {
    #[serde(default)]
    package: Vec<Package>,
    metadata: Option<Metadata>,
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(rename = "lock-version")]
    lock_version: Option<Spanned<String>>,
}

#[derive(Deserialize)]
struct Package {
    name: Spanned<String>,
    version: String,
    source: Option<Source>,
}

#[derive(Deserialize)]
struct Source {
    #[serde(rename = "type")]
    kind: Spanned<String>,
    #[serde(default)]
    url: String,
    resolved_reference: Option<String>,
}

pub(crate) fn parse(path: &Path, text: &str) -> Result<Vec<LockedPackage>, ParseError> {
    let lock: PoetryLock = from_toml(path, text)?;
    if let Some(version) = lock.metadata.and_then(|m| m.lock_version) {
        if !(version.get_ref().starts_with("1.") || version.get_ref().starts_with("2.")) {
            return Err(ParseError::new(
                path,
                Some(line_at(text, version.span().start)),
                format!(
                    "unsupported poetry.lock lock-version `{}` (expected 1.x or 2.x)",
                    version.get_ref()
                ),
            ));
        }
    }
    let lines = LineIndex::new(text);
    let mut packages = Vec::with_capacity(lock.package.len());
    for pkg in lock.package {
        let line = Some(lines.line_of(pkg.name.span().start));
        let name = check_name(path, line, Ecosystem::PyPI, pkg.name.get_ref())?;
        let source = match pkg.source {
            None => PackageSource::Registry { url: None },
            Some(source) => match source.kind.get_ref().as_str() {
                "legacy" => pypi_index(Some(&source.url)),
                "git" => PackageSource::Git {
                    url: match source.resolved_reference {
                        Some(commit) => format!("{}#{commit}", source.url),
                        None => source.url,
                    },
                },
                "file" | "directory" => PackageSource::Path { path: source.url },
                "url" => PackageSource::Url { url: source.url },
                other => {
                    return Err(ParseError::new(
                        path,
                        Some(lines.line_of(source.kind.span().start)),
                        format!("unknown package source type `{other}`"),
                    ))
                }
            },
        };
        packages.push(pypi_package(name, pkg.version, source, line));
    }
    Ok(dedup(packages))
}
