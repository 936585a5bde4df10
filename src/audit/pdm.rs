//! `pdm.lock` for `depfw audit`.
//!
//! PDM pins every package of every group in `[[package]]` tables. Packages from an index
//! carry `files`; others carry `git` (with `revision`), `path`, or `url` (`file://` URLs,
//! often with `${PROJECT_ROOT}`, are local paths).

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::support::{check_name, dedup, from_toml, line_at, pypi_package, LineIndex};
use super::{LockedPackage, PackageSource, ParseError};
use crate::package::Ecosystem;

#[derive(Deserialize)]
struct PdmLock {
    metadata: Option<Metadata>,
    #[serde(default)]
    package: Vec<Package>,
}

#[derive(Deserialize)]
struct Metadata {
    lock_version: Option<Spanned<String>>,
}

#[derive(Deserialize)]
struct Package {
    name: Spanned<String>,
    #[serde(default)]
    version: String,
    git: Option<String>,
    revision: Option<String>,
    path: Option<String>,
    url: Option<String>,
}

pub(crate) fn parse(path: &Path, text: &str) -> Result<Vec<LockedPackage>, ParseError> {
    let lock: PdmLock = from_toml(path, text)?;
    if let Some(version) = lock.metadata.and_then(|m| m.lock_version) {
        if !version.get_ref().starts_with("4.") {
            return Err(ParseError::new(
                path,
                Some(line_at(text, version.span().start)),
                format!(
                    "unsupported pdm.lock lock_version `{}` (expected 4.x)",
                    version.get_ref()
                ),
            ));
        }
    }
    let mut packages = Vec::with_capacity(lock.package.len());
    let lines = LineIndex::new(text);
    for pkg in lock.package {
        let line = Some(lines.line_of(pkg.name.span().start));
        let name = check_name(path, line, Ecosystem::PyPI, pkg.name.get_ref())?;
        let source = if let Some(repo) = pkg.git {
            PackageSource::Git {
                url: match pkg.revision {
                    Some(commit) => format!("{repo}#{commit}"),
                    None => repo,
                },
            }
        } else if let Some(local) = pkg.path {
            PackageSource::Path { path: local }
        } else if let Some(url) = pkg.url {
            match url.strip_prefix("file://") {
                Some(local) => PackageSource::Path {
                    path: local.to_owned(),
                },
                None => PackageSource::Url { url },
            }
        } else {
            PackageSource::Registry { url: None }
        };
        packages.push(pypi_package(name, pkg.version, source, line));
    }
    Ok(dedup(packages))
}
