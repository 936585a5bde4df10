//! `uv.lock` for `depfw audit`.
//!
//! uv writes one universal lockfile (`version = 1`) covering every platform and Python
//! version, so the same package name can appear several times with different versions,
//! one per resolution fork; each distinct version is reported. The project itself and
//! other workspace members (`virtual` and `editable` sources) are [`PackageSource::Workspace`].

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::support::{check_name, dedup, from_toml, line_at, pypi_index, pypi_package, LineIndex};
use super::{LockedPackage, PackageSource, ParseError};
use crate::package::Ecosystem;

#[derive(Deserialize)]
struct UvLock {
    version: Spanned<i64>,
    #[serde(default)]
    package: Vec<Package>,
}

#[derive(Deserialize)]
struct Package {
    name: Spanned<String>,
    /// Absent for projects with a dynamic version.
    #[serde(default)]
    version: String,
    source: Option<Source>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Source {
    Registry(String),
    Git(String),
    Path(String),
    Directory(String),
    Editable(String),
    Virtual(String),
    Url(String),
}

pub(crate) fn parse(path: &Path, text: &str) -> Result<Vec<LockedPackage>, ParseError> {
    let lock: UvLock = from_toml(path, text)?;
    if *lock.version.get_ref() != 1 {
        return Err(ParseError::new(
            path,
            Some(line_at(text, lock.version.span().start)),
            format!(
                "unsupported uv.lock version {} (expected 1)",
                lock.version.get_ref()
            ),
        ));
    }
    let mut packages = Vec::with_capacity(lock.package.len());
    let lines = LineIndex::new(text);
    for pkg in lock.package {
        let line = Some(lines.line_of(pkg.name.span().start));
        let name = check_name(path, line, Ecosystem::PyPI, pkg.name.get_ref())?;
        let source = match pkg.source {
            None => {
                return Err(ParseError::new(
                    path,
                    line,
                    format!("package `{name}` has no `source`"),
                ))
            }
            Some(Source::Registry(url)) => pypi_index(Some(&url)),
            Some(Source::Git(url)) => PackageSource::Git { url },
            Some(Source::Path(path) | Source::Directory(path)) => PackageSource::Path { path },
            Some(Source::Editable(path) | Source::Virtual(path)) => {
                PackageSource::Workspace { path }
            }
            Some(Source::Url(url)) => PackageSource::Url { url },
        };
        packages.push(pypi_package(name, pkg.version, source, line));
    }
    Ok(dedup(packages))
}
